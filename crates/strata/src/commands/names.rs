//! Image names as users type them: the transports strata knows, and a way out for a name that has none
//! (`debian:12` → `docker://debian:12`; a path → `oci:`, `dir:`, `oci-archive:` or `docker-archive:` by
//! what is there).

use std::fs;
use std::path::Path;

use anyhow::bail;

/// The transports an image name may start with, as written.
pub const TRANSPORTS: [&str; 6] = [
    "oci:",
    "oci-archive:",
    "docker-archive:",
    "dir:",
    "docker://",
    "containers-storage:",
];

/// How many archive members are looked at to tell an OCI archive from a docker one.
const MAX_SNIFFED_MEMBERS: usize = 10_000;

/// Checks that `name` starts with a transport strata knows. Otherwise the error says so, lists them, and
/// suggests the name the user may have meant ([`suggest`]).
pub fn check_transport(name: &str) -> anyhow::Result<()> {
    // `docker:` without `//` is left to the registry transport, which says what it expects.
    if TRANSPORTS.iter().any(|t| name.starts_with(t)) || name.starts_with("docker:") {
        return Ok(());
    }
    let what = match name.split_once(':') {
        // As containers/image reads it: what precedes the first colon is the transport.
        Some((t, _)) if is_word(t) => format!("unknown transport {t:?}"),
        _ => "no transport".to_owned(),
    };
    let mut message = format!(
        "invalid image name {name:?}: {what} (known: {})",
        TRANSPORTS.join(", ")
    );
    if let Some(hint) = suggest(name) {
        message.push_str("; ");
        message.push_str(&hint);
    }
    bail!("{message}")
}

/// An error opening `name` from the default store (a name without a transport, which `mount` takes for a
/// store image): when the image is not there (or there is no store yet) and `name` looks like something
/// else (a registry image, a path), the error says so and suggests it; other errors are unchanged.
pub fn store_hint(error: anyhow::Error, name: &str) -> anyhow::Error {
    let bare = name.strip_prefix("containers-storage:").unwrap_or(name);
    if bare.starts_with('[') {
        return error;
    }
    let Some(hint) = suggest(bare) else {
        return error;
    };
    match error.downcast_ref::<strata_store::Error>() {
        Some(strata_store::Error::ImageUnknown { .. }) => anyhow::anyhow!("{error}; {hint}"),
        Some(strata_store::Error::Io { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            let g = super::store::global();
            match strata_store::Store::open_existing(&g.root(), &g.runroot()) {
                Err(strata_store::Error::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    anyhow::anyhow!(
                        "image {bare:?} is not in the store {} (there is no store there yet); {hint}",
                        g.root().display()
                    )
                }
                _ => error,
            }
        }
        _ => error,
    }
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

    #[test]
    fn transports_are_checked() {
        for ok in [
            "oci:x",
            "docker://a/b",
            "docker:a",
            "containers-storage:x",
            "dir:/x",
        ] {
            assert!(check_transport(ok).is_ok(), "{ok}");
        }
        let err = check_transport("debian:12").unwrap_err().to_string();
        assert!(err.contains("unknown transport \"debian\""), "{err}");
        assert!(err.contains("docker://, containers-storage:"), "{err}");
        assert!(err.ends_with("did you mean docker://debian:12?"), "{err}");
        let err = check_transport("/no/such").unwrap_err().to_string();
        assert!(err.contains("no transport"), "{err}");
    }
}
