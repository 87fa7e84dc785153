//! `baton run --network user`: the VM's first network interface configured for qemu's user
//! network, without a DHCP client. qemu's user network is always the same: the guest at
//! 10.0.2.15/24, the host (its loopback) at 10.0.2.2, the DNS forwarder at 10.0.2.3. So the
//! init sets that up itself with the classic interface and route ioctls (what busybox's
//! ifconfig and route do): the loopback up, the interface up with its address, a default
//! route, and /etc/resolv.conf naming the forwarder.
//!
//! The resolv.conf is a file on /dev (a tmpfs) bound over the root's: the root may be the
//! host's directory shared writable (`--rw`), which must not be changed.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// The guest's address in qemu's user network.
pub const GUEST: [u8; 4] = [10, 0, 2, 15];
/// The gateway, which is the host's loopback.
pub const GATEWAY: [u8; 4] = [10, 0, 2, 2];
/// qemu's DNS forwarder.
pub const DNS: [u8; 4] = [10, 0, 2, 3];
const NETMASK: [u8; 4] = [255, 255, 255, 0];
/// How long the interface may take to appear once its driver loads.
const APPEAR: Duration = Duration::from_secs(10);
/// A bound on the interfaces listed.
const MAX_INTERFACES: usize = 256;

/// The interface to configure: the first by name that is not the loopback.
pub fn choose_interface(names: &[String]) -> Option<&str> {
    names
        .iter()
        .filter(|n| n.as_str() != "lo")
        .min()
        .map(String::as_str)
}

/// /etc/resolv.conf for qemu's user network.
pub fn resolv_conf() -> String {
    let [a, b, c, d] = DNS;
    format!("nameserver {a}.{b}.{c}.{d}\n")
}

/// Configures the network; says what failed.
pub fn configure() -> Result<String, String> {
    let socket = inet_socket()?;
    set_up(&socket, "lo")?;
    let deadline = Instant::now() + APPEAR;
    let interface = loop {
        let names: Vec<String> = crate::init::dirents::read_path("/sys/class/net", MAX_INTERFACES)
            .map(|entries| {
                entries
                    .iter()
                    .filter_map(crate::init::dirents::Entry::name_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        if let Some(name) = choose_interface(&names) {
            break name.to_owned();
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "no network interface after {} s (the image needs virtio_net)",
                APPEAR.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    set_address(&socket, &interface, libc::SIOCSIFADDR as _, GUEST)?;
    set_address(&socket, &interface, libc::SIOCSIFNETMASK as _, NETMASK)?;
    set_up(&socket, &interface)?;
    default_route(&socket)?;
    dns()?;
    Ok(interface)
}

fn inet_socket() -> Result<OwnedFd, String> {
    // SAFETY: plain arguments; the descriptor is owned below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(format!(
            "cannot open a socket: {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: a descriptor the kernel just returned, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// An ifreq naming `interface` (at most IFNAMSIZ - 1 bytes, as the kernel takes).
fn request(interface: &str) -> Result<libc::ifreq, String> {
    // SAFETY: ifreq is plain data; all zeros is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    let name = interface.as_bytes();
    if name.len() >= req.ifr_name.len() {
        return Err(format!("interface name too long: {interface}"));
    }
    for (to, from) in req.ifr_name.iter_mut().zip(name) {
        *to = *from as libc::c_char;
    }
    Ok(req)
}

fn sockaddr(address: [u8; 4]) -> libc::sockaddr {
    let inet = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes(address),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: sockaddr_in and sockaddr are both 16 bytes, as the socket API intends.
    unsafe { std::mem::transmute::<libc::sockaddr_in, libc::sockaddr>(inet) }
}

fn ioctl<T>(
    socket: &OwnedFd,
    request: libc::c_ulong,
    arg: &mut T,
    what: &str,
) -> Result<(), String> {
    // SAFETY: `arg` is the structure this request takes, alive across the call.
    if unsafe { libc::ioctl(socket.as_raw_fd(), request as _, arg as *mut T) } != 0 {
        return Err(format!("{what}: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

fn set_up(socket: &OwnedFd, interface: &str) -> Result<(), String> {
    let mut req = request(interface)?;
    let what = format!("cannot bring {interface} up");
    ioctl(socket, libc::SIOCGIFFLAGS as _, &mut req, &what)?;
    // SAFETY: SIOCGIFFLAGS filled the flags member.
    unsafe {
        req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
    }
    ioctl(socket, libc::SIOCSIFFLAGS as _, &mut req, &what)
}

fn set_address(
    socket: &OwnedFd,
    interface: &str,
    request_code: libc::c_ulong,
    address: [u8; 4],
) -> Result<(), String> {
    let mut req = request(interface)?;
    req.ifr_ifru.ifru_addr = sockaddr(address);
    ioctl(
        socket,
        request_code,
        &mut req,
        &format!("cannot address {interface}"),
    )
}

/// The kernel's `struct rtentry` (linux/route.h), which the C library of the host build
/// does not declare.
#[repr(C)]
struct RtEntry {
    rt_pad1: libc::c_ulong,
    rt_dst: libc::sockaddr,
    rt_gateway: libc::sockaddr,
    rt_genmask: libc::sockaddr,
    rt_flags: libc::c_ushort,
    rt_pad2: libc::c_short,
    rt_pad3: libc::c_ulong,
    rt_pad4: *mut libc::c_void,
    rt_metric: libc::c_short,
    rt_dev: *mut libc::c_char,
    rt_mtu: libc::c_ulong,
    rt_window: libc::c_ulong,
    rt_irtt: libc::c_ushort,
}

fn default_route(socket: &OwnedFd) -> Result<(), String> {
    let mut route = RtEntry {
        rt_pad1: 0,
        rt_dst: sockaddr([0; 4]),
        rt_gateway: sockaddr(GATEWAY),
        rt_genmask: sockaddr([0; 4]),
        rt_flags: libc::RTF_UP | libc::RTF_GATEWAY,
        rt_pad2: 0,
        rt_pad3: 0,
        rt_pad4: std::ptr::null_mut(),
        rt_metric: 0,
        rt_dev: std::ptr::null_mut(),
        rt_mtu: 0,
        rt_window: 0,
        rt_irtt: 0,
    };
    ioctl(
        socket,
        libc::SIOCADDRT as _,
        &mut route,
        "cannot add the default route",
    )
}

/// /etc/resolv.conf naming qemu's forwarder, bound over the root's when it has one.
fn dns() -> Result<(), String> {
    const OURS: &str = "/dev/.baton-resolv.conf";
    std::fs::write(OURS, resolv_conf()).map_err(|e| format!("cannot write {OURS}: {e}"))?;
    let target = "/etc/resolv.conf";
    if std::fs::metadata(target).is_err() {
        // None, or a dangling link (to a resolver that is not running here). Made only on
        // the overlay, never in the host's directory shared writable (`--rw`).
        if !root_is_overlay() || std::fs::write(target, "").is_err() {
            return Ok(());
        }
    }
    nix::mount::mount(
        Some(OURS),
        target,
        None::<&str>,
        nix::mount::MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| format!("cannot bind {OURS} over {target}: {}", e.desc()))
}

/// Whether `/` is an overlay (the default `baton run` root, writes going to memory).
fn root_is_overlay() -> bool {
    nix::sys::statfs::statfs("/")
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::OVERLAYFS_SUPER_MAGIC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_interface_that_is_not_the_loopback() {
        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            choose_interface(&names(&["lo", "eth1", "eth0"])),
            Some("eth0")
        );
        assert_eq!(choose_interface(&names(&["enp0s3", "lo"])), Some("enp0s3"));
        assert_eq!(choose_interface(&names(&["lo"])), None);
        assert_eq!(resolv_conf(), "nameserver 10.0.2.3\n");
    }

    #[test]
    fn the_route_entry_is_the_kernels_size() {
        // struct rtentry on x86_64, as linux/route.h lays it out.
        assert_eq!(std::mem::size_of::<RtEntry>(), 120);
        assert_eq!(
            sockaddr(GUEST).sa_family,
            libc::AF_INET as libc::sa_family_t
        );
    }
}
