//! Deploy: a component checked, compiled and stored for a caller, who
//! owns a new name and needs write access to redeploy an existing one; or
//! stored by digest only, for the caller to run as a command.

use crate::functions::{ComponentInfo, Deployment};
use crate::parts::Parts;
use crate::{Caller, Result};

/// Deploy `bytes` as `name` for `caller`: a new name becomes theirs;
/// redeploying an existing one needs write access to it.
pub(crate) async fn deploy(
    parts: &Parts,
    caller: &Caller,
    bytes: &[u8],
    name: &str,
) -> Result<Deployment> {
    use crate::access::{Access, ObjectKind, require_if};
    if name == crate::python::NAME {
        // Every run-python runs it with its caller's rights: only the
        // embedding program or an administrator installs it.
        parts.require_admin(caller, "installing the Python interpreter")?;
        // What it exports is known once it is compiled: a component that
        // is not the interpreter leaves nothing stored behind.
        let digest = crate::digest_of(bytes);
        let had = parts.functions.info(&digest).is_ok();
        let loaded = parts
            .functions
            .store(&parts.engine, &parts.artifacts, bytes)
            .await?;
        if !crate::python::is_interpreter(&loaded.info) {
            if !had {
                parts.functions.remove_component(&digest);
            }
            return Err(crate::Error::Invalid(format!(
                "`{name}` is reserved for the Python interpreter (`rh-wasm python install`); \
                 deploy this component under another name"
            )));
        }
    }
    let guard = parts.guard(caller);
    let allow = |d: &Deployment| {
        require_if(
            guard.as_ref(),
            ObjectKind::Function,
            &d.name,
            d.creator.as_deref(),
            Access::Write,
            "redeploying it",
        )
        .map_err(|e| crate::access::taken(e, ObjectKind::Function, &d.name))
    };
    parts
        .functions
        .deploy(
            &parts.engine,
            &parts.artifacts,
            bytes,
            name,
            caller.creator(),
            &allow,
        )
        .await
}

/// Store a component by digest for `caller`, who may then run it.
pub(crate) async fn add_component(
    parts: &Parts,
    caller: &Caller,
    bytes: &[u8],
) -> Result<ComponentInfo> {
    use crate::access::{Access, ObjectKind};
    let info = parts
        .functions
        .store(&parts.engine, &parts.artifacts, bytes)
        .await?
        .info
        .clone();
    if let Some(u) = caller.user()
        && parts
            .access
            .granted(ObjectKind::Component, &info.digest, &u.name)?
            .is_none()
    {
        parts
            .access
            .grant(ObjectKind::Component, &info.digest, &u.name, Access::Read)?;
    }
    Ok(info)
}
