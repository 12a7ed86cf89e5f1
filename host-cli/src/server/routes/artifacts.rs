//! `/v1/artifacts` and `/v1/lineage`: save and load artifact versions
//! (recorded in a scope when `?scope=` names one), list them, and the
//! lineage of an artifact or a Run.

use super::{Ctx, Json, ReqBody, Resp, blocking, respond};
use crate::server::errors::ApiError;
use crate::wire::{Lineage, full};
use hyper::StatusCode;
use rh_runtime::{Artifact, ArtifactRef};

/// Every artifact the caller may see: a read of every name, off the async
/// workers.
pub async fn list(cx: &Ctx<'_>) -> Result<Json<Vec<Artifact>>, ApiError> {
    let (rt, who) = (cx.rt.clone(), cx.who.clone());
    Ok(Json(blocking(move || rt.artifacts(&who)).await?))
}

pub fn get(cx: &Ctx, name: &str) -> Result<Json<Artifact>, ApiError> {
    Ok(Json(cx.rt.artifact(&cx.who, name)?))
}

/// The bytes of the current version, or of `?version=DIGEST`.
pub async fn data(cx: &Ctx<'_>, name: &str) -> Result<Resp, ApiError> {
    // Reading and hashing an artifact is file work: off the workers.
    let (rt, who) = (cx.rt.clone(), cx.who.clone().in_scope_opt(scope(cx)));
    let (name, version) = (name.to_string(), cx.param("version").map(str::to_string));
    let (bytes, _) = blocking(move || rt.load_artifact(&who, &name, version.as_deref())).await?;
    Ok(respond(
        StatusCode::OK,
        "application/octet-stream",
        full(bytes),
    ))
}

/// A new version, the body's bytes.
pub async fn save(cx: &Ctx<'_>, name: &str, req: ReqBody) -> Result<Json<ArtifactRef>, ApiError> {
    let bytes = cx.upload(req).await?;
    let (rt, who) = (cx.rt.clone(), cx.who.clone().in_scope_opt(scope(cx)));
    let name = name.to_string();
    Ok(Json(
        blocking(move || rt.save_artifact(&who, &name, &bytes)).await?,
    ))
}

/// The lineage of `name`: a read of every Run's record, off the async
/// workers.
pub async fn lineage(cx: &Ctx<'_>, name: &str) -> Result<Json<Lineage>, ApiError> {
    let (rt, who, name) = (cx.rt.clone(), cx.who.clone(), name.to_string());
    let node = blocking(move || rt.lineage(&who, &name)).await?;
    Ok(Json(Lineage::from(node)))
}

/// The scope a load or save is recorded in.
fn scope(cx: &Ctx) -> Option<String> {
    cx.param("scope").map(str::to_string)
}
