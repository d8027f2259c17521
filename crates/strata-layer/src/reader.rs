//! Tar parsing: a layer's uncompressed stream in, [`Entry`] values out, whiteouts decoded.
//!
//! The `tar` crate does the framing (ustar, GNU long names and links, PAX `path`, `linkpath`, `size`, `uid`,
//! `gid`); this module adds what it leaves out: PAX `mtime` with sub-second precision, `SCHILY.xattr.*`
//! records, whiteout decoding, path normalisation and the checks that keep hostile names out.

use std::io::{self, Read};

use strata_index::{Entry, EntryKind, normalise_path, split_parent};

use crate::error::{Error, Result};

/// The prefix of whiteout names.
const WHITEOUT_PREFIX: &[u8] = b".wh.";
/// The name of the opaque-directory marker.
const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";

/// Reads every entry of the tar stream `tar`, calling `on_entry` with each entry and a reader of its content
/// (empty for anything but regular files). Content the callback leaves unread is read and discarded, so a
/// member that runs past the end of the stream is always detected. Returns the number of entries.
///
/// `layer` names the layer in errors.
pub fn read_entries<R: Read>(
    tar: R,
    layer: &str,
    on_entry: &mut dyn FnMut(&Entry, &mut dyn Read) -> Result<()>,
) -> Result<(u64, R)> {
    let tar_err = |source: io::Error| Error::Tar {
        layer: layer.to_owned(),
        source,
    };
    let mut archive = tar::Archive::new(tar);
    let mut count = 0u64;
    {
        let entries = archive.entries().map_err(tar_err)?;
        for item in entries {
            let mut raw = item.map_err(tar_err)?;
            let Some(entry) = decode(&mut raw).map_err(|e| match e {
                Error::Tar { source, .. } => tar_err(source),
                other => other,
            })?
            else {
                continue;
            };
            count += 1;
            if entry.kind == EntryKind::File {
                let mut limited = (&mut raw).take(entry.size);
                on_entry(&entry, &mut limited)?;
                let rest = io::copy(&mut limited, &mut io::sink()).map_err(tar_err)?;
                let _ = rest;
                if limited.limit() != 0 {
                    return Err(tar_err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!(
                            "{} runs past the end of the stream",
                            String::from_utf8_lossy(&entry.path)
                        ),
                    )));
                }
            } else {
                on_entry(&entry, &mut io::empty())?;
            }
        }
    }
    Ok((count, archive.into_inner()))
}

/// Decodes one tar member into an [`Entry`]; `None` for members that are not entries (global headers, a
/// root that is not a directory, a root opaque marker). The root directory (`./`) is an entry with an empty
/// path.
fn decode<R: Read>(raw: &mut tar::Entry<'_, R>) -> Result<Option<Entry>> {
    let io_err = |source: io::Error| Error::Tar {
        layer: String::new(),
        source,
    };
    let header = raw.header();
    let entry_type = header.entry_type();
    let kind = match entry_type {
        tar::EntryType::Regular | tar::EntryType::Continuous => EntryKind::File,
        tar::EntryType::Directory => EntryKind::Dir,
        tar::EntryType::Symlink => EntryKind::Symlink,
        tar::EntryType::Link => EntryKind::Hardlink,
        tar::EntryType::Char => EntryKind::CharDevice,
        tar::EntryType::Block => EntryKind::BlockDevice,
        tar::EntryType::Fifo => EntryKind::Fifo,
        tar::EntryType::XGlobalHeader => return Ok(None),
        tar::EntryType::GNUSparse => {
            return Err(io_err(io::Error::new(
                io::ErrorKind::Unsupported,
                "GNU sparse files are not supported (the OCI image spec says layers should not use them)",
            )));
        }
        other => {
            return Err(io_err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("unsupported tar entry type {:?}", other.as_byte() as char),
            )));
        }
    };
    let old = header.as_old();
    let mode = numeric(header.mode().map(u64::from), &old.mode).map_err(io_err)? as u32 & 0o7777;
    let uid = id(numeric(header.uid(), &old.uid).map_err(io_err)?, "uid")?;
    let gid = id(numeric(header.gid(), &old.gid).map_err(io_err)?, "gid")?;
    let mtime = numeric(header.mtime(), &old.mtime).map_err(io_err)?;
    let mut mtime = i64::try_from(mtime).unwrap_or(i64::MAX);
    let mut mtime_nsec = 0;
    let (dev_major, dev_minor) = match kind {
        EntryKind::CharDevice | EntryKind::BlockDevice => (
            header.device_major().map_err(io_err)?.unwrap_or(0),
            header.device_minor().map_err(io_err)?.unwrap_or(0),
        ),
        _ => (0, 0),
    };
    let name = raw.path_bytes().into_owned();
    let link = raw.link_name_bytes().map(|l| l.into_owned());
    let size = if kind == EntryKind::File {
        raw.size()
    } else {
        0
    };
    let offset = if kind == EntryKind::File {
        raw.raw_file_position()
    } else {
        raw.raw_header_position()
    };
    let mut xattrs = Vec::new();
    if let Some(pax) = raw.pax_extensions().map_err(io_err)? {
        for ext in pax {
            let ext = ext.map_err(io_err)?;
            let key = ext.key_bytes();
            if key == b"mtime" {
                if let Some((s, ns)) = parse_pax_time(ext.value_bytes()) {
                    mtime = s;
                    mtime_nsec = ns;
                }
            } else if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                xattrs.push((name.to_vec(), ext.value_bytes().to_vec()));
            }
        }
    }

    entry_named(
        &name,
        link,
        Entry {
            path: Vec::new(),
            kind,
            mode,
            uid,
            gid,
            size,
            mtime,
            mtime_nsec,
            link: Vec::new(),
            dev_major,
            dev_minor,
            xattrs,
            offset,
        },
    )
}

/// Names `entry` (whose `path` and `link` are ignored) after the archive member `name`, linking to
/// `link`: the path normalised, a `.wh.` name decoded into a whiteout or opaque marker, a hardlink's
/// target normalised. `None` for a member that is not an entry (a root that is not a directory, a root
/// opaque marker); the root directory (`./`) is an entry with an empty path. Tar members and the entries
/// of lazy formats' tables of contents are named through this one function.
pub fn entry_named(name: &[u8], link: Option<Vec<u8>>, entry: Entry) -> Result<Option<Entry>> {
    let Some(path) = normalise_path(name)? else {
        // The layer root (`./`): an entry with an empty path when it is a directory (its metadata is the
        // root's); anything else at the root cannot be applied and is skipped.
        if entry.kind != EntryKind::Dir {
            return Ok(None);
        }
        return Ok(Some(Entry {
            path: Vec::new(),
            size: 0,
            link: Vec::new(),
            dev_major: 0,
            dev_minor: 0,
            ..entry
        }));
    };
    let (parent, last) = split_parent(&path);
    let (kind, path) = if last == OPAQUE_MARKER {
        if parent.is_empty() {
            return Ok(None);
        }
        (EntryKind::Opaque, parent.to_vec())
    } else if let Some(deleted) = last.strip_prefix(WHITEOUT_PREFIX) {
        if deleted.is_empty() || deleted == b"." || deleted == b".." {
            return Err(strata_index::Error::UnsafePath {
                path: String::from_utf8_lossy(name).into_owned(),
                reason: "whiteout of an invalid name",
            }
            .into());
        }
        let mut p = parent.to_vec();
        if !p.is_empty() {
            p.push(b'/');
        }
        p.extend_from_slice(deleted);
        (EntryKind::Whiteout, p)
    } else {
        (entry.kind, path)
    };
    let link = match (kind, link) {
        (EntryKind::Hardlink, Some(target)) => match normalise_path(&target)? {
            Some(t) => t,
            None => {
                return Err(strata_index::Error::UnsafePath {
                    path: String::from_utf8_lossy(name).into_owned(),
                    reason: "hardlink to the layer root",
                }
                .into());
            }
        },
        (EntryKind::Symlink, Some(target)) => target,
        (EntryKind::Hardlink | EntryKind::Symlink, None) => {
            return Err(strata_index::Error::UnsafePath {
                path: String::from_utf8_lossy(name).into_owned(),
                reason: "link without a target",
            }
            .into());
        }
        _ => Vec::new(),
    };
    Ok(Some(Entry {
        path,
        kind,
        link,
        ..entry
    }))
}

/// A numeric header field; an empty field (all NULs or spaces) reads as 0, as Go's archive/tar reads it.
fn numeric(parsed: io::Result<u64>, field: &[u8]) -> io::Result<u64> {
    match parsed {
        Err(_) if field.iter().all(|&b| b == 0 || b == b' ') => Ok(0),
        other => other,
    }
}

fn id(value: u64, what: &str) -> Result<u32> {
    u32::try_from(value).map_err(|_| Error::Tar {
        layer: String::new(),
        source: io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{what} {value} is out of range"),
        ),
    })
}

/// Parses a PAX time, `SECONDS[.FRACTION]` (possibly negative), into seconds and nanoseconds.
fn parse_pax_time(v: &[u8]) -> Option<(i64, u32)> {
    let s = std::str::from_utf8(v).ok()?;
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: i64 = secs.parse().ok()?;
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut digits: String = frac.chars().take(9).collect();
    while digits.len() < 9 {
        digits.push('0');
    }
    let nsec: u32 = digits.parse().ok()?;
    if secs < 0 && nsec > 0 {
        // -1.5 means 1.5 s before the epoch: -2 s + 0.5 s.
        return Some((secs - 1, 1_000_000_000 - nsec));
    }
    Some((secs, nsec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_times() {
        assert_eq!(parse_pax_time(b"1700000000"), Some((1_700_000_000, 0)));
        assert_eq!(
            parse_pax_time(b"1700000000.123456789123"),
            Some((1_700_000_000, 123_456_789))
        );
        assert_eq!(parse_pax_time(b"1.5"), Some((1, 500_000_000)));
        assert_eq!(parse_pax_time(b"-1.5"), Some((-2, 500_000_000)));
        assert_eq!(parse_pax_time(b"x"), None);
    }

    fn tar_of(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        build(&mut b);
        b.into_inner().unwrap()
    }

    fn entries(tar: &[u8]) -> Result<Vec<Entry>> {
        let mut out = Vec::new();
        read_entries(tar, "test", &mut |e, _| {
            out.push(e.clone());
            Ok(())
        })?;
        Ok(out)
    }

    fn header(kind: tar::EntryType, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(0o644);
        h.set_mtime(1_700_000_000);
        h
    }

    #[test]
    fn decodes_whiteouts_and_pax() {
        let tar = tar_of(|b| {
            b.append_pax_extensions([
                ("mtime", &b"1700000000.25"[..]),
                ("SCHILY.xattr.user.k", &b"v"[..]),
            ])
            .unwrap();
            b.append_data(&mut header(tar::EntryType::Regular, 2), "./a/f", &b"hi"[..])
                .unwrap();
            b.append_data(
                &mut header(tar::EntryType::Regular, 0),
                "a/.wh.gone",
                &b""[..],
            )
            .unwrap();
            b.append_data(
                &mut header(tar::EntryType::Regular, 0),
                "a/.wh..wh..opq",
                &b""[..],
            )
            .unwrap();
            b.append_link(&mut header(tar::EntryType::Link, 0), "a/h", "/a/f")
                .unwrap();
        });
        let e = entries(&tar).unwrap();
        assert_eq!(e[0].path, b"a/f");
        assert_eq!((e[0].mtime, e[0].mtime_nsec), (1_700_000_000, 250_000_000));
        assert_eq!(e[0].xattrs, vec![(b"user.k".to_vec(), b"v".to_vec())]);
        assert_eq!(
            (e[1].kind, &e[1].path[..]),
            (EntryKind::Whiteout, &b"a/gone"[..])
        );
        assert_eq!((e[2].kind, &e[2].path[..]), (EntryKind::Opaque, &b"a"[..]));
        assert_eq!(
            (e[3].kind, &e[3].link[..]),
            (EntryKind::Hardlink, &b"a/f"[..])
        );
    }

    #[test]
    fn the_root_directory_is_an_entry_with_an_empty_path() {
        let tar = tar_of(|b| {
            let mut root = header(tar::EntryType::Directory, 0);
            root.set_mode(0o750);
            root.set_uid(1234);
            root.set_gid(5678);
            root.set_mtime(1_000_000_000);
            b.append_data(&mut root, "./", &b""[..]).unwrap();
            // Not a directory: nothing to apply at the root, skipped.
            b.append_data(&mut header(tar::EntryType::Regular, 0), ".", &b""[..])
                .unwrap();
            b.append_data(&mut header(tar::EntryType::Directory, 0), "a/", &b""[..])
                .unwrap();
        });
        let e = entries(&tar).unwrap();
        assert_eq!(e.len(), 2, "{e:?}");
        assert_eq!((e[0].kind, &e[0].path[..]), (EntryKind::Dir, &b""[..]));
        assert_eq!(
            (e[0].mode, e[0].uid, e[0].gid, e[0].mtime),
            (0o750, 1234, 5678, 1_000_000_000)
        );
        assert_eq!(e[1].path, b"a");
    }

    #[test]
    fn rejects_escapes() {
        let mut h = header(tar::EntryType::Regular, 0);
        h.as_gnu_mut().unwrap().name[..6].copy_from_slice(b"../../");
        h.set_cksum();
        let mut bytes = h.as_bytes().to_vec();
        bytes.extend_from_slice(&[0u8; 1024]);
        let err = entries(&bytes).unwrap_err().to_string();
        assert!(err.contains("'..'"), "{err}");

        let tar = tar_of(|b| {
            b.append_link(&mut header(tar::EntryType::Link, 0), "h", "../etc/passwd")
                .unwrap();
        });
        assert!(entries(&tar).is_err());
    }

    #[test]
    fn detects_member_past_end() {
        let mut tar = tar_of(|b| {
            b.append_data(
                &mut header(tar::EntryType::Regular, 4096),
                "f",
                &[7u8; 4096][..],
            )
            .unwrap();
        });
        tar.truncate(512 + 1000);
        let err = entries(&tar).unwrap_err().to_string();
        assert!(err.contains("bad tar stream"), "{err}");
    }
}
