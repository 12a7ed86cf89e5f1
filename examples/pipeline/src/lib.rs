//! A three-step pipeline whose steps hand each other artifacts, so that
//! every Run's lineage links it to the Runs before and after it:
//!
//! - `preprocess(dataset)` loads the CSV artifact named `dataset` (rows of
//!   `x,y` numbers; a header, blank lines and `#` comments are skipped),
//!   standardizes `x` and saves `clean-data`;
//! - `train(epochs)` loads `clean-data`, fits `y = slope * x + intercept` by
//!   gradient descent and saves `model`;
//! - `export(format)` loads `model`, renders it as `json`, `csv` or `text`
//!   and saves `model-export`.
//!
//! Build and run it (from the repository root), once a CSV has been saved
//! as the artifact `points` (by any function calling
//! `rh_guest::artifacts::save`):
//!
//! ```sh
//! cargo build --release --target wasm32-wasip2 --manifest-path examples/Cargo.toml
//! rh-wasm deploy examples/target/wasm32-wasip2/release/pipeline.wasm
//! rh-wasm call pipeline/preprocess '"points"'
//! rh-wasm call pipeline/train 200
//! rh-wasm call pipeline/export '"text"'
//! ```

use rh_guest::artifacts;
use rh_guest::serde::{Deserialize, Serialize};

/// The output of `preprocess`: the rows with `x` standardized, and what it
/// takes to undo that.
#[derive(Serialize, Deserialize)]
#[serde(crate = "rh_guest::serde")]
struct CleanData {
    x_mean: f64,
    x_std: f64,
    rows: Vec<(f64, f64)>,
}

/// A fitted line, in the units of the original data.
#[derive(Serialize, Deserialize)]
#[serde(crate = "rh_guest::serde")]
struct Model {
    slope: f64,
    intercept: f64,
    epochs: u32,
    loss: f64,
}

/// Loads the CSV artifact `dataset`, drops what is not an `x,y` row of
/// numbers, standardizes `x` and saves the result as `clean-data`.
///
/// Returns the number of rows kept.
#[rh_guest::function]
fn preprocess(dataset: String) -> Result<usize, String> {
    println!("preprocess: loading `{dataset}`");
    let bytes = artifacts::load(&dataset).map_err(|e| format!("loading `{dataset}`: {e}"))?;
    let text = String::from_utf8(bytes).map_err(|_| format!("`{dataset}` is not UTF-8 text"))?;

    let mut rows = Vec::new();
    let mut dropped = 0;
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match parse_row(line) {
            Some(row) => rows.push(row),
            None => dropped += 1,
        }
    }
    println!("preprocess: {} rows, {dropped} dropped", rows.len());
    if rows.len() < 2 {
        return Err(format!(
            "`{dataset}` has {} usable rows; need at least 2",
            rows.len()
        ));
    }

    let n = rows.len() as f64;
    let x_mean = rows.iter().map(|(x, _)| x).sum::<f64>() / n;
    let x_std = (rows.iter().map(|(x, _)| (x - x_mean).powi(2)).sum::<f64>() / n).sqrt();
    if x_std == 0.0 {
        return Err(format!(
            "every x in `{dataset}` is {x_mean}: nothing to fit"
        ));
    }
    for (x, _) in &mut rows {
        *x = (*x - x_mean) / x_std;
    }
    println!("preprocess: x standardized (mean {x_mean}, std {x_std})");

    let kept = rows.len();
    save_json(
        "clean-data",
        &CleanData {
            x_mean,
            x_std,
            rows,
        },
    )?;
    Ok(kept)
}

/// Loads `clean-data`, fits a line by `epochs` epochs of gradient descent
/// and saves it as `model`.
#[rh_guest::function]
fn train(epochs: u32) -> Result<Model, String> {
    println!("train: loading `clean-data`");
    let data: CleanData = load_json("clean-data")?;
    let n = data.rows.len() as f64;
    let rate = 0.1;
    let (mut slope, mut intercept) = (0.0, 0.0);
    let mut loss = mean_squared_error(&data.rows, slope, intercept);
    let report_every = (epochs / 10).max(1);
    for epoch in 1..=epochs {
        let (mut d_slope, mut d_intercept) = (0.0, 0.0);
        for &(x, y) in &data.rows {
            let error = slope * x + intercept - y;
            d_slope += 2.0 * error * x / n;
            d_intercept += 2.0 * error / n;
        }
        slope -= rate * d_slope;
        intercept -= rate * d_intercept;
        loss = mean_squared_error(&data.rows, slope, intercept);
        if epoch % report_every == 0 || epoch == epochs {
            println!("train: epoch {epoch}/{epochs}, loss {loss:.6}");
        }
    }

    // Back from standardized x to the data's own units.
    let model = Model {
        slope: slope / data.x_std,
        intercept: intercept - slope * data.x_mean / data.x_std,
        epochs,
        loss,
    };
    println!("train: y = {} * x + {}", model.slope, model.intercept);
    save_json("model", &model)?;
    Ok(model)
}

/// Loads `model`, renders it as `json`, `csv` or `text`, saves that as
/// `model-export` and returns it.
#[rh_guest::function]
fn export(format: String) -> Result<String, String> {
    println!("export: loading `model`");
    let model: Model = load_json("model")?;
    let rendered = match format.as_str() {
        "json" => to_json(&model)?,
        "csv" => format!(
            "slope,intercept,epochs,loss\n{},{},{},{}\n",
            model.slope, model.intercept, model.epochs, model.loss
        ),
        "text" => format!("y = {} * x + {}\n", model.slope, model.intercept),
        other => return Err(format!("unknown format `{other}`: use json, csv or text")),
    };
    println!("export: saving `model-export` as {format}");
    artifacts::save("model-export", rendered.as_bytes())
        .map_err(|e| format!("saving `model-export`: {e}"))?;
    Ok(rendered)
}

fn parse_row(line: &str) -> Option<(f64, f64)> {
    let (x, y) = line.split_once(',')?;
    let (x, y) = (x.trim().parse::<f64>().ok()?, y.trim().parse::<f64>().ok()?);
    (x.is_finite() && y.is_finite()).then_some((x, y))
}

fn mean_squared_error(rows: &[(f64, f64)], slope: f64, intercept: f64) -> f64 {
    let total: f64 = rows
        .iter()
        .map(|&(x, y)| (slope * x + intercept - y).powi(2))
        .sum();
    total / rows.len() as f64
}

fn to_json<T: Serialize>(value: &T) -> Result<String, String> {
    rh_guest::serde_json::to_string_pretty(value).map_err(|e| e.to_string())
}

fn save_json<T: Serialize>(name: &str, value: &T) -> Result<(), String> {
    artifacts::save(name, to_json(value)?.as_bytes()).map_err(|e| format!("saving `{name}`: {e}"))
}

fn load_json<T: for<'de> Deserialize<'de>>(name: &str) -> Result<T, String> {
    let bytes = artifacts::load(name).map_err(|e| format!("loading `{name}`: {e}"))?;
    rh_guest::serde_json::from_slice(&bytes)
        .map_err(|e| format!("`{name}` is not what I saved: {e}"))
}
