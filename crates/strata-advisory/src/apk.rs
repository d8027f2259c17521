//! Alpine package versions, ordered as apk-tools orders them (`src/version.c`).
//!
//! The grammar is `digits{.digits}[letter]{_suffix[digits]}[~hexhash][-rdigits]`: a first number, further
//! `.`-numbers, at most one lowercase letter, suffixes — `_alpha`, `_beta`, `_pre`, `_rc` sort before the
//! bare version, `_cvs`, `_svn`, `_git`, `_hg`, `_p` after it — each with an optional number, an optional
//! commit hash (`~` and lowercase hex digits, compared as a string) and a revision `-rN`. Versions are
//! compared token by token: numbers as numbers except that a `.`-number with a leading zero on either side
//! compares as a string (Gentoo's rule), letters and suffixes by rank. When one version runs out, or the two
//! differ in the kind of the next token, the one going on is greater unless what follows is a pre-release
//! suffix; past that, the token kind decides (a revision is less than a further suffix, and so on).
//!
//! [`Version::parse`] refuses what `apk_version_validate` refuses (`1.0bc`, `0.1_foobar`, `0.1-r2_pre1`,
//! `.1`, …). [`compare_str`] is apk's total comparison, which orders even invalid strings (by the valid
//! prefix), as `apk version -t` does.

use std::cmp::Ordering;

use crate::VersionError;

/// A parsed, valid apk version.
///
/// Equality is apk's comparison saying equal (`1.0` and `1.00` are not: the leading zero compares as a
/// string; `1.0-r0` is greater than `1.0`).
#[derive(Debug, Clone)]
pub struct Version {
    text: String,
}

impl Version {
    /// Parses a version, refusing what apk-tools' `apk_version_validate` refuses.
    ///
    /// # Errors
    /// [`VersionError`] naming the version and the first offending token.
    pub fn parse(text: &str) -> Result<Self, VersionError> {
        let mut tokens = Tokens::new(text.as_bytes());
        loop {
            match tokens.next_token().kind {
                Kind::End => {
                    return Ok(Self {
                        text: text.to_owned(),
                    });
                }
                Kind::Invalid => {
                    return Err(VersionError::new(
                        "apk",
                        text,
                        if text.is_empty() {
                            "version string is empty"
                        } else {
                            "not apk's grammar digits{.digits}[letter]{_suffix[N]}[~hash][-rN]"
                        },
                    ));
                }
                _ => {}
            }
        }
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        compare_str(&self.text, &other.text)
    }
}

crate::version_traits!();

/// apk's total comparison of two version strings, valid or not (`apk version -t a b`).
pub fn compare_str(a: &str, b: &str) -> Ordering {
    compare_tokens(a, b, false)
}

/// apk's fuzzy match (`~` in a dependency): `a` equals `b` when `b` is a token-wise prefix of `a`; otherwise
/// as [`compare_str`].
pub fn compare_fuzzy(a: &str, b: &str) -> Ordering {
    compare_tokens(a, b, true)
}

/// The kinds of token, in apk's order (a later kind sorts lower when the other version has ended there).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    InitialDigit,
    Digit,
    Letter,
    Suffix,
    SuffixNumber,
    CommitHash,
    Revision,
    End,
    Invalid,
}

/// Suffix ranks; `None` is the bare version: the ones below it are pre-releases.
const SUFFIXES: [&[u8]; 10] = [
    b"alpha", b"beta", b"pre", b"rc", b"", b"cvs", b"svn", b"git", b"hg", b"p",
];
/// The rank of "no suffix" in [`SUFFIXES`].
const SUFFIX_NONE: usize = 4;

/// One token: its kind, its text, and its number or suffix rank.
#[derive(Debug, Clone, Copy)]
struct Token<'a> {
    kind: Kind,
    value: &'a [u8],
    number: u64,
    suffix: usize,
}

/// apk's tokenizer over one version string.
struct Tokens<'a> {
    rest: &'a [u8],
    current: Token<'a>,
    started: bool,
}

impl<'a> Tokens<'a> {
    fn new(text: &'a [u8]) -> Self {
        Self {
            rest: text,
            current: Token {
                kind: Kind::InitialDigit,
                value: &[],
                number: 0,
                suffix: SUFFIX_NONE,
            },
            started: false,
        }
    }

    /// Takes the leading run of bytes matching `pred`.
    fn take(&mut self, pred: impl Fn(u8) -> bool) -> &'a [u8] {
        let n = self.rest.iter().take_while(|&&c| pred(c)).count();
        let (head, tail) = self.rest.split_at(n.min(self.rest.len()));
        self.rest = tail;
        head
    }

    /// Reads digits into the current token; no digits make it invalid. Overflow wraps, as apk's does.
    fn digits(&mut self, kind: Kind) {
        let value = self.take(|c| c.is_ascii_digit());
        let number = value.iter().fold(0u64, |n, &c| {
            n.wrapping_mul(10).wrapping_add(u64::from(c - b'0'))
        });
        self.current.kind = if value.is_empty() {
            Kind::Invalid
        } else {
            kind
        };
        self.current.value = value;
        self.current.number = number;
    }

    fn next_token(&mut self) -> Token<'a> {
        if !self.started {
            self.started = true;
            self.digits(Kind::InitialDigit);
            return self.current;
        }
        let prev = self.current.kind;
        if prev >= Kind::End {
            return self.current;
        }
        let Some(&first) = self.rest.first() else {
            self.current.kind = Kind::End;
            return self.current;
        };
        match first {
            b'a'..=b'z' if prev <= Kind::Digit => {
                let (value, tail) = self.rest.split_at(1);
                self.rest = tail;
                self.current.kind = Kind::Letter;
                self.current.value = value;
            }
            b'.' | b'0'..=b'9' if first != b'.' || prev <= Kind::Digit => {
                if first == b'.' {
                    self.rest = self.rest.get(1..).unwrap_or_default();
                }
                match prev {
                    Kind::InitialDigit | Kind::Digit => self.digits(Kind::Digit),
                    Kind::Suffix => self.digits(Kind::SuffixNumber),
                    _ => self.current.kind = Kind::Invalid,
                }
            }
            b'_' if prev <= Kind::SuffixNumber => {
                self.rest = self.rest.get(1..).unwrap_or_default();
                let value = self.take(|c| c.is_ascii_lowercase());
                self.current.value = value;
                match SUFFIXES.iter().position(|s| !s.is_empty() && *s == value) {
                    Some(rank) => {
                        self.current.kind = Kind::Suffix;
                        self.current.suffix = rank;
                    }
                    None => self.current.kind = Kind::Invalid,
                }
            }
            b'~' if prev < Kind::CommitHash => {
                self.rest = self.rest.get(1..).unwrap_or_default();
                let value = self.take(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c));
                self.current.value = value;
                self.current.kind = if value.is_empty() {
                    Kind::Invalid
                } else {
                    Kind::CommitHash
                };
            }
            b'-' if prev < Kind::Revision => {
                if let Some(tail) = self.rest.strip_prefix(b"-r") {
                    self.rest = tail;
                    self.digits(Kind::Revision);
                } else {
                    self.current.kind = Kind::Invalid;
                }
            }
            _ => self.current.kind = Kind::Invalid,
        }
        self.current
    }
}

/// Compares two tokens of the same kind.
fn token_cmp(a: &Token<'_>, b: &Token<'_>) -> Ordering {
    match a.kind {
        Kind::Digit if a.value.first() == Some(&b'0') || b.value.first() == Some(&b'0') => {
            a.value.cmp(b.value)
        }
        Kind::Digit | Kind::InitialDigit | Kind::SuffixNumber | Kind::Revision => {
            a.number.cmp(&b.number)
        }
        Kind::Letter => a.value.first().cmp(&b.value.first()),
        Kind::Suffix => a.suffix.cmp(&b.suffix),
        _ => a.value.cmp(b.value),
    }
}

fn compare_tokens(a: &str, b: &str, fuzzy: bool) -> Ordering {
    let (mut ta, mut tb) = (Tokens::new(a.as_bytes()), Tokens::new(b.as_bytes()));
    let (mut x, mut y) = (ta.next_token(), tb.next_token());
    while x.kind == y.kind && x.kind < Kind::End {
        let order = token_cmp(&x, &y);
        if order != Ordering::Equal {
            return order;
        }
        x = ta.next_token();
        y = tb.next_token();
    }
    if x.kind == y.kind || (y.kind == Kind::End && fuzzy) {
        return Ordering::Equal;
    }
    if x.kind == Kind::Suffix && x.suffix < SUFFIX_NONE {
        return Ordering::Less;
    }
    if y.kind == Kind::Suffix && y.suffix < SUFFIX_NONE {
        return Ordering::Greater;
    }
    y.kind.cmp(&x.kind)
}
