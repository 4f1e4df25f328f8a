//! The event loop of `top`: ticks, keys, record batches and signals, over
//! the state; draws after each tick and key.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use crossterm::event::{Event, EventStream, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use futures_util::StreamExt as _;
use tokio::signal::unix::{SignalKind, signal};

use super::{
    collect::Collector,
    state::{Screen, State},
    terminal::TerminalGuard,
    ui,
};
use crate::{
    loader::{TraceConfig, Tracer},
    session::{DEFAULT_INFLIGHT_TIMEOUT, monotonic_ns},
    workload::{self, Mode, Stop, WorkloadConfig},
};

pub struct TopOptions {
    pub trace: TraceConfig,
    pub interval: Duration,
    /// Run the built-in workload in the background, alternating modes.
    pub workload: Option<WorkloadConfig>,
    /// Seconds per workload phase.
    pub phase: Duration,
}

/// The workload `top --workload` runs: randread, 8 × 4 KiB, iodepth 32, 64 MiB.
pub fn default_workload() -> WorkloadConfig {
    WorkloadConfig {
        segments: 8,
        segment_size: 4096,
        iodepth: 32,
        rw: workload::Rw::RandRead,
        size: Some(64 << 20),
        ..WorkloadConfig::default()
    }
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "?".into())
}

/// What a key does; false: quit.
fn handle_key(state: &mut State, key: KeyEvent) -> bool {
    if key.kind == KeyEventKind::Release {
        return true;
    }
    if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
        return false;
    }
    if let Some(input) = &mut state.filter_input {
        match key.code {
            KeyCode::Enter => state.commit_filter(),
            KeyCode::Esc => state.filter_input = None,
            KeyCode::Backspace => {
                input.pop();
            }
            KeyCode::Char(c) => input.push(c),
            _ => {}
        }
        return true;
    }
    match key.code {
        KeyCode::Char('q') => return false,
        KeyCode::Down | KeyCode::Char('j') => state.select_next(),
        KeyCode::Up | KeyCode::Char('k') => state.select_prev(),
        KeyCode::Enter => state.enter(),
        KeyCode::Esc => state.back(),
        KeyCode::Char('e') | KeyCode::Right | KeyCode::Left if state.screen == Screen::Table => {
            state.toggle_expand()
        }
        KeyCode::Char('s') => state.cycle_sort(),
        KeyCode::Char('S') => state.reverse_sort(),
        KeyCode::Char('f') | KeyCode::Char('/') => state.begin_filter(),
        KeyCode::Char('v') => state.toggle_split(),
        KeyCode::Char('p') | KeyCode::Char(' ') => state.toggle_pause(),
        KeyCode::Char('c') => state.clear(),
        KeyCode::Char('?') | KeyCode::Char('h') => state.help = !state.help,
        _ => {}
    }
    true
}

/// Runs the workload in phases of `phase`, scalar then vectored, until cancelled.
fn spawn_workload(
    config: WorkloadConfig,
    phase: Duration,
    cancel: Arc<AtomicBool>,
) -> anyhow::Result<JoinHandle<anyhow::Result<()>>> {
    config.validate()?;
    let target = workload::target::open(&config)?;
    config.validate_for_target(target.block, target.size)?;
    Ok(std::thread::Builder::new()
        .name("aio-trace-workload".into())
        .spawn(move || {
            for mode in [Mode::Scalar, Mode::Vectored].into_iter().cycle() {
                if cancel.load(Ordering::Relaxed) {
                    break;
                }
                let phase_config = WorkloadConfig {
                    mode,
                    stop: Stop::After(phase),
                    ..config.clone()
                };
                workload::run(&phase_config, &target, &cancel)?;
            }
            Ok(())
        })?)
}

pub async fn run(options: TopOptions) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let (tracer, ring) = Tracer::start(&options.trace)?;
    let attached_ns = tracer.attached_ns;
    let mut collector = Collector::start(tracer, ring, DEFAULT_INFLIGHT_TIMEOUT)
        .context("while starting the session thread")?;

    let cancel = Arc::new(AtomicBool::new(false));
    let workload = match options.workload {
        Some(config) => Some(spawn_workload(config, options.phase, cancel.clone())?),
        None => None,
    };

    let mut state = State::new(
        read_trimmed("/proc/sys/kernel/hostname"),
        read_trimmed("/proc/sys/kernel/osrelease"),
    );
    let mut described = Vec::new();
    if !options.trace.pids.is_empty() {
        described.push(format!("pid {:?}", options.trace.pids));
    }
    if let Some(comm) = &options.trace.comm {
        described.push(format!("comm {comm}"));
    }
    if !described.is_empty() {
        state.trace_filter = described.join(", ");
    }

    let result = {
        let mut guard = TerminalGuard::enter().context("while setting up the terminal")?;
        event_loop(
            &mut guard,
            &mut state,
            &mut collector,
            options.interval,
            attached_ns,
        )
        .await
    };
    cancel.store(true, Ordering::Relaxed);
    let stopped = collector.stop();
    if let Some(workload) = workload {
        match workload.join() {
            Ok(r) => r.context("the workload failed")?,
            Err(_) => anyhow::bail!("the workload thread panicked"),
        }
    }
    result?;
    stopped.context("while draining the ring buffer")?;
    Ok(())
}

async fn event_loop(
    guard: &mut TerminalGuard,
    state: &mut State,
    collector: &mut Collector,
    interval: Duration,
    attached_ns: u64,
) -> anyhow::Result<()> {
    let mut keys = EventStream::new();
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut term = signal(SignalKind::terminate())?;
    let mut hup = signal(SignalKind::hangup())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut last_tick = Instant::now();
    let draw = |guard: &mut TerminalGuard, state: &State| {
        guard
            .terminal
            .draw(|frame| ui::render(frame, state))
            .map(|_| ())
    };
    draw(guard, state)?;
    loop {
        tokio::select! {
            _ = ticks.tick() => {
                let now = Instant::now();
                let secs = now.duration_since(last_tick).as_secs_f64();
                last_tick = now;
                let uptime = Duration::from_nanos(monotonic_ns().saturating_sub(attached_ns));
                state.tick(secs, uptime, collector.probes.snapshot());
                draw(guard, state)?;
            }
            Some(batch) = collector.batches.recv() => {
                for record in &batch {
                    state.record(record);
                }
            }
            event = keys.next() => match event {
                Some(Ok(Event::Key(key))) => {
                    if !handle_key(state, key) {
                        return Ok(());
                    }
                    draw(guard, state)?;
                }
                Some(Ok(Event::Resize(..))) => draw(guard, state)?,
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
                None => return Ok(()),
            },
            _ = term.recv() => return Ok(()),
            _ = hup.recv() => return Ok(()),
            _ = int.recv() => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::state::tests::{sample_state, ticked};

    fn press(state: &mut State, code: KeyCode) -> bool {
        handle_key(state, KeyEvent::new(code, KeyModifiers::NONE))
    }

    #[test]
    fn keys_drive_the_state() {
        let mut s = ticked(sample_state());
        assert!(press(&mut s, KeyCode::Char('j')));
        assert_eq!(s.selected, 1);
        press(&mut s, KeyCode::Char('/'));
        for c in "post".chars() {
            press(&mut s, KeyCode::Char(c));
        }
        press(&mut s, KeyCode::Enter);
        assert_eq!(s.rows.len(), 1);
        press(&mut s, KeyCode::Char('v'));
        assert!(s.split);
        press(&mut s, KeyCode::Char(' '));
        assert!(s.paused);
        press(&mut s, KeyCode::Char('?'));
        assert!(s.help);
        press(&mut s, KeyCode::Esc);
        assert!(!s.help);
        assert!(!press(&mut s, KeyCode::Char('q')));
        assert!(!handle_key(
            &mut s,
            KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)
        ));
    }
}
