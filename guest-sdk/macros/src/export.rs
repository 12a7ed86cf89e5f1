//! The export shims of the WIT `function` interface, for `rh-guest` only.
//!
//! `wit_bindgen::generate!` produces the canonical-ABI glue
//! (`_export_describe_cabi`, `__post_return_call`, ...) but leaves the
//! `#[export_name]` functions to its `export!` macro. That macro is a local
//! `macro_rules!` inside `rh-guest`, so its `unsafe` would be linted as
//! `rh-guest`'s own code, and the workspace *forbids* `unsafe_code` (a
//! forbid cannot be lifted by a scoped `#[allow]`). Emitting the same four
//! shims from this proc macro keeps them generated code, like the rest of the
//! wit-bindgen output, while `rh-guest`'s hand-written code stays free of
//! `unsafe`.
//!
//! The shims mirror, name for name, what wit-bindgen 0.61's `export!` emits
//! for `rh:wasm/function@0.1.0`; a wit-bindgen upgrade that renames its glue
//! fails to compile here rather than misbehaving.

use proc_macro2::TokenStream;
use quote::quote;
use syn::parse::{Parse, ParseStream};
use syn::{Path, Token, Type};

/// `Type, path::to::generated::function`.
struct Input {
    implementor: Type,
    module: Path,
}

impl Parse for Input {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let implementor = input.parse()?;
        input.parse::<Token![,]>()?;
        let module = input.parse()?;
        Ok(Self {
            implementor,
            module,
        })
    }
}

pub(crate) fn expand(input: TokenStream) -> syn::Result<TokenStream> {
    let Input {
        implementor: ty,
        module: m,
    } = syn::parse2(input)?;
    Ok(quote! {
        const _: () = {
            #[unsafe(export_name = "rh:wasm/function@0.1.0#describe")]
            unsafe extern "C" fn export_describe() -> *mut u8 {
                unsafe { #m::_export_describe_cabi::<#ty>() }
            }
            #[unsafe(export_name = "cabi_post_rh:wasm/function@0.1.0#describe")]
            unsafe extern "C" fn post_return_describe(ret: *mut u8) {
                unsafe { #m::__post_return_describe::<#ty>(ret) }
            }
            #[unsafe(export_name = "rh:wasm/function@0.1.0#call")]
            unsafe extern "C" fn export_call(
                name_ptr: *mut u8,
                name_len: usize,
                args_ptr: *mut u8,
                args_len: usize,
            ) -> *mut u8 {
                unsafe { #m::_export_call_cabi::<#ty>(name_ptr, name_len, args_ptr, args_len) }
            }
            #[unsafe(export_name = "cabi_post_rh:wasm/function@0.1.0#call")]
            unsafe extern "C" fn post_return_call(ret: *mut u8) {
                unsafe { #m::__post_return_call::<#ty>(ret) }
            }
        };
    })
}
