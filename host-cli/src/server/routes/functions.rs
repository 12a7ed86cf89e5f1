//! `/v1/functions` and `/v1/components`: deploy a component under a name,
//! list the deployed names, and store a command component by digest.

use super::{Ctx, Json, ReqBody};
use crate::server::errors::ApiError;
use crate::wire::DeploymentInfo;
use hyper::StatusCode;
use rh_runtime::ComponentInfo;

/// Every deployed name the caller may see: a read of every name, off the
/// async workers.
pub async fn list(cx: &Ctx<'_>) -> Result<Json<Vec<DeploymentInfo>>, ApiError> {
    let (rt, who) = (cx.rt.clone(), cx.who.clone());
    let deployed = super::blocking(move || rt.deployments(&who)).await?;
    Ok(Json(deployed.iter().map(DeploymentInfo::from).collect()))
}

/// `POST /v1/functions?name=NAME`, the component's bytes as the body.
pub async fn deploy(cx: &Ctx<'_>, req: ReqBody) -> Result<Json<DeploymentInfo>, ApiError> {
    let Some(name) = cx.param("name").filter(|n| !n.is_empty()) else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "deploy needs ?name=NAME",
        ));
    };
    let bytes = cx.upload(req).await?;
    let deployed = cx.rt.deploy(&cx.who, &bytes, name).await?;
    Ok(Json(DeploymentInfo::from(&deployed)))
}

/// `POST /v1/components`: a component stored by digest, without a name.
pub async fn add(cx: &Ctx<'_>, req: ReqBody) -> Result<Json<ComponentInfo>, ApiError> {
    let bytes = cx.upload(req).await?;
    Ok(Json(cx.rt.add_component(&cx.who, &bytes).await?))
}
