//! An image as a sorted map from path to entry. Sorting gives reproducible bytes and puts
//! every directory before its contents, which the kernel's unpacker needs (it creates
//! entries in archive order and does not make missing parents).

use std::collections::BTreeMap;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    Dir,
    File(Vec<u8>),
    Symlink(String),
    CharDevice { major: u32, minor: u32 },
    BlockDevice { major: u32, minor: u32 },
    Fifo,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Permission bits only (07777); the file type comes from `body`.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub body: Body,
}

impl Entry {
    pub fn dir(mode: u32) -> Entry {
        Entry {
            mode,
            uid: 0,
            gid: 0,
            body: Body::Dir,
        }
    }
    pub fn file(mode: u32, data: Vec<u8>) -> Entry {
        Entry {
            mode,
            uid: 0,
            gid: 0,
            body: Body::File(data),
        }
    }
    pub fn symlink(target: &str) -> Entry {
        Entry {
            mode: 0o777,
            uid: 0,
            gid: 0,
            body: Body::Symlink(target.to_owned()),
        }
    }

    /// The `st_mode` file-type bits for this entry.
    pub fn type_bits(&self) -> u32 {
        match self.body {
            Body::Dir => 0o040000,
            Body::File(_) => 0o100000,
            Body::Symlink(_) => 0o120000,
            Body::CharDevice { .. } => 0o020000,
            Body::BlockDevice { .. } => 0o060000,
            Body::Fifo => 0o010000,
        }
    }
}

/// A path inside the image that is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadPath(pub String);

impl fmt::Display for BadPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bad path in image: {:?} (must be absolute-or-relative, without . or .. components)",
            self.0
        )
    }
}

impl std::error::Error for BadPath {}

/// Normalizes `/a//b/` to `a/b`. The image root itself is not a path of its own.
pub fn normalize_path(path: &str) -> Result<String, BadPath> {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    if parts.is_empty()
        || parts
            .iter()
            .any(|p| *p == "." || *p == ".." || p.contains('\0'))
    {
        return Err(BadPath(path.to_owned()));
    }
    Ok(parts.join("/"))
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Image {
    entries: BTreeMap<String, Entry>,
}

impl Image {
    pub fn new() -> Image {
        Image::default()
    }

    /// Adds or replaces an entry; missing parent directories are added with mode 0755.
    /// A later insert at the same path wins, so `--include` can override the skeleton.
    pub fn insert(&mut self, path: &str, entry: Entry) -> Result<(), BadPath> {
        let path = normalize_path(path)?;
        let mut parent = String::new();
        for part in path
            .split('/')
            .collect::<Vec<_>>()
            .iter()
            .rev()
            .skip(1)
            .rev()
        {
            if !parent.is_empty() {
                parent.push('/');
            }
            parent.push_str(part);
            match self.entries.get(&parent) {
                Some(Entry {
                    body: Body::Dir, ..
                }) => {}
                Some(_) => {
                    return Err(BadPath(format!(
                        "{path} (its parent {parent} is not a directory)"
                    )))
                }
                None => {
                    self.entries.insert(parent.clone(), Entry::dir(0o755));
                }
            }
        }
        // Replacing a directory with a non-directory would orphan its children.
        if let Some(Entry {
            body: Body::Dir, ..
        }) = self.entries.get(&path)
        {
            if !matches!(entry.body, Body::Dir) {
                let prefix = format!("{path}/");
                if self.entries.keys().any(|k| k.starts_with(&prefix)) {
                    return Err(BadPath(format!(
                        "{path} (a non-empty directory cannot be replaced)"
                    )));
                }
            }
        }
        self.entries.insert(path, entry);
        Ok(())
    }

    pub fn get(&self, path: &str) -> Option<&Entry> {
        normalize_path(path).ok().and_then(|p| self.entries.get(&p))
    }

    /// Entries in archive order: sorted, so parents come first.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Entry)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_normalized_and_checked() {
        assert_eq!(normalize_path("/a//b/").unwrap(), "a/b");
        assert_eq!(normalize_path("init").unwrap(), "init");
        for bad in ["", "/", "a/../b", "./a", "a/.", "a\0b"] {
            assert!(normalize_path(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn parents_are_created_and_sorted_first() {
        let mut image = Image::new();
        image
            .insert("/lib/modules/x/a.ko", Entry::file(0o644, vec![1]))
            .unwrap();
        image.insert("/lib-extra", Entry::dir(0o700)).unwrap();
        let paths: Vec<&str> = image.iter().map(|(p, _)| p).collect();
        assert_eq!(
            paths,
            [
                "lib",
                "lib-extra",
                "lib/modules",
                "lib/modules/x",
                "lib/modules/x/a.ko"
            ]
        );
    }

    #[test]
    fn later_inserts_win_but_never_orphan() {
        let mut image = Image::new();
        image
            .insert("etc/x", Entry::file(0o644, b"old".to_vec()))
            .unwrap();
        image
            .insert("etc/x", Entry::file(0o600, b"new".to_vec()))
            .unwrap();
        assert_eq!(
            image.get("/etc/x").unwrap().body,
            Body::File(b"new".to_vec())
        );
        assert!(image.insert("etc", Entry::symlink("/elsewhere")).is_err());
        assert!(image.insert("etc/x/y", Entry::dir(0o755)).is_err());
    }
}
