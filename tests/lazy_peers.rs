//! The lazy-read test support proven with real peers only (issue 13): the eStargz and zstd:chunked fixtures
//! that ctr-remote and skopeo make carry their formats' annotations and tables of contents, and survive a push
//! to a real `docker-registry`; the proxy keeps connections alive, shapes the link, counts blob bytes as the
//! registry's own log does, makes tokens fail as expired ones do, and outlives a registry restart.
//!
//! Nothing here needs strata's lazy reads: these tests check the ground the lazy-read tests stand on.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::BTreeMap;
use std::io::Read as _;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::{Digest as _, Sha256};
use strata_tests::lazy::{
    ESTARGZ_TOC_DIGEST, ESTARGZ_UNCOMPRESSED_SIZE, Format, LazyImages, OS_RELEASE,
    ZSTD_CHUNKED_MANIFEST_CHECKSUM, ZSTD_CHUNKED_MANIFEST_POSITION, big_images, lazy_peers,
    varied_image, varied_images,
};
use strata_tests::proxy::{Fault, FaultProxy, HttpConnection, Link, Rule};
use strata_tests::registry::{Auth, Registry, TokenServer, USER, creds};
use strata_tests::{OciLayout, require_tool, run};

const TLS_OFF: &str = "--tls-verify=false";

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn peers() -> bool {
    lazy_peers() && require_tool("docker-registry") && require_tool("htpasswd")
}

/// The uncompressed TOC of an eStargz blob: the 51-byte footer names the offset of the gzip member holding
/// a tar whose one entry is `stargz.index.json`.
fn estargz_toc(blob: &[u8]) -> Vec<u8> {
    let footer = &blob[blob.len() - 51..];
    assert_eq!(&footer[..4], b"\x1f\x8b\x08\x04", "gzip header with FEXTRA");
    assert_eq!(&footer[12..14], b"SG", "stargz subfield");
    assert_eq!(&footer[32..38], b"STARGZ", "footer magic");
    let offset = usize::from_str_radix(std::str::from_utf8(&footer[16..32]).unwrap(), 16).unwrap();
    let gz = flate2::read::GzDecoder::new(&blob[offset..blob.len() - 51]);
    let mut archive = tar::Archive::new(gz);
    let mut entry = archive.entries().unwrap().next().unwrap().unwrap();
    assert_eq!(entry.path().unwrap().to_str(), Some("stargz.index.json"));
    let mut toc = Vec::new();
    entry.read_to_end(&mut toc).unwrap();
    toc
}

/// The compressed and uncompressed TOC of a zstd:chunked blob, by its `manifest-position` annotation
/// (`offset:length:uncompressed length:1`), after checking the 40-byte footer in its skippable frame.
fn zstd_chunked_toc(blob: &[u8], position: &str) -> (Vec<u8>, Vec<u8>) {
    let parts: Vec<u64> = position.split(':').map(|p| p.parse().unwrap()).collect();
    let [offset, length, uncompressed, kind] = parts[..] else {
        panic!("position {position}");
    };
    assert_eq!(kind, 1, "manifest type");
    let footer = &blob[blob.len() - 48..];
    assert_eq!(&footer[..4], b"\x50\x2a\x4d\x18", "skippable frame magic");
    assert_eq!(&footer[40..], b"GnUlInUx", "footer magic");
    let field = |i: usize| u64::from_le_bytes(footer[8 + 8 * i..16 + 8 * i].try_into().unwrap());
    assert_eq!(
        [field(0), field(1), field(2), field(3)],
        [offset, length, uncompressed, 1],
        "the footer repeats the position"
    );
    let (offset, length) = (offset as usize, length as usize);
    let compressed = blob[offset..offset + length].to_vec();
    let toc = zstd::decode_all(&compressed[..]).unwrap();
    assert_eq!(toc.len() as u64, uncompressed, "uncompressed TOC length");
    (compressed, toc)
}

/// The TOC of every layer of `format`, checked against the layer annotations.
fn tocs(images: &LazyImages, format: Format) -> Vec<Value> {
    let layout = OciLayout::open(images.layout(format));
    images
        .layers(format)
        .iter()
        .map(|layer| {
            let what = format!("{} layer {}", format.name(), layer["digest"]);
            assert_eq!(layer["mediaType"], format.layer_media_type(), "{what}");
            let annotations = layer["annotations"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            let mut keys: Vec<&str> = annotations.keys().map(String::as_str).collect();
            keys.sort_unstable();
            let mut want = format.layer_annotations().to_vec();
            want.sort_unstable();
            assert_eq!(keys, want, "{what}: annotations {annotations:?}");
            let blob = layout.read_blob(layer["digest"].as_str().unwrap());
            let toc = match format {
                Format::Gzip => return Value::Null,
                Format::Estargz => estargz_toc(&blob),
                Format::ZstdChunkedCtr | Format::ZstdChunkedSkopeo => {
                    let (compressed, toc) = zstd_chunked_toc(
                        &blob,
                        annotations[ZSTD_CHUNKED_MANIFEST_POSITION]
                            .as_str()
                            .unwrap(),
                    );
                    assert_eq!(
                        annotations[ZSTD_CHUNKED_MANIFEST_CHECKSUM],
                        format!("sha256:{}", sha256_hex(&compressed)),
                        "{what}: the checksum is the compressed TOC's"
                    );
                    toc
                }
            };
            if let Some(digest) = annotations.get(ESTARGZ_TOC_DIGEST) {
                assert_eq!(
                    digest,
                    &format!("sha256:{}", sha256_hex(&toc)),
                    "{what}: the TOC digest is the uncompressed TOC's"
                );
                assert!(annotations[ESTARGZ_UNCOMPRESSED_SIZE].is_string(), "{what}");
            }
            serde_json::from_slice(&toc).unwrap()
        })
        .collect()
}

/// Per name, the TOC entries' types (`reg`, `chunk`, …) in order.
fn toc_kinds(toc: &Value) -> BTreeMap<String, Vec<String>> {
    let mut kinds: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for entry in toc["entries"].as_array().unwrap() {
        kinds
            .entry(entry["name"].as_str().unwrap().to_owned())
            .or_default()
            .push(entry["type"].as_str().unwrap().to_owned());
    }
    kinds
}

#[test]
fn converted_images_carry_their_formats_tables_of_contents() {
    if !peers() {
        return;
    }
    let started = Instant::now();
    let images = varied_images();
    eprintln!("varied fixtures in every format: {:?}", started.elapsed());
    for format in Format::ALL {
        let layers = images.layers(format);
        assert_eq!(layers.len(), 2, "{}: {layers:?}", format.name());
        let tocs = tocs(images, format);
        if format == Format::Gzip {
            continue;
        }
        let (one, two) = (toc_kinds(&tocs[0]), toc_kinds(&tocs[1]));
        let chunks = |name: &str| one[name].iter().filter(|k| *k == "chunk").count();
        match format {
            Format::Estargz | Format::ZstdChunkedCtr => {
                // 4 MiB chunks: 5 MiB + 123 B in two, 9 MiB + 4567 B in three; the landmark first.
                assert_eq!(chunks("usr/lib/medium.bin"), 1, "{}", format.name());
                assert_eq!(chunks("usr/lib/large.bin"), 2, "{}", format.name());
                assert_eq!(
                    tocs[0]["entries"][0]["name"],
                    ".no.prefetch.landmark",
                    "{}",
                    format.name()
                );
            }
            _ => {
                // Rollsum chunks: many per incompressible file.
                assert!(chunks("usr/lib/large.bin") > 10, "{:?}", one);
            }
        }
        for name in [
            "etc/os-release",
            "etc/empty",
            "etc/link",
            "usr/bin/tool-hardlink",
            "srv/fifo",
        ] {
            assert!(
                one.contains_key(name),
                "{}: no {name} in {one:?}",
                format.name()
            );
        }
        assert_eq!(
            one.keys().filter(|n| n.contains("/many/file-")).count(),
            300
        );
        for name in ["etc/.wh.gone", "opt/old/.wh..wh..opq", "opt/old/fresh"] {
            assert!(
                two.contains_key(name),
                "{}: no {name} in {two:?}",
                format.name()
            );
        }
    }
    // skopeo keeps the source's config (the uncompressed layers are unchanged); ctr-remote writes new ones.
    let config = |format| images.manifest(format)["config"]["digest"].clone();
    assert_eq!(config(Format::Gzip), config(Format::ZstdChunkedSkopeo));
    assert_ne!(config(Format::Gzip), config(Format::Estargz));
}

#[test]
fn the_source_image_is_deterministic() {
    if !(require_tool("umoci") && require_tool("skopeo")) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let digests: Vec<Value> = ["a", "b"]
        .iter()
        .map(|dir| {
            let layout = varied_image(&tmp.path().join(dir), "v");
            OciLayout::open(layout).descriptor("v")["digest"].clone()
        })
        .collect();
    assert_eq!(digests[0], digests[1]);
}

/// `skopeo inspect` JSON without `Name` (which names the host).
fn inspect(image: &str) -> (Value, Duration) {
    let started = Instant::now();
    let out = run(Command::new("skopeo").args(["inspect", TLS_OFF, image]));
    let elapsed = started.elapsed();
    let mut json: Value = serde_json::from_slice(&out.stdout).unwrap();
    json.as_object_mut().unwrap().remove("Name");
    (json, elapsed)
}

#[test]
fn pushed_lazy_images_keep_their_annotations_and_inspect_through_a_shaped_link() {
    if !peers() {
        return;
    }
    let images = varied_images();
    let reg = Registry::start(Auth::Open);
    let link = Link::wan();
    let shaped = FaultProxy::start_shaped(&reg.host, Vec::new(), link);
    for format in Format::ALL {
        let rest = format!("lazy/{}:v", format.name());
        reg.push(&images.oci(format), &rest, &[]);
        // The registry holds the very manifest (digests and annotations) the tools wrote.
        let raw =
            run(Command::new("skopeo").args(["inspect", "--raw", TLS_OFF, &reg.image(&rest)]));
        let pushed: Value = serde_json::from_slice(&raw.stdout).unwrap();
        assert_eq!(pushed, images.manifest(format), "{}", format.name());

        let (direct, direct_time) = inspect(&reg.image(&rest));
        let (through, shaped_time) = inspect(&shaped.image(&rest));
        assert_eq!(direct, through, "{}", format.name());
        let layers: Vec<&Value> = pushed["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| &l["digest"])
            .collect();
        assert_eq!(
            direct["Layers"]
                .as_array()
                .unwrap()
                .iter()
                .collect::<Vec<_>>(),
            layers
        );
        eprintln!(
            "{}: skopeo inspect {direct_time:?} direct, {shaped_time:?} over {link:?}",
            format.name()
        );
        // Loose: a request and its answer cross the link once each way.
        assert!(shaped_time > direct_time && shaped_time >= link.latency * 2);
    }
    // skopeo 1.9.3 opens a connection per request (after an HTTPS attempt the proxy answers 400), so each
    // pays the handshake's round trip too.
    let seen = shaped.seen();
    assert!(
        seen.iter().all(|s| s.status == Some(200)),
        "{}",
        shaped.describe()
    );
    assert!(shaped.connections() > seen.len() as u64);
}

#[test]
fn the_byte_counter_and_the_registry_log_agree_on_what_a_copy_fetches() {
    if !peers() {
        return;
    }
    let images = varied_images();
    let reg = Registry::start(Auth::Open);
    let proxy = FaultProxy::start(&reg.host, Vec::new());
    let tmp = tempfile::tempdir().unwrap();
    let mut total = 0;
    for format in [Format::Estargz, Format::ZstdChunkedSkopeo] {
        let rest = format!("lazy/{}:v", format.name());
        reg.push(&images.oci(format), &rest, &[]);
        let before = reg.blob_bytes_written();
        proxy.clear_seen();
        let dest = format!("oci:{}:v", tmp.path().join(format.name()).display());
        run(Command::new("skopeo").args([
            "copy",
            "--quiet",
            "--src-tls-verify=false",
            &proxy.image(&rest),
            &dest,
        ]));
        let manifest = images.manifest(format);
        let mut sizes: BTreeMap<String, u64> = BTreeMap::new();
        for blob in manifest["layers"]
            .as_array()
            .unwrap()
            .iter()
            .chain([&manifest["config"]])
        {
            sizes.insert(
                blob["digest"].as_str().unwrap().to_owned(),
                blob["size"].as_u64().unwrap(),
            );
        }
        let gets = proxy.blob_gets();
        assert_eq!(gets.len(), sizes.len(), "{}", proxy.describe());
        for get in &gets {
            let digest = get.head.target.rsplit('/').next().unwrap();
            assert_eq!(get.status, Some(200), "{}", proxy.describe());
            assert_eq!(get.range(), None);
            assert_eq!(Some(&get.body_bytes), sizes.get(digest), "{digest}");
        }
        let want: u64 = sizes.values().sum();
        assert_eq!(proxy.blob_bytes(), want, "{}", proxy.describe());
        assert_eq!(
            reg.blob_bytes_written() - before,
            want,
            "the registry's log"
        );
        total += want;
    }
    assert_eq!(reg.blob_bytes_written(), total);
}

#[test]
fn the_big_image_and_ranges_over_a_kept_alive_shaped_connection() {
    if !peers() {
        return;
    }
    let started = Instant::now();
    let images = big_images();
    eprintln!("big fixtures in every format: {:?}", started.elapsed());
    for format in Format::ALL {
        let size = images.compressed_size(format);
        eprintln!("big {}: {size} bytes of layers", format.name());
        assert!(size >= 100_000_000, "{}: {size}", format.name());
        assert_eq!(images.layers(format).len(), 4);
    }
    let toc = &tocs(images, Format::Estargz)[0];
    let os_release = toc["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "etc/os-release")
        .unwrap();
    assert_eq!(os_release["size"], OS_RELEASE.len());

    let reg = Registry::start(Auth::Open);
    reg.push(&images.oci(Format::Estargz), "lazy/big:v", &[]);
    let link = Link::wan();
    let proxy = FaultProxy::start_shaped(&reg.host, Vec::new(), link);
    let layer = &images.layers(Format::Estargz)[0];
    let digest = layer["digest"].as_str().unwrap();
    let blob = OciLayout::open(images.layout(Format::Estargz)).read_blob(digest);
    let path = format!("/v2/lazy/big/blobs/{digest}");
    let mut conn = HttpConnection::connect(&proxy.host).unwrap();

    let head = conn.request("HEAD", &path, &[]).unwrap();
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("content-length"),
        Some(blob.len().to_string().as_str())
    );
    let small = conn
        .request("GET", &path, &[("Range", "bytes=0-1048575")])
        .unwrap();
    assert_eq!(
        (small.status, small.body.as_slice()),
        (206, &blob[..1 << 20])
    );
    let from = blob.len() - (8 << 20);
    let started = Instant::now();
    let big = conn
        .request("GET", &path, &[("Range", &format!("bytes={from}-"))])
        .unwrap();
    let elapsed = started.elapsed();
    assert_eq!((big.status, big.body.len()), (206, 8 << 20));
    assert!(big.body == blob[from..], "the last 8 MiB differ");
    let mbit = (8u64 << 20) as f64 * 8.0 / elapsed.as_secs_f64() / 1e6;
    eprintln!("8 MiB over {link:?}: {elapsed:?}, {mbit:.1} Mbit/s");
    // Loose: the cap cannot be beaten.
    let cap = Duration::from_secs_f64((8u64 << 20) as f64 * 8.0 / 100e6);
    assert!(elapsed >= cap, "{elapsed:?} for 8 MiB at 100 Mbit/s");
    let manifest = conn
        .request(
            "GET",
            "/v2/lazy/big/manifests/v",
            &[("Accept", strata_tests::OCI_MANIFEST)],
        )
        .unwrap();
    assert_eq!(manifest.status, 200);

    let seen = proxy.seen();
    let summary: Vec<_> = seen
        .iter()
        .map(|s| (s.connection, s.status, s.body_bytes))
        .collect();
    assert_eq!(
        summary,
        [
            (0, Some(200), 0),
            (0, Some(206), 1 << 20),
            (0, Some(206), 8 << 20),
            (0, Some(200), manifest.body.len() as u64),
        ],
        "{}",
        proxy.describe()
    );
    assert_eq!(seen[1].range(), Some("bytes=0-1048575"));
    assert_eq!(proxy.blob_bytes(), 9 << 20);
    assert_eq!(reg.blob_bytes_written(), 9 << 20, "the registry's log");
}

/// A pull token for `repository:REPO:pull` from `server`, with [`USER`]'s credentials.
fn pull_token(server: &TokenServer, repo: &str) -> String {
    let realm = server.realm();
    let host = realm
        .strip_prefix("http://")
        .and_then(|r| r.strip_suffix("/token"))
        .unwrap();
    let basic = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(creds())
    };
    let answer = HttpConnection::connect(host)
        .unwrap()
        .request(
            "GET",
            &format!(
                "/token?service=strata-test-registry&scope=repository:{repo}:pull&account={USER}"
            ),
            &[("Authorization", &format!("Basic {basic}"))],
        )
        .unwrap();
    assert_eq!(answer.status, 200);
    let json: Value = serde_json::from_slice(&answer.body).unwrap();
    json["token"].as_str().unwrap().to_owned()
}

#[test]
fn expired_tokens_restarts_and_dropped_connections_through_the_proxy() {
    if !peers() {
        return;
    }
    let images = varied_images();
    let mut reg = Registry::start(Auth::Token(TokenServer::start()));
    reg.push(&images.oci(Format::Gzip), "lazy/auth:v", &[]);
    let Auth::Token(server) = &reg.auth else {
        unreachable!()
    };
    let token = pull_token(server, "lazy/auth");
    let proxy = FaultProxy::start(
        &reg.host,
        vec![Rule::new("/manifests/", Fault::Unauthorized, 1)],
    );
    let bearer = format!("Bearer {token}");
    let headers = [
        ("Authorization", bearer.as_str()),
        ("Accept", strata_tests::OCI_MANIFEST),
    ];
    let target = "/v2/lazy/auth/manifests/v";
    let mut conn = HttpConnection::connect(&proxy.host).unwrap();

    // The token "expires": the registry's own challenge, then the same token works again.
    let expired = conn.request("GET", target, &headers).unwrap();
    assert_eq!(expired.status, 401);
    let challenge = expired.header("www-authenticate").unwrap();
    for part in [
        &format!("Bearer realm=\"{}\"", server.realm()),
        "service=\"strata-test-registry\"",
        "scope=\"repository:lazy/auth:pull\"",
        "error=\"invalid_token\"",
    ] {
        assert!(challenge.contains(part), "{part} not in {challenge}");
    }
    let manifest = conn.request("GET", target, &headers).unwrap();
    assert_eq!(manifest.status, 200);
    let want = manifest.body.clone();

    // A restart behind the live connection: the next request reaches the new registry.
    reg.restart();
    assert_eq!(conn.request("GET", target, &headers).unwrap().body, want);
    // Down: the proxy answers 502 as a gateway does, on the same connection; up again: served.
    reg.stop();
    assert_eq!(conn.request("GET", target, &headers).unwrap().status, 502);
    reg.resume();
    assert_eq!(conn.request("GET", target, &headers).unwrap().body, want);
    // Another upstream, then back.
    proxy.set_upstream("127.0.0.1:1");
    assert_eq!(conn.request("GET", target, &headers).unwrap().status, 502);
    proxy.set_upstream(&reg.host);
    assert_eq!(conn.request("GET", target, &headers).unwrap().status, 200);
    assert_eq!(proxy.connections(), 1, "{}", proxy.describe());

    // Every connection cut: the old one fails, a new one is served.
    proxy.drop_connections();
    assert!(conn.request("GET", target, &headers).is_err());
    let mut conn = HttpConnection::connect(&proxy.host).unwrap();
    assert_eq!(conn.request("GET", target, &headers).unwrap().body, want);
    assert_eq!(proxy.connections(), 2, "{}", proxy.describe());
}

#[test]
fn a_push_through_the_proxy_forwards_request_bodies() {
    if !peers() {
        return;
    }
    let images = varied_images();
    let reg = Registry::start(Auth::Open);
    let proxy = FaultProxy::start(&reg.host, Vec::new());
    run(Command::new("skopeo").args([
        "copy",
        "--quiet",
        "--dest-tls-verify=false",
        &images.oci(Format::Estargz),
        &proxy.image("lazy/pushed:v"),
    ]));
    let raw = run(Command::new("skopeo").args([
        "inspect",
        "--raw",
        TLS_OFF,
        &reg.image("lazy/pushed:v"),
    ]));
    let pushed: Value = serde_json::from_slice(&raw.stdout).unwrap();
    assert_eq!(pushed, images.manifest(Format::Estargz));
    let seen = proxy.seen();
    for (method, status) in [("PATCH", 202), ("PUT", 201)] {
        assert!(
            seen.iter()
                .any(|s| s.head.method == method && s.status == Some(status)),
            "{}",
            proxy.describe()
        );
    }
}
