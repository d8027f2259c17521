//! The packages installed in an image (dpkg, apk or rpm), with its distribution.
//!
//! ```sh
//! cargo run -q -p strata-scan --example package_list -- oci-archive:samples/sample.tar [OS/ARCH]
//! ```
//!
//! An image without any package database (like the sample) is reported as such, and is not an error.

// An example program: it prints its results.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;

use strata_oci::Platform;
use strata_scan::packages::PackageError;
use strata_scan::{Error, ScanImage};

fn platform(arg: Option<&str>) -> Platform {
    match arg.and_then(|p| p.split_once('/')) {
        Some((os, arch)) => Platform::new(os, arch, None),
        None => Platform::host(),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let Some(name) = args.get(1) else {
        eprintln!("usage: package_list IMAGE [OS/ARCH]");
        return ExitCode::from(2);
    };
    let result = (|| -> strata_scan::Result<()> {
        let image = ScanImage::open(name, &platform(args.get(2).map(String::as_str)))?;
        match image.os()? {
            Some(os) => println!("# {} (from {})", os.pretty_name, os.source),
            None => println!("# distribution not detected"),
        }
        match image.packages() {
            Ok(packages) => {
                for p in &packages {
                    println!("{}\t{}\t{}", p.name, p.version, p.architecture);
                }
                println!("# {} packages", packages.len());
                Ok(())
            }
            Err(Error::Packages(PackageError::NoDatabase { .. })) => {
                println!("# no package database (dpkg, apk, rpm) in this image");
                Ok(())
            }
            Err(e) => Err(e),
        }
    })();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("package_list: {e}");
            ExitCode::FAILURE
        }
    }
}
