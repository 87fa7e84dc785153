//! A timeline shown to people: a table for the terminal and an SVG to look at, drawn as
//! `systemd-analyze plot` draws a boot: a row per step and module, a millisecond axis with
//! grid lines, module bars coloured by the thread that loaded them, instants (baton's, the
//! kernel's `Run /init`, the real init's first line) as lines across with their labels
//! stacked where they would print over each other.

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

/// The plot's width for the whole span, in px.
const PLOT: f64 = 1000.0;
/// Room on the right for the labels of bars that end near the last moment.
const RIGHT: f64 = 260.0;
const LEFT: f64 = 16.0;
const ROW: f64 = 18.0;
/// A header line: the title, the axis, each line of instant labels.
const LINE: f64 = 15.0;
/// A character's width at the font size used, rounded up: labels are placed by it.
const CHAR: f64 = 6.6;
const FONT: f64 = 11.0;

/// Steps; then each module-loading thread's colour (lane 0 is PID 1's own thread).
const STEP_COLOUR: &str = "#7a9cc6";
const THREAD_COLOURS: &[&str] = &[
    "#e09a3e", "#6bb36b", "#a57fc8", "#d8706a", "#45b0a5", "#c4aa52", "#5f93d6", "#b07a90",
];
const MARK_COLOUR: &str = "#c0392b";
const KERNEL_COLOUR: &str = "#555";

/// A piece of text on the drawing and the box it takes.
#[derive(Debug, Clone)]
struct Label {
    x: f64,
    y: f64,
    /// The box: left, top, right, bottom.
    area: (f64, f64, f64, f64),
    anchor_end: bool,
    text: String,
    colour: &'static str,
}

impl Label {
    /// Text whose baseline starts at (x, y), or ends there when `anchor_end`.
    fn new(x: f64, y: f64, text: String, anchor_end: bool, colour: &'static str) -> Label {
        let width = text.chars().count() as f64 * CHAR;
        let left = if anchor_end { x - width } else { x };
        Label {
            x,
            y,
            area: (left, y - FONT, left + width, y + 3.0),
            anchor_end,
            text,
            colour,
        }
    }

    fn overlaps(&self, other: &Label) -> bool {
        let (a, b) = (self.area, other.area);
        a.0 < b.2 && b.0 < a.2 && a.1 < b.3 && b.1 < a.3
    }
}

/// Everything placed, before it is written out: the test reads the labels' boxes.
struct Drawing {
    width: f64,
    height: f64,
    shapes: String,
    labels: Vec<Label>,
}

/// A tick step for `span_ms`: 1, 2 or 5 times a power of ten, at most 12 ticks.
fn tick_step(span_ms: f64) -> f64 {
    let mut step = 1.0;
    for _ in 0..12 {
        for factor in [1.0, 2.0, 5.0] {
            if span_ms / (step * factor) <= 12.0 {
                return step * factor;
            }
        }
        step *= 10.0;
    }
    step
}

/// Instants' labels over the plot, each on the first line where it clears the one before it:
/// marks a few ms apart (root_mounted, switch, exec) stack instead of printing over each
/// other. Returns (mark, line) pairs and the number of lines.
fn mark_lines(marks: &[(f64, String)]) -> (Vec<usize>, usize) {
    let mut ends: Vec<f64> = Vec::new();
    let mut lines = Vec::new();
    for (x, name) in marks {
        let width = name.chars().count() as f64 * CHAR + 6.0;
        let line = match ends.iter().position(|&end| end < *x) {
            Some(line) => line,
            None => {
                ends.push(f64::MIN);
                ends.len() - 1
            }
        };
        if let Some(end) = ends.get_mut(line) {
            *end = x + 3.0 + width;
        }
        lines.push(line);
    }
    (lines, ends.len())
}

fn lane_colour(lane: u32) -> &'static str {
    THREAD_COLOURS
        .get(lane as usize % THREAD_COLOURS.len())
        .copied()
        .unwrap_or(STEP_COLOUR)
}

/// Kernel milestones (from a console log) are told apart from baton's own instants.
fn is_kernel_mark(name: &str) -> bool {
    name == "Run /init" || name.ends_with("[1]")
}

/// Where time is on the drawing: the first moment at `LEFT`, the span over `PLOT`.
#[derive(Clone, Copy)]
struct Scale {
    first: u64,
    span_us: f64,
}

impl Scale {
    fn x(self, us: u64) -> f64 {
        LEFT + us.saturating_sub(self.first) as f64 / self.span_us * PLOT
    }
}

fn place(events: &[Event]) -> Drawing {
    let first = events.iter().map(|e| e.start_us).min().unwrap_or(0);
    let last = events.iter().map(|e| e.end_us).max().unwrap_or(first);
    let scale = Scale {
        first,
        span_us: last.saturating_sub(first).max(1) as f64,
    };
    let mut marks: Vec<&Event> = events.iter().filter(|e| e.kind == Kind::Mark).collect();
    marks.sort_by_key(|e| e.start_us);
    let mut bars: Vec<&Event> = events.iter().filter(|e| e.kind != Kind::Mark).collect();
    bars.sort_by_key(|e| (e.start_us, e.end_us));
    let placed: Vec<(f64, String)> = marks
        .iter()
        .map(|e| (scale.x(e.start_us), e.name.clone()))
        .collect();
    let (mark_line, mark_count) = mark_lines(&placed);

    let marks_top = LINE + 6.0;
    let axis_y = marks_top + mark_count as f64 * LINE + LINE;
    let rows_top = axis_y + 6.0;
    let rows_bottom = rows_top + bars.len() as f64 * ROW;
    let mut d = Drawing {
        width: LEFT + PLOT + RIGHT,
        height: 0.0,
        shapes: String::new(),
        labels: Vec::new(),
    };
    d.labels.push(Label::new(
        LEFT,
        LINE,
        format!(
            "baton: {:.3} s to {:.3} s after boot ({:.1} ms)",
            first as f64 / 1e6,
            last as f64 / 1e6,
            scale.span_us / 1000.0
        ),
        false,
        KERNEL_COLOUR,
    ));
    d.axis(scale, axis_y, rows_bottom);
    for ((at, name), line) in placed.iter().zip(&mark_line) {
        let y = marks_top + (*line as f64 + 1.0) * LINE - 3.0;
        d.mark(*at, name, y, rows_bottom);
    }
    for (row, e) in bars.iter().enumerate() {
        d.bar(scale, e, rows_top + row as f64 * ROW);
    }
    d.legend(&bars, rows_bottom + LINE + 4.0);
    d
}

impl Drawing {
    /// A labelled tick and a grid line every round number of ms.
    fn axis(&mut self, scale: Scale, axis_y: f64, rows_bottom: f64) {
        let span_ms = scale.span_us / 1000.0;
        let step = tick_step(span_ms);
        let mut tick = 0.0;
        while tick <= span_ms + 1e-9 {
            let at = LEFT + tick / span_ms * PLOT;
            let _ = writeln!(
                self.shapes,
                r##"<line x1="{at:.1}" x2="{at:.1}" y1="{axis_y:.1}" y2="{rows_bottom:.1}" stroke="#e4e4e4"/>"##
            );
            let text = format!("{tick} ms");
            let half = text.chars().count() as f64 * CHAR / 2.0;
            let mut label = Label::new(at - half, axis_y - 3.0, text, false, KERNEL_COLOUR);
            // The last tick's label stays inside the drawing.
            if label.area.2 > self.width {
                let text = label.text;
                label = Label::new(self.width - 2.0, axis_y - 3.0, text, true, KERNEL_COLOUR);
            }
            if !self.labels.iter().any(|l| l.overlaps(&label)) {
                self.labels.push(label);
            }
            tick += step;
        }
    }

    /// An instant: a dashed line through every row, its label on its line of the header.
    fn mark(&mut self, at: f64, name: &str, y: f64, rows_bottom: f64) {
        let colour = if is_kernel_mark(name) {
            KERNEL_COLOUR
        } else {
            MARK_COLOUR
        };
        let _ = writeln!(
            self.shapes,
            r##"<line x1="{at:.1}" x2="{at:.1}" y1="{:.1}" y2="{rows_bottom:.1}" stroke="{colour}" stroke-dasharray="3,2"/>"##,
            y + 3.0
        );
        self.labels
            .push(Label::new(at + 3.0, y, name.to_owned(), false, colour));
    }

    /// A step's or module's row: its bar, and its name and length beside it (left of the
    /// bar when the right has no room).
    fn bar(&mut self, scale: Scale, e: &Event, top: f64) {
        let (left, right) = (scale.x(e.start_us), scale.x(e.end_us));
        let width = (right - left).max(1.0);
        let colour = match e.kind {
            Kind::Module => lane_colour(e.lane),
            _ => STEP_COLOUR,
        };
        let title = format!(
            "{} {}: {:.1} ms, from {:.3} s{}",
            e.kind_name(),
            escape(&e.name),
            e.duration_us() as f64 / 1000.0,
            e.start_us as f64 / 1e6,
            match (e.kind, e.lane) {
                (Kind::Module, 0) => ", PID 1's thread".to_owned(),
                (Kind::Module, n) => format!(", thread {n}"),
                _ => String::new(),
            }
        );
        let _ = writeln!(
            self.shapes,
            r#"<rect x="{left:.1}" y="{:.1}" width="{width:.1}" height="{:.1}" fill="{colour}"><title>{title}</title></rect>"#,
            top + 2.0,
            ROW - 4.0
        );
        let text = format!("{} {:.1} ms", e.name, e.duration_us() as f64 / 1000.0);
        let text_width = text.chars().count() as f64 * CHAR;
        let baseline = top + ROW - 5.0;
        let label = if left + width + 4.0 + text_width <= self.width {
            Label::new(left + width + 4.0, baseline, text, false, KERNEL_COLOUR)
        } else {
            Label::new(left - 4.0, baseline, text, true, KERNEL_COLOUR)
        };
        self.labels.push(label);
    }

    /// What the colours are: steps, each thread that loaded a module, the instants.
    fn legend(&mut self, bars: &[&Event], y: f64) {
        let mut lanes: Vec<u32> = bars
            .iter()
            .filter(|e| e.kind == Kind::Module)
            .map(|e| e.lane)
            .collect();
        lanes.sort_unstable();
        lanes.dedup();
        let mut keys = vec![("step".to_owned(), STEP_COLOUR)];
        for lane in lanes {
            let name = match lane {
                0 => "module, PID 1's thread".to_owned(),
                n => format!("module, thread {n}"),
            };
            keys.push((name, lane_colour(lane)));
        }
        keys.push(("baton's instant".to_owned(), MARK_COLOUR));
        keys.push(("the kernel's, the real init's".to_owned(), KERNEL_COLOUR));
        let mut at = LEFT;
        for (name, colour) in keys {
            let _ = writeln!(
                self.shapes,
                r#"<rect x="{at:.1}" y="{:.1}" width="10" height="10" fill="{colour}"/>"#,
                y - 9.0
            );
            let label = Label::new(at + 14.0, y, name, false, KERNEL_COLOUR);
            at = label.area.2 + 16.0;
            self.labels.push(label);
        }
        self.width = self.width.max(at);
        self.height = y + 10.0;
    }
}

/// The SVG document: one row per step and module as `systemd-analyze plot` draws a boot,
/// on a millisecond axis with grid lines, instants as dashed lines labelled above the rows.
pub fn svg(events: &[Event]) -> String {
    let d = place(events);
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{:.0}" height="{:.0}" font-family="sans-serif" font-size="{FONT}">"#,
        d.width, d.height
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    out.push_str(&d.shapes);
    for l in &d.labels {
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}"{} fill="{}">{}</text>"#,
            l.x,
            l.y,
            if l.anchor_end {
                r#" text-anchor="end""#
            } else {
                ""
            },
            l.colour,
            escape(&l.text)
        );
    }
    out.push_str("</svg>\n");
    out
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
    fn the_svg_has_a_row_per_step_and_module_and_escapes_names() {
        let s = svg(&events());
        assert!(s.starts_with("<svg "));
        assert!(s.trim_end().ends_with("</svg>"));
        assert!(
            s.contains(">module, thread 1<") && s.contains(">module, thread 2<"),
            "{s}"
        );
        assert!(s.contains("ext4&lt;&amp;&gt;") && !s.contains("ext4<&>"));
        // A bar per step and module, and a square per legend key.
        assert_eq!(s.matches("<rect").count(), 1 + 3 + 5);
        assert!(s.contains(">0 ms<") && s.contains(">100 ms<"), "{s}");
        // An empty timeline still draws.
        assert!(svg(&[]).contains("</svg>"));
    }

    /// A boot as a console log shows one: modules side by side on two threads, instants
    /// a few ms apart, the kernel's milestones.
    fn crowded() -> Vec<Event> {
        let e = |s: u64, end: u64, lane, kind, name: &str| Event {
            start_us: 3_000_000 + s * 1000,
            end_us: 3_000_000 + end * 1000,
            lane,
            kind,
            name: name.into(),
        };
        let mut events = vec![
            e(0, 0, 0, Kind::Mark, "Run /init"),
            e(25, 25, 0, Kind::Mark, "start"),
            e(30, 530, 0, Kind::Phase, "root_search"),
        ];
        for i in 0..20u64 {
            let name = format!("module_with_a_long_name_{i}");
            events.push(e(
                40 + i * 20,
                90 + i * 20,
                1 + (i % 2) as u32,
                Kind::Module,
                &name,
            ));
        }
        for (at, name) in [
            (930, "root_mounted"),
            (938, "switch"),
            (953, "exec"),
            (990, "systemd[1]"),
            (2172, "initramfs_freed"),
        ] {
            events.push(e(at, at, 0, Kind::Mark, name));
        }
        events
    }

    #[test]
    fn no_two_labels_overlap() {
        for events in [crowded(), events(), Vec::new()] {
            let d = place(&events);
            for (i, a) in d.labels.iter().enumerate() {
                for b in d.labels.iter().skip(i + 1) {
                    assert!(!a.overlaps(b), "{:?} overlaps {:?}", a, b);
                }
                assert!(
                    a.area.0 >= 0.0 && a.area.2 <= d.width,
                    "{a:?} outside {}",
                    d.width
                );
                assert!(
                    a.area.1 >= 0.0 && a.area.3 <= d.height,
                    "{a:?} outside {}",
                    d.height
                );
            }
        }
        let crowded = place(&crowded());
        // Every instant and every row is named: nothing was dropped to avoid a collision.
        for name in ["root_mounted", "switch", "exec", "Run /init", "systemd[1]"] {
            assert!(crowded.labels.iter().any(|l| l.text == name), "{name}");
        }
        assert_eq!(
            crowded
                .labels
                .iter()
                .filter(|l| l.text.contains(" ms") && l.text.starts_with("module_"))
                .count(),
            20
        );
    }

    #[test]
    fn ticks_are_round_numbers() {
        assert_eq!(tick_step(1000.0), 100.0);
        assert_eq!(tick_step(2172.0), 200.0);
        assert_eq!(tick_step(50.0), 5.0);
        assert_eq!(tick_step(0.001), 1.0);
    }
}
