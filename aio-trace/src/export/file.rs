//! The recording's file: buffered, written in whole units, and cut back to
//! the last whole unit when a write fails (a full disk), so what was
//! written stays parseable. A unit is a line for the text formats, and one
//! `write` call for the native Perfetto trace, whose writer hands over a
//! record's packets whole in one call.

use std::{
    fs::{self, File, OpenOptions},
    io::{self, Seek, Write},
    os::unix::fs::{FileTypeExt as _, OpenOptionsExt as _},
    path::{Path, PathBuf},
};

use thiserror::Error;

/// Why the output cannot be opened. One sentence each, the cause in it once.
#[derive(Debug, Error)]
pub enum OutputError {
    #[error("{} already exists: choose another name or add --force to overwrite it", .0.display())]
    Exists(PathBuf),
    #[error("{} is a symbolic link, which aio-trace does not write through: give the file it points to", .0.display())]
    Symlink(PathBuf),
    #[error("no process is reading the FIFO {}: start its reader first", .0.display())]
    FifoWithoutReader(PathBuf),
    #[error("cannot create {}: {error}", path.display())]
    Open { path: PathBuf, error: io::Error },
}

/// Refuses, before anything is started, an output that [`create_output`]
/// would refuse: a symbolic link, or an existing path without `force`.
pub fn check_output(path: &Path, force: bool) -> Result<(), OutputError> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => Err(OutputError::Symlink(path.to_owned())),
        Ok(_) if !force => Err(OutputError::Exists(path.to_owned())),
        _ => Ok(()),
    }
}

/// Opens the output for writing: created new, or with `force` an existing one
/// truncated. A symbolic link is refused, not followed (O_NOFOLLOW), as the
/// workload refuses one: overwriting whatever a link points to is not what
/// --force asks for. A FIFO without a reader is refused at once instead of
/// blocking the open, where neither --duration nor a signal would end it.
pub fn create_output(path: &Path, force: bool) -> Result<File, OutputError> {
    check_output(path, force)?;
    let mut options = OpenOptions::new();
    options
        .write(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let file = options
        .open(path)
        .map_err(|error| match error.raw_os_error() {
            Some(libc::EEXIST) => OutputError::Exists(path.to_owned()),
            Some(libc::ELOOP) => OutputError::Symlink(path.to_owned()),
            Some(libc::ENXIO) if is_fifo(path) => OutputError::FifoWithoutReader(path.to_owned()),
            _ => OutputError::Open {
                path: path.to_owned(),
                error,
            },
        })?;
    // Non-blocking was for the open only: a slow reader should slow the
    // writes, not fail them with EAGAIN.
    let open_error = |error| OutputError::Open {
        path: path.to_owned(),
        error,
    };
    let fd = std::os::fd::AsRawFd::as_raw_fd(&file);
    // SAFETY: fd is open (owned by `file`); F_GETFL takes no argument.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(open_error(io::Error::last_os_error()));
    }
    // SAFETY: fd is open; F_SETFL takes an int of flags.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0 {
        return Err(open_error(io::Error::last_os_error()));
    }
    Ok(file)
}

fn is_fifo(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_fifo())
}

/// Bytes gathered before a write.
const CHUNK: usize = 1 << 20;

pub struct LineFile<F: Write + Seek + SetLen> {
    file: F,
    buf: Vec<u8>,
    /// File length up to the last complete line written.
    committed: u64,
    failed: bool,
    /// Every `write` call ends a unit (binary), rather than every `\n`.
    whole_writes: bool,
}

/// Truncation, so a test can stand in for a file.
pub trait SetLen {
    fn set_len(&self, len: u64) -> io::Result<()>;
}

impl SetLen for std::fs::File {
    fn set_len(&self, len: u64) -> io::Result<()> {
        std::fs::File::set_len(self, len)
    }
}

impl<F: Write + Seek + SetLen> LineFile<F> {
    pub fn new(file: F) -> Self {
        Self {
            file,
            buf: Vec::with_capacity(CHUNK + 64 * 1024),
            committed: 0,
            failed: false,
            whole_writes: false,
        }
    }

    /// A file of binary units, each one `write` call: flushed and cut back
    /// at the end of a call, never inside one.
    pub fn whole_writes(file: F) -> Self {
        Self {
            whole_writes: true,
            ..Self::new(file)
        }
    }

    /// Bytes in the file and still buffered.
    pub fn len(&self) -> u64 {
        self.committed + self.buf.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes the complete lines buffered (`all`: everything buffered).
    fn write_out(&mut self, all: bool) -> io::Result<()> {
        if self.failed {
            return Err(io::Error::other("an earlier write to this file failed"));
        }
        let end = if all || self.whole_writes {
            self.buf.len()
        } else {
            match self.buf.iter().rposition(|&b| b == b'\n') {
                Some(i) => i + 1,
                None => return Ok(()),
            }
        };
        if end == 0 {
            return Ok(());
        }
        if let Err(e) = self.file.write_all(&self.buf[..end]) {
            self.failed = true;
            // Best effort: drop the partial line the failed write may have left.
            let _ = self.file.set_len(self.committed);
            let _ = self.file.seek(io::SeekFrom::Start(self.committed));
            return Err(e);
        }
        self.committed += end as u64;
        self.buf.drain(..end);
        Ok(())
    }
}

impl<F: Write + Seek + SetLen> Write for LineFile<F> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.write_out(false)?;
        }
        Ok(data.len())
    }

    /// Writes every complete line (unit); a partial one waits for its end.
    fn flush(&mut self) -> io::Result<()> {
        self.write_out(false)?;
        self.file.flush()
    }
}

impl<F: Write + Seek + SetLen> LineFile<F> {
    /// Writes everything, partial line included (the end of the file).
    pub fn finish(&mut self) -> io::Result<()> {
        self.write_out(true)?;
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use std::{cell::RefCell, io::Cursor};

    use super::*;

    /// A disk that fills after `room` bytes, accepting part of the write that overflows.
    struct SmallDisk {
        data: RefCell<Cursor<Vec<u8>>>,
        room: usize,
    }

    impl Write for SmallDisk {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            let data = self.data.get_mut();
            let free = self.room.saturating_sub(data.position() as usize);
            if free == 0 {
                return Err(io::Error::from_raw_os_error(libc::ENOSPC));
            }
            data.write(&b[..b.len().min(free)])
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Seek for SmallDisk {
        fn seek(&mut self, pos: io::SeekFrom) -> io::Result<u64> {
            self.data.get_mut().seek(pos)
        }
    }

    impl SetLen for SmallDisk {
        fn set_len(&self, len: u64) -> io::Result<()> {
            self.data.borrow_mut().get_mut().truncate(len as usize);
            Ok(())
        }
    }

    #[test]
    fn a_full_disk_leaves_whole_lines_only() {
        let mut f = LineFile::new(SmallDisk {
            data: RefCell::default(),
            room: 25,
        });
        f.write_all(b"line one\nline two\n").unwrap();
        f.flush().unwrap();
        f.write_all(b"line three\n").unwrap();
        let err = f.flush().unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOSPC));
        assert!(f.flush().is_err(), "stays failed");
        let data = f.file.data.into_inner().into_inner();
        assert_eq!(data, b"line one\nline two\n");
    }

    #[test]
    fn a_full_disk_leaves_whole_writes_only_in_binary() {
        let mut f = LineFile::whole_writes(SmallDisk {
            data: RefCell::default(),
            room: 6,
        });
        f.write_all(b"\x0a\x02ab").unwrap();
        f.flush().unwrap();
        f.write_all(b"\x0a\x02cd").unwrap();
        assert!(f.flush().is_err());
        let data = f.file.data.into_inner().into_inner();
        assert_eq!(data, b"\x0a\x02ab");
    }

    #[test]
    fn flush_holds_back_a_partial_line_until_finish() {
        let mut f = LineFile::new(Cursor::new(Vec::new()));
        f.write_all(b"a\nb").unwrap();
        f.flush().unwrap();
        assert_eq!(f.file.get_ref(), b"a\n");
        f.finish().unwrap();
        assert_eq!(f.file.get_ref(), b"a\nb");
    }

    /// A directory of its own under the system's temporary directory, removed on drop.
    struct Dir(PathBuf);

    impl Dir {
        fn new(name: &str) -> Self {
            let dir = std::env::temp_dir().join(format!("aio-trace-{name}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn a_symlink_is_refused_with_or_without_force_and_its_target_kept() {
        let dir = Dir::new("symlink");
        let target = dir.0.join("target");
        fs::write(&target, "keep me").unwrap();
        let link = dir.0.join("out.jsonl");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        for force in [false, true] {
            assert!(matches!(
                check_output(&link, force),
                Err(OutputError::Symlink(_))
            ));
            let e = create_output(&link, force).unwrap_err();
            assert!(matches!(e, OutputError::Symlink(_)), "{e}");
            assert!(e.to_string().ends_with("is a symbolic link, which aio-trace does not write through: give the file it points to"), "{e}");
        }
        assert_eq!(fs::read_to_string(&target).unwrap(), "keep me");
    }

    #[test]
    fn an_existing_file_needs_force_and_is_truncated_with_it() {
        let dir = Dir::new("exists");
        let path = dir.0.join("out.jsonl");
        create_output(&path, false).unwrap();
        fs::write(&path, "old").unwrap();
        assert!(matches!(
            check_output(&path, false),
            Err(OutputError::Exists(_))
        ));
        assert!(matches!(
            create_output(&path, false),
            Err(OutputError::Exists(_))
        ));
        let mut file = create_output(&path, true).unwrap();
        file.write_all(b"new").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "new");
    }

    #[test]
    fn a_fifo_without_a_reader_is_refused_at_once() {
        let dir = Dir::new("fifo");
        let fifo = dir.0.join("out.jsonl");
        let c_path = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        let e = create_output(&fifo, true).unwrap_err();
        assert!(matches!(e, OutputError::FifoWithoutReader(_)), "{e}");
        assert!(
            e.to_string().starts_with("no process is reading the FIFO "),
            "{e}"
        );
    }

    #[test]
    fn a_fifo_with_a_reader_is_written_blocking() {
        let dir = Dir::new("fifo-read");
        let fifo = dir.0.join("out.jsonl");
        let c_path = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        // Opening for reading without blocking makes the reader exist before the writer.
        let mut reader = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo)
            .unwrap();
        let mut file = create_output(&fifo, true).unwrap();
        let fd = std::os::fd::AsRawFd::as_raw_fd(&file);
        // SAFETY: fd is open; F_GETFL takes no argument.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
        assert_eq!(flags & libc::O_NONBLOCK, 0);
        file.write_all(b"line\n").unwrap();
        let mut got = [0; 5];
        io::Read::read_exact(&mut reader, &mut got).unwrap();
        assert_eq!(&got, b"line\n");
    }

    impl SetLen for Cursor<Vec<u8>> {
        fn set_len(&self, _len: u64) -> io::Result<()> {
            Ok(())
        }
    }
}
