//! lvm2's text metadata format, as it lies in a PV's metadata area: `key = value` lines and
//! `name { ... }` sections, values being strings, integers and lists of them, `#` starting a
//! comment. Read from a disk, so untrusted: nesting, entries and string lengths are bounded,
//! and anything outside the grammar is an error naming where it stands.

/// Sections nest this deep at most: a VG's segments are at depth 4.
const MAX_DEPTH: usize = 8;
/// Entries and list items in all: a VG of a thousand LVs has a few tens of thousands.
const MAX_ITEMS: usize = 1 << 18;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Str(String),
    Int(i64),
    List(Vec<Value>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Value(Value),
    Section(Section),
}

/// A section's entries, in the order written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Section {
    pub entries: Vec<(String, Entry)>,
}

impl Section {
    pub fn value(&self, key: &str) -> Option<&Value> {
        self.entries.iter().find_map(|(k, e)| match e {
            Entry::Value(v) if k == key => Some(v),
            _ => None,
        })
    }

    pub fn section(&self, key: &str) -> Option<&Section> {
        self.sections().find_map(|(k, s)| (k == key).then_some(s))
    }

    pub fn sections(&self) -> impl Iterator<Item = (&str, &Section)> {
        self.entries.iter().filter_map(|(k, e)| match e {
            Entry::Section(s) => Some((k.as_str(), s)),
            Entry::Value(_) => None,
        })
    }

    pub fn str(&self, key: &str) -> Option<&str> {
        match self.value(key)? {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn int(&self, key: &str) -> Option<i64> {
        match self.value(key)? {
            Value::Int(n) => Some(*n),
            _ => None,
        }
    }

    /// A list of strings (`status = ["READ", "WRITE"]`); `None` if any item is not one.
    pub fn strings(&self, key: &str) -> Option<Vec<&str>> {
        match self.value(key)? {
            Value::List(items) => items
                .iter()
                .map(|v| match v {
                    Value::Str(s) => Some(s.as_str()),
                    _ => None,
                })
                .collect(),
            _ => None,
        }
    }
}

/// Parses a whole metadata text into its top-level section.
pub fn parse(text: &str) -> Result<Section, String> {
    let mut parser = Parser {
        bytes: text.as_bytes(),
        at: 0,
        items: 0,
    };
    let top = parser.section(0)?;
    match parser.peek() {
        None => Ok(top),
        Some(_) => Err(parser.error("a '}' without its '{'")),
    }
}

struct Parser<'a> {
    bytes: &'a [u8],
    at: usize,
    items: usize,
}

impl Parser<'_> {
    /// Entries up to a `}` (left for the caller) or the end.
    fn section(&mut self, depth: usize) -> Result<Section, String> {
        if depth > MAX_DEPTH {
            return Err(self.error("sections nested too deep"));
        }
        let mut section = Section::default();
        while let Some(c) = self.peek() {
            if c == b'}' {
                break;
            }
            self.count()?;
            let key = self.word()?;
            match self.peek() {
                Some(b'=') => {
                    self.at += 1;
                    let value = self.value(0)?;
                    section.entries.push((key, Entry::Value(value)));
                }
                Some(b'{') => {
                    self.at += 1;
                    let inner = self.section(depth + 1)?;
                    if self.peek() != Some(b'}') {
                        return Err(self.error("a section without its '}'"));
                    }
                    self.at += 1;
                    section.entries.push((key, Entry::Section(inner)));
                }
                _ => return Err(self.error("expected '=' or '{' after a name")),
            }
        }
        Ok(section)
    }

    fn value(&mut self, depth: usize) -> Result<Value, String> {
        match self.peek() {
            Some(b'"') => self.string().map(Value::Str),
            Some(b'[') if depth == 0 => {
                self.at += 1;
                let mut items = Vec::new();
                loop {
                    if self.peek() == Some(b']') {
                        self.at += 1;
                        return Ok(Value::List(items));
                    }
                    if !items.is_empty() {
                        if self.peek() != Some(b',') {
                            return Err(self.error("expected ',' or ']' in a list"));
                        }
                        self.at += 1;
                    }
                    self.count()?;
                    items.push(self.value(depth + 1)?);
                }
            }
            Some(c) if c == b'-' || c.is_ascii_digit() => self.integer().map(Value::Int),
            _ => Err(self.error("expected a value")),
        }
    }

    /// A name: letters, digits and `_.+-` (what lvm2 allows in VG and LV names).
    fn word(&mut self) -> Result<String, String> {
        let start = self.at;
        while let Some(&c) = self.bytes.get(self.at) {
            if !(c.is_ascii_alphanumeric() || b"_.+-".contains(&c)) {
                break;
            }
            self.at += 1;
        }
        let word = self.bytes.get(start..self.at).unwrap_or_default();
        if word.is_empty() {
            return Err(self.error("expected a name"));
        }
        Ok(String::from_utf8_lossy(word).into_owned())
    }

    /// `"..."` with `\"` and `\\` escapes.
    fn string(&mut self) -> Result<String, String> {
        self.at += 1;
        let mut out = Vec::new();
        loop {
            match self.bytes.get(self.at) {
                None => return Err(self.error("a string without its closing quote")),
                Some(b'"') => {
                    self.at += 1;
                    return Ok(String::from_utf8_lossy(&out).into_owned());
                }
                Some(b'\\') => {
                    let escaped = self.bytes.get(self.at + 1).copied();
                    out.push(escaped.ok_or_else(|| self.error("a string ends in '\\'"))?);
                    self.at += 2;
                }
                Some(&c) => {
                    out.push(c);
                    self.at += 1;
                }
            }
        }
    }

    fn integer(&mut self) -> Result<i64, String> {
        let start = self.at;
        if self.bytes.get(self.at) == Some(&b'-') {
            self.at += 1;
        }
        while self.bytes.get(self.at).is_some_and(u8::is_ascii_digit) {
            self.at += 1;
        }
        let text = std::str::from_utf8(self.bytes.get(start..self.at).unwrap_or_default())
            .unwrap_or_default();
        text.parse()
            .map_err(|_| self.error("a number out of range or malformed"))
    }

    /// The next significant byte, past blanks and comments (not consumed).
    fn peek(&mut self) -> Option<u8> {
        loop {
            let c = *self.bytes.get(self.at)?;
            if c == b'#' {
                while self.bytes.get(self.at).is_some_and(|&c| c != b'\n') {
                    self.at += 1;
                }
            } else if c.is_ascii_whitespace() || c == 0 {
                self.at += 1;
            } else {
                return Some(c);
            }
        }
    }

    fn count(&mut self) -> Result<(), String> {
        self.items += 1;
        if self.items > MAX_ITEMS {
            return Err(self.error("too many entries"));
        }
        Ok(())
    }

    fn error(&self, what: &str) -> String {
        let before = self.bytes.get(..self.at).unwrap_or_default();
        let line = 1 + before.iter().filter(|&&c| c == b'\n').count();
        format!("metadata line {line}: {what}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_values_and_comments() {
        let text = "vg0 {\nid = \"a-b\"\nseqno = 2\nstatus = [\"READ\", \"WRITE\"]\nflags = []\n\
                    pvs {\npv0 {\npe_start = 2048 # sectors\n}\n}\n}\n\
                    # Generated\ncontents = \"Text \\\"Format\\\"\"\nversion = 1\n\0";
        let top = parse(text).unwrap();
        let vg = top.section("vg0").unwrap();
        assert_eq!(vg.str("id"), Some("a-b"));
        assert_eq!(vg.int("seqno"), Some(2));
        assert_eq!(vg.strings("status"), Some(vec!["READ", "WRITE"]));
        assert_eq!(vg.strings("flags"), Some(vec![]));
        let pv0 = vg.section("pvs").unwrap().section("pv0").unwrap();
        assert_eq!(pv0.int("pe_start"), Some(2048));
        assert_eq!(top.str("contents"), Some("Text \"Format\""));
        assert_eq!(top.int("version"), Some(1));
        assert_eq!(top.sections().count(), 1);
    }

    #[test]
    fn malformed_text_is_an_error_with_its_line() {
        for (text, line) in [
            ("a {\n b = 1\n", 3),
            ("a = \"x", 1),
            ("a\n= [1, 2", 2),
            ("}", 1),
            ("a = 99999999999999999999", 1),
            ("a = [[1]]", 1),
            ("= 1", 1),
        ] {
            let err = parse(text).unwrap_err();
            assert!(
                err.starts_with(&format!("metadata line {line}:")),
                "{text:?}: {err}"
            );
        }
        let deep = "a {".repeat(MAX_DEPTH + 2);
        assert!(parse(&deep).unwrap_err().contains("too deep"));
        let many = "a = 1\n".repeat(MAX_ITEMS + 1);
        assert!(parse(&many).unwrap_err().contains("too many"));
    }
}
