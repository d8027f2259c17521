//! The command line's own documentation: man pages and shell completions generated from its definitions,
//! one man page per verb `strata --help` lists.

// Test code: a failed step should abort the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use strata_tests::{strata, strata_ok};

#[test]
fn man_pages_cover_every_verb() {
    let dir = tempfile::tempdir().unwrap();
    strata_ok(["man".as_ref(), dir.path().as_os_str()]);
    let help = String::from_utf8(strata_ok(["--help"])).unwrap();
    let verbs: Vec<&str> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|v| *v != "help")
        .collect();
    assert!(verbs.len() > 15, "{help}");
    for verb in verbs {
        let page = std::fs::read_to_string(dir.path().join(format!("strata-{verb}.1")))
            .unwrap_or_else(|e| panic!("strata-{verb}.1: {e}"));
        assert!(page.contains(".TH"), "strata-{verb}.1 is a man page");
    }
    let top = std::fs::read_to_string(dir.path().join("strata.1")).unwrap();
    assert!(top.contains("strata\\-ls"), "strata.1 names the verbs");
}

#[test]
fn completions_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let out = String::from_utf8(strata_ok(["completions", shell])).unwrap();
        assert!(out.contains("strata"), "{shell}: {out}");
        assert!(out.contains("unpack"), "{shell} completes verbs");
    }
    let bad = strata(["completions", "cmd.exe"]);
    assert_eq!(
        bad.status.code(),
        Some(2),
        "an unknown shell is a usage error"
    );
}
