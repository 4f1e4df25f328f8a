//! CSV recordings: the header checked, each row deserialised into the
//! schema's row, over the same bounded line reader as JSONL.

use std::io::{self, BufRead, Read};

use super::*;

/// A CSV reader's input: the lines of [`Lines`], a too-long or binary line
/// after the header either refused (the reader then fails with an I/O error
/// and `refusal` says why) or, with `skip_bad`, noted and handed on as an
/// empty line, which the CSV reader passes over.
struct CsvFeed<R> {
    lines: Lines<R>,
    skip_bad: bool,
    /// The header's line number.
    header: u64,
    buf: Vec<u8>,
    pos: usize,
    /// Bytes handed to the CSV reader; `mark`: where its current record starts.
    served: u64,
    mark: u64,
    skipped: Vec<BadLine>,
    refusal: Option<Refusal>,
    /// The number of the last line when it ends without a newline.
    unterminated: Option<u64>,
}

#[derive(Clone, Copy, Debug)]
enum Refusal {
    TooLong(u64),
    Binary(u64),
    RecordTooLong(u64),
}

impl Refusal {
    fn into_error(self, path: &str) -> ReportError {
        let path = path.to_owned();
        match self {
            Refusal::TooLong(line) => ReportError::TooLong { path, line },
            Refusal::Binary(line) => ReportError::Binary { path, line },
            Refusal::RecordTooLong(line) => ReportError::RecordTooLong { path, line },
        }
    }
}

impl<R: BufRead> CsvFeed<R> {
    fn refuse(&mut self, refusal: Refusal) -> io::Error {
        self.refusal = Some(refusal);
        io::Error::other("not an aio-trace recording")
    }
}

impl<R: BufRead> Read for CsvFeed<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.buf.len() {
            self.pos = 0;
            // The header cannot be skipped: without it nothing else reads.
            let skippable = self.skip_bad && self.lines.line >= self.header;
            let Some(kind) = self.lines.next(&mut self.buf, skippable)? else {
                return Ok(0);
            };
            let line = self.lines.line;
            match kind {
                Line::Text { terminated } => {
                    if !terminated {
                        self.unterminated = Some(line);
                    }
                }
                Line::TooLong | Line::Binary if skippable => {
                    let message = if kind == Line::TooLong {
                        TOO_LONG
                    } else {
                        NUL_BYTE
                    };
                    self.skipped.push(BadLine {
                        line,
                        message: message.into(),
                    });
                    self.buf.clear();
                    self.buf.push(b'\n');
                }
                Line::TooLong => return Err(self.refuse(Refusal::TooLong(line))),
                Line::Binary => return Err(self.refuse(Refusal::Binary(line))),
            }
        }
        if self.served - self.mark > MAX_CSV_RECORD {
            let line = self.lines.line;
            return Err(self.refuse(Refusal::RecordTooLong(line)));
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        self.served += n as u64;
        Ok(n)
    }
}

pub(super) fn read_csv(
    lines: Lines<impl BufRead>,
    name: &str,
    skip_bad: bool,
    on_row: &mut impl FnMut(Row),
) -> Result<ReadInfo, ReportError> {
    let mut info = ReadInfo {
        format: "csv",
        // A CSV recording has no closing lines: complete unless its last line is cut.
        complete: true,
        ..ReadInfo::default()
    };
    // The CSV reader counts lines from the header; `base` makes them the file's.
    let base = lines.line;
    let feed = CsvFeed {
        lines,
        skip_bad,
        header: base + 1,
        buf: Vec::new(),
        pos: 0,
        served: 0,
        mark: 0,
        skipped: Vec::new(),
        refusal: None,
        unterminated: None,
    };
    let mut reader = csv::ReaderBuilder::new().from_reader(feed);
    let headers = match reader.byte_headers() {
        Ok(h) => h.clone(),
        Err(e) => return Err(csv_failure(&mut reader, name, base + 1, e)),
    };
    if !headers.iter().any(|h| h == b"type") {
        return Err(ReportError::Bad {
            path: name.to_owned(),
            line: base + 1,
            message: "not an aio-trace recording: neither a JSON record nor a CSV header with a \"type\" column".into(),
        });
    }
    for required in ["op", "pid", "ctx", "submit_ns", "latency_ns"] {
        if !headers.iter().any(|h| h == required.as_bytes()) {
            return Err(ReportError::Bad {
                path: name.to_owned(),
                line: base + 1,
                message: format!("not an aio-trace CSV recording: no {required:?} column"),
            });
        }
    }
    let mut record = csv::ByteRecord::new();
    loop {
        reader.get_mut().mark = reader.position().byte();
        let line = base + reader.position().line();
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let at = base + e.position().map_or(line - base, |p| p.line());
                let err = csv_failure(&mut reader, name, at, e);
                // The reader cannot resume after an I/O error.
                if !skip_bad || !matches!(err, ReportError::Bad { .. }) {
                    return Err(torn_if_last(&mut reader, err));
                }
                if let ReportError::Bad { line, message, .. } = err {
                    info.skipped.push(BadLine { line, message });
                }
                continue;
            }
        }
        let at = base + record.position().map_or(line - base, |p| p.line());
        let message = match record.deserialize::<IocbRow>(Some(&headers)) {
            Ok(row) if row.kind == "iocb" || row.kind == "syscall" => {
                info.lines += 1;
                on_row(Row::Iocb(row));
                continue;
            }
            Ok(row) => format!("unknown record type {:?}", row.kind),
            Err(e) => match csv_error(name, at, e) {
                ReportError::Bad { message, .. } => message,
                other => return Err(other),
            },
        };
        if !skip_bad {
            let err = ReportError::Bad {
                path: name.to_owned(),
                line: at,
                message,
            };
            return Err(torn_if_last(&mut reader, err));
        }
        info.skipped.push(BadLine { line: at, message });
    }
    let feed = reader.into_inner();
    if let Some(last) = feed.unterminated
        && let Some(bad) = info.skipped.iter_mut().rev().find(|b| b.line == last)
    {
        bad.message = format!("{TRUNCATED}: {}", bad.message);
        info.complete = false;
    }
    info.skipped.extend(feed.skipped);
    info.skipped.sort_by_key(|b| b.line);
    Ok(info)
}

/// `err` (a bad row) as [`ReportError::Torn`] when its row is the input's
/// last and that line has no newline.
fn torn_if_last<R: BufRead>(reader: &mut csv::Reader<CsvFeed<R>>, err: ReportError) -> ReportError {
    let ReportError::Bad {
        path,
        line,
        message,
    } = err
    else {
        return err;
    };
    let mut next = csv::ByteRecord::new();
    let last = matches!(reader.read_byte_record(&mut next), Ok(false));
    match reader.get_ref().unterminated {
        Some(end) if last && end >= line => ReportError::Torn {
            path,
            line,
            message,
        },
        _ => ReportError::Bad {
            path,
            line,
            message,
        },
    }
}

/// A CSV reader's error, or why the feed refused the input.
fn csv_failure<R: BufRead>(
    reader: &mut csv::Reader<CsvFeed<R>>,
    name: &str,
    line: u64,
    e: csv::Error,
) -> ReportError {
    match reader.get_mut().refusal.take() {
        Some(refusal) => refusal.into_error(name),
        None => csv_error(name, line, e),
    }
}

fn csv_error(name: &str, line: u64, e: csv::Error) -> ReportError {
    match e.into_kind() {
        csv::ErrorKind::Io(error) => ReportError::Io {
            path: name.to_owned(),
            error,
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
