//! Headers cryptsetup wrote (tests/fixtures/luks/, see its README), read as `cryptsetup
//! luksDump` showed them; then damaged, aged and edited copies of them.

use super::luks2::{self, judge_binary, secondary_offsets, Which};
use super::*;

const LUKS2_PBKDF2: &[u8] = include_bytes!("../../tests/fixtures/luks/luks2-pbkdf2.bin");
const LUKS2_ARGON2ID: &[u8] = include_bytes!("../../tests/fixtures/luks/luks2-argon2id.bin");
const LUKS2_ARGON2I: &[u8] = include_bytes!("../../tests/fixtures/luks/luks2-argon2i.bin");
const LUKS2_REENCRYPT: &[u8] = include_bytes!("../../tests/fixtures/luks/luks2-reencrypt.bin");
const LUKS1_XTS: &[u8] = include_bytes!("../../tests/fixtures/luks/luks1-xts.bin");
const LUKS1_CBC: &[u8] = include_bytes!("../../tests/fixtures/luks/luks1-cbc.bin");

const HDR: usize = 16384;
const SEQID_AT: usize = 16;
const CSUM_AT: usize = 448;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn pbkdf2(kdf: &Kdf) -> (&str, u32, String) {
    match kdf {
        Kdf::Pbkdf2 {
            hash,
            iterations,
            salt,
        } => (hash, *iterations, hex(salt)),
        other => panic!("{other:?}"),
    }
}

/// Writes a copy's checksum again after an edit.
fn reseal(dev: &mut [u8], offset: usize, size: usize) {
    let sum = luks2::checksum(&dev[offset..offset + size]);
    dev[offset + CSUM_AT..offset + CSUM_AT + 32].copy_from_slice(&sum);
}

/// The primary's JSON text.
fn json_of(dev: &[u8]) -> String {
    let area = &dev[4096..HDR];
    let end = area.iter().position(|&b| b == 0).unwrap();
    String::from_utf8(area[..end].to_vec()).unwrap()
}

/// Both copies with this JSON area text (NUL-padded), resealed.
fn with_json(dev: &[u8], text: &[u8]) -> Vec<u8> {
    let mut dev = dev.to_vec();
    for offset in [0, HDR] {
        let area = &mut dev[offset + 4096..offset + HDR];
        area.fill(0);
        area[..text.len()].copy_from_slice(text);
        reseal(&mut dev, offset, HDR);
    }
    dev
}

fn edit_json(dev: &[u8], from: &str, to: &str) -> Vec<u8> {
    let text = json_of(dev);
    assert!(text.contains(from), "{from}");
    with_json(dev, text.replacen(from, to, 1).as_bytes())
}

#[test]
fn luks2_pbkdf2() {
    assert_eq!(version(LUKS2_PBKDF2), Some(2));
    let v = read(LUKS2_PBKDF2).unwrap();
    assert_eq!(v.version, 2);
    assert_eq!(v.uuid, "0b7a7000-0000-4000-8000-000000000001");
    assert_eq!(
        (v.label.as_deref(), v.subsystem.as_deref()),
        (Some("cryptroot"), None)
    );
    assert_eq!(v.key_size, 64);
    let s = &v.segment;
    assert_eq!(
        (s.offset, s.size, s.iv_tweak, s.sector_size),
        (16777216, None, 0, 512)
    );
    assert_eq!(s.cipher, "aes-xts-plain64");
    assert_eq!(v.keyslots.len(), 1);
    let k = &v.keyslots[0];
    assert_eq!((k.id, k.priority, k.key_size), (0, Priority::Normal, 64));
    assert_eq!((k.area.offset, k.area.size), (32768, 256000));
    assert_eq!(
        (k.area.cipher.as_str(), k.area.key_size),
        ("aes-xts-plain64", 64)
    );
    assert_eq!(
        pbkdf2(&k.kdf),
        (
            "sha256",
            1000,
            "d78b45a756505c2d453fd235236c4bfa4850e2530e12bee6b5926a3e8a847f44".into()
        )
    );
    assert_eq!((k.af.stripes, k.af.hash.as_str()), (4000, "sha256"));
    let d = &v.digest;
    assert_eq!(
        (d.hash.as_str(), d.iterations, d.keyslots.as_slice()),
        ("sha256", 1000, [0].as_slice())
    );
    assert_eq!(
        hex(&d.salt),
        "3a1c36f314b371de77b781ec6f773850caaf51541b167addf2a4256aa2ae7234"
    );
    assert_eq!(
        hex(&d.value),
        "be2cbb6d9164bc6819d3c8db8522af47c4a2cfbb3fedf40205ff6ca63a885383"
    );
    assert!(v.warnings.is_empty());
    assert_eq!(
        kernel_cipher(&k.area.cipher),
        Some(KernelCipher {
            alg: "xts(aes)".into(),
            iv: Iv::Plain64
        })
    );
}

#[test]
fn luks2_argon2id_and_a_preferred_pbkdf2_slot() {
    let v = read(LUKS2_ARGON2ID).unwrap();
    assert_eq!(v.uuid, "0b7a7000-0000-4000-8000-000000000002");
    assert_eq!(v.label, None);
    assert_eq!(v.segment.sector_size, 4096);
    // Slot 3 is preferred: tried first.
    let ids: Vec<(u32, Priority)> = v.keyslots.iter().map(|k| (k.id, k.priority)).collect();
    assert_eq!(ids, [(3, Priority::Prefer), (0, Priority::Normal)]);
    assert_eq!(v.unlock_order().count(), 2);
    let three = &v.keyslots[0];
    assert_eq!(
        pbkdf2(&three.kdf),
        (
            "sha512",
            1000,
            "b44523905fba69417f40ac529006e7e04c1b029f06bd39efad0d212843abe751".into()
        )
    );
    assert_eq!(
        (three.af.hash.as_str(), three.area.offset, three.area.size),
        ("sha512", 290816, 256000)
    );
    match &v.keyslots[1].kdf {
        Kdf::Argon2 {
            variant,
            time,
            memory,
            lanes,
            salt,
        } => {
            assert_eq!(
                (*variant, *time, *memory, *lanes),
                (Argon2Variant::Id, 4, 32768, 2)
            );
            assert_eq!(
                hex(salt),
                "1014340a9b0af4b11d2a23f8f18f65c83c4f0b613920f48c0ff4561e961e2545"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(v.digest.keyslots, [0, 3]);
    assert_eq!(
        hex(&v.digest.value),
        "edaadf26e222470dd75ba2d19617bb47014f6d83c9f61f396bf7eaabd1107d01"
    );
}

#[test]
fn luks2_argon2i_cbc_essiv_with_a_32k_header_and_a_token() {
    let v = read(LUKS2_ARGON2I).unwrap();
    assert_eq!(v.uuid, "0b7a7000-0000-4000-8000-000000000003");
    assert_eq!(
        (v.label.as_deref(), v.subsystem.as_deref()),
        (Some("my root"), Some("baton-test"))
    );
    assert_eq!(v.key_size, 32);
    assert_eq!(
        (v.segment.offset, v.segment.cipher.as_str()),
        (2097152, "aes-cbc-essiv:sha256")
    );
    let k = &v.keyslots[0];
    assert_eq!(
        (k.area.offset, k.area.size, k.area.key_size),
        (65536, 128000, 32)
    );
    assert_eq!((k.af.hash.as_str(), k.af.stripes), ("sha1", 4000));
    match &k.kdf {
        Kdf::Argon2 {
            variant,
            time,
            memory,
            lanes,
            salt,
        } => {
            assert_eq!(
                (*variant, *time, *memory, *lanes),
                (Argon2Variant::I, 4, 32768, 1)
            );
            assert_eq!(
                hex(salt),
                "3545eb0806999a34b952bd9c93c4915a79ba993c6828eb3dc8be701780496dbc"
            );
        }
        other => panic!("{other:?}"),
    }
    // LUKS2's digest is as long as its hash: SHA-1's 20 bytes.
    assert_eq!(
        (v.digest.hash.as_str(), hex(&v.digest.value).as_str()),
        ("sha1", "81571d7e3f0993b3c36e863bf3e69e0b4fd9bebb")
    );
    let kc = kernel_cipher(&k.area.cipher).unwrap();
    assert_eq!(
        (kc.alg.as_str(), kc.iv),
        (
            "cbc(aes)",
            Iv::Essiv {
                hash: "sha256".into()
            }
        )
    );
    // The secondary lies at 32 KiB.
    let second = judge_binary(&LUKS2_ARGON2I[32768..], 32768).unwrap();
    assert_eq!(
        (second.which, second.hdr_size, second.seqid),
        (
            Which::Secondary,
            32768,
            judge_binary(LUKS2_ARGON2I, 0).unwrap().seqid
        )
    );
}

#[test]
fn luks2_mid_reencryption_is_refused() {
    assert_eq!(
        read(LUKS2_REENCRYPT).unwrap_err(),
        Error::Unsupported(
            "LUKS2 header requires online-reencrypt-v2, which baton cannot handle".into()
        )
    );
}

#[test]
fn luks1_xts_two_slots() {
    assert_eq!(version(LUKS1_XTS), Some(1));
    let v = read(LUKS1_XTS).unwrap();
    assert_eq!(
        (v.version, v.uuid.as_str()),
        (1, "0b7a7000-0000-4000-8000-000000000011")
    );
    assert_eq!((v.label, v.key_size), (None, 64));
    let s = &v.segment;
    assert_eq!(
        (s.offset, s.size, s.sector_size, s.cipher.as_str()),
        (4096 * 512, None, 512, "aes-xts-plain64")
    );
    let slots: Vec<(u32, u64, u64)> = v
        .keyslots
        .iter()
        .map(|k| (k.id, k.area.offset, k.area.size))
        .collect();
    assert_eq!(slots, [(0, 8 * 512, 256000), (5, 2528 * 512, 256000)]);
    assert_eq!(
        pbkdf2(&v.keyslots[0].kdf),
        (
            "sha256",
            1000,
            "ed6f3a917ec53d1e3d9cf12b12633ce5d9e234158efd54aec4e3ede9fa1589e6".into()
        )
    );
    assert_eq!(pbkdf2(&v.keyslots[1].kdf).1, 2000);
    assert_eq!(
        (v.keyslots[1].af.stripes, v.keyslots[1].af.hash.as_str()),
        (4000, "sha256")
    );
    assert_eq!(
        (
            v.keyslots[1].area.cipher.as_str(),
            v.keyslots[1].area.key_size
        ),
        ("aes-xts-plain64", 64)
    );
    let d = &v.digest;
    assert_eq!(
        (d.hash.as_str(), d.iterations, d.keyslots.as_slice()),
        ("sha256", 1000, [0, 5].as_slice())
    );
    assert_eq!(hex(&d.value), "5ae8d833ac6aba43cc93464023a4963d27c93bb4");
    assert_eq!(
        hex(&d.salt),
        "d639f6cdfd259e4a9a906d0f699434393b8b00894f060ada2568e40301c497ad"
    );
}

#[test]
fn luks1_cbc_essiv_sha1() {
    let v = read(LUKS1_CBC).unwrap();
    assert_eq!(
        (v.uuid.as_str(), v.key_size),
        ("0b7a7000-0000-4000-8000-000000000012", 32)
    );
    assert_eq!(v.segment.cipher, "aes-cbc-essiv:sha256");
    let k = &v.keyslots[0];
    // 32 × 4000 bytes: exactly 250 sectors.
    assert_eq!(
        (k.area.offset, k.area.size, k.area.key_size),
        (4096, 128000, 32)
    );
    assert_eq!(
        pbkdf2(&k.kdf),
        (
            "sha1",
            1000,
            "3aebe07af9ecb6fa148cc069c0b98ff6446861e45a0b04838fa54b3e592dc7ff".into()
        )
    );
    assert_eq!(
        hex(&v.digest.value),
        "13b1b4e46d76b50686a52a2ad2b0b41be4c618bc"
    );
    assert_eq!(v.digest.iterations, 1000);
}

#[test]
fn a_damaged_primary_leaves_the_secondary() {
    let mut dev = LUKS2_PBKDF2.to_vec();
    dev[CSUM_AT] ^= 1;
    let v = read(&dev).unwrap();
    assert_eq!(
        v.warnings,
        ["the primary LUKS2 header is damaged (checksum mismatch): using the secondary header"]
    );
    assert_eq!(v.uuid, "0b7a7000-0000-4000-8000-000000000001");
    assert_eq!(v.keyslots, read(LUKS2_PBKDF2).unwrap().keyslots);
    // Its JSON damaged, past the checksum's reach.
    let mut dev = LUKS2_PBKDF2.to_vec();
    dev[5000] ^= 0x20;
    assert!(read(&dev).unwrap().warnings[0]
        .starts_with("the primary LUKS2 header is damaged (checksum"));
    // Its magic gone: not even LUKS by the primary, but the secondary answers.
    let mut dev = LUKS2_PBKDF2.to_vec();
    dev[..6].fill(0);
    assert_eq!(version(&dev), None);
    assert_eq!(
        read(&dev).unwrap().warnings,
        ["the primary LUKS2 header is damaged (no LUKS2 magic): using the secondary header"]
    );
    // Its size damaged (to another legal size, 32 KiB): the secondary is looked for there,
    // then at every size from 16 KiB.
    let mut dev = LUKS2_PBKDF2.to_vec();
    dev[8..16].copy_from_slice(&0x8000u64.to_be_bytes());
    assert_eq!(judge_binary(&dev, 0).unwrap().hdr_size, 0x8000);
    assert_eq!(
        secondary_offsets(Some(0x8000))[..3],
        [0x8000, 0x4000, 0x1_0000]
    );
    assert_eq!(
        read(&dev).unwrap().warnings,
        ["the primary LUKS2 header is damaged (checksum mismatch): using the secondary header"]
    );
}

#[test]
fn a_damaged_secondary_is_reported() {
    let mut dev = LUKS2_PBKDF2.to_vec();
    dev[HDR + CSUM_AT] ^= 1;
    let v = read(&dev).unwrap();
    assert_eq!(
        v.warnings,
        ["the secondary LUKS2 header is damaged (checksum mismatch)"]
    );
    // Cut short: not read whole.
    let v = read(&LUKS2_PBKDF2[..24000]).unwrap();
    assert_eq!(
        v.warnings,
        ["the secondary LUKS2 header is damaged (cut short at 7616 of its 16384 bytes)"]
    );
    let v = read(&LUKS2_PBKDF2[..18000]).unwrap();
    assert_eq!(
        v.warnings,
        ["the secondary LUKS2 header is damaged (cut short at 1616 bytes)"]
    );
    let v = read(&LUKS2_PBKDF2[..HDR]).unwrap();
    assert_eq!(
        v.warnings,
        ["the secondary LUKS2 header is damaged (no LUKS2 magic)"]
    );
}

#[test]
fn both_damaged_is_an_error() {
    let mut dev = LUKS2_PBKDF2.to_vec();
    dev[CSUM_AT] ^= 1;
    dev[HDR + CSUM_AT] ^= 1;
    assert_eq!(
        read(&dev).unwrap_err(),
        Error::Invalid(
            "both LUKS2 headers are damaged: the primary (checksum mismatch), the secondary (checksum mismatch)".into()
        )
    );
    assert_eq!(read(&LUKS2_PBKDF2[..100]).unwrap_err().to_string(),
        "both LUKS2 headers are damaged: the primary (cut short at 100 bytes), the secondary (no LUKS2 magic)");
    assert_eq!(read(&[0; 65536]).unwrap_err(), Error::NotLuks);
    assert_eq!(read(&[]).unwrap_err(), Error::NotLuks);
}

#[test]
fn the_newer_copy_wins() {
    let bump = |offset: usize| {
        let mut dev = LUKS2_PBKDF2.to_vec();
        let seqid = u64::from_be_bytes(dev[offset + SEQID_AT..][..8].try_into().unwrap());
        dev[offset + SEQID_AT..][..8].copy_from_slice(&(seqid + 1).to_be_bytes());
        // Told apart by their labels.
        dev[offset + 24..offset + 24 + 6].copy_from_slice(b"newer\0");
        reseal(&mut dev, offset, HDR);
        (dev, seqid)
    };
    let (dev, seqid) = bump(HDR);
    let v = read(&dev).unwrap();
    assert_eq!(v.label.as_deref(), Some("newer"));
    assert_eq!(
        v.warnings,
        [format!("the primary LUKS2 header is older (seqid {seqid}) than the secondary (seqid {}): using the secondary header", seqid + 1)]
    );
    let (dev, seqid) = bump(0);
    let v = read(&dev).unwrap();
    assert_eq!(v.label.as_deref(), Some("newer"));
    assert_eq!(
        v.warnings,
        [format!(
            "the secondary LUKS2 header is older (seqid {seqid}) than the primary (seqid {})",
            seqid + 1
        )]
    );
}

#[test]
fn binary_header_rules() {
    let copy_error = |edit: &dyn Fn(&mut Vec<u8>)| {
        let mut dev = LUKS2_PBKDF2.to_vec();
        edit(&mut dev);
        reseal(&mut dev, 0, HDR);
        luks2::judge_copy(&dev, 0).unwrap_err().to_string()
    };
    assert_eq!(copy_error(&|d| d[7] = 3), "version 3, not 2");
    assert_eq!(
        copy_error(&|d| d[8..16].copy_from_slice(&0x5000u64.to_be_bytes())),
        "size 20480 is not a power of two from 16 KiB to 4 MiB"
    );
    assert_eq!(
        copy_error(&|d| d[256..264].copy_from_slice(&5u64.to_be_bytes())),
        "it says it lies at 5, not 0"
    );
    assert_eq!(
        copy_error(&|d| d[72..79].copy_from_slice(b"sha1\0\0\0")),
        "checksum algorithm \"sha1\": not supported"
    );
    assert_eq!(
        copy_error(&|d| d[168] = 0x7f),
        "UUID is not NUL-terminated printable text"
    );
    assert_eq!(
        copy_error(&|d| d[168..208].fill(b'1')),
        "UUID is not NUL-terminated printable text"
    );
    // Found at 16 KiB, a secondary must say so, and be that large.
    let sec = |edit: &dyn Fn(&mut Vec<u8>)| {
        let mut dev = LUKS2_PBKDF2.to_vec();
        edit(&mut dev);
        judge_binary(&dev[HDR..], HDR as u64)
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        sec(&|d| d[HDR + 256..][..8].copy_from_slice(&0u64.to_be_bytes())),
        "it says it lies at 0, not 16384"
    );
    assert_eq!(
        sec(&|d| {
            d[HDR + 8..][..8].copy_from_slice(&0x8000u64.to_be_bytes());
        }),
        "its size 32768 is not its offset 16384"
    );
    assert_eq!(
        judge_binary(&LUKS2_PBKDF2[HDR..], 0).unwrap_err(),
        Error::NotLuks
    );
    // Labels: printable UTF-8, else none; 47 bytes at most.
    let label = |bytes: &[u8]| {
        let mut dev = LUKS2_PBKDF2.to_vec();
        dev[24..72].fill(0);
        dev[24..24 + bytes.len()].copy_from_slice(bytes);
        judge_binary(&dev, 0).unwrap().label
    };
    assert_eq!(label("données".as_bytes()).as_deref(), Some("données"));
    assert_eq!(label(b"a\tb"), None);
    assert_eq!(label(b"\xff"), None);
    assert_eq!(label(&[b'x'; 48]).map(|l| l.len()), Some(47));
}

#[test]
fn edited_metadata_is_refused_by_name() {
    let requires = edit_json(
        LUKS2_PBKDF2,
        "\"config\":{",
        "\"config\":{\"requirements\":{\"mandatory\":[\"online-reencrypt\"]},",
    );
    assert_eq!(
        read(&requires).unwrap_err(),
        Error::Unsupported(
            "LUKS2 header requires online-reencrypt, which baton cannot handle".into()
        )
    );
    let integrity = r#""sector_size":512,"integrity":{"type":"hmac(sha256)","journal_encryption":"none","journal_integrity":"none"}"#;
    let dev = edit_json(LUKS2_PBKDF2, "\"sector_size\":512", integrity);
    assert_eq!(
        read(&dev).unwrap_err().to_string(),
        "LUKS2 segment 0 has integrity protection (hmac(sha256)): not supported"
    );
    // An edit that keeps to the rules reads back.
    let discards = edit_json(
        LUKS2_PBKDF2,
        "\"config\":{",
        "\"config\":{\"flags\":[\"allow-discards\"],",
    );
    let v = read(&discards).unwrap();
    assert!(v.segment.flags.allow_discards && v.warnings.is_empty());
}

#[test]
fn json_area_rules() {
    let text = json_of(LUKS2_PBKDF2);
    let error = |dev: &[u8]| luks2::judge_copy(dev, 0).unwrap_err().to_string();
    assert_eq!(
        error(&with_json(LUKS2_PBKDF2, format!(" {text}").as_bytes())),
        "JSON area does not start with an object"
    );
    let mut trailing = with_json(LUKS2_PBKDF2, text.as_bytes());
    trailing[HDR - 1] = b' ';
    reseal(&mut trailing, 0, HDR);
    assert_eq!(
        error(&trailing),
        "JSON area holds more after its terminating NUL"
    );
    assert_eq!(
        error(&with_json(LUKS2_PBKDF2, &[b'{'; HDR - 4096])),
        "JSON area has no terminating NUL"
    );
    let broken = with_json(LUKS2_PBKDF2, text.replacen(':', ";", 1).as_bytes());
    assert_eq!(error(&broken), "JSON metadata: expected a colon at byte 11");
    let dup = with_json(
        LUKS2_PBKDF2,
        text.replacen("\"tokens\"", "\"keyslots\"", 1).as_bytes(),
    );
    assert!(error(&dup).starts_with("JSON metadata: duplicate key at byte"));
    let deep = format!("{{\"a\":{}{}}}", "[".repeat(40), "]".repeat(40));
    assert_eq!(
        error(&with_json(LUKS2_PBKDF2, deep.as_bytes())),
        "JSON metadata: nested too deeply at byte 36"
    );
    // Valid JSON, not LUKS2 metadata: the copy is fine, its reading is not.
    let v = read(&with_json(LUKS2_PBKDF2, b"{}")).unwrap_err();
    assert_eq!(v.to_string(), "LUKS2 metadata has no \"config\"");
}
