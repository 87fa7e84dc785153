//! The crypttab `baton update` puts in an image: the system's lines for the volumes the
//! root stands on (as the running system shows them) and those marked for the initramfs
//! (Debian's `initramfs`, systemd's `x-initrd.attach`), with the key files they name. As
//! Debian's cryptsetup-initramfs does, a key file goes into an image only for a volume the
//! image must unlock: an image in /boot is not encrypted, and a key file in it is a key
//! anyone with the disk can read (images are written 0600 for that reason).

use crate::crypttab::{self, Key};

/// What goes into the image.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageCrypttab {
    /// The lines, as the system wrote them.
    pub text: String,
    /// Key files to carry, by their path in the system (and in the image).
    pub key_files: Vec<String>,
}

/// The lines of `system` (a crypttab's text) for the image. `root_names`: the volumes the
/// root is known to stand on; `running`: whether they are all known (the running system's
/// sysfs shows them). A system that is not running (a tree) shows only what its fstab
/// names, so every line of it without `noauto` is carried too, but key files only for the
/// known ones. A line the root needs that the init could not set up is an error naming why.
pub fn for_image(
    system: &str,
    root_names: &[String],
    running: bool,
) -> Result<ImageCrypttab, String> {
    let parsed = crypttab::parse(system);
    let needed = |name: &str| root_names.iter().any(|n| n == name);
    if let Some(refused) = parsed.refused.iter().find(|r| needed(&r.name)) {
        return Err(format!(
            "crypttab: the root's volume {} cannot be unlocked by baton: {}",
            refused.name, refused.why
        ));
    }
    let mut out = ImageCrypttab::default();
    let lines = system
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'));
    for line in lines.take(crypttab::MAX_LINES) {
        let name = line.split_whitespace().next().unwrap_or_default();
        let Some(entry) = parsed.entries.iter().find(|e| e.name == name) else {
            continue;
        };
        let wanted = needed(name) || entry.options.initramfs || (!running && !entry.options.noauto);
        if !wanted {
            continue;
        }
        if let Key::File(path) = &entry.key {
            if !needed(name) && !entry.options.initramfs {
                continue;
            }
            if !out.key_files.contains(path) {
                out.key_files.push(path.clone());
            }
        }
        out.text.push_str(line);
        out.text.push('\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SYSTEM: &str = "# <target> <source> <key> <options>\n\
        vda5_crypt UUID=11111111-2222 none luks,discard\n\
        home UUID=33333333-4444 /etc/keys/home.key luks\n\
        data UUID=55555555-6666 /etc/keys/data.key luks,initramfs\n\
        later UUID=77777777-8888 none luks,noauto\n";

    #[test]
    fn the_roots_lines_and_those_for_the_initramfs() {
        let names = ["vda5_crypt".to_owned()];
        let image = for_image(SYSTEM, &names, true).unwrap();
        assert_eq!(
            image.text,
            "vda5_crypt UUID=11111111-2222 none luks,discard\ndata UUID=55555555-6666 /etc/keys/data.key luks,initramfs\n"
        );
        // /home's key stays on the encrypted root.
        assert_eq!(image.key_files, ["/etc/keys/data.key"]);
    }

    #[test]
    fn a_tree_carries_every_line_but_no_unflagged_key_file() {
        let image = for_image(SYSTEM, &[], false).unwrap();
        assert!(image.text.contains("vda5_crypt") && image.text.contains("data"));
        assert!(!image.text.contains("home") && !image.text.contains("later"));
        assert_eq!(image.key_files, ["/etc/keys/data.key"]);
    }

    #[test]
    fn a_root_baton_cannot_unlock_is_an_error() {
        let system = "cryptroot UUID=1 none luks,keyscript=decrypt_keyctl\n";
        let err = for_image(system, &["cryptroot".to_owned()], false).unwrap_err();
        assert!(
            err.contains("cryptroot") && err.contains("key scripts"),
            "{err}"
        );
        // Not the root's: left out, no error.
        assert_eq!(
            for_image(system, &[], true).unwrap(),
            ImageCrypttab::default()
        );
    }
}
