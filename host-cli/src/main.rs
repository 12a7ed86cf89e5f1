//! `rh-wasm`: deploy WebAssembly components and call them, recording every
//! call as a Run.
//!
//! This file only parses, dispatches and maps errors to exit codes: 0 on
//! success, 1 when a Run ended in error or was cancelled, 2 for a bad request
//! (bad input, unknown name, invalid component), 3 for anything else.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    rh_wasm::run()
}
