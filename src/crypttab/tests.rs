use super::*;

#[test]
fn debian_installer_lines() {
    // What Debian's installer writes for "encrypted LVM", and a data disk with a key file.
    let text = "# <target name> <source device> <key file> <options>\n\
                sda3_crypt UUID=7a2c0b1e-2222-4000-8000-000000000002 none luks,discard\n\
                data /dev/disk/by-partuuid/5e1f-02 /etc/keys/data.key luks,initramfs,keyfile-size=64,tries=0\n";
    let tab = parse(text);
    assert!(tab.refused.is_empty() && tab.notes.is_empty(), "{tab:?}");
    let [root, data] = &tab.entries[..] else {
        panic!("{tab:?}")
    };
    assert_eq!(root.name, "sda3_crypt");
    assert_eq!(
        root.device,
        RootSpec::Uuid("7a2c0b1e-2222-4000-8000-000000000002".into())
    );
    assert_eq!(root.key, Key::Passphrase);
    assert!(root.options.discard && !root.options.initramfs);
    assert_eq!(
        data.device,
        RootSpec::PartUuid {
            uuid: "5e1f-02".into(),
            offset: 0
        }
    );
    assert_eq!(data.key, Key::File("/etc/keys/data.key".into()));
    assert!(data.options.initramfs);
    assert_eq!(
        (data.options.keyfile_size, data.options.tries),
        (Some(64), Some(0))
    );
}

#[test]
fn refusals_name_the_reason() {
    let text = "swap /dev/vdb /dev/urandom swap,cipher=aes-xts-plain64\n\
                tmp /dev/vdc none tmp\n\
                ks UUID=1 none luks,keyscript=decrypt_gnupg\n\
                remote UUID=2 /key.bin:UUID=3 luks\n\
                short UUID=4\n\
                onlyname\n";
    let tab = parse(text);
    assert!(tab.entries.iter().any(|e| e.name == "short"));
    let why: Vec<(&str, &str)> = tab
        .refused
        .iter()
        .map(|r| (r.name.as_str(), r.why.as_str()))
        .collect();
    assert!(why[0].1.contains("random key"), "{why:?}");
    assert!(why[1].1.contains("formats the device"), "{why:?}");
    assert!(why[2].1.contains("key scripts"), "{why:?}");
    assert!(why[3].1.contains("only a file in the image"), "{why:?}");
    assert_eq!(why[4].0, "onlyname");
    assert_eq!(why.len(), 5);
}

#[test]
fn options() {
    let mut notes = Vec::new();
    let o = parse_options(
        "luks,discard,read-only,timeout=30s,key-slot=1,keyfile-offset=8,same-cpu-crypt,x-systemd.device-timeout=0,frobnicate",
        &mut notes,
    )
    .unwrap();
    assert!(o.discard && o.read_only);
    assert_eq!(
        (o.timeout_secs, o.key_slot, o.keyfile_offset),
        (Some(30), Some(1), Some(8))
    );
    assert_eq!(o.perf, ["same-cpu-crypt"]);
    assert_eq!(notes, ["option frobnicate is not known and was ignored"]);
    assert!(parse_options("tries=many", &mut notes).is_err());
    assert!(parse_options("header=/boot/h.img", &mut notes)
        .unwrap_err()
        .contains("detached"));
}

#[test]
fn bounded() {
    let text = "v UUID=1 none\n".repeat(MAX_LINES + 10);
    assert_eq!(parse(&text).entries.len(), MAX_LINES);
}
