//! baton as the kernel's module helper. When a driver asks for another module at run time
//! (FAT for its codepage `nls_cp437`, crypto for an algorithm, a filesystem by `fs-` name),
//! the kernel runs `kernel.modprobe -q -- NAME` (call_modprobe() in kernel/module/kmod.c),
//! `/sbin/modprobe` unless someone changed it. An initramfs has no modprobe: every image
//! baton builds has `/sbin/modprobe` linked to baton's binary, which answers from the
//! image's manifest. After the switch the path is the real root's own modprobe, so no kernel
//! setting is changed and none has to be put back.

use crate::init::inputs;
use crate::init::modules::load::Loader;

/// Whether argv is the kernel's module request: `PROGRAM -q -- NAME`.
pub fn request(args: &[std::ffi::OsString]) -> Option<&str> {
    match args {
        [_, quiet, dashes, name] if quiet == "-q" && dashes == "--" => name.to_str(),
        _ => None,
    }
}

/// Loads `name` (a module or an alias) from the image. Returns the exit status for the
/// kernel: 0 when something answering to it is in the kernel now.
pub fn run(name: &str) -> u8 {
    crate::init::kmsg::install();
    let (Ok(manifest), Ok(params)) = (inputs::read_manifest(), inputs::read_params()) else {
        return 1;
    };
    // One request, answered before the kernel goes on: loaded here, without threads.
    let mut loader = Loader::with_threads(
        &manifest,
        params.blacklist.clone(),
        |m| params.module_params(m),
        0,
    );
    let why = "kernel request";
    let names = if manifest
        .modules
        .iter()
        .any(|m| m.name == crate::modules::modinfo::normalize(name))
    {
        loader.load(name, why);
        vec![name.to_owned()]
    } else {
        loader.load_alias(name)
    };
    loader.wait_for(&names);
    let ok = names.iter().any(|n| loader.in_kernel(n));
    if !ok && name.starts_with("crypto-") {
        // The crypto API asks on speculation, for every name an algorithm could have
        // (`crypto-xts(aes)`, then `crypto-xts(aes)-all`), before it builds the algorithm
        // from its template and cipher itself: a miss here is the normal way.
        log::info!("the kernel asked for module {name}, which this image does not have");
    } else if !ok {
        log::warn!(
            "the kernel asked for module {name}, which this image does not have or could not load"
        );
    }
    u8::from(!ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_the_kernel_request() {
        let args = |v: &[&str]| {
            v.iter()
                .map(Into::into)
                .collect::<Vec<std::ffi::OsString>>()
        };
        assert_eq!(
            request(&args(&["/init", "-q", "--", "nls_cp437"])),
            Some("nls_cp437")
        );
        assert_eq!(request(&args(&["/init"])), None);
        assert_eq!(request(&args(&["/init", "-q", "nls_cp437"])), None);
        assert_eq!(request(&args(&["/init", "-r", "--", "x"])), None);
    }
}
