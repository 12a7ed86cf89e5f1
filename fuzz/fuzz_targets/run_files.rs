//! The reader of Run folders behind `GET /v1/runs/{run}/files[/{path}]`,
//! `pull`, `push` and the result cache: a `scratch/` tree shaped by the
//! input (folders, files, and symlinks pointing anywhere, out of the folder
//! included) is listed and read by paths the input names. Nothing outside
//! the Run folder is ever listed or read, every listed path is a plain
//! relative path to a regular file, and each can be read.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::Path;

const SECRET: &[u8] = b"outside the run folder";

/// A name from one input byte: few enough that the tree's parts meet.
fn name(b: u8) -> &'static str {
    ["a", "b", "c", "d", "e", ".f", "x y", "scratch"][(b % 8) as usize]
}

fn build(dir: &Path, data: &[u8]) {
    let scratch = dir.join("scratch");
    std::fs::create_dir_all(&scratch).unwrap();
    std::fs::write(dir.join("stdout"), "out").unwrap();
    for op in data.chunks(3) {
        let [kind, a, b] = [op[0], *op.get(1).unwrap_or(&0), *op.get(2).unwrap_or(&0)];
        let at = scratch.join(name(a)).join(name(b));
        let at = if kind & 8 == 0 { scratch.join(name(a)) } else { at };
        let _ = match kind % 4 {
            0 => std::fs::create_dir_all(&at),
            1 => std::fs::write(&at, [a, b]),
            2 => std::os::unix::fs::symlink(
                ["../..", "../../secret", "/", "..", "a", "/proc/self"][(b % 6) as usize],
                &at,
            ),
            _ => std::fs::remove_file(&at).or_else(|_| std::fs::remove_dir_all(&at)),
        };
    }
}

fuzz_target!(|data: &[u8]| {
    let (tree, paths) = data.split_at(data.len() / 2);
    let top = tempfile::tempdir().unwrap();
    std::fs::write(top.path().join("secret"), SECRET).unwrap();
    let run = top.path().join("run");
    std::fs::create_dir(&run).unwrap();
    build(&run, tree);
    let dir = rh_runtime::RunDir::open(&run).unwrap();
    for p in dir.files().unwrap() {
        assert!(rh_runtime::is_plain_relative(&p), "{p:?}");
        let meta = std::fs::symlink_metadata(run.join(&p)).unwrap();
        assert!(meta.is_file(), "{p:?} is listed but is not a regular file");
        let bytes = dir.read(&p).unwrap();
        assert_ne!(bytes, SECRET, "{p:?}");
    }
    // Any path the input names: a regular file inside, or refused.
    let text = String::from_utf8_lossy(paths);
    for p in text.split('\n') {
        if let Ok(bytes) = dir.read(p) {
            assert_ne!(bytes, SECRET, "{p:?} read outside");
        }
        if let Ok(bytes) = dir.read(&format!("scratch/{p}")) {
            assert_ne!(bytes, SECRET, "scratch/{p:?} read outside");
        }
    }
});
