//! The metadata of a real header (cryptsetup's, tests/fixtures/luks/luks2-pbkdf2.bin), edited
//! into every refusal and every broken rule.

use super::*;
use crate::luks::json;
use crate::luks::volume::{Argon2Variant, Kdf, Priority};

const BASE: &str = r#"{"keyslots":{"0":{"type":"luks2","key_size":64,"af":{"type":"luks1","stripes":4000,"hash":"sha256"},"area":{"type":"raw","offset":"32768","size":"258048","encryption":"aes-xts-plain64","key_size":64},"kdf":{"type":"pbkdf2","hash":"sha256","iterations":1000,"salt":"14tFp1ZQXC1FP9I1I2xL+khQ4lMOEr7mtZJqPoqEf0Q="}}},"tokens":{},"segments":{"0":{"type":"crypt","offset":"16777216","size":"dynamic","iv_tweak":"0","encryption":"aes-xts-plain64","sector_size":512}},"digests":{"0":{"type":"pbkdf2","keyslots":["0"],"segments":["0"],"hash":"sha256","iterations":1000,"salt":"Ohw28xSzcd53t4Hsb3c4UMqvUVQbFnrd8qQlaqKucjQ=","digest":"viy7bZFkvGgZ08jbhSKvR8Siz7s/7fQCBf9spjqIU4M="}},"config":{"json_size":"12288","keyslots_size":"16744448"}}"#;

/// Keyslot 0 as cryptsetup wrote it, to copy into another number.
const SLOT0: &str = r#"{"type":"luks2","key_size":64,"af":{"type":"luks1","stripes":4000,"hash":"sha256"},"area":{"type":"raw","offset":"32768","size":"258048","encryption":"aes-xts-plain64","key_size":64},"kdf":{"type":"pbkdf2","hash":"sha256","iterations":1000,"salt":"14tFp1ZQXC1FP9I1I2xL+khQ4lMOEr7mtZJqPoqEf0Q="}}"#;

fn meta(text: &str) -> Result<Metadata, Error> {
    parse(&json::parse(text.as_bytes()).unwrap(), 16384)
}

/// BASE with each `(from, to)` replaced (each must be there).
fn edited(edits: &[(&str, &str)]) -> String {
    let mut text = BASE.to_owned();
    for (from, to) in edits {
        assert!(text.contains(from), "{from}");
        text = text.replacen(from, to, 1);
    }
    text
}

fn error(edits: &[(&str, &str)]) -> Error {
    meta(&edited(edits)).unwrap_err()
}

fn refused(edits: &[(&str, &str)]) -> String {
    match error(edits) {
        Error::Unsupported(why) => why,
        other => panic!("not a refusal: {other:?}"),
    }
}

fn invalid(edits: &[(&str, &str)]) -> String {
    match error(edits) {
        Error::Invalid(why) => why,
        other => panic!("not invalid: {other:?}"),
    }
}

/// A second keyslot, `n`, at `offset`, covered by the digest.
fn second_slot(n: &str, offset: &str) -> [(&'static str, String); 2] {
    let slot = SLOT0.replace("\"32768\"", &format!("\"{offset}\""));
    [
        ("\"keyslots\":{", format!("\"keyslots\":{{\"{n}\":{slot},")),
        (
            "\"keyslots\":[\"0\"]",
            format!("\"keyslots\":[\"0\",\"{n}\"]"),
        ),
    ]
}

fn with_second(n: &str, offset: &str, more: &[(&str, &str)]) -> String {
    let [a, b] = second_slot(n, offset);
    let mut edits = vec![(a.0, a.1.as_str()), (b.0, b.1.as_str())];
    edits.extend_from_slice(more);
    edited(&edits)
}

#[test]
fn cryptsetups_metadata() {
    let m = meta(BASE).unwrap();
    assert_eq!(m.key_size, 64);
    assert_eq!(m.segment.offset, 16777216);
    assert_eq!(m.segment.size, None);
    assert_eq!(m.segment.cipher, "aes-xts-plain64");
    assert_eq!((m.segment.sector_size, m.segment.iv_tweak), (512, 0));
    assert_eq!(m.segment.flags, Flags::default());
    assert_eq!(m.keyslots.len(), 1);
    let k = &m.keyslots[0];
    assert_eq!((k.id, k.priority, k.key_size), (0, Priority::Normal, 64));
    assert_eq!(
        (k.area.offset, k.area.size, k.area.key_size),
        (32768, 256000, 64)
    );
    assert_eq!((k.af.stripes, k.af.hash.as_str()), (4000, "sha256"));
    assert!(
        matches!(&k.kdf, Kdf::Pbkdf2 { hash, iterations: 1000, salt } if hash == "sha256" && salt.len() == 32)
    );
    assert_eq!(m.digest.keyslots, [0]);
    assert_eq!((m.digest.value.len(), m.digest.salt.len()), (32, 32));
    assert!(m.warnings.is_empty());
}

#[test]
fn requirements_are_refused_by_name() {
    let req = |list: &str| {
        let config = format!("\"config\":{{\"requirements\":{{\"mandatory\":{list}}},");
        refused(&[("\"config\":{", &config)])
    };
    assert_eq!(
        req("[\"online-reencrypt\"]"),
        "LUKS2 header requires online-reencrypt, which baton cannot handle"
    );
    assert_eq!(
        req("[\"online-reencrypt-v2\",\"x\\u001b\"]"),
        "LUKS2 header requires online-reencrypt-v2, \"x\\u{1b}\", which baton cannot handle"
    );
    // Refused before anything else is read: a header mid-reencryption says so.
    let config = "\"config\":{\"requirements\":{\"mandatory\":[\"online-reencrypt\"]},";
    let both = refused(&[
        ("\"config\":{", config),
        ("\"type\":\"crypt\"", "\"type\":\"linear\""),
    ]);
    assert!(both.contains("online-reencrypt"), "{both}");
    // No mandatory requirement: nothing to refuse.
    let empty = "\"config\":{\"requirements\":{\"mandatory\":[],\"optional\":[\"x\"]},";
    assert!(meta(&edited(&[("\"config\":{", empty)])).is_ok());
    assert!(meta(&edited(&[(
        "\"config\":{",
        "\"config\":{\"requirements\":{},"
    )]))
    .is_ok());
    assert_eq!(
        invalid(&[(
            "\"config\":{",
            "\"config\":{\"requirements\":{\"mandatory\":[1]},"
        )]),
        "LUKS2 config requirements: \"mandatory\" is not an array of strings"
    );
}

#[test]
fn segment_refusals() {
    let integrity = r#""sector_size":512,"integrity":{"type":"hmac(sha256)","journal_encryption":"none","journal_integrity":"none"}"#;
    assert_eq!(
        refused(&[("\"sector_size\":512", integrity)]),
        "LUKS2 segment 0 has integrity protection (hmac(sha256)): not supported"
    );
    assert_eq!(
        refused(&[("\"sector_size\":512", "\"sector_size\":512,\"integrity\":1")]),
        "LUKS2 segment 0 has integrity protection (unknown): not supported"
    );
    assert_eq!(
        refused(&[("\"type\":\"crypt\"", "\"type\":\"linear\"")]),
        "LUKS2 segment 0 is of type linear: not supported"
    );
    let two = r#""segments":{"1":{"type":"linear","offset":"0","size":"dynamic"},"#;
    assert_eq!(
        refused(&[("\"segments\":{", two)]),
        "LUKS2 header has 2 segments: baton handles one"
    );
}

#[test]
fn segment_rules() {
    assert_eq!(
        invalid(&[("\"segments\":{\"0\"", "\"segments\":{\"00\"")]),
        "LUKS2 segments: 00 is not a number"
    );
    assert_eq!(
        invalid(&[("\"segments\":{\"0\"", "\"segments\":{\"1\"")]),
        "LUKS2 segments has no \"0\""
    );
    assert_eq!(
        invalid(&[("\"sector_size\":512", "\"sector_size\":8192")]),
        "LUKS2 segment 0: \"sector_size\" is not an integer from 512 to 4096"
    );
    assert_eq!(
        invalid(&[("\"sector_size\":512", "\"sector_size\":1000")]),
        "LUKS2 segment 0: sector_size 1000 is not 512, 1024, 2048 or 4096"
    );
    assert_eq!(
        invalid(&[("\"size\":\"dynamic\"", "\"size\":\"0\"")]),
        "LUKS2 segment 0: size is 0"
    );
    assert_eq!(
        invalid(&[("\"size\":\"dynamic\"", "\"size\":\"1000\"")]),
        "LUKS2 segment 0: offset 16777216 or size Some(1000) is not aligned to its sectors"
    );
    assert!(
        invalid(&[("\"offset\":\"16777216\"", "\"offset\":\"16777217\"")]).contains("not aligned")
    );
    assert_eq!(
        invalid(&[("\"offset\":\"16777216\"", "\"offset\":\"16773120\"")]),
        "LUKS2 segment 0 at offset 16773120 overlaps the keyslots area, which ends at 16777216"
    );
    assert_eq!(
        invalid(&[("\"iv_tweak\":\"0\"", "\"iv_tweak\":\"-1\"")]),
        "LUKS2 segment 0: \"iv_tweak\" is not a decimal number string"
    );
    assert_eq!(
        invalid(&[("\"size\":\"dynamic\"", "\"size\":4096")]),
        "LUKS2 segment 0: \"size\" is not a string"
    );
    let m = meta(&edited(&[
        ("\"offset\":\"16777216\"", "\"offset\":\"0\""),
        ("\"size\":\"dynamic\"", "\"size\":\"1048576\""),
        (
            "\"iv_tweak\":\"0\"",
            "\"iv_tweak\":\"18446744073709551615\"",
        ),
    ]))
    .unwrap();
    assert_eq!(
        (m.segment.offset, m.segment.size, m.segment.iv_tweak),
        (0, Some(1048576), u64::MAX)
    );
}

#[test]
fn config_rules_and_flags() {
    assert_eq!(
        invalid(&[("\"json_size\":\"12288\"", "\"json_size\":\"28672\"")]),
        "LUKS2 config: json_size 28672 does not fit the header's size of 16384"
    );
    assert_eq!(
        invalid(&[(
            "\"keyslots_size\":\"16744448\"",
            "\"keyslots_size\":\"16744449\""
        )]),
        "LUKS2 config: keyslots_size 16744449 is not a multiple of 4096 up to 128 MiB"
    );
    assert!(invalid(&[(
        "\"keyslots_size\":\"16744448\"",
        "\"keyslots_size\":\"134221824\""
    )])
    .contains("up to 128 MiB"));
    assert_eq!(
        invalid(&[(
            ",\"config\":{\"json_size\":\"12288\",\"keyslots_size\":\"16744448\"}",
            ""
        )]),
        "LUKS2 metadata has no \"config\""
    );
    let flags = r#""config":{"flags":["allow-discards","same-cpu-crypt","submit-from-crypt-cpus","no-read-workqueue","no-write-workqueue","x-new"],"#;
    let f = meta(&edited(&[("\"config\":{", flags)]))
        .unwrap()
        .segment
        .flags;
    assert!(f.allow_discards && f.same_cpu_crypt && f.submit_from_crypt_cpus);
    assert!(f.no_read_workqueue && f.no_write_workqueue);
    assert_eq!(f.unknown, ["x-new"]);
    assert_eq!(
        invalid(&[("\"config\":{", "\"config\":{\"flags\":\"allow-discards\",")]),
        "LUKS2 config: \"flags\" is not an array of strings"
    );
}

#[test]
fn digest_rules() {
    assert_eq!(
        refused(&[(
            "\"type\":\"pbkdf2\",\"keyslots\"",
            "\"type\":\"argon2\",\"keyslots\""
        )]),
        "LUKS2 digest 0 is of type argon2: not supported"
    );
    assert_eq!(
        invalid(&[("\"segments\":[\"0\"]", "\"segments\":[\"1\"]")]),
        "LUKS2 header has no digest for segment 0"
    );
    let second = r#""digests":{"1":{"type":"pbkdf2","keyslots":[],"segments":["0"]},"#;
    assert_eq!(
        invalid(&[("\"digests\":{", second)]),
        "LUKS2 digests 1 and 0 both cover segment 0"
    );
    assert_eq!(
        invalid(&[("\"digests\":{\"0\"", "\"digests\":{\"a\"")]),
        "LUKS2 digests: a is not a number"
    );
    assert_eq!(
        invalid(&[("\"keyslots\":[\"0\"]", "\"keyslots\":[\"0\",\"5\"]")]),
        "LUKS2 digest 0 covers keyslot 5, which does not exist"
    );
    assert_eq!(
        invalid(&[("\"keyslots\":[\"0\"]", "\"keyslots\":[\"32\"]")]),
        "LUKS2 digest 0 covers keyslot 32, which does not exist"
    );
    assert_eq!(
        invalid(&[("\"digest\":\"viy7", "\"digest\":\"!iy7")]),
        "LUKS2 digest 0: \"digest\" is not base64 of 1..=64 bytes (not a base64 character at character 0)"
    );
    assert_eq!(
        invalid(&[(
            "\"iterations\":1000,\"salt\":\"Ohw",
            "\"iterations\":0,\"salt\":\"Ohw"
        )]),
        "LUKS2 digest 0: \"iterations\" is not an integer from 1 to 4294967295"
    );
    // Unrelated digests (a keyslot for a key to come) are not read.
    let other = r#""digests":{"7":{"type":"unknown","keyslots":[],"segments":[]},"#;
    assert!(meta(&edited(&[("\"digests\":{", other)])).is_ok());
}

#[test]
fn keyslot_types_and_kdfs() {
    assert_eq!(
        refused(&[(
            "\"type\":\"pbkdf2\",\"hash\":\"sha256\",\"iterations\":1000,\"salt\":\"14t",
            "\"type\":\"scrypt\",\"salt\":\"14t"
        )]),
        "LUKS2 keyslot 0 uses the KDF scrypt: not supported"
    );
    assert_eq!(
        refused(&[("\"type\":\"luks1\"", "\"type\":\"luks2\"")]),
        "LUKS2 keyslot 0 uses the anti-forensic splitter luks2: not supported"
    );
    assert_eq!(
        refused(&[("\"type\":\"raw\"", "\"type\":\"datashift\"")]),
        "LUKS2 keyslot 0 has an area of type datashift: not supported"
    );
    // Another type of keyslot is skipped, by name; this one was the only key.
    assert_eq!(
        refused(&[("\"0\":{\"type\":\"luks2\"", "\"0\":{\"type\":\"reencrypt\"")]),
        "LUKS2 header has no keyslot for segment 0"
    );
    let m = meta(&with_second(
        "1",
        "290816",
        &[("\"0\":{\"type\":\"luks2\"", "\"0\":{\"type\":\"reencrypt\"")],
    ))
    .unwrap();
    assert_eq!(
        m.warnings,
        ["LUKS2 keyslot 0 is of type reencrypt: skipped"]
    );
    assert_eq!(m.keyslots.iter().map(|k| k.id).collect::<Vec<_>>(), [1]);
}

#[test]
fn argon2_bounds() {
    let argon = r#""kdf":{"type":"argon2id","time":4,"memory":1048576,"cpus":4,"salt""#;
    let m = meta(&edited(&[(
        r#""kdf":{"type":"pbkdf2","hash":"sha256","iterations":1000,"salt""#,
        argon,
    )]))
    .unwrap();
    match &m.keyslots[0].kdf {
        Kdf::Argon2 {
            variant,
            time,
            memory,
            lanes,
            salt,
        } => {
            assert_eq!(
                (*variant, *time, *memory, *lanes),
                (Argon2Variant::Id, 4, 1048576, 4)
            );
            assert_eq!(salt.len(), 32);
        }
        other => panic!("{other:?}"),
    }
    let bad = |memory: &str, cpus: &str| {
        let kdf =
            format!(r#""kdf":{{"type":"argon2i","time":1,"memory":{memory},"cpus":{cpus},"salt""#);
        invalid(&[(
            r#""kdf":{"type":"pbkdf2","hash":"sha256","iterations":1000,"salt""#,
            &kdf,
        )])
    };
    assert_eq!(
        bad("31", "4"),
        "LUKS2 keyslot 0 kdf: \"memory\" is not an integer from 32 to 4194304"
    );
    assert_eq!(
        bad("4194305", "1"),
        "LUKS2 keyslot 0 kdf: \"memory\" is not an integer from 8 to 4194304"
    );
    assert_eq!(
        bad("1024", "0"),
        "LUKS2 keyslot 0 kdf: \"cpus\" is not an integer from 1 to 16777215"
    );
    assert_eq!(
        invalid(&[(
            "\"salt\":\"14tFp1ZQXC1FP9I1I2xL+khQ4lMOEr7mtZJqPoqEf0Q=\"",
            "\"salt\":\"AAAA\""
        )]),
        "LUKS2 keyslot 0 kdf: \"salt\" is not 32..=32 bytes but 3"
    );
}

#[test]
fn keyslot_rules() {
    assert_eq!(
        invalid(&[("\"keyslots\":{\"0\"", "\"keyslots\":{\"01\"")]),
        "LUKS2 keyslots: 01 is not a number from 0 to 31"
    );
    assert_eq!(
        invalid(&[("\"key_size\":64,\"af\"", "\"key_size\":8,\"af\"")]),
        "LUKS2 keyslot 0: \"key_size\" is not an integer from 16 to 64"
    );
    assert_eq!(
        invalid(&[("\"stripes\":4000", "\"stripes\":4001")]),
        "LUKS2 keyslot 0 af: \"stripes\" is not an integer from 1 to 4000"
    );
    assert_eq!(
        invalid(&[("\"offset\":\"32768\"", "\"offset\":\"16384\"")]),
        "LUKS2 keyslot 0: its area at offset 16384 lies in the headers, which end at 32768"
    );
    assert_eq!(
        invalid(&[("\"size\":\"258048\"", "\"size\":\"255488\"")]),
        "LUKS2 keyslot 0: its area of 255488 bytes cannot hold its split key of 256000"
    );
    assert_eq!(
        invalid(&[("\"offset\":\"32768\"", "\"offset\":\"16523264\"")]),
        "LUKS2 keyslot 0: its area (258048 bytes at offset 16523264) runs past the keyslots area, which ends at 16777216"
    );
    assert!(meta(&edited(&[(
        "\"offset\":\"32768\"",
        "\"offset\":\"16519168\""
    )]))
    .is_ok());
    assert!(
        invalid(&[("\"size\":\"258048\"", "\"size\":\"18446744073709551615\"")])
            .contains("runs past")
    );
}

#[test]
fn keyslot_order_and_coverage() {
    let prio = |p0: &str, p1: &str| {
        let text = with_second(
            "3",
            "290816",
            &[
                ("\"0\":{\"type\":\"luks2\",", p0),
                ("\"3\":{\"type\":\"luks2\",", p1),
            ],
        );
        let m = meta(&text).unwrap();
        m.keyslots
            .iter()
            .map(|k| (k.id, k.priority))
            .collect::<Vec<_>>()
    };
    let (normal0, normal3) = ("\"0\":{\"type\":\"luks2\",", "\"3\":{\"type\":\"luks2\",");
    assert_eq!(
        prio(normal0, normal3),
        [(0, Priority::Normal), (3, Priority::Normal)]
    );
    let prefer3 = "\"3\":{\"priority\":2,\"type\":\"luks2\",";
    assert_eq!(
        prio(normal0, prefer3),
        [(3, Priority::Prefer), (0, Priority::Normal)]
    );
    let ignore0 = "\"0\":{\"priority\":0,\"type\":\"luks2\",";
    assert_eq!(
        prio(ignore0, normal3),
        [(3, Priority::Normal), (0, Priority::Ignore)]
    );
    let bad = "\"0\":{\"priority\":3,\"type\":\"luks2\",";
    let text = edited(&[("\"0\":{\"type\":\"luks2\",", bad)]);
    assert_eq!(
        meta(&text).unwrap_err().to_string(),
        "LUKS2 keyslot 0: \"priority\" is not an integer from 0 to 2"
    );
    // Overlapping areas, and keys of two sizes, break the header.
    let overlap = meta(&with_second("1", "286720", &[])).unwrap_err();
    assert_eq!(overlap.to_string(), "LUKS2 keyslots 0 and 1 overlap");
    // Slot 0's split key ends at 288768, its area at 290816: areas count whole.
    let overlap = meta(&with_second("1", "289792", &[])).unwrap_err();
    assert_eq!(overlap.to_string(), "LUKS2 keyslots 0 and 1 overlap");
    let sizes = with_second("1", "290816", &[]).replacen("\"key_size\":64", "\"key_size\":32", 1);
    assert_eq!(
        meta(&sizes).unwrap_err().to_string(),
        "LUKS2 keyslots 0 and 1 hold keys of different sizes"
    );
    // A keyslot the digest does not cover holds another key: checked, not kept.
    let uncovered = with_second("1", "290816", &[])
        .replace("\"keyslots\":[\"0\",\"1\"]", "\"keyslots\":[\"0\"]");
    assert_eq!(meta(&uncovered).unwrap().keyslots.len(), 1);
    let broken = uncovered.replacen("\"stripes\":4000", "\"stripes\":0", 1);
    assert!(meta(&broken).is_err());
}
