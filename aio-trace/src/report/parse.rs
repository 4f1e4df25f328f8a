//! Recorded lines → rows. JSONL (a `record` file or `snoop --json` output) or
//! CSV (a `record` file), told apart by the first byte.

use std::{
    collections::BTreeMap,
    fs::File,
    io::{self, BufRead, BufReader},
    path::Path,
};

use serde::Deserialize;
use thiserror::Error;

use crate::export::{FORMAT_VERSION, Header};
pub use crate::model::IocbRow;

#[derive(Debug, Error)]
pub enum ReportError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("{path} is empty: not a recording")]
    Empty { path: String },
    #[error("{path}:{line}: {message}")]
    Bad {
        path: String,
        line: u64,
        message: String,
    },
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
    let file = File::open(path).map_err(|source| ReportError::Io {
        path: name.clone(),
        source,
    })?;
    read(
        BufReader::with_capacity(1 << 16, file),
        &name,
        skip_bad,
        on_row,
    )
}

/// Parses a JSONL or CSV recording, handing each row to `on_row`. A bad line
/// is an error naming `name` and the line, or with `skip_bad` is noted in
/// [`ReadInfo::skipped`] and passed over.
pub fn read(
    mut input: impl BufRead,
    name: &str,
    skip_bad: bool,
    on_row: &mut impl FnMut(Row),
) -> Result<ReadInfo, ReportError> {
    let io_err = |source| ReportError::Io {
        path: name.to_owned(),
        source,
    };
    let first = loop {
        let buf = input.fill_buf().map_err(io_err)?;
        match buf.first() {
            None => return Err(ReportError::Empty { path: name.into() }),
            Some(b) if b.is_ascii_whitespace() => input.consume(1),
            Some(&b) => break b,
        }
    };
    if first == b'{' {
        read_jsonl(input, name, skip_bad, on_row)
    } else {
        read_csv(input, name, skip_bad, on_row)
    }
}

fn read_jsonl(
    mut input: impl BufRead,
    name: &str,
    skip_bad: bool,
    on_row: &mut impl FnMut(Row),
) -> Result<ReadInfo, ReportError> {
    let mut info = ReadInfo {
        format: "jsonl",
        ..ReadInfo::default()
    };
    let mut buf = Vec::with_capacity(1024);
    let mut line_no = 0u64;
    loop {
        buf.clear();
        let n = input
            .read_until(b'\n', &mut buf)
            .map_err(|source| ReportError::Io {
                path: name.to_owned(),
                source,
            })?;
        if n == 0 {
            break;
        }
        line_no += 1;
        let unterminated = buf.last() != Some(&b'\n');
        let text = buf.trim_ascii();
        if text.is_empty() {
            continue;
        }
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
                    line: line_no,
                    found,
                });
            }
            Err(LineError::Bad(message)) => {
                let message = if unterminated {
                    format!("truncated line (the recording was cut short): {message}")
                } else {
                    message
                };
                if !skip_bad {
                    return Err(ReportError::Bad {
                        path: name.to_owned(),
                        line: line_no,
                        message,
                    });
                }
                info.skipped.push(BadLine {
                    line: line_no,
                    message,
                });
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

fn read_csv(
    input: impl BufRead,
    name: &str,
    skip_bad: bool,
    on_row: &mut impl FnMut(Row),
) -> Result<ReadInfo, ReportError> {
    let mut info = ReadInfo {
        format: "csv",
        // A CSV recording has no closing lines: complete if it parses.
        complete: true,
        ..ReadInfo::default()
    };
    let mut reader = csv::ReaderBuilder::new().from_reader(input);
    let headers = reader
        .byte_headers()
        .map_err(|e| csv_error(name, 1, e))?
        .clone();
    for required in ["type", "op", "pid", "ctx", "submit_ns", "latency_ns"] {
        if !headers.iter().any(|h| h == required.as_bytes()) {
            return Err(ReportError::Bad {
                path: name.to_owned(),
                line: 1,
                message: format!("not an aio-trace CSV recording: no {required:?} column"),
            });
        }
    }
    let mut record = csv::ByteRecord::new();
    loop {
        let line = reader.position().line();
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let at = e.position().map_or(line, |p| p.line());
                let err = csv_error(name, at, e);
                // The reader cannot resume after an I/O error.
                if !skip_bad || matches!(err, ReportError::Io { .. }) {
                    return Err(err);
                }
                if let ReportError::Bad { line, message, .. } = err {
                    info.skipped.push(BadLine { line, message });
                }
                continue;
            }
        }
        let at = record.position().map_or(line, |p| p.line());
        match record.deserialize::<IocbRow>(Some(&headers)) {
            Ok(row) if row.kind == "iocb" || row.kind == "syscall" => {
                info.lines += 1;
                on_row(Row::Iocb(row));
            }
            Ok(row) => {
                let message = format!("unknown record type {:?}", row.kind);
                if !skip_bad {
                    return Err(ReportError::Bad {
                        path: name.to_owned(),
                        line: at,
                        message,
                    });
                }
                info.skipped.push(BadLine { line: at, message });
            }
            Err(e) => {
                let err = csv_error(name, at, e);
                if !skip_bad {
                    return Err(err);
                }
                if let ReportError::Bad { line, message, .. } = err {
                    info.skipped.push(BadLine { line, message });
                }
            }
        }
    }
    Ok(info)
}

fn csv_error(name: &str, line: u64, e: csv::Error) -> ReportError {
    match e.into_kind() {
        csv::ErrorKind::Io(source) => ReportError::Io {
            path: name.to_owned(),
            source,
        },
        csv::ErrorKind::Utf8 { err, .. } => ReportError::Bad {
            path: name.to_owned(),
            line,
            message: format!("not UTF-8: {err}"),
        },
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => ReportError::Bad {
            path: name.to_owned(),
            line,
            message: format!(
                "{len} fields where the header has {expected_len} (a truncated or garbled row)"
            ),
        },
        csv::ErrorKind::Deserialize { err, .. } => ReportError::Bad {
            path: name.to_owned(),
            line,
            message: format!("bad record: {err}"),
        },
        other => ReportError::Bad {
            path: name.to_owned(),
            line,
            message: format!("{other:?}"),
        },
    }
}
