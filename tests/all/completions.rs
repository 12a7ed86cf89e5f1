//! `rh-wasm completions SHELL`: a completion script on stdout for bash, zsh
//! and fish, naming the subcommands; any other shell is a usage error.

use crate::util::*;

#[test]
fn completion_scripts_name_the_subcommands_and_bash_parses_its_own() {
    let d = tmp();
    for shell in ["bash", "zsh", "fish"] {
        let script = rh_ok(d.path(), &["completions", shell]);
        assert!(!script.trim().is_empty(), "{shell}: empty script");
        for word in [
            "deploy",
            "call",
            "get-or-call",
            "scope",
            "completions",
            "json",
        ] {
            assert!(script.contains(word), "{shell}: no `{word}` in\n{script}");
        }
        // The hidden worker verb is not for people to type.
        assert!(!script.contains("__worker"), "{shell} offers __worker");
        if shell == "bash" {
            let path = d.path().join("rh-wasm.bash");
            std::fs::write(&path, &script).unwrap();
            let checked = std::process::Command::new("bash")
                .arg("-n")
                .arg(&path)
                .output()
                .unwrap();
            assert!(
                checked.status.success(),
                "bash -n: {}",
                String::from_utf8_lossy(&checked.stderr)
            );
        }
    }
    // Nothing is made where it runs.
    assert!(!d.path().join("rh").exists());
}

#[test]
fn an_unknown_shell_is_a_usage_error() {
    let d = tmp();
    let err = rh_err(d.path(), &["completions", "powershell"], 2);
    assert!(err.contains("invalid value 'powershell'"), "{err}");
    assert!(err.contains("bash, zsh, fish"), "{err}");
    let err = rh_err(d.path(), &["completions"], 2);
    assert!(err.contains("<SHELL>"), "{err}");
}
