//! Rebuilding a layer's tar from its tar-split (`overlay-layers/<id>.tar-split.gz`) and its unpacked `diff/`
//! directory, byte for byte, as containers/storage does.
//!
//! The tar-split format and its writer live in the layer engine ([`strata_layer::tarsplit`], docs/FORMAT.md
//! "tar-split"), shared with strata-copy's zstd:chunked writer; they are re-exported here for the store's
//! pull. [`assemble`] writes each type-2 payload, and for each type-1 entry with a size the content of
//! `diff/<name>`, checking its CRC-64.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::AsFd;

use base64::Engine as _;
use rustix::fs::{Mode, OFlags, ResolveFlags};
use serde::Deserialize;
pub use strata_layer::tarsplit::{Crc64, TarSplitSummary, TarSplitWriter};

use crate::error::{Error, Result};

#[derive(Deserialize)]
struct JsonEntry {
    #[serde(rename = "type")]
    kind: i64,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    name_raw: Option<String>,
    #[serde(default)]
    size: Option<i64>,
    #[serde(default)]
    payload: Option<String>,
}

/// Rebuilds a layer's tar from its tar-split (`tar_split`, the uncompressed JSON lines) and its unpacked
/// directory `diff` (an open directory), writing it to `out`. Every file is opened inside `diff` only
/// (`openat2` with `RESOLVE_IN_ROOT`, the final name never followed) and checked against its CRC-64; `layer`
/// names the layer in errors. Returns the number of bytes written.
pub fn assemble(
    tar_split: impl Read,
    diff: &File,
    layer: &str,
    out: &mut dyn Write,
) -> Result<u64> {
    let damaged = |reason: String| Error::damaged(layer, reason);
    let mut reader = BufReader::with_capacity(256 << 10, tar_split);
    let mut line = Vec::new();
    let mut written: u64 = 0;
    let mut buf = vec![0u8; 256 << 10];
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| damaged(format!("reading tar-split: {e}")))?;
        if n == 0 {
            break;
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let entry: JsonEntry = serde_json::from_slice(&line)
            .map_err(|e| damaged(format!("bad tar-split entry: {e}")))?;
        let b64 = |s: &str| {
            base64::engine::general_purpose::STANDARD
                .decode(s)
                .map_err(|e| damaged(format!("bad base64 in tar-split: {e}")))
        };
        match entry.kind {
            2 => {
                if let Some(p) = &entry.payload {
                    let bytes = b64(p)?;
                    out.write_all(&bytes)
                        .map_err(|e| Error::io("<tar output>", e))?;
                    written += bytes.len() as u64;
                }
            }
            1 => {
                let size = entry.size.unwrap_or(0);
                if size == 0 {
                    continue;
                }
                let name: Vec<u8> = match (&entry.name_raw, &entry.name) {
                    (Some(raw), _) if !raw.is_empty() => b64(raw)?,
                    (_, Some(n)) => n.as_bytes().to_vec(),
                    _ => return Err(damaged("tar-split file entry without a name".into())),
                };
                let want = match &entry.payload {
                    Some(p) => b64(p)?,
                    None => Vec::new(),
                };
                let shown = String::from_utf8_lossy(&name).into_owned();
                let fd = rustix::fs::openat2(
                    diff.as_fd(),
                    bytes_to_os(&name).as_os_str(),
                    OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
                    Mode::empty(),
                    ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
                )
                .map_err(|e| damaged(format!("{shown}: {e}")))?;
                let mut file = File::from(fd);
                let mut crc = Crc64::default();
                let mut copied: u64 = 0;
                loop {
                    let n = match file.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(damaged(format!("{shown}: {e}"))),
                    };
                    crc.update(&buf[..n]);
                    out.write_all(&buf[..n])
                        .map_err(|e| Error::io("<tar output>", e))?;
                    copied += n as u64;
                }
                written += copied;
                if crc.sum().as_slice() != want.as_slice() {
                    return Err(damaged(format!(
                        "{shown}: content does not match its tar-split checksum ({copied} bytes, {size} expected)"
                    )));
                }
            }
            other => return Err(damaged(format!("unknown tar-split entry type {other}"))),
        }
    }
    Ok(written)
}

fn bytes_to_os(b: &[u8]) -> std::ffi::OsString {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::OsStr::from_bytes(b).to_os_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_rebuilds_byte_for_byte() {
        let tar = strata_fixtures::tar_split_tar().unwrap();
        let mut w = TarSplitWriter::new(Vec::new());
        for chunk in tar.chunks(97) {
            w.write_all(chunk).unwrap();
        }
        let (json, summary) = w.finish().unwrap();
        assert_eq!(summary.tar_size, tar.len() as u64);

        let dir = tempfile::tempdir().unwrap();
        for (name, data) in strata_fixtures::TAR_SPLIT_FILES {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, data).unwrap();
        }
        let root = File::open(dir.path()).unwrap();
        let mut rebuilt = Vec::new();
        let n = assemble(&json[..], &root, "test", &mut rebuilt).unwrap();
        assert_eq!(n, tar.len() as u64);
        assert!(rebuilt == tar, "rebuilt tar differs");

        std::fs::write(dir.path().join("etc/passwd"), b"root:x:0:0::X").unwrap();
        let err = assemble(&json[..], &root, "test", &mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("etc/passwd"), "{err}");
    }
}
