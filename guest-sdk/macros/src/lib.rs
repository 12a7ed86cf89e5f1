//! Procedural macros of `rh-guest`; function authors use them through
//! `rh_guest::function`, never by depending on this crate.
//!
//! - [`macro@function`] turns an ordinary Rust function into an exported
//!   rh-wasm function (see `function.rs` for what it generates).
//! - `__export_function_interface!` is an internal helper of `rh-guest`: it
//!   emits the four `extern "C"` shims that export the WIT `function`
//!   interface (see `export.rs` for why a proc macro does this).
//!
//! Every expansion refers to `::rh_guest::__private`, so the generated code
//! only needs the author's dependency on `rh-guest`.

#![deny(missing_docs)]

mod export;
mod function;

use proc_macro::TokenStream;

/// Exports a Rust function from an rh-wasm function component.
///
/// ```ignore
/// /// Adds two numbers.
/// #[rh_guest::function]
/// fn summer(a: i64, b: i64) -> i64 {
///     a + b
/// }
/// ```
///
/// The function keeps working as ordinary Rust; the attribute adds a
/// registration that makes `describe` list it (name, parameter names as
/// written, doc comment) and `call` dispatch to it:
///
/// - each parameter must implement `serde::de::DeserializeOwned`; the caller
///   passes a JSON array (by position) or object (by parameter name);
/// - the result must implement `serde::Serialize` and is returned as JSON; a
///   return type spelled `Result<T, E>` (any path ending in `Result`, so
///   `anyhow::Result<T>` too) is fallible: `Err(e)` becomes a failed call
///   whose message is `e.to_string()`, so `E` must implement `Display`.
///
/// Several functions may live in one component; no other boilerplate is
/// needed. The attribute takes no arguments and refuses `async`, `unsafe`
/// and generic functions, methods (`self`), `impl Trait` or reference
/// parameters, and parameters that are patterns rather than plain names.
#[proc_macro_attribute]
pub fn function(attr: TokenStream, item: TokenStream) -> TokenStream {
    let item = proc_macro2::TokenStream::from(item);
    match function::expand(attr.into(), item.clone()) {
        Ok(expanded) => expanded.into(),
        // Keep the item, so the only errors are ours, not a cascade of
        // "cannot find function" wherever it is used.
        Err(error) => {
            let mut tokens = error.into_compile_error();
            tokens.extend(item);
            tokens.into()
        }
    }
}

/// Internal to `rh-guest`: exports its `Guest` implementation of the WIT
/// `function` interface. Input: `Type, path::to::generated::function`.
#[doc(hidden)]
#[proc_macro]
pub fn __export_function_interface(input: TokenStream) -> TokenStream {
    export::expand(input.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
