//! Component validation on deploy: arbitrary bytes never panic the
//! runtime, are refused with a clear error unless they are a component,
//! and a refused deploy stores nothing.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

struct Env {
    _dir: tempfile::TempDir,
    rt: rh_runtime::Runtime,
    tk: tokio::runtime::Runtime,
}

fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let rt = rh_runtime::Runtime::open(dir.path().join("rh")).unwrap();
        let tk = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        Env { _dir: dir, rt, tk }
    })
}

fuzz_target!(|data: &[u8]| {
    let e = env();
    let before = e.rt.deployments(&rh_runtime::Caller::host()).unwrap().len();
    match e.tk.block_on(e.rt.deploy(&rh_runtime::Caller::host(), data, "fuzzed")) {
        Ok(_) => assert!(data.starts_with(b"\0asm"), "only wasm deploys"),
        Err(err) => {
            assert!(!err.to_string().is_empty());
            assert_eq!(
                e.rt.deployments(&rh_runtime::Caller::host()).unwrap().len(),
                before,
                "a refusal stores nothing"
            );
        }
    }
});
