//! Minimal ELF executables that carry Go's module build information (`.go.buildinfo`), as `go build`
//! lays it out, for tests of scanners that read it without a Go toolchain.

/// The magic at the start of the `.go.buildinfo` section.
pub const GO_BUILDINFO_MAGIC: &[u8; 14] = b"\xff Go buildinf:";

/// The 16-byte sentinels `go build` puts around the module information string.
const MODINFO_START: [u8; 16] = *b"0w\xaf\x0c\x92t\x08\x02A\xe1\xc1\x07\xe6\xd6\x18\xe6";
const MODINFO_END: [u8; 16] = *b"\xf92C1\x86\x18 r\x00\x82B\x10A\x16\xd8\xf2";

/// Which layout of `.go.buildinfo` to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoBuildInfoFormat {
    /// Go ≥ 1.18: the version and module strings inline after the 32-byte header, length-prefixed with
    /// unsigned varints (flag bit 2 set).
    Inline,
    /// Go < 1.18: the header holds pointers to two Go string headers (pointer, length) elsewhere in the
    /// file's memory image.
    Pointers,
}

const BASE_VADDR: u64 = 0x40_0000;

fn uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// The module information string `go version -m` prints, wrapped in its sentinels as a binary holds it:
/// `path`, the main module `mod` line (none when `main.0` is empty: a binary built outside module mode, as
/// Debian builds Go) and `dep` lines, each `(path, version, sum)`.
pub fn go_modinfo(path: &str, main: (&str, &str), deps: &[(&str, &str, &str)]) -> Vec<u8> {
    let mut text = format!("path\t{path}\n");
    if !main.0.is_empty() {
        text.push_str(&format!("mod\t{}\t{}\t\n", main.0, main.1));
    }
    for (p, v, sum) in deps {
        text.push_str(&format!("dep\t{p}\t{v}\t{sum}\n"));
    }
    text.push_str("build\t-compiler=gc\nbuild\tGOOS=linux\nbuild\tGOARCH=amd64\n");
    let mut out = MODINFO_START.to_vec();
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(&MODINFO_END);
    out
}

/// A little-endian ELF64 x86-64 executable (`ET_EXEC`, one `PT_LOAD` segment mapping the whole file at
/// 0x400000) whose `.go.buildinfo` section says it was built by Go `go_version` with module information
/// `modinfo` (see [`go_modinfo`]), in `format`. Nothing in it runs; readers find the build information
/// as Go's `debug/buildinfo` does.
pub fn go_elf(go_version: &str, modinfo: &[u8], format: GoBuildInfoFormat) -> Vec<u8> {
    // Layout: ELF header (64) | program header (56) | padding to 0x100 | .go.buildinfo | .data (pointer
    // format: string headers and bytes) | .shstrtab | section headers.
    let buildinfo_off: u64 = 0x100;
    let mut buildinfo = GO_BUILDINFO_MAGIC.to_vec();
    let mut data = Vec::new();
    match format {
        GoBuildInfoFormat::Inline => {
            buildinfo.push(8); // pointer size
            buildinfo.push(0x2); // flags: inline strings, little-endian
            buildinfo.resize(32, 0);
            uvarint(&mut buildinfo, go_version.len() as u64);
            buildinfo.extend_from_slice(go_version.as_bytes());
            uvarint(&mut buildinfo, modinfo.len() as u64);
            buildinfo.extend_from_slice(modinfo);
        }
        GoBuildInfoFormat::Pointers => {
            buildinfo.push(8);
            buildinfo.push(0); // little-endian, pointers
            buildinfo.resize(32, 0);
        }
    }
    while !buildinfo.len().is_multiple_of(16) {
        buildinfo.push(0);
    }
    let data_off = buildinfo_off + buildinfo.len() as u64;
    if format == GoBuildInfoFormat::Pointers {
        // .data: [version header (ptr,len)] [modinfo header (ptr,len)] [version bytes] [modinfo bytes]
        let va = |off: u64| BASE_VADDR + data_off + off;
        let version_bytes = 32u64;
        let modinfo_bytes = version_bytes + go_version.len() as u64;
        data.extend_from_slice(&va(version_bytes).to_le_bytes());
        data.extend_from_slice(&(go_version.len() as u64).to_le_bytes());
        data.extend_from_slice(&va(modinfo_bytes).to_le_bytes());
        data.extend_from_slice(&(modinfo.len() as u64).to_le_bytes());
        data.extend_from_slice(go_version.as_bytes());
        data.extend_from_slice(modinfo);
        let version_header = BASE_VADDR + data_off;
        if let Some(slot) = buildinfo.get_mut(16..24) {
            slot.copy_from_slice(&version_header.to_le_bytes());
        }
        if let Some(slot) = buildinfo.get_mut(24..32) {
            slot.copy_from_slice(&(version_header + 16).to_le_bytes());
        }
    }
    while !data.len().is_multiple_of(8) {
        data.push(0);
    }
    let shstrtab_off = data_off + data.len() as u64;
    let shstrtab: &[u8] = b"\0.go.buildinfo\0.data\0.shstrtab\0";
    let mut shoff = shstrtab_off + shstrtab.len() as u64;
    while !shoff.is_multiple_of(8) {
        shoff += 1;
    }
    let shnum: u16 = 4;
    let file_size = shoff + 64 * u64::from(shnum);

    let mut out = Vec::with_capacity(file_size as usize);
    // ELF header.
    out.extend_from_slice(b"\x7fELF");
    out.extend_from_slice(&[2, 1, 1, 0]); // 64-bit, little-endian, version 1, SysV
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    out.extend_from_slice(&62u16.to_le_bytes()); // EM_X86_64
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&(BASE_VADDR + buildinfo_off).to_le_bytes()); // entry
    out.extend_from_slice(&64u64.to_le_bytes()); // phoff
    out.extend_from_slice(&shoff.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes()); // flags
    out.extend_from_slice(&64u16.to_le_bytes()); // ehsize
    out.extend_from_slice(&56u16.to_le_bytes()); // phentsize
    out.extend_from_slice(&1u16.to_le_bytes()); // phnum
    out.extend_from_slice(&64u16.to_le_bytes()); // shentsize
    out.extend_from_slice(&shnum.to_le_bytes());
    out.extend_from_slice(&3u16.to_le_bytes()); // shstrndx
    // PT_LOAD of the whole file, read-only.
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&4u32.to_le_bytes()); // PF_R
    out.extend_from_slice(&0u64.to_le_bytes()); // offset
    out.extend_from_slice(&BASE_VADDR.to_le_bytes());
    out.extend_from_slice(&BASE_VADDR.to_le_bytes());
    out.extend_from_slice(&file_size.to_le_bytes());
    out.extend_from_slice(&file_size.to_le_bytes());
    out.extend_from_slice(&0x1000u64.to_le_bytes());
    out.resize(buildinfo_off as usize, 0);
    out.extend_from_slice(&buildinfo);
    out.extend_from_slice(&data);
    out.extend_from_slice(shstrtab);
    out.resize(shoff as usize, 0);
    // Section headers: null, .go.buildinfo, .data, .shstrtab.
    let section = |out: &mut Vec<u8>, name: u32, ty: u32, flags: u64, off: u64, size: u64| {
        out.extend_from_slice(&name.to_le_bytes());
        out.extend_from_slice(&ty.to_le_bytes());
        out.extend_from_slice(&flags.to_le_bytes());
        let addr = if flags == 0 { 0 } else { BASE_VADDR + off };
        out.extend_from_slice(&addr.to_le_bytes());
        out.extend_from_slice(&off.to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes()); // link
        out.extend_from_slice(&0u32.to_le_bytes()); // info
        out.extend_from_slice(&(if ty == 3 { 1u64 } else { 16 }).to_le_bytes());
        out.extend_from_slice(&0u64.to_le_bytes()); // entsize
    };
    out.extend_from_slice(&[0; 64]);
    section(&mut out, 1, 1, 0x3, buildinfo_off, buildinfo.len() as u64); // PROGBITS, WA
    section(&mut out, 15, 1, 0x3, data_off, data.len() as u64);
    section(&mut out, 21, 3, 0, shstrtab_off, shstrtab.len() as u64); // STRTAB
    out
}
