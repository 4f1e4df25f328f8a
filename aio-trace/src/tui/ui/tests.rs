//! Snapshots of every screen at 80×24 and 160×48, and the header's figures.
//!
//! Layer: builds states with the state fixtures and draws them on a
//! TestBackend; the snapshot names keep the module path `ui::tests`.

use ratatui::{Terminal, backend::TestBackend};

use super::*;
use crate::tui::state::ReplayView;
use crate::tui::state::tests::{sample_state, ticked};

fn draw(state: &State, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|f| render(f, state)).unwrap();
    let buffer = terminal.backend().buffer();
    let mut out = String::new();
    for y in 0..height {
        for x in 0..width {
            out.push_str(buffer[(x, y)].symbol());
        }
        out.push('\n');
    }
    out
}

fn fixed(mut s: State) -> State {
    s.uptime = std::time::Duration::from_secs(75);
    s
}

/// A process that reaps from the AIO ring in user memory (no reap time,
/// so no reap lag) and also does buffered reads (no stage at all).
fn ring_and_buffered() -> State {
    use aio_trace_common::{IOCB_CMD_PREAD, IocbRecord};

    use crate::tui::stats::tests::{iocb, staged};
    let mut s = State::new("testhost", "6.18.0");
    for _ in 0..6 {
        let r = staged(
            iocb(300, 0xd, IOCB_CMD_PREAD, 1, 80_000),
            1,
            [2_000, 1_000, 70_000, 2_000],
        );
        s.record(&IocbRecord { reap_ns: 0, ..r });
    }
    for _ in 0..4 {
        s.record(&iocb(300, 0xd, IOCB_CMD_PREAD, 1, 9_000));
    }
    s
}

#[test]
fn replay_snapshots() {
    let mut playing = fixed(ticked(sample_state()));
    playing.replay = Some(ReplayView {
        file: "fio.jsonl".into(),
        speed: 2.0,
        position_ns: 12_300_000_000,
        duration_ns: 40_000_000_000,
        playing: true,
        ended: false,
        syscalls: Some(crate::tui::replay::SyscallTotals {
            io_submit_calls: 1200,
            io_getevents_calls: 800,
            iocbs_submitted: 4000,
            events_reaped: 4000,
        }),
    });
    let mut ended = playing.clone();
    if let Some(r) = &mut ended.replay {
        r.position_ns = r.duration_ns;
        r.ended = true;
    }
    let mut help = playing.clone();
    help.view.help = true;
    for (name, state) in [
        ("replay", &playing),
        ("replay_end", &ended),
        ("replay_help", &help),
    ] {
        insta::assert_snapshot!(format!("{name}_80x24"), draw(state, 80, 24));
    }
}

#[test]
fn the_header_shows_what_tracing_costs() {
    let mut s = fixed(ticked(sample_state()));
    s.store.overhead = Some(crate::model::Overhead {
        bpf_ns_per_iocb: Some(3_700.0),
        bpf_cpu_pct: Some(4.04),
        user_cpu_pct: 2.26,
        workload_cpu_pct: None,
        rss_bytes: 41 << 20,
    });
    let screen = draw(&s, 160, 48);
    assert!(
        screen.contains("lost 0  self BPF 3.7 µs/iocb 4.0%cpu  top 2.3%cpu 41 MiB  filter none"),
        "{screen}"
    );
    // A notice follows the figures rather than hiding them: a probe not
    // attached does not make the cost unknown.
    s.notice = Some("not attached (snoop says why): iomap_dio_complete".into());
    assert!(
        draw(&s, 160, 48)
            .contains("top 2.3%cpu 41 MiB  not attached (snoop says why): iomap_dio_complete")
    );
    // The built-in workload's CPU is its own figure, not the tracer's.
    if let Some(o) = &mut s.store.overhead {
        o.workload_cpu_pct = Some(98.04);
    }
    s.notice = None;
    let screen = draw(&s, 160, 48);
    assert!(
        screen.contains("top 2.3%cpu 41 MiB  workload 98.0%cpu  filter none"),
        "{screen}"
    );
    s.store.overhead = None;
    s.notice = Some("self-overhead off: no BPF statistics".into());
    assert!(draw(&s, 160, 48).contains("lost 0  self-overhead off: no BPF statistics"));
}

/// Everything the header can show at once: losses, a mid-flight start,
/// overhead, a notice, a filter, a reversed sort, split rows, paused.
fn crowded() -> State {
    let mut s = fixed(ticked(sample_state()));
    s.host = "a-rather-long-hostname.example.com".into();
    s.kernel = "6.18.44-fc-v782".into();
    s.trace_filter = "pid [1234, 5678], comm fio".into();
    s.store.losses.ring_full = 3;
    s.store.losses.inflight_at_start = 7;
    s.store.overhead = Some(crate::model::Overhead {
        bpf_ns_per_iocb: Some(3_700.0),
        bpf_cpu_pct: Some(4.04),
        user_cpu_pct: 2.26,
        workload_cpu_pct: Some(98.04),
        rss_bytes: 41 << 20,
    });
    s.notice = Some("not attached (snoop says why): iomap_dio_complete".into());
    s.view.reverse = true;
    s.view.toggle_split(&s.store);
    s.view.paused = true;
    s
}

fn header_lines(state: &State, width: u16) -> Vec<String> {
    draw(state, width, 24)
        .lines()
        .take(3)
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_header_drops_whole_fields_at_narrow_widths() {
    let s = crowded();
    let full = header_lines(&s, 400);
    for width in [80, 100, 160] {
        for (line, whole) in header_lines(&s, width).iter().zip(&full) {
            let words: Vec<&str> = whole.split_whitespace().collect();
            for word in line.split_whitespace() {
                assert!(words.contains(&word), "{word:?} cut at {width}: {line:?}");
            }
        }
    }
    for (w, h) in [(80, 24), (160, 48)] {
        insta::assert_snapshot!(format!("crowded_{w}x{h}"), draw(&s, w, h));
    }
    let narrow = header_lines(&s, 80);
    // What matters most stays: paused, the rates, losses, filter and sort.
    assert!(narrow[0].contains("PAUSED"), "{narrow:?}");
    assert!(narrow[1].starts_with("iocbs/s 48  MB/s 1.1"), "{narrow:?}");
    assert!(narrow[2].starts_with("lost 3  "), "{narrow:?}");
    assert!(narrow[2].contains("filter none  sort IOCB/s"), "{narrow:?}");
}

#[test]
fn header_fields_fit_by_priority_in_screen_order() {
    use super::field::{Field, fit};
    let fields = [
        Field::new(2, "cc"),
        Field::new(0, "aaaa").short("a"),
        Field::new(1, "bbbbbb").short("bb"),
    ];
    let text = |w| fit(&fields, w).to_string();
    assert_eq!(text(100), "cc  aaaa  bbbbbb");
    assert_eq!(text(15), "cc  aaaa  bb");
    assert_eq!(text(12), "cc  aaaa  bb");
    assert_eq!(text(11), "cc  a  bb");
    assert_eq!(text(8), "aaaa  bb");
    assert_eq!(text(4), "aaaa");
    assert_eq!(text(3), "a");
    assert_eq!(text(0), "");
}

#[test]
fn formats_latencies() {
    assert_eq!(fmt_ns(850), "850ns");
    assert_eq!(fmt_ns(1_500), "1.5us");
    assert_eq!(fmt_ns(120_000), "120us");
    assert_eq!(fmt_ns(2_500_000), "2.5ms");
    assert_eq!(fmt_ns(3_000_000_000), "3.0s");
}

/// A process with an AIO context and an io_uring ring, expanded: the ring
/// is a row of its own, named as one, its ops by io_uring's names; its
/// detail says which ring it is.
#[test]
fn io_uring_snapshots() {
    use crate::tui::state::tests::{RING, uring_state};
    let table = fixed(ticked(uring_state(true)));
    let wide = draw(&table, 160, 48);
    assert!(wide.contains(" └ring ffff888106153000"), "{wide}");
    assert!(wide.contains("READV 67% READ 33%"), "{wide}");
    let mut detail = table.clone();
    detail.view.selected = detail
        .view
        .rows
        .iter()
        .position(|r| r.ctx.is_some_and(|c| c.id == RING))
        .unwrap();
    detail.view.enter();
    let screen = draw(&detail, 160, 48);
    assert!(
        screen.contains(" 300 db io_uring ring ffff888106153000 — Esc"),
        "{screen}"
    );
    for (w, h) in [(80, 24), (160, 48)] {
        insta::assert_snapshot!(format!("uring_{w}x{h}"), draw(&table, w, h));
    }
    insta::assert_snapshot!("uring_ring_detail_80x24", draw(&detail, 80, 24));
}

#[test]
fn snapshots() {
    let table = fixed(ticked(sample_state()));
    let mut split = table.clone();
    split.view.toggle_split(&split.store);
    let mut detail = table.clone();
    detail.view.enter();
    let mut help = table.clone();
    help.view.help = true;
    let empty = fixed(ticked(State::new("testhost", "6.18.0")));
    let ring = fixed(ticked(ring_and_buffered()));
    let mut ring_detail = ring.clone();
    ring_detail.view.enter();
    for (name, state) in [
        ("table", &table),
        ("split", &split),
        ("detail", &detail),
        ("help", &help),
        ("empty", &empty),
        ("ring_detail", &ring_detail),
    ] {
        for (w, h) in [(80, 24), (160, 48)] {
            insta::assert_snapshot!(format!("{name}_{w}x{h}"), draw(state, w, h));
        }
    }
}

/// `g`: one row per cgroup, each the sum of its processes, named by the last
/// component of its path; the detail of a row names the whole path.
#[test]
fn rows_grouped_by_cgroup_sum_their_processes() {
    use aio_trace_common::{IOCB_CMD_PREAD, IocbRecord};

    use crate::{
        blockdev::DevNames,
        cgroup::{CgroupNames, fake::FakeMount},
        tui::{state::Names, stats::tests::iocb},
    };
    let mount = FakeMount::new("top-group");
    let db = mount.add("system.slice/mariadb.service");
    let web = mount.add("system.slice/docker-3f2a.scope");
    let mut s = State::new("testhost", "6.18.0");
    s.names = Names::new(
        DevNames::new(&mount.root),
        CgroupNames::new(Some(mount.root.clone())),
    );
    for (pid, cgroup, iocbs) in [(10, db, 3), (11, db, 4), (20, web, 5)] {
        for _ in 0..iocbs {
            s.record(&IocbRecord {
                cgroup,
                ..iocb(pid, 0xa, IOCB_CMD_PREAD, 1, 50_000)
            });
        }
    }
    let mut s = fixed(ticked(s));
    s.view.toggle_by_cgroup(&s.store);
    let rows: Vec<_> = s.view.rows.iter().map(|r| (r.pid, r.cgroup)).collect();
    assert_eq!(rows.len(), 2, "{rows:?}");
    let iocbs = |cgroup| {
        s.view
            .rows
            .iter()
            .find(|r| r.cgroup == Some(cgroup))
            .and_then(|r| s.shown().stats(r))
            .map(|st| st.iocbs)
    };
    assert_eq!(iocbs(db), Some(7));
    assert_eq!(iocbs(web), Some(5));

    let screen = draw(&s, 160, 48);
    assert!(
        screen.contains("PROCS") && screen.contains("CGROUP"),
        "{screen}"
    );
    let line = |name: &str| {
        screen
            .lines()
            .find(|l| l.contains(name))
            .unwrap_or_else(|| panic!("no row for {name}:\n{screen}"))
            .split_whitespace()
            .next()
            .unwrap()
            .to_string()
    };
    assert_eq!(line("mariadb.service"), "2", "two processes in the service");
    assert_eq!(line("docker-3f2a.scope"), "1");

    let at = s
        .view
        .rows
        .iter()
        .position(|r| r.cgroup == Some(db))
        .unwrap();
    s.view.selected = at;
    s.view.enter();
    let detail = draw(&s, 160, 48);
    assert!(
        detail.contains("cgroup /system.slice/mariadb.service"),
        "{detail}"
    );
}
