//! A way out for an image name that names no transport and no image of the store
//! (`debian:12` → `docker://debian:12`; a path → `oci:`, `dir:`, `oci-archive:` or `docker-archive:` by
//! what is there).

use std::fs;
use std::path::Path;

/// How many archive members are looked at to tell an OCI archive from a docker one.
const MAX_SNIFFED_MEMBERS: usize = 10_000;

/// The error for the bare name `name` (no transport) that the store at `root` does not have (or there is no
/// store there yet): what is wrong with the name, the transports there are, and what the user may have meant
/// ([`suggest`]). `None` for other store errors, which say enough themselves.
pub fn store_hint(error: &strata_store::Error, name: &str, root: &Path) -> Option<anyhow::Error> {
    let missing = match error {
        strata_store::Error::ImageUnknown { .. } => "",
        strata_store::Error::NoStore { .. } => " (there is no store there yet)",
        _ => return None,
    };
    let what = match name.split_once(':') {
        // As containers/image reads it: what precedes the first colon is the transport.
        Some((t, _)) if is_word(t) => format!("unknown transport {t:?}"),
        _ => "no transport".to_owned(),
    };
    let mut message = format!(
        "invalid image name {name:?}: {what} (known: {}), and image {name:?} is not in the store {}{missing}",
        strata_store::transports().known(),
        root.display()
    );
    if let Some(hint) = suggest(name) {
        message.push_str("; ");
        message.push_str(&hint);
    }
    Some(anyhow::anyhow!(message))
}

/// Whether `text` could be a transport name: lower-case letters, digits and `-`.
fn is_word(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// What the user may have meant by `name`, which names no transport: for an existing path, the transport
/// of what is there (`did you mean oci:PATH?`), or why none fits; for a registry reference,
/// `did you mean docker://NAME?`. `None` when nothing fits.
pub fn suggest(name: &str) -> Option<String> {
    // The path, with the tag or digest a layout or archive name may carry after it.
    let mut candidates = vec![(name, "")];
    if let Some(at) = name.rfind([':', '@']) {
        candidates.push((&name[..at], &name[at..]));
    }
    for (path, selector) in candidates {
        let Ok(meta) = fs::metadata(path) else {
            continue;
        };
        let p = Path::new(path);
        let transport = if meta.is_dir() {
            if p.join("oci-layout").is_file() {
                "oci:"
            } else if p.join("manifest.json").is_file() && selector.is_empty() {
                "dir:"
            } else {
                return Some(format!(
                    "{path} is a directory, but neither an OCI layout (no oci-layout file) nor a skopeo \
                     dir: (no manifest.json)"
                ));
            }
        } else {
            match sniff_archive(p) {
                Some(t) => t,
                None => {
                    return Some(format!(
                        "{path} is a file, but neither an OCI archive nor a docker archive (a tar with \
                         oci-layout or manifest.json)"
                    ));
                }
            }
        };
        return Some(format!("did you mean {transport}{path}{selector}?"));
    }
    strata_oci::ImageReference::parse(name)
        .ok()
        .map(|_| format!("did you mean docker://{name}?"))
}

/// `oci-archive:` or `docker-archive:` if `path` is a tar holding an OCI layout (`oci-layout`) or
/// `docker save`'s `manifest.json` (a docker one when it has both, as Docker 25's `save` writes).
fn sniff_archive(path: &Path) -> Option<&'static str> {
    let file = fs::File::open(path).ok()?;
    let mut archive = tar::Archive::new(file);
    let mut oci = false;
    for entry in archive.entries_with_seek().ok()?.take(MAX_SNIFFED_MEMBERS) {
        let entry = entry.ok()?;
        let entry_path = entry.path().ok()?;
        let member = entry_path.to_string_lossy();
        match member.trim_start_matches("./") {
            "manifest.json" => return Some("docker-archive:"),
            "oci-layout" => oci = true,
            _ => {}
        }
    }
    oci.then_some("oci-archive:")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_names_get_docker() {
        assert_eq!(
            suggest("debian:12").as_deref(),
            Some("did you mean docker://debian:12?")
        );
        assert_eq!(
            suggest("quay.io/a/b@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
                .as_deref(),
            Some(
                "did you mean docker://quay.io/a/b@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855?"
            )
        );
        assert_eq!(suggest("/no/such/path"), None);
        assert_eq!(suggest("UPPER case"), None);
    }
}
