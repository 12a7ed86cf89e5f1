//! Runtime errors as HTTP answers: one mapping, one JSON shape
//! (`{"error": {"kind", "message"}}`).

use crate::wire::{BoxBody, full};
use hyper::{Response, StatusCode};
use rh_runtime::Error;

pub fn status_of(e: &Error) -> StatusCode {
    match e {
        Error::NotFound { .. } => StatusCode::NOT_FOUND,
        Error::Forbidden { .. } => StatusCode::FORBIDDEN,
        Error::RunExists { .. } | Error::RunMismatch { .. } | Error::NotFinished { .. } => {
            StatusCode::CONFLICT
        }
        Error::BadInput { .. }
        | Error::UnknownFunction { .. }
        | Error::BadComponent { .. }
        | Error::InvalidName { .. }
        | Error::Invalid(_) => StatusCode::BAD_REQUEST,
        Error::DiskFull { .. } => StatusCode::INSUFFICIENT_STORAGE,
        // A Run that ended badly is a successful request; these appear only
        // where no Run answer applies.
        Error::OutOfFuel { .. }
        | Error::MemoryLimit { .. }
        | Error::Timeout { .. }
        | Error::Cancelled { .. }
        | Error::OutputLimit { .. }
        | Error::DiskLimit { .. }
        | Error::Trap { .. }
        | Error::Failed { .. }
        | Error::ExitCode { .. }
        | Error::Interrupted { .. } => StatusCode::OK,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

pub fn error_json(kind: &str, message: &str) -> serde_json::Value {
    serde_json::json!({ "error": { "kind": kind, "message": message } })
}

pub fn respond(status: StatusCode, kind: &str, message: &str) -> Response<BoxBody> {
    json_response(status, &error_json(kind, message))
}

/// The answer for a runtime error; see [`client_message`].
pub fn from_runtime(e: &Error) -> Response<BoxBody> {
    respond(status_of(e), e.kind(), &client_message(e))
}

/// What a client is told of an error. A failure of the daemon itself (a
/// file it could not read or write, a damaged record) names paths on the
/// host: those go to the log, and the client is told only what failed.
pub fn client_message(e: &Error) -> String {
    if status_of(e) != StatusCode::INTERNAL_SERVER_ERROR {
        return e.to_string();
    }
    tracing::error!("{e}");
    match e {
        Error::Io { op, source, .. } => {
            format!("the daemon failed to {op} one of its files ({source}); see its log")
        }
        _ => format!("internal error ({}); see the daemon's log", e.kind()),
    }
}

pub fn json_response(status: StatusCode, v: &serde_json::Value) -> Response<BoxBody> {
    let mut body = serde_json::to_vec(v).unwrap_or_default();
    body.push(b'\n');
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(full(body))
        .expect("a valid response")
}
