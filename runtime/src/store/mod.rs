//! The stores: what the runtime keeps on disk, each store owning its folder
//! under the root.
//!
//! - `runs`: one folder per Run (`runs/`), the hosts that execute them and
//!   their journals (`hosts/`), name locks (`locks/`), cancel requests
//!   (`cancel/`); with `ahead` (folders made before they are needed) and
//!   `folder` (reading a Run folder without following symlinks).
//! - `functions`: components by digest (`components/`), deployed names
//!   (`names/`), precompiled code (`compiled/`, see `precompiled`).
//! - `artifacts`: artifact bytes by digest and their names' versions.
//! - `grants`: who else may read or write an object (`access/`).
//! - `index`: the index of Runs in SQLite (`index.sqlite`), derived from
//!   the Run folders; search, lineage and the result cache answer from it.
//! - `cache`: the result cache's keys, key locks and clears (`cache/`).
//! - `shared`, `remote`, `manifest`, `signing`: the team's shared store and
//!   S3 transfers, with signed manifests.
//! - `disk`: free space and scratch quotas.
//!
//! They share one set of file habits, `files`: atomic replacement, locks,
//! stamps.

pub(crate) mod artifacts;
pub(crate) mod cache;
pub(crate) mod disk;
pub(crate) mod files;
pub(crate) mod functions;
pub(crate) mod grants;
pub(crate) mod index;
pub(crate) mod manifest;
pub(crate) mod precompiled;
pub(crate) mod remote;
pub(crate) mod runs;
pub(crate) mod shared;
pub(crate) mod signing;
