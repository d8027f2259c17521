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
                ..PullOptions::default()
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

/// The disk space a tree takes (`du -s --block-size=1`).
fn du(path: &Path) -> u64 {
    let out = std::process::Command::new("du")
        .args(["-s", "--block-size=1"])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// The first regular, non-empty file under `dir`.
fn some_file(dir: &Path) -> std::path::PathBuf {
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        let mut entries: Vec<_> = fs::read_dir(&d).unwrap().map(|e| e.unwrap()).collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let m = fs::symlink_metadata(e.path()).unwrap();
            if m.is_file() && m.len() > 0 {
                return e.path();
            }
            if m.is_dir() {
                dirs.push(e.path());
            }
        }
    }
    panic!("no file under {}", dir.display());
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

    fs::write(staging.join("diff/data"), vec![7u8; 300_000]).unwrap();
    let layer_bytes = du(&l.layer_dir(&top));

    let store = Store::open(&root, &run).unwrap();
    assert!(
        !staging.exists(),
        "a dead pull's staging directory survived the open"
    );
    // The open says what it removed, where, and how big it was.
    let recovered = store.recovered();
    assert_eq!(recovered.len(), 2, "{recovered:?}");
    assert_eq!(recovered[0].what, "incomplete layer");
    assert_eq!(recovered[0].path, l.layer_dir(&top));
    assert!(recovered[0].bytes >= layer_bytes, "{recovered:?}");
    assert_eq!(recovered[1].what, "staging directory");
    assert_eq!(recovered[1].path, staging);
    assert!(
        (300_000..400_000).contains(&recovered[1].bytes),
        "{recovered:?}"
    );
    // fsck and prune list it too.
    let fsck = store.fsck(FsckOptions::default()).unwrap();
    assert_eq!(fsck.cleaned, recovered);
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
    assert_eq!(pruned.leftovers, store.recovered());
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

/// A layer whose files were changed: the check says what is wrong with it once (not "layer X: layer X:"), and
/// what repairing does — before (a plan) and after (done): the image that needs it goes, with its names, and
/// the damaged layer with the one built on it; its own parent stays.
#[test]
fn fsck_reports_what_repairing_damaged_contents_removes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("r"), &dir.path().join("rr")).unwrap();
    let pulled = pull_fixture(
        &store,
        &sample_layout(dir.path()),
        "localhost/sample:latest",
    );
    let ids: Vec<&str> = pulled.layers.iter().map(|l| l.id.as_str()).collect();
    let file = some_file(&store.layout().diff(ids[1]));
    let mut data = fs::read(&file).unwrap();
    data[0] ^= 0xff;
    fs::write(&file, data).unwrap();

    let content = FsckOptions {
        repair: false,
        content: true,
    };
    let report = store.fsck(content).unwrap();
    assert_eq!((report.content_checked, report.content_failed), (3, 1));
    assert_eq!(report.problems.len(), 1, "{report:?}");
    let p = &report.problems[0];
    assert_eq!((p.kind.as_str(), p.subject.as_str()), ("layer", ids[1]));
    assert!(!p.detail.contains(ids[1]), "the layer named twice: {p:?}");
    assert!(p.repairable && !p.repaired);
    let plan: Vec<(&str, &str, bool)> = report
        .repairs
        .iter()
        .map(|r| (r.action.as_str(), r.subject.as_str(), r.done))
        .collect();
    assert_eq!(
        plan,
        [
            ("remove image", pulled.image.as_str(), false),
            ("remove layer", ids[2], false),
            ("remove layer", ids[1], false),
        ]
    );
    assert_eq!(report.repairs[0].names, ["localhost/sample:latest"]);

    // Without --content the damage is not seen, so there is nothing to repair.
    let blind = store
        .fsck(FsckOptions {
            repair: true,
            content: false,
        })
        .unwrap();
    assert!(
        blind.problems.is_empty() && blind.repairs.is_empty(),
        "{blind:?}"
    );
    assert_eq!(store.images().unwrap().len(), 1);

    let repaired = store
        .fsck(FsckOptions {
            repair: true,
            content: true,
        })
        .unwrap();
    assert!(repaired.is_clean(), "{repaired:?}");
    let done: Vec<(&str, &str, bool)> = repaired
        .repairs
        .iter()
        .map(|r| (r.action.as_str(), r.subject.as_str(), r.done))
        .collect();
    assert_eq!(
        done,
        [
            ("remove image", pulled.image.as_str(), true),
            ("remove layer", ids[2], true),
            ("remove layer", ids[1], true),
        ]
    );
    assert!(store.images().unwrap().is_empty());
    let left: Vec<String> = store
        .layers()
        .unwrap()
        .into_iter()
        .map(|l| l.record.id)
        .collect();
    assert_eq!(left, [ids[0]]);
    assert!(store.fsck(content).unwrap().is_clean());
}
