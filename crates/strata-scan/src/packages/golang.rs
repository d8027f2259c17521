//! Go's module build information, as `go build` embeds it in an ELF executable's `.go.buildinfo`
//! section, read with a few bounded reads (the ELF header, the section headers, the section names, the
//! section itself and, for the pre-1.18 layout, the two strings it points to): never the whole binary.

/// The magic at the start of `.go.buildinfo`.
const MAGIC: &[u8; 14] = b"\xff Go buildinf:";
/// The most section headers read.
const MAX_SECTIONS: u64 = 1 << 14;
/// The most bytes read of the section-name table, of `.go.buildinfo` and of one string it points to.
const MAX_READ: u64 = 4 << 20;

/// A Go module a binary was built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoModule {
    /// The module path (`github.com/spf13/cobra`).
    pub path: String,
    /// The version (`v1.8.0`; `(devel)` for an unversioned main module).
    pub version: String,
    /// The `go.sum` hash (`h1:…`), when recorded.
    pub sum: String,
}

/// What a Go binary says about how it was built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoBuildInfo {
    /// The toolchain version (`go1.22.1`).
    pub go_version: String,
    /// The main package's import path (`path` line).
    pub path: String,
    /// The main module, when built in module mode.
    pub main: Option<GoModule>,
    /// The dependencies, replacements applied (a `=>` line replaces the `dep` line before it).
    pub deps: Vec<GoModule>,
}

/// Reads bytes of a file at an offset: returns how many it read (fewer only at the end of the file).
pub type ReadAt<'a> = dyn FnMut(u64, &mut [u8]) -> std::io::Result<usize> + 'a;

fn read_exact(read: &mut ReadAt<'_>, offset: u64, len: u64) -> std::io::Result<Option<Vec<u8>>> {
    if len > MAX_READ {
        return Ok(None);
    }
    let mut buf = vec![0u8; usize::try_from(len).unwrap_or(0)];
    let mut done = 0;
    while done < buf.len() {
        let Some(rest) = buf.get_mut(done..) else {
            break;
        };
        let n = read(offset + done as u64, rest)?;
        if n == 0 {
            return Ok(None);
        }
        done += n;
    }
    Ok(Some(buf))
}

#[derive(Clone, Copy)]
struct Elf {
    wide: bool,
    big: bool,
}

impl Elf {
    fn u16(self, b: &[u8], at: usize) -> Option<u64> {
        let s: [u8; 2] = b.get(at..at + 2)?.try_into().ok()?;
        Some(u64::from(if self.big {
            u16::from_be_bytes(s)
        } else {
            u16::from_le_bytes(s)
        }))
    }
    fn u32(self, b: &[u8], at: usize) -> Option<u64> {
        let s: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
        Some(u64::from(if self.big {
            u32::from_be_bytes(s)
        } else {
            u32::from_le_bytes(s)
        }))
    }
    fn u64(self, b: &[u8], at: usize) -> Option<u64> {
        let s: [u8; 8] = b.get(at..at + 8)?.try_into().ok()?;
        Some(if self.big {
            u64::from_be_bytes(s)
        } else {
            u64::from_le_bytes(s)
        })
    }
    /// A word: 8 bytes in a 64-bit file, 4 in a 32-bit one.
    fn word(self, b: &[u8], at: usize) -> Option<u64> {
        if self.wide {
            self.u64(b, at)
        } else {
            self.u32(b, at)
        }
    }
}

struct Section {
    name: u64,
    kind: u64,
    addr: u64,
    offset: u64,
    size: u64,
}

const SHT_NOBITS: u64 = 8;

/// Whether `head` (a file's first bytes) starts an ELF file.
pub fn is_elf(head: &[u8]) -> bool {
    head.starts_with(b"\x7fELF")
}

/// The Go build information of the ELF file `read` reads, `Ok(None)` when it is not an ELF file, has no
/// `.go.buildinfo` section (not Go, or its section headers stripped), or the section is not one Go wrote.
/// Reads fail only on I/O errors: malformed files are `Ok(None)`.
pub fn read_go_buildinfo(read: &mut ReadAt<'_>) -> std::io::Result<Option<GoBuildInfo>> {
    let Some(head) = read_exact(read, 0, 64)? else {
        return Ok(None);
    };
    if !is_elf(&head) {
        return Ok(None);
    }
    let elf = match (head.get(4), head.get(5)) {
        (Some(1), Some(1)) => Elf {
            wide: false,
            big: false,
        },
        (Some(1), Some(2)) => Elf {
            wide: false,
            big: true,
        },
        (Some(2), Some(1)) => Elf {
            wide: true,
            big: false,
        },
        (Some(2), Some(2)) => Elf {
            wide: true,
            big: true,
        },
        _ => return Ok(None),
    };
    let fields = if elf.wide {
        (
            elf.u64(&head, 0x28),
            elf.u16(&head, 0x3a),
            elf.u16(&head, 0x3c),
            elf.u16(&head, 0x3e),
        )
    } else {
        (
            elf.u32(&head, 0x20),
            elf.u16(&head, 0x2e),
            elf.u16(&head, 0x30),
            elf.u16(&head, 0x32),
        )
    };
    let (Some(shoff), Some(shentsize), Some(shnum), Some(shstrndx)) = fields else {
        return Ok(None);
    };
    let min_entsize = if elf.wide { 64 } else { 40 };
    if shoff == 0 || shnum == 0 || shnum > MAX_SECTIONS || shentsize < min_entsize {
        return Ok(None);
    }
    let Some(table) = read_exact(read, shoff, shnum * shentsize)? else {
        return Ok(None);
    };
    let mut sections = Vec::new();
    for i in 0..shnum {
        let at = usize::try_from(i * shentsize).unwrap_or(usize::MAX);
        let s = if elf.wide {
            (
                elf.u32(&table, at),
                elf.u32(&table, at + 4),
                elf.u64(&table, at + 16),
                elf.u64(&table, at + 24),
                elf.u64(&table, at + 32),
            )
        } else {
            (
                elf.u32(&table, at),
                elf.u32(&table, at + 4),
                elf.u32(&table, at + 12),
                elf.u32(&table, at + 16),
                elf.u32(&table, at + 20),
            )
        };
        let (Some(name), Some(kind), Some(addr), Some(offset), Some(size)) = s else {
            return Ok(None);
        };
        sections.push(Section {
            name,
            kind,
            addr,
            offset,
            size,
        });
    }
    let Some(strtab) = usize::try_from(shstrndx).ok().and_then(|i| sections.get(i)) else {
        return Ok(None);
    };
    let Some(names) = read_exact(read, strtab.offset, strtab.size)? else {
        return Ok(None);
    };
    let wanted = b".go.buildinfo\0";
    let Some(section) = sections.iter().find(|s| {
        usize::try_from(s.name)
            .ok()
            .and_then(|n| names.get(n..n + wanted.len()))
            .is_some_and(|n| n == wanted)
    }) else {
        return Ok(None);
    };
    if section.kind == SHT_NOBITS {
        return Ok(None);
    }
    let Some(data) = read_exact(read, section.offset, section.size.min(MAX_READ))? else {
        return Ok(None);
    };
    if data.len() < 32 || !data.starts_with(MAGIC) {
        return Ok(None);
    }
    let (Some(&ptr_size), Some(&flags)) = (data.get(14), data.get(15)) else {
        return Ok(None);
    };
    let (version, modinfo) = if flags & 0x2 != 0 {
        let Some((version, rest)) = data.get(32..).and_then(uvarint_string) else {
            return Ok(None);
        };
        let Some((modinfo, _)) = uvarint_string(rest) else {
            return Ok(None);
        };
        (version.to_vec(), modinfo.to_vec())
    } else {
        let word = Elf {
            wide: ptr_size == 8,
            big: flags & 0x1 != 0,
        };
        if ptr_size != 4 && ptr_size != 8 {
            return Ok(None);
        }
        let p = usize::from(ptr_size);
        let (Some(vers_at), Some(mod_at)) = (word.word(&data, 16), word.word(&data, 16 + p)) else {
            return Ok(None);
        };
        let Some(version) = read_go_string(read, &sections, word, vers_at)? else {
            return Ok(None);
        };
        let Some(modinfo) = read_go_string(read, &sections, word, mod_at)? else {
            return Ok(None);
        };
        (version, modinfo)
    };
    let go_version = String::from_utf8_lossy(&version).into_owned();
    if !go_version.starts_with("go") {
        return Ok(None);
    }
    let modinfo = strip_sentinels(&modinfo);
    Ok(Some(parse_modinfo(
        go_version,
        &String::from_utf8_lossy(modinfo),
    )))
}

/// A Go string header (data pointer, length) at virtual address `addr`, and the bytes it points to.
fn read_go_string(
    read: &mut ReadAt<'_>,
    sections: &[Section],
    word: Elf,
    addr: u64,
) -> std::io::Result<Option<Vec<u8>>> {
    let p: u64 = if word.wide { 8 } else { 4 };
    let Some(header) = read_virtual(read, sections, addr, 2 * p)? else {
        return Ok(None);
    };
    let (Some(data), Some(len)) = (
        word.word(&header, 0),
        word.word(&header, usize::from(word.wide) * 4 + 4),
    ) else {
        return Ok(None);
    };
    read_virtual(read, sections, data, len)
}

/// `len` bytes at virtual address `addr`, through the section that holds them.
fn read_virtual(
    read: &mut ReadAt<'_>,
    sections: &[Section],
    addr: u64,
    len: u64,
) -> std::io::Result<Option<Vec<u8>>> {
    let Some(s) = sections.iter().find(|s| {
        s.kind != SHT_NOBITS
            && s.addr != 0
            && addr >= s.addr
            && addr
                .checked_add(len)
                .is_some_and(|end| end <= s.addr.saturating_add(s.size))
    }) else {
        return Ok(None);
    };
    read_exact(read, s.offset + (addr - s.addr), len)
}

/// An unsigned-varint length and that many bytes, and what follows them.
fn uvarint_string(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut len: u64 = 0;
    for (i, &byte) in b.iter().enumerate().take(10) {
        len |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            let start = i + 1;
            let end = start.checked_add(usize::try_from(len).ok()?)?;
            return Some((b.get(start..end)?, b.get(end..)?));
        }
    }
    None
}

/// The module information without the 16-byte sentinels `go build` wraps it in.
fn strip_sentinels(modinfo: &[u8]) -> &[u8] {
    let n = modinfo.len();
    if n >= 33 && modinfo.get(n - 17) == Some(&b'\n') {
        modinfo.get(16..n - 16).unwrap_or(modinfo)
    } else {
        modinfo
    }
}

/// Parses the module information text (`path`, `mod`, `dep`, `=>`, `build` lines, tab-separated).
pub fn parse_modinfo(go_version: String, text: &str) -> GoBuildInfo {
    let mut info = GoBuildInfo {
        go_version,
        path: String::new(),
        main: None,
        deps: Vec::new(),
    };
    let module = |fields: &[&str]| GoModule {
        path: fields.first().copied().unwrap_or("").to_owned(),
        version: fields.get(1).copied().unwrap_or("").to_owned(),
        sum: fields.get(2).copied().unwrap_or("").to_owned(),
    };
    for line in text.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        let Some((&key, rest)) = fields.split_first() else {
            continue;
        };
        match key {
            "path" => info.path = rest.first().copied().unwrap_or("").to_owned(),
            "mod" => info.main = Some(module(rest)),
            "dep" => info.deps.push(module(rest)),
            "=>" => {
                if let Some(last) = info.deps.last_mut() {
                    *last = module(rest);
                } else if let Some(main) = info.main.as_mut() {
                    *main = module(rest);
                }
            }
            _ => {}
        }
    }
    info
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_fixtures::elf::{GoBuildInfoFormat, go_elf, go_modinfo};

    fn read(bytes: &[u8]) -> Option<GoBuildInfo> {
        let mut f = |offset: u64, buf: &mut [u8]| -> std::io::Result<usize> {
            let start = usize::try_from(offset)
                .unwrap_or(usize::MAX)
                .min(bytes.len());
            let src = &bytes[start..];
            let n = src.len().min(buf.len());
            buf[..n].copy_from_slice(&src[..n]);
            Ok(n)
        };
        read_go_buildinfo(&mut f).unwrap()
    }

    #[test]
    fn both_layouts() {
        let modinfo = go_modinfo(
            "example.com/hello",
            ("example.com/hello", "(devel)"),
            &[
                ("github.com/google/uuid", "v1.6.0", "h1:abc="),
                ("golang.org/x/sys", "v0.20.0", "h1:d="),
            ],
        );
        for format in [GoBuildInfoFormat::Inline, GoBuildInfoFormat::Pointers] {
            let info = read(&go_elf("go1.22.1", &modinfo, format)).expect("build info");
            assert_eq!(info.go_version, "go1.22.1");
            assert_eq!(info.path, "example.com/hello");
            assert_eq!(info.main.as_ref().unwrap().version, "(devel)");
            assert_eq!(info.deps.len(), 2);
            assert_eq!(info.deps[0].path, "github.com/google/uuid");
            assert_eq!(info.deps[0].version, "v1.6.0");
            assert_eq!(info.deps[0].sum, "h1:abc=");
        }
    }

    #[test]
    fn replacements_and_junk() {
        let info = parse_modinfo(
            "go1.21".into(),
            "path\tx\nmod\tx\t(devel)\t\ndep\ta\tv1.0.0\th1:x\n=>\t../a\t(devel)\t\nbuild\tGOOS=linux\n",
        );
        assert_eq!(info.deps[0].path, "../a");
        let good = go_elf(
            "go1.22.1",
            &go_modinfo("p", ("p", "v1"), &[]),
            GoBuildInfoFormat::Inline,
        );
        for cut in [0, 10, 63, 64, 300, good.len() - 1] {
            let _ = read(&good[..cut]);
        }
        assert!(read(b"\x7fELF\x02\x01junk").is_none());
        assert!(read(b"#!/bin/sh\necho hi\n").is_none());
        let mut bad = good.clone();
        let at = bad.windows(14).position(|w| w == MAGIC).unwrap();
        bad[at + 33] = 0xff; // a varint length far past the end
        let _ = read(&bad); // no panic, whatever it finds
    }
}
