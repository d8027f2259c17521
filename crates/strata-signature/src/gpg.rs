//! Signing through the user's `gpg`, as containers/image signs through gpgme: a binary (not armoured),
//! non-detached, non-cleartext signed message made with `--sign --local-user <key>`.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::error::{Error, Result};
use crate::payload::MAX_PAYLOAD_SIZE;

/// Where gpg finds its keys and the key's passphrase.
#[derive(Debug, Clone, Default)]
pub struct GpgOptions {
    /// `--homedir`: the GnuPG home directory (default: gpg's, i.e. `$GNUPGHOME` or `~/.gnupg`).
    pub gnupghome: Option<PathBuf>,
    /// A file whose first line is the key's passphrase (`--pinentry-mode loopback --passphrase-file`).
    pub passphrase_file: Option<PathBuf>,
}

/// The largest signed message read back from gpg.
const MAX_GPG_OUTPUT: usize = 16 * 1024 * 1024;

/// Signs `payload` with the secret key `fingerprint` by running `gpg`, and returns the OpenPGP message
/// (what goes into a lookaside `signature-N` file). Errors carry gpg's standard error.
pub fn sign_with_gpg(fingerprint: &str, payload: &[u8], options: &GpgOptions) -> Result<Vec<u8>> {
    let fail = |reason: String| Error::Gpg {
        key: fingerprint.to_owned(),
        reason,
    };
    if fingerprint.is_empty() || fingerprint.starts_with('-') || fingerprint.contains(['\n', '\0'])
    {
        return Err(fail("not a key fingerprint".into()));
    }
    if payload.len() > MAX_PAYLOAD_SIZE {
        return Err(Error::TooLarge {
            what: "signature payload",
            size: payload.len() as u64,
            limit: MAX_PAYLOAD_SIZE as u64,
        });
    }
    let mut cmd = Command::new("gpg");
    if let Some(home) = &options.gnupghome {
        cmd.arg("--homedir").arg(home);
    }
    cmd.args(["--batch", "--no-tty", "--no-armor", "--yes"]);
    if let Some(file) = &options.passphrase_file {
        cmd.args(["--pinentry-mode", "loopback", "--passphrase-file"])
            .arg(file);
    }
    cmd.args(["--sign", "--local-user", fingerprint, "--output", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| fail(format!("cannot run gpg: {e}")))?;
    let stdin = child.stdin.take();
    let input = payload.to_vec();
    let writer = std::thread::spawn(move || -> std::io::Result<()> {
        if let Some(mut stdin) = stdin {
            stdin.write_all(&input)?;
        }
        Ok(())
    });
    let output = child
        .wait_with_output()
        .map_err(|e| fail(format!("waiting for gpg: {e}")))?;
    let write_result = writer.join();
    let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
    if !output.status.success() {
        return Err(fail(format!("gpg exited with {}: {stderr}", output.status)));
    }
    match write_result {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(fail(format!("writing the payload to gpg: {e}; {stderr}"))),
        Err(_) => return Err(fail(format!("writing the payload to gpg failed; {stderr}"))),
    }
    if output.stdout.is_empty() {
        return Err(fail(format!("gpg wrote no signature; {stderr}")));
    }
    if output.stdout.len() > MAX_GPG_OUTPUT {
        return Err(Error::TooLarge {
            what: "gpg output",
            size: output.stdout.len() as u64,
            limit: MAX_GPG_OUTPUT as u64,
        });
    }
    Ok(output.stdout)
}
