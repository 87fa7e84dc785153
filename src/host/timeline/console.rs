//! A timeline read from a console log or `dmesg` instead of the file: baton's own log lines
//! carry the kernel's timestamps, and the lines that end a step say how long it took
//! (`loaded ext4 in 12 ms on thread 2`, `root ... is vda ... (after 23 ms)`). Coarser than
//! the file (milliseconds), but it needs nothing from the booted system, and it has the
//! kernel's own milestones on the same clock: when it ran `/init`, and the real init's
//! first line (a `NAME[1]:` line, as systemd's are).

use crate::timeline::{Event, Kind, MAX_EVENTS};

/// The events in a log's baton lines, in the order they appear. Lines of anything else are
/// skipped; so is a line longer than a log record can be.
pub fn parse(log: &str) -> Vec<Event> {
    let mut events: Vec<Event> = Vec::new();
    for line in log.lines() {
        if events.len() >= MAX_EVENTS {
            break;
        }
        if line.len() > 4096 {
            continue;
        }
        let Some((at_us, text)) = kernel_line(line) else {
            continue;
        };
        if let Some(name) = milestone(text, events.iter().any(|e| e.name == "exec")) {
            if !events.iter().any(|e| e.name == name) {
                events.push(Event {
                    start_us: at_us,
                    end_us: at_us,
                    lane: 0,
                    kind: Kind::Mark,
                    name,
                });
            }
            continue;
        }
        let Some(message) = text.strip_prefix("baton: ") else {
            continue;
        };
        let point = |name: &str| Event {
            start_us: at_us,
            end_us: at_us,
            lane: 0,
            kind: Kind::Mark,
            name: name.to_owned(),
        };
        let lasted = |name: &str, kind: Kind, ms: u64, lane: u32| Event {
            start_us: at_us.saturating_sub(ms * 1000),
            end_us: at_us,
            lane,
            kind,
            name: name.to_owned(),
        };
        if message.starts_with("baton ") && message.contains(" started at ") {
            events.push(point("start"));
        } else if let Some(rest) = message.strip_prefix("loaded ") {
            // "loaded NAME in N ms [on thread T] (why)"; "loaded N modules: ..." is the
            // summary.
            let mut words = rest.split(' ');
            if let (Some(name), Some("in"), Some(ms), Some("ms")) =
                (words.next(), words.next(), words.next(), words.next())
            {
                let lane = match (words.next(), words.next(), words.next()) {
                    (Some("on"), Some("thread"), Some(n)) => n.parse().unwrap_or(0),
                    _ => 0,
                };
                if let Ok(ms) = ms.parse() {
                    events.push(lasted(name, Kind::Module, ms, lane));
                }
            }
        } else if message.starts_with("root ") {
            if let Some(ms) = after_ms(message) {
                events.push(lasted("root_search", Kind::Phase, ms, 0));
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
    // A console log can hold each line twice: as the kernel printed it, and again in a
    // copy of dmesg (a test root prints one).
    events.dedup();
    events
}

/// The kernel's milestones: it runs `/init` (its line), and the real init writes its first
/// line (tagged `NAME[1]:`, as systemd's are), once baton has handed over.
fn milestone(text: &str, handed_over: bool) -> Option<String> {
    if text.starts_with("Run /init as init process") {
        return Some("Run /init".to_owned());
    }
    let (tag, _) = text.split_once("[1]: ")?;
    let plain = handed_over
        && !tag.is_empty()
        && tag.len() <= 32
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    plain.then(|| format!("{tag}[1]"))
}

/// `[   2.671805] MESSAGE`, possibly after a prefix (a test's marker, a log collector's):
/// the timestamp in microseconds and the message.
fn kernel_line(line: &str) -> Option<(u64, &str)> {
    let open = line.find('[')?;
    let rest = line.get(open + 1..)?;
    let close = rest.find(']')?;
    let stamp = rest.get(..close)?.trim();
    let message = rest.get(close + 1..)?.trim_start();
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
[    1.800000] baton: loaded virtio_pci in 110 ms on thread 2 (for pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00)
[    1.810000] systemd-udevd[1]: not after the hand-over
BATON-DMESG [    1.930000] baton: loaded ext4 in 130 ms (requested)
[    1.930000] baton: loaded ext4 in 130 ms (requested)
[    1.950000] baton: root /dev/vda is vda (254:0) ext4 (after 40 ms)
[    1.960000] baton: mounted root /dev/vda (ext4, ro) on /sysroot
[    1.961000] baton: loaded 11 modules: a b c
[    1.962000] baton: switching to /sysroot, then running /sbin/init
[    1.980000] baton: freed the initramfs: 50 entries removed
[    1.990000] baton: running /sbin/init at 1.99 s after boot
[    2.100000] systemd[1]: systemd 252 running in system mode
[    2.200000] systemd[1]: a second line
garbage [ not a stamp ] baton: nothing
";
        let events = parse(log);
        let names: Vec<&str> = events.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "Run /init",
                "start",
                "virtio_pci",
                "ext4",
                "root_search",
                "root_mounted",
                "switch",
                "initramfs_freed",
                "exec",
                "systemd[1]"
            ]
        );
        assert_eq!(events[0].start_us, 1_401_000);
        assert_eq!(events[2].start_us, 1_690_000);
        assert_eq!(events[2].kind, Kind::Module);
        assert_eq!((events[2].lane, events[3].lane), (2, 0));
        assert_eq!(events[4].start_us, 1_910_000);
        assert_eq!(events[8].start_us, 1_990_000);
        assert_eq!(events[9].start_us, 2_100_000);
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
