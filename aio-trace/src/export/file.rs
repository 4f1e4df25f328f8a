//! The recording's file: buffered, written in whole lines, and cut back to
//! the last whole line when a write fails (a full disk), so what was
//! written stays parseable.

use std::io::{self, Seek, Write};

/// Bytes gathered before a write.
const CHUNK: usize = 1 << 20;

pub struct LineFile<F: Write + Seek + SetLen> {
    file: F,
    buf: Vec<u8>,
    /// File length up to the last complete line written.
    committed: u64,
    failed: bool,
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
        let end = if all {
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

    /// Writes every complete line; a partial one waits for its end.
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
    fn flush_holds_back_a_partial_line_until_finish() {
        let mut f = LineFile::new(Cursor::new(Vec::new()));
        f.write_all(b"a\nb").unwrap();
        f.flush().unwrap();
        assert_eq!(f.file.get_ref(), b"a\n");
        f.finish().unwrap();
        assert_eq!(f.file.get_ref(), b"a\nb");
    }

    impl SetLen for Cursor<Vec<u8>> {
        fn set_len(&self, _len: u64) -> io::Result<()> {
            Ok(())
        }
    }
}
