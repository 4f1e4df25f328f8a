//! What the workload is asked to do, and the checks that refuse bad requests
//! before any I/O happens.

use std::{path::PathBuf, time::Duration};

use aio_trace_common::UIO_MAXIOV;
use thiserror::Error;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// One vectored request carrying `segments` iovecs: an AIO PREADV/PWRITEV
    /// iocb, an io_uring READV/WRITEV.
    Vectored,
    /// `segments` requests of one segment each, over the same bytes: AIO
    /// PREAD/PWRITE, io_uring READ/WRITE.
    Scalar,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Self::Vectored => "vectored",
            Self::Scalar => "scalar",
        }
    }
}

/// The kernel interface the requests go through.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
pub enum Engine {
    /// Linux AIO: io_submit / io_getevents, one iocb per request.
    #[default]
    #[value(name = "aio")]
    #[serde(rename = "aio")]
    Aio,
    /// io_uring: SQEs submitted and completions waited for with
    /// io_uring_enter, completions taken from the shared CQ ring.
    #[value(name = "io_uring")]
    #[serde(rename = "io_uring")]
    IoUring,
}

impl Engine {
    pub fn name(self) -> &'static str {
        match self {
            Self::Aio => "aio",
            Self::IoUring => "io_uring",
        }
    }

    /// The op a request of this engine, mode and direction is (what the
    /// tracer names it).
    pub fn op_name(self, mode: Mode, read: bool) -> &'static str {
        match (self, mode, read) {
            (Self::Aio, Mode::Vectored, true) => "PREADV",
            (Self::Aio, Mode::Vectored, false) => "PWRITEV",
            (Self::Aio, Mode::Scalar, true) => "PREAD",
            (Self::Aio, Mode::Scalar, false) => "PWRITE",
            (Self::IoUring, Mode::Vectored, true) => "READV",
            (Self::IoUring, Mode::Vectored, false) => "WRITEV",
            (Self::IoUring, Mode::Scalar, true) => "READ",
            (Self::IoUring, Mode::Scalar, false) => "WRITE",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Rw {
    Read,
    Write,
    #[value(name = "randread")]
    RandRead,
    #[value(name = "randwrite")]
    RandWrite,
    /// Sequential, mixed by --read-pct.
    Rw,
    /// Random, mixed by --read-pct.
    #[value(name = "randrw")]
    RandRw,
}

impl Rw {
    pub fn is_random(self) -> bool {
        matches!(self, Self::RandRead | Self::RandWrite | Self::RandRw)
    }
    pub fn writes(self) -> bool {
        !matches!(self, Self::Read | Self::RandRead)
    }
}

/// Where the I/O goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A regular file: created (O_EXCL, filled) if missing, never truncated.
    File(PathBuf),
    /// A temporary file in this directory, removed afterwards unless kept.
    TempIn(PathBuf),
    /// A block device, read-only unless writes are allowed.
    Device(PathBuf),
}

/// When the workload stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    After(Duration),
    /// After this many units (ranges of segments × segment size).
    Units(u64),
}

#[derive(Clone, Debug)]
pub struct WorkloadConfig {
    pub target: Target,
    pub keep: bool,
    pub allow_device_writes: bool,
    /// Lets a run write a file that existed before it (`--rw` writes, or the
    /// `--verify` pattern); a file the run creates is its own to write.
    pub allow_file_writes: bool,
    pub engine: Engine,
    pub mode: Mode,
    pub segments: u32,
    pub segment_size: u64,
    pub rw: Rw,
    pub read_pct: u8,
    /// Units in flight: vectored requests, or groups of `segments` scalar ones.
    pub iodepth: u32,
    /// Units per submitting call (io_submit, io_uring_enter).
    pub batch: u32,
    /// Completions to wait for before handling any: io_getevents' min_nr,
    /// io_uring_enter's min_complete.
    pub reap_min: u32,
    /// Bytes of the target to use; None: the whole file or device (a new file gets 256 MiB).
    pub size: Option<u64>,
    pub stop: Stop,
    pub seed: u64,
    pub verify: bool,
    pub buffered: bool,
}

pub const DEFAULT_NEW_FILE_SIZE: u64 = 256 << 20;

impl Default for WorkloadConfig {
    fn default() -> Self {
        Self {
            target: Target::TempIn(default_temp_dir()),
            keep: false,
            allow_device_writes: false,
            allow_file_writes: false,
            engine: Engine::Aio,
            mode: Mode::Vectored,
            segments: 8,
            segment_size: 4096,
            rw: Rw::RandRead,
            read_pct: 50,
            iodepth: 32,
            batch: 1,
            reap_min: 1,
            size: None,
            stop: Stop::After(Duration::from_secs(10)),
            seed: 1,
            verify: false,
            buffered: false,
        }
    }
}

/// `$TMPDIR`, else /var/tmp: /tmp is often tmpfs, which refuses O_DIRECT.
pub fn default_temp_dir() -> PathBuf {
    std::env::var_os("TMPDIR").map_or_else(|| PathBuf::from("/var/tmp"), PathBuf::from)
}

/// A request the workload refuses; each message is one sentence for the user.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("--segments must be between 1 and {UIO_MAXIOV} (the kernel's UIO_MAXIOV), not {0}")]
    Segments(u32),
    #[error(
        "--segment-size {size} is not a multiple of the target's {block}-byte logical block size (O_DIRECT needs it)"
    )]
    Unaligned { size: u64, block: u64 },
    #[error("--segment-size must be more than 0")]
    ZeroSegmentSize,
    #[error("--{0} must be at least 1")]
    Zero(&'static str),
    #[error("--size must be more than 0 bytes")]
    ZeroSize,
    #[error("--read-pct must be between 0 and 100, not {0}")]
    ReadPct(u8),
    #[error("--reap-min {reap_min} is more than the {inflight} requests that can be in flight")]
    ReapMin { reap_min: u32, inflight: u64 },
    #[error("--size {size} is smaller than one range of {unit} bytes (segments × segment size)")]
    SizeTooSmall { size: u64, unit: u64 },
}

impl WorkloadConfig {
    pub fn unit_bytes(&self) -> u64 {
        u64::from(self.segments) * self.segment_size
    }

    /// Requests (iocbs, SQEs) per unit: 1 vectored, `segments` scalar.
    pub fn iocbs_per_unit(&self) -> u32 {
        match self.mode {
            Mode::Vectored => 1,
            Mode::Scalar => self.segments,
        }
    }

    /// Checks that need no target.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.segments == 0 || self.segments > UIO_MAXIOV {
            return Err(ConfigError::Segments(self.segments));
        }
        if self.segment_size == 0 {
            return Err(ConfigError::ZeroSegmentSize);
        }
        for (name, value) in [("iodepth", self.iodepth), ("batch", self.batch)] {
            if value == 0 {
                return Err(ConfigError::Zero(name));
            }
        }
        if self.size == Some(0) {
            return Err(ConfigError::ZeroSize);
        }
        if let Stop::Units(0) = self.stop {
            return Err(ConfigError::Zero("ops"));
        }
        if self.read_pct > 100 {
            return Err(ConfigError::ReadPct(self.read_pct));
        }
        let inflight = u64::from(self.iodepth) * u64::from(self.iocbs_per_unit());
        if u64::from(self.reap_min) > inflight {
            return Err(ConfigError::ReapMin {
                reap_min: self.reap_min,
                inflight,
            });
        }
        Ok(())
    }

    /// The one-line warning for a --batch above --iodepth: a submit carries
    /// only ranges whose buffers are free, so at most --iodepth of them.
    pub fn batch_warning(&self) -> Option<String> {
        let call = match self.engine {
            Engine::Aio => "io_submit",
            Engine::IoUring => "io_uring_enter",
        };
        (self.iodepth > 0 && self.batch > self.iodepth).then(|| {
            format!(
                "--batch {} is more than --iodepth {}: each {call} carries at most {} ranges",
                self.batch, self.iodepth, self.iodepth
            )
        })
    }

    /// Checks against the target's logical block size and usable size.
    pub fn validate_for_target(&self, block: u64, size: u64) -> Result<(), ConfigError> {
        if !self.buffered && !self.segment_size.is_multiple_of(block) {
            return Err(ConfigError::Unaligned {
                size: self.segment_size,
                block,
            });
        }
        if size < self.unit_bytes() {
            return Err(ConfigError::SizeTooSmall {
                size,
                unit: self.unit_bytes(),
            });
        }
        Ok(())
    }
}

/// Parses a byte count: a number with an optional K, M, G or T suffix (powers
/// of 1024, an optional trailing "iB" or "B").
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let t = t
        .strip_suffix("iB")
        .or_else(|| t.strip_suffix('B'))
        .unwrap_or(t);
    let (digits, shift) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_uppercase() {
                'K' => 10,
                'M' => 20,
                'G' => 30,
                'T' => 40,
                _ => return Err(format!("{s:?} has an unknown unit (use K, M, G or T)")),
            };
            (&t[..i], shift)
        }
        _ => (t, 0),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a size (e.g. 4096, 4K, 1M)"))?;
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("{s:?} is too large"))
}

/// A byte count as `parse_size`, more than 0: for --size, where 0 bytes is
/// no target at all.
pub fn parse_nonzero_size(s: &str) -> Result<u64, String> {
    match parse_size(s)? {
        0 => Err(format!("the size must be more than 0 bytes, not {s}")),
        n => Ok(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sizes_with_units() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("4K"), Ok(4096));
        assert_eq!(parse_size("4k"), Ok(4096));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert!(parse_size("4X").is_err());
        assert!(parse_size("-1").is_err());
        assert!(parse_size("").is_err());
    }

    #[test]
    fn a_zero_size_is_refused() {
        assert_eq!(parse_nonzero_size("4K"), Ok(4096));
        assert_eq!(
            parse_nonzero_size("0K"),
            Err("the size must be more than 0 bytes, not 0K".into())
        );
        let c = WorkloadConfig {
            size: Some(0),
            ..WorkloadConfig::default()
        };
        assert_eq!(c.validate(), Err(ConfigError::ZeroSize));
    }

    #[test]
    fn a_batch_above_the_iodepth_is_named() {
        let c = WorkloadConfig {
            batch: 64,
            iodepth: 4,
            ..WorkloadConfig::default()
        };
        assert_eq!(
            c.batch_warning().as_deref(),
            Some("--batch 64 is more than --iodepth 4: each io_submit carries at most 4 ranges")
        );
        let fits = WorkloadConfig { batch: 4, ..c };
        assert_eq!(fits.batch_warning(), None);
    }

    #[test]
    fn each_engine_names_its_ops_and_its_submitting_call() {
        assert_eq!(Engine::Aio.op_name(Mode::Vectored, true), "PREADV");
        assert_eq!(Engine::Aio.op_name(Mode::Scalar, false), "PWRITE");
        assert_eq!(Engine::IoUring.op_name(Mode::Vectored, false), "WRITEV");
        assert_eq!(Engine::IoUring.op_name(Mode::Scalar, true), "READ");
        let c = WorkloadConfig {
            engine: Engine::IoUring,
            batch: 8,
            iodepth: 2,
            ..WorkloadConfig::default()
        };
        assert_eq!(
            c.batch_warning().as_deref(),
            Some(
                "--batch 8 is more than --iodepth 2: each io_uring_enter carries at most 2 ranges"
            )
        );
    }

    #[test]
    fn refuses_bad_segment_counts() {
        for segments in [0, 1025] {
            let c = WorkloadConfig {
                segments,
                ..WorkloadConfig::default()
            };
            assert_eq!(c.validate(), Err(ConfigError::Segments(segments)));
        }
        let c = WorkloadConfig {
            segments: 1024,
            ..WorkloadConfig::default()
        };
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn refuses_unaligned_segments_unless_buffered() {
        let c = WorkloadConfig {
            segment_size: 1000,
            ..WorkloadConfig::default()
        };
        assert_eq!(
            c.validate_for_target(512, 1 << 20),
            Err(ConfigError::Unaligned {
                size: 1000,
                block: 512
            })
        );
        let buffered = WorkloadConfig {
            buffered: true,
            ..c
        };
        assert_eq!(buffered.validate_for_target(512, 1 << 20), Ok(()));
    }

    #[test]
    fn refuses_zero_depth_batch_ops_and_bad_mixes() {
        let zero_depth = WorkloadConfig {
            iodepth: 0,
            ..WorkloadConfig::default()
        };
        assert_eq!(zero_depth.validate(), Err(ConfigError::Zero("iodepth")));
        let zero_ops = WorkloadConfig {
            stop: Stop::Units(0),
            ..WorkloadConfig::default()
        };
        assert_eq!(zero_ops.validate(), Err(ConfigError::Zero("ops")));
        let pct = WorkloadConfig {
            read_pct: 101,
            ..WorkloadConfig::default()
        };
        assert_eq!(pct.validate(), Err(ConfigError::ReadPct(101)));
        let reap = WorkloadConfig {
            iodepth: 2,
            mode: Mode::Vectored,
            reap_min: 3,
            ..WorkloadConfig::default()
        };
        assert_eq!(
            reap.validate(),
            Err(ConfigError::ReapMin {
                reap_min: 3,
                inflight: 2
            })
        );
    }

    #[test]
    fn scalar_mode_keeps_the_same_bytes_in_flight() {
        let v = WorkloadConfig {
            mode: Mode::Vectored,
            ..WorkloadConfig::default()
        };
        let s = WorkloadConfig {
            mode: Mode::Scalar,
            ..v.clone()
        };
        assert_eq!(v.unit_bytes(), s.unit_bytes());
        assert_eq!(v.iocbs_per_unit(), 1);
        assert_eq!(s.iocbs_per_unit(), 8);
        assert_eq!(s.validate_for_target(512, 1 << 20), Ok(()));
        assert_eq!(
            s.validate_for_target(512, 1000),
            Err(ConfigError::SizeTooSmall {
                size: 1000,
                unit: 32768
            })
        );
    }
}
