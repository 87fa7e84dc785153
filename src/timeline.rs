//! The timeline's model: when each step of the boot began and ended. Recorded by the init as it
//! goes (`init::timeline`), left for the booted system in `/run/baton/timeline` (the `/run`
//! tmpfs is handed over) with one summary line in dmesg, and read back on the host by `baton
//! timeline` (`host::timeline`), which prints it as a table or draws it as an SVG.
//!
//! Times are `CLOCK_MONOTONIC` microseconds, the clock of the kernel's log timestamps and of
//! `/proc/uptime`, so the file lines up with dmesg. The file format is text, one event per
//! line after a versioned header:
//!
//! ```text
//! # baton timeline 1
//! START_US END_US LANE KIND NAME
//! ```
//!
//! KIND is `phase` (a step of the boot, lane 0), `module` (one module's load, on the lane of
//! the thread that loaded it) or `mark` (an instant: START = END).

pub const PATH: &str = "/run/baton/timeline";
const HEADER: &str = "# baton timeline 1";
/// Bounds on what a timeline may hold: a boot loads a few hundred modules at most.
pub const MAX_EVENTS: usize = 4096;
const MAX_NAME: usize = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Phase,
    Module,
    Mark,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Phase => "phase",
            Kind::Module => "module",
            Kind::Mark => "mark",
        }
    }

    fn parse(s: &str) -> Option<Kind> {
        match s {
            "phase" => Some(Kind::Phase),
            "module" => Some(Kind::Module),
            "mark" => Some(Kind::Mark),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub start_us: u64,
    pub end_us: u64,
    pub lane: u32,
    pub kind: Kind,
    pub name: String,
}

impl Event {
    pub fn duration_us(&self) -> u64 {
        self.end_us.saturating_sub(self.start_us)
    }
}

/// The file's text.
pub fn render(events: &[Event]) -> String {
    let mut out = format!("{HEADER}\n");
    for e in events {
        // Names are module and step names: no whitespace, but be sure.
        let name: String = e
            .name
            .chars()
            .take(MAX_NAME)
            .map(|c| if c.is_whitespace() { '_' } else { c })
            .collect();
        out.push_str(&format!(
            "{} {} {} {} {}\n",
            e.start_us,
            e.end_us,
            e.lane,
            e.kind.name(),
            name
        ));
    }
    out
}

/// Reads a timeline file back. Pure and bounded: at most [`MAX_EVENTS`] events.
pub fn parse(text: &str) -> Result<Vec<Event>, String> {
    let mut lines = text.lines();
    if lines.next().map(str::trim_end) != Some(HEADER) {
        return Err(format!(
            "not a baton timeline (its first line is not {HEADER:?})"
        ));
    }
    let mut events = Vec::new();
    for (n, line) in lines.enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        if events.len() >= MAX_EVENTS {
            return Err(format!("more than {MAX_EVENTS} events"));
        }
        let bad = || {
            format!(
                "line {}: expected START END LANE KIND NAME: {line:?}",
                n + 2
            )
        };
        let mut fields = line.split_whitespace();
        let mut number = || fields.next().and_then(|f| f.parse::<u64>().ok());
        let (Some(start_us), Some(end_us), Some(lane)) = (number(), number(), number()) else {
            return Err(bad());
        };
        let kind = fields.next().and_then(Kind::parse).ok_or_else(bad)?;
        let name = fields.next().ok_or_else(bad)?;
        if end_us < start_us || name.len() > MAX_NAME * 4 {
            return Err(bad());
        }
        events.push(Event {
            start_us,
            end_us,
            lane: u32::try_from(lane).map_err(|_| bad())?,
            kind,
            name: name.to_owned(),
        });
    }
    Ok(events)
}

/// The one line for dmesg: each phase's length, the modules, and when the real init ran.
pub fn summary(events: &[Event]) -> String {
    let mut parts = Vec::new();
    for e in events.iter().filter(|e| e.kind == Kind::Phase) {
        parts.push(format!("{} {}", e.name, millis(e.duration_us())));
    }
    let modules: Vec<&Event> = events.iter().filter(|e| e.kind == Kind::Module).collect();
    if !modules.is_empty() {
        let lanes = modules
            .iter()
            .map(|e| e.lane)
            .collect::<std::collections::BTreeSet<_>>()
            .len();
        let busy: u64 = modules.iter().map(|e| e.duration_us()).sum();
        parts.push(format!(
            "{} modules ({} of loading on {lanes} thread{})",
            modules.len(),
            millis(busy),
            if lanes == 1 { "" } else { "s" }
        ));
    }
    let first = events.iter().map(|e| e.start_us).min().unwrap_or(0);
    if let Some(exec) = events
        .iter()
        .find(|e| e.kind == Kind::Mark && e.name == "exec")
    {
        parts.push(format!(
            "init at {}, {} after baton started",
            seconds(exec.start_us),
            millis(exec.start_us.saturating_sub(first))
        ));
    }
    format!("timeline: {}; details in {PATH}", parts.join(", "))
}

/// Milliseconds for the log, without floating point (which would cost the init its
/// formatting code): one decimal below 10 ms.
fn millis(us: u64) -> String {
    if us >= 10_000 {
        format!("{} ms", us / 1000)
    } else {
        format!("{}.{} ms", us / 1000, us % 1000 / 100)
    }
}

/// Seconds with three decimals, likewise.
fn seconds(us: u64) -> String {
    format!("{}.{:03} s", us / 1_000_000, us % 1_000_000 / 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(start_us: u64, end_us: u64, lane: u32, kind: Kind, name: &str) -> Event {
        Event {
            start_us,
            end_us,
            lane,
            kind,
            name: name.into(),
        }
    }

    #[test]
    fn the_file_reads_back_as_written() {
        let events = vec![
            event(1_000_000, 1_000_400, 0, Kind::Phase, "mounts"),
            event(1_000_500, 1_120_000, 1, Kind::Module, "virtio_pci"),
            event(1_000_600, 1_030_000, 2, Kind::Module, "ext4"),
            event(1_200_000, 1_200_000, 0, Kind::Mark, "exec"),
        ];
        let text = render(&events);
        assert!(text.starts_with("# baton timeline 1\n1000000 1000400 0 phase mounts\n"));
        assert_eq!(parse(&text).unwrap(), events);
        let line = summary(&events);
        assert_eq!(
            line,
            "timeline: mounts 0.4 ms, 2 modules (148 ms of loading on 2 threads), init at 1.200 s, 200 ms after baton started; details in /run/baton/timeline"
        );
    }

    #[test]
    fn damaged_files_are_errors() {
        assert!(parse("").is_err());
        assert!(parse("# something else\n").is_err());
        assert!(parse("# baton timeline 1\n1 2 0 phase\n").is_err());
        assert!(
            parse("# baton timeline 1\n5 2 0 phase x\n").is_err(),
            "ends before it starts"
        );
        assert!(parse("# baton timeline 1\n1 2 0 nap x\n").is_err());
        assert!(parse("# baton timeline 1\n1 2 99999999999 phase x\n").is_err());
        let many = format!(
            "# baton timeline 1\n{}",
            "1 2 0 mark x\n".repeat(MAX_EVENTS + 1)
        );
        assert!(parse(&many).is_err());
    }

    #[test]
    fn names_with_blanks_stay_one_field() {
        let text = render(&[event(1, 2, 0, Kind::Phase, "root search")]);
        assert_eq!(parse(&text).unwrap()[0].name, "root_search");
    }
}
