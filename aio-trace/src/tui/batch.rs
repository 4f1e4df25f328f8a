//! `top --batch`: what the table shows, printed once per tick without a
//! terminal — one JSON object per line, or a plain text table.
//!
//! Layer: reads the state as the panels do (the view's rows over the shown
//! aggregates); draws nothing.

use std::fmt::Write as _;

use serde_json::{Map, Value, json};

use super::{
    super::model::DevName,
    state::State,
    stats::Stats,
    store::{Kind, RowKey},
    ui::format::{fmt_count, fmt_opt_ns, fmt_ratio, fmt_segments, mb},
};

/// How `--batch` prints each tick.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BatchFormat {
    /// One JSON object per line.
    #[default]
    Json,
    /// A header line, then a table, then a blank line.
    Text,
}

/// Nanoseconds as microseconds, `null` when unknown.
fn us(ns: Option<u64>) -> Value {
    ns.map_or(Value::Null, |ns| json!(ns as f64 / 1e3))
}

/// Rounded for a line a person may read too.
fn round(v: f64, places: i32) -> f64 {
    let scale = 10f64.powi(places);
    (v * scale).round() / scale
}

/// The figures of one set of stats, as a table row shows them.
fn stats_json(stats: &Stats) -> Map<String, Value> {
    let mut ops = Map::new();
    for (op, share) in stats.mix() {
        ops.insert(op.name().into(), json!(round(share, 4)));
    }
    let mut m = Map::new();
    m.insert(
        "iocbs_per_s".into(),
        json!(round(stats.last.iocbs_per_s, 1)),
    );
    m.insert(
        "mb_per_s".into(),
        json!(round(stats.last.bytes_per_s / 1e6, 3)),
    );
    m.insert("iocbs".into(), json!(stats.iocbs));
    m.insert("ops".into(), Value::Object(ops));
    let mut apis = Map::new();
    for (api, share) in stats.api_mix() {
        apis.insert(api.name().into(), json!(round(share, 4)));
    }
    m.insert("apis".into(), Value::Object(apis));
    m.insert(
        "avg_segments".into(),
        json!(stats.avg_segments().map(|v| round(v, 3))),
    );
    m.insert(
        "bios_per_iocb".into(),
        json!(stats.bios_per_iocb().map(|v| round(v, 3))),
    );
    m.insert("p50_us".into(), us(stats.p50_ns));
    m.insert("p99_us".into(), us(stats.last.p99_ns));
    m.insert("errors".into(), json!(stats.errors));
    m
}

/// In flight for a row, `None` when a recording has no counters for it or
/// the kernel does not count it (a kind, an io_uring ring).
fn in_flight(state: &State, key: &RowKey) -> Option<u64> {
    (state.replay.is_none() && key.has_in_flight())
        .then(|| state.store.in_flight(key.pid, key.ctx.map(|c| c.id)))
}

/// In flight over every traced process; `None` when replaying.
fn total_in_flight(state: &State) -> Option<u64> {
    if state.replay.is_some() {
        return None;
    }
    let mut pids: Vec<u32> = state.store.counters.keys().map(|k| k.pid).collect();
    pids.dedup();
    Some(
        pids.iter()
            .map(|&pid| state.store.in_flight(pid, None))
            .sum(),
    )
}

/// One tick of the table as JSON: the header's figures and one entry per row
/// of the view, each split into its scalar and vectored halves.
pub fn batch_snapshot(state: &State) -> Value {
    let shown = state.shown();
    let totals = &shown.totals;
    let rates = &shown.rates;
    let syscalls = state.replay.is_none();
    let mut losses = serde_json::to_value(state.store.losses).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut losses {
        m.remove("type");
        m.insert("total".into(), json!(state.store.losses.total()));
    }
    let overhead = state.store.overhead.map(|o| {
        json!({
            "bpf_ns_per_iocb": o.bpf_ns_per_iocb.map(|v| round(v, 1)),
            "bpf_cpu_pct": o.bpf_cpu_pct.map(|v| round(v, 2)),
            "user_cpu_pct": round(o.user_cpu_pct, 2),
            "rss_bytes": o.rss_bytes,
        })
    });
    let rows: Vec<Value> = state
        .view
        .rows
        .iter()
        .filter_map(|key| {
            let group = shown.group(key)?;
            let mut row = Map::new();
            row.insert("pid".into(), json!(key.pid));
            row.insert("comm".into(), json!(shown.comm(key.pid)));
            if let Some(ctx) = key.ctx {
                row.insert("ctx".into(), json!(format!("{:x}", ctx.id)));
                row.insert("api".into(), json!(ctx.api.name()));
            }
            if let Some(process) = shown.processes.get(&key.pid)
                && let Some(path) = state.names.cgroup(process.cgroup)
            {
                row.insert("cgroup".into(), json!(process.cgroup));
                row.insert("cgroup_path".into(), json!(path));
            }
            row.extend(stats_json(group.stats(key.kind)));
            row.insert("in_flight".into(), json!(in_flight(state, key)));
            let devices: Vec<Value> = group
                .devices
                .iter()
                .map(|(&dev, share)| {
                    json!({
                        "dev": DevName(dev).to_string(),
                        "name": state.names.device(dev),
                        "iocbs": share.iocbs,
                        "bios": share.bios,
                        "bytes": share.bytes,
                        "avg_latency_us": us(share.avg_latency_ns()),
                    })
                })
                .collect();
            row.insert("devices".into(), Value::Array(devices));
            if key.kind.is_none() {
                let mut kinds = Map::new();
                for kind in [Kind::Scalar, Kind::Vectored] {
                    let stats = group.stats(Some(kind));
                    if stats.iocbs > 0 {
                        kinds.insert(kind.name().into(), Value::Object(stats_json(stats)));
                    }
                }
                row.insert("kinds".into(), Value::Object(kinds));
            } else if let Some(kind) = key.kind {
                row.insert("kind".into(), json!(kind.name()));
            }
            Some(Value::Object(row))
        })
        .collect();
    json!({
        "t": round(state.uptime.as_secs_f64(), 3),
        "iocbs_per_s": round(totals.last.iocbs_per_s, 1),
        "mb_per_s": round(totals.last.bytes_per_s / 1e6, 3),
        "io_submit_per_s": syscalls.then(|| round(rates.io_submit_per_s, 1)),
        "io_getevents_per_s": syscalls.then(|| round(rates.io_getevents_per_s, 1)),
        "events_per_getevents": rates.events_per_getevents.map(|v| round(v, 3)),
        "in_flight": total_in_flight(state),
        "losses": losses,
        "overhead": overhead,
        "rows": rows,
    })
}

/// One tick of the table as plain text: a header line, the column names,
/// one line per row, and a blank line.
pub fn batch_text(state: &State) -> String {
    let shown = state.shown();
    let totals = &shown.totals;
    let rates = &shown.rates;
    let mut out = format!(
        "t {:.1}s  iocbs/s {}  MB/s {}",
        state.uptime.as_secs_f64(),
        fmt_count(totals.last.iocbs_per_s),
        mb(totals.last.bytes_per_s)
    );
    if state.replay.is_none() {
        let _ = write!(
            out,
            "  io_submit/s {}  io_getevents/s {}",
            fmt_count(rates.io_submit_per_s),
            fmt_count(rates.io_getevents_per_s)
        );
    }
    if let Some(n) = total_in_flight(state) {
        let _ = write!(out, "  in-flight {n}");
    }
    let losses = &state.store.losses;
    let _ = write!(out, "  lost {}", losses.total());
    if losses.inflight_at_start > 0 {
        let _ = write!(out, "  in flight at start {}", losses.inflight_at_start);
    }
    if let Some(o) = &state.store.overhead {
        let _ = write!(out, "  top {:.1}%cpu", o.user_cpu_pct);
        if let Some(pct) = o.bpf_cpu_pct {
            let _ = write!(out, "  BPF {pct:.1}%cpu");
        }
    }
    out.push('\n');
    let _ = writeln!(
        out,
        "{:>7} {:<16} {:>7} {:>7} {:<24} {:>5} {:>5} {:>5} {:>7} {:>7} {:>4}",
        "PID", "COMM", "IOCB/s", "MB/s", "OPS", "SEGS", "BIO", "INFL", "P50", "P99", "ERR"
    );
    for key in &state.view.rows {
        let Some(stats) = shown.stats(key) else {
            continue;
        };
        let ops = stats
            .mix()
            .iter()
            .map(|(op, share)| format!("{} {:.0}%", op.name(), share * 100.0))
            .collect::<Vec<_>>()
            .join(" ");
        let _ = writeln!(
            out,
            "{:>7} {:<16} {:>7} {:>7} {:<24} {:>5} {:>5} {:>5} {:>7} {:>7} {:>4}",
            key.pid,
            shown.comm(key.pid),
            fmt_count(stats.last.iocbs_per_s),
            mb(stats.last.bytes_per_s),
            ops,
            fmt_segments(stats.avg_segments()),
            fmt_ratio(stats.bios_per_iocb()),
            in_flight(state, key).map_or_else(|| "n/a".into(), |n| n.to_string()),
            fmt_opt_ns(stats.p50_ns),
            fmt_opt_ns(stats.last.p99_ns),
            stats.errors
        );
    }
    out.push('\n');
    out
}

/// One tick in `format`, with its trailing newline.
pub fn batch_output(state: &State, format: BatchFormat) -> String {
    match format {
        BatchFormat::Json => format!("{}\n", batch_snapshot(state)),
        BatchFormat::Text => batch_text(state),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::state::tests::{sample_state, ticked, uring_state};

    #[test]
    fn snapshot_has_the_header_figures_and_one_entry_per_row() {
        let mut s = ticked(sample_state());
        s.store.losses.inflight_at_start = 3;
        let v = batch_snapshot(&s);
        assert_eq!(v["t"], 1.0);
        assert_eq!(v["iocbs_per_s"], 48.0);
        assert_eq!(
            v["in_flight"], 4,
            "postgres reaped its last two from the ring"
        );
        assert_eq!(v["losses"]["inflight_at_start"], 3);
        assert_eq!(v["losses"]["total"], 0);
        assert!(v["losses"].get("type").is_none());
        assert!(v["overhead"].is_null());
        let rows = v["rows"].as_array().unwrap();
        assert_eq!(rows.len(), 2);
        let fio = &rows[0];
        assert_eq!(fio["pid"], 100);
        assert_eq!(fio["comm"], "fio");
        assert_eq!(fio["iocbs_per_s"], 40.0);
        assert_eq!(fio["in_flight"], 4);
        assert_eq!(fio["ops"]["PREADV"], 0.75);
        assert_eq!(fio["ops"]["PREAD"], 0.25);
        assert_eq!(fio["kinds"]["vectored"]["avg_segments"], 8.0);
        assert_eq!(fio["kinds"]["scalar"]["iocbs"], 10);
        assert!(fio["p50_us"].as_f64().unwrap() > 0.0);
        assert!(fio["p99_us"].as_f64().unwrap() >= fio["p50_us"].as_f64().unwrap());
        assert_eq!(rows[1]["comm"], "postgres");
        // One line, parseable.
        let line = batch_output(&s, BatchFormat::Json);
        assert_eq!(line.lines().count(), 1);
        let back: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(back, v);
    }

    /// Each row's interfaces with their shares; a context row says which
    /// interface it is, and an io_uring ring has no in-flight count.
    #[test]
    fn rows_carry_their_apis_and_context_rows_their_api() {
        let s = ticked(uring_state(true));
        let v = batch_snapshot(&s);
        let rows = v["rows"].as_array().unwrap();
        let db: Vec<_> = rows.iter().filter(|r| r["pid"] == 300).collect();
        assert_eq!(db.len(), 3, "{v}");
        assert_eq!(db[0]["apis"], json!({"aio": 0.25, "io_uring": 0.75}));
        assert_eq!(db[0]["ops"]["PREADV"], 0.25);
        assert_eq!(db[0]["ops"]["READV"], 0.5);
        assert_eq!(db[0]["ops"]["READ"], 0.25);
        assert!(db[0].get("api").is_none());
        assert_eq!(
            (db[1]["api"].as_str(), db[1]["ctx"].as_str()),
            (Some("aio"), Some("e"))
        );
        assert_eq!(db[1]["in_flight"], 0);
        assert_eq!(
            (db[2]["api"].as_str(), db[2]["ctx"].as_str()),
            (Some("io_uring"), Some("ffff888106153000"))
        );
        assert!(db[2]["in_flight"].is_null());
        assert_eq!(db[2]["kinds"]["vectored"]["apis"]["io_uring"], 1.0);
        assert_eq!(rows[0]["apis"], json!({"aio": 1.0}));
    }

    #[test]
    fn replay_has_no_syscall_rates_or_in_flight() {
        let mut s = ticked(sample_state());
        s.replay = Some(Default::default());
        let v = batch_snapshot(&s);
        assert!(v["io_submit_per_s"].is_null());
        assert!(v["in_flight"].is_null());
        assert!(v["rows"][0]["in_flight"].is_null());
    }

    #[test]
    fn text_is_a_header_and_a_table() {
        let s = ticked(sample_state());
        let text = batch_output(&s, BatchFormat::Text);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5, "{text}");
        assert!(lines[0].starts_with("t 1.0s  iocbs/s 48"), "{text}");
        assert!(lines[1].contains("PID") && lines[1].contains("P99"));
        assert!(lines[2].contains("fio") && lines[2].contains("PREADV 75%"));
        assert!(lines[3].contains("postgres"));
        assert_eq!(lines[4], "", "a blank line between ticks");
    }
}
