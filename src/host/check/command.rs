//! The command and `baton update`'s use of it: an image's capabilities read from its
//! manifest, set against the root's stack.

use super::{judge, Capabilities, Finding};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// `baton check`'s options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckOptions {
    pub root: PathBuf,
    /// `-k KVER`: the kernel whose image is checked (default: the newest installed).
    pub kernel: Option<String>,
    /// The image to check; by default the one `baton update` would write, built aside.
    pub image: Option<PathBuf>,
}

/// What `image` (its bytes) brings, with the kernel's built-in modules from
/// `modules_dir/modules.builtin`.
pub fn capabilities_of(image: &[u8], modules_dir: &Path) -> Result<Capabilities> {
    let listing = crate::host::image::inspect::read_image_with(
        image,
        &crate::host::image::compress::Limits::DEFAULT,
    )?;
    let file = |path: &str| {
        listing
            .iter()
            .rev()
            .find(|l| l.path == path)
            .map(|l| String::from_utf8_lossy(&l.data).into_owned())
    };
    let text = file(crate::manifest::PATH)
        .context("the image has no baton manifest (not an image baton built)")?;
    let mut manifest = crate::manifest::Manifest::parse(&text).map_err(anyhow::Error::msg)?;
    // The aliases the manifest leaves to a file of their own, with its own.
    if let Some(path) = &manifest.alias_file {
        let rest = file(path.trim_start_matches('/'))
            .with_context(|| format!("the image's manifest names {path}, which it lacks"))?;
        let rest = crate::manifest::Manifest::parse(&rest).map_err(anyhow::Error::msg)?;
        manifest.aliases = manifest
            .aliases
            .pairs()
            .chain(rest.aliases.pairs())
            .collect();
    }
    let builtin = std::fs::read_to_string(modules_dir.join("modules.builtin")).unwrap_or_default();
    Ok(Capabilities::new(&manifest, &builtin))
}

/// The findings for the system at `root` and an image of these capabilities; `None`
/// when there is no root to check (a tree without one in its fstab).
pub fn findings(root: &Path, image: &Capabilities) -> Result<Option<Vec<Finding>>> {
    let stack = super::discover(root).context(
        "cannot tell what this system's root is on (the image is not trusted to boot it)",
    )?;
    Ok(stack.map(|stack| judge(&stack, image)))
}

/// The failures as the lines `baton update` and `baton check` print.
pub fn failures(findings: &[Finding]) -> Vec<&str> {
    findings
        .iter()
        .filter(|f| !f.ok)
        .map(|f| f.line.as_str())
        .collect()
}

/// Runs `baton check`: prints each layer's finding; `Ok(true)` when the image can bring
/// the root up.
pub fn run(opts: &CheckOptions) -> Result<bool> {
    let kver = match &opts.kernel {
        Some(kver) => kver.clone(),
        None => crate::host::installed::installed_kernels(&opts.root)?
            .pop()
            .context(
                "no kernel installed (lib/modules/KVER with boot/vmlinuz-KVER): name one with -k",
            )?,
    };
    let modules_dir = opts.root.join(format!("lib/modules/{kver}"));
    let bytes = match &opts.image {
        Some(image) => {
            std::fs::read(image).with_context(|| format!("cannot read {}", image.display()))?
        }
        None => build_aside(&opts.root, &kver)?,
    };
    let caps = capabilities_of(&bytes, &modules_dir)?;
    let Some(findings) = findings(&opts.root, &caps)? else {
        println!(
            "nothing to check: {} has no root filesystem in its fstab",
            opts.root.join("etc/fstab").display()
        );
        return Ok(true);
    };
    for f in &findings {
        println!("{} {}", if f.ok { "ok  " } else { "FAIL" }, f.line);
    }
    Ok(findings.iter().all(|f| f.ok))
}

/// The image `baton update` would write for `kver`, built into a private temporary file
/// and read back.
fn build_aside(root: &Path, kver: &str) -> Result<Vec<u8>> {
    let config = crate::host::installed::read_config(root)?;
    let dir = std::env::temp_dir().join(format!("baton-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut options = crate::host::installed::build_options(&config, root, kver, 0)?;
    options.output = dir.join("initrd.img");
    let built = crate::host::image::build::build(&options)
        .and_then(|_| std::fs::read(&options.output).map_err(anyhow::Error::from));
    let _ = std::fs::remove_dir_all(&dir);
    built.with_context(|| format!("failed to build the image for {kver}"))
}
