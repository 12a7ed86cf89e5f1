#[rh_guest::function]
unsafe fn peek(address: usize) -> u8 {
    address as u8
}

fn main() {}
