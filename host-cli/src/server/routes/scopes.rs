//! `/v1/scopes`: open a scope (a context Run) and end it.

use super::{Ctx, Json, ReqBody, answer, body};
use crate::server::errors::ApiError;
use crate::wire::{EndScopeBody, RunAnswer, ScopeBody, Started};

/// `POST /v1/scopes`: `{"name", "parent_run"?}`.
pub async fn open(cx: &Ctx<'_>, req: ReqBody) -> Result<Json<Started>, ApiError> {
    let b: ScopeBody = scope_body(cx, req).await?;
    let Some(name) = b.name else {
        return Err(ApiError::bad_input("a scope needs a name"));
    };
    let scope = cx
        .rt
        .open_scope(&cx.who.clone().in_scope_opt(b.parent_run), &name)?;
    Ok(Json(Started {
        run_name: scope.name().to_string(),
        status: "running".into(),
    }))
}

/// `POST /v1/scopes/{name}/end`: `{}` or `{"error": "<message>"}`.
pub async fn end(cx: &Ctx<'_>, name: &str, req: ReqBody) -> Result<Json<RunAnswer>, ApiError> {
    let b: EndScopeBody = scope_body(cx, req).await?;
    Ok(Json(answer(&cx.rt.end_scope(
        &cx.who,
        name,
        b.outcome(),
    )?)))
}

/// A scope request's body: an empty one is `{}`; one that is not a JSON
/// object of the shape `T` is refused (400 `bad_input`) before anything
/// changes (serde would take a struct from an array as well).
async fn scope_body<T: serde::de::DeserializeOwned + Default>(
    cx: &Ctx<'_>,
    req: ReqBody,
) -> Result<T, ApiError> {
    let max = cx.state.max_request;
    let bytes = body(req, max, cx.state.body_grace).await?;
    if bytes.is_empty() {
        return Ok(T::default());
    }
    let v: serde_json::Value = crate::server::json::parse(&bytes, max, "scope")?;
    let bad = |why: String| ApiError::bad_input(format!("the scope request is not valid: {why}"));
    if !v.is_object() {
        return Err(bad("it is not a JSON object".into()));
    }
    serde_json::from_value(v).map_err(|e| bad(e.to_string()))
}
