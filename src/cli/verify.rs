//! `yuma verify`: every case in a directory against its expected output.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use yuma::backend::{self, BackendKind};
use yuma::model::{Case, case_files, decode};

/// Arguments of `yuma verify`.
#[derive(clap::Args)]
pub struct Args {
    /// Directory of FORMAT v1 case files (`*.json`).
    dir: PathBuf,
    /// Backend to run on.
    #[arg(long, value_parser = super::backend_kind(), default_value = "cpu")]
    backend: BackendKind,
    /// Rerun a batch on the CPU when the GPU device fails, instead of failing.
    #[arg(long)]
    cpu_fallback: bool,
}

/// Runs `yuma verify`: one line per case, non-zero exit on any failure.
pub fn main(args: Args) -> anyhow::Result<ExitCode> {
    let files = case_files(&args.dir).with_context(|| format!("reading {}", args.dir.display()))?;
    if files.is_empty() {
        bail!("no *.json case in {}", args.dir.display());
    }
    let mut cases: Vec<(String, Option<Case>, String)> = Vec::new();
    for path in &files {
        let name = path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        match std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|t| decode::<Case>(&t).map_err(|e| e.to_string()))
        {
            Ok(case) if case.output.is_none() => {
                cases.push((name, None, "case has no expected output".into()))
            }
            Ok(case) => cases.push((name, Some(case), String::new())),
            Err(e) => cases.push((name, None, e)),
        }
    }
    let backend = backend::open_with(args.backend, args.cpu_fallback)?;
    let inputs: Vec<_> = cases
        .iter()
        .filter_map(|(_, c, _)| c.as_ref().map(|c| c.input.clone()))
        .collect();
    let mut results = backend.run_batch(&inputs)?.into_iter();

    let (mut pass, mut fail) = (0, 0);
    for (name, case, err) in &cases {
        let verdict = match case {
            None => Err(err.clone()),
            Some(case) => match results.next() {
                Some(Ok(got)) => match case
                    .output
                    .as_ref()
                    .and_then(|want| want.first_difference(&got))
                {
                    None => Ok(()),
                    Some(m) => Err(m.to_string()),
                },
                Some(Err(e)) => Err(format!("rejected: {e}")),
                None => Err("backend returned too few results".into()),
            },
        };
        match verdict {
            Ok(()) => {
                pass += 1;
                println!("PASS {name}");
            }
            Err(why) => {
                fail += 1;
                println!("FAIL {name}: {why}");
            }
        }
    }
    println!("backend: {}", backend.describe());
    println!("verify: {pass} passed, {fail} failed");
    Ok(if fail == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
