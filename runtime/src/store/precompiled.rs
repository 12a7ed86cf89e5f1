//! Loading precompiled native code: the one place that needs `unsafe`.
//!
//! `Component::deserialize_file` trusts its input to be code Wasmtime made,
//! since it maps it executable. It is sound here because the only files
//! passed in are ones this runtime wrote itself under its own root, named by
//! the component digest and the engine's compatibility hash, so a copy from
//! another engine configuration is never even looked at. Anything that fails
//! to load is treated as absent and recompiled from the stored component.
#![allow(
    unsafe_code,
    reason = "deserializing precompiled code this runtime wrote itself"
)]

use std::path::Path;
use wasmtime::Engine;
use wasmtime::component::Component;

pub(crate) fn load(engine: &Engine, path: &Path) -> Option<Component> {
    if !path.exists() {
        return None;
    }
    // SAFETY: `path` is under the runtime's own root and was written by
    // `Component::serialize` of an engine with the same compatibility hash
    // (it is part of the file name); see the module docs.
    match unsafe { Component::deserialize_file(engine, path) } {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::warn!("ignoring precompiled {}: {e:#}", path.display());
            None
        }
    }
}
