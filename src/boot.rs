//! The init's whole job, in order. Each step takes what the previous one produced; any error
//! goes to the one emergency path, and after a rescue shell the boot is simply tried again
//! (every step is safe to repeat).

use crate::cmdline::{self, BootParams};
use crate::emergency::{self, Action};
use crate::kmsg;
use crate::manifest::{self, Manifest};
use crate::modprobe;
use crate::modules::load::Loader;
use crate::mounts::{self, is_mount_point, EARLY_MOUNTS};
use crate::root;
use crate::rootspec;
use crate::switch;
use anyhow::{Context, Result};
use std::convert::Infallible;
use std::path::Path;
use std::time::Duration;

/// Where the real root is mounted before it becomes `/`.
pub const NEW_ROOT: &str = "/sysroot";

/// What the emergency path needs to know, filled in as the boot learns it.
#[derive(Default)]
struct Known {
    action: Option<Action>,
    shell: Option<String>,
}

/// Runs the boot; never returns.
pub fn run() -> ! {
    kmsg::install();
    let mut known = Known::default();
    loop {
        let error = match boot(&mut known) {
            Ok(never) => match never {},
            Err(error) => error,
        };
        let action = known
            .action
            .unwrap_or(Action::default_for(known.shell.is_some()));
        emergency::handle(&error, action, known.shell.as_deref());
        log::info!("rescue shell exited; trying the boot again");
    }
}

fn boot(known: &mut Known) -> Result<Infallible> {
    mounts::mount_early(&EARLY_MOUNTS)?;
    if let Ok(printk) = std::fs::read_to_string("/proc/sys/kernel/printk") {
        kmsg::set_console_level(&printk);
    }
    let devkmsg = kmsg::unlimit_devkmsg();
    log::info!(
        "baton {} started at {} s after boot",
        env!("CARGO_PKG_VERSION"),
        uptime()
    );

    let read_started = std::time::Instant::now();
    let manifest = read_manifest()?;
    log::info!(
        "image carries {} modules, {} aliases (manifest read in {} ms)",
        manifest.modules.len(),
        manifest.aliases.len(),
        read_started.elapsed().as_millis()
    );
    known.shell = manifest.shell.clone().filter(|s| Path::new(s).exists());

    let params = read_params()?;
    known.action = params.emergency;
    for warning in &params.warnings {
        log::warn!("{warning}");
    }

    let mut loader = Loader::new(&manifest, params.blacklist.clone(), |name| {
        params.module_params(name)
    });
    let helper = (!loader.is_empty()).then(modprobe::take_requests);
    for name in manifest.load.iter().chain(params.force_modules.iter()) {
        loader.load(name, "requested");
    }

    mount_new_root(&params, &mut loader)?;
    // From the kernel's own list: it also counts what the kernel asked for through us.
    let mut loaded: Vec<String> = std::fs::read_to_string("/proc/modules")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').next().map(str::to_owned))
        .collect();
    loaded.sort();
    log::info!("loaded {} modules: {}", loaded.len(), loaded.join(" "));
    let init = switch::choose_init(Path::new(NEW_ROOT), params.init.as_deref())?;
    log::info!("switching to {NEW_ROOT}, then running {init}");
    if let Some(helper) = &helper {
        helper.restore();
    }
    let switched = switch::switch_root(Path::new(NEW_ROOT))?;
    match &switched.removal {
        Some(removal) => {
            log::info!("freed the initramfs: {} entries removed", removal.removed);
            if let Some(first) = &removal.first_error {
                log::warn!(
                    "could not remove everything from the initramfs, first failure: {first}"
                );
            }
        }
        None => log::warn!("the old root was not emptied"),
    }
    switch::reopen_console()?;
    devkmsg.restore();
    log::info!("running {init} at {} s after boot", uptime());
    let args: Vec<String> = std::env::args().skip(1).collect();
    let env: Vec<String> = std::env::vars().map(|(k, v)| format!("{k}={v}")).collect();
    switch::exec_init(&init, &args, &env)
}

pub(crate) fn read_manifest() -> Result<Manifest> {
    let path = format!("/{}", manifest::PATH);
    match std::fs::read_to_string(&path) {
        Ok(text) => Manifest::parse(&text)
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("failed to read {path}")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            log::warn!("{path} is missing: no modules to load");
            Ok(Manifest::default())
        }
        Err(e) => Err(e).with_context(|| format!("failed to read {path}")),
    }
}

pub(crate) fn read_params() -> Result<BootParams> {
    let line = std::fs::read_to_string("/proc/cmdline").context("failed to read /proc/cmdline")?;
    let defaults =
        std::fs::read_to_string(format!("/{}", manifest::DEFAULTS_PATH)).unwrap_or_default();
    Ok(cmdline::parse_with_defaults(
        &cmdline::strip_comments(&defaults),
        line.trim_end(),
    ))
}

fn mount_new_root(params: &BootParams, loader: &mut Loader<'_>) -> Result<()> {
    let target = Path::new(NEW_ROOT);
    if is_mount_point(target) {
        log::info!("{NEW_ROOT} is already mounted, using it");
        return Ok(());
    }
    let value = params
        .root
        .as_deref()
        .context("no root= on the kernel command line: nothing to boot (add root=/dev/NAME or root=UUID=...)")?;
    let spec = rootspec::parse_root(value).map_err(anyhow::Error::msg)?;
    let limit = params
        .wait
        .limit_secs()
        .map(|s| Duration::from_secs(u64::from(s)));
    let found = root::wait_for_root(&spec, limit, loader)?;
    // The filesystem: as given, else as probed, else whatever the kernel knows.
    let fstypes = if !params.rootfstype.is_empty() {
        params.rootfstype.clone()
    } else if let Some(fstype) = &found.fstype {
        vec![fstype.clone()]
    } else {
        Vec::new()
    };
    for fstype in &fstypes {
        loader.load_alias(&format!("fs-{fstype}"));
    }
    let fstypes = if fstypes.is_empty() {
        let known = std::fs::read_to_string("/proc/filesystems")
            .context("failed to read /proc/filesystems")?;
        root::block_filesystems(&known)
    } else {
        fstypes
    };
    let (fstype, read_only) = root::mount_root(
        &found.device,
        target,
        &fstypes,
        params.read_only,
        params.rootflags.as_deref(),
    )?;
    log::info!(
        "mounted root {} ({fstype}, {}) on {NEW_ROOT}",
        found.device.display(),
        if read_only { "ro" } else { "rw" }
    );
    Ok(())
}

/// Seconds since boot, from /proc/uptime, for the log.
fn uptime() -> String {
    std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned())
}
