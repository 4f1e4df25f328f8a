//! The counters of a timeline, per process: iocbs in flight, and MB/s
//! completed per 10 ms. Records come in reap order and counter values are
//! absolute, so changes are held back and released in time order; each
//! writer turns the points released into its own events.

use std::{
    cmp::Reverse,
    collections::{BinaryHeap, HashMap},
};

/// Width of the MB/s counter's bins.
pub(super) const RATE_BIN_NS: u64 = 10_000_000;

/// How far behind the newest slice end the counters are written. Counter
/// values are absolute, so a change can only be written once every earlier
/// one is known; records come in reap order, so an iocb is known only after
/// it ends, and its submit may be as far back as its latency. Iocbs slower
/// than this have their in-flight count begin late, at the counters' time.
const COUNTER_DELAY_NS: u64 = 100_000_000;

/// The most counter changes held back, whatever their times: past it the
/// oldest are written, so that the window stays bounded at any rate.
pub(super) const MAX_PENDING: usize = 1 << 16;

/// What a writer writes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Point {
    /// `iocbs` in flight in `pid` from `ts`.
    InFlight { ts: u64, pid: u32, iocbs: i64 },
    /// `mbps` completed by `pid` in the bin from `ts`.
    Rate { ts: u64, pid: u32, mbps: f64 },
    /// `pid`'s counters hold nothing any more; a later change starts them anew.
    Idle { pid: u32 },
}

/// A change of a process's counters, held until the counters' time reaches it.
/// Ordered by time; at one time an end before a begin, so that an iocb
/// submitted as another completes does not count both.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Change {
    ts: u64,
    pid: u32,
    what: What,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum What {
    End,
    Begin,
    /// Bytes transferred by an iocb that ended at `ts`.
    Bytes(u64),
}

/// A process's counters: iocbs in flight, and the MB/s bin being summed.
#[derive(Clone, Copy, Debug, Default)]
struct Process {
    inflight: i64,
    bin: Option<u64>,
    bytes: u64,
}

#[derive(Debug, Default)]
pub(super) struct Counters {
    /// Changes not yet released, earliest first.
    pending: BinaryHeap<Reverse<Change>>,
    /// The counters' time: every change before it is released.
    released: u64,
    /// The latest slice end seen.
    newest: u64,
    processes: HashMap<u32, Process>,
    /// Scratch for the processes whose counters go idle.
    idle: Vec<u32>,
}

/// The MB/s of `bytes` over one bin.
fn mbps(bytes: u64) -> f64 {
    bytes as f64 / 1e6 / (RATE_BIN_NS as f64 / 1e9)
}

/// The MB/s point of `bin`, and a zero after it when the next bin has none.
fn rate_points<E>(
    pid: u32,
    bin: u64,
    bytes: u64,
    zero_after: bool,
    out: &mut impl FnMut(Point) -> Result<(), E>,
) -> Result<(), E> {
    out(Point::Rate {
        ts: bin * RATE_BIN_NS,
        pid,
        mbps: mbps(bytes),
    })?;
    if zero_after {
        out(Point::Rate {
            ts: (bin + 1) * RATE_BIN_NS,
            pid,
            mbps: 0.0,
        })?;
    }
    Ok(())
}

impl Counters {
    /// The latest slice end seen.
    pub fn newest(&self) -> u64 {
        self.newest
    }

    /// An iocb of `pid` from `submit` to `end` that transferred `bytes`;
    /// releases what is now old enough.
    pub fn iocb<E>(
        &mut self,
        pid: u32,
        submit: u64,
        end: u64,
        bytes: u64,
        out: &mut impl FnMut(Point) -> Result<(), E>,
    ) -> Result<(), E> {
        let released = self.released;
        if end >= released {
            // An iocb submitted before the counters' time begins at it.
            self.pending.push(Reverse(Change {
                ts: submit.max(released),
                pid,
                what: What::Begin,
            }));
            self.pending.push(Reverse(Change {
                ts: end,
                pid,
                what: What::End,
            }));
        }
        self.pending.push(Reverse(Change {
            ts: end.max(released),
            pid,
            what: What::Bytes(bytes),
        }));
        self.newest = self.newest.max(end);
        self.release(self.newest.saturating_sub(COUNTER_DELAY_NS), out)
    }

    /// Releases the changes before `until`, and the oldest past
    /// `MAX_PENDING` whatever their time.
    fn release<E>(
        &mut self,
        until: u64,
        out: &mut impl FnMut(Point) -> Result<(), E>,
    ) -> Result<(), E> {
        while let Some(&Reverse(change)) = self.pending.peek() {
            if change.ts >= until && self.pending.len() <= MAX_PENDING {
                break;
            }
            self.pending.pop();
            self.released = change.ts;
            let (ts, pid) = (change.ts, change.pid);
            let c = self.processes.entry(pid).or_default();
            match change.what {
                What::Begin | What::End => {
                    c.inflight += if change.what == What::Begin { 1 } else { -1 };
                    out(Point::InFlight {
                        ts,
                        pid,
                        iocbs: c.inflight,
                    })?;
                }
                What::Bytes(bytes) => {
                    let bin = ts / RATE_BIN_NS;
                    match c.bin {
                        Some(b) if b == bin => c.bytes += bytes,
                        Some(b) => {
                            let done = c.bytes;
                            c.bin = Some(bin);
                            c.bytes = bytes;
                            rate_points(pid, b, done, bin > b + 1, out)?;
                        }
                        None => {
                            c.bin = Some(bin);
                            c.bytes = bytes;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Ends the MB/s bins of processes with nothing in flight and nothing
    /// since, so that a process gone quiet holds no state.
    pub fn close_idle<E>(&mut self, out: &mut impl FnMut(Point) -> Result<(), E>) -> Result<(), E> {
        let released = self.released;
        self.idle.clear();
        self.idle
            .extend(self.processes.iter().filter_map(|(&pid, c)| {
                (c.inflight == 0 && c.bin.is_none_or(|b| (b + 2) * RATE_BIN_NS <= released))
                    .then_some(pid)
            }));
        // A stable order, so that the same records give the same file.
        self.idle.sort_unstable();
        self.close(out)
    }

    /// Releases every change held back and ends every bin.
    pub fn finish<E>(&mut self, out: &mut impl FnMut(Point) -> Result<(), E>) -> Result<(), E> {
        self.release(u64::MAX, out)?;
        self.idle.clear();
        self.idle.extend(self.processes.keys());
        self.idle.sort_unstable();
        self.close(out)
    }

    /// Ends the bins of the processes in `idle` and forgets them.
    fn close<E>(&mut self, out: &mut impl FnMut(Point) -> Result<(), E>) -> Result<(), E> {
        for &pid in &self.idle {
            if let Some(c) = self.processes.remove(&pid) {
                if let Some(bin) = c.bin {
                    rate_points(pid, bin, c.bytes, true, out)?;
                }
                out(Point::Idle { pid })?;
            }
        }
        Ok(())
    }

    /// Changes held back, and processes with counters.
    #[cfg(test)]
    pub fn held(&self) -> (usize, usize) {
        (self.pending.len(), self.processes.len())
    }
}
