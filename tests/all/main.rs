//! End-to-end tests of the CLI and the daemon: real guests built from
//! source, the real `rh-wasm` binary, real Run folders on disk. The tests
//! of the runtime as a library are `runtime/tests/embed`.

mod util;

mod bad_input;
mod cache;
mod calls;
mod cancel;
mod completions;
mod connections;
mod daemon;
mod dashboard;
mod deploys;
mod disk;
mod escape;
mod exec;
mod faults;
mod history;
mod hosts;
mod leaks;
mod limits;
mod lineage;
mod load;
mod memory;
mod new;
mod paths;
mod python;
mod recovery;
mod result_cache;
mod retention;
mod run_folders;
mod s3;
mod scopes;
mod shared_store;
mod sharing;
mod stall;
mod tags;
