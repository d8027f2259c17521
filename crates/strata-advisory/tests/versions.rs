//! The three version orderings against their references: `dpkg --compare-versions` and rpm's own
//! `rpm.labelCompare` (Debian's python3-rpm) on generated tables, each peer run once for its whole table,
//! and apk-tools' own expectations (tests/data/apk-version.data, from its repository).
//!
//! A missing peer skips its test with a message, and fails it under `CI=true`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]

use std::cmp::Ordering;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use strata_advisory::{apk, dpkg, rpm};

/// Whether `program` can run; otherwise skip with a message, or fail under CI.
fn peer(program: &str, probe: &[&str]) -> bool {
    let ok = Command::new(program)
        .args(probe)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("peer {program} {probe:?} is missing under CI=true (tools/test.sh installs it)");
        }
        eprintln!("SKIP: peer {program} {probe:?} is not available");
    }
    ok
}

/// A deterministic pseudo-random sequence (an LCG), so the tables are the same on every run.
struct Lcg(u64);
impl Lcg {
    fn pick(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

/// Pairs from every combination of the parts: each version with a random other, and with a near one
/// (one part changed), plus the given hand-made pairs.
fn table(versions: &[String], extra: &[(&str, &str)], seed: u64) -> Vec<(String, String)> {
    let mut rng = Lcg(seed);
    let mut pairs: Vec<(String, String)> = extra
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect();
    for (i, v) in versions.iter().enumerate() {
        pairs.push((v.clone(), versions[rng.pick(versions.len())].clone()));
        let near = (i + 1 + rng.pick(6)).min(versions.len() - 1);
        pairs.push((v.clone(), versions[near].clone()));
    }
    pairs
}

fn dpkg_versions() -> Vec<String> {
    let epochs = ["", "0:", "1:", "2:"];
    let upstreams = [
        "1.0",
        "1.0~rc1",
        "1.0~",
        "1.0~~",
        "1.0a",
        "1.0+",
        "1.0.a",
        "1.0.1",
        "1.00",
        "1.0+dfsg",
        "1.0+b1",
        "1.0-alpha",
        "1.0.0",
        "2",
        "10",
        "1:2",
        "1.0~rc1+git",
        "1.a",
        "1..0",
        "01.0",
    ];
    let revisions = [
        "",
        "-0",
        "-1",
        "-1ubuntu1",
        "-1+deb12u1",
        "-1~bpo12+1",
        "-1.1",
        "-a",
        "-10",
    ];
    let mut out = Vec::new();
    for e in epochs {
        for u in upstreams {
            for r in revisions {
                // An upstream with ':' or '-' needs an epoch / a revision to be itself.
                if (u.contains(':') && e.is_empty()) || (u.contains('-') && r.is_empty()) {
                    continue;
                }
                out.push(format!("{e}{u}{r}"));
            }
        }
    }
    out
}

#[test]
fn dpkg_agrees_with_dpkg_compare_versions() {
    if !peer("dpkg", &["--version"]) {
        return;
    }
    let versions = dpkg_versions();
    let extra = [
        ("1.0", "1.0-0"),
        ("0:1.0", "1.0"),
        ("1.0~", "1.0"),
        ("1.0~~", "1.0~"),
        ("1.0~~a", "1.0~~"),
        ("1.0a", "1.0+"),
        ("1.0", "1.0a"),
        ("1.0.", "1.0"),
        ("1.0+", "1.0."),
        ("1:0.1", "9.9"),
        ("1.2.3-4-5", "1.2.3-4"),
        ("2:1.0", "10:0.1"),
    ];
    let pairs = table(&versions, &extra, 17);
    assert!(pairs.len() >= 200, "{} pairs", pairs.len());
    // One shell runs dpkg for every pair; versions are made of [A-Za-z0-9.+~:-] only, safe in quotes.
    let mut script = String::new();
    for (a, b) in &pairs {
        script.push_str(&format!(
            "if dpkg --compare-versions '{a}' lt '{b}'; then echo '<'; \
             elif dpkg --compare-versions '{a}' eq '{b}'; then echo '='; else echo '>'; fi\n"
        ));
    }
    let peer = run("sh", &[], &script);
    let answers: Vec<Ordering> = peer.lines().map(symbol).collect();
    agree("dpkg --compare-versions", &pairs, &answers, |a, b| {
        dpkg::compare(a, b).unwrap_or_else(|e| panic!("{a} vs {b}: {e}"))
    });
}

/// Asserts that `ours` gives the peer's answer for every pair and that the table has enough of each
/// answer; says how many.
fn agree(
    peer: &str,
    pairs: &[(String, String)],
    answers: &[Ordering],
    ours: impl Fn(&str, &str) -> Ordering,
) {
    assert_eq!(answers.len(), pairs.len(), "{peer} answered every pair");
    let mut counts = [0usize; 3];
    for ((a, b), theirs) in pairs.iter().zip(answers) {
        let ours = ours(a, b);
        assert_eq!(ours, *theirs, "{peer} {a} {b}");
        counts[(ours as i8 + 1) as usize] += 1;
    }
    eprintln!(
        "{peer}: {} pairs agree (< {}, = {}, > {})",
        pairs.len(),
        counts[0],
        counts[1],
        counts[2]
    );
    assert!(
        counts.iter().all(|&c| c >= 10),
        "a lopsided table: {counts:?}"
    );
}

#[test]
fn dpkg_refuses_malformed_versions() {
    for bad in [
        "",
        " ",
        "1.0 1",
        ":1.0",
        "a:1.0",
        "1:",
        "1.0-",
        "-1",
        "a1.0",
        "1.0_1",
        "1.0-1_1",
        "99999999999:1",
    ] {
        let err = dpkg::Version::parse(bad).unwrap_err();
        assert_eq!(err.version, bad);
        assert_eq!(err.scheme, "dpkg");
    }
}

/// (epoch, version, release) for rpm.
fn rpm_versions() -> Vec<(Option<&'static str>, &'static str, Option<&'static str>)> {
    let epochs = [None, Some("0"), Some("1"), Some("2")];
    let versions = [
        "1.0",
        "1.0~rc1",
        "1.0~",
        "1.0^",
        "1.0^git1",
        "1.0^git1~pre",
        "1.0a",
        "1.0.a",
        "1.a0",
        "1.0.1",
        "1.01",
        "1_0",
        "1.0+git",
        "2.0",
        "10",
        "a",
        "1.0b",
        "1.0.0",
        "1..0",
        "00010",
    ];
    let releases = [
        None,
        Some("1"),
        Some("1.el9"),
        Some("1.el9_2"),
        Some("2.fc40"),
        Some("0.1.rc1"),
        Some("1~beta"),
        Some("1^post"),
    ];
    let mut out = Vec::new();
    for e in epochs {
        for v in versions {
            for r in releases {
                out.push((e, v, r));
            }
        }
    }
    out
}

fn rpm_string(e: Option<&str>, v: &str, r: Option<&str>) -> String {
    let mut s = String::new();
    if let Some(e) = e {
        s.push_str(e);
        s.push(':');
    }
    s.push_str(v);
    if let Some(r) = r {
        s.push('-');
        s.push_str(r);
    }
    s
}

#[test]
fn rpm_agrees_with_rpm_label_compare() {
    let python = "/usr/bin/python3";
    if !peer(python, &["-c", "import rpm"]) {
        return;
    }
    let evrs = rpm_versions();
    let strings: Vec<String> = evrs.iter().map(|(e, v, r)| rpm_string(*e, v, *r)).collect();
    let extra = [
        ("1.0~rc1-1", "1.0-1"),
        ("1.0^git1-1", "1.0-1"),
        ("1.0^git1-1", "1.0.1-1"),
        ("1.0a-1", "1.0.1-1"),
        ("1.0-1", "1.0"),
        ("0:1.0-1", "1.0-1"),
        ("1.01-1", "1.1-1"),
        ("1.0-1.el9", "1.0-1.el9_2"),
        ("2.0-1", "10-1"),
        ("a-1", "1-1"),
    ];
    let mut pairs = table(&strings, &extra, 23);
    // Equal by rpm's rules though written differently: a missing epoch and `0:`, leading zeros, separators.
    for (v, w) in [
        ("1.0", "1..0"),
        ("1.01", "1.1"),
        ("1_0", "1.0"),
        ("00010", "10"),
        ("1.0+git", "1.0.git"),
    ] {
        for r in ["1", "1.el9", "0.1.rc1"] {
            pairs.push((format!("{v}-{r}"), format!("0:{w}-{r}")));
        }
    }
    assert!(pairs.len() >= 200, "{} pairs", pairs.len());
    let parsed: Vec<(rpm::Version, rpm::Version)> = pairs
        .iter()
        .map(|(a, b)| {
            (
                rpm::Version::parse(a).unwrap(),
                rpm::Version::parse(b).unwrap(),
            )
        })
        .collect();
    // One python process compares every pair; its input is a JSON list of [[e,v,r],[e,v,r]].
    let input = serde_json::to_string(
        &parsed
            .iter()
            .map(|(a, b)| [a, b].map(|x| serde_json::json!([x.epoch(), x.version(), x.release()])))
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let program = "import json, sys, rpm\n\
                   for a, b in json.load(sys.stdin):\n    print(rpm.labelCompare(tuple(a), tuple(b)))\n";
    let peer = run(python, &["-c", program], &input);
    let answers: Vec<Ordering> = peer
        .lines()
        .map(|l| l.trim().parse::<i32>().unwrap().cmp(&0))
        .collect();
    agree("rpm.labelCompare", &pairs, &answers, |a, b| {
        rpm::compare(a, b).unwrap()
    });
}

#[test]
fn rpm_refuses_malformed_versions() {
    for bad in ["", "a:1.0", ":1.0", "1.0-", "1.0 1", "1.0/1", "1:-1", "-1"] {
        let err = rpm::Version::parse(bad).unwrap_err();
        assert_eq!(err.version, bad);
    }
}

#[test]
fn apk_agrees_with_apk_tools_test_data() {
    let data = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/apk-version.data"),
    )
    .unwrap();
    let (mut compared, mut validity) = (0, 0);
    for line in data.lines() {
        let line = line.split('#').next().unwrap().trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(' ').collect();
        match fields.as_slice() {
            [a, op, b] => {
                let (invert, op) = match op.strip_prefix('!') {
                    Some(op) => (true, op),
                    None => (false, *op),
                };
                let fuzzy = op.contains('~');
                let got = if fuzzy {
                    apk::compare_fuzzy(a, b)
                } else {
                    apk::compare_str(a, b)
                };
                let accepts = |o: Ordering| match o {
                    Ordering::Less => op.contains('<'),
                    Ordering::Greater => op.contains('>'),
                    Ordering::Equal => op.contains('=') || op.contains('~'),
                };
                assert!(accepts(got) != invert, "apk: {line} (got {got:?})");
                // Where both are valid, the parsed types agree with the total comparison.
                if !fuzzy && let (Ok(x), Ok(y)) = (apk::Version::parse(a), apk::Version::parse(b)) {
                    assert_eq!(x.cmp(&y), got, "{line}");
                }
                compared += 1;
            }
            [v] => {
                let (valid, v) = match v.strip_prefix('!') {
                    Some(v) => (false, v),
                    None => (true, *v),
                };
                assert_eq!(
                    apk::Version::parse(v).is_ok(),
                    valid,
                    "apk validity: {line}"
                );
                validity += 1;
            }
            _ => panic!("unexpected line {line:?}"),
        }
    }
    eprintln!("apk: {compared} comparisons and {validity} validity lines agree");
    assert!(compared >= 200);
}

fn symbol(s: &str) -> Ordering {
    match s.trim() {
        "<" => Ordering::Less,
        "=" => Ordering::Equal,
        ">" => Ordering::Greater,
        other => panic!("unexpected peer output {other:?}"),
    }
}

/// Runs `program` once with `input` on stdin; its stdout.
fn run(program: &str, args: &[&str], input: &str) -> String {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{program} failed");
    String::from_utf8(out.stdout).unwrap()
}

/// Arbitrary strings over the characters versions are made of (and some they are not) never panic a parser
/// or a comparison; what parses shows as written and equals itself.
#[test]
fn arbitrary_strings_never_panic() {
    let alphabet: Vec<char> = "0123456789.~^-+:_abcprgithvsxzA é\t".chars().collect();
    let mut rng = Lcg(99);
    let mut parsed = [0usize; 3];
    for _ in 0..20_000 {
        let len = rng.pick(12);
        let a: String = (0..len)
            .map(|_| alphabet[rng.pick(alphabet.len())])
            .collect();
        let b: String = (0..rng.pick(12))
            .map(|_| alphabet[rng.pick(alphabet.len())])
            .collect();
        let _ = apk::compare_str(&a, &b);
        let _ = apk::compare_fuzzy(&a, &b);
        let _ = rpm::rpmvercmp(&a, &b);
        for (i, scheme) in [
            strata_advisory::Scheme::Dpkg,
            strata_advisory::Scheme::Rpm,
            strata_advisory::Scheme::Apk,
        ]
        .into_iter()
        .enumerate()
        {
            if let Ok(v) = scheme.parse(&a) {
                parsed[i] += 1;
                assert_eq!(v.cmp(&v), Ordering::Equal);
                assert_eq!(scheme.parse(&v.to_string()).unwrap(), v, "{a:?}");
                let _ = scheme.compare(&a, &b);
            }
        }
    }
    assert!(
        parsed.iter().all(|&n| n > 100),
        "too few valid strings: {parsed:?}"
    );
}
