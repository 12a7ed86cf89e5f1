//! `#[rh_guest::function]`: validation of the annotated item and its
//! expansion.
//!
//! The function is emitted unchanged, followed by an anonymous
//! `const _: () = { .. };` block holding:
//!
//! - `__rh_invoke`, which takes the decoded arguments one by one, calls the
//!   function and encodes its result;
//! - a `static` `rh_guest::__private::Function` describing it;
//! - a static constructor that registers that description.
//!
//! The constructor is a `#[used]` function pointer in `.init_array`. On
//! `wasm32` LLVM turns those entries into the module's init functions, which
//! wasm-ld calls from `__wasm_call_ctors`, and wit-bindgen's export glue runs
//! `__wasm_call_ctors` before the first export call: so every annotated
//! function is registered before `describe` or `call` runs, with no `export!`
//! line for the author to keep in sync. The host targets get the equivalent
//! section so that host-side tests see the same registry.
//!
//! The generated items carry `__rh_` prefixes because items (unlike locals)
//! cannot be hygienic: an author's function named `invoke` must not be
//! shadowed by ours.
//!
//! Problems with the item are reported together, each at the span of the
//! offending token, rather than stopping at the first.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{Expr, FnArg, Item, ItemFn, Lit, Meta, Pat, ReturnType, Signature, Type};

pub(crate) fn expand(attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    if !attr.is_empty() {
        return Err(syn::Error::new_spanned(
            attr,
            "`#[rh_guest::function]` takes no arguments",
        ));
    }
    let function = match syn::parse2::<Item>(item)? {
        Item::Fn(function) => function,
        other => {
            return Err(syn::Error::new_spanned(
                item_head(&other),
                "`#[rh_guest::function]` applies only to free functions (`fn name(..) { .. }`)",
            ));
        }
    };
    let params = check_signature(&function.sig)?;
    Ok(generate(&function, &params))
}

/// A parameter that passed the checks: its name (as callers use it) and type.
struct Param<'a> {
    name: String,
    ty: &'a Type,
}

/// Checks everything the expansion relies on, collecting every problem.
fn check_signature(sig: &Signature) -> syn::Result<Vec<Param<'_>>> {
    let mut errors: Option<syn::Error> = None;
    let mut fail = |tokens: &dyn ToTokens, message: &str| {
        let error = syn::Error::new_spanned(tokens, message);
        match &mut errors {
            Some(all) => all.combine(error),
            None => errors = Some(error),
        }
    };

    if let Some(asyncness) = &sig.asyncness {
        fail(
            asyncness,
            "`#[rh_guest::function]` cannot be `async`: functions run synchronously inside the component",
        );
    }
    if let Some(unsafety) = &sig.unsafety {
        fail(
            unsafety,
            "`#[rh_guest::function]` cannot be an `unsafe fn`: callers from outside cannot uphold its contract",
        );
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        fail(
            &sig.generics,
            "`#[rh_guest::function]` cannot be generic: each parameter needs one concrete type to decode JSON into",
        );
    }
    if let Some(variadic) = &sig.variadic {
        fail(variadic, "`#[rh_guest::function]` cannot be variadic");
    }

    let mut params = Vec::new();
    for input in &sig.inputs {
        let typed = match input {
            FnArg::Receiver(receiver) => {
                fail(
                    receiver,
                    "`#[rh_guest::function]` does not support methods: write a free function without `self`",
                );
                continue;
            }
            FnArg::Typed(typed) => typed,
        };
        match &*typed.pat {
            Pat::Ident(binding) if binding.subpat.is_none() => params.push(Param {
                name: binding.ident.unraw().to_string(),
                ty: &typed.ty,
            }),
            pattern => fail(
                pattern,
                "parameters of `#[rh_guest::function]` must be plain names, not patterns: callers pass arguments by parameter name",
            ),
        }
        match &*typed.ty {
            Type::ImplTrait(ty) => fail(
                ty,
                "`impl Trait` parameters are generic: give `#[rh_guest::function]` parameters a concrete type",
            ),
            Type::Reference(ty) => fail(
                ty,
                "`#[rh_guest::function]` parameters are decoded from JSON into owned values: take `String`, `Vec<T>` or `T` instead of a reference",
            ),
            _ => {}
        }
    }
    match errors {
        Some(errors) => Err(errors),
        None => Ok(params),
    }
}

fn generate(function: &ItemFn, params: &[Param<'_>]) -> TokenStream {
    let ident = &function.sig.ident;
    let name = ident.unraw().to_string();
    let doc = match doc_comment(&function.attrs) {
        Some(doc) => quote!(::core::option::Option::Some(#doc)),
        None => quote!(::core::option::Option::None),
    };
    let param_names = params.iter().map(|param| &param.name);

    // Locals of the generated code use the mixed-site span so they can never
    // capture, or be captured by, the author's names.
    let args = syn::Ident::new("args", Span::mixed_site());
    let values: Vec<_> = (0..params.len())
        .map(|index| format_ident!("arg{index}", span = Span::mixed_site()))
        .collect();
    let takes = params
        .iter()
        .zip(&values)
        .enumerate()
        .map(|(index, (param, value))| {
            let ty = param.ty;
            // Spanned on the type, so a type that cannot be deserialized is
            // reported there.
            let take = quote_spanned!(ty.span()=> #args.take::<#ty>(#index)?);
            quote!(let #value = #take;)
        });
    let call = quote!(#ident(#(#values),*));
    // The encoding calls are spanned, down to their argument, on the (part
    // of the) return type whose trait bound they need, so a result that is
    // not `Serialize`, or an error that is not `Display`, is reported there
    // rather than at the attribute.
    let encode = match &function.sig.output {
        ReturnType::Default => quote!(::rh_guest::__private::encode_value(&#call)),
        ReturnType::Type(_, ty) if is_result(ty) => {
            let (ok, err) = result_spans(ty);
            let value = syn::Ident::new("__rh_value", ok);
            let error = syn::Ident::new("__rh_error", err);
            let encode_ok = quote_spanned!(ok=> ::rh_guest::__private::encode_value(&#value));
            let encode_err = quote_spanned!(err=> ::rh_guest::__private::encode_error(&#error));
            quote! {
                match #call {
                    ::core::result::Result::Ok(#value) => #encode_ok,
                    ::core::result::Result::Err(#error) => #encode_err,
                }
            }
        }
        ReturnType::Type(_, ty) => {
            let value = syn::Ident::new("__rh_value", ty.span());
            let encode = quote_spanned!(ty.span()=> ::rh_guest::__private::encode_value(&#value));
            quote! {{
                let #value = #call;
                #encode
            }}
        }
    };

    quote! {
        #function

        const _: () = {
            fn __rh_invoke(
                mut #args: ::rh_guest::__private::Args,
            ) -> ::rh_guest::__private::Outcome {
                #(#takes)*
                #encode
            }

            static __RH_FUNCTION: ::rh_guest::__private::Function = ::rh_guest::__private::Function {
                name: #name,
                params: &[#(#param_names),*],
                doc: #doc,
                invoke: __rh_invoke,
            };

            extern "C" fn __rh_register() {
                ::rh_guest::__private::register(&__RH_FUNCTION);
            }

            // A static constructor: see the `function` module of
            // rh-guest-macros for why this registers before any call.
            #[used]
            #[cfg_attr(
                any(
                    target_family = "wasm",
                    target_os = "linux",
                    target_os = "android",
                    target_os = "freebsd",
                    target_os = "netbsd",
                    target_os = "openbsd",
                    target_os = "dragonfly",
                    target_os = "illumos",
                ),
                unsafe(link_section = ".init_array")
            )]
            #[cfg_attr(target_vendor = "apple", unsafe(link_section = "__DATA,__mod_init_func"))]
            #[cfg_attr(windows, unsafe(link_section = ".CRT$XCU"))]
            static __RH_REGISTER: extern "C" fn() = __rh_register;
        };
    }
}

/// Whether a return type is spelled as a `Result` (`Result<T, E>`,
/// `std::result::Result<T, E>`, `anyhow::Result<T>`, ...).
fn is_result(ty: &Type) -> bool {
    match ty {
        Type::Path(path) if path.qself.is_none() => path
            .path
            .segments
            .last()
            .is_some_and(|segment| segment.ident == "Result"),
        Type::Group(group) => is_result(&group.elem),
        Type::Paren(paren) => is_result(&paren.elem),
        _ => false,
    }
}

/// Where to report a `Result<T, E>`'s `T` and `E`: at each type argument
/// when written out, else (`io::Result<T>`'s hidden `E`) at the whole type.
fn result_spans(ty: &Type) -> (Span, Span) {
    let whole = ty.span();
    let mut ty = ty;
    while let Type::Group(syn::TypeGroup { elem, .. }) | Type::Paren(syn::TypeParen { elem, .. }) =
        ty
    {
        ty = elem;
    }
    let Type::Path(path) = ty else {
        return (whole, whole);
    };
    let Some(syn::PathArguments::AngleBracketed(args)) =
        path.path.segments.last().map(|segment| &segment.arguments)
    else {
        return (whole, whole);
    };
    let mut types = args.args.iter().filter_map(|arg| match arg {
        syn::GenericArgument::Type(ty) => Some(ty.span()),
        _ => None,
    });
    let ok = types.next().unwrap_or(whole);
    let err = types.next().unwrap_or(whole);
    (ok, err)
}

/// The doc comment: the `///` (or `#[doc = ".."]`) lines joined with
/// newlines, their common indentation removed, trimmed; `None` when empty.
/// Docs that are not string literals (`#[doc = include_str!(..)]`) are
/// skipped: their text is not known to the macro.
fn doc_comment(attrs: &[syn::Attribute]) -> Option<String> {
    let mut lines = Vec::new();
    for attr in attrs {
        if let Meta::NameValue(meta) = &attr.meta
            && meta.path.is_ident("doc")
            && let Expr::Lit(expr) = &meta.value
            && let Lit::Str(text) = &expr.lit
        {
            lines.extend(text.value().split('\n').map(str::to_owned));
        }
    }
    let indent = lines
        .iter()
        .filter(|line| !line.trim().is_empty())
        .map(|line| line.len() - line.trim_start().len())
        .min()
        .unwrap_or(0);
    let joined = lines
        .iter()
        .map(|line| line.get(indent..).unwrap_or("").trim_end())
        .collect::<Vec<_>>()
        .join("\n");
    let doc = joined.trim();
    (!doc.is_empty()).then(|| doc.to_owned())
}

/// The tokens to point at when the attribute sits on something that is not a
/// function: its keyword and name where it has them, rather than the whole
/// (possibly long) item.
fn item_head(item: &Item) -> TokenStream {
    match item {
        Item::Struct(item) => head(&item.struct_token, &item.ident),
        Item::Enum(item) => head(&item.enum_token, &item.ident),
        Item::Union(item) => head(&item.union_token, &item.ident),
        Item::Const(item) => head(&item.const_token, &item.ident),
        Item::Static(item) => head(&item.static_token, &item.ident),
        Item::Mod(item) => head(&item.mod_token, &item.ident),
        Item::Trait(item) => head(&item.trait_token, &item.ident),
        Item::Type(item) => head(&item.type_token, &item.ident),
        Item::Impl(item) => head(&item.impl_token, &item.self_ty),
        Item::Use(item) => item.use_token.to_token_stream(),
        other => other.to_token_stream(),
    }
}

fn head(keyword: &dyn ToTokens, name: &dyn ToTokens) -> TokenStream {
    let mut tokens = keyword.to_token_stream();
    name.to_tokens(&mut tokens);
    tokens
}
