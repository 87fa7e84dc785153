//! Early microcode: the CPU updates the kernel applies before anything else runs, read from
//! an uncompressed cpio archive at the very start of the initrd that holds
//! `kernel/x86/microcode/GenuineIntel.bin` and/or `kernel/x86/microcode/AuthenticAMD.bin`
//! (Documentation/arch/x86/microcode.rst). The kernel looks for them before it can
//! decompress anything, so this archive comes first and is never compressed; the main,
//! compressed archive follows it.
//!
//! The blobs are made as Debian's and the other generators make them: Intel's
//! `intel-ucode/FF-MM-SS` files (family-model-stepping in hex, as intel-microcode installs
//! them, some as `FF-MM-SS.initramfs`) and AMD's `amd-ucode/microcode_amd*.bin` containers (amd64-microcode), each set
//! concatenated in name order. The kernel picks out what matches the CPU it runs on.

use super::entry::{Entry, Image};
use super::firmware::FirmwareDir;
use super::newc;
use anyhow::{bail, Context, Result};

/// Which microcode an image carries (`--microcode`, `microcode=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Microcode {
    /// Every file: the image boots any x86 machine with current microcode.
    All,
    /// Only what the CPUs of the machine building the image need.
    Host,
    None,
}

impl Microcode {
    pub fn parse(s: &str) -> Result<Microcode> {
        Ok(match s {
            "all" => Microcode::All,
            "host" => Microcode::Host,
            "none" => Microcode::None,
            _ => bail!("unknown microcode selection {s:?}: expected all, host or none"),
        })
    }
}

/// Where the kernel looks for each vendor's blob in the early archive.
pub const INTEL_PATH: &str = "kernel/x86/microcode/GenuineIntel.bin";
pub const AMD_PATH: &str = "kernel/x86/microcode/AuthenticAMD.bin";

/// The most microcode an image may carry. Intel's whole set is about 21 MB today and AMD's
/// under 1 MB; an uncompressed archive the kernel scans before it boots should not grow
/// without bound because a directory holds something it should not.
pub const MAX_BYTES: usize = 64 << 20;

/// One processor signature, as /proc/cpuinfo shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cpu {
    pub vendor: String,
    /// The displayed family and model, extended fields included (what Intel's file names use).
    pub family: u32,
    pub model: u32,
    pub stepping: u32,
}

impl Cpu {
    fn is_intel(&self) -> bool {
        self.vendor == "GenuineIntel"
    }

    /// Hygon's CPUs are AMD's design and take AMD's microcode loader and files.
    fn is_amd(&self) -> bool {
        self.vendor == "AuthenticAMD" || self.vendor == "HygonGenuine"
    }
}

/// The distinct processor signatures in a /proc/cpuinfo text, in order of appearance.
/// Processors without all four fields (other architectures) are left out.
pub fn parse_cpuinfo(text: &str) -> Vec<Cpu> {
    let mut cpus: Vec<Cpu> = Vec::new();
    for block in text.split("\n\n") {
        let mut vendor = None;
        let (mut family, mut model, mut stepping) = (None, None, None);
        for line in block.lines() {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            match key.trim() {
                "vendor_id" => vendor = Some(value.to_owned()),
                "cpu family" => family = value.parse().ok(),
                "model" => model = value.parse().ok(),
                "stepping" => stepping = value.parse().ok(),
                _ => {}
            }
        }
        if let (Some(vendor), Some(family), Some(model), Some(stepping)) =
            (vendor, family, model, stepping)
        {
            let cpu = Cpu {
                vendor,
                family,
                model,
                stepping,
            };
            if !cpus.contains(&cpu) {
                cpus.push(cpu);
            }
        }
    }
    cpus
}

/// The name intel-microcode gives the file for this signature: `06-8e-0a`.
pub fn intel_file_name(cpu: &Cpu) -> String {
    format!("{:02x}-{:02x}-{:02x}", cpu.family, cpu.model, cpu.stepping)
}

/// The signature a file in intel-ucode/ is for: its name, `FF-MM-SS`, or Debian's
/// `FF-MM-SS.initramfs`, which intel-microcode installs for updates that must only be applied
/// early (the late loader asks for the plain name and so never sees them).
fn intel_signature(name: &str) -> Option<&str> {
    let stem = name.strip_suffix(".initramfs").unwrap_or(name);
    let parts: Vec<&str> = stem.split('-').collect();
    let ok = parts.len() == 3
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()));
    ok.then_some(stem)
}

fn is_intel_name(name: &str) -> bool {
    intel_signature(name).is_some()
}

/// Whether a name in amd-ucode/ is a microcode container (not a signature or a README).
fn is_amd_name(name: &str) -> bool {
    name.starts_with("microcode_amd") && name.ends_with(".bin")
}

/// Whether a file name in a vendor's directory is one of its microcode files.
type NameCheck = fn(&str) -> bool;

/// Which files to take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Select {
    All,
    /// For these CPUs: Intel's one file per signature, AMD's containers if any CPU is AMD's.
    Cpus(Vec<Cpu>),
}

/// One vendor's blob: where it goes, which files it was made of, their bytes in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    pub path: &'static str,
    pub files: Vec<String>,
    pub data: Vec<u8>,
}

/// Reads the microcode files `select` asks for from the firmware directory's `intel-ucode/`
/// and `amd-ucode/`. Vendors with no file give no blob.
pub fn collect(dir: &FirmwareDir, select: &Select) -> Result<Vec<Blob>> {
    let mut blobs = Vec::new();
    let mut total = 0usize;
    let vendors: [(&str, &'static str, NameCheck); 2] = [
        ("intel-ucode", INTEL_PATH, is_intel_name),
        ("amd-ucode", AMD_PATH, is_amd_name),
    ];
    for (sub, path, is_ucode) in vendors {
        let wanted = |name: &str| match select {
            Select::All => true,
            Select::Cpus(cpus) if path == INTEL_PATH => cpus.iter().any(|cpu| {
                cpu.is_intel() && intel_signature(name) == Some(intel_file_name(cpu).as_str())
            }),
            Select::Cpus(cpus) => cpus.iter().any(Cpu::is_amd),
        };
        let mut blob = Blob {
            path,
            files: Vec::new(),
            data: Vec::new(),
        };
        for name in dir.list(sub)? {
            if !is_ucode(&name) || !wanted(&name) {
                continue;
            }
            let rel = format!("{sub}/{name}");
            // A dangling link or a directory is not microcode.
            let Some(data) = dir.read_file(&rel)? else {
                continue;
            };
            total = total.saturating_add(data.len());
            if total > MAX_BYTES {
                bail!(
                    "the microcode in {} adds up to more than {} MiB (at {rel}); an early archive that large is not microcode, use --microcode host or none",
                    dir.display(),
                    MAX_BYTES >> 20
                );
            }
            blob.files.push(name);
            blob.data.extend_from_slice(&data);
        }
        if !blob.files.is_empty() {
            blobs.push(blob);
        }
    }
    Ok(blobs)
}

/// The early archive: an uncompressed newc cpio holding the blobs (and their directories),
/// padded to 4 bytes as the archive that follows must start on a 4-byte boundary. The same
/// blobs and mtime give the same bytes.
pub fn archive(blobs: &[Blob], mtime: u32) -> Result<Vec<u8>> {
    let mut image = Image::new();
    for blob in blobs {
        image.insert(blob.path, Entry::file(0o644, blob.data.clone()))?;
    }
    let bytes = newc::write(&image, mtime).context("failed to write the microcode archive")?;
    debug_assert!(bytes.len() % 4 == 0);
    Ok(bytes)
}

/// The processors of the machine this runs on, from /proc/cpuinfo.
pub fn host_cpus() -> Result<Vec<Cpu>> {
    let text = std::fs::read_to_string("/proc/cpuinfo")
        .context("failed to read /proc/cpuinfo to pick this machine's microcode")?;
    Ok(parse_cpuinfo(&text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::image::inspect::read_image;
    use std::fs;
    use std::path::{Path, PathBuf};

    const CPUINFO: &str = "\
processor\t: 0
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 142
model name\t: Intel(R) Core(TM) i7-8550U CPU @ 1.80GHz
stepping\t: 10
microcode\t: 0xf4

processor\t: 1
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 142
model name\t: Intel(R) Core(TM) i7-8550U CPU @ 1.80GHz
stepping\t: 10
microcode\t: 0xf4
";

    #[test]
    fn the_intel_file_for_a_cpuinfo() {
        let cpus = parse_cpuinfo(CPUINFO);
        assert_eq!(
            cpus,
            [Cpu {
                vendor: "GenuineIntel".into(),
                family: 6,
                model: 142,
                stepping: 10
            }]
        );
        assert_eq!(intel_file_name(&cpus[0]), "06-8e-0a");
        // qemu's default CPU model, and a family above 0xf written out in full.
        let amd = parse_cpuinfo(
            "vendor_id : AuthenticAMD\ncpu family : 15\nmodel : 107\nmodel name : QEMU Virtual CPU version 2.5+\nstepping : 1\n\n\
             vendor_id : AuthenticAMD\ncpu family : 25\nmodel : 33\nstepping : 0\n",
        );
        assert_eq!(intel_file_name(&amd[0]), "0f-6b-01");
        assert_eq!(amd[1].family, 25);
        // Other architectures have no such fields.
        assert!(
            parse_cpuinfo("processor : 0\nBogoMIPS : 48.00\nCPU implementer : 0x41\n").is_empty()
        );
    }

    #[test]
    fn names() {
        assert!(is_intel_name("06-8e-0a"));
        assert_eq!(intel_signature("06-8e-0a.initramfs"), Some("06-8e-0a"));
        assert!(!is_intel_name("06-8e-0a.bak"));
        assert!(!is_intel_name("06-8e"));
        assert!(!is_intel_name("list"));
        assert!(is_amd_name("microcode_amd_fam19h.bin"));
        assert!(!is_amd_name("microcode_amd_fam19h.bin.asc"));
        assert_eq!(Microcode::parse("host").unwrap(), Microcode::Host);
        assert!(Microcode::parse("some").is_err());
    }

    fn fake_dir(name: &str) -> PathBuf {
        let root = std::env::temp_dir().join(format!("baton-ucode-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let fw = root.join("lib/firmware");
        fs::create_dir_all(fw.join("intel-ucode")).unwrap();
        fs::create_dir_all(fw.join("amd-ucode")).unwrap();
        for (path, data) in [
            // Debian's name for an update only the early loader may apply.
            ("intel-ucode/06-8e-0a.initramfs", &b"INTEL-8E"[..]),
            ("intel-ucode/06-55-04", b"INTEL-55"),
            ("intel-ucode/README", b"not microcode"),
            ("amd-ucode/microcode_amd_fam17h.bin", b"AMD-17"),
            ("amd-ucode/microcode_amd.bin", b"AMD-OLD"),
            ("amd-ucode/microcode_amd.bin.asc", b"signature"),
        ] {
            fs::write(fw.join(path), data).unwrap();
        }
        root
    }

    fn dir(root: &Path) -> FirmwareDir {
        FirmwareDir::new(&root.join("lib/firmware"))
    }

    #[test]
    fn all_or_the_hosts() {
        let root = fake_dir("select");
        let all = collect(&dir(&root), &Select::All).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].path, INTEL_PATH);
        assert_eq!(all[0].files, ["06-55-04", "06-8e-0a.initramfs"]);
        assert_eq!(all[0].data, b"INTEL-55INTEL-8E");
        assert_eq!(all[1].path, AMD_PATH);
        assert_eq!(
            all[1].files,
            ["microcode_amd.bin", "microcode_amd_fam17h.bin"]
        );
        assert_eq!(all[1].data, b"AMD-OLDAMD-17");
        // An Intel host: its one file, nothing of AMD's.
        let intel = collect(&dir(&root), &Select::Cpus(parse_cpuinfo(CPUINFO))).unwrap();
        assert_eq!(intel.len(), 1);
        assert_eq!(
            (intel[0].path, intel[0].data.as_slice()),
            (INTEL_PATH, &b"INTEL-8E"[..])
        );
        // An AMD host: AMD's containers, none of Intel's.
        let amd_cpu = Cpu {
            vendor: "AuthenticAMD".into(),
            family: 23,
            model: 49,
            stepping: 0,
        };
        let amd = collect(&dir(&root), &Select::Cpus(vec![amd_cpu])).unwrap();
        assert_eq!(amd.len(), 1);
        assert_eq!(amd[0].path, AMD_PATH);
        // An Intel CPU with no file of its own: nothing.
        let other = Cpu {
            vendor: "GenuineIntel".into(),
            family: 6,
            model: 0xcf,
            stepping: 2,
        };
        assert!(collect(&dir(&root), &Select::Cpus(vec![other]))
            .unwrap()
            .is_empty());
        // No microcode directories at all: nothing, and no error.
        let empty = FirmwareDir::new(&root.join("nowhere/lib/firmware"));
        assert!(collect(&empty, &Select::All).unwrap().is_empty());
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn too_much_is_an_error() {
        let root = fake_dir("big");
        let big = vec![0u8; MAX_BYTES / 2 + 1];
        let fw = root.join("lib/firmware/intel-ucode");
        fs::write(fw.join("06-01-01"), &big).unwrap();
        fs::write(fw.join("06-01-02"), &big).unwrap();
        let err = collect(&dir(&root), &Select::All).unwrap_err().to_string();
        assert!(err.contains("more than 64 MiB"), "{err}");
        // The host's share is small enough.
        let one = Cpu {
            vendor: "GenuineIntel".into(),
            family: 6,
            model: 1,
            stepping: 1,
        };
        assert_eq!(
            collect(&dir(&root), &Select::Cpus(vec![one]))
                .unwrap()
                .len(),
            1
        );
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn the_early_archive_is_plain_cpio_with_the_kernels_paths() {
        let root = fake_dir("archive");
        let blobs = collect(&dir(&root), &Select::All).unwrap();
        let bytes = archive(&blobs, 0).unwrap();
        // Uncompressed newc from its first byte, a whole number of 4-byte words.
        assert!(bytes.starts_with(b"070701"));
        assert_eq!(bytes.len() % 4, 0);
        assert_eq!(archive(&blobs, 0).unwrap(), bytes, "not reproducible");
        let listing = read_image(&bytes).unwrap();
        let paths: Vec<&str> = listing.iter().map(|l| l.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "kernel",
                "kernel/x86",
                "kernel/x86/microcode",
                "kernel/x86/microcode/AuthenticAMD.bin",
                "kernel/x86/microcode/GenuineIntel.bin"
            ]
        );
        assert_eq!(listing[4].data, b"INTEL-55INTEL-8E");
        assert_eq!(listing[3].data, b"AMD-OLDAMD-17");
        assert!(listing
            .iter()
            .all(|l| l.compression == crate::host::image::compress::Compression::None));
        fs::remove_dir_all(&root).unwrap();
    }
}
