//! Registries for the `docker://` tests: a real `docker-registry` (Debian's Distribution 2.8) on 127.0.0.1,
//! open, behind htpasswd (Basic) or behind token auth with a tiny token server of our own; a fault-injecting
//! proxy; and a hermetic environment (HOME, XDG dirs) for strata and skopeo.
//!
//! Every process and thread started here stops when its handle is dropped.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{BufRead as _, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rcgen::PublicKeyData as _;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use sha2::{Digest as _, Sha256};
use tempfile::TempDir;

use crate::{describe, run, run_unchecked, show_output, strata_bin};

/// The user the authenticated registries know.
pub const USER: &str = "alice";
/// Her password.
pub const PASSWORD: &str = "s3cret:with:colons";
/// `--creds` for her.
pub fn creds() -> String {
    format!("{USER}:{PASSWORD}")
}

/// A free TCP port on 127.0.0.1 (bound and released; the registry binds it right after).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("finding a free port")
}

/// How a test registry authenticates.
pub enum Auth {
    /// No authentication.
    Open,
    /// htpasswd (bcrypt, made with `htpasswd -Bbn`): Basic auth for [`USER`].
    Htpasswd,
    /// Token auth against this server.
    Token(TokenServer),
}

/// A running `docker-registry serve` on 127.0.0.1 with its own config and storage; killed on drop.
pub struct Registry {
    /// `127.0.0.1:PORT`.
    pub host: String,
    /// How it authenticates (the token server lives here).
    pub auth: Auth,
    child: Child,
    dir: TempDir,
}

impl Registry {
    /// Starts a registry with `auth` and waits until it answers `/v2/`.
    ///
    /// # Panics
    /// When it does not start within 20 s (its log is shown).
    pub fn start(auth: Auth) -> Registry {
        Self::start_with(auth, None)
    }

    /// Starts a registry serving HTTPS with `pki`'s server certificate.
    pub fn start_tls(auth: Auth, pki: &TestPki) -> Registry {
        Self::start_with(auth, Some(pki))
    }

    fn start_with(mut auth: Auth, tls: Option<&TestPki>) -> Registry {
        // The free port may be taken between finding and binding it: then try another.
        let mut attempt = 0;
        loop {
            let mut registry = Self::spawn(auth, tls);
            match registry.wait_ready(tls.is_some()) {
                Ok(()) => return registry,
                Err(log) if attempt < 3 && log.contains("address already in use") => {
                    auth = std::mem::replace(&mut registry.auth, Auth::Open);
                    attempt += 1;
                }
                Err(log) => panic!("docker-registry did not start:\n{log}"),
            }
        }
    }

    fn spawn(auth: Auth, tls: Option<&TestPki>) -> Registry {
        let dir = tempfile::Builder::new()
            .prefix("strata-registry-")
            .tempdir()
            .expect("registry tempdir");
        let port = free_port();
        let host = format!("127.0.0.1:{port}");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {host}\n  secret: strata-test-secret\n",
            dir.path().join("storage").display()
        );
        if let Some(pki) = tls {
            let cert = dir.path().join("server.crt");
            let key = dir.path().join("server.key");
            std::fs::write(&cert, &pki.cert_pem).expect("writing the server cert");
            std::fs::write(&key, &pki.key_pem).expect("writing the server key");
            let _ = write!(
                config,
                "  tls:\n    certificate: {}\n    key: {}\n",
                cert.display(),
                key.display()
            );
        }
        match &auth {
            Auth::Open => {}
            Auth::Htpasswd => {
                let out = run(Command::new("htpasswd").args(["-Bbn", USER, PASSWORD]));
                let path = dir.path().join("htpasswd");
                std::fs::write(&path, &out.stdout).expect("writing htpasswd");
                let _ = write!(
                    config,
                    "auth:\n  htpasswd:\n    realm: strata-test\n    path: {}\n",
                    path.display()
                );
            }
            Auth::Token(server) => {
                let path = dir.path().join("token-cert.pem");
                std::fs::write(&path, &server.cert_pem).expect("writing the token cert");
                let _ = write!(
                    config,
                    "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
                    server.realm(),
                    TOKEN_SERVICE,
                    TOKEN_ISSUER,
                    path.display()
                );
            }
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).expect("writing the registry config");
        let log = std::fs::File::create(dir.path().join("registry.log")).expect("registry log");
        let log2 = log.try_clone().expect("registry log");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .expect("starting docker-registry");
        Registry {
            host,
            auth,
            child,
            dir,
        }
    }

    /// Waits until the registry answers; its log when it exits or does not answer in 20 s.
    fn wait_ready(&mut self, tls: bool) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            // Over TLS, a plain HTTP request gets an HTTP 400 once the server listens.
            if let Some(status) = http_status(&self.host, "/v2/")
                && (status == 200 || status == 401 || (tls && status == 400))
            {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("exited ({status}):\n{}", self.log()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(format!("no answer in 20 s:\n{}", self.log()))
    }

    /// The registry's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// `docker://127.0.0.1:PORT/REST`.
    pub fn image(&self, rest: &str) -> String {
        format!("docker://{}/{rest}", self.host)
    }

    /// Pushes `src` to `rest` (`REPO:TAG`) with `skopeo copy --dest-tls-verify=false` and `extra` flags,
    /// with the registry's credentials.
    pub fn push(&self, src: &str, rest: &str, extra: &[&str]) {
        let mut cmd = Command::new("skopeo");
        cmd.args(["copy", "--quiet", "--dest-tls-verify=false"]);
        if !matches!(self.auth, Auth::Open) {
            cmd.arg(format!("--dest-creds={}", creds()));
        }
        cmd.args(extra).arg(src).arg(self.image(rest));
        run(&mut cmd);
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A test CA and a server certificate for 127.0.0.1 (and localhost) signed by it.
pub struct TestPki {
    /// The CA certificate (PEM), for `--cert-dir` as `ca.crt`.
    pub ca_pem: String,
    /// The server certificate (PEM).
    pub cert_pem: String,
    /// The server key (PEM).
    pub key_pem: String,
}

impl TestPki {
    /// Makes a fresh CA and server certificate.
    pub fn new() -> TestPki {
        let ca_key = rcgen::KeyPair::generate().expect("CA key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "strata test CA");
        let ca_cert = ca_params.self_signed(&ca_key).expect("CA cert");
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let key = rcgen::KeyPair::generate().expect("server key");
        let params =
            rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
                .expect("server params");
        let cert = params.signed_by(&key, &issuer).expect("server cert");
        TestPki {
            ca_pem: ca_cert.pem(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}

impl Default for TestPki {
    fn default() -> Self {
        TestPki::new()
    }
}

/// A one-shot `GET path` over HTTP/1.0; the status, if any answer came.
pub fn http_status(host: &str, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(host).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").as_bytes())
        .ok()?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).ok()?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The `service` the token registries are configured with.
pub const TOKEN_SERVICE: &str = "strata-test-registry";
/// The token issuer they trust.
pub const TOKEN_ISSUER: &str = "strata-test-issuer";

/// One request the token server answered.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    /// The `account` parameter, when credentials were sent.
    pub account: Option<String>,
    /// Whether valid credentials came with it.
    pub authenticated: bool,
    /// The `scope` parameters.
    pub scopes: Vec<String>,
    /// The method (`GET`, or `POST` for the OAuth2 refresh-token form).
    pub method: String,
}

struct TokenState {
    key: EcdsaKeyPair,
    kid: String,
    requests: Mutex<Vec<TokenRequest>>,
    /// Scopes that already got one empty token (the stingy mode's first answer).
    stingy_seen: Mutex<Vec<String>>,
    stingy: AtomicBool,
}

/// A token server (Docker token auth) on 127.0.0.1: ES256 JWTs whose `kid` is the libtrust key ID of the
/// certificate the registry trusts. Anonymous clients may pull any repository outside `private/`; [`USER`] may
/// pull and push everything. Stopped on drop.
pub struct TokenServer {
    addr: SocketAddr,
    state: Arc<TokenState>,
    /// The certificate (PEM) to give the registry as `rootcertbundle`.
    pub cert_pem: String,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TokenServer {
    /// Starts a token server with a fresh P-256 key and self-signed certificate.
    pub fn start() -> TokenServer {
        let key_pair = rcgen::KeyPair::generate().expect("generating a key");
        let params = rcgen::CertificateParams::new(vec!["strata-test-token".to_owned()])
            .expect("certificate params");
        let cert = params.self_signed(&key_pair).expect("self-signing");
        let kid = libtrust_key_id(&key_pair.subject_public_key_info());
        let key = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &key_pair.serialize_der(),
            &SystemRandom::new(),
        )
        .expect("loading the key into ring");
        let state = Arc::new(TokenState {
            key,
            kid,
            requests: Mutex::new(Vec::new()),
            stingy_seen: Mutex::new(Vec::new()),
            stingy: AtomicBool::new(false),
        });
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the token server");
        let addr = listener.local_addr().expect("token server address");
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let state = Arc::clone(&state);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(conn) = conn {
                        let _ = serve_token(&state, conn);
                    }
                }
            })
        };
        TokenServer {
            addr,
            state,
            cert_pem: cert.pem(),
            stop,
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT/token`.
    pub fn realm(&self) -> String {
        format!("http://{}/token", self.addr)
    }

    /// The requests answered so far.
    pub fn requests(&self) -> Vec<TokenRequest> {
        self.state.requests.lock().expect("token log").clone()
    }

    /// Forgets the requests answered so far.
    pub fn clear_requests(&self) {
        self.state.requests.lock().expect("token log").clear();
    }

    /// In stingy mode the first token for each scope grants nothing, so the registry answers
    /// `insufficient_scope` and the client must ask again.
    pub fn set_stingy(&self, stingy: bool) {
        self.state.stingy.store(stingy, Ordering::SeqCst);
        self.state.stingy_seen.lock().expect("stingy").clear();
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// libtrust's key ID: SHA-256 of the DER public key, first 240 bits, base32 in 12 groups of 4.
pub fn libtrust_key_id(spki_der: &[u8]) -> String {
    let hash = Sha256::digest(spki_der);
    let encoded = base32(&hash[..30]);
    encoded
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(":")
}

fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    let mut buffer: u64 = 0;
    let mut bits = 0;
    for &b in bytes {
        buffer = (buffer << 8) | u64::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buffer >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// A parsed HTTP request head.
#[derive(Debug, Clone)]
pub struct RequestHead {
    /// `GET`, `HEAD`, …
    pub method: String,
    /// The request target (path and query).
    pub target: String,
    /// Header names (lowercase) and values.
    pub headers: Vec<(String, String)>,
    /// The raw head, up to and including the blank line.
    pub raw: Vec<u8>,
}

impl RequestHead {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads a request head (bounded to 64 KiB).
pub fn read_head(stream: &mut TcpStream) -> Option<RequestHead> {
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\n") {
        if raw == [0x16] {
            // A TLS handshake on this plain-HTTP port: answer as Go's server does, so HTTPS fails fast.
            respond(
                stream,
                "400 Bad Request",
                &[],
                b"Client sent an HTTP request to an HTTPS server.",
            );
            return None;
        }
        if raw.len() > 64 * 1024 || stream.read(&mut byte).ok()? == 0 {
            return None;
        }
        raw.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    let mut lines = text.split("\r\n");
    let mut first = lines.next()?.split_whitespace();
    let method = first.next()?.to_owned();
    let target = first.next()?.to_owned();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Some(RequestHead {
        method,
        target,
        headers,
        raw,
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn respond(stream: &mut TcpStream, status: &str, headers: &[(&str, String)], body: &[u8]) {
    let mut head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (n, v) in headers {
        let _ = write!(head, "{n}: {v}\r\n");
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body);
    let _ = stream.flush();
    let _ = stream.shutdown(Shutdown::Write);
}

fn serve_token(state: &TokenState, mut stream: TcpStream) -> Option<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let head = read_head(&mut stream)?;
    let (path, query) = head
        .target
        .split_once('?')
        .unwrap_or((head.target.as_str(), ""));
    let mut params = query_pairs(query);
    if head.method == "POST" {
        let len: usize = head
            .header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; len.min(64 * 1024)];
        stream.read_exact(&mut body).ok()?;
        params.extend(query_pairs(&String::from_utf8_lossy(&body)));
    }
    if path != "/token" {
        respond(&mut stream, "404 Not Found", &[], b"");
        return Some(());
    }
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let scopes: Vec<String> = params
        .iter()
        .filter(|(n, _)| n == "scope")
        .flat_map(|(_, v)| v.split(' ').map(str::to_owned).collect::<Vec<_>>())
        .collect();
    // Credentials: Basic, or the refresh token "refresh-USER" in the OAuth2 form.
    let basic = head
        .header("authorization")
        .and_then(|a| a.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b.trim()).ok())
        .map(|b| String::from_utf8_lossy(&b).into_owned());
    let refresh = get("refresh_token");
    let (user, authenticated) = match (&basic, &refresh) {
        (Some(pair), _) => match pair.split_once(':') {
            Some((u, p)) if u == USER && p == PASSWORD => (Some(u.to_owned()), true),
            _ => {
                respond(
                    &mut stream,
                    "401 Unauthorized",
                    &[("Content-Type", "application/json".into())],
                    br#"{"errors":[{"code":"UNAUTHORIZED","message":"invalid username or password"}]}"#,
                );
                record(state, &head, get("account"), false, &scopes);
                return Some(());
            }
        },
        (None, Some(token)) if token == &format!("refresh-{USER}") => (Some(USER.to_owned()), true),
        (None, Some(_)) => {
            respond(&mut stream, "401 Unauthorized", &[], b"bad refresh token");
            return Some(());
        }
        (None, None) => (None, false),
    };
    record(state, &head, get("account"), authenticated, &scopes);
    let mut access = Vec::new();
    for scope in &scopes {
        let mut parts = scope.splitn(2, ':');
        let (Some(kind), Some(rest)) = (parts.next(), parts.next()) else {
            continue;
        };
        let Some((name, actions)) = rest.rsplit_once(':') else {
            continue;
        };
        if state.stingy.load(Ordering::SeqCst) {
            let mut seen = state.stingy_seen.lock().expect("stingy");
            if !seen.contains(scope) {
                seen.push(scope.clone());
                continue;
            }
        }
        let granted: Vec<&str> = actions
            .split(',')
            .filter(|a| match (*a, authenticated) {
                (_, true) => true,
                ("pull", false) => !name.starts_with("private/"),
                _ => false,
            })
            .collect();
        access.push(serde_json::json!({"type": kind, "name": name, "actions": granted}));
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let header = serde_json::json!({"typ": "JWT", "alg": "ES256", "kid": state.kid});
    let claims = serde_json::json!({
        "iss": TOKEN_ISSUER,
        "sub": user.clone().unwrap_or_default(),
        "aud": TOKEN_SERVICE,
        "exp": now + 300,
        "nbf": now - 10,
        "iat": now,
        "jti": format!("{now}-{}", state.requests.lock().map(|r| r.len()).unwrap_or(0)),
        "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = state
        .key
        .sign(&SystemRandom::new(), signing_input.as_bytes())
        .ok()?;
    let token = format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature.as_ref())
    );
    let body = serde_json::json!({"token": token, "access_token": token, "expires_in": 300});
    respond(
        &mut stream,
        "200 OK",
        &[("Content-Type", "application/json".into())],
        body.to_string().as_bytes(),
    );
    Some(())
}

fn record(
    state: &TokenState,
    head: &RequestHead,
    account: Option<String>,
    authenticated: bool,
    scopes: &[String],
) {
    if let Ok(mut log) = state.requests.lock() {
        log.push(TokenRequest {
            account,
            authenticated,
            scopes: scopes.to_vec(),
            method: head.method.clone(),
        });
    }
}

/// What the fault proxy does to a matching request.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer with this status (and `Retry-After` when given) without asking the registry.
    Status {
        /// The status code.
        status: u16,
        /// `Retry-After` seconds.
        retry_after: Option<u64>,
    },
    /// Forward, but send only the headers and the first `after` body bytes, then close.
    CutBody {
        /// Body bytes sent before closing.
        after: usize,
    },
    /// Forward, flipping one byte in the middle of the body.
    CorruptBody,
    /// Wait this long, then forward.
    Delay(Duration),
    /// Forward without the `Range` header (a registry that ignores ranges).
    StripRange,
    /// Serve `tags/list` in pages of this many tags, linked with `Link: <…>; rel="next"` (Debian's registry
    /// ignores `n` and never paginates tags itself).
    PaginateTags(usize),
    /// Answer `307` to the same path on `base` (`http://HOST:PORT`).
    Redirect {
        /// Where to.
        base: String,
    },
    /// Forward, making an absolute `Location` in the answer relative (path and query only), as some
    /// registries send upload locations.
    RelativeLocation,
}

/// A fault for requests whose target contains `path_contains`, applied to the next `times` of them.
#[derive(Debug, Clone)]
pub struct Rule {
    /// A substring of the request target.
    pub path_contains: String,
    /// The fault.
    pub fault: Fault,
    /// How many matching requests get it (`usize::MAX`: all).
    pub times: usize,
}

impl Rule {
    /// A rule for the next `times` requests whose target contains `path_contains`.
    pub fn new(path_contains: &str, fault: Fault, times: usize) -> Rule {
        Rule {
            path_contains: path_contains.to_owned(),
            fault,
            times,
        }
    }
}

/// One request the proxy saw.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The request head.
    pub head: RequestHead,
    /// The fault applied, if any.
    pub fault: Option<Fault>,
}

struct ProxyState {
    upstream: String,
    rules: Mutex<Vec<Rule>>,
    seen: Mutex<Vec<Seen>>,
    /// Replaces any `Authorization` when forwarding (a CDN that needs no client credentials).
    upstream_authorization: Option<String>,
}

/// An HTTP proxy on 127.0.0.1 forwarding to a registry, one request per connection, injecting [`Fault`]s.
/// Stopped on drop.
pub struct FaultProxy {
    /// `127.0.0.1:PORT`.
    pub host: String,
    state: Arc<ProxyState>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// A proxy to `upstream` (`HOST:PORT`) applying `rules` in order (the first matching rule with uses
    /// left wins).
    pub fn start(upstream: &str, rules: Vec<Rule>) -> FaultProxy {
        Self::start_with(upstream, rules, None)
    }

    /// Like [`FaultProxy::start`]; `upstream_authorization` replaces the clients' `Authorization`.
    pub fn start_with(
        upstream: &str,
        rules: Vec<Rule>,
        upstream_authorization: Option<String>,
    ) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the proxy");
        let host = listener.local_addr().expect("proxy address").to_string();
        let state = Arc::new(ProxyState {
            upstream: upstream.to_owned(),
            rules: Mutex::new(rules),
            seen: Mutex::new(Vec::new()),
            upstream_authorization,
        });
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let state = Arc::clone(&state);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(conn) = conn {
                        let state = Arc::clone(&state);
                        std::thread::spawn(move || proxy_one(&state, conn));
                    }
                }
            })
        };
        FaultProxy {
            host,
            state,
            stop,
            thread: Some(thread),
        }
    }

    /// `docker://127.0.0.1:PROXYPORT/REST`.
    pub fn image(&self, rest: &str) -> String {
        format!("docker://{}/{rest}", self.host)
    }

    /// The requests seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().expect("proxy log").clone()
    }

    /// How many requests so far had a target containing `part`.
    pub fn count(&self, part: &str) -> usize {
        self.seen()
            .iter()
            .filter(|s| s.head.target.contains(part))
            .count()
    }

    /// The request log as text, for failure messages.
    pub fn describe(&self) -> String {
        self.seen()
            .iter()
            .map(|s| format!("{} {} {:?}", s.head.method, s.head.target, s.fault))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(&self.host);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn proxy_one(state: &ProxyState, mut client: TcpStream) {
    let _ = client.set_read_timeout(Some(Duration::from_secs(10)));
    let Some(head) = read_head(&mut client) else {
        return;
    };
    let fault = {
        let mut rules = state.rules.lock().expect("rules");
        rules
            .iter_mut()
            .find(|r| r.times > 0 && head.target.contains(&r.path_contains))
            .map(|r| {
                r.times = r.times.saturating_sub(1);
                r.fault.clone()
            })
    };
    if let Ok(mut seen) = state.seen.lock() {
        seen.push(Seen {
            head: head.clone(),
            fault: fault.clone(),
        });
    }
    match &fault {
        Some(Fault::Status {
            status,
            retry_after,
        }) => {
            let mut headers = vec![("Content-Type", "application/json".to_owned())];
            if let Some(s) = retry_after {
                headers.push(("Retry-After", s.to_string()));
            }
            let code = if *status == 429 {
                "TOOMANYREQUESTS"
            } else {
                "UNKNOWN"
            };
            let body = format!(
                r#"{{"errors":[{{"code":"{code}","message":"injected by the test proxy"}}]}}"#
            );
            respond(
                &mut client,
                &format!("{status} Injected"),
                &headers,
                body.as_bytes(),
            );
            return;
        }
        Some(Fault::Redirect { base }) => {
            respond(
                &mut client,
                "307 Temporary Redirect",
                &[("Location", format!("{base}{}", head.target))],
                b"",
            );
            return;
        }
        Some(Fault::Delay(d)) => std::thread::sleep(*d),
        _ => {}
    }
    // The request body, if it has a length (uploads, manifest PUTs); chunked bodies are not forwarded.
    let length = head
        .header("content-length")
        .and_then(|l| l.trim().parse::<u64>().ok())
        .unwrap_or(0);
    let mut request_body = Vec::new();
    if (&mut client)
        .take(length)
        .read_to_end(&mut request_body)
        .is_err()
    {
        return;
    }
    // Forward: the head with Connection: close (and without Range, for StripRange).
    let (path, query) = head
        .target
        .split_once('?')
        .unwrap_or((head.target.as_str(), ""));
    let target = if matches!(fault, Some(Fault::PaginateTags(_))) {
        path
    } else {
        head.target.as_str()
    };
    let mut forwarded = format!("{} {target} HTTP/1.1\r\n", head.method);
    for (name, value) in &head.headers {
        let skip = name == "connection"
            || (name == "range" && matches!(fault, Some(Fault::StripRange)))
            || (name == "authorization" && state.upstream_authorization.is_some());
        if !skip {
            let _ = write!(forwarded, "{name}: {value}\r\n");
        }
    }
    if let Some(auth) = &state.upstream_authorization {
        let _ = write!(forwarded, "authorization: {auth}\r\n");
    }
    forwarded.push_str("connection: close\r\n\r\n");
    let Ok(mut upstream) = TcpStream::connect(&state.upstream) else {
        respond(&mut client, "502 Bad Gateway", &[], b"no upstream");
        return;
    };
    if upstream.write_all(forwarded.as_bytes()).is_err()
        || upstream.write_all(&request_body).is_err()
    {
        return;
    }
    let mut response = Vec::new();
    let _ = upstream.read_to_end(&mut response);
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(response.len(), |p| p + 4);
    let (resp_head, body) = response.split_at(split);
    match fault {
        Some(Fault::PaginateTags(page)) => {
            let list: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
            let tags: Vec<String> = list["tags"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| t.as_str().map(str::to_owned))
                .collect();
            let last = query_pairs(query)
                .into_iter()
                .find(|(k, _)| k == "last")
                .map(|(_, v)| v);
            let start = last
                .and_then(|l| tags.iter().position(|t| *t == l))
                .map_or(0, |p| p + 1);
            let end = (start + page).min(tags.len());
            let mut headers = vec![("Content-Type", "application/json".to_owned())];
            if end < tags.len() {
                headers.push((
                    "Link",
                    format!("<{path}?last={}&n={page}>; rel=\"next\"", tags[end - 1]),
                ));
            }
            let out = serde_json::json!({"name": list["name"], "tags": &tags[start..end]});
            respond(&mut client, "200 OK", &headers, out.to_string().as_bytes());
        }
        Some(Fault::CutBody { after }) => {
            let _ = client.write_all(resp_head);
            let _ = client.write_all(&body[..after.min(body.len())]);
            let _ = client.flush();
            // Close hard, as a dying server would.
            let _ = client.shutdown(Shutdown::Both);
        }
        Some(Fault::RelativeLocation) => {
            let text = String::from_utf8_lossy(resp_head);
            let mut rewritten = String::new();
            for line in text.split_inclusive("\r\n") {
                match line.split_once(':') {
                    Some((name, value)) if name.eq_ignore_ascii_case("location") => {
                        let value = value.trim();
                        let relative = value
                            .split_once("://")
                            .and_then(|(_, rest)| rest.find('/').map(|p| &rest[p..]))
                            .unwrap_or(value);
                        let _ = write!(rewritten, "{name}: {relative}\r\n");
                    }
                    _ => rewritten.push_str(line),
                }
            }
            let _ = client.write_all(rewritten.as_bytes());
            let _ = client.write_all(body);
        }
        Some(Fault::CorruptBody) => {
            let mut body = body.to_vec();
            if !body.is_empty() {
                let mid = body.len() / 2;
                body[mid] ^= 0x20;
            }
            let _ = client.write_all(resp_head);
            let _ = client.write_all(&body);
        }
        _ => {
            let _ = client.write_all(&response);
        }
    }
    let _ = client.flush();
}

/// A scripted HTTP server on 127.0.0.1 playing a hostile registry: each request head goes to the handler,
/// which writes whatever it likes to the connection (closed afterwards). Stopped on drop.
pub struct ScriptServer {
    /// `127.0.0.1:PORT`.
    pub host: String,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

type Handler = dyn Fn(&RequestHead, &mut TcpStream) + Send + Sync;

impl ScriptServer {
    /// Starts the server; `handler` answers every request (on its own thread).
    pub fn start(handler: impl Fn(&RequestHead, &mut TcpStream) + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the script server");
        let host = listener.local_addr().expect("address").to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(mut conn) = conn else { continue };
                    let handler = Arc::clone(&handler);
                    std::thread::spawn(move || {
                        let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
                        if let Some(head) = read_head(&mut conn) {
                            handler(&head, &mut conn);
                        }
                        let _ = conn.flush();
                        let _ = conn.shutdown(Shutdown::Both);
                    });
                }
            })
        };
        ScriptServer {
            host,
            stop,
            thread: Some(thread),
        }
    }

    /// `docker://127.0.0.1:PORT/REST`.
    pub fn image(&self, rest: &str) -> String {
        format!("docker://{}/{rest}", self.host)
    }
}

impl Drop for ScriptServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(&self.host);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Writes a complete response (`Content-Length` set, connection closing).
pub fn write_response(
    stream: &mut TcpStream,
    status: &str,
    headers: &[(&str, String)],
    body: &[u8],
) {
    respond(stream, status, headers, body);
}

/// A hermetic environment for strata and skopeo: its own HOME, XDG_RUNTIME_DIR and XDG_CONFIG_HOME, and no
/// REGISTRY_AUTH_FILE, DOCKER_CONFIG or CONTAINERS_REGISTRIES_CONF from the caller.
pub struct Env {
    dir: TempDir,
    vars: HashMap<String, String>,
}

impl Env {
    /// A fresh environment in a temporary directory.
    pub fn new() -> Env {
        let dir = tempfile::Builder::new()
            .prefix("strata-env-")
            .tempdir()
            .expect("env tempdir");
        for sub in ["home", "run", "home/.config"] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("env dirs");
        }
        Env {
            dir,
            vars: HashMap::new(),
        }
    }

    /// The temporary directory holding everything.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `$HOME`.
    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// `$XDG_RUNTIME_DIR`.
    pub fn runtime_dir(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    /// Sets an extra variable for every command.
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        self.vars.insert(name.to_owned(), value.into());
    }

    /// Writes an auth.json with `USER:PASSWORD` for `host` at `path` (directories created).
    pub fn write_auth(&self, path: &Path, host: &str) {
        let auth = STANDARD.encode(creds());
        let text = serde_json::json!({"auths": {host: {"auth": auth}}}).to_string();
        std::fs::create_dir_all(path.parent().expect("auth path parent")).expect("auth dir");
        std::fs::write(path, text).expect("writing auth.json");
    }

    /// `program` with the environment applied.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("HOME", self.home())
            .env("XDG_RUNTIME_DIR", self.runtime_dir())
            .env("XDG_CONFIG_HOME", self.home().join(".config"))
            .env_remove("REGISTRY_AUTH_FILE")
            .env_remove("DOCKER_CONFIG")
            .env_remove("CONTAINERS_REGISTRIES_CONF");
        for (k, v) in &self.vars {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs strata with `args`; the output whatever the status.
    pub fn strata<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Output {
        run_unchecked(self.command(strata_bin()).args(args))
    }

    /// Runs strata with `args`, which must succeed; its stdout.
    pub fn strata_ok<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Vec<u8> {
        let mut cmd = self.command(strata_bin());
        cmd.args(args);
        let out = run_unchecked(&mut cmd);
        assert!(
            out.status.success(),
            "`{}` failed\n{}",
            describe(&cmd),
            show_output(&out)
        );
        out.stdout
    }

    /// Runs skopeo with `args`, which must succeed; its stdout.
    pub fn skopeo_ok<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Vec<u8> {
        run(self.command("skopeo").args(args)).stdout
    }
}

impl Default for Env {
    fn default() -> Self {
        Env::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ids_look_like_libtrust() {
        let id = libtrust_key_id(b"anything");
        assert_eq!(id.len(), 12 * 4 + 11);
        assert_eq!(id.split(':').count(), 12);
        assert_eq!(base32(b"f"), "MY");
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(percent_decode("a%3Ab%2Fc+d"), "a:b/c d");
    }
}
