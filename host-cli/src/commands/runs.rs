//! `runs`, `show` and `result`.

use crate::cli::RunRef;
use crate::cluster;
use crate::output::print_json;
use anyhow::Result;
use std::process::ExitCode;

pub fn list(cluster_name: &str, json: bool) -> Result<ExitCode> {
    let rt = cluster::open(cluster_name)?;
    let runs = rt.runs()?;
    if json {
        print_json(&runs);
        return Ok(ExitCode::SUCCESS);
    }
    if runs.is_empty() {
        eprintln!("no runs on `{cluster_name}` yet");
        return Ok(ExitCode::SUCCESS);
    }
    let w = runs.iter().map(|r| r.name.len()).max().unwrap_or(4).max(4);
    println!(
        "{:w$}  {:10}  {:27}  {:27}  FUNCTION",
        "NAME", "STATUS", "START", "END"
    );
    for r in &runs {
        let f = match (&r.function, &r.fn_name) {
            (Some(f), Some(n)) if f.name == *n => f.name.clone(),
            (Some(f), Some(n)) => format!("{}/{n}", f.name),
            _ => String::new(),
        };
        println!(
            "{:w$}  {:10}  {:27}  {:27}  {f}",
            r.name,
            r.status.as_str(),
            r.start_time.as_deref().unwrap_or("-"),
            r.end_time.as_deref().unwrap_or("-"),
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn show(r: &RunRef, _json: bool) -> Result<ExitCode> {
    let (c, name) = cluster::cluster_and_run(&r.args, &r.cluster)?;
    let rt = cluster::open(&c)?;
    let run = rt.run(&name)?;
    print_json(run.config());
    Ok(ExitCode::SUCCESS)
}

pub fn result(r: &RunRef, json: bool) -> Result<ExitCode> {
    let (c, name) = cluster::cluster_and_run(&r.args, &r.cluster)?;
    let rt = cluster::open(&c)?;
    let run = rt.run(&name)?;
    match run.result() {
        Ok(v) => {
            if json {
                print_json(&super::call::answer(&run, Some(&v), None));
            } else {
                println!("{}", serde_json::to_string_pretty(&v)?);
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            if json {
                print_json(&super::call::answer(&run, None, Some(&e)));
                Ok(ExitCode::from(crate::output::exit_code(&e.into())))
            } else {
                Err(e.into())
            }
        }
    }
}
