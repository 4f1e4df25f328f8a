//! tracefs: where tracepoint ids live. Not mounted at boot on some machines,
//! so the tool mounts it itself.
//!
//! Layer: system access (a leaf). Imports nothing of the crate.

use std::{ffi::CString, io, path::Path};

pub const TRACEFS: &str = "/sys/kernel/tracing";

/// True when tracefs is mounted at [`TRACEFS`] (or reachable through debugfs,
/// where aya also looks).
pub fn mounted() -> bool {
    Path::new(TRACEFS).join("events").is_dir()
        || Path::new("/sys/kernel/debug/tracing/events").is_dir()
}

/// Mounts tracefs at [`TRACEFS`] unless it is already reachable.
pub fn ensure_mounted() -> io::Result<()> {
    if mounted() {
        return Ok(());
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
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether the tracepoint `group:name` exists on this kernel.
pub fn tracepoint_exists(group: &str, name: &str) -> bool {
    [TRACEFS, "/sys/kernel/debug/tracing"].iter().any(|root| {
        Path::new(root)
            .join("events")
            .join(group)
            .join(name)
            .join("id")
            .is_file()
    })
}
