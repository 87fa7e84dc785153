//! Typed access to the JSON metadata's objects, each failure an error that names the object
//! and the field: `LUKS2 keyslot 3 kdf has no "salt"`.

use std::ops::RangeInclusive;

use crate::luks::base64;
use crate::luks::json::Value;
use crate::luks::volume::{invalid, is_name, Error};

/// One JSON object of the metadata and what to call it in an error.
pub(crate) struct Obj<'a> {
    members: &'a [(String, Value)],
    ctx: String,
}

impl<'a> Obj<'a> {
    pub fn new(value: &'a Value, ctx: impl Into<String>) -> Result<Self, Error> {
        let ctx = ctx.into();
        match value.as_object() {
            Some(members) => Ok(Obj { members, ctx }),
            None => Err(invalid(format!("LUKS2 {ctx} is not an object"))),
        }
    }

    #[cfg(test)]
    pub fn ctx(&self) -> &str {
        &self.ctx
    }

    pub fn members(&self) -> &'a [(String, Value)] {
        self.members
    }

    fn fail(&self, key: &str, what: impl std::fmt::Display) -> Error {
        invalid(format!("LUKS2 {}: \"{key}\" is not {what}", self.ctx))
    }

    pub fn opt(&self, key: &str) -> Option<&'a Value> {
        self.members.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn get(&self, key: &str) -> Result<&'a Value, Error> {
        self.opt(key)
            .ok_or_else(|| invalid(format!("LUKS2 {} has no \"{key}\"", self.ctx)))
    }

    pub fn obj(&self, key: &str) -> Result<Obj<'a>, Error> {
        let ctx = match self.ctx.as_str() {
            "metadata" => key.to_owned(),
            ctx => format!("{ctx} {key}"),
        };
        Obj::new(self.get(key)?, ctx)
    }

    pub fn str(&self, key: &str) -> Result<&'a str, Error> {
        self.get(key)?
            .as_str()
            .ok_or_else(|| self.fail(key, "a string"))
    }

    /// A cipher's, a hash's or a type's name.
    pub fn name(&self, key: &str) -> Result<String, Error> {
        let s = self.str(key)?;
        if is_name(s) {
            Ok(s.to_owned())
        } else {
            Err(self.fail(key, "a name"))
        }
    }

    /// A JSON integer within `range`.
    pub fn int(&self, key: &str, range: RangeInclusive<u64>) -> Result<u64, Error> {
        self.get(key)?
            .as_u64()
            .filter(|n| range.contains(n))
            .ok_or_else(|| {
                let what = format!("an integer from {} to {}", range.start(), range.end());
                self.fail(key, what)
            })
    }

    /// A JSON integer within `range`, as the `u32` every such field of LUKS2 is.
    pub fn int32(&self, key: &str, range: RangeInclusive<u32>) -> Result<u32, Error> {
        let (lo, hi) = (u64::from(*range.start()), u64::from(*range.end()));
        let n = self.int(key, lo..=hi)?;
        u32::try_from(n).map_err(|_| self.fail(key, "a 32-bit integer"))
    }

    /// A 64-bit quantity, stored as a string of decimal digits.
    pub fn decimal(&self, key: &str) -> Result<u64, Error> {
        let s = self.str(key)?;
        decimal(s).ok_or_else(|| self.fail(key, "a decimal number string"))
    }

    /// An array of strings; absent: empty.
    pub fn strings(&self, key: &str) -> Result<Vec<&'a str>, Error> {
        let Some(value) = self.opt(key) else {
            return Ok(Vec::new());
        };
        value
            .as_array()
            .and_then(|items| items.iter().map(Value::as_str).collect::<Option<Vec<_>>>())
            .ok_or_else(|| self.fail(key, "an array of strings"))
    }

    /// Base64 of `len` bytes.
    pub fn base64(&self, key: &str, len: RangeInclusive<usize>) -> Result<Vec<u8>, Error> {
        let s = self.str(key)?;
        match base64::decode(s, *len.end()) {
            Ok(bytes) if len.contains(&bytes.len()) => Ok(bytes),
            Ok(bytes) => Err(self.fail(key, format!("{:?} bytes but {}", len, bytes.len()))),
            Err(e) => Err(self.fail(key, format!("base64 of {len:?} bytes ({e})"))),
        }
    }
}

/// Digits only, 1 to 20 of them, within `u64`.
pub(crate) fn decimal(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// A keyslot's, segment's or digest's number as its key: canonical decimal (no leading
/// zeros, so that "01" cannot alias "1"), up to `max`.
pub(crate) fn numbered(key: &str, max: u32) -> Option<u32> {
    if key.len() > 1 && key.starts_with('0') {
        return None;
    }
    decimal(key)
        .and_then(|n| u32::try_from(n).ok())
        .filter(|&n| n <= max)
}

/// A string from the header for a message: as it is if it is a name, quoted and escaped if
/// not (a console shows what it is given).
pub(crate) fn shown(s: &str) -> String {
    if is_name(s) {
        s.to_owned()
    } else {
        format!("{s:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::luks::json;

    #[test]
    fn access() {
        let v = json::parse(
            br#"{"s":"sha256","n":7,"d":"123","a":["x","y"],"b":"AAE=","o":{},"w":"a b"}"#,
        )
        .unwrap();
        let o = Obj::new(&v, "keyslot 1").unwrap();
        assert_eq!(o.str("s").unwrap(), "sha256");
        assert_eq!(o.name("s").unwrap(), "sha256");
        assert_eq!(o.int("n", 1..=7).unwrap(), 7);
        assert_eq!(o.int32("n", 1..=7).unwrap(), 7);
        assert_eq!(o.decimal("d").unwrap(), 123);
        assert_eq!(o.strings("a").unwrap(), ["x", "y"]);
        assert_eq!(o.strings("none").unwrap(), Vec::<&str>::new());
        assert_eq!(o.base64("b", 2..=2).unwrap(), [0, 1]);
        assert_eq!(o.obj("o").unwrap().ctx(), "keyslot 1 o");
        fn e<T>(r: Result<T, Error>) -> String {
            r.map(|_| ()).unwrap_err().to_string()
        }
        assert_eq!(e(o.get("x")), "LUKS2 keyslot 1 has no \"x\"");
        assert_eq!(e(o.str("n")), "LUKS2 keyslot 1: \"n\" is not a string");
        assert_eq!(e(o.name("w")), "LUKS2 keyslot 1: \"w\" is not a name");
        assert_eq!(
            e(o.int("n", 1..=6)),
            "LUKS2 keyslot 1: \"n\" is not an integer from 1 to 6"
        );
        assert_eq!(
            e(o.int("d", 1..=6)),
            "LUKS2 keyslot 1: \"d\" is not an integer from 1 to 6"
        );
        assert_eq!(e(o.decimal("n")), "LUKS2 keyslot 1: \"n\" is not a string");
        assert_eq!(
            e(o.decimal("s")),
            "LUKS2 keyslot 1: \"s\" is not a decimal number string"
        );
        assert_eq!(
            e(o.strings("s")),
            "LUKS2 keyslot 1: \"s\" is not an array of strings"
        );
        assert_eq!(
            e(o.base64("b", 3..=4)),
            "LUKS2 keyslot 1: \"b\" is not 3..=4 bytes but 2"
        );
        assert_eq!(
            e(o.base64("b", 1..=1)),
            "LUKS2 keyslot 1: \"b\" is not base64 of 1..=1 bytes (longer than allowed at character 0)"
        );
        assert_eq!(e(o.obj("s")), "LUKS2 keyslot 1 s is not an object");
        let top = json::parse(br#"{"config":{}}"#).unwrap();
        assert_eq!(
            Obj::new(&top, "metadata")
                .unwrap()
                .obj("config")
                .unwrap()
                .ctx(),
            "config"
        );
    }

    #[test]
    fn numbers() {
        assert_eq!(decimal("18446744073709551615"), Some(u64::MAX));
        assert_eq!(decimal("18446744073709551616"), None);
        assert_eq!(decimal("000000000000000000001"), None);
        assert_eq!(decimal("0012"), Some(12));
        for bad in ["", "-1", "+1", "1 ", "0x1", "1e3"] {
            assert_eq!(decimal(bad), None, "{bad}");
        }
        assert_eq!(numbered("0", 31), Some(0));
        assert_eq!(numbered("31", 31), Some(31));
        assert_eq!(numbered("32", 31), None);
        assert_eq!(numbered("01", 31), None);
        assert_eq!(numbered("4294967296", u32::MAX), None);
        assert_eq!(shown("online-reencrypt"), "online-reencrypt");
        assert_eq!(shown("a\u{1b}[2J"), "\"a\\u{1b}[2J\"");
    }
}
