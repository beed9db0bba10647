//! The gRPC codec of `yuma.v1`: prost's, except that a many-epoch `RunEpochs` request is
//! decoded and its response encoded epoch by epoch in parallel on the rayon pool, so one
//! large call is not held to one core. The bytes on the wire are exactly prost's.

use std::marker::PhantomData;

use prost::Message;
use prost::bytes::{Buf, BufMut, Bytes};
use rayon::prelude::*;
use tonic::Status;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

use super::pb;

/// Messages below this many bytes are decoded in place: leaving the runtime thread costs a
/// thread handoff, more than decoding a few epochs.
const PARALLEL_BYTES: usize = 1 << 20;

/// Messages with fewer submessages than this are encoded in place, for the same reason.
const PARALLEL_ITEMS: usize = 8;

/// Key byte of field 1 with the length-delimited wire type.
const FIELD_1_LEN: u8 = (1 << 3) | 2;

/// A `yuma.v1` message as the codec reads and writes it; prost's way unless overridden.
pub trait Wire: Message + Default + Send + 'static {
    /// Decodes one whole message from `buf`, split off as `Bytes` (no copy): prost then
    /// advances a plain slice per varint instead of tonic's buffer, and `bytes` fields
    /// share it.
    fn decode_wire(buf: &mut DecodeBuf<'_>) -> Result<Self, prost::DecodeError> {
        let len = buf.remaining();
        Self::decode(buf.copy_to_bytes(len))
    }

    /// Encodes the message into `buf`.
    fn encode_wire(self, buf: &mut EncodeBuf<'_>) {
        self.encode(buf)
            .expect("an EncodeBuf grows, so encoding cannot run out of space");
    }
}

impl Wire for pb::EpochRequest {}
impl Wire for pb::EpochResult {}
impl Wire for pb::GetBackendsRequest {}
impl Wire for pb::GetBackendsResponse {}

/// `RunEpochs` messages hold nothing but field 1, a repeated submessage (`epochs`,
/// `results`): both directions go epoch by epoch in parallel on both ends of the call.
macro_rules! wire_repeated {
    ($message:ty, $field:ident, $item:ty) => {
        impl Wire for $message {
            fn decode_wire(buf: &mut DecodeBuf<'_>) -> Result<Self, prost::DecodeError> {
                let whole = |b| <$message as Message>::decode(b).map(|m| m.$field);
                let $field = decode_repeated::<$item>(buf, whole)?;
                Ok(Self { $field })
            }

            fn encode_wire(self, buf: &mut EncodeBuf<'_>) {
                if self.$field.len() < PARALLEL_ITEMS {
                    Message::encode(&self, buf)
                        .expect("an EncodeBuf grows, so encoding cannot run out of space");
                } else {
                    encode_repeated(self.$field, buf)
                }
            }
        }
    };
}

wire_repeated!(pb::RunEpochsRequest, epochs, pb::EpochInput);
wire_repeated!(pb::RunEpochsResponse, results, pb::EpochResult);
wire_repeated!(pb::RunSubnetEpochsRequest, subnets, pb::SubnetInput);
wire_repeated!(pb::RunSubnetEpochsResponse, results, pb::SubnetResult);

/// Decodes a message made of field-1 submessages, in parallel when it is large.
/// `whole` decodes the message with prost.
fn decode_repeated<E: Message + Default + Send>(
    buf: &mut DecodeBuf<'_>,
    whole: impl FnOnce(Bytes) -> Result<Vec<E>, prost::DecodeError>,
) -> Result<Vec<E>, prost::DecodeError> {
    let len = buf.remaining();
    let bytes = buf.copy_to_bytes(len);
    let parts = (len >= PARALLEL_BYTES)
        .then(|| field_1_parts(&bytes))
        .flatten();
    match parts {
        Some(parts) => off_runtime(|| {
            parts
                .into_par_iter()
                .map(|(a, b)| E::decode(bytes.slice(a..b)))
                .collect()
        }),
        // prost handles small messages and anything unexpected (unknown fields, damage).
        None => whole(bytes),
    }
}

/// Encodes `items` as field 1, each item encoded in parallel.
fn encode_repeated<E: Message + Send>(items: Vec<E>, buf: &mut EncodeBuf<'_>) {
    let encoded: Vec<Vec<u8>> =
        off_runtime(|| items.into_par_iter().map(|e| e.encode_to_vec()).collect());
    let total: usize = encoded
        .iter()
        .map(|e| 1 + varint_len(e.len()) + e.len())
        .sum();
    buf.reserve(total);
    for e in &encoded {
        buf.put_u8(FIELD_1_LEN);
        put_varint(buf, e.len() as u64);
        buf.put_slice(e);
    }
}

/// Byte ranges of the field-1 submessages when `bytes` holds nothing else (otherwise
/// `None`, and prost decodes the message, handling whatever else is there).
fn field_1_parts(bytes: &[u8]) -> Option<Vec<(usize, usize)>> {
    let mut parts = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] != FIELD_1_LEN {
            return None;
        }
        let (len, used) = read_varint(&bytes[at + 1..])?;
        let start = at + 1 + used;
        let end = start.checked_add(usize::try_from(len).ok()?)?;
        if end > bytes.len() {
            return None;
        }
        parts.push((start, end));
        at = end;
    }
    Some(parts)
}

/// A varint at the start of `b` and the bytes it took.
fn read_varint(b: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for (i, &byte) in b.iter().enumerate().take(10) {
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte < 0x80 {
            return Some((v, i + 1));
        }
    }
    None
}

/// Bytes a varint of `v` takes.
fn varint_len(v: usize) -> usize {
    (usize::BITS - (v | 1).leading_zeros()).div_ceil(7) as usize
}

/// Writes `v` as a varint.
fn put_varint(buf: &mut impl BufMut, mut v: u64) {
    while v >= 0x80 {
        buf.put_u8(v as u8 | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

/// Runs `f` (which waits on the rayon pool) letting tokio move this worker's other tasks
/// elsewhere meanwhile, where the runtime allows it.
fn off_runtime<R>(f: impl FnOnce() -> R) -> R {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// The codec of the generated `yuma.v1` client and server.
#[derive(Debug)]
pub struct YumaCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for YumaCodec<T, U> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<T: Wire, U: Wire> Codec for YumaCodec<T, U> {
    type Encode = T;
    type Decode = U;
    type Encoder = WireEncoder<T>;
    type Decoder = WireDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        WireEncoder(PhantomData)
    }

    fn decoder(&mut self) -> Self::Decoder {
        WireDecoder(PhantomData)
    }
}

/// Encodes `T` with [`Wire::encode_wire`].
#[derive(Debug)]
pub struct WireEncoder<T>(PhantomData<T>);

impl<T: Wire> Encoder for WireEncoder<T> {
    type Item = T;
    type Error = Status;

    fn encode(&mut self, item: T, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.encode_wire(buf);
        Ok(())
    }
}

/// Decodes `U` with [`Wire::decode_wire`].
#[derive(Debug)]
pub struct WireDecoder<U>(PhantomData<U>);

impl<U: Wire> Decoder for WireDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        // Protobuf parse errors are INTERNAL, as in tonic-prost and the gRPC status table.
        U::decode_wire(buf)
            .map(Some)
            .map_err(|e| Status::internal(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_round_trip_and_length() {
        for v in [
            0u64,
            1,
            127,
            128,
            300,
            16_383,
            16_384,
            u32::MAX.into(),
            u64::MAX,
        ] {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            assert_eq!(read_varint(&b), Some((v, b.len())), "{v}");
            if let Ok(u) = usize::try_from(v) {
                assert_eq!(varint_len(u), b.len(), "{v}");
            }
        }
    }

    #[test]
    fn field_1_parts_match_prost_framing() {
        let req = pb::RunEpochsRequest {
            epochs: (0..3)
                .map(|n| pb::EpochInput {
                    n,
                    alpha_stake: vec![7; n as usize * 100],
                    ..Default::default()
                })
                .collect(),
        };
        let bytes = req.encode_to_vec();
        let parts = field_1_parts(&bytes).unwrap();
        let back: Vec<_> = parts
            .iter()
            .map(|&(a, b)| pb::EpochInput::decode(&bytes[a..b]).unwrap())
            .collect();
        assert_eq!(back, req.epochs);
        // Anything but field 1 sends the message to prost.
        assert_eq!(field_1_parts(&[0x10, 1]), None);
        assert_eq!(field_1_parts(&[FIELD_1_LEN, 5, 0]), None);
    }
}
