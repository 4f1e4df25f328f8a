//! `snoop --json`: one JSON object per line — the record contract.

use std::io::{self, Write};

use aio_trace_common::{CTX_EXIT, CTX_SETUP, CtxRecord, IocbRecord};
use serde::Serialize;

use super::fast_json;
use crate::{
    cgroup::CgroupNames,
    model::{ContextSummary, DeviceSummary, IocbJson, LossCounts},
    reader::Record,
    session::Sink,
};

/// Appends an iocb or syscall record's line (without the newline) with the
/// fast encoder, which writes what serde_json writes (a unit test holds the
/// two together) for a fraction of the CPU.
/// `cgroups` names the record's cgroup.
pub fn write_iocb_line(
    r: &IocbRecord,
    cgroups: &mut CgroupNames,
    out: &mut Vec<u8>,
) -> io::Result<()> {
    let path = cgroups.path(r.cgroup).map(|p| &**p);
    Ok(fast_json::write(
        &IocbJson::new(r).with_cgroup_path(path),
        out,
    )?)
}

/// `{"type":"ctx",…}`: an AIO context set up or destroyed.
#[derive(Serialize)]
struct CtxJson {
    #[serde(rename = "type")]
    kind: &'static str,
    event: &'static str,
    pid: u32,
    ctx: u64,
    nr_events: u64,
    ts_ns: u64,
}

impl CtxJson {
    fn new(r: &CtxRecord) -> Self {
        Self {
            kind: "ctx",
            event: match r.event {
                CTX_SETUP => "setup",
                CTX_EXIT => "exit",
                _ => "destroy",
            },
            pid: r.pid,
            ctx: r.ctx,
            nr_events: r.nr_events,
            ts_ns: r.ts_ns,
        }
    }
}

pub struct JsonSnoop<W: Write> {
    out: W,
    /// One line, serialized here first: serde_json writes token by token, and
    /// through a generic writer each token cost a `write_all` call — a third
    /// of `record`'s CPU at 400k records/s. A `Vec` takes them inline.
    line: Vec<u8>,
    cgroups: CgroupNames,
}

impl<W: Write> JsonSnoop<W> {
    pub fn new(out: W) -> Self {
        Self {
            out,
            line: Vec::with_capacity(1024),
            cgroups: CgroupNames::system(),
        }
    }
    pub fn into_inner(self) -> W {
        self.out
    }
    /// The writer, for the lines that follow the records.
    pub fn out_mut(&mut self) -> &mut W {
        &mut self.out
    }
}

impl<W: Write> Sink for JsonSnoop<W> {
    fn record(&mut self, record: &Record) -> io::Result<()> {
        self.line.clear();
        match record {
            Record::Iocb(r) | Record::Syscall(r) => {
                write_iocb_line(r, &mut self.cgroups, &mut self.line)?
            }
            Record::Ctx(r) => serde_json::to_writer(&mut self.line, &CtxJson::new(r))?,
        }
        self.line.push(b'\n');
        self.out.write_all(&self.line)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// The exit lines: one summary per (pid, ctx), one per block device, then
/// the loss counters.
pub fn write_json_summary(
    out: &mut impl Write,
    summaries: &[ContextSummary],
    devices: &[DeviceSummary],
    losses: &LossCounts,
) -> io::Result<()> {
    for s in summaries {
        serde_json::to_writer(&mut *out, s)?;
        out.write_all(b"\n")?;
    }
    for d in devices {
        serde_json::to_writer(&mut *out, d)?;
        out.write_all(b"\n")?;
    }
    serde_json::to_writer(&mut *out, losses)?;
    out.write_all(b"\n")?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use aio_trace_common::{IOCB_REJECTED, RECORD_IOCB};

    use super::*;

    fn line(record: &IocbRecord) -> serde_json::Value {
        let mut sink = JsonSnoop::new(Vec::new());
        sink.record(&Record::Iocb(*record)).unwrap();
        let out = sink.into_inner();
        assert!(out.ends_with(b"\n"));
        serde_json::from_slice(&out).unwrap()
    }

    #[test]
    fn reaped_preadv_carries_every_contract_field() {
        let r = crate::model::sample_record();
        let v = line(&r);
        let expected = serde_json::json!({
            "type": "iocb", "pid": 10, "tid": 11, "comm": "test", "ctx": 0x7f00_0000u64,
            "op": "PREADV", "fd": 3, "offset": 4096, "segs": 8, "bytes": 32768,
            "res": 32768, "submit_ns": 1000, "reap_ns": 51000, "latency_ns": 50000,
            "iocb": 0x5000, "aio_data": 99,
            "dev": "254:1", "ino": 12, "dispatches": 1, "bios": 1, "splits": 0, "merges": 0,
            "dispatch_ns": 2000, "queue_ns": 1000, "device_ns": 40000, "end_io_ns": 1000,
            "complete_ns": 45000, "reap_lag_ns": 6000, "api": "aio", "cgroup": 1,
            "cgroup_path": crate::cgroup::v2_mount().ok().map(|_| "/")
        });
        assert_eq!(v, expected);
    }

    /// An io_uring request the application took from the CQ ring: its api,
    /// its op's io_uring name, its latency to the CQE and no reap.
    #[test]
    fn an_io_uring_request_says_so_and_ends_at_its_cqe() {
        let r = IocbRecord {
            reap_ns: 0,
            ..crate::model::sample_uring_record()
        };
        let v = line(&r);
        assert_eq!(
            (v["type"].as_str(), v["api"].as_str(), v["op"].as_str()),
            (Some("iocb"), Some("io_uring"), Some("READV_FIXED"))
        );
        assert!(v["reap_ns"].is_null() && v["reap_lag_ns"].is_null());
        assert_eq!(v["latency_ns"], 44_000);
        assert_eq!(v["complete_ns"], 45_000);
    }

    #[test]
    fn a_syscall_record_says_so_and_readv_has_no_offset() {
        let r = IocbRecord {
            kind: aio_trace_common::RECORD_SYSCALL,
            opcode: aio_trace_common::SYSCALL_READV,
            offset: -1,
            segs: 2,
            submit_ns: 10,
            reap_ns: 20,
            ..Default::default()
        };
        let mut sink = JsonSnoop::new(Vec::new());
        sink.record(&Record::Syscall(r)).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&sink.into_inner()).unwrap();
        assert_eq!(
            (v["type"].as_str(), v["op"].as_str(), v["api"].as_str()),
            (Some("syscall"), Some("READV"), Some("sync"))
        );
        assert!(v["offset"].is_null() && v["dispatch_ns"].is_null() && v["dev"].is_null());
        assert_eq!(v["latency_ns"], 10);
    }

    /// The hand-written line and serde_json's, for records with every
    /// field set, none set, negative values and a comm that needs escaping.
    #[test]
    fn write_line_is_what_serde_json_writes() {
        let mut comm = [0u8; 16];
        comm[..8].copy_from_slice(b"a\"b\\c\n\x01\xff");
        let full = IocbRecord {
            kind: RECORD_IOCB,
            opcode: 8,
            pid: u32::MAX,
            tid: 1,
            fd: 7,
            segs: 1024,
            comm,
            ctx: u64::MAX,
            iocb: 0x5000,
            aio_data: 1 << 63,
            offset: i64::MAX,
            bytes: 1 << 40,
            res: -5,
            submit_ns: 1,
            reap_ns: 90,
            dev: (259 << 20) | 0xf_ffff,
            ino: u64::MAX,
            dispatches: 2,
            bios: 3,
            splits: 4,
            merges: 5,
            dispatch_ts: 10,
            first_bio_ts: 20,
            last_rq_ts: 30,
            complete_ts: 40,
            ..Default::default()
        };
        let rejected = IocbRecord {
            kind: RECORD_IOCB,
            opcode: 99,
            flags: IOCB_REJECTED,
            offset: -1,
            ..Default::default()
        };
        let syscall = IocbRecord {
            kind: aio_trace_common::RECORD_SYSCALL,
            opcode: aio_trace_common::SYSCALL_PWRITEV2,
            comm: *b"fio\0\0\0\0\0\0\0\0\0\0\0\0\0",
            ..full
        };
        let uring = IocbRecord {
            api: aio_trace_common::API_IO_URING,
            opcode: 250,
            ..full
        };
        let mount = crate::cgroup::fake::FakeMount::new("json");
        let in_cgroup = IocbRecord {
            cgroup: mount.add("system.slice/a \"quoted\" unit.scope"),
            ..full
        };
        let unresolved = IocbRecord {
            cgroup: u64::MAX,
            ..full
        };
        let mut cgroups = CgroupNames::new(Some(mount.root.clone()));
        for r in [
            full,
            rejected,
            syscall,
            uring,
            in_cgroup,
            unresolved,
            IocbRecord::default(),
        ] {
            let mut line = Vec::new();
            write_iocb_line(&r, &mut cgroups, &mut line).unwrap();
            let path = cgroups.path(r.cgroup).map(|p| p.to_string());
            let json = IocbJson::new(&r).with_cgroup_path(path.as_deref());
            let serde = serde_json::to_vec(&json).unwrap();
            assert_eq!(
                String::from_utf8_lossy(&line),
                String::from_utf8_lossy(&serde)
            );
        }
    }

    #[test]
    fn rejected_iocb_has_null_reap_and_latency() {
        let r = IocbRecord {
            kind: RECORD_IOCB,
            opcode: 7,
            flags: IOCB_REJECTED,
            segs: 1025,
            res: -22,
            ..Default::default()
        };
        let v = line(&r);
        assert_eq!(v["res"], -22);
        assert!(v["reap_ns"].is_null() && v["latency_ns"].is_null());
    }
}
