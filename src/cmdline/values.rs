//! Values as dracut reads them, for words of every kind.

/// dracut's getargbool: 0/no/off/false and 1/yes/on/true.
pub fn boolean(v: &str) -> Option<bool> {
    match v {
        "1" | "yes" | "on" | "true" => Some(true),
        "0" | "no" | "off" | "false" => Some(false),
        _ => None,
    }
}

/// A switch word: bare (`rd.lvm`) or with dracut's boolean value (`rd.lvm=0`) sets `set`.
pub fn switch(set: &mut bool, value: Option<&str>) -> Result<(), &'static str> {
    match value.map_or(Some(true), boolean) {
        Some(on) => {
            *set = on;
            Ok(())
        }
        None => Err("0 or 1"),
    }
}

/// At most this many names per list of the storage words: a command line is 2 KiB to
/// 64 KiB, and no machine needs more volumes named than this to boot.
const MAX_NAMED: usize = 64;

/// Adds `item` to a list of named volumes unless it is there; an error once the list is full.
pub fn push_named<T: PartialEq>(list: &mut Vec<T>, item: T) -> Result<(), &'static str> {
    if !list.contains(&item) {
        if list.len() == MAX_NAMED {
            return Err("fewer names (64 at most)");
        }
        list.push(item);
    }
    Ok(())
}
