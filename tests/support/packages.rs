//! Images with package databases made by the real tools: umoci images to fill, and rpm packages built with
//! rpmbuild and installed into an sqlite rpm database (tests/scan.rs, tests/sbom.rs).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::rich::umoci_unpack;
use crate::{run, umoci};

/// A new umoci image `tag` in `layout` (created if needed), unpacked into a fresh bundle: returns the image
/// reference for umoci (`LAYOUT:TAG`) and the bundle.
pub fn new_image(layout: &Path, tag: &str) -> (String, PathBuf) {
    let image = format!("{}:{tag}", layout.display());
    if !layout.join("index.json").exists() {
        umoci(["init".as_ref(), "--layout".as_ref(), layout.as_os_str()]);
    }
    umoci(["new", "--image", &image]);
    let bundle = layout.with_file_name(format!("bundle-{tag}"));
    umoci_unpack(&image, &bundle);
    (image, bundle)
}

/// An apk installed database as Alpine 3.19 writes it: musl, busybox and alpine-baselayout-data.
pub const APK_INSTALLED: &str = "C:Q1Fq0sEXjFZ0Y3oCqCb4fU8OYfYQ0=\nP:musl\nV:1.2.4_git20230717-r4\nA:x86_64\nS:407278\n\
    I:663552\nT:the musl c library (libc) implementation\nU:https://musl.libc.org/\nL:MIT\no:musl\n\
    m:Timo Teras <timo.teras@iki.fi>\nt:1705424565\nc:1ba9ad7ba6b2ed6ba4ac1fe4e1dbeb5a76df0b6e\n\
    F:lib\nR:ld-musl-x86_64.so.1\na:0:0:755\nZ:Q1xiR2Wy3C5shv+8g7H4HZ0z5t9M0=\n\n\
    C:Q1CnFCUKr8dVd7PYT1qmD4OATpHTo=\nP:busybox\nV:1.36.1-r15\nA:x86_64\nS:509626\nI:946176\n\
    T:Size optimized toolbox of many common UNIX utilities\nU:https://busybox.net/\nL:GPL-2.0-only\n\
    o:busybox\nD:so:libc.musl-x86_64.so.1\nF:bin\nR:busybox\n\n\
    C:Q1QoNd6Smm1fRr1ZrQ0GZm4cxjWgI=\nP:alpine-baselayout-data\nV:3.4.3-r2\nA:x86_64\nL:GPL-2.0-only\n\
    o:alpine-baselayout\nF:etc\nR:hosts\n\n";

/// The spec of the test rpm packages: NAME, VERSION, RELEASE and EPOCH_LINE are replaced.
pub const RPM_SPEC: &str = "Name: NAME
Version: VERSION
Release: RELEASE
EPOCH_LINE
Summary: a strata test package
License: MIT
BuildArch: noarch
%description
A package built by strata's tests.
%install
mkdir -p %{buildroot}/usr/share/NAME
echo NAME > %{buildroot}/usr/share/NAME/README
%files
/usr/share/NAME/README
";

/// `rpm` on the sqlite database in `dbpath`.
pub fn rpm_cmd(dbpath: &Path) -> Command {
    let mut cmd = Command::new("rpm");
    cmd.arg("--dbpath")
        .arg(dbpath)
        .args(["--define", "_db_backend sqlite"]);
    cmd
}

/// Builds one noarch rpm per `(name, version, release, epoch)` with rpmbuild under `work`, and returns
/// their paths.
pub fn build_rpms(work: &Path, packages: &[(&str, &str, &str, Option<u32>)]) -> Vec<PathBuf> {
    let top = work.join("rpmbuild");
    for (name, version, release, epoch) in packages {
        let spec = RPM_SPEC
            .replace("NAME", name)
            .replace("VERSION", version)
            .replace("RELEASE", release)
            .replace(
                "EPOCH_LINE",
                &epoch.map(|e| format!("Epoch: {e}")).unwrap_or_default(),
            );
        let spec_path = work.join(format!("{name}.spec"));
        fs::write(&spec_path, spec).unwrap_or_else(|e| panic!("{}: {e}", spec_path.display()));
        run(Command::new("rpmbuild")
            .arg("--define")
            .arg(format!("_topdir {}", top.display()))
            .args(["--define", "_db_backend sqlite", "--quiet", "-bb"])
            .arg(&spec_path));
    }
    let mut rpms: Vec<PathBuf> = fs::read_dir(top.join("RPMS/noarch"))
        .unwrap_or_else(|e| panic!("rpmbuild wrote no RPMS/noarch: {e}"))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    rpms.sort();
    rpms
}

/// An sqlite rpm database in `db` (created) with `rpms` installed (`--justdb`, no scripts, no deps).
pub fn rpm_database(db: &Path, rpms: &[PathBuf]) {
    fs::create_dir_all(db).unwrap_or_else(|e| panic!("{}: {e}", db.display()));
    run(rpm_cmd(db).arg("--initdb"));
    run(rpm_cmd(db)
        .args(["--nodeps", "--justdb", "--noscripts", "-i"])
        .args(rpms));
}
