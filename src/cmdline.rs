//! The kernel command line, parsed the way the kernel itself splits it.
//!
//! Splitting follows `next_arg()` in the kernel's `lib/cmdline.c`: words are separated by
//! whitespace outside double quotes, a quote anywhere toggles quoting, and one pair of quotes
//! around a value (`key="a b"`) or a whole word is stripped. A bare `--` ends the kernel's part;
//! what follows belongs to init. Unknown words are ignored, and a known word with a bad value is
//! ignored with a warning rather than failing the boot: the kernel does the same.

use crate::emergency::Action;

/// How long to wait for the root device when nothing on the command line says otherwise.
/// The kernel itself does not wait at all without `rootwait`; distributions' initramfs wait
/// 30 s (initramfs-tools' ROOTDELAY) to minutes (dracut). 30 s covers slow USB and SAN disks
/// while still failing visibly within a coffee break.
pub const DEFAULT_ROOT_WAIT_SECS: u32 = 30;

/// The init the kernel runs when `init=` is not given.
pub const DEFAULT_INIT: &str = "/sbin/init";

/// Everything baton takes from the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootParams {
    /// `root=`, verbatim: see [`crate::root::RootSpec`] for its forms.
    pub root: Option<String>,
    /// `rootfstype=a,b`: filesystems to try, in order. Empty means every one the kernel knows.
    pub rootfstype: Vec<String>,
    /// `rootflags=`: mount options for the root, as `mount -o` takes them.
    pub rootflags: Option<String>,
    /// `ro` / `rw`, the last one wins; read-only unless `rw`, as the kernel mounts it.
    pub read_only: bool,
    /// `init=`: the program to exec in the new root.
    pub init: Option<String>,
    /// Words after `--`: the kernel hands them to init as arguments.
    pub init_args: Vec<String>,
    /// `rootwait`, `rootwait=N`, `rootdelay=N`, `rd.timeout=N`.
    pub wait: RootWait,
    pub quiet: bool,
    /// `loglevel=N` (0-7), the console log level the kernel was asked for.
    pub loglevel: Option<u8>,
    /// Every `console=` value, in order; the last is /dev/console.
    pub consoles: Vec<String>,
    /// `rd.emergency=`: what to do when the boot cannot go on.
    pub emergency: Option<Action>,
    /// `rd.modules=`, `rd.driver.pre=` (dracut), `modules_load=`, `rd.modules_load=`
    /// (systemd): modules to load at boot whatever the hardware, comma-separated.
    pub force_modules: Vec<String>,
    /// `module_blacklist=` (kernel), `rd.driver.blacklist=` (dracut), `modprobe.blacklist=`
    /// (kmod): modules never to load.
    pub blacklist: Vec<String>,
    /// `module.param=value` words, for modules baton loads: modprobe reads these from
    /// /proc/cmdline too, since the kernel applies them only to built-in modules.
    pub module_options: Vec<(String, String)>,
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
            init_args: Vec::new(),
            wait: RootWait::default(),
            quiet: false,
            loglevel: None,
            consoles: Vec::new(),
            emergency: None,
            force_modules: Vec::new(),
            blacklist: Vec::new(),
            module_options: Vec::new(),
            warnings: Vec::new(),
        }
    }
}

impl BootParams {
    /// The init to run: `init=` or the kernel's default.
    pub fn init_path(&self) -> &str {
        self.init.as_deref().unwrap_or(DEFAULT_INIT)
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

/// An argument for init as the kernel hands it over: `key=value` is rejoined with the
/// value's quotes removed (`repair_env_string()` in init/main.c).
fn init_arg(word: &Word<'_>) -> String {
    match word.value {
        Some(value) => format!("{}={}", word.key, value),
        None => word.key.to_owned(),
    }
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
    params.init_args = init_args.iter().map(init_arg).collect();
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
        ("ro", None) => params.read_only = true,
        ("rw", None) => params.read_only = false,
        ("init", Some(v)) => params.init = non_empty(v),
        ("rootwait", None) => params.wait.forever = true,
        ("rootwait", Some(v)) => params.wait.rootwait_secs = seconds(params, word, v),
        ("rootdelay", Some(v)) => params.wait.rootdelay_secs = seconds(params, word, v),
        ("rd.timeout", Some(v)) => params.wait.timeout_secs = seconds(params, word, v),
        ("quiet", None) => params.quiet = true,
        ("loglevel", Some(v)) => match v.parse::<u8>() {
            Ok(n) if n <= 7 => params.loglevel = Some(n),
            _ => warn_value(params, word, "a number from 0 to 7"),
        },
        ("console", Some(v)) => params.consoles.push(v.to_owned()),
        ("rd.emergency", Some(v)) => match Action::parse(v) {
            Some(action) => params.emergency = Some(action),
            None => warn_value(params, word, "reboot, poweroff, halt or shell"),
        },
        ("rd.modules" | "rd.driver.pre" | "modules_load" | "rd.modules_load", Some(v)) => {
            params.force_modules.extend(module_list(v))
        }
        ("module_blacklist" | "rd.driver.blacklist" | "modprobe.blacklist", Some(v)) => {
            params.blacklist.extend(module_list(v))
        }
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
const RESERVED_PREFIXES: [&str; 5] = ["rd", "systemd", "udev", "printk", "modprobe"];

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
        assert_eq!(p.init_path(), "/sbin/init");
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
        assert!(p.quiet);
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
        assert_eq!(p.init_args, ["-c", "echo hi", "root=/dev/evil", "rw"]);
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
        let p = parse("\troot=/dev/vda\n rw\r\x0bquiet\x0c");
        assert_eq!(p.root.as_deref(), Some("/dev/vda"));
        assert!(!p.read_only && p.quiet);
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
            "rootwait=soon loglevel=9 rd.emergency=explode rootdelay=-1 rd.timeout=.5 rootwait=1e3",
        );
        assert_eq!(p.wait.limit_secs(), Some(DEFAULT_ROOT_WAIT_SECS));
        assert_eq!(p.loglevel, None);
        assert_eq!(p.emergency, None);
        assert_eq!(p.warnings.len(), 6, "{:?}", p.warnings);
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
    fn init_args_keep_key_value_words_whole() {
        let p = parse("init=/sbin/marker -- a=b \"c d\" e");
        assert_eq!(p.init_args, ["a=b", "c d", "e"]);
    }
}
