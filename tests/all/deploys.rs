//! Deploying on the `local` cluster from several processes at once: each
//! deploy's version is recorded, whichever process writes last.

use crate::util::*;
use std::io::Write;
use std::process::{Command, Stdio};

/// Function and command guests, each a different component.
const DEPLOYED: &[&str] = &[
    "summer",
    "text",
    "progress",
    "pipeline",
    "wordcount",
    "testkit",
    "raw",
    "escape",
];

#[test]
fn concurrent_deploys_of_one_name_from_several_processes_lose_no_version() {
    let d = tmp();
    // Compile every component once, so the deploys below race on the name.
    for g in DEPLOYED {
        rh_ok(
            d.path(),
            &["deploy", guest(g).to_str().unwrap(), "--name", "warm"],
        );
    }
    for round in 0..10 {
        let name = format!("f{round}");
        // Every process waits on its stdin; all are released together.
        let mut children: Vec<_> = DEPLOYED
            .iter()
            .map(|g| {
                Command::new("sh")
                    .args(["-c", "read _ && exec \"$0\" \"$@\""])
                    .arg(RH)
                    .args(["deploy", guest(g).to_str().unwrap(), "--name", &name])
                    .current_dir(d.path())
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for c in &mut children {
            c.stdin.take().unwrap().write_all(b"go\n").unwrap();
        }
        for c in children {
            let out = c.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "deploy failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let record: serde_json::Value = serde_json::from_slice(
            &std::fs::read(d.path().join(format!("rh/functions/names/{name}.json"))).unwrap(),
        )
        .unwrap();
        let mut digests: Vec<&str> = record["versions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["digest"].as_str().unwrap())
            .collect();
        digests.sort();
        digests.dedup();
        assert_eq!(
            digests.len(),
            DEPLOYED.len(),
            "round {round}: {} deploys of {name} recorded {record}",
            DEPLOYED.len()
        );
    }
    // The listing shows each name with every version, and no lock files.
    let listed: serde_json::Value =
        serde_json::from_str(&rh_ok(d.path(), &["functions", "--json"])).unwrap();
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 11, "{listed:?}");
    for f in listed {
        assert_eq!(f["versions"], DEPLOYED.len(), "{f}");
    }
}
