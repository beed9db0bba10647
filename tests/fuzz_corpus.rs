//! Replays every file of `fuzz/corpus/<target>/` through the property its fuzz target
//! checks (the same functions, from fuzz/src/lib.rs), so plain stable `cargo test` keeps
//! every input the fuzzers found interesting, and every past crash, passing.

#[path = "../fuzz/src/lib.rs"]
mod checks;

use std::path::Path;

/// Runs `check` on every file of the target's corpus; fails naming each file that panics.
fn replay(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{}: empty corpus", dir.display());
    let mut failures = Vec::new();
    for file in &files {
        let data = std::fs::read(file).unwrap();
        if let Err(panic) = std::panic::catch_unwind(|| check(&data)) {
            let why = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("(no message)");
            failures.push(format!("{}: {why}", file.display()));
        }
    }
    eprintln!(
        "fuzz corpus {target}: replayed {} files, {} failed",
        files.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn json_input_corpus() {
    replay("json_input", checks::json_input);
}

#[test]
fn proto_request_corpus() {
    replay("proto_request", checks::proto_request);
}

#[test]
fn headers_corpus() {
    replay("headers", checks::headers);
}

#[test]
fn epoch_layouts_corpus() {
    replay("epoch_layouts", checks::epoch_layouts);
}

#[test]
fn history_file_corpus() {
    replay("history_file", checks::history_file);
}
