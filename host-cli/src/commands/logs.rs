//! `logs`: print a Run's stdout or stderr; with `--follow`, keep printing as
//! the guest writes until the Run ends (a daemon pushes the bytes as they
//! are written; on `local` the Run's file is followed).

use super::cluster_and_name;
use crate::cli::RunRef;
use crate::cluster;
use anyhow::Result;
use rh_runtime::OutputKind;
use std::process::ExitCode;

pub async fn logs(r: &RunRef, follow: bool, stderr: bool) -> Result<ExitCode> {
    let (c, name) = cluster_and_name(&r.args, &r.cluster)?;
    rh_runtime::validate_run_name(&name)?;
    let kind = if stderr {
        OutputKind::Stderr
    } else {
        OutputKind::Stdout
    };
    let c = cluster::open(&c)?;
    match c.logs(&name, kind, follow, &mut std::io::stdout()).await {
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
