//! Block devices as users know them: the kernel's name (`vda`, `nvme0n1p2`)
//! beside `maj:min`, read from sysfs, and the disk a `--disk` argument names.
//!
//! Layer: system access (a leaf). Every path is taken under a sysfs root so
//! the tests can build a fake one.

use std::{
    collections::HashMap,
    fs, io,
    path::{Path, PathBuf},
    sync::Arc,
};

use thiserror::Error;

/// Where sysfs is mounted.
pub const SYSFS: &str = "/sys";

/// The kernel's dev_t encoding in tracepoints and records: major << 20 | minor.
pub fn encode(major: u32, minor: u32) -> u32 {
    (major << 20) | (minor & 0xf_ffff)
}

fn maj_min(dev: u32) -> String {
    format!("{}:{}", dev >> 20, dev & 0xf_ffff)
}

/// "8:1" (sysfs's `dev` file, a `--disk` argument) in the kernel's encoding.
pub fn parse_maj_min(s: &str) -> Option<u32> {
    let (major, minor) = s.trim().split_once(':')?;
    let (major, minor) = (major.parse::<u32>().ok()?, minor.parse::<u32>().ok()?);
    // Twelve bits of major and twenty of minor are all the encoding holds.
    (major < 1 << 12 && minor < 1 << 20).then(|| encode(major, minor))
}

/// The name of `dev` from sysfs: `DEVNAME` of its uevent, else the last
/// component of its /sys/dev/block link. None for a device without a sysfs
/// entry (the anonymous devices of btrfs, overlayfs, tmpfs).
fn read_name(root: &Path, dev: u32) -> Option<String> {
    let dir = root.join("dev/block").join(maj_min(dev));
    let from_uevent = fs::read_to_string(dir.join("uevent")).ok().and_then(|u| {
        u.lines()
            .find_map(|l| l.strip_prefix("DEVNAME=").map(str::to_owned))
    });
    from_uevent.or_else(|| {
        let link = fs::read_link(&dir).ok()?;
        Some(link.file_name()?.to_string_lossy().into_owned())
    })
}

/// Device names, each read from sysfs once and kept: a device's name does not
/// change while it exists, and a record's device is looked up per record.
#[derive(Clone, Debug)]
pub struct DevNames {
    root: PathBuf,
    cache: HashMap<u32, Option<Arc<str>>>,
}

impl DevNames {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            cache: HashMap::new(),
        }
    }

    /// Names from this machine's sysfs.
    pub fn system() -> Self {
        Self::new(SYSFS)
    }

    /// `dev`'s name (`vda`), None when sysfs has none.
    pub fn name(&mut self, dev: u32) -> Option<Arc<str>> {
        let root = &self.root;
        self.cache
            .entry(dev)
            .or_insert_with(|| read_name(root, dev).map(Arc::from))
            .clone()
    }
}

/// What `--disk` selects: a device and, for a whole disk, its partitions,
/// since a filesystem on `vda1` is on the disk `vda`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Disk {
    /// The device's own name (`vda`), whatever form the argument took.
    pub name: String,
    /// The device itself.
    pub dev: u32,
    /// The whole disk it is or is a partition of: the block layer counts
    /// bios and requests per whole disk.
    pub whole: u32,
    /// The device and, for a whole disk, its partitions.
    pub devs: Vec<u32>,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum DiskError {
    #[error(
        "no block device is named {0}: give a name lsblk lists (vda, nvme0n1p2), /dev/NAME or MAJ:MIN"
    )]
    NoName(String),
    #[error("no block device is numbered {0}: give one lsblk -o NAME,MAJ:MIN lists")]
    NoNumber(String),
    #[error("while reading {path}: {reason}")]
    Sysfs { path: String, reason: String },
}

impl Disk {
    /// Resolves `vda`, `/dev/vda` (or a link to it, as /dev/mapper/NAME) or
    /// `254:0` against the sysfs at `root`.
    pub fn resolve(arg: &str, root: &Path) -> Result<Self, DiskError> {
        let dev = match parse_maj_min(arg) {
            Some(dev) => {
                if !root.join("dev/block").join(maj_min(dev)).exists() {
                    return Err(DiskError::NoNumber(arg.to_owned()));
                }
                dev
            }
            None => {
                let name = device_file_name(arg);
                let dev_file = root.join("class/block").join(&name).join("dev");
                let text =
                    fs::read_to_string(&dev_file).map_err(|_| DiskError::NoName(arg.to_owned()))?;
                parse_maj_min(&text).ok_or_else(|| DiskError::Sysfs {
                    path: dev_file.display().to_string(),
                    reason: format!("{text:?} is not MAJ:MIN"),
                })?
            }
        };
        let dir = root.join("dev/block").join(maj_min(dev));
        let dir = fs::canonicalize(&dir).map_err(|e| sysfs_error(&dir, &e))?;
        let name = read_name(root, dev).unwrap_or_else(|| maj_min(dev));
        if dir.join("partition").exists() {
            let parent = dir.parent().unwrap_or(&dir).join("dev");
            let whole = fs::read_to_string(&parent)
                .ok()
                .and_then(|t| parse_maj_min(&t))
                .unwrap_or(dev);
            return Ok(Self {
                name,
                dev,
                whole,
                devs: vec![dev],
            });
        }
        let mut devs = vec![dev];
        let entries = fs::read_dir(&dir).map_err(|e| sysfs_error(&dir, &e))?;
        for entry in entries.flatten() {
            let part = entry.path();
            if part.join("partition").exists()
                && let Some(p) = fs::read_to_string(part.join("dev"))
                    .ok()
                    .and_then(|t| parse_maj_min(&t))
            {
                devs.push(p);
            }
        }
        devs.sort_unstable();
        Ok(Self {
            name,
            dev,
            whole: dev,
            devs,
        })
    }

    /// Whether a record whose file is on `dev` is on this disk.
    pub fn contains(&self, dev: u32) -> bool {
        self.devs.contains(&dev)
    }

    /// `vda (254:0)`, for messages.
    pub fn label(&self) -> String {
        format!("{} ({})", self.name, maj_min(self.dev))
    }
}

/// The kernel's name in a device argument: `vda` as it is, `/dev/vda` without
/// its directory, and a link such as /dev/mapper/root or /dev/disk/by-uuid/…
/// followed to the node it names (`dm-0`).
fn device_file_name(arg: &str) -> String {
    if arg.starts_with('/')
        && let Ok(target) = fs::canonicalize(arg)
        && let Some(name) = target.file_name()
    {
        return name.to_string_lossy().into_owned();
    }
    arg.strip_prefix("/dev/").unwrap_or(arg).to_owned()
}

fn sysfs_error(path: &Path, e: &io::Error) -> DiskError {
    DiskError::Sysfs {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

#[cfg(test)]
pub mod fake {
    //! A sysfs tree with the files `blockdev` reads, for tests.

    use std::{
        fs,
        os::unix::fs::symlink,
        path::PathBuf,
        sync::atomic::{AtomicU64, Ordering},
    };

    pub struct FakeSysfs {
        pub root: PathBuf,
    }

    impl FakeSysfs {
        /// A tree of its own: tests running at once may use the same tag.
        pub fn new(tag: &str) -> Self {
            static NEXT: AtomicU64 = AtomicU64::new(0);
            let root = std::env::temp_dir().join(format!(
                "aio-trace-sysfs-{tag}-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = fs::remove_dir_all(&root);
            fs::create_dir_all(root.join("dev/block")).unwrap();
            fs::create_dir_all(root.join("class/block")).unwrap();
            fs::create_dir_all(root.join("devices")).unwrap();
            Self { root }
        }

        /// A whole disk `name` at `maj:min`, as the kernel lays it out: the
        /// device directory, and links to it from dev/block and class/block.
        pub fn disk(&self, name: &str, maj_min: &str) -> &Self {
            let dir = self.root.join("devices").join(name);
            self.device(&dir, name, maj_min, false);
            self
        }

        /// A partition `name` of the disk `disk`.
        pub fn partition(&self, disk: &str, name: &str, maj_min: &str) -> &Self {
            let dir = self.root.join("devices").join(disk).join(name);
            self.device(&dir, name, maj_min, true);
            self
        }

        fn device(&self, dir: &PathBuf, name: &str, maj_min: &str, partition: bool) {
            fs::create_dir_all(dir).unwrap();
            fs::write(dir.join("dev"), format!("{maj_min}\n")).unwrap();
            let (major, minor) = maj_min.split_once(':').unwrap();
            fs::write(
                dir.join("uevent"),
                format!("MAJOR={major}\nMINOR={minor}\nDEVNAME={name}\nDEVTYPE=disk\n"),
            )
            .unwrap();
            if partition {
                fs::write(dir.join("partition"), "1\n").unwrap();
            }
            symlink(dir, self.root.join("dev/block").join(maj_min)).unwrap();
            symlink(dir, self.root.join("class/block").join(name)).unwrap();
        }
    }

    impl Drop for FakeSysfs {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.root);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{fake::FakeSysfs, *};

    fn sysfs(tag: &str) -> FakeSysfs {
        let s = FakeSysfs::new(tag);
        s.disk("vda", "254:0")
            .partition("vda", "vda1", "254:1")
            .partition("vda", "vda2", "254:2")
            .disk("loop3", "7:3");
        s
    }

    #[test]
    fn a_disk_by_name_path_or_number_takes_its_partitions() {
        let s = sysfs("whole");
        for arg in ["vda", "/dev/vda", "254:0"] {
            let d = Disk::resolve(arg, &s.root).unwrap();
            assert_eq!(d.name, "vda", "{arg}");
            assert_eq!(d.dev, encode(254, 0));
            assert_eq!(d.whole, encode(254, 0));
            assert_eq!(d.devs, [encode(254, 0), encode(254, 1), encode(254, 2)]);
            assert_eq!(d.label(), "vda (254:0)");
        }
        let lo = Disk::resolve("7:3", &s.root).unwrap();
        assert_eq!((lo.name.as_str(), lo.devs.len()), ("loop3", 1));
        assert!(lo.contains(encode(7, 3)) && !lo.contains(encode(254, 0)));
    }

    #[test]
    fn a_partition_is_only_itself_and_knows_its_disk() {
        let s = sysfs("part");
        let d = Disk::resolve("vda2", &s.root).unwrap();
        assert_eq!(d.name, "vda2");
        assert_eq!(d.devs, [encode(254, 2)]);
        assert_eq!(d.whole, encode(254, 0));
        assert!(!d.contains(encode(254, 1)));
    }

    #[test]
    fn an_unknown_disk_is_one_sentence() {
        let s = sysfs("unknown");
        assert_eq!(
            Disk::resolve("vdz", &s.root).unwrap_err().to_string(),
            "no block device is named vdz: give a name lsblk lists (vda, nvme0n1p2), /dev/NAME or MAJ:MIN"
        );
        assert_eq!(
            Disk::resolve("/dev/vdz", &s.root),
            Err(DiskError::NoName("/dev/vdz".into()))
        );
        assert_eq!(
            Disk::resolve("8:99", &s.root),
            Err(DiskError::NoNumber("8:99".into()))
        );
        // Out of the encoding's range: not a number, so a name nothing has.
        assert!(matches!(
            Disk::resolve("4096:0", &s.root),
            Err(DiskError::NoName(_))
        ));
    }

    #[test]
    fn names_come_from_uevent_or_the_link_and_are_cached() {
        let s = sysfs("names");
        let mut names = DevNames::new(&s.root);
        assert_eq!(names.name(encode(254, 1)).as_deref(), Some("vda1"));
        // An anonymous device (btrfs, tmpfs) has no sysfs entry.
        assert_eq!(names.name(encode(0, 45)), None);
        // Without a uevent DEVNAME, the link's last component names it.
        fs::remove_file(s.root.join("devices/loop3/uevent")).unwrap();
        assert_eq!(names.name(encode(7, 3)).as_deref(), Some("loop3"));
        // Read once: a name already read outlives its sysfs entry.
        fs::remove_dir_all(s.root.join("devices/vda")).unwrap();
        assert_eq!(names.name(encode(254, 1)).as_deref(), Some("vda1"));
    }

    #[test]
    fn maj_min_parses_within_the_encoding() {
        assert_eq!(parse_maj_min("254:0\n"), Some(254 << 20));
        assert_eq!(parse_maj_min("7:1048575"), Some((7 << 20) | 0xf_ffff));
        assert_eq!(parse_maj_min("7:1048576"), None);
        assert_eq!(parse_maj_min("vda"), None);
        assert_eq!(parse_maj_min("8:"), None);
    }
}
