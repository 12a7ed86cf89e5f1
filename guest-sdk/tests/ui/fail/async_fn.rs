#[rh_guest::function]
async fn fetch(url: String) -> String {
    url
}

fn main() {}
