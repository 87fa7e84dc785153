//! How `baton run` shares directories: the transport, and the virtiofsd serving each
//! directory over virtiofs.

use crate::transport::Transport;
use anyhow::{bail, Context, Result};
use std::path::Path;
use std::process::Command;

/// How the root is shared: a read-only root is read-only on the host's side, over virtiofs
/// only with a virtiofsd that refuses writes itself, else over 9p, where qemu does.
pub(super) fn choose_transport(
    share: Option<Transport>,
    read_only: bool,
) -> Result<(Transport, Option<crate::host::virtiofsd::Virtiofsd>)> {
    if share == Some(Transport::NineP) {
        // Asking each virtiofsd what it is costs a few ms each: not for nothing.
        return Ok((Transport::NineP, None));
    }
    let virtiofsds = crate::host::virtiofsd::installed();
    let virtiofsd = crate::host::virtiofsd::choose(&virtiofsds, read_only).cloned();
    let transport = match share {
        Some(Transport::Virtiofs) if virtiofsd.is_none() => {
            if virtiofsds.is_empty() {
                bail!("no virtiofsd (Debian: qemu-system-common has /usr/lib/qemu/virtiofsd; cargo install virtiofsd); use --share 9p");
            }
            bail!(
                "--share virtiofs: the virtiofsd here ({}) cannot refuse the guest's writes, so a read-only root over it would not be read-only on this machine; install the Rust virtiofsd (cargo install virtiofsd, or the virtiofsd package from Debian 13), use --share 9p, or --rw",
                virtiofsds
                    .iter()
                    .map(|v| v.program.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        Some(t) => t,
        None if virtiofsd.is_some() => Transport::Virtiofs,
        None => Transport::NineP,
    };
    Ok((transport, virtiofsd))
}

/// A virtiofsd serving `root` on `socket`, started: it gets ready while the run makes its
/// initrd and sockets, and [`Daemon::ready`] waits for it just before qemu starts. None over
/// 9p.
pub(super) fn start_virtiofsd(
    transport: Transport,
    virtiofsd: Option<&crate::host::virtiofsd::Virtiofsd>,
    socket: &Path,
    root: &Path,
    read_only: bool,
) -> Result<Option<Daemon>> {
    let mut daemon = None;
    if let (Transport::Virtiofs, Some(v)) = (transport, virtiofsd) {
        let child = Command::new(&v.program)
            .args(crate::host::virtiofsd::args(v, socket, root, read_only))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start {}", v.program.display()))?;
        daemon = Some(Daemon(child, socket.to_path_buf()));
    }
    Ok(daemon)
}

/// A helper process, and the socket it listens on; ended (and reaped) when dropped.
pub(super) struct Daemon(std::process::Child, std::path::PathBuf);

impl Daemon {
    /// Waits (up to 10 s) for it to listen.
    pub(super) fn ready(&mut self) -> Result<()> {
        let socket = self.1.clone();
        wait_for_socket(&socket, self)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits (up to 10 s) for virtiofsd to listen.
fn wait_for_socket(socket: &Path, daemon: &mut Daemon) -> Result<()> {
    for _ in 0..10_000 {
        if socket.exists() {
            return Ok(());
        }
        if let Ok(Some(status)) = daemon.0.try_wait() {
            let mut said = String::new();
            if let Some(mut err) = daemon.0.stderr.take() {
                use std::io::Read;
                let _ = err.read_to_string(&mut said);
            }
            bail!(
                "virtiofsd failed ({status}): {}",
                said.lines().last().unwrap_or("no message")
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    bail!("virtiofsd did not open {} within 10 s", socket.display())
}
