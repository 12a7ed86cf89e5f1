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
//! use rh_runtime::{CallRequest, Caller, Error, Runtime};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let rt = Runtime::open(dir.path())?;
//! // Who acts: here the embedding program itself, which may do anything.
//! let me = Caller::host();
//!
//! // Bytes that are not a component are refused, and nothing is stored.
//! let err = rt.deploy(&me, b"not wasm", "summer").await.unwrap_err();
//! assert!(matches!(err, Error::BadComponent { .. }));
//! assert!(rt.deployments(&me)?.is_empty());
//!
//! // Calling something never deployed is a clear error too.
//! let req = CallRequest::new("summer", serde_json::json!([1, 2]));
//! let err = rt.call(&me, req).await.unwrap_err();
//! assert_eq!(err.to_string(), "no deployed function named `summer`");
//! assert!(rt.runs(&me)?.is_empty());
//! # Ok(()) }
//! ```
//!
//! With a component built from a crate using `rh-guest`:
//!
//! ```no_run
//! # async fn f() -> rh_runtime::Result<()> {
//! use rh_runtime::{CallRequest, Caller, Runtime};
//! let rt = Runtime::open("rh")?;
//! let me = Caller::host();
//! rt.deploy_file(&me, "summer.wasm".as_ref(), None).await?;
//! let req = CallRequest::new("summer", serde_json::json!([1, 2])).run_name("my_fn_run");
//! let run = rt.call(&me, req).await?;
//! assert_eq!(run.result()?, serde_json::json!(3));
//! println!("{}", String::from_utf8_lossy(&run.stdout()?));
//! # Ok(()) }
//! ```
//!
//! ## How it is built
//!
//! [`Runtime`] is a thin façade: each verb takes the [`Caller`] it acts
//! for (the embedding program, someone it vouches for, or a [`User`] whose
//! access is checked) and hands over to the parts below. A call flows
//! through four steps, each a module:
//!
//! ```text
//! Runtime::call(caller, req)
//!   plan     resolve the function, check access, canonical args -> Plan
//!   claim    take the Run's name in the run store (new / rerun / existing),
//!            or a completed Run that answers it from the result cache
//!   execute  admit, build the Store, run the guest (or copy the cache hit)
//!   record   result.json, config.json (its row to the index of Runs), the
//!            shared store
//! ```
//!
//! - `plan`: [`CallRequest`] / [`ExecRequest`] → `Plan` (`call` and `exec`
//!   hold the requests and the canonical form of arguments).
//! - `claim`: one `new_run` for `call`, `start` and `exec`; one
//!   `find_or_claim` for `get_or_call` and `get_or_run`.
//! - `execute/`: the engine and admission, the one `StoreBuilder` (every
//!   Store: calls, commands, deploy-time inspection, the bare call), and
//!   the host side of a Store (output sinks, limits, artifacts).
//! - `record`: how a Run ended, written down; then `cached` (finding,
//!   copying and publishing cache hits).
//! - `inflight` (the Runs this process executes) and `handle` (waiting on,
//!   cancelling and following a Run; [`RunHandle`]).
//! - `access`: the policy every verb applies (owners, grants, what a
//!   caller may see); `deploy`, `scope` (context Runs and their journals)
//!   and `lineage` serve the other verbs.
//! - `parts`: what a [`Runtime`] ties together, opened once.
//! - `store/`: what is kept on disk, each store owning its folder under the
//!   root (`runs/` with `hosts`, `ahead` and `folder`; `functions`,
//!   `artifacts`, `grants`, `cache`, `shared`, `remote`, `disk`), sharing
//!   one set of file habits (`files`: atomic writes, locks, stamps).
//! - shared types: `config` (what `config.json` holds, and the names of a
//!   Run folder's files), `run` ([`Run`]), `caller`, `options`, `error`,
//!   `limits`, `names`.
#![deny(missing_docs)]

mod access;
pub mod background;
mod cached;
mod call;
mod caller;
mod claim;
mod config;
mod deploy;
mod error;
mod exec;
mod execute;
mod faults;
mod gc;
mod handle;
mod inflight;
mod limits;
mod lineage;
mod names;
mod options;
mod parts;
mod plan;
pub mod python;
mod record;
mod run;
mod runtime;
mod scope;
mod store;

use store::runs::{self, folder};
use store::{artifacts, cache, disk, functions, manifest, precompiled, remote, shared, signing};

pub use artifacts::{Artifact, ArtifactVersion, digest_of};
pub use call::CallRequest;
pub use caller::{Caller, User};
pub use config::{ArtifactRef, CmdRecord, FunctionRef, RunConfig, RunError, RunStatus, RunType};
/// The files of a Run folder.
pub use config::{INPUTS, RESULT, STDERR, STDOUT};
pub use error::{Error, Result};
pub use exec::{CmdSpec, ExecRequest};
pub use execute::engine::{EngineOptions, default_memory_total};
pub use execute::host::{OutputKind, OutputObserver};
pub use folder::RunDir;
pub use functions::{ComponentInfo, ComponentKind, Deployment, FunctionDesc, Version};
pub use gc::{GcReport, GcRequest};
pub use handle::{LogFollower, RunHandle};
pub use limits::{Limits, format_duration, format_size, parse_duration, parse_size};
pub use lineage::LineageNode;
pub use manifest::{Manifest, ManifestFile};
pub use names::{
    MAX_NAME_LEN, MAX_TAG_VALUE, MAX_TAGS, auto_run_name, now_rfc3339, validate_name,
    validate_run_name, validate_tag,
};
pub use options::{RunEvent, RunWatcher, RuntimeOptions};
pub use remote::{RemoteStore, Transfer, parse_s3_url};
pub use run::{Run, RunFile, is_plain_relative};
pub use runtime::Scope;
pub use runtime::{Mirrored, Prepared, Runtime};
pub use signing::TeamKey;
pub use store::grants::{Access, ObjectKind, Share};
pub use store::index::search::{MAX_PAGE, format_when, parse_when};
pub use store::index::{RunPage, RunQuery};

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
