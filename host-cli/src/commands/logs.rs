//! `logs`: print a Run's stdout or stderr, and with `--follow` keep printing
//! as the guest writes until the Run ends.

use crate::cli::RunRef;
use crate::cluster;
use anyhow::{Context, Result};
use std::io::{Read, Seek, SeekFrom, Write};
use std::process::ExitCode;
use std::time::Duration;

pub async fn logs(r: &RunRef, follow: bool, stderr: bool) -> Result<ExitCode> {
    let (c, name) = cluster::cluster_and_run(&r.args, &r.cluster)?;
    let rt = cluster::open(&c)?;
    let run = rt.run(&name)?;
    let path = run.file(if stderr { "stderr" } else { "stdout" });
    let mut file =
        std::fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
    let mut out = std::io::stdout().lock();
    let mut buf = vec![0u8; 64 << 10];
    let mut pos = 0u64;
    loop {
        // Read whatever is there now; then stop, or wait for more.
        let ended = !follow || run.reload()?.status().is_terminal();
        file.seek(SeekFrom::Start(pos))?;
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            pos += n as u64;
            if let Err(e) = out.write_all(&buf[..n]).and_then(|()| out.flush()) {
                if e.kind() == std::io::ErrorKind::BrokenPipe {
                    return Ok(ExitCode::SUCCESS);
                }
                return Err(e.into());
            }
        }
        if ended {
            return Ok(ExitCode::SUCCESS);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
