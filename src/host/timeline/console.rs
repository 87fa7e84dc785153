//! A timeline read from a console log or `dmesg` instead of the file: baton's own log lines
//! carry the kernel's timestamps, and the lines that end a step say how long it took
//! (`loaded ext4 in 12 ms`, `root ... is vda ... (after 23 ms)`). Coarser than the file
//! (milliseconds, and no thread for a module), but it needs nothing from the booted system.

use crate::timeline::{Event, Kind, MAX_EVENTS};

/// The events in a log's baton lines, in the order they appear. Lines of anything else are
/// skipped; so is a line longer than a log record can be.
pub fn parse(log: &str) -> Vec<Event> {
    let mut events = Vec::new();
    for line in log.lines() {
        if events.len() >= MAX_EVENTS {
            break;
        }
        if line.len() > 4096 {
            continue;
        }
        let Some((at_us, message)) = baton_line(line) else {
            continue;
        };
        let point = |name: &str| Event {
            start_us: at_us,
            end_us: at_us,
            lane: 0,
            kind: Kind::Mark,
            name: name.to_owned(),
        };
        let lasted = |name: &str, kind: Kind, ms: u64| Event {
            start_us: at_us.saturating_sub(ms * 1000),
            end_us: at_us,
            lane: 0,
            kind,
            name: name.to_owned(),
        };
        if message.starts_with("baton ") && message.contains(" started at ") {
            events.push(point("start"));
        } else if let Some(rest) = message.strip_prefix("loaded ") {
            // "loaded NAME in N ms (why)"; "loaded N modules: ..." is the summary.
            let mut words = rest.split(' ');
            if let (Some(name), Some("in"), Some(ms), Some("ms")) =
                (words.next(), words.next(), words.next(), words.next())
            {
                if let Ok(ms) = ms.parse() {
                    events.push(lasted(name, Kind::Module, ms));
                }
            }
        } else if message.starts_with("root ") {
            if let Some(ms) = after_ms(message) {
                events.push(lasted("root_search", Kind::Phase, ms));
            }
        } else if message.starts_with("mounted root ") {
            events.push(point("root_mounted"));
        } else if message.starts_with("switching to ") {
            events.push(point("switch"));
        } else if message.starts_with("freed the initramfs") {
            events.push(point("initramfs_freed"));
        } else if message.starts_with("running ") && message.contains(" after boot") {
            events.push(point("exec"));
        }
    }
    // A step is logged when it ends: in the order they began, as the file has them.
    events.sort_by_key(|e| (e.start_us, e.end_us));
    events
}

/// `[   2.671805] baton: MESSAGE`, possibly after a prefix (a test's marker, a log
/// collector's): the timestamp in microseconds and the message.
fn baton_line(line: &str) -> Option<(u64, &str)> {
    let open = line.find('[')?;
    let rest = line.get(open + 1..)?;
    let close = rest.find(']')?;
    let stamp = rest.get(..close)?.trim();
    let message = rest
        .get(close + 1..)?
        .trim_start()
        .strip_prefix("baton: ")?;
    let (secs, frac) = stamp.split_once('.')?;
    let secs: u64 = secs.parse().ok()?;
    // printk prints six digits of microseconds.
    let micros: u64 = format!("{frac:0<6}").get(..6)?.parse().ok()?;
    Some((secs.checked_mul(1_000_000)?.checked_add(micros)?, message))
}

/// The N of a trailing `(after N ms)`.
fn after_ms(message: &str) -> Option<u64> {
    let start = message.rfind("(after ")? + "(after ".len();
    let rest = message.get(start..)?;
    rest.strip_suffix(" ms)")?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_from_a_console_log() {
        let log = "\
[    1.401000] Run /init as init process
[    1.420000] baton: baton 0.1.0 started at 1.42 s after boot
[    1.800000] baton: loaded virtio_pci in 110 ms (for pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00)
BATON-DMESG [    1.930000] baton: loaded ext4 in 130 ms (requested)
[    1.950000] baton: root /dev/vda is vda (254:0) ext4 (after 40 ms)
[    1.960000] baton: mounted root /dev/vda (ext4, ro) on /sysroot
[    1.961000] baton: loaded 11 modules: a b c
[    1.962000] baton: switching to /sysroot, then running /sbin/init
[    1.980000] baton: freed the initramfs: 50 entries removed
[    1.990000] baton: running /sbin/init at 1.99 s after boot
garbage [ not a stamp ] baton: nothing
";
        let events = parse(log);
        let names: Vec<&str> = events.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "start",
                "virtio_pci",
                "ext4",
                "root_search",
                "root_mounted",
                "switch",
                "initramfs_freed",
                "exec"
            ]
        );
        assert_eq!(events[1].start_us, 1_690_000);
        assert_eq!(events[1].kind, Kind::Module);
        assert_eq!(events[3].start_us, 1_910_000);
        assert_eq!(events[7].start_us, 1_990_000);
    }

    #[test]
    fn odd_lines_are_skipped() {
        for line in [
            "[",
            "[]",
            "[x.y] baton: loaded a in 1 ms",
            "[1.2] baton:",
            "][",
        ] {
            assert!(parse(line).is_empty(), "{line}");
        }
        assert_eq!(
            parse("[5] baton: switching to /sysroot").len(),
            0,
            "no fraction"
        );
    }
}
