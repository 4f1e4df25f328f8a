//! The doctor's checks: what this machine allows and what aio-trace will use.

use std::{fs, path::Path};

use aya::{
    maps::MapType,
    programs::ProgramType,
    sys::{BpfHelper, is_helper_supported, is_map_supported, is_program_supported},
};

use aio_trace::{loader::PROBES, privileges, tracefs};

/// One line of the doctor's table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    /// Whether aio-trace cannot run without it.
    pub required: bool,
    pub detail: String,
    pub advice: &'static str,
}

fn check(
    name: impl Into<String>,
    ok: bool,
    required: bool,
    detail: impl Into<String>,
    advice: &'static str,
) -> Check {
    Check {
        name: name.into(),
        ok,
        required,
        detail: detail.into(),
        advice,
    }
}

fn kernel_release() -> String {
    fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or_else(|_| "unknown".into(), |s| s.trim().to_owned())
}

/// CONFIG_KPROBES from /proc/config.gz, if the kernel exposes its config.
fn kprobes_configured() -> Option<bool> {
    if Path::new("/sys/kernel/tracing/kprobe_events").exists() {
        return Some(true);
    }
    // zcat is everywhere the kernel config is; avoid a gzip dependency for one probe.
    let out = std::process::Command::new("zcat")
        .arg("/proc/config.gz")
        .output()
        .ok()?;
    let config = String::from_utf8_lossy(&out.stdout);
    Some(config.lines().any(|l| l == "CONFIG_KPROBES=y"))
}

fn supported(result: Result<bool, impl std::fmt::Display>) -> (bool, String) {
    match result {
        Ok(true) => (true, "loads".into()),
        Ok(false) => (false, "refused by the kernel".into()),
        Err(e) => (false, format!("refused: {e}")),
    }
}

/// Runs every check. Mounts tracefs when it is missing and we may.
pub fn run_checks() -> Vec<Check> {
    let mut checks = Vec::new();
    let caps = privileges::effective_caps();
    let missing = privileges::missing_caps(caps);
    checks.push(check(
        "privileges",
        missing.is_empty(),
        true,
        if missing.is_empty() {
            "CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN)".to_owned()
        } else {
            format!("missing {}", missing.join(", "))
        },
        "run as root: sudo aio-trace …",
    ));
    checks.push(check("kernel", true, false, kernel_release(), ""));
    let btf = Path::new("/sys/kernel/btf/vmlinux").exists();
    checks.push(check(
        "BTF",
        btf,
        false,
        if btf {
            "/sys/kernel/btf/vmlinux"
        } else {
            "absent"
        },
        "without it: no dispatch or block attribution (member offsets come from BTF), and io_getevents takes an entry program more",
    ));
    let mount = tracefs::ensure_mounted();
    checks.push(check(
        "tracefs",
        mount.is_ok(),
        true,
        match &mount {
            Ok(()) => tracefs::TRACEFS.to_owned(),
            // The message says what to do.
            Err(e) => e.to_string(),
        },
        "",
    ));
    if mount.is_err() {
        // Unreadable tracefs hides every tracepoint: the kernel config is not to blame.
        checks.push(check(
            "tracepoints",
            false,
            true,
            "not checked without tracefs",
            "",
        ));
    }
    for probe in PROBES.iter().filter(|_| mount.is_ok()) {
        let ok = tracefs::tracepoint_exists(probe.group, probe.program);
        checks.push(check(
            format!("tracepoint {}:{}", probe.group, probe.program),
            ok,
            probe.required,
            if ok {
                "present"
            } else if probe.required {
                "absent"
            } else {
                "absent (optional, skipped)"
            },
            "needs CONFIG_FTRACE_SYSCALLS",
        ));
    }
    let privileged = missing.is_empty();
    let probe_program = |ty: ProgramType| {
        if privileged {
            supported(is_program_supported(ty))
        } else {
            (false, "not probed without privileges".into())
        }
    };
    let (ok, detail) = probe_program(ProgramType::TracePoint);
    checks.push(check(
        "tracepoint programs",
        ok,
        true,
        detail,
        "aio-trace is built on tracepoints",
    ));
    let (ok, detail) = probe_program(ProgramType::RawTracePoint);
    checks.push(check(
        "raw tracepoint programs",
        ok,
        false,
        detail,
        "optional",
    ));
    let (ok, detail) = probe_program(ProgramType::Tracing);
    checks.push(check(
        "tracing programs (fentry/fexit)",
        ok,
        false,
        detail,
        "not used: aio-trace needs no fentry",
    ));
    let kprobes = kprobes_configured();
    checks.push(check(
        "kprobes",
        kprobes == Some(true),
        false,
        match kprobes {
            Some(true) => "configured",
            Some(false) => "CONFIG_KPROBES is not set",
            None => "unknown (no /proc/config.gz)",
        },
        "not used: aio-trace needs no kprobes",
    ));
    let (ok, detail) = if privileged {
        supported(is_map_supported(MapType::RingBuf))
    } else {
        (false, "not probed without privileges".into())
    };
    checks.push(check(
        "ring buffer maps",
        ok,
        true,
        detail,
        "needs Linux 5.8+",
    ));
    let (ok, detail) = if privileged {
        supported(is_helper_supported(
            ProgramType::TracePoint,
            BpfHelper::BPF_FUNC_loop,
        ))
    } else {
        (false, "not probed without privileges".into())
    };
    checks.push(check(
        "bpf_loop helper",
        ok,
        true,
        detail,
        "needs Linux 5.17+: walks iocb and iovec arrays",
    ));
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: valid out-pointer.
    unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut limit) };
    let memlock = if limit.rlim_cur == libc::RLIM_INFINITY {
        "unlimited".to_owned()
    } else {
        format!("{} KiB", limit.rlim_cur / 1024)
    };
    checks.push(check(
        "RLIMIT_MEMLOCK",
        true,
        false,
        memlock,
        "harmless on 5.11+: BPF memory is charged to the memory cgroup",
    ));
    checks
}

/// The table, ✓/✗ per line with advice where something is missing.
pub fn render(checks: &[Check]) -> String {
    let width = checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
    let mut out = String::new();
    for c in checks {
        let mark = if c.ok { "✓" } else { "✗" };
        out.push_str(&format!("{mark} {:<width$}  {}", c.name, c.detail));
        if !c.ok && !c.advice.is_empty() {
            out.push_str(&format!("  — {}", c.advice));
        }
        out.push('\n');
    }
    out
}

/// True when every required check passed.
pub fn ready(checks: &[Check]) -> bool {
    checks.iter().all(|c| c.ok || !c.required)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_marks_and_advice_only_for_failures() {
        let checks = [
            check("BTF", true, false, "/sys/kernel/btf/vmlinux", "x"),
            check(
                "kprobes",
                false,
                false,
                "CONFIG_KPROBES is not set",
                "not used",
            ),
        ];
        assert_eq!(
            render(&checks),
            "✓ BTF      /sys/kernel/btf/vmlinux\n✗ kprobes  CONFIG_KPROBES is not set  — not used\n"
        );
        assert!(ready(&checks));
        assert!(!ready(&[check("privileges", false, true, "missing", "")]));
    }
}
