//! The `yuma` binary end to end: `run`, `verify`, `serve` with `loadtest`, and a closed
//! stdout, each run as a user would run it.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};

use yuma::example::default_example;
use yuma::model::subnet::{SubnetCase, SubnetOutput};
use yuma::model::{Case, EpochOutput};

fn yuma(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_yuma"))
        .args(args)
        .output()
        .expect("the yuma binary runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn repo_cases() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/cases")
}

#[test]
fn run_example_prints_the_library_result() {
    let out = yuma(&["run", "--example", "--backend", "cpu", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let got: EpochOutput = serde_json::from_slice(&out.stdout).expect("FORMAT v1 output JSON");
    let want = yuma::epoch::run_epoch(&default_example()).unwrap();
    if let Some(m) = want.first_difference(&got) {
        panic!("`yuma run --example --json` differs from run_epoch: {m}");
    }

    let out = yuma(&["run", "--example", "--backend", "cpu"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let summary = text(&out.stdout);
    assert!(
        summary.contains("n = 256") && summary.contains("top incentive"),
        "{summary}"
    );
}

#[test]
fn verify_passes_good_cases_and_names_the_first_difference() {
    let out = yuma(&["verify", repo_cases().to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains(" 0 failed"),
        "{}",
        text(&out.stdout)
    );

    // One case with one expected dividend changed: exit non-zero, naming field and uid.
    let dir = std::env::temp_dir().join(format!("yuma-cli-verify-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = std::fs::read_to_string(repo_cases().join("n3-small-y3-la.json")).unwrap();
    let mut case: serde_json::Value = serde_json::from_str(&src).unwrap();
    let d = &mut case["output"]["dividend"][1];
    *d = (d.as_u64().unwrap() ^ 1).into();
    std::fs::write(dir.join("broken.json"), case.to_string()).unwrap();
    let out = yuma(&["verify", dir.to_str().unwrap()]);
    std::fs::remove_dir_all(&dir).unwrap();
    let report = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(
        report.contains("FAIL") && report.contains("dividend") && report.contains("uid 1"),
        "{report}"
    );
}

/// Kills the daemon when the test ends, however it ends.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn repo_subnet_cases() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/mechanisms")
}

/// Format 2 through the binary: `verify` on every subnet case, `run` on an array mixing
/// both formats, and the two-mechanism example.
#[test]
fn subnet_cases_run_and_verify_exactly() {
    let out = yuma(&["verify", repo_subnet_cases().to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains(" 0 failed") && stdout.contains("m16-even-n64-y3-la"),
        "{stdout}"
    );

    let subnet =
        std::fs::read_to_string(repo_subnet_cases().join("m2-even-e7-identical-n3-y3.json"))
            .unwrap();
    let epoch = std::fs::read_to_string(repo_cases().join("n3-small-y3-la.json")).unwrap();
    let dir = std::env::temp_dir().join(format!("yuma-cli-mixed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mixed = dir.join("mixed.json");
    std::fs::write(&mixed, format!("[{subnet}, {epoch}]")).unwrap();
    let out = yuma(&["run", "--input", mixed.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let got: (SubnetOutput, EpochOutput) =
        serde_json::from_slice(&out.stdout).expect("two outputs");
    let want_subnet: SubnetCase = serde_json::from_str(&subnet).unwrap();
    let want_epoch: Case = serde_json::from_str(&epoch).unwrap();
    assert_eq!(want_subnet.output.unwrap().first_difference(&got.0), None);
    assert_eq!(want_epoch.output.unwrap().first_difference(&got.1), None);
    let out = yuma(&["verify", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("PASS mixed.json[1]"),
        "{}",
        text(&out.stdout)
    );
    std::fs::remove_dir_all(&dir).ok();

    let out = yuma(&["run", "--example", "--mechanisms", "2", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let got: SubnetOutput = serde_json::from_slice(&out.stdout).expect("format 2 output JSON");
    let want = yuma::epoch::mechanisms::run_subnet(&yuma::example::example_subnet(2)).unwrap();
    assert_eq!(want.first_difference(&got), None);
    let out = yuma(&["run", "--example", "--mechanisms", "2"]);
    assert!(
        text(&out.stdout).contains("2 mechanisms"),
        "{}",
        text(&out.stdout)
    );
    let out = yuma(&["run", "--example", "--mechanisms", "17"]);
    assert!(!out.status.success());
}

#[test]
fn loadtest_against_serve_checks_every_answer() {
    let mut daemon = Daemon(
        Command::new(env!("CARGO_BIN_EXE_yuma"))
            .args(["serve", "--listen", "127.0.0.1:0", "--backend", "cpu"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("yuma serve starts"),
    );
    let mut first = String::new();
    BufReader::new(daemon.0.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let addr = first
        .trim()
        .strip_prefix("yuma serve: listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {first:?}"));
    let url = format!("http://{addr}");
    // Runs `yuma loadtest` on n = 64 epochs against the daemon; returns its report.
    let loadtest = |args: &[&str]| {
        let all = [&["loadtest", "--addr", &url, "--n", "64"], args].concat();
        let out = yuma(&all);
        let report = text(&out.stdout);
        assert!(out.status.success(), "{report}{}", text(&out.stderr));
        report
    };
    let report = loadtest(&[
        "--clients",
        "4",
        "--requests",
        "3",
        "--epochs-per-request",
        "2",
    ]);
    assert!(
        report.contains("all 24 answers match the in-process results"),
        "{report}"
    );
    assert!(report.contains("overhead ratio"), "{report}");
    // The CPU backend dispatches without waiting for a batch to fill unless told to.
    assert!(report.contains("max wait 0 us"), "{report}");
    let report = loadtest(&[
        "--clients",
        "4",
        "--requests",
        "3",
        "--rate",
        "400",
        "--no-baseline",
    ]);
    assert!(
        report.contains("open loop, 400 calls/s offered; all 12 answers match"),
        "{report}"
    );
    let report = loadtest(&[
        "--clients",
        "3",
        "--requests",
        "4",
        "--epochs-per-request",
        "5",
        "--stream",
        "--fixed-width",
    ]);
    assert!(
        report.contains("one StreamEpochs call per client; all 60 answers match"),
        "{report}"
    );
    assert!(report.contains("latency per epoch"), "{report}");
    let out = yuma(&["loadtest", "--addr", &url, "--rate", "0"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("--rate must be a positive"));
}

#[cfg(unix)]
#[test]
fn a_closed_stdout_ends_the_command_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let mut child = Command::new(env!("CARGO_BIN_EXE_yuma"))
        .args(["run", "--example", "--backend", "cpu", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read a little, then close the pipe as `| head` does.
    let mut head = [0u8; 16];
    child.stdout.take().unwrap().read_exact(&mut head).unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        status.success() || status.signal() == Some(libc::SIGPIPE),
        "{status:?} {err}"
    );
}
