//! A kernel setting under /proc/sys that baton changes while it runs and hands back
//! unchanged to the real init (the /dev/kmsg rate limit, the module helper's path).

use std::io;

pub struct Override {
    path: &'static str,
    value: &'static str,
    previous: Option<String>,
}

impl Override {
    /// Sets `path` to `value` unless it already is; the write's result is returned beside
    /// the override so callers can say why a locked setting did not change. /proc/sys
    /// values are written with their trailing newline (some handlers, printk_devkmsg's
    /// among them, refuse a write without it).
    pub fn set(path: &'static str, value: &'static str) -> (Override, io::Result<()>) {
        let previous = std::fs::read_to_string(path)
            .ok()
            .map(|s| s.trim().to_owned());
        let result = if previous.as_deref() == Some(value) {
            Ok(())
        } else {
            std::fs::write(path, format!("{value}\n"))
        };
        (
            Override {
                path,
                value,
                previous,
            },
            result,
        )
    }

    /// Puts the previous value back, if there was one and it differed.
    pub fn restore(&self) {
        if let Some(previous) = self.previous.as_deref().filter(|p| *p != self.value) {
            let _ = std::fs::write(self.path, format!("{previous}\n"));
        }
    }
}
