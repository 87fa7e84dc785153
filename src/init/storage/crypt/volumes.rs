//! Which LUKS volumes to unlock, under which names, with which keys: the image's crypttab
//! and the command line's words together, as systemd's generator joins them (a volume named
//! in both takes the command line's name and the crypttab's key and options). A volume no
//! one names is never touched.

use crate::cmdline::CryptParams;
use crate::crypttab::{parse_options, Crypttab, Key, Options};
use crate::rootspec::{Record, RootSpec};

/// A volume to unlock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub device: RootSpec,
    /// `None`: `luks-UUID`.
    pub name: Option<String>,
    pub key: Key,
    pub options: Options,
}

impl Wanted {
    /// The device-mapper name for the volume `uuid`.
    pub fn name_for(&self, uuid: &str) -> String {
        self.name.clone().unwrap_or_else(|| format!("luks-{uuid}"))
    }

    /// Whether `record` is this volume. By UUID or label, the LUKS header's own (the root
    /// search's matching skips stack members, whose identifiers are not a filesystem's).
    pub fn matches(&self, record: &Record) -> bool {
        let fs = record.fs.as_ref();
        match &self.device {
            RootSpec::Uuid(uuid) => fs
                .and_then(|f| f.uuid.as_deref())
                .is_some_and(|u| u.eq_ignore_ascii_case(uuid)),
            RootSpec::Label(label) => fs.and_then(|f| f.label.as_deref()) == Some(label.as_str()),
            spec => crate::rootspec::find(spec, std::slice::from_ref(record)).len() == 1,
        }
    }
}

/// The volumes to unlock; `notes` gathers what was ignored or refused, for the log.
pub fn wanted(params: &CryptParams, crypttab: &Crypttab, notes: &mut Vec<String>) -> Vec<Wanted> {
    if !params.enabled {
        return Vec::new();
    }
    let mut out: Vec<Wanted> = Vec::new();
    if params.crypttab {
        notes.extend(crypttab.notes.iter().map(|n| format!("crypttab: {n}")));
        for refusal in &crypttab.refused {
            notes.push(format!(
                "crypttab: {} is left locked: {}",
                refusal.name, refusal.why
            ));
        }
        for entry in crypttab.entries.iter().filter(|e| !e.options.noauto) {
            out.push(Wanted {
                device: entry.device.clone(),
                name: Some(entry.name.clone()),
                key: entry.key.clone(),
                options: entry.options.clone(),
            });
        }
    }
    for volume in &params.volumes {
        let uuid = match &volume.device {
            RootSpec::Uuid(u) => Some(u.to_ascii_lowercase()),
            _ => None,
        };
        if let Some(known) = out
            .iter_mut()
            .find(|w| same_device(&w.device, &volume.device))
        {
            if volume.name.is_some() {
                known.name = volume.name.clone();
            }
            continue;
        }
        let for_this = |of: &Option<String>| of.is_none() || of.as_deref() == uuid.as_deref();
        let key = params
            .keys
            .iter()
            .filter(|(of, _)| for_this(of))
            .max_by_key(|(of, _)| of.is_some())
            .map_or(Key::Passphrase, |(_, key)| key.clone());
        let mut lists: Vec<&str> = params
            .options
            .iter()
            .filter(|(of, _)| for_this(of))
            .map(|(_, list)| list.as_str())
            .collect();
        lists.push(&volume.options);
        let options = match parse_options(&lists.join(","), notes) {
            Ok(options) => options,
            Err(why) => {
                notes.push(format!(
                    "LUKS volume {} is left locked: {why}",
                    volume.device
                ));
                continue;
            }
        };
        out.push(Wanted {
            device: volume.device.clone(),
            name: volume.name.clone(),
            key,
            options,
        });
    }
    out
}

fn same_device(a: &RootSpec, b: &RootSpec) -> bool {
    match (a, b) {
        (RootSpec::Uuid(x), RootSpec::Uuid(y)) => x.eq_ignore_ascii_case(y),
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmdline::parse;

    const U: &str = "7a2c0b1e-2222-4000-8000-000000000002";

    #[test]
    fn crypttab_and_command_line_join() {
        let tab = crate::crypttab::parse(&format!(
            "sda3_crypt UUID={U} /etc/keys/root.key luks,discard\nlater UUID=1234abcd none noauto\n"
        ));
        let params = parse(&format!("rd.luks.name={U}=root rd.luks.uuid=11112222-3333")).crypt;
        let mut notes = Vec::new();
        let w = wanted(&params, &tab, &mut notes);
        assert_eq!(w.len(), 2, "{w:?}");
        assert_eq!(w[0].name_for(U), "root");
        assert_eq!(w[0].key, Key::File("/etc/keys/root.key".into()));
        assert!(w[0].options.discard);
        assert_eq!(w[1].name_for("11112222-3333"), "luks-11112222-3333");
        assert_eq!(w[1].key, Key::Passphrase);
    }

    #[test]
    fn keys_and_options_by_uuid_or_for_all() {
        let params = parse(&format!(
            "rd.luks.uuid={U} rd.luks.uuid=aaaa0000-1111 rd.luks.key=/all.key rd.luks.key={U}=/root.key rd.luks.options={U}=discard rd.luks.options=tries=1"
        ))
        .crypt;
        let w = wanted(&params, &Crypttab::default(), &mut Vec::new());
        assert_eq!(w[0].key, Key::File("/root.key".into()));
        assert!(w[0].options.discard);
        assert_eq!(w[0].options.tries, Some(1));
        assert_eq!(w[1].key, Key::File("/all.key".into()));
        assert!(!w[1].options.discard);
    }

    #[test]
    fn off_and_unnamed() {
        let tab = crate::crypttab::parse(&format!("x UUID={U} none\nbad UUID=1 none swap\n"));
        let mut notes = Vec::new();
        assert!(wanted(&parse("rd.luks=0").crypt, &tab, &mut notes).is_empty());
        assert!(wanted(&parse("rd.luks.crypttab=0").crypt, &tab, &mut notes).is_empty());
        let w = wanted(&parse("").crypt, &tab, &mut notes);
        assert_eq!(w.len(), 1);
        assert!(
            notes.iter().any(|n| n.contains("bad is left locked")),
            "{notes:?}"
        );
    }
}
