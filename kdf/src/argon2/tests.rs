use super::*;
use crate::testutil::hex;

fn params(kind: Argon2Kind, time_cost: u32, memory_kib: u32, lanes: u32) -> Argon2Params {
    Argon2Params {
        kind,
        time_cost,
        memory_kib,
        lanes,
        threads: lanes,
    }
}

fn tag(params: &Argon2Params, password: &[u8], salt: &[u8], len: usize) -> String {
    let mut out = vec![0u8; len];
    argon2(params, password, salt, &mut out).unwrap();
    hex(&out)
}

/// RFC 9106, section 5: 32 KiB, 3 passes, 4 lanes, with a secret and associated data.
fn rfc9106(kind: Argon2Kind) -> String {
    let mut out = [0u8; 32];
    argon2_keyed(
        &params(kind, 3, 32, 4),
        &[0x01; 32],
        &[0x02; 16],
        &[0x03; 8],
        &[0x04; 12],
        &mut out,
    )
    .unwrap();
    hex(&out)
}

#[test]
fn rfc9106_argon2d() {
    assert_eq!(
        rfc9106(Argon2Kind::Argon2d),
        "512b391b6f1162975371d30919734294f868e3be3984f3c1a13a4db9fabe4acb"
    );
}

#[test]
fn rfc9106_argon2i() {
    assert_eq!(
        rfc9106(Argon2Kind::Argon2i),
        "c814d9d1dc7f37aa13f0d77f2494bda1c8de6b016dd388d29952a4c4672b6ce8"
    );
}

#[test]
fn rfc9106_argon2id() {
    assert_eq!(
        rfc9106(Argon2Kind::Argon2id),
        "0d640df58d78766c08c037a34a8b53c9d01ef0452d75b65eb52520e96b01e659"
    );
}

/// Outputs of the `argon2` command (libargon2 20190702, Debian 12), for example
/// `printf %s password | argon2 somesalt -id -t 2 -k 64 -p 1 -l 32 -r`.
#[test]
fn matches_libargon2() {
    use Argon2Kind::{Argon2d, Argon2i, Argon2id};
    let cases: [(Argon2Kind, u32, u32, u32, usize, &str); 8] = [
        (
            Argon2id,
            2,
            64,
            1,
            32,
            "16a1a498734609dd01456da406de9f3d9da93e6c86c300a12fc1465214ce4922",
        ),
        (
            Argon2i,
            3,
            256,
            2,
            32,
            "6f5bfac70484297ee972938561af45ed8969395fc05a598aa7ce3b53d8fc47a4",
        ),
        (
            Argon2id,
            1,
            1024,
            4,
            64,
            "0ef9a96c85f5e5e6c78407ad7ae3680b4edbce137fc78a0841eb604c143e8c41\
             c765e345e31addcde4fa3a1a4fb824dcac0cdf4150e10bbd71a6108c461b6bf1",
        ),
        // 100 KiB over 3 lanes: m' = 96 blocks.
        (
            Argon2id,
            3,
            100,
            3,
            32,
            "2c05dcb610b1be83bb8a58e4d4c6f55d8008d3553b2910c7d38822715bde52c1",
        ),
        (Argon2d, 2, 512, 2, 16, "63988eb1a45566afe0eefca0ad90530d"),
        // H' chaining BLAKE2b for a tag longer than 64 bytes, not a multiple of 32.
        (
            Argon2i,
            2,
            2048,
            1,
            100,
            "4c3baad4416bd5d006fcb3e524bece8dbe6a6d4e60319b4343070557b0f0acc8\
             f59ae7c91c0b1ac7d004e02bc5f51a2c72c00547ea46bab50ea713cbf48c426b\
             69ee4b93b6ade821884d61c1d6fdb130626b3c92811f5c159e3fab1ce4a4415b\
             32069ecc",
        ),
        (Argon2id, 1, 64, 2, 4, "87935745"),
        // 65 bytes: one V_i of 32 bytes, then 33.
        (
            Argon2id,
            1,
            64,
            2,
            65,
            "f95d895bce9aa29a0ff5e3cc45cddabdfc17f97b519d0045c26c8899455a5f47\
             43ae2553c567c5e583e328b343aa7665fdeb712e6e6be2185b935329942c87cd8f",
        ),
    ];
    for (kind, time_cost, memory_kib, lanes, len, expected) in cases {
        let p = params(kind, time_cost, memory_kib, lanes);
        assert_eq!(
            tag(&p, b"password", b"somesalt", len),
            expected,
            "{p:?} len {len}"
        );
    }
}

const HORSE: &[u8] = b"correct horse battery staple";
const SALT32: &[u8] = b"0123456789abcdef0123456789abcdef";

/// libargon2: `argon2 0123456789abcdef0123456789abcdef -i -t 4 -k 8192 -p 4 -l 64 -r`.
#[test]
fn matches_libargon2_8_mib() {
    assert_eq!(
        tag(&params(Argon2Kind::Argon2i, 4, 8192, 4), HORSE, SALT32, 64),
        "878dac9852eda391ae77ef84083adefbf3a36b0a43ca026c4b1dd44bf31a4b9a\
         f4b422d4ea829f92136d23a5989b286a9fcc6a25b2a0ae77f0cb3d4652551571"
    );
}

/// LUKS2's default cost on a small machine, as the speed example runs it; libargon2:
/// `argon2 0123456789abcdef0123456789abcdef -id -t 4 -k 65536 -p 4 -l 32 -r`.
#[test]
#[ignore = "64 MiB, 4 passes: slow without optimisation (run with --release)"]
fn matches_libargon2_64_mib() {
    assert_eq!(
        tag(
            &params(Argon2Kind::Argon2id, 4, 65536, 4),
            HORSE,
            SALT32,
            32
        ),
        "43ef898d32e45555edef383d6b8da46e9e6f025fb613e72640aa3d85db5770a7"
    );
}

#[test]
fn thread_count_does_not_change_the_result() {
    for kind in [
        Argon2Kind::Argon2i,
        Argon2Kind::Argon2id,
        Argon2Kind::Argon2d,
    ] {
        let mut expected = [0u8; 32];
        // 4 lanes of 32 blocks: references across lanes and segments, in every pass.
        let base = params(kind, 2, 128, 4);
        argon2(
            &Argon2Params { threads: 1, ..base },
            b"pw",
            b"saltsalt",
            &mut expected,
        )
        .unwrap();
        for threads in [0, 2, 3, 4, 64] {
            let mut out = [0u8; 32];
            argon2(
                &Argon2Params { threads, ..base },
                b"pw",
                b"saltsalt",
                &mut out,
            )
            .unwrap();
            assert_eq!(out, expected, "{kind:?} threads {threads}");
        }
    }
}

#[test]
fn rejects_parameters_out_of_bounds() {
    let good = params(Argon2Kind::Argon2id, 1, 64, 2);
    let mut out = [0xAAu8; 32];
    let mut run = |p: Argon2Params, salt: &[u8], len: usize| {
        let result = argon2(&p, b"password", salt, &mut out[..len]);
        if result.is_err() {
            assert!(out[..len].iter().all(|&b| b == 0), "output wiped on error");
        }
        out.fill(0xAA);
        result
    };
    assert_eq!(
        run(Argon2Params { lanes: 0, ..good }, b"somesalt", 32),
        Err(Argon2Error::Lanes { lanes: 0 })
    );
    assert_eq!(
        run(
            Argon2Params {
                lanes: 1 << 24,
                memory_kib: u32::MAX,
                ..good
            },
            b"somesalt",
            32
        ),
        Err(Argon2Error::Lanes { lanes: 1 << 24 })
    );
    assert_eq!(
        run(
            Argon2Params {
                memory_kib: 15,
                ..good
            },
            b"somesalt",
            32
        ),
        Err(Argon2Error::MemoryCost { kib: 15, lanes: 2 })
    );
    assert_eq!(
        run(
            Argon2Params {
                time_cost: 0,
                ..good
            },
            b"somesalt",
            32
        ),
        Err(Argon2Error::TimeCost)
    );
    assert_eq!(
        run(good, b"somesalt", 3),
        Err(Argon2Error::OutputLength { len: 3 })
    );
    assert_eq!(
        run(good, b"short", 32),
        Err(Argon2Error::SaltLength { len: 5 })
    );
    // The smallest of each is fine: 8 KiB per lane, 4 bytes out, 8 bytes of salt.
    assert_eq!(
        run(
            Argon2Params {
                memory_kib: 16,
                ..good
            },
            b"somesalt",
            4
        ),
        Ok(())
    );
    for error in [
        Argon2Error::Internal,
        Argon2Error::Memory { kib: 1 },
        Argon2Error::InputTooLong,
    ] {
        assert!(!error.to_string().is_empty());
    }
}

/// More memory than the machine has is an error, not an abort. Skipped where the kernel
/// would promise any amount (overcommit_memory = 1) and the test would then touch it all.
#[test]
fn too_much_memory_is_an_error() {
    let overcommit = std::fs::read_to_string("/proc/sys/vm/overcommit_memory").unwrap_or_default();
    if overcommit.trim() == "1" {
        eprintln!("skipped: vm.overcommit_memory = 1");
        return;
    }
    let mut out = [0u8; 32];
    let p = params(Argon2Kind::Argon2id, 1, u32::MAX, 1);
    assert_eq!(
        argon2(&p, b"password", b"somesalt", &mut out),
        Err(Argon2Error::Memory { kib: u32::MAX })
    );
}

#[test]
fn kind_names_are_luks2s() {
    assert_eq!(
        Argon2Kind::from_name("argon2id"),
        Some(Argon2Kind::Argon2id)
    );
    assert_eq!(Argon2Kind::from_name("Argon2i"), Some(Argon2Kind::Argon2i));
    assert_eq!(Argon2Kind::from_name("argon2d"), Some(Argon2Kind::Argon2d));
    assert_eq!(Argon2Kind::from_name("pbkdf2"), None);
}

/// H' around its 64-byte switch, against a few lines of Python's `hashlib.blake2b`
/// following RFC 9106, section 3.3.
#[test]
fn h_prime_vectors() {
    let cases = [
        (4, "3e6c02ac"),
        (
            64,
            "f32577a3172f56657d531faaa43077bb8c9726ada7bb04dd337ec5a65454abff\
             241ad6b87a72440e5127c6f9caa70327f2a699096e52d163eb52d9cd99620593",
        ),
        (
            65,
            "77baa447fe6f777c9bcb519545ce80badaf08ecb973fbb4ff45af7d8b569ec7c\
             aad65f72669d05153cdeaa563a162bb5ae4c42214551593816008dc560c5a653\
             91",
        ),
        (
            100,
            "4c9ba23bcafae5e571a5d41673bb8084a4a1de2688416ed390f669d33d364f3d\
             4d9bfa7fe762680c6b2362711c4ce5b2c60ddcd14c1277ec1369c79f44c28966\
             98a2b0773a3ce2e410532fa7c72f0bb61ccca0c24c362f337555cbf2998f2d36\
             01be70d1",
        ),
    ];
    for (len, expected) in cases {
        let mut out = vec![0u8; len];
        h_prime(&[b"a", b"bc"], &mut out).unwrap();
        assert_eq!(hex(&out), expected, "H'^{len}");
    }
}

#[test]
fn compression_of_zero_blocks() {
    // G(0, 0) = P(0) ^ 0, and P of zeros is zeros: BlaMka maps 0 to 0.
    let mut out = Block::ZERO;
    compress::compress_then(&Block::ZERO, &Block::ZERO, &mut out, false, |_| ());
    assert!(out.0.iter().all(|&w| w == 0));
}

/// A block of pseudo-random words.
fn noise(seed: u64) -> Block {
    let mut state = seed | 1;
    let mut block = Block::ZERO;
    for word in block.0.iter_mut() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        *word = state;
    }
    block
}

/// The AVX2 compression is the portable one, word 0 included, in both modes.
#[cfg(target_arch = "x86_64")]
#[test]
fn avx2_compression_matches_portable() {
    if !std::is_x86_feature_detected!("avx2") {
        eprintln!("skipped: no AVX2");
        return;
    }
    for seed in 1..20 {
        let (x, y, old) = (noise(seed), noise(seed + 100), noise(seed + 200));
        for xor in [false, true] {
            let (mut portable, mut vector) = (old, old);
            let (mut first_portable, mut first_vector) = (0, 0);
            compress::compress_then(&x, &y, &mut portable, xor, |w| first_portable = w);
            // SAFETY: the CPU has AVX2 (checked above).
            unsafe { avx2::compress_then(&x, &y, &mut vector, xor, |w| first_vector = w) };
            assert_eq!(portable.0, vector.0, "seed {seed} xor {xor}");
            assert_eq!(first_portable, portable.0[0]);
            assert_eq!(first_vector, vector.0[0]);
        }
    }
}

/// The portable compression gives RFC 9106's and libargon2's results too, on CPUs where
/// the AVX2 one is what `argon2` uses.
#[test]
fn portable_compression_gives_the_vectors() {
    let inputs = Inputs {
        password: &[0x01; 32],
        salt: &[0x02; 16],
        secret: &[0x03; 8],
        associated: &[0x04; 12],
    };
    let mut out = [0u8; 32];
    derive(
        &params(Argon2Kind::Argon2id, 3, 32, 4),
        &inputs,
        &mut out,
        false,
    )
    .unwrap();
    assert_eq!(
        hex(&out),
        "0d640df58d78766c08c037a34a8b53c9d01ef0452d75b65eb52520e96b01e659"
    );
    let inputs = Inputs {
        password: b"password",
        salt: b"somesalt",
        secret: &[],
        associated: &[],
    };
    derive(
        &params(Argon2Kind::Argon2i, 3, 256, 2),
        &inputs,
        &mut out,
        false,
    )
    .unwrap();
    assert_eq!(
        hex(&out),
        "6f5bfac70484297ee972938561af45ed8969395fc05a598aa7ce3b53d8fc47a4"
    );
}

#[test]
#[ignore = "timing only: cargo test --release -p baton-kdf compress_speed -- --ignored --nocapture"]
fn compress_speed() {
    let x = noise(1);
    let mut out = noise(2);
    let start = std::time::Instant::now();
    for _ in 0..1_000_000 {
        let y = out;
        compress::compress_then(&x, &y, &mut out, true, |_| ());
        std::hint::black_box(&mut out);
    }
    eprintln!("portable: {:?} per block", start.elapsed() / 1_000_000);
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        let start = std::time::Instant::now();
        for _ in 0..1_000_000 {
            let y = out;
            // SAFETY: the CPU has AVX2 (checked above).
            unsafe { avx2::compress_then(&x, &y, &mut out, true, |_| ()) };
            std::hint::black_box(&mut out);
        }
        eprintln!("avx2: {:?} per block", start.elapsed() / 1_000_000);
    }
}
