//! JSONL recordings: a header line, then the `snoop --json` lines.

use std::io::{self, Write};

use serde::Serialize;

use super::{Closing, Exporter, Header};
use crate::{
    output::{JsonSnoop, write_json_summary},
    reader::Record,
    session::Sink,
};

#[derive(Serialize)]
struct Tagged<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(flatten)]
    header: &'a Header,
}

/// Writes the header at once; records exactly as `snoop --json` does.
pub struct JsonlWriter<W: Write> {
    snoop: JsonSnoop<W>,
}

impl<W: Write> JsonlWriter<W> {
    pub fn new(mut out: W, header: &Header) -> io::Result<Self> {
        serde_json::to_writer(
            &mut out,
            &Tagged {
                kind: "header",
                header,
            },
        )?;
        out.write_all(b"\n")?;
        Ok(Self {
            snoop: JsonSnoop::new(out),
        })
    }

    pub fn into_inner(self) -> W {
        self.snoop.into_inner()
    }
}

impl<W: Write> Sink for JsonlWriter<W> {
    fn record(&mut self, record: &Record) -> io::Result<()> {
        self.snoop.record(record)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.snoop.flush()
    }
}

impl<W: Write> Exporter for JsonlWriter<W> {
    fn finish(&mut self, closing: &Closing) -> io::Result<()> {
        write_json_summary(
            self.snoop.out_mut(),
            closing.summaries,
            closing.devices,
            closing.losses,
        )
    }
}
