//! The record schema: the one definition of the fields of an iocb or syscall
//! record, in their on-disk order, for every format. Model layer: pure, no
//! kernel, no I/O.
//!
//! [`IocbFields`] is written by the JSONL writer (through a fast serializer
//! that serde derives from this same struct), by the CSV writer (its header
//! row and rows) and into the Perfetto slices' `args`; it is read back by the
//! report's parser for JSONL and CSV. A field added here appears in all of
//! them; `export::schema_tests` round-trips every field through each.

use std::borrow::Cow;

use aio_trace_common::{
    API_AIO, API_IO_URING, IOCB_BYTES_UNKNOWN, IOCB_REJECTED, IOCB_RES_UNKNOWN, IocbRecord,
    RECORD_IOCB, RECORD_SYSCALL,
};
use serde::{Deserialize, Serialize};

use super::{Api, DevName, IocbView, Op, comm_str};

/// `{"type":"iocb",…}`: one completed (or rejected) AIO iocb or io_uring
/// request; `{"type":"syscall",…}`: one synchronous vectored syscall, same
/// fields. Fields are only ever added,
/// never renamed; unknown values and stages that do not exist are null.
/// Fields added after the first version default to null/0 when read.
///
/// `S` is the text type (borrowed when written, owned when read) and `D` the
/// device ("major:minor", formatted without allocating when written).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct IocbFields<S, D> {
    #[serde(rename = "type")]
    pub kind: S,
    pub pid: u32,
    pub tid: u32,
    pub comm: S,
    pub ctx: u64,
    pub op: S,
    pub fd: u32,
    /// Null for readv/writev, which use the file position.
    pub offset: Option<i64>,
    pub segs: u32,
    pub bytes: Option<u64>,
    pub res: Option<i64>,
    pub submit_ns: u64,
    pub reap_ns: Option<u64>,
    pub latency_ns: Option<u64>,
    /// User address of the iocb, and the application's own tag for it.
    #[serde(default)]
    pub iocb: u64,
    #[serde(default)]
    pub aio_data: u64,
    /// "major:minor" and inode of the filesystem dispatch; null without one.
    #[serde(default)]
    pub dev: Option<D>,
    #[serde(default)]
    pub ino: Option<u64>,
    #[serde(default)]
    pub dispatches: u32,
    #[serde(default)]
    pub bios: u32,
    #[serde(default)]
    pub splits: u32,
    #[serde(default)]
    pub merges: u32,
    /// submit → filesystem dispatch.
    #[serde(default)]
    pub dispatch_ns: Option<u64>,
    /// dispatch → first bio queued.
    #[serde(default)]
    pub queue_ns: Option<u64>,
    /// first bio queued → last request completed.
    #[serde(default)]
    pub device_ns: Option<u64>,
    /// last request completed → kernel completion.
    #[serde(default)]
    pub end_io_ns: Option<u64>,
    /// Kernel completion time (monotonic ns).
    #[serde(default)]
    pub complete_ns: Option<u64>,
    /// kernel completion → handed to the application.
    #[serde(default)]
    pub reap_lag_ns: Option<u64>,
    /// The interface: always written; absent from recordings older than
    /// io_uring tracing, which [`IocbRow::api`] reads as they meant it.
    #[serde(default)]
    pub api: Option<Api>,
    /// The submitter's cgroup v2 id (the inode number of its directory on
    /// the cgroup2 mount); null where the record has none.
    #[serde(default)]
    pub cgroup: Option<u64>,
    /// That cgroup's path under the cgroup2 mount (`/system.slice/foo.scope`),
    /// resolved when the record was written; null if it could not be.
    #[serde(default)]
    pub cgroup_path: Option<S>,
}

/// A record as it is written: borrows the record's comm, no allocation.
pub type IocbJson<'a> = IocbFields<Cow<'a, str>, DevName>;

/// A record as it is read back from a recording.
pub type IocbRow = IocbFields<String, String>;

impl<'a> IocbJson<'a> {
    pub fn new(r: &'a IocbRecord) -> Self {
        Self {
            kind: Cow::Borrowed(if r.is_syscall_record() {
                "syscall"
            } else {
                "iocb"
            }),
            pid: r.pid,
            tid: r.tid,
            comm: comm_str(&r.comm),
            ctx: r.ctx,
            op: Cow::Borrowed(r.op().name()),
            fd: r.fd,
            offset: r.file_offset(),
            segs: r.segs,
            bytes: r.requested_bytes(),
            res: r.result(),
            submit_ns: r.submit_ns,
            reap_ns: r.reaped_ns(),
            latency_ns: r.latency_ns(),
            iocb: r.iocb,
            aio_data: r.aio_data,
            dev: r.device(),
            ino: (r.dispatches != 0).then_some(r.ino),
            dispatches: r.dispatches,
            bios: r.bios,
            splits: r.splits,
            merges: r.merges,
            dispatch_ns: r.dispatch_ns(),
            queue_ns: r.queue_ns(),
            device_ns: r.device_ns(),
            end_io_ns: r.end_io_ns(),
            complete_ns: r.complete_ns(),
            reap_lag_ns: r.reap_lag_ns(),
            api: Some(r.api()),
            cgroup: (r.cgroup != 0).then_some(r.cgroup),
            cgroup_path: None,
        }
    }

    /// The record with its cgroup's path, as the writer resolved it.
    pub fn with_cgroup_path(self, path: Option<&'a str>) -> Self {
        Self {
            cgroup_path: path.map(Cow::Borrowed),
            ..self
        }
    }
}

impl IocbRow {
    /// The row's interface, from its `api` field or, in a recording without
    /// one, from its type.
    pub fn api(&self) -> Api {
        self.api
            .unwrap_or_else(|| Api::of_kind(self.kind == "syscall"))
    }

    /// The row's op, named under its interface.
    pub fn op(&self) -> Op {
        Op::from_name(&self.op, self.api())
    }

    /// The record the tracer wrote: equal to it on every field the schema
    /// carries. Stages map back to timestamps from the submit time (and the
    /// last request from the kernel completion when the bio stages are
    /// missing).
    pub fn to_record(&self) -> IocbRecord {
        let syscall = self.kind == "syscall";
        let mut flags = 0;
        if self.bytes.is_none() {
            flags |= IOCB_BYTES_UNKNOWN;
        }
        if self.res.is_none() {
            flags |= IOCB_RES_UNKNOWN;
        }
        // Neither reaped nor completed: io_submit refused it (to the TUI, an
        // iocb never seen to finish is the same: no latency).
        if self.reap_ns.is_none() && self.complete_ns.is_none() {
            flags |= IOCB_REJECTED;
        }
        let mut comm = [0u8; 16];
        let name = self.comm.as_bytes();
        let n = name.len().min(comm.len());
        comm[..n].copy_from_slice(&name[..n]);
        let dev = self
            .dev
            .as_deref()
            .and_then(|d| d.split_once(':'))
            .and_then(|(major, minor)| {
                Some((major.parse::<u32>().ok()? << 20) | minor.parse::<u32>().ok()?)
            })
            .unwrap_or(0);
        let after = |from: u64, span: Option<u64>| match span {
            // Saturating: the values come from a file, which may hold anything.
            Some(s) if from != 0 => from.saturating_add(s),
            _ => 0,
        };
        let complete_ts = self.complete_ns.unwrap_or(0);
        let dispatch_ts = after(self.submit_ns, self.dispatch_ns);
        let first_bio_ts = after(dispatch_ts, self.queue_ns);
        let mut last_rq_ts = after(first_bio_ts, self.device_ns);
        if last_rq_ts == 0
            && let Some(end_io) = self.end_io_ns.filter(|_| complete_ts != 0)
        {
            last_rq_ts = complete_ts.saturating_sub(end_io);
        }
        IocbRecord {
            kind: if syscall { RECORD_SYSCALL } else { RECORD_IOCB },
            api: if self.api() == Api::IoUring {
                API_IO_URING
            } else {
                API_AIO
            },
            opcode: self.op().opcode(),
            flags,
            pid: self.pid,
            tid: self.tid,
            fd: self.fd,
            segs: self.segs,
            comm,
            ctx: self.ctx,
            iocb: self.iocb,
            aio_data: self.aio_data,
            offset: self.offset.unwrap_or(-1),
            bytes: self.bytes.unwrap_or(0),
            res: self.res.unwrap_or(0),
            submit_ns: self.submit_ns,
            reap_ns: self.reap_ns.unwrap_or(0),
            dev,
            dispatches: self.dispatches,
            bios: self.bios,
            splits: self.splits,
            merges: self.merges,
            ino: self.ino.unwrap_or(0),
            dispatch_ts,
            first_bio_ts,
            last_rq_ts,
            complete_ts,
            cgroup: self.cgroup.unwrap_or(0),
            ..IocbRecord::default()
        }
    }
}

/// The schema's field names, in their on-disk order, as serde derives them
/// from [`IocbFields`] (what the CSV header row and every JSON object hold).
pub fn field_names() -> &'static [&'static str] {
    use serde::de::{self, Visitor, value::Error};

    /// A deserializer that only learns which fields the struct asks for.
    struct Names(&'static [&'static str]);

    impl<'de> de::Deserializer<'de> for &mut Names {
        type Error = Error;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Error> {
            Err(de::Error::custom("only a struct's field names"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _visitor: V,
        ) -> Result<V::Value, Error> {
            self.0 = fields;
            Err(de::Error::custom("only a struct's field names"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map enum identifier ignored_any
        }
    }

    let mut names = Names(&[]);
    let _ = IocbRow::deserialize(&mut names);
    names.0
}

/// The tests' sample record: a reaped PREADV through every stage.
#[cfg(test)]
pub fn sample_record() -> IocbRecord {
    let mut comm = [0u8; 16];
    comm[..4].copy_from_slice(b"test");
    IocbRecord {
        kind: RECORD_IOCB,
        opcode: 7,
        pid: 10,
        tid: 11,
        fd: 3,
        segs: 8,
        comm,
        ctx: 0x7f00_0000,
        iocb: 0x5000,
        aio_data: 99,
        offset: 4096,
        bytes: 32768,
        res: 32768,
        submit_ns: 1_000,
        reap_ns: 51_000,
        dev: (254 << 20) | 1,
        ino: 12,
        dispatches: 1,
        bios: 1,
        dispatch_ts: 3_000,
        first_bio_ts: 4_000,
        last_rq_ts: 44_000,
        complete_ts: 45_000,
        // The root cgroup: its id is 1 on every cgroup2 mount.
        cgroup: 1,
        ..Default::default()
    }
}

/// The tests' io_uring sample: a READV_FIXED of an io_uring ring through
/// every stage, reaped by the io_uring_enter that waited for it.
#[cfg(test)]
pub fn sample_uring_record() -> IocbRecord {
    IocbRecord {
        api: API_IO_URING,
        opcode: aio_trace_common::IORING_OP_READV_FIXED.into(),
        ctx: 0xffff_8881_0a2b_3000,
        iocb: 0xffff_8881_0c4d_5e00,
        aio_data: 0xdead_beef,
        segs: 4,
        bytes: 16384,
        res: 16384,
        ..sample_record()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_are_the_structs_in_order() {
        let names = field_names();
        assert_eq!(names.len(), 31);
        assert_eq!(names[..3], ["type", "pid", "tid"]);
        assert_eq!(names[names.len() - 3..], ["api", "cgroup", "cgroup_path"]);
    }

    #[test]
    fn rows_without_an_api_are_aio_or_sync_by_type() {
        let line = |kind: &str, api: &str| {
            format!(
                r#"{{"type":"{kind}","pid":1,"tid":1,"comm":"a","ctx":1,"op":"PREADV","fd":3,"offset":0,"segs":2,"bytes":8192,"res":8192,"submit_ns":1,"reap_ns":2,"latency_ns":1{api}}}"#
            )
        };
        let row = |text: String| serde_json::from_str::<IocbRow>(&text).unwrap();
        let old_iocb = row(line("iocb", ""));
        assert_eq!((old_iocb.api, old_iocb.api()), (None, Api::Aio));
        assert_eq!(old_iocb.op(), Op::Preadv);
        let old_syscall = row(line("syscall", ""));
        assert_eq!(old_syscall.api(), Api::Sync);
        assert_eq!(old_syscall.op(), Op::SyscallPreadv);
        assert_eq!(old_syscall.to_record().kind, RECORD_SYSCALL);
        let uring = row(line("iocb", r#","api":"io_uring""#).replace("PREADV", "READV"));
        assert_eq!(uring.api(), Api::IoUring);
        assert_eq!(uring.to_record().api, API_IO_URING);
        assert_eq!(uring.to_record().opcode, 1);
        assert!(serde_json::from_str::<IocbRow>(&line("iocb", r#","api":"posix""#)).is_err());
    }

    #[test]
    fn times_from_a_file_saturate_instead_of_overflowing() {
        let row = IocbRow {
            kind: "iocb".into(),
            op: "PREADV".into(),
            submit_ns: u64::MAX - 1,
            dispatch_ns: Some(u64::MAX),
            queue_ns: Some(u64::MAX),
            device_ns: Some(u64::MAX),
            ..IocbRow::default()
        };
        let record = row.to_record();
        assert_eq!(record.dispatch_ts, u64::MAX);
        assert_eq!(record.last_rq_ts, u64::MAX);
    }
}
