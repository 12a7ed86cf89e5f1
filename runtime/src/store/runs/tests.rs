//! Tests of the run store: claims, spares, folders made ahead, journals
//! and recovery.

use super::*;
use crate::config::RunStatus;
use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

fn ino(p: &Path) -> u64 {
    fs::metadata(p).unwrap().ino()
}

fn entries(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with(prefix))
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn claim_and_finish(store: &RunStore, name: &str) -> PathBuf {
    let mut c = RunConfig::function(name.into(), "local".into());
    let claimed = match store.claim(&mut c, Some(b"[1,2]")) {
        Ok(c) => c,
        Err(_) => panic!("claim of {name} failed"),
    };
    store.write_result(&claimed.dir, b"3").unwrap();
    c.status = RunStatus::Completed;
    store.finish(&c).unwrap();
    claimed.dir
}

/// A run store on `root` with its index, as the runtime opens one.
fn open_store(root: &Path, runs: std::path::PathBuf, ahead: usize) -> Result<RunStore> {
    let index = crate::store::index::Index::open(root, &runs)?;
    RunStore::open(root, runs, false, ahead, index)
}

/// Note about 1.3 MiB of Runs starting and ending on `store`'s host: past
/// the size at which a journal with nothing open starts afresh.
fn grow_journal(store: &RunStore) {
    let host = store.host.get().unwrap();
    let long = "f".repeat(100);
    for n in 0..6000 {
        let name = format!("{long}-{n}");
        host.note('+', &name);
        host.note('-', &name);
    }
}

/// Whether a store opened on `root` now marks `run` interrupted, as it
/// does a Run left unfinished by a host that died.
fn interrupted_after_restart(root: &Path, run: &str) -> bool {
    let store = open_store(root, root.join("runs"), 0).unwrap();
    let c = store.load(run).unwrap();
    c.status == RunStatus::Error && c.error.is_some_and(|e| e.kind == "interrupted")
}

#[test]
fn ending_another_hosts_run_keeps_this_hosts_open_runs_in_its_journal() {
    let d = tempfile::tempdir().unwrap();
    let open = || open_store(d.path(), d.path().join("runs"), 0).unwrap();
    // Two processes on one root: host A opened a scope, host B runs a
    // Run of its own and ends A's scope (as `end_scope` from B does).
    let a = open();
    let b = open();
    let mut scope = RunConfig::function("scope".into(), "local".into());
    let _scope = a.claim(&mut scope, None).ok().unwrap();
    let mut mine = RunConfig::function("mine".into(), "local".into());
    let _mine = b.claim(&mut mine, Some(b"[1]")).ok().unwrap();
    scope.status = RunStatus::Completed;
    b.finish(&scope).unwrap();
    grow_journal(&b);
    let id = b.host_id().unwrap().to_string();
    let journal = fs::read_to_string(d.path().join(format!("hosts/{id}.runs"))).unwrap();
    assert!(journal.contains("+mine\n"), "B's open Run left its journal");
    assert!(
        !journal.contains("-scope\n"),
        "B ended a Run it did not start"
    );
    // B dies: its Run is recovered, A's scope is left as it was.
    drop(b);
    assert!(interrupted_after_restart(d.path(), "mine"));
    assert_eq!(a.load("scope").unwrap().status, RunStatus::Completed);
}

#[test]
fn a_lost_claim_of_a_name_this_host_runs_keeps_that_run_open() {
    let d = tempfile::tempdir().unwrap();
    let b = open_store(d.path(), d.path().join("runs"), 0).unwrap();
    let mut mine = RunConfig::function("mine".into(), "local".into());
    let _mine = b.claim(&mut mine, Some(b"[1]")).ok().unwrap();
    // A second claim of the name (two identical calls in one process)
    // notes it and takes it back: the first is still open.
    let mut again = RunConfig::function("mine".into(), "local".into());
    assert!(matches!(
        b.claim(&mut again, Some(b"[1]")),
        Err(ClaimError::Exists(_))
    ));
    grow_journal(&b);
    drop(b);
    assert!(interrupted_after_restart(d.path(), "mine"));
}

#[test]
fn finishing_swaps_the_record_and_keeps_the_old_one_as_a_spare() {
    let d = tempfile::tempdir().unwrap();
    let store = open_store(d.path(), d.path().join("runs"), 0).unwrap();
    let mut c = RunConfig::function("r1".into(), "local".into());
    let claimed = store.claim(&mut c, Some(b"[1,2]")).ok().unwrap();
    let running = ino(&claimed.dir.join(CONFIG));
    c.status = RunStatus::Completed;
    store.finish(&c).unwrap();
    let done = store.load("r1").unwrap();
    assert_eq!(done.status, RunStatus::Completed);
    assert_ne!(
        ino(&claimed.dir.join(CONFIG)),
        running,
        "a new file holds the new record"
    );
    // The running record was not freed: it is this host's spare now.
    let host = store.host.get().unwrap();
    let spares = entries(
        &d.path().join("hosts").join(format!("{}.spare", host.id)),
        "",
    );
    assert_eq!(spares.len(), 1, "{spares:?}");
    assert_eq!(ino(&spares[0]), running);
    let old: RunConfig = serde_json::from_slice(&fs::read(&spares[0]).unwrap()).unwrap();
    assert_eq!(old.status, RunStatus::Running);
    // Nothing temporary is left in the Run's folder.
    let mut files: Vec<_> = fs::read_dir(&claimed.dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(files, ["config.json", "inputs.json", "stderr", "stdout"]);
}

#[test]
fn runs_take_folders_and_files_made_ahead() {
    let d = tempfile::tempdir().unwrap();
    let store = open_store(d.path(), d.path().join("runs"), 4).unwrap();
    // The first claim starts the host, and with it the thread.
    claim_and_finish(&store, "first");
    let ahead = store.host.get().unwrap().ahead.clone().unwrap();
    wait_for("4 prepared folders and files", || {
        let (d, f) = ahead.ready();
        d.len() == 4 && f.len() == 4
    });
    let (d_ready, _) = ahead.ready();
    let folders: HashSet<u64> = d_ready.iter().map(|p| ino(p)).collect();
    // Every file this host holds ready: new spares, and the first Run's
    // old record once it has rested.
    let hosts = d.path().join("hosts");
    let mut spares = HashSet::new();
    for sub in entries(&hosts, "") {
        for f in entries(&sub, "") {
            if f.is_file() {
                spares.insert(ino(&f));
            }
        }
    }
    let dir = claim_and_finish(&store, "second");
    assert!(
        folders.contains(&ino(&dir)),
        "the Run's folder was made ahead"
    );
    assert!(
        spares.contains(&ino(&dir.join(RESULT))),
        "result.json was a file made before the call"
    );
    let run = store.load("second").unwrap();
    assert_eq!(run.status, RunStatus::Completed);
    assert_eq!(fs::read(dir.join(INPUTS)).unwrap(), b"[1,2]");
    assert_eq!(fs::read(dir.join(RESULT)).unwrap(), b"3");
    assert_eq!(fs::read(dir.join(STDOUT)).unwrap(), b"");
    // The thread makes up what was taken.
    wait_for("the pool refilled", || ahead.ready().0.len() == 4);
}

#[test]
fn a_lost_claim_gives_its_prepared_folder_back() {
    let d = tempfile::tempdir().unwrap();
    let store = open_store(d.path(), d.path().join("runs"), 2).unwrap();
    claim_and_finish(&store, "taken");
    let ahead = store.host.get().unwrap().ahead.clone().unwrap();
    wait_for("2 prepared folders", || ahead.ready().0.len() == 2);
    let before: HashSet<u64> = ahead.ready().0.iter().map(|p| ino(p)).collect();
    let mut c = RunConfig::function("taken".into(), "local".into());
    match store.claim(&mut c, Some(b"[9]")) {
        Err(ClaimError::Exists(existing)) => assert_eq!(existing.status, RunStatus::Completed),
        _ => panic!("a second claim of one name must fail"),
    }
    let after: HashSet<u64> = ahead.ready().0.iter().map(|p| ino(p)).collect();
    // The thread may have made one more meanwhile; none may be lost.
    assert!(before.is_subset(&after), "{before:?} {after:?}");
    for dir in ahead.ready().0 {
        for f in super::ahead::FOLDER_FILES {
            assert_eq!(fs::read(dir.join(f)).unwrap(), b"", "{dir:?}/{f} emptied");
        }
    }
    assert_eq!(
        fs::read(d.path().join("runs/taken").join(INPUTS)).unwrap(),
        b"[1,2]"
    );
}

#[test]
fn a_dead_hosts_spares_prepared_folders_and_trash_are_removed() {
    let d = tempfile::tempdir().unwrap();
    let id = {
        let store = open_store(d.path(), d.path().join("runs"), 2).unwrap();
        claim_and_finish(&store, "one");
        let host = store.host.get().unwrap();
        let ahead = host.ahead.clone().unwrap();
        wait_for("prepared folders", || ahead.ready().0.len() == 2);
        assert!(!entries(&d.path().join("hosts"), &host.id).is_empty());
        host.id.clone()
    };
    // A Run this host was deleting when it died, and one another host is.
    let pid = id.split('-').next().unwrap();
    let ours = d.path().join(format!("runs/.trash-a-b-run-{pid}-7"));
    let theirs = d.path().join("runs/.trash-a-b-run-1-7");
    for t in [&ours, &theirs] {
        fs::create_dir_all(t).unwrap();
        fs::write(t.join(STDOUT), b"x").unwrap();
    }
    // The store is dropped, its lock with it: the host is dead.
    open_store(d.path(), d.path().join("runs"), 0).unwrap();
    assert!(entries(&d.path().join("hosts"), &id).is_empty());
    assert!(!ours.exists(), "the dead host's trash is removed");
    assert!(theirs.exists(), "another host's is not");
    assert_eq!(
        load_config(&d.path().join("runs/one")).unwrap().status,
        RunStatus::Completed
    );
}

#[test]
fn a_dead_hosts_journal_is_read_from_its_checkpoint_in_the_same_epoch_only() {
    use super::hosts::names_after as after;
    let text = "+a\n-a\n+b\n-b\n+c\n";
    assert_eq!(after(text, None), ["a", "b", "c"]);
    // Every line before offset 6 (`+b`) is indexed.
    assert_eq!(after(text, Some((0, 6))), ["b", "c"]);
    // The journal started afresh since: its header says epoch 1.
    let restarted = "#1\n+d\n";
    assert_eq!(after(restarted, Some((0, 6))), ["d"]);
    assert_eq!(after(restarted, Some((1, 3))), ["d"]);
    assert!(after(restarted, Some((1, 6))).is_empty());
}
