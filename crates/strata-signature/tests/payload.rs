//! Payload parsing is as strict as containers/image's (`signature/simple_test.go` TestUnmarshalJSON: one
//! negative case per rule), and the bytes strata writes are skopeo's.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{Value, json};
use strata_oci::Digest;
use strata_signature::{Error, Payload, PayloadKind};

const DIGEST: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

fn valid() -> Value {
    json!({
        "critical": {
            "type": "atomic container signature",
            "image": {"docker-manifest-digest": DIGEST},
            "identity": {"docker-reference": "reference#@!"}
        },
        "optional": {"creator": "atomic 5.23.1", "timestamp": 1_700_000_000}
    })
}

fn parse(v: &Value) -> Result<Payload, Error> {
    Payload::parse(&serde_json::to_vec(v).unwrap(), PayloadKind::Atomic)
}

fn at<'a>(v: &'a mut Value, path: &[&str]) -> &'a mut serde_json::Map<String, Value> {
    let mut cur = v;
    for p in path {
        cur = cur.get_mut(*p).unwrap();
    }
    cur.as_object_mut().unwrap()
}

#[test]
fn valid_payload_parses() {
    let p = parse(&valid()).unwrap();
    assert_eq!(p.docker_reference, "reference#@!");
    assert_eq!(p.manifest_digest, Digest::parse(DIGEST).unwrap());
    assert_eq!(p.creator.as_deref(), Some("atomic 5.23.1"));
    assert_eq!(p.timestamp, Some(1_700_000_000));
}

#[test]
fn each_rule_has_a_negative_case() {
    type Break = fn(&mut Value);
    let cases: Vec<(&str, Break, &str)> = vec![
        (
            "critical missing",
            |v| {
                v.as_object_mut().unwrap().remove("critical");
            },
            "payload",
        ),
        (
            "optional missing",
            |v| {
                v.as_object_mut().unwrap().remove("optional");
            },
            "payload",
        ),
        (
            "extra top-level key",
            |v| {
                v.as_object_mut()
                    .unwrap()
                    .insert("unexpected".into(), json!(1));
            },
            "payload",
        ),
        (
            "critical not an object",
            |v| {
                v["critical"] = json!(1);
            },
            "critical",
        ),
        (
            "optional not an object",
            |v| {
                v["optional"] = json!(1);
            },
            "optional",
        ),
        (
            "optional null for atomic",
            |v| {
                v["optional"] = Value::Null;
            },
            "optional",
        ),
        (
            "type missing",
            |v| {
                at(v, &["critical"]).remove("type");
            },
            "critical",
        ),
        (
            "image missing",
            |v| {
                at(v, &["critical"]).remove("image");
            },
            "critical",
        ),
        (
            "identity missing",
            |v| {
                at(v, &["critical"]).remove("identity");
            },
            "critical",
        ),
        (
            "unknown critical key",
            |v| {
                at(v, &["critical"]).insert("unexpected".into(), json!(1));
            },
            "critical",
        ),
        (
            "type not a string",
            |v| {
                v["critical"]["type"] = json!(1);
            },
            "critical.type",
        ),
        (
            "wrong type string",
            |v| {
                v["critical"]["type"] = json!("unexpected");
            },
            "critical.type",
        ),
        (
            "cosign type in atomic",
            |v| {
                v["critical"]["type"] = json!("cosign container image signature");
            },
            "critical.type",
        ),
        (
            "image not an object",
            |v| {
                v["critical"]["image"] = json!(1);
            },
            "critical.image",
        ),
        (
            "digest missing",
            |v| {
                at(v, &["critical", "image"]).remove("docker-manifest-digest");
            },
            "critical.image",
        ),
        (
            "unknown image key",
            |v| {
                at(v, &["critical", "image"]).insert("unexpected".into(), json!(1));
            },
            "critical.image",
        ),
        (
            "digest not a string",
            |v| {
                v["critical"]["image"]["docker-manifest-digest"] = json!(1);
            },
            "critical.image.docker-manifest-digest",
        ),
        (
            "digest with path characters",
            |v| {
                v["critical"]["image"]["docker-manifest-digest"] = json!("sha256:../..");
            },
            "critical.image.docker-manifest-digest",
        ),
        (
            "digest with a slash",
            |v| {
                v["critical"]["image"]["docker-manifest-digest"] =
                    json!("sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
            },
            "critical.image.docker-manifest-digest",
        ),
        (
            "digest upper-case",
            |v| {
                v["critical"]["image"]["docker-manifest-digest"] = json!(DIGEST.to_uppercase());
            },
            "critical.image.docker-manifest-digest",
        ),
        (
            "identity not an object",
            |v| {
                v["critical"]["identity"] = json!(1);
            },
            "critical.identity",
        ),
        (
            "reference missing",
            |v| {
                at(v, &["critical", "identity"]).remove("docker-reference");
            },
            "critical.identity",
        ),
        (
            "unknown identity key",
            |v| {
                at(v, &["critical", "identity"]).insert("unexpected".into(), json!(1));
            },
            "critical.identity",
        ),
        (
            "reference not a string",
            |v| {
                v["critical"]["identity"]["docker-reference"] = json!(1);
            },
            "critical.identity.docker-reference",
        ),
        (
            "creator not a string",
            |v| {
                v["optional"]["creator"] = json!(1);
            },
            "optional.creator",
        ),
        (
            "timestamp a string",
            |v| {
                v["optional"]["timestamp"] = json!("unexpected");
            },
            "optional.timestamp",
        ),
        (
            "timestamp fractional",
            |v| {
                v["optional"]["timestamp"] = json!(0.5);
            },
            "optional.timestamp",
        ),
    ];
    for (name, f, field) in cases {
        let mut v = valid();
        f(&mut v);
        match parse(&v) {
            Err(Error::InvalidPayload { field: got, reason }) => {
                assert_eq!(got, field, "{name}: {reason}");
            }
            other => panic!("{name}: expected an InvalidPayload error, got {other:?}"),
        }
    }
}

#[test]
fn duplicate_keys_are_refused_at_every_level() {
    let base = r#"{"critical":{"identity":{"docker-reference":"r"},"image":{"docker-manifest-digest":"DIGEST"},"type":"atomic container signature"},"optional":{}}"#
        .replace("DIGEST", DIGEST);
    assert!(Payload::parse(base.as_bytes(), PayloadKind::Atomic).is_ok());
    let cases = [
        (
            "payload",
            base.replacen(r#","optional":{}"#, r#","optional":{},"optional":{}"#, 1),
        ),
        (
            "critical",
            base.replacen(
                r#","type":"atomic container signature""#,
                r#","type":"atomic container signature","type":"atomic container signature""#,
                1,
            ),
        ),
        (
            "critical.image",
            base.replacen(
                r#"{"docker-manifest-digest":"#,
                &format!(r#"{{"docker-manifest-digest":"{DIGEST}","docker-manifest-digest":"#),
                1,
            ),
        ),
        (
            "critical.identity",
            base.replacen(
                r#"{"docker-reference":"r"}"#,
                r#"{"docker-reference":"a","docker-reference":"r"}"#,
                1,
            ),
        ),
        (
            "optional",
            base.replacen(
                r#""optional":{}"#,
                r#""optional":{"creator":"a","creator":"b"}"#,
                1,
            ),
        ),
    ];
    for (field, text) in cases {
        match Payload::parse(text.as_bytes(), PayloadKind::Atomic) {
            Err(Error::InvalidPayload { field: got, reason }) => {
                assert_eq!(got, field, "{text}");
                assert!(reason.contains("duplicate key"), "{reason}");
            }
            other => panic!("{text}: {other:?}"),
        }
    }
}

#[test]
fn optional_is_lenient_where_containers_image_is() {
    let mut v = valid();
    at(&mut v, &["optional"]).insert("unexpected".into(), json!({"nested": [1, 2]}));
    assert_eq!(parse(&v).unwrap(), parse(&valid()).unwrap());
    // An integral float is an integer timestamp (Go parses a float64 and checks it is whole).
    let mut v = valid();
    v["optional"]["timestamp"] = json!(1_700_000_000.0);
    assert_eq!(parse(&v).unwrap().timestamp, Some(1_700_000_000));
    // Optional fields may be missing.
    let mut v = valid();
    v["optional"] = json!({});
    let p = parse(&v).unwrap();
    assert_eq!((p.creator, p.timestamp), (None, None));
}

#[test]
fn not_json_or_not_an_object_is_refused() {
    for text in [
        &b"&"[..],
        b"1",
        b"null",
        b"[]",
        b"",
        b"{\"critical\":",
        b"\xff\xfe",
    ] {
        assert!(
            matches!(
                Payload::parse(text, PayloadKind::Atomic),
                Err(Error::InvalidPayload { .. })
            ),
            "{text:?}"
        );
    }
    let mut text = serde_json::to_vec(&valid()).unwrap();
    text.extend_from_slice(b" {}");
    assert!(
        Payload::parse(&text, PayloadKind::Atomic).is_err(),
        "trailing data"
    );
}

#[test]
fn cosign_payloads_take_null_optional() {
    let text = format!(
        r#"{{"critical":{{"identity":{{"docker-reference":"example.com/repo"}},"image":{{"docker-manifest-digest":"{DIGEST}"}},"type":"cosign container image signature"}},"optional":null}}"#
    );
    let p = Payload::parse(text.as_bytes(), PayloadKind::Cosign).unwrap();
    assert_eq!(p.docker_reference, "example.com/repo");
    assert_eq!(p.to_bytes(), text.as_bytes());
    assert!(Payload::parse(text.as_bytes(), PayloadKind::Atomic).is_err());
}

#[test]
fn written_bytes_are_skopeos() {
    // The shape skopeo 1.9.3 writes (gpg_peers.rs checks strata's bytes against real `standalone-sign` output).
    let p = Payload {
        kind: PayloadKind::Atomic,
        docker_reference: "127.0.0.1:5000/strata/hello:v1".into(),
        manifest_digest: Digest::parse(DIGEST).unwrap(),
        creator: Some("atomic 5.23.1".into()),
        timestamp: Some(1_764_892_800),
    };
    assert_eq!(
        String::from_utf8(p.to_bytes()).unwrap(),
        format!(
            r#"{{"critical":{{"identity":{{"docker-reference":"127.0.0.1:5000/strata/hello:v1"}},"image":{{"docker-manifest-digest":"{DIGEST}"}},"type":"atomic container signature"}},"optional":{{"creator":"atomic 5.23.1","timestamp":1764892800}}}}"#
        )
    );
    let bare = Payload {
        creator: None,
        timestamp: None,
        ..p
    };
    assert!(
        String::from_utf8(bare.to_bytes())
            .unwrap()
            .ends_with(r#""optional":{}}"#)
    );
}

#[test]
fn oversized_payload_is_refused_by_size() {
    let big = vec![b' '; strata_signature::MAX_PAYLOAD_SIZE + 1];
    assert!(matches!(
        Payload::parse(&big, PayloadKind::Atomic),
        Err(Error::TooLarge { .. })
    ));
}
