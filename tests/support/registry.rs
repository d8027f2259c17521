//! Registries for the `docker://` tests: a real `docker-registry` (Debian's Distribution 2.8) on 127.0.0.1,
//! open, behind htpasswd (Basic) or behind token auth with a tiny token server of our own; a fault-injecting
//! proxy (in [`crate::proxy`], re-exported here); and a hermetic environment (HOME, XDG dirs) for strata and skopeo.
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

pub use crate::proxy::{Fault, FaultProxy, Rule, Seen};
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
///
/// It logs at level `info` in JSON, one `"response completed"` line per answered request with the bytes of
/// its body ([`Registry::served`], [`Registry::blob_bytes_written`]). It can be stopped and started again on
/// the same port with the same storage ([`Registry::restart`]).
pub struct Registry {
    /// `127.0.0.1:PORT`.
    pub host: String,
    /// How it authenticates (the token server lives here).
    pub auth: Auth,
    child: Child,
    dir: TempDir,
    tls: bool,
}

/// One request a [`Registry`] answered, from its log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    /// `http.request.method`.
    pub method: String,
    /// `http.request.uri` (path and query).
    pub uri: String,
    /// `http.response.status` (206 for a range).
    pub status: u16,
    /// `http.response.written`: the body bytes sent.
    pub written: u64,
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
            "version: 0.1\nlog:\n  level: info\n  formatter: json\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {host}\n  secret: strata-test-secret\n",
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
        std::fs::write(dir.path().join("config.yml"), config).expect("writing the registry config");
        let child = Self::launch(dir.path());
        Registry {
            host,
            auth,
            child,
            dir,
            tls: tls.is_some(),
        }
    }

    /// Runs `docker-registry serve` with the config in `dir`, appending to its log there.
    fn launch(dir: &Path) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("registry.log"))
            .expect("registry log");
        let log2 = log.try_clone().expect("registry log");
        Command::new("docker-registry")
            .arg("serve")
            .arg(dir.join("config.yml"))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .expect("starting docker-registry")
    }

    /// Kills the registry, as a crash does; its port, config and storage are kept for [`Registry::resume`].
    /// Requests to it fail (connection refused) until then.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the stopped registry again on the same port, with the same config and storage, and waits until
    /// it answers.
    ///
    /// # Panics
    /// When it does not start within 20 s (its log is shown), e.g. when another process took the port.
    pub fn resume(&mut self) {
        self.child = Self::launch(self.dir.path());
        if let Err(log) = self.wait_ready(self.tls) {
            panic!("docker-registry did not start again:\n{log}");
        }
    }

    /// [`Registry::stop`], then [`Registry::resume`]: a registry restart under live clients.
    pub fn restart(&mut self) {
        self.stop();
        self.resume();
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

    /// The requests answered so far, from the log's `"response completed"` lines (Distribution writes one
    /// just after each answer has been sent, for status 200–399 at level `info` and for errors as
    /// `"response completed with error"`).
    pub fn served(&self) -> Vec<Served> {
        self.log()
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|v| {
                v["msg"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("response completed"))
            })
            .map(|v| Served {
                method: v["http.request.method"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                uri: v["http.request.uri"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                status: v["http.response.status"]
                    .as_u64()
                    .and_then(|s| u16::try_from(s).ok())
                    .unwrap_or(0),
                written: v["http.response.written"].as_u64().unwrap_or(0),
            })
            .collect()
    }

    /// The body bytes the registry sent for blob `GET`s (`…/blobs/…`), the sum of their
    /// `http.response.written`, once the log has settled: the registry logs a request just after its answer,
    /// so this waits until two reads 100 ms apart agree (at most 5 s).
    pub fn blob_bytes_written(&self) -> u64 {
        let sum = || {
            self.served()
                .iter()
                .filter(|s| s.method == "GET" && s.uri.contains("/blobs/"))
                .map(|s| s.written)
                .sum::<u64>()
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut last = sum();
        loop {
            std::thread::sleep(Duration::from_millis(100));
            let now = sum();
            if now == last || Instant::now() > deadline {
                return now;
            }
            last = now;
        }
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

/// Reads a request head (bounded to 64 KiB) one byte at a time, so nothing after it is consumed; answers a TLS
/// handshake with Go's 400.
pub fn read_head(stream: &mut TcpStream) -> Option<RequestHead> {
    match read_head_from(stream) {
        HeadRead::Head(head) => Some(head),
        HeadRead::Tls => {
            respond(stream, "400 Bad Request", &[], TLS_ANSWER);
            None
        }
        HeadRead::End => None,
    }
}

/// What Go's HTTP server answers (400) to a TLS handshake on a plain-HTTP port, so HTTPS fails fast.
pub(crate) const TLS_ANSWER: &[u8] = b"Client sent an HTTP request to an HTTPS server.";

/// What [`read_head_from`] found.
pub(crate) enum HeadRead {
    /// A request head.
    Head(RequestHead),
    /// A TLS handshake on this plain-HTTP port.
    Tls,
    /// The end of the stream, an error, or no valid head within 64 KiB.
    End,
}

/// Reads a request head (bounded to 64 KiB) from `reader`, one byte at a time, so nothing after it is consumed.
pub(crate) fn read_head_from(reader: &mut impl Read) -> HeadRead {
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\n") {
        if raw == [0x16] {
            return HeadRead::Tls;
        }
        if raw.len() > 64 * 1024 || !matches!(reader.read(&mut byte), Ok(1)) {
            return HeadRead::End;
        }
        raw.push(byte[0]);
    }
    parse_head(raw).map_or(HeadRead::End, HeadRead::Head)
}

fn parse_head(raw: Vec<u8>) -> Option<RequestHead> {
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

pub(crate) fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

pub(crate) fn respond(
    stream: &mut TcpStream,
    status: &str,
    headers: &[(&str, String)],
    body: &[u8],
) {
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

/// Kills process `pid` and removes `dirs` once the current (test) process has exited: for a registry and
/// its files shared by every test of a binary through a `static`, which is never dropped.
pub fn clean_up_after_exit(pid: u32, dirs: &[&Path]) {
    let mut script = format!(
        "while kill -0 {} 2>/dev/null; do sleep 0.5; done; kill {pid} 2>/dev/null; sleep 0.5",
        std::process::id()
    );
    for dir in dirs {
        let _ = write!(script, "; rm -rf '{}'", dir.display());
    }
    // The watcher outlives this process by design: nobody waits for it.
    #[allow(clippy::zombie_processes)]
    Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting the clean-up watcher");
}

impl Registry {
    /// The registry process's ID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The directory holding its config, log and storage.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// strata's stderr of a failed run in `env`, which must be a clean one-line error.
///
/// # Panics
/// When strata succeeds or its error is not clean.
pub fn clean_failure(env: &Env, args: &[&str], what: &str) -> String {
    let out = env.strata(args);
    crate::assert_clean_error(&out, what);
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts that `text` contains each of `parts`.
///
/// # Panics
/// When one is missing.
pub fn assert_contains(text: &str, parts: &[&str], what: &str) {
    for part in parts {
        assert!(text.contains(part), "{what}: expected {part:?} in:\n{text}");
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
