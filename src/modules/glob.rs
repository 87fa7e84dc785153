//! Shell-style pattern matching as fnmatch(3) does it without flags, for module aliases:
//! `alias=pci:v00001AF4d*sv*sd*bc01sc00i*` is matched against a device's `modalias`, and
//! softdeps name aliases such as `crypto-crc32c`. Supports `*`, `?` and `[...]` classes
//! (with ranges and `!`/`^` negation); a backslash quotes the next character.

/// Whether `text` matches `pattern`.
pub fn matches(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // Iterative matching with one backtrack point for the last `*`: linear in practice and
    // never exponential, whatever the pattern.
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
                continue;
            }
            Some(_) => {
                if let Some((next_pi, ok)) = match_one(&p, pi, t.get(ti).copied()) {
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
        .is_some_and(|rest| rest.iter().all(|&c| c == '*'))
}

/// Matches the single pattern element at `pi` against `c`. Returns the index after the
/// element and whether it matched, or `None` if `c` is absent.
fn match_one(p: &[char], pi: usize, c: Option<char>) -> Option<(usize, bool)> {
    let c = c?;
    match p.get(pi)? {
        '?' => Some((pi + 1, true)),
        '[' => match match_class(p, pi + 1, c) {
            Some((end, ok)) => Some((end, ok)),
            // An unterminated class is a literal `[`, as fnmatch treats it.
            None => Some((pi + 1, c == '[')),
        },
        '\\' => match p.get(pi + 1) {
            Some(&lit) => Some((pi + 2, c == lit)),
            None => Some((pi + 1, c == '\\')),
        },
        &lit => Some((pi + 1, c == lit)),
    }
}

/// A bracket expression starting after `[`. Returns the index after `]` and the result.
fn match_class(p: &[char], start: usize, c: char) -> Option<(usize, bool)> {
    let mut i = start;
    let negate = matches!(p.get(i), Some('!') | Some('^'));
    if negate {
        i += 1;
    }
    let mut found = false;
    let mut first = true;
    loop {
        let lo = *p.get(i)?;
        if lo == ']' && !first {
            return Some((i + 1, found != negate));
        }
        first = false;
        if p.get(i + 1) == Some(&'-') && p.get(i + 2).is_some_and(|&hi| hi != ']') {
            let hi = *p.get(i + 2)?;
            found |= lo <= c && c <= hi;
            i += 3;
        } else {
            found |= lo == c;
            i += 1;
        }
    }
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
    fn pathological_patterns_stay_fast() {
        let text = "a".repeat(2000);
        let pattern = format!("{}b", "*a".repeat(50));
        assert!(!matches(&pattern, &text));
    }
}
