//! The functions of this component, registered by the code that
//! `#[rh_guest::function]` generates.
//!
//! Each annotated function contributes a `static` [`Function`] and a static
//! constructor that passes it to [`register`]; on `wasm32` the constructors
//! run from `__wasm_call_ctors`, which wit-bindgen's export glue calls before
//! the first `describe` or `call`. So the registry is complete before anyone
//! reads it, and no `export!` list has to be kept in sync by hand.
//!
//! Registration is idempotent (the constructors must not run twice, but if a
//! toolchain ever did, the listing would not change) and [`functions`] sorts
//! by name, so `describe` does not depend on the linker's order.

use std::sync::{Mutex, PoisonError};

use crate::args::Args;
use crate::call::Outcome;

/// One exported function, as described by `describe` and dispatched by
/// `call`.
#[derive(Debug)]
pub struct Function {
    /// The name callers use: the Rust function's name.
    pub name: &'static str,
    /// The parameter names, as written, in order.
    pub params: &'static [&'static str],
    /// The doc comment, if any.
    pub doc: Option<&'static str>,
    /// Decodes the arguments, calls the function, encodes its result.
    pub invoke: fn(Args) -> Outcome,
}

/// A component is single-threaded; the lock only makes the global safe
/// to declare.
static REGISTRY: Mutex<Vec<&'static Function>> = Mutex::new(Vec::new());

/// Adds `function` to this component's functions (once).
pub fn register(function: &'static Function) {
    let mut registry = REGISTRY.lock().unwrap_or_else(PoisonError::into_inner);
    if !registry.iter().any(|known| std::ptr::eq(*known, function)) {
        registry.push(function);
    }
}

/// Every registered function, sorted by name.
pub fn functions() -> Vec<&'static Function> {
    let mut functions = REGISTRY
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    functions.sort_by_key(|function| function.name);
    functions
}

/// The function called `name`. Names are meant to be unique within a
/// component; if two share one, the first by registration wins.
pub fn find(name: &str) -> Option<&'static Function> {
    REGISTRY
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .find(|function| function.name == name)
        .copied()
}
