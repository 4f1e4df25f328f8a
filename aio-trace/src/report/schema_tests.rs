//! Every field of the record schema (`model::IocbFields`) through every
//! format: written by the JSONL, CSV and Perfetto writers, read back by the
//! report's parser where the format is one it reads. It lives with the
//! parser, the layer above the writers; it fails when a field of the schema is missing from any.

use aio_trace_common::IocbRecord;
use serde_json::Value;

use super::{Row, read};
use crate::{
    cgroup::{self, CgroupNames},
    export::{
        Closing, Exporter, Filters, Header, csv::CsvWriter, jsonl::JsonlWriter,
        perfetto::ChromeJsonWriter,
    },
    model::{IocbJson, IocbRow, LossCounts, field_names, sample_record, sample_uring_record},
    reader::Record,
    session::Sink,
};

/// Records whose every schema field is set: the AIO and the io_uring samples
/// with the fields they leave at zero filled in.
fn full() -> [IocbRecord; 2] {
    [sample_record(), sample_uring_record()].map(|r| IocbRecord {
        splits: 3,
        merges: 4,
        ..r
    })
}

/// The record as the schema says it: every field, none null or zero. The
/// writers name the sample's cgroup (the root, id 1 on every cgroup2 mount)
/// from this machine's mount: its path is null only without one.
fn expected(record: &IocbRecord) -> Value {
    let mut cgroups = CgroupNames::system();
    let path = cgroups.path(record.cgroup).map(|p| p.to_string());
    let v = serde_json::to_value(IocbJson::new(record).with_cgroup_path(path.as_deref())).unwrap();
    for name in field_names() {
        let field = &v[name];
        if *name == "cgroup_path" && cgroup::v2_mount().is_err() {
            continue;
        }
        assert!(
            !(field.is_null() || *field == 0 || *field == ""),
            "the sample record leaves {name} unset: {field}"
        );
    }
    v
}

fn closing<R>(f: impl FnOnce(&Closing) -> R) -> R {
    f(&Closing {
        summaries: &[],
        devices: &[],
        losses: &LossCounts::default(),
    })
}

/// Parses `bytes` with the report's reader: the one iocb row.
fn parse(bytes: &[u8]) -> IocbRow {
    let mut rows = Vec::new();
    read(bytes, "test", false, &mut |row| rows.push(row)).unwrap();
    let mut iocbs = rows.into_iter().filter_map(|row| match row {
        Row::Iocb(r) => Some(r),
        _ => None,
    });
    let row = iocbs.next().expect("an iocb row");
    assert!(iocbs.next().is_none());
    row
}

/// The object's keys are the schema's fields, in order, and the row read
/// back holds every value.
fn check(format: &str, keys: Vec<String>, row: &IocbRow, record: &IocbRecord) {
    let api = row.api();
    assert_eq!(
        keys,
        field_names(),
        "{format} {api}: the fields and their order"
    );
    assert_eq!(
        serde_json::to_value(row).unwrap(),
        expected(record),
        "{format} {api}"
    );
    assert_eq!(
        row.to_record(),
        *record,
        "{format} {api}: back to the record"
    );
}

#[test]
fn every_field_round_trips_through_jsonl() {
    for record in full() {
        jsonl_round_trip(&record);
    }
}

fn jsonl_round_trip(record: &IocbRecord) {
    let header = Header::here(Filters::default(), 0);
    let mut w = JsonlWriter::new(Vec::new(), &header).unwrap();
    w.record(&Record::Iocb(*record)).unwrap();
    closing(|c| w.finish(c)).unwrap();
    let out = w.into_inner();
    let line = out.split(|&b| b == b'\n').nth(1).unwrap();
    // A parsed object does not keep the order: read it from the text.
    let object: serde_json::Map<String, Value> = serde_json::from_slice(line).unwrap();
    let text = std::str::from_utf8(line).unwrap();
    let mut keys: Vec<_> = object
        .keys()
        .map(|k| (text.find(&format!("\"{k}\":")).unwrap(), k.clone()))
        .collect();
    keys.sort();
    check(
        "jsonl",
        keys.into_iter().map(|(_, k)| k).collect(),
        &parse(&out),
        record,
    );
}

#[test]
fn every_field_round_trips_through_csv() {
    for record in full() {
        csv_round_trip(&record);
    }
}

fn csv_round_trip(record: &IocbRecord) {
    let mut w = CsvWriter::new(Vec::new()).unwrap();
    w.record(&Record::Iocb(*record)).unwrap();
    closing(|c| w.finish(c)).unwrap();
    let out = w.into_inner().unwrap();
    let header = std::str::from_utf8(out.split(|&b| b == b'\n').next().unwrap()).unwrap();
    check(
        "csv",
        header.split(',').map(str::to_owned).collect(),
        &parse(&out),
        record,
    );
}

/// Perfetto is written, not read: the slice's `args` are the record, and
/// parse as the report's row.
#[test]
fn every_field_is_in_the_perfetto_args() {
    for record in full() {
        perfetto_args(&record);
    }
}

fn perfetto_args(record: &IocbRecord) {
    let mut w = ChromeJsonWriter::new(Vec::new());
    w.record(&Record::Iocb(*record)).unwrap();
    closing(|c| w.finish(c)).unwrap();
    let out = w.into_inner();
    let trace: Value = serde_json::from_slice(&out).unwrap();
    let begin = trace
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["ph"] == "X" && e["args"].is_object())
        .expect("the iocb's slice");
    let args = &begin["args"];
    // Args are named, not ordered: compare them as sets.
    let mut keys: Vec<_> = args.as_object().unwrap().keys().cloned().collect();
    let mut names: Vec<_> = field_names().iter().map(|n| n.to_string()).collect();
    keys.sort();
    names.sort();
    assert_eq!(keys, names, "perfetto: the fields in the args");
    let row: IocbRow = serde_json::from_value(args.clone()).unwrap();
    check(
        "perfetto",
        field_names().iter().map(|n| n.to_string()).collect(),
        &row,
        record,
    );
}

/// What each record says its interface is, in every format: AIO, io_uring,
/// and the synchronous syscall of a `"syscall"` record whatever its api byte.
#[test]
fn the_api_is_written_in_every_format() {
    let syscall = IocbRecord {
        kind: aio_trace_common::RECORD_SYSCALL,
        opcode: aio_trace_common::SYSCALL_PREADV,
        ..sample_record()
    };
    let [aio, uring] = full();
    for (record, api, op) in [
        (aio, "aio", "PREADV"),
        (uring, "io_uring", "READV_FIXED"),
        (syscall, "sync", "PREADV"),
    ] {
        let v = serde_json::to_value(IocbJson::new(&record)).unwrap();
        assert_eq!((v["api"].as_str(), v["op"].as_str()), (Some(api), Some(op)));
        let mut w = CsvWriter::new(Vec::new()).unwrap();
        w.record(&Record::Iocb(record)).unwrap();
        closing(|c| w.finish(c)).unwrap();
        let row = parse(&w.into_inner().unwrap());
        assert_eq!((row.api().name(), row.op.as_str()), (api, op));
    }
}
