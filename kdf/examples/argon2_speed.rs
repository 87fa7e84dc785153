//! Times Argon2id at LUKS2's usual cost on a small machine (t=4, m=64 MiB, p=4) with 1
//! and 2 threads, and PBKDF2, for comparison with libargon2 and OpenSSL on the same
//! machine:
//!
//! ```sh
//! nice cargo run --release -p baton-kdf --example argon2_speed [runs [argon2|pbkdf2 [threads]]]
//! time (printf %s 'correct horse battery staple' |
//!     argon2 0123456789abcdef0123456789abcdef -id -t 4 -k 65536 -p 4 -r)
//! ```
use baton_kdf::{argon2, pbkdf2, Argon2Kind, Argon2Params, Hash};
use std::time::{Duration, Instant};

/// libargon2's output for these parameters (also checked by the crate's tests).
const EXPECTED: &str = "43ef898d32e45555edef383d6b8da46e9e6f025fb613e72640aa3d85db5770a7";

fn main() {
    let mut args = std::env::args().skip(1);
    let runs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let only = args.next().unwrap_or_default();
    let threads: Vec<u32> = args.filter_map(|a| a.parse().ok()).collect();
    if only != "pbkdf2" {
        argon2_runs(
            runs,
            if threads.is_empty() {
                &[1, 2]
            } else {
                &threads
            },
        );
    }
    if only != "argon2" {
        pbkdf2_runs(runs);
    }
}

fn argon2_runs(runs: usize, thread_counts: &[u32]) {
    for &threads in thread_counts {
        let params = Argon2Params {
            kind: Argon2Kind::Argon2id,
            time_cost: 4,
            memory_kib: 65536,
            lanes: 4,
            threads,
        };
        let mut out = [0u8; 32];
        let times = time(runs, || {
            argon2(
                &params,
                b"correct horse battery staple",
                b"0123456789abcdef0123456789abcdef",
                &mut out,
            )
            .expect("argon2");
        });
        let hex: String = out.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, EXPECTED, "argon2id output differs from libargon2's");
        report(
            &format!("argon2id t=4 m=65536 p=4, {threads} thread(s)"),
            &times,
        );
    }
}

fn pbkdf2_runs(runs: usize) {
    for hash in [Hash::Sha1, Hash::Sha256, Hash::Sha512] {
        let iterations = 1_000_000;
        let mut out = [0u8; 32];
        let times = time(runs.min(3), || {
            pbkdf2(hash, b"password", b"salt", iterations, &mut out)
        });
        report(
            &format!("pbkdf2-{hash:?} {iterations} iterations, 32 bytes"),
            &times,
        );
    }
}

fn time(runs: usize, mut f: impl FnMut()) -> Vec<Duration> {
    (0..runs.max(1))
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect()
}

fn report(what: &str, times: &[Duration]) {
    let best = times.iter().min().copied().unwrap_or_default();
    let total: Duration = times.iter().sum();
    let mean = total / times.len().max(1) as u32;
    println!(
        "{what}: best {:.1} ms, mean {:.1} ms over {} runs",
        best.as_secs_f64() * 1e3,
        mean.as_secs_f64() * 1e3,
        times.len()
    );
}
