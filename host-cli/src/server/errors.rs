//! Errors as HTTP answers: [`ApiError`], what every handler fails with; one
//! mapping of runtime errors to statuses (`From<rh_runtime::Error>`), and
//! one JSON shape, `wire::ErrorBody` (`{"error": {"kind", "message"}}`).

use crate::wire::{ErrorBody, ErrorInfo};
use hyper::StatusCode;
use rh_runtime::Error;

/// A request the daemon answers with an error: its status, kind and
/// message.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub kind: String,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, kind: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            kind: kind.to_string(),
            message: message.into(),
        }
    }

    /// `400 bad_input`: a request body that is not what the API takes.
    pub fn bad_input(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_input", message)
    }

    /// What the client is told: the error body.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorInfo::new(&self.kind, &self.message),
        }
    }
}

/// A runtime error: its status ([`status_of`]) and kind, and what a client
/// may be told of it ([`client_message`]).
impl From<Error> for ApiError {
    fn from(e: Error) -> ApiError {
        ApiError::new(status_of(&e), e.kind(), client_message(&e))
    }
}

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
        | Error::PythonException { .. }
        | Error::ExitCode { .. }
        | Error::Interrupted { .. } => StatusCode::OK,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
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
