//! The scanner opens store images by name itself: `containers-storage:[ROOT+RUNROOT]NAME`, read through the
//! layers' indexes and `diff` directories, the same tree as the image it was pulled from.

// Test code: a failed step should abort the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use strata_oci::Platform;
use strata_scan::ScanImage;
use strata_store::{PullOptions, Store};

#[test]
fn a_store_image_is_opened_by_name_and_read_from_its_layer_dirs() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("sample");
    strata_fixtures::sample()
        .write_layout(&layout, "latest")
        .unwrap();
    let from = format!("oci:{}:latest", layout.display());
    let (root, runroot) = (tmp.path().join("root"), tmp.path().join("run"));
    let store = Store::open(&root, &runroot).unwrap();
    let source = strata_source::open(&from).unwrap();
    let platform = Platform::new("linux", "amd64", None);
    let image = strata_source::resolve(source.as_ref(), &platform).unwrap();
    store
        .pull(
            source.as_ref(),
            &image,
            &PullOptions {
                names: vec!["localhost/sample:latest".into()],
                ..PullOptions::default()
            },
            &|_| {},
        )
        .unwrap();

    let name = format!(
        "containers-storage:[{}+{}]localhost/sample:latest",
        root.display(),
        runroot.display()
    );
    let stored = ScanImage::open(&name, &platform).unwrap();
    let original = ScanImage::open(&from, &platform).unwrap();
    let layers = stored.view().merged().layers().len();
    assert!(layers > 0);
    for layer in 0..layers {
        assert!(
            stored.view().layer_dir(layer).is_some(),
            "layer {layer} is read from its diff directory"
        );
        assert!(original.view().layer_dir(layer).is_none());
    }
    let paths =
        |image: &ScanImage| -> Vec<Vec<u8>> { image.entries().map(|e| e.unwrap().path).collect() };
    assert_eq!(paths(&stored), paths(&original));
    for entry in original.entries() {
        let entry = entry.unwrap();
        if entry.kind == strata_scan::Kind::File {
            assert_eq!(
                stored.read(&entry.path, 1 << 20).unwrap(),
                original.read(&entry.path, 1 << 20).unwrap(),
                "{}",
                String::from_utf8_lossy(&entry.path)
            );
        }
    }
    // Nothing was decompressed to read the store image.
    assert_eq!(stored.view().content_stats().pieces_decoded, 0);
}
