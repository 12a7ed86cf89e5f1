#[rh_guest::function]
struct Config {
    retries: u32,
}

fn main() {}
