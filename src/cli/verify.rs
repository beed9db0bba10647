//! `yuma verify`: every case in a directory against its expected output.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use yuma::backend::{self, BackendKind};
use yuma::model::case_files;
use yuma::model::subnet::{AnyInput, AnyOutput, decode_documents};

/// Arguments of `yuma verify`.
#[derive(clap::Args)]
pub struct Args {
    /// Directory of case files (`*.json`): format 1 or format 2 cases, or JSON arrays
    /// mixing them.
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
    // (name, expected output, or why the case cannot run); inputs in the same order.
    let mut cases: Vec<(String, Result<AnyOutput, String>)> = Vec::new();
    let mut inputs: Vec<AnyInput> = Vec::new();
    for path in &files {
        let name = path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let docs = std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|t| decode_documents(&t).map_err(|e| e.to_string()));
        match docs {
            Err(e) => cases.push((name, Err(e))),
            Ok((docs, many)) => {
                for (i, doc) in docs.into_iter().enumerate() {
                    let label = if many {
                        format!("{name}[{i}]")
                    } else {
                        name.clone()
                    };
                    match doc.into_parts() {
                        (_, None) => cases.push((label, Err("case has no expected output".into()))),
                        (input, Some(want)) => {
                            inputs.push(input);
                            cases.push((label, Ok(want)));
                        }
                    }
                }
            }
        }
    }
    let backend = backend::open_with(args.backend, args.cpu_fallback)?;
    let mut results = backend.run_any(inputs)?.into_iter();

    let (mut pass, mut fail) = (0, 0);
    for (name, case) in &cases {
        let verdict = match case {
            Err(err) => Err(err.clone()),
            Ok(want) => match results.next() {
                Some(Ok(got)) => match want.first_difference(&got) {
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
