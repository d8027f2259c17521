//! `index_layers`: all layers at once, largest first, results in the image's order, a failure reported.

// Test code: a failed step should abort the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use strata_fixtures::{Compression, ImageBuilder, LayerBuilder, noise};
use strata_layer::{index_layers, layer_specs};
use strata_oci::{Digest, Platform};

/// An image whose layers grow from the first to the last (so the largest-first order is the reverse of
/// the image's), layer `i` holding `i + 1` files.
fn growing_image(dir: &Path) -> String {
    let mut image = ImageBuilder::new();
    for i in 0..5u64 {
        let mut layer = LayerBuilder::new();
        for j in 0..=i {
            layer.file(
                format!("l{i}/f{j}"),
                noise(((i + 1) << 18) as usize, i * 10 + j),
            );
        }
        image = image.layer(layer, Compression::Gzip);
    }
    image.write_layout(&dir.join("layout"), "t").unwrap();
    format!("oci:{}:t", dir.join("layout").display())
}

#[test]
fn results_keep_the_image_order_and_a_failure_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let name = growing_image(tmp.path());
    let source = strata_source::open(&name).unwrap();
    let image =
        strata_source::resolve(source.as_ref(), &Platform::new("linux", "amd64", None)).unwrap();
    let specs = layer_specs(&image).unwrap();
    assert!(specs.windows(2).all(|w| w[0].size < w[1].size));

    let indexed = index_layers(source.as_ref(), &specs).unwrap();
    assert_eq!(indexed.len(), specs.len());
    for (i, (layer, spec)) in indexed.iter().zip(&specs).enumerate() {
        assert_eq!(layer.spec.digest, spec.digest);
        assert_eq!(Some(&layer.summary.diff_id), spec.diff_id.as_ref());
        // The files plus their parent directory entry, if the builder writes one.
        assert!(layer.summary.entries > i as u64, "layer {i}");
    }

    // Two layers with a wrong diff ID: the error names one of them.
    let wrong = Digest::parse(&format!("sha256:{}", "0".repeat(64))).unwrap();
    let mut bad = specs.clone();
    bad[1].diff_id = Some(wrong.clone());
    bad[3].diff_id = Some(wrong);
    let err = match index_layers(source.as_ref(), &bad) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("wrong diff IDs went unnoticed"),
    };
    assert!(
        err.contains(&specs[1].digest.to_string()) || err.contains(&specs[3].digest.to_string()),
        "{err}"
    );
}
