//! The smallest rh-wasm function: add two numbers, say so on stdout.
//!
//! Build and run it (from the repository root):
//!
//! ```sh
//! cargo build --release --target wasm32-wasip2 --manifest-path examples/Cargo.toml
//! rh-wasm deploy examples/target/wasm32-wasip2/release/summer.wasm
//! rh-wasm call summer 1 2
//! ```
//!
//! The component exports one function, so `summer` names it directly; the
//! line it prints lands in the Run's `stdout`, and `3` is its result.

/// Adds two numbers.
#[rh_guest::function]
fn summer(a: i64, b: i64) -> i64 {
    println!("adding {a} and {b}");
    a + b
}
