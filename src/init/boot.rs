//! The init's whole job, in order. Each step takes what the previous one produced; any error
//! goes to the one emergency path, and after a rescue shell the boot is simply tried again
//! (every step is safe to repeat, and every kernel setting changed by an attempt is put back
//! when the attempt ends, whichever way it ends).

use crate::cmdline::{BootParams, BreakPoint};
use crate::init::consoles;
use crate::init::emergency::{self, Action};
use crate::init::inputs;
use crate::init::kmsg;
use crate::init::modules::load::Loader;
use crate::init::mounts::{self, is_mount_point, EARLY_MOUNTS};
use crate::init::switch;
use crate::init::{root, root_mount};
use crate::manifest::{self, Manifest};
use crate::rootspec;
use anyhow::{bail, Context, Result};
use std::convert::Infallible;
use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;

/// Where the real root is mounted before it becomes `/`.
pub const NEW_ROOT: &str = "/sysroot";

/// A rescue shell that ends sooner than this, `MAX_QUICK_EXITS` times in a row, ends the
/// retries.
const QUICK_EXIT: std::time::Duration = std::time::Duration::from_secs(1);
const MAX_QUICK_EXITS: u32 = 5;

/// The rescue shell when the manifest cannot say: where `baton build --shell` puts it.
const FALLBACK_SHELL: &str = "/bin/sh";

/// What the emergency path needs to know, learnt as early in each attempt as it can be, so
/// that even a failed early mount or a damaged manifest honours `rd.emergency=`,
/// `rd.shell=` and the image's shell.
#[derive(Default)]
struct Known {
    /// `rd.emergency=`.
    action: Option<Action>,
    /// `rd.shell=`: `Some(false)` forbids the shell on failure.
    shell_allowed: Option<bool>,
    /// The image's rescue shell, if it has one.
    shell: Option<String>,
    /// The initramfs is gone: there is no shell to run and nothing to try again.
    switched: bool,
}

impl Known {
    /// The shell a failure may open.
    fn rescue_shell(&self) -> Option<&str> {
        let allowed = self.shell_allowed != Some(false) && !self.switched;
        self.shell.as_deref().filter(|_| allowed)
    }

    fn action(&self) -> Action {
        let configured = self
            .action
            .unwrap_or(emergency::default_action(self.rescue_shell().is_some()));
        if configured == Action::Shell && self.shell_allowed == Some(false) {
            log::warn!("rd.emergency=shell, but rd.shell=0 forbids the shell: halting");
            return Action::Halt;
        }
        configured
    }
}

/// Runs the boot; never returns. `init_args` are the arguments the kernel gave PID 1 after
/// its name: its unknown words and everything after `--`, exactly what it would have handed
/// to the real init. Bytes, not necessarily UTF-8.
pub fn run(init_args: Vec<OsString>) -> ! {
    kmsg::install();
    let mut known = Known::default();
    let mut quick_exits = 0;
    loop {
        let error = match attempt(&mut known, &init_args) {
            Ok(never) => match never {},
            Err(error) => error,
        };
        let shell_started = std::time::Instant::now();
        emergency::handle(&error, known.action(), known.rescue_shell());
        // A shell that ends at once (no console to read, input at its end) would make the
        // boot fail and retry in a tight loop: after a few, stop with the message on screen.
        quick_exits = if shell_started.elapsed() < QUICK_EXIT {
            quick_exits + 1
        } else {
            0
        };
        if quick_exits >= MAX_QUICK_EXITS {
            log::error!(
                "the rescue shell exited at once {MAX_QUICK_EXITS} times (no input on the console?); halting"
            );
            emergency::stop(Action::Halt);
        }
        log::info!("rescue shell exited; trying the boot again");
    }
}

/// One try at booting: prepare and switch, then exec the real init. Returns only on failure.
fn attempt(known: &mut Known, args: &[OsString]) -> Result<Infallible> {
    let Prepared {
        init,
        old_root,
        consoles,
        run,
    } = prepare(known)?;
    // The kernel settings baton changed are back to what they were (their guards lived in
    // `prepare`): the real init sees the system as if baton had never been there.
    emergency::reap_children();
    let exec_us = crate::init::timeline::mark("exec");
    // Everything that need not delay the real init: deleting the initramfs, the reports
    // and the timeline's file.
    let leftovers = move || {
        if let Some(old_root) = old_root {
            let _step = crate::init::timeline::phase("empty");
            old_root.empty_now();
        }
        log_loaded_modules();
        // Every module is loaded: a console whose driver is a module (hvc0, ttyUSB0) has
        // appeared by now if it ever will.
        consoles::warn_missing(&consoles);
        crate::init::timeline::save();
    };
    let at = seconds(exec_us);
    let stuck = crate::init::probing::abandoned();
    if run.is_some() {
        // This process goes on to run the command: nothing may share its memory.
        leftovers();
        log::info!("running the command at {at} s after boot");
    } else if stuck > 0 {
        // A probe thread still waits on a disk that never answered: it could be inside
        // the allocator when the exec ends it, and a process sharing this memory after the
        // exec would then wait for that lock for ever. Empty the initramfs now instead.
        log::warn!("{stuck} device probe(s) still waiting on a disk: emptying the initramfs now; the kernel starts {init} once the disk gives up");
        leftovers();
        log::info!("running {init} at {at} s after boot");
    } else {
        match crate::init::deferred::spawn(deferral_delay(), Box::new(leftovers)) {
            Ok(deferred) => {
                let pid = deferred.start_at_exec();
                log::info!(
                    "running {init} at {at} s after boot; process {pid} empties the initramfs then"
                );
            }
            Err((error, leftovers)) => {
                log::warn!("{error:#}: emptying the initramfs now");
                leftovers();
                log::info!("running {init} at {at} s after boot");
            }
        }
    }
    let env = switch::environment();
    if let Some(run) = &run {
        crate::init::run::run_and_power_off(run, &env);
    }
    let error = match switch::exec_init(&init, args, &env) {
        Ok(never) => match never {},
        Err(error) => error,
    };
    // Past the switch there is no initramfs to go back to: as the kernel does, try the
    // usual inits before giving up.
    log::error!("{error:#}");
    for fallback in switch::FALLBACK_INITS.iter().filter(|f| **f != init) {
        log::error!("trying {fallback}");
        let Err(e) = switch::exec_init(fallback, args, &env);
        log::error!("{e:#}");
    }
    Err(error)
}

/// What the boot has made ready for the exec.
struct Prepared {
    /// The init to run, in the new root, which is `/` now.
    init: String,
    /// The old root, to empty.
    old_root: Option<switch::OldRoot>,
    /// `console=`, for a report.
    consoles: Vec<String>,
    /// `baton.run`: the command to run instead of the init, and its limit in seconds.
    run: RunCommand,
}

/// `baton.run`'s command, when the boot runs one.
type RunCommand = Option<crate::init::run::Run>;

/// Everything up to the exec.
fn prepare(known: &mut Known) -> Result<Prepared> {
    let (params, manifest) = read_inputs(known)?;
    let (init, run) = bring_up_root(&params, &manifest, known)?;

    match &run {
        Some(_) => log::info!("switching to {NEW_ROOT}, then running the command (baton.run)"),
        None => log::info!("switching to {NEW_ROOT}, then running {init}"),
    }
    let switched = {
        let _step = crate::init::timeline::phase("switch");
        switch::switch_root(Path::new(NEW_ROOT), switch::Emptying::Later)?
    };
    known.switched = true;
    if switched.old_root.is_none() {
        log::warn!("the old root was not emptied");
    }
    // Past the switch: the kernel and systemd boot without a console, and so does this.
    if let Err(e) = switch::reopen_console() {
        log::warn!("{e:#}; the real init starts with the kernel's console descriptors");
    }
    Ok(Prepared {
        init,
        old_root: switched.old_root,
        consoles: params.consoles,
        run,
    })
}

/// The mounts, the command line and the manifest, with the emergency settings taken first.
fn read_inputs(known: &mut Known) -> Result<(BootParams, Manifest)> {
    let start_us = crate::init::timeline::mark("start");
    let mounted = {
        let _step = crate::init::timeline::phase("mounts");
        mounts::mount_early(&EARLY_MOUNTS)
    };
    let reading = crate::init::timeline::phase("manifest");
    // The emergency settings first, whatever else fails: /proc may be there even when a
    // later early mount failed.
    let params = inputs::read_params();
    if let Ok(params) = &params {
        // A VM run for one command has no one at its console: a failed boot powers off,
        // so that the host sees it end (without a status).
        known.action = params.emergency.or(params.run.then_some(Action::Poweroff));
        known.shell_allowed = params.shell;
    }
    let manifest_text = inputs::manifest_text();
    // The shell the manifest names; without a readable manifest, the usual place.
    let shell = match &manifest_text {
        Ok(Some(text)) => manifest::shell_of(text),
        Ok(None) | Err(_) => Some(FALLBACK_SHELL.to_owned()),
    };
    known.shell = shell.filter(|s| Path::new(s).exists());
    mounted?;
    log::info!(
        "baton {} started at {} s after boot",
        env!("CARGO_PKG_VERSION"),
        seconds(start_us)
    );
    let params = params?;
    for warning in &params.warnings {
        log::warn!("{warning}");
    }
    let manifest = inputs::parse_manifest(manifest_text?.as_deref())?;
    drop(reading);
    log::info!(
        "image carries {} modules, {} aliases{}",
        manifest.modules.len(),
        manifest.aliases.len(),
        match &manifest.alias_file {
            Some(path) => format!(" (device aliases in {path}, read if needed)"),
            None => String::new(),
        }
    );
    Ok((params, manifest))
}

/// Modules, the root, the overlay: everything before the switch. Returns the init to run
/// (empty for `baton.run`) and the command `baton.run` runs.
fn bring_up_root(
    params: &BootParams,
    manifest: &Manifest,
    known: &mut Known,
) -> Result<(String, RunCommand)> {
    let mut loader = Loader::new(manifest, params.blacklist.clone(), |name| {
        params.module_params(name)
    });
    {
        let _step = crate::init::timeline::phase("modules");
        for name in manifest.load.iter().chain(params.force_modules.iter()) {
            loader.load(name, "requested");
        }
    }
    if params.breaks_at(BreakPoint::PreMount) {
        loader.wait_all();
    }
    stop_at(params, BreakPoint::PreMount, known);
    let run = match params.run {
        true => {
            // The status port's driver, when the image carries it as a module.
            loader.load_alias(VIRTIO_CONSOLE);
            Some(crate::init::run::Run {
                spec: run_spec(params)?,
                timeout: params.run_timeout_secs,
                transport: crate::transport::Transport::from_rootfstype(&params.rootfstype),
            })
        }
        false => None,
    };
    mount_new_root(params, manifest, &mut loader, known)?;
    if params.overlay {
        let _step = crate::init::timeline::phase("overlay");
        crate::init::shared::overlay_root(Path::new(NEW_ROOT))?;
        log::info!(
            "{NEW_ROOT} is an overlay: the root is read-only under {}, changes go to a tmpfs under {}",
            crate::init::shared::LOWER,
            crate::init::shared::LAYER
        );
    }
    // Drivers still loading for hardware coldplug found (on other threads) finish
    // before the switch, as they would have one after another.
    loader.wait_all();
    stop_at(params, BreakPoint::PreSwitch, known);
    switch::check_new_root(Path::new(NEW_ROOT))?;
    let init = match &run {
        // The command is looked up on PATH when it runs.
        Some(_) => String::new(),
        None => switch::choose_init(Path::new(NEW_ROOT), params.init.as_deref())?,
    };
    Ok((init, run))
}

/// How long the deferred work waits after the exec. With a second CPU it runs beside the
/// real init at once. On one CPU, measured under qemu, any work there delays the init's
/// start even at the idle priority (every switch between the two memories flushes the
/// emulated TLB): it waits until the init is under way.
fn deferral_delay() -> Duration {
    match crate::init::modules::load::usable_cpus() {
        0 | 1 => Duration::from_secs(1),
        _ => Duration::ZERO,
    }
}

/// The modalias of a virtio console (the status port of `baton.run`).
const VIRTIO_CONSOLE: &str = "virtio:d00000003v00001AF4";

/// `baton.run`'s command: the words after `--`, else the image's spec file (`baton run`'s).
fn run_spec(params: &BootParams) -> Result<crate::run_protocol::Spec> {
    if !params.run_command.is_empty() {
        return Ok(crate::run_protocol::Spec {
            command: params.run_command.iter().map(OsString::from).collect(),
            ..Default::default()
        });
    }
    let path = format!("/{}", crate::run_protocol::COMMAND_FILE);
    match crate::bounded::read_bounded(&path, crate::run_protocol::MAX_COMMAND_FILE) {
        Ok(bytes) => crate::run_protocol::parse_spec_file(&bytes)
            .map_err(|e| anyhow::anyhow!("baton.run: {path}: {e}")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => anyhow::bail!(
            "baton.run: no command to run: put it after -- on the kernel command line (baton.run -- CMD ARGS), or in the image's {path}"
        ),
        Err(e) => Err(e).with_context(|| format!("failed to read {path}")),
    }
}

/// `rd.break=POINT`: a shell here, then the boot goes on.
fn stop_at(params: &BootParams, point: BreakPoint, known: &Known) {
    if !params.breaks_at(point) {
        return;
    }
    let Some(shell) = known.shell.as_deref() else {
        log::warn!(
            "rd.break={}: this image has no shell (build with --shell); going on",
            point.name()
        );
        return;
    };
    log::info!("rd.break={}: starting a shell", point.name());
    emergency::console_line(&format!(
        "baton: rd.break={}: starting a shell; exit it to go on with the boot",
        point.name()
    ));
    if let Err(why) = emergency::run_shell(shell) {
        log::error!("{why}; going on");
    }
    log::info!("rd.break={}: shell exited, going on", point.name());
}

fn mount_new_root(
    params: &BootParams,
    manifest: &Manifest,
    loader: &mut Loader<'_>,
    known: &Known,
) -> Result<()> {
    let target = Path::new(NEW_ROOT);
    if is_mount_point(target) {
        log::info!("{NEW_ROOT} is already mounted, using it");
        return Ok(());
    }
    if let Some(transport) = crate::transport::Transport::from_rootfstype(&params.rootfstype) {
        return mount_shared_root(transport, params, loader, known);
    }
    let value = params
        .root
        .as_deref()
        .context("no root= on the kernel command line: nothing to boot (add root=/dev/NAME, root=UUID=... or root=LABEL=...)")?;
    let spec = rootspec::parse_root(value).map_err(anyhow::Error::msg)?;
    let limit = params
        .wait
        .limit_secs()
        .map(|s| Duration::from_secs(u64::from(s)));
    let resume = resume_spec(params);
    load_expected_fs(params, manifest, loader);
    let hinted = load_root_drivers(manifest, loader);
    let (found, resume_device) = {
        let _step = crate::init::timeline::phase("root_search");
        root::wait_for_devices(
            &spec,
            resume.as_ref(),
            (&params.stack, &params.crypt),
            limit,
            hinted,
            loader,
        )?
    };
    // Before anything is mounted from a disk: resuming over mounted filesystems would
    // corrupt them.
    if let Some(device) = &resume_device {
        // Not while a driver is still inside finit_module: the kernel freezes every task
        // to restore the image, and a thread busy in a module's init can make that wait
        // or fail.
        loader.wait_all();
        let _step = crate::init::timeline::phase("resume");
        crate::init::resume::resume_from(device, params.resume_offset);
    }
    stop_at(params, BreakPoint::Mount, known);
    if is_mount_point(target) {
        log::info!("{NEW_ROOT} was mounted in the shell, using it");
        return Ok(());
    }
    if let Some(kind) = found.fstype.as_deref().and_then(crate::probe::member_kind) {
        let later = if kind.contains("LUKS") {
            " (baton cannot unlock LUKS yet)"
        } else {
            ""
        };
        bail!(
            "{} is {kind}, not a filesystem: root= must name the device made from it{later}, by its path (/dev/VG/LV, /dev/mdN) or the UUID= of the filesystem inside",
            found.device.display()
        );
    }
    mount_found(params, manifest, loader, &found)
}

/// Mounts the root device the search found on /sysroot, and tells systemd whether its
/// check was done (see fsck_stamp).
fn mount_found(
    params: &BootParams,
    manifest: &Manifest,
    loader: &mut Loader<'_>,
    found: &root::Found,
) -> Result<()> {
    let target = Path::new(NEW_ROOT);
    let fstypes = root_fstypes(params, manifest, loader, found.fstype.as_deref())?;
    let mounting = crate::init::timeline::phase("root_mount");
    let (fstype, read_only) = root_mount::mount_root(
        &found.device,
        target,
        &fstypes,
        found.fstype.as_deref(),
        // Under an overlay the root itself is only read.
        params.read_only || params.overlay,
        params.rootflags.as_deref(),
    )?;
    drop(mounting);
    log::info!(
        "mounted root {} ({fstype}, {}) on {NEW_ROOT}",
        found.device.display(),
        if read_only { "ro" } else { "rw" }
    );
    crate::init::fsck_stamp::after_mount(
        params,
        &found.device,
        found.fstype.as_deref(),
        read_only,
        target,
    );
    Ok(())
}

/// The drivers on the root's path when the image was built (the manifest's hint), asked for
/// before the rest of the hardware is read: on the machine the image was made for, the
/// root is there once they are in, and the search finds it without coldplug (every
/// device's modalias read and matched against every alias: some 30 ms of a generic image's
/// boot on one emulated CPU). On other hardware they find nothing and the search goes on as
/// without them. Returns whether any was asked for.
fn load_root_drivers(manifest: &Manifest, loader: &mut Loader<'_>) -> bool {
    for name in &manifest.root_drivers {
        loader.load(name, "on the root's path, as the image was built");
    }
    !manifest.root_drivers.is_empty()
}

/// The root's filesystem, when it is known before its disk is: `rootfstype=`, or the type
/// the root had when the image was built (the manifest's hint). Its driver is often the
/// longest load of the boot (ext4: 300 ms under TCG); asked for now, it loads on a spare CPU
/// beside the disk drivers instead of after them. The hint is trusted no further: the root
/// is mounted as what its probe finds. On one CPU nothing would overlap and a stale hint
/// would only cost, so there the probe decides.
fn load_expected_fs(params: &BootParams, manifest: &Manifest, loader: &mut Loader<'_>) {
    let (expected, why): (Vec<&String>, _) = if params.rootfstype.is_empty() {
        let hint = manifest.root_fs.iter().filter(|_| loader.threaded());
        (hint.collect(), "the image's hint")
    } else {
        (params.rootfstype.iter().collect(), "rootfstype=")
    };
    for fstype in expected {
        log::info!("loading {fstype} beside the disk drivers ({why})");
        loader.load_alias(&format!("fs-{fstype}"));
    }
}

/// `resume=`'s device, unless `noresume`.
fn resume_spec(params: &BootParams) -> Option<rootspec::RootSpec> {
    // `noresume` wins wherever it stands; a resume= that does not parse is a warning, not a
    // reason to stop a boot that can go on without it.
    match params.resume.as_deref().filter(|_| !params.noresume) {
        Some(value) => match rootspec::parse_root(value) {
            Ok(spec) => Some(spec),
            Err(why) => {
                log::warn!(
                    "resume: {}; booting without resuming",
                    why.replace("root=", "resume=")
                );
                None
            }
        },
        None => None,
    }
}

/// The filesystem types to try for the root, their modules loaded: as given, else as
/// probed, else every block filesystem the kernel knows.
fn root_fstypes(
    params: &BootParams,
    manifest: &Manifest,
    loader: &mut Loader<'_>,
    probed: Option<&str>,
) -> Result<Vec<String>> {
    // The filesystem: as given, else as probed, else whatever the kernel knows.
    let fstypes = if !params.rootfstype.is_empty() {
        params.rootfstype.clone()
    } else if let Some(fstype) = probed {
        vec![fstype.to_owned()]
    } else {
        Vec::new()
    };
    for fstype in &fstypes {
        let modules = loader.load_alias(&format!("fs-{fstype}"));
        if modules.is_empty() && !manifest.modules.is_empty() {
            log::info!("no module for fs-{fstype} in the image: relying on the kernel's own");
        }
        loader.wait_for(&modules);
    }
    Ok(if fstypes.is_empty() {
        // Every filesystem the image brings must be registered before the kernel's list
        // is read: modules may still be loading on other threads.
        loader.wait_all();
        let known = std::fs::read_to_string("/proc/filesystems")
            .context("failed to read /proc/filesystems")?;
        root_mount::block_filesystems(&known)
    } else {
        fstypes
    })
}

/// `rootfstype=9p|virtiofs root=TAG`: the host's directory of that tag, once its
/// transport's driver has found it.
fn mount_shared_root(
    transport: crate::transport::Transport,
    params: &BootParams,
    loader: &mut Loader<'_>,
    known: &Known,
) -> Result<()> {
    let target = Path::new(NEW_ROOT);
    let tag = params.root.as_deref().unwrap_or_default();
    if !crate::init::shared::is_valid_tag(tag) {
        anyhow::bail!(
            "root={tag:?}: with rootfstype={} the root is the host's tag for the shared directory (up to 36 printable characters, no comma, slash or quote), as in qemu's mount_tag= or virtiofsd's tag",
            transport.fstype()
        );
    }
    let modules = loader.load_alias(&format!("fs-{}", transport.fstype()));
    loader.wait_for(&modules);
    let limit = params
        .wait
        .limit_secs()
        .map(|s| Duration::from_secs(u64::from(s)));
    let what = format!("the host's directory {tag} ({})", transport.fstype());
    let found = {
        let _step = crate::init::timeline::phase("root_search");
        // Mounted as soon as it is there: for a shared directory, finding is mounting.
        let read_only = params.read_only || params.overlay;
        root::wait_until(&what, limit, loader, || {
            crate::init::shared::try_mount(
                transport,
                tag,
                target,
                read_only,
                params.rootflags.as_deref(),
            )
            .map(|mounted| mounted.then_some(()))
        })?
    };
    if found.is_none() {
        anyhow::bail!(
            "{what} did not appear within {} s: check the VM has it (qemu -virtfs ...,mount_tag={tag} or -device vhost-user-fs-pci,tag={tag}) and that the image has the {} modules (baton build --storage, or --module {})",
            limit.map_or(0, |l| l.as_secs()),
            transport.fstype(),
            transport.modules().join(" --module ")
        );
    }
    stop_at(params, BreakPoint::Mount, known);
    log::info!(
        "mounted root: the host's directory {tag} ({}, {}) on {NEW_ROOT}",
        transport.fstype(),
        if params.read_only || params.overlay {
            "ro"
        } else {
            "rw"
        }
    );
    Ok(())
}

/// The kernel's own list of modules: it also counts what the kernel asked for through us.
fn log_loaded_modules() {
    let mut loaded: Vec<String> = std::fs::read_to_string("/proc/modules")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').next().map(str::to_owned))
        .collect();
    loaded.sort_unstable();
    log::info!("loaded {} modules: {}", loaded.len(), loaded.join(" "));
}

/// Microseconds on the timeline's clock as seconds with two decimals, for the log (integer
/// formatting: the init links no floating-point formatting).
fn seconds(us: u64) -> String {
    format!("{}.{:02}", us / 1_000_000, us % 1_000_000 / 10_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shell_and_the_action() {
        let mut known = Known {
            shell: Some("/bin/sh".into()),
            ..Known::default()
        };
        assert_eq!(known.action(), Action::Shell);
        known.shell_allowed = Some(false);
        assert_eq!(known.rescue_shell(), None);
        assert_eq!(known.action(), Action::Halt, "rd.shell=0");
        known.action = Some(Action::Shell);
        assert_eq!(
            known.action(),
            Action::Halt,
            "rd.shell=0 beats rd.emergency=shell"
        );
        known.action = Some(Action::Poweroff);
        assert_eq!(known.action(), Action::Poweroff);
        let switched = Known {
            shell: Some("/bin/sh".into()),
            switched: true,
            ..Known::default()
        };
        assert_eq!(switched.rescue_shell(), None);
        assert_eq!(switched.action(), Action::Halt);
    }
}
