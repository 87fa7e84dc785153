//! `console=` values the kernel has no device for. The kernel skips them silently, and the
//! user who asked for messages on `ttyS1` sees nothing there and does not know why.

/// Warns about `console=` values the kernel has no console for: the user expects messages
/// there and would see nothing. /proc/consoles lists the consoles the kernel registered.
pub fn warn_missing(wanted: &[String]) {
    if wanted.is_empty() {
        return;
    }
    let registered = std::fs::read_to_string("/proc/consoles").unwrap_or_default();
    if registered.trim().is_empty() {
        return;
    }
    for missing in missing_consoles(wanted, &registered) {
        log::warn!(
            "console={missing} names no console this kernel has (it has: {}); fix console=",
            registered_names(&registered).join(", ")
        );
    }
}

/// The `console=` values whose device is not among the registered consoles.
pub fn missing_consoles<'a>(wanted: &'a [String], proc_consoles: &str) -> Vec<&'a str> {
    let registered = registered_names(proc_consoles);
    wanted
        .iter()
        .map(String::as_str)
        .filter(|value| {
            let name = value.split(',').next().unwrap_or_default();
            // Not device names: `console=null` and the kernel's own uart/earlycon forms.
            let device_like = !name.is_empty() && name != "null" && !name.contains(':');
            device_like && !registered.contains(&name)
        })
        .collect()
}

fn registered_names(proc_consoles: &str) -> Vec<&str> {
    proc_consoles
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consoles_the_kernel_does_not_have() {
        let proc_consoles =
            "ttyS0                -W- (EC p a)    4:64\ntty0                 -WU (E  p  )    4:1\n";
        let wanted: Vec<String> = [
            "tty0",
            "ttyS0,115200n8",
            "ttyS9,115200",
            "null",
            "uart:io,0x3f8",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(missing_consoles(&wanted, proc_consoles), ["ttyS9,115200"]);
    }
}
