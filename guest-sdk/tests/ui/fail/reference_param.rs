#[rh_guest::function]
fn shout(text: &str) -> String {
    text.to_uppercase()
}

#[rh_guest::function]
fn total(values: impl IntoIterator<Item = u32>) -> u32 {
    values.into_iter().sum()
}

fn main() {}
