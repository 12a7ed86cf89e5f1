//! The runtime as a library, as a program embedding it uses it: real
//! guests built from source (shared with the CLI's tests through
//! `rh-test-support`), a root in a temp dir per test, every verb called
//! with a [`rh_runtime::Caller`].

mod util;

mod cache;
mod calls;
mod cancel;
mod limits;
mod scopes;
mod users;
