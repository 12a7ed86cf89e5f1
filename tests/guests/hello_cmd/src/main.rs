//! A plain `wasi:cli/command`: any `fn main()` built for `wasm32-wasip2`.
//!
//! The tests use it two ways: `rh-wasm exec` runs it as a command Run, and
//! `rh-wasm deploy` must refuse it, since it exports `wasi:cli/run` rather
//! than the `rh:wasm/function` interface.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    println!("hello from a command");
    println!("args: {}", args.join(" "));
}
