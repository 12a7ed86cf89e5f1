//! # rh-runtime
//!
//! The embeddable runtime of rh-wasm: it runs functions compiled to
//! WebAssembly components, in isolation, and records every call as a
//! **Run**, a folder holding the call's `config.json`, `inputs.json`,
//! `result.json` and the guest's `stdout` and `stderr`, written live.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> rh_runtime::Result<()> {
//! use rh_runtime::{CallRequest, Error, Runtime};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let rt = Runtime::open(dir.path())?;
//!
//! // Bytes that are not a component are refused, and nothing is stored.
//! let err = rt.deploy(b"not wasm", "summer").await.unwrap_err();
//! assert!(matches!(err, Error::BadComponent { .. }));
//! assert!(rt.deployments()?.is_empty());
//!
//! // Calling something never deployed is a clear error too.
//! let err = rt.call(CallRequest::new("summer", serde_json::json!([1, 2]))).await.unwrap_err();
//! assert_eq!(err.to_string(), "no deployed function named `summer`");
//! assert!(rt.runs()?.is_empty());
//! # Ok(()) }
//! ```
//!
//! With a component built from a crate using `rh-guest`:
//!
//! ```no_run
//! # async fn f() -> rh_runtime::Result<()> {
//! use rh_runtime::{CallRequest, Runtime};
//! let rt = Runtime::open("rh")?;
//! rt.deploy_file("summer.wasm".as_ref(), None).await?;
//! let run = rt.call(CallRequest::new("summer", serde_json::json!([1, 2])).run_name("my_fn_run")).await?;
//! assert_eq!(run.result()?, serde_json::json!(3));
//! println!("{}", String::from_utf8_lossy(&run.stdout()?));
//! # Ok(()) }
//! ```
//!
//! Modules: [`Runtime`] (the entry point), the run store (folders and
//! recovery), the function store (components by digest, precompiled copies),
//! the executor (limits, cancellation), artifacts.
#![deny(missing_docs)]

mod access;
mod ahead;
mod artifacts;
pub mod background;
mod cache;
mod call;
mod commands;
mod disk;
mod engine;
mod error;
mod executor;
mod folder;
mod functions;
mod host;
mod limits;
mod lineage;
mod manifest;
mod names;
mod precompiled;
mod record;
mod remote;
mod run;
mod runs;
mod runtime;
mod scope;
mod shared;
mod signing;

pub use access::{Access, ObjectKind, Share, User};
pub use artifacts::{Artifact, ArtifactVersion, digest_of};
pub use call::CallRequest;
pub use commands::{CmdSpec, ExecRequest};
pub use engine::{EngineOptions, default_memory_total};
pub use error::{Error, Result};
pub use folder::RunDir;
pub use functions::{ComponentInfo, ComponentKind, Deployment, FunctionDesc, Version};
pub use host::{OutputKind, OutputObserver};
pub use limits::{Limits, format_duration, format_size, parse_duration, parse_size};
pub use lineage::LineageNode;
pub use manifest::{Manifest, ManifestFile};
pub use names::{MAX_NAME_LEN, auto_run_name, validate_name, validate_run_name};
pub use record::{ArtifactRef, CmdRecord, FunctionRef, RunConfig, RunError, RunStatus, RunType};
pub use remote::{RemoteStore, Transfer, parse_s3_url};
pub use run::{Run, RunFile, RunHandle, is_plain_relative};
pub use runtime::{LogFollower, Runtime, RuntimeOptions};
pub use scope::Scope;
pub use signing::TeamKey;

/// Entry points for the fuzz targets (`fuzz/`); not part of the API.
#[doc(hidden)]
pub mod fuzzing {
    /// Turn call arguments (positional or by name) into the canonical
    /// inputs of a function with parameters `params`.
    pub fn canonical_args(params: &[String], args: &serde_json::Value) -> crate::Result<Vec<u8>> {
        let desc = crate::FunctionDesc {
            name: "f".into(),
            params: params.to_vec(),
            doc: None,
        };
        crate::call::canonical_args(&desc, args)
    }
}
