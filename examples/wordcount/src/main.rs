//! A command, not a function: a plain `fn main()` built for `wasm32-wasip2`
//! is a `wasi:cli/command` component that `rh-wasm exec` runs as a command
//! Run. Its files live in the Run's own scratch directory, shared by the
//! Run's commands, and it sees nothing else of the host.
//!
//! ```sh
//! cargo build --release --target wasm32-wasip2 --manifest-path examples/Cargo.toml
//! W=examples/target/wasm32-wasip2/release
//! rh-wasm exec --run-name wc -- $W/wordcount.wasm write notes.txt the quick brown fox \
//!                            -- $W/wordcount.wasm count notes.txt
//! rh-wasm show local wc        # cmds: both commands, their args and exit codes
//! ```
//!
//! `write FILE WORDS..` writes the words to FILE; `count FILE..` prints the
//! words in each file and fails when a file cannot be read (WASI 0.2 reports
//! only success or failure, recorded as exit code 0 or 1).

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.split_first() {
        Some((verb, rest)) if verb == "write" && !rest.is_empty() => {
            let text = rest[1..].join(" ");
            match std::fs::write(&rest[0], format!("{text}\n")) {
                Ok(()) => {
                    println!("wrote {} words to {}", rest.len() - 1, rest[0]);
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("cannot write {}: {e}", rest[0]);
                    ExitCode::FAILURE
                }
            }
        }
        Some((verb, files)) if verb == "count" => {
            let mut code = ExitCode::SUCCESS;
            for f in files {
                match std::fs::read_to_string(f) {
                    Ok(text) => println!("{f}: {} words", text.split_whitespace().count()),
                    Err(e) => {
                        eprintln!("cannot read {f}: {e}");
                        code = ExitCode::FAILURE;
                    }
                }
            }
            code
        }
        _ => {
            eprintln!("usage: wordcount write FILE WORDS.. | wordcount count FILE..");
            ExitCode::from(2)
        }
    }
}
