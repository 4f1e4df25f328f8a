//! Root integration tests: load the real eBPF object, drive known AIO from a
//! child process (aio-trace-testee), and check what the tracer saw against
//! what the child did. Run by `cargo xtask test` (needs root).

mod common;

use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::Duration,
};

use aio_trace::{loader::TraceConfig, model::IocbView};
use aio_trace_common::CtxCounters;
use common::{AIO_TRACE, Testee, of_type, trace, trace_with_timeout};
use serde_json::Value;

#[test]
fn every_iocb_becomes_one_exact_record() {
    every_iocb_exact(TraceConfig::default());
}

/// The same where the getevents, io_setup and io_destroy exits cannot read
/// their arguments from the caller's registers (a kernel without BTF): saved
/// args, the entry programs keep them for the exits. This kernel has BTF, so the test forces
/// the fallback; what it cannot show is the verifier of a kernel without BTF
/// passing over the branch that reads the registers.
#[test]
fn every_iocb_becomes_one_exact_record_with_saved_args() {
    every_iocb_exact(saved_args());
}

/// What a kernel without BTF gets: saved args, the entry programs keep
/// io_getevents', io_setup's and io_destroy's arguments for their exits.
fn saved_args() -> TraceConfig {
    TraceConfig {
        saved_args: true,
        ..TraceConfig::default()
    }
}

fn every_iocb_exact(config: TraceConfig) {
    let testee = Testee::spawn("basic");
    let pid = testee.pid();
    let (truth, records, summaries, losses) =
        common::trace_with(testee, Duration::from_secs(30), config);

    let expected: BTreeMap<u64, &Value> = of_type(&truth, "iocb")
        .map(|t| (t["tag"].as_u64().unwrap(), t))
        .collect();
    assert_eq!(
        records.len(),
        expected.len(),
        "one record per iocb: {records:#?}"
    );
    let ctx = of_type(&truth, "ctx").next().unwrap()["ctx"]
        .as_u64()
        .unwrap();

    for r in &records {
        let t = expected
            .get(&r.aio_data)
            .unwrap_or_else(|| panic!("record for unknown iocb {r:?}"));
        let what = format!("tag {} ({})", r.aio_data, t);
        assert_eq!(r.pid, pid, "{what}");
        assert_eq!(r.ctx, ctx, "{what}");
        assert_eq!(r.op().name(), t["op"], "{what}");
        assert_eq!(u64::from(r.segs), t["segs"].as_u64().unwrap(), "{what}");
        assert_eq!(r.requested_bytes(), t["bytes"].as_u64(), "{what}");
        assert_eq!(r.result(), t["res"].as_i64(), "{what}");
        assert_eq!(
            r.reaped_ns().is_some(),
            t["reaped"].as_bool().unwrap(),
            "{what}"
        );
        if let Some(latency) = r.latency_ns() {
            assert!(latency > 0 && r.reap_ns > r.submit_ns, "{what}");
        }
    }
    // The cases the issue names are really in the run, not just counted.
    common::assert_vectored_shapes(&records, "PREADV", "PWRITEV", &[1, 8, 9, 64, 1024]);
    assert!(
        common::has_request(&records, "PREAD", 1, 4096)
            && records.iter().any(|r| r.bytes == 8192 && r.res == 4096),
        "short read"
    );
    assert!(common::has_request(&records, "FSYNC", 0, 0));

    let calls = of_type(&truth, "calls").next().unwrap();
    let summary = summaries
        .iter()
        .find(|s| s.pid == pid && s.ctx == ctx)
        .expect("a summary for the testee's context");
    assert_eq!(
        summaries.len(),
        1,
        "only the testee is traced: {summaries:?}"
    );
    assert_eq!(
        summary.io_submit_calls,
        calls["io_submit_calls"].as_u64().unwrap()
    );
    assert_eq!(
        summary.iocbs_submitted,
        calls["iocbs_submitted"].as_u64().unwrap()
    );
    assert_eq!(
        summary.io_getevents_calls,
        calls["io_getevents_calls"].as_u64().unwrap()
    );
    assert_eq!(
        summary.empty_getevents,
        calls["empty_getevents"].as_u64().unwrap()
    );
    assert_eq!(
        summary.events_reaped,
        calls["events_reaped"].as_u64().unwrap()
    );
    assert_eq!(losses.total() - losses.abandoned, 0, "{losses:?}");
    // Everything began after the tracer: nothing was in flight at its start.
    assert_eq!(losses.inflight_at_start, 0, "{losses:?}");
}

/// The whole CLI: `snoop --json -p PID`, stopped with SIGINT, writes every
/// record, one summary per context and the loss line.
#[test]
fn snoop_json_writes_records_summary_and_losses() {
    let testee = Testee::spawn("basic");
    let mut snoop = Command::new(AIO_TRACE)
        .args(["snoop", "--json", "-p", &testee.pid().to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(snoop.stderr.take().unwrap());
    let mut banner = String::new();
    stderr.read_line(&mut banner).unwrap();
    assert!(
        banner.starts_with("Tracing AIO"),
        "attached banner, got {banner:?}"
    );

    let truth = testee.go();
    // SAFETY: signalling our own child.
    unsafe { libc::kill(snoop.id() as i32, libc::SIGINT) };
    let out = snoop.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();

    assert_eq!(
        of_type(&lines, "iocb").count(),
        of_type(&truth, "iocb").count()
    );
    for key in [
        "pid",
        "tid",
        "comm",
        "ctx",
        "op",
        "fd",
        "offset",
        "segs",
        "bytes",
        "res",
        "submit_ns",
        "reap_ns",
        "latency_ns",
    ] {
        assert!(
            of_type(&lines, "iocb").all(|l| l.get(key).is_some()),
            "every record has {key}"
        );
    }
    let summary = of_type(&lines, "summary").next().expect("a summary line");
    let calls = of_type(&truth, "calls").next().unwrap();
    for key in [
        "io_submit_calls",
        "iocbs_submitted",
        "io_getevents_calls",
        "empty_getevents",
        "events_reaped",
    ] {
        assert_eq!(summary[key], calls[key], "{key}");
    }
    let lost = of_type(&lines, "lost").next().expect("a lost line");
    assert_eq!(lost["ring_full"], 0);
    assert_eq!(
        lines.last().unwrap()["type"],
        "lost",
        "the loss line comes last"
    );
}

#[test]
fn an_unknown_pid_is_one_sentence_and_a_failure() {
    let out = Command::new(AIO_TRACE)
        .args(["snoop", "-p", "999999999"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        stderr,
        "aio-trace: no process with pid 999999999 is running\n"
    );
}

/// Five pids that share a set of the kernel's pid table: the loader refuses
/// the fifth with its own error instead of tracing without it.
#[test]
fn pids_beyond_a_full_set_of_the_pid_table_are_refused() {
    use aio_trace::loader::{LoadError, TraceConfig, Tracer};
    use aio_trace_common::{PID_FILTER_SETS, TableKey};
    let set = |pid: u32| u64::from(pid).first_entry(PID_FILTER_SETS);
    let target = set(1);
    let pids: Vec<u32> = (1..).filter(|&p| set(p) == target).take(5).collect();
    let config = TraceConfig {
        pids: pids.clone(),
        ..TraceConfig::default()
    };
    match Tracer::start(&config) {
        Err(LoadError::TooManyPids(pid)) => assert_eq!(pid, pids[4]),
        Err(e) => panic!("expected TooManyPids, got {e}"),
        Ok(_) => panic!("five pids in one 4-way set were accepted: {pids:?}"),
    }
}

#[test]
fn without_capabilities_it_names_the_missing_ones() {
    if Command::new("setpriv").arg("--version").output().is_err() {
        panic!("setpriv (util-linux) is needed for this test");
    }
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            AIO_TRACE,
            "snoop",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr,
        "aio-trace: missing CAP_BPF and CAP_PERFMON, which loading eBPF programs needs: run as root (sudo aio-trace …)\n"
    );
}

/// Runs aio-trace as uid 65534 with only CAP_BPF and CAP_PERFMON: enough to
/// load and attach, not to read tracefs (mode 0700, owned by root).
fn as_nobody_with_bpf_and_perfmon(args: &[&str]) -> std::process::Output {
    if Command::new("setpriv").arg("--version").output().is_err() {
        panic!("setpriv (util-linux) is needed for this test");
    }
    let caps = "-all,+bpf,+perfmon";
    Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            &format!("--inh-caps={caps}"),
            &format!("--ambient-caps={caps}"),
            &format!("--bounding-set={caps}"),
            AIO_TRACE,
        ])
        .args(args)
        .output()
        .unwrap()
}

/// CAP_BPF and CAP_PERFMON without CAP_DAC_READ_SEARCH: tracefs is mounted
/// but unreadable, and the error says which capability is missing (not that
/// tracefs is not mounted), once.
#[test]
fn an_unreadable_tracefs_names_cap_dac_read_search() {
    let out = as_nobody_with_bpf_and_perfmon(&["snoop", "-d", "1"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr,
        "aio-trace: cannot read tracefs: /sys/kernel/tracing is mode 0700 for uid 0, and this process (uid 65534) lacks CAP_DAC_READ_SEARCH to read it: grant it too, or run as root (sudo aio-trace …)\n"
    );
}

/// `doctor` in the same case blames the capability, not the kernel's config.
#[test]
fn doctor_blames_the_missing_capability_for_an_unreadable_tracefs() {
    let out = as_nobody_with_bpf_and_perfmon(&["doctor"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let tracefs = stdout
        .lines()
        .find(|l| l.contains(" tracefs "))
        .unwrap_or_else(|| panic!("no tracefs line: {stdout}"));
    assert!(tracefs.contains("lacks CAP_DAC_READ_SEARCH"), "{tracefs}");
    assert!(!stdout.contains("CONFIG_FTRACE_SYSCALLS"), "{stdout}");
    assert!(!stdout.contains("not mounted"), "{stdout}");
}

/// An application that reaps from the AIO ring in user memory never calls
/// io_getevents: its iocbs become records at their kernel completion (no reap
/// time), instead of piling up in the in-flight table.
#[test]
fn iocbs_reaped_from_the_user_ring_become_records() {
    let testee = Testee::spawn("ring_reap");
    let (_truth, records, summaries, losses) = trace(testee);
    assert_eq!(records.len(), 4, "{records:?}");
    for r in &records {
        assert!(
            r.reaped_ns().is_none() && r.complete_ns().is_some(),
            "{r:?}"
        );
        assert_eq!((r.op().name(), r.bytes), ("PREAD", 4096));
    }
    assert_eq!(losses.total(), 0, "{losses:?}");
    // Everything began after the tracer: nothing was in flight at its start.
    assert_eq!(losses.inflight_at_start, 0, "{losses:?}");
    assert_eq!(summaries[0].iocbs_submitted, 4);
    assert_eq!(summaries[0].io_getevents_calls, 0);
}

/// Without a kernel completion to go by (buffered AIO has no filesystem
/// dispatch event), ring-reaped iocbs age out, counted, after the timeout.
#[test]
fn unseen_completions_age_out() {
    let testee = Testee::spawn("ring_reap_buffered");
    let (_truth, records, _summaries, losses) = trace_with_timeout(testee, Duration::from_secs(1));
    assert!(records.is_empty(), "{records:?}");
    assert_eq!(losses.aged_out, 4, "{losses:?}");
    assert_eq!(losses.abandoned, 0, "{losses:?}");
}

/// io_destroy with iocbs in flight waits for them and discards their events:
/// their entries leave the table, as records (the kernel completed them) with
/// no reap time.
#[test]
fn io_destroy_reclaims_inflight_iocbs() {
    destroy_reclaims(TraceConfig::default());
}

/// The same with saved args: io_destroy's argument kept by its entry program (see
/// `every_iocb_becomes_one_exact_record_with_saved_args`).
#[test]
fn io_destroy_reclaims_inflight_iocbs_with_saved_args() {
    destroy_reclaims(saved_args());
}

fn destroy_reclaims(config: TraceConfig) {
    use aio_trace::reader::Record;
    use aio_trace_common::{CTX_DESTROY, CTX_SETUP};

    let testee = Testee::spawn("destroy_inflight");
    let (_truth, all, _summaries, losses) =
        common::trace_records_with(testee, Duration::from_secs(30), config);
    // The context's setup and destroy were seen, with its id.
    let ctx_events: Vec<(u8, u64)> = all
        .iter()
        .filter_map(|r| match r {
            Record::Ctx(c) => Some((c.event, c.ctx)),
            _ => None,
        })
        .collect();
    let setup = ctx_events.iter().find(|(e, _)| *e == CTX_SETUP);
    let destroy = ctx_events.iter().find(|(e, _)| *e == CTX_DESTROY);
    assert!(
        matches!((setup, destroy), (Some((_, a)), Some((_, b))) if a == b && *a != 0),
        "{ctx_events:?}"
    );
    let records: Vec<_> = all
        .into_iter()
        .filter_map(|r| match r {
            Record::Iocb(r) => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(records.len(), 4, "{records:?}");
    assert!(
        records
            .iter()
            .all(|r| r.reaped_ns().is_none() && r.complete_ns().is_some())
    );
    assert_eq!(losses.total(), 0, "{losses:?}");
    // Everything began after the tracer: nothing was in flight at its start.
    assert_eq!(losses.inflight_at_start, 0, "{losses:?}");
}

/// fio reaping from the ring (--userspace_reap with iodepth_batch_complete_min=0)
/// makes (almost) no io_getevents call; every one of its I/Os is still a record.
#[test]
fn fio_userspace_reap_is_traced_to_the_last_iocb() {
    let dir = common::TempDir::new("fio");
    let file = format!("{}/fio.dat", dir.path());
    let fio = move |args: &[&str]| {
        let mut fio = Command::new("fio");
        fio.args([
            "--name=ur",
            "--ioengine=libaio",
            "--direct=1",
            "--bs=4k",
            "--size=16M",
            "--iodepth=8",
        ])
        .arg(format!("--filename={file}"))
        .args(args);
        fio
    };
    assert!(
        fio(&["--rw=write"])
            .output()
            .expect("fio (cargo xtask test installs it)")
            .status
            .success(),
        "fio lays out the file"
    );
    let reap = fio(&[
        "--rw=randread",
        "--userspace_reap=1",
        "--iodepth_batch_complete_min=0",
        "--number_ios=500",
    ]);
    let run = common::trace_command("fio", reap);
    let (iocbs, losses, summaries) = (run.iocbs(), run.losses, run.contexts);
    assert_eq!(iocbs.len(), 500, "every fio I/O is a record");
    // A completion no tracing program saw (the kernel ran none for it: rare,
    // and seen by bpftrace too) leaves its record without a result, counted
    // abandoned.
    let unseen = iocbs.iter().filter(|r| r.complete_ns().is_none()).count() as u64;
    assert_eq!(unseen, losses.abandoned, "{losses:?}");
    let odd: Vec<_> = iocbs
        .iter()
        .filter(|r| {
            !(r.op().name() == "PREAD"
                && r.bios == 1
                && (r.complete_ns().is_some() || r.result().is_none()))
        })
        .collect();
    assert!(odd.is_empty(), "{odd:#?}");
    // fio reaps from the ring, except when it must wait for the last I/Os
    // (io_u_quiesce asks for at least one event): then it calls io_getevents,
    // at most once per I/O still in flight. Those iocbs carry a reap time,
    // and the kernel's counters saw exactly those events.
    let by_syscall = iocbs.iter().filter(|r| r.reaped_ns().is_some()).count() as u64;
    let counted = |f: fn(&CtxCounters) -> u64| summaries.iter().map(|(_, c)| f(c)).sum::<u64>();
    assert_eq!(by_syscall, counted(|c| c.events_reaped), "{summaries:?}");
    assert!(
        by_syscall <= 8,
        "only the last iodepth (8) I/Os may be waited for: {by_syscall}"
    );
    assert!(
        counted(|c| c.io_getevents_calls) <= by_syscall,
        "{summaries:?}"
    );
    assert_eq!(losses.total(), 0, "{losses:?}");
    // Everything began after the tracer: nothing was in flight at its start.
    assert_eq!(losses.inflight_at_start, 0, "{losses:?}");
}

/// Four submitter threads share one context with a reaper thread; each
/// submits its PREADVs from one iocb on its stack, again while the previous
/// submission is still in flight (same address, same aio_data). Every
/// submission is still one record with its result and a latency.
#[test]
fn threads_reusing_one_stack_iocb_each_give_one_record_per_submission() {
    threads_exact("threads_reused_iocb");
}

/// The same threads with their own calloc'd iocb and iovec arrays, each entry
/// written just before its submit, and a reaper with a timeout.
#[test]
fn threads_with_distinct_heap_iocbs_give_one_record_per_submission() {
    threads_exact("threads_distinct_iocbs");
}

fn threads_exact(scenario: &str) {
    let testee = Testee::spawn(scenario);
    let pid = testee.pid();
    let (truth, records, summaries, losses) = trace(testee);
    let ctx = of_type(&truth, "ctx").next().unwrap()["ctx"]
        .as_u64()
        .unwrap();
    // Submissions of one iocb address and aio_data cannot be told apart by
    // the reap, so the comparison is of multisets: (address, aio_data, segs,
    // bytes, res) → how many.
    type Shape = (u64, u64, u64, Option<u64>, Option<i64>);
    let mut expected: BTreeMap<Shape, u64> = BTreeMap::new();
    for t in of_type(&truth, "iocb") {
        let shape = (
            t["iocb"].as_u64().unwrap(),
            t["tag"].as_u64().unwrap(),
            t["segs"].as_u64().unwrap(),
            t["bytes"].as_u64(),
            t["res"].as_i64(),
        );
        *expected.entry(shape).or_default() += 1;
    }
    let mut seen: BTreeMap<Shape, u64> = BTreeMap::new();
    let mut no_latency = 0;
    for r in &records {
        assert_eq!((r.pid, r.ctx), (pid, ctx), "{r:?}");
        let shape = (
            r.iocb,
            r.aio_data,
            u64::from(r.segs),
            r.requested_bytes(),
            r.result(),
        );
        *seen.entry(shape).or_default() += 1;
        match r.latency_ns() {
            Some(latency) if latency > 0 && latency < 10_000_000_000 => {}
            _ => no_latency += 1,
        }
    }
    let total: u64 = expected.values().sum();
    let differing: Vec<_> = expected
        .iter()
        .filter(|(k, n)| seen.get(k) != Some(n))
        .map(|(k, n)| (k, n, seen.get(k).copied().unwrap_or(0)))
        .chain(
            seen.iter()
                .filter(|(k, _)| !expected.contains_key(k))
                .map(|(k, n)| (k, &0, *n)),
        )
        .take(10)
        .collect();
    assert_eq!(
        (records.len() as u64, no_latency, losses.total()),
        (total, 0, 0),
        "records, records without a plausible latency, losses {losses:?}; \
         (shape, expected, seen): {differing:?}"
    );
    assert!(differing.is_empty(), "{differing:?}");
    // The testee starts after the tracer: no io_event may pass as one of the
    // trace's start.
    assert_eq!(losses.inflight_at_start, 0, "{losses:?}");
    let calls = of_type(&truth, "calls").next().unwrap();
    let summary = summaries
        .iter()
        .find(|s| s.pid == pid && s.ctx == ctx)
        .expect("a summary for the testee's context");
    for (got, key) in [
        (summary.io_submit_calls, "io_submit_calls"),
        (summary.iocbs_submitted, "iocbs_submitted"),
        (summary.io_getevents_calls, "io_getevents_calls"),
        (summary.empty_getevents, "empty_getevents"),
        (summary.events_reaped, "events_reaped"),
    ] {
        assert_eq!(got, calls[key].as_u64().unwrap(), "{key}");
    }
}

/// Iocbs, iovec arrays and iocb pointer arrays on pages the process has not
/// mapped when it calls io_submit: the kernel's reads fault them in, the
/// entry program's reads cannot. Every iocb is still one exact record, with
/// its dispatch and bios where it has direct I/O, and nothing is lost.
#[test]
fn iocbs_in_memory_not_yet_mapped_are_exact_records() {
    let testee = Testee::spawn("unmapped_iocbs");
    let pid = testee.pid();
    let (truth, records, _, losses) = trace(testee);
    let expected: BTreeMap<u64, &Value> = of_type(&truth, "iocb")
        .map(|t| (t["tag"].as_u64().unwrap(), t))
        .collect();
    assert_eq!(
        records.len(),
        expected.len(),
        "one record per iocb: {losses:?}"
    );
    let mut seen = BTreeMap::new();
    for r in &records {
        assert_eq!(r.pid, pid, "{r:?}");
        let t = expected
            .get(&r.aio_data)
            .unwrap_or_else(|| panic!("record of no iocb: {r:?}"));
        let what = format!("{t} {r:?}");
        assert_eq!(r.op().name(), t["op"], "{what}");
        assert_eq!(u64::from(r.segs), t["segs"].as_u64().unwrap(), "{what}");
        assert_eq!(r.requested_bytes(), t["bytes"].as_u64(), "{what}");
        assert_eq!(r.result(), t["res"].as_i64(), "{what}");
        assert_eq!(r.rejected(), !t["reaped"].as_bool().unwrap(), "{what}");
        if t["reaped"].as_bool().unwrap() {
            assert!(r.latency_ns().is_some_and(|l| l > 0), "{what}");
        }
        if t["direct"].as_bool().unwrap() {
            assert!(r.dispatches >= 1 && r.bios >= 1, "{what}");
        }
        *seen.entry(r.aio_data).or_insert(0) += 1;
    }
    assert!(seen.values().all(|&n| n == 1), "{seen:?}");
    assert_eq!(losses.total(), 0, "{losses:?}");
}

/// libaio's harness case 3: io_submit calls with bad pointers, which the
/// kernel refuses. Each refused iocb is a record with the kernel's errno —
/// also the ones the tracer could not read either — and none is a loss.
#[test]
fn iocbs_refused_for_bad_pointers_are_records_with_the_errno() {
    let (truth, mut records, _, losses) = trace(Testee::spawn("bad_pointers"));
    records.sort_by_key(|r| r.submit_ns);
    let calls: Vec<&Value> = of_type(&truth, "submit").collect();
    assert_eq!(
        records.len(),
        calls.len(),
        "one record per refused call: {records:#?}"
    );
    for (r, call) in records.iter().zip(&calls) {
        let what = format!("{call}: {r:?}");
        assert!(r.rejected(), "{what}");
        assert_eq!(r.result(), call["ret"].as_i64(), "{what}");
        if call["what"] == "bad ctx" {
            assert_eq!(r.op().name(), "PREAD", "{what}");
        } else {
            assert_eq!(r.result(), Some(-(libc::EFAULT as i64)), "{what}");
            assert_eq!(r.op().name(), "UNKNOWN", "{what}");
            assert_eq!(r.requested_bytes(), None, "{what}");
        }
    }
    assert_eq!(losses.total(), 0, "{losses:?}");
}

/// libaio's harness case 18: threads that each set up a context, submit one
/// read and destroy the context without io_getevents, again and again; the
/// kernel hands destroyed context ids to other threads' io_setup. Every read
/// is a record with its kernel completion and result, none is abandoned.
#[test]
fn contexts_destroyed_without_getevents_leave_one_record_per_iocb() {
    let (truth, records, _, losses) = trace(Testee::spawn("destroy_churn"));
    let calls = of_type(&truth, "calls").next().unwrap();
    let submitted = calls["iocbs_submitted"].as_u64().unwrap();
    assert_eq!(records.len() as u64, submitted, "{losses:?}");
    let odd: Vec<_> = records
        .iter()
        .filter(|r| {
            !(r.op().name() == "PREAD"
                && r.result() == Some(4096)
                && r.complete_ns().is_some()
                && r.reaped_ns().is_none()
                && r.dispatches == 1)
        })
        .collect();
    assert!(odd.is_empty(), "{odd:#?}");
    let mut tags: Vec<u64> = records.iter().map(|r| r.aio_data).collect();
    tags.sort_unstable();
    tags.dedup();
    assert_eq!(tags.len() as u64, submitted, "each iocb once");
    assert_eq!(losses.total(), 0, "{losses:?}");
}
