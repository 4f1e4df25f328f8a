//! Where the bench's file lives. `disk`: the filesystem of the checkout (on
//! this VM ext4 on virtio, bound by the device and its host's noise).
//! `memory`: ext4 on a loop device over a file in /dev/shm, so that the CPU
//! is the limit and a tracer's cost per I/O shows in fio's IOPS.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result, bail};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Rig {
    Disk,
    Memory,
}

/// ext4 on a loop device over /dev/shm, mounted under the bench directory;
/// unmounted, detached and deleted when dropped.
pub struct MemoryRig {
    pub mount: PathBuf,
    image: PathBuf,
    loop_dev: Option<String>,
    mounted: bool,
}

/// Room for the 1 GiB bench file and ext4's own.
const IMAGE_SIZE: &str = "2G";

impl MemoryRig {
    pub fn new(bench_dir: &Path) -> Result<Self> {
        let mut rig = Self {
            mount: bench_dir.join("memory-rig"),
            image: PathBuf::from(format!("/dev/shm/aio-trace-rig-{}.img", std::process::id())),
            loop_dev: None,
            mounted: false,
        };
        run(
            Command::new("truncate")
                .args(["-s", IMAGE_SIZE])
                .arg(&rig.image),
            "creating the rig's image in /dev/shm",
        )?;
        let out = Command::new("losetup")
            .args(["--find", "--show"])
            .arg(&rig.image)
            .output()
            .context("while running losetup")?;
        if !out.status.success() {
            bail!(
                "losetup could not attach {}: {}",
                rig.image.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let dev = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        rig.loop_dev = Some(dev.clone());
        run(
            Command::new("mkfs.ext4").args(["-q", &dev]),
            "making ext4 on the rig",
        )?;
        std::fs::create_dir_all(&rig.mount)
            .with_context(|| format!("while creating {}", rig.mount.display()))?;
        run(
            Command::new("mount").arg(&dev).arg(&rig.mount),
            "mounting the rig",
        )?;
        rig.mounted = true;
        Ok(rig)
    }
}

impl Drop for MemoryRig {
    fn drop(&mut self) {
        if self.mounted {
            let _ = Command::new("umount").arg(&self.mount).status();
        }
        if let Some(dev) = &self.loop_dev {
            let _ = Command::new("losetup").args(["-d", dev]).status();
        }
        let _ = std::fs::remove_file(&self.image);
    }
}

fn run(cmd: &mut Command, what: &str) -> Result<()> {
    let status = cmd.status().with_context(|| format!("while {what}"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}
