//! What travels between the CLI and a daemon, as serde types: the daemon
//! answers with them and the client reads them, so the two cannot drift
//! apart. `docs/http-api.md` documents each shape.
//!
//! - `bodies`: request bodies ([`CallBody`], [`ExecBody`], [`ScopeBody`],
//!   [`EndScopeBody`], [`ShareBody`]) and the [`CallMode`] of a call.
//! - `answers`: [`RunAnswer`] (the answer about a Run, used by several
//!   endpoints and by `--json` on `local` too), [`ErrorBody`],
//!   [`Started`], [`DeploymentInfo`], [`Lineage`], [`Deleted`],
//!   [`Unshared`], [`RunFiles`], [`Health`] and a stream's [`StreamEnd`].
//!   Records the runtime already types (`RunConfig`, `Artifact`,
//!   `ArtifactRef`, `ComponentInfo`, `Share`, `RunFile`) travel as they are.
//! - `search`: a search of Runs as query parameters, and the bodies of
//!   `cache clear` and `reindex`.
//! - `frames`: the framed body of a streaming call, and the body types
//!   both sides send (`BoxBody`, a channel-fed body).
//!
//! On the wire, `null` and a missing field are kept as the API documents
//! them: optional answer fields are left out when empty, except where the
//! API gives `null` (a deployment's `kind`, health's `user` and `admin`, a
//! scope's `parent_run`). A leaf module: it imports nothing of the crate.

mod answers;
mod bodies;
mod frames;
mod search;

pub use answers::{
    Deleted, DeploymentInfo, ErrorBody, ErrorInfo, Health, Lineage, RunAnswer, RunFiles, Started,
    StreamEnd, Unshared,
};
pub use bodies::{CallBody, CallMode, EndScopeBody, ExecBody, PythonBody, ScopeBody, ShareBody};
pub use frames::{
    BoxBody, FRAME_END, FRAME_STDERR, FRAME_STDOUT, FrameReader, channel, frame, full,
};
pub use search::{CacheClearBody, CacheCleared, Reindexed, from_params, parse_tag, to_params};
