//! Splitting an option's value into words as a POSIX shell would (what Python's
//! `shlex.split` does for virtme-ng's `--append` and `--qemu-opts`): blanks separate,
//! single quotes keep everything, double quotes keep all but `\"` and `\\`, a backslash
//! outside quotes keeps the next character. No expansion of any kind.

/// The words of `text`, or why it cannot be split (an unclosed quote, a trailing `\`).
pub fn split(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err(format!("an unclosed ' in {text:?}")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => word.push(c),
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err(format!("an unclosed \" in {text:?}")),
                        },
                        Some(c) => word.push(c),
                        None => return Err(format!("an unclosed \" in {text:?}")),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(c) => word.push(c),
                    None => return Err(format!("a \\ at the end of {text:?}")),
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split_as_a_shell_splits_them() {
        assert_eq!(split("a  b\tc").unwrap(), ["a", "b", "c"]);
        assert_eq!(
            split(r#"-device 'virtio-rng-pci,id=r' "x y" a\ b ''"#).unwrap(),
            ["-device", "virtio-rng-pci,id=r", "x y", "a b", ""]
        );
        assert_eq!(split(r#""a\"b\\c\d""#).unwrap(), [r#"a"b\c\d"#]);
        assert_eq!(split("it's'").unwrap(), ["its"]);
        assert!(split("'open").is_err());
        assert!(split("\"open").is_err());
        assert!(split("end\\").is_err());
        assert!(split("   ").unwrap().is_empty());
    }
}
