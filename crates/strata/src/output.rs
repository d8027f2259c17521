//! Rendering: JSON the way skopeo prints it, raw bytes, and one-line errors.

use std::io::{self, Write};

use serde::Serialize;

/// Writes `value` as JSON indented by four spaces, as skopeo does, with a final newline.
pub fn print_json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(
        &mut out,
        serde_json::ser::PrettyFormatter::with_indent(b"    "),
    );
    value.serialize(&mut ser)?;
    out.push(b'\n');
    print_raw(&out)
}

/// Writes bytes to stdout unchanged.
pub fn print_raw(bytes: &[u8]) -> anyhow::Result<()> {
    let mut stdout = io::stdout().lock();
    stdout.write_all(bytes)?;
    stdout.flush()?;
    Ok(())
}

/// Whether the error is stdout closing under us (`strata … | head`), which is not a failure.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// Exit status when a command ran to its end and found something wrong with what it looked at (a failed
/// assessment, images that differ, a rejected verification).
pub const EXIT_FINDINGS: u8 = 1;
/// Exit status of an error: the command could not do what was asked (clap's usage errors exit 2 too).
pub const EXIT_ERROR: u8 = 2;

/// What a command found, as opposed to an error it met: returned as the command's error, it makes `strata`
/// print `strata: MESSAGE` (no `error:`) and exit with [`EXIT_FINDINGS`], after the command printed its
/// report.
#[derive(Debug)]
pub struct Findings(pub String);

impl std::fmt::Display for Findings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Findings {}

/// Prints what a command found on stderr: `strata: …` on one line.
pub fn print_findings(findings: &Findings) {
    let _ = writeln!(io::stderr(), "strata: {}", findings.0.replace('\n', " "));
}

/// Prints `strata: error: …` on one line: the error and those of its causes that add something.
pub fn print_error(e: &anyhow::Error) {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !line.contains(&text) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&text);
        }
    }
    let line = line.replace('\n', " ");
    let _ = writeln!(io::stderr(), "strata: error: {line}");
}

/// A byte count for people: `1.5 KiB`, `230.0 MiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
