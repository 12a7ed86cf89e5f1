//! The `guest` world implemented with plain `wit-bindgen`, without rh-guest:
//! proof that the WIT contract in `wit/` is all a component needs.
//!
//! One function, `mul(a, b)`, taking its arguments as a JSON array (parsed
//! here by hand) and returning their product as JSON.

wit_bindgen::generate!({
    path: "../../../wit",
    world: "guest",
});

use exports::rh::wasm::function::{CallError, FunctionInfo, Guest};

struct Raw;

impl Guest for Raw {
    fn describe() -> Vec<FunctionInfo> {
        vec![FunctionInfo {
            name: "mul".to_owned(),
            params: vec!["a".to_owned(), "b".to_owned()],
            doc: Some("Multiplies two integers.".to_owned()),
        }]
    }

    fn call(name: String, args: Vec<u8>) -> Result<Vec<u8>, CallError> {
        if name != "mul" {
            return Err(CallError::UnknownFunction(name));
        }
        let (a, b) = match serde_json::from_slice::<serde_json::Value>(&args) {
            Ok(serde_json::Value::Array(items)) => match items.as_slice() {
                [a, b] => match (a.as_i64(), b.as_i64()) {
                    (Some(a), Some(b)) => (a, b),
                    _ => return Err(CallError::BadInput("mul takes two integers".to_owned())),
                },
                _ => {
                    return Err(CallError::BadInput(format!(
                        "expected 2 arguments, got {}",
                        items.len()
                    )));
                }
            },
            Ok(_) => return Err(CallError::BadInput("expected a JSON array".to_owned())),
            Err(e) => return Err(CallError::BadInput(format!("not JSON: {e}"))),
        };
        let product = a
            .checked_mul(b)
            .ok_or_else(|| CallError::Failed(format!("{a} * {b} overflows")))?;
        Ok(product.to_string().into_bytes())
    }
}

export!(Raw);
