//! NVRTC compile check (no GPU needed): every kernel file compiles for sm_90, to PTX and
//! to a CUBIN (so the device code generator accepted it too), and exports every kernel.
//!
//! NVRTC is found through `YUMA_NVRTC_LIB` (the library file) or `LD_LIBRARY_PATH`
//! (`pip install nvidia-cuda-nvrtc-cu12` puts `libnvrtc.so.12` under
//! `site-packages/nvidia/cuda_nvrtc/lib`, which yuma also finds through `python3`). Without
//! it this test skips with one visible line, or fails when `YUMA_REQUIRE_NVRTC=1`.

mod common;

use yuma::backend::cuda::{STEPS, compile_all, nvrtc_available, nvrtc_version};

const ARCH: &str = "sm_90";

#[test]
fn cuda_kernels_compile_with_nvrtc() {
    if let Err(reason) = nvrtc_available() {
        common::skip::skip("cuda_nvrtc", common::skip::NVRTC, &reason);
        return;
    }
    let (major, minor) = nvrtc_version().expect("NVRTC version");
    let compiled = compile_all(ARCH).unwrap_or_else(|log| panic!("NVRTC compile failed:\n{log}"));
    assert_eq!(compiled.len(), STEPS.len());
    let mut kernels = 0;
    for ((file, _, names), c) in STEPS.iter().zip(&compiled) {
        assert_eq!(*file, c.file);
        assert!(c.cubin_bytes > 0, "{file}: no CUBIN for {ARCH}");
        assert!(c.log.is_empty(), "{file}: NVRTC warnings:\n{}", c.log);
        for name in names.iter() {
            assert!(
                c.ptx.contains(&format!(".entry {name}(")),
                "{file}: kernel {name} missing from the PTX"
            );
            kernels += 1;
        }
        eprintln!(
            "{file}: {} bytes of PTX, {} bytes of CUBIN",
            c.ptx.len(),
            c.cubin_bytes
        );
    }
    eprintln!(
        "NVRTC {major}.{minor}: compiled {} files, {kernels} kernels for {ARCH}",
        compiled.len()
    );
}
