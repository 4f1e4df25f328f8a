//! When an in-flight entry stops being worth keeping: the staleness rule a
//! sweep of the in-flight table applies.
//!
//! Layer: model (pure logic); imports nothing.

/// What to do with an in-flight entry at a sweep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Staleness {
    Keep,
    /// Its process is gone: nothing will ever reap it.
    Abandoned,
    /// Older than the timeout: reaped without io_getevents, or lost.
    AgedOut,
}

/// Decides an entry's fate from its submit time, the clock, the timeout and
/// whether its process still exists.
pub fn staleness(submit_ns: u64, now_ns: u64, timeout_ns: u64, process_alive: bool) -> Staleness {
    if !process_alive {
        Staleness::Abandoned
    } else if now_ns.saturating_sub(submit_ns) > timeout_ns {
        Staleness::AgedOut
    } else {
        Staleness::Keep
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_process_wins_over_age() {
        assert_eq!(staleness(0, 10, 100, false), Staleness::Abandoned);
        assert_eq!(staleness(0, 1_000, 100, false), Staleness::Abandoned);
    }

    #[test]
    fn ages_out_only_past_the_timeout() {
        assert_eq!(staleness(1_000, 1_100, 100, true), Staleness::Keep);
        assert_eq!(staleness(1_000, 1_101, 100, true), Staleness::AgedOut);
        // A submit stamped after `now` (clock read earlier) is not negative age.
        assert_eq!(staleness(2_000, 1_000, 100, true), Staleness::Keep);
    }
}
