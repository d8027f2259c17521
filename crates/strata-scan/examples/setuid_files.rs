//! Every setuid or setgid file of an image, with its mode and owner.
//!
//! ```sh
//! cargo run -q -p strata-scan --example setuid_files -- oci-archive:samples/sample.tar [OS/ARCH]
//! ```

// An example program: it prints its results.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;

use strata_oci::Platform;
use strata_scan::{Kind, ScanImage};

fn platform(arg: Option<&str>) -> Platform {
    match arg.and_then(|p| p.split_once('/')) {
        Some((os, arch)) => Platform::new(os, arch, None),
        None => Platform::host(),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let Some(name) = args.get(1) else {
        eprintln!("usage: setuid_files IMAGE [OS/ARCH]");
        return ExitCode::from(2);
    };
    let result = (|| -> strata_scan::Result<()> {
        let image = ScanImage::open(name, &platform(args.get(2).map(String::as_str)))?;
        for entry in image.entries() {
            let entry = entry?;
            if entry.kind == Kind::File && entry.mode & 0o6000 != 0 {
                let what = match entry.mode & 0o6000 {
                    0o6000 => "setuid+setgid",
                    0o4000 => "setuid",
                    _ => "setgid",
                };
                println!(
                    "{:04o} {}:{} {:<13} {} (layer {})",
                    entry.mode & 0o7777,
                    entry.uid,
                    entry.gid,
                    what,
                    entry.path_lossy(),
                    entry.layer
                );
            }
        }
        Ok(())
    })();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("setuid_files: {e}");
            ExitCode::FAILURE
        }
    }
}
