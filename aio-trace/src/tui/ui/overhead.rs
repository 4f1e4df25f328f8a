//! The self-overhead panel: what tracing costs, live — BPF time per iocb and
//! as a share of one CPU, and this process's CPU and memory, apart from the
//! built-in workload's CPU when it runs alongside, and in a light trace
//! what each tier cost when it last ran — followed by a
//! notice when something is off (statistics off, probes not attached).
//!
//! Layer: reads the store's overhead and the state's notice; returns fields
//! for the header to fit.

use ratatui::style::{Color, Style};

use super::field::Field;
use crate::tui::state::State;

pub(super) fn overhead_fields(state: &State) -> Vec<Field> {
    let cyan = Style::new().fg(Color::Cyan);
    let mut fields = Vec::new();
    if let Some(o) = &state.store.overhead {
        let bpf = match (o.bpf_ns_per_iocb, o.bpf_cpu_pct) {
            (Some(ns), Some(pct)) => Field::new(
                3,
                format!("self BPF {:.1} µs/iocb {pct:.1}%cpu", ns / 1_000.0),
            )
            .short(format!("BPF {pct:.1}%cpu")),
            (None, Some(pct)) => {
                Field::new(3, format!("self BPF {pct:.1}%cpu")).short(format!("BPF {pct:.1}%cpu"))
            }
            _ => Field::new(3, "self BPF n/a"),
        };
        let top = format!("top {:.1}%cpu", o.user_cpu_pct);
        fields.extend([
            bpf.style(cyan),
            Field::new(3, format!("{top} {} MiB", o.rss_bytes >> 20))
                .short(top)
                .style(cyan),
        ]);
        if let Some(pct) = o.workload_cpu_pct {
            fields.push(Field::new(3, format!("workload {pct:.1}%cpu")).style(cyan));
        }
    }
    if let Some(tier) = &state.tier {
        // What each tier cost when it last ran, so that `t` shows the price.
        let cost = |i: usize| {
            state.store.tier_costs[i]
                .and_then(|o| o.bpf_ns_per_iocb)
                .map_or("-".to_owned(), |ns| format!("{:.2}", ns / 1_000.0))
        };
        let now = if tier.light {
            format!("light 1/{}", state.store.sample_every)
        } else {
            "full".to_owned()
        };
        fields.push(
            Field::new(
                2,
                format!("tier {now} (µs/iocb light {} full {})", cost(0), cost(1)),
            )
            .short(format!("tier {now}"))
            .style(cyan),
        );
    }
    if let Some(n) = &state.notice {
        fields.push(Field::new(4, n.clone()).style(cyan));
    }
    fields
}
