//! What `#[rh_guest::function]` accepts and how it refuses misuse: trybuild
//! compiles every `ui/pass/*.rs` (and runs it) and checks that every
//! `ui/fail/*.rs` fails with exactly the diagnostics in its `.stderr`.
//!
//! After a deliberate change to the diagnostics, regenerate the `.stderr`
//! files with `TRYBUILD=overwrite cargo test -p rh-guest --test ui` and
//! review the diff.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass/*.rs");
    cases.compile_fail("tests/ui/fail/*.rs");
}
