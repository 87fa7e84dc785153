//! Kernel uevents: the kernel broadcasts one datagram per device event on the
//! NETLINK_KOBJECT_UEVENT socket (multicast group 1), the same stream udev reads. baton
//! listens so that a disk appearing late, or a device needing a driver, is handled within
//! milliseconds instead of at the next poll.

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{
    bind, recv, setsockopt, socket, sockopt, AddressFamily, MsgFlags, NetlinkAddr, SockFlag,
    SockProtocol, SockType,
};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::Duration;

/// The fields of an event baton acts on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Uevent {
    pub action: String,
    pub devpath: String,
    pub subsystem: Option<String>,
    pub modalias: Option<String>,
    pub devname: Option<String>,
}

/// Parses one kernel uevent datagram: `ACTION@DEVPATH` then `KEY=VALUE` strings, each
/// NUL-terminated (lib/kobject_uevent.c). Anything else (udev's own "libudev" messages) is
/// not a kernel event.
pub fn parse(datagram: &[u8]) -> Option<Uevent> {
    let mut parts = datagram.split(|&b| b == 0).filter(|p| !p.is_empty());
    let header = std::str::from_utf8(parts.next()?).ok()?;
    let (action, devpath) = header.split_once('@')?;
    let mut event = Uevent {
        action: action.to_owned(),
        devpath: devpath.to_owned(),
        ..Uevent::default()
    };
    for part in parts {
        let Ok(text) = std::str::from_utf8(part) else {
            continue;
        };
        match text.split_once('=') {
            Some(("SUBSYSTEM", v)) => event.subsystem = Some(v.to_owned()),
            Some(("MODALIAS", v)) => event.modalias = Some(v.to_owned()),
            Some(("DEVNAME", v)) => event.devname = Some(v.to_owned()),
            _ => {}
        }
    }
    Some(event)
}

pub struct Listener {
    fd: OwnedFd,
}

/// Receive buffer: module loading can announce hundreds of devices at once, and a full
/// buffer drops events (the caller rescans sysfs anyway, so nothing is lost for good).
const RECEIVE_BUFFER: usize = 4 << 20;
/// Events taken per wait at most: a device that never stops announcing itself must not
/// keep the root search from looking at the clock.
pub const MAX_EVENTS_PER_WAIT: usize = 1024;

/// What one wait brought.
#[derive(Debug, Default)]
pub struct Received {
    pub events: Vec<Uevent>,
    /// The socket's buffer overflowed (ENOBUFS): events were dropped, and a device added
    /// meanwhile is only known from sysfs.
    pub overflowed: bool,
}

impl Listener {
    pub fn open() -> nix::Result<Listener> {
        Listener::with_buffer(RECEIVE_BUFFER)
    }

    /// A listener whose socket buffer holds `bytes` (forced past the system's limit, which
    /// PID 1 may do).
    pub fn with_buffer(bytes: usize) -> nix::Result<Listener> {
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Datagram,
            SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
            SockProtocol::NetlinkKObjectUEvent,
        )?;
        let _ = setsockopt(&fd, sockopt::RcvBufForce, &bytes);
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 1))?;
        Ok(Listener { fd })
    }

    /// Waits up to `timeout` for events and returns all that are queued.
    pub fn wait(&self, timeout: Duration) -> Received {
        let millis = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
        let _ = poll(&mut fds, PollTimeout::from(millis));
        let mut received = Received::default();
        let mut buf = vec![0u8; 8192];
        for _ in 0..MAX_EVENTS_PER_WAIT {
            match recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT) {
                Ok(n) => {
                    if let Some(event) = buf.get(..n).and_then(parse) {
                        received.events.push(event);
                    }
                }
                // The kernel reports a dropped datagram once, then delivers what it kept.
                Err(nix::errno::Errno::ENOBUFS) => received.overflowed = true,
                Err(_) => break,
            }
        }
        received
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_kernel_event() {
        let msg = b"add@/devices/pci0000:00/0000:00:04.0/virtio1\0ACTION=add\0DEVPATH=/devices/pci0000:00/0000:00:04.0/virtio1\0SUBSYSTEM=virtio\0MODALIAS=virtio:d00000002v00001AF4\0SEQNUM=1234\0";
        let e = parse(msg).unwrap();
        assert_eq!(e.action, "add");
        assert_eq!(e.subsystem.as_deref(), Some("virtio"));
        assert_eq!(e.modalias.as_deref(), Some("virtio:d00000002v00001AF4"));
        let block = parse(b"add@/devices/x/block/vda\0SUBSYSTEM=block\0DEVNAME=vda\0").unwrap();
        assert_eq!(block.devname.as_deref(), Some("vda"));
    }

    /// As root: uevents the kernel sends faster than they are read overflow a small
    /// buffer, and the wait says so.
    #[test]
    fn an_overflowed_buffer_is_reported() {
        if !nix::unistd::Uid::effective().is_root() {
            assert!(
                std::env::var("BATON_REQUIRE_ROOT_TESTS").as_deref() != Ok("1"),
                "needs root"
            );
            eprintln!("skipped: needs root to make uevents");
            return;
        }
        let listener = Listener::with_buffer(4096).unwrap();
        // A `change` event for /dev/null: nothing acts on it but udev, which re-reads it.
        for _ in 0..200 {
            std::fs::write("/sys/devices/virtual/mem/null/uevent", "change").unwrap();
        }
        let first = listener.wait(Duration::from_millis(100));
        assert!(
            first.overflowed,
            "{} events, no overflow",
            first.events.len()
        );
        assert!(!first.events.is_empty());
        let quiet = listener.wait(Duration::ZERO);
        assert!(!quiet.overflowed);
    }

    #[test]
    fn ignores_what_is_not_a_kernel_event() {
        assert_eq!(parse(b"libudev\0\xfe\xed\xca\xfe"), None);
        assert_eq!(parse(b""), None);
        assert_eq!(parse(b"\xff\xfe@x\0"), None);
        let _ = parse(b"add@\0=\0MODALIAS\0\xff=\x00");
    }
}
