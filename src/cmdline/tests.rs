//! The command line's parsing, checked word by word.

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
    let p =
        parse("virtio-blk.queue_depth=64 ext4.debug rd.timeout=3 virtio_blk.x=\"a b\" -- m.p=1");
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
    let p =
        parse("root=hostroot rootfstype=9p baton.run baton.run.timeout=30 -- sh -c \"exit 7\" x=1");
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

#[test]
fn the_command_line_may_decide_the_roots_check() {
    assert!(!parse("root=/dev/vda ro").fsck_by_cmdline);
    assert!(!parse("fsck.mode=auto fsck.repair=yes").fsck_by_cmdline);
    for line in [
        "fsck.mode=force",
        "fsck.mode=skip",
        "forcefsck",
        "fastboot",
        "rd.fsck.mode=force",
    ] {
        assert!(parse(line).fsck_by_cmdline, "{line}");
    }
}
