//! Named artifacts kept by the cluster: thin wrappers over the imported WIT
//! `artifacts` interface.
//!
//! The host records every [`load`] as an upstream dependency of the calling
//! Run and every [`save`] as a downstream one, so lineage comes for free.
//! Outside a component (host-side unit tests of a function) there is no
//! cluster: both return an error instead of reaching the import.

/// Reads the artifact called `name`.
///
/// # Errors
///
/// The host's message: no such artifact, a name it refuses, or (outside a
/// component) no cluster to ask.
pub fn load(name: &str) -> Result<Vec<u8>, String> {
    #[cfg(target_arch = "wasm32")]
    {
        crate::bindings::artifacts::load(name)
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        Err(outside_component(name))
    }
}

/// Writes `data` as the artifact called `name`, replacing any previous one.
///
/// # Errors
///
/// The host's message: a name it refuses, a write that failed, or (outside
/// a component) no cluster to ask.
pub fn save(name: &str, data: &[u8]) -> Result<(), String> {
    #[cfg(target_arch = "wasm32")]
    {
        crate::bindings::artifacts::save(name, data)
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = data;
        Err(outside_component(name))
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn outside_component(name: &str) -> String {
    format!("artifact `{name}`: artifacts are only available inside an rh-wasm component")
}
