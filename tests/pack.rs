//! Packing round trip: CPU outputs stored into the GPU output layout unpack unchanged,
//! for a batch mixing every conformance case (sizes 0 to 4096, all variants).

use std::path::Path;

use yuma::backend::pack::{PackedOutput, pack, unpack};
use yuma::model::{Case, case_files, decode};

#[test]
fn packed_outputs_round_trip() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/cases");
    let cases: Vec<Case> = case_files(&dir)
        .unwrap()
        .iter()
        .map(|p| decode(&std::fs::read_to_string(p).unwrap()).unwrap())
        .collect();
    assert!(!cases.is_empty());
    let inputs: Vec<_> = cases.iter().map(|c| c.input.clone()).collect();
    let batch = pack(&inputs);
    assert_eq!(batch.headers.len(), inputs.len());
    assert_eq!(batch.w_offsets.len(), batch.total_uids() + inputs.len());
    assert_eq!(batch.ob_offsets.len(), batch.w_offsets.len());
    let mut out = PackedOutput::zeroed(&batch);
    for (e, c) in cases.iter().enumerate() {
        out.store(&batch, e, c.output.as_ref().unwrap());
    }
    let back = unpack(&batch, &out);
    for (c, got) in cases.iter().zip(&back) {
        let want = c.output.as_ref().unwrap();
        assert_eq!(want.first_difference(got), None, "case {}", c.name);
    }
    eprintln!(
        "round-tripped {} epochs, {} uids",
        back.len(),
        batch.total_uids()
    );
}
