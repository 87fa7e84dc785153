//! Values as dracut reads them, for words of every kind.

/// dracut's getargbool: 0/no/off/false and 1/yes/on/true.
pub fn boolean(v: &str) -> Option<bool> {
    match v {
        "1" | "yes" | "on" | "true" => Some(true),
        "0" | "no" | "off" | "false" => Some(false),
        _ => None,
    }
}
