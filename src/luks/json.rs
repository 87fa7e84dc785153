//! A JSON parser (RFC 8259) for LUKS2 metadata, bounded in every dimension a hostile header
//! could stretch: the text's length, the nesting depth, the number of values and each
//! string's length. It reads the JSON area as the header stores it, NUL-padded: the text ends
//! at the first NUL. Objects keep their members in order, and a key given twice is an error
//! (which of the two a reader took would otherwise be a guess).

use std::fmt;

/// A parsed value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Number(Number),
    String(String),
    Array(Vec<Value>),
    /// Members in the order written; keys are unique.
    Object(Vec<(String, Value)>),
}

/// A number: exact where it is an integer that fits 64 bits. Other numbers are checked
/// against the grammar but not converted: LUKS2 metadata has none, and float parsing
/// would cost the init some 20 KB of code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Number {
    /// An integer from 0 to `u64::MAX` (`-0` included).
    Unsigned(u64),
    /// An integer below 0 down to `i64::MIN`.
    Negative(i64),
    /// A fraction, an exponent, or an integer too large for the two above.
    Inexact,
}

/// Why a text is not JSON (or breaks a bound), and the byte where that was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub offset: usize,
    pub reason: &'static str,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.reason, self.offset)
    }
}

impl std::error::Error for Error {}

/// The bounds a parse keeps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of text, up to the first NUL.
    pub max_len: usize,
    /// Arrays and objects inside each other; the outermost is level 1.
    pub max_depth: usize,
    /// Values of any kind, containers and members included.
    pub max_values: usize,
    /// Bytes of one string (a key or a value) once unescaped.
    pub max_string: usize,
}

impl Limits {
    /// For a LUKS2 JSON area: at most 4 MiB - 4 KiB (the largest header cryptsetup allows,
    /// less its binary part). cryptsetup's own metadata nests 4 levels deep and holds a few
    /// hundred values; tokens (written by other tools) may hold more, and blobs as strings.
    pub const LUKS2: Limits = Limits {
        max_len: 4 * 1024 * 1024 - 4096,
        max_depth: 32,
        max_values: 65536,
        max_string: 1024 * 1024,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::LUKS2
    }
}

impl Value {
    /// An object's member.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_object()?
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    pub fn as_object(&self) -> Option<&[(String, Value)]> {
        match self {
            Value::Object(members) => Some(members),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(items) => Some(items),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// A non-negative integer.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Value::Number(Number::Unsigned(n)) => Some(*n),
            _ => None,
        }
    }
}

/// Parses `bytes` up to the first NUL with the LUKS2 bounds.
pub fn parse(bytes: &[u8]) -> Result<Value, Error> {
    parse_with(bytes, &Limits::LUKS2)
}

/// Parses `bytes` up to the first NUL (or their end): one value, with only whitespace around.
pub fn parse_with(bytes: &[u8], limits: &Limits) -> Result<Value, Error> {
    // Look for the NUL no further than one byte past the bound, so a huge input costs no
    // more than a legal one.
    let end = match bytes
        .iter()
        .take(limits.max_len.saturating_add(1))
        .position(|&b| b == 0)
    {
        Some(nul) => nul,
        None if bytes.len() > limits.max_len => return Err(err(limits.max_len, "text too long")),
        None => bytes.len(),
    };
    let text = bytes.get(..end).unwrap_or_default();
    let text = std::str::from_utf8(text).map_err(|e| err(e.valid_up_to(), "not UTF-8"))?;
    let mut parser = Parser {
        text,
        bytes: text.as_bytes(),
        pos: 0,
        values: 0,
        limits,
    };
    parser.skip_whitespace();
    let value = parser.value(0)?;
    parser.skip_whitespace();
    if parser.pos != parser.bytes.len() {
        return Err(err(parser.pos, "text after the value"));
    }
    Ok(value)
}

fn err(offset: usize, reason: &'static str) -> Error {
    Error { offset, reason }
}

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    values: usize,
    limits: &'a Limits,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    /// The value at `pos`; `depth` containers enclose it.
    fn value(&mut self, depth: usize) -> Result<Value, Error> {
        self.values += 1;
        if self.values > self.limits.max_values {
            return Err(err(self.pos, "too many values"));
        }
        match self.peek() {
            Some(b'{') => self.object(depth + 1),
            Some(b'[') => self.array(depth + 1),
            Some(b'"') => self.string().map(Value::String),
            Some(b't') => self.literal("true", Value::Bool(true)),
            Some(b'f') => self.literal("false", Value::Bool(false)),
            Some(b'n') => self.literal("null", Value::Null),
            Some(b'-' | b'0'..=b'9') => self.number().map(Value::Number),
            Some(_) => Err(err(self.pos, "unexpected character")),
            None => Err(err(self.pos, "unexpected end of text")),
        }
    }

    fn literal(&mut self, word: &str, value: Value) -> Result<Value, Error> {
        if self
            .text
            .get(self.pos..)
            .is_some_and(|rest| rest.starts_with(word))
        {
            self.pos += word.len();
            Ok(value)
        } else {
            Err(err(self.pos, "unknown literal"))
        }
    }

    fn enter(&mut self, depth: usize) -> Result<(), Error> {
        if depth > self.limits.max_depth {
            return Err(err(self.pos, "nested too deeply"));
        }
        self.pos += 1; // the opening bracket
        self.skip_whitespace();
        Ok(())
    }

    /// After a member or an element: `true` at the closing bracket, `false` after a comma.
    fn next_or_close(&mut self, close: u8) -> Result<bool, Error> {
        self.skip_whitespace();
        match self.peek() {
            Some(b',') => {
                self.pos += 1;
                self.skip_whitespace();
                Ok(false)
            }
            Some(c) if c == close => {
                self.pos += 1;
                Ok(true)
            }
            Some(_) => Err(err(self.pos, "expected a comma or a closing bracket")),
            None => Err(err(self.pos, "unexpected end of text")),
        }
    }

    fn array(&mut self, depth: usize) -> Result<Value, Error> {
        self.enter(depth)?;
        let mut items = Vec::new();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Value::Array(items));
        }
        loop {
            items.push(self.value(depth)?);
            if self.next_or_close(b']')? {
                return Ok(Value::Array(items));
            }
        }
    }

    fn object(&mut self, depth: usize) -> Result<Value, Error> {
        self.enter(depth)?;
        let mut members = Vec::new();
        let mut key_offsets = Vec::new();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Value::Object(members));
        }
        loop {
            if self.peek() != Some(b'"') {
                return Err(err(self.pos, "expected a key"));
            }
            key_offsets.push(self.pos);
            let key = self.string()?;
            self.skip_whitespace();
            if self.peek() != Some(b':') {
                return Err(err(self.pos, "expected a colon"));
            }
            self.pos += 1;
            self.skip_whitespace();
            let value = self.value(depth)?;
            members.push((key, value));
            if self.next_or_close(b'}')? {
                break;
            }
        }
        // Sorted, a key given twice sits next to itself: O(n log n) whatever the keys.
        let mut keys: Vec<(&str, usize)> = members
            .iter()
            .map(|(k, _)| k.as_str())
            .zip(key_offsets)
            .collect();
        keys.sort_unstable();
        let duplicate = keys.windows(2).find_map(|pair| match pair {
            [(a, _), (b, offset)] if a == b => Some(*offset),
            _ => None,
        });
        if let Some(offset) = duplicate {
            return Err(err(offset, "duplicate key"));
        }
        Ok(Value::Object(members))
    }

    /// A string at `pos` (its opening quote), unescaped.
    fn string(&mut self) -> Result<String, Error> {
        let start = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            let run = self.pos;
            while matches!(self.peek(), Some(c) if c != b'"' && c != b'\\' && c >= 0x20) {
                self.pos += 1;
            }
            // The run ends at an ASCII byte (or the end), so at a character boundary.
            out.push_str(self.text.get(run..self.pos).unwrap_or_default());
            if out.len() > self.limits.max_string {
                return Err(err(start, "string too long"));
            }
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => out.push(self.escape()?),
                Some(_) => return Err(err(self.pos, "control character in a string")),
                None => return Err(err(start, "unterminated string")),
            }
        }
    }

    /// The escape at `pos` (its backslash).
    fn escape(&mut self) -> Result<char, Error> {
        let at = self.pos;
        self.pos += 1;
        let c = self.peek().ok_or_else(|| err(at, "unterminated string"))?;
        self.pos += 1;
        Ok(match c {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => return self.unicode(at),
            _ => return Err(err(at, "unknown escape")),
        })
    }

    /// `\uXXXX` (the backslash at `at`, `pos` after the `u`), a surrogate pair in two.
    fn unicode(&mut self, at: usize) -> Result<char, Error> {
        let first = self.hex4()?;
        let code = match first {
            0xD800..=0xDBFF => {
                if self
                    .text
                    .get(self.pos..)
                    .is_some_and(|r| r.starts_with("\\u"))
                {
                    self.pos += 2;
                } else {
                    return Err(err(at, "unpaired surrogate"));
                }
                let second = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&second) {
                    return Err(err(at, "unpaired surrogate"));
                }
                0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
            }
            0xDC00..=0xDFFF => return Err(err(at, "unpaired surrogate")),
            _ => first,
        };
        char::from_u32(code).ok_or_else(|| err(at, "invalid code point"))
    }

    fn hex4(&mut self) -> Result<u32, Error> {
        let digits = self
            .text
            .get(self.pos..self.pos + 4)
            .filter(|d| d.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| err(self.pos, "expected 4 hex digits"))?;
        self.pos += 4;
        u32::from_str_radix(digits, 16).map_err(|_| err(self.pos, "expected 4 hex digits"))
    }

    fn digits(&mut self) -> usize {
        let from = self.pos;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
        self.pos - from
    }

    fn number(&mut self) -> Result<Number, Error> {
        let start = self.pos;
        let negative = self.peek() == Some(b'-');
        if negative {
            self.pos += 1;
        }
        let int_start = self.pos;
        match self.digits() {
            0 => return Err(err(self.pos, "expected a digit")),
            n if n > 1 && self.bytes.get(int_start) == Some(&b'0') => {
                return Err(err(int_start, "leading zero"))
            }
            _ => {}
        }
        let mut integral = true;
        if self.peek() == Some(b'.') {
            self.pos += 1;
            integral = false;
            if self.digits() == 0 {
                return Err(err(self.pos, "expected a digit"));
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            integral = false;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(err(self.pos, "expected a digit"));
            }
        }
        let text = self.text.get(start..self.pos).unwrap_or_default();
        if text.len() > self.limits.max_string {
            return Err(err(start, "number too long"));
        }
        if integral {
            let exact = match negative {
                false => text.parse().ok().map(Number::Unsigned),
                true => match text.parse::<i64>() {
                    Ok(0) => Some(Number::Unsigned(0)),
                    Ok(n) => Some(Number::Negative(n)),
                    Err(_) => None,
                },
            };
            if let Some(n) = exact {
                return Ok(n);
            }
        }
        Ok(Number::Inexact)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<Value, Error> {
        parse(text.as_bytes())
    }

    fn s(text: &str) -> Value {
        Value::String(text.into())
    }

    #[test]
    fn values() {
        assert_eq!(p(" null ").unwrap(), Value::Null);
        assert_eq!(p("true").unwrap(), Value::Bool(true));
        assert_eq!(
            p("[false]").unwrap(),
            Value::Array(vec![Value::Bool(false)])
        );
        assert_eq!(p("\"a\"").unwrap(), s("a"));
        let v = p(r#"{"a":[1,{"b":null}],"c":"d","e":{}, "f":[]}"#).unwrap();
        assert_eq!(v.get("c"), Some(&s("d")));
        assert_eq!(v.get("a").unwrap().as_array().unwrap().len(), 2);
        assert_eq!(v.get("e"), Some(&Value::Object(vec![])));
        assert_eq!(v.get("f"), Some(&Value::Array(vec![])));
        assert_eq!(v.get("x"), None);
        let keys: Vec<&str> = v
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, _)| k.as_str())
            .collect();
        assert_eq!(keys, ["a", "c", "e", "f"]);
    }

    #[test]
    fn numbers() {
        let n = |t: &str| match p(t).unwrap() {
            Value::Number(n) => n,
            other => panic!("{other:?}"),
        };
        assert_eq!(n("0"), Number::Unsigned(0));
        assert_eq!(n("-0"), Number::Unsigned(0));
        assert_eq!(n("18446744073709551615"), Number::Unsigned(u64::MAX));
        assert_eq!(n("18446744073709551616"), Number::Inexact);
        assert_eq!(n("-9223372036854775808"), Number::Negative(i64::MIN));
        assert_eq!(n("-2"), Number::Negative(-2));
        assert_eq!(n("2.5e3"), Number::Inexact);
        assert_eq!(n("1E-2"), Number::Inexact);
        assert_eq!(n("-0.5"), Number::Inexact);
        for bad in ["01", "-", "1.", ".5", "1e", "+1", "1e+", "--1", "0x10"] {
            assert!(p(bad).is_err(), "{bad}");
        }
        assert_eq!(p("4").unwrap().as_u64(), Some(4));
        assert_eq!(p("-4").unwrap().as_u64(), None);
    }

    #[test]
    fn strings_and_escapes() {
        assert_eq!(
            p(r#""a\"\\\/\b\f\n\r\t""#).unwrap(),
            s("a\"\\/\u{8}\u{c}\n\r\t")
        );
        assert_eq!(p(r#""caf\u00e9 \ud83d\ude00""#).unwrap(), s("café 😀"));
        assert_eq!(p("\"café 😀\"").unwrap(), s("café 😀"));
        assert_eq!(p(r#""\u0000""#).unwrap(), s("\0"));
        let e = |t: &str| p(t).unwrap_err();
        assert_eq!(e(r#""\ud83d""#).reason, "unpaired surrogate");
        assert_eq!(e(r#""\ud83dx""#).reason, "unpaired surrogate");
        assert_eq!(e(r#""\ud83d\u0041""#).reason, "unpaired surrogate");
        assert_eq!(e(r#""\ude00""#).reason, "unpaired surrogate");
        assert_eq!(e(r#""\u12g4""#).reason, "expected 4 hex digits");
        assert_eq!(e(r#""\u12""#).reason, "expected 4 hex digits");
        assert_eq!(
            e(r#""\x""#),
            Error {
                offset: 1,
                reason: "unknown escape"
            }
        );
        assert_eq!(e("\"a\nb\"").reason, "control character in a string");
        assert_eq!(e("\"abc").reason, "unterminated string");
        assert_eq!(e("\"abc\\").reason, "unterminated string");
        assert_eq!(
            parse(b"\"\xff\"").unwrap_err(),
            Error {
                offset: 1,
                reason: "not UTF-8"
            }
        );
    }

    #[test]
    fn syntax_errors() {
        let e = |t: &str| p(t).unwrap_err();
        assert_eq!(
            e(""),
            Error {
                offset: 0,
                reason: "unexpected end of text"
            }
        );
        assert_eq!(
            e("  "),
            Error {
                offset: 2,
                reason: "unexpected end of text"
            }
        );
        assert_eq!(e("[1,]").reason, "unexpected character");
        assert_eq!(e("[1 2]").reason, "expected a comma or a closing bracket");
        assert_eq!(e("[1").reason, "unexpected end of text");
        assert_eq!(e("{\"a\" 1}").reason, "expected a colon");
        assert_eq!(e("{1:2}").reason, "expected a key");
        assert_eq!(e("{\"a\":1,}").reason, "expected a key");
        assert_eq!(e("nul").reason, "unknown literal");
        assert_eq!(
            e("{} {}"),
            Error {
                offset: 3,
                reason: "text after the value"
            }
        );
        assert_eq!(
            e("{\"a\":1,\"b\":2,\"a\":3}"),
            Error {
                offset: 13,
                reason: "duplicate key"
            }
        );
        assert_eq!(
            e("{\"a\":{\"x\":1,\"x\":1}}").to_string(),
            "duplicate key at byte 12"
        );
    }

    #[test]
    fn stops_at_the_first_nul() {
        assert_eq!(
            parse(b"{\"a\":1}\0\0\0")
                .unwrap()
                .get("a")
                .unwrap()
                .as_u64(),
            Some(1)
        );
        assert_eq!(
            parse(b"{\"a\":1}\0garbage")
                .unwrap()
                .as_object()
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            parse(b"{\"a\":\0").unwrap_err().reason,
            "unexpected end of text"
        );
    }

    #[test]
    fn bounds() {
        let limits = Limits {
            max_len: 16,
            max_depth: 3,
            max_values: 6,
            max_string: 4,
        };
        let l = |t: &[u8]| parse_with(t, &limits);
        // Length: the text before the NUL counts, not the padding after it.
        assert!(l(b"[1]\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0").is_ok());
        assert_eq!(
            l(b"[1,2,3,4,5,6,7,8,9]").unwrap_err(),
            Error {
                offset: 16,
                reason: "text too long"
            }
        );
        assert_eq!(l(b"[[[]]]").unwrap(), p("[[[]]]").unwrap());
        assert_eq!(
            l(b"[[[[]]]]").unwrap_err(),
            Error {
                offset: 3,
                reason: "nested too deeply"
            }
        );
        assert_eq!(
            l(b"{\"a\":[[[]]]}").unwrap_err(),
            Error {
                offset: 7,
                reason: "nested too deeply"
            }
        );
        assert!(l(b"[1,2,3,4,5]").is_ok());
        assert_eq!(
            l(b"[1,2,3,4,5,6]").unwrap_err(),
            Error {
                offset: 11,
                reason: "too many values"
            }
        );
        assert!(l(b"[\"abcd\"]").is_ok());
        assert_eq!(
            l(b"[\"abcde\"]").unwrap_err(),
            Error {
                offset: 1,
                reason: "string too long"
            }
        );
        assert_eq!(
            l(b"[\"ab\\n\\n\\n\"]").unwrap_err().reason,
            "string too long"
        );
        assert_eq!(l(b"123456").unwrap_err().reason, "number too long");
        // The default bounds: deep nesting fails at level 33, without deep recursion.
        let deep = "[".repeat(100_000);
        assert_eq!(
            p(&deep).unwrap_err(),
            Error {
                offset: 32,
                reason: "nested too deeply"
            }
        );
        let ok = format!("{}{}", "[".repeat(32), "]".repeat(32));
        assert!(p(&ok).is_ok());
        let many = format!("[{}0]", "0,".repeat(65535));
        assert_eq!(p(&many).unwrap_err().reason, "too many values");
        let fits = format!("[{}0]", "0,".repeat(65534));
        assert_eq!(p(&fits).unwrap().as_array().unwrap().len(), 65535);
        let long = vec![b' '; Limits::LUKS2.max_len + 1];
        assert_eq!(parse(&long).unwrap_err().reason, "text too long");
    }

    #[test]
    fn many_keys_are_checked_quickly() {
        let members: Vec<String> = (0..30000).map(|i| format!("\"k{i}\":{i}")).collect();
        let text = format!("{{{}}}", members.join(","));
        assert_eq!(p(&text).unwrap().as_object().unwrap().len(), 30000);
        let dup = format!("{{{},\"k7\":1}}", members.join(","));
        assert_eq!(p(&dup).unwrap_err().reason, "duplicate key");
    }
}
