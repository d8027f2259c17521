//! The store library on its own (no peer tools): what a pull records, recovery on open, removal and prune.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::path::Path;

use serde_json::Value;
use strata_oci::Platform;
use strata_store::{FsckOptions, PullOptions, Store, big_data_file_name};

fn pull_fixture(store: &Store, layout: &Path, name: &str) -> strata_store::PullReport {
    let src = format!("oci:{}:latest", layout.display());
    let source = strata_source::open(&src).unwrap();
    let image = strata_source::resolve(source.as_ref(), &Platform::host()).unwrap();
    store
        .pull(
            source.as_ref(),
            &image,
            &PullOptions {
                names: vec![name.to_owned()],
                uncompressed: false,
            },
            &|_| {},
        )
        .unwrap()
}

fn sample_layout(dir: &Path) -> std::path::PathBuf {
    let layout = dir.join("sample");
    strata_fixtures::sample()
        .write_layout(&layout, "latest")
        .unwrap();
    layout
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

#[test]
fn a_pull_records_what_containers_storage_records() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("r"), &dir.path().join("rr")).unwrap();
    let before = store.generation().unwrap();
    let report = pull_fixture(
        &store,
        &sample_layout(dir.path()),
        "localhost/sample:latest",
    );
    assert_ne!(
        store.generation().unwrap(),
        before,
        "a write changes the last-write tokens"
    );
    assert_eq!(report.layers.len(), 3);
    assert!(report.layers.iter().all(|l| !l.reused && l.tar_split));

    let l = store.layout();
    let layers = json(&l.layers_json());
    let layers = layers.as_array().unwrap();
    assert_eq!(layers.len(), 3);
    // IDs chain as containers/image makes them; compression as detected (gzip, zstd, none).
    assert_eq!(
        layers[0]["id"].as_str().unwrap(),
        &layers[0]["diff-digest"].as_str().unwrap()[7..]
    );
    assert!(layers[0].get("parent").is_none());
    assert_eq!(layers[1]["parent"], layers[0]["id"]);
    assert_eq!(layers[0]["compression"], 2);
    assert_eq!(layers[1]["compression"], 4);
    assert!(layers[2].get("compression").is_none());
    assert_eq!(layers[0]["uidset"], serde_json::json!([0, 1000]));
    assert_eq!(layers[0]["gidset"], serde_json::json!([0, 5, 6, 1000]));
    for (i, layer) in layers.iter().enumerate() {
        let id = layer["id"].as_str().unwrap();
        assert!(layer.get("flags").is_none(), "{layer}");
        assert!(l.diff(id).is_dir());
        assert!(l.tar_split(id).is_file());
        let link = fs::read_to_string(l.layer_dir(id).join("link")).unwrap();
        assert_eq!(link.len(), 26);
        assert_eq!(
            fs::read_link(l.link(&link)).unwrap(),
            Path::new(&format!("../{id}/diff"))
        );
        assert_eq!(l.layer_dir(id).join("empty").is_dir(), i == 0);
        assert_eq!(l.layer_dir(id).join("lower").is_file(), i > 0);
        let index = strata_index::LayerIndex::open(l.layer_big_data(id, "strata.index")).unwrap();
        assert_eq!(
            index.layer().diff_id,
            layer["diff-digest"].as_str().unwrap()
        );
    }
    let lower =
        fs::read_to_string(l.layer_dir(layers[2]["id"].as_str().unwrap()).join("lower")).unwrap();
    assert_eq!(lower.split(':').count(), 2, "{lower}");

    let images = json(&l.images_json());
    let image = &images[0];
    assert_eq!(image["id"], report.image.as_str());
    assert_eq!(
        image["names"],
        serde_json::json!(["localhost/sample:latest"])
    );
    assert_eq!(image["layer"], layers[2]["id"]);
    for key in image["big-data-names"].as_array().unwrap() {
        let key = key.as_str().unwrap();
        let path = l
            .image_data_dir(&report.image)
            .join(big_data_file_name(key));
        let data = fs::read(&path).unwrap();
        assert_eq!(image["big-data-sizes"][key], data.len());
    }
    let fsck = store
        .fsck(FsckOptions {
            repair: false,
            content: true,
        })
        .unwrap();
    assert!(fsck.is_clean(), "{fsck:?}");
    assert_eq!(fsck.content_checked, 3);

    // A second pull reuses everything.
    let again = pull_fixture(
        &store,
        &sample_layout(&dir.path().join("again")),
        "localhost/other:latest",
    );
    assert!(again.layers.iter().all(|l| l.reused));
    let images = store.images().unwrap();
    assert_eq!(images.len(), 1);
    // As containers/storage's `AddNames`: the new name goes in front.
    assert_eq!(
        images[0].record.names,
        ["localhost/other:latest", "localhost/sample:latest"]
    );
    assert_eq!(
        images[0].record.names_history,
        ["localhost/other:latest", "localhost/sample:latest"]
    );
}

#[test]
fn open_removes_incomplete_layers_and_dead_staging() {
    let dir = tempfile::tempdir().unwrap();
    let (root, run) = (dir.path().join("r"), dir.path().join("rr"));
    let store = Store::open(&root, &run).unwrap();
    let report = pull_fixture(
        &store,
        &sample_layout(dir.path()),
        "localhost/sample:latest",
    );
    let top = report.layers[2].id.clone();
    let l = store.layout().clone();

    // A crash half-way: the top layer still flagged, a staging directory nobody holds.
    let mut layers = json(&l.layers_json());
    layers[2]["flags"] = serde_json::json!({"incomplete": true});
    fs::write(l.layers_json(), serde_json::to_vec(&layers).unwrap()).unwrap();
    let staging = l.staging().join("0123");
    fs::create_dir_all(staging.join("diff")).unwrap();
    fs::write(staging.join("staging.lock"), b"").unwrap();

    let store = Store::open(&root, &run).unwrap();
    assert!(
        !staging.exists(),
        "a dead pull's staging directory survived the open"
    );
    assert!(!l.layer_dir(&top).exists());
    assert!(!l.tar_split(&top).exists());
    let ids: Vec<String> = store
        .layers()
        .unwrap()
        .into_iter()
        .map(|x| x.record.id)
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(!ids.contains(&top));

    // The image lost its top layer: fsck says so, and --repair removes it (its other layers stay, unused).
    let fsck = store.fsck(FsckOptions::default()).unwrap();
    assert!(fsck.problems.iter().any(|p| p.kind == "image"), "{fsck:?}");
    let repaired = store
        .fsck(FsckOptions {
            repair: true,
            content: false,
        })
        .unwrap();
    assert!(repaired.is_clean(), "{repaired:?}");
    assert!(store.images().unwrap().is_empty());
    let pruned = store.prune().unwrap();
    assert_eq!(pruned.layers.len(), 2);
    assert!(store.layers().unwrap().is_empty());
    assert!(store.fsck(FsckOptions::default()).unwrap().is_clean());
}

/// An image of a shared base layer and a layer of its own.
fn two_layer_layout(dir: &Path, variant: &str) -> std::path::PathBuf {
    use strata_fixtures::{Compression, ImageBuilder, LayerBuilder};
    let mut base = LayerBuilder::new();
    base.dir("etc");
    base.file("etc/os-release", "ID=shared\n");
    let mut own = LayerBuilder::new();
    own.file(format!("{variant}.txt").as_str(), variant);
    let layout = dir.join(variant);
    ImageBuilder::new()
        .layer(base, Compression::Gzip)
        .layer(own, Compression::None)
        .write_layout(&layout, "latest")
        .unwrap();
    layout
}

#[test]
fn removing_an_image_keeps_the_layers_others_use() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("r"), &dir.path().join("rr")).unwrap();
    let one = pull_fixture(
        &store,
        &two_layer_layout(dir.path(), "one"),
        "localhost/one:latest",
    );
    let two = pull_fixture(
        &store,
        &two_layer_layout(dir.path(), "two"),
        "localhost/two:latest",
    );
    assert_eq!(one.layers[0].id, two.layers[0].id);
    assert!(two.layers[0].reused && !two.layers[1].reused);
    assert_eq!(store.layers().unwrap().len(), 3);

    let removed = store.remove_image("localhost/one", false).unwrap();
    assert!(removed.deleted);
    assert_eq!(
        removed.layers,
        vec![one.layers[1].id.clone()],
        "the shared base stays"
    );
    assert_eq!(store.layers().unwrap().len(), 2);
    let removed = store.remove_image(&two.image[..12], false).unwrap();
    assert_eq!(
        removed.layers,
        vec![two.layers[1].id.clone(), two.layers[0].id.clone()],
        "top first"
    );
    assert!(store.layers().unwrap().is_empty());

    // Two names: removing one only untags.
    let sample = sample_layout(dir.path());
    pull_fixture(&store, &sample, "localhost/a:latest");
    pull_fixture(&store, &sample, "localhost/b:latest");
    let untag = store.remove_image("localhost/a", false).unwrap();
    assert!(!untag.deleted);
    assert_eq!(untag.untagged, vec!["localhost/a:latest".to_owned()]);
    assert_eq!(
        store.images().unwrap()[0].record.names,
        vec!["localhost/b:latest".to_owned()]
    );
    let gone = store.remove_image("b", false).unwrap();
    assert!(gone.deleted);
    assert!(store.images().unwrap().is_empty());
    let err = store.remove_image("b", false).unwrap_err();
    assert!(err.to_string().contains("not in the store"), "{err}");
}

#[test]
fn a_layer_without_an_index_gets_one_rebuilt_from_its_tar_split() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("r"), &dir.path().join("rr")).unwrap();
    let report = pull_fixture(
        &store,
        &sample_layout(dir.path()),
        "localhost/sample:latest",
    );
    let l = store.layout().clone();
    let originals: Vec<usize> = report
        .layers
        .iter()
        .map(|x| {
            strata_index::LayerIndex::open(l.layer_big_data(&x.id, "strata.index"))
                .unwrap()
                .len()
        })
        .collect();
    // As podman would have stored them: no index.
    let mut layers = json(&l.layers_json());
    for layer in layers.as_array_mut().unwrap() {
        layer.as_object_mut().unwrap().remove("big-data-names");
        fs::remove_dir_all(l.layer_data_dir(layer["id"].as_str().unwrap())).unwrap();
    }
    fs::write(l.layers_json(), serde_json::to_vec(&layers).unwrap()).unwrap();
    for (x, n) in report.layers.iter().zip(originals) {
        let path = store.layer_index(&x.id).unwrap();
        let index = strata_index::LayerIndex::open(&path).unwrap();
        assert_eq!(index.len(), n, "layer {}", x.id);
        assert_eq!(index.layer().diff_id, x.diff_id);
    }
    let layers = json(&l.layers_json());
    assert!(
        layers
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["big-data-names"] == serde_json::json!(["strata.index"]))
    );
    assert!(store.fsck(FsckOptions::default()).unwrap().is_clean());
}
