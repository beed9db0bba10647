//! What a suite does when a system piece it needs is missing: by default it skips with one
//! line that plain `cargo test` shows; with its `YUMA_REQUIRE_*` switch set to 1 (CI sets
//! them all) it fails instead, so a piece missing in CI can never pass as a skip.

use std::io::Write;
use std::sync::Mutex;

/// Skip lines already printed by this test process (each shows once, not once per test).
static SHOWN: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// A system piece some suites need.
#[derive(Clone, Copy, Debug)]
pub struct Piece {
    /// What it is, as the skip line names it.
    pub what: &'static str,
    /// The one command that installs it.
    pub install: &'static str,
    /// The environment switch that turns the skip into a failure.
    pub require_var: &'static str,
}

/// Mesa's software Vulkan driver (lavapipe), or any other Vulkan/Metal/DX12 adapter.
pub const VULKAN: Piece = Piece {
    what: "a wgpu adapter (Vulkan driver)",
    install: "sudo apt-get install mesa-vulkan-drivers",
    require_var: "YUMA_REQUIRE_WGPU",
};

/// NVIDIA's runtime compiler, which builds the CUDA kernels.
pub const NVRTC: Piece = Piece {
    what: "NVRTC (libnvrtc)",
    install: "python3 -m pip install nvidia-cuda-nvrtc-cu12",
    require_var: "YUMA_REQUIRE_NVRTC",
};

/// A C++17 compiler, which builds the CUDA kernels as host code.
pub const CXX: Piece = Piece {
    what: "a C++17 compiler",
    install: "sudo apt-get install g++",
    require_var: "YUMA_REQUIRE_CXX",
};

/// An NVIDIA GPU with its driver (and NVRTC).
pub const CUDA_DEVICE: Piece = Piece {
    what: "a CUDA device (NVIDIA GPU and driver)",
    install: "install the NVIDIA driver on a machine with an NVIDIA GPU",
    require_var: "YUMA_REQUIRE_CUDA_DEVICE",
};

/// Reports that `suite` cannot run because `piece` is missing (`detail` says how it was
/// found missing): fails when the piece is required, else prints the skip line past the
/// test harness's output capture, so it shows even when every test passes.
pub fn skip(suite: &str, piece: Piece, detail: &str) {
    let line = format!(
        "SKIPPED {suite}: needs {} ({detail}); install: {}",
        piece.what, piece.install
    );
    assert!(
        std::env::var(piece.require_var).as_deref() != Ok("1"),
        "{line}; {}=1 requires it",
        piece.require_var
    );
    let mut shown = SHOWN.lock().unwrap_or_else(|p| p.into_inner());
    if !shown.contains(&line) {
        let _ = writeln!(std::io::stderr(), "\n=== {line} ===\n");
        shown.push(line);
    }
}
