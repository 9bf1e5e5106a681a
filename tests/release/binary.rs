//! What a release binary is, read from its headers: the format and machine of each
//! platform (ELF, Mach-O, PE), and whether an ELF file needs a dynamic loader or
//! libraries. Read here rather than with `file` or `readelf`, which a machine may lack.

/// The format and machine a binary is for, as `os/arch` (`linux/amd64`), or why not.
pub fn platform_of(bytes: &[u8]) -> Result<String, String> {
    let u16_at = |at: usize| read::<2>(bytes, at).map(u16::from_le_bytes);
    let u32_at = |at: usize| read::<4>(bytes, at).map(u32::from_le_bytes);
    if bytes.starts_with(b"\x7fELF") {
        if bytes.get(4..6) != Some(&[2, 1]) {
            return Err("an ELF file, but not 64-bit little-endian".into());
        }
        return match u16_at(18)? {
            62 => Ok("linux/amd64".into()),
            183 => Ok("linux/arm64".into()),
            m => Err(format!("an ELF file for machine {m}")),
        };
    }
    if bytes.starts_with(&[0xcf, 0xfa, 0xed, 0xfe]) {
        return match u32_at(4)? {
            0x0100_0007 => Ok("darwin/amd64".into()),
            0x0100_000c => Ok("darwin/arm64".into()),
            c => Err(format!("a Mach-O file for cpu type {c:#x}")),
        };
    }
    if bytes.starts_with(b"MZ") {
        let pe = u32_at(0x3c)? as usize;
        if read::<4>(bytes, pe)? != *b"PE\0\0" {
            return Err("an MZ file without a PE header".into());
        }
        return match u16_at(pe + 4)? {
            0x8664 => Ok("windows/amd64".into()),
            0xaa64 => Ok("windows/arm64".into()),
            m => Err(format!("a PE file for machine {m:#x}")),
        };
    }
    Err(format!(
        "not ELF, Mach-O or PE (starts {:02x?})",
        &bytes[..bytes.len().min(4)]
    ))
}

fn read<const N: usize>(bytes: &[u8], at: usize) -> Result<[u8; N], String> {
    bytes
        .get(at..at + N)
        .map(|b| b.try_into().unwrap())
        .ok_or_else(|| format!("truncated: no {N} bytes at {at}"))
}

/// What keeps a 64-bit little-endian ELF executable from being static: a PT_INTERP
/// program header (a dynamic loader to run it) or DT_NEEDED entries (shared libraries).
/// Empty when it is static.
pub fn dynamic_needs(bytes: &[u8]) -> Result<Vec<String>, String> {
    const PT_DYNAMIC: u32 = 2;
    const PT_INTERP: u32 = 3;
    const DT_NULL: u64 = 0;
    const DT_NEEDED: u64 = 1;
    let u16_at = |at: usize| read::<2>(bytes, at).map(u16::from_le_bytes);
    let u32_at = |at: usize| read::<4>(bytes, at).map(u32::from_le_bytes);
    let u64_at = |at: usize| read::<8>(bytes, at).map(u64::from_le_bytes);
    let phoff = u64_at(32)? as usize;
    let phentsize = u16_at(54)? as usize;
    let phnum = u16_at(56)? as usize;
    let mut needs = Vec::new();
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        let offset = u64_at(ph + 8)? as usize;
        let size = u64_at(ph + 32)? as usize;
        match u32_at(ph)? {
            PT_INTERP => {
                let path = bytes
                    .get(offset..offset + size)
                    .ok_or("truncated PT_INTERP")?;
                let path = String::from_utf8_lossy(path);
                needs.push(format!("loader {}", path.trim_end_matches('\0')));
            }
            PT_DYNAMIC => {
                for entry in (offset..offset + size).step_by(16) {
                    match u64_at(entry)? {
                        DT_NULL => break,
                        DT_NEEDED => needs.push(format!(
                            "a shared library (DT_NEEDED, string #{})",
                            u64_at(entry + 8)?
                        )),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    Ok(needs)
}

#[test]
fn reads_the_test_binary_itself() {
    // This test's own executable: built for the host, dynamic on glibc hosts.
    let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
    let host = format!(
        "{}/{}",
        match std::env::consts::OS {
            "macos" => "darwin",
            os => os,
        },
        match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            arch => arch,
        }
    );
    assert_eq!(platform_of(&me), Ok(host));
    if cfg!(all(target_os = "linux", target_env = "gnu")) {
        let needs = dynamic_needs(&me).unwrap();
        assert!(needs.iter().any(|n| n.starts_with("loader /")), "{needs:?}");
        assert!(
            needs.iter().any(|n| n.starts_with("a shared library")),
            "{needs:?}"
        );
    }
}

#[test]
fn tells_the_other_formats_apart() {
    let mut macho = vec![0xcf, 0xfa, 0xed, 0xfe];
    macho.extend(0x0100_000c_u32.to_le_bytes());
    assert_eq!(platform_of(&macho), Ok("darwin/arm64".into()));
    let mut pe = vec![0; 0x84];
    pe[..2].copy_from_slice(b"MZ");
    pe[0x3c..0x40].copy_from_slice(&0x80_u32.to_le_bytes());
    pe[0x80..0x84].copy_from_slice(b"PE\0\0");
    pe.extend(0x8664_u16.to_le_bytes());
    assert_eq!(platform_of(&pe), Ok("windows/amd64".into()));
    assert!(platform_of(b"#!/bin/sh\n").is_err());
    assert!(platform_of(&pe[..0x82]).is_err(), "truncated PE");
}
