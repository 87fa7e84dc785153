//! A timeline shown to people: a table for the terminal and an SVG to look at (steps as
//! bars on the first row, each module-loading thread on a row of its own, instants as
//! lines across).

use crate::timeline::{Event, Kind};
use std::fmt::Write;

/// One line per event: when it began (ms after the first), how long it took, where.
pub fn table(events: &[Event]) -> String {
    let first = events.iter().map(|e| e.start_us).min().unwrap_or(0);
    let mut out = String::from("   start ms    length ms  thread  what\n");
    for e in events {
        let what = match e.kind {
            Kind::Phase => e.name.clone(),
            Kind::Module => format!("module {}", e.name),
            Kind::Mark => format!("-- {}", e.name),
        };
        let _ = writeln!(
            out,
            "{:>10.1} {:>12} {:>7}  {what}",
            e.start_us.saturating_sub(first) as f64 / 1000.0,
            match e.kind {
                Kind::Mark => String::new(),
                _ => format!("{:.1}", e.duration_us() as f64 / 1000.0),
            },
            match e.kind {
                Kind::Module if e.lane > 0 => e.lane.to_string(),
                _ => String::new(),
            },
        );
    }
    let last = events.iter().map(|e| e.end_us).max().unwrap_or(first);
    let _ = writeln!(
        out,
        "{:>10.1} {:>12}           (end; {:.3} s to {:.3} s of uptime)",
        last.saturating_sub(first) as f64 / 1000.0,
        "",
        first as f64 / 1e6,
        last as f64 / 1e6
    );
    out
}

const WIDTH: f64 = 960.0;
const LABEL: f64 = 110.0;
const ROW: f64 = 26.0;
const TOP: f64 = 30.0;

/// The SVG document.
pub fn svg(events: &[Event]) -> String {
    let first = events.iter().map(|e| e.start_us).min().unwrap_or(0);
    let last = events.iter().map(|e| e.end_us).max().unwrap_or(first);
    let span = last.saturating_sub(first).max(1) as f64;
    let x = |us: u64| LABEL + us.saturating_sub(first) as f64 / span * WIDTH;
    // Row 0 holds the steps; module threads follow, in order.
    let mut lanes: Vec<u32> = events
        .iter()
        .filter(|e| e.kind == Kind::Module)
        .map(|e| e.lane)
        .collect();
    lanes.sort_unstable();
    lanes.dedup();
    let row_of = |e: &Event| match e.kind {
        Kind::Module => 1 + lanes.iter().position(|&l| l == e.lane).unwrap_or(0),
        _ => 0,
    };
    let rows = 1 + lanes.len();
    let height = TOP + rows as f64 * ROW + 30.0;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{height}" font-family="sans-serif" font-size="11">"#,
        w = LABEL + WIDTH + 20.0
    );
    let _ = writeln!(
        out,
        r#"<text x="4" y="16" font-size="13">baton: {:.3} s to {:.3} s after boot ({:.1} ms)</text>"#,
        first as f64 / 1e6,
        last as f64 / 1e6,
        span / 1000.0
    );
    for row in 0..rows {
        let y = TOP + row as f64 * ROW;
        let label = match row {
            0 => "boot".to_owned(),
            n => match lanes.get(n - 1) {
                Some(0) | None => "modules".to_owned(),
                Some(lane) => format!("thread {lane}"),
            },
        };
        let _ = writeln!(
            out,
            r##"<text x="4" y="{}">{label}</text><line x1="{LABEL}" x2="{}" y1="{}" y2="{}" stroke="#ddd"/>"##,
            y + 16.0,
            LABEL + WIDTH,
            y + ROW,
            y + ROW
        );
    }
    for e in events {
        let y = TOP + row_of(e) as f64 * ROW;
        draw_event(&mut out, e, y, (x(e.start_us), x(e.end_us)), rows);
    }
    out.push_str("</svg>\n");
    out
}

/// One event on its row `y`, from `left` to `right`: a bar with its name when it fits, or
/// for a mark a line across every row.
fn draw_event(out: &mut String, e: &Event, y: f64, (left, right): (f64, f64), rows: usize) {
    let title = format!(
        "{} {}: {:.1} ms, from {:.3} s",
        e.kind_name(),
        escape(&e.name),
        e.duration_us() as f64 / 1000.0,
        e.start_us as f64 / 1e6
    );
    if e.kind == Kind::Mark {
        let at = left;
        let _ = writeln!(
            out,
            r##"<line x1="{at:.1}" x2="{at:.1}" y1="{TOP}" y2="{}" stroke="#c33"><title>{title}</title></line><text x="{:.1}" y="{}" fill="#c33">{}</text>"##,
            TOP + rows as f64 * ROW,
            at + 2.0,
            TOP + rows as f64 * ROW + 14.0,
            escape(&e.name)
        );
        return;
    }
    let width = (right - left).max(1.0);
    let fill = if e.kind == Kind::Phase {
        "#6a9fd8"
    } else {
        "#8cc084"
    };
    let _ = write!(
        out,
        r#"<rect x="{left:.1}" y="{}" width="{width:.1}" height="{}" fill="{fill}"><title>{title}</title></rect>"#,
        y + 3.0,
        ROW - 6.0
    );
    // A name fits in its bar at about 6 px a character.
    if width > 6.5 * e.name.len() as f64 {
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="{}">{}</text>"#,
            left + 3.0,
            y + 17.0,
            escape(&e.name)
        );
    }
    out.push('\n');
}

impl Event {
    fn kind_name(&self) -> &'static str {
        match self.kind {
            Kind::Phase => "step",
            Kind::Module => "module",
            Kind::Mark => "at",
        }
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events() -> Vec<Event> {
        let e = |s, end, lane, kind, name: &str| Event {
            start_us: s,
            end_us: end,
            lane,
            kind,
            name: name.into(),
        };
        vec![
            e(1_000_000, 1_001_000, 0, Kind::Phase, "mounts"),
            e(1_001_000, 1_101_000, 1, Kind::Module, "virtio_pci"),
            e(1_001_000, 1_051_000, 2, Kind::Module, "ext4<&>"),
            e(1_200_000, 1_200_000, 0, Kind::Mark, "exec"),
        ]
    }

    #[test]
    fn the_table_lists_every_event_from_the_first() {
        let t = table(&events());
        assert!(t.contains("       0.0          1.0          mounts"), "{t}");
        assert!(
            t.contains("       1.0        100.0       1  module virtio_pci"),
            "{t}"
        );
        assert!(
            t.contains("     200.0                       -- exec"),
            "{t}"
        );
        assert!(
            t.contains("     200.0                        (end; 1.000 s to 1.200 s of uptime)"),
            "{t}"
        );
    }

    #[test]
    fn the_svg_has_a_row_per_thread_and_escapes_names() {
        let s = svg(&events());
        assert!(s.starts_with("<svg "));
        assert!(s.trim_end().ends_with("</svg>"));
        assert!(s.contains(">thread 1<") && s.contains(">thread 2<"), "{s}");
        assert!(s.contains("ext4&lt;&amp;&gt;") && !s.contains("ext4<&>"));
        assert_eq!(s.matches("<rect").count(), 3);
        // An empty timeline still draws.
        assert!(svg(&[]).contains("</svg>"));
    }
}
