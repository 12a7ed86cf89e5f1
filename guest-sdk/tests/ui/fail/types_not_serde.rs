struct Opaque;

#[rh_guest::function]
fn take(value: Opaque) -> u32 {
    let _ = value;
    1
}

#[rh_guest::function]
fn give() -> Opaque {
    Opaque
}

struct NoDisplay;

#[rh_guest::function]
fn maybe() -> Result<u32, NoDisplay> {
    Err(NoDisplay)
}

fn main() {}
