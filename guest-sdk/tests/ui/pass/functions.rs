//! Several functions in one crate register themselves, under the strictest
//! lints an author may use, and stay ordinary Rust functions.

#![forbid(unsafe_code)]
#![deny(missing_docs, warnings)]

use rh_guest::__private::{CallError, call, functions};
use rh_guest::serde::{Deserialize, Serialize};

/// A point.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(crate = "rh_guest::serde")]
pub struct Point {
    x: i32,
    y: i32,
}

/// Adds two numbers.
///
/// Second paragraph.
#[rh_guest::function]
pub fn add(a: i64, b: i64) -> i64 {
    a + b
}

/** Moves `p` by `dx`. */
#[rh_guest::function]
fn shift(mut p: Point, r#dx: i32) -> Point {
    p.x += dx;
    p
}

#[rh_guest::function]
fn checked_div(a: u32, b: u32) -> Result<u32, String> {
    a.checked_div(b)
        .ok_or_else(|| "division by zero".to_owned())
}

#[rh_guest::function]
fn read() -> std::io::Result<u8> {
    Err(std::io::Error::other("no such thing"))
}

#[rh_guest::function]
fn nothing() {}

// Named like the items the macro generates.
#[rh_guest::function]
fn __rh_invoke_like(invoke: u8, register: u8) -> u8 {
    invoke + register
}

mod nested {
    #[rh_guest::function]
    pub(crate) fn inner(items: Vec<String>) -> usize {
        items.len()
    }
}

fn ok(json: &str) -> Result<String, CallError> {
    call_str("", json)
}

fn call_str(name: &str, json: &str) -> Result<String, CallError> {
    call(name, json.as_bytes()).map(|bytes| String::from_utf8(bytes).unwrap())
}

fn main() {
    let listed: Vec<_> = functions()
        .iter()
        .map(|f| (f.name, f.params.to_vec(), f.doc))
        .collect();
    assert_eq!(
        listed,
        [
            ("__rh_invoke_like", vec!["invoke", "register"], None),
            (
                "add",
                vec!["a", "b"],
                Some("Adds two numbers.\n\nSecond paragraph.")
            ),
            ("checked_div", vec!["a", "b"], None),
            ("inner", vec!["items"], None),
            ("nothing", vec![], None),
            ("read", vec![], None),
            ("shift", vec!["p", "dx"], Some("Moves `p` by `dx`.")),
        ]
    );

    assert_eq!(call_str("add", "[1, 2]"), Ok("3".to_owned()));
    assert_eq!(
        call_str("shift", r#"{"dx": 2, "p": {"x": 1, "y": 1}}"#),
        Ok(r#"{"x":3,"y":1}"#.to_owned())
    );
    assert_eq!(
        call_str("checked_div", "[1, 0]"),
        Err(CallError::Failed("division by zero".to_owned()))
    );
    assert_eq!(
        call_str("read", "[]"),
        Err(CallError::Failed("no such thing".to_owned()))
    );
    assert_eq!(call_str("nothing", "[]"), Ok("null".to_owned()));
    assert_eq!(call_str("__rh_invoke_like", "[1, 2]"), Ok("3".to_owned()));
    assert_eq!(call_str("inner", r#"[["a", "b"]]"#), Ok("2".to_owned()));
    assert_eq!(ok("[]"), Err(CallError::UnknownFunction(String::new())));

    // Still plain functions.
    assert_eq!(add(1, 2), 3);
    assert_eq!(shift(Point { x: 0, y: 0 }, 1), Point { x: 1, y: 0 });
    assert_eq!(nested::inner(vec![]), 0);
    nothing();
}
