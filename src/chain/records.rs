//! History files: one fetched epoch per JSON line, zstd-compressed (`.zst`) or plain.
//!
//! A compressed file is a sequence of complete zstd frames, one per flushed batch of
//! records, so a run that stops at any point leaves every earlier batch readable: a rerun
//! finds the epochs already written, cuts a torn last frame (or line) off, and appends.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use thiserror::Error;
use zstd::zstd_safe::{DCtx, InBuffer, OutBuffer};

use super::snapshot::StoredOutputs;
use crate::model::FromJson;
use crate::model::subnet::{CaseKind, SubnetInput};

/// Records per zstd frame at most: a stop loses at most this many fetched epochs.
const FRAME_RECORDS: usize = 64;
/// Uncompressed bytes per frame at most.
const FRAME_BYTES: usize = 8 << 20;
/// A frame is closed at least this often, so a slow range loses little on a stop.
const FRAME_AGE: Duration = Duration::from_secs(2);
/// zstd level of history files (level 3 is zstd's default: fast, about 8× on this JSON).
const LEVEL: i32 = 3;

/// Where a record came from on the chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainFacts {
    /// Subnet.
    pub netuid: u16,
    /// The block whose `on_initialize` ran the epoch.
    pub block: u64,
    /// Runtime specVersion at B − 1, whose rules ran.
    pub spec_version: u32,
    /// How the input's emission was obtained.
    pub emission: String,
    /// What the chain stored after the epoch.
    pub stored: StoredOutputs,
}

/// One line of a history file: a format 2 case header and input, and the chain's facts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EpochRecord {
    /// Always 2: the input is a format 2 subnet input.
    pub format: u32,
    /// Always `subnet`.
    pub kind: CaseKind,
    /// `sn{netuid}-block{block}`.
    pub name: String,
    /// The input, ready for any backend.
    pub input: SubnetInput,
    /// Where it came from and what the chain stored.
    pub chain: ChainFacts,
}

impl EpochRecord {
    /// (netuid, block): what identifies a record in a file.
    pub fn key(&self) -> (u16, u64) {
        (self.chain.netuid, self.chain.block)
    }
}

/// Why a history file could not be read or written.
#[derive(Debug, Error)]
pub enum RecordError {
    /// The file system.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// A line that is not a record.
    #[error("{path}: record {line}: {reason}")]
    Bad {
        /// The file.
        path: PathBuf,
        /// 1-based record number.
        line: u64,
        /// Why.
        reason: String,
    },
}

fn compressed(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "zst")
}

/// Only the key of a record, read without building the rest.
#[derive(Deserialize)]
struct KeyOnly {
    chain: KeyFacts,
}

#[derive(Deserialize)]
struct KeyFacts {
    netuid: u16,
    block: u64,
}

/// Appends records to a history file, resuming after what an earlier run wrote.
pub struct RecordWriter {
    path: PathBuf,
    file: File,
    zst: bool,
    pending: Vec<u8>,
    records: usize,
    since: Instant,
}

impl RecordWriter {
    /// Opens `path` for appending (creating it), and returns the keys of the complete
    /// records already in it. A torn end (a partial frame or line) is cut off.
    pub fn open(path: &Path) -> Result<(Self, HashSet<(u16, u64)>), RecordError> {
        let io = |source| RecordError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)
            .map_err(io)?;
        let zst = compressed(path);
        let (done, good) = scan(path, &mut file, zst)?;
        if good < file.metadata().map_err(io)?.len() {
            tracing::warn!("{}: cutting a torn end off at byte {good}", path.display());
            file.set_len(good).map_err(io)?;
        }
        file.seek(io::SeekFrom::End(0)).map_err(io)?;
        let w = Self {
            path: path.to_path_buf(),
            file,
            zst,
            pending: Vec::new(),
            records: 0,
            since: Instant::now(),
        };
        Ok((w, done))
    }

    /// Adds a record; it is on disk after the next frame closes (see [`Self::flush`]).
    pub fn write(&mut self, record: &EpochRecord) -> Result<(), RecordError> {
        serde_json::to_writer(&mut self.pending, record).map_err(|e| RecordError::Bad {
            path: self.path.clone(),
            line: 0,
            reason: e.to_string(),
        })?;
        self.pending.push(b'\n');
        self.records += 1;
        if self.records >= FRAME_RECORDS
            || self.pending.len() >= FRAME_BYTES
            || self.since.elapsed() >= FRAME_AGE
        {
            self.flush()?;
        }
        Ok(())
    }

    /// Closes the current frame: every record written so far is on disk.
    pub fn flush(&mut self) -> Result<(), RecordError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let io = |source| RecordError::Io {
            path: self.path.clone(),
            source,
        };
        if self.zst {
            let frame = zstd::bulk::compress(&self.pending, LEVEL).map_err(io)?;
            self.file.write_all(&frame).map_err(io)?;
        } else {
            self.file.write_all(&self.pending).map_err(io)?;
        }
        self.file.flush().map_err(io)?;
        self.pending.clear();
        self.records = 0;
        self.since = Instant::now();
        Ok(())
    }
}

impl Drop for RecordWriter {
    fn drop(&mut self) {
        if let Err(e) = self.flush() {
            tracing::error!("{e}");
        }
    }
}

/// Splits decompressed bytes into lines and reads each line's key.
struct Lines<'a> {
    path: &'a Path,
    /// The line read so far (no newline yet).
    line: Vec<u8>,
    /// Lines seen, for errors.
    count: u64,
    /// Keys since the last clean point.
    keys: Vec<(u16, u64)>,
}

impl Lines<'_> {
    fn take(&mut self, bytes: &[u8]) -> Result<(), RecordError> {
        for part in bytes.split_inclusive(|&b| b == b'\n') {
            self.line.extend_from_slice(part);
            if self.line.last() != Some(&b'\n') {
                continue;
            }
            self.count += 1;
            if !self.line.iter().all(u8::is_ascii_whitespace) {
                let k: KeyOnly =
                    serde_json::from_slice(&self.line).map_err(|e| RecordError::Bad {
                        path: self.path.to_path_buf(),
                        line: self.count,
                        reason: e.to_string(),
                    })?;
                self.keys.push((k.chain.netuid, k.chain.block));
            }
            self.line.clear();
        }
        Ok(())
    }

    /// At a point where every line read is complete: its keys count.
    fn clean(&self) -> bool {
        self.line.is_empty()
    }
}

/// The keys of the complete records in `file`, and the byte length they take: whole
/// lines (plain) or whole frames ending at a line end (zstd).
fn scan(
    path: &Path,
    file: &mut File,
    zst: bool,
) -> Result<(HashSet<(u16, u64)>, u64), RecordError> {
    let io = |source| RecordError::Io {
        path: path.to_path_buf(),
        source,
    };
    file.seek(io::SeekFrom::Start(0)).map_err(io)?;
    let mut done = HashSet::new();
    let mut lines = Lines {
        path,
        line: Vec::new(),
        count: 0,
        keys: Vec::new(),
    };
    let mut good = 0u64;
    let mut read_at = 0u64;
    let mut inbuf = vec![0u8; 1 << 17];
    if !zst {
        loop {
            let n = file.read(&mut inbuf).map_err(io)?;
            if n == 0 {
                break;
            }
            lines.take(&inbuf[..n])?;
            read_at += n as u64;
            if let Some(p) = inbuf[..n].iter().rposition(|&b| b == b'\n') {
                good = read_at - (n - p - 1) as u64;
                done.extend(lines.keys.drain(..));
            }
        }
        return Ok((done, good));
    }
    let mut dctx = DCtx::create();
    let mut outbuf = vec![0u8; 1 << 17];
    'file: loop {
        let n = file.read(&mut inbuf).map_err(io)?;
        if n == 0 {
            break;
        }
        let mut input = InBuffer::around(&inbuf[..n]);
        loop {
            let mut output = OutBuffer::around(&mut outbuf[..]);
            let hint = match dctx.decompress_stream(&mut output, &mut input) {
                Ok(h) => h,
                // A torn or foreign tail: keep what was complete before it.
                Err(_) => break 'file,
            };
            let produced = output.pos();
            let full = produced == outbuf.len();
            lines.take(&outbuf[..produced])?;
            if hint == 0 && lines.clean() {
                good = read_at + input.pos as u64;
                done.extend(lines.keys.drain(..));
            }
            if input.pos == n && !full {
                break;
            }
        }
        read_at += n as u64;
    }
    Ok((done, good))
}

/// Reads the records of a history file in order, a line at a time (constant memory).
pub struct RecordReader {
    path: PathBuf,
    lines: Box<dyn BufRead + Send>,
    line: u64,
    buf: Vec<u8>,
}

impl RecordReader {
    /// Opens `path` (`.zst`: zstd frames; otherwise plain JSON lines).
    pub fn open(path: &Path) -> Result<Self, RecordError> {
        let io = |source| RecordError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        let lines: Box<dyn BufRead + Send> = if compressed(path) {
            Box::new(BufReader::with_capacity(
                1 << 20,
                zstd::stream::read::Decoder::new(file).map_err(io)?,
            ))
        } else {
            Box::new(BufReader::with_capacity(1 << 20, file))
        };
        Ok(Self {
            path: path.to_path_buf(),
            lines,
            line: 0,
            buf: Vec::new(),
        })
    }

    /// The next line's bytes (without decoding it), or `None` at the end. Blank lines are
    /// skipped.
    pub fn next_line(&mut self) -> Result<Option<(u64, Vec<u8>)>, RecordError> {
        loop {
            self.buf.clear();
            let n = self
                .lines
                .read_until(b'\n', &mut self.buf)
                .map_err(|source| RecordError::Io {
                    path: self.path.clone(),
                    source,
                })?;
            if n == 0 {
                return Ok(None);
            }
            self.line += 1;
            if !self.buf.iter().all(u8::is_ascii_whitespace) {
                return Ok(Some((self.line, std::mem::take(&mut self.buf))));
            }
        }
    }

    /// Decodes one line read by [`Self::next_line`].
    pub fn decode(&self, line: u64, bytes: &[u8]) -> Result<EpochRecord, RecordError> {
        decode_record(&self.path, line, bytes)
    }

    /// The file being read.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// A record with its input still text, for the model's fast reader.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Parts<'a> {
    format: u32,
    kind: CaseKind,
    name: String,
    #[serde(borrow)]
    input: &'a serde_json::value::RawValue,
    chain: ChainFacts,
}

/// Decodes record `line` of `path`; a bad record's error names the field's path.
pub fn decode_record(path: &Path, line: u64, bytes: &[u8]) -> Result<EpochRecord, RecordError> {
    let bad = |reason: String| RecordError::Bad {
        path: path.to_path_buf(),
        line,
        reason,
    };
    // The fast decode first (the input, the bulk, through the model's own reader); the
    // path-tracking one only to explain a failure.
    let parts = serde_json::from_slice::<Parts>(bytes).map_err(|_| {
        let de = &mut serde_json::Deserializer::from_slice(bytes);
        bad(
            match serde_path_to_error::deserialize::<_, EpochRecord>(de) {
                Err(e) => format!("at `{}`: {}", e.path(), e.inner()),
                Ok(_) => "does not decode".to_string(),
            },
        )
    })?;
    let input =
        SubnetInput::from_json(parts.input.get()).map_err(|e| bad(format!("in `input`: {e}")))?;
    Ok(EpochRecord {
        format: parts.format,
        kind: parts.kind,
        name: parts.name,
        input,
        chain: parts.chain,
    })
}
