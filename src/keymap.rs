//! The console keymap an image carries (`/etc/baton/keymap`), in the binary form
//! `loadkeys -b` writes and busybox's `loadkmap` reads: the magic `bkeymap`, one flag byte
//! for each of the kernel's 256 keymaps (a keymap is one combination of the Shift, AltGr,
//! Control, Alt... modifiers), then for each flagged keymap its 128 key actions as native
//! 16-bit words. The host compiles the system's keymap into it; the init hands each word to
//! the kernel before it asks for a passphrase, so a German or French keyboard types the
//! passphrase it was set with.

/// Where the image carries it.
pub const IMAGE_PATH: &str = "etc/baton/keymap";

const MAGIC: &[u8; 7] = b"bkeymap";
/// The kernel's MAX_NR_KEYMAPS.
const KEYMAPS: usize = 256;
/// Keys per keymap in this format (loadkeys writes NR_KEYS / 2).
const KEYS: usize = 128;
const HEADER: usize = MAGIC.len() + KEYMAPS;

/// The largest valid file: every keymap present.
pub const MAX_LEN: usize = HEADER + KEYMAPS * KEYS * 2;

/// A checked binary keymap.
#[derive(Debug)]
pub struct Keymap<'a> {
    flags: &'a [u8],
    actions: &'a [u8],
}

/// One key action for the kernel (`struct kbentry`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub keymap: u8,
    pub key: u8,
    pub action: u16,
}

/// Checks `bytes` is a whole binary keymap: the magic, flags of 0 or 1, and exactly the
/// actions the flags announce.
pub fn parse(bytes: &[u8]) -> Result<Keymap<'_>, String> {
    let (magic, rest) = bytes
        .split_at_checked(MAGIC.len())
        .ok_or("too short for a binary keymap")?;
    if magic != MAGIC {
        return Err("not a binary keymap (loadkeys -b): no bkeymap magic".into());
    }
    let (flags, actions) = rest
        .split_at_checked(KEYMAPS)
        .ok_or("the binary keymap ends in its flags")?;
    if flags.iter().any(|f| *f > 1) {
        return Err("the binary keymap's flags are not 0 or 1".into());
    }
    let present = flags.iter().filter(|f| **f == 1).count();
    if actions.len() != present * KEYS * 2 {
        return Err(format!(
            "the binary keymap has {} bytes of key actions where its {present} keymaps need {}",
            actions.len(),
            present * KEYS * 2
        ));
    }
    Ok(Keymap { flags, actions })
}

impl Keymap<'_> {
    /// How many of the 256 keymaps it sets.
    pub fn keymaps(&self) -> usize {
        self.flags.iter().filter(|f| **f == 1).count()
    }

    /// Every key action, keymap by keymap.
    pub fn entries(&self) -> impl Iterator<Item = Entry> + '_ {
        self.tables().flat_map(|(keymap, actions)| {
            (0..=u8::MAX)
                .zip(actions.chunks_exact(2))
                .map(move |(key, word)| Entry {
                    keymap,
                    key,
                    action: action(word),
                })
        })
    }

    /// Each keymap present, with its 128 actions as bytes (two for each key, see
    /// [`action`]).
    pub fn tables(&self) -> impl Iterator<Item = (u8, &[u8])> + '_ {
        (0..=u8::MAX)
            .zip(self.flags)
            .filter(|(_, f)| **f == 1)
            .zip(self.actions.chunks_exact(KEYS * 2))
            .map(|((keymap, _), actions)| (keymap, actions))
    }
}

/// One key's action from its two bytes.
pub fn action(word: &[u8]) -> u16 {
    match word {
        [a, b] => u16::from_ne_bytes([*a, *b]),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keymap(present: &[u8]) -> Vec<u8> {
        let mut bytes = MAGIC.to_vec();
        let mut flags = [0u8; KEYMAPS];
        for k in present {
            flags[usize::from(*k)] = 1;
        }
        bytes.extend_from_slice(&flags);
        for k in present {
            for key in 0..KEYS as u16 {
                bytes.extend_from_slice(&(u16::from(*k) << 8 | key).to_ne_bytes());
            }
        }
        bytes
    }

    #[test]
    fn entries_in_order() {
        let bytes = keymap(&[0, 1, 4]);
        let map = parse(&bytes).unwrap();
        assert_eq!(map.keymaps(), 3);
        let entries: Vec<Entry> = map.entries().collect();
        assert_eq!(entries.len(), 3 * KEYS);
        assert_eq!(
            entries[KEYS + 44],
            Entry {
                keymap: 1,
                key: 44,
                action: 1 << 8 | 44
            }
        );
        assert_eq!(entries.last().unwrap().keymap, 4);
        assert_eq!(entries.last().unwrap().key, 127);
        let full: Vec<u8> = (0..=255).collect();
        assert_eq!(keymap(&full).len(), MAX_LEN);
        assert_eq!(parse(&keymap(&full)).unwrap().entries().count(), 256 * KEYS);
    }

    #[test]
    fn damaged_files_refused() {
        let good = keymap(&[0, 1]);
        assert!(parse(&good[..good.len() - 1]).is_err());
        let mut longer = good.clone();
        longer.push(0);
        assert!(parse(&longer).is_err());
        let mut flag = good.clone();
        flag[MAGIC.len() + 2] = 2;
        assert!(parse(&flag).is_err());
        let mut magic = good;
        magic[0] = b'B';
        assert!(parse(&magic).unwrap_err().contains("magic"));
        assert!(parse(b"bkey").is_err());
        assert!(parse(b"").is_err());
    }

    /// What `loadkeys -b -u` of kbd 2.5 wrote for the German layout console-setup makes
    /// (tests/fixtures/keymap): keymaps 0-127, Y and Z swapped, '-' where US has '/'.
    #[test]
    fn loadkeys_output() {
        let bytes = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/keymap/de.bmap"
        ))
        .unwrap();
        let map = parse(&bytes).unwrap();
        assert_eq!(map.keymaps(), 128);
        let plain = |key: u8| {
            map.entries()
                .find(|e| e.keymap == 0 && e.key == key)
                .unwrap()
                .action
        };
        // KT_LETTER (0x0b) with the character: keycode 21 is US 'y', 44 US 'z'.
        assert_eq!(plain(21), 0x0b00 | u16::from(b'z'));
        assert_eq!(plain(44), 0x0b00 | u16::from(b'y'));
        assert_eq!(plain(53), u16::from(b'-'));
    }
}
