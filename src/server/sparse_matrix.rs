//! `yuma.v1.SparseMatrix`, written out instead of derived: its packed `cols` and `values`
//! are most of a packed request, and prost's generic path costs a closure, a `Buf` advance
//! and a growing push per varint (a 16,320-entry matrix: 73 µs to decode, 105 µs to encode,
//! against 60 µs and 48 µs here). Here a packed field that
//! lies in one contiguous chunk is decoded by a tight loop over the slice into a vector
//! reserved once, and encoded through a stack buffer. Anything unusual (a varint longer than
//! five bytes, a field split across chunks, a malformed field) goes through prost's own
//! functions, so every input decodes, or fails, exactly as the derived message would.

use prost::bytes::{Buf, BufMut, Bytes};
use prost::encoding::{
    DecodeContext, WireType, bytes, encode_key, encode_varint, encoded_len_varint, key_len,
    skip_field, uint32,
};
use prost::{DecodeError, Message};

/// A CSR matrix in one of its two wire forms (see `SparseMatrix` in epoch.proto).
#[derive(Clone, PartialEq, Eq, Hash, Default, Debug)]
pub struct SparseMatrix {
    /// Field 1: row offsets, packed varints.
    pub row_offsets: Vec<u32>,
    /// Field 2: column uids, packed varints.
    pub cols: Vec<u32>,
    /// Field 3: values, packed varints.
    pub values: Vec<u32>,
    /// Field 4: row offsets as little-endian u32 bytes.
    pub row_offsets_le: Bytes,
    /// Field 5: column uids as little-endian u16 bytes.
    pub cols_le: Bytes,
    /// Field 6: values as little-endian u16 bytes.
    pub values_le: Bytes,
}

/// The message name prost's errors carry.
const NAME: &str = "SparseMatrix";

impl Message for SparseMatrix {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        encode_u32s(1, &self.row_offsets, buf);
        encode_u32s(2, &self.cols, buf);
        encode_u32s(3, &self.values, buf);
        for (tag, b) in self.byte_fields() {
            if !b.is_empty() {
                bytes::encode(tag, b, buf);
            }
        }
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        let named = |field: &'static str| {
            move |mut e: DecodeError| {
                e.push(NAME, field);
                e
            }
        };
        match tag {
            1 => {
                merge_u32s(wire_type, &mut self.row_offsets, buf, ctx).map_err(named("row_offsets"))
            }
            2 => merge_u32s(wire_type, &mut self.cols, buf, ctx).map_err(named("cols")),
            3 => merge_u32s(wire_type, &mut self.values, buf, ctx).map_err(named("values")),
            4 => bytes::merge(wire_type, &mut self.row_offsets_le, buf, ctx)
                .map_err(named("row_offsets_le")),
            5 => bytes::merge(wire_type, &mut self.cols_le, buf, ctx).map_err(named("cols_le")),
            6 => bytes::merge(wire_type, &mut self.values_le, buf, ctx).map_err(named("values_le")),
            _ => skip_field(wire_type, tag, buf, ctx),
        }
    }

    fn encoded_len(&self) -> usize {
        let packed = [&self.row_offsets, &self.cols, &self.values];
        let bytes_len: usize = self
            .byte_fields()
            .into_iter()
            .filter(|(_, b)| !b.is_empty())
            .map(|(tag, b)| bytes::encoded_len(tag, b))
            .sum();
        (1..)
            .zip(packed)
            .map(|(tag, v)| packed_len(tag, v))
            .sum::<usize>()
            + bytes_len
    }

    fn clear(&mut self) {
        *self = Self::default();
    }
}

impl SparseMatrix {
    /// The three `bytes` fields with their tags.
    fn byte_fields(&self) -> [(u32, &Bytes); 3] {
        [
            (4, &self.row_offsets_le),
            (5, &self.cols_le),
            (6, &self.values_le),
        ]
    }
}

/// Bytes of the varints of `values`: one per value, plus one per 7-bit step it reaches.
/// prost nests a length before every message, so this runs several times per encode;
/// counted by comparisons it vectorizes, where a logarithm per value does not.
fn varints_len(values: &[u32]) -> usize {
    values
        .chunks(1 << 16)
        .map(|chunk| {
            let steps: u32 = chunk
                .iter()
                .map(|&v| {
                    u32::from(v >= 1 << 7)
                        + u32::from(v >= 1 << 14)
                        + u32::from(v >= 1 << 21)
                        + u32::from(v >= 1 << 28)
                })
                .sum();
            chunk.len() + steps as usize
        })
        .sum()
}

/// Encoded length of packed field `tag` (nothing when empty, as proto3 writes it).
fn packed_len(tag: u32, values: &[u32]) -> usize {
    if values.is_empty() {
        return 0;
    }
    let len = varints_len(values);
    key_len(tag) + encoded_len_varint(len as u64) + len
}

/// Writes `values` as packed field `tag`, a stack buffer of varints at a time.
fn encode_u32s(tag: u32, values: &[u32], buf: &mut impl BufMut) {
    if values.is_empty() {
        return;
    }
    encode_key(tag, WireType::LengthDelimited, buf);
    encode_varint(varints_len(values) as u64, buf);
    const CHUNK: usize = 256;
    let mut out = [0u8; 5 * CHUNK];
    for chunk in values.chunks(CHUNK) {
        let mut at = 0;
        for &v in chunk {
            let mut v = v;
            while v >= 0x80 {
                out[at] = v as u8 | 0x80;
                v >>= 7;
                at += 1;
            }
            out[at] = v as u8;
            at += 1;
        }
        buf.put_slice(&out[..at]);
    }
}

/// Merges field occurrences of a repeated `uint32`: a packed run in one contiguous chunk
/// takes the fast loop, anything else prost's `merge_repeated`.
fn merge_u32s(
    wire_type: WireType,
    values: &mut Vec<u32>,
    buf: &mut impl Buf,
    ctx: DecodeContext,
) -> Result<(), DecodeError> {
    if wire_type == WireType::LengthDelimited {
        let kept = values.len();
        if let Some(used) = decode_packed(buf.chunk(), values) {
            buf.advance(used);
            return Ok(());
        }
        // Undo a partial fast decode; prost starts over from the field's length.
        values.truncate(kept);
    }
    uint32::merge_repeated(wire_type, values, buf, ctx)
}

/// Decodes a packed run (its length varint, then the varints) from the start of `chunk`,
/// appending to `values`; the bytes used, or `None` when the run is not whole in `chunk` or
/// holds a varint of more than five bytes.
fn decode_packed(chunk: &[u8], values: &mut Vec<u32>) -> Option<usize> {
    let (len, head) = short_varint(chunk)?;
    let end = head.checked_add(usize::try_from(len).ok()?)?;
    let run = chunk.get(head..end)?;
    // Every varint ends in exactly one byte below 0x80.
    values.reserve(run.iter().filter(|&&b| b < 0x80).count());
    let mut at = 0;
    while at < run.len() {
        let (v, used) = short_varint(&run[at..])?;
        // prost reads a u64 and keeps its low 32 bits.
        values.push(v as u32);
        at += used;
    }
    Some(end)
}

/// A varint of at most five bytes at the start of `b`: its value and length.
#[inline(always)]
fn short_varint(b: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for (i, &byte) in b.iter().take(5).enumerate() {
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte < 0x80 {
            return Some((v, i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use prost::bytes::Buf;

    use super::*;

    /// The message as prost derives it, the reference for bytes, values and errors.
    mod derived {
        #[derive(Clone, PartialEq, prost::Message)]
        pub struct SparseMatrix {
            #[prost(uint32, repeated, tag = "1")]
            pub row_offsets: Vec<u32>,
            #[prost(uint32, repeated, tag = "2")]
            pub cols: Vec<u32>,
            #[prost(uint32, repeated, tag = "3")]
            pub values: Vec<u32>,
            #[prost(bytes = "bytes", tag = "4")]
            pub row_offsets_le: prost::bytes::Bytes,
            #[prost(bytes = "bytes", tag = "5")]
            pub cols_le: prost::bytes::Bytes,
            #[prost(bytes = "bytes", tag = "6")]
            pub values_le: prost::bytes::Bytes,
        }
    }

    /// xorshift64: the same cases on every run.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, m: u64) -> u64 {
            self.next() % m
        }

        /// A u32 of 1 to 5 varint bytes, small ones more often.
        fn value(&mut self) -> u32 {
            let bits = [7, 14, 16, 21, 28, 32][self.below(6) as usize];
            (self.next() & ((1u64 << bits) - 1)) as u32
        }

        fn u32s(&mut self) -> Vec<u32> {
            let len = [0, 1, 3, 40, 300][self.below(5) as usize];
            (0..len).map(|_| self.value()).collect()
        }

        fn bytes(&mut self) -> Bytes {
            let len = [0, 0, 2, 9][self.below(4) as usize];
            (0..len)
                .map(|_| self.next() as u8)
                .collect::<Vec<u8>>()
                .into()
        }
    }

    fn as_derived(m: &SparseMatrix) -> derived::SparseMatrix {
        derived::SparseMatrix {
            row_offsets: m.row_offsets.clone(),
            cols: m.cols.clone(),
            values: m.values.clone(),
            row_offsets_le: m.row_offsets_le.clone(),
            cols_le: m.cols_le.clone(),
            values_le: m.values_le.clone(),
        }
    }

    #[test]
    fn encodes_byte_for_byte_as_prost_derives_it() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for _ in 0..5_000 {
            let m = SparseMatrix {
                row_offsets: rng.u32s(),
                cols: rng.u32s(),
                values: rng.u32s(),
                row_offsets_le: rng.bytes(),
                cols_le: rng.bytes(),
                values_le: rng.bytes(),
            };
            let want = as_derived(&m).encode_to_vec();
            assert_eq!(m.encode_to_vec(), want);
            assert_eq!(m.encoded_len(), want.len());
            assert_eq!(SparseMatrix::decode(Bytes::from(want)).unwrap(), m);
        }
    }

    /// A varint of `v` padded to `width` bytes (non-canonical when wider than needed).
    fn padded_varint(v: u64, width: usize, out: &mut Vec<u8>) {
        let mut v = v;
        for i in 0..width {
            let last = i + 1 == width;
            out.push((v & 0x7f) as u8 | if last { 0 } else { 0x80 });
            v >>= 7;
        }
    }

    /// A message of random fields, some malformed: packed runs with long, overflowing or
    /// cut varints, unpacked occurrences, wrong wire types, unknown fields, bad lengths.
    fn adversarial(rng: &mut Rng) -> Vec<u8> {
        let mut out = Vec::new();
        for _ in 0..1 + rng.below(5) {
            let tag = 1 + rng.below(8);
            match rng.below(6) {
                // A packed run, maybe with odd varints, maybe with a wrong length.
                0..=2 => {
                    let mut run = Vec::new();
                    for _ in 0..rng.below(20) {
                        let v = u64::from(rng.value()) | (rng.below(4) << 32);
                        let width = match rng.below(10) {
                            0 => 6 + rng.below(5) as usize,
                            1 => 5,
                            _ => prost::encoding::encoded_len_varint(v),
                        };
                        padded_varint(
                            v,
                            width.max(prost::encoding::encoded_len_varint(v)).min(10),
                            &mut run,
                        );
                        if rng.below(50) == 0 {
                            // A tenth byte past the u64 range.
                            run.push(0xff);
                            run.push(0x7f);
                        }
                    }
                    if rng.below(8) == 0 {
                        run.push(0x80);
                    }
                    padded_varint((tag << 3) | 2, 1, &mut out);
                    let len = match rng.below(10) {
                        0 => run.len() + 1 + rng.below(3) as usize,
                        1 => run.len().saturating_sub(1),
                        _ => run.len(),
                    };
                    padded_varint(
                        len as u64,
                        prost::encoding::encoded_len_varint(len as u64),
                        &mut out,
                    );
                    out.extend_from_slice(&run);
                }
                // An unpacked occurrence.
                3 => {
                    padded_varint(tag << 3, 1, &mut out);
                    let v = u64::from(rng.value());
                    padded_varint(v, prost::encoding::encoded_len_varint(v), &mut out);
                }
                // A fixed-width wire type.
                4 => {
                    padded_varint((tag << 3) | 5, 1, &mut out);
                    out.extend_from_slice(&(rng.next() as u32).to_le_bytes());
                }
                // Garbage.
                _ => out.extend((0..rng.below(4)).map(|_| rng.next() as u8)),
            }
        }
        out
    }

    fn same(
        ours: Result<SparseMatrix, DecodeError>,
        want: Result<derived::SparseMatrix, DecodeError>,
        what: &str,
    ) {
        match (ours, want) {
            (Ok(o), Ok(w)) => assert_eq!(as_derived(&o), w, "{what}"),
            (Err(o), Err(w)) => assert_eq!(o.to_string(), w.to_string(), "{what}"),
            (o, w) => panic!("{what}: ours {o:?}, prost's {w:?}"),
        }
    }

    #[test]
    fn decodes_any_input_as_prost_derives_it() {
        let mut rng = Rng(0x2545_F491_4F6C_DD1D);
        let (mut ok, mut err) = (0, 0);
        for case in 0..50_000 {
            let msg = adversarial(&mut rng);
            let want = derived::SparseMatrix::decode(msg.as_slice());
            match &want {
                Ok(_) => ok += 1,
                Err(_) => err += 1,
            }
            // Contiguous: the fast path.
            same(
                SparseMatrix::decode(Bytes::from(msg.clone())),
                want.clone(),
                &format!("case {case}, contiguous: {msg:02x?}"),
            );
            // Split in two chunks: fields across the split take prost's path.
            let cut = rng.below(msg.len() as u64 + 1) as usize;
            let (a, b) = msg.split_at(cut);
            same(
                SparseMatrix::decode(a.chain(b)),
                want,
                &format!("case {case}, split at {cut}: {msg:02x?}"),
            );
        }
        // Both outcomes were exercised in earnest.
        assert!(ok > 5_000 && err > 5_000, "{ok} decoded, {err} refused");
    }
}
