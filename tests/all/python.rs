//! Functions written in Python: `rh-wasm build` (componentize-py, installed
//! from PyPI by the command itself when missing) of the examples, deployed
//! and called like Rust components; the pipeline's lineage the same as the
//! Rust pipeline's; bad files refused before anything is built.

use crate::util::*;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The repository's root.
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A Python example built once per test process: its component.
fn built(example: &str) -> PathBuf {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let dir = DIR.get_or_init(tmp);
    let _one_at_a_time = LOCK.lock().unwrap();
    let out = dir.path().join(format!("{example}.wasm"));
    if !out.exists() {
        let src = repo().join("examples/python").join(format!("{example}.py"));
        let text = rh_ok(
            dir.path(),
            &["build", src.to_str().unwrap(), "-o", out.to_str().unwrap()],
        );
        assert!(
            text.starts_with(&format!("built {}", out.display())),
            "{text}"
        );
    }
    out
}

fn call(dir: &Path, args: &[&str]) -> std::process::Output {
    rh(dir, &[&["call"], args].concat())
}

#[test]
fn python_functions_deploy_and_are_called_like_rust_ones() {
    let d = tmp();
    let dir = d.path();
    let wasm = built("summer");
    let out = rh_ok(dir, &["deploy", wasm.to_str().unwrap()]);
    assert!(out.contains("summer(a, b)  Adds two numbers."), "{out}");
    let f: Value = serde_json::from_str(&rh_ok(dir, &["functions", "--json"])).unwrap();
    let desc = &f[0]["functions"][0];
    assert_eq!(desc["params"], json!(["a", "b"]), "{f}");
    assert_eq!(desc["doc"], "Adds two numbers.", "{f}");

    // Positional and by name; output in the Run's stdout.
    let o = call(dir, &["summer", "1", "2", "--run-name", "pos"]);
    assert!(o.status.success(), "{o:?}");
    assert_eq!(String::from_utf8_lossy(&o.stdout), "adding 1 and 2\n3\n");
    assert_eq!(config(dir, "pos")["status"], "completed");
    assert_eq!(
        std::fs::read_to_string(dir.join("rh/runs/pos/stdout")).unwrap(),
        "adding 1 and 2\n"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("rh/runs/pos/result.json")).unwrap(),
        "3"
    );
    std::fs::write(dir.join("args.json"), r#"{"b": 5, "a": 4}"#).unwrap();
    let out = rh_ok(
        dir,
        &[
            "call",
            "summer",
            "--input",
            "args.json",
            "--run-name",
            "named2",
        ],
    );
    assert!(out.ends_with("9\n"), "{out}");

    // A missing or unknown argument is a bad input naming it.
    std::fs::write(dir.join("bad.json"), r#"{"a": 4, "c": 5}"#).unwrap();
    let err = rh_err(dir, &["call", "summer", "--input", "bad.json"], 2);
    assert!(err.contains('c') || err.contains('b'), "{err}");
    let err = rh_err(dir, &["call", "summer", "1"], 2);
    assert!(err.contains("summer(a, b)"), "{err}");
}

#[test]
fn a_python_exception_ends_the_run_failed_with_its_summary_and_traceback() {
    let d = tmp();
    let dir = d.path();
    std::fs::write(
        dir.join("multi.py"),
        "from rh_guest import function\n\
         \n\
         @function\n\
         def boom(x):\n    \
             print('before the error')\n    \
             raise ValueError(f'no good: {x}')\n\
         \n\
         @function\n\
         def unencodable():\n    \
             return {1, 2}\n\
         \n\
         @function\n\
         def twice(x):\n    \
             return [x, x]\n",
    )
    .unwrap();
    // Files in the folder named like the build's own modules stand in for
    // nothing.
    std::fs::write(dir.join("rh_main.py"), "raise SystemExit('a decoy')\n").unwrap();
    std::fs::create_dir(dir.join("rh_guest")).unwrap();
    std::fs::write(
        dir.join("rh_guest/__init__.py"),
        "raise SystemExit('a decoy')\n",
    )
    .unwrap();
    let out = rh_ok(dir, &["build", "multi.py"]);
    assert!(out.contains("boom(x)") && out.contains("twice(x)"), "{out}");
    rh_ok(dir, &["deploy", "multi.wasm"]);
    let o = call(dir, &["multi/boom", "7", "--run-name", "b"]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let c = config(dir, "b");
    assert_eq!(c["status"], "error");
    assert_eq!(c["error"]["kind"], "failed");
    assert_eq!(c["error"]["message"], "ValueError: no good: 7");
    assert_eq!(
        std::fs::read_to_string(dir.join("rh/runs/b/stdout")).unwrap(),
        "before the error\n"
    );
    let stderr = std::fs::read_to_string(dir.join("rh/runs/b/stderr")).unwrap();
    assert!(
        stderr.contains("Traceback") && stderr.contains("ValueError: no good: 7"),
        "{stderr}"
    );
    rh(dir, &["call", "multi/unencodable", "--run-name", "u"]);
    let c = config(dir, "u");
    assert_eq!(c["error"]["kind"], "failed", "{c}");
    assert!(
        c["error"]["message"]
            .as_str()
            .unwrap()
            .contains("is not JSON"),
        "{c}"
    );
    rh_ok(dir, &["call", "multi/twice", "\"x\"", "--run-name", "t"]);
    let result = std::fs::read_to_string(dir.join("rh/runs/t/result.json")).unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&result).unwrap(),
        json!(["x", "x"])
    );
}

#[test]
fn the_python_pipeline_traces_its_lineage_like_the_rust_pipeline() {
    let tree = |wasm: &str| -> Value {
        let d = tmp();
        let dir = d.path();
        rh_ok(dir, &["deploy", wasm, "--name", "pipeline"]);
        std::fs::write(dir.join("data.csv"), "x,y\n1,2\n2,4\n3,6\n# end\n").unwrap();
        rh_ok(dir, &["artifacts", "put", "dataset", "data.csv"]);
        rh_ok(
            dir,
            &[
                "call",
                "pipeline/preprocess",
                "\"dataset\"",
                "--run-name",
                "prep",
            ],
        );
        rh_ok(dir, &["call", "pipeline/train", "3", "--run-name", "train"]);
        let out = rh_ok(
            dir,
            &[
                "call",
                "pipeline/export",
                "\"json\"",
                "--run-name",
                "export",
            ],
        );
        assert!(out.contains("slope"), "{out}");
        serde_json::from_str(&rh_ok(dir, &["lineage", "model-export", "--json"])).unwrap()
    };
    // Digests differ (the two write their JSON differently); the shape,
    // names, functions and statuses do not.
    fn shape(v: &Value) -> Value {
        match v {
            Value::Object(m) => Value::Object(
                m.iter()
                    .filter(|(k, _)| k.as_str() != "digest")
                    .map(|(k, v)| (k.clone(), shape(v)))
                    .collect(),
            ),
            Value::Array(a) => Value::Array(a.iter().map(shape).collect()),
            other => other.clone(),
        }
    }
    let python = tree(built("pipeline").to_str().unwrap());
    let rust = tree(&wasm("pipeline"));
    assert_eq!(shape(&python), shape(&rust));
    assert_eq!(python["upstream"][0]["what"], "pipeline/export", "{python}");
}

#[test]
fn bad_python_files_are_refused_before_anything_is_built() {
    let d = tmp();
    let dir = d.path();
    let cases: &[(&str, &str, &str)] = &[
        ("none.py", "def f(x):\n    return x\n", "has no @function"),
        (
            "star.py",
            "from rh_guest import function\n@function\ndef f(*xs):\n    return xs\n",
            "@function f takes *xs",
        ),
        (
            "kw.py",
            "from rh_guest import function\n@function\ndef f(**kw):\n    return kw\n",
            "@function f takes **kw",
        ),
        ("broken.py", "def f(:\n", "broken.py:1"),
        (
            "class.py",
            "from rh_guest import function\n@function\ndef f(x):\n    return x\n",
            "is a Python keyword",
        ),
    ];
    for (file, text, needle) in cases {
        std::fs::write(dir.join(file), text).unwrap();
        let err = rh_err(dir, &["build", file], 2);
        assert!(err.contains(needle), "{file}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
    let err = rh_err(dir, &["build", "missing.py"], 2);
    assert!(err.contains("missing.py: no such file"), "{err}");
    let err = rh_err(dir, &["build", "notes.txt"], 2);
    assert!(err.contains("expected a Python file"), "{err}");
    // Nothing was built.
    let wasm: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "wasm"))
        .collect();
    assert!(wasm.is_empty(), "{wasm:?}");
}

#[test]
fn run_python_runs_statements_in_one_interpreter_as_one_command_run() {
    let d = tmp();
    let dir = d.path();
    // Before the interpreter is there: how to install it, in one line.
    let err = rh_err(dir, &["run-python", "--", "print(1)"], 2);
    assert!(err.contains("rh-wasm python install"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let out = rh_ok(dir, &["python", "install"]);
    assert!(
        out.contains("installed the Python interpreter on `local` as `python`"),
        "{out}"
    );

    // The seed's example: statements share their globals, each recorded.
    let statements = [
        "import pickle",
        "import logging",
        "import asyncio, csv, datetime, decimal, json, re, statistics, unittest, xml.etree.ElementTree",
        "data = pickle.dumps({'a': 1})",
        "print('loaded', pickle.loads(data))",
        "import sys; print('to stderr', file=sys.stderr)",
    ];
    let out = rh_ok(
        dir,
        &[
            &[
                "run-python",
                "--run-name",
                "my_cli_run",
                "--tag",
                "k=v",
                "--",
            ][..],
            &statements,
        ]
        .concat(),
    );
    assert_eq!(out, "loaded {'a': 1}\n");
    let c = config(dir, "my_cli_run");
    assert_eq!(c["run_type"], "command", "{c}");
    assert_eq!(c["status"], "completed", "{c}");
    assert_eq!(c["tags"], json!({"k": "v"}));
    let cmds = c["cmds"].as_array().unwrap();
    assert_eq!(cmds.len(), statements.len());
    for (cmd, s) in cmds.iter().zip(statements) {
        assert_eq!(cmd["cmd"], "python");
        assert_eq!(cmd["args"], json!([s]));
        assert_eq!(cmd["exit_code"], 0);
    }
    let run = dir.join("rh/runs/my_cli_run");
    assert_eq!(
        std::fs::read_to_string(run.join("stdout")).unwrap(),
        "loaded {'a': 1}\n"
    );
    assert_eq!(
        std::fs::read_to_string(run.join("stderr")).unwrap(),
        "to stderr\n"
    );
    assert!(!run.join("result.json").exists());

    // An exception: the Run ends python_exception, later statements are
    // skipped, output before it is kept, the traceback is in stderr.
    let o = rh(
        dir,
        &[
            "run-python",
            "--run-name",
            "bad",
            "--",
            "print('before')",
            "1 / 0",
            "print('after')",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    let c = config(dir, "bad");
    assert_eq!(c["status"], "error");
    assert_eq!(c["error"]["kind"], "python_exception");
    assert_eq!(
        c["error"]["message"],
        "statement 2: ZeroDivisionError: division by zero"
    );
    let codes: Vec<Value> = c["cmds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["exit_code"].clone())
        .collect();
    assert_eq!(codes, [json!(0), json!(1), Value::Null]);
    assert_eq!(
        std::fs::read_to_string(dir.join("rh/runs/bad/stdout")).unwrap(),
        "before\n"
    );
    let stderr = std::fs::read_to_string(dir.join("rh/runs/bad/stderr")).unwrap();
    assert!(
        stderr.contains("Traceback") && stderr.contains("ZeroDivisionError"),
        "{stderr}"
    );
    // --keep-going runs the rest.
    let o = rh(
        dir,
        &[
            "run-python",
            "--keep-going",
            "--run-name",
            "kg",
            "--",
            "1 / 0",
            "print('after')",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    let c = config(dir, "kg");
    let codes: Vec<Value> = c["cmds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["exit_code"].clone())
        .collect();
    assert_eq!(codes, [json!(1), json!(0)]);
    assert_eq!(
        std::fs::read_to_string(dir.join("rh/runs/kg/stdout")).unwrap(),
        "after\n"
    );
    // A statement that does not parse names itself.
    rh(
        dir,
        &["run-python", "--run-name", "syn", "--", "x = 1", "def (:"],
    );
    let c = config(dir, "syn");
    assert_eq!(c["error"]["kind"], "python_exception");
    assert!(
        c["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("statement 2: SyntaxError"),
        "{c}"
    );
    // A spinning statement ends by its timeout like any Run.
    let o = rh(
        dir,
        &[
            "run-python",
            "--timeout",
            "1s",
            "--run-name",
            "spin",
            "--",
            "while True: pass",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(config(dir, "spin")["error"]["kind"], "timeout");
    // `rh.artifacts`: saved and loaded, traced as for any Run.
    rh_ok(
        dir,
        &[
            "run-python",
            "--run-name",
            "saver",
            "--",
            "import rh",
            "rh.artifacts.save('notes', 'hi')",
        ],
    );
    let out = rh_ok(
        dir,
        &[
            "run-python",
            "--run-name",
            "loader",
            "--",
            "import rh",
            "print(rh.artifacts.load('notes').decode())",
        ],
    );
    assert_eq!(out, "hi\n");
    assert_eq!(
        config(dir, "saver")["downstream_artifacts"][0]["name"],
        "notes"
    );
    assert_eq!(
        config(dir, "loader")["upstream_artifacts"][0]["name"],
        "notes"
    );
    // The Run's scratch folder is the working directory, kept in the Run
    // folder; nothing else of the host is there.
    let out = rh_ok(
        dir,
        &[
            "run-python",
            "--run-name",
            "files",
            "--",
            "open('notes.txt', 'w').write('kept')",
            "import os; print(sorted(os.listdir('.')))",
        ],
    );
    assert_eq!(out, "['notes.txt']\n");
    assert_eq!(
        std::fs::read_to_string(dir.join("rh/runs/files/scratch/notes.txt")).unwrap(),
        "kept"
    );
    // sys.exit ends the script: 0 completes, any other code is the error.
    let out = rh_ok(
        dir,
        &[
            "run-python",
            "--run-name",
            "ex0",
            "--",
            "print('a')",
            "import sys; sys.exit()",
            "print('b')",
        ],
    );
    assert_eq!(out, "a\n");
    let codes: Vec<Value> = config(dir, "ex0")["cmds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["exit_code"].clone())
        .collect();
    assert_eq!(codes, [json!(0), json!(0), Value::Null]);
    rh(
        dir,
        &[
            "run-python",
            "--run-name",
            "ex3",
            "--keep-going",
            "--",
            "raise SystemExit(3)",
            "print('b')",
        ],
    );
    let c = config(dir, "ex3");
    assert_eq!(c["error"]["message"], "statement 1: SystemExit: 3", "{c}");
    assert_eq!(c["cmds"][0]["exit_code"], 3);
    assert!(c["cmds"][1]["exit_code"].is_null());
    // A script from a file is one statement.
    std::fs::write(
        dir.join("s.py"),
        "total = 0\nfor i in range(4):\n    total += i\nprint(total)\n",
    )
    .unwrap();
    assert_eq!(rh_ok(dir, &["run-python", "--file", "s.py"]), "6\n");

    // Bad requests store nothing.
    let before = snapshot(&dir.join("rh"));
    for (args, needle) in [
        (&["run-python"][..], "no statements"),
        (&["run-python", "--file", "nope.py"][..], "nope.py"),
        (
            &["run-python", "--", "print(1)", "   "][..],
            "statement 2 is empty",
        ),
    ] {
        let err = rh_err(dir, args, 2);
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    // `python` is the interpreter's name only.
    let err = rh_err(
        dir,
        &[
            "deploy",
            built("summer").to_str().unwrap(),
            "--name",
            "python",
        ],
        2,
    );
    assert!(err.contains("reserved for the Python interpreter"), "{err}");
    assert!(
        before == snapshot(&dir.join("rh")),
        "a refused request changed the store"
    );
}

#[test]
fn run_python_on_a_daemon_streams_its_output() {
    let d = Daemon::start_with(&["--scratch-limit", "1MiB"]);
    let out = d.rh_ok(&["python", "install", "--cluster", "cpu"]);
    assert!(out.contains("on `cpu`"), "{out}");
    let out = d.rh_ok(&[
        "run-python",
        "--cluster",
        "cpu",
        "--run-name",
        "r",
        "--",
        "x = 20",
        "print(x + 1)",
    ]);
    assert_eq!(out, "21\n");
    let c = d.config("r");
    assert_eq!(c["run_type"], "command", "{c}");
    assert_eq!(d.stdout("r"), "21\n");
    let v = d.json(
        "POST",
        "/v1/python",
        &json!({"statements": ["print('over http')"], "run_name": "h"}),
    );
    assert_eq!(v["run_name"], "h", "{v}");
    let v = d.json("GET", "/v1/runs/h/wait", &Value::Null);
    assert_eq!(v["status"], "completed", "{v}");
    assert_eq!(d.stdout("h"), "over http\n");
    let (status, _) = d.http(
        "POST",
        "/v1/python",
        Some(&d.token()),
        br#"{"statements": []}"#,
    );
    assert_eq!(status, 400);
    // Its scratch folder is held to the daemon's scratch limit.
    d.rh(&[
        "run-python",
        "--cluster",
        "cpu",
        "--run-name",
        "fill",
        "--",
        "open('big', 'wb').write(b'x' * (4 << 20))",
    ]);
    let c = d.config("fill");
    assert_eq!(c["error"]["kind"], "disk_limit", "{c}");
    // A spinning statement is cancelled promptly; what it printed before
    // reached the Run's stdout as it was printed (line by line).
    let v = d.json(
        "POST",
        "/v1/python",
        &json!({"statements": ["x = 1", "print('spinning')\nwhile True: pass"], "run_name": "spin"}),
    );
    assert_eq!(v["status"], "running", "{v}");
    wait_until(30, "the spinning Run printed", || {
        d.stdout("spin") == "spinning\n"
    });
    let t = std::time::Instant::now();
    let v = d.json("POST", "/v1/runs/spin/cancel", &Value::Null);
    assert_eq!(v["status"], "cancelled", "{v}");
    assert!(
        t.elapsed() < std::time::Duration::from_secs(2),
        "{:?}",
        t.elapsed()
    );
    let c = d.config("spin");
    assert_eq!(c["status"], "cancelled", "{c}");
    assert_eq!(c["cmds"][0]["cmd"], "python", "{c}");
}
