//! Writing to a real registry through `strata_source::Repository`: Debian's `docker-registry`
//! (Distribution 2.8) on 127.0.0.1, open, behind htpasswd (Basic) and behind token auth.
//!
//! Covered: blob `HEAD`, monolithic uploads (`POST` then `PUT ?digest=`, to an absolute `Location` as
//! Distribution sends it and to a relative one), streamed uploads, manifest `PUT`s by tag and digest (the
//! registry's `Docker-Content-Digest` checked; a manifest naming a missing blob refused with
//! `MANIFEST_BLOB_UNKNOWN`), skopeo reading what was written, and referrers: Distribution 2.8 has no
//! referrers API (a plain-text 404), so a referrer goes into the `sha256-<hex>` tag's OCI index, which a second
//! referrer extends without losing the first or another client's entry (unknown fields kept), and which a
//! referrer pushed again leaves as it was.
//!
//! Published strata indexes (`strata_lazy::published`) on the same registry: the sample image (pushed with
//! skopeo) indexed, published, discovered (the newest of two by creation time), every index fetched equal to
//! the one built; a lying index (another layer's) refused at publishing and at fetching.

// Test code: a failed step should abort the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

use serde_json::{Value, json};
use strata_oci::{Digest, media};
use strata_source::{
    BlobPush, Credentials, ReferrersVia, Repository, SourceOptions, list_tags, referrers_tag,
    registry_error,
};
use strata_tests::registry::{
    Auth, Fault, FaultProxy, Registry, Rule, TokenServer, USER, creds, http_status,
};
use strata_tests::{require_tool, run};
use tempfile::TempDir;

const EMPTY_JSON: &str = "application/vnd.oci.empty.v1+json";

/// Options for a plain-HTTP test registry, reading no auth file or registries.conf of the machine.
fn options(tmp: &TempDir, with_creds: bool) -> SourceOptions {
    let auth = tmp.path().join("auth.json");
    let conf = tmp.path().join("registries.conf");
    std::fs::write(&auth, r#"{"auths":{}}"#).unwrap();
    std::fs::write(&conf, "").unwrap();
    let mut o = SourceOptions::default();
    o.tls_verify = Some(false);
    o.authfile = Some(auth);
    o.registries_conf = Some(conf);
    if with_creds {
        o.credentials = Some(Credentials::parse(&creds()).unwrap());
    }
    o
}

/// The OCI empty descriptor (`{}`), the config of artifacts.
fn empty_descriptor() -> Value {
    json!({"mediaType": EMPTY_JSON, "digest": Digest::sha256(b"{}").to_string(), "size": 2})
}

/// Pushes a one-layer OCI image (empty config, `layer` as its layer) under `tag`; its manifest's digest
/// and bytes.
fn push_image(repo: &Repository, tag: &str, layer: &[u8]) -> (Digest, Vec<u8>) {
    let layer_digest = Digest::sha256(layer);
    repo.push_blob(&Digest::sha256(b"{}"), b"{}").unwrap();
    repo.push_blob(&layer_digest, layer).unwrap();
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_MANIFEST,
        "config": {"mediaType": media::OCI_CONFIG, "digest": Digest::sha256(b"{}").to_string(), "size": 2},
        "layers": [{"mediaType": media::OCI_LAYER, "digest": layer_digest.to_string(), "size": layer.len()}],
    });
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let pushed = repo
        .push_manifest(Some(tag), media::OCI_MANIFEST, &bytes)
        .unwrap();
    assert_eq!(pushed.digest, Digest::sha256(&bytes));
    (pushed.digest, bytes)
}

/// An artifact manifest of `artifact_type` about `subject` (one blob, `payload`, pushed first).
fn artifact(repo: &Repository, subject: &Digest, artifact_type: &str, payload: &[u8]) -> Vec<u8> {
    repo.push_blob(&Digest::sha256(b"{}"), b"{}").unwrap();
    repo.push_blob(&Digest::sha256(payload), payload).unwrap();
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": empty_descriptor(),
        "layers": [{"mediaType": "application/octet-stream", "digest": Digest::sha256(payload).to_string(), "size": payload.len()}],
        "subject": {"mediaType": media::OCI_MANIFEST, "digest": subject.to_string(), "size": 1},
        "annotations": {"org.opencontainers.image.created": "2026-01-01T00:00:00Z"},
    }))
    .unwrap()
}

#[test]
fn blobs_and_manifests_are_written_and_read_back() {
    if !require_tool("docker-registry") || !require_tool("skopeo") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let reg = Registry::start(Auth::Open);
    // The first upload's Location made relative, as some registries send it.
    let proxy = FaultProxy::start(
        &reg.host,
        vec![Rule::new("/blobs/uploads/", Fault::RelativeLocation, 1)],
    );
    let repo = Repository::open(&proxy.image("push/a"), &options(&tmp, false)).unwrap();
    assert_eq!(repo.name(), format!("{}/push/a", proxy.host));

    let config = Digest::sha256(b"{}");
    assert_eq!(repo.blob_size(&config).unwrap(), None);
    assert_eq!(repo.push_blob(&config, b"{}").unwrap(), BlobPush::Uploaded);
    assert_eq!(repo.push_blob(&config, b"{}").unwrap(), BlobPush::Existed);
    assert_eq!(repo.blob_size(&config).unwrap(), Some(2));
    let relative = proxy
        .seen()
        .iter()
        .position(|s| matches!(s.fault, Some(Fault::RelativeLocation)))
        .expect("the upload went through the proxy");
    let put = &proxy.seen()[relative + 1].head;
    assert_eq!(put.method, "PUT", "{}", proxy.describe());
    assert!(put.target.contains("digest=sha256%3A"), "{}", put.target);

    // Bytes that are not the digest named: refused before anything is sent.
    let before = proxy.seen().len();
    let err = repo.push_blob(&config, b"{ }").unwrap_err();
    assert!(err.to_string().contains(&config.to_string()), "{err}");
    assert_eq!(proxy.seen().len(), before);

    // A streamed upload, read back verified.
    let big: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let big_digest = Digest::sha256(&big);
    assert_eq!(
        repo.push_blob_from(&big_digest, big.len() as u64, &mut &big[..])
            .unwrap(),
        BlobPush::Uploaded
    );
    assert_eq!(repo.read_blob(&big_digest, 1 << 20).unwrap(), big);
    assert!(repo.read_blob(&big_digest, 1000).is_err());
    // A streamed upload whose bytes are not its digest: the registry refuses it.
    let wrong = Digest::sha256(b"something else");
    let err = repo
        .push_blob_from(&wrong, big.len() as u64, &mut &big[..])
        .unwrap_err();
    assert_eq!(
        registry_error(&err).and_then(|e| e.status()),
        Some(400),
        "{err}"
    );
    assert!(err.to_string().contains("DIGEST_INVALID"), "{err}");

    // The manifest, by tag and by digest; the same bytes come back.
    let (digest, bytes) = push_image(&repo, "v1", &big);
    let by_tag = repo.manifest("v1").unwrap();
    assert_eq!(by_tag.bytes, bytes);
    assert_eq!(by_tag.digest, digest);
    assert_eq!(by_tag.media_type.as_deref(), Some(media::OCI_MANIFEST));
    assert_eq!(repo.manifest(&digest.to_string()).unwrap().bytes, bytes);
    let by_digest = repo
        .push_manifest(None, media::OCI_MANIFEST, &bytes)
        .unwrap();
    assert_eq!(by_digest.digest, digest);
    assert!(!by_digest.subject_processed);

    // skopeo reads what strata wrote.
    let out = run(Command::new("skopeo").args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &reg.image("push/a:v1"),
    ]));
    assert_eq!(out.stdout, bytes);

    // A manifest naming a blob the repository lacks: Distribution's MANIFEST_BLOB_UNKNOWN.
    let missing = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_MANIFEST,
        "config": empty_descriptor(),
        "layers": [{"mediaType": media::OCI_LAYER, "digest": Digest::sha256(b"nope").to_string(), "size": 4}],
    }))
    .unwrap();
    let err = repo
        .push_manifest(Some("v2"), media::OCI_MANIFEST, &missing)
        .unwrap_err();
    assert!(err.to_string().contains("MANIFEST_BLOB_UNKNOWN"), "{err}");
    assert!(
        repo.push_manifest(Some("bad/tag"), media::OCI_MANIFEST, &bytes)
            .is_err()
    );
    assert!(repo.manifest("../../x").is_err());
}

#[test]
fn referrers_fall_back_to_the_tag_schema_and_keep_every_entry() {
    if !require_tool("docker-registry") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let reg = Registry::start(Auth::Open);
    let repo = Repository::open(&reg.image("ref/img"), &options(&tmp, false)).unwrap();
    let (subject, _) = push_image(&repo, "v1", b"layer bytes");
    let tag = referrers_tag(&subject);
    assert_eq!(tag, format!("sha256-{}", subject.hex()));

    // Distribution 2.8 has no referrers API: a plain-text 404.
    assert_eq!(
        http_status(&reg.host, &format!("/v2/ref/img/referrers/{subject}")),
        Some(404)
    );
    let none = repo.referrers(&subject, None).unwrap();
    assert_eq!(none.via, ReferrersVia::TagSchema);
    assert!(none.referrers.is_empty());

    // The first referrer makes the tag's index.
    let a = artifact(&repo, &subject, "application/x.first", b"first");
    let pushed_a = repo.push_referrer(None, media::OCI_MANIFEST, &a).unwrap();
    assert_eq!(pushed_a.via, ReferrersVia::TagSchema);
    assert!(!pushed_a.manifest.subject_processed);
    let found = repo.referrers(&subject, None).unwrap();
    assert_eq!(found.via, ReferrersVia::TagSchema);
    assert_eq!(found.referrers.len(), 1);
    let first = &found.referrers[0];
    assert_eq!(first.digest, Digest::sha256(&a));
    assert_eq!(first.size, a.len() as u64);
    assert_eq!(first.media_type, media::OCI_MANIFEST);
    assert_eq!(first.artifact_type.as_deref(), Some("application/x.first"));
    assert_eq!(
        first
            .annotations
            .get("org.opencontainers.image.created")
            .map(String::as_str),
        Some("2026-01-01T00:00:00Z")
    );
    let tags = list_tags(&reg.image("ref/img"), &options(&tmp, false)).unwrap();
    assert!(tags.tags.contains(&tag), "{:?}", tags.tags);

    // Another client adds an entry with a field strata does not know.
    let mut index: Value = serde_json::from_slice(&repo.manifest(&tag).unwrap().bytes).unwrap();
    let foreign_blob = artifact(&repo, &subject, "application/x.other", b"other");
    let foreign_digest = repo
        .push_manifest(None, media::OCI_MANIFEST, &foreign_blob)
        .unwrap()
        .digest;
    index["manifests"].as_array_mut().unwrap().insert(
        0,
        json!({"mediaType": media::OCI_MANIFEST, "digest": foreign_digest.to_string(),
               "size": foreign_blob.len(), "artifactType": "application/x.other", "x-foreign": [1, 2]}),
    );
    repo.push_manifest(
        Some(&tag),
        media::OCI_INDEX,
        &serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();

    // A second referrer extends the index; nothing is lost.
    let b = artifact(&repo, &subject, "application/x.first", b"second");
    repo.push_referrer(None, media::OCI_MANIFEST, &b).unwrap();
    let raw = repo.manifest(&tag).unwrap();
    assert_eq!(raw.media_type.as_deref(), Some(media::OCI_INDEX));
    let index: Value = serde_json::from_slice(&raw.bytes).unwrap();
    let entries = index["manifests"].as_array().unwrap();
    let digests: Vec<&str> = entries
        .iter()
        .map(|e| e["digest"].as_str().unwrap())
        .collect();
    assert_eq!(
        digests,
        [
            foreign_digest.to_string(),
            Digest::sha256(&a).to_string(),
            Digest::sha256(&b).to_string()
        ]
    );
    assert_eq!(entries[0]["x-foreign"], json!([1, 2]));

    // Filtered by artifact type, in the order listed.
    let firsts = repo
        .referrers(&subject, Some("application/x.first"))
        .unwrap();
    let listed: Vec<Digest> = firsts.referrers.iter().map(|r| r.digest.clone()).collect();
    assert_eq!(listed, [Digest::sha256(&a), Digest::sha256(&b)]);

    // Pushing a referrer again changes nothing.
    repo.push_referrer(None, media::OCI_MANIFEST, &a).unwrap();
    assert_eq!(repo.manifest(&tag).unwrap().digest, raw.digest);

    // A tag of that name that is not an index is an error naming it, not overwritten.
    let (other_subject, image) = push_image(&repo, "v2", b"other layer");
    repo.push_manifest(
        Some(&referrers_tag(&other_subject)),
        media::OCI_MANIFEST,
        &image,
    )
    .unwrap();
    let err = repo.referrers(&other_subject, None).unwrap_err();
    assert!(
        err.to_string().contains(&referrers_tag(&other_subject)),
        "{err}"
    );
    let c = artifact(&repo, &other_subject, "application/x.first", b"third");
    assert!(repo.push_referrer(None, media::OCI_MANIFEST, &c).is_err());
}

#[test]
fn writes_ask_bearer_tokens_for_push_and_basic_sends_credentials() {
    if !require_tool("docker-registry") || !require_tool("htpasswd") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let reg = Registry::start(Auth::Token(TokenServer::start()));
    let Auth::Token(server) = &reg.auth else {
        unreachable!()
    };
    let config = Digest::sha256(b"{}");

    // Anonymous: reads are granted, pushes are not.
    let anonymous = Repository::open(&reg.image("tok/img"), &options(&tmp, false)).unwrap();
    assert_eq!(anonymous.blob_size(&config).unwrap(), None);
    let err = anonymous.push_blob(&config, b"{}").unwrap_err();
    assert_eq!(
        registry_error(&err).and_then(|e| e.status()),
        Some(401),
        "{err}"
    );

    server.clear_requests();
    let repo = Repository::open(&reg.image("tok/img"), &options(&tmp, true)).unwrap();
    let (subject, _) = push_image(&repo, "v1", b"token layer");
    let a = artifact(&repo, &subject, "application/x.first", b"first");
    assert_eq!(
        repo.push_referrer(None, media::OCI_MANIFEST, &a)
            .unwrap()
            .via,
        ReferrersVia::TagSchema
    );
    let requests = server.requests();
    assert!(
        requests.iter().any(|r| r.authenticated
            && r.account.as_deref() == Some(USER)
            && r.scopes.iter().any(|s| s == "repository:tok/img:pull,push")),
        "{requests:?}"
    );
    // One token served every write (cached by scope).
    let push_tokens = requests
        .iter()
        .filter(|r| r.scopes.iter().any(|s| s.ends_with(":pull,push")))
        .count();
    assert_eq!(push_tokens, 1, "{requests:?}");
    assert_eq!(repo.referrers(&subject, None).unwrap().referrers.len(), 1);

    // Basic: the same writes with htpasswd credentials; none without.
    let basic = Registry::start(Auth::Htpasswd);
    let anonymous = Repository::open(&basic.image("b/img"), &options(&tmp, false)).unwrap();
    let err = anonymous.push_blob(&config, b"{}").unwrap_err();
    assert_eq!(registry_error(&err).and_then(|e| e.status()), Some(401));
    let repo = Repository::open(&basic.image("b/img"), &options(&tmp, true)).unwrap();
    let (subject, bytes) = push_image(&repo, "v1", b"basic layer");
    assert_eq!(repo.manifest("v1").unwrap().bytes, bytes);
    let a = artifact(&repo, &subject, "application/x.first", b"first");
    repo.push_referrer(None, media::OCI_MANIFEST, &a).unwrap();
    assert_eq!(repo.referrers(&subject, None).unwrap().referrers.len(), 1);
}

/// A registry with the referrers API, played by a script (Debian ships none): referrers are listed from
/// it, across `Link` pages and filtered by artifact type even when the registry does not filter, and a
/// referrer the registry answers with `OCI-Subject` is not added to a tag index.
#[test]
fn a_registry_with_the_referrers_api_is_asked_and_not_the_tag() {
    use std::io::Read as _;
    use std::sync::{Arc, Mutex};
    use strata_tests::registry::{ScriptServer, write_response};

    let subject = Digest::sha256(b"subject");
    let entry = |n: u8, t: &str| {
        json!({"mediaType": media::OCI_MANIFEST, "digest": Digest::sha256(&[n]).to_string(), "size": 10,
               "artifactType": t, "annotations": {"n": n.to_string()}})
    };
    let pages = [
        json!({"schemaVersion": 2, "mediaType": media::OCI_INDEX,
               "manifests": [entry(1, "application/x.first"), entry(2, "application/x.other")]}),
        json!({"schemaVersion": 2, "mediaType": media::OCI_INDEX,
               "manifests": [entry(3, "application/x.first")]}),
    ];
    let log = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = Arc::clone(&log);
    let page_path = format!("/v2/api/img/referrers/{subject}");
    let subject_header = subject.to_string();
    let server = ScriptServer::start(move |head, stream| {
        seen.lock()
            .unwrap()
            .push(format!("{} {}", head.method, head.target));
        let json = [("Content-Type", media::OCI_INDEX.to_owned())];
        if head.target == "/v2/" {
            write_response(stream, "200 OK", &[], b"{}");
        } else if head.target.starts_with(&page_path) && head.target.contains("page=2") {
            write_response(stream, "200 OK", &json, pages[1].to_string().as_bytes());
        } else if head.target.starts_with(&page_path) {
            let mut headers = json.to_vec();
            headers.push(("Link", format!("<{page_path}?page=2>; rel=\"next\"")));
            write_response(stream, "200 OK", &headers, pages[0].to_string().as_bytes());
        } else if head.method == "PUT" {
            let length = head
                .header("content-length")
                .and_then(|l| l.parse::<u64>().ok())
                .unwrap_or(0);
            let mut body = Vec::new();
            let _ = stream.take(length).read_to_end(&mut body);
            let headers = [
                ("Docker-Content-Digest", Digest::sha256(&body).to_string()),
                ("OCI-Subject", subject_header.clone()),
            ];
            write_response(stream, "201 Created", &headers, b"");
        } else {
            write_response(stream, "404 Not Found", &[], b"404 page not found");
        }
    });
    let tmp = tempfile::tempdir().unwrap();
    let repo = Repository::open(&server.image("api/img"), &options(&tmp, false)).unwrap();

    let all = repo.referrers(&subject, None).unwrap();
    assert_eq!(all.via, ReferrersVia::Api);
    assert_eq!(all.referrers.len(), 3);
    let firsts = repo
        .referrers(&subject, Some("application/x.first"))
        .unwrap();
    let listed: Vec<Digest> = firsts.referrers.iter().map(|r| r.digest.clone()).collect();
    assert_eq!(listed, [Digest::sha256(&[1]), Digest::sha256(&[3])]);
    assert!(
        log.lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("artifactType=application%2Fx.first")),
        "{:?}",
        log.lock().unwrap()
    );

    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": media::OCI_MANIFEST, "artifactType": "application/x.first",
        "config": empty_descriptor(), "layers": [],
        "subject": {"mediaType": media::OCI_MANIFEST, "digest": subject.to_string(), "size": 7},
    }))
    .unwrap();
    let pushed = repo
        .push_referrer(None, media::OCI_MANIFEST, &manifest)
        .unwrap();
    assert_eq!(pushed.via, ReferrersVia::Api);
    assert!(pushed.manifest.subject_processed);
    let log = log.lock().unwrap();
    assert!(
        !log.iter().any(|l| l.contains(&referrers_tag(&subject))),
        "{log:?}"
    );
}

#[test]
fn published_indexes_are_found_and_checked_against_their_layers() {
    use std::time::{Duration, UNIX_EPOCH};
    use strata_lazy::published::{self, ARTIFACT_TYPE, INDEX_MEDIA_TYPE, LAYER_DIGEST_ANNOTATION};

    if !require_tool("docker-registry") || !require_tool("skopeo") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("sample");
    strata_fixtures::fixture("sample")
        .unwrap()
        .write_layout(&layout, "v1")
        .unwrap();
    let reg = Registry::start(Auth::Open);
    reg.push(&format!("oci:{}:v1", layout.display()), "pub/img:v1", &[]);
    let name = reg.image("pub/img:v1");
    let opts = options(&tmp, false);
    let source = strata_source::open_with(&name, &opts).unwrap();
    let image = strata_source::resolve(source.as_ref(), &strata_oci::Platform::host()).unwrap();
    let specs = strata_layer::layer_specs(&image).unwrap();
    assert!(specs.len() >= 2, "the sample has several layers");
    let built: Vec<(Digest, Vec<u8>)> = strata_layer::index_layers(source.as_ref(), &specs)
        .unwrap()
        .into_iter()
        .map(|l| (l.spec.digest.clone(), l.index.try_to_bytes().unwrap()))
        .collect();
    let repo = Repository::open(&name, &opts).unwrap();
    let subject = image.instance.digest.clone();
    assert_eq!(published::discover(&repo, &subject).unwrap(), None);

    // A lying index (the first layer's, given for the second) is refused before anything is pushed.
    let lie = [(built[1].0.clone(), built[0].1.clone())];
    let err = published::publish(&repo, &image.instance, &lie).unwrap_err();
    assert!(err.to_string().contains("describes blob"), "{err}");
    // So is an index for a blob that is not one of the image's layers.
    let stranger = [(Digest::sha256(b"x"), built[0].1.clone())];
    assert!(published::publish(&repo, &image.instance, &stranger).is_err());

    // Two publications; the newer by creation time wins, though listed first.
    let later = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let newer = published::publish_at(&repo, &image.instance, &built, later).unwrap();
    assert_eq!(newer.via, ReferrersVia::TagSchema);
    let older = published::publish_at(
        &repo,
        &image.instance,
        &built[..1],
        later - Duration::from_secs(3600),
    )
    .unwrap();
    assert_ne!(older.manifest.digest, newer.manifest.digest);
    // Publishing the same again changes nothing.
    let again = published::publish_at(&repo, &image.instance, &built, later).unwrap();
    assert_eq!(again.manifest.digest, newer.manifest.digest);
    assert_eq!(repo.referrers(&subject, None).unwrap().referrers.len(), 2);

    let found = published::discover(&repo, &subject).unwrap().unwrap();
    assert_eq!(found.artifact, newer.manifest.digest);
    assert_eq!(found.layers.len(), built.len());
    for (layer, bytes) in &built {
        let entry = &found.layers[layer];
        assert_eq!(entry.digest, Digest::sha256(bytes));
        let index =
            published::fetch_index(&repo, entry, layer, Some(entry_size(&specs, layer))).unwrap();
        assert_eq!(index.layer().blob_digest, layer.to_string());
        assert_eq!(
            index.len(),
            strata_index::LayerIndex::from_bytes(bytes.clone())
                .unwrap()
                .len()
        );
    }

    // The artifact as FORMAT.md describes it.
    let manifest: Value =
        serde_json::from_slice(&repo.manifest(&found.artifact.to_string()).unwrap().bytes).unwrap();
    assert_eq!(manifest["artifactType"], ARTIFACT_TYPE);
    assert_eq!(manifest["config"]["mediaType"], EMPTY_JSON);
    assert_eq!(manifest["subject"]["digest"], subject.to_string());
    assert_eq!(manifest["layers"][0]["mediaType"], INDEX_MEDIA_TYPE);
    assert_eq!(
        manifest["layers"][0]["annotations"][LAYER_DIGEST_ANNOTATION],
        specs[0].digest.to_string()
    );
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.created"],
        "2027-01-15T08:00:00Z"
    );

    // An index listed for the wrong layer is refused when fetched.
    let (first, second) = (&built[0].0, &built[1].0);
    let err = published::fetch_index(&repo, &found.layers[first], second, None).unwrap_err();
    assert!(err.to_string().contains(&second.to_string()), "{err}");
    assert!(err.to_string().contains("describes blob"), "{err}");
    // And one whose blob size disagrees with the manifest's.
    assert!(published::fetch_index(&repo, &found.layers[first], first, Some(1)).is_err());
}

/// The size the manifest gives layer `digest`.
fn entry_size(specs: &[strata_layer::LayerSpec], digest: &Digest) -> u64 {
    specs
        .iter()
        .find(|s| &s.digest == digest)
        .and_then(|s| s.size)
        .unwrap()
}

#[test]
fn a_published_index_lets_a_view_read_layers_by_range() {
    use std::sync::Arc;
    use strata_layer::{ImageView, IndexOptions, IndexOrigin, ViewOptions, obtain_layers};
    use strata_lazy::published::{self, PublishedFinder};

    if !require_tool("docker-registry") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("sample");
    strata_fixtures::fixture("sample")
        .unwrap()
        .write_layout(&layout, "v1")
        .unwrap();
    let reg = Registry::start(Auth::Open);
    reg.push(&format!("oci:{}:v1", layout.display()), "find/img:v1", &[]);
    let opts = options(&tmp, false);
    let platform = strata_oci::Platform::host();

    // Indexed by a full read, then published.
    let source: Arc<dyn strata_source::ImageSource> =
        strata_source::open_with(&reg.image("find/img:v1"), &opts)
            .unwrap()
            .into();
    let image = strata_source::resolve(source.as_ref(), &platform).unwrap();
    let specs = strata_layer::layer_specs(&image).unwrap();
    let built: Vec<(Digest, Vec<u8>)> = strata_layer::index_layers(source.as_ref(), &specs)
        .unwrap()
        .into_iter()
        .map(|l| (l.spec.digest.clone(), l.index.try_to_bytes().unwrap()))
        .collect();
    let repo = Repository::open(&reg.image("find/img"), &opts).unwrap();
    let artifact = published::publish(&repo, &image.instance, &built)
        .unwrap()
        .manifest
        .digest;
    let full = ImageView::open(Arc::clone(&source), &platform).unwrap();

    // Another reader, through a proxy that counts: every layer from the published index, no layer blob
    // fetched whole.
    let proxy = FaultProxy::start(&reg.host, Vec::new());
    let source: Arc<dyn strata_source::ImageSource> =
        strata_source::open_with(&proxy.image("find/img:v1"), &opts)
            .unwrap()
            .into();
    let finder = Arc::new(PublishedFinder::new(opts.clone()));
    let indexes = IndexOptions {
        index_dir: None,
        finders: vec![finder],
    };
    let layers = obtain_layers(&source, &image, &indexes).unwrap();
    for layer in &layers {
        assert_eq!(layer.origin, IndexOrigin::Published(artifact.clone()));
    }
    let view = ImageView::open_with(
        source,
        &platform,
        &ViewOptions {
            indexes,
            ..ViewOptions::default()
        },
    )
    .unwrap();
    for path in [
        "etc/os-release",
        "etc/passwd",
        "licenses/LICENSE",
        "etc/motd",
    ] {
        assert_eq!(
            view.read_file(path.as_bytes(), 1 << 20).unwrap(),
            full.read_file(path.as_bytes(), 1 << 20).unwrap(),
            "{path}"
        );
    }
    let layer_digests: Vec<String> = specs.iter().map(|s| s.digest.to_string()).collect();
    for seen in proxy.seen() {
        let whole_layer = seen.head.method == "GET"
            && layer_digests
                .iter()
                .any(|d| seen.head.target.ends_with(d.as_str()))
            && seen.head.header("range").is_none();
        assert!(!whole_layer, "a layer fetched whole:\n{}", proxy.describe());
    }
    assert!(
        proxy
            .seen()
            .iter()
            .any(|s| s.head.header("range").is_some()),
        "no range read:\n{}",
        proxy.describe()
    );

    // An index without span digests is not published: its range reads could not be checked.
    let mut bare = strata_index::IndexWriter::new();
    bare.set_layer(strata_index::LayerInfo {
        blob_digest: specs[0].digest.to_string(),
        ..Default::default()
    });
    let bare = [(specs[0].digest.clone(), bare.try_to_bytes().unwrap())];
    let err = published::publish(&repo, &image.instance, &bare).unwrap_err();
    assert!(err.to_string().contains("no span digests"), "{err}");
}
