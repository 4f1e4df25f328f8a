//! The light tier's sampling windows: when they open and close.
//!
//! In the light tier the kernel half counts every iocb at io_submit's exit
//! and traces none in full, except during a window: for `WINDOW` out of
//! every `sample_every` × `WINDOW`, io_submit's entry and the deep programs
//! (dispatch, block, completion) are attached, and every iocb submitted
//! meanwhile gets the full tier's record. After the window the deep programs
//! stay until its iocbs have completed (a grace scaled by the slowest
//! latency of the last windows), then io_getevents stops looking events
//! up a while later. A window is a sample in time, decided at submit: an iocb is
//! either traced whole or only counted.
//!
//! Layer: session. Drives the loader's `Tracer`; pure timing otherwise, so
//! the schedule is tested without a kernel.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use aio_trace_common::IocbRecord;

/// How long a window stays open.
pub const WINDOW: Duration = Duration::from_millis(10);
/// How long before a window opens its probes are attached.
const ARM_LEAD: Duration = Duration::from_millis(5);
/// The least and most a window's iocbs are waited for after it closes.
const MIN_GRACE: Duration = Duration::from_millis(5);
/// The grace while no latency has been sampled.
const UNKNOWN_GRACE: Duration = Duration::from_millis(100);
const MAX_GRACE: Duration = Duration::from_secs(1);
/// The least time io_getevents goes on looking its events up after the deep
/// programs go: an application reaps when it gets to it, a busy one well
/// after the completion (an event reaped later makes its record at the
/// user half's sweep, without a reap time).
const MIN_REAP_GRACE: Duration = Duration::from_millis(50);
/// Grace as a multiple of the slowest latency of the last windows.
const GRACE_PER_LATENCY: u64 = 4;
/// Windows whose slowest latency sets the grace: one slow outlier does not
/// keep the deep programs attached for good.
const RECENT_WINDOWS: usize = 4;
/// The sampling `--budget` may go to, either way.
const MIN_EVERY: u64 = 2;
const MAX_EVERY: u64 = 65_536;
/// The least time a budget's cost is measured over before N changes.
const BUDGET_INTERVAL: Duration = Duration::from_secs(1);

/// How often the session looks at the schedule.
pub const TICK: Duration = Duration::from_millis(5);

/// What the session should do to the tracer now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Attach the window's probes, the window still shut: the attaches'
    /// own cost (tracepoints switched on across CPUs) falls before it.
    Arm,
    Open,
    Close,
    EndDepth,
    EndReaps,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Between windows: only the light programs run.
    Idle,
    /// The window's probes attached, the window about to open.
    Armed,
    Open,
    /// Closed, its iocbs may be in flight: the deep programs stay.
    Depth,
    /// Its iocbs have completed; their events may be in io_getevents' hands.
    Reaps,
}

/// The schedule of one light trace, in monotonic ns.
#[derive(Debug)]
pub struct Sampler {
    /// 1 in how many units of time is traced in full; shared with the
    /// views, which show it (`--budget` changes it).
    every: Arc<AtomicU64>,
    /// `--budget`: the share of one CPU the BPF time should stay under, and
    /// the last (monotonic ns, BPF run ns) it was measured from.
    budget: Option<f64>,
    measured: Option<(u64, u64)>,
    phase: Phase,
    /// When the current phase ends.
    until_ns: u64,
    /// When the current (or last) window opened.
    opened_ns: u64,
    /// The slowest submit-to-completion latency sampled in each of the last
    /// windows, in ns, the current one at `window`.
    slowest_ns: [u64; RECENT_WINDOWS],
    window: usize,
}

impl Sampler {
    /// A schedule tracing 1/`every` of the time in full, its first window at
    /// `now_ns`.
    pub fn new(every: u64, now_ns: u64) -> Self {
        Self {
            every: Arc::new(AtomicU64::new(every.max(MIN_EVERY))),
            budget: None,
            measured: None,
            phase: Phase::Idle,
            until_ns: now_ns,
            opened_ns: now_ns,
            slowest_ns: [0; RECENT_WINDOWS],
            window: 0,
        }
    }

    /// Sampling that adapts to keep the BPF time under `budget`, a share of
    /// one CPU (`--budget`).
    pub fn with_budget(self, budget: Option<f64>) -> Self {
        Self { budget, ..self }
    }

    /// 1 in how many units of time is traced in full.
    pub fn every(&self) -> u64 {
        self.every.load(Ordering::Relaxed)
    }

    /// The same, as it changes, for a view to show.
    pub fn every_handle(&self) -> Arc<AtomicU64> {
        self.every.clone()
    }

    /// Whether N adapts to a budget.
    pub fn budgeted(&self) -> bool {
        self.budget.is_some()
    }

    /// The tracer's BPF run time so far (`run_ns`) at `now_ns`: with a
    /// budget, once a second's worth is measured, N doubles when the BPF time
    /// was over the budget and halves when it was under half of it.
    pub fn adapt(&mut self, now_ns: u64, run_ns: u64) {
        let Some(budget) = self.budget else {
            return;
        };
        let Some((then_ns, then_run)) = self.measured else {
            self.measured = Some((now_ns, run_ns));
            return;
        };
        let elapsed = now_ns.saturating_sub(then_ns);
        if elapsed < BUDGET_INTERVAL.as_nanos() as u64 {
            return;
        }
        self.measured = Some((now_ns, run_ns));
        let share = run_ns.saturating_sub(then_run) as f64 / elapsed as f64;
        let every = self.every();
        let next = if share > budget {
            (every * 2).min(MAX_EVERY)
        } else if share < budget / 2.0 {
            (every / 2).max(MIN_EVERY)
        } else {
            every
        };
        self.every.store(next, Ordering::Relaxed);
    }

    /// A sampled record's latency: the grace after a window follows the
    /// slowest iocb seen.
    pub fn saw(&mut self, record: &IocbRecord) {
        if record.complete_ts > record.submit_ns && record.submit_ns != 0 {
            let slowest = &mut self.slowest_ns[self.window];
            *slowest = (*slowest).max(record.complete_ts - record.submit_ns);
        }
    }

    fn grace_ns(&self) -> u64 {
        let slowest = self.slowest_ns.iter().copied().max().unwrap_or(0);
        if slowest == 0 {
            // Nothing sampled yet (the first windows): no latency to go by.
            return UNKNOWN_GRACE.as_nanos() as u64;
        }
        let grace = slowest.saturating_mul(GRACE_PER_LATENCY);
        grace.clamp(MIN_GRACE.as_nanos() as u64, MAX_GRACE.as_nanos() as u64)
    }

    /// The step due at `now_ns`, if any; the schedule moves past it.
    pub fn step(&mut self, now_ns: u64) -> Option<Step> {
        if now_ns < self.until_ns {
            return None;
        }
        let window = WINDOW.as_nanos() as u64;
        let (phase, until, step) = match self.phase {
            Phase::Idle => (Phase::Armed, now_ns + ARM_LEAD.as_nanos() as u64, Step::Arm),
            Phase::Armed => {
                self.opened_ns = now_ns;
                // Records of the last window may still come in: they count
                // for the one they came in during, as slow as it gets.
                self.window = (self.window + 1) % RECENT_WINDOWS;
                self.slowest_ns[self.window] = 0;
                (Phase::Open, now_ns + window, Step::Open)
            }
            Phase::Open => (Phase::Depth, now_ns + self.grace_ns(), Step::Close),
            Phase::Depth => {
                let reaps = self.grace_ns().max(MIN_REAP_GRACE.as_nanos() as u64);
                (Phase::Reaps, now_ns + reaps, Step::EndDepth)
            }
            Phase::Reaps => {
                // The next window opens a period after this one did; a grace
                // longer than the period pushes it back rather than overlap.
                let next = (self.opened_ns + window.saturating_mul(self.every()))
                    .saturating_sub(ARM_LEAD.as_nanos() as u64);
                (Phase::Idle, next.max(now_ns), Step::EndReaps)
            }
        };
        self.phase = phase;
        self.until_ns = until;
        Some(step)
    }

    /// The light tier resumes at `now_ns` after a stretch in the full tier:
    /// what was in flight then is waited for as after a window.
    pub fn resume(&mut self, now_ns: u64) {
        self.phase = Phase::Depth;
        self.opened_ns = now_ns;
        self.until_ns = now_ns + self.grace_ns();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn steps(sampler: &mut Sampler, from: u64, to: u64) -> Vec<(u64, Step)> {
        (from..=to)
            .step_by(TICK.as_nanos() as usize)
            .filter_map(|t| sampler.step(t).map(|s| (t / MS, s)))
            .collect()
    }

    #[test]
    fn a_window_opens_once_a_period_and_its_depth_follows_it() {
        let mut s = Sampler::new(64, 0);
        let fast = IocbRecord {
            submit_ns: 1,
            complete_ts: 1 + MS / 2,
            ..IocbRecord::default()
        };
        s.saw(&fast);
        let got = steps(&mut s, 0, 1_290 * MS);
        assert_eq!(
            got,
            vec![
                (0, Step::Arm),
                (5, Step::Open),
                (15, Step::Close),
                (20, Step::EndDepth),
                (70, Step::EndReaps),
                (640, Step::Arm),
                (645, Step::Open),
                (655, Step::Close),
                (660, Step::EndDepth),
                (710, Step::EndReaps),
                (1280, Step::Arm),
                (1285, Step::Open),
            ]
        );
    }

    #[test]
    fn the_grace_follows_the_slowest_sampled_iocb() {
        let mut s = Sampler::new(64, 0);
        assert_eq!(s.step(0), Some(Step::Arm));
        assert_eq!(s.step(5 * MS), Some(Step::Open));
        s.saw(&IocbRecord {
            submit_ns: 1_000,
            complete_ts: 1_000 + 25 * MS,
            ..IocbRecord::default()
        });
        assert_eq!(s.step(15 * MS), Some(Step::Close));
        // 4 × 25 ms.
        assert_eq!(s.step(114 * MS), None);
        assert_eq!(s.step(115 * MS), Some(Step::EndDepth));
    }

    #[test]
    fn a_grace_past_the_period_pushes_the_next_window_back() {
        let mut s = Sampler::new(2, 0);
        s.saw(&IocbRecord {
            submit_ns: 1,
            complete_ts: 1 + 10 * 1_000 * MS,
            ..IocbRecord::default()
        });
        assert_eq!(s.step(0), Some(Step::Arm));
        assert_eq!(s.step(5 * MS), Some(Step::Open));
        assert_eq!(s.step(15 * MS), Some(Step::Close));
        // Capped at a second.
        assert_eq!(s.step(1_015 * MS), Some(Step::EndDepth));
        assert_eq!(s.step(2_015 * MS), Some(Step::EndReaps));
        assert_eq!(s.step(2_015 * MS), Some(Step::Arm));
    }

    #[test]
    fn a_slow_outlier_stops_setting_the_grace_after_a_few_windows() {
        let mut s = Sampler::new(64, 0);
        let mut t = 0;
        let slow = IocbRecord {
            submit_ns: 1,
            complete_ts: 1 + 100 * MS,
            ..IocbRecord::default()
        };
        let mut graces = Vec::new();
        for window in 0..6 {
            while s.step(t) != Some(Step::Open) {
                t += MS;
            }
            if window == 0 {
                s.saw(&slow);
            }
            s.saw(&IocbRecord {
                submit_ns: 1,
                complete_ts: 1 + MS / 2,
                ..IocbRecord::default()
            });
            t += 10 * MS;
            assert_eq!(s.step(t), Some(Step::Close));
            let closed = t;
            while s.step(t) != Some(Step::EndDepth) {
                t += MS;
            }
            graces.push((t - closed) / MS);
            while s.step(t) != Some(Step::EndReaps) {
                t += MS;
            }
        }
        assert_eq!(graces, vec![400, 400, 400, 400, 5, 5]);
    }

    #[test]
    fn a_budget_doubles_n_when_over_and_halves_it_when_well_under() {
        const S: u64 = 1_000_000_000;
        let mut s = Sampler::new(64, 0).with_budget(Some(0.01));
        s.adapt(0, 0);
        // 2 % of a CPU over a second: over the 1 % budget.
        s.adapt(S, 20_000_000);
        assert_eq!(s.every(), 128);
        // Half a second later: too soon to judge.
        s.adapt(S + S / 2, 20_000_000);
        assert_eq!(s.every(), 128);
        // 0.7 %: within the budget, kept.
        s.adapt(2 * S, 27_000_000);
        assert_eq!(s.every(), 128);
        // 0.1 %: under half of it.
        s.adapt(3 * S, 28_000_000);
        assert_eq!(s.every(), 64);
        for k in 4..40 {
            s.adapt(k * S, 28_000_000);
        }
        assert_eq!(s.every(), MIN_EVERY);
        let mut unbudgeted = Sampler::new(64, 0);
        unbudgeted.adapt(0, 0);
        unbudgeted.adapt(S, 900_000_000);
        assert_eq!(unbudgeted.every(), 64);
    }
}
