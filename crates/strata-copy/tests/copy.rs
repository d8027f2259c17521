//! `copy` between strata-source's transports: a gzip layer decompressed for a docker archive and checked
//! against its diff ID, the hooks' order (the policy check before any blob), nothing written on failure.

// Test code: a failed step should abort the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use strata_copy::{CopyEvent, CopyHooks, CopyOptions, Error, NoHooks, Recompression, copy};
use strata_fixtures::LayoutWriter;
use strata_fixtures::sha256_digest;
use strata_image::{ImageDestination, ImageSource, ManifestRole, RawManifest};
use strata_oci::media::Compression;

/// A one-layer image (a gzip of a small tar) tagged `t` in a layout at `root`; returns its diff ID.
fn image(root: &Path) -> String {
    image_claiming(root, None)
}

/// [`image`], its config claiming `diff_id` when given (a wrong one: a lying config).
fn image_claiming(root: &Path, claimed: Option<&str>) -> String {
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_size(5);
    h.set_mode(0o644);
    h.set_cksum();
    tar.append_data(&mut h, "hello", &b"world"[..]).unwrap();
    let tar = tar.into_inner().unwrap();
    let diff_id = sha256_digest(&tar);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar).unwrap();
    let layer = gz.finish().unwrap();
    let mut w = LayoutWriter::create(root).unwrap();
    let layer_digest = w.put_blob(&layer).unwrap();
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{}"]}}}}"#,
        claimed.unwrap_or(&diff_id)
    );
    let config_digest = w.put_blob(config.as_bytes()).unwrap();
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config_digest}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{layer_digest}","size":{}}}]}}"#,
        config.len(),
        layer.len()
    );
    let d = w
        .put_manifest(
            "application/vnd.oci.image.manifest.v1+json",
            manifest.as_bytes(),
        )
        .unwrap();
    w.add_tagged(d, "t");
    w.finish().unwrap();
    diff_id
}

/// Records the hooks' calls; refuses at the policy check when asked to.
struct Recorder {
    refuse: bool,
    calls: Mutex<Vec<String>>,
}

impl CopyHooks for Recorder {
    fn check_source(
        &self,
        _: &dyn ImageSource,
        top: &RawManifest,
        _: Option<&RawManifest>,
        _: bool,
    ) -> Result<(), String> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("check {}", top.digest));
        if self.refuse {
            Err("not trusted".into())
        } else {
            Ok(())
        }
    }

    fn after_manifests(
        &self,
        _: &dyn ImageSource,
        _: &mut dyn ImageDestination,
        written: &[(RawManifest, ManifestRole)],
    ) -> Result<(), String> {
        let (top, _) = written.last().unwrap();
        self.calls
            .lock()
            .unwrap()
            .push(format!("signatures {}", top.digest));
        Ok(())
    }

    fn event(&self, event: &CopyEvent) {
        if let CopyEvent::BlobDone { digest } = event {
            self.calls.lock().unwrap().push(format!("blob {digest}"));
        }
    }
}

#[test]
fn docker_archive_layers_are_stored_by_diff_id() {
    let tmp = tempfile::tempdir().unwrap();
    let diff_id = image(&tmp.path().join("src"));
    let src = strata_source::open(&format!("oci:{}:t", tmp.path().join("src").display())).unwrap();
    let name = format!(
        "docker-archive:{}:x/y:z",
        tmp.path().join("out.tar").display()
    );
    let mut dst = strata_source::open_destination(&name, &Default::default()).unwrap();
    let report = copy(
        src.as_ref(),
        dst.as_mut(),
        &CopyOptions::default(),
        &NoHooks,
    )
    .unwrap();
    assert_eq!(report.blobs[0].stored_as.as_deref(), Some(diff_id.as_str()));
    let back = strata_source::open(&name).unwrap();
    let manifest: serde_json::Value =
        serde_json::from_slice(&back.top_manifest().unwrap().bytes).unwrap();
    assert_eq!(manifest["layers"][0]["digest"], diff_id.as_str());
}

#[test]
fn the_policy_check_comes_before_any_blob() {
    let tmp = tempfile::tempdir().unwrap();
    image(&tmp.path().join("src"));
    let src = strata_source::open(&format!("oci:{}:t", tmp.path().join("src").display())).unwrap();
    let out = tmp.path().join("out");
    let name = format!("dir:{}", out.display());

    let refusing = Recorder {
        refuse: true,
        calls: Mutex::new(Vec::new()),
    };
    let mut dst = strata_source::open_destination(&name, &Default::default()).unwrap();
    let err = copy(
        src.as_ref(),
        dst.as_mut(),
        &CopyOptions::default(),
        &refusing,
    )
    .unwrap_err();
    assert!(matches!(err, Error::Refused { .. }), "{err}");
    assert_eq!(refusing.calls.lock().unwrap().len(), 1);
    assert!(!out.exists());
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        1,
        "staging left behind"
    );

    let accepting = Recorder {
        refuse: false,
        calls: Mutex::new(Vec::new()),
    };
    let mut dst = strata_source::open_destination(&name, &Default::default()).unwrap();
    copy(
        src.as_ref(),
        dst.as_mut(),
        &CopyOptions::default(),
        &accepting,
    )
    .unwrap();
    let calls = accepting.calls.lock().unwrap();
    assert!(calls.first().unwrap().starts_with("check "));
    assert!(calls.last().unwrap().starts_with("signatures "));
    assert_eq!(calls.len(), 4, "{calls:?}");
    assert!(out.join("version").exists());
}

fn zstd_options() -> CopyOptions {
    CopyOptions {
        compression: Some(Recompression {
            format: Compression::Zstd,
            level: None,
            toc: false,
        }),
        ..CopyOptions::default()
    }
}

#[test]
fn a_recompressed_layer_keeps_its_diff_id() {
    let tmp = tempfile::tempdir().unwrap();
    let diff_id = image(&tmp.path().join("src"));
    let src = strata_source::open(&format!("oci:{}:t", tmp.path().join("src").display())).unwrap();
    let name = format!("oci:{}:t", tmp.path().join("out").display());
    let mut dst = strata_source::open_destination(&name, &Default::default()).unwrap();
    let recorder = Recorder {
        refuse: false,
        calls: Mutex::new(Vec::new()),
    };
    let report = copy(src.as_ref(), dst.as_mut(), &zstd_options(), &recorder).unwrap();
    let stored = report.blobs[0].stored_as.clone().unwrap();
    let back = strata_source::open(&name).unwrap();
    let manifest: serde_json::Value =
        serde_json::from_slice(&back.top_manifest().unwrap().bytes).unwrap();
    assert_eq!(manifest["layers"][0]["digest"], stored.as_str());
    assert_eq!(
        manifest["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+zstd"
    );
    let blob = strata_image::read_blob(
        back.as_ref(),
        &strata_oci::Digest::parse(&stored).unwrap(),
        1 << 20,
    )
    .unwrap();
    assert_eq!(
        sha256_digest(&zstd::stream::decode_all(&blob[..]).unwrap()),
        diff_id
    );
}

#[test]
fn a_layer_that_is_not_its_diff_id_is_not_recompressed() {
    let tmp = tempfile::tempdir().unwrap();
    let wrong = format!("sha256:{}", "0".repeat(64));
    image_claiming(&tmp.path().join("src"), Some(&wrong));
    let src = strata_source::open(&format!("oci:{}:t", tmp.path().join("src").display())).unwrap();
    let out = tmp.path().join("out");
    let mut dst =
        strata_source::open_destination(&format!("dir:{}", out.display()), &Default::default())
            .unwrap();
    let err = copy(src.as_ref(), dst.as_mut(), &zstd_options(), &NoHooks).unwrap_err();
    assert!(matches!(err, Error::Layer { .. }), "{err}");
    assert!(err.to_string().contains(&wrong), "{err}");
    assert!(!out.exists());
}
