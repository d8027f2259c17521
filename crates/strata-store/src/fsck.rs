//! Checking a store's consistency, and repairing it.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fs::{self, File};
use std::io::BufReader;
use std::path::{Path, PathBuf};

use serde::Serialize;
use strata_oci::{Digest, DigestWriter};

use crate::error::{Error, IoContext, Result};
use crate::fsutil::{create_dir_mode, read_optional, remove_all, write_atomic_mkdir};
use crate::ids::{is_hex_id, is_link_id, new_link_id};
use crate::model::LayerRecord;
use crate::mounts::{is_mount_point, mount_points_under, unmount_quietly};
use crate::store::{Leftover, Store, Txn, short};
use crate::{staging, tarsplit};

/// Options of [`Store::fsck`].
#[derive(Debug, Clone, Copy, Default)]
pub struct FsckOptions {
    /// Fix what can be fixed (under the exclusive locks): recreate lost links and directories, drop stale
    /// mount records, remove broken layers and the images that need them, and leftovers.
    pub repair: bool,
    /// Also rebuild every layer's tar from its tar-split and `diff/` and check it against the diff ID (reads
    /// every file of the store).
    pub content: bool,
}

/// One inconsistency.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Problem {
    /// What it concerns: `layer`, `image`, `container`, `mount` or `leftover`.
    pub kind: String,
    /// The layer or image ID, the path.
    pub subject: String,
    /// What is wrong.
    pub detail: String,
    /// Whether [`FsckOptions::repair`] can fix it (the report's `repairs` say how).
    pub repairable: bool,
    /// Whether `--repair` fixed it.
    pub repaired: bool,
}

/// One thing [`FsckOptions::repair`] does (or would do) about the problems found.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Repair {
    /// What: `remove image`, `remove layer`, `recreate link`, `rewrite lower`, `create directory`,
    /// `drop big-data item`, `drop mount record`, `unmount`, `remove leftover`.
    pub action: String,
    /// What to: an image or layer ID, a path; for `drop big-data item`, `<image ID> <key>`.
    pub subject: String,
    /// The names of an image to remove.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    /// Whether it was done (with `repair`); false in the plan a check without `repair` reports.
    pub done: bool,
}

/// What [`Store::fsck`] found.
#[derive(Debug, Clone, Serialize, Default)]
pub struct FsckReport {
    /// Layers checked.
    pub layers: usize,
    /// Images checked.
    pub images: usize,
    /// Layers whose tar was rebuilt and checked against the diff ID.
    pub content_checked: usize,
    /// Of those, the layers whose rebuilt tar did not match (or could not be rebuilt).
    pub content_failed: usize,
    /// The inconsistencies found.
    pub problems: Vec<Problem>,
    /// What repairing does about them, in order (with [`FsckOptions::repair`]: what it did): the images to
    /// remove because they or a layer they need are broken, then those layers (top first; their lower layers
    /// stay), then the smaller fixes.
    pub repairs: Vec<Repair>,
    /// Leftovers of interrupted operations removed before the check (by the store's open, or when the
    /// repair took the store's locks).
    pub cleaned: Vec<Leftover>,
}

impl FsckReport {
    /// Whether the store is consistent (no problem left unrepaired).
    pub fn is_clean(&self) -> bool {
        self.problems.iter().all(|p| p.repaired)
    }
}

enum Fix {
    DeleteLayer(String),
    DeleteImage(String),
    RecreateLink(String),
    RewriteLower(String, String),
    MakeDir(PathBuf),
    DropImageBigData(String, String),
    DropMountRecord(String),
    DropBind(String),
    Unmount(PathBuf),
    /// Dead pulls' staging directories.
    Leftovers,
    /// A file or directory without a record.
    RemoveLeftover(PathBuf),
    None,
}

/// What repairing removes: images and layers.
struct Plan {
    /// Images, with their names.
    images: Vec<(String, Vec<String>)>,
    /// Layers, top first.
    layers: Vec<String>,
}

impl Store {
    /// Checks the store: every layer's files, links and `lower` chain, every image's layers and big data,
    /// containers' references, mount records against the kernel's mounts, and leftovers of interrupted
    /// operations; with [`FsckOptions::content`], every layer's contents against its diff ID. With
    /// [`FsckOptions::repair`], fixes what it can (see there).
    pub fn fsck(&self, options: FsckOptions) -> Result<FsckReport> {
        let mut tx = if options.repair {
            self.write()?
        } else {
            self.read()?
        };
        let mut found: Vec<(Problem, Fix)> = Vec::new();
        let mut cleaned = self.recovered().to_vec();
        cleaned.append(&mut tx.cleaned);
        let mut report = FsckReport {
            layers: tx.layers.len(),
            images: tx.images.len(),
            cleaned,
            ..FsckReport::default()
        };
        self.check_layers(&tx, options, &mut report, &mut found)?;
        self.check_images(&tx, &mut found)?;
        self.check_mounts(&tx, &mut found)?;
        check_leftovers(&tx, &mut found)?;
        if staging::has_stale(self.layout())? {
            found.push((
                problem(
                    "leftover",
                    &self.layout().staging().to_string_lossy(),
                    "staging directories of a pull that died",
                ),
                Fix::Leftovers,
            ));
        }
        for c in &tx.containers {
            if !c.image.is_empty() && !tx.images.iter().any(|i| i.id == c.image) {
                found.push((
                    problem(
                        "container",
                        &c.id,
                        &format!("its image {} is not in the store", short(&c.image)),
                    ),
                    Fix::None,
                ));
            }
            if !c.layer.is_empty() && tx.layer(&c.layer).is_none() {
                found.push((
                    problem(
                        "container",
                        &c.id,
                        &format!("its layer {} is not in the store", short(&c.layer)),
                    ),
                    Fix::None,
                ));
            }
        }
        let plan = plan(&tx, &found);
        report.repairs = if options.repair {
            self.apply_fixes(&mut tx, &plan, &mut found)?
        } else {
            describe(&plan, &found, false)
        };
        report.problems = found
            .into_iter()
            .map(|(mut p, fix)| {
                p.repairable = !matches!(fix, Fix::None);
                p
            })
            .collect();
        Ok(report)
    }

    fn check_layers(
        &self,
        tx: &Txn<'_>,
        options: FsckOptions,
        report: &mut FsckReport,
        found: &mut Vec<(Problem, Fix)>,
    ) -> Result<()> {
        let l = self.layout();
        let mut seen = HashSet::new();
        let links = links_by_target(self)?;
        for layer in &tx.layers {
            let id = layer.id.as_str();
            if !seen.insert(id) {
                found.push((
                    problem("layer", id, "listed twice in layers.json"),
                    Fix::None,
                ));
                continue;
            }
            if !is_hex_id(id) {
                found.push((problem("layer", id, "not a 64-digit hex ID"), Fix::None));
                continue;
            }
            if layer.is_incomplete() {
                found.push((
                    problem(
                        "layer",
                        id,
                        "flagged incomplete (an interrupted operation; removed at the next open)",
                    ),
                    Fix::DeleteLayer(id.into()),
                ));
                continue;
            }
            if let Some(p) = layer.parent()
                && tx.complete_layer(p).is_none()
            {
                found.push((
                    problem(
                        "layer",
                        id,
                        &format!("its parent {} is not in the store", short(p)),
                    ),
                    Fix::DeleteLayer(id.into()),
                ));
                continue;
            }
            let diff = l.diff(id);
            if !diff.is_dir() {
                found.push((
                    problem("layer", id, &format!("{} is missing", diff.display())),
                    Fix::DeleteLayer(id.into()),
                ));
                continue;
            }
            // The short link: `link` names it, `l/<link>` points at `../<id>/diff`.
            let link_file = l.layer_dir(id).join("link");
            let link =
                read_optional(&link_file)?.map(|b| String::from_utf8_lossy(&b).trim().to_owned());
            let ok = match &link {
                Some(link) if is_link_id(link) => {
                    fs::read_link(l.link(link)).ok().as_deref()
                        == Some(Path::new(&format!("../{id}/diff")))
                }
                _ => false,
            };
            if !ok {
                found.push((
                    problem(
                        "layer",
                        id,
                        "its short link (link file or overlay/l/ symlink) is missing or wrong",
                    ),
                    Fix::RecreateLink(id.into()),
                ));
            }
            let _ = &links;
            // `lower`: the parents' links, nearest first; a base layer has `empty/` instead.
            match layer.parent() {
                Some(_) => {
                    let want = expected_lower(tx, self, layer);
                    let have = read_optional(&l.layer_dir(id).join("lower"))?
                        .map(|b| String::from_utf8_lossy(&b).trim().to_owned());
                    if let Some(want) = want
                        && have.as_deref() != Some(want.as_str())
                    {
                        found.push((
                            problem(
                                "layer",
                                id,
                                "its lower file does not list its parents' links",
                            ),
                            Fix::RewriteLower(id.into(), want),
                        ));
                    }
                }
                None => {
                    let empty = l.layer_dir(id).join("empty");
                    if !empty.is_dir() {
                        found.push((
                            problem("layer", id, "base layer without empty/"),
                            Fix::MakeDir(empty),
                        ));
                    }
                }
            }
            for sub in ["work", "merged"] {
                let p = l.layer_dir(id).join(sub);
                if !p.is_dir() {
                    found.push((
                        problem("layer", id, &format!("{sub}/ is missing")),
                        Fix::MakeDir(p),
                    ));
                }
            }
            for key in &layer.big_data_names {
                let p = l.layer_big_data(id, key);
                if !p.is_file() {
                    found.push((
                        problem(
                            "layer",
                            id,
                            &format!("big-data item {key:?} is missing ({})", p.display()),
                        ),
                        Fix::None,
                    ));
                }
            }
            if options.content {
                let ts = l.tar_split(id);
                if ts.exists() && !layer.diff_digest.is_empty() {
                    report.content_checked += 1;
                    if let Err(e) = verify_content(self, layer) {
                        report.content_failed += 1;
                        // The problem names the layer already.
                        let detail = match e {
                            Error::Damaged { reason, .. } => reason,
                            e => e.to_string(),
                        };
                        found.push((problem("layer", id, &detail), Fix::DeleteLayer(id.into())));
                    }
                }
            }
        }
        Ok(())
    }

    fn check_images(&self, tx: &Txn<'_>, found: &mut Vec<(Problem, Fix)>) -> Result<()> {
        let l = self.layout();
        let mut names: HashMap<&str, &str> = HashMap::new();
        for image in &tx.images {
            let id = image.id.as_str();
            if !is_hex_id(id) {
                found.push((problem("image", id, "not a 64-digit hex ID"), Fix::None));
                continue;
            }
            for n in &image.names {
                if let Some(other) = names.insert(n, id) {
                    found.push((
                        problem(
                            "image",
                            id,
                            &format!("name {n} is also image {}'s", short(other)),
                        ),
                        Fix::None,
                    ));
                }
            }
            let chain = tx.chain(&image.top_layer);
            let complete = !image.top_layer.is_empty()
                && chain.first().is_some_and(|t| t.id == image.top_layer)
                && chain.iter().all(|x| !x.is_incomplete())
                && chain.last().is_some_and(|b| b.parent().is_none());
            if !complete {
                found.push((
                    problem(
                        "image",
                        id,
                        &format!(
                            "its layers (top {}) are not all in the store",
                            short(&image.top_layer)
                        ),
                    ),
                    Fix::DeleteImage(id.into()),
                ));
                continue;
            }
            for key in &image.big_data_names {
                let p = l.image_big_data(id, key);
                let Some(data) = read_optional(&p)? else {
                    let fix = if key == "manifest" || key.starts_with("sha256:") {
                        Fix::DeleteImage(id.into())
                    } else {
                        Fix::DropImageBigData(id.into(), key.clone())
                    };
                    found.push((
                        problem("image", id, &format!("big-data item {key:?} is missing")),
                        fix,
                    ));
                    continue;
                };
                let size_ok = image
                    .big_data_sizes
                    .get(key)
                    .and_then(|v| v.as_u64())
                    .is_none_or(|s| s == data.len() as u64);
                let digest_ok = image
                    .big_data_digests
                    .get(key)
                    .and_then(|v| v.as_str())
                    .and_then(|d| Digest::parse(d).ok())
                    .is_none_or(|d| d.verify(&data).is_ok());
                if !size_ok || !digest_ok {
                    found.push((
                        problem(
                            "image",
                            id,
                            &format!(
                                "big-data item {key:?} does not match its recorded size or digest"
                            ),
                        ),
                        Fix::DeleteImage(id.into()),
                    ));
                }
            }
        }
        Ok(())
    }

    fn check_mounts(&self, tx: &Txn<'_>, found: &mut Vec<(Problem, Fix)>) -> Result<()> {
        let l = self.layout();
        let records = tx.read_mounts()?;
        let binds = tx.lock_mounts_shared()?;
        let mut recorded: HashSet<PathBuf> = HashSet::new();
        for r in &records {
            recorded.insert(PathBuf::from(&r.path));
            if tx.layer(&r.id).is_none() {
                found.push((
                    problem(
                        "mount",
                        &r.path,
                        &format!(
                            "recorded for layer {}, which is not in the store",
                            short(&r.id)
                        ),
                    ),
                    Fix::DropMountRecord(r.id.clone()),
                ));
            } else if !is_mount_point(Path::new(&r.path))? {
                found.push((
                    problem(
                        "mount",
                        &r.path,
                        &format!("recorded ({} users) but not mounted", r.count),
                    ),
                    Fix::DropMountRecord(r.id.clone()),
                ));
            }
        }
        for b in &binds {
            if !is_mount_point(Path::new(&b.dir))? || !records.iter().any(|r| r.id == b.layer) {
                found.push((
                    problem("mount", &b.dir, "a strata mount that is no longer there"),
                    Fix::DropBind(b.dir.clone()),
                ));
            }
        }
        for mp in mount_points_under(&l.overlay())? {
            let is_merged = mp.file_name().is_some_and(|n| n == "merged")
                && mp.parent().and_then(Path::parent) == Some(l.overlay().as_path());
            if is_merged && !recorded.contains(&mp) {
                found.push((
                    problem(
                        "mount",
                        &mp.to_string_lossy(),
                        "mounted but not recorded in mountpoints.json",
                    ),
                    Fix::Unmount(mp),
                ));
            }
        }
        Ok(())
    }

    /// Repairs what `found` lists (`plan`: what it removes). Returns what was done.
    fn apply_fixes(
        &self,
        tx: &mut Txn<'_>,
        plan: &Plan,
        found: &mut [(Problem, Fix)],
    ) -> Result<Vec<Repair>> {
        let l = self.layout().clone();
        let mut done = describe(plan, found, true);
        if !plan.images.is_empty() {
            tx.images
                .retain(|i| !plan.images.iter().any(|(id, _)| *id == i.id));
            tx.save_images()?;
            for (id, _) in &plan.images {
                remove_all(&l.image_data_dir(id))?;
            }
        }
        let mut mounts = tx.lock_mounts()?;
        for id in &plan.layers {
            mounts.unmount_layer_everywhere(id)?;
        }
        for (p, fix) in found.iter_mut() {
            let done = match fix {
                Fix::DeleteLayer(_) | Fix::DeleteImage(_) => true,
                Fix::DropMountRecord(id) => {
                    mounts.records.retain(|r| &r.id != id);
                    mounts.binds.retain(|b| &b.layer != id);
                    mounts.touch();
                    true
                }
                Fix::DropBind(dir) => {
                    unmount_quietly(Path::new(dir), true)?;
                    if let Some(b) = mounts.binds.iter().position(|b| &b.dir == dir) {
                        let b = mounts.binds.remove(b);
                        mounts.release_layer(&b.layer)?;
                    }
                    mounts.touch();
                    true
                }
                Fix::Unmount(path) => {
                    unmount_quietly(path, true)?;
                    true
                }
                _ => false,
            };
            p.repaired = done;
        }
        mounts.save()?;
        drop(mounts);
        tx.delete_layers(&plan.layers)?;
        let mut images_changed = false;
        let mut staged_away = Vec::new();
        for (p, fix) in found.iter_mut() {
            let done = match fix {
                Fix::RecreateLink(id) => {
                    if tx.layer(id).is_some() {
                        recreate_link(self, id)?;
                    }
                    true
                }
                Fix::RewriteLower(id, want) => {
                    if tx.layer(id).is_some() {
                        write_atomic_mkdir(&l.layer_dir(id).join("lower"), want.as_bytes(), 0o644)?;
                    }
                    true
                }
                Fix::MakeDir(path) => {
                    if path.parent().is_some_and(Path::is_dir) {
                        create_dir_mode(path, 0o700)?;
                    }
                    true
                }
                Fix::DropImageBigData(image, key) => {
                    if let Some(i) = tx.images.iter_mut().find(|i| &i.id == image) {
                        i.big_data_names.retain(|k| k != key);
                        i.big_data_sizes.remove(key);
                        i.big_data_digests.remove(key);
                        images_changed = true;
                    }
                    true
                }
                Fix::Leftovers => {
                    staged_away.extend(staging::clean_stale(&l)?);
                    true
                }
                _ => p.repaired,
            };
            p.repaired = done;
        }
        if images_changed {
            tx.save_images()?;
        }
        // Links may have been rewritten: check the lower files again after link repairs.
        let rewrites: Vec<(String, String)> = tx
            .layers
            .iter()
            .filter(|x| x.parent().is_some())
            .filter_map(|x| expected_lower(tx, self, x).map(|w| (x.id.clone(), w)))
            .collect();
        for (id, want) in rewrites {
            let path = l.layer_dir(&id).join("lower");
            let have = read_optional(&path)?.map(|b| String::from_utf8_lossy(&b).trim().to_owned());
            if have.as_deref() != Some(want.as_str()) {
                write_atomic_mkdir(&path, want.as_bytes(), 0o644)?;
            }
        }
        let leftovers = tx.remove_leftovers()?;
        for (p, fix) in found.iter_mut() {
            if let Fix::RemoveLeftover(path) = fix {
                p.repaired = leftovers.iter().any(|x| x.path == *path) || !path.exists();
            }
        }
        // Each leftover removed, by its own path (the plan named the staging area as a whole).
        done.retain(|r| r.action != "remove leftover");
        for x in staged_away.iter().chain(&leftovers) {
            done.push(Repair {
                action: "remove leftover".into(),
                subject: x.path.to_string_lossy().into_owned(),
                names: Vec::new(),
                done: true,
            });
        }
        Ok(done)
    }
}

/// What repairing `found` removes: the layers to delete with every layer built on them, and the images that
/// need any of them or are broken themselves.
fn plan(tx: &Txn<'_>, found: &[(Problem, Fix)]) -> Plan {
    let mut doomed_layers: BTreeSet<String> = BTreeSet::new();
    let mut doomed_images: BTreeSet<String> = BTreeSet::new();
    for (_, fix) in found {
        match fix {
            Fix::DeleteLayer(id) => {
                doomed_layers.insert(id.clone());
            }
            Fix::DeleteImage(id) => {
                doomed_images.insert(id.clone());
            }
            _ => {}
        }
    }
    loop {
        let before = doomed_layers.len();
        for layer in &tx.layers {
            if doomed_layers.contains(&layer.parent) {
                doomed_layers.insert(layer.id.clone());
            }
        }
        if doomed_layers.len() == before {
            break;
        }
    }
    for image in &tx.images {
        if tx
            .chain(&image.top_layer)
            .iter()
            .any(|x| doomed_layers.contains(&x.id))
        {
            doomed_images.insert(image.id.clone());
        }
    }
    // Children first: deepest first.
    let mut layers: Vec<String> = doomed_layers.into_iter().collect();
    layers.sort_by_key(|id| std::cmp::Reverse(tx.chain(id).len()));
    let images = tx
        .images
        .iter()
        .filter(|i| doomed_images.contains(&i.id))
        .map(|i| (i.id.clone(), i.names.clone()))
        .collect();
    Plan { images, layers }
}

/// The repairs `plan` and `found` call for, in the order they are made; `done` marks them made.
fn describe(plan: &Plan, found: &[(Problem, Fix)], done: bool) -> Vec<Repair> {
    let mut out: Vec<Repair> = Vec::new();
    let mut push = |action: &str, subject: String, names: Vec<String>| {
        if !out
            .iter()
            .any(|r| r.action == action && r.subject == subject)
        {
            out.push(Repair {
                action: action.to_owned(),
                subject,
                names,
                done,
            });
        }
    };
    for (id, names) in &plan.images {
        push("remove image", id.clone(), names.clone());
    }
    for id in &plan.layers {
        push("remove layer", id.clone(), Vec::new());
    }
    for (p, fix) in found {
        let path = |p: &Path| p.to_string_lossy().into_owned();
        match fix {
            Fix::RecreateLink(id) if !plan.layers.contains(id) => {
                push("recreate link", id.clone(), Vec::new());
            }
            Fix::RewriteLower(id, _) if !plan.layers.contains(id) => {
                push("rewrite lower", id.clone(), Vec::new());
            }
            Fix::MakeDir(dir) if !plan.layers.contains(&p.subject) => {
                push("create directory", path(dir), Vec::new());
            }
            Fix::DropImageBigData(image, key) if !plan.images.iter().any(|(id, _)| id == image) => {
                push("drop big-data item", format!("{image} {key}"), Vec::new());
            }
            Fix::DropMountRecord(_) | Fix::DropBind(_) => {
                push("drop mount record", p.subject.clone(), Vec::new());
            }
            Fix::Unmount(mp) => push("unmount", path(mp), Vec::new()),
            Fix::Leftovers => push("remove leftover", p.subject.clone(), Vec::new()),
            Fix::RemoveLeftover(x) => push("remove leftover", path(x), Vec::new()),
            _ => {}
        }
    }
    out
}

fn problem(kind: &str, subject: &str, detail: &str) -> Problem {
    Problem {
        kind: kind.to_owned(),
        subject: subject.to_owned(),
        detail: detail.to_owned(),
        repairable: false,
        repaired: false,
    }
}

/// Short links by the layer they point at.
fn links_by_target(store: &Store) -> Result<HashMap<String, String>> {
    let dir = store.layout().links();
    let mut out = HashMap::new();
    for entry in fs::read_dir(&dir).at(&dir)? {
        let entry = entry.at(&dir)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Ok(target) = fs::read_link(entry.path())
            && let Some(id) = target
                .to_string_lossy()
                .strip_prefix("../")
                .and_then(|t| t.strip_suffix("/diff"))
        {
            out.insert(id.to_owned(), name);
        }
    }
    Ok(out)
}

/// The `lower` file a layer should have: its parents' links, nearest first (`None` if a parent's link is
/// unreadable, which the link check reports).
fn expected_lower(tx: &Txn<'_>, store: &Store, layer: &LayerRecord) -> Option<String> {
    let mut parts = Vec::new();
    for parent in tx.chain(&layer.id).iter().skip(1) {
        let link = fs::read_to_string(store.layout().layer_dir(&parent.id).join("link")).ok()?;
        let link = link.trim().to_owned();
        if !is_link_id(&link) {
            return None;
        }
        parts.push(format!("l/{link}"));
    }
    Some(parts.join(":"))
}

/// Makes sure layer `id`'s short link exists and points at its `diff/` (recreating it if not). Needs the
/// layers lock held exclusively.
pub(crate) fn ensure_link(store: &Store, id: &str) -> Result<()> {
    let l = store.layout();
    let link = read_optional(&l.layer_dir(id).join("link"))?
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned());
    let ok = link.as_deref().is_some_and(|link| {
        is_link_id(link)
            && fs::read_link(l.link(link)).ok().as_deref()
                == Some(Path::new(&format!("../{id}/diff")))
    });
    if ok { Ok(()) } else { recreate_link(store, id) }
}

/// Gives layer `id` a fresh short link (containers/storage `recreateSymlinks` keeps a valid `link` file's
/// name; so does this).
fn recreate_link(store: &Store, id: &str) -> Result<()> {
    let l = store.layout();
    let link_file = l.layer_dir(id).join("link");
    let link = read_optional(&link_file)?
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .filter(|x| is_link_id(x))
        .unwrap_or_else(new_link_id);
    write_atomic_mkdir(&link_file, link.as_bytes(), 0o644)?;
    let path = l.link(&link);
    remove_all(&path)?;
    std::os::unix::fs::symlink(format!("../{id}/diff"), &path).at(&path)
}

fn check_leftovers(tx: &Txn<'_>, found: &mut Vec<(Problem, Fix)>) -> Result<()> {
    let l = tx.layout();
    let known: HashSet<&str> = tx
        .layers
        .iter()
        .chain(tx.volatile_layers.iter())
        .map(|r| r.id.as_str())
        .collect();
    for dir in [l.overlay(), l.layers_dir()] {
        for entry in fs::read_dir(&dir).at(&dir)? {
            let entry = entry.at(&dir)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let id = name.strip_suffix(".tar-split.gz").unwrap_or(&name);
            if is_hex_id(id) && !known.contains(id) {
                found.push((
                    problem(
                        "leftover",
                        &entry.path().to_string_lossy(),
                        "no layer record",
                    ),
                    Fix::RemoveLeftover(entry.path()),
                ));
            }
        }
    }
    let images: HashSet<&str> = tx.images.iter().map(|i| i.id.as_str()).collect();
    let dir = l.images_dir();
    for entry in fs::read_dir(&dir).at(&dir)? {
        let entry = entry.at(&dir)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_hex_id(&name) && !images.contains(name.as_str()) {
            found.push((
                problem(
                    "leftover",
                    &entry.path().to_string_lossy(),
                    "no image record",
                ),
                Fix::RemoveLeftover(entry.path()),
            ));
        }
    }
    let links = l.links();
    for entry in fs::read_dir(&links).at(&links)? {
        let entry = entry.at(&links)?;
        if fs::metadata(entry.path()).is_err() {
            // Only strata's and containers/storage's own links are removed.
            let ours = is_link_id(&entry.file_name().to_string_lossy());
            found.push((
                problem(
                    "leftover",
                    &entry.path().to_string_lossy(),
                    "dangling short link",
                ),
                if ours {
                    Fix::RemoveLeftover(entry.path())
                } else {
                    Fix::None
                },
            ));
        }
    }
    Ok(())
}

/// Rebuilds layer `layer`'s tar from its tar-split and `diff/` and checks it against the diff ID.
fn verify_content(store: &Store, layer: &LayerRecord) -> Result<()> {
    let l = store.layout();
    let want = Digest::parse(&layer.diff_digest)?;
    let ts_path = l.tar_split(&layer.id);
    let ts = File::open(&ts_path).at(&ts_path)?;
    let diff = l.diff(&layer.id);
    let root = File::open(&diff).at(&diff)?;
    let mut hasher = DigestWriter::new(want.algorithm());
    let n = tarsplit::assemble(
        flate2::read::MultiGzDecoder::new(BufReader::new(ts)),
        &root,
        &layer.id,
        &mut hasher,
    )?;
    let got = hasher.finish();
    if got != want {
        return Err(Error::damaged(
            &layer.id,
            format!("rebuilt tar ({n} bytes) is {got}, not its diff ID {want}"),
        ));
    }
    Ok(())
}
