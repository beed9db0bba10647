//! Hand-written JSON reader and pretty writer of the model types (issue 12).
//!
//! Measured side by side with serde_json alone (benches/json.rs, docs/benchmarks.md "JSON
//! read and write (issue 12)"): on the 4,096-uid Yuma3 + liquid alpha input this reader
//! takes compact text at 501 MiB/s against serde_json's 166 (3.0×), pretty at 973 against
//! 405 (2.4×), and the 256-uid types at 356–622 MiB/s against 134–422 (1.4–3.5×); the pretty
//! writer, which `yuma run` uses, writes 490–1,428 MiB/s against 222–368 (1.8–5.5×). A
//! number here is a few byte compares or a register computation, straight into or out of
//! the flat arrays; serde goes through a visitor per number. Compact writing by hand
//! measured 0.78–1.14× serde_json, so compact text is serde_json's.
//!
//! The reader takes exactly what serde's reader takes, or gives up ([`Bail`]) on anything
//! else or unusual (an escape in a key, a missing optional field, `-0`, a bad value): then
//! serde's reader reads the text again, so accepted values and error messages are serde's.
//! The writer writes the bytes `serde_json::to_string_pretty` writes (tested).

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::subnet::{
    AnyOutput, CaseKind, MechanismInput, MechanismOutput, SubnetCase, SubnetInput, SubnetOutput,
    SubnetTerms,
};
use super::{Case, EpochInput, EpochOutput, InputError, SparseMatrix, decode};

/// A model type with the hand-written JSON reader.
pub trait FromJson: DeserializeOwned + sealed::Read {
    /// Decodes JSON text; on bad input the error names the failing field's path.
    fn from_json(text: &str) -> Result<Self, InputError> {
        read_whole(text).or_else(|Bail| decode(text))
    }
}

/// A model type with the hand-written pretty JSON writer.
pub trait ToJson: Serialize + sealed::Write {
    /// Encodes as JSON, compact or pretty: the bytes `serde_json::to_string` or
    /// `to_string_pretty` write. Compact is serde_json's own: written by hand, it measured
    /// 0.78–1.14× serde_json's speed (docs/benchmarks.md), so it stays serde_json's.
    fn to_json(&self, pretty: bool) -> String {
        if !pretty {
            return serde_json::to_string(self).expect("the model types always serialise");
        }
        let mut w = Writer::new();
        self.write(&mut w);
        String::from_utf8(w.out).expect("the writer writes ASCII and serde_json's strings")
    }
}

/// The reader and writer behind [`FromJson`] and [`ToJson`], out of reach of other types.
pub(crate) mod sealed {
    /// Reads one value from JSON text, or gives up.
    pub trait Read: Sized {
        /// The value at the reader's position.
        fn read(r: &mut super::Reader<'_>) -> Result<Self, super::Bail>;
    }

    /// Writes one value as JSON.
    pub trait Write {
        /// Appends the value to the writer.
        fn write(&self, w: &mut super::Writer);
    }
}

use sealed::{Read, Write};

/// The fast reader gave up: the text is bad or unusual, and serde's reader decides.
#[derive(Debug)]
pub struct Bail;

type R<T> = Result<T, Bail>;

/// `T` from the whole of `text` (only whitespace may follow), by the fast reader.
pub(crate) fn read_whole<T: Read>(text: &str) -> R<T> {
    let mut r = Reader::new(text);
    let v = T::read(&mut r)?;
    r.end()?;
    Ok(v)
}

/// A position in JSON text.
pub struct Reader<'a> {
    s: &'a str,
    i: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `s`.
    pub(crate) fn new(s: &'a str) -> Self {
        Self { s, i: 0 }
    }

    /// The byte offset reached.
    pub(crate) fn pos(&self) -> usize {
        self.i
    }

    /// Moves back to an offset [`Reader::pos`] gave.
    pub(crate) fn seek(&mut self, i: usize) {
        self.i = i;
    }

    fn bytes(&self) -> &'a [u8] {
        self.s.as_bytes()
    }

    /// Skips JSON whitespace (the four bytes serde_json skips).
    #[inline]
    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.bytes().get(self.i) {
            self.i += 1;
        }
    }

    /// The next byte after whitespace, not consumed.
    #[inline]
    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.bytes().get(self.i).copied()
    }

    /// Consumes `c` after whitespace.
    #[inline]
    pub(crate) fn eat(&mut self, c: u8) -> R<()> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(Bail)
        }
    }

    /// Consumes `word` (a literal such as `true`) after whitespace.
    fn word(&mut self, word: &[u8]) -> bool {
        self.ws();
        let hit = self.bytes()[self.i..].starts_with(word);
        if hit {
            self.i += word.len();
        }
        hit
    }

    /// Only whitespace is left.
    pub(crate) fn end(&mut self) -> R<()> {
        self.ws();
        if self.i == self.s.len() {
            Ok(())
        } else {
            Err(Bail)
        }
    }

    /// A JSON array, each element read by `item`.
    #[inline]
    fn seq(&mut self, mut item: impl FnMut(&mut Self) -> R<()>) -> R<()> {
        self.eat(b'[')?;
        if self.peek() == Some(b']') {
            self.i += 1;
            return Ok(());
        }
        loop {
            item(self)?;
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(Bail),
            }
        }
    }

    /// A JSON object, each value read by `field` given its key.
    fn object(&mut self, mut field: impl FnMut(&mut Self, &'a str) -> R<()>) -> R<()> {
        self.eat(b'{')?;
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(());
        }
        loop {
            let key = self.key()?;
            self.eat(b':')?;
            field(self, key)?;
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(Bail),
            }
        }
    }

    /// An object key, or the first key of the object that starts here.
    pub(crate) fn first_key(&mut self) -> R<&'a str> {
        self.eat(b'{')?;
        self.key()
    }

    /// A string without escapes or control bytes (a key or a plain name).
    fn key(&mut self) -> R<&'a str> {
        self.eat(b'"')?;
        let start = self.i;
        let len = self.bytes()[start..]
            .iter()
            .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
            .ok_or(Bail)?;
        if self.bytes()[start + len] != b'"' {
            return Err(Bail);
        }
        self.i = start + len + 1;
        self.s.get(start..start + len).ok_or(Bail)
    }

    /// A JSON string, escapes included (those go through serde_json, as they are rare).
    fn string(&mut self) -> R<String> {
        let start = self.i;
        if let Ok(s) = self.key() {
            return Ok(s.to_owned());
        }
        self.seek(start);
        self.eat(b'"')?;
        let open = self.i - 1;
        let b = self.bytes();
        let mut i = self.i;
        while let Some(&c) = b.get(i) {
            match c {
                b'"' => {
                    self.i = i + 1;
                    return serde_json::from_str(&self.s[open..=i]).map_err(|_| Bail);
                }
                b'\\' => i += 2,
                _ => i += 1,
            }
        }
        Err(Bail)
    }

    /// An unsigned JSON integer of at most `max`, as serde_json reads one into an
    /// integer type: no sign, fraction, exponent or leading zero (those go to serde).
    #[inline]
    fn uint(&mut self, max: u64) -> R<u64> {
        self.ws();
        let b = self.bytes();
        let mut i = self.i;
        let mut v = digit(b, i).ok_or(Bail)?;
        i += 1;
        if v != 0 {
            while let Some(d) = digit(b, i) {
                v = v
                    .checked_mul(10)
                    .and_then(|v| v.checked_add(d))
                    .ok_or(Bail)?;
                i += 1;
            }
        }
        if v > max || matches!(b.get(i), Some(b'0'..=b'9' | b'.' | b'e' | b'E')) {
            return Err(Bail);
        }
        self.i = i;
        Ok(v)
    }

    /// A u16 JSON integer, as [`Reader::uint`] reads one.
    #[inline]
    fn u16(&mut self) -> R<u16> {
        self.ws();
        u16_at(self.bytes(), &mut self.i)
    }

    /// The pairs of one sparse row appended to `cols` and `vals`, the reader just past the
    /// row's `[`, on a local offset.
    #[inline]
    fn pairs(&mut self, mut cols: Vec<u16>, mut vals: Vec<u16>) -> R<(Vec<u16>, Vec<u16>)> {
        let b = self.bytes();
        let mut i = self.i;
        skip_ws(b, &mut i);
        if b.get(i) == Some(&b']') {
            self.i = i + 1;
            return Ok((cols, vals));
        }
        loop {
            expect(b, &mut i, b'[')?;
            skip_ws(b, &mut i);
            let c = u16_at(b, &mut i)?;
            expect(b, &mut i, b',')?;
            skip_ws(b, &mut i);
            let v = u16_at(b, &mut i)?;
            expect(b, &mut i, b']')?;
            cols.push(c);
            vals.push(v);
            skip_ws(b, &mut i);
            match b.get(i) {
                Some(b',') => i += 1,
                Some(b']') => {
                    self.i = i + 1;
                    return Ok((cols, vals));
                }
                _ => return Err(Bail),
            }
        }
    }

    /// A u64 as a JSON integer or a string of decimal digits (`u64_str`'s reader).
    #[inline]
    fn u64_any(&mut self) -> R<u64> {
        if self.peek() != Some(b'"') {
            return self.uint(u64::MAX);
        }
        let s = self.key()?;
        if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
            return Err(Bail);
        }
        s.parse().map_err(|_| Bail)
    }
}

/// Skips JSON whitespace from `b[*i]`.
#[inline]
fn skip_ws(b: &[u8], i: &mut usize) {
    while let Some(b' ' | b'\n' | b'\r' | b'\t') = b.get(*i) {
        *i += 1;
    }
}

/// Consumes `c` after whitespace from `b[*i]`.
#[inline]
fn expect(b: &[u8], i: &mut usize, c: u8) -> R<()> {
    skip_ws(b, i);
    if b.get(*i) == Some(&c) {
        *i += 1;
        Ok(())
    } else {
        Err(Bail)
    }
}

/// A u16 JSON integer at `b[*i]`, as [`Reader::uint`] reads one, without overflow checks
/// (five digits at most).
#[inline]
fn u16_at(b: &[u8], i: &mut usize) -> R<u16> {
    let start = *i;
    let mut j = start;
    let mut v = digit(b, j).ok_or(Bail)? as u32;
    j += 1;
    if v != 0 {
        while let Some(d) = digit(b, j) {
            if j - start == 5 {
                return Err(Bail);
            }
            v = v * 10 + d as u32;
            j += 1;
        }
    }
    if v > u16::MAX as u32 || matches!(b.get(j), Some(b'0'..=b'9' | b'.' | b'e' | b'E')) {
        return Err(Bail);
    }
    *i = j;
    Ok(v as u16)
}

/// The decimal digit at `b[i]`, if it is one.
#[inline]
fn digit(b: &[u8], i: usize) -> Option<u64> {
    let d = b.get(i)?.wrapping_sub(b'0');
    (d < 10).then_some(d as u64)
}

/// The pretty JSON text being written, with the pretty printer's state.
pub struct Writer {
    out: Vec<u8>,
    depth: usize,
    /// No value written yet in the innermost open array or object.
    first: bool,
    num: itoa::Buffer,
}

/// The longest text of a fixed-size piece of a pretty pair.
const PIECE: usize = 64;

/// Bytes around a pair's numbers, padded to [`PIECE`] so that copying them is fixed-size.
struct Piece {
    bytes: [u8; PIECE],
    len: usize,
}

impl Piece {
    /// `text` padded, or none when it is longer than [`PIECE`] (a deep nesting).
    fn new(text: &[u8]) -> Option<Self> {
        let mut bytes = [0u8; PIECE];
        bytes.get_mut(..text.len())?.copy_from_slice(text);
        Some(Self {
            bytes,
            len: text.len(),
        })
    }

    /// Appends the piece's text.
    #[inline]
    fn append(&self, out: &mut Vec<u8>) {
        append_fixed(out, &self.bytes, self.len);
    }
}

/// Appends `bytes[..len]` as a copy of all `N` bytes (a fixed size, so inlined) and a cut:
/// a variable-length copy per number is a memcpy call (40 % of the write, profiled).
#[inline]
fn append_fixed<const N: usize>(out: &mut Vec<u8>, bytes: &[u8; N], len: usize) {
    out.extend_from_slice(bytes);
    out.truncate(out.len() - (N - len));
}

/// `v`'s decimal digits as the little-endian bytes of a word, and their count: built in a
/// register without a loop, as digits stored byte by byte and read back as a word stall
/// the store buffer, and a division loop per digit took three quarters of the write.
#[inline]
fn digits(v: u16) -> (u64, usize) {
    let v = v as u32;
    // Two digits of x < 100: x / 10 is (x * 103) >> 10 over that range.
    let two = |x: u32| {
        let tens = (x * 103) >> 10;
        (b'0' as u32 + tens) as u64 | ((b'0' as u32 + x - 10 * tens) as u64) << 8
    };
    let rest = v % 10_000;
    let five = (b'0' as u32 + v / 10_000) as u64 | two(rest / 100) << 8 | two(rest % 100) << 24;
    let len = 1
        + (v >= 10) as usize
        + (v >= 100) as usize
        + (v >= 1_000) as usize
        + (v >= 10_000) as usize;
    (five >> (8 * (5 - len)), len)
}

/// Indentation, two spaces a level as serde_json's pretty printer.
const SPACES: &[u8; 64] = &[b' '; 64];

impl Writer {
    fn new() -> Self {
        Self {
            out: Vec::new(),
            depth: 0,
            first: true,
            num: itoa::Buffer::new(),
        }
    }

    /// A new line at the current depth.
    #[inline]
    fn newline(&mut self) {
        self.out.push(b'\n');
        let mut n = 2 * self.depth;
        while n > 0 {
            let k = n.min(SPACES.len());
            self.out.extend_from_slice(&SPACES[..k]);
            n -= k;
        }
    }

    /// Before an element or key: the comma and the new line.
    #[inline]
    fn sep(&mut self) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        self.newline();
    }

    #[inline]
    fn open(&mut self, c: u8) {
        self.out.push(c);
        self.depth += 1;
        self.first = true;
    }

    #[inline]
    fn close(&mut self, c: u8) {
        self.depth -= 1;
        if !self.first {
            self.newline();
        }
        self.out.push(c);
        self.first = false;
    }

    fn key(&mut self, k: &str) {
        self.sep();
        self.out.push(b'"');
        self.out.extend_from_slice(k.as_bytes());
        self.out.extend_from_slice(b"\": ");
    }

    #[inline]
    fn int<I: itoa::Integer>(&mut self, v: I) {
        self.out.extend_from_slice(self.num.format(v).as_bytes());
    }

    /// A u64 as a string of decimal digits (`u64_str`'s writer).
    #[inline]
    fn quoted(&mut self, v: u64) {
        self.out.push(b'"');
        self.int(v);
        self.out.push(b'"');
    }

    #[inline]
    fn seq<T>(&mut self, items: &[T], mut each: impl FnMut(&mut Self, &T)) {
        self.open(b'[');
        for x in items {
            self.sep();
            each(self, x);
        }
        self.close(b']');
    }
}

impl Read for u16 {
    fn read(r: &mut Reader<'_>) -> R<Self> {
        r.u16()
    }
}

impl Write for u16 {
    fn write(&self, w: &mut Writer) {
        w.int(*self);
    }
}

impl Read for u32 {
    fn read(r: &mut Reader<'_>) -> R<Self> {
        r.uint(u32::MAX as u64).map(|v| v as u32)
    }
}

impl Write for u32 {
    fn write(&self, w: &mut Writer) {
        w.int(*self);
    }
}

impl Read for u64 {
    fn read(r: &mut Reader<'_>) -> R<Self> {
        r.uint(u64::MAX)
    }
}

impl Write for u64 {
    fn write(&self, w: &mut Writer) {
        w.int(*self);
    }
}

impl Read for i16 {
    fn read(r: &mut Reader<'_>) -> R<Self> {
        if r.peek() == Some(b'-') {
            r.i += 1;
            // No whitespace after the sign; serde_json reads `-0` as 0.
            digit(r.bytes(), r.i).ok_or(Bail)?;
            r.uint(1 << 15).map(|v| (v as i32).wrapping_neg() as i16)
        } else {
            r.uint(i16::MAX as u64).map(|v| v as i16)
        }
    }
}

impl Write for i16 {
    fn write(&self, w: &mut Writer) {
        w.int(*self);
    }
}

impl Read for bool {
    fn read(r: &mut Reader<'_>) -> R<Self> {
        if r.word(b"true") {
            Ok(true)
        } else if r.word(b"false") {
            Ok(false)
        } else {
            Err(Bail)
        }
    }
}

impl Write for bool {
    fn write(&self, w: &mut Writer) {
        w.out
            .extend_from_slice(if *self { b"true" } else { b"false" });
    }
}

impl Read for String {
    fn read(r: &mut Reader<'_>) -> R<Self> {
        r.string()
    }
}

impl Write for String {
    fn write(&self, w: &mut Writer) {
        serde_json::to_writer(&mut w.out, self).expect("a string always serialises");
    }
}

impl<T: Read> Read for Option<T> {
    fn read(r: &mut Reader<'_>) -> R<Self> {
        if r.word(b"null") {
            Ok(None)
        } else {
            T::read(r).map(Some)
        }
    }
}

impl<T: Write> Write for Option<T> {
    fn write(&self, w: &mut Writer) {
        match self {
            Some(v) => v.write(w),
            None => w.out.extend_from_slice(b"null"),
        }
    }
}

impl<T: Read> Read for Vec<T> {
    fn read(r: &mut Reader<'_>) -> R<Self> {
        let mut v = Vec::new();
        r.seq(|r| {
            v.push(T::read(r)?);
            Ok(())
        })?;
        Ok(v)
    }
}

impl<T: Write> Write for Vec<T> {
    fn write(&self, w: &mut Writer) {
        w.seq(self, |w, x| x.write(w));
    }
}

impl Read for SparseMatrix {
    fn read(r: &mut Reader<'_>) -> R<Self> {
        let mut m = SparseMatrix::empty(0);
        r.seq(|r| {
            r.eat(b'[')?;
            // By value through the row: behind a reference, each push reloads the Vec.
            (m.cols, m.vals) = r.pairs(std::mem::take(&mut m.cols), std::mem::take(&mut m.vals))?;
            // serde's reader refuses more entries than u32 offsets hold.
            if m.cols.len() > u32::MAX as usize {
                return Err(Bail);
            }
            m.offsets.push(m.cols.len() as u32);
            Ok(())
        })?;
        Ok(m)
    }
}

impl Write for SparseMatrix {
    fn write(&self, w: &mut Writer) {
        // A pair takes 5 to 13 bytes and four indented new lines.
        w.out
            .reserve(self.nnz() * (32 + 8 * w.depth) + self.rows() * 4 * (w.depth + 1));
        w.open(b'[');
        // Rows, pairs and numbers sit zero, one and two levels inside the matrix: the
        // bytes around a pair's two numbers are built once, not per pair.
        let indent = |extra: usize| -> Vec<u8> {
            let mut v = vec![b'\n'];
            v.resize(1 + 2 * (w.depth + extra), b' ');
            v
        };
        let (row_line, pair, num) = (indent(0), indent(1), indent(2));
        // pair `[` num | c | `,` num | v | pair `]`, each piece padded to a fixed size.
        let open = Piece::new(&[&pair[..], b"[", &num].concat());
        let mid = Piece::new(&[&b","[..], &num].concat());
        let close = Piece::new(&[&pair[..], b"]"].concat());
        let pieces = open.as_ref().zip(mid.as_ref()).zip(close.as_ref());
        // The buffer is held by value here: a Vec behind `&mut Writer` reloads its length
        // and pointer from memory at every push.
        let mut out = std::mem::take(&mut w.out);
        for i in 0..self.rows() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(&row_line);
            let (cols, vals) = self.row(i);
            if cols.is_empty() {
                out.extend_from_slice(b"[]");
                continue;
            }
            out.push(b'[');
            for (k, (&c, &v)) in cols.iter().zip(vals).enumerate() {
                if k > 0 {
                    out.push(b',');
                }
                let ((cw, cl), (vw, vl)) = (digits(c), digits(v));
                match pieces {
                    None => {
                        // Nested too deep for the fixed-size pieces: piece by piece.
                        out.extend_from_slice(&pair);
                        out.push(b'[');
                        out.extend_from_slice(&num);
                        append_fixed(&mut out, &cw.to_le_bytes(), cl);
                        out.push(b',');
                        out.extend_from_slice(&num);
                        append_fixed(&mut out, &vw.to_le_bytes(), vl);
                        out.extend_from_slice(&pair);
                        out.push(b']');
                    }
                    Some(((open, mid), close)) => {
                        open.append(&mut out);
                        append_fixed(&mut out, &cw.to_le_bytes(), cl);
                        mid.append(&mut out);
                        append_fixed(&mut out, &vw.to_le_bytes(), vl);
                        close.append(&mut out);
                    }
                }
            }
            out.extend_from_slice(&row_line);
            out.push(b']');
        }
        w.out = out;
        w.first = self.rows() == 0;
        w.close(b']');
    }
}

impl Read for CaseKind {
    fn read(r: &mut Reader<'_>) -> R<Self> {
        match r.key()? {
            "subnet" => Ok(CaseKind::Subnet),
            _ => Err(Bail),
        }
    }
}

impl Write for CaseKind {
    fn write(&self, w: &mut Writer) {
        match self {
            CaseKind::Subnet => w.out.extend_from_slice(b"\"subnet\""),
        }
    }
}

impl Write for AnyOutput {
    fn write(&self, w: &mut Writer) {
        // Untagged: the bare output object.
        match self {
            AnyOutput::Epoch(o) => o.write(w),
            AnyOutput::Subnet(o) => o.write(w),
        }
    }
}

/// How one struct field is read and written: its serde attributes.
trait Field<T> {
    /// The field's value at the reader.
    fn read(r: &mut Reader<'_>) -> R<T>;
    /// Appends the field's value.
    fn write(v: &T, w: &mut Writer);
    /// The value of a missing field (none: serde's reader decides).
    fn absent() -> R<T> {
        Err(Bail)
    }
    /// Whether the field is left out.
    fn skip(_: &T) -> bool {
        false
    }
}

/// No attribute.
struct Plain;

impl<T: Read + Write> Field<T> for Plain {
    fn read(r: &mut Reader<'_>) -> R<T> {
        T::read(r)
    }
    fn write(v: &T, w: &mut Writer) {
        v.write(w);
    }
}

/// `#[serde(default)]`.
struct Defaulted;

impl<T: Read + Write + Default> Field<T> for Defaulted {
    fn read(r: &mut Reader<'_>) -> R<T> {
        T::read(r)
    }
    fn write(v: &T, w: &mut Writer) {
        v.write(w);
    }
    fn absent() -> R<T> {
        Ok(T::default())
    }
}

/// `#[serde(default, skip_serializing_if = "Option::is_none")]`.
struct SkipNone;

impl<T: Read + Write> Field<Option<T>> for SkipNone {
    fn read(r: &mut Reader<'_>) -> R<Option<T>> {
        Option::<T>::read(r)
    }
    fn write(v: &Option<T>, w: &mut Writer) {
        v.write(w);
    }
    fn absent() -> R<Option<T>> {
        Ok(None)
    }
    fn skip(v: &Option<T>) -> bool {
        v.is_none()
    }
}

/// `#[serde(with = "u64_str")]`.
struct U64Str;

impl Field<u64> for U64Str {
    fn read(r: &mut Reader<'_>) -> R<u64> {
        r.u64_any()
    }
    fn write(v: &u64, w: &mut Writer) {
        w.quoted(*v);
    }
}

/// `#[serde(with = "u64_vec")]`.
struct U64Vec;

impl Field<Vec<u64>> for U64Vec {
    fn read(r: &mut Reader<'_>) -> R<Vec<u64>> {
        let mut v = Vec::new();
        r.seq(|r| {
            v.push(r.u64_any()?);
            Ok(())
        })?;
        Ok(v)
    }
    fn write(v: &Vec<u64>, w: &mut Writer) {
        w.seq(v, |w, &x| w.quoted(x));
    }
}

/// `#[serde(default, skip_serializing_if = "Option::is_none", with = "opt_u64_vec")]`:
/// `null` is not read (serde's reader refuses it too).
struct OptU64Vec;

impl Field<Option<Vec<u64>>> for OptU64Vec {
    fn read(r: &mut Reader<'_>) -> R<Option<Vec<u64>>> {
        U64Vec::read(r).map(Some)
    }
    fn write(v: &Option<Vec<u64>>, w: &mut Writer) {
        if let Some(v) = v {
            U64Vec::write(v, w);
        }
    }
    fn absent() -> R<Option<Vec<u64>>> {
        Ok(None)
    }
    fn skip(v: &Option<Vec<u64>>) -> bool {
        v.is_none()
    }
}

/// Stores a field's value, giving up on a key seen twice (serde's reader refuses it).
#[inline]
fn set<T>(slot: &mut Option<T>, v: T) -> R<()> {
    match slot {
        Some(_) => Err(Bail),
        None => {
            *slot = Some(v);
            Ok(())
        }
    }
}

/// The reader and writer of a struct from its fields, in declaration order, each with
/// the [`Field`] kind its serde attributes make. Every field must be named (the struct
/// literal and pattern say so); an unknown key gives up.
macro_rules! json_struct {
    ($ty:ident { $($field:ident: $kind:ident),* $(,)? }) => {
        impl Read for $ty {
            fn read(r: &mut Reader<'_>) -> R<Self> {
                $(let mut $field = None;)*
                r.object(|r, key| match key {
                    $(stringify!($field) => set(&mut $field, <$kind as Field<_>>::read(r)?),)*
                    _ => Err(Bail),
                })?;
                Ok($ty {
                    $($field: match $field {
                        Some(v) => v,
                        None => <$kind as Field<_>>::absent()?,
                    },)*
                })
            }
        }

        impl Write for $ty {
            fn write(&self, w: &mut Writer) {
                let $ty { $($field),* } = self;
                w.open(b'{');
                $(if !<$kind as Field<_>>::skip($field) {
                    w.key(stringify!($field));
                    <$kind as Field<_>>::write($field, w);
                })*
                w.close(b'}');
            }
        }
    };
}

json_struct!(EpochInput {
    n: Plain,
    current_block: Plain,
    tempo: Plain,
    activity_cutoff: Plain,
    last_mechanism_step_block: Plain,
    kappa: Plain,
    bonds_penalty: Plain,
    bonds_moving_average: Plain,
    max_allowed_validators: Plain,
    stake_threshold: U64Str,
    tao_weight: U64Str,
    owner_uid: Plain,
    yuma3: Plain,
    liquid_alpha: Plain,
    alpha_low: Plain,
    alpha_high: Plain,
    alpha_sigmoid_steepness: Plain,
    commit_reveal: Plain,
    commit_block: Plain,
    emission: U64Str,
    alpha_stake: U64Vec,
    tao_stake: U64Vec,
    last_update: Plain,
    block_at_registration: Plain,
    validator_permit: Plain,
    weights: Plain,
    bonds: Plain,
    spec_version: SkipNone,
});

json_struct!(EpochOutput {
    active: Plain,
    stake: OptU64Vec,
    stake_weight: Plain,
    rank: SkipNone,
    trust: SkipNone,
    consensus: Plain,
    incentive: Plain,
    dividend: Plain,
    validator_trust: Plain,
    new_validator_permit: Plain,
    emission: U64Vec,
    server_emission: U64Vec,
    validator_emission: U64Vec,
    pruning_score: SkipNone,
    bonds: Plain,
});

json_struct!(Case {
    format: Plain,
    name: Defaulted,
    description: Defaulted,
    input: Plain,
    output: SkipNone,
});

json_struct!(MechanismInput {
    last_update: Plain,
    commit_block: Plain,
    weights: Plain,
    bonds: Plain,
});

json_struct!(SubnetInput {
    n: Plain,
    current_block: Plain,
    tempo: Plain,
    activity_cutoff: Plain,
    last_mechanism_step_block: Plain,
    kappa: Plain,
    bonds_penalty: Plain,
    bonds_moving_average: Plain,
    max_allowed_validators: Plain,
    stake_threshold: U64Str,
    tao_weight: U64Str,
    owner_uid: Plain,
    yuma3: Plain,
    liquid_alpha: Plain,
    alpha_low: Plain,
    alpha_high: Plain,
    alpha_sigmoid_steepness: Plain,
    commit_reveal: Plain,
    emission: U64Str,
    alpha_stake: U64Vec,
    tao_stake: U64Vec,
    block_at_registration: Plain,
    validator_permit: Plain,
    emission_split: Plain,
    mechanisms: Plain,
    spec_version: SkipNone,
});

json_struct!(MechanismOutput {
    emission: U64Str,
    output: Plain,
});

json_struct!(SubnetTerms {
    active: Plain,
    emission: U64Vec,
    consensus: Plain,
    dividend: Plain,
    validator_trust: Plain,
    new_validator_permit: Plain,
    stake_weight: Plain,
    server_emission: U64Vec,
    validator_emission: U64Vec,
    stake: OptU64Vec,
    rank: SkipNone,
    trust: SkipNone,
    pruning_score: SkipNone,
    incentive: Plain,
});

json_struct!(SubnetOutput {
    mechanisms: Plain,
    subnet: Plain,
});

json_struct!(SubnetCase {
    format: Plain,
    kind: Defaulted,
    name: Defaulted,
    description: Defaulted,
    input: Plain,
    output: SkipNone,
});

impl FromJson for EpochInput {}
impl FromJson for EpochOutput {}
impl FromJson for Case {}
impl FromJson for SubnetInput {}
impl FromJson for SubnetOutput {}
impl FromJson for SubnetCase {}

impl ToJson for EpochInput {}
impl ToJson for EpochOutput {}
impl ToJson for Case {}
impl ToJson for SubnetInput {}
impl ToJson for SubnetOutput {}
impl ToJson for SubnetCase {}
impl ToJson for AnyOutput {}
impl<T: Write + Serialize> ToJson for Vec<T> {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::example::{Variant, realistic};
    use crate::model::subnet::{AnyCase, decode_case};
    use std::path::{Path, PathBuf};

    /// Every `.json` file under the repository's conformance directory.
    fn conformance_files() -> Vec<PathBuf> {
        fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
            for e in std::fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    walk(&p, out);
                } else if p.extension().is_some_and(|x| x == "json") {
                    out.push(p);
                }
            }
        }
        let mut out = Vec::new();
        walk(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance"),
            &mut out,
        );
        out.sort();
        out
    }

    /// The hand-written writer writes serde_json's pretty bytes.
    fn same_bytes<T: ToJson>(v: &T, what: &str) {
        assert_eq!(
            v.to_json(true),
            serde_json::to_string_pretty(v).unwrap(),
            "{what} pretty"
        );
    }

    /// The hand-written reader reads `v` back from both styles without giving up.
    fn reads_back<T: Read + ToJson + PartialEq + std::fmt::Debug>(v: &T, what: &str) {
        for pretty in [false, true] {
            let back = read_whole::<T>(&v.to_json(pretty))
                .unwrap_or_else(|Bail| panic!("{what}: the fast reader gave up"));
            assert_eq!(&back, v, "{what}");
        }
    }

    #[test]
    fn every_conformance_case_reads_and_writes_as_serde_does() {
        let files = conformance_files();
        assert!(files.len() >= 200, "{} files", files.len());
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            let what = f.display().to_string();
            let by_hand = read_whole::<AnyCase>(&text)
                .unwrap_or_else(|Bail| panic!("{what}: the fast reader gave up"));
            let by_serde = serde_json::from_str::<serde_json::Value>(&text).unwrap();
            let by_serde = match by_serde.get("format").and_then(|v| v.as_u64()) {
                Some(2) => AnyCase::Subnet(serde_json::from_str(&text).unwrap()),
                _ => AnyCase::Epoch(serde_json::from_str(&text).unwrap()),
            };
            match (&by_hand, &by_serde) {
                (AnyCase::Epoch(h), AnyCase::Epoch(s)) => {
                    assert_eq!((&h.name, &h.description), (&s.name, &s.description));
                    assert_eq!((&h.input, &h.output), (&s.input, &s.output), "{what}");
                    same_bytes(h, &what);
                }
                (AnyCase::Subnet(h), AnyCase::Subnet(s)) => {
                    assert_eq!((&h.name, &h.description), (&s.name, &s.description));
                    assert_eq!((&h.input, &h.output), (&s.input, &s.output), "{what}");
                    same_bytes(h, &what);
                }
                _ => panic!("{what}: read as the other format"),
            }
        }
    }

    #[test]
    fn realistic_subnets_read_and_write_as_serde_does() {
        for n in [256, 1000] {
            let input = realistic(n, 64, Variant::Yuma3Liquid, 7);
            let output = crate::epoch::run_epoch(&input).unwrap();
            let subnet = SubnetInput::from_epoch(input.clone());
            let subnet_out = crate::epoch::mechanisms::run_subnet(&subnet).unwrap();
            same_bytes(&input, "epoch input");
            same_bytes(&output, "epoch output");
            same_bytes(&subnet, "subnet input");
            same_bytes(&subnet_out, "subnet output");
            same_bytes(
                &vec![
                    AnyOutput::Epoch(output.clone()),
                    AnyOutput::Subnet(subnet_out.clone()),
                ],
                "output list",
            );
            reads_back(&input, "epoch input");
            reads_back(&output, "epoch output");
            reads_back(&subnet, "subnet input");
            reads_back(&subnet_out, "subnet output");
        }
    }

    #[test]
    fn every_u16_has_its_digits() {
        for v in 0..=u16::MAX {
            let (word, len) = digits(v);
            assert_eq!(&word.to_le_bytes()[..len], v.to_string().as_bytes(), "{v}");
        }
    }

    #[test]
    fn deeply_nested_pairs_write_as_serde_does() {
        // Past the fixed-size pieces of a pretty pair (14 levels of lists around an output).
        let out = crate::epoch::run_epoch(&realistic(8, 3, Variant::Yuma3Liquid, 1)).unwrap();
        let deep = vec![vec![vec![vec![vec![vec![vec![vec![vec![vec![vec![
            vec![vec![vec![out]]],
        ]]]]]]]]]]];
        same_bytes(&deep, "nested output");
    }

    /// The text of a small valid input with `field` set to the raw JSON `value`.
    fn with(field: &str, value: &str) -> String {
        let mut v = serde_json::to_value(realistic(3, 2, Variant::Yuma3Liquid, 1)).unwrap();
        v[field] = serde_json::from_str(value).unwrap_or(serde_json::Value::Null);
        let text = serde_json::to_string(&v).unwrap();
        // Splice the raw token in where the placeholder went, to keep its spelling.
        text.replacen(
            &format!("\"{field}\":null"),
            &format!("\"{field}\":{value}"),
            1,
        )
    }

    /// The fast reader reads what serde reads, the same value, and gives up on the rest;
    /// through the fallback, `from_json` and `decode_case` read what `decode` reads.
    fn agrees(text: &str) {
        let by_serde = serde_json::from_str::<EpochInput>(text).ok();
        if let Ok(v) = read_whole::<EpochInput>(text) {
            assert_eq!(Some(v), by_serde, "{text}");
        }
        let by_decode = decode::<EpochInput>(text).ok();
        assert_eq!(EpochInput::from_json(text).ok(), by_decode, "{text}");
        match decode_case(text) {
            Ok(AnyCase::Epoch(c)) => assert_eq!(Some(c.input), by_decode, "{text}"),
            Ok(AnyCase::Subnet(_)) => panic!("{text}: read as format 2"),
            Err(_) => assert_eq!(by_decode, None, "{text}"),
        }
    }

    #[test]
    fn odd_spellings_read_as_serde_reads_them() {
        for (field, value) in [
            ("kappa", "0"),
            ("kappa", "-0"),
            ("kappa", "00"),
            ("kappa", "01"),
            ("kappa", "1.0"),
            ("kappa", "1e2"),
            ("kappa", "65535"),
            ("kappa", "65536"),
            ("kappa", "655350"),
            ("kappa", "\"5\""),
            ("kappa", " 7 "),
            ("alpha_sigmoid_steepness", "-32768"),
            ("alpha_sigmoid_steepness", "-32769"),
            ("alpha_sigmoid_steepness", "32767"),
            ("alpha_sigmoid_steepness", "32768"),
            ("alpha_sigmoid_steepness", "-0"),
            ("alpha_sigmoid_steepness", "- 5"),
            ("alpha_sigmoid_steepness", "-"),
            ("current_block", "18446744073709551615"),
            ("current_block", "18446744073709551616"),
            ("current_block", "\"5\""),
            ("emission", "\"007\""),
            ("emission", "\"\""),
            ("emission", "\"+5\""),
            ("emission", "\"\\u0035\""),
            ("emission", "\"18446744073709551616\""),
            ("emission", "12"),
            ("emission", "-1"),
            ("alpha_stake", "[\"1\", 2, \"3\"]"),
            ("alpha_stake", "[1,2,3,]"),
            ("owner_uid", "null"),
            ("spec_version", "null"),
            ("spec_version", "397"),
            ("yuma3", "true "),
            ("yuma3", "tru"),
            ("yuma3", "1"),
            ("commit_block", "[null, 5, null]"),
            ("commit_block", "[nul, 5, null]"),
            ("weights", "[[[1,2]],[],[ [ 2 , 3 ] , [0,1] ]]"),
            ("weights", "[[[1,2,3]],[],[]]"),
            ("weights", "[[[1]],[],[]]"),
            ("weights", "[[[70000,1]],[],[]]"),
            ("weights", "[[[1,2]],[],[]"),
            ("surprise", "1"),
        ] {
            agrees(&with(field, value));
        }
        let base = with("kappa", "5");
        agrees(&format!("  {base}\n\t"));
        agrees(&format!("{base} x"));
        agrees(&base.replacen("\"kappa\"", "\"ka\\u0070pa\"", 1));
        agrees(&base.replacen("\"tempo\":360,", "", 1));
        agrees(&base.replacen("\"tempo\":360,", "\"tempo\":360,\"tempo\":360,", 1));
        agrees(&base.replacen("\"owner_uid\":0,", "", 1));
    }

    #[test]
    fn mutated_text_reads_as_serde_reads_it() {
        // Byte edits of a real case: whatever the fast reader accepts, serde reads the same.
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/conformance/cases/n3-small-y3-la.json"),
        )
        .unwrap();
        let compact = serde_json::to_string(&serde_json::from_str::<Case>(&text).unwrap()).unwrap();
        let mut seed = 0x1234_5678_9abc_def0u64;
        let mut next = |bound: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % bound as u64) as usize
        };
        const BYTES: &[u8] = b"0123456789-+.e\" ,:[]{}\\ntfu";
        for _ in 0..3000 {
            let mut b = compact.clone().into_bytes();
            for _ in 0..1 + next(3) {
                let at = next(b.len());
                match next(3) {
                    0 => b[at] = BYTES[next(BYTES.len())],
                    1 => {
                        b.remove(at);
                    }
                    _ => b.insert(at, BYTES[next(BYTES.len())]),
                }
            }
            let Ok(t) = String::from_utf8(b) else {
                continue;
            };
            let by_serde = decode::<Case>(&t).ok();
            let by_hand = Case::from_json(&t).ok();
            if let Ok(c) = read_whole::<Case>(&t) {
                let strict = serde_json::from_str::<Case>(&t).expect("serde reads it too");
                assert_eq!((c.input, c.output), (strict.input, strict.output), "{t}");
            }
            assert_eq!(
                by_hand.map(|c| (c.format, c.name, c.input, c.output)),
                by_serde.map(|c| (c.format, c.name, c.input, c.output)),
                "{t}"
            );
        }
    }
}
