//! The component glue: wit-bindgen's bindings of the `guest` world in
//! `wit/`, and the export of the `function` interface by a dispatcher over
//! the registry.
//!
//! Living in this dependency rather than in the author's crate is fine for
//! linking: the export shims are `#[export_name]` functions, which a
//! `cdylib` exports from any crate it links, and the custom section that
//! describes the world (`component-type:..`) is kept alive by wit-bindgen's
//! `#[used]` link helpers, so `wasm-component-ld` finds both.
//!
//! The shims come from `rh_guest_macros::__export_function_interface!`
//! instead of wit-bindgen's `export!` (see that macro for why).

mod generated {
    wit_bindgen::generate!({
        path: "../wit",
        world: "guest",
    });
}

use generated::exports::rh::wasm::function as wit;
#[cfg(target_arch = "wasm32")]
pub(crate) use generated::rh::wasm::artifacts;

use crate::call::{self, CallError};
use crate::registry;

/// Implements the exported `function` interface.
struct Dispatcher;

impl wit::Guest for Dispatcher {
    fn describe() -> Vec<wit::FunctionInfo> {
        registry::functions()
            .into_iter()
            .map(|function| wit::FunctionInfo {
                name: function.name.to_owned(),
                params: function
                    .params
                    .iter()
                    .map(|&param| param.to_owned())
                    .collect(),
                doc: function.doc.map(str::to_owned),
            })
            .collect()
    }

    fn call(name: String, args: Vec<u8>) -> Result<Vec<u8>, wit::CallError> {
        call::call(&name, &args).map_err(|error| match error {
            CallError::UnknownFunction(name) => wit::CallError::UnknownFunction(name),
            CallError::BadInput(message) => wit::CallError::BadInput(message),
            CallError::Failed(message) => wit::CallError::Failed(message),
        })
    }
}

rh_guest_macros::__export_function_interface!(
    Dispatcher,
    crate::bindings::generated::exports::rh::wasm::function
);
