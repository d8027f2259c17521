use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256, Sha512};

use crate::error::{Error, Result};

/// A digest algorithm strata accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// SHA-256, 64 hex digits.
    Sha256,
    /// SHA-512, 128 hex digits.
    Sha512,
}

impl Algorithm {
    /// The name used in digest strings and in blob paths (`blobs/<name>/<hex>`).
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }
}

/// A validated content digest such as `sha256:…`.
///
/// Construction guarantees the algorithm is supported and the encoded part is exactly the right number of
/// lowercase hex digits, so [`Digest::hex`] can be used as a file name without further checks.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: Algorithm,
    hex: String,
}

fn invalid(text: &str, reason: &'static str) -> Error {
    let mut digest: String = text.chars().take(160).collect();
    if digest.len() < text.len() {
        digest.push('…');
    }
    Error::InvalidDigest { digest, reason }
}

impl Digest {
    /// Parses and validates `algorithm:hex`.
    pub fn parse(text: &str) -> Result<Self> {
        let Some((alg, hex)) = text.split_once(':') else {
            return Err(invalid(text, "missing ':' between algorithm and hex"));
        };
        let algorithm = match alg {
            "sha256" => Algorithm::Sha256,
            "sha512" => Algorithm::Sha512,
            _ => {
                return Err(invalid(
                    text,
                    "unsupported algorithm (sha256 and sha512 are)",
                ));
            }
        };
        if hex.len() != algorithm.hex_len() {
            return Err(invalid(text, "wrong length of the hex part"));
        }
        if !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(invalid(text, "the hex part must be lowercase hex digits"));
        }
        Ok(Digest {
            algorithm,
            hex: hex.to_owned(),
        })
    }

    /// The digest of `bytes` under `algorithm`.
    pub fn of(algorithm: Algorithm, bytes: &[u8]) -> Self {
        let mut w = DigestWriter::new(algorithm);
        w.update(bytes);
        w.finish()
    }

    /// The sha256 digest of `bytes`.
    pub fn sha256(bytes: &[u8]) -> Self {
        Self::of(Algorithm::Sha256, bytes)
    }

    /// The algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The lowercase hex part, safe to use as a file name.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// Checks that `bytes` hash to this digest.
    pub fn verify(&self, bytes: &[u8]) -> Result<()> {
        let actual = Digest::of(self.algorithm, bytes);
        if &actual == self {
            Ok(())
        } else {
            Err(Error::DigestMismatch {
                expected: self.to_string(),
                actual: actual.to_string(),
            })
        }
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.name(), self.hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Digest {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Digest::parse(s)
    }
}

impl TryFrom<&oci_spec::image::Digest> for Digest {
    type Error = Error;
    fn try_from(d: &oci_spec::image::Digest) -> Result<Self> {
        Digest::parse(d.as_ref())
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

enum Hasher {
    Sha256(Sha256),
    Sha512(Sha512),
}

/// Incremental hashing: feed bytes, then [`DigestWriter::finish`] gives the [`Digest`].
///
/// Also an [`io::Write`] sink, so it can sit in a `tee` or `io::copy`.
pub struct DigestWriter {
    hasher: Hasher,
    len: u64,
}

impl DigestWriter {
    /// A writer hashing with `algorithm`.
    pub fn new(algorithm: Algorithm) -> Self {
        let hasher = match algorithm {
            Algorithm::Sha256 => Hasher::Sha256(Sha256::new()),
            Algorithm::Sha512 => Hasher::Sha512(Sha512::new()),
        };
        DigestWriter { hasher, len: 0 }
    }

    /// Feeds bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.len += bytes.len() as u64;
        match &mut self.hasher {
            Hasher::Sha256(h) => h.update(bytes),
            Hasher::Sha512(h) => h.update(bytes),
        }
    }

    /// How many bytes were fed.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether no byte was fed yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The digest of everything fed.
    pub fn finish(self) -> Digest {
        let (algorithm, hex) = match self.hasher {
            Hasher::Sha256(h) => (Algorithm::Sha256, to_hex(&h.finalize())),
            Hasher::Sha512(h) => (Algorithm::Sha512, to_hex(&h.finalize())),
        };
        Digest { algorithm, hex }
    }
}

impl Write for DigestWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A writer that hashes what it passes on to `inner`: a blob's digest, learnt as the blob is written.
pub struct HashingWriter<W> {
    inner: W,
    hash: DigestWriter,
}

impl<W: Write> HashingWriter<W> {
    /// Writes to `inner`, hashing with `algorithm`.
    pub fn new(inner: W, algorithm: Algorithm) -> Self {
        HashingWriter {
            inner,
            hash: DigestWriter::new(algorithm),
        }
    }

    /// The writer and the hash of what was written to it.
    pub fn into_parts(self) -> (W, DigestWriter) {
        (self.inner, self.hash)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(buf.get(..n).unwrap_or_default());
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    s
}

/// A reader that hashes what passes through it and, at end of stream, fails with
/// [`io::ErrorKind::InvalidData`] (wrapping [`Error::DigestMismatch`] or [`Error::SizeMismatch`]) unless the
/// content has the expected digest and size. It also refuses to read past the expected size, so a
/// source that sends too much cannot make the caller consume unbounded data.
pub struct VerifyingReader<R> {
    inner: R,
    expected: Digest,
    size: Option<u64>,
    hasher: Option<DigestWriter>,
}

impl<R: Read> VerifyingReader<R> {
    /// Wraps `inner`, expecting content with digest `expected` and, when known, `size` bytes.
    pub fn new(inner: R, expected: Digest, size: Option<u64>) -> Self {
        let hasher = Some(DigestWriter::new(expected.algorithm()));
        VerifyingReader {
            inner,
            expected,
            size,
            hasher,
        }
    }

    fn check_end(&mut self) -> io::Result<()> {
        let Some(hasher) = self.hasher.take() else {
            return Ok(());
        };
        let read = hasher.len();
        if let Some(size) = self.size.filter(|&s| s != read) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                Error::SizeMismatch {
                    digest: self.expected.to_string(),
                    expected: size,
                    actual: read,
                },
            ));
        }
        let actual = hasher.finish();
        if actual != self.expected {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                Error::DigestMismatch {
                    expected: self.expected.to_string(),
                    actual: actual.to_string(),
                },
            ));
        }
        Ok(())
    }
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(hasher) = self.hasher.as_mut() else {
            return Ok(0);
        };
        let mut want = buf.len();
        if let Some(size) = self.size {
            // Read one byte beyond the expected size at most, enough to notice an overlong blob.
            let left = (size + 1).saturating_sub(hasher.len());
            want = want.min(usize::try_from(left).unwrap_or(usize::MAX));
        }
        let n = self.inner.read(&mut buf[..want])?;
        hasher.update(&buf[..n]);
        let overlong = self.size.is_some_and(|s| hasher.len() > s);
        if n == 0 || overlong {
            self.check_end()?;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parses_and_prints() {
        let d = Digest::parse(EMPTY).unwrap();
        assert_eq!(d.to_string(), EMPTY);
        assert_eq!(d, Digest::sha256(b""));
        assert_eq!(d.algorithm(), Algorithm::Sha256);
    }

    #[test]
    fn rejects_bad_digests() {
        for bad in [
            "",
            "sha256",
            "md5:d41d8cd98f00b204e9800998ecf8427e",
            "sha256:abc",
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            "sha256:../../../../etc/passwd/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85/",
            "sha512:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ] {
            assert!(Digest::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn verifying_reader_accepts_good_and_rejects_bad() {
        let data = b"hello world";
        let d = Digest::sha256(data);
        let mut out = Vec::new();
        VerifyingReader::new(&data[..], d.clone(), Some(11))
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, data);

        let err = VerifyingReader::new(&b"hello worle"[..], d.clone(), Some(11))
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert!(err.to_string().contains("digest mismatch"), "{err}");

        let err = VerifyingReader::new(&b"hello world!!"[..], d.clone(), Some(11))
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert!(err.to_string().contains("size mismatch"), "{err}");

        let err = VerifyingReader::new(&b"hello"[..], d, Some(11))
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert!(err.to_string().contains("size mismatch"), "{err}");
    }
}
