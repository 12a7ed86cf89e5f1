//! The host bindings of world `rh:wasm/guest` (`wit/`): the guest's
//! `function` export and the host's `artifacts` import.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "guest",
    exports: { default: async },
});
