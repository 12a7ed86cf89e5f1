#[rh_guest::function]
fn add((a, b): (i64, i64), _: u8) -> i64 {
    a + b
}

fn main() {}
