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

/// The test records, then the closing lines, through any writer.
fn write_recording(sink: &mut impl Exporter) {
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
}

/// Puts `insert` after the second line of a recording.
fn insert_after_line_2(bytes: &mut Vec<u8>, insert: &[u8]) {
    let second_end = bytes
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .nth(1)
        .unwrap()
        .0;
    bytes.splice(second_end + 1..second_end + 1, insert.iter().copied());
}

fn closing_lines() -> (Vec<ContextSummary>, LossCounts) {
    let summary = ContextSummary::new(
        &aio_trace_common::CtxKey {
            pid: 7,
            op: aio_trace_common::CTX_OP_CALLS,
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
            cgroups: Vec::new(),
        },
        1,
    );
    let mut sink = JsonlWriter::new(Vec::new(), &header).unwrap();
    write_recording(&mut sink);
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
    insert_after_line_2(&mut bytes, b"garbage\n");
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
        Err(e @ ReportError::Torn { .. }) => {
            let text = e.to_string();
            assert!(text.starts_with(&format!("rec:{lines}: ")), "{text}");
            assert!(
                text.ends_with("; the last line is incomplete (was the recording killed?)"),
                "{text}"
            );
        }
        other => panic!("{other:?}"),
    }
    let report = report_of(cut, true).unwrap();
    assert!(!report.complete);
    assert_eq!(report.skipped.len(), 1);
    assert!(
        report.skipped[0].message.starts_with("truncated line"),
        "{:?}",
        report.skipped
    );
    // The warning is the command's, on stderr: the report itself stays clean.
    assert!(!render_text(&report).contains("warning"));
}

#[test]
fn a_torn_csv_row_is_the_last_line_cut_short() {
    let bytes = csv();
    let cut = &bytes[..bytes.len() - 40];
    match report_of(cut, false) {
        Err(e @ ReportError::Torn { line: 152, .. }) => {
            assert!(e.to_string().contains("the last line is incomplete"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    let report = report_of(cut, true).unwrap();
    assert!(!report.complete);
    assert_eq!(report.records, 150);
    assert_eq!(report.skipped.len(), 1);
    assert!(report.skipped[0].message.starts_with("truncated line"));
    // A bad row that is not the last is not called torn.
    let mut bad = csv();
    let at = bad.iter().position(|&b| b == b'\n').unwrap() + 1;
    bad.splice(at..at, b"iocb,1\n".iter().copied());
    assert!(matches!(
        report_of(&bad, false),
        Err(ReportError::Bad { line: 2, .. })
    ));
}

fn long_line() -> Vec<u8> {
    vec![b'a'; MAX_LINE + 1]
}

#[test]
fn a_line_longer_than_1_mib_is_refused_naming_its_line() {
    // JSONL: the header, then a line too long.
    let mut bytes = jsonl();
    let second = bytes.iter().position(|&b| b == b'\n').unwrap() + 1;
    let mut long = long_line();
    long.push(b'\n');
    bytes.splice(second..second, long);
    match report_of(&bytes, false) {
        Err(e @ ReportError::TooLong { line: 2, .. }) => assert_eq!(
            e.to_string(),
            "rec:2: a line longer than 1 MiB: not an aio-trace recording"
        ),
        other => panic!("{other:?}"),
    }
    let report = report_of(&bytes, true).unwrap();
    assert_eq!(report.records, 151);
    assert_eq!(report.skipped[0].line, 2);
    // CSV: a row too long.
    let mut bytes = csv();
    let second = bytes.iter().position(|&b| b == b'\n').unwrap() + 1;
    let mut long = long_line();
    long.push(b'\n');
    bytes.splice(second..second, long);
    assert!(matches!(
        report_of(&bytes, false),
        Err(ReportError::TooLong { line: 2, .. })
    ));
    let report = report_of(&bytes, true).unwrap();
    assert_eq!((report.records, report.skipped[0].line), (151, 2));
    // A line exactly 1 MiB long is read (and is bad for other reasons).
    let mut exact = b"{\"type\":\"ctx\",\"x\":\"".to_vec();
    exact.resize(MAX_LINE - 2, b'a');
    exact.extend_from_slice(b"\"}\n");
    assert_eq!(exact.len(), MAX_LINE + 1);
    assert!(report_of(&exact, false).is_ok());
}

#[test]
fn an_endless_line_is_refused_without_reading_it_all() {
    use std::io::{BufReader, Read};
    // Endless input: the old reader grew its buffer until memory ran out.
    for head in [&b""[..], b"{", b"type,op\n"] {
        let endless = BufReader::new(head.chain(std::io::repeat(b'a')));
        match read(endless, "rec", true, &mut |_| {}) {
            Err(ReportError::TooLong { line, .. }) => {
                assert_eq!(line, if head.ends_with(b"\n") { 2 } else { 1 })
            }
            Err(e) if head.ends_with(b"\n") => {
                // The CSV header lacks columns: refused before the long line.
                assert!(matches!(e, ReportError::Bad { line: 1, .. }), "{e}")
            }
            other => panic!("{other:?}"),
        }
    }
    let endless = BufReader::new(std::io::repeat(0));
    assert!(matches!(
        read(endless, "rec", true, &mut |_| {}),
        Err(ReportError::Binary { line: 1, .. })
    ));
}

#[test]
fn an_unclosed_csv_quote_is_refused_before_it_swallows_the_file() {
    let mut bytes = csv();
    let second = bytes.iter().position(|&b| b == b'\n').unwrap() + 1;
    bytes.insert(second, b'"');
    while bytes.len() < 3 * MAX_LINE {
        let again = csv();
        let body = again.iter().position(|&b| b == b'\n').unwrap() + 1;
        bytes.extend_from_slice(&again[body..]);
    }
    match report_of(&bytes, true) {
        Err(e @ ReportError::RecordTooLong { .. }) => {
            assert!(e.to_string().contains("an unclosed quote"), "{e}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_perfetto_trace_is_named_as_one() {
    use crate::{
        blockdev::DevNames,
        export::perfetto::{ChromeJsonWriter, Clocks, TraceWriter},
    };
    let mut written = Vec::new();
    let mut sink = ChromeJsonWriter::new(&mut written);
    write_recording(&mut sink);
    let mut native = Vec::new();
    let mut sink = TraceWriter::new(
        &mut native,
        Clocks::default(),
        DevNames::new("/nonexistent"),
    );
    write_recording(&mut sink);
    let streamed_object = b"{\"traceEvents\":[\n{\"ph\":\"X\",\"ts\":1},\n";
    let streamed_array = b"[\n{\"ph\":\"X\",\"ts\":1},\n";
    let other_key_order = b"{\"displayTimeUnit\":\"ns\",\"traceEvents\":[]}\n";
    for bytes in [
        &written[..],
        &native[..],
        &native[..native.len().min(200)],
        streamed_object,
        streamed_array,
        b"[]",
        b"  \n[{\"ph\":\"B\"}]",
        other_key_order,
    ] {
        for skip_bad in [false, true] {
            match report_of(bytes, skip_bad) {
                Err(e @ ReportError::Perfetto { .. }) => assert_eq!(
                    e.to_string(),
                    "rec is a Perfetto trace (record --format perfetto or chrome-json); report reads JSONL or CSV recordings — record with -o FILE.jsonl"
                ),
                other => panic!("{:?}: {other:?}", String::from_utf8_lossy(bytes)),
            }
        }
    }
}

#[test]
fn compressed_files_say_how_to_decompress_them() {
    let mut stats = Stats::new(By::Op);
    let gz = b"\x1f\x8b\x08\x00\x00\x00\x00\x00";
    match read(&gz[..], "rec.jsonl.gz", false, &mut |row| stats.add(row)) {
        Err(e @ ReportError::Compressed { .. }) => assert_eq!(
            e.to_string(),
            "rec.jsonl.gz is gzip-compressed: decompress it first (zcat rec.jsonl.gz > rec.jsonl)"
        ),
        other => panic!("{other:?}"),
    }
    match read(&gz[..], "trace", false, &mut |_| {}) {
        Err(e) => assert!(e.to_string().ends_with("(zcat trace > trace.jsonl)"), "{e}"),
        other => panic!("{other:?}"),
    }
    for (magic, what) in [
        (&b"\x28\xb5\x2f\xfd\x00"[..], "zstd"),
        (b"\xfd7zXZ\x00\x00", "xz"),
    ] {
        assert!(matches!(
            report_of(magic, true),
            Err(ReportError::Compressed { compression, .. }) if compression == what
        ));
    }
}

#[test]
fn a_utf8_byte_order_mark_is_skipped() {
    for bytes in [jsonl(), csv()] {
        let mut marked = b"\xEF\xBB\xBF".to_vec();
        marked.extend_from_slice(&bytes);
        assert_eq!(rows(&marked), rows(&bytes));
    }
    assert!(matches!(
        report_of(b"\xEF\xBB\xBF", false),
        Err(ReportError::Empty { .. })
    ));
}

#[test]
fn binary_data_is_not_a_recording() {
    for (bytes, line) in [
        (&b"\x00\x01\x02"[..], 1),
        (b"\n\n\x7fELF\x02\x01\x01\x00", 3),
        // A Perfetto protobuf trace: a TracePacket field, then its bytes.
        (b"\x0a\x8a\x01\x10\x00\x18\x00", 2),
        (b"\xff\xfe{\x00\"\x00", 1),
    ] {
        match report_of(bytes, true) {
            Err(e @ ReportError::Binary { .. }) => assert_eq!(
                e.to_string(),
                format!("rec is not an aio-trace recording (binary data at line {line})")
            ),
            other => panic!("{bytes:?}: {other:?}"),
        }
    }
    // A NUL byte later on: refused, or skipped with --skip-bad (a file system
    // that lost the end of a file after a crash leaves zeros there).
    for good in [jsonl(), csv()] {
        let mut bytes = good.clone();
        insert_after_line_2(&mut bytes, b"\0\0\0\n");
        assert!(matches!(
            report_of(&bytes, false),
            Err(ReportError::Binary { line: 3, .. })
        ));
        let report = report_of(&bytes, true).unwrap();
        assert_eq!(report.records, 151);
        assert_eq!(report.skipped.len(), 1);
        assert_eq!(report.skipped[0].line, 3);
    }
}

#[test]
fn leading_blank_lines_count_in_line_numbers() {
    assert!(matches!(
        report_of(b"\n\n{\"a\":1}\n", false),
        Err(ReportError::Bad { line: 3, .. })
    ));
    assert!(matches!(
        report_of(b"\n\ntype,pid\n", false),
        Err(ReportError::Bad { line: 3, .. })
    ));
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
        Err(ReportError::Torn { line, .. }) => assert_eq!(line, 152),
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

#[test]
fn a_missing_file_names_its_cause_once() {
    let e = read_file(
        std::path::Path::new("/nonexistent/t.jsonl"),
        false,
        &mut |_| {},
    )
    .unwrap_err();
    let chain = format!("{:#}", anyhow::Error::from(e));
    assert_eq!(chain.matches("No such file").count(), 1, "{chain}");
}

/// AIO, io_uring and synchronous records side by side: `--by api` groups
/// them, the op table keeps io_uring's READV apart from the readv syscall
/// and each FSYNC under its api, and vectored against scalar takes
/// io_uring's READV and READ but not the syscall.
#[test]
fn report_groups_by_api_and_names_each_op_under_its_api() {
    use aio_trace_common::{
        API_IO_URING, IORING_OP_FSYNC, IORING_OP_READ, IORING_OP_READV, RECORD_SYSCALL,
        SYSCALL_PREADV, SYSCALL_READV,
    };
    let uring = |opcode: u8, segs, latency, tag| IocbRecord {
        api: API_IO_URING,
        opcode: opcode.into(),
        ctx: 0xffff_8881_0615_3000,
        ..iocb(0, segs, latency, tag)
    };
    let syscall = |opcode, tag| IocbRecord {
        kind: RECORD_SYSCALL,
        opcode,
        ctx: 0,
        ..iocb(0, 8, 5_000, tag)
    };
    let mut failed_fsync = uring(IORING_OP_FSYNC, 0, 1_000, 40);
    failed_fsync.res = -5;
    let records = (1..=4)
        .map(|i| uring(IORING_OP_READV, 8, i * 1_000, i))
        .chain((5..=6).map(|i| uring(IORING_OP_READ, 1, i * 1_000, i)))
        .chain([
            failed_fsync,
            iocb(7, 8, 2_000, 20),
            iocb(aio_trace_common::IOCB_CMD_FSYNC, 0, 2_000, 21),
            syscall(SYSCALL_READV, 30),
            syscall(SYSCALL_PREADV, 31),
        ]);
    let header = Header::here(Filters::default(), 1);
    let mut sink = JsonlWriter::new(Vec::new(), &header).unwrap();
    for r in records {
        let record = if r.kind == RECORD_SYSCALL {
            Record::Syscall(r)
        } else {
            Record::Iocb(r)
        };
        sink.record(&record).unwrap();
    }
    let bytes = sink.into_inner();
    let mut stats = Stats::new(By::Api);
    let info = read(&bytes[..], "mixed", false, &mut |row| stats.add(row)).unwrap();
    let report = stats.report("mixed", info);

    let groups: Vec<_> = report
        .groups
        .iter()
        .map(|g| (g.key.as_str(), g.iocbs))
        .collect();
    assert_eq!(groups, [("io_uring", 7), ("aio", 2), ("sync", 2)]);
    let ops: Vec<_> = report
        .ops
        .iter()
        .map(|o| (o.api.map(|a| a.name()), o.key.as_str(), o.iocbs))
        .collect();
    assert_eq!(
        ops,
        [
            (Some("io_uring"), "READV", 4),
            (Some("io_uring"), "READ", 2),
            (Some("aio"), "FSYNC", 1),
            (Some("io_uring"), "FSYNC", 1),
            (Some("aio"), "PREADV", 1),
            (Some("sync"), "PREADV", 1),
            (Some("sync"), "READV", 1),
        ]
    );
    // io_uring's READV and AIO's PREADV against io_uring's READ.
    assert_eq!((report.vectored.iocbs, report.scalar.iocbs), (5, 2));
    assert_eq!(
        report
            .errors
            .iter()
            .map(|e| (e.api.name(), e.op.as_str(), e.res))
            .collect::<Vec<_>>(),
        [("io_uring", "FSYNC", Some(-5))]
    );
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["by"], "api");
    assert_eq!(json["ops"][0]["api"], "io_uring");
    assert!(json["groups"][0].get("api").is_none());
    let text = render_text(&report);
    for line in [
        "API                      IOCBS",
        "io_uring                 7 ",
        "io_uring READV           4 ",
        "sync READV               1 ",
        "io_uring READV latency (log2)",
        "  io_uring FSYNC       -5",
    ] {
        assert!(text.contains(line), "{line:?} missing from\n{text}");
    }
}

/// A recording from before the api field: its iocbs are AIO and its
/// syscalls synchronous, in the groups as in the op table.
#[test]
fn a_recording_without_api_fields_reads_as_aio_and_sync() {
    let old = concat!(
        r#"{"type":"iocb","pid":1,"tid":1,"comm":"a","ctx":1,"op":"PREADV","fd":3,"offset":0,"segs":2,"bytes":8192,"res":8192,"submit_ns":200,"reap_ns":300,"latency_ns":100}"#,
        "\n",
        r#"{"type":"syscall","pid":1,"tid":1,"comm":"a","ctx":0,"op":"PREADV","fd":3,"offset":0,"segs":2,"bytes":8192,"res":8192,"submit_ns":200,"reap_ns":300,"latency_ns":100}"#,
        "\n",
    );
    let mut stats = Stats::new(By::Ctx);
    let info = read(old.as_bytes(), "old", false, &mut |row| stats.add(row)).unwrap();
    let report = stats.report("old", info);
    let keys: Vec<_> = report.groups.iter().map(|g| g.key.as_str()).collect();
    assert_eq!(keys, ["1 1", "1 sync"]);
    let ops: Vec<_> = report.ops.iter().map(|o| o.api.map(|a| a.name())).collect();
    assert_eq!(ops, [Some("aio"), Some("sync")]);
    assert_eq!((report.vectored.iocbs, report.scalar.iocbs), (1, 0));
}

/// `--by dev` groups by the file's device, named from this host's sysfs
/// only when the recording was taken on this host.
#[test]
fn report_groups_by_dev_and_names_devices_of_this_host() {
    use crate::blockdev::{DevNames, encode, fake::FakeSysfs};
    let sysfs = FakeSysfs::new("report");
    sysfs.disk("vda", "254:0").disk("loop3", "7:3");
    let on = |dev: u32, tag: u64| IocbRecord {
        dev,
        dispatches: 1,
        bios: 1,
        ..iocb(7, 8, 1_000, tag)
    };
    let header = |host: &str| Header {
        hostname: host.into(),
        ..Header::here(Filters::default(), 1)
    };
    let recording = |host: &str| {
        let mut sink = JsonlWriter::new(Vec::new(), &header(host)).unwrap();
        for r in [
            on(encode(254, 0), 1),
            on(encode(254, 0), 2),
            on(encode(7, 3), 3),
            on(encode(0, 45), 4),
            iocb(7, 8, 1_000, 5),
        ]
        .into_iter()
        {
            sink.record(&Record::Iocb(r)).unwrap();
        }
        sink.into_inner()
    };
    let groups = |recorded_on: &str| {
        let mut stats = Stats::new(By::Dev);
        stats.name_devices(DevNames::new(&sysfs.root), "here");
        let bytes = recording(recorded_on);
        let info = read(&bytes[..], "rec", false, &mut |row| stats.add(row)).unwrap();
        let report = stats.report("rec", info);
        assert!(render_text(&report).contains("\nDEVICE "));
        report
            .groups
            .into_iter()
            .map(|g| (g.key, g.iocbs))
            .collect::<Vec<_>>()
    };
    let named = groups("here");
    assert_eq!(
        named,
        [
            ("vda 254:0".to_owned(), 2),
            ("-".to_owned(), 1),
            ("0:45".to_owned(), 1),
            ("loop3 7:3".to_owned(), 1),
        ]
    );
    let elsewhere = groups("there");
    assert_eq!(elsewhere[0], ("254:0".to_owned(), 2));
}

/// `--by cgroup` groups by the path the recording resolved, by the id where
/// it could not, and puts recordings without cgroups under `-`.
#[test]
fn report_groups_by_cgroup_path() {
    let lines = concat!(
        r#"{"type":"iocb","pid":1,"tid":1,"comm":"a","ctx":1,"op":"PREAD","fd":3,"offset":0,"segs":1,"bytes":4096,"res":4096,"submit_ns":200,"reap_ns":300,"latency_ns":100,"cgroup":40,"cgroup_path":"/system.slice/db.scope"}"#,
        "\n",
        r#"{"type":"iocb","pid":1,"tid":1,"comm":"a","ctx":1,"op":"PREAD","fd":3,"offset":0,"segs":1,"bytes":4096,"res":4096,"submit_ns":200,"reap_ns":300,"latency_ns":100,"cgroup":40,"cgroup_path":"/system.slice/db.scope"}"#,
        "\n",
        r#"{"type":"iocb","pid":2,"tid":2,"comm":"b","ctx":1,"op":"PREAD","fd":3,"offset":0,"segs":1,"bytes":4096,"res":4096,"submit_ns":200,"reap_ns":300,"latency_ns":100,"cgroup":41,"cgroup_path":null}"#,
        "\n",
        r#"{"type":"iocb","pid":3,"tid":3,"comm":"c","ctx":1,"op":"PREAD","fd":3,"offset":0,"segs":1,"bytes":4096,"res":4096,"submit_ns":200,"reap_ns":300,"latency_ns":100}"#,
        "\n",
    );
    let mut stats = Stats::new(By::Cgroup);
    let info = read(lines.as_bytes(), "rec", false, &mut |row| stats.add(row)).unwrap();
    let report = stats.report("rec", info);
    assert!(render_text(&report).contains("\nCGROUP "));
    let groups: Vec<_> = report
        .groups
        .iter()
        .map(|g| (g.key.as_str(), g.iocbs))
        .collect();
    assert_eq!(
        groups,
        [("/system.slice/db.scope", 2), ("-", 1), ("cgroup 41", 1)]
    );
}
