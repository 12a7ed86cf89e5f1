//! `logs`: print a Run's stdout or stderr; with `--follow`, keep printing as
//! the guest writes until the Run ends (a daemon pushes the bytes as they
//! are written; on `local` the Run's file is followed).

use super::{cluster_and_name, run_at_path};
use crate::cli::RunRef;
use crate::cluster;
use anyhow::Result;
use rh_runtime::OutputKind;
use std::process::ExitCode;

pub async fn logs(r: &RunRef, follow: bool, stderr: bool) -> Result<ExitCode> {
    let kind = if stderr {
        OutputKind::Stderr
    } else {
        OutputKind::Stdout
    };
    let printed = match run_at_path(r)? {
        Some(run) => folder_logs(run, kind, follow).await,
        None => {
            let (c, name) = cluster_and_name(&r.args, &r.cluster)?;
            rh_runtime::validate_run_name(&name)?;
            let c = cluster::open(&c)?;
            c.logs(&name, kind, follow, &mut std::io::stdout()).await
        }
    };
    match printed {
        Ok(()) => Ok(ExitCode::SUCCESS),
        // Quietly stop when the reader goes away (`| head`).
        Err(e)
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Err(e),
    }
}

/// Print the output of a Run found by its folder's path; with `follow`,
/// read on as the file grows until its record says the Run has ended.
async fn folder_logs(run: rh_runtime::Run, kind: OutputKind, follow: bool) -> Result<()> {
    use std::io::{Read, Write};
    let path = run.file(match kind {
        OutputKind::Stdout => "stdout",
        OutputKind::Stderr => "stderr",
    });
    let mut file = std::fs::File::open(&path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    let mut out = std::io::stdout();
    let mut buf = vec![0u8; 64 << 10];
    let mut ended = !follow || run.status().is_terminal();
    loop {
        let n = file.read(&mut buf)?;
        if n > 0 {
            out.write_all(&buf[..n])?;
            continue;
        }
        out.flush()?;
        if ended {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        // One more read after the record says it ended: the last bytes.
        ended = run.reload().is_ok_and(|r| r.status().is_terminal());
    }
}
