//! The tests `find` applies to entries: `-name GLOB` ([`Glob`]) and `-perm MODE` ([`PermFilter`]), with GNU
//! find's semantics.

/// Why a `find` argument was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {value:?}: {reason}")]
pub struct FilterError {
    /// The option (`--perm`, `--name`, `--type`).
    pub what: &'static str,
    /// The value given.
    pub value: String,
    /// What is wrong with it.
    pub reason: String,
}

/// One unit of a name or pattern: a character where the bytes are UTF-8, a lone byte where they are not (as
/// glibc's `fnmatch` falls back to bytes for names that do not decode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    Char(char),
    Byte(u8),
}

/// The units of `bytes`: UTF-8 characters, and each byte of an invalid sequence on its own.
fn units(bytes: &[u8]) -> Vec<Unit> {
    let mut out = Vec::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        out.extend(chunk.valid().chars().map(Unit::Char));
        out.extend(chunk.invalid().iter().map(|&b| Unit::Byte(b)));
    }
    out
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(Unit),
    /// `?`: any one character (or byte that is not part of one).
    Any,
    /// `*`: any run of characters.
    Star,
    /// `[...]`: one character of a set.
    Set {
        negated: bool,
        items: Vec<SetItem>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum SetItem {
    Char(char),
    Range(char, char),
    Class(CharClass),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CharClass {
    Alnum,
    Alpha,
    Blank,
    Cntrl,
    Digit,
    Graph,
    Lower,
    Print,
    Punct,
    Space,
    Upper,
    Xdigit,
}

impl CharClass {
    fn parse(name: &str) -> Option<CharClass> {
        Some(match name {
            "alnum" => CharClass::Alnum,
            "alpha" => CharClass::Alpha,
            "blank" => CharClass::Blank,
            "cntrl" => CharClass::Cntrl,
            "digit" => CharClass::Digit,
            "graph" => CharClass::Graph,
            "lower" => CharClass::Lower,
            "print" => CharClass::Print,
            "punct" => CharClass::Punct,
            "space" => CharClass::Space,
            "upper" => CharClass::Upper,
            "xdigit" => CharClass::Xdigit,
            _ => return None,
        })
    }

    fn matches(self, c: char) -> bool {
        match self {
            CharClass::Alnum => c.is_alphanumeric(),
            CharClass::Alpha => c.is_alphabetic(),
            CharClass::Blank => c == ' ' || c == '\t',
            CharClass::Cntrl => c.is_control(),
            CharClass::Digit => c.is_ascii_digit(),
            CharClass::Graph => !c.is_control() && !c.is_whitespace(),
            CharClass::Lower => c.is_lowercase(),
            CharClass::Print => !c.is_control(),
            CharClass::Punct => c.is_ascii_punctuation(),
            CharClass::Space => c.is_whitespace(),
            CharClass::Upper => c.is_uppercase(),
            CharClass::Xdigit => c.is_ascii_hexdigit(),
        }
    }
}

impl SetItem {
    fn matches(&self, c: char) -> bool {
        match *self {
            SetItem::Char(x) => x == c,
            SetItem::Range(lo, hi) => lo <= c && c <= hi,
            SetItem::Class(class) => class.matches(c),
        }
    }
}

/// A shell pattern as `find -name` matches it against a file's name (fnmatch(3) without flags): `*` and
/// `?` match any characters (a leading `.` and `/` included), `[...]` a set (ranges, `!` or `^` negation,
/// `[:class:]`), `\` quotes the next character. A `[` without its `]` is an ordinary character. Patterns and
/// names are bytes: where they are not UTF-8, each byte of the invalid sequence is one character (`?`
/// matches it, a negated set does too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    tokens: Vec<Token>,
}

impl Glob {
    /// Compiles `pattern` (`&str` or bytes).
    pub fn new(pattern: impl AsRef<[u8]>) -> Glob {
        let chars = units(pattern.as_ref());
        let mut tokens = Vec::new();
        let mut i = 0;
        while let Some(&c) = chars.get(i) {
            i += 1;
            match c {
                Unit::Char('*') => {
                    if tokens.last() != Some(&Token::Star) {
                        tokens.push(Token::Star);
                    }
                }
                Unit::Char('?') => tokens.push(Token::Any),
                Unit::Char('\\') => {
                    // A trailing backslash matches itself.
                    let quoted = chars.get(i).copied().unwrap_or(Unit::Char('\\'));
                    i += 1;
                    tokens.push(Token::Literal(quoted));
                }
                Unit::Char('[') => match parse_set(&chars, i) {
                    Some((token, next)) => {
                        tokens.push(token);
                        i = next;
                    }
                    None => tokens.push(Token::Literal(c)),
                },
                c => tokens.push(Token::Literal(c)),
            }
        }
        Glob { tokens }
    }

    /// Whether `name` (a file name's bytes, or a `&str`) matches the whole pattern.
    pub fn matches(&self, name: impl AsRef<[u8]>) -> bool {
        let text = units(name.as_ref());
        let (mut t, mut p) = (0usize, 0usize);
        // Where the last `*` was, and the text position it is currently made to cover up to.
        let mut backtrack: Option<(usize, usize)> = None;
        loop {
            match self.tokens.get(p) {
                Some(Token::Star) => {
                    backtrack = Some((p + 1, t));
                    p += 1;
                    continue;
                }
                Some(token) => {
                    if let Some(&c) = text.get(t) {
                        let ok = match token {
                            Token::Literal(l) => *l == c,
                            Token::Any => true,
                            Token::Set { negated, items } => {
                                let inside = match c {
                                    Unit::Char(c) => items.iter().any(|i| i.matches(c)),
                                    Unit::Byte(_) => false,
                                };
                                inside != *negated
                            }
                            Token::Star => false,
                        };
                        if ok {
                            t += 1;
                            p += 1;
                            continue;
                        }
                    }
                }
                None if t == text.len() => return true,
                None => {}
            }
            // Mismatch: let the last `*` swallow one more character, if there is one to swallow.
            match backtrack {
                Some((after_star, covered)) if covered < text.len() => {
                    backtrack = Some((after_star, covered + 1));
                    p = after_star;
                    t = covered + 1;
                }
                _ => return false,
            }
        }
    }
}

/// Parses a bracket expression whose `[` is just before `start`; returns the token and the index after its
/// `]`, or `None` when it has no closing `]`. Bytes that are not UTF-8 inside it match nothing.
fn parse_set(units: &[Unit], start: usize) -> Option<(Token, usize)> {
    let char_at = |i: usize| match units.get(i) {
        Some(Unit::Char(c)) => Some(*c),
        Some(Unit::Byte(_)) => Some('\u{FFFD}'),
        None => None,
    };
    let mut i = start;
    let negated = matches!(char_at(i), Some('!' | '^'));
    if negated {
        i += 1;
    }
    let mut items = Vec::new();
    let mut first = true;
    loop {
        let c = char_at(i)?;
        if c == ']' && !first {
            return Some((Token::Set { negated, items }, i + 1));
        }
        first = false;
        if c == '[' && char_at(i + 1) == Some(':') {
            let rest: String = (i + 2..units.len()).filter_map(char_at).collect();
            if let Some(end) = rest.find(":]")
                && let Some(class) = CharClass::parse(&rest[..end])
            {
                items.push(SetItem::Class(class));
                i += 2 + rest[..end].chars().count() + 2;
                continue;
            }
        }
        let (lo, next) = if c == '\\' {
            (char_at(i + 1)?, i + 2)
        } else {
            (c, i + 1)
        };
        i = next;
        if char_at(i) == Some('-') && char_at(i + 1).is_some_and(|h| h != ']') {
            let (hi, next) = match char_at(i + 1)? {
                '\\' => (char_at(i + 2)?, i + 3),
                h => (h, i + 2),
            };
            items.push(SetItem::Range(lo, hi));
            i = next;
        } else {
            items.push(SetItem::Char(lo));
        }
    }
}

/// `find -perm MODE` in octal, as GNU find reads it: `MODE` matches permission bits exactly equal to it,
/// `-MODE` when all of its bits are set, `/MODE` when any of them is (`/0` matches everything). Bits are
/// `mode & 0o7777`: setuid (4000), setgid (2000), sticky (1000) and the permissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PermFilter {
    /// `MODE`: exactly these bits.
    Exact(u32),
    /// `-MODE`: at least these bits.
    All(u32),
    /// `/MODE`: any of these bits (all entries when 0).
    Any(u32),
}

impl PermFilter {
    /// Parses `0644`, `-4000` or `/6000`. Symbolic modes (`u+s`) are not supported.
    pub fn parse(text: &str) -> Result<PermFilter, FilterError> {
        let error = |reason: &str| FilterError {
            what: "--perm",
            value: text.to_owned(),
            reason: reason.to_owned(),
        };
        let (make, digits): (fn(u32) -> PermFilter, &str) = match text.as_bytes().first() {
            Some(b'-') => (PermFilter::All, &text[1..]),
            Some(b'/') => (PermFilter::Any, &text[1..]),
            // GNU find's deprecated spelling of `/MODE`.
            Some(b'+') => return Err(error("'+MODE' is obsolete; write '/MODE'")),
            _ => (PermFilter::Exact, text),
        };
        if digits.is_empty() || !digits.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
            return Err(error(
                "not an octal mode (symbolic modes are not supported)",
            ));
        }
        let bits = u32::from_str_radix(digits, 8).map_err(|_| error("not an octal mode"))?;
        if bits > 0o7777 {
            return Err(error("mode bits beyond 7777"));
        }
        Ok(make(bits))
    }

    /// Whether permission bits `mode` pass.
    pub fn matches(self, mode: u32) -> bool {
        let mode = mode & 0o7777;
        match self {
            PermFilter::Exact(bits) => mode == bits,
            PermFilter::All(bits) => mode & bits == bits,
            PermFilter::Any(0) => true,
            PermFilter::Any(bits) => mode & bits != 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        let cases = [
            ("*.so", "libc.so", true),
            ("*.so", "libc.so.6", false),
            ("*.so*", "libc.so.6", true),
            ("lib?.a", "libc.a", true),
            ("lib?.a", "libcc.a", false),
            ("*", ".hidden", true),
            ("[abc]*", "bash", true),
            ("[!abc]*", "bash", false),
            ("[^abc]*", "dash", true),
            ("[a-c]x", "bx", true),
            ("[a-c]x", "dx", false),
            ("[]]", "]", true),
            ("[[:digit:]][[:upper:]]", "7Z", true),
            ("[[:digit:]]", "x", false),
            ("a\\*", "a*", true),
            ("a\\*", "ab", false),
            ("[unclosed", "[unclosed", true),
            ("*a*b*c", "xxaxxbxxc", true),
            ("*a*b*c", "xxaxxbxxcx", false),
            ("", "", true),
            ("é*", "ecole", false),
            ("é*", "été", true),
        ];
        for (pattern, name, want) in cases {
            assert_eq!(
                Glob::new(pattern).matches(name),
                want,
                "{pattern} vs {name}"
            );
        }
    }

    #[test]
    fn names_that_are_not_utf8() {
        let name = b"caf\xe9.txt";
        for (pattern, want) in [
            (&b"caf?.txt"[..], true),
            (b"caf*", true),
            (b"caf\xe9.txt", true),
            (b"caf[!a-z].txt", true),
            (b"caf[a-z].txt", false),
            (b"cafe.txt", false),
            (b"caf??.txt", false),
        ] {
            assert_eq!(
                Glob::new(pattern).matches(name),
                want,
                "{}",
                String::from_utf8_lossy(pattern)
            );
        }
    }

    #[test]
    fn perms() {
        let p = |s| PermFilter::parse(s).unwrap();
        assert!(p("-4000").matches(0o4755));
        assert!(!p("-4000").matches(0o2755));
        assert!(p("/6000").matches(0o2755));
        assert!(!p("/6000").matches(0o755));
        assert!(p("/0").matches(0o644));
        assert!(p("0644").matches(0o644));
        assert!(!p("644").matches(0o4644));
        assert!(p("-0").matches(0));
        for bad in ["", "-", "u+s", "9", "/77777", "+4000"] {
            assert!(PermFilter::parse(bad).is_err(), "{bad}");
        }
    }
}
