//! Signed images for the policy and signature tests (`tests/signatures.rs`): throw-away GnuPG homes and
//! keys made with `gpg` (good, expired, with a signing subkey later revoked), images in a loopback
//! `docker-registry` signed by `skopeo copy --sign-by` into a `file://` lookaside that registries.d (under
//! the hermetic [`Env`]'s `$HOME`) points skopeo, podman and strata at, and the accept/reject answers of
//! skopeo and podman for a policy — the oracle strata's decisions are compared with.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::registry::Env;
use crate::{describe, run, run_unchecked, show_output};

/// A GnuPG home of its own (mode 0700), driven in batch mode with empty passphrases.
pub struct Gpg {
    home: PathBuf,
}

impl Gpg {
    /// A new, empty GnuPG home at `home`.
    pub fn new(home: &Path) -> Gpg {
        use std::os::unix::fs::PermissionsExt as _;
        fs::create_dir_all(home).unwrap();
        fs::set_permissions(home, fs::Permissions::from_mode(0o700)).unwrap();
        Gpg {
            home: home.to_path_buf(),
        }
    }

    /// The home, for `GNUPGHOME`.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// `gpg` in batch mode on this home.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new("gpg");
        c.env("GNUPGHOME", &self.home).args([
            "--batch",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
        ]);
        c
    }

    /// Makes a key for `uid` (`algo`, `usage`, `expire` as `gpg --quick-gen-key` takes them), with the
    /// clock at `at` (`gpg --faked-system-time`) when given; its fingerprint.
    pub fn gen_key(
        &self,
        uid: &str,
        algo: &str,
        usage: &str,
        expire: &str,
        at: Option<&str>,
    ) -> String {
        let mut c = self.cmd();
        if let Some(at) = at {
            c.arg(format!("--faked-system-time={at}!"));
        }
        run(c.args(["--quick-gen-key", uid, algo, usage, expire]));
        self.fingerprint(uid)
    }

    /// The fingerprint of the primary key of `uid`.
    pub fn fingerprint(&self, uid: &str) -> String {
        let out = run(self.cmd().args(["--with-colons", "--list-keys", uid])).stdout;
        String::from_utf8_lossy(&out)
            .lines()
            .find_map(|l| l.strip_prefix("fpr:::::::::"))
            .and_then(|l| l.split(':').next())
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("no fingerprint for {uid}"))
    }

    /// Adds a signing subkey to `fpr`'s key; the subkey's fingerprint.
    pub fn add_signing_subkey(&self, fpr: &str) -> String {
        run(self
            .cmd()
            .args(["--quick-add-key", fpr, "rsa2048", "sign", "never"]));
        let out = run(self.cmd().args(["--with-colons", "--list-keys", fpr])).stdout;
        let text = String::from_utf8_lossy(&out).into_owned();
        let mut lines = text.lines().skip_while(|l| !l.starts_with("sub:"));
        lines
            .find_map(|l| l.strip_prefix("fpr:::::::::"))
            .and_then(|l| l.split(':').next())
            .map(str::to_owned)
            .expect("the new subkey's fingerprint")
    }

    /// Revokes `fpr`'s first subkey (reason 0, "no reason").
    pub fn revoke_first_subkey(&self, fpr: &str) {
        use std::io::Write as _;
        let mut child = self
            .cmd()
            .args(["--command-fd", "0", "--status-fd", "2", "--edit-key", fpr])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"key 1\nrevkey\ny\n0\n\ny\nsave\n")
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "revoking a subkey\n{}",
            show_output(&out)
        );
    }

    /// Exports the public key `fpr` (binary, as `gpg --export`) to `path`.
    pub fn export(&self, fpr: &str, path: &Path) -> PathBuf {
        let out = run(self.cmd().args(["--export", fpr])).stdout;
        assert!(!out.is_empty(), "gpg exported nothing for {fpr}");
        fs::write(path, out).unwrap();
        path.to_path_buf()
    }

    /// Sets the clock gpg (and so gpgme under skopeo) signs with, through `gpg.conf`; `None` clears it.
    pub fn set_clock(&self, at: Option<&str>) {
        let conf = self.home.join("gpg.conf");
        match at {
            Some(at) => fs::write(conf, format!("faked-system-time {at}!\n")).unwrap(),
            None => {
                let _ = fs::remove_file(conf);
            }
        }
    }
}

/// Writes `$HOME/.config/containers/registries.d/strata-tests.yaml` in `env`: every image of `host` has
/// its signatures in `lookaside` (read and written).
pub fn write_registries_d(env: &Env, host: &str, lookaside: &Path) -> PathBuf {
    let dir = env.home().join(".config/containers/registries.d");
    fs::create_dir_all(&dir).unwrap();
    fs::write(
        dir.join("strata-tests.yaml"),
        format!(
            "docker:\n  {host}:\n    lookaside: file://{}\n",
            lookaside.display()
        ),
    )
    .unwrap();
    dir
}

/// Writes `policy` as a policy.json in `dir` under `name`; its path.
pub fn write_policy(dir: &Path, name: &str, policy: &Value) -> PathBuf {
    let path = dir.join(format!("{name}.policy.json"));
    fs::write(&path, serde_json::to_vec_pretty(policy).unwrap()).unwrap();
    path
}

/// `skopeo copy --sign-by FPR SRC DST` (plain-HTTP registry, signing with `gpg`'s home, any policy).
pub fn skopeo_sign(
    env: &Env,
    gpg: &Gpg,
    accept_all: &Path,
    fpr: &str,
    src: &str,
    dst: &str,
    extra: &[&str],
) {
    let mut c = env.command("skopeo");
    c.env("GNUPGHOME", gpg.home())
        .arg("--policy")
        .arg(accept_all)
        .args([
            "copy",
            "--quiet",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
        ])
        .args(extra)
        .args(["--sign-by", fpr, src, dst]);
    run(&mut c);
}

/// What a peer decided: `Ok(())` accepted, `Err(message)` refused.
pub type Decision = Result<(), String>;

/// skopeo's decision: `skopeo --policy P copy IMAGE dir:…` (plain-HTTP registry).
pub fn skopeo_decides(env: &Env, policy: &Path, image: &str, extra: &[&str]) -> Decision {
    let out_dir = tempfile::tempdir().unwrap();
    let mut c = env.command("skopeo");
    c.arg("--policy")
        .arg(policy)
        .args(["copy", "--quiet", "--src-tls-verify=false"])
        .args(extra)
        .arg(image)
        .arg(format!("dir:{}", out_dir.path().display()));
    decision(&mut c)
}

/// podman's decision: `podman pull --signature-policy P IMAGE` into a throw-away vfs store.
pub fn podman_decides(env: &Env, policy: &Path, image: &str, extra: &[&str]) -> Decision {
    let store = tempfile::tempdir().unwrap();
    let mut c = env.command("podman");
    c.arg("--root")
        .arg(store.path().join("root"))
        .arg("--runroot")
        .arg(store.path().join("run"))
        .args([
            "--storage-driver",
            "vfs",
            "--events-backend",
            "none",
            "pull",
            "--quiet",
        ])
        .arg("--tls-verify=false")
        .arg("--signature-policy")
        .arg(policy)
        .args(extra)
        .arg(image.strip_prefix("docker://").unwrap_or(image));
    decision(&mut c)
}

/// `Ok` when `c` succeeds, its stderr when it fails.
pub fn decision(c: &mut Command) -> Decision {
    let out = run_unchecked(c);
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{}`: {}",
            describe(c),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Writes `$HOME/.config/containers/registries.d/strata-tests.yaml` in `env` with `yaml` as it is (for
/// staging, http or attachment settings); the directory.
pub fn write_registries_d_yaml(env: &Env, yaml: &str) -> PathBuf {
    let dir = env.home().join(".config/containers/registries.d");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("strata-tests.yaml"), yaml).unwrap();
    dir
}

/// A policy accepting anything, written in `dir`.
pub fn accept_all_policy(dir: &Path) -> PathBuf {
    write_policy(
        dir,
        "accept-all",
        &serde_json::json!({"default": [{"type": "insecureAcceptAnything"}]}),
    )
}

/// A cosign key pair made in `dir` as cosign's format needs it: an openssl P-256 key, its public half
/// `<name>.pub` (PEM SPKI, what `openssl dgst -verify` and a `sigstoreSigned` policy take), and
/// `<name>.key`, the PKCS#8 key encrypted with `passphrase` into cosign's `ENCRYPTED COSIGN PRIVATE KEY`
/// by the independent writer `crates/strata-signature/tests/support/cosign_key.py`. Returns
/// (`<name>.key`, `<name>.pub`).
pub fn cosign_key(dir: &Path, name: &str, passphrase: &str) -> (PathBuf, PathBuf) {
    let pem = dir.join(format!("{name}.pem"));
    let public = dir.join(format!("{name}.pub"));
    let der = dir.join(format!("{name}.der"));
    let key = dir.join(format!("{name}.key"));
    run(Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
        ])
        .arg(&pem));
    run(Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&pem)
        .arg("-out")
        .arg(&public));
    run(Command::new("openssl")
        .args(["pkcs8", "-topk8", "-nocrypt", "-outform", "DER", "-in"])
        .arg(&pem)
        .arg("-out")
        .arg(&der));
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../crates/strata-signature/tests/support/cosign_key.py");
    run(Command::new("python3")
        .arg(script)
        .arg(&der)
        .arg(passphrase)
        .arg(&key));
    (key, public)
}

/// Every file under `dir`, relative, sorted (to show that nothing was written).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.push(path.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}
