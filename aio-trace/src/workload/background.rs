//! The built-in workload on a thread of its own, alternating scalar and
//! vectored phases, for commands that trace it while it runs (`top
//! --workload`, `record --workload`).

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::Duration,
};

use anyhow::Context as _;

use super::{Mode, Rw, Stop, WorkloadConfig, run, target};

/// randread, 8 × 4 KiB segments, iodepth 32, on a 64 MiB temporary file.
pub fn alternating_default() -> WorkloadConfig {
    WorkloadConfig {
        segments: 8,
        segment_size: 4096,
        iodepth: 32,
        rw: Rw::RandRead,
        size: Some(64 << 20),
        ..WorkloadConfig::default()
    }
}

/// A running background workload; stop it with [`Background::stop`].
pub struct Background {
    cancel: Arc<AtomicBool>,
    thread: JoinHandle<anyhow::Result<()>>,
}

impl Background {
    /// Opens the target now (errors are the caller's), then runs phases of
    /// `phase`, scalar then vectored, until stopped.
    pub fn spawn(config: WorkloadConfig, phase: Duration) -> anyhow::Result<Self> {
        config.validate()?;
        let target = target::open(&config)?;
        config.validate_for_target(target.block, target.size)?;
        let cancel = Arc::new(AtomicBool::new(false));
        let flag = cancel.clone();
        let thread = std::thread::Builder::new()
            .name("aio-trace-workload".into())
            .spawn(move || {
                for mode in [Mode::Scalar, Mode::Vectored].into_iter().cycle() {
                    if flag.load(Ordering::Relaxed) {
                        break;
                    }
                    let phase_config = WorkloadConfig {
                        mode,
                        stop: Stop::After(phase),
                        ..config.clone()
                    };
                    run(&phase_config, &target, &flag)?;
                }
                Ok(())
            })
            .context("while starting the workload thread")?;
        Ok(Self { cancel, thread })
    }

    /// The workload thread's CPU-time clock, for `clock_gettime`; valid
    /// until [`Background::stop`].
    pub fn cpu_clock(&self) -> Option<libc::clockid_t> {
        use std::os::unix::thread::JoinHandleExt as _;
        let mut clock: libc::clockid_t = 0;
        // SAFETY: the thread is not joined or detached while `self` lives,
        // so its pthread_t is valid; the call only writes `clock`.
        let rc = unsafe { libc::pthread_getcpuclockid(self.thread.as_pthread_t(), &mut clock) };
        (rc == 0).then_some(clock)
    }

    /// Stops the workload and waits for its current phase to end.
    pub fn stop(self) -> anyhow::Result<()> {
        self.cancel.store(true, Ordering::Relaxed);
        match self.thread.join() {
            Ok(result) => result.context("the workload failed"),
            Err(_) => anyhow::bail!("the workload thread panicked"),
        }
    }
}
