//! Argument decoding: any JSON value against any parameter list either is
//! refused with an error or gives canonical inputs that are a JSON array
//! of the right length, and decoding those again gives the same bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // First byte: how many parameters; then JSON.
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let params: Vec<String> = (0..n % 6).map(|i| format!("p{i}")).collect();
    let Ok(args) = serde_json::from_slice::<serde_json::Value>(rest) else {
        return;
    };
    if let Ok(bytes) = rh_runtime::fuzzing::canonical_args(&params, &args) {
        let v: serde_json::Value =
            serde_json::from_slice(&bytes).expect("canonical inputs are JSON");
        let items = v.as_array().expect("canonical inputs are an array");
        assert_eq!(items.len(), params.len());
        let again =
            rh_runtime::fuzzing::canonical_args(&params, &v).expect("canonical inputs decode");
        assert_eq!(again, bytes, "canonical form is stable");
    }
});
