//! Control groups as users know them: a cgroup v2 directory and its path
//! under the v2 mount (`/system.slice/foo.scope`) beside the id the kernel
//! half records (`bpf_get_current_cgroup_id`: the inode number of that
//! directory).
//!
//! Layer: system access (a leaf). The v2 mount is found in mountinfo, never
//! assumed: hybrid systems mount it at /sys/fs/cgroup/unified, unified ones
//! at /sys/fs/cgroup. Every function takes the mount (or mountinfo) so the
//! tests can build a fake hierarchy in a temporary directory.

use std::{
    collections::HashMap,
    fs,
    os::unix::fs::MetadataExt,
    path::{Component, Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use thiserror::Error;

/// Where this process's mount table is.
pub const MOUNTINFO: &str = "/proc/self/mountinfo";

#[derive(Debug, Error, PartialEq, Eq)]
pub enum CgroupError {
    #[error(
        "no cgroup v2 hierarchy is mounted (no cgroup2 line in {MOUNTINFO}), so --cgroup cannot be used"
    )]
    NoV2Mount,
    #[error("{arg} is not a cgroup: no directory {tried}")]
    NotFound {
        arg: String,
        tried: String,
        mount: String,
    },
    #[error("{arg} is outside the cgroup v2 mount {mount}")]
    Outside { arg: String, mount: String },
    #[error(
        "{arg} is {level} levels deep; --cgroup takes cgroups at most {max} levels below the root"
    )]
    TooDeep { arg: String, level: u32, max: u32 },
}

/// The mount point of the cgroup v2 hierarchy, from a mountinfo text.
pub fn v2_mount_in(mountinfo: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|line| {
        // "36 25 0:31 / /sys/fs/cgroup/unified rw,… shared:10 - cgroup2 cgroup2 rw,…"
        let (mount, fs) = line.split_once(" - ")?;
        if fs.split(' ').next()? != "cgroup2" {
            return None;
        }
        let point = mount.split(' ').nth(4)?;
        Some(PathBuf::from(unescape_octal(point)))
    })
}

/// The cgroup v2 mount point of this machine.
pub fn v2_mount() -> Result<PathBuf, CgroupError> {
    let mountinfo = fs::read_to_string(MOUNTINFO).unwrap_or_default();
    v2_mount_in(&mountinfo).ok_or(CgroupError::NoV2Mount)
}

/// mountinfo escapes space, tab, newline and backslash as \ooo.
fn unescape_octal(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let digits = bytes.get(i + 1..i + 4);
        if bytes[i] == b'\\'
            && let Some(d) = digits.filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)))
        {
            out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A `--cgroup` argument resolved on this machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cgroup {
    /// The cgroup v2 id: its directory's inode number.
    pub id: u64,
    /// Its depth below the root (the root is level 0), which the kernel
    /// half's ancestor lookup takes.
    pub level: u32,
    /// Its path under the v2 mount, `/` for the root.
    pub path: String,
}

impl Cgroup {
    /// Resolves `arg`: a directory on the v2 mount (`/sys/fs/cgroup/unified/x`)
    /// or a path relative to the mount (`/system.slice/foo.scope`, as
    /// /proc/PID/cgroup and the records' `cgroup_path` write it).
    pub fn resolve(arg: &str, mount: &Path) -> Result<Self, CgroupError> {
        let given = Path::new(arg);
        let relative = match given.strip_prefix(mount) {
            Ok(rest) => rest.to_path_buf(),
            Err(_) => given.strip_prefix("/").unwrap_or(given).to_path_buf(),
        };
        if relative
            .components()
            .any(|c| !matches!(c, Component::Normal(_)))
        {
            return Err(CgroupError::Outside {
                arg: arg.into(),
                mount: mount.display().to_string(),
            });
        }
        let dir = mount.join(&relative);
        let not_found = || CgroupError::NotFound {
            arg: arg.into(),
            tried: dir.display().to_string(),
            mount: mount.display().to_string(),
        };
        let meta = fs::metadata(&dir).map_err(|_| not_found())?;
        // Every cgroup directory has this file; a plain directory beside the
        // mount does not.
        if !meta.is_dir() || !dir.join("cgroup.procs").exists() {
            return Err(not_found());
        }
        let level = relative.components().count() as u32;
        if level > aio_trace_common::CGROUP_MAX_LEVEL {
            return Err(CgroupError::TooDeep {
                arg: arg.into(),
                level,
                max: aio_trace_common::CGROUP_MAX_LEVEL,
            });
        }
        Ok(Self {
            id: meta.ino(),
            level,
            path: path_under_mount(&relative),
        })
    }

    /// Resolves `arg` on this machine's v2 mount.
    pub fn resolve_here(arg: &str) -> Result<Self, CgroupError> {
        Self::resolve(arg, &v2_mount()?)
    }
}

/// `a/b` as `/a/b`, the root as `/`.
fn path_under_mount(relative: &Path) -> String {
    let mut path = String::new();
    for component in relative.components() {
        path.push('/');
        path.push_str(&component.as_os_str().to_string_lossy());
    }
    if path.is_empty() {
        path.push('/');
    }
    path
}

/// How often a cgroup id not on the mount may make the cache walk the
/// hierarchy again: a container started after the trace is found within
/// this, and a stream of records from a removed cgroup costs one walk per
/// interval, not one per record.
const REWALK_EVERY: Duration = Duration::from_secs(1);

/// Cgroup paths by id, from walks of the v2 mount. A hit costs a hash
/// lookup and no allocation; a miss walks the hierarchy again (at most once
/// per `REWALK_EVERY`), which finds cgroups created since.
#[derive(Clone, Debug)]
pub struct CgroupNames {
    mount: Option<PathBuf>,
    paths: HashMap<u64, Arc<str>>,
    walked: Option<Instant>,
}

impl CgroupNames {
    /// Names from the hierarchy mounted at `mount` (None: no v2 mount, so no
    /// names).
    pub fn new(mount: Option<PathBuf>) -> Self {
        Self {
            mount,
            paths: HashMap::new(),
            walked: None,
        }
    }

    /// Names from this machine's v2 mount.
    pub fn system() -> Self {
        Self::new(v2_mount().ok())
    }

    /// The path of cgroup `id` under the mount; None for 0 (no cgroup
    /// recorded) or an id that is not (or no longer) on it.
    pub fn path(&mut self, id: u64) -> Option<&Arc<str>> {
        if id == 0 {
            return None;
        }
        if !self.paths.contains_key(&id)
            && self.walked.is_none_or(|at| at.elapsed() >= REWALK_EVERY)
        {
            self.walk();
        }
        self.paths.get(&id)
    }

    /// Adds every cgroup now on the mount; removed ones keep their names
    /// (records of them may still arrive).
    fn walk(&mut self) {
        self.walked = Some(Instant::now());
        let Some(mount) = self.mount.clone() else {
            return;
        };
        let mut pending = vec![PathBuf::new()];
        while let Some(relative) = pending.pop() {
            let dir = mount.join(&relative);
            let Ok(meta) = fs::metadata(&dir) else {
                continue;
            };
            self.paths
                .entry(meta.ino())
                .or_insert_with(|| path_under_mount(&relative).into());
            let Ok(entries) = fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    pending.push(relative.join(entry.file_name()));
                }
            }
        }
    }
}

/// What a narrow column shows of a cgroup path: its last component (a
/// systemd unit such as `docker-3f2a….scope`, a pod's container), `/` for
/// the root.
pub fn short_name(path: &str) -> &str {
    path.rsplit('/').find(|c| !c.is_empty()).unwrap_or("/")
}

/// Makes, and on drop removes, a directory tree that looks like a cgroup v2
/// mount: for the tests of this module and of its users.
#[cfg(test)]
pub mod fake {
    use super::*;

    pub struct FakeMount {
        pub root: PathBuf,
    }

    impl FakeMount {
        pub fn new(name: &str) -> Self {
            let root = std::env::temp_dir()
                .join(format!("aio-trace-cgroup-{name}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&root);
            let mount = Self { root };
            mount.add("");
            mount
        }

        /// A cgroup directory (with its `cgroup.procs`); returns its id.
        pub fn add(&self, relative: &str) -> u64 {
            let dir = self.root.join(relative);
            fs::create_dir_all(&dir).unwrap();
            fs::write(dir.join("cgroup.procs"), "").unwrap();
            fs::metadata(&dir).unwrap().ino()
        }
    }

    impl Drop for FakeMount {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.root);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{fake::FakeMount, *};

    #[test]
    fn the_v2_mount_is_the_cgroup2_line_wherever_it_is() {
        let hybrid = "\
25 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
30 25 0:26 / /sys/fs/cgroup ro shared:8 - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid shared:9 - cgroup2 cgroup2 rw,nsdelegate
32 30 0:28 / /sys/fs/cgroup/systemd rw shared:10 - cgroup cgroup rw,xattr,name=systemd
";
        assert_eq!(
            v2_mount_in(hybrid),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        let v1_only = "32 30 0:28 / /sys/fs/cgroup/cpu rw shared:10 - cgroup cgroup rw,cpu\n";
        assert_eq!(v2_mount_in(v1_only), None);
        let escaped = "31 30 0:27 / /mnt/my\\040cgroups rw - cgroup2 cgroup2 rw\n";
        assert_eq!(v2_mount_in(escaped), Some(PathBuf::from("/mnt/my cgroups")));
    }

    #[test]
    fn a_path_resolves_on_the_mount_or_relative_to_it() {
        let mount = FakeMount::new("resolve");
        let id = mount.add("system.slice/foo.scope");
        let expected = Cgroup {
            id,
            level: 2,
            path: "/system.slice/foo.scope".into(),
        };
        let full = mount.root.join("system.slice/foo.scope");
        assert_eq!(
            Cgroup::resolve(full.to_str().unwrap(), &mount.root),
            Ok(expected.clone())
        );
        assert_eq!(
            Cgroup::resolve("/system.slice/foo.scope", &mount.root),
            Ok(expected.clone())
        );
        assert_eq!(
            Cgroup::resolve("system.slice/foo.scope/", &mount.root),
            Ok(expected)
        );
        let root = Cgroup::resolve("/", &mount.root).unwrap();
        assert_eq!((root.level, root.path.as_str()), (0, "/"));
    }

    #[test]
    fn a_bad_path_is_one_sentence_naming_what_was_tried() {
        let mount = FakeMount::new("bad");
        fs::create_dir_all(mount.root.join("not-a-cgroup")).unwrap();
        for arg in ["/no/such", "/not-a-cgroup"] {
            let e = Cgroup::resolve(arg, &mount.root).unwrap_err();
            assert!(matches!(e, CgroupError::NotFound { .. }), "{e}");
            assert!(e.to_string().contains(arg), "{e}");
        }
        let e = Cgroup::resolve("/../etc", &mount.root).unwrap_err();
        assert!(matches!(e, CgroupError::Outside { .. }), "{e}");
    }

    #[test]
    fn names_come_from_a_walk_and_new_cgroups_are_found_later() {
        let mount = FakeMount::new("names");
        let a = mount.add("a.slice");
        let mut names = CgroupNames::new(Some(mount.root.clone()));
        assert_eq!(names.path(a).map(|p| &**p), Some("/a.slice"));
        assert_eq!(names.path(0), None);
        let b = mount.add("a.slice/b.scope");
        // Within the rewalk interval a new cgroup is not looked for yet.
        names.walked = Some(Instant::now());
        assert_eq!(names.path(b), None);
        names.walked = None;
        assert_eq!(names.path(b).map(|p| &**p), Some("/a.slice/b.scope"));
        let mut none = CgroupNames::new(None);
        assert_eq!(none.path(a), None);
    }

    #[test]
    fn the_short_name_is_the_last_component() {
        assert_eq!(
            short_name("/system.slice/docker-3f2a.scope"),
            "docker-3f2a.scope"
        );
        assert_eq!(short_name("/user.slice/"), "user.slice");
        assert_eq!(short_name("/"), "/");
    }
}
