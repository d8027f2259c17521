//! The crate graph follows docs/ARCHITECTURE.md: each crate depends only on crates of lower layers, as the
//! "Dependency direction" section lists them, and nothing ships a dev-only crate.

// Test code: a failed step should abort the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// The layers ARCHITECTURE.md declares: lines `- layer N: crate, crate` between the markers
/// `<!-- layers -->` and `<!-- /layers -->`. Dev-only crates are in layer `dev`.
fn declared_layers(architecture: &str) -> BTreeMap<String, Option<u32>> {
    let start = architecture
        .find("<!-- layers -->")
        .expect("ARCHITECTURE.md has a <!-- layers --> block");
    let end = architecture[start..]
        .find("<!-- /layers -->")
        .expect("the layers block ends")
        + start;
    let mut layers = BTreeMap::new();
    for line in architecture[start..end].lines() {
        let Some(rest) = line.trim().strip_prefix("- layer ") else {
            continue;
        };
        let (level, crates) = rest.split_once(':').expect("`- layer N: crates`");
        let level = match level.trim() {
            "dev" => None,
            n => Some(n.parse::<u32>().expect("a layer number")),
        };
        for name in crates.split(',') {
            let name = name.trim().trim_matches('`');
            if !name.is_empty() {
                layers.insert(name.to_owned(), level);
            }
        }
    }
    layers
}

/// The violations of `layers` by `deps` (crate, dependency, kind): a crate of the workspace missing from
/// the layers; a normal or build dependency on a crate of the same or a higher layer, or on a dev-only
/// crate; any dependency on the binary crate `strata`.
fn violations(
    layers: &BTreeMap<String, Option<u32>>,
    deps: &[(String, String, String)],
) -> Vec<String> {
    let mut out = Vec::new();
    for (from, to, kind) in deps {
        let (Some(&lf), Some(&lt)) = (layers.get(from), layers.get(to)) else {
            for name in [from, to] {
                if !layers.contains_key(name) {
                    out.push(format!("{name} is in no layer of ARCHITECTURE.md"));
                }
            }
            continue;
        };
        if to == "strata" {
            out.push(format!("{from} depends on the binary crate strata"));
            continue;
        }
        if kind == "dev" {
            continue;
        }
        match (lf, lt) {
            // Dev-only crates may use each other and anything below the binary.
            (None, _) => {}
            (Some(_), None) => out.push(format!("{from} ships dev-only {to} ({kind} dependency)")),
            (Some(a), Some(b)) if b >= a => out.push(format!(
                "{from} (layer {a}) depends on {to} (layer {b}): only lower layers may be used"
            )),
            _ => {}
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The workspace's crates and their dependencies on each other, from `cargo metadata`.
fn workspace_deps() -> (Vec<String>, Vec<(String, String, String)>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(&root)
        .output()
        .expect("running cargo metadata");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).unwrap();
    let packages = meta["packages"].as_array().unwrap();
    let names: Vec<String> = packages
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect();
    let mut deps = Vec::new();
    for p in packages {
        let from = p["name"].as_str().unwrap();
        for d in p["dependencies"].as_array().unwrap() {
            let to = d["name"].as_str().unwrap();
            if names.iter().any(|n| n == to) {
                let kind = d["kind"].as_str().unwrap_or("normal").to_owned();
                deps.push((from.to_owned(), to.to_owned(), kind));
            }
        }
    }
    (names, deps)
}

#[test]
fn the_crate_graph_follows_the_documented_layers() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let architecture = std::fs::read_to_string(root.join("docs/ARCHITECTURE.md")).unwrap();
    let layers = declared_layers(&architecture);
    let (names, deps) = workspace_deps();
    let mut problems = violations(&layers, &deps);
    for name in &names {
        if !layers.contains_key(name) {
            problems.push(format!("{name} is in no layer of ARCHITECTURE.md"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn a_lower_crate_importing_a_higher_one_is_caught() {
    let layers = declared_layers(
        "<!-- layers -->\n- layer 0: `low`\n- layer 1: `mid`, `other`\n- layer 2: `high`, `strata`\n\
         - layer dev: `fixtures`\n<!-- /layers -->",
    );
    let dep = |a: &str, b: &str, kind: &str| (a.to_owned(), b.to_owned(), kind.to_owned());
    assert!(
        violations(
            &layers,
            &[dep("high", "mid", "normal"), dep("mid", "low", "normal")]
        )
        .is_empty()
    );
    assert_eq!(
        violations(&layers, &[dep("low", "high", "normal")]),
        ["low (layer 0) depends on high (layer 2): only lower layers may be used"]
    );
    assert_eq!(
        violations(&layers, &[dep("mid", "other", "build")]),
        ["mid (layer 1) depends on other (layer 1): only lower layers may be used"]
    );
    assert_eq!(
        violations(&layers, &[dep("mid", "fixtures", "normal")]),
        ["mid ships dev-only fixtures (normal dependency)"]
    );
    // Tests may use anything below the binary.
    assert!(
        violations(
            &layers,
            &[dep("low", "fixtures", "dev"), dep("low", "high", "dev")]
        )
        .is_empty()
    );
    assert_eq!(
        violations(&layers, &[dep("mid", "strata", "dev")]),
        ["mid depends on the binary crate strata"]
    );
    assert_eq!(
        violations(&layers, &[dep("mid", "unknown", "normal")]),
        ["unknown is in no layer of ARCHITECTURE.md"]
    );
}
