//! dive's figures, computed as dive 0.13.1 computes them: its efficiency score, wasted bytes and
//! user-wasted percentage ([`DiveAnalysis`]), and its CI rules (`.dive-ci`, [`CiRules`]).
//!
//! dive and strata's own [`LayerReport`](crate::layers::LayerReport) answer different questions, and both
//! are kept (docs/FORMAT.md, "Layer efficiency: strata's and dive's"):
//! - strata's wasted bytes are the bytes of regular files no path of the final image shows: a file
//!   overwritten or deleted by a later layer, or hidden under an opaque directory.
//! - dive builds a tree per layer and looks at its **leaves** only. A path seen in two or more layers is
//!   "inefficient", and all of its sizes count as wasted, **the surviving copy included**. A file whiteout
//!   counts 0 bytes, a directory whiteout the size of everything it removes; opaque markers are ignored.
//!   The efficiency score is Σ (each path's smallest size) / Σ (each path's sizes).
//!
//! The rules are dive's, quirks included, so the figures agree with `dive --json` to the byte:
//! - a whiteout of a path no lower layer has stops dive's walk of that layer: the entries after it, in
//!   dive's order (children first, names sorted), are not counted;
//! - the path of such a whiteout adds −1 to the minimum sizes.
//!
//! The module reads the layers' indexes only (nothing is unpacked); it keeps the tree of the layers below
//! the one it walks, as dive does.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use strata_index::EntryKind;

use crate::image::{Result, ScanImage};

/// dive's whiteout prefix (a node so named deletes the lower path without it).
const WHITEOUT: &[u8] = b".wh.";
/// dive's prefix of names it never adds (opaque markers).
const DOUBLE_WHITEOUT: &[u8] = b".wh..wh..";

/// One path dive counts as inefficient: seen in two or more layers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileReference {
    /// In how many layers the path is seen (dive's `count`).
    pub count: usize,
    /// The sum of its sizes in those layers (dive's `sizeBytes`).
    #[serde(rename = "sizeBytes")]
    pub size_bytes: u64,
    /// The path, `/`-rooted (dive's `file`).
    pub file: String,
}

/// dive's analysis of an image (`dive --json`'s `image` object, and the figures `dive --ci` prints).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DiveAnalysis {
    /// Σ of every layer's size: the sizes of its tar entries (dive's `sizeBytes`).
    #[serde(rename = "sizeBytes")]
    pub size_bytes: u64,
    /// Σ of the sizes of the layers above the first.
    #[serde(rename = "userSizeBytes")]
    pub user_size_bytes: u64,
    /// The wasted bytes: Σ of the sizes of every path seen in two or more layers (dive's
    /// `inefficientBytes`, `wastedBytes` under `--ci`).
    #[serde(rename = "inefficientBytes")]
    pub inefficient_bytes: u64,
    /// Σ (each path's smallest size) / Σ (each path's sizes); 1 without any size (dive's `efficiencyScore`).
    #[serde(rename = "efficiencyScore")]
    pub efficiency_score: f64,
    /// `inefficient_bytes / user_size_bytes` (NaN or infinite for a one-layer image, as in dive).
    #[serde(rename = "userWastedPercent")]
    pub user_wasted_percent: f64,
    /// The inefficient paths, largest first (dive's `fileReference`; paths of equal size by name).
    #[serde(rename = "fileReference")]
    pub file_references: Vec<FileReference>,
    /// Every layer's size, bottom first.
    #[serde(rename = "layerSizes")]
    pub layer_sizes: Vec<u64>,
}

/// A node of dive's tree: its size and kind, and its children by name (sorted as Go sorts strings).
#[derive(Debug, Clone, Default)]
struct Node {
    size: u64,
    is_dir: bool,
    children: BTreeMap<Vec<u8>, Node>,
}

impl Node {
    /// dive's `AddPath`: missing parents are made (empty), a name with the opaque prefix stops it, and
    /// the last component takes `size` and `is_dir` (an existing node keeps its children).
    fn add_path(&mut self, components: &[&[u8]], size: u64, is_dir: bool) {
        let mut node = self;
        for (i, name) in components.iter().enumerate() {
            if !node.children.contains_key(*name) && name.starts_with(DOUBLE_WHITEOUT) {
                return;
            }
            node = node.children.entry(name.to_vec()).or_default();
            if i + 1 == components.len() {
                node.size = size;
                node.is_dir = is_dir;
            }
        }
    }

    fn get(&self, components: &[&[u8]]) -> Option<&Node> {
        let mut node = self;
        for name in components {
            node = node.children.get(*name)?;
        }
        Some(node)
    }

    /// dive's `RemovePath` (a missing path is left alone).
    fn remove(&mut self, components: &[&[u8]]) {
        let Some((last, parents)) = components.split_last() else {
            return;
        };
        let mut node = self;
        for name in parents {
            match node.children.get_mut(*name) {
                Some(child) => node = child,
                None => return,
            }
        }
        node.children.remove(*last);
    }

    /// The sizes of this node and everything under it.
    fn subtree_size(&self) -> u64 {
        self.size + self.children.values().map(Node::subtree_size).sum::<u64>()
    }

    /// dive's `Stack`: every node of `upper`, children first, added here — a whiteout removes the path it
    /// names instead.
    fn stack(&mut self, upper: &Node) {
        let mut path = Vec::new();
        self.stack_from(upper, &mut path);
    }

    fn stack_from<'a>(&mut self, upper: &'a Node, path: &mut Vec<&'a [u8]>) {
        for (name, child) in &upper.children {
            path.push(name);
            self.stack_from(child, path);
            match name.strip_prefix(WHITEOUT) {
                Some(target) => {
                    let mut target_path = path.clone();
                    if let Some(last) = target_path.last_mut() {
                        *last = target;
                    }
                    self.remove(&target_path);
                }
                None => self.add_path(path, child.size, child.is_dir),
            }
            path.pop();
        }
    }
}

/// dive's bookkeeping for one path.
struct PathData {
    count: usize,
    cumulative: u64,
    /// −1 until a size is seen (dive's `minDiscoveredSize`).
    min: i64,
}

/// The path as dive writes it: `/`-rooted, the whiteout prefix taken off the last component.
fn dive_path(components: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, name) in components.iter().enumerate() {
        out.push(b'/');
        let name = match (i + 1 == components.len(), name.strip_prefix(WHITEOUT)) {
            (true, Some(stripped)) => stripped,
            _ => name,
        };
        out.extend_from_slice(name);
    }
    if out.is_empty() {
        out.push(b'/');
    }
    out
}

/// Walks one layer's tree as dive's `Efficiency` does: leaves, children first, names sorted. `Err(())`
/// when a whiteout names a path the layers below lack, which ends dive's walk of the layer.
fn visit_layer<'a>(
    node: &'a Node,
    path: &mut Vec<&'a [u8]>,
    below: &Node,
    data: &mut HashMap<Vec<u8>, PathData>,
    order: &mut Vec<Vec<u8>>,
) -> std::result::Result<(), ()> {
    for (name, child) in &node.children {
        path.push(name);
        let result = visit_layer(child, path, below, data, order);
        if result.is_ok() && child.children.is_empty() {
            let key = dive_path(path);
            let entry = data.entry(key.clone()).or_insert(PathData {
                count: 0,
                cumulative: 0,
                min: -1,
            });
            let size = match name.strip_prefix(WHITEOUT) {
                Some(target) => {
                    let mut target_path = path.clone();
                    if let Some(last) = target_path.last_mut() {
                        *last = target;
                    }
                    match below.get(&target_path) {
                        Some(previous) if previous.is_dir => previous.subtree_size(),
                        Some(_) => 0,
                        None => {
                            path.pop();
                            return Err(());
                        }
                    }
                }
                None => child.size,
            };
            entry.cumulative += size;
            let size = i64::try_from(size).unwrap_or(i64::MAX);
            if entry.min < 0 || size < entry.min {
                entry.min = size;
            }
            entry.count += 1;
            if entry.count == 2 {
                order.push(key);
            }
        }
        path.pop();
        result?;
    }
    Ok(())
}

impl ScanImage {
    /// dive 0.13.1's analysis of the image: its efficiency score, wasted bytes and user-wasted
    /// percentage, computed from the layers' indexes by dive's rules (see the [module](self) doc).
    pub fn dive_analysis(&self) -> Result<DiveAnalysis> {
        let merged = self.view().merged();
        let mut trees: Vec<(Node, u64)> = Vec::new();
        for index in merged.layers() {
            let mut tree = Node::default();
            let mut size = 0u64;
            for entry in index.iter() {
                let entry = entry?;
                let path = entry.path();
                let mut components: Vec<&[u8]> = path
                    .split(|&b| b == b'/')
                    .filter(|c| !c.is_empty())
                    .collect();
                let marker;
                match entry.kind() {
                    EntryKind::Whiteout => {
                        let Some(last) = components.last_mut() else {
                            continue;
                        };
                        marker = [WHITEOUT, last].concat();
                        *last = &marker;
                        tree.add_path(&components, 0, false);
                    }
                    EntryKind::Opaque => {
                        components.push(b".wh..wh..opq");
                        tree.add_path(&components, 0, false);
                    }
                    kind => {
                        if components.is_empty() {
                            continue;
                        }
                        size += entry.size();
                        tree.add_path(&components, entry.size(), kind == EntryKind::Dir);
                    }
                }
            }
            trees.push((tree, size));
        }
        Ok(analyse(&trees))
    }
}

/// dive's `Efficiency` and `Analyze` over the layers' trees and sizes, bottom first.
fn analyse(trees: &[(Node, u64)]) -> DiveAnalysis {
    let mut data: HashMap<Vec<u8>, PathData> = HashMap::new();
    let mut order: Vec<Vec<u8>> = Vec::new();
    // dive compares a layer's whiteouts with a copy of the first layer stacked with the layers up to the
    // one below (the first one twice over); built once, layer by layer.
    let mut below = trees.first().map(|(t, _)| t.clone()).unwrap_or_default();
    for (i, (tree, _)) in trees.iter().enumerate() {
        if let Some((lower, _)) = i.checked_sub(1).and_then(|j| trees.get(j)) {
            below.stack(lower);
        }
        let _ended_early = visit_layer(tree, &mut Vec::new(), &below, &mut data, &mut order);
    }
    let minimum: i64 = data.values().map(|d| d.min).sum();
    let discovered: u64 = data.values().map(|d| d.cumulative).sum();
    let efficiency_score = if discovered == 0 {
        1.0
    } else {
        minimum as f64 / discovered as f64
    };
    let mut file_references: Vec<FileReference> = order
        .iter()
        .filter_map(|key| {
            data.get(key).map(|d| FileReference {
                count: d.count,
                size_bytes: d.cumulative,
                file: String::from_utf8_lossy(key).into_owned(),
            })
        })
        .collect();
    file_references.sort_by(|a, b| b.size_bytes.cmp(&a.size_bytes).then(a.file.cmp(&b.file)));
    let inefficient_bytes = file_references.iter().map(|f| f.size_bytes).sum();
    let layer_sizes: Vec<u64> = trees.iter().map(|(_, s)| *s).collect();
    let size_bytes = layer_sizes.iter().sum();
    let user_size_bytes = layer_sizes.iter().skip(1).sum();
    DiveAnalysis {
        size_bytes,
        user_size_bytes,
        inefficient_bytes,
        efficiency_score,
        user_wasted_percent: inefficient_bytes as f64 / user_size_bytes as f64,
        file_references,
        layer_sizes,
    }
}

/// One of dive's CI rules: its threshold, or disabled.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Threshold<T> {
    /// The rule is not evaluated (`disabled`).
    Disabled,
    /// The rule's threshold.
    Value(T),
}

/// dive's CI rules (`.dive-ci`'s `rules`, or dive's `--lowestEfficiency`, `--highestWastedBytes`,
/// `--highestUserWastedPercent`). [`Default`] is dive's defaults: 0.9, disabled, 0.1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CiRules {
    /// The lowest efficiency score allowed (0–1).
    pub lowest_efficiency: Threshold<f64>,
    /// The most wasted bytes allowed.
    pub highest_wasted_bytes: Threshold<u64>,
    /// The highest share of the user layers' bytes that may be wasted (0–1).
    pub highest_user_wasted_percent: Threshold<f64>,
}

impl Default for CiRules {
    fn default() -> Self {
        CiRules {
            lowest_efficiency: Threshold::Value(0.9),
            highest_wasted_bytes: Threshold::Disabled,
            highest_user_wasted_percent: Threshold::Value(0.1),
        }
    }
}

/// A CI rule's value that dive would refuse ("misconfigured": the run fails).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{rule}: invalid config value {value:?}: {reason}")]
pub struct RuleError {
    /// The rule's name (`lowestEfficiency`, …).
    pub rule: String,
    /// The value given.
    pub value: String,
    /// Why it is refused.
    pub reason: String,
}

/// The outcome of one rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleStatus {
    /// The image is within the threshold.
    Pass,
    /// The image is over it.
    Fail,
    /// The rule is disabled.
    Skip,
}

/// One rule's outcome, as `dive --ci` reports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleResult {
    /// The rule's name, as in `.dive-ci`.
    pub rule: &'static str,
    /// Its outcome.
    pub status: RuleStatus,
    /// Why it failed (empty otherwise).
    pub message: String,
}

impl CiRules {
    /// Sets rule `rule` (`lowestEfficiency`, `highestWastedBytes` or `highestUserWastedPercent`) from
    /// `value` as dive reads it: `disabled`, a ratio between 0 and 1, or bytes as go-humanize parses them
    /// (`20MB`, `1.5 GiB`, `1024`).
    ///
    /// # Errors
    /// An unknown rule, or a value dive would call misconfigured.
    pub fn set(&mut self, rule: &str, value: &str) -> std::result::Result<(), RuleError> {
        let value = value.trim();
        let error = |reason: &str| RuleError {
            rule: rule.to_owned(),
            value: value.to_owned(),
            reason: reason.to_owned(),
        };
        let ratio = || -> std::result::Result<Threshold<f64>, RuleError> {
            if value == "disabled" {
                return Ok(Threshold::Disabled);
            }
            let v: f64 = value.parse().map_err(|_| error("not a number"))?;
            if !(0.0..=1.0).contains(&v) {
                return Err(error("outside the allowed range (0-1)"));
            }
            Ok(Threshold::Value(v))
        };
        match rule {
            "lowestEfficiency" => self.lowest_efficiency = ratio()?,
            "highestUserWastedPercent" => self.highest_user_wasted_percent = ratio()?,
            "highestWastedBytes" => {
                self.highest_wasted_bytes = if value == "disabled" {
                    Threshold::Disabled
                } else {
                    Threshold::Value(parse_bytes(value).ok_or_else(|| error("not a byte size"))?)
                };
            }
            _ => return Err(error("unknown rule")),
        }
        Ok(())
    }

    /// Reads `.dive-ci`'s YAML (`rules:` with any of the three rules) over these rules.
    ///
    /// # Errors
    /// YAML dive could not read, or a rule's value it would refuse.
    pub fn read_yaml(&mut self, yaml: &str) -> std::result::Result<(), RuleError> {
        let invalid = |reason: String| RuleError {
            rule: "rules".into(),
            value: String::new(),
            reason,
        };
        let doc: serde_norway::Value =
            serde_norway::from_str(yaml).map_err(|e| invalid(e.to_string()))?;
        let Some(rules) = doc.get("rules") else {
            return Ok(());
        };
        let Some(map) = rules.as_mapping() else {
            return Err(invalid("`rules` is not a mapping".into()));
        };
        for (key, value) in map {
            let Some(key) = key.as_str() else { continue };
            let value = match value {
                serde_norway::Value::String(s) => s.clone(),
                serde_norway::Value::Number(n) => n.to_string(),
                serde_norway::Value::Bool(b) => b.to_string(),
                _ => String::new(),
            };
            // Keys dive does not know are ignored, as viper ignores them.
            if matches!(
                key,
                "lowestEfficiency" | "highestWastedBytes" | "highestUserWastedPercent"
            ) {
                self.set(key, &value)?;
            }
        }
        Ok(())
    }

    /// Evaluates the rules on `analysis`, in dive's order.
    pub fn evaluate(&self, analysis: &DiveAnalysis) -> Vec<RuleResult> {
        let mut out = Vec::new();
        let skip = |rule| RuleResult {
            rule,
            status: RuleStatus::Skip,
            message: "rule disabled".into(),
        };
        let judged = |rule, failed: Option<String>| RuleResult {
            rule,
            status: if failed.is_some() {
                RuleStatus::Fail
            } else {
                RuleStatus::Pass
            },
            message: failed.unwrap_or_default(),
        };
        out.push(match self.lowest_efficiency {
            Threshold::Disabled => skip("lowestEfficiency"),
            Threshold::Value(t) => judged(
                "lowestEfficiency",
                (t > analysis.efficiency_score).then(|| {
                    format!(
                        "image efficiency is too low (efficiency={} < threshold={t})",
                        analysis.efficiency_score
                    )
                }),
            ),
        });
        out.push(match self.highest_wasted_bytes {
            Threshold::Disabled => skip("highestWastedBytes"),
            Threshold::Value(t) => judged(
                "highestWastedBytes",
                (analysis.inefficient_bytes > t).then(|| {
                    format!(
                        "too many bytes wasted (wasted-bytes={} > threshold={t})",
                        analysis.inefficient_bytes
                    )
                }),
            ),
        });
        out.push(match self.highest_user_wasted_percent {
            Threshold::Disabled => skip("highestUserWastedPercent"),
            Threshold::Value(t) => judged(
                "highestUserWastedPercent",
                (t < analysis.user_wasted_percent).then(|| {
                    format!(
                        "too many bytes wasted, relative to the user bytes added \
                         (%-user-wasted-bytes={} > threshold={t})",
                        analysis.user_wasted_percent
                    )
                }),
            ),
        });
        out
    }
}

/// A byte size as go-humanize's `ParseBytes` reads it: a number (commas allowed), optional spaces, then
/// an optional unit, case-insensitive — `b`; `k`/`kb` … `e`/`eb` powers of 1000; `ki`/`kib` …
/// powers of 1024. `None` for anything else or a size beyond `u64`.
pub fn parse_bytes(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ','))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.replace(',', "").parse().ok()?;
    let unit = unit.trim().to_ascii_lowercase();
    let multiplier: f64 = match unit.as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "t" | "tb" => 1e12,
        "p" | "pb" => 1e15,
        "e" | "eb" => 1e18,
        "ki" | "kib" => 1024.0,
        "mi" | "mib" => 1024f64.powi(2),
        "gi" | "gib" => 1024f64.powi(3),
        "ti" | "tib" => 1024f64.powi(4),
        "pi" | "pib" => 1024f64.powi(5),
        "ei" | "eib" => 1024f64.powi(6),
        _ => return None,
    };
    let bytes = number * multiplier;
    if !bytes.is_finite() || bytes < 0.0 || bytes >= u64::MAX as f64 {
        return None;
    }
    Some(bytes as u64)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn tree(entries: &[(&str, u64, bool)]) -> (Node, u64) {
        let mut t = Node::default();
        let mut size = 0;
        for (path, s, dir) in entries {
            let components: Vec<&[u8]> = path.split('/').map(str::as_bytes).collect();
            t.add_path(&components, *s, *dir);
            size += s;
        }
        (t, size)
    }

    #[test]
    fn the_surviving_copy_counts_as_wasted_and_whiteouts_as_dive_sizes_them() {
        let layers = [
            tree(&[
                ("etc", 0, true),
                ("etc/motd", 36, false),
                ("etc/passwd", 10, false),
                ("var", 0, true),
                ("var/lib", 0, true),
                ("var/lib/a", 5, false),
                ("var/lib/b", 7, false),
            ]),
            tree(&[
                ("etc", 0, true),
                ("etc/.wh.motd", 0, false),
                ("etc/passwd", 12, false),
            ]),
            tree(&[(".wh.var", 0, false)]),
        ];
        let a = analyse(&layers);
        // /etc/passwd: 10 + 12; /etc/motd: 36 + 0 (a file whiteout). /var: 12 (a directory whiteout counts
        // what it removes), seen once as a leaf (a directory with children is no leaf), like /var/lib/a, b.
        assert_eq!(a.inefficient_bytes, 36 + 22);
        assert_eq!(
            a.file_references,
            vec![
                FileReference {
                    count: 2,
                    size_bytes: 36,
                    file: "/etc/motd".into()
                },
                FileReference {
                    count: 2,
                    size_bytes: 22,
                    file: "/etc/passwd".into()
                },
            ]
        );
        // Σ min: motd 0, passwd 10, a 5, b 7, var 12 (seen once, as the whiteout) = 34; Σ sizes 36 + 22 +
        // 5 + 7 + 12 = 82.
        assert!((a.efficiency_score - 34.0 / 82.0).abs() < 1e-12);
        assert_eq!(a.size_bytes, 58 + 12);
        assert_eq!(a.user_size_bytes, 12);
    }

    #[test]
    fn a_whiteout_of_nothing_ends_the_layer_walk_as_in_dive() {
        let layers = [
            tree(&[("b", 0, true), ("b/x", 1, false), ("z", 2, false)]),
            tree(&[
                ("b", 0, true),
                ("b/x", 3, false),
                ("c/.wh.m", 0, false),
                ("z", 4, false),
            ]),
        ];
        let a = analyse(&layers);
        // Layer 1 is walked b/x, then c/.wh.m (no /c/m below: the walk stops), so z's second copy is not
        // seen.
        assert_eq!(
            a.file_references,
            vec![FileReference {
                count: 2,
                size_bytes: 4,
                file: "/b/x".into()
            }]
        );
        // Σ min = b/x 1 + z 2 + c/m −1 = 2; Σ sizes = 4 + 2 + 0.
        assert!((a.efficiency_score - 2.0 / 6.0).abs() < 1e-12);
    }

    #[test]
    fn rules_read_as_dive_reads_them() {
        let mut rules = CiRules::default();
        rules
            .read_yaml("rules:\n  lowestEfficiency: 0.95\n  highestWastedBytes: 20MB\n  highestUserWastedPercent: disabled\n")
            .unwrap();
        assert_eq!(rules.lowest_efficiency, Threshold::Value(0.95));
        assert_eq!(rules.highest_wasted_bytes, Threshold::Value(20_000_000));
        assert_eq!(rules.highest_user_wasted_percent, Threshold::Disabled);
        assert!(rules.set("lowestEfficiency", "1.5").is_err());
        assert!(rules.set("highestWastedBytes", "lots").is_err());
        assert_eq!(parse_bytes("1.5 GiB"), Some(1_610_612_736));
        assert_eq!(parse_bytes("1,024"), Some(1024));
        assert_eq!(parse_bytes("20 kib"), Some(20480));
    }
}
