//! Kernel settings under /proc/sys that baton changes while it runs (the /dev/kmsg rate
//! limit, the module helper's path) and hands back unchanged to the real init.
//!
//! One owner for all of them: an [`Override`] is a guard that puts the setting back when it
//! is dropped, so every way out of a boot attempt (an error returned with `?`, the rescue
//! shell, a retry) restores it without a call that could be skipped. The value restored is
//! the one the kernel had before baton first touched the setting, recorded once per process:
//! a retried boot overriding again must not mistake baton's own value for the original.

use std::io;
use std::sync::Mutex;

/// Values as baton first found them, by path. A handful of settings at most.
static ORIGINALS: Mutex<Vec<(&'static str, String)>> = Mutex::new(Vec::new());

/// A setting changed for as long as this guard lives.
#[must_use = "the setting is restored as soon as the override is dropped"]
pub struct Override {
    path: &'static str,
    /// What to write back on drop; `None` when the setting could not be read, so there is
    /// nothing known to restore.
    original: Option<String>,
}

impl Override {
    /// Sets `path` to `value` unless it already is; the write's result is returned beside
    /// the override so callers can say why a locked setting did not change. /proc/sys
    /// values are written with their trailing newline (some handlers, printk_devkmsg's
    /// among them, refuse a write without it).
    pub fn set(path: &'static str, value: &str) -> (Override, io::Result<()>) {
        let current = std::fs::read_to_string(path)
            .ok()
            .map(|s| s.trim().to_owned());
        let original = remember(path, current.as_deref());
        let result = if current.as_deref() == Some(value) {
            Ok(())
        } else if original.is_none() {
            // What could not be read could not be put back: leave it alone.
            Err(io::Error::other(format!("cannot read {path}")))
        } else {
            std::fs::write(path, format!("{value}\n"))
        };
        (Override { path, original }, result)
    }
}

/// The value `path` had before baton first set it: recorded now if this is the first time.
fn remember(path: &'static str, current: Option<&str>) -> Option<String> {
    let mut originals = ORIGINALS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, first)) = originals.iter().find(|(p, _)| *p == path) {
        return Some(first.clone());
    }
    let current = current?.to_owned();
    originals.push((path, current.clone()));
    Some(current)
}

impl Drop for Override {
    fn drop(&mut self) {
        let Some(original) = &self.original else {
            return;
        };
        let now = std::fs::read_to_string(self.path).ok();
        if now.as_deref().map(str::trim) != Some(original.as_str()) {
            if let Err(e) = std::fs::write(self.path, format!("{original}\n")) {
                log::warn!("failed to restore {} to {original:?}: {e}", self.path);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A path in a temporary file stands in for /proc/sys; the static lifetime is what the
    /// real paths have.
    fn setting(name: &str, value: &str) -> &'static str {
        let dir = std::env::temp_dir().join(format!("baton-sysctl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, format!("{value}\n")).unwrap();
        Box::leak(path.to_string_lossy().into_owned().into_boxed_str())
    }

    fn read(path: &str) -> String {
        std::fs::read_to_string(path).unwrap().trim().to_owned()
    }

    #[test]
    fn restores_on_drop() {
        let path = setting("modprobe", "/sbin/modprobe");
        {
            let (_guard, result) = Override::set(path, "/init");
            result.unwrap();
            assert_eq!(read(path), "/init");
        }
        assert_eq!(read(path), "/sbin/modprobe");
    }

    #[test]
    fn restores_when_the_attempt_fails() {
        let path = setting("devkmsg", "ratelimit");
        let attempt = || -> Result<(), String> {
            let (_guard, _) = Override::set(path, "on");
            Err("root did not appear".into())
        };
        assert!(attempt().is_err());
        assert_eq!(read(path), "ratelimit");
    }

    #[test]
    fn a_second_override_restores_the_first_original() {
        // A retried boot overrides again while the first value was never put back (a
        // guard leaked, a write refused): the original is still what comes back.
        let path = setting("helper", "/sbin/modprobe");
        let (first, _) = Override::set(path, "/init");
        std::mem::forget(first);
        assert_eq!(read(path), "/init");
        drop(Override::set(path, "/init").0);
        assert_eq!(read(path), "/sbin/modprobe");
    }

    #[test]
    fn an_unreadable_setting_is_left_alone() {
        let path: &'static str = "/nonexistent/baton/setting";
        let (guard, result) = Override::set(path, "x");
        assert!(result.is_err());
        drop(guard);
    }
}
