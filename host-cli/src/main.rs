//! `rh-wasm`: deploy WebAssembly components and call them, recording every
//! call as a Run.
//!
//! This file only parses, dispatches and maps errors to exit codes: 0 on
//! success, 1 when a Run ended in error or was cancelled, 2 for a bad request
//! (bad input, unknown name, invalid component), 3 for anything else.
#![forbid(unsafe_code)]

mod cli;
mod client;
mod cluster;
mod commands;
mod config;
mod output;
mod server;
mod wire;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let json = cli.json;
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(3);
        }
    };
    match rt.block_on(commands::dispatch(cli)) {
        Ok(code) => code,
        Err(e) => {
            let code = output::exit_code(&e);
            if json {
                let v = serde_json::json!({ "error": format!("{e:#}"), "kind": output::error_kind(&e) });
                println!("{v}");
            } else {
                eprintln!("error: {e:#}");
            }
            ExitCode::from(code)
        }
    }
}
