//! The container certification assessments: what Red Hat's image certification (and `atomic scan`'s
//! checks before it) asks of an image, each passing or failing with its reason.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::os::OsInfo;

/// The most layers a certified image may have.
pub const MAX_LAYERS: usize = 40;

/// The labels every certified image must carry.
pub const REQUIRED_LABELS: [&str; 6] = [
    "name",
    "vendor",
    "version",
    "release",
    "summary",
    "description",
];

/// One assessment's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Assessment {
    /// The assessment's stable name, e.g. `has_licenses`.
    pub name: String,
    /// Whether the image passes it (true for a skipped assessment: not deciding is not failing).
    pub passed: bool,
    /// Why, in a sentence.
    pub reason: String,
    /// Whether the assessment could not be decided for this image (e.g. the package list of an image
    /// without a package database) and was skipped; `passed` is then true.
    pub skipped: bool,
}

impl Assessment {
    fn new(name: &str, passed: bool, reason: impl Into<String>) -> Self {
        Assessment {
            name: name.to_owned(),
            passed,
            reason: reason.into(),
            skipped: false,
        }
    }

    fn skipped(name: &str, reason: impl Into<String>) -> Self {
        Assessment {
            skipped: true,
            ..Assessment::new(name, true, reason)
        }
    }
}

/// What reading an image's package list gave, for [`assess`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PackageList {
    /// A database was read: this many packages.
    Read(usize),
    /// The image has no package database strata knows (dpkg, apk, rpm): nothing to decide.
    NoDatabase,
    /// A database is there but could not be read (unsupported, damaged): why.
    Failed(String),
}

/// All assessments of one image: what `strata check --json` prints. The field names and order are stable
/// (docs/FORMAT.md, "JSON outputs").
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckReport {
    /// The image, as it was named when opened.
    pub image: String,
    /// Whether every assessment passed (a skipped one counts as passed).
    pub passed: bool,
    /// Every assessment, in [`assess`]'s stable order.
    pub assessments: Vec<Assessment>,
    /// The distribution detected, or `None` (JSON `null`).
    pub distribution: Option<OsInfo>,
}

/// What the checks look at; the caller gathers it from the image.
#[derive(Debug, Clone)]
pub struct CheckInput {
    /// The config's `User`, if set.
    pub user: Option<String>,
    /// The config's labels.
    pub labels: BTreeMap<String, String>,
    /// The number of layers.
    pub layer_count: usize,
    /// Regular files under `/licenses` (paths), or `None` when `/licenses` is not a directory.
    pub license_files: Option<Vec<String>>,
    /// The distribution, when detected.
    pub os: Option<OsInfo>,
    /// The outcome of reading the package list.
    pub packages: PackageList,
}

/// Runs every assessment, in a stable order.
pub fn assess(input: &CheckInput) -> Vec<Assessment> {
    let mut out = Vec::new();
    out.push(match &input.license_files {
        Some(files) if !files.is_empty() => Assessment::new(
            "has_licenses",
            true,
            format!("/licenses holds {} file(s)", files.len()),
        ),
        Some(_) => Assessment::new("has_licenses", false, "/licenses holds no file"),
        None => Assessment::new(
            "has_licenses",
            false,
            "the image has no /licenses directory",
        ),
    });
    out.push(match input.user.as_deref().map(str::trim) {
        None | Some("") => Assessment::new(
            "not_running_as_root",
            false,
            "the config sets no User, so the container runs as root",
        ),
        Some(user) => {
            let who = user.split(':').next().unwrap_or(user);
            if who == "0" || who == "root" {
                Assessment::new("not_running_as_root", false, format!("User is {user:?}"))
            } else {
                Assessment::new("not_running_as_root", true, format!("User is {user:?}"))
            }
        }
    });
    for label in REQUIRED_LABELS {
        let name = format!("has_{label}_label");
        out.push(match input.labels.get(label) {
            Some(v) if !v.trim().is_empty() => {
                Assessment::new(&name, true, format!("{label}={v:?}"))
            }
            Some(_) => Assessment::new(&name, false, format!("label {label:?} is empty")),
            None => Assessment::new(&name, false, format!("no {label:?} label")),
        });
    }
    out.push(Assessment::new(
        "good_layer_count",
        input.layer_count <= MAX_LAYERS,
        format!("{} layers (at most {MAX_LAYERS})", input.layer_count),
    ));
    out.push(match &input.os {
        Some(os) if !os.id.is_empty() => Assessment::new(
            "base_distribution_detected",
            true,
            format!(
                "{} {} (from {}){}",
                os.id,
                os.version_id,
                os.source,
                if os.is_rhel() { "; is_rhel" } else { "" }
            ),
        ),
        _ => Assessment::new(
            "base_distribution_detected",
            false,
            "no /etc/os-release, /usr/lib/os-release, /etc/redhat-release or /etc/alpine-release",
        ),
    });
    out.push(match &input.packages {
        PackageList::Read(n) => {
            Assessment::new("package_list_successful", true, format!("{n} packages"))
        }
        PackageList::NoDatabase => Assessment::skipped(
            "package_list_successful",
            "no package database (dpkg, apk or rpm) in the image: no package list to read",
        ),
        PackageList::Failed(e) => Assessment::new("package_list_successful", false, e.clone()),
    });
    let run = input
        .labels
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("run"))
        .map(|(_, v)| v.as_str());
    out.push(match run {
        Some(cmd)
            if cmd
                .split_whitespace()
                .any(|w| w == "--privileged" || w == "--privileged=true") =>
        {
            Assessment::new(
                "not_running_privileged",
                false,
                format!("the RUN label asks for --privileged: {cmd:?}"),
            )
        }
        Some(_) => Assessment::new(
            "not_running_privileged",
            true,
            "the RUN label does not ask for --privileged",
        ),
        None => Assessment::new(
            "not_running_privileged",
            true,
            "no RUN label; nothing in the image asks to run privileged",
        ),
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compliant() -> CheckInput {
        CheckInput {
            user: Some("1001".into()),
            labels: REQUIRED_LABELS
                .iter()
                .map(|l| ((*l).to_owned(), "x".to_owned()))
                .collect(),
            layer_count: 3,
            license_files: Some(vec!["/licenses/LICENSE".into()]),
            os: Some(crate::os::parse_os_release(
                "ID=rhel\nVERSION_ID=9.3\n",
                "/etc/os-release",
            )),
            packages: PackageList::Read(200),
        }
    }

    #[test]
    fn compliant_passes_everything() {
        let all = assess(&compliant());
        assert!(all.iter().all(|a| a.passed), "{all:#?}");
        assert_eq!(all.len(), 12);
    }

    #[test]
    fn no_package_database_is_skipped_not_failed() {
        let mut input = compliant();
        input.packages = PackageList::NoDatabase;
        let all = assess(&input);
        let packages = all
            .iter()
            .find(|a| a.name == "package_list_successful")
            .unwrap();
        assert!(packages.skipped && packages.passed, "{packages:?}");
        assert!(all.iter().all(|a| a.passed));
        assert_eq!(all.iter().filter(|a| a.skipped).count(), 1);
    }

    #[test]
    fn each_failure_is_named() {
        let mut bad = compliant();
        bad.user = Some("0:0".into());
        bad.labels.remove("vendor");
        bad.labels
            .insert("RUN".into(), "docker run --privileged IMAGE".into());
        bad.layer_count = 41;
        bad.license_files = None;
        bad.os = None;
        bad.packages = PackageList::Failed("a BerkeleyDB database".into());
        let failed: Vec<String> = assess(&bad)
            .into_iter()
            .filter(|a| !a.passed)
            .map(|a| a.name)
            .collect();
        assert_eq!(
            failed,
            [
                "has_licenses",
                "not_running_as_root",
                "has_vendor_label",
                "good_layer_count",
                "base_distribution_detected",
                "package_list_successful",
                "not_running_privileged"
            ]
        );
    }
}
