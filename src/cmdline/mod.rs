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

mod crypt;
mod stack;
mod values;
pub use crypt::{CryptParams, NamedVolume};
pub use stack::{md_uuid, StackParams};
use values::boolean;

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
    /// `rd.lvm*` and `rd.md*`: the LVM volumes and MD arrays to bring up.
    pub stack: StackParams,
    /// `rd.luks*`, `cryptdevice=`, `cryptkey=`: the LUKS volumes to unlock.
    pub crypt: CryptParams,
    /// `fsck.mode=force|skip`, `forcefsck`, `fastboot` (systemd's and initramfs-tools'
    /// words, `rd.` forms too): the command line decides the root's check itself, so baton
    /// does not tell systemd it was done (see baton::init::fsck_stamp).
    pub fsck_by_cmdline: bool,
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
            stack: StackParams::default(),
            crypt: CryptParams::default(),
            fsck_by_cmdline: false,
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

/// The storage stack's and LUKS's words; false when `word` is neither's.
fn apply_storage(params: &mut BootParams, word: &Word<'_>) -> bool {
    let stack_word = stack::apply(&mut params.stack, word.key, word.value);
    match stack_word.or_else(|| crypt::apply(&mut params.crypt, word.key, word.value)) {
        Some(Ok(())) => true,
        Some(Err(expected)) => {
            warn_value(params, word, expected);
            true
        }
        None => false,
    }
}

/// systemd's and initramfs-tools' words that decide the root's check themselves.
fn apply_fsck(params: &mut BootParams, word: &Word<'_>) -> bool {
    let decides = matches!(
        (word.key, word.value),
        ("fsck.mode" | "rd.fsck.mode", Some("force" | "skip"))
            | (
                "forcefsck" | "fastboot" | "rd.forcefsck" | "rd.fastboot",
                None
            )
    );
    params.fsck_by_cmdline |= decides;
    decides
}

fn apply(params: &mut BootParams, word: &Word<'_>) {
    if apply_storage(params, word) || apply_fsck(params, word) {
        return;
    }
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
mod tests;
