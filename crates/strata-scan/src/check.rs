//! The container certification assessments, by the names Red Hat's certification scan reports them
//! (`has_licenses`, `rpm_verify_successful`, `is_rhel`, …) plus the labels its Dockerfile requirements
//! add; each `pass`, `fail` or `unknown` with its reason. `unknown` is never a silent pass: the verdict
//! fails on any `fail` and counts the `unknown`s. docs/CHECKS.md maps each to Red Hat preflight's check.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::os::OsInfo;
use crate::verify::VerifyReport;

/// The most layers a certified image may have (preflight's `LayerCountAcceptable`).
pub const MAX_LAYERS: usize = 40;

/// The labels a certified image must carry: the scan's and its Dockerfile requirements'.
pub const REQUIRED_LABELS: [&str; 7] = [
    "name",
    "vendor",
    "version",
    "release",
    "maintainer",
    "summary",
    "description",
];

/// The assessments' names, in the stable order of [`assess`] and `strata check --json`.
pub const ASSESSMENTS: [&str; 16] = [
    "has_licenses",
    "not_running_privileged",
    "rpm_list_successful",
    "rpm_verify_successful",
    "is_rhel",
    "vendor_label_exists",
    "free_of_critical_vulnerabilities",
    "good_tags",
    "good_layer_count",
    "release_label_exists",
    "not_running_as_root",
    "version_label_exists",
    "name_label_exists",
    "maintainer_label_exists",
    "summary_label_exists",
    "description_label_exists",
];

/// An assessment's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The image passes.
    Pass,
    /// The image fails: the verdict fails.
    Fail,
    /// The image does not say enough to decide (the reason says what is missing); not a pass.
    Unknown,
}

impl Status {
    /// How the table prints it: `pass`, `FAIL`, `unknown`.
    pub fn table_word(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "FAIL",
            Status::Unknown => "unknown",
        }
    }
}

/// One assessment's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Assessment {
    /// The assessment's stable name, e.g. `has_licenses` (see [`ASSESSMENTS`]).
    pub name: String,
    /// Its result.
    pub result: Status,
    /// Why, in a sentence.
    pub reason: String,
}

impl Assessment {
    fn new(name: &str, result: Status, reason: impl Into<String>) -> Self {
        Assessment {
            name: name.to_owned(),
            result,
            reason: reason.into(),
        }
    }

    fn pass(name: &str, reason: impl Into<String>) -> Self {
        Assessment::new(name, Status::Pass, reason)
    }

    fn fail(name: &str, reason: impl Into<String>) -> Self {
        Assessment::new(name, Status::Fail, reason)
    }

    fn unknown(name: &str, reason: impl Into<String>) -> Self {
        Assessment::new(name, Status::Unknown, reason)
    }

    /// Whether it passed.
    pub fn passed(&self) -> bool {
        self.result == Status::Pass
    }
}

/// A decision made elsewhere and plugged into the table (the advisory feed's answers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// The result.
    pub result: Status,
    /// Why.
    pub reason: String,
}

/// The Container Health Index grade (`A`–`F`, or `unknown`) and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HealthIndex {
    /// `A`, `B`, `C`, `D`, `E`, `F` or `unknown`.
    pub grade: String,
    /// Why.
    pub reason: String,
}

/// Without an advisory feed, neither vulnerabilities nor the grade can be decided.
pub const NO_ADVISORY_FEED: &str = "no advisory feed given";

/// What reading an image's package list gave, for [`assess`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PackageList {
    /// A database was read: its manager and how many packages it lists (the first database found, rpm
    /// first).
    Read(crate::packages::Manager, usize),
    /// The image has no package database strata knows (dpkg, apk, rpm): nothing to decide.
    NoDatabase,
    /// A database is there but could not be read (unsupported, damaged): why.
    Failed(String),
}

/// What verifying the packages' files gave, for [`assess`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// Every file of every package was checked.
    Done(VerifyReport),
    /// Verification was not asked for (`strata check --no-verify-packages`).
    NotRun,
    /// The image has no package database.
    NoDatabase,
    /// A database could not be read (the error).
    Failed(String),
}

/// How the image was named and what its repository holds, for `good_tags`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tags {
    /// The tag the image was referenced by (a `docker://` or `containers-storage:` reference's tag, an OCI
    /// layout's `:REF`), if any.
    pub reference_tag: Option<String>,
    /// The repository's tags, when they were listed (a `docker://` image).
    pub repository_tags: Option<Vec<String>>,
}

/// All assessments of one image: what `strata check --json` prints. The field names and order are stable
/// (docs/FORMAT.md, "JSON outputs").
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckReport {
    /// The image, as it was named when opened.
    pub image: String,
    /// Whether no assessment failed (`unknown` ones do not fail the verdict but are counted).
    pub passed: bool,
    /// How many assessments failed.
    pub failed: usize,
    /// How many could not be decided.
    pub unknown: usize,
    /// Every assessment, in [`assess`]'s stable order.
    pub assessments: Vec<Assessment>,
    /// The Container Health Index grade.
    pub health_index: HealthIndex,
    /// The distribution detected, or `None` (JSON `null`).
    pub distribution: Option<OsInfo>,
    /// The package verification's report (every failure), or `None` when it did not run.
    pub verification: Option<VerifyReport>,
    /// The image matched against an advisory feed (every finding), or `None` without a feed.
    pub advisories: Option<strata_advisory::Assessment>,
}

impl CheckReport {
    /// The report of `assessments` (verdict and counts computed).
    pub fn new(
        image: String,
        assessments: Vec<Assessment>,
        health_index: HealthIndex,
        distribution: Option<OsInfo>,
        verification: Option<VerifyReport>,
    ) -> CheckReport {
        let failed = assessments
            .iter()
            .filter(|a| a.result == Status::Fail)
            .count();
        let unknown = assessments
            .iter()
            .filter(|a| a.result == Status::Unknown)
            .count();
        CheckReport {
            image,
            passed: failed == 0,
            failed,
            unknown,
            assessments,
            health_index,
            distribution,
            verification,
            advisories: None,
        }
    }
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
    /// The distribution, when detected (os-release first).
    pub os: Option<OsInfo>,
    /// The first line of `/etc/redhat-release`, when the image has one.
    pub redhat_release: Option<String>,
    /// The `VENDOR` of each installed rpm (empty strings for none).
    pub rpm_vendors: Vec<String>,
    /// The outcome of reading the package list.
    pub packages: PackageList,
    /// The outcome of verifying the packages' files.
    pub verification: Verification,
    /// The image's tags.
    pub tags: Tags,
    /// `free_of_critical_vulnerabilities` as an advisory feed decided it; `None`: unknown, no feed.
    pub vulnerabilities: Option<Decision>,
}

/// The labels that can ask a runtime for privileges: atomic's `RUN` label (any case) and `usage`.
const RUN_LABELS: [&str; 2] = ["run", "usage"];

/// Runs every assessment, in the stable order of [`ASSESSMENTS`].
pub fn assess(input: &CheckInput) -> Vec<Assessment> {
    let mut out = vec![
        has_licenses(input),
        not_running_privileged(input),
        rpm_list(input),
        rpm_verify(input),
        is_rhel(input),
        label(input, "vendor_label_exists", "vendor"),
        match &input.vulnerabilities {
            Some(d) => Assessment::new(
                "free_of_critical_vulnerabilities",
                d.result,
                d.reason.clone(),
            ),
            None => Assessment::unknown("free_of_critical_vulnerabilities", NO_ADVISORY_FEED),
        },
        good_tags(&input.tags),
        good_layer_count(input),
        label(input, "release_label_exists", "release"),
        not_running_as_root(input),
        label(input, "version_label_exists", "version"),
        label(input, "name_label_exists", "name"),
    ];
    for (name, l) in [
        ("maintainer_label_exists", "maintainer"),
        ("summary_label_exists", "summary"),
        ("description_label_exists", "description"),
    ] {
        out.push(label(input, name, l));
    }
    out
}

fn has_licenses(input: &CheckInput) -> Assessment {
    const NAME: &str = "has_licenses";
    match &input.license_files {
        Some(files) if !files.is_empty() => {
            Assessment::pass(NAME, format!("/licenses holds {} file(s)", files.len()))
        }
        Some(_) => Assessment::fail(NAME, "/licenses holds no file"),
        None => Assessment::fail(NAME, "the image has no /licenses directory"),
    }
}

fn not_running_privileged(input: &CheckInput) -> Assessment {
    const NAME: &str = "not_running_privileged";
    for (key, value) in &input.labels {
        if !RUN_LABELS.iter().any(|l| key.eq_ignore_ascii_case(l)) {
            continue;
        }
        if value
            .split_whitespace()
            .any(|w| w == "--privileged" || w == "--privileged=true")
        {
            return Assessment::fail(
                NAME,
                format!("the {key} label asks for --privileged: {value:?}"),
            );
        }
    }
    Assessment::pass(
        NAME,
        "no RUN or usage label asks for --privileged (all an image can state: privileges are granted \
         when the container is run)",
    )
}

fn rpm_list(input: &CheckInput) -> Assessment {
    use crate::packages::Manager;
    const NAME: &str = "rpm_list_successful";
    match &input.packages {
        PackageList::Read(Manager::Rpm, n) => {
            Assessment::pass(NAME, format!("the rpm database lists {n} packages"))
        }
        PackageList::Read(manager, n) => Assessment::pass(
            NAME,
            format!(
                "no rpm database; answered from {}: its database lists {n} packages",
                manager_name(*manager)
            ),
        ),
        PackageList::NoDatabase => Assessment::unknown(
            NAME,
            "no package database (rpm, dpkg or apk) in the image: no package list to read",
        ),
        PackageList::Failed(e) => Assessment::fail(NAME, e.clone()),
    }
}

fn manager_name(manager: crate::packages::Manager) -> &'static str {
    use crate::packages::Manager;
    match manager {
        Manager::Rpm => "rpm",
        Manager::Dpkg => "dpkg",
        Manager::Apk => "apk",
    }
}

/// How many failures a reason names before `…`.
const FAILURES_NAMED: usize = 3;

fn rpm_verify(input: &CheckInput) -> Assessment {
    const NAME: &str = "rpm_verify_successful";
    match &input.verification {
        Verification::Done(report) => {
            let managers: Vec<&str> = report.managers.iter().map(|m| manager_name(*m)).collect();
            let from = if report.managers.contains(&crate::packages::Manager::Rpm) {
                String::new()
            } else {
                format!(" (no rpm database; answered from {})", managers.join(", "))
            };
            if report.failures.is_empty() {
                return Assessment::pass(
                    NAME,
                    format!(
                        "{} files of {} packages match the {} database{from}",
                        report.files,
                        report.packages,
                        managers.join(" and ")
                    ),
                );
            }
            let mut named: Vec<String> = report
                .failures
                .iter()
                .take(FAILURES_NAMED)
                .map(|f| format!("{} {} ({})", f.result, f.path, f.package))
                .collect();
            if report.failures.len() > FAILURES_NAMED {
                named.push("…".to_owned());
            }
            Assessment::fail(
                NAME,
                format!(
                    "{} of {} packaged files differ{from}: {}",
                    report.failures.len(),
                    report.files,
                    named.join(", ")
                ),
            )
        }
        Verification::NotRun => Assessment::unknown(
            NAME,
            "package verification was not run (--no-verify-packages)",
        ),
        Verification::NoDatabase => Assessment::unknown(
            NAME,
            "no package database (rpm, dpkg or apk) in the image: nothing to verify",
        ),
        Verification::Failed(e) => Assessment::fail(NAME, e.clone()),
    }
}

/// The vendor Red Hat's rpms carry.
pub const RED_HAT_VENDOR: &str = "Red Hat, Inc.";

fn is_rhel(input: &CheckInput) -> Assessment {
    const NAME: &str = "is_rhel";
    let rh_rpms = input
        .rpm_vendors
        .iter()
        .filter(|v| v.as_str() == RED_HAT_VENDOR)
        .count();
    let rpms = if input.rpm_vendors.is_empty() {
        "no rpm installed".to_owned()
    } else {
        format!(
            "{rh_rpms} of {} installed rpms are from {RED_HAT_VENDOR:?}",
            input.rpm_vendors.len()
        )
    };
    if let Some(os) = input
        .os
        .as_ref()
        .filter(|o| o.source.ends_with("os-release"))
    {
        if os.is_rhel() {
            let variant = if os.variant.is_empty() {
                String::new()
            } else {
                format!(", VARIANT={:?}", os.variant)
            };
            return Assessment::pass(
                NAME,
                format!(
                    "ID=rhel, NAME={:?}{variant} in {}; {rpms}",
                    os.name, os.source
                ),
            );
        }
        return Assessment::fail(NAME, format!("{} says ID={:?}, not rhel", os.source, os.id));
    }
    if let Some(release) = &input.redhat_release {
        if crate::os::parse_redhat_release(release, "/etc/redhat-release").is_rhel() {
            return Assessment::pass(NAME, format!("/etc/redhat-release: {release:?}; {rpms}"));
        }
        return Assessment::fail(NAME, format!("/etc/redhat-release: {release:?}"));
    }
    if !input.rpm_vendors.is_empty() && rh_rpms * 2 > input.rpm_vendors.len() {
        return Assessment::pass(NAME, format!("no os-release or redhat-release; {rpms}"));
    }
    match &input.os {
        Some(os) => Assessment::fail(NAME, format!("{} says {:?}", os.source, os.id)),
        None if input.rpm_vendors.is_empty() => Assessment::fail(
            NAME,
            "nothing in the image says Red Hat Enterprise Linux: no os-release, no redhat-release, no rpm",
        ),
        None => Assessment::fail(NAME, format!("no os-release or redhat-release; {rpms}")),
    }
}

fn good_tags(tags: &Tags) -> Assessment {
    const NAME: &str = "good_tags";
    if let Some(tag) = tags.reference_tag.as_deref().filter(|t| *t != "latest") {
        return Assessment::pass(NAME, format!("referenced by tag {tag:?}"));
    }
    if let Some(list) = &tags.repository_tags {
        let others: Vec<&str> = list
            .iter()
            .map(String::as_str)
            .filter(|t| *t != "latest")
            .collect();
        if let Some(first) = others.first() {
            return Assessment::pass(
                NAME,
                format!(
                    "the repository has {} tag(s) other than latest, e.g. {first:?}",
                    others.len()
                ),
            );
        }
        return Assessment::fail(
            NAME,
            "the repository has no tag other than latest".to_owned(),
        );
    }
    match tags.reference_tag.as_deref() {
        Some(_) => Assessment::fail(
            NAME,
            "referenced only as latest, and no repository tag list to look at",
        ),
        None => Assessment::unknown(
            NAME,
            "the reference has no tag and there is no repository tag list to look at",
        ),
    }
}

fn good_layer_count(input: &CheckInput) -> Assessment {
    let reason = format!("{} layers (at most {MAX_LAYERS})", input.layer_count);
    if input.layer_count <= MAX_LAYERS {
        Assessment::pass("good_layer_count", reason)
    } else {
        Assessment::fail("good_layer_count", reason)
    }
}

fn not_running_as_root(input: &CheckInput) -> Assessment {
    const NAME: &str = "not_running_as_root";
    match input.user.as_deref().map(str::trim) {
        None | Some("") => Assessment::fail(
            NAME,
            "the config sets no User, so the container runs as root",
        ),
        Some(user) => {
            let who = user.split(':').next().unwrap_or(user);
            if who == "0" || who == "root" {
                Assessment::fail(NAME, format!("User is {user:?}"))
            } else {
                Assessment::pass(NAME, format!("User is {user:?}"))
            }
        }
    }
}

fn label(input: &CheckInput, name: &str, label: &str) -> Assessment {
    match input.labels.get(label) {
        Some(v) if !v.trim().is_empty() => Assessment::pass(name, format!("{label}={v:?}")),
        Some(_) => Assessment::fail(name, format!("label {label:?} is empty")),
        None => Assessment::fail(name, format!("no {label:?} label")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packages::Manager;

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
                "ID=\"rhel\"\nNAME=\"Red Hat Enterprise Linux\"\nVERSION_ID=9.3\n",
                "/etc/os-release",
            )),
            redhat_release: None,
            rpm_vendors: vec![RED_HAT_VENDOR.into(); 3],
            packages: PackageList::Read(Manager::Rpm, 3),
            verification: Verification::Done(VerifyReport {
                managers: vec![Manager::Rpm],
                packages: 3,
                files: 10,
                failures: Vec::new(),
            }),
            tags: Tags {
                reference_tag: Some("9.3-1".into()),
                repository_tags: None,
            },
            vulnerabilities: Some(Decision {
                result: Status::Pass,
                reason: "no critical advisory applies".into(),
            }),
        }
    }

    #[test]
    fn compliant_passes_everything_in_the_scans_order() {
        let all = assess(&compliant());
        let names: Vec<&str> = all.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ASSESSMENTS);
        assert!(all.iter().all(Assessment::passed), "{all:#?}");
    }

    #[test]
    fn undecidable_is_unknown_not_pass() {
        let mut input = compliant();
        input.packages = PackageList::NoDatabase;
        input.verification = Verification::NotRun;
        input.vulnerabilities = None;
        input.tags = Tags::default();
        let all = assess(&input);
        let unknown: Vec<&str> = all
            .iter()
            .filter(|a| a.result == Status::Unknown)
            .map(|a| a.name.as_str())
            .collect();
        assert_eq!(
            unknown,
            [
                "rpm_list_successful",
                "rpm_verify_successful",
                "free_of_critical_vulnerabilities",
                "good_tags"
            ]
        );
        let report = CheckReport::new(
            "x".into(),
            all,
            HealthIndex {
                grade: "unknown".into(),
                reason: NO_ADVISORY_FEED.into(),
            },
            None,
            None,
        );
        assert!(report.passed);
        assert_eq!((report.failed, report.unknown), (0, 4));
    }

    #[test]
    fn is_rhel_sources() {
        let mut input = compliant();
        input.os = Some(crate::os::parse_os_release(
            "ID=rhel\nNAME=\"Red Hat Enterprise Linux\"\nVARIANT=\"Server\"\n",
            "/etc/os-release",
        ));
        let with_variant = is_rhel(&input);
        assert!(with_variant.passed(), "{with_variant:?}");
        assert!(
            with_variant.reason.contains("VARIANT=\"Server\"")
                && with_variant.reason.contains("3 of 3"),
            "{with_variant:?}"
        );
        input.os = None;
        input.redhat_release = Some("Red Hat Enterprise Linux release 9.3 (Plow)".into());
        assert!(is_rhel(&input).reason.contains("/etc/redhat-release"));
        assert!(is_rhel(&input).passed());
        input.redhat_release = None;
        let by_vendor = is_rhel(&input);
        assert!(
            by_vendor.passed() && by_vendor.reason.contains("3 of 3"),
            "{by_vendor:?}"
        );
        input.rpm_vendors = vec!["Fedora Project".into()];
        assert_eq!(is_rhel(&input).result, Status::Fail);
        input.os = Some(crate::os::parse_os_release(
            "ID=debian\n",
            "/etc/os-release",
        ));
        assert_eq!(is_rhel(&input).result, Status::Fail);
    }

    #[test]
    fn tags() {
        let t = |reference: Option<&str>, list: Option<&[&str]>| {
            good_tags(&Tags {
                reference_tag: reference.map(str::to_owned),
                repository_tags: list.map(|l| l.iter().map(|s| (*s).to_owned()).collect()),
            })
            .result
        };
        assert_eq!(t(Some("1.0"), None), Status::Pass);
        assert_eq!(t(Some("latest"), None), Status::Fail);
        assert_eq!(t(Some("latest"), Some(&["latest", "1.0"])), Status::Pass);
        assert_eq!(t(None, Some(&["latest"])), Status::Fail);
        assert_eq!(t(None, None), Status::Unknown);
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
        bad.os = Some(crate::os::parse_os_release(
            "ID=debian\n",
            "/etc/os-release",
        ));
        bad.packages = PackageList::Failed("a BerkeleyDB database".into());
        let failed: Vec<String> = assess(&bad)
            .into_iter()
            .filter(|a| a.result == Status::Fail)
            .map(|a| a.name)
            .collect();
        assert_eq!(
            failed,
            [
                "has_licenses",
                "not_running_privileged",
                "rpm_list_successful",
                "is_rhel",
                "vendor_label_exists",
                "good_layer_count",
                "not_running_as_root",
            ]
        );
    }
}
