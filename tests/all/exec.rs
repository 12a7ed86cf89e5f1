//! Command Runs: several WASI commands in one Run, each exit code recorded,
//! a scratch directory of their own, limits and cancel, locally and on a
//! daemon.

use crate::util::*;

#[test]
fn commands_run_in_order_and_share_a_scratch_dir() {
    let d = tmp();
    let wc = wasm("wordcount");
    let out = rh_ok(
        d.path(),
        &[
            "exec",
            "--run-name",
            "wc",
            "--",
            &wc,
            "write",
            "notes.txt",
            "the",
            "quick",
            "fox",
            "--",
            &wc,
            "count",
            "notes.txt",
        ],
    );
    assert_eq!(
        out,
        "wrote 3 words to notes.txt\nnotes.txt: 3 words\n[0,0]\n"
    );
    let c = config(d.path(), "wc");
    assert_eq!(c["run_type"], "command");
    assert_eq!(c["status"], "completed");
    assert_eq!(c["cmds"].as_array().unwrap().len(), 2);
    assert_eq!(
        c["cmds"][0]["args"],
        serde_json::json!(["write", "notes.txt", "the", "quick", "fox"])
    );
    assert_eq!(c["cmds"][0]["exit_code"], 0);
    assert_eq!(c["cmds"][1]["exit_code"], 0);
    assert_eq!(run_file(d.path(), "wc", "result.json"), "[0,0]");
    // The scratch dir is kept in the Run folder.
    assert_eq!(
        run_file(d.path(), "wc", "scratch/notes.txt"),
        "the quick fox\n"
    );
    assert_eq!(
        run_file(d.path(), "wc", "stdout"),
        "wrote 3 words to notes.txt\nnotes.txt: 3 words\n"
    );
}

#[test]
fn a_failing_command_stops_the_run_and_every_exit_code_is_recorded() {
    let d = tmp();
    let k = wasm("cmdkit");
    let err = rh_err(
        d.path(),
        &[
            "exec",
            "--run-name",
            "bad",
            "--",
            &k,
            "say",
            "first",
            "--",
            &k,
            "exit",
            "3",
            "--",
            &k,
            "say",
            "never",
        ],
        1,
    );
    assert!(err.contains("command 2"), "{err}");
    let c = config(d.path(), "bad");
    assert_eq!(c["status"], "error");
    assert_eq!(c["error"]["kind"], "exit_code");
    let codes: Vec<_> = c["cmds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["exit_code"].clone())
        .collect();
    assert_eq!(
        codes,
        [
            serde_json::json!(0),
            serde_json::json!(1),
            serde_json::Value::Null
        ]
    );
    let stdout = run_file(d.path(), "bad", "stdout");
    assert!(
        stdout.contains("first") && stdout.contains("exiting with 3"),
        "{stdout}"
    );
    assert!(!stdout.contains("never"), "{stdout}");
    assert!(!d.path().join("rh/runs/bad/result.json").exists());

    // --keep-going runs the rest, and the Run is still an error.
    let cmd = format!("{k} say still");
    rh_err(
        d.path(),
        &[
            "exec",
            "--run-name",
            "kg",
            "--keep-going",
            "--cmd",
            &format!("{k} exit 2"),
            "--cmd",
            &cmd,
        ],
        1,
    );
    let c = config(d.path(), "kg");
    assert_eq!(c["cmds"][0]["exit_code"], 1);
    assert_eq!(c["cmds"][1]["exit_code"], 0);
    assert!(run_file(d.path(), "kg", "stdout").contains("still"));
}

#[test]
fn a_command_sees_nothing_of_the_host() {
    let d = tmp();
    let k = wasm("cmdkit");
    rh_err(
        d.path(),
        &["exec", &k, "read", "/etc/passwd", "--run-name", "etc"],
        1,
    );
    assert!(run_file(d.path(), "etc", "stderr").contains("cannot read /etc/passwd"));
    assert_eq!(run_file(d.path(), "etc", "stdout"), "");
    // Not even the cluster's own files, by a relative path.
    rh_err(
        d.path(),
        &["exec", &k, "read", "../../config.json", "--run-name", "up"],
        1,
    );
    assert!(run_file(d.path(), "up", "stderr").contains("cannot read"));
    let out = rh_ok(d.path(), &["exec", &k, "env", "--run-name", "env"]);
    assert!(out.starts_with("0 vars"), "{out}");
    // Writing lands in the scratch dir, nowhere else.
    rh_ok(
        d.path(),
        &["exec", &k, "write", "/x.txt", "hi", "--run-name", "w"],
    );
    assert_eq!(run_file(d.path(), "w", "scratch/x.txt"), "hi");
}

#[test]
fn commands_obey_limits_and_cancel() {
    let d = tmp();
    let k = wasm("cmdkit");
    let err = rh_err(
        d.path(),
        &[
            "exec",
            "--timeout",
            "300ms",
            "--run-name",
            "t",
            "--",
            &k,
            "spin",
        ],
        1,
    );
    assert!(err.contains("timed out"), "{err}");
    assert_eq!(config(d.path(), "t")["error"]["kind"], "timeout");
    assert!(run_file(d.path(), "t", "stdout").contains("spinning"));
    let err = rh_err(
        d.path(),
        &[
            "exec",
            "--fuel",
            "2000000",
            "--run-name",
            "f",
            "--",
            &k,
            "spin",
        ],
        1,
    );
    assert!(err.contains("out of fuel"), "{err}");
    // A deployed command by name; a function given as a command is refused.
    deploy(d.path(), "hello_cmd");
    let out = rh_ok(
        d.path(),
        &["exec", "hello_cmd", "a", "b", "--run-name", "named"],
    );
    assert!(out.contains("args: a b"), "{out}");
    deploy(d.path(), "summer");
    let err = rh_err(d.path(), &["exec", "summer", "--run-name", "nope"], 2);
    assert!(err.contains("is a function component"), "{err}");
    assert!(!d.path().join("rh/runs/nope").exists());
}

#[test]
fn exec_on_a_daemon_uploads_files_and_cancels() {
    let d = Daemon::start();
    let wc = wasm("wordcount");
    let out = d.rh_ok(&[
        "exec",
        "--cluster",
        "cpu",
        "--run-name",
        "rwc",
        "--",
        &wc,
        "write",
        "a.txt",
        "one",
        "two",
        "--",
        &wc,
        "count",
        "a.txt",
    ]);
    assert_eq!(out, "wrote 2 words to a.txt\na.txt: 2 words\n[0,0]\n");
    let c = d.config("rwc");
    assert_eq!(c["run_type"], "command");
    assert_eq!(c["cmds"][1]["exit_code"], 0);
    assert_eq!(
        std::fs::read_to_string(d.root.join("logs/rwc/scratch/a.txt")).unwrap(),
        "one two\n"
    );
    let k = wasm("cmdkit");
    let caller = std::process::Command::new(RH)
        .args([
            "exec",
            "--cluster",
            "cpu",
            "--run-name",
            "rspin",
            "--",
            &k,
            "spin",
        ])
        .current_dir(d.client())
        .env("RH_WASM_CONFIG", d.client().join("config.toml"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_until(20, "spinning", || {
        std::fs::read_to_string(d.root.join("logs/rspin/stdout"))
            .unwrap_or_default()
            .contains("spinning")
    });
    assert_eq!(
        d.rh_ok(&["cancel", "cpu", "rspin"]).trim(),
        "rspin cancelled"
    );
    let out = caller.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("spinning"));
    assert_eq!(d.config("rspin")["status"], "cancelled");
}
