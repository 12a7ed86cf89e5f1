//! Run-name validation: never panics, and whatever it accepts is safe to
//! use as a folder name (no separators, not `.`/`..`, short, plain).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(name) = std::str::from_utf8(data) else {
        return;
    };
    if rh_runtime::validate_run_name(name).is_ok() {
        assert!(!name.is_empty() && name.len() <= rh_runtime::MAX_NAME_LEN);
        assert!(!name.starts_with('.'), "{name:?}");
        assert!(
            name.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)),
            "{name:?}"
        );
        assert_eq!(std::path::Path::new(name).components().count(), 1);
    }
});
