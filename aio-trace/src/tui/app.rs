//! The event loop of `top`: ticks, keys, record batches and signals, over
//! the state; draws after each tick and key.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use aio_trace_common::IocbRecord;
use crossterm::event::{Event, EventStream, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use futures_util::StreamExt as _;
use tokio::{
    signal::unix::{Signal, SignalKind, signal},
    sync::mpsc::UnboundedReceiver,
};

use super::{
    batch::{BatchFormat, batch_output},
    collect::Collector,
    replay::{self, Recording, ReplayClock},
    state::{ReplayView, State, TierSwitch},
    store::Snapshot,
    terminal::TerminalGuard,
    ui,
    view::Screen,
};
use crate::{
    clock::monotonic_ns,
    loader::{TraceConfig, Tracer},
    model::LossCounts,
    session::DEFAULT_INFLIGHT_TIMEOUT,
    workload::{WorkloadConfig, background::Background},
};

pub struct TopOptions {
    pub trace: TraceConfig,
    pub interval: Duration,
    /// Run the built-in workload in the background, alternating modes.
    pub workload: Option<WorkloadConfig>,
    /// Seconds per workload phase.
    pub phase: Duration,
    /// Print each tick instead of drawing the table (`--batch`).
    pub batch: Option<Batch>,
}

/// `--batch`: each tick printed on stdout, no terminal needed.
#[derive(Clone, Copy, Debug)]
pub struct Batch {
    pub format: BatchFormat,
    /// Stop after this many ticks; None: until a signal (or a replay's end).
    pub count: Option<u64>,
}

/// Where each tick goes: drawn on the terminal, or printed.
enum Sink {
    Terminal(TerminalGuard),
    Batch(Batch),
}

impl Sink {
    /// Enters the terminal, or not for `--batch`; leaving it is the guard's drop.
    fn enter(batch: Option<Batch>) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        Ok(match batch {
            Some(batch) => Self::Batch(batch),
            None => {
                Self::Terminal(TerminalGuard::enter().context("while setting up the terminal")?)
            }
        })
    }

    fn is_terminal(&self) -> bool {
        matches!(self, Self::Terminal(_))
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
    let State { store, view, .. } = state;
    if let Some(input) = &mut view.filter_input {
        match key.code {
            KeyCode::Enter => view.commit_filter(store),
            KeyCode::Esc => view.filter_input = None,
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
        KeyCode::Down | KeyCode::Char('j') => view.select_next(),
        KeyCode::Up | KeyCode::Char('k') => view.select_prev(),
        KeyCode::Enter => view.enter(),
        KeyCode::Esc => view.back(),
        KeyCode::Char('e') | KeyCode::Right | KeyCode::Left if view.screen == Screen::Table => {
            state.toggle_expand()
        }
        KeyCode::Char('s') => view.cycle_sort(store),
        KeyCode::Char('S') => view.reverse_sort(store),
        KeyCode::Char('f') | KeyCode::Char('/') => view.begin_filter(),
        KeyCode::Char('v') => view.toggle_split(store),
        KeyCode::Char('g') => view.toggle_by_cgroup(store),
        KeyCode::Char('t') => state.toggle_tier(),
        KeyCode::Char('p') | KeyCode::Char(' ') => view.toggle_pause(store),
        KeyCode::Char('c') => state.clear(),
        KeyCode::Char('?') | KeyCode::Char('h') => view.help = !view.help,
        _ => {}
    }
    true
}

/// A key only a replay has (play/pause, speed); false: not one of them.
fn handle_replay_key(state: &State, clock: &mut ReplayClock, key: KeyEvent, now: Instant) -> bool {
    if key.kind == KeyEventKind::Release
        || state.view.filter_input.is_some()
        || key.modifiers.contains(KeyModifiers::CONTROL)
    {
        return false;
    }
    match key.code {
        KeyCode::Char('p') | KeyCode::Char(' ') => clock.toggle(now),
        KeyCode::Char('+') | KeyCode::Char('=') | KeyCode::Char('>') => clock.scale(2.0, now),
        KeyCode::Char('-') | KeyCode::Char('<') => clock.scale(0.5, now),
        _ => return false,
    }
    true
}

pub struct ReplayOptions {
    pub recording: Recording,
    /// The file's name, for the header.
    pub name: String,
    /// What `-p`/`-c` kept, for the header.
    pub filter: Option<String>,
    pub interval: Duration,
    /// Print each tick instead of drawing the table (`--batch`).
    pub batch: Option<Batch>,
}

/// `top --replay`: the TUI over a recording read beforehand (no tracer).
pub async fn run_replay(options: ReplayOptions) -> anyhow::Result<()> {
    let Recording {
        records,
        offsets,
        syscalls,
        losses,
    } = options.recording;
    let duration_ns = offsets.last().copied().unwrap_or(0);
    let clock = Arc::new(Mutex::new(ReplayClock::new(duration_ns, Instant::now())));
    let (tx, mut batches) = tokio::sync::mpsc::unbounded_channel();
    let feeder = tokio::spawn(replay::feed(records, offsets, clock.clone(), tx));
    let mut state = State::new("", "");
    if let Some(filter) = options.filter {
        state.trace_filter = filter;
    }
    state.replay = Some(ReplayView {
        file: options.name,
        speed: 1.0,
        duration_ns,
        playing: true,
        ..ReplayView::default()
    });
    let result = {
        let mut sink = Sink::enter(options.batch)?;
        replay_loop(
            &mut sink,
            &mut state,
            &mut batches,
            &clock,
            options.interval,
            ReplayTicks {
                last_pos: 0,
                finished: false,
                syscalls,
                losses: losses.unwrap_or_default(),
            },
        )
        .await
    };
    feeder.abort();
    result
}

/// Copies the clock into the header's view; true once at the end.
fn update_view(state: &mut State, clock: &ReplayClock, now: Instant) -> bool {
    let ended = clock.ended(now);
    if let Some(view) = &mut state.replay {
        view.speed = clock.speed;
        view.position_ns = clock.position(now);
        view.playing = clock.playing;
        view.ended = ended;
    }
    ended
}

/// What a replay's ticks carry over: where the last one stood, and the
/// recording's totals, shown once it reached the end.
struct ReplayTicks {
    /// Replay time of the last tick: rates are per second of the recording.
    last_pos: u64,
    finished: bool,
    syscalls: Option<replay::SyscallTotals>,
    losses: LossCounts,
}

impl ReplayTicks {
    fn tick(&mut self, state: &mut State, clock: &ReplayClock, now: Instant) {
        let ended = update_view(state, clock, now);
        let pos = clock.position(now);
        if ended && !self.finished {
            self.finished = true;
            if let Some(view) = &mut state.replay {
                view.syscalls = self.syscalls;
            }
        }
        if pos > self.last_pos {
            let secs = (pos - self.last_pos) as f64 / 1e9;
            self.last_pos = pos;
            let snapshot = Snapshot {
                counters: Vec::new(),
                ops: Vec::new(),
                losses: if ended {
                    self.losses
                } else {
                    Default::default()
                },
                sample_every: None,
                overhead_sample: None,
            };
            state.tick(secs, Duration::from_nanos(pos), snapshot);
        } else if ended {
            // Losses are totals, known at the end; late records still show.
            state.store.losses = self.losses;
            state.view.refresh(&state.store);
        }
    }
}

async fn replay_loop(
    sink: &mut Sink,
    state: &mut State,
    batches: &mut UnboundedReceiver<Vec<IocbRecord>>,
    clock: &Mutex<ReplayClock>,
    interval: Duration,
    mut ticks: ReplayTicks,
) -> anyhow::Result<()> {
    let lock = || {
        clock
            .lock()
            .map_err(|_| anyhow::anyhow!("the replay clock was poisoned"))
    };
    let on_tick = |state: &mut State| -> anyhow::Result<()> {
        let c = *lock()?;
        ticks.tick(state, &c, Instant::now());
        Ok(())
    };
    // Play/pause and speed go to the clock; every other key to the state.
    let on_key = |state: &mut State, key: KeyEvent| -> anyhow::Result<bool> {
        let now = Instant::now();
        let mut c = lock()?;
        if handle_replay_key(state, &mut c, key, now) {
            let copy = *c;
            drop(c);
            update_view(state, &copy, now);
            Ok(true)
        } else {
            drop(c);
            Ok(handle_key(state, key))
        }
    };
    drive(sink, state, batches, interval, on_tick, on_key).await
}

pub async fn run(options: TopOptions) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let (mut tracer, ring) = Tracer::start(&options.trace)?;
    let attached_ns = tracer.attached_ns;
    // The header's self-overhead needs the kernel's BPF run-time statistics
    // (as bpftop turns them on); without them it says so and top goes on.
    let stats_off = tracer.enable_stats().err().map(|e| e.to_string());
    // Optional probes that did not attach: their stages and costs are missing.
    let skipped: Vec<&str> = tracer.skipped.iter().map(|(p, _)| p.program).collect();
    let mut collector = Collector::start(tracer, ring, DEFAULT_INFLIGHT_TIMEOUT)
        .context("while starting the session thread")?;

    let workload = match options.workload {
        Some(config) => Some(Background::spawn(config, options.phase)?),
        None => None,
    };
    collector.probes.workload_clock = workload.as_ref().and_then(Background::cpu_clock);

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
    if let Some(disk) = &options.trace.disk {
        described.push(format!("disk {}", disk.label()));
    }
    if !described.is_empty() {
        state.trace_filter = described.join(", ");
    }
    state.store.sample_every = options.trace.sample_every;
    if options.trace.light() {
        state.tier = Some(TierSwitch::new(options.trace.sample_every));
    }
    if stats_off.is_some() {
        collector.probes.programs = None;
    }
    state.notice = notice(stats_off, &skipped);

    let result = {
        let mut sink = Sink::enter(options.batch)?;
        event_loop(
            &mut sink,
            &mut state,
            &mut collector,
            options.interval,
            attached_ns,
        )
        .await
    };
    let stopped = collector.stop();
    if let Some(workload) = workload {
        workload.stop()?;
    }
    result?;
    stopped.context("while draining the ring buffer")?;
    Ok(())
}

/// The header's notice of what is off: BPF statistics, optional probes.
fn notice(stats_off: Option<String>, skipped: &[&str]) -> Option<String> {
    let mut notices = Vec::new();
    if let Some(reason) = stats_off {
        notices.push(format!("self-overhead off: {reason}"));
    }
    if !skipped.is_empty() {
        notices.push(format!(
            "not attached (snoop says why): {}",
            skipped.join(", ")
        ));
    }
    (!notices.is_empty()).then(|| notices.join("; "))
}

async fn event_loop(
    sink: &mut Sink,
    state: &mut State,
    collector: &mut Collector,
    interval: Duration,
    attached_ns: u64,
) -> anyhow::Result<()> {
    let mut last_tick = Instant::now();
    let Collector {
        batches,
        probes,
        tier,
        ..
    } = collector;
    let on_tick = |state: &mut State| -> anyhow::Result<()> {
        let now = Instant::now();
        let secs = now.duration_since(last_tick).as_secs_f64();
        last_tick = now;
        let uptime = Duration::from_nanos(monotonic_ns().saturating_sub(attached_ns));
        state.tick(secs, uptime, probes.snapshot());
        Ok(())
    };
    let on_key = |state: &mut State, key| {
        let go_on = handle_key(state, key);
        if let Some(light) = state.tier.as_mut().and_then(|t| t.requested.take()) {
            // The session gone means we are stopping.
            let _ = tier.send(light);
        }
        Ok(go_on)
    };
    drive(sink, state, batches, interval, on_tick, on_key).await
}

/// What the event loops wait on: ticks, record batches, the terminal's
/// events and the signals that end `top`.
struct Inputs {
    /// None for `--batch`: no terminal to read keys from.
    keys: Option<EventStream>,
    ticks: tokio::time::Interval,
    term: Signal,
    hup: Signal,
    int: Signal,
}

/// One thing that happened, for a loop to act on.
enum Input {
    Tick,
    Batch(Vec<IocbRecord>),
    Key(KeyEvent),
    Resize,
    /// A terminal event that changes nothing on screen.
    Other,
    /// A signal, or the end of the terminal's events.
    Quit,
}

impl Inputs {
    /// `keys`: read the terminal's events. Without them (`--batch`) the
    /// first tick comes after one interval, not at once: each printed tick
    /// covers a whole interval.
    fn new(interval: Duration, keys: bool) -> std::io::Result<Self> {
        let mut ticks = if keys {
            tokio::time::interval(interval)
        } else {
            tokio::time::interval_at(tokio::time::Instant::now() + interval, interval)
        };
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Ok(Self {
            keys: keys.then(EventStream::new),
            ticks,
            term: signal(SignalKind::terminate())?,
            hup: signal(SignalKind::hangup())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    async fn next(
        &mut self,
        batches: &mut UnboundedReceiver<Vec<IocbRecord>>,
    ) -> std::io::Result<Input> {
        let keys = &mut self.keys;
        let key = async move {
            match keys {
                Some(keys) => keys.next().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = self.ticks.tick() => Ok(Input::Tick),
            Some(batch) = batches.recv() => Ok(Input::Batch(batch)),
            event = key => match event {
                Some(Ok(Event::Key(key))) => Ok(Input::Key(key)),
                Some(Ok(Event::Resize(..))) => Ok(Input::Resize),
                Some(Ok(_)) => Ok(Input::Other),
                Some(Err(e)) => Err(e),
                None => Ok(Input::Quit),
            },
            _ = self.term.recv() => Ok(Input::Quit),
            _ = self.hup.recv() => Ok(Input::Quit),
            _ = self.int.recv() => Ok(Input::Quit),
        }
    }
}

fn draw(guard: &mut TerminalGuard, state: &State) -> std::io::Result<()> {
    guard
        .terminal
        .draw(|frame| ui::render(frame, state))
        .map(|_| ())
}

/// Prints a tick for `--batch`; false: stop (the count is reached, the
/// replay is over, or stdout was closed).
fn print_tick(batch: &mut Batch, state: &State) -> anyhow::Result<bool> {
    use std::io::Write as _;
    let text = batch_output(state, batch.format);
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(false),
        Err(e) => return Err(anyhow::Error::new(e).context("while writing to stdout")),
    }
    if let Some(count) = &mut batch.count {
        *count = count.saturating_sub(1);
        if *count == 0 {
            return Ok(false);
        }
    }
    Ok(!state.replay.as_ref().is_some_and(|r| r.ended))
}

/// Draws, then feeds the state every input until a key (`on_key` false) or
/// a signal ends `top`; draws again after each tick, key and resize. For
/// `--batch`, prints each tick instead, and stops as `print_tick` says.
async fn drive(
    sink: &mut Sink,
    state: &mut State,
    batches: &mut UnboundedReceiver<Vec<IocbRecord>>,
    interval: Duration,
    mut on_tick: impl FnMut(&mut State) -> anyhow::Result<()>,
    mut on_key: impl FnMut(&mut State, KeyEvent) -> anyhow::Result<bool>,
) -> anyhow::Result<()> {
    let mut inputs = Inputs::new(interval, sink.is_terminal())?;
    if let Sink::Terminal(guard) = sink {
        draw(guard, state)?;
    }
    loop {
        match inputs.next(batches).await? {
            Input::Tick => {
                on_tick(state)?;
                if let Sink::Batch(batch) = sink {
                    // At the end of a replay the feeder sends what is left and
                    // closes: all of it goes into the last line.
                    if state.replay.as_ref().is_some_and(|r| r.ended) {
                        while let Some(batch) = batches.recv().await {
                            for record in &batch {
                                state.record(record);
                            }
                        }
                    }
                    if !print_tick(batch, state)? {
                        return Ok(());
                    }
                    continue;
                }
            }
            Input::Batch(batch) => {
                for record in &batch {
                    state.record(record);
                }
                continue;
            }
            Input::Key(key) => {
                if !on_key(state, key)? {
                    return Ok(());
                }
            }
            Input::Resize => {}
            Input::Other => continue,
            Input::Quit => return Ok(()),
        }
        if let Sink::Terminal(guard) = sink {
            draw(guard, state)?;
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
    fn replay_keys_drive_the_clock_not_the_display() {
        let s = ticked(sample_state());
        let t0 = Instant::now();
        let mut clock = ReplayClock::new(10_000_000_000, t0);
        let key = |c| KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE);
        assert!(handle_replay_key(&s, &mut clock, key(' '), t0));
        assert!(!clock.playing && !s.view.paused);
        for c in ['+', '>', '+'] {
            assert!(handle_replay_key(&s, &mut clock, key(c), t0));
        }
        assert_eq!(clock.speed, 8.0);
        assert!(handle_replay_key(&s, &mut clock, key('<'), t0));
        assert!(handle_replay_key(&s, &mut clock, key('-'), t0));
        assert_eq!(clock.speed, 2.0);
        assert!(!handle_replay_key(&s, &mut clock, key('q'), t0));
        assert!(!handle_replay_key(&s, &mut clock, key('s'), t0));
        let mut typing = s.clone();
        typing.view.begin_filter();
        assert!(!handle_replay_key(&typing, &mut clock, key('p'), t0));
    }

    #[test]
    fn keys_drive_the_state() {
        let mut s = ticked(sample_state());
        assert!(press(&mut s, KeyCode::Char('j')));
        assert_eq!(s.view.selected, 1);
        press(&mut s, KeyCode::Char('/'));
        for c in "post".chars() {
            press(&mut s, KeyCode::Char(c));
        }
        press(&mut s, KeyCode::Enter);
        assert_eq!(s.view.rows.len(), 1);
        press(&mut s, KeyCode::Char('v'));
        assert!(s.view.split);
        press(&mut s, KeyCode::Char(' '));
        assert!(s.view.paused);
        press(&mut s, KeyCode::Char('?'));
        assert!(s.view.help);
        press(&mut s, KeyCode::Esc);
        assert!(!s.view.help);
        assert!(!press(&mut s, KeyCode::Char('q')));
        assert!(!handle_key(
            &mut s,
            KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)
        ));
    }
}
