//! `logs`: print a Run's stdout or stderr; with `--follow`, keep printing as
//! the guest writes until the Run ends. A daemon pushes the bytes as they
//! are written; on `local` the Run's file is followed.

use crate::cli::RunRef;
use crate::cluster::{self, Target};
use anyhow::Result;
use http_body_util::BodyExt;
use hyper::Method;
use rh_runtime::OutputKind;
use std::io::Write;
use std::process::ExitCode;

fn write_out(bytes: &[u8]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)?;
    out.flush()
}

fn done(r: std::io::Result<()>) -> Result<Option<ExitCode>> {
    match r {
        Ok(()) => Ok(None),
        // Quietly stop when the reader goes away (`| head`).
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(Some(ExitCode::SUCCESS)),
        Err(e) => Err(e.into()),
    }
}

pub async fn logs(r: &RunRef, follow: bool, stderr: bool) -> Result<ExitCode> {
    let (c, name) = cluster::cluster_and_run(&r.args, &r.cluster)?;
    rh_runtime::validate_run_name(&name)?;
    let kind = if stderr {
        OutputKind::Stderr
    } else {
        OutputKind::Stdout
    };
    match cluster::open(&c)? {
        Target::Local(rt) => {
            if follow {
                let mut f = rt.follow(&rh_runtime::Caller::host(), &name, kind)?;
                while let Some(chunk) = f.next().await? {
                    if let Some(code) = done(write_out(&chunk))? {
                        return Ok(code);
                    }
                }
            } else {
                let run = rt.run(&rh_runtime::Caller::host(), &name)?;
                let bytes = if stderr { run.stderr()? } else { run.stdout()? };
                if let Some(code) = done(write_out(&bytes))? {
                    return Ok(code);
                }
            }
        }
        Target::Remote(c) => {
            let path = format!(
                "/v1/runs/{name}/logs?stream={}&follow={}",
                if stderr { "stderr" } else { "stdout" },
                u8::from(follow)
            );
            let resp = c
                .send(
                    Method::GET,
                    &path,
                    crate::wire::full(""),
                    "application/json",
                )
                .await?;
            let mut body = resp.into_body();
            while let Some(frame) = body.frame().await {
                if let Ok(data) = frame?.into_data()
                    && let Some(code) = done(write_out(&data))?
                {
                    return Ok(code);
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
