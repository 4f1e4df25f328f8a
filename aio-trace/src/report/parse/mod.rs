//! Recorded lines → rows. JSONL (a `record` file or `snoop --json` output) or
//! CSV (a `record` file), told apart by the first byte. Every line is read
//! through [`Lines`], which bounds its length, so no input makes the reader
//! hold more than about [`MAX_LINE`] bytes of it.

use std::{
    collections::BTreeMap,
    fs::File,
    io::{self, BufRead, BufReader},
    path::Path,
};

use serde::Deserialize;
use thiserror::Error;

use self::csv_rows::read_csv;
use crate::export::{FORMAT_VERSION, Header};

mod csv_rows;
pub use crate::model::IocbRow;

/// The longest line read. aio-trace's lines are well under a kilobyte; a
/// longer one is not a recording, and reading it whole would let one line
/// take all memory (`report /dev/zero`).
pub const MAX_LINE: usize = 1 << 20;

/// The most CSV bytes one record may span (a quoted field may hold a
/// newline): an unclosed quote would otherwise swallow the rest of the file.
const MAX_CSV_RECORD: u64 = 2 * MAX_LINE as u64;

#[derive(Debug, Error)]
pub enum ReportError {
    // The cause is in the message, so not a `source` (printed twice otherwise).
    #[error("cannot read {path}: {error}")]
    Io { path: String, error: io::Error },
    #[error("{path} is empty: not a recording")]
    Empty { path: String },
    #[error("{path}:{line}: {message}")]
    Bad {
        path: String,
        line: u64,
        message: String,
    },
    /// The last line ends without a newline and does not parse: the writer
    /// was stopped mid-line. Every line before it was read.
    #[error("{path}:{line}: {message}; the last line is incomplete (was the recording killed?)")]
    Torn {
        path: String,
        line: u64,
        message: String,
    },
    #[error("{path}:{line}: a line longer than 1 MiB: not an aio-trace recording")]
    TooLong { path: String, line: u64 },
    #[error(
        "{path}:{line}: a CSV record longer than 2 MiB (an unclosed quote?): not an aio-trace recording"
    )]
    RecordTooLong { path: String, line: u64 },
    #[error("{path} is not an aio-trace recording (binary data at line {line})")]
    Binary { path: String, line: u64 },
    #[error("{path} is {compression}-compressed: decompress it first ({command})")]
    Compressed {
        path: String,
        compression: &'static str,
        command: String,
    },
    #[error(
        "{path} is a Perfetto trace (record --format perfetto or chrome-json); report reads JSONL or CSV recordings — record with -o FILE.jsonl"
    )]
    Perfetto { path: String },
    #[error(
        "{path}:{line}: format_version {found} is newer than this aio-trace reads ({FORMAT_VERSION})"
    )]
    Version { path: String, line: u64, found: u64 },
}

/// The per (process, context) kernel counters of the closing lines.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct SummaryRow {
    pub pid: u32,
    pub ctx: u64,
    pub io_submit_calls: u64,
    pub iocbs_submitted: u64,
    pub io_getevents_calls: u64,
    pub events_reaped: u64,
}

/// The loss counters by cause.
pub type LossRow = BTreeMap<String, u64>;

#[derive(Clone, Debug, PartialEq)]
pub enum Row {
    Header(Header),
    Iocb(IocbRow),
    Summary(SummaryRow),
    Lost(LossRow),
}

/// A line skipped with `--skip-bad`.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct BadLine {
    pub line: u64,
    pub message: String,
}

/// What reading found besides the rows.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReadInfo {
    pub format: &'static str,
    pub lines: u64,
    pub skipped: Vec<BadLine>,
    /// The closing loss line was there: the recording ended cleanly.
    pub complete: bool,
}

#[derive(Deserialize)]
struct Tag<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<std::borrow::Cow<'a, str>>,
    format_version: Option<serde_json::Value>,
}

/// Reads a recording file; see [`read`].
pub fn read_file(
    path: &Path,
    skip_bad: bool,
    on_row: &mut impl FnMut(Row),
) -> Result<ReadInfo, ReportError> {
    let name = path.display().to_string();
    let file = File::open(path).map_err(|error| ReportError::Io {
        path: name.clone(),
        error,
    })?;
    read(
        BufReader::with_capacity(1 << 16, file),
        &name,
        skip_bad,
        on_row,
    )
}

/// `fill_buf`, retried when a signal interrupts it.
fn fill(input: &mut impl BufRead) -> io::Result<&[u8]> {
    loop {
        match input.fill_buf() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // Polonius would accept returning `input.fill_buf()` here; the
            // second call is free (the buffer is already full).
            Ok(_) => return input.fill_buf(),
            Err(e) => return Err(e),
        }
    }
}

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Compressed files by magic number: (name, tool, file extension).
const COMPRESSED: [(&[u8], &str, &str, &str); 3] = [
    (b"\x1F\x8B", "gzip", "zcat", ".gz"),
    (b"\x28\xB5\x2F\xFD", "zstd", "zstdcat", ".zst"),
    (b"\xFD7zXZ\x00", "xz", "xzcat", ".xz"),
];

/// Control characters (other than tabs, line ends and form feeds) or bytes
/// that are not UTF-8: no aio-trace writer puts these in a first line. A
/// multi-byte character cut at the end of `bytes` is not counted.
fn looks_binary(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .any(|&b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0C))
        || std::str::from_utf8(bytes).is_err_and(|e| e.error_len().is_some())
}

/// Chrome/Perfetto trace-event JSON: `{"traceEvents":[…`, or the bare
/// `[{…},…` array form (as `record --format chrome-json` writes it).
fn looks_like_perfetto(head: &[u8]) -> bool {
    let after = |open: u8| {
        head.strip_prefix(&[open])
            .map(|rest| rest.trim_ascii_start())
    };
    if let Some(rest) = after(b'{') {
        return rest.starts_with(b"\"traceEvents\"");
    }
    after(b'[').is_some_and(|rest| rest.is_empty() || rest[0] == b'{' || rest[0] == b']')
}

/// Parses a JSONL or CSV recording, handing each row to `on_row`. A bad line
/// is an error naming `name` and the line, or with `skip_bad` is noted in
/// [`ReadInfo::skipped`] and passed over. A file that is not a recording at
/// all (compressed, binary, a Perfetto trace) is an error saying what it is.
/// A UTF-8 byte order mark is skipped.
pub fn read(
    mut input: impl BufRead,
    name: &str,
    skip_bad: bool,
    on_row: &mut impl FnMut(Row),
) -> Result<ReadInfo, ReportError> {
    let io_err = |error| ReportError::Io {
        path: name.to_owned(),
        error,
    };
    let head = fill(&mut input).map_err(io_err)?;
    if crate::export::perfetto::looks_like_trace(head) {
        return Err(ReportError::Perfetto {
            path: name.to_owned(),
        });
    }
    if let Some(&(_, compression, tool, ext)) = COMPRESSED
        .iter()
        .find(|(magic, ..)| head.starts_with(magic))
    {
        let out = name
            .strip_suffix(ext)
            .filter(|s| !s.is_empty())
            .map_or_else(|| format!("{name}.jsonl"), str::to_owned);
        return Err(ReportError::Compressed {
            path: name.to_owned(),
            compression,
            command: format!("{tool} {name} > {out}"),
        });
    }
    if head.starts_with(UTF8_BOM) {
        input.consume(UTF8_BOM.len());
    }
    // Leading blank lines still count in the line numbers.
    let mut blank_lines = 0u64;
    loop {
        let buf = fill(&mut input).map_err(io_err)?;
        if buf.is_empty() {
            return Err(ReportError::Empty { path: name.into() });
        }
        let text = buf.iter().position(|b| !b.is_ascii_whitespace());
        let n = text.unwrap_or(buf.len());
        blank_lines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
        input.consume(n);
        if text.is_some() {
            break;
        }
    }
    let head = fill(&mut input).map_err(io_err)?;
    let first_line = &head[..head.iter().position(|&b| b == b'\n').unwrap_or(head.len())];
    if looks_binary(first_line) {
        return Err(ReportError::Binary {
            path: name.to_owned(),
            line: blank_lines + 1,
        });
    }
    if looks_like_perfetto(head) {
        return Err(ReportError::Perfetto {
            path: name.to_owned(),
        });
    }
    let jsonl = head[0] == b'{';
    let lines = Lines {
        input,
        line: blank_lines,
    };
    if jsonl {
        read_jsonl(lines, name, skip_bad, on_row)
    } else {
        read_csv(lines, name, skip_bad, on_row)
    }
}

/// What [`Lines::next`] found.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Line {
    /// The line is in the buffer, with its newline if it has one (only the
    /// last line of the input may not).
    Text { terminated: bool },
    /// Longer than [`MAX_LINE`]: not kept; with `skip_long` read to its
    /// end, else reading stopped inside it.
    TooLong,
    /// Holds a NUL byte.
    Binary,
}

/// The input split at newlines, no line held longer than [`MAX_LINE`].
struct Lines<R> {
    input: R,
    /// The number of the line last returned (1-based).
    line: u64,
}

impl<R: BufRead> Lines<R> {
    /// The next line into `buf` (replacing what it held), or None at the end.
    fn next(&mut self, buf: &mut Vec<u8>, skip_long: bool) -> io::Result<Option<Line>> {
        buf.clear();
        let mut seen = false;
        let mut too_long = false;
        let mut terminated = false;
        loop {
            let chunk = fill(&mut self.input)?;
            if chunk.is_empty() {
                break;
            }
            seen = true;
            let newline = chunk.iter().position(|&b| b == b'\n');
            let take = newline.map_or(chunk.len(), |i| i + 1);
            if !too_long {
                if buf.len() + take > MAX_LINE + usize::from(newline.is_some()) {
                    too_long = true;
                    buf.clear();
                } else {
                    buf.extend_from_slice(&chunk[..take]);
                }
            }
            self.input.consume(take);
            if newline.is_some() {
                terminated = true;
                break;
            }
            if too_long && !skip_long {
                break;
            }
        }
        if !seen {
            return Ok(None);
        }
        self.line += 1;
        Ok(Some(if too_long {
            Line::TooLong
        } else if buf.contains(&0) {
            Line::Binary
        } else {
            Line::Text { terminated }
        }))
    }
}

const TOO_LONG: &str = "a line longer than 1 MiB";
const NUL_BYTE: &str = "binary data (a NUL byte)";
const TRUNCATED: &str = "truncated line (the recording was cut short)";

fn read_jsonl(
    mut lines: Lines<impl BufRead>,
    name: &str,
    skip_bad: bool,
    on_row: &mut impl FnMut(Row),
) -> Result<ReadInfo, ReportError> {
    let mut info = ReadInfo {
        format: "jsonl",
        ..ReadInfo::default()
    };
    let mut buf = Vec::with_capacity(1024);
    let mut first = true;
    let first_line = lines.line + 1;
    loop {
        // A first line too long is no recording: refused, even with
        // --skip-bad, without reading on through an endless one.
        let skip_long = skip_bad && lines.line >= first_line;
        let next = lines
            .next(&mut buf, skip_long)
            .map_err(|error| ReportError::Io {
                path: name.to_owned(),
                error,
            })?;
        let Some(kind) = next else { break };
        let line = lines.line;
        let terminated = match kind {
            Line::Text { terminated } => terminated,
            Line::TooLong if skip_long => {
                info.skipped.push(BadLine {
                    line,
                    message: TOO_LONG.into(),
                });
                continue;
            }
            Line::Binary if skip_bad => {
                info.skipped.push(BadLine {
                    line,
                    message: NUL_BYTE.into(),
                });
                continue;
            }
            Line::TooLong => {
                return Err(ReportError::TooLong {
                    path: name.to_owned(),
                    line,
                });
            }
            Line::Binary => {
                return Err(ReportError::Binary {
                    path: name.to_owned(),
                    line,
                });
            }
        };
        let text = buf.trim_ascii();
        if text.is_empty() {
            continue;
        }
        let was_first = std::mem::replace(&mut first, false);
        match parse_line(text) {
            Ok(parsed) => {
                info.lines += 1;
                if let Some(row) = parsed {
                    if matches!(row, Row::Lost(_)) {
                        info.complete = true;
                    }
                    on_row(row);
                }
            }
            Err(LineError::Version(found)) => {
                return Err(ReportError::Version {
                    path: name.to_owned(),
                    line,
                    found,
                });
            }
            Err(LineError::Bad(message)) => {
                // Another key order of a trace-event file than the one `read` sniffs.
                if was_first && text.windows(13).any(|w| w == b"\"traceEvents\"") {
                    return Err(ReportError::Perfetto {
                        path: name.to_owned(),
                    });
                }
                if !skip_bad {
                    let path = name.to_owned();
                    return Err(if terminated {
                        ReportError::Bad {
                            path,
                            line,
                            message,
                        }
                    } else {
                        ReportError::Torn {
                            path,
                            line,
                            message,
                        }
                    });
                }
                let message = if terminated {
                    message
                } else {
                    format!("{TRUNCATED}: {message}")
                };
                info.skipped.push(BadLine { line, message });
            }
        }
    }
    Ok(info)
}

enum LineError {
    Version(u64),
    Bad(String),
}

fn bad(e: impl std::fmt::Display) -> LineError {
    LineError::Bad(e.to_string())
}

/// A parsed line; context lines and device summaries are read and dropped (None).
fn parse_line(text: &[u8]) -> Result<Option<Row>, LineError> {
    let tag: Tag =
        serde_json::from_slice(text).map_err(|e| bad(format!("not a JSON record: {e}")))?;
    let Some(kind) = tag.kind else {
        return Err(bad("a JSON object without a \"type\""));
    };
    Ok(match kind.as_ref() {
        "header" => {
            let version = tag.format_version.as_ref().and_then(|v| v.as_u64());
            match version {
                Some(v) if v == u64::from(FORMAT_VERSION) => {}
                Some(v) => return Err(LineError::Version(v)),
                None => return Err(bad("a header without a numeric format_version")),
            }
            Some(Row::Header(
                serde_json::from_slice(text).map_err(|e| bad(format!("bad header: {e}")))?,
            ))
        }
        "iocb" | "syscall" => Some(Row::Iocb(
            serde_json::from_slice(text).map_err(|e| bad(format!("bad {kind} record: {e}")))?,
        )),
        "summary" => Some(Row::Summary(
            serde_json::from_slice(text).map_err(|e| bad(format!("bad summary line: {e}")))?,
        )),
        "lost" => {
            let all: BTreeMap<String, serde_json::Value> =
                serde_json::from_slice(text).map_err(|e| bad(format!("bad lost line: {e}")))?;
            let mut row = LossRow::new();
            for (cause, v) in all {
                if cause == "type" {
                    continue;
                }
                let n = v
                    .as_u64()
                    .ok_or_else(|| bad(format!("lost counter {cause} is not a count: {v}")))?;
                row.insert(cause, n);
            }
            Some(Row::Lost(row))
        }
        "ctx" | "device" => None,
        other => return Err(bad(format!("unknown record type {other:?}"))),
    })
}
