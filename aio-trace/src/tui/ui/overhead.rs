//! The self-overhead panel: what tracing costs, live — BPF time per iocb and
//! as a share of one CPU, and this process's CPU and memory — followed by a
//! notice when something is off (statistics off, probes not attached).
//!
//! Layer: reads the store's overhead and the state's notice; returns text
//! for the header to place.

use crate::tui::state::State;

pub(super) fn overhead_summary(state: &State) -> String {
    let notice = state
        .notice
        .as_ref()
        .map_or_else(String::new, |n| format!("  {n}"));
    let Some(o) = &state.store.overhead else {
        return notice;
    };
    let bpf = match (o.bpf_ns_per_iocb, o.bpf_cpu_pct) {
        (Some(ns), Some(pct)) => format!("BPF {:.1} µs/iocb {pct:.1}%cpu", ns / 1_000.0),
        (None, Some(pct)) => format!("BPF {pct:.1}%cpu"),
        _ => "BPF n/a".into(),
    };
    format!(
        "  self {bpf}, top {:.1}%cpu {} MiB{notice}",
        o.user_cpu_pct,
        o.rss_bytes >> 20
    )
}
