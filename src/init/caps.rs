//! Dropping capabilities before the real init runs (`run-init -d`, initramfs-tools'
//! `drop_capabilities=`): from the bounding set, so no process can ever regain them; from
//! the inheritable set; and from the sets the kernel gives the programs it starts itself
//! (the usermode helper's `bset` and `inheritable`, in /proc/sys/kernel/usermodehelper/),
//! which would otherwise be a way back in. This is what klibc's run-init does.

use std::fmt;

/// Capability names, by number (include/uapi/linux/capability.h), without the `cap_` prefix.
const NAMES: [&str; 41] = [
    "chown",
    "dac_override",
    "dac_read_search",
    "fowner",
    "fsetid",
    "kill",
    "setgid",
    "setuid",
    "setpcap",
    "linux_immutable",
    "net_bind_service",
    "net_broadcast",
    "net_admin",
    "net_raw",
    "ipc_lock",
    "ipc_owner",
    "sys_module",
    "sys_rawio",
    "sys_chroot",
    "sys_ptrace",
    "sys_pacct",
    "sys_admin",
    "sys_boot",
    "sys_nice",
    "sys_resource",
    "sys_time",
    "sys_tty_config",
    "mknod",
    "lease",
    "audit_write",
    "audit_control",
    "setfcap",
    "mac_override",
    "mac_admin",
    "syslog",
    "wake_alarm",
    "block_suspend",
    "audit_read",
    "perfmon",
    "bpf",
    "checkpoint_restore",
];

/// A name in a `-d` list that is no capability.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownCapability(pub String);

impl fmt::Display for UnknownCapability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown capability: {}", self.0)
    }
}

/// Parses `cap_sys_module,CAP_SYS_RAWIO,sys_boot,cap_16`: names with or without `cap_`,
/// any case, or `cap_N` by number; comma-separated, empty items skipped. The union of what
/// klibc (`CAP_NAME`) and busybox (`name`, `cap_N`) accept. Returns the capability numbers.
pub fn parse_list(list: &str) -> Result<Vec<u32>, UnknownCapability> {
    list.split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(|name| {
            let lower = name.to_ascii_lowercase();
            let bare = lower.strip_prefix("cap_").unwrap_or(&lower);
            let by_number = lower
                .strip_prefix("cap_")
                .and_then(|n| n.parse::<u32>().ok())
                .filter(|&n| (n as usize) < NAMES.len());
            (0u32..)
                .zip(NAMES)
                .find(|(_, known)| *known == bare)
                .map(|(number, _)| number)
                .or(by_number)
                .ok_or_else(|| UnknownCapability(name.to_owned()))
        })
        .collect()
}

/// The name of capability `number`, as the kernel's headers spell it.
pub fn name(number: u32) -> String {
    usize::try_from(number)
        .ok()
        .and_then(|i| NAMES.get(i))
        .map_or_else(|| format!("cap_{number}"), |n| format!("cap_{n}"))
}

/// `bset`/`inheritable` in /proc/sys/kernel/usermodehelper: two 32-bit words, low first,
/// separated by a tab (proc_cap_handler() in kernel/umh.c).
pub fn parse_mask(text: &str) -> Option<u64> {
    let mut words = text.split_whitespace().map(str::parse::<u32>);
    match (words.next(), words.next(), words.next()) {
        (Some(Ok(low)), Some(Ok(high)), None) => Some(u64::from(low) | (u64::from(high) << 32)),
        _ => None,
    }
}

pub fn render_mask(mask: u64) -> String {
    format!("{}\t{}", mask as u32, (mask >> 32) as u32)
}

/// The mask with the bits of `caps` cleared.
pub fn without(mask: u64, caps: &[u32]) -> u64 {
    caps.iter()
        .filter(|&&c| c < 64)
        .fold(mask, |mask, &c| mask & !(1u64 << c))
}

const USERMODEHELPER: [&str; 2] = [
    "/proc/sys/kernel/usermodehelper/bset",
    "/proc/sys/kernel/usermodehelper/inheritable",
];

/// Whether `caps` can all be dropped: each known to the running kernel (`cap_last_cap`),
/// and the usermode helper's sets readable. Checked before the switch, so a failure changes
/// nothing. /proc is looked for where the drop will find it: in `new_root` when the caller
/// moved it there already (initramfs-tools does, before `exec run-init`), else at /proc.
pub fn check(caps: &[u32], new_root: &std::path::Path) -> Result<(), String> {
    if caps.is_empty() {
        return Ok(());
    }
    // The drop happens after the switch, through the /proc in the new root: the caller's
    // own mount there, or ours moved there by the switch. Without a directory there (a
    // symlink is none), /proc is detached instead and the drop would fail with the new
    // root already `/`: too late to refuse.
    if !crate::init::switch::is_real_dir_at(new_root, "proc") {
        return Err(format!(
            "the new root {} has no /proc directory: the switch would detach /proc and the capabilities could not be dropped after it (create /proc in the new root)",
            new_root.display()
        ));
    }
    let moved = new_root.join("proc/sys/kernel/cap_last_cap");
    let proc = if moved.is_file() {
        new_root.join("proc")
    } else {
        std::path::PathBuf::from("/proc")
    };
    let last_path = proc.join("sys/kernel/cap_last_cap");
    let last = std::fs::read_to_string(&last_path)
        .ok()
        .and_then(|t| t.trim().parse::<u32>().ok())
        .ok_or_else(|| format!("cannot read {} (is /proc mounted?)", last_path.display()))?;
    if let Some(&unknown) = caps.iter().find(|&&c| c > last) {
        return Err(format!(
            "this kernel has no {} (its last capability is {})",
            name(unknown),
            name(last)
        ));
    }
    for path in USERMODEHELPER {
        let path = proc.join(path.trim_start_matches("/proc/"));
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        parse_mask(&text).ok_or_else(|| format!("cannot read {}: {text:?}", path.display()))?;
    }
    Ok(())
}

/// Drops `caps` from the bounding set, this process's inheritable set and the usermode
/// helper's sets. Stops at the first failure, naming it: an init that keeps a capability
/// it was meant to lose must not start as if all were well.
pub fn drop_all(caps: &[u32]) -> Result<(), String> {
    if caps.is_empty() {
        return Ok(());
    }
    // klibc's order: the kernel's helpers first (writing their sets needs CAP_SETPCAP and
    // CAP_SYS_MODULE, which this process keeps in its effective set throughout), then the
    // inheritable set, then the bounding set.
    for path in USERMODEHELPER {
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("failed to read {path}: {e}"))?;
        let mask = parse_mask(&text).ok_or_else(|| format!("cannot read {path}: {text:?}"))?;
        std::fs::write(path, format!("{}\n", render_mask(without(mask, caps))))
            .map_err(|e| format!("failed to write {path}: {e}"))?;
    }
    drop_inheritable(caps)?;
    for &cap in caps {
        // SAFETY: prctl with integer arguments only.
        let ret = unsafe {
            libc::prctl(
                libc::PR_CAPBSET_DROP,
                libc::c_ulong::from(cap),
                0 as libc::c_ulong,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
            )
        };
        if ret != 0 {
            return Err(format!(
                "failed to drop {} from the bounding set: {}",
                name(cap),
                nix::errno::Errno::last()
            ));
        }
    }
    Ok(())
}

/// capget/capset, version 3: two 32-bit sets of (effective, permitted, inheritable).
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

fn drop_inheritable(caps: &[u32]) -> Result<(), String> {
    let mut header = CapHeader {
        version: CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: a valid header and room for the two sets version 3 uses.
    if unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) } != 0 {
        return Err(format!(
            "failed to read this process's capabilities: {}",
            nix::errno::Errno::last()
        ));
    }
    let [low, high] = &mut data;
    let inheritable = u64::from(low.inheritable) | (u64::from(high.inheritable) << 32);
    let inheritable = without(inheritable, caps);
    low.inheritable = inheritable as u32;
    high.inheritable = (inheritable >> 32) as u32;
    // SAFETY: as above.
    if unsafe { libc::syscall(libc::SYS_capset, &header, data.as_ptr()) } != 0 {
        return Err(format!(
            "failed to drop capabilities from the inheritable set: {}",
            nix::errno::Errno::last()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_in_any_case_with_or_without_the_prefix() {
        assert_eq!(
            parse_list("cap_sys_module,CAP_SYS_RAWIO,sys_boot,,").unwrap(),
            [16, 17, 22]
        );
        assert_eq!(parse_list("").unwrap(), Vec::<u32>::new());
        assert_eq!(parse_list("checkpoint_restore").unwrap(), [40]);
        assert_eq!(
            parse_list("cap_sys_module,cap_flying").unwrap_err(),
            UnknownCapability("cap_flying".into())
        );
        assert!(parse_list("16").is_err(), "names, or numbers as cap_N");
        assert_eq!(parse_list("cap_16,CAP_40").unwrap(), [16, 40]);
        assert!(parse_list("cap_41").is_err());
        assert_eq!(name(16), "cap_sys_module");
        assert_eq!(name(99), "cap_99");
    }

    #[test]
    fn usermodehelper_masks() {
        let all = "4294967295\t511\n";
        let mask = parse_mask(all).unwrap();
        assert_eq!(mask, 0x1ff_ffff_ffff);
        let dropped = without(mask, &[16, 40]);
        assert_eq!(render_mask(dropped), "4294901759\t255");
        assert_eq!(parse_mask("1 2 3"), None);
        assert_eq!(parse_mask("x 1"), None);
    }

    #[test]
    fn checked_against_the_proc_the_script_moved_into_the_new_root() {
        let root = std::env::temp_dir().join(format!("baton-caps-{}", std::process::id()));
        let sys = root.join("proc/sys/kernel");
        std::fs::create_dir_all(sys.join("usermodehelper")).unwrap();
        std::fs::write(sys.join("cap_last_cap"), "37\n").unwrap();
        for set in ["bset", "inheritable"] {
            std::fs::write(sys.join("usermodehelper").join(set), "4294967295\t63\n").unwrap();
        }
        assert_eq!(check(&[16, 37], &root), Ok(()));
        assert_eq!(
            check(&[38], &root).unwrap_err(),
            "this kernel has no cap_perfmon (its last capability is cap_audit_read)"
        );
        std::fs::write(sys.join("usermodehelper/bset"), "garbage").unwrap();
        assert!(check(&[16], &root)
            .unwrap_err()
            .contains("usermodehelper/bset"));
        assert_eq!(check(&[], &root), Ok(()));
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_new_root_without_proc_is_refused_before_the_switch() {
        let root = std::env::temp_dir().join(format!("baton-caps-noproc-{}", std::process::id()));
        std::fs::create_dir_all(&root).unwrap();
        let err = check(&[16], &root).unwrap_err();
        assert!(err.contains("has no /proc directory"), "{err}");
        // A symlink is no directory to move a mount to.
        std::os::unix::fs::symlink("/proc", root.join("proc")).unwrap();
        assert!(check(&[16], &root).is_err());
        std::fs::remove_file(root.join("proc")).unwrap();
        std::fs::create_dir(root.join("proc")).unwrap();
        assert_eq!(check(&[16], &root), Ok(()), "checked against this /proc");
        std::fs::remove_dir_all(&root).unwrap();
    }
}
