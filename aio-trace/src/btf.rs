//! Struct member offsets from the kernel's BTF (`/sys/kernel/btf/vmlinux`).
//!
//! The raw tracepoint programs get struct pointers (`struct request *`,
//! `struct bio *`, `struct kiocb *`) and must know where the members they read
//! sit in this kernel's build. aya-ebpf cannot emit CO-RE relocations, so the
//! loader resolves the offsets here and hands them to the kernel half as a
//! global. Only what that needs is parsed: structs, unions and the type
//! modifiers between a member and its struct.
//!
//! Layer: system access (a leaf). Imports only aio-trace-common.

use std::path::Path;

use aio_trace_common::KernelOffsets;
use thiserror::Error;

/// Where the running kernel publishes its BTF.
pub const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";

const MAGIC: u16 = 0xeb9f;
const HEADER_LEN: usize = 24;

// BTF kinds (include/uapi/linux/btf.h).
const KIND_INT: u32 = 1;
const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_ENUM: u32 = 6;
const KIND_TYPEDEF: u32 = 8;
const KIND_VOLATILE: u32 = 9;
const KIND_CONST: u32 = 10;
const KIND_RESTRICT: u32 = 11;
const KIND_FUNC_PROTO: u32 = 13;
const KIND_VAR: u32 = 14;
const KIND_DATASEC: u32 = 15;
const KIND_DECL_TAG: u32 = 17;
const KIND_TYPE_TAG: u32 = 18;
const KIND_ENUM64: u32 = 19;

/// Why an offset could not be resolved. Each message is one sentence.
#[derive(Debug, Error)]
pub enum BtfError {
    // The cause is in the message, so not a `source` (printed twice otherwise).
    #[error("cannot read the kernel's BTF at {path}: {error}")]
    Read { path: String, error: std::io::Error },
    #[error("the kernel's BTF is malformed: {0}")]
    Malformed(&'static str),
    #[error("the kernel's BTF has no struct {0}")]
    NoStruct(String),
    #[error("the kernel's BTF has no member {member} in struct {strukt}")]
    NoMember { strukt: String, member: String },
}

/// One type of the type section: its header, and where its members start.
#[derive(Clone, Copy)]
struct Type {
    name_off: u32,
    kind: u32,
    vlen: u32,
    kind_flag: bool,
    /// Size, or the referenced type id for modifiers.
    size_or_type: u32,
    /// Byte offset of the kind-specific data in `Btf::bytes`.
    data: usize,
}

/// A parsed BTF blob: enough to find struct members. The blob is kept as
/// read and types are decoded on demand: the kernel's is ~6 MiB with ~150k
/// types, and copies of it would stay in the heap of a long-running tracer.
pub struct Btf {
    bytes: Blob,
    strings: std::ops::Range<usize>,
    /// Where each type starts in `bytes`, by type id - 1 (id 0 is `void`).
    index: Vec<u32>,
}

fn u32_at(bytes: &[u8], at: usize) -> Result<u32, BtfError> {
    bytes
        .get(at..at + 4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or(BtfError::Malformed("a type runs past the type section"))
}

/// The BTF bytes: mapped from the file where the kernel allows it (6.16+
/// maps `/sys/kernel/btf/vmlinux`), else read into the heap, where glibc keeps
/// the freed pages of a 6 MiB buffer mapped for the rest of the run.
enum Blob {
    Heap(Vec<u8>),
    Mapped { ptr: *const u8, len: usize },
}

impl std::ops::Deref for Blob {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Self::Heap(bytes) => bytes,
            // SAFETY: a live private read-only mapping of `len` bytes.
            Self::Mapped { ptr, len } => unsafe { std::slice::from_raw_parts(*ptr, *len) },
        }
    }
}

impl Drop for Blob {
    fn drop(&mut self) {
        if let Self::Mapped { ptr, len } = *self {
            // SAFETY: unmaps exactly the mapping `map` made; no slice outlives self.
            unsafe { libc::munmap(ptr as *mut libc::c_void, len) };
        }
    }
}

impl Blob {
    fn map(file: &std::fs::File) -> Option<Self> {
        use std::os::fd::AsRawFd;
        let len = usize::try_from(file.metadata().ok()?.len()).ok()?;
        if len == 0 {
            return None;
        }
        // SAFETY: a fresh private read-only mapping of an open file.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                file.as_raw_fd(),
                0,
            )
        };
        (ptr != libc::MAP_FAILED).then_some(Self::Mapped {
            ptr: ptr as *const u8,
            len,
        })
    }
}

impl Btf {
    pub fn from_file(path: &Path) -> Result<Self, BtfError> {
        let read_error = |error| BtfError::Read {
            path: path.display().to_string(),
            error,
        };
        let file = std::fs::File::open(path).map_err(read_error)?;
        let blob = match Blob::map(&file) {
            Some(mapped) => mapped,
            None => {
                let mut bytes = Vec::new();
                std::io::Read::read_to_end(&mut &file, &mut bytes).map_err(read_error)?;
                Blob::Heap(bytes)
            }
        };
        Self::from_blob(blob)
    }

    /// Parses a little-endian BTF blob (the kernel's own byte order here).
    pub fn parse(bytes: Vec<u8>) -> Result<Self, BtfError> {
        Self::from_blob(Blob::Heap(bytes))
    }

    fn from_blob(bytes: Blob) -> Result<Self, BtfError> {
        if bytes.len() < HEADER_LEN || u16::from_le_bytes([bytes[0], bytes[1]]) != MAGIC {
            return Err(BtfError::Malformed("no BTF magic"));
        }
        let hdr_len = u32_at(&bytes, 4)? as usize;
        let section = |off: usize, len: usize| -> Result<std::ops::Range<usize>, BtfError> {
            let start = hdr_len + u32_at(&bytes, off)? as usize;
            let end = start + u32_at(&bytes, len)? as usize;
            if end > bytes.len() {
                return Err(BtfError::Malformed("a section runs past the end"));
            }
            Ok(start..end)
        };
        let types = section(8, 12)?;
        let strings = section(16, 20)?;

        let mut index = Vec::new();
        let mut at = types.start;
        while at < types.end {
            let ty = Self::decode(&bytes[..types.end], at)?;
            let vlen = ty.vlen as usize;
            let extra = match ty.kind {
                KIND_INT | KIND_VAR | KIND_DECL_TAG => 4,
                KIND_ARRAY => 12,
                KIND_STRUCT | KIND_UNION | KIND_DATASEC | KIND_ENUM64 => 12 * vlen,
                KIND_ENUM | KIND_FUNC_PROTO => 8 * vlen,
                0 | 20.. => return Err(BtfError::Malformed("unknown type kind")),
                _ => 0,
            };
            index.push(at as u32);
            at = ty.data + extra;
        }
        Ok(Self {
            bytes,
            strings,
            index,
        })
    }

    fn decode(bytes: &[u8], at: usize) -> Result<Type, BtfError> {
        let info = u32_at(bytes, at + 4)?;
        Ok(Type {
            name_off: u32_at(bytes, at)?,
            kind: (info >> 24) & 0x1f,
            vlen: info & 0xffff,
            kind_flag: info >> 31 == 1,
            size_or_type: u32_at(bytes, at + 8)?,
            data: at + 12,
        })
    }

    fn type_by_id(&self, id: u32) -> Option<Type> {
        let at = *self.index.get((id as usize).checked_sub(1)?)?;
        Self::decode(&self.bytes, at as usize).ok()
    }

    fn name(&self, off: u32) -> &[u8] {
        let strings = &self.bytes[self.strings.clone()];
        let tail = strings.get(off as usize..).unwrap_or_default();
        &tail[..tail.iter().position(|&b| b == 0).unwrap_or(tail.len())]
    }

    /// The struct or union a type id names, through typedefs and qualifiers.
    fn composite(&self, mut id: u32) -> Option<Type> {
        for _ in 0..32 {
            let ty = self.type_by_id(id)?;
            match ty.kind {
                KIND_STRUCT | KIND_UNION => return Some(ty),
                KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG => {
                    id = ty.size_or_type;
                }
                _ => return None,
            }
        }
        None
    }

    fn find_struct(&self, name: &str) -> Option<Type> {
        (1..=self.index.len() as u32)
            .filter_map(|id| self.type_by_id(id))
            .find(|t| {
                t.kind == KIND_STRUCT && t.vlen > 0 && self.name(t.name_off) == name.as_bytes()
            })
    }

    /// `(byte offset, type id)` of member `name` in `ty`, looking inside
    /// anonymous struct and union members as C does.
    fn member(&self, ty: Type, name: &str) -> Option<(u32, u32)> {
        for i in 0..ty.vlen as usize {
            let at = ty.data + 12 * i;
            let name_off = u32_at(&self.bytes, at).ok()?;
            let member_type = u32_at(&self.bytes, at + 4).ok()?;
            let raw = u32_at(&self.bytes, at + 8).ok()?;
            // With kind_flag set the top byte is a bitfield size.
            let bits = if ty.kind_flag { raw & 0x00ff_ffff } else { raw };
            let member_name = self.name(name_off);
            if member_name == name.as_bytes() {
                return Some((bits / 8, member_type));
            }
            if member_name.is_empty()
                && let Some(inner) = self.composite(member_type)
                && let Some((offset, id)) = self.member(inner, name)
            {
                return Some((bits / 8 + offset, id));
            }
        }
        None
    }

    /// Byte offset of a dotted member path (`"bi_iter.bi_sector"`) in struct `strukt`.
    pub fn offset_of(&self, strukt: &str, path: &str) -> Result<u32, BtfError> {
        let missing = || BtfError::NoMember {
            strukt: strukt.to_owned(),
            member: path.to_owned(),
        };
        let mut ty = self
            .find_struct(strukt)
            .ok_or_else(|| BtfError::NoStruct(strukt.to_owned()))?;
        let mut total = 0;
        let mut parts = path.split('.').peekable();
        while let Some(part) = parts.next() {
            let (offset, id) = self.member(ty, part).ok_or_else(missing)?;
            total += offset;
            if parts.peek().is_some() {
                ty = self.composite(id).ok_or_else(missing)?;
            }
        }
        Ok(total)
    }

    /// Every offset the raw tracepoint programs need.
    pub fn kernel_offsets(&self) -> Result<KernelOffsets, BtfError> {
        Ok(KernelOffsets {
            request_q: self.offset_of("request", "q")?,
            request_bio: self.offset_of("request", "bio")?,
            queue_disk: self.offset_of("request_queue", "disk")?,
            disk_major: self.offset_of("gendisk", "major")?,
            disk_first_minor: self.offset_of("gendisk", "first_minor")?,
            disk_seq: self.offset_of("gendisk", "diskseq")?,
            bio_bdev: self.offset_of("bio", "bi_bdev")?,
            bio_sector: self.offset_of("bio", "bi_iter.bi_sector")?,
            bio_size: self.offset_of("bio", "bi_iter.bi_size")?,
            bio_next: self.offset_of("bio", "bi_next")?,
            bio_private: self.offset_of("bio", "bi_private")?,
            bio_status: self.offset_of("bio", "bi_status")?,
            bdev_disk: self.offset_of("block_device", "bd_disk")?,
            kiocb_filp: self.offset_of("kiocb", "ki_filp")?,
            kiocb_pos: self.offset_of("kiocb", "ki_pos")?,
            file_inode: self.offset_of("file", "f_inode")?,
            inode_sb: self.offset_of("inode", "i_sb")?,
            inode_ino: self.offset_of("inode", "i_ino")?,
            sb_dev: self.offset_of("super_block", "s_dev")?,
            // Optional: without it dispatches are matched by file position.
            aio_kiocb_obj: self.aio_kiocb_obj().unwrap_or(0),
            ..self.uring_offsets().unwrap_or_default()
        })
    }

    /// The io_uring offsets (`uring` 1), or an error naming the first
    /// member this kernel lacks: io_uring requests are then not traced.
    pub fn uring_offsets(&self) -> Result<KernelOffsets, BtfError> {
        let cmd = self.offset_of("io_kiocb", "cmd")?;
        Ok(KernelOffsets {
            uring: 1,
            req_ctx: self.offset_of("io_kiocb", "ctx")?,
            req_opcode: self.offset_of("io_kiocb", "opcode")?,
            req_user_data: self.offset_of("io_kiocb", "cqe.user_data")?,
            req_fd: self.offset_of("io_kiocb", "cqe.fd")?,
            req_kiocb: cmd + self.offset_of("io_rw", "kiocb")?,
            req_addr: cmd + self.offset_of("io_rw", "addr")?,
            req_len: cmd + self.offset_of("io_rw", "len")?,
            ring_flags: self.offset_of("io_ring_ctx", "flags")?,
            task_group_leader: self.offset_of("task_struct", "group_leader")?,
            task_comm: self.offset_of("task_struct", "comm")?,
            task_flags: self.offset_of("task_struct", "flags")?,
            dio_iocb: self.offset_of("iomap_dio", "iocb")?,
            ..KernelOffsets::default()
        })
    }

    /// `aio_kiocb.ki_res.obj` relative to `aio_kiocb.rw`, the kiocb the
    /// filesystem sees.
    fn aio_kiocb_obj(&self) -> Result<u32, BtfError> {
        let obj = self.offset_of("aio_kiocb", "ki_res.obj")?;
        let rw = self.offset_of("aio_kiocb", "rw")?;
        Ok(obj.saturating_sub(rw))
    }
}

/// The offsets for the running kernel.
pub fn kernel_offsets() -> Result<KernelOffsets, BtfError> {
    Btf::from_file(Path::new(VMLINUX_BTF))?.kernel_offsets()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_btf_file_names_its_cause_once() {
        let Err(e) = Btf::from_file(Path::new("/nonexistent/vmlinux")) else {
            panic!("a missing file must not parse")
        };
        let chain = format!("{:#}", anyhow::Error::from(e));
        assert_eq!(chain.matches("No such file").count(), 1, "{chain}");
    }

    /// Builds a BTF blob from (name, info, size_or_type, extra words) types.
    fn blob(strings: &[u8], types: &[(u32, u32, u32, &[u32])]) -> Vec<u8> {
        let mut t = Vec::new();
        for (name, info, size, extra) in types {
            for w in [*name, *info, *size].iter().chain(extra.iter()) {
                t.extend_from_slice(&w.to_le_bytes());
            }
        }
        let mut out = Vec::new();
        out.extend_from_slice(&MAGIC.to_le_bytes());
        out.extend_from_slice(&[1, 0]);
        for w in [
            HEADER_LEN as u32,
            0,
            t.len() as u32,
            t.len() as u32,
            strings.len() as u32,
        ] {
            out.extend_from_slice(&w.to_le_bytes());
        }
        out.extend_from_slice(&t);
        out.extend_from_slice(strings);
        out
    }

    const fn info(kind: u32, vlen: u32, kind_flag: bool) -> u32 {
        (kind_flag as u32) << 31 | kind << 24 | vlen
    }

    /// struct inner { int a; int b; };
    /// typedef struct inner inner_t;
    /// struct outer { int x; union { int y; const inner_t in; }; int bits:3, z; };
    fn sample() -> Btf {
        let strings = b"\0int\0inner\0a\0b\0inner_t\0outer\0x\0y\0in\0bits\0z\0";
        let s = |name: &str| {
            let needle = [b"\0", name.as_bytes(), b"\0"].concat();
            strings
                .windows(needle.len())
                .position(|w| w == needle)
                .unwrap() as u32
                + 1
        };
        let types: &[(u32, u32, u32, &[u32])] = &[
            (s("int"), info(KIND_INT, 0, false), 4, &[32]), // 1
            (
                s("inner"),
                info(KIND_STRUCT, 2, false),
                8,
                &[s("a"), 1, 0, s("b"), 1, 32],
            ), // 2
            (s("inner_t"), info(KIND_TYPEDEF, 0, false), 2, &[]), // 3
            (0, info(KIND_CONST, 0, false), 3, &[]),        // 4
            (
                0,
                info(KIND_UNION, 2, false),
                8,
                &[s("y"), 1, 0, s("in"), 4, 0],
            ), // 5
            (
                s("outer"),
                info(KIND_STRUCT, 4, true),
                20,
                &[
                    s("x"),
                    1,
                    0,
                    0,
                    5,
                    64,
                    s("bits"),
                    1,
                    (3 << 24) | 128,
                    s("z"),
                    1,
                    128,
                ],
            ), // 6
        ];
        Btf::parse(blob(strings, types)).unwrap()
    }

    #[test]
    fn members_are_found_through_anonymous_unions_and_typedefs() {
        let btf = sample();
        assert_eq!(btf.offset_of("outer", "x").unwrap(), 0);
        assert_eq!(btf.offset_of("outer", "y").unwrap(), 8);
        assert_eq!(btf.offset_of("outer", "in.b").unwrap(), 12);
        assert_eq!(btf.offset_of("outer", "z").unwrap(), 16);
        assert_eq!(btf.offset_of("inner", "b").unwrap(), 4);
    }

    #[test]
    fn what_is_missing_is_named() {
        let btf = sample();
        assert!(matches!(btf.offset_of("nope", "x"), Err(BtfError::NoStruct(s)) if s == "nope"));
        assert!(matches!(
            btf.offset_of("outer", "in.c"),
            Err(BtfError::NoMember { member, .. }) if member == "in.c"
        ));
        assert!(matches!(
            Btf::parse(b"not btf at all, really".to_vec()),
            Err(BtfError::Malformed(_))
        ));
    }

    /// On a machine with kernel BTF (readable without root), every offset the
    /// kernel half needs resolves, and a stable uapi layout comes out right.
    #[test]
    fn the_running_kernel_has_every_member() {
        let path = Path::new(VMLINUX_BTF);
        if !path.exists() {
            eprintln!("skipped: {VMLINUX_BTF} is absent (kernel built without BTF)");
            return;
        }
        let btf = Btf::from_file(path).unwrap();
        assert_eq!(btf.offset_of("iovec", "iov_len").unwrap(), 8);
        assert_eq!(btf.offset_of("io_event", "res").unwrap(), 16);
        let offsets = btf.kernel_offsets().unwrap();
        assert_ne!(offsets.bio_sector, offsets.bio_size);
        // The request's bio list is linked through the bio's first member.
        assert_eq!(offsets.bio_next, 0);
        assert_ne!(offsets.bio_private, offsets.bio_next);
        // Past the kiocb (rw) and ki_ctx, ki_cancel and ki_res.data.
        assert!(offsets.aio_kiocb_obj >= btf.offset_of("kiocb", "ki_pos").unwrap() + 8 + 24);
    }
}
