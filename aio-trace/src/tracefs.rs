//! tracefs: where tracepoint ids live. Not mounted at boot on some machines,
//! so the tool mounts it itself. Mounted but mode 0700 (the kernel's default),
//! it takes CAP_DAC_READ_SEARCH to read for a process not owning it.
//!
//! Layer: system access (a leaf). Imports nothing of the crate.

use std::{
    ffi::CString,
    fs, io,
    os::unix::fs::MetadataExt as _,
    path::{Path, PathBuf},
};

use thiserror::Error;

use crate::privileges;

pub const TRACEFS: &str = "/sys/kernel/tracing";

/// Where aya also looks for tracefs, through debugfs.
const DEBUGFS_TRACING: &str = "/sys/kernel/debug/tracing";

/// Why tracefs cannot be used. Each message is one sentence for the user with
/// its cause in it once: no `#[source]`, since the binary prints error chains
/// and would print the cause a second time.
#[derive(Debug, Error)]
pub enum TracefsError {
    #[error(
        "cannot read tracefs: {} is mode {mode:04o} for uid {owner}, and this process (uid {uid}) lacks CAP_DAC_READ_SEARCH to read it: grant it too, or run as root (sudo aio-trace …)",
        path.display()
    )]
    Unreadable {
        path: PathBuf,
        mode: u32,
        owner: u32,
        uid: u32,
    },
    #[error("cannot read tracefs: {}: {error}", path.display())]
    Denied { path: PathBuf, error: io::Error },
    #[error("tracefs is not mounted at {TRACEFS}, and {}", mount_failure(.0))]
    Mount(io::Error),
}

fn mount_failure(e: &io::Error) -> String {
    if e.raw_os_error() == Some(libc::EPERM) {
        format!(
            "mounting it needs CAP_SYS_ADMIN: run as root, or mount it first (mount -t tracefs tracefs {TRACEFS})"
        )
    } else {
        format!("mounting it failed: {e}")
    }
}

/// What one place tracefs may be reachable at holds for this process.
enum Probe {
    Usable,
    Absent,
    /// Mounted, but this process may not read `path`.
    Denied(PathBuf, io::Error),
}

/// Whether tracefs at `root` is mounted and readable: its events directory
/// searchable and a file in it readable (the tracepoint ids are 0440).
fn probe(root: &Path) -> Probe {
    let events = root.join("events");
    match fs::metadata(&events) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => return Probe::Absent,
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            return Probe::Denied(root.to_owned(), e);
        }
        Err(_) => return Probe::Absent,
    }
    let file = events.join("header_page");
    match fs::File::open(&file) {
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => Probe::Denied(file, e),
        // Another failure (a kernel without this file) is for the tracepoint checks to find.
        _ => Probe::Usable,
    }
}

/// The error for a tracefs path this process may not read.
fn denied(path: PathBuf, error: io::Error, caps: u64) -> TracefsError {
    let may_read_anything = privileges::has(caps, privileges::CAP_DAC_READ_SEARCH)
        || privileges::has(caps, privileges::CAP_DAC_OVERRIDE);
    match fs::metadata(&path) {
        Ok(meta) if !may_read_anything => TracefsError::Unreadable {
            mode: meta.mode() & 0o7777,
            owner: meta.uid(),
            // SAFETY: geteuid has no preconditions and cannot fail.
            uid: unsafe { libc::geteuid() },
            path,
        },
        // With the capability, a security module refused: its errno says it.
        _ => TracefsError::Denied { path, error },
    }
}

/// Mounts tracefs at [`TRACEFS`] unless it is already reachable; refuses with
/// the capability missing when it is mounted but unreadable.
pub fn ensure_mounted() -> Result<(), TracefsError> {
    let mut refused = None;
    for root in [TRACEFS, DEBUGFS_TRACING] {
        match probe(Path::new(root)) {
            Probe::Usable => return Ok(()),
            Probe::Absent => {}
            Probe::Denied(path, e) => {
                refused.get_or_insert((path, e));
            }
        }
    }
    if let Some((path, e)) = refused {
        return Err(denied(path, e, privileges::effective_caps()));
    }
    let c = |s: &str| CString::new(s).expect("static path has no NUL");
    let (source, target, fstype) = (c("tracefs"), c(TRACEFS), c("tracefs"));
    // SAFETY: valid NUL-terminated strings; no data argument.
    let rc = unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(TracefsError::Mount(io::Error::last_os_error()));
    }
    Ok(())
}

/// Whether the tracepoint `group:name` exists on this kernel.
pub fn tracepoint_exists(group: &str, name: &str) -> bool {
    [TRACEFS, DEBUGFS_TRACING].iter().any(|root| {
        Path::new(root)
            .join("events")
            .join(group)
            .join(name)
            .join("id")
            .is_file()
    })
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn an_unreadable_tracefs_names_the_capability_not_the_mount() {
        let e = TracefsError::Unreadable {
            path: TRACEFS.into(),
            mode: 0o700,
            owner: 0,
            uid: 65534,
        };
        let message = e.to_string();
        assert_eq!(
            message,
            "cannot read tracefs: /sys/kernel/tracing is mode 0700 for uid 0, and this process (uid 65534) lacks CAP_DAC_READ_SEARCH to read it: grant it too, or run as root (sudo aio-trace …)"
        );
    }

    #[test]
    fn a_denied_path_without_the_capability_is_unreadable() {
        let dir = std::env::temp_dir();
        let e = denied(dir.clone(), io::Error::from_raw_os_error(libc::EACCES), 0);
        assert!(
            matches!(&e, TracefsError::Unreadable { path, .. } if *path == dir),
            "{e}"
        );
        let with = 1 << privileges::CAP_DAC_READ_SEARCH;
        let e = denied(dir, io::Error::from_raw_os_error(libc::EACCES), with);
        assert!(matches!(e, TracefsError::Denied { .. }), "{e}");
    }

    #[test]
    fn each_cause_is_printed_once() {
        let errors = [
            TracefsError::Mount(io::Error::from_raw_os_error(libc::ENODEV)),
            TracefsError::Denied {
                path: TRACEFS.into(),
                error: io::Error::from_raw_os_error(libc::EACCES),
            },
        ];
        for e in errors {
            // The binary prints `{:#}` of an anyhow chain: the message and every source.
            let printed = format!("{:#}", anyhow::Error::new(e));
            assert_eq!(printed.matches("os error").count(), 1, "{printed}");
        }
        let e = TracefsError::Mount(io::Error::from_raw_os_error(libc::EPERM));
        assert!(e.source().is_none());
        assert!(e.to_string().contains("needs CAP_SYS_ADMIN"), "{e}");
    }
}
