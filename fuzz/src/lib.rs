//! The properties the fuzz targets check, written once: each `fuzz_targets/<name>.rs` calls
//! the function of its name, and `tests/fuzz_corpus.rs` (stable Rust, plain `cargo test`)
//! includes this file and replays every file of `fuzz/corpus/<name>/` through it.
//!
//! Every function takes arbitrary bytes and panics only when a property fails: a decoder
//! that panics, two decoders that disagree, a round trip that changes a value, or the dense
//! and sparse layouts of the epoch giving different answers.

use prost::Message;
use prost::bytes::{Buf, Bytes};
use yuma::epoch::mechanisms::run_subnet_with;
use yuma::epoch::{Layout, run_epoch_with};
use yuma::model::subnet::AnyInput;
use yuma::model::{Case, EpochInput, FromJson, SparseMatrix, ToJson};
use yuma::server::proto::{self, MatrixForm};
use yuma::server::{auth, codec, grpc_timeout, pb};

/// Largest n whose epoch the decoder targets also run (bigger ones only decode).
const RUN_MAX_N: u16 = 256;

/// The JSON input decoder, as `yuma run --input` reads a file (`decode_documents`): a
/// format 1 or 2 input, a case, or an array of them. The hand-written reader and writer
/// must agree with serde's, what decodes must survive a JSON round trip unchanged, and what
/// validates must run in both layouts with the same answer.
pub fn json_input(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // `yuma verify` reads whole cases. The hand-written reader and writer agree with serde's
    // on every text: the same value or the same error, the same bytes.
    let fields = |c: &Case| {
        (
            c.format,
            c.name.clone(),
            c.description.clone(),
            c.input.clone(),
            c.output.clone(),
        )
    };
    let by_serde = yuma::model::decode::<Case>(text);
    let by_hand = Case::from_json(text);
    assert_eq!(
        by_hand.as_ref().map(fields),
        by_serde.as_ref().map(fields),
        "hand-written reader against serde's"
    );
    if let Ok(case) = by_serde {
        let again = serde_json::to_string(&case).expect("a case encodes");
        let pretty = serde_json::to_string_pretty(&case).expect("a case encodes");
        assert_eq!(
            case.to_json(true),
            pretty,
            "hand-written writer against serde_json's"
        );
        let back: Case = yuma::model::decode(&again).expect("an encoded case decodes");
        assert_eq!(back.input, case.input, "case input JSON round trip");
        assert_eq!(back.output, case.output, "case output JSON round trip");
    }
    let Ok((cases, _)) = yuma::model::subnet::decode_documents(text) else {
        return;
    };
    for case in cases {
        match case.into_parts().0 {
            AnyInput::Epoch(input) => {
                let again = serde_json::to_string(&input).expect("an input encodes");
                let back = EpochInput::from_json(&again).expect("an encoded input decodes");
                assert_eq!(back, input, "input JSON round trip");
                if input.n <= RUN_MAX_N {
                    layouts_agree(&input);
                }
            }
            AnyInput::Subnet(input) => {
                let sparse = format!("{:?}", run_subnet_with(&input, Layout::Sparse));
                let dense = format!("{:?}", run_subnet_with(&input, Layout::Dense));
                assert_eq!(sparse, dense, "subnet layouts");
            }
        }
    }
}

/// The protobuf request decoder: the daemon's `RunEpochs` codec (split epoch by epoch)
/// against prost's whole-message decode, the hand-written `SparseMatrix` codec against
/// prost's derived one, and every decoded epoch through the conversion, which must accept
/// only valid inputs and give them back unchanged in both matrix forms.
pub fn proto_request(data: &[u8]) {
    let bytes = Bytes::copy_from_slice(data);
    let whole = pb::RunEpochsRequest::decode(bytes.clone());
    // A split threshold of 0 sends every message down the epoch-by-epoch path.
    let split = codec::decode_run_epochs(bytes.clone(), 0);
    match (&whole, &split) {
        (Ok(w), Ok(s)) => assert_eq!(w, s, "split decode differs from prost's"),
        (Err(_), Err(_)) => {}
        (w, s) => panic!("prost's decode gave {w:?}, the split decode {s:?}"),
    }
    sparse_matrix_agrees(data);
    let _ = pb::EpochRequest::decode(bytes);
    let Ok(request) = whole else {
        return;
    };
    for epoch in request.epochs {
        let Ok(input) = proto::input_from_proto(epoch, u16::MAX.into()) else {
            continue;
        };
        input.validate().expect("a converted epoch is valid");
        for form in [MatrixForm::Packed, MatrixForm::FixedWidth] {
            let wire = proto::input_to_proto(&input, form);
            let back = proto::input_from_proto(wire, u16::MAX.into())
                .unwrap_or_else(|e| panic!("{form:?} round trip refused: {e}"));
            assert_eq!(back, input, "{form:?} round trip");
        }
        if input.n <= RUN_MAX_N {
            layouts_agree(&input);
        }
    }
}

/// The `grpc-timeout` and `authorization` header parsers. The timeout is held to the
/// grammar (1 to 8 digits and a unit) by an independent reading in u128 nanoseconds; the
/// token check must accept exactly `Bearer <token>`. The bytes are the header value, or
/// for the token check a value and a token split at the first zero byte.
pub fn headers(data: &[u8]) {
    let parsed = grpc_timeout::parse(data);
    assert_eq!(
        parsed.map(|d| d.as_nanos()),
        timeout_nanos(data),
        "grpc-timeout {data:?}"
    );
    let now = tokio::time::Instant::now();
    let deadline = grpc_timeout::deadline(data, now);
    assert_eq!(deadline.is_some(), parsed.is_some(), "deadline of {data:?}");
    if let (Some(d), Some(timeout)) = (deadline, parsed) {
        assert!(d >= now && d <= now + timeout, "deadline of {data:?}");
    }

    let (value, token) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &b"token"[..]),
    };
    let accepted = value.strip_prefix(b"Bearer ") == Some(token);
    assert_eq!(
        auth::refusal(Some(value), token).is_none(),
        accepted,
        "authorization {value:?} against token {token:?}"
    );
    assert!(auth::refusal(None, token).is_some(), "no header");
}

/// The epoch on an arbitrary valid input built from the bytes: the sparse, dense and
/// automatic layouts must agree on every output field (or on the error).
pub fn epoch_layouts(data: &[u8]) {
    layouts_agree(&epoch_from_bytes(data));
}

/// `grpc-timeout` in nanoseconds as the gRPC spec reads it, written apart from the parser.
fn timeout_nanos(raw: &[u8]) -> Option<u128> {
    let text = std::str::from_utf8(raw).ok()?;
    let unit = text.chars().last()?;
    let digits = &text[..text.len() - unit.len_utf8()];
    if !(1..=8).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let per: u128 = match unit {
        'H' => 3_600_000_000_000,
        'M' => 60_000_000_000,
        'S' => 1_000_000_000,
        'm' => 1_000_000,
        'u' => 1_000,
        'n' => 1,
        _ => return None,
    };
    Some(digits.parse::<u128>().ok()? * per)
}

/// Runs `x` in every layout; all must give the same output, or the same error.
fn layouts_agree(x: &EpochInput) {
    let sparse = run_epoch_with(x, Layout::Sparse);
    for layout in [Layout::Dense, Layout::Auto] {
        let other = run_epoch_with(x, layout);
        match (&sparse, &other) {
            (Ok(s), Ok(o)) => {
                if let Some(m) = s.first_difference(o) {
                    panic!("{layout:?} layout differs from sparse: {m}");
                }
            }
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{layout:?} error"),
            (s, o) => panic!("sparse gave {s:?}, {layout:?} gave {o:?}"),
        }
    }
}

/// `yuma.v1.SparseMatrix` as prost derives it: the reference for the hand-written codec
/// (same name, so decode errors read the same).
mod derived {
    use prost::bytes::Bytes;

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct SparseMatrix {
        #[prost(uint32, repeated, tag = "1")]
        pub row_offsets: Vec<u32>,
        #[prost(uint32, repeated, tag = "2")]
        pub cols: Vec<u32>,
        #[prost(uint32, repeated, tag = "3")]
        pub values: Vec<u32>,
        #[prost(bytes = "bytes", tag = "4")]
        pub row_offsets_le: Bytes,
        #[prost(bytes = "bytes", tag = "5")]
        pub cols_le: Bytes,
        #[prost(bytes = "bytes", tag = "6")]
        pub values_le: Bytes,
    }
}
use derived::SparseMatrix as DerivedSparseMatrix;

impl From<pb::SparseMatrix> for DerivedSparseMatrix {
    fn from(m: pb::SparseMatrix) -> Self {
        Self {
            row_offsets: m.row_offsets,
            cols: m.cols,
            values: m.values,
            row_offsets_le: m.row_offsets_le,
            cols_le: m.cols_le,
            values_le: m.values_le,
        }
    }
}

/// The hand-written `SparseMatrix` codec decodes `data` as prost's derived message does,
/// from one contiguous buffer and from two chunks (split at a point the data picks), and
/// what it decodes it encodes byte for byte as prost does.
fn sparse_matrix_agrees(data: &[u8]) {
    let want = DerivedSparseMatrix::decode(data);
    let cut = data
        .first()
        .map_or(0, |&b| usize::from(b) % (data.len() + 1));
    let (a, b) = data.split_at(cut);
    for (how, got) in [
        (
            "contiguous",
            pb::SparseMatrix::decode(Bytes::copy_from_slice(data)),
        ),
        ("split", pb::SparseMatrix::decode(a.chain(b))),
    ] {
        match (&got, &want) {
            (Ok(g), Ok(w)) => {
                assert_eq!(&DerivedSparseMatrix::from(g.clone()), w, "{how} decode");
                assert_eq!(g.encode_to_vec(), w.encode_to_vec(), "{how} encode");
                assert_eq!(g.encoded_len(), w.encoded_len(), "{how} encoded_len");
            }
            (Err(g), Err(w)) => assert_eq!(g.to_string(), w.to_string(), "{how} error"),
            (g, w) => panic!("{how}: ours {g:?}, prost's {w:?}"),
        }
    }
}

/// Reads fuzz bytes as choices; past the end every choice is 0.
struct Choices<'a>(&'a [u8]);

impl Choices<'_> {
    fn byte(&mut self) -> u8 {
        let (&b, rest) = self.0.split_first().unwrap_or((&0, &[]));
        self.0 = rest;
        b
    }

    fn flag(&mut self) -> bool {
        self.byte() & 1 == 1
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }

    /// A u16 drawn toward the edges: 0, 1, the maximum, or any.
    fn u16_edgy(&mut self) -> u16 {
        match self.byte() % 4 {
            0 => 0,
            1 => u16::MAX,
            2 => self.byte().into(),
            _ => self.u16(),
        }
    }

    fn u64(&mut self) -> u64 {
        (0..8).fold(0, |v, i| v | u64::from(self.byte()) << (8 * i))
    }

    /// A u64 of a magnitude the data picks: small, block-sized, stake-sized or any.
    fn u64_sized(&mut self) -> u64 {
        match self.byte() % 5 {
            0 => self.byte().into(),
            1 => self.u64() % 20_000_000,
            2 => self.u64() >> 12,
            3 => self.u64() >> 24,
            _ => self.u64(),
        }
    }

    /// Rows of `n` uids with column uids up to n + 1 (the chain keeps uids >= n), each
    /// column at most once per row, in the order drawn.
    fn matrix(&mut self, n: usize) -> SparseMatrix {
        let rows: Vec<Vec<(u16, u16)>> = (0..n)
            .map(|_| {
                let full = self.byte().is_multiple_of(4);
                let len = if full {
                    n
                } else {
                    usize::from(self.byte()) % (n + 2)
                };
                let mut row: Vec<(u16, u16)> = Vec::with_capacity(len);
                for k in 0..len {
                    let col = if full {
                        k as u16
                    } else {
                        (usize::from(self.byte()) % (n + 2)) as u16
                    };
                    let value = self.u16_edgy();
                    if row.iter().all(|&(c, _)| c != col) {
                        row.push((col, value));
                    }
                }
                row
            })
            .collect();
        SparseMatrix::from_rows(&rows)
    }
}

/// A valid epoch input built from arbitrary bytes: every field in its valid range, every
/// per-uid vector n long, rows without duplicate columns, everything else as drawn.
pub fn epoch_from_bytes(data: &[u8]) -> EpochInput {
    let mut c = Choices(data);
    // Up to 72 uids: past the 8- and 16-lane vector widths, with remainders.
    let n = u16::from(c.byte() % 73);
    let nu = usize::from(n);
    let current_block = c.u64_sized();
    let per_uid = |c: &mut Choices<'_>| (0..nu).map(|_| c.u64_sized()).collect::<Vec<_>>();
    let alpha_stake = per_uid(&mut c);
    let tao_stake = per_uid(&mut c);
    let last_update = per_uid(&mut c);
    let block_at_registration = per_uid(&mut c);
    let commit_block = (0..nu).map(|_| c.flag().then(|| c.u64_sized())).collect();
    let validator_permit = (0..nu).map(|_| c.flag()).collect();
    let owner = c.byte();
    EpochInput {
        n,
        current_block,
        tempo: c.u16_edgy(),
        activity_cutoff: c.u64_sized(),
        last_mechanism_step_block: c.u64_sized(),
        kappa: c.u16_edgy(),
        bonds_penalty: c.u16_edgy(),
        bonds_moving_average: c.u64() % 1_000_001,
        max_allowed_validators: u16::from(c.byte()),
        stake_threshold: c.u64_sized(),
        tao_weight: c.u64_sized(),
        owner_uid: (n > 0 && owner & 1 == 1).then(|| u16::from(owner >> 1) % n),
        yuma3: c.flag(),
        liquid_alpha: c.flag(),
        alpha_low: c.u16_edgy(),
        alpha_high: c.u16_edgy(),
        alpha_sigmoid_steepness: c.u16() as i16,
        commit_reveal: c.flag(),
        commit_block,
        emission: c.u64_sized(),
        alpha_stake,
        tao_stake,
        last_update,
        block_at_registration,
        validator_permit,
        weights: c.matrix(nu),
        bonds: c.matrix(nu),
        // Today's rules.
        spec_version: None,
    }
}

/// A history file as `yuma fetch --from --to` resumes it and `yuma recompute` reads it: the
/// first byte picks zstd (odd) or plain JSON lines (even), the rest is the file. Opening it
/// for resume never panics; when it succeeds, the file is cut to complete records, a reader
/// then reads it to the end without an error, and the keys it finds are exactly the ones
/// the resume reported as done.
pub fn history_file(data: &[u8]) {
    use std::collections::HashSet;
    use yuma::chain::records::{RecordReader, RecordWriter};
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let dir = std::env::temp_dir().join(format!(
        "yuma-fuzz-history-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(if mode & 1 == 1 {
        "h.jsonl.zst"
    } else {
        "h.jsonl"
    });
    std::fs::write(&path, body).expect("writes");
    let Ok((writer, done)) = RecordWriter::open(&path) else {
        return;
    };
    drop(writer);
    let mut reader = RecordReader::open(&path).expect("a resumed file opens");
    let mut found = HashSet::new();
    while let Some((_, line)) = reader.next_line().expect("a resumed file reads to its end") {
        let v: serde_json::Value = serde_json::from_slice(&line).expect("each line is JSON");
        let key = |f: &str| v["chain"][f].as_u64().expect("a key");
        found.insert((key("netuid") as u16, key("block")));
    }
    assert_eq!(found, done, "keys read differ from the keys resumed");
}
