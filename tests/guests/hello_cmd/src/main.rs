//! A plain `wasi:cli/command`: any `fn main()` built for `wasm32-wasip2`.
//!
//! The tests deploy it (as a command) and check that calling it as a
//! function is refused, since it exports `wasi:cli/run` rather than the
//! `rh:wasm/function` interface; `rh-wasm exec` runs it by its deployed name.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    println!("hello from a command");
    println!("args: {}", args.join(" "));
}
