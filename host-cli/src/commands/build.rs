//! `build app.py [-o app.wasm]`: a function component from a Python file
//! whose functions are decorated `@function` (the guest SDK in
//! `guest-sdk/python/`), made by componentize-py against `wit/`.
//!
//! The file is read first, without running it (`check.py`): a file with no
//! `@function`, or one taking `*args`, is refused before anything is built.
//! Then a folder holds what componentize-py needs: the WIT, the SDK and a
//! main module that imports the file and the SDK's export (the file itself
//! needs no boilerplate). componentize-py is found on the PATH, or in
//! `~/.cache/rh-wasm/py`, where it is installed from PyPI the first time
//! (`RH_COMPONENTIZE_PY` names another).

use crate::errors::UsageError;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

const WIT: &str = include_str!("../../../wit/rh-wasm.wit");
const SDK: &str = include_str!("../../../guest-sdk/python/rh_guest/__init__.py");
const SDK_COMPONENT: &str = include_str!("../../../guest-sdk/python/rh_guest/component.py");
const CHECK: &str = include_str!("../../../guest-sdk/python/check.py");
/// The componentize-py installed when there is none.
const COMPONENTIZE_PY: &str = "componentize-py==0.25.1";

#[derive(serde::Deserialize)]
struct Checked {
    error: Option<String>,
    #[serde(default)]
    functions: Vec<Found>,
}

#[derive(serde::Deserialize, serde::Serialize)]
struct Found {
    name: String,
    params: Vec<String>,
}

fn python() -> Result<PathBuf> {
    for p in ["python3", "python"] {
        if Command::new(p)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return Ok(PathBuf::from(p));
        }
    }
    bail!(UsageError(
        "building a Python function needs python3 on the PATH".into()
    ))
}

/// The folder where componentize-py is installed when the PATH has none.
fn venv() -> Result<PathBuf> {
    let cache = match std::env::var_os("XDG_CACHE_HOME") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(std::env::var_os("HOME").context("HOME is not set")?).join(".cache"),
    };
    Ok(cache.join("rh-wasm").join("py").join("venv"))
}

/// Make the component of Python module `module` (found in `dir`), with
/// the SDK and a main module that imports it, at `out`; the last line of
/// what went wrong (a traceback's) when it cannot.
pub fn componentize(module: &str, dir: &Path, out: &Path) -> Result<()> {
    let work = tempfile::tempdir().context("making a folder to build in")?;
    let w = work.path();
    let write = |rel: &str, text: &str| -> Result<()> {
        let p = w.join(rel);
        std::fs::create_dir_all(p.parent().expect("a parent"))?;
        std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))
    };
    write("wit/rh-wasm.wit", WIT)?;
    write("sdk/rh_guest/__init__.py", SDK)?;
    write("sdk/rh_guest/component.py", SDK_COMPONENT)?;
    write(
        "main/rh_main.py",
        &format!(
            "import {module}  # noqa: F401\nfrom rh_guest.component import Function  # noqa: F401\n"
        ),
    )?;
    let tool = componentize_py()?;
    let made = Command::new(&tool)
        .arg("-d")
        .arg(w.join("wit"))
        .args(["-w", "guest", "componentize", "rh_main"])
        // Ours first: a file in the user's folder named like them
        // (`rh_main.py`, `rh_guest/`) must not stand in for them.
        .arg("-p")
        .arg(w.join("main"))
        .arg("-p")
        .arg(w.join("sdk"))
        .arg("-p")
        .arg(dir)
        .arg("-o")
        .arg(out)
        .output()
        .with_context(|| format!("running {}", tool.display()))?;
    if !made.status.success() {
        // A traceback's last line says what was wrong with the file.
        let err = String::from_utf8_lossy(&made.stderr);
        let last = err
            .trim()
            .lines()
            .last()
            .unwrap_or("componentize-py failed");
        bail!("{last}");
    }
    Ok(())
}

/// componentize-py: `RH_COMPONENTIZE_PY`, the PATH, or our own install
/// (made now if missing).
pub fn componentize_py() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("RH_COMPONENTIZE_PY") {
        return Ok(PathBuf::from(p));
    }
    let runs = |p: &Path| {
        Command::new(p)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if runs(Path::new("componentize-py")) {
        return Ok(PathBuf::from("componentize-py"));
    }
    let venv = venv()?;
    let bin = venv.join("bin").join("componentize-py");
    if runs(&bin) {
        return Ok(bin);
    }
    eprintln!(
        "installing {COMPONENTIZE_PY} into {} (once) ...",
        venv.display()
    );
    let py = python()?;
    let ok = |c: &mut Command, what: &str| -> Result<()> {
        let out = c.output().with_context(|| what.to_string())?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            let last = err.trim().lines().last().unwrap_or("").to_string();
            bail!("{what} failed: {last}");
        }
        Ok(())
    };
    ok(
        Command::new(&py).args(["-m", "venv"]).arg(&venv),
        "making a virtual environment for componentize-py",
    )?;
    ok(
        Command::new(venv.join("bin").join("pip")).args(["install", "-q", COMPONENTIZE_PY]),
        "installing componentize-py from PyPI",
    )?;
    Ok(bin)
}

pub async fn build(file: &Path, out: Option<PathBuf>, json: bool) -> Result<ExitCode> {
    let module = file
        .file_stem()
        .and_then(|s| s.to_str())
        .filter(|_| file.extension().is_some_and(|e| e == "py"))
        .ok_or_else(|| {
            UsageError(format!(
                "{}: expected a Python file (NAME.py)",
                file.display()
            ))
        })?
        .to_string();
    if !file.is_file() {
        bail!(UsageError(format!("{}: no such file", file.display())));
    }
    if module.starts_with(|c: char| c.is_ascii_digit())
        || !module
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
        || module == "rh_guest"
        || module == "rh_main"
    {
        bail!(UsageError(format!(
            "{}: the file's name must be a Python module name (letters, digits, _), \
             not rh_guest or rh_main",
            file.display()
        )));
    }
    let work = tempfile::tempdir().context("making a folder to build in")?;
    let w = work.path();
    let write = |rel: &str, text: &str| -> Result<()> {
        let p = w.join(rel);
        std::fs::create_dir_all(p.parent().expect("a parent"))?;
        std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))
    };
    write("check.py", CHECK)?;
    let out_check = Command::new(python()?)
        .arg(w.join("check.py"))
        .arg(file)
        .output()
        .context("reading the Python file")?;
    let checked: Checked = serde_json::from_slice(&out_check.stdout).with_context(|| {
        format!(
            "reading {}: {}",
            file.display(),
            String::from_utf8_lossy(&out_check.stderr).trim()
        )
    })?;
    if let Some(e) = checked.error {
        bail!(UsageError(e));
    }
    let out = out.unwrap_or_else(|| PathBuf::from(format!("{module}.wasm")));
    let dir = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    componentize(&module, dir, &out)
        .map_err(|e| UsageError(format!("building {}: {e:#}", file.display())))?;
    let size = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
    if json {
        crate::output::print_json(&serde_json::json!({
            "path": out, "bytes": size, "functions": checked.functions,
        }));
    } else {
        println!(
            "built {} ({}) from {}",
            out.display(),
            rh_runtime::format_size(size),
            file.display()
        );
        for f in &checked.functions {
            println!("  {}({})", f.name, f.params.join(", "));
        }
    }
    Ok(ExitCode::SUCCESS)
}
