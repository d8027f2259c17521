//! File names on output. Names are bytes and may hold anything but `/` and NUL: they go to a pipe or a file
//! as they are, and are quoted on a terminal, the way GNU `ls` and `find` do it.

use std::borrow::Cow;
use std::io::IsTerminal as _;

/// How names are written out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// The bytes as they are (`ls -N`, and `ls` and `find` writing to a pipe).
    Literal,
    /// Quoted for a POSIX shell when needed, non-printable bytes as `$'\ooo'` (GNU `ls` on a terminal, its
    /// `--quoting-style=shell-escape`; also how coreutils quote names in messages).
    ShellEscape,
    /// C-like backslash escapes, spaces escaped too, no quotes (`ls -b`, `--escape`).
    Escape,
    /// Each non-printable character or byte as `?` (GNU `find` on a terminal).
    QuestionMarks,
}

impl Style {
    /// `terminal` when standard output is a terminal, else [`Style::Literal`].
    pub fn for_stdout(terminal: Style) -> Style {
        if std::io::stdout().is_terminal() {
            terminal
        } else {
            Style::Literal
        }
    }

    /// `name` written in this style.
    pub fn quote<'a>(self, name: &'a [u8]) -> Cow<'a, [u8]> {
        match self {
            Style::Literal => Cow::Borrowed(name),
            Style::ShellEscape => shell_escape(name),
            Style::Escape => Cow::Owned(escape(name)),
            Style::QuestionMarks => Cow::Owned(question_marks(name)),
        }
    }
}

/// `name` quoted for a message (shell-escape style, as coreutils quote file names in diagnostics), as text.
pub fn quoted(name: &[u8]) -> String {
    String::from_utf8_lossy(&shell_escape(name)).into_owned()
}

/// The error for a path argument that leads to no entry, worded as coreutils word it: `PATH: No such file or
/// directory`, `PATH: Not a directory`.
pub fn lookup_error(path: &[u8], why: &strata_scan::Resolved) -> anyhow::Error {
    match why {
        strata_scan::Resolved::NotADirectory => {
            anyhow::anyhow!("{}: Not a directory", quoted(path))
        }
        _ => anyhow::anyhow!("{}: No such file or directory", quoted(path)),
    }
}

/// One piece of a name: a printable character (its UTF-8 bytes), or one byte to escape (a control
/// character, or a byte of a sequence that is not UTF-8).
enum Piece<'a> {
    Printable(&'a str),
    Byte(u8),
}

/// Splits `name` into printable characters and bytes to escape, assuming a UTF-8 terminal (as `ls` in a
/// UTF-8 locale).
fn pieces(name: &[u8]) -> Vec<Piece<'_>> {
    let mut out = Vec::with_capacity(name.len());
    for chunk in name.utf8_chunks() {
        let valid = chunk.valid();
        for (i, c) in valid.char_indices() {
            let s = valid.get(i..i + c.len_utf8()).unwrap_or_default();
            if c.is_control() {
                // Control characters are one byte (C0, DEL) or two (C1): each byte is escaped.
                out.extend(s.bytes().map(Piece::Byte));
            } else {
                out.push(Piece::Printable(s));
            }
        }
        out.extend(chunk.invalid().iter().map(|&b| Piece::Byte(b)));
    }
    out
}

/// The letter of a C escape for a control character (`\a`, `\b`, `\f`, `\n`, `\r`, `\t`, `\v`).
fn c_escape_letter(b: u8) -> Option<u8> {
    Some(match b {
        0x07 => b'a',
        0x08 => b'b',
        0x0c => b'f',
        b'\n' => b'n',
        b'\r' => b'r',
        b'\t' => b't',
        0x0b => b'v',
        _ => return None,
    })
}

/// `\ooo`, or the C escape where there is one.
fn push_escaped_byte(out: &mut Vec<u8>, b: u8) {
    out.push(b'\\');
    match c_escape_letter(b) {
        Some(letter) => out.push(letter),
        None => out.extend_from_slice(&[b'0' + (b >> 6), b'0' + ((b >> 3) & 7), b'0' + (b & 7)]),
    }
}

/// GNU's `escape` quoting style with `ls -b`'s extra: control characters as `\n`, `\t`…, other
/// non-printable bytes as `\ooo`, backslash as `\\`, space as `\ `.
fn escape(name: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len());
    for piece in pieces(name) {
        match piece {
            Piece::Printable("\\") => out.extend_from_slice(b"\\\\"),
            Piece::Printable(" ") => out.extend_from_slice(b"\\ "),
            Piece::Printable(s) => out.extend_from_slice(s.as_bytes()),
            Piece::Byte(b) => push_escaped_byte(&mut out, b),
        }
    }
    out
}

/// GNU `find`'s output on a terminal: each non-printable character (and each byte that is not UTF-8) as `?`.
fn question_marks(name: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len());
    for piece in pieces(name) {
        match piece {
            Piece::Printable(s) => out.extend_from_slice(s.as_bytes()),
            Piece::Byte(_) => out.push(b'?'),
        }
    }
    out
}

/// Whether `c`, at `i` of a name of `len` characters, makes the name need quoting for a shell, and whether it
/// is one of the few such characters that are just as safe in double quotes (which GNU prefers for names
/// with a `'`).
fn shell_special(c: &str, i: usize, len: usize) -> (bool, bool) {
    match c {
        "{" | "}" if len == 1 => (true, true),
        "#" | "~" if i == 0 => (true, true),
        " " | "'" => (true, true),
        "!" | "\"" | "$" | "&" | "(" | ")" | "*" | ";" | "<" | "=" | ">" | "[" | "\\" | "^"
        | "`" | "|" | "?" => (true, false),
        _ => (false, true),
    }
}

/// GNU's `shell-escape` quoting style (gnulib `quotearg`), what `ls` shows on a terminal: a name without
/// shell-special or non-printable characters as it is; otherwise in single quotes, `'` as `'\''`,
/// non-printable bytes as `'$'\ooo''` (C escapes where they exist); a name with a `'` and nothing else
/// special but spaces (and a leading `#` or `~`) in double quotes instead.
pub fn shell_escape(name: &[u8]) -> Cow<'_, [u8]> {
    let pieces = pieces(name);
    if pieces.is_empty() {
        return Cow::Borrowed(b"''");
    }
    let len = pieces.len();
    let mut needs = false;
    let mut single_quote = false;
    let mut double_quotable = true;
    for (i, p) in pieces.iter().enumerate() {
        match p {
            Piece::Printable(c) => {
                let (special, compat) = shell_special(c, i, len);
                needs |= special;
                double_quotable &= compat;
                single_quote |= *c == "'";
            }
            Piece::Byte(_) => {
                needs = true;
                double_quotable = false;
            }
        }
    }
    if !needs {
        return Cow::Borrowed(name);
    }
    let mut out = Vec::with_capacity(name.len() + 4);
    if single_quote && double_quotable {
        out.push(b'"');
        for p in &pieces {
            if let Piece::Printable(s) = p {
                out.extend_from_slice(s.as_bytes());
            }
        }
        out.push(b'"');
        return Cow::Owned(out);
    }
    out.push(b'\'');
    // Inside `$'…'` after a non-printable byte: the quote must be reopened before printable text.
    let mut in_dollar = false;
    for p in &pieces {
        match p {
            Piece::Byte(b) => {
                if !in_dollar {
                    out.extend_from_slice(b"'$'");
                    in_dollar = true;
                }
                push_escaped_byte(&mut out, *b);
            }
            Piece::Printable(s) => {
                if in_dollar {
                    out.extend_from_slice(b"''");
                    in_dollar = false;
                }
                if *s == "'" {
                    out.extend_from_slice(b"'\\''");
                } else {
                    out.extend_from_slice(s.as_bytes());
                }
            }
        }
    }
    out.push(b'\'');
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shell(name: &[u8]) -> String {
        String::from_utf8(shell_escape(name).into_owned()).unwrap()
    }

    #[test]
    fn shell_escape_as_gnu_ls() {
        // What `ls` (coreutils 9.1, C.UTF-8, a terminal) shows for these names.
        for (name, want) in [
            (&b"plain"[..], "plain"),
            (b"caf\xe9.txt", "'caf'$'\\351''.txt'"),
            (b"a b", "'a b'"),
            (b"a'b", "\"a'b\""),
            (b"a'b c", "\"a'b c\""),
            (b"a'$b", "'a'\\''$b'"),
            (b"x\"y", "'x\"y'"),
            (b"tab\tx", "'tab'$'\\t''x'"),
            (b"bell\x07", "'bell'$'\\a'"),
            (b"del\x7f", "'del'$'\\177'"),
            (b"\xc3\xa9\xff", "'\u{e9}'$'\\377'"),
            (b"\x01a", "''$'\\001''a'"),
            (b"#hash", "'#hash'"),
            (b"x#", "x#"),
            (b"~t", "'~t'"),
            (b"a~", "a~"),
            (b"{", "'{'"),
            (b"a{", "a{"),
            (b"-dash", "-dash"),
            (b"\xc3\xa9", "\u{e9}"),
        ] {
            assert_eq!(shell(name), want, "{}", String::from_utf8_lossy(name));
        }
    }

    #[test]
    fn escape_and_question_marks() {
        assert_eq!(escape(b"caf\xe9 a\\b\n"), b"caf\\351\\ a\\\\b\\n");
        assert_eq!(
            question_marks(b"caf\xe9\t\xc3\xa9"),
            "caf??\u{e9}".as_bytes()
        );
    }
}
