//! Opening what the workload reads and writes, with the refusals that keep it
//! from damaging anything it was not given.

use std::{
    ffi::CString,
    fs::{self, File, OpenOptions},
    io,
    os::{
        fd::AsRawFd,
        unix::fs::{FileTypeExt, OpenOptionsExt},
    },
    path::{Path, PathBuf},
    sync::atomic::{AtomicU64, Ordering},
};

use thiserror::Error;

use super::{
    config::{DEFAULT_NEW_FILE_SIZE, Target, WorkloadConfig},
    pattern,
};
use crate::aio::AlignedBuf;

#[derive(Debug, Error)]
pub enum TargetError {
    #[error(
        "the filesystem of {0} refuses O_DIRECT: use --buffered, or a file on a disk-backed filesystem"
    )]
    NoDirectIo(PathBuf),
    #[error("{0} is not a block device")]
    NotBlockDevice(PathBuf),
    #[error("{0} is not a regular file")]
    NotRegularFile(PathBuf),
    #[error("{0} is a symbolic link: the workload does not follow links")]
    Symlink(PathBuf),
    #[error("no permission to open {0} (block devices need root)")]
    Permission(PathBuf),
    #[error("refusing to write the block device {0} without --allow-device-writes")]
    DeviceWritesNotAllowed(PathBuf),
    #[error("refusing to {what} the existing file {path} without --allow-file-writes")]
    FileWritesNotAllowed { what: &'static str, path: PathBuf },
    #[error("refusing to write {0}: it is mounted")]
    DeviceMounted(PathBuf),
    #[error("--size {size} is larger than {path} ({available} bytes)")]
    SizeTooLarge {
        size: u64,
        available: u64,
        path: PathBuf,
    },
    // The cause is the error's source, which `{:#}` prints after this.
    #[error("while {what} {path}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn io_error<'p>(what: &'static str, path: &'p Path) -> impl FnOnce(io::Error) -> TargetError + 'p {
    move |source| TargetError::Io {
        what,
        path: path.to_owned(),
        source,
    }
}

/// An opened target. A temporary file has no name left by the time it is
/// returned (unless kept): it goes when its descriptor closes, however the
/// process ends.
#[derive(Debug)]
pub struct OpenTarget {
    pub file: File,
    pub path: PathBuf,
    /// Bytes the workload uses.
    pub size: u64,
    /// O_DIRECT offset/length alignment (the logical block size).
    pub block: u64,
    /// O_DIRECT buffer alignment.
    pub mem_align: u64,
    pub is_device: bool,
}

impl OpenTarget {
    /// The target's first `size` bytes as (offset, length) pieces of at most
    /// 1 MiB, whole blocks only (O_DIRECT): a tail shorter than a block is left out.
    pub fn chunks(&self) -> impl Iterator<Item = (u64, usize)> + use<> {
        const CHUNK: u64 = 1 << 20;
        let end = self.size - self.size % self.block.max(1);
        (0..end)
            .step_by(CHUNK as usize)
            .map(move |at| (at, CHUNK.min(end - at) as usize))
    }

    /// A buffer for one of `chunks`, aligned for O_DIRECT.
    pub fn chunk_buffer(&self) -> AlignedBuf {
        AlignedBuf::zeroed(1 << 20, self.mem_align.max(4096) as usize)
    }
}

/// DIO alignment from statx (Linux 6.1+), else the device's logical block size.
fn dio_alignment(file: &File) -> (u64, u64) {
    // SAFETY: struct statx is plain integers, for which all zeros is valid.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    let empty = CString::default();
    // SAFETY: a valid descriptor, a NUL-terminated empty path, and `stx`
    // writable for the whole struct statx.
    let rc = unsafe {
        libc::statx(
            file.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_EMPTY_PATH,
            libc::STATX_DIOALIGN,
            &mut stx,
        )
    };
    if rc == 0 && stx.stx_mask & libc::STATX_DIOALIGN != 0 && stx.stx_dio_offset_align != 0 {
        return (
            u64::from(stx.stx_dio_offset_align),
            u64::from(stx.stx_dio_mem_align.max(1)),
        );
    }
    let mut block: libc::c_int = 0;
    // SAFETY: BLKSSZGET writes an int; on a regular file it fails harmlessly.
    if unsafe { libc::ioctl(file.as_raw_fd(), libc::BLKSSZGET, &mut block) } == 0 && block > 0 {
        return (block as u64, block as u64);
    }
    (512, 512)
}

/// Whether the block device (by its rdev) or one of its partitions is mounted.
fn mounted(device: &Path) -> bool {
    let Ok(meta) = fs::metadata(device) else {
        return false;
    };
    use std::os::unix::fs::MetadataExt;
    let rdev = meta.rdev();
    let (major, minor) = (libc::major(rdev), libc::minor(rdev));
    let whole = format!("{major}:{minor}");
    let Ok(mountinfo) = fs::read_to_string("/proc/self/mountinfo") else {
        return true;
    };
    mountinfo.lines().any(|line| {
        let Some(dev) = line.split_whitespace().nth(2) else {
            return false;
        };
        if dev == whole {
            return true;
        }
        // A partition of this disk: /sys/dev/block/M:m/partition and its parent.
        let sys = PathBuf::from(format!("/sys/dev/block/{dev}"));
        sys.join("partition").exists()
            && fs::read_to_string(sys.join("../dev")).is_ok_and(|parent| parent.trim() == whole)
    })
}

fn direct_flag(config: &WorkloadConfig) -> i32 {
    if config.buffered { 0 } else { libc::O_DIRECT }
}

fn map_open_error<'p>(
    path: &'p Path,
    what: &'static str,
) -> impl FnOnce(io::Error) -> TargetError + 'p {
    move |e| match e.raw_os_error() {
        Some(libc::EINVAL) => TargetError::NoDirectIo(path.to_owned()),
        Some(libc::EACCES) | Some(libc::EPERM) => TargetError::Permission(path.to_owned()),
        Some(libc::ELOOP) => TargetError::Symlink(path.to_owned()),
        _ => io_error(what, path)(e),
    }
}

fn needs_write(config: &WorkloadConfig) -> bool {
    config.rw.writes() || config.verify
}

/// Opens (or creates) the configured target.
pub fn open(config: &WorkloadConfig) -> Result<OpenTarget, TargetError> {
    match &config.target {
        Target::Device(path) => open_device(config, path),
        Target::File(path) => open_file(config, path, false),
        Target::TempIn(dir) => {
            static NEXT: AtomicU64 = AtomicU64::new(0);
            let name = format!(
                "aio-trace-workload-{}-{}.dat",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            );
            open_file(config, &dir.join(name), !config.keep)
        }
    }
}

fn open_device(config: &WorkloadConfig, path: &Path) -> Result<OpenTarget, TargetError> {
    let meta = fs::metadata(path).map_err(map_open_error(path, "inspecting"))?;
    if !meta.file_type().is_block_device() {
        return Err(TargetError::NotBlockDevice(path.to_owned()));
    }
    let write = needs_write(config);
    if write && !config.allow_device_writes {
        return Err(TargetError::DeviceWritesNotAllowed(path.to_owned()));
    }
    if write && mounted(path) {
        return Err(TargetError::DeviceMounted(path.to_owned()));
    }
    let file = OpenOptions::new()
        .read(true)
        .write(write)
        .custom_flags(direct_flag(config))
        .open(path)
        .map_err(map_open_error(path, "opening"))?;
    let available =
        io::Seek::seek(&mut &file, io::SeekFrom::End(0)).map_err(io_error("sizing", path))?;
    let size = checked_size(config.size.unwrap_or(available), available, path)?;
    let (block, mem_align) = dio_alignment(&file);
    let target = OpenTarget {
        file,
        path: path.to_owned(),
        size,
        block,
        mem_align,
        is_device: true,
    };
    if config.verify {
        fill(&target)?;
    }
    Ok(target)
}

fn checked_size(size: u64, available: u64, path: &Path) -> Result<u64, TargetError> {
    if size > available {
        return Err(TargetError::SizeTooLarge {
            size,
            available,
            path: path.to_owned(),
        });
    }
    Ok(size)
}

fn open_file(
    config: &WorkloadConfig,
    path: &Path,
    temporary: bool,
) -> Result<OpenTarget, TargetError> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => {
            return Err(TargetError::Symlink(path.to_owned()));
        }
        Ok(meta) if !meta.is_file() => return Err(TargetError::NotRegularFile(path.to_owned())),
        Ok(meta) => {
            let write = needs_write(config);
            if write && !config.allow_file_writes {
                return Err(TargetError::FileWritesNotAllowed {
                    what: if config.rw.writes() {
                        "write"
                    } else {
                        "write the --verify pattern over"
                    },
                    path: path.to_owned(),
                });
            }
            let file = OpenOptions::new()
                .read(true)
                .write(write)
                .custom_flags(direct_flag(config) | libc::O_NOFOLLOW)
                .open(path)
                .map_err(map_open_error(path, "opening"))?;
            let size = checked_size(config.size.unwrap_or(meta.len()), meta.len(), path)?;
            let (block, mem_align) = dio_alignment(&file);
            let target = OpenTarget {
                file,
                path: path.to_owned(),
                size,
                block,
                mem_align,
                is_device: false,
            };
            if config.verify {
                fill(&target)?;
            }
            return Ok(target);
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_error("inspecting", path)(e)),
    }
    // O_EXCL|O_NOFOLLOW: never reuse or follow whatever appears at the path meanwhile.
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(direct_flag(config) | libc::O_NOFOLLOW)
        .open(path)
        .map_err(map_open_error(path, "creating"))?;
    // A temporary file loses its name at once: no exit, SIGKILL included,
    // can leave it behind.
    if temporary {
        fs::remove_file(path).map_err(io_error("unlinking", path))?;
    }
    let size = config.size.unwrap_or(DEFAULT_NEW_FILE_SIZE);
    let (block, mem_align) = dio_alignment(&file);
    let target = OpenTarget {
        file,
        path: path.to_owned(),
        size,
        block,
        mem_align,
        is_device: false,
    };
    let filled = preallocate(&target).and_then(|()| fill(&target));
    if filled.is_err() && !temporary {
        // Half made (a full disk, a signal): not a file the user can use.
        let _ = fs::remove_file(path);
    }
    filled.map(|()| target)
}

/// Allocates the target's `size` bytes. `fill` then writes them: reads of
/// unwritten extents return zeros without touching the device, which would
/// make every read measure nothing.
fn preallocate(target: &OpenTarget) -> Result<(), TargetError> {
    // SAFETY: plain syscall on our own open descriptor.
    if unsafe { libc::fallocate(target.file.as_raw_fd(), 0, 0, target.size as libc::off_t) } != 0 {
        return Err(io_error("preallocating", &target.path)(
            io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// Writes the verify pattern over the target's first `size` bytes.
fn fill(target: &OpenTarget) -> Result<(), TargetError> {
    let mut buf = target.chunk_buffer();
    for (at, len) in target.chunks() {
        pattern::fill(&mut buf[..len], at, PATTERN_SEED);
        std::os::unix::fs::FileExt::write_all_at(&target.file, &buf[..len], at)
            .map_err(io_error("filling", &target.path))?;
    }
    target
        .file
        .sync_data()
        .map_err(io_error("syncing", &target.path))
}

/// The pattern seed: fixed, so a file filled by one run verifies in the next.
pub const PATTERN_SEED: u64 = 0xa10_7ace;
