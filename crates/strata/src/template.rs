//! `strata inspect --format`: the part of skopeo's Go templates (`text/template` over the inspect report, as
//! containers/common's `report` package runs them) that people use on `skopeo inspect`.
//!
//! Supported: literal text (as skopeo, `\n` in the format is a newline, and a newline ends the output; tabs,
//! which skopeo aligns in columns, are refused), `{{.FIELD}}` for a field of the report, `{{.Labels.KEY}}` and
//! `{{index .Labels "KEY"}}`, `{{json .FIELD}}` (compact JSON, as the `json` function of containers/common),
//! and the whole format `json` or `{{json .}}` (the usual indented document). Values print as Go's `fmt`
//! prints them: lists as `[a b]`, maps as `map[k:v]`, a missing label as `<no value>`, `Created` as Go's
//! `time.Time` (`2023-11-14 22:13:20 +0000 UTC`). Anything else is refused with an error naming it.

use anyhow::{anyhow, bail};
use serde_json::Value;

/// The report's fields, in skopeo's order, and how Go prints each.
const FIELDS: [(&str, Kind); 12] = [
    ("Name", Kind::Str),
    ("Digest", Kind::Str),
    ("RepoTags", Kind::StrList),
    ("Created", Kind::Time),
    ("DockerVersion", Kind::Str),
    ("Labels", Kind::StrMap),
    ("Architecture", Kind::Str),
    ("Variant", Kind::Str),
    ("Os", Kind::Str),
    ("Layers", Kind::StrList),
    ("LayersData", Kind::LayerList),
    ("Env", Kind::StrList),
];

/// The Go type of a field, which decides how it prints (and what a missing value is).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Str,
    StrList,
    StrMap,
    Time,
    LayerList,
}

/// One piece of a parsed format.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    /// `{{.FIELD}}`, `{{.Labels.KEY}}`, `{{index .Labels "KEY"}}`: the field and the label key.
    Field(String, Option<String>, Lookup),
    /// `{{json .FIELD}}`.
    Json(String),
}

/// How a label is looked up: `.Labels.KEY` prints `<no value>` when missing, `index` the empty string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lookup {
    Field,
    Index,
}

/// A `--format` template, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pieces: Vec<Piece>,
    /// `json` or `{{json .}}`: the indented document.
    whole_json: bool,
}

impl Template {
    /// Parses `format`, refusing what is not in the supported subset.
    pub fn parse(format: &str) -> anyhow::Result<Template> {
        let trimmed = format.trim();
        if trimmed == "json" || is_action(trimmed, |a| words(a) == ["json", "."]) {
            return Ok(Template {
                pieces: Vec::new(),
                whole_json: true,
            });
        }
        // As containers/common's NormalizeFormat: `\n` is a newline, and the output ends with one.
        let mut text = format.replace("\\n", "\n");
        if text.contains('\t') || text.contains("\\t") {
            bail!(
                "--format: tabs (tabwriter columns) are not supported; use spaces or separate lines"
            );
        }
        if !text.ends_with('\n') {
            text.push('\n');
        }
        let mut pieces = Vec::new();
        let mut rest = text.as_str();
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                pieces.push(Piece::Text(rest[..open].to_owned()));
            }
            let after = &rest[open + 2..];
            let Some(close) = after.find("}}") else {
                bail!(
                    "--format: {:?}: an action opened with {{{{ is not closed",
                    &rest[open..]
                );
            };
            let action = &after[..close];
            pieces.push(parse_action(action)?);
            rest = &after[close + 2..];
        }
        if rest.contains("}}") {
            bail!("--format: {rest:?}: unexpected }}}}");
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_owned()));
        }
        Ok(Template {
            pieces,
            whole_json: false,
        })
    }

    /// Whether the format asks for the indented JSON document itself.
    pub fn is_json(&self) -> bool {
        self.whole_json
    }

    /// The output for `report` (the inspect report as JSON).
    pub fn render(&self, report: &Value) -> anyhow::Result<String> {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Field(field, None, _) => {
                    let (value, kind) = field_of(report, field)?;
                    out.push_str(&go_print(value, kind));
                }
                Piece::Field(field, Some(key), lookup) => {
                    let (value, kind) = field_of(report, field)?;
                    if kind != Kind::StrMap {
                        bail!(
                            "--format: {{{{.{field}.{key}}}}}: {field} has no keys (only Labels has)"
                        );
                    }
                    match (value.and_then(|m| m.get(key)), lookup) {
                        (Some(v), _) => out.push_str(&go_print(Some(v), Kind::Str)),
                        (None, Lookup::Field) => out.push_str("<no value>"),
                        (None, Lookup::Index) => {}
                    }
                }
                Piece::Json(field) => {
                    let (value, kind) = field_of(report, field)?;
                    let json = match (value, kind) {
                        // Go marshals a map with its keys sorted.
                        (Some(Value::Object(map)), Kind::StrMap) => serde_json::to_string(
                            &map.iter().collect::<std::collections::BTreeMap<_, _>>(),
                        )?,
                        (Some(v), _) => serde_json::to_string(v)?,
                        (None, Kind::Str) => "\"\"".to_owned(),
                        (None, _) => "null".to_owned(),
                    };
                    out.push_str(&json);
                }
            }
        }
        Ok(out)
    }
}

/// Whether `text` is one action `{{…}}` whose inside passes `test`.
fn is_action(text: &str, test: impl Fn(&str) -> bool) -> bool {
    text.strip_prefix("{{")
        .and_then(|t| t.strip_suffix("}}"))
        .is_some_and(|inside| !inside.contains("}}") && test(inside))
}

/// The words of an action (split on white space).
fn words(action: &str) -> Vec<&str> {
    action.split_whitespace().collect()
}

const SUPPORTED: &str = "supported: {{.FIELD}}, {{.Labels.KEY}}, {{index .Labels \"KEY\"}}, {{json .FIELD}}, \
    and json or {{json .}} alone";

fn parse_action(action: &str) -> anyhow::Result<Piece> {
    let unsupported = || anyhow!("--format: {{{{{action}}}}} is not supported ({SUPPORTED})");
    match words(action).as_slice() {
        [path] => {
            let (field, key) = parse_path(path).ok_or_else(unsupported)?;
            Ok(Piece::Field(field, key, Lookup::Field))
        }
        ["json", path] => match parse_path(path).ok_or_else(unsupported)? {
            (field, None) => Ok(Piece::Json(field)),
            _ => Err(unsupported()),
        },
        ["index", path, key] => {
            let (field, None) = parse_path(path).ok_or_else(unsupported)? else {
                return Err(unsupported());
            };
            let key = key
                .strip_prefix('"')
                .and_then(|k| k.strip_suffix('"'))
                .filter(|k| !k.contains(['"', '\\']))
                .ok_or_else(unsupported)?;
            Ok(Piece::Field(field, Some(key.to_owned()), Lookup::Index))
        }
        _ => Err(unsupported()),
    }
}

/// `.Field` or `.Field.Key` (Go identifiers).
fn parse_path(path: &str) -> Option<(String, Option<String>)> {
    let rest = path.strip_prefix('.')?;
    let mut parts = rest.split('.');
    let field = parts.next().filter(|f| is_identifier(f))?;
    let key = parts.next();
    if parts.next().is_some() || key.is_some_and(|k| !is_identifier(k)) {
        return None;
    }
    Some((field.to_owned(), key.map(str::to_owned)))
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || c == '_')
}

/// The field `name` of the report (`None` when absent or null) and its Go type.
fn field_of<'a>(report: &'a Value, name: &str) -> anyhow::Result<(Option<&'a Value>, Kind)> {
    let Some(&(_, kind)) = FIELDS.iter().find(|(f, _)| *f == name) else {
        let names: Vec<&str> = FIELDS.iter().map(|(f, _)| *f).collect();
        bail!(
            "--format: {{{{.{name}}}}}: the report has no field {name} (it has {})",
            names.join(", ")
        );
    };
    Ok((report.get(name).filter(|v| !v.is_null()), kind))
}

/// `value` as Go's `fmt` prints a value of this type (a missing one as its zero value).
fn go_print(value: Option<&Value>, kind: Kind) -> String {
    match (kind, value) {
        (Kind::Time, None) => "<nil>".to_owned(),
        (Kind::Time, Some(Value::String(t))) => go_time(t),
        (Kind::Str, None) => String::new(),
        (Kind::StrList | Kind::LayerList, None) => "[]".to_owned(),
        (Kind::StrMap, None) => "map[]".to_owned(),
        (Kind::StrMap, Some(Value::Object(map))) => go_map(map),
        (_, Some(v)) => go_value(v),
    }
}

/// A JSON value as Go's `fmt` prints the value it was marshalled from: strings bare, lists `[a b]`, maps
/// `map[k:v]` (keys sorted, as Go sorts them), structs `{v1 v2}` (fields in order; nil maps `map[]`).
fn go_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "map[]".to_owned(),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(go_value).collect();
            format!("[{}]", items.join(" "))
        }
        Value::Object(fields) => {
            // The only objects are LayersData's structs (its Annotations map is null or a map).
            let fields: Vec<String> = fields
                .values()
                .map(|f| match f {
                    Value::Object(map) => go_map(map),
                    other => go_value(other),
                })
                .collect();
            format!("{{{}}}", fields.join(" "))
        }
    }
}

fn go_map(map: &serde_json::Map<String, Value>) -> String {
    let mut pairs: Vec<(&String, &Value)> = map.iter().collect();
    pairs.sort_by(|a, b| a.0.cmp(b.0));
    let pairs: Vec<String> = pairs
        .into_iter()
        .map(|(k, v)| format!("{k}:{}", go_value(v)))
        .collect();
    format!("map[{}]", pairs.join(" "))
}

/// An RFC 3339 time as Go's `time.Time.String` prints it: `2023-11-14 22:13:20.5 +0000 UTC` (a fixed offset
/// other than UTC prints as `+0200 +0200`). Text that is not RFC 3339 is printed as it is.
fn go_time(t: &str) -> String {
    let Some((date, time)) = t.split_once(['T', 't']) else {
        return t.to_owned();
    };
    let (clock, zone) = match time.find(['Z', 'z', '+', '-']) {
        Some(i) => time.split_at(i),
        None => return t.to_owned(),
    };
    let clock = match clock.split_once('.') {
        Some((hms, frac)) => {
            let frac = frac.trim_end_matches('0');
            if frac.is_empty() {
                hms.to_owned()
            } else {
                format!("{hms}.{frac}")
            }
        }
        None => clock.to_owned(),
    };
    let zone = if zone.eq_ignore_ascii_case("z") {
        "+0000 UTC".to_owned()
    } else {
        let offset = zone.replace(':', "");
        format!("{offset} {offset}")
    };
    format!("{date} {clock} {zone}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Value {
        serde_json::json!({
            "Digest": "sha256:abc",
            "RepoTags": [],
            "Created": "2023-11-14T22:13:20Z",
            "DockerVersion": "",
            "Labels": {"version": "1.0", "name": "app"},
            "Architecture": "amd64",
            "Os": "linux",
            "Layers": ["sha256:1", "sha256:2"],
            "LayersData": [{"MIMEType": "m", "Digest": "sha256:1", "Size": 3, "Annotations": null}],
            "Env": null
        })
    }

    fn render(format: &str) -> String {
        Template::parse(format).unwrap().render(&report()).unwrap()
    }

    #[test]
    fn the_subset() {
        assert_eq!(render("{{.Digest}}"), "sha256:abc\n");
        assert_eq!(
            render("{{.Name}}|{{ .Os }}\\n{{.Architecture}}"),
            "|linux\namd64\n"
        );
        assert_eq!(
            render("{{.Labels.name}} {{.Labels.nope}}"),
            "app <no value>\n"
        );
        assert_eq!(
            render("{{index .Labels \"version\"}}|{{index .Labels \"x\"}}"),
            "1.0|\n"
        );
        assert_eq!(
            render("{{json .Labels}}"),
            "{\"name\":\"app\",\"version\":\"1.0\"}\n"
        );
        assert_eq!(render("{{json .Name}} {{json .Env}}"), "\"\" null\n");
        assert_eq!(render("{{.Labels}}"), "map[name:app version:1.0]\n");
        assert_eq!(
            render("{{.Layers}} {{.RepoTags}} {{.Env}}"),
            "[sha256:1 sha256:2] [] []\n"
        );
        assert_eq!(render("{{.Created}}"), "2023-11-14 22:13:20 +0000 UTC\n");
        assert_eq!(render("{{.LayersData}}"), "[{m sha256:1 3 map[]}]\n");
        assert_eq!(render("plain\n"), "plain\n");
        assert!(Template::parse("json").unwrap().is_json());
        assert!(Template::parse(" {{ json . }} ").unwrap().is_json());
    }

    #[test]
    fn times_as_go_prints_them() {
        assert_eq!(
            go_time("2023-11-14T22:13:20.500Z"),
            "2023-11-14 22:13:20.5 +0000 UTC"
        );
        assert_eq!(
            go_time("2023-11-14T22:13:20+02:00"),
            "2023-11-14 22:13:20 +0200 +0200"
        );
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            "{{.Foo}}",
            "{{.os}}",
            "{{if .Name}}x{{end}}",
            "{{range .Layers}}{{.}}{{end}}",
            "{{.Labels.a.b}}",
            "{{.Digest.x}}",
            "{{json .Labels.name}}",
            "{{printf \"%s\" .Os}}",
            "{{.Os",
            "a\\tb",
            "{{.Os}}}}",
        ] {
            let err = Template::parse(bad).and_then(|t| t.render(&report()).map(|_| t));
            assert!(err.is_err(), "{bad}");
        }
    }
}
