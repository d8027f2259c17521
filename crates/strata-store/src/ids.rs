//! Identifiers, as containers/image and containers/storage make them.

use base64::Engine as _;
use strata_oci::Digest;

/// The layer ID containers/image gives the layer with diff ID `diff_id` on top of `parent` (a layer ID):
/// the diff ID's hex for a base layer, else the hex sha256 of `parent + "+" + diff_id hex`. The same image
/// pulled by podman and by strata is thus the same chain of layers.
pub fn layer_id(parent: Option<&str>, diff_id: &Digest) -> String {
    match parent {
        None => diff_id.hex().to_owned(),
        Some(parent) => Digest::sha256(format!("{parent}+{}", diff_id.hex()).as_bytes())
            .hex()
            .to_owned(),
    }
}

/// The layer IDs of a chain of diff IDs, bottom first.
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<String> {
    let mut ids: Vec<String> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let id = layer_id(ids.last().map(String::as_str), d);
        ids.push(id);
    }
    ids
}

/// The file name of big-data item `key` (containers/storage `makeBigDataBaseName`): the key itself if it
/// is made only of `.`, `0-9` and `a-z`, otherwise `=` followed by the key in standard base64.
pub fn big_data_file_name(key: &str) -> String {
    if !key.is_empty()
        && key
            .bytes()
            .all(|b| b == b'.' || b.is_ascii_digit() || b.is_ascii_lowercase())
    {
        key.to_owned()
    } else {
        format!(
            "={}",
            base64::engine::general_purpose::STANDARD.encode(key.as_bytes())
        )
    }
}

/// Whether `id` is a 64-digit lowercase hex ID (a layer, image or container ID), safe as a file name.
pub fn is_hex_id(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Whether `link` is a 26-character short link name (base32: `A-Z`, `2-7`), safe as a file name.
pub fn is_link_id(link: &str) -> bool {
    link.len() == 26 && link.bytes().all(|b| matches!(b, b'A'..=b'Z' | b'2'..=b'7'))
}

/// A fresh short link name for `overlay/l/`: 16 random bytes in base32, cut to 26 characters (what the
/// overlay driver's `generateID(26)` makes).
pub fn new_link_id() -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut bytes = [0u8; 17];
    fill_random(&mut bytes[..16]);
    // 26 characters of 5 bits = 130 bits: the 16 random bytes plus two zero bits, as base32 encodes them.
    let mut out = String::with_capacity(26);
    let mut acc: u32 = 0;
    let mut bits = 0;
    let mut i = 0;
    while out.len() < 26 {
        if bits < 5 {
            acc = (acc << 8) | u32::from(bytes[i]);
            i += 1;
            bits += 8;
        }
        bits -= 5;
        out.push(char::from(ALPHABET[((acc >> bits) & 31) as usize]));
    }
    out
}

/// A random hex string of `bytes` random bytes (staging and temporary names).
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    fill_random(&mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// Fills `buf` from the kernel's random source (falling back to time and PID mixing if `getrandom(2)` is
/// unavailable, which only weakens uniqueness, never safety).
pub(crate) fn fill_random(buf: &mut [u8]) {
    let mut filled = 0;
    while filled < buf.len() {
        match rustix::rand::getrandom(&mut buf[filled..], rustix::rand::GetRandomFlags::empty()) {
            Ok(n) => filled += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(_) => break,
        }
    }
    if filled < buf.len() {
        let seed = format!(
            "{:?}{}{filled}",
            std::time::SystemTime::now(),
            std::process::id()
        );
        let d = Digest::sha256(seed.as_bytes());
        for (i, b) in buf[filled..].iter_mut().enumerate() {
            *b = d.hex().as_bytes()[i % 64];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_ids_match_podman() {
        // Measured: podman 4.3 pulling a three-layer image.
        let base = Digest::parse(
            "sha256:5e07e030f6b09b170d86a13c8bcb352d2cf0d524c15aa2508e1e050eb3e7c0e1",
        )
        .unwrap();
        let second = Digest::parse(
            "sha256:4ce1d6d4100b093e37375b5404430ffc9d907012f24c31c7ed4dec3f5a9da5a4",
        )
        .unwrap();
        let ids = chain_ids(&[base, second]);
        assert_eq!(
            ids[0],
            "5e07e030f6b09b170d86a13c8bcb352d2cf0d524c15aa2508e1e050eb3e7c0e1"
        );
        assert_eq!(
            ids[1],
            "2e1430641ccb246b1ae25b918c90c2a6d3ba819dd19fe681fdc12a3bb3a71b50"
        );
    }

    #[test]
    fn big_data_names() {
        assert_eq!(big_data_file_name("manifest"), "manifest");
        assert_eq!(big_data_file_name("strata.index"), "strata.index");
        assert_eq!(
            big_data_file_name(
                "manifest-sha256:30515e7e9bd51854a297114f69ec478c07ba67cfb031dfc52b4b4da1b18bb8f9"
            ),
            "=bWFuaWZlc3Qtc2hhMjU2OjMwNTE1ZTdlOWJkNTE4NTRhMjk3MTE0ZjY5ZWM0NzhjMDdiYTY3Y2ZiMDMxZGZjNTJiNGI0ZGExYjE4YmI4Zjk="
        );
        assert_eq!(big_data_file_name("Manifest"), "=TWFuaWZlc3Q=");
    }

    #[test]
    fn link_ids() {
        let a = new_link_id();
        assert!(is_link_id(&a), "{a}");
        assert_ne!(a, new_link_id());
        assert!(!is_link_id("../../etc/passwd........."));
    }
}
