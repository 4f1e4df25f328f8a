//! Writers → parser round trips, aggregation, and bad input.

use aio_trace_common::{IOCB_REJECTED, IocbRecord, RECORD_IOCB};

use super::*;
use crate::{
    export::{Closing, Exporter, Filters, Header, csv::CsvWriter, jsonl::JsonlWriter},
    model::{ContextSummary, LossCounts},
    reader::Record,
    session::Sink,
};

fn iocb(opcode: u16, segs: u32, latency: u64, tag: u64) -> IocbRecord {
    let mut comm = [0u8; 16];
    comm[..3].copy_from_slice(b"fio");
    IocbRecord {
        kind: RECORD_IOCB,
        opcode,
        pid: 7,
        tid: 7,
        fd: 3,
        segs,
        comm,
        ctx: 0x7f00,
        aio_data: tag,
        offset: 4096,
        bytes: 4096 * u64::from(segs),
        res: 4096 * i64::from(segs),
        submit_ns: 1_000_000 + tag,
        reap_ns: 1_000_000 + tag + latency,
        ..Default::default()
    }
}

fn records() -> Vec<IocbRecord> {
    let mut all: Vec<_> = (1..=100)
        .map(|i| iocb(7, 8, i * 1_000, i))
        .chain((1..=50).map(|i| iocb(0, 1, i * 500, 1000 + i)))
        .collect();
    let mut rejected = iocb(7, 1025, 0, 5000);
    rejected.flags = IOCB_REJECTED;
    rejected.res = -22;
    all.push(rejected);
    all
}

fn closing_lines() -> (Vec<ContextSummary>, LossCounts) {
    let summary = ContextSummary::new(
        &aio_trace_common::CtxKey {
            pid: 7,
            _pad: 0,
            ctx: 0x7f00,
        },
        &aio_trace_common::CtxCounters {
            io_submit_calls: 151,
            iocbs_submitted: 150,
            io_getevents_calls: 20,
            events_reaped: 150,
            ..Default::default()
        },
    );
    let losses = LossCounts {
        ring_full: 3,
        ..Default::default()
    };
    (vec![summary], losses)
}

fn jsonl() -> Vec<u8> {
    let header = Header::here(
        Filters {
            pids: vec![7],
            comm: None,
        },
        1,
    );
    let mut sink = JsonlWriter::new(Vec::new(), &header).unwrap();
    for r in records() {
        sink.record(&Record::Iocb(r)).unwrap();
    }
    let (summaries, losses) = closing_lines();
    sink.finish(&Closing {
        summaries: &summaries,
        devices: &[],
        losses: &losses,
    })
    .unwrap();
    sink.into_inner()
}

fn csv() -> Vec<u8> {
    let mut sink = CsvWriter::new(Vec::new()).unwrap();
    for r in records() {
        sink.record(&Record::Iocb(r)).unwrap();
    }
    sink.flush().unwrap();
    sink.into_inner().unwrap()
}

fn report_of(bytes: &[u8], skip_bad: bool) -> Result<Report, ReportError> {
    let mut stats = Stats::new(By::Op);
    let info = read(bytes, "rec", skip_bad, &mut |row| stats.add(row))?;
    Ok(stats.report("rec", info))
}

fn rows(bytes: &[u8]) -> Vec<Row> {
    let mut rows = Vec::new();
    read(bytes, "rec", false, &mut |row| rows.push(row)).unwrap();
    rows
}

#[test]
fn jsonl_round_trips_header_records_summary_and_losses() {
    let bytes = jsonl();
    let first: serde_json::Value =
        serde_json::from_slice(bytes.split(|&b| b == b'\n').next().unwrap()).unwrap();
    assert_eq!(first["type"], "header");
    assert_eq!(first["format_version"], 1);
    assert_eq!(first["clock"], "monotonic");
    assert_eq!(first["filters"]["pids"], serde_json::json!([7]));
    let rows = rows(&bytes);
    assert!(matches!(rows[0], Row::Header(_)));
    let iocbs: Vec<_> = rows
        .iter()
        .filter_map(|r| match r {
            Row::Iocb(i) => Some(i),
            _ => None,
        })
        .collect();
    assert_eq!(iocbs.len(), 151);
    let original = iocb(7, 8, 1_000, 1);
    assert_eq!(
        (
            iocbs[0].pid,
            iocbs[0].op.as_str(),
            iocbs[0].segs,
            iocbs[0].latency_ns
        ),
        (7, "PREADV", 8, Some(1_000))
    );
    assert_eq!(iocbs[0].submit_ns, original.submit_ns);
    assert!(matches!(rows.last(), Some(Row::Lost(l)) if l["ring_full"] == 3));
}

#[test]
fn csv_has_the_json_field_names_and_round_trips() {
    let bytes = csv();
    let header = String::from_utf8(bytes.split(|&b| b == b'\n').next().unwrap().to_vec()).unwrap();
    assert!(header.starts_with(
        "type,pid,tid,comm,ctx,op,fd,offset,segs,bytes,res,submit_ns,reap_ns,latency_ns"
    ));
    // Null is an empty field: the rejected iocb has no reap time.
    let last = String::from_utf8(bytes.clone()).unwrap();
    let rejected = last.lines().last().unwrap();
    assert!(rejected.starts_with("iocb,7,7,fio,"), "{rejected}");
    assert!(rejected.contains(",-22,1005000,,,"), "{rejected}");
    let from_csv: Vec<_> = rows(&bytes);
    let from_jsonl: Vec<_> = rows(&jsonl())
        .into_iter()
        .filter(|r| matches!(r, Row::Iocb(_)))
        .collect();
    assert_eq!(from_csv, from_jsonl);
}

#[test]
fn report_counts_ops_percentiles_vectored_scalar_and_errors() {
    let report = report_of(&jsonl(), false).unwrap();
    assert!(report.complete);
    assert_eq!(report.records, 151);
    let preadv = report.ops.iter().find(|o| o.key == "PREADV").unwrap();
    assert_eq!(preadv.iocbs, 101);
    assert_eq!(preadv.errors, 1);
    assert_eq!(preadv.latency.count, 100);
    // Nearest rank: the 99th of 1..=100 µs.
    let p99 = preadv.latency.p99_ns.unwrap();
    assert!((99_000..=99_100).contains(&p99), "{p99}");
    assert_eq!(preadv.segs_per_iocb, Some((800.0 + 1025.0) / 101.0));
    let pread = report.ops.iter().find(|o| o.key == "PREAD").unwrap();
    assert_eq!((pread.iocbs, pread.errors), (50, 0));
    assert_eq!((report.vectored.iocbs, report.scalar.iocbs), (101, 50));
    assert_eq!(report.errors.len(), 1);
    assert_eq!(
        (report.errors[0].op.as_str(), report.errors[0].res),
        ("PREADV", Some(-22))
    );
    assert_eq!(report.calls.io_submit_calls, 151);
    assert_eq!(report.lost.as_ref().unwrap()["ring_full"], 3);
    let buckets: u64 = preadv.latency_log2_us.iter().map(|b| b.count).sum();
    assert_eq!(buckets, 100);
    assert!(render_text(&report).contains("PREADV latency (log2)"));
}

#[test]
fn a_garbage_line_is_an_error_naming_its_line() {
    let mut bytes = jsonl();
    let third = bytes
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .nth(1)
        .unwrap()
        .0;
    bytes.splice(third + 1..third + 1, b"garbage\n".iter().copied());
    match report_of(&bytes, false) {
        Err(ReportError::Bad { line, message, .. }) => {
            assert_eq!(line, 3);
            assert!(message.contains("not a JSON record"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let report = report_of(&bytes, true).unwrap();
    assert_eq!(report.skipped.len(), 1);
    assert_eq!(report.skipped[0].line, 3);
    assert_eq!(report.records, 151);
}

#[test]
fn a_truncated_file_is_an_error_naming_the_last_line() {
    let bytes = jsonl();
    let cut = &bytes[..bytes.len() / 2];
    let lines = cut.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
    match report_of(cut, false) {
        Err(e @ ReportError::Bad { .. }) => {
            let text = e.to_string();
            assert!(
                text.starts_with(&format!("rec:{lines}: truncated line")),
                "{text}"
            );
        }
        other => panic!("{other:?}"),
    }
    let report = report_of(cut, true).unwrap();
    assert!(!report.complete);
}

#[test]
fn an_unknown_format_version_is_refused() {
    let bytes = br#"{"type":"header","format_version":9}"#;
    assert!(matches!(
        report_of(bytes, true),
        Err(ReportError::Version {
            line: 1,
            found: 9,
            ..
        })
    ));
}

#[test]
fn a_truncated_csv_row_names_its_line() {
    let bytes = csv();
    let cut = &bytes[..bytes.len() - 40];
    match report_of(cut, false) {
        Err(ReportError::Bad { line, .. }) => assert_eq!(line, 152),
        other => panic!("{other:?}"),
    }
}

#[test]
fn empty_and_foreign_files_are_errors_not_panics() {
    assert!(matches!(
        report_of(b"", false),
        Err(ReportError::Empty { .. })
    ));
    assert!(matches!(
        report_of(b"a,b\n1,2\n", false),
        Err(ReportError::Bad { line: 1, .. })
    ));
    for junk in [
        &b"{"[..],
        b"{}",
        b"{\"type\":5}",
        b"\xff\xfe",
        b"{\"type\":\"iocb\"}\n",
    ] {
        let _ = report_of(junk, false);
        let _ = report_of(junk, true);
    }
}
