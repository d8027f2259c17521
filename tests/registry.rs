//! `docker://` against a real registry: Debian's `docker-registry` (Distribution 2.8) started on 127.0.0.1 for
//! each test, images pushed with `skopeo copy`, and strata's `inspect` (plain, `--raw`, `--config`,
//! `--config --raw`) and `list-tags` compared with skopeo's on the same references.
//!
//! Covered: an open registry, htpasswd (Basic), token auth (a token server in the tests, `auth.token` in the
//! registry config), credentials from `--creds`, `--authfile`, `REGISTRY_AUTH_FILE`, the default auth files and
//! identity tokens; registries.conf `insecure`/`blocked`; HTTPS with `--cert-dir`; redirects (no
//! `Authorization` to another origin); `Link` pagination; and faults injected by a proxy: 429 then success,
//! 500, slow answers, a connection cut mid-blob, wrong bytes. Each ends in a successful retry or a clean
//! one-line error.
//!
//! `strata pull docker://…` into a store (root and podman needed) goes through the same faults: a pull that
//! fails leaves layers.json, images.json and every name under `overlay/`, `overlay-layers/` and
//! `overlay-images/` as they were (never a partly stored layer; `strata fsck` clean, podman lists the same
//! images), and one that recovers, or is tried again, leaves the whole image.

// Test code: helpers outside #[test] functions panic on purpose too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// Test code: it reports what it skips and compares.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::Read as _;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use std::io::Write as _;

use strata_tests::registry::{
    Auth, Env, Fault, FaultProxy, PASSWORD, Registry, Rule, ScriptServer, TestPki, TokenServer,
    USER, assert_contains, clean_failure, creds, write_response,
};
use strata_tests::store::TestStore;
use strata_tests::{
    assert_clean_error, assert_json_keys_eq, assert_layers_data, parse_json, require_tool,
    show_output,
};
use tempfile::TempDir;

const TLS_OFF: &str = "--tls-verify=false";

/// The peers every test here needs; false (skip) when one is missing outside CI.
fn peers() -> bool {
    require_tool("skopeo") & require_tool("docker-registry")
}

fn tempdir() -> TempDir {
    tempfile::Builder::new()
        .prefix("strata-registry-test-")
        .tempdir()
        .expect("creating a tempdir")
}

/// The fixture images as OCI layouts: `(single, multi)` references to push from.
fn fixtures(dir: &Path) -> (String, String) {
    let single = dir.join("single");
    let multi = dir.join("multi");
    strata_fixtures::fixture("sample")
        .expect("sample fixture")
        .write_layout(&single, "v1")
        .expect("writing the sample layout");
    strata_fixtures::fixture("multiarch")
        .expect("multiarch fixture")
        .write_layout(&multi, "multi")
        .expect("writing the multiarch layout");
    (
        format!("oci:{}:v1", single.display()),
        format!("oci:{}:multi", multi.display()),
    )
}

fn show(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    text.chars().take(3000).collect()
}

fn assert_bytes_eq(skopeo: &[u8], strata: &[u8], what: &str) {
    assert!(
        skopeo == strata,
        "{what}: bytes differ\n--- skopeo ---\n{}\n--- strata ---\n{}",
        show(skopeo),
        show(strata)
    );
}

/// Compares every inspect mode of strata and skopeo on `image`; `flags` go to both after `inspect`,
/// `overrides` (`--override-*`) before `inspect` for skopeo and after it for strata. Returns strata's
/// default inspect JSON.
fn compare(env: &Env, what: &str, image: &str, flags: &[&str], overrides: &[&str]) -> Value {
    let skopeo_args = |mode: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = overrides.iter().map(|s| (*s).to_owned()).collect();
        a.push("inspect".into());
        a.extend(flags.iter().map(|s| (*s).to_owned()));
        a.extend(mode.iter().map(|s| (*s).to_owned()));
        a.push(image.to_owned());
        a
    };
    let strata_args = |mode: &[&str]| -> Vec<String> {
        let mut a = vec!["inspect".to_owned()];
        a.extend(flags.iter().map(|s| (*s).to_owned()));
        a.extend(overrides.iter().map(|s| (*s).to_owned()));
        a.extend(mode.iter().map(|s| (*s).to_owned()));
        a.push(image.to_owned());
        a
    };
    let label = format!("{what} [{image} {}]", overrides.join(" "));
    let raw = env.skopeo_ok(&skopeo_args(&["--raw"]));
    assert_bytes_eq(
        &raw,
        &env.strata_ok(&strata_args(&["--raw"])),
        &format!("{label} --raw"),
    );
    let want = parse_json(&env.skopeo_ok(&skopeo_args(&[])), "skopeo inspect");
    let got = parse_json(&env.strata_ok(&strata_args(&[])), "strata inspect");
    assert_json_keys_eq(&want, &got, &["LayersData", "Variant"], &label);
    // LayersData against the chosen instance's manifest: the raw one, or (multi-arch) by digest.
    let raw_json = parse_json(&raw, "raw manifest");
    if raw_json.get("manifests").is_none() {
        assert_layers_data(&got, &raw_json, &label);
    }
    let want = parse_json(
        &env.skopeo_ok(&skopeo_args(&["--config"])),
        "skopeo --config",
    );
    let got_config = parse_json(
        &env.strata_ok(&strata_args(&["--config"])),
        "strata --config",
    );
    assert_eq!(got_config, want, "{label} --config");
    assert_bytes_eq(
        &env.skopeo_ok(&skopeo_args(&["--config", "--raw"])),
        &env.strata_ok(&strata_args(&["--config", "--raw"])),
        &format!("{label} --config --raw"),
    );
    got
}

/// list-tags output of both tools, byte for byte.
fn compare_tags(env: &Env, repo: &str, flags: &[&str]) -> Value {
    let mut args = vec!["list-tags"];
    args.extend_from_slice(flags);
    args.push(repo);
    let want = env.skopeo_ok(&args);
    let got = env.strata_ok(&args);
    assert_bytes_eq(&want, &got, &format!("list-tags {repo}"));
    parse_json(&got, "list-tags")
}

#[test]
fn open_registry_matches_skopeo() {
    if !peers() {
        return;
    }
    let tmp = tempdir();
    let (single, multi) = fixtures(tmp.path());
    let reg = Registry::start(Auth::Open);
    reg.push(&single, "demo/single:v1", &[]);
    reg.push(&single, "demo/single:v2", &[]);
    // Docker v2s2 has no zstd layers: the single Docker image is the host's instance of the multi-arch one.
    reg.push(&multi, "demo/single:docker", &["--format", "v2s2"]);
    reg.push(&multi, "demo/multi:multi", &["--all"]);
    reg.push(&multi, "demo/multi:list", &["--all", "--format", "v2s2"]);
    let env = Env::new();

    let got = compare(
        &env,
        "single OCI",
        &reg.image("demo/single:v1"),
        &[TLS_OFF],
        &[],
    );
    assert_eq!(got["Name"], format!("{}/demo/single", reg.host));
    let tags: Vec<&str> = got["RepoTags"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(tags.len(), 3, "{got}");
    compare(
        &env,
        "single v2s2",
        &reg.image("demo/single:docker"),
        &[TLS_OFF],
        &[],
    );
    let got = compare(
        &env,
        "multi OCI index",
        &reg.image("demo/multi:multi"),
        &[TLS_OFF],
        &[],
    );
    compare(
        &env,
        "multi arm64",
        &reg.image("demo/multi:multi"),
        &[TLS_OFF],
        &["--override-arch", "arm64"],
    );
    compare(
        &env,
        "Docker manifest list",
        &reg.image("demo/multi:list"),
        &[TLS_OFF],
        &[],
    );
    let digest = got["Digest"].as_str().unwrap();
    compare(
        &env,
        "multi by digest",
        &reg.image(&format!("demo/multi@{digest}")),
        &[TLS_OFF],
        &[],
    );
    let got = compare(
        &env,
        "no tags",
        &reg.image("demo/single:v1"),
        &[TLS_OFF, "--no-tags"],
        &[],
    );
    assert_eq!(got["RepoTags"], serde_json::json!([]));

    let tags = compare_tags(&env, &reg.image("demo/single"), &[TLS_OFF]);
    assert_eq!(tags["Tags"].as_array().map(Vec::len), Some(3), "{tags}");
    compare_tags(&env, &reg.image("demo/multi"), &[TLS_OFF]);

    // Link pagination (the registry itself ignores `n`): pages of one tag through a proxy.
    let proxy = FaultProxy::start(
        &reg.host,
        vec![Rule::new("/tags/list", Fault::PaginateTags(1), usize::MAX)],
    );
    let paged = parse_json(
        &env.strata_ok(&["list-tags", TLS_OFF, &proxy.image("demo/single")]),
        "paged list-tags",
    );
    assert_eq!(paged["Tags"], tags["Tags"], "pagination changes the tags");
    assert_eq!(proxy.count("/tags/list"), 3, "{}", proxy.describe());
    let skopeo_paged = parse_json(
        &env.skopeo_ok(&["list-tags", TLS_OFF, &proxy.image("demo/single")]),
        "skopeo paged",
    );
    assert_eq!(paged, skopeo_paged);

    // Errors: unknown tag (the tags there are listed; without a tag, `latest` is not there), unknown
    // repository, a tag in list-tags, nothing listening.
    let err = clean_failure(
        &env,
        &["inspect", TLS_OFF, &reg.image("demo/single:nope")],
        "unknown tag",
    );
    assert_contains(
        &err,
        &[
            &format!(
                "tag \"nope\" not found in {}",
                reg.image("demo/single:nope")
            ),
            "the tags there: docker, v1, v2",
        ],
        "unknown tag",
    );
    for command in ["inspect", "ls"] {
        let err = clean_failure(
            &env,
            &[command, TLS_OFF, &reg.image("demo/single")],
            "no tag, and no latest",
        );
        assert_contains(
            &err,
            &[
                "tag \"latest\" not found",
                "the name gives no tag, and latest is the default",
                "the tags there: docker, v1, v2",
            ],
            "no tag, and no latest",
        );
    }
    let err = clean_failure(
        &env,
        &["inspect", TLS_OFF, &reg.image("demo/none:v1")],
        "unknown repo",
    );
    assert_contains(&err, &["404", "NAME_UNKNOWN"], "unknown repo");
    let err = clean_failure(
        &env,
        &["list-tags", TLS_OFF, &reg.image("demo/none")],
        "unknown repo",
    );
    assert_contains(&err, &["404", "NAME_UNKNOWN"], "unknown repo");
    let err = clean_failure(
        &env,
        &["list-tags", &reg.image("demo/single:v1")],
        "tag in list-tags",
    );
    assert_contains(&err, &["tag or digest"], "tag in list-tags");
    let err = clean_failure(
        &env,
        &[
            "inspect",
            TLS_OFF,
            &format!(
                "docker://127.0.0.1:{}/x:y",
                strata_tests::registry::free_port()
            ),
        ],
        "nothing listening",
    );
    assert_contains(&err, &["refused"], "nothing listening");
    // Without --tls-verify=false the plain-HTTP registry is refused (HTTPS only), as skopeo does.
    let err = clean_failure(
        &env,
        &["inspect", &reg.image("demo/single:v1")],
        "TLS required",
    );
    assert_contains(&err, &["https://"], "TLS required");
}

#[test]
fn htpasswd_registry_and_auth_files() {
    if !peers() || !require_tool("htpasswd") {
        return;
    }
    let tmp = tempdir();
    let (single, _) = fixtures(tmp.path());
    let reg = Registry::start(Auth::Htpasswd);
    reg.push(&single, "demo/single:v1", &[]);
    let image = reg.image("demo/single:v1");
    let mut env = Env::new();
    let creds = creds();

    compare(&env, "--creds", &image, &[TLS_OFF, "--creds", &creds], &[]);
    compare_tags(
        &env,
        &reg.image("demo/single"),
        &[TLS_OFF, "--creds", &creds],
    );

    // No credentials, wrong ones.
    let err = clean_failure(&env, &["inspect", TLS_OFF, &image], "no creds");
    assert_contains(&err, &["unauthorized", "no credentials for"], "no creds");
    let err = clean_failure(
        &env,
        &[
            "inspect",
            TLS_OFF,
            "--creds",
            &format!("{USER}:wrong"),
            &image,
        ],
        "wrong creds",
    );
    assert_contains(&err, &["unauthorized"], "wrong creds");

    // --authfile, and it excludes the default files.
    let authfile = env.path().join("explicit.json");
    env.write_auth(&authfile, &reg.host);
    let authfile = authfile.display().to_string();
    compare(
        &env,
        "--authfile",
        &image,
        &[TLS_OFF, "--authfile", &authfile],
        &[],
    );
    let other = env.path().join("other.json");
    env.write_auth(&other, "elsewhere.example");
    env.write_auth(&env.runtime_dir().join("containers/auth.json"), &reg.host);
    let err = clean_failure(
        &env,
        &[
            "inspect",
            TLS_OFF,
            "--authfile",
            &other.display().to_string(),
            &image,
        ],
        "explicit authfile excludes the default",
    );
    assert_contains(&err, &["unauthorized"], "explicit authfile");

    // $XDG_RUNTIME_DIR/containers/auth.json (written just above) is the default.
    compare(&env, "XDG_RUNTIME_DIR auth.json", &image, &[TLS_OFF], &[]);
    std::fs::remove_file(env.runtime_dir().join("containers/auth.json")).unwrap();
    // ~/.config/containers/auth.json, then ~/.docker/config.json.
    let config_auth = env.home().join(".config/containers/auth.json");
    env.write_auth(&config_auth, &format!("{}/demo", reg.host));
    compare(
        &env,
        "~/.config auth.json (namespace key)",
        &image,
        &[TLS_OFF],
        &[],
    );
    std::fs::remove_file(&config_auth).unwrap();
    env.write_auth(&env.home().join(".docker/config.json"), &reg.host);
    let out = env.strata_ok(&["inspect", TLS_OFF, &image]);
    parse_json(&out, "docker config.json");
    std::fs::remove_file(env.home().join(".docker/config.json")).unwrap();
    // A credential helper named in ~/.docker/config.json's credHelpers.
    let bin = env.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let helper = bin.join("docker-credential-strata-test");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\nread host\n[ \"$1\" = get ] && [ \"$host\" = \"{}\" ] || exit 1\necho '{{\"ServerURL\":\"'$host'\",\"Username\":\"{USER}\",\"Secret\":\"{PASSWORD}\"}}'\n",
            reg.host
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &helper,
        <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o755),
    )
    .unwrap();
    std::fs::create_dir_all(env.home().join(".docker")).unwrap();
    std::fs::write(
        env.home().join(".docker/config.json"),
        serde_json::json!({"credHelpers": {&reg.host: "strata-test"}}).to_string(),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = env.command(strata_tests::strata_bin());
    cmd.env("PATH", &path).args(["inspect", TLS_OFF, &image]);
    let out = strata_tests::run_unchecked(&mut cmd);
    assert!(out.status.success(), "credHelpers\n{}", show_output(&out));
    std::fs::remove_file(env.home().join(".docker/config.json")).unwrap();

    // REGISTRY_AUTH_FILE.
    env.set("REGISTRY_AUTH_FILE", authfile.clone());
    compare(&env, "REGISTRY_AUTH_FILE", &image, &[TLS_OFF], &[]);

    // A redirect to another origin (a "CDN" proxy) must not carry the registry credentials.
    let basic = format!(
        "Basic {}",
        base64_encode(format!("{USER}:{PASSWORD}").as_bytes())
    );
    let cdn = FaultProxy::start_with(&reg.host, Vec::new(), Some(basic));
    let front = FaultProxy::start(
        &reg.host,
        vec![Rule::new(
            "/blobs/",
            Fault::Redirect {
                base: format!("http://{}", cdn.host),
            },
            usize::MAX,
        )],
    );
    let out = env.strata_ok(&[
        "index",
        "--json",
        TLS_OFF,
        "--creds",
        &creds,
        &front.image("demo/single:v1"),
    ]);
    parse_json(&out, "index through redirects");
    let blob_requests: Vec<_> = cdn.seen();
    assert!(!blob_requests.is_empty(), "no request reached the CDN");
    for seen in &blob_requests {
        assert!(
            seen.head.header("authorization").is_none(),
            "Authorization forwarded across origins: {:?}",
            seen.head
        );
    }
    assert!(
        front
            .seen()
            .iter()
            .filter(|s| s.head.target.contains("/manifests/"))
            .all(|s| s.head.header("authorization").is_some()),
        "the registry itself must get the credentials"
    );
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[test]
fn token_auth_registry() {
    if !peers() {
        return;
    }
    let tmp = tempdir();
    let (single, multi) = fixtures(tmp.path());
    let reg = Registry::start(Auth::Token(TokenServer::start()));
    let Auth::Token(tokens) = &reg.auth else {
        unreachable!()
    };
    reg.push(&single, "demo/single:v1", &[]);
    reg.push(&multi, "demo/multi:multi", &["--all"]);
    reg.push(&single, "private/single:v1", &[]);
    let env = Env::new();

    // Anonymous pulls of public repositories.
    compare(
        &env,
        "token, anonymous",
        &reg.image("demo/multi:multi"),
        &[TLS_OFF],
        &[],
    );
    compare_tags(&env, &reg.image("demo/multi"), &[TLS_OFF]);
    // One token serves the whole inspect (index, manifest, config, tags): the cache works.
    tokens.clear_requests();
    env.strata_ok(&["inspect", TLS_OFF, &reg.image("demo/multi:multi")]);
    let requests = tokens.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].scopes, vec!["repository:demo/multi:pull"]);
    assert!(!requests[0].authenticated);

    // A private repository: refused anonymously, served with credentials from an auth file.
    let err = clean_failure(
        &env,
        &["inspect", TLS_OFF, &reg.image("private/single:v1")],
        "private, anonymous",
    );
    assert_contains(
        &err,
        &["unauthorized", "no credentials"],
        "private, anonymous",
    );
    let authfile = env.path().join("auth.json");
    env.write_auth(&authfile, &reg.host);
    let authfile = authfile.display().to_string();
    tokens.clear_requests();
    compare(
        &env,
        "token, authfile",
        &reg.image("private/single:v1"),
        &[TLS_OFF, "--authfile", &authfile],
        &[],
    );
    assert!(
        tokens
            .requests()
            .iter()
            .any(|r| r.authenticated && r.account.as_deref() == Some(USER)),
        "{:?}",
        tokens.requests()
    );
    let err = clean_failure(
        &env,
        &[
            "inspect",
            TLS_OFF,
            "--creds",
            &format!("{USER}:nope"),
            &reg.image("private/single:v1"),
        ],
        "token, wrong password",
    );
    assert_contains(
        &err,
        &["unauthorized", "invalid username or password"],
        "wrong password",
    );

    // An identity token (OAuth2 refresh token) in the auth file: exchanged with a POST.
    let idfile = env.path().join("identity.json");
    std::fs::write(
        &idfile,
        serde_json::json!({"auths": {&reg.host: {"auth": "", "identitytoken": format!("refresh-{USER}")}}})
            .to_string(),
    )
    .unwrap();
    tokens.clear_requests();
    env.strata_ok(&[
        "inspect",
        TLS_OFF,
        "--authfile",
        &idfile.display().to_string(),
        &reg.image("private/single:v1"),
    ]);
    assert!(
        tokens
            .requests()
            .iter()
            .all(|r| r.method == "POST" && r.authenticated)
    );

    // insufficient_scope: the first token grants nothing; strata asks again and succeeds.
    tokens.set_stingy(true);
    tokens.clear_requests();
    env.strata_ok(&["inspect", TLS_OFF, "--raw", &reg.image("demo/single:v1")]);
    assert_eq!(tokens.requests().len(), 2, "{:?}", tokens.requests());
    tokens.set_stingy(false);
}

#[test]
fn registries_conf_and_tls() {
    if !peers() {
        return;
    }
    let tmp = tempdir();
    let (single, _) = fixtures(tmp.path());
    let pki = TestPki::new();
    let tls = Registry::start_tls(Auth::Open, &pki);
    let plain = Registry::start(Auth::Open);
    let env = Env::new();
    plain.push(&single, "demo/single:v1", &[]);
    let certs = env.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    std::fs::write(certs.join("ca.crt"), &pki.ca_pem).unwrap();
    let cert_dir = certs.display().to_string();
    strata_tests::run(
        env.command("skopeo")
            .args(["copy", "--quiet", "--dest-cert-dir", &cert_dir])
            .arg(&single)
            .arg(tls.image("demo/single:v1")),
    );

    // HTTPS verified against --cert-dir's CA, as skopeo.
    compare(
        &env,
        "cert-dir",
        &tls.image("demo/single:v1"),
        &["--cert-dir", &cert_dir],
        &[],
    );
    let err = clean_failure(
        &env,
        &["inspect", &tls.image("demo/single:v1")],
        "unknown CA",
    );
    assert_contains(&err, &["https://", "certificate"], "unknown CA");
    // --tls-verify=false: unverified HTTPS.
    env.strata_ok(&["inspect", TLS_OFF, &tls.image("demo/single:v1")]);

    // registries.conf: insecure lets plain HTTP through; --tls-verify=true overrides it; blocked refuses.
    let conf = env.path().join("registries.conf");
    std::fs::write(
        &conf,
        format!(
            "[[registry]]\nlocation = \"{}\"\ninsecure = true\n\n[[registry]]\nprefix = \"{}/blocked\"\nlocation = \"{}/blocked\"\nblocked = true\n",
            plain.host, plain.host, plain.host
        ),
    )
    .unwrap();
    let conf_arg = conf.display().to_string();
    let want = env.strata_ok(&["inspect", TLS_OFF, &plain.image("demo/single:v1")]);
    let got = env.strata_ok(&[
        "inspect",
        "--registries-conf",
        &conf_arg,
        &plain.image("demo/single:v1"),
    ]);
    assert_bytes_eq(&want, &got, "registries.conf insecure");
    let mut cmd = env.command(strata_tests::strata_bin());
    cmd.env("CONTAINERS_REGISTRIES_CONF", &conf)
        .args(["inspect", &plain.image("demo/single:v1")]);
    let out = strata_tests::run_unchecked(&mut cmd);
    assert!(
        out.status.success(),
        "CONTAINERS_REGISTRIES_CONF\n{}",
        show_output(&out)
    );
    let err = clean_failure(
        &env,
        &[
            "inspect",
            "--tls-verify=true",
            "--registries-conf",
            &conf_arg,
            &plain.image("demo/single:v1"),
        ],
        "tls-verify=true overrides insecure",
    );
    assert_contains(&err, &["https://"], "tls-verify=true");
    let err = clean_failure(
        &env,
        &[
            "inspect",
            "--registries-conf",
            &conf_arg,
            &plain.image("blocked/x:v1"),
        ],
        "blocked",
    );
    assert_contains(&err, &["blocked", &conf_arg], "blocked");
}

/// An open registry with the fixtures pushed, for the fault tests.
fn fault_registry(tmp: &Path) -> Registry {
    let (single, multi) = fixtures(tmp);
    let reg = Registry::start(Auth::Open);
    reg.push(&single, "demo/single:v1", &[]);
    reg.push(&multi, "demo/multi:multi", &["--all"]);
    reg
}

#[test]
fn faults_recovered_by_retrying() {
    if !peers() {
        return;
    }
    let tmp = tempdir();
    let reg = fault_registry(tmp.path());
    let env = Env::new();
    let direct = env.strata_ok(&["inspect", TLS_OFF, "--raw", &reg.image("demo/multi:multi")]);

    // 429 with Retry-After: 1, then success.
    let proxy = FaultProxy::start(
        &reg.host,
        vec![Rule::new(
            "/manifests/",
            Fault::Status {
                status: 429,
                retry_after: Some(1),
            },
            1,
        )],
    );
    let started = Instant::now();
    let got = env.strata_ok(&[
        "inspect",
        TLS_OFF,
        "--raw",
        &proxy.image("demo/multi:multi"),
    ]);
    assert_bytes_eq(&direct, &got, "after a 429");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After not honoured"
    );
    assert_eq!(proxy.count("/manifests/"), 2, "{}", proxy.describe());

    // 500 once, then success.
    let proxy = FaultProxy::start(
        &reg.host,
        vec![Rule::new(
            "/manifests/",
            Fault::Status {
                status: 500,
                retry_after: None,
            },
            1,
        )],
    );
    let got = env.strata_ok(&[
        "inspect",
        TLS_OFF,
        "--raw",
        &proxy.image("demo/multi:multi"),
    ]);
    assert_bytes_eq(&direct, &got, "after a 500");

    // A slow answer (3 s) with a 0.5 s timeout: the retry gets through quickly.
    let proxy = FaultProxy::start(
        &reg.host,
        vec![Rule::new(
            "/manifests/",
            Fault::Delay(Duration::from_secs(3)),
            1,
        )],
    );
    let started = Instant::now();
    let got = env.strata_ok(&[
        "inspect",
        TLS_OFF,
        "--timeout",
        "0.5",
        "--raw",
        &proxy.image("demo/multi:multi"),
    ]);
    assert_bytes_eq(&direct, &got, "after a slow answer");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "waited for the slow answer"
    );

    // A blob cut mid-way resumes with a Range request and verifies.
    let proxy = FaultProxy::start(
        &reg.host,
        vec![Rule::new("/blobs/", Fault::CutBody { after: 100 }, 2)],
    );
    let out = parse_json(
        &env.strata_ok(&["index", "--json", TLS_OFF, &proxy.image("demo/single:v1")]),
        "index after cuts",
    );
    assert!(!out["layers"].as_array().unwrap().is_empty());
    assert!(
        proxy
            .seen()
            .iter()
            .any(|s| s.head.header("range") == Some("bytes=100-")),
        "no resumption:\n{}",
        proxy.describe()
    );
}

#[test]
fn faults_end_in_clean_errors() {
    if !peers() {
        return;
    }
    let tmp = tempdir();
    let reg = fault_registry(tmp.path());
    let env = Env::new();
    let image = |proxy: &FaultProxy, rest: &str| proxy.image(rest);

    // 500 every time: two attempts with --retry-times 1, then the error.
    let proxy = FaultProxy::start(
        &reg.host,
        vec![Rule::new(
            "/manifests/",
            Fault::Status {
                status: 500,
                retry_after: None,
            },
            usize::MAX,
        )],
    );
    let err = clean_failure(
        &env,
        &[
            "inspect",
            TLS_OFF,
            "--retry-times",
            "1",
            &image(&proxy, "demo/single:v1"),
        ],
        "500",
    );
    assert_contains(
        &err,
        &[
            "gave up after 2 attempts",
            "500 Internal Server Error",
            "/v2/demo/single/manifests/v1",
        ],
        "500",
    );
    assert_eq!(proxy.count("/manifests/"), 2);

    // 429 every time.
    let proxy = FaultProxy::start(
        &reg.host,
        vec![Rule::new(
            "/manifests/",
            Fault::Status {
                status: 429,
                retry_after: Some(0),
            },
            usize::MAX,
        )],
    );
    let err = clean_failure(
        &env,
        &["inspect", TLS_OFF, &image(&proxy, "demo/single:v1")],
        "429",
    );
    assert_contains(
        &err,
        &[
            "429 Too Many Requests",
            "TOOMANYREQUESTS",
            "gave up after 4 attempts",
        ],
        "429",
    );

    // Always slow: a timeout, not a hang.
    let proxy = FaultProxy::start(
        &reg.host,
        vec![Rule::new(
            "/manifests/",
            Fault::Delay(Duration::from_secs(5)),
            usize::MAX,
        )],
    );
    let started = Instant::now();
    let err = clean_failure(
        &env,
        &[
            "inspect",
            TLS_OFF,
            "--timeout",
            "0.3",
            "--retry-times",
            "1",
            &image(&proxy, "demo/single:v1"),
        ],
        "slow",
    );
    assert_contains(&err, &["imeout", "/manifests/v1"], "slow");
    assert!(started.elapsed() < Duration::from_secs(4));

    // A blob cut every time: a clean error, and no index written.
    let proxy = FaultProxy::start(
        &reg.host,
        vec![Rule::new(
            "/blobs/",
            Fault::CutBody { after: 50 },
            usize::MAX,
        )],
    );
    let out_dir = tmp.path().join("idx");
    let err = clean_failure(
        &env,
        &[
            "index",
            TLS_OFF,
            "-o",
            &out_dir.display().to_string(),
            &image(&proxy, "demo/single:v1"),
        ],
        "cut blob",
    );
    assert_contains(&err, &["cut short at byte", "/blobs/sha256:"], "cut blob");
    let written = std::fs::read_dir(&out_dir).map(|d| d.count()).unwrap_or(0);
    assert_eq!(written, 0, "an index was written for a failed layer");

    // Wrong bytes: a tag's manifest (against Docker-Content-Digest), a child manifest by digest, a blob.
    for (what, path) in [
        ("tag manifest", "/manifests/multi"),
        ("child manifest", "/manifests/sha256:"),
        ("blob", "/blobs/"),
    ] {
        let proxy = FaultProxy::start(
            &reg.host,
            vec![Rule::new(path, Fault::CorruptBody, usize::MAX)],
        );
        let err = clean_failure(
            &env,
            &["index", TLS_OFF, &image(&proxy, "demo/multi:multi")],
            what,
        );
        assert_contains(&err, &["digest mismatch", "expected sha256:"], what);
    }
}

#[test]
fn library_range_reads_and_streams() {
    if !peers() {
        return;
    }
    let tmp = tempdir();
    let reg = fault_registry(tmp.path());
    let mut options = strata_source::SourceOptions::default();
    options.tls_verify = Some(false);
    let name = format!("docker://{}/demo/single:v1", reg.host);
    let source = strata_source::open_with(&name, &options).unwrap();
    let platform = strata_oci::Platform::host();
    let image = strata_source::resolve(source.as_ref(), &platform).unwrap();
    let layer = &image.manifest.layers()[0];
    let digest = strata_oci::Digest::try_from(layer.digest()).unwrap();
    let mut whole = Vec::new();
    let blob = source.open_blob(&digest).unwrap();
    assert_eq!(blob.size, layer.size());
    blob.reader.take(u64::MAX).read_to_end(&mut whole).unwrap();
    assert_eq!(whole.len() as u64, layer.size());

    let check = |source: &dyn strata_source::ImageSource, what: &str| {
        let mut buf = vec![0u8; 20];
        let n = source.read_blob_at(&digest, 10, &mut buf).unwrap();
        assert_eq!(&buf[..n], &whole[10..10 + n], "{what}: range 10+20");
        assert_eq!(n, 20, "{what}");
        let tail = whole.len() as u64 - 5;
        let n = source.read_blob_at(&digest, tail, &mut buf).unwrap();
        assert_eq!(&buf[..n], &whole[whole.len() - 5..], "{what}: tail");
        let n = source
            .read_blob_at(&digest, whole.len() as u64 + 10, &mut buf)
            .unwrap();
        assert_eq!(n, 0, "{what}: past the end (416)");
    };
    check(source.as_ref(), "206");
    // A registry that ignores Range: the 200 body is skipped into.
    let proxy = FaultProxy::start(
        &reg.host,
        vec![Rule::new("/blobs/", Fault::StripRange, usize::MAX)],
    );
    let via =
        strata_source::open_with(&format!("docker://{}/demo/single:v1", proxy.host), &options)
            .unwrap();
    check(via.as_ref(), "200 fallback");

    // A wrong blob is an InvalidData error at the end of the stream, naming the digests.
    let proxy = FaultProxy::start(
        &reg.host,
        vec![Rule::new("/blobs/", Fault::CorruptBody, usize::MAX)],
    );
    let via =
        strata_source::open_with(&format!("docker://{}/demo/single:v1", proxy.host), &options)
            .unwrap();
    let err = via
        .open_blob(&digest)
        .unwrap()
        .reader
        .read_to_end(&mut Vec::new())
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    assert!(err.to_string().contains("digest mismatch"), "{err}");

    // Typed errors: a missing tag is TagNotFound with the tags there are; a missing repository, a
    // registry status error with the URL.
    let missing =
        strata_source::open_with(&format!("docker://{}/demo/single:nope", reg.host), &options)
            .unwrap();
    match missing.top_manifest() {
        Err(strata_source::Error::TagNotFound {
            tag,
            defaulted,
            tags,
            ..
        }) => {
            assert_eq!((tag.as_str(), defaulted), ("nope", false));
            assert_eq!(tags, ["v1"]);
        }
        other => panic!("expected TagNotFound, got {:?}", other.map(|m| m.digest)),
    }
    let missing =
        strata_source::open_with(&format!("docker://{}/demo/none:v1", reg.host), &options).unwrap();
    match missing.top_manifest() {
        Err(e) if strata_source::registry_error(&e).is_some() => {
            let e = strata_source::registry_error(&e).unwrap();
            assert_eq!(e.status(), Some(404));
            assert!(e.to_string().contains("/v2/demo/none/"), "{e}");
        }
        other => panic!(
            "expected a registry error, got {:?}",
            other.map(|m| m.digest)
        ),
    }
}

#[test]
fn hostile_registry_responses() {
    // No peer needed: a scripted server plays a registry that lies, floods and stalls.
    let server = ScriptServer::start(|head, stream| {
        let json = || ("Content-Type", "application/json".to_owned());
        match head.target.as_str() {
            "/v2/" => write_response(stream, "200 OK", &[], b"{}"),
            "/v2/x/manifests/huge-length" => {
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: 5000000\r\n\r\n{",
                );
            }
            "/v2/x/manifests/huge-chunked" => {
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nTransfer-Encoding: chunked\r\n\r\n",
                );
                let chunk = vec![b' '; 64 * 1024];
                for _ in 0..80 {
                    if stream
                        .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                        .is_err()
                        || stream.write_all(&chunk).is_err()
                        || stream.write_all(b"\r\n").is_err()
                    {
                        return;
                    }
                }
                let _ = stream.write_all(b"0\r\n\r\n");
            }
            "/v2/x/manifests/loop" => write_response(
                stream,
                "302 Found",
                &[("Location", "/v2/x/manifests/loop".to_owned())],
                b"",
            ),
            "/v2/x/manifests/big-error" => {
                let body = format!(
                    "{{\"errors\":[{{\"code\":\"DENIED\",\"message\":\"{}\"}}]}}",
                    "\\u001b[31m".repeat(10) + &"x".repeat(900_000)
                );
                write_response(stream, "403 Forbidden", &[json()], body.as_bytes());
            }
            "/v2/x/manifests/garbage" => {
                write_response(stream, "200 OK", &[json()], b"not json at all")
            }
            "/v2/x/manifests/lying" => write_response(
                stream,
                "200 OK",
                &[
                    (
                        "Content-Type",
                        "application/vnd.oci.image.manifest.v1+json".to_owned(),
                    ),
                    (
                        "Docker-Content-Digest",
                        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
                            .to_owned(),
                    ),
                ],
                br#"{"schemaVersion":2}"#,
            ),
            "/v2/x/manifests/slow" => {
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n",
                );
                for _ in 0..100 {
                    std::thread::sleep(Duration::from_millis(400));
                    if stream.write_all(b" ").is_err() {
                        return;
                    }
                }
            }
            "/v2/x/tags/list" => write_response(
                stream,
                "200 OK",
                &[
                    json(),
                    ("Link", "</v2/x/tags/list?last=a>; rel=\"next\"".to_owned()),
                ],
                br#"{"name":"x","tags":["a"]}"#,
            ),
            t if t.starts_with("/v2/x/tags/list?") => write_response(
                stream,
                "200 OK",
                &[
                    json(),
                    ("Link", "</v2/x/tags/list?last=a>; rel=\"next\"".to_owned()),
                ],
                br#"{"name":"x","tags":["b"]}"#,
            ),
            "/v2/file-realm/manifests/t" => write_response(
                stream,
                "401 Unauthorized",
                &[(
                    "WWW-Authenticate",
                    r#"Bearer realm="file:///etc/passwd",service="x""#.to_owned(),
                )],
                b"",
            ),
            "/v2/garbage-auth/manifests/t" => write_response(
                stream,
                "401 Unauthorized",
                &[(
                    "WWW-Authenticate",
                    "Bogus ,,=\"x, Bearer service=no-realm".to_owned(),
                )],
                b"",
            ),
            _ => write_response(stream, "404 Not Found", &[], b""),
        }
    });
    let env = Env::new();
    let fail = |rest: &str, extra: &[&str], parts: &[&str]| {
        let image = server.image(rest);
        let mut args = vec!["inspect", TLS_OFF, "--retry-times", "0"];
        args.extend_from_slice(extra);
        args.push(&image);
        let err = clean_failure(&env, &args, rest);
        assert_contains(&err, parts, rest);
        assert!(
            err.len() < 2000,
            "{rest}: unbounded message ({} bytes)",
            err.len()
        );
        err
    };
    fail(
        "x:huge-length",
        &[],
        &["manifest larger than the 4194304-byte limit"],
    );
    fail(
        "x:huge-chunked",
        &[],
        &["manifest larger than the 4194304-byte limit"],
    );
    fail("x:loop", &[], &["/v2/x/manifests/loop", "redirect"]);
    let err = fail("x:big-error", &[], &["403 Forbidden", "DENIED"]);
    assert!(
        !err.contains('\u{1b}'),
        "control characters reach the terminal"
    );
    fail("x:garbage", &[], &["malformed"]);
    fail(
        "x:lying",
        &[],
        &["digest mismatch", "/v2/x/manifests/lying"],
    );
    let started = Instant::now();
    fail(
        "x:slow",
        &["--timeout", "0.3"],
        &["/v2/x/manifests/slow", "imeout"],
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    fail("file-realm:t", &[], &["not an http(s) URL"]);
    fail("garbage-auth:t", &[], &["unauthorized"]);
    let out = env.strata(&["list-tags", TLS_OFF, &server.image("x")]);
    assert_clean_error(&out, "Link loop");
    assert_contains(
        &String::from_utf8_lossy(&out.stderr),
        &["pagination loops"],
        "Link loop",
    );
}

// ---------------------------------------------------------------------------------------------------------
// `strata pull docker://…` into a store through the fault proxy: a failed pull leaves the store exactly as it
// was (never a partly stored layer); retries that succeed leave a complete image.

/// Whether the pull tests can run here: the registry peers, root (the store keeps owners) and podman.
fn pull_ready() -> bool {
    if !peers() {
        return false;
    }
    if !strata_tests::is_root() {
        if strata_tests::under_ci() {
            panic!("the registry pull tests need root under CI=true");
        }
        eprintln!("SKIP: the registry pull tests need root (the store keeps owners)");
        return false;
    }
    require_tool("podman")
}

/// A layer of `dir/` with a few small files and one of `size` noisy bytes.
fn noisy_layer(dir: &str, seed: u32, size: usize) -> strata_fixtures::LayerBuilder {
    let mut l = strata_fixtures::LayerBuilder::new();
    l.dir(dir);
    for i in 0..20 {
        l.file(format!("{dir}/small-{i}").as_str(), format!("{seed} {i}\n"));
    }
    l.file(
        format!("{dir}/big").as_str(),
        strata_fixtures::noise(size, u64::from(seed)),
    );
    l
}

/// An image of `layers`, for the host's platform.
fn image_of(
    layers: Vec<(strata_fixtures::LayerBuilder, strata_fixtures::Compression)>,
) -> strata_fixtures::ImageBuilder {
    let mut image = strata_fixtures::ImageBuilder::new()
        .architecture(strata_tests::host_arch())
        .os("linux")
        .created("2024-01-02T03:04:05Z");
    for (layer, compression) in layers {
        image = image.layer(layer, compression);
    }
    image
}

/// The registry of the pull tests: `demo/base:v1` (one gzip layer) and `demo/app:v1`, the same base layer
/// under a zstd and a gzip layer of ~400 KiB each.
struct PullFixture {
    _tmp: TempDir,
    reg: Registry,
    env: Env,
    /// `demo/app:v1`'s image ID (its config digest's hex).
    app_id: String,
    /// `demo/app:v1`'s layer blob digests, bottom first.
    app_layers: Vec<String>,
    /// `demo/base:v1`'s image ID.
    base_id: String,
}

impl PullFixture {
    fn start() -> PullFixture {
        let tmp = tempdir();
        let base = || noisy_layer("base", 1, 64 * 1024);
        let base_dir = tmp.path().join("base");
        let app_dir = tmp.path().join("app");
        image_of(vec![(base(), strata_fixtures::Compression::Gzip)])
            .write_layout(&base_dir, "v1")
            .unwrap();
        image_of(vec![
            (base(), strata_fixtures::Compression::Gzip),
            (
                noisy_layer("mid", 2, 400 * 1024),
                strata_fixtures::Compression::Zstd,
            ),
            (
                noisy_layer("top", 3, 400 * 1024),
                strata_fixtures::Compression::Gzip,
            ),
        ])
        .write_layout(&app_dir, "v1")
        .unwrap();
        let reg = Registry::start(Auth::Open);
        reg.push(
            &format!("oci:{}:v1", base_dir.display()),
            "demo/base:v1",
            &[],
        );
        reg.push(&format!("oci:{}:v1", app_dir.display()), "demo/app:v1", &[]);
        let (base_id, _) = layout_image(&base_dir);
        let (app_id, app_layers) = layout_image(&app_dir);
        assert_eq!(app_layers.len(), 3);
        PullFixture {
            _tmp: tmp,
            reg,
            env: Env::new(),
            app_id,
            app_layers,
            base_id,
        }
    }

    /// `strata --root R --runroot RR pull --tls-verify=false --json EXTRA… IMAGE` in the hermetic environment.
    fn pull(&self, store: &TestStore, image: &str, extra: &[&str]) -> std::process::Output {
        let mut cmd = self.env.command(strata_tests::strata_bin());
        cmd.args(store.strata_args())
            .args(["pull", TLS_OFF, "--json"])
            .args(extra)
            .arg(image);
        strata_tests::run_unchecked(&mut cmd)
    }

    /// A store holding `demo/base:v1`, pulled straight from the registry, that podman has opened once (so
    /// that the files podman adds to a store it opens are there before any snapshot).
    fn store_with_base(&self) -> TestStore {
        let store = TestStore::new();
        let out = self.pull(&store, &self.reg.image("demo/base:v1"), &[]);
        assert!(
            out.status.success(),
            "pulling the base\n{}",
            show_output(&out)
        );
        assert_eq!(store.podman_image_ids(), vec![self.base_id.clone()]);
        store
    }

    /// The proxy path of `demo/app:v1`'s layer `i`.
    fn layer_path(&self, i: usize) -> String {
        format!("/blobs/{}", self.app_layers[i])
    }
}

/// The image ID and layer digests of a layout's `v1` image.
fn layout_image(dir: &Path) -> (String, Vec<String>) {
    let blob = |d: &str| std::fs::read(dir.join("blobs/sha256").join(&d[7..])).unwrap();
    let index = parse_json(
        &std::fs::read(dir.join("index.json")).unwrap(),
        "index.json",
    );
    let manifest = parse_json(
        &blob(index["manifests"][0]["digest"].as_str().unwrap()),
        "manifest",
    );
    let config = manifest["config"]["digest"].as_str().unwrap();
    let layers = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_owned())
        .collect();
    (config[7..].to_owned(), layers)
}

/// What a failed pull must leave unchanged: layers.json and images.json byte for byte, and every name under
/// `overlay/`, `overlay-layers/` and `overlay-images/` — but for `overlay/staging/` itself, the staging
/// protocol's working directory, which a pull creates and podman removes when it opens the store. What a
/// pull stages in it (`overlay/staging/<random>/…`) is listed, so a staging directory left behind shows.
#[derive(Debug, PartialEq, Eq)]
struct StoreSnapshot {
    layers_json: String,
    images_json: String,
    overlay: Vec<String>,
    overlay_layers: Vec<String>,
    overlay_images: Vec<String>,
}

impl StoreSnapshot {
    fn take(store: &TestStore) -> StoreSnapshot {
        let read = |p: &str| std::fs::read_to_string(store.root.join(p)).unwrap();
        let names = |p: &str| -> Vec<String> {
            strata_tests::tree::listing(&store.root.join(p))
                .into_iter()
                .map(|(path, node)| format!("{path} ({})", node.kind))
                .collect()
        };
        StoreSnapshot {
            layers_json: read("overlay-layers/layers.json"),
            images_json: read("overlay-images/images.json"),
            overlay: names("overlay")
                .into_iter()
                .filter(|n| n != "staging (dir)")
                .collect(),
            overlay_layers: names("overlay-layers"),
            overlay_images: names("overlay-images"),
        }
    }

    /// Panics with the differences when `after` is not `self`.
    fn assert_same(&self, after: &StoreSnapshot, what: &str) {
        let diff = |a: &[String], b: &[String]| -> String {
            let gone: Vec<_> = a.iter().filter(|x| !b.contains(x)).take(10).collect();
            let new: Vec<_> = b.iter().filter(|x| !a.contains(x)).take(10).collect();
            format!("gone: {gone:?}\nnew: {new:?}")
        };
        assert_eq!(
            self.layers_json, after.layers_json,
            "{what}: layers.json changed"
        );
        assert_eq!(
            self.images_json, after.images_json,
            "{what}: images.json changed"
        );
        for (name, a, b) in [
            ("overlay/", &self.overlay, &after.overlay),
            (
                "overlay-layers/",
                &self.overlay_layers,
                &after.overlay_layers,
            ),
            (
                "overlay-images/",
                &self.overlay_images,
                &after.overlay_images,
            ),
        ] {
            assert!(a == b, "{what}: {name} changed\n{}", diff(a, b));
        }
    }
}

/// `strata fsck --content` finds nothing wrong.
fn assert_fsck_clean(fx: &PullFixture, store: &TestStore, what: &str) {
    let mut cmd = fx.env.command(strata_tests::strata_bin());
    cmd.args(store.strata_args())
        .args(["fsck", "--content", "--json"]);
    let out = strata_tests::run_unchecked(&mut cmd);
    assert!(out.status.success(), "{what}: fsck\n{}", show_output(&out));
    let report = parse_json(&out.stdout, "strata fsck --json");
    assert_eq!(
        report["problems"],
        serde_json::json!([]),
        "{what}: {report}"
    );
}

/// A pull that must fail cleanly, naming `digest` and every part of `parts`, and leave the store as it was.
fn assert_failed_pull_changes_nothing(
    fx: &PullFixture,
    store: &TestStore,
    proxy: &FaultProxy,
    extra: &[&str],
    digest: &str,
    parts: &[&str],
    what: &str,
) {
    let before = StoreSnapshot::take(store);
    let podman_before = store.podman_image_ids();
    let out = fx.pull(store, &proxy.image("demo/app:v1"), extra);
    assert_clean_error(&out, what);
    let err = String::from_utf8_lossy(&out.stderr);
    eprintln!("{what}: {}", err.trim_end());
    assert_contains(&err, &[digest], what);
    assert_contains(&err, parts, what);
    let after = StoreSnapshot::take(store);
    before.assert_same(&after, what);
    assert_eq!(
        store.podman_image_ids(),
        podman_before,
        "{what}: podman images"
    );
    assert_eq!(store.strata_image_ids(), vec![fx.base_id.clone()], "{what}");
    assert_fsck_clean(fx, store, what);
}

/// After a successful pull of `demo/app:v1`: listed by strata and podman, each layer's `diff/` in place, fsck
/// clean.
fn assert_app_pulled(fx: &PullFixture, store: &TestStore, out: &std::process::Output, what: &str) {
    assert!(out.status.success(), "{what}\n{}", show_output(out));
    let report = parse_json(&out.stdout, "strata pull --json");
    assert_eq!(report["image"], fx.app_id.as_str(), "{what}: {report}");
    let layers = report["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 3, "{what}: {report}");
    assert_eq!(
        layers[0]["reused"], true,
        "{what}: the base layer is shared"
    );
    for layer in layers {
        let id = layer["id"].as_str().unwrap();
        let diff = store.root.join("overlay").join(id).join("diff");
        assert!(diff.is_dir(), "{what}: {} is missing", diff.display());
    }
    let mid = store
        .root
        .join("overlay")
        .join(layers[1]["id"].as_str().unwrap());
    assert!(
        mid.join("diff/mid/big").is_file(),
        "{what}: mid/big missing"
    );
    let mut want = vec![fx.app_id.clone(), fx.base_id.clone()];
    want.sort();
    assert_eq!(store.strata_image_ids(), want, "{what}: strata images");
    assert_eq!(store.podman_image_ids(), want, "{what}: podman images");
    assert_fsck_clean(fx, store, what);
}

#[test]
fn failed_pulls_leave_the_store_as_it_was() {
    if !pull_ready() {
        return;
    }
    let fx = PullFixture::start();
    let store = fx.store_with_base();
    let (mid, top) = (fx.app_layers[1].as_str(), fx.app_layers[2].as_str());

    // The registry stops mid-blob, every time: the resumed reads are cut too, then a clean error.
    let proxy = FaultProxy::start(
        &fx.reg.host,
        vec![Rule::new(
            &fx.layer_path(2),
            Fault::CutBody { after: 1000 },
            usize::MAX,
        )],
    );
    assert_failed_pull_changes_nothing(
        &fx,
        &store,
        &proxy,
        &[],
        top,
        &["cut short at byte"],
        "stopped mid-blob",
    );
    assert!(proxy.count(&fx.layer_path(2)) >= 2, "{}", proxy.describe());

    // The registry goes down mid-blob and stays down: the resumption gets 503s until the retries run out.
    let proxy = FaultProxy::start(
        &fx.reg.host,
        vec![
            Rule::new(&fx.layer_path(2), Fault::CutBody { after: 3000 }, 1),
            Rule::new(
                &fx.layer_path(2),
                Fault::Status {
                    status: 503,
                    retry_after: None,
                },
                usize::MAX,
            ),
        ],
    );
    assert_failed_pull_changes_nothing(
        &fx,
        &store,
        &proxy,
        &["--retry-times", "1"],
        top,
        &["cut short at byte 3000", "503"],
        "down mid-blob",
    );

    // A wrong blob (one byte flipped) for the zstd layer, while the gzip one above it arrives whole.
    let proxy = FaultProxy::start(
        &fx.reg.host,
        vec![Rule::new(&fx.layer_path(1), Fault::CorruptBody, usize::MAX)],
    );
    assert_failed_pull_changes_nothing(
        &fx,
        &store,
        &proxy,
        &[],
        mid,
        &["digest mismatch"],
        "wrong digest",
    );

    // 500 forever for one layer: two attempts with --retry-times 1, then the error.
    let proxy = FaultProxy::start(
        &fx.reg.host,
        vec![Rule::new(
            &fx.layer_path(2),
            Fault::Status {
                status: 500,
                retry_after: None,
            },
            usize::MAX,
        )],
    );
    assert_failed_pull_changes_nothing(
        &fx,
        &store,
        &proxy,
        &["--retry-times", "1"],
        top,
        &["500 Internal Server Error", "gave up after 2 attempts"],
        "500 forever",
    );

    // Every layer blob cut: nothing at all arrives.
    let proxy = FaultProxy::start(
        &fx.reg.host,
        vec![
            Rule::new(&fx.layer_path(1), Fault::CutBody { after: 0 }, usize::MAX),
            Rule::new(&fx.layer_path(2), Fault::CutBody { after: 0 }, usize::MAX),
        ],
    );
    let before = StoreSnapshot::take(&store);
    let out = fx.pull(&store, &proxy.image("demo/app:v1"), &["--retry-times", "1"]);
    assert_clean_error(&out, "every blob cut");
    before.assert_same(&StoreSnapshot::take(&store), "every blob cut");
    assert_fsck_clean(&fx, &store, "every blob cut");
}

#[test]
fn pulls_recover_from_429_and_slow_answers() {
    if !pull_ready() {
        return;
    }
    let fx = PullFixture::start();

    // 429 with Retry-After: 1 on both new layers, then success.
    let store = fx.store_with_base();
    let rules = (1..3)
        .map(|i| {
            Rule::new(
                &fx.layer_path(i),
                Fault::Status {
                    status: 429,
                    retry_after: Some(1),
                },
                1,
            )
        })
        .collect();
    let proxy = FaultProxy::start(&fx.reg.host, rules);
    let started = Instant::now();
    let out = fx.pull(&store, &proxy.image("demo/app:v1"), &[]);
    assert_app_pulled(&fx, &store, &out, "after 429");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After not honoured"
    );
    for i in 1..3 {
        assert!(proxy.count(&fx.layer_path(i)) >= 2, "{}", proxy.describe());
    }

    // Slow answers: every blob 200 ms late (slow, within the timeout), and the top layer's first answer
    // 3 s late with a 1 s timeout (given up on, and retried).
    let store = fx.store_with_base();
    let proxy = FaultProxy::start(
        &fx.reg.host,
        vec![
            Rule::new(&fx.layer_path(2), Fault::Delay(Duration::from_secs(3)), 1),
            Rule::new(
                "/blobs/",
                Fault::Delay(Duration::from_millis(200)),
                usize::MAX,
            ),
        ],
    );
    let started = Instant::now();
    let out = fx.pull(&store, &proxy.image("demo/app:v1"), &["--timeout", "1"]);
    assert_app_pulled(&fx, &store, &out, "after slow answers");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "waited {:?}",
        started.elapsed()
    );
    assert!(proxy.count(&fx.layer_path(2)) >= 2, "{}", proxy.describe());
}

#[test]
fn a_pull_that_failed_succeeds_on_a_second_try() {
    if !pull_ready() {
        return;
    }
    let fx = PullFixture::start();
    let store = fx.store_with_base();
    // The first try: the top layer is cut every time (the zstd one arrives and is staged, then discarded).
    let proxy = FaultProxy::start(
        &fx.reg.host,
        vec![Rule::new(
            &fx.layer_path(2),
            Fault::CutBody { after: 5000 },
            usize::MAX,
        )],
    );
    assert_failed_pull_changes_nothing(
        &fx,
        &store,
        &proxy,
        &[],
        &fx.app_layers[2],
        &["cut short"],
        "first try",
    );
    // The second try, through a proxy that has stopped failing.
    let proxy = FaultProxy::start(&fx.reg.host, Vec::new());
    let out = fx.pull(&store, &proxy.image("demo/app:v1"), &[]);
    assert_app_pulled(&fx, &store, &out, "second try");
    // Nothing of the first try is left over: no staging directory, one record per layer.
    let staging = store.root.join("overlay/staging");
    let left = std::fs::read_dir(&staging).map(|d| d.count()).unwrap_or(0);
    assert_eq!(left, 0, "staging directories left in {}", staging.display());
    let layers = parse_json(
        &std::fs::read(store.root.join("overlay-layers/layers.json")).unwrap(),
        "layers.json",
    );
    assert_eq!(layers.as_array().unwrap().len(), 3, "{layers}");
}
