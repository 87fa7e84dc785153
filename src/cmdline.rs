//! The kernel command line, parsed the way the kernel itself splits it.
//!
//! Splitting follows `next_arg()` in the kernel's `lib/cmdline.c`: words are separated by
//! whitespace outside double quotes, a quote anywhere toggles quoting, and one pair of quotes
//! around a value (`key="a b"`) or a whole word is stripped. A bare `--` ends the kernel's part;
//! what follows belongs to init. Unknown words are ignored, and a known word with a bad value is
//! ignored with a warning rather than failing the boot: the kernel does the same.
//!
//! Pure: no I/O here, so unit tests and the fuzzer reach every line. The boot reads
//! /proc/cmdline as bytes and hands them to [`decode`].

/// How long to wait for the root device when nothing on the command line says otherwise.
/// The kernel itself does not wait at all without `rootwait`; distributions' initramfs wait
/// 30 s (initramfs-tools' ROOTDELAY) to minutes (dracut). 30 s covers slow USB and SAN disks
/// while still failing visibly within a coffee break.
pub const DEFAULT_ROOT_WAIT_SECS: u32 = 30;

/// What to do when the boot cannot go on (`rd.emergency=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Shell,
    Reboot,
    Poweroff,
    Halt,
}

impl Action {
    pub fn parse(s: &str) -> Option<Action> {
        match s {
            "shell" => Some(Action::Shell),
            "reboot" => Some(Action::Reboot),
            "poweroff" => Some(Action::Poweroff),
            "halt" => Some(Action::Halt),
            _ => None,
        }
    }
}

/// Where `rd.break=` stops the boot for a shell, in boot order. dracut's names, since users
/// already type them; its hook stages that baton does not have map onto the nearest point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum BreakPoint {
    /// Before the root device is looked for: the early mounts are up and the modules named
    /// at build time are loaded.
    PreMount,
    /// The root device is found and about to be mounted.
    Mount,
    /// The root is mounted on /sysroot and about to become `/` (bare `rd.break`, dracut's
    /// `pre-pivot` and `cleanup`).
    PreSwitch,
}

impl BreakPoint {
    pub fn parse(s: &str) -> Option<BreakPoint> {
        match s {
            "cmdline" | "pre-udev" | "pre-trigger" | "initqueue" | "pre-mount" => {
                Some(BreakPoint::PreMount)
            }
            "mount" => Some(BreakPoint::Mount),
            "pre-switch" | "pre-pivot" | "cleanup" => Some(BreakPoint::PreSwitch),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            BreakPoint::PreMount => "pre-mount",
            BreakPoint::Mount => "mount",
            BreakPoint::PreSwitch => "pre-switch",
        }
    }
}

/// Everything baton takes from the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootParams {
    /// `root=`, verbatim: see [`crate::init::root::RootSpec`] for its forms.
    pub root: Option<String>,
    /// `rootfstype=a,b`: filesystems to try, in order. Empty means every one the kernel knows.
    pub rootfstype: Vec<String>,
    /// `rootflags=`: mount options for the root, as `mount -o` takes them.
    pub rootflags: Option<String>,
    /// `ro` / `rw`, the last one wins; read-only unless `rw`, as the kernel mounts it.
    pub read_only: bool,
    /// `init=`: the program to exec in the new root.
    pub init: Option<String>,
    /// `rootwait`, `rootwait=N`, `rootdelay=N`, `rd.timeout=N`.
    pub wait: RootWait,
    /// Every `console=` value, in order; the last is /dev/console.
    pub consoles: Vec<String>,
    /// `rd.emergency=`: what to do when the boot cannot go on.
    pub emergency: Option<Action>,
    /// `rd.shell` / `rd.shell=0` (dracut): whether a failure may open the rescue shell.
    /// `None` when not given: then it may, if the image has one.
    pub shell: Option<bool>,
    /// `rd.break[=POINT]`: where to stop for a shell, then go on.
    pub breaks: Vec<BreakPoint>,
    /// `rd.modules=`, `rd.driver.pre=` (dracut), `modules_load=`, `rd.modules_load=`
    /// (systemd): modules to load at boot whatever the hardware, comma-separated.
    pub force_modules: Vec<String>,
    /// `module_blacklist=` (kernel), `rd.driver.blacklist=` (dracut), `modprobe.blacklist=`
    /// (kmod): modules never to load.
    pub blacklist: Vec<String>,
    /// `module.param=value` words, for modules baton loads: modprobe reads these from
    /// /proc/cmdline too, since the kernel applies them only to built-in modules.
    pub module_options: Vec<(String, String)>,
    /// `resume=`: the swap device holding a hibernation image, in any form `root=` takes.
    pub resume: Option<String>,
    /// `noresume`, wherever it stands: boot afresh, ignoring any image (the kernel's
    /// meaning).
    pub noresume: bool,
    /// `resume_offset=`: where the image starts in the device, in pages (a swap file).
    pub resume_offset: Option<u64>,
    /// `baton.run`: run the command after `--` in the new root instead of its init, report
    /// how it ended, and power off (see baton::init::run).
    pub run: bool,
    /// The words after `--`, for `baton.run`: the command and its arguments.
    pub run_command: Vec<String>,
    /// `baton.run.timeout=N`: kill the command after N s (0 or absent: no limit).
    pub run_timeout_secs: Option<u32>,
    /// `rd.overlay` or systemd's `systemd.volatile=overlay`: a tmpfs overlay over the root,
    /// so that the system may write anywhere and the root itself is never written.
    pub overlay: bool,
    /// Known words whose values made no sense, for the log.
    pub warnings: Vec<String>,
}

/// How long to wait for the root device to appear.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RootWait {
    /// Bare `rootwait`: wait for ever.
    pub forever: bool,
    /// `rootwait=N`.
    pub rootwait_secs: Option<u32>,
    /// `rootdelay=N`: the kernel sleeps N s before mounting; baton waits *up to* N s
    /// (initramfs-tools' meaning), which is never slower.
    pub rootdelay_secs: Option<u32>,
    /// `rd.timeout=N` (dracut).
    pub timeout_secs: Option<u32>,
}

impl RootWait {
    /// The bound on waiting, or `None` to wait for ever. An explicit number beats bare
    /// `rootwait`; of the numbers, `rootwait=` is the most specific, then `rd.timeout=`,
    /// then `rootdelay=`.
    pub fn limit_secs(&self) -> Option<u32> {
        if let Some(n) = self
            .rootwait_secs
            .or(self.timeout_secs)
            .or(self.rootdelay_secs)
        {
            return Some(n);
        }
        if self.forever {
            None
        } else {
            Some(DEFAULT_ROOT_WAIT_SECS)
        }
    }
}

impl Default for BootParams {
    fn default() -> Self {
        BootParams {
            root: None,
            rootfstype: Vec::new(),
            rootflags: None,
            read_only: true,
            init: None,
            wait: RootWait::default(),
            consoles: Vec::new(),
            emergency: None,
            shell: None,
            breaks: Vec::new(),
            force_modules: Vec::new(),
            blacklist: Vec::new(),
            module_options: Vec::new(),
            resume: None,
            noresume: false,
            resume_offset: None,
            run: false,
            run_command: Vec::new(),
            run_timeout_secs: None,
            overlay: false,
            warnings: Vec::new(),
        }
    }
}

impl BootParams {
    /// Whether the boot stops for a shell at `point`.
    pub fn breaks_at(&self, point: BreakPoint) -> bool {
        self.breaks.contains(&point)
    }

    /// Parameters for one module from `module.param=value` words, space-separated as
    /// `finit_module(2)` takes them. Values with spaces are quoted again.
    pub fn module_params(&self, module: &str) -> String {
        let module = crate::modules::modinfo::normalize(module);
        self.module_options
            .iter()
            .filter(|(m, _)| *m == module)
            .map(|(_, p)| p.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// One word of the command line: `key` or `key=value`, quotes already removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word<'a> {
    pub key: &'a str,
    pub value: Option<&'a str>,
}

/// Splits a command line into words, kernel style. Returns the words before a bare `--`
/// and the words after it.
pub fn split(cmdline: &str) -> (Vec<Word<'_>>, Vec<Word<'_>>) {
    let mut before = Vec::new();
    let mut after = Vec::new();
    let mut seen_dashes = false;
    let mut rest = cmdline;
    while let (Some(word), tail) = next_word(rest) {
        rest = tail;
        if !seen_dashes && word.key == "--" && word.value.is_none() {
            seen_dashes = true;
        } else if seen_dashes {
            after.push(word);
        } else {
            before.push(word);
        }
    }
    (before, after)
}

/// Takes one word off the front of `s`, following `next_arg()` in lib/cmdline.c.
fn next_word(s: &str) -> (Option<Word<'_>>, &str) {
    let s = s.trim_start_matches(is_space);
    if s.is_empty() {
        return (None, s);
    }
    let mut in_quote = false;
    let mut end = s.len();
    let mut equals = None;
    for (i, c) in s.char_indices() {
        if c == '"' {
            in_quote = !in_quote;
        } else if !in_quote && is_space(c) {
            end = i;
            break;
        } else if c == '=' && equals.is_none() {
            equals = Some(i);
        }
    }
    let (word, rest) = s.split_at(end);
    let word = match equals {
        Some(eq) => {
            let (key, value) = word.split_at(eq);
            let value = value.strip_prefix('=').unwrap_or(value);
            Word {
                key: strip_leading_quote(key),
                value: Some(strip_quotes(value)),
            }
        }
        None => Word {
            key: strip_quotes(word),
            value: None,
        },
    };
    (Some(word), rest)
}

/// `isspace()` in the kernel's C locale.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r')
}

/// A quoted word `"key=value"` has its opening quote on the key.
fn strip_leading_quote(s: &str) -> &str {
    s.strip_prefix('"').unwrap_or(s)
}

/// Removes one leading quote and, if present, one trailing quote.
fn strip_quotes(s: &str) -> &str {
    match s.strip_prefix('"') {
        Some(inner) => inner.strip_suffix('"').unwrap_or(inner),
        None => s.strip_suffix('"').unwrap_or(s),
    }
}

/// The command line as text. The kernel passes bytes; a value that is not UTF-8 (a label
/// in Latin-1, say) must not stop the boot, so invalid bytes become U+FFFD, exactly as the
/// probes read labels from disk: the same bytes on both sides still compare equal. Returns
/// whether anything was replaced, for a warning.
pub fn decode(bytes: &[u8]) -> (String, bool) {
    match String::from_utf8_lossy(bytes) {
        std::borrow::Cow::Borrowed(text) => (text.to_owned(), false),
        std::borrow::Cow::Owned(text) => (text, true),
    }
}

/// Parses a whole command line. Never fails: bad values become warnings.
pub fn parse(cmdline: &str) -> BootParams {
    parse_with_defaults("", cmdline)
}

/// Parses default parameters followed by the kernel's own: the kernel's words come later,
/// so they win wherever the last word counts.
pub fn parse_with_defaults(defaults: &str, cmdline: &str) -> BootParams {
    let mut params = BootParams::default();
    let (default_words, _) = split(defaults);
    let (words, init_args) = split(cmdline);
    for word in default_words.iter().chain(words.iter()) {
        apply(&mut params, word);
    }
    if params.run {
        params.run_command = init_args
            .iter()
            .map(|w| match w.value {
                Some(value) => format!("{}={value}", w.key),
                None => w.key.to_owned(),
            })
            .collect();
    }
    if cmdline.matches('"').count() % 2 == 1 {
        params.warnings.push(
            "the command line has an unbalanced double quote: everything after it was read as one word".to_owned(),
        );
    }
    params
}

/// Strips `#` comments from a defaults file so its lines can be split like a command line.
pub fn strip_comments(text: &str) -> String {
    text.lines()
        .map(|line| line.split_once('#').map_or(line, |(before, _)| before))
        .collect::<Vec<_>>()
        .join(" ")
}

fn apply(params: &mut BootParams, word: &Word<'_>) {
    match (word.key, word.value) {
        ("root", Some(v)) => params.root = non_empty(v),
        ("rootfstype", Some(v)) => {
            params.rootfstype = v
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        }
        ("rootflags", Some(v)) => params.rootflags = non_empty(v),
        ("resume", Some(v)) => params.resume = non_empty(v),
        ("noresume", None) => params.noresume = true,
        ("resume_offset", Some(v)) => match v.parse() {
            Ok(pages) => params.resume_offset = Some(pages),
            Err(_) => warn_value(params, word, "a number of pages"),
        },
        ("ro", None) => params.read_only = true,
        ("rw", None) => params.read_only = false,
        ("init", Some(v)) => params.init = non_empty(v),
        ("rootwait", None) => params.wait.forever = true,
        ("rootwait", Some(v)) => params.wait.rootwait_secs = seconds(params, word, v),
        ("rootdelay", Some(v)) => params.wait.rootdelay_secs = seconds(params, word, v),
        ("rd.timeout", Some(v)) => params.wait.timeout_secs = seconds(params, word, v),
        ("console", Some(v)) => params.consoles.push(v.to_owned()),
        ("rd.emergency", Some(v)) => match Action::parse(v) {
            Some(action) => params.emergency = Some(action),
            None => warn_value(params, word, "reboot, poweroff, halt or shell"),
        },
        ("rd.shell", None) => params.shell = Some(true),
        ("rd.shell", Some(v)) => match boolean(v) {
            Some(allowed) => params.shell = Some(allowed),
            None => warn_value(params, word, "0 or 1"),
        },
        ("rd.break", None) => params.breaks.push(BreakPoint::PreSwitch),
        ("rd.break", Some(v)) => match BreakPoint::parse(v) {
            Some(point) => params.breaks.push(point),
            None => warn_value(params, word, "pre-mount, mount or pre-switch"),
        },
        ("rd.modules" | "rd.driver.pre" | "modules_load" | "rd.modules_load", Some(v)) => {
            params.force_modules.extend(module_list(v))
        }
        ("module_blacklist" | "rd.driver.blacklist" | "modprobe.blacklist", Some(v)) => {
            params.blacklist.extend(module_list(v))
        }
        ("baton.run", None) => params.run = true,
        ("baton.run", Some(v)) => match boolean(v) {
            Some(run) => params.run = run,
            None => warn_value(params, word, "0 or 1"),
        },
        ("baton.run.timeout", Some(v)) => {
            params.run_timeout_secs = seconds(params, word, v).filter(|&n| n > 0)
        }
        ("rd.overlay", None) => params.overlay = true,
        ("rd.overlay", Some(v)) => match boolean(v) {
            Some(overlay) => params.overlay = overlay,
            None => warn_value(params, word, "0 or 1"),
        },
        // systemd's other modes (yes, state) are systemd's own business.
        ("systemd.volatile", Some(v)) => params.overlay = v == "overlay",
        (key, value) => {
            if let Some((module, param)) = key.split_once('.') {
                if !module.is_empty() && !param.is_empty() && !RESERVED_PREFIXES.contains(&module) {
                    let param = match value {
                        Some(v) if v.contains(char::is_whitespace) => format!("{param}=\"{v}\""),
                        Some(v) => format!("{param}={v}"),
                        None => param.to_owned(),
                    };
                    let module = crate::modules::modinfo::normalize(module);
                    params.module_options.push((module, param));
                }
            }
        }
    }
}

/// Dotted words that are namespaces of other programs, not module names.
const RESERVED_PREFIXES: [&str; 6] = ["rd", "systemd", "udev", "printk", "modprobe", "baton"];

/// `a,b-c` -> `["a", "b_c"]`.
fn module_list(value: &str) -> impl Iterator<Item = String> + '_ {
    value
        .split(',')
        .filter(|s| !s.is_empty())
        .map(crate::modules::modinfo::normalize)
}

/// dracut's getargbool: 0/no/off/false and 1/yes/on/true.
fn boolean(v: &str) -> Option<bool> {
    match v {
        "1" | "yes" | "on" | "true" => Some(true),
        "0" | "no" | "off" | "false" => Some(false),
        _ => None,
    }
}

fn non_empty(v: &str) -> Option<String> {
    (!v.is_empty()).then(|| v.to_owned())
}

/// A whole number of seconds. A fraction (`rootwait=0.5`) is rounded up, since waiting a
/// little longer is harmless. Parsed by hand: float parsing would add 20 KB to the init.
fn seconds(params: &mut BootParams, word: &Word<'_>, v: &str) -> Option<u32> {
    let (whole, fraction) = v.split_once('.').unwrap_or((v, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let parsed = if !whole.is_empty() && digits(whole) && digits(fraction) {
        whole.parse::<u32>().ok().and_then(|n| {
            let round_up = fraction.bytes().any(|b| b != b'0');
            n.checked_add(u32::from(round_up))
        })
    } else {
        None
    };
    if parsed.is_none() {
        warn_value(params, word, "a number of seconds");
    }
    parsed
}

fn warn_value(params: &mut BootParams, word: &Word<'_>, expected: &str) {
    params.warnings.push(format!(
        "ignoring {}={:?}: expected {}",
        word.key,
        word.value.unwrap_or(""),
        expected
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(line: &str) -> Vec<(String, Option<String>)> {
        split(line)
            .0
            .into_iter()
            .map(|w| (w.key.to_owned(), w.value.map(str::to_owned)))
            .collect()
    }

    #[test]
    fn defaults_match_the_kernel() {
        let p = parse("");
        assert!(p.read_only, "the kernel mounts root read-only by default");
        assert_eq!(p.init, None);
        assert!(p.breaks.is_empty() && p.shell.is_none() && p.warnings.is_empty());
        assert_eq!(p.wait.limit_secs(), Some(DEFAULT_ROOT_WAIT_SECS));
        assert_eq!(p.root, None);
    }

    #[test]
    fn typical_debian_line() {
        let p = parse(
            "BOOT_IMAGE=/vmlinuz-6.1.0-56-amd64 root=/dev/vda1 ro quiet console=tty0 console=ttyS0,115200n8",
        );
        assert_eq!(p.root.as_deref(), Some("/dev/vda1"));
        assert!(p.read_only);
        assert_eq!(p.consoles, ["tty0", "ttyS0,115200n8"]);
    }

    #[test]
    fn last_of_ro_and_rw_wins() {
        assert!(!parse("ro rw").read_only);
        assert!(parse("rw ro").read_only);
        assert!(!parse("root=/dev/vda rw").read_only);
    }

    #[test]
    fn later_values_replace_earlier_ones() {
        let p = parse("root=/dev/sda root=/dev/vda init=/a init=/b");
        assert_eq!(p.root.as_deref(), Some("/dev/vda"));
        assert_eq!(p.init.as_deref(), Some("/b"));
    }

    #[test]
    fn double_dash_ends_the_kernel_part() {
        let p = parse("root=/dev/vda init=/bin/sh -- -c \"echo hi\" root=/dev/evil rw");
        assert_eq!(p.root.as_deref(), Some("/dev/vda"));
        assert!(p.read_only, "rw after -- belongs to init");
        let after: Vec<_> = split("root=/dev/vda -- -c \"echo hi\" rw").1;
        let after: Vec<_> = after.iter().map(|w| (w.key, w.value)).collect();
        assert_eq!(after, [("-c", None), ("echo hi", None), ("rw", None)]);
    }

    #[test]
    fn quoted_values_keep_their_spaces() {
        let p = parse(r#"rootflags="data=journal,errors=remount-ro" init="/sbin/my init""#);
        assert_eq!(
            p.rootflags.as_deref(),
            Some("data=journal,errors=remount-ro")
        );
        assert_eq!(p.init.as_deref(), Some("/sbin/my init"));
        assert_eq!(
            keys(r#"a="b c" "d=e f" "g h""#),
            [
                ("a".into(), Some("b c".into())),
                ("d".into(), Some("e f".into())),
                ("g h".into(), None)
            ]
        );
    }

    #[test]
    fn only_the_first_equals_splits() {
        assert_eq!(
            keys("root=PARTUUID=abc/PARTNROFF=1"),
            [("root".into(), Some("PARTUUID=abc/PARTNROFF=1".into()))]
        );
    }

    #[test]
    fn any_whitespace_separates() {
        let p = parse("\troot=/dev/vda\n rw\r\x0binit=/x\x0c");
        assert_eq!(p.root.as_deref(), Some("/dev/vda"));
        assert!(!p.read_only);
        assert_eq!(p.init.as_deref(), Some("/x"));
    }

    #[test]
    fn rootfstype_is_a_list() {
        assert_eq!(parse("rootfstype=ext4,,xfs,").rootfstype, ["ext4", "xfs"]);
        assert!(parse("rootfstype=").rootfstype.is_empty());
    }

    #[test]
    fn waiting() {
        assert_eq!(parse("rootwait").wait.limit_secs(), None);
        assert_eq!(parse("rootwait=5").wait.limit_secs(), Some(5));
        assert_eq!(parse("rootwait rootwait=5").wait.limit_secs(), Some(5));
        assert_eq!(parse("rootdelay=3").wait.limit_secs(), Some(3));
        assert_eq!(parse("rd.timeout=7 rootdelay=3").wait.limit_secs(), Some(7));
        assert_eq!(parse("rootwait=0.5").wait.limit_secs(), Some(1));
        assert_eq!(parse("rootwait=2.000").wait.limit_secs(), Some(2));
    }

    #[test]
    fn bad_values_warn_and_are_ignored() {
        let p = parse(
            "rootwait=soon rd.shell=maybe rd.emergency=explode rootdelay=-1 rd.timeout=.5 rootwait=1e3 rd.break=later",
        );
        assert_eq!(p.wait.limit_secs(), Some(DEFAULT_ROOT_WAIT_SECS));
        assert_eq!(p.shell, None);
        assert_eq!(p.emergency, None);
        assert!(p.breaks.is_empty());
        assert_eq!(p.warnings.len(), 7, "{:?}", p.warnings);
    }

    #[test]
    fn emergency_actions() {
        assert_eq!(parse("rd.emergency=reboot").emergency, Some(Action::Reboot));
        assert_eq!(
            parse("rd.emergency=poweroff").emergency,
            Some(Action::Poweroff)
        );
        assert_eq!(parse("rd.emergency=halt").emergency, Some(Action::Halt));
        assert_eq!(parse("rd.emergency=shell").emergency, Some(Action::Shell));
    }

    #[test]
    fn flags_with_values_and_values_without_keys_are_ignored() {
        // `ro=1` is not `ro`; `root` without a value is not a root.
        let p = parse("ro=1 rw root init");
        assert!(!p.read_only);
        assert_eq!(p.root, None);
        assert_eq!(p.init, None);
    }

    #[test]
    fn defaults_file_loses_to_the_kernel_line() {
        let defaults = strip_comments("# comment\nrd.emergency=poweroff rw # trailing\nrootwait=9");
        let p = parse_with_defaults(&defaults, "ro rootwait=2");
        assert_eq!(p.emergency, Some(Action::Poweroff));
        assert!(p.read_only);
        assert_eq!(p.wait.limit_secs(), Some(2));
    }

    #[test]
    fn hostile_input_does_not_panic() {
        let nasty = [
            "",
            "\"",
            "\"\"",
            "=",
            "==",
            "=\"",
            "\"=",
            "root=\"",
            "root=\"\"",
            "--",
            "-- --",
            "--=x",
            "\"--\"",
            "init=\"/a -- b",
            "\u{0}\u{0}",
            "root=\u{fffd}\u{1F600}=é",
            "rootwait=NaN rootwait=inf rootwait=1e99 rootdelay=4294967296",
            "loglevel=255 loglevel=-0",
        ];
        for line in nasty {
            let _ = parse(line);
        }
        // A long line of every awkward byte, in a fixed pseudo-random order.
        let alphabet = ['"', '=', ' ', '-', 'a', '\t', 'é', '\u{0}', ',', '.'];
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        for len in [1usize, 2, 3, 7, 64, 4096] {
            for _ in 0..64 {
                let line: String = (0..len)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        alphabet[(state % alphabet.len() as u64) as usize]
                    })
                    .collect();
                let p = parse(&line);
                // Whatever came in, the words we keep are substrings of the input.
                if let Some(root) = &p.root {
                    assert!(line.contains(root.as_str()));
                }
            }
        }
    }

    #[test]
    fn resume_words() {
        let p = parse("resume=UUID=0a1b resume_offset=34816");
        assert_eq!(p.resume.as_deref(), Some("UUID=0a1b"));
        assert_eq!(p.resume_offset, Some(34816));
        assert!(!p.noresume);
        assert!(parse("noresume resume=/dev/vdb").noresume, "in any order");
        let p = parse("resume_offset=lots");
        assert_eq!(p.resume_offset, None);
        assert_eq!(p.warnings.len(), 1);
    }

    #[test]
    fn forced_and_blacklisted_modules() {
        let p = parse("rd.modules=ahci,nvme rd.driver.pre=virtio-scsi modules_load=sd_mod module_blacklist=ata_piix modprobe.blacklist=floppy,pata-acpi");
        assert_eq!(p.force_modules, ["ahci", "nvme", "virtio_scsi", "sd_mod"]);
        assert_eq!(p.blacklist, ["ata_piix", "floppy", "pata_acpi"]);
        assert!(p.module_options.is_empty(), "{:?}", p.module_options);
    }

    #[test]
    fn module_parameters() {
        let p = parse(
            "virtio-blk.queue_depth=64 ext4.debug rd.timeout=3 virtio_blk.x=\"a b\" -- m.p=1",
        );
        assert_eq!(p.module_params("virtio_blk"), "queue_depth=64 x=\"a b\"");
        assert_eq!(p.module_params("ext4"), "debug");
        assert_eq!(p.module_params("rd"), "");
        assert_eq!(p.module_params("m"), "", "words after -- belong to init");
    }

    #[test]
    fn break_points_and_the_shell_switch() {
        let p = parse("rd.break rd.break=pre-mount rd.break=mount rd.shell=0");
        assert_eq!(
            p.breaks,
            [
                BreakPoint::PreSwitch,
                BreakPoint::PreMount,
                BreakPoint::Mount
            ]
        );
        assert!(p.breaks_at(BreakPoint::Mount));
        assert_eq!(p.shell, Some(false));
        assert_eq!(parse("rd.shell").shell, Some(true));
        assert_eq!(parse("rd.shell=0 rd.shell=yes").shell, Some(true));
        // dracut's stages that baton has no hook for map onto the nearest point.
        assert_eq!(parse("rd.break=pre-pivot").breaks, [BreakPoint::PreSwitch]);
        assert_eq!(parse("rd.break=initqueue").breaks, [BreakPoint::PreMount]);
        assert!(!parse("").breaks_at(BreakPoint::PreSwitch));
    }

    #[test]
    fn bytes_that_are_not_utf8_do_not_stop_the_boot() {
        // "LABEL=été" in Latin-1, as a user with a Latin-1 label types it.
        let (text, replaced) = decode(b"root=LABEL=\xe9t\xe9 rootwait=3");
        assert!(replaced);
        let p = parse(&text);
        assert_eq!(p.root.as_deref(), Some("LABEL=\u{fffd}t\u{fffd}"));
        assert_eq!(p.wait.limit_secs(), Some(3));
        // The probe reads the same bytes from disk the same way, so they still match.
        assert_eq!(
            crate::probe::fields::label_string(b"\xe9t\xe9").as_deref(),
            Some("\u{fffd}t\u{fffd}")
        );
        assert_eq!(
            decode(b"root=/dev/vda"),
            ("root=/dev/vda".to_owned(), false)
        );
    }

    #[test]
    fn an_unbalanced_quote_at_the_size_limit_is_a_warning() {
        // The kernel's limit on x86 is 2,048 bytes with the NUL (COMMAND_LINE_SIZE).
        let mut line = String::from("root=/dev/vda rd.emergency=poweroff ");
        while line.len() < 2000 {
            line.push_str("pad=xxxxxxxx ");
        }
        line.push_str("rootflags=\"data=journal rw");
        line.truncate(2047);
        let p = parse(&line);
        assert_eq!(p.root.as_deref(), Some("/dev/vda"));
        assert_eq!(p.emergency, Some(Action::Poweroff));
        assert!(p.read_only, "rw is inside the open quote");
        assert_eq!(p.warnings.len(), 1, "{:?}", p.warnings);
        assert!(p.warnings[0].contains("unbalanced double quote"));
    }

    #[test]
    fn run_takes_the_words_after_dashes() {
        let p = parse(
            "root=hostroot rootfstype=9p baton.run baton.run.timeout=30 -- sh -c \"exit 7\" x=1",
        );
        assert!(p.run);
        assert_eq!(p.run_command, ["sh", "-c", "exit 7", "x=1"]);
        assert_eq!(p.run_timeout_secs, Some(30));
        assert!(p.module_options.is_empty(), "baton.* is not a module");
        let p = parse("root=/dev/vda -- sh");
        assert!(
            !p.run && p.run_command.is_empty(),
            "without baton.run the words are init's"
        );
        assert_eq!(parse("baton.run.timeout=0").run_timeout_secs, None);
        assert!(!parse("baton.run=0 -- sh").run);
    }

    #[test]
    fn overlay_by_either_name() {
        assert!(parse("rd.overlay").overlay);
        assert!(parse("systemd.volatile=overlay").overlay);
        assert!(!parse("systemd.volatile=yes").overlay);
        assert!(!parse("rd.overlay rd.overlay=0").overlay);
        assert_eq!(parse("rd.overlay=maybe").warnings.len(), 1);
    }
}
