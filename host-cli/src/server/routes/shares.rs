//! `/v1/shares`: grant a user access to an object, take it back, list the
//! grants. Who may share is the runtime's rule; the daemon only knows which
//! users exist (its users file).

use super::{Ctx, Json, Reply, ReqBody, Resp};
use crate::server::Auth;
use crate::server::errors::ApiError;
use crate::wire::{ShareBody, Unshared};
use hyper::StatusCode;
use rh_runtime::{Access, ObjectKind, Share};

pub fn list(cx: &Ctx) -> Result<Json<Vec<Share>>, ApiError> {
    Ok(Json(cx.rt.shares(&cx.who)?))
}

/// Grant (or, with `grant` false, take back) a user's access to an object.
pub async fn share(cx: &Ctx<'_>, req: ReqBody, grant: bool) -> Result<Resp, ApiError> {
    let Auth::Users(_, users) = &cx.state.auth else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "no_users",
            "this daemon has no users to share with: start it with --users FILE",
        ));
    };
    let b: ShareBody = cx.json_body(req, "share").await?;
    rh_runtime::validate_name("user", &b.user)?;
    let known = users.read().expect("users lock poisoned").has(&b.user);
    if grant && !known {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "unknown_user",
            format!("no user `{}` on this cluster", b.user),
        ));
    }
    let kind = which_kind(cx, &b.name, b.kind.as_deref())?;
    if !grant {
        let removed = cx.rt.unshare(&cx.who, kind, &b.name, &b.user)?;
        let answer = Unshared {
            kind,
            name: b.name,
            user: b.user,
            removed,
        };
        return Ok(Json(answer).into_response());
    }
    let access: Access = b.access.as_deref().unwrap_or("read").parse()?;
    cx.rt.share(&cx.who, kind, &b.name, &b.user, access)?;
    let answer = Share {
        kind,
        name: b.name,
        user: b.user,
        access,
    };
    Ok(Json(answer).into_response())
}

/// The kind of object `name` is: as given, or the one kind of that name
/// the caller may see.
fn which_kind(cx: &Ctx, name: &str, given: Option<&str>) -> rh_runtime::Result<ObjectKind> {
    if let Some(k) = given {
        return k.parse();
    }
    match cx.rt.kinds_of(&cx.who, name).as_slice() {
        [] => Err(rh_runtime::Error::NotFound {
            what: "function, run or artifact",
            name: name.to_string(),
        }),
        [k] => Ok(*k),
        several => Err(rh_runtime::Error::Invalid(format!(
            "`{name}` names a {}; say which with --kind",
            several
                .iter()
                .map(|k| k.to_string())
                .collect::<Vec<_>>()
                .join(" and a ")
        ))),
    }
}
