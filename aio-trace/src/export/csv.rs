//! CSV recordings: a header row, then one row per iocb or syscall record,
//! with the JSON record's field names; null is an empty field.

use std::io::{self, Write};

use aio_trace_common::IocbRecord;

use super::{Closing, Exporter};
use crate::{cgroup::CgroupNames, output::IocbJson, reader::Record, session::Sink};

pub struct CsvWriter<W: Write> {
    out: csv::Writer<W>,
    cgroups: CgroupNames,
}

fn to_io(e: csv::Error) -> io::Error {
    match e.into_kind() {
        csv::ErrorKind::Io(e) => e,
        other => io::Error::other(format!("{other:?}")),
    }
}

/// The header row, taken from the record type itself so the two never differ.
pub fn header_row() -> Vec<u8> {
    let mut probe = csv::Writer::from_writer(Vec::new());
    probe
        .serialize(IocbJson::new(&IocbRecord::default()))
        .expect("serializing into memory");
    let bytes = probe.into_inner().expect("flushing into memory");
    let end = bytes.iter().position(|&b| b == b'\n').map_or(0, |i| i + 1);
    bytes[..end].to_vec()
}

impl<W: Write> CsvWriter<W> {
    pub fn new(mut out: W) -> io::Result<Self> {
        out.write_all(&header_row())?;
        Ok(Self {
            out: csv::WriterBuilder::new()
                .has_headers(false)
                .from_writer(out),
            cgroups: CgroupNames::system(),
        })
    }

    pub fn into_inner(self) -> io::Result<W> {
        self.out.into_inner().map_err(|e| e.into_error())
    }
}

impl<W: Write> Sink for CsvWriter<W> {
    fn record(&mut self, record: &Record) -> io::Result<()> {
        match record {
            Record::Iocb(r) | Record::Syscall(r) => {
                let path = self.cgroups.path(r.cgroup).map(|p| &**p);
                self.out
                    .serialize(IocbJson::new(r).with_cgroup_path(path))
                    .map_err(to_io)
            }
            // Context setup/destroy lines have other columns: JSONL keeps them.
            Record::Ctx(_) => Ok(()),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

impl<W: Write> Exporter for CsvWriter<W> {
    /// The summary and loss lines have other columns: `record` prints them on stderr.
    fn finish(&mut self, _closing: &Closing) -> io::Result<()> {
        self.out.flush()
    }
}
