//! Shell-style pattern matching as fnmatch(3) does it without flags, for module aliases:
//! `alias=pci:v00001AF4d*sv*sd*bc01sc00i*` is matched against a device's `modalias`, and
//! softdeps name aliases such as `crypto-crc32c`. Supports `*`, `?` and `[...]` classes
//! (with ranges and `!`/`^` negation); a backslash quotes the next character.

/// Whether `text` matches `pattern`. Module aliases and modaliases are ASCII: those are
/// matched byte by byte, without a copy (a boot matches thousands of patterns, and under an
/// emulated CPU every allocation shows); anything else character by character.
pub fn matches(pattern: &str, text: &str) -> bool {
    if pattern.is_ascii() && text.is_ascii() {
        return matches_units(pattern.as_bytes(), text.as_bytes());
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    matches_units(&p, &t)
}

/// One unit of a pattern or text: a byte of ASCII, or a character.
trait Unit: Copy + PartialOrd {
    fn is(self, c: u8) -> bool;
}

impl Unit for u8 {
    fn is(self, c: u8) -> bool {
        self == c
    }
}

impl Unit for char {
    fn is(self, c: u8) -> bool {
        self == char::from(c)
    }
}

fn matches_units<U: Unit>(p: &[U], t: &[U]) -> bool {
    // Iterative matching with one backtrack point for the last `*`: linear in practice and
    // never exponential, whatever the pattern.
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some(c) if c.is(b'*') => {
                star = Some((pi, ti));
                pi += 1;
                continue;
            }
            Some(_) => {
                if let Some((next_pi, ok)) = match_one(p, pi, t.get(ti).copied()) {
                    if ok {
                        pi = next_pi;
                        ti += 1;
                        continue;
                    }
                }
            }
            None => {}
        }
        match star {
            Some((star_pi, star_ti)) => {
                pi = star_pi + 1;
                ti = star_ti + 1;
                star = Some((star_pi, star_ti + 1));
            }
            None => return false,
        }
    }
    p.get(pi..)
        .is_some_and(|rest| rest.iter().all(|c| c.is(b'*')))
}

/// Matches the single pattern element at `pi` against `c`. Returns the index after the
/// element and whether it matched, or `None` if `c` is absent.
fn match_one<U: Unit>(p: &[U], pi: usize, c: Option<U>) -> Option<(usize, bool)> {
    let c = c?;
    let element = *p.get(pi)?;
    if element.is(b'?') {
        Some((pi + 1, true))
    } else if element.is(b'[') {
        match match_class(p, pi + 1, c) {
            Some((end, ok)) => Some((end, ok)),
            // An unterminated class is a literal `[`, as fnmatch treats it.
            None => Some((pi + 1, c.is(b'['))),
        }
    } else if element.is(b'\\') {
        match p.get(pi + 1) {
            Some(&lit) => Some((pi + 2, c == lit)),
            None => Some((pi + 1, c.is(b'\\'))),
        }
    } else {
        Some((pi + 1, c == element))
    }
}

/// A bracket expression starting after `[`. Returns the index after `]` and the result.
fn match_class<U: Unit>(p: &[U], start: usize, c: U) -> Option<(usize, bool)> {
    let mut i = start;
    let negate = p.get(i).is_some_and(|u| u.is(b'!') || u.is(b'^'));
    if negate {
        i += 1;
    }
    let mut found = false;
    let mut first = true;
    loop {
        let lo = *p.get(i)?;
        if lo.is(b']') && !first {
            return Some((i + 1, found != negate));
        }
        first = false;
        if p.get(i + 1).is_some_and(|u| u.is(b'-')) && p.get(i + 2).is_some_and(|hi| !hi.is(b']')) {
            let hi = *p.get(i + 2)?;
            found |= lo <= c && c <= hi;
            i += 3;
        } else {
            found |= lo == c;
            i += 1;
        }
    }
}

/// The literal start of `pattern`, up to its first special character: a text the pattern
/// matches must begin with it, a test far cheaper than the match.
pub fn literal_head(pattern: &str) -> &str {
    // Bytes, not chars: the special characters are ASCII, and a scan of bytes is the
    // cheapest under an emulated CPU, where 1,500 patterns are read at every boot.
    let end = pattern
        .bytes()
        .position(|b| matches!(b, b'*' | b'?' | b'[' | b'\\'))
        .unwrap_or(pattern.len());
    pattern.get(..end).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn literals_and_wildcards() {
        assert!(matches("crypto-crc32c", "crypto-crc32c"));
        assert!(!matches("crypto-crc32c", "crypto-crc32"));
        assert!(matches("fs-*", "fs-ext4"));
        assert!(matches("*", ""));
        assert!(matches("a?c", "abc"));
        assert!(!matches("a?c", "ac"));
        assert!(matches("*x*y*", "aaxbbyc"));
        assert!(!matches("*x*y", "aaxbbyc"));
    }

    #[test]
    fn real_modaliases() {
        let pattern = "pci:v00001AF4d*sv*sd*bc*sc*i*";
        assert!(matches(
            pattern,
            "pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00"
        ));
        assert!(!matches(
            pattern,
            "pci:v00008086d00001001sv00001AF4sd00000002bc01sc00i00"
        ));
        assert!(matches("virtio:d00000002v*", "virtio:d00000002v00001AF4"));
    }

    #[test]
    fn classes() {
        assert!(matches("[abc]x", "bx"));
        assert!(!matches("[!abc]x", "bx"));
        assert!(matches("[a-f]", "d"));
        assert!(!matches("[a-f]", "g"));
        assert!(matches("[]]", "]"));
        assert!(matches("[a-]", "-"));
        assert!(matches("[", "["), "unterminated class is literal");
        assert!(matches("\\*", "*"));
        assert!(!matches("\\*", "x"));
    }

    #[test]
    fn characters_beyond_ascii() {
        assert!(matches("é?", "éa"));
        assert!(matches("[à-ü]x", "éx"));
        assert!(!matches("?", "éa"));
    }

    #[test]
    fn literal_heads() {
        assert_eq!(super::literal_head("pci:v00001AF4d*sv*"), "pci:v00001AF4d");
        assert_eq!(super::literal_head("fs-ext4"), "fs-ext4");
        assert_eq!(super::literal_head("*x"), "");
    }

    #[test]
    fn pathological_patterns_stay_fast() {
        let text = "a".repeat(2000);
        let pattern = format!("{}b", "*a".repeat(50));
        assert!(!matches(&pattern, &text));
    }
}
