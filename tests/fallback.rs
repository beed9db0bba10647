//! A device failure mid-batch becomes an error, or with the fallback a CPU rerun of the
//! batch with exactly the CPU's results — never a wrong number.

use yuma::backend::fallback::CpuFallback;
use yuma::backend::{Backend, BackendError, EpochResult, cpu::CpuBackend};
use yuma::example::{Variant, realistic};
use yuma::model::EpochInput;

/// A backend whose device always fails.
struct BrokenDevice;

impl Backend for BrokenDevice {
    fn describe(&self) -> String {
        "broken device".into()
    }
    fn run_batch(&self, _: &[EpochInput]) -> Result<Vec<EpochResult>, BackendError> {
        Err(BackendError::Device {
            backend: "test",
            reason: "device lost".into(),
        })
    }
}

#[test]
fn device_failure_is_an_error_without_fallback() {
    let inputs = vec![realistic(32, 8, Variant::Yuma3Liquid, 1)];
    let err = BrokenDevice.run_batch(&inputs).unwrap_err();
    assert!(err.to_string().contains("device lost"), "{err}");
}

#[test]
fn fallback_reruns_the_batch_on_the_cpu() {
    let inputs: Vec<_> = (0..6)
        .map(|s| {
            realistic(
                48,
                8,
                [Variant::Yuma3Liquid, Variant::Yuma3, Variant::Original][s as usize % 3],
                s,
            )
        })
        .collect();
    let got = CpuFallback::new(Box::new(BrokenDevice))
        .run_batch(&inputs)
        .unwrap();
    let want = CpuBackend::new().run_batch(&inputs).unwrap();
    assert_eq!(got.len(), inputs.len());
    for (g, w) in got.iter().zip(&want) {
        let (g, w) = (g.as_ref().unwrap(), w.as_ref().unwrap());
        assert_eq!(w.first_difference(g), None);
    }
    assert!(
        CpuFallback::new(Box::new(BrokenDevice))
            .describe()
            .contains("CPU fallback")
    );
}

/// A backend that cannot run past rule sets (refuses them as unsupported).
struct TodayOnly;

impl Backend for TodayOnly {
    fn describe(&self) -> String {
        "today only".into()
    }
    fn run_batch(&self, inputs: &[EpochInput]) -> Result<Vec<EpochResult>, BackendError> {
        if let Some(spec) = inputs.iter().find_map(|x| x.spec_version) {
            return Err(BackendError::Unsupported {
                backend: "test",
                reason: format!("spec_version {spec}"),
            });
        }
        CpuBackend::new().run_batch(inputs)
    }
}

#[test]
fn an_unsupported_rule_set_is_refused_or_run_on_the_cpu() {
    let inputs: Vec<EpochInput> = [233, 300, 365]
        .into_iter()
        .map(|spec| EpochInput {
            spec_version: Some(spec),
            ..realistic(32, 8, Variant::Original, spec as u64)
        })
        .collect();
    let err = TodayOnly.run_batch(&inputs).unwrap_err();
    assert!(
        err.to_string()
            .contains("cannot run this batch: spec_version 233"),
        "{err}"
    );
    let got = CpuFallback::new(Box::new(TodayOnly))
        .run_batch(&inputs)
        .unwrap();
    let want = CpuBackend::new().run_batch(&inputs).unwrap();
    for ((g, w), x) in got.iter().zip(&want).zip(&inputs) {
        let (g, w) = (g.as_ref().unwrap(), w.as_ref().unwrap());
        assert_eq!(w.first_difference(g), None);
        // Every one of these eras is before 397 (no stake); rank only before 365.
        assert!(g.stake.is_none());
        assert_eq!(g.rank.is_some(), x.spec_version < Some(365));
    }
}
