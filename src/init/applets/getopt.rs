//! POSIX getopt with the `+` mode both originals use: options end at the first operand, so
//! the init's own arguments (`/sbin/init -s`) are passed through untouched. Short options
//! may be grouped (`-np`), and an option's value may be attached (`-c/dev/tty1`) or follow.

use super::request::Usage;
use std::ffi::OsString;

/// One option met on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opt {
    Flag(char),
    Value(char, OsString),
    Long(String),
}

/// Splits `args` into options and the operands after them. `with_value` lists the short
/// options that take a value, `flags` those that do not; long options are returned as
/// they are, for the caller to judge.
pub fn parse(
    args: &[OsString],
    flags: &str,
    with_value: &str,
) -> Result<(Vec<Opt>, Vec<OsString>), Usage> {
    let mut options = Vec::new();
    let mut rest = args.iter();
    while let Some(arg) = rest.as_slice().first() {
        let bytes = arg.as_encoded_bytes();
        if bytes == b"--" {
            rest.next();
            break;
        }
        if bytes.len() < 2 || bytes.first() != Some(&b'-') {
            break;
        }
        rest.next();
        if let Some(long) = bytes.strip_prefix(b"--") {
            options.push(Opt::Long(String::from_utf8_lossy(long).into_owned()));
            continue;
        }
        let text = arg.to_string_lossy();
        for (at, c) in text.char_indices().skip(1) {
            if flags.contains(c) {
                options.push(Opt::Flag(c));
            } else if with_value.contains(c) {
                let attached = text.get(at + c.len_utf8()..).unwrap_or_default();
                let value = if attached.is_empty() {
                    rest.next()
                        .cloned()
                        .ok_or_else(|| Usage(format!("option requires an argument -- '{c}'")))?
                } else {
                    OsString::from(attached)
                };
                options.push(Opt::Value(c, value));
                break;
            } else {
                return Err(Usage(format!("invalid option -- '{c}'")));
            }
        }
    }
    Ok((options, rest.cloned().collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn options_stop_at_the_first_operand() {
        let (opts, rest) = parse(
            &args(&["-np", "-c", "/dev/tty1", "/root", "/sbin/init", "-s"]),
            "np",
            "cd",
        )
        .unwrap();
        assert_eq!(
            opts,
            [
                Opt::Flag('n'),
                Opt::Flag('p'),
                Opt::Value('c', "/dev/tty1".into())
            ]
        );
        assert_eq!(rest, args(&["/root", "/sbin/init", "-s"]));
    }

    #[test]
    fn attached_values_dashes_and_errors() {
        let (opts, rest) = parse(&args(&["-dcap_sys_module", "--", "-x"]), "", "d").unwrap();
        assert_eq!(opts, [Opt::Value('d', "cap_sys_module".into())]);
        assert_eq!(rest, args(&["-x"]));
        assert_eq!(
            parse(&args(&["-z", "a"]), "n", "c").unwrap_err(),
            Usage("invalid option -- 'z'".into())
        );
        assert_eq!(
            parse(&args(&["-c"]), "", "c").unwrap_err(),
            Usage("option requires an argument -- 'c'".into())
        );
        let (opts, _) = parse(&args(&["--help"]), "", "").unwrap();
        assert_eq!(opts, [Opt::Long("help".into())]);
        // A lone "-" is an operand.
        let (opts, rest) = parse(&args(&["-", "x"]), "n", "").unwrap();
        assert!(opts.is_empty());
        assert_eq!(rest, args(&["-", "x"]));
    }
}
