"""The three-step pipeline of `examples/pipeline`, in Python: each step
loads the artifact the step before saved, so `rh-wasm lineage model-export`
traces an export back to its dataset, as for the Rust pipeline.

- `preprocess(dataset)` loads the CSV artifact `dataset` (rows of `x,y`
  numbers; a header, blank lines and `#` comments are skipped),
  standardizes `x` and saves `clean-data`;
- `train(epochs)` loads `clean-data`, fits `y = slope * x + intercept` by
  gradient descent and saves `model`;
- `export(format)` loads `model`, renders it as `json`, `csv` or `text` and
  saves `model-export`.

    rh-wasm build examples/python/pipeline.py
    rh-wasm deploy pipeline.wasm
    rh-wasm artifacts put dataset points.csv
    rh-wasm call pipeline/preprocess '"dataset"' --run-name prep
    rh-wasm call pipeline/train 3 --run-name train
    rh-wasm call pipeline/export '"json"' --run-name export
    rh-wasm lineage model-export
"""

import json

from rh_guest import artifacts, function


def _row(line):
    parts = [p.strip() for p in line.split(",")]
    if len(parts) != 2:
        return None
    try:
        return float(parts[0]), float(parts[1])
    except ValueError:
        return None


@function
def preprocess(dataset: str) -> int:
    """Loads the CSV artifact `dataset`, standardizes x, saves `clean-data`.
    Returns the number of rows kept."""
    print(f"preprocess: loading `{dataset}`")
    text = artifacts.load(dataset).decode()
    rows, dropped = [], 0
    for line in (l.strip() for l in text.splitlines()):
        if not line or line.startswith("#"):
            continue
        row = _row(line)
        if row is None:
            dropped += 1
        else:
            rows.append(row)
    print(f"preprocess: {len(rows)} rows, {dropped} dropped")
    if len(rows) < 2:
        raise ValueError(f"`{dataset}` has {len(rows)} usable rows; need at least 2")
    n = len(rows)
    mean = sum(x for x, _ in rows) / n
    std = (sum((x - mean) ** 2 for x, _ in rows) / n) ** 0.5
    if std == 0:
        raise ValueError(f"every x in `{dataset}` is the same; nothing to fit")
    clean = {"x_mean": mean, "x_std": std, "rows": [[(x - mean) / std, y] for x, y in rows]}
    artifacts.save("clean-data", json.dumps(clean))
    return n


@function
def train(epochs: int) -> dict:
    """Loads `clean-data`, fits a line by gradient descent, saves `model`."""
    clean = json.loads(artifacts.load("clean-data"))
    rows = clean["rows"]
    w = b = 0.0
    loss = None
    for epoch in range(epochs):
        gw = sum((w * x + b - y) * x for x, y in rows) / len(rows)
        gb = sum((w * x + b - y) for x, y in rows) / len(rows)
        w, b = w - 0.5 * gw, b - 0.5 * gb
        loss = sum((w * x + b - y) ** 2 for x, y in rows) / len(rows)
        print(f"train: epoch {epoch + 1}/{epochs} loss {loss:.6f}")
    slope = w / clean["x_std"]
    model = {"slope": slope, "intercept": b - slope * clean["x_mean"], "epochs": epochs, "loss": loss}
    artifacts.save("model", json.dumps(model))
    return model


@function
def export(format: str) -> str:
    """Loads `model`, renders it as json, csv or text, saves `model-export`."""
    m = json.loads(artifacts.load("model"))
    if format == "json":
        out = json.dumps(m)
    elif format == "csv":
        out = "slope,intercept\n{slope},{intercept}\n".format(**m)
    elif format == "text":
        out = "y = {slope:.4f} * x + {intercept:.4f}".format(**m)
    else:
        raise ValueError(f"unknown format `{format}` (json, csv or text)")
    artifacts.save("model-export", out)
    return out
