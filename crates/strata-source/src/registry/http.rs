//! HTTP for the registry client: one blocking ureq agent per registry, with timeouts, retries on 429/5xx
//! and network failures (honouring `Retry-After`), and redirects followed by hand so that `Authorization`
//! never goes to another origin.

use std::io::{self, Read as _};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ureq::Agent;
use ureq::http::HeaderMap;
use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig};

use super::{ApiError, RegistryError, RetryPolicy, SourceOptions};

/// The most redirects followed for one request.
const MAX_REDIRECTS: usize = 10;
/// The most of an error body read.
const MAX_ERROR_BODY: u64 = 64 * 1024;
/// The largest response header block accepted.
const MAX_HEADER_SIZE: usize = 64 * 1024;
/// Idle connections kept per registry host for the next requests.
const IDLE_CONNECTIONS_PER_HOST: usize = 16;
/// CA bundles tried for the system roots, Debian's first.
const SYSTEM_BUNDLES: [&str; 4] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// HTTP methods the client uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
}

/// A request body held in memory (so a retry or a redirect can send it again), with its `Content-Type`.
#[derive(Debug, Clone)]
pub(crate) struct Body {
    pub content_type: String,
    pub bytes: Arc<[u8]>,
}

/// A request to send.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    /// Sent to the request's origin only; dropped when a redirect leads elsewhere.
    pub authorization: Option<String>,
    /// The body (POST, PUT); a POST without one sends an empty body.
    pub body: Option<Body>,
}

impl Request {
    pub(crate) fn get(url: String) -> Self {
        Request::new(Method::Get, url)
    }

    pub(crate) fn new(method: Method, url: String) -> Self {
        Request {
            method,
            url,
            headers: Vec::new(),
            authorization: None,
            body: None,
        }
    }
}

/// A response whose body is still to be read.
pub(crate) struct Response {
    pub status: u16,
    /// The URL that answered (after redirects).
    pub url: String,
    pub headers: HeaderMap,
    pub body: ureq::Body,
}

impl Response {
    /// A header's value as text, if present and printable.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// `Content-Length`, if present and a number.
    pub(crate) fn content_length(&self) -> Option<u64> {
        self.header("content-length")
            .and_then(|v| v.trim().parse().ok())
    }

    /// The body, at most `limit` bytes; `Err(None)` when it is longer.
    pub(crate) fn read_limited(self, method: Method, limit: u64) -> Result<Vec<u8>, ReadError> {
        let url = self.url;
        let mut out = Vec::new();
        self.body
            .into_reader()
            .take(limit + 1)
            .read_to_end(&mut out)
            .map_err(|source| {
                ReadError::Transport(RegistryError::Transport {
                    method: method.name(),
                    url: url.clone(),
                    source,
                })
            })?;
        if out.len() as u64 > limit {
            return Err(ReadError::TooLarge { url });
        }
        Ok(out)
    }

    /// Reads and drops a small body (at most 64 KiB), so the connection can serve the next request.
    pub(crate) fn drain(self) {
        let _ = io::copy(
            &mut self.body.into_reader().take(MAX_ERROR_BODY),
            &mut io::sink(),
        );
    }

    /// The error a non-success response means: the registry's error JSON, or the start of the body.
    pub(crate) fn into_error(self, method: Method) -> RegistryError {
        let status = self.status;
        let url = self.url.clone();
        let (errors, body) = self.error_details();
        RegistryError::Status {
            method: method.name(),
            url,
            status,
            errors,
            body,
        }
    }

    /// One line saying why the registry refused: its listed errors joined with `; `, else the body's
    /// snippet, else `fallback` (bounded read; failures ignored).
    pub(crate) fn error_reason(self, fallback: &str) -> String {
        let (errors, body) = self.error_details();
        let reason = if errors.is_empty() {
            body
        } else {
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        };
        if reason.is_empty() {
            fallback.to_owned()
        } else {
            reason
        }
    }

    /// The errors listed in the body, or a cleaned snippet of it (bounded read; failures ignored).
    pub(crate) fn error_details(self) -> (Vec<ApiError>, String) {
        let mut bytes = Vec::new();
        let _ = self
            .body
            .into_reader()
            .take(MAX_ERROR_BODY)
            .read_to_end(&mut bytes);
        parse_error_body(&bytes)
    }
}

/// Why a bounded body read failed.
pub(crate) enum ReadError {
    Transport(RegistryError),
    TooLarge { url: String },
}

impl ReadError {
    pub(crate) fn into_registry_error(self, what: &'static str, limit: u64) -> RegistryError {
        match self {
            ReadError::Transport(e) => e,
            ReadError::TooLarge { url } => RegistryError::TooLarge { url, what, limit },
        }
    }
}

#[derive(serde::Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<ErrorEntry>,
}

#[derive(serde::Deserialize)]
struct ErrorEntry {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// `{"errors": [...]}`, or a snippet of whatever else the body was.
pub(crate) fn parse_error_body(bytes: &[u8]) -> (Vec<ApiError>, String) {
    if let Ok(body) = serde_json::from_slice::<ErrorBody>(bytes)
        && !body.errors.is_empty()
    {
        let errors = body
            .errors
            .into_iter()
            .take(8)
            .map(|e| ApiError {
                code: clean_text(&e.code),
                message: clean_text(&e.message),
            })
            .collect();
        return (errors, String::new());
    }
    (Vec::new(), clean_text(&String::from_utf8_lossy(bytes)))
}

/// Text from the network made safe for a one-line message: control characters dropped, white space
/// collapsed, at most 300 characters.
pub(crate) fn clean_text(text: &str) -> String {
    let mut out = String::new();
    let mut count = 0;
    for word in text.split_whitespace() {
        let word: String = word.chars().filter(|c| !c.is_control()).collect();
        if word.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        for c in word.chars() {
            if count == 300 {
                out.push('…');
                return out;
            }
            out.push(c);
            count += 1;
        }
    }
    out
}

/// The HTTP side of one registry: its agent (TLS settings included) and retry policy.
pub(crate) struct Http {
    agent: Agent,
    retry: RetryPolicy,
}

impl Http {
    /// An agent for `registry`: TLS verified against the system roots plus the cert dir's CAs, unless
    /// `insecure`; the cert dir's client certificate, if any.
    pub(crate) fn new(
        registry: &str,
        insecure: bool,
        options: &SourceOptions,
    ) -> Result<Self, RegistryError> {
        let tls = tls_config(registry, insecure, options)?;
        let config = Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .user_agent(concat!("strata/", env!("CARGO_PKG_VERSION")))
            .timeout_connect(Some(options.timeout))
            .timeout_per_read(Some(options.timeout))
            .timeout_per_write(Some(options.timeout))
            .max_response_header_size(MAX_HEADER_SIZE)
            // Lazy reads fetch a layer's ranges from several threads at once (one per layer looked up,
            // one per FUSE reader): keep their connections for the next ones.
            .max_idle_connections_per_host(IDLE_CONNECTIONS_PER_HOST)
            .tls_config(tls)
            .build();
        Ok(Http {
            agent: config.new_agent(),
            retry: options.retry,
        })
    }

    /// How many retries the policy allows after a first attempt.
    pub(crate) fn max_retries(&self) -> u32 {
        self.retry.max_retries
    }

    /// How long to wait before retry number `retry` (from 0), as the policy says.
    pub(crate) fn backoff(&self, retry: u32) -> std::time::Duration {
        self.retry.backoff(retry)
    }

    /// Sends `request`, following redirects and retrying as the policy allows. Error statuses come back as
    /// responses (except 429/5xx after retries were spent, which become [`RegistryError::RetriesExhausted`]).
    pub(crate) fn execute(&self, request: &Request) -> Result<Response, RegistryError> {
        self.execute_with(request, true)
    }

    /// Sends `request` once (following redirects): no retry on any failure or status, for a request whose
    /// retry must be decided by the caller (an upload chunk the registry may have taken in part).
    pub(crate) fn execute_once(&self, request: &Request) -> Result<Response, RegistryError> {
        self.follow(request).map_err(|e| RegistryError::Transport {
            method: request.method.name(),
            url: request.url.clone(),
            source: e.into_io(),
        })
    }

    /// Like [`Http::execute`]; without `network_retries`, network failures are not retried (an HTTPS
    /// attempt that plain HTTP will follow).
    pub(crate) fn execute_with(
        &self,
        request: &Request,
        network_retries: bool,
    ) -> Result<Response, RegistryError> {
        let mut retry = 0;
        loop {
            let can_retry = retry < self.retry.max_retries;
            match self.follow(request) {
                Ok(resp) if is_retryable_status(resp.status) => {
                    if !can_retry {
                        if retry == 0 {
                            return Ok(resp);
                        }
                        let status = resp.status;
                        let url = resp.url.clone();
                        let (errors, _) = resp.error_details();
                        return Err(RegistryError::RetriesExhausted {
                            method: request.method.name(),
                            url,
                            attempts: retry + 1,
                            status,
                            errors,
                        });
                    }
                    let wait = retry_after(resp.header("retry-after"))
                        .unwrap_or_else(|| self.retry.backoff(retry))
                        .min(self.retry.max_delay);
                    drop(resp);
                    std::thread::sleep(wait);
                }
                Ok(resp) => return Ok(resp),
                Err(e) if can_retry && network_retries && is_retryable_error(&e) => {
                    std::thread::sleep(self.retry.backoff(retry));
                }
                Err(e) => {
                    return Err(RegistryError::Transport {
                        method: request.method.name(),
                        url: request.url.clone(),
                        source: e.into_io(),
                    });
                }
            }
            retry += 1;
        }
    }

    /// One attempt: the request and the redirects it leads to.
    fn follow(&self, request: &Request) -> Result<Response, ureq::Error> {
        let mut url = request.url.clone();
        let mut authorization = request.authorization.clone();
        let mut method = request.method;
        let mut body = request.body.clone();
        for _ in 0..=MAX_REDIRECTS {
            let resp = self.send_once(method, &url, &request.headers, &authorization, &body)?;
            let status = resp.status().as_u16();
            let location = resp.headers().get("location").and_then(|v| v.to_str().ok());
            match (status, location) {
                (301 | 302 | 303 | 307 | 308, Some(location)) => {
                    let next = resolve_url(&url, location).ok_or_else(|| {
                        ureq::Error::BadUri(format!("redirect to unusable location {location:?}"))
                    })?;
                    if origin(&next) != origin(&url) {
                        authorization = None;
                    }
                    if status == 303 || (method == Method::Post && matches!(status, 301 | 302)) {
                        method = Method::Get;
                        body = None;
                    }
                    url = next;
                }
                _ => {
                    let (parts, body) = resp.into_parts();
                    return Ok(Response {
                        status,
                        url,
                        headers: parts.headers,
                        body,
                    });
                }
            }
        }
        Err(ureq::Error::TooManyRedirects)
    }

    fn send_once(
        &self,
        method: Method,
        url: &str,
        headers: &[(&'static str, String)],
        authorization: &Option<String>,
        body: &Option<Body>,
    ) -> Result<ureq::http::Response<ureq::Body>, ureq::Error> {
        macro_rules! with_headers {
            ($builder:expr) => {{
                let mut builder = $builder;
                for (name, value) in headers {
                    builder = builder.header(*name, value);
                }
                if let Some(auth) = authorization {
                    builder = builder.header("Authorization", auth);
                }
                builder
            }};
        }
        let send = |builder: ureq::RequestBuilder<ureq::typestate::WithBody>| match body {
            Some(body) => builder
                .header("Content-Type", &body.content_type)
                .send(&body.bytes[..]),
            None => builder.send_empty(),
        };
        match method {
            Method::Get => with_headers!(self.agent.get(url)).call(),
            Method::Head => with_headers!(self.agent.head(url)).call(),
            Method::Post => send(with_headers!(self.agent.post(url))),
            Method::Put => send(with_headers!(self.agent.put(url))),
            Method::Patch => send(with_headers!(self.agent.patch(url))),
            Method::Delete => with_headers!(self.agent.delete(url)).call(),
        }
    }

    /// Sends `request` with `body` streamed from a reader of `size` bytes, once: no retry and no redirect can
    /// send a body that is read as it goes (a redirect answer comes back as the response).
    pub(crate) fn execute_streaming(
        &self,
        request: &Request,
        content_type: &str,
        size: u64,
        body: &mut dyn io::Read,
    ) -> Result<Response, RegistryError> {
        let fail = |e: ureq::Error| RegistryError::Transport {
            method: request.method.name(),
            url: request.url.clone(),
            source: e.into_io(),
        };
        let builder = match request.method {
            Method::Put => self.agent.put(&request.url),
            Method::Post => self.agent.post(&request.url),
            Method::Patch => self.agent.patch(&request.url),
            Method::Get | Method::Head | Method::Delete => {
                return Err(RegistryError::InvalidResponse {
                    url: request.url.clone(),
                    reason: "a streamed body needs POST or PUT".into(),
                });
            }
        };
        let mut builder = builder
            .header("Content-Type", content_type)
            .header("Content-Length", size.to_string());
        for (name, value) in &request.headers {
            builder = builder.header(*name, value);
        }
        if let Some(auth) = &request.authorization {
            builder = builder.header("Authorization", auth);
        }
        let resp = builder
            .send(ureq::SendBody::from_reader(&mut body.take(size)))
            .map_err(fail)?;
        let status = resp.status().as_u16();
        let (parts, body) = resp.into_parts();
        Ok(Response {
            status,
            url: request.url.clone(),
            headers: parts.headers,
            body,
        })
    }
}

fn is_retryable_status(status: u16) -> bool {
    matches!(status, 429 | 500 | 502 | 503 | 504)
}

/// Network failures worth another try; refused connections, DNS, TLS and protocol errors are not.
pub(crate) fn is_retryable_error(e: &ureq::Error) -> bool {
    match e {
        ureq::Error::Timeout(_) => true,
        ureq::Error::Io(io) => is_retryable_io(io),
        _ => false,
    }
}

/// I/O failures of an established exchange worth another try.
pub(crate) fn is_retryable_io(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::UnexpectedEof
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::TimedOut
            | io::ErrorKind::WouldBlock
            | io::ErrorKind::Interrupted
    )
}

/// `Retry-After` in seconds (the HTTP-date form is ignored: the backoff applies).
fn retry_after(value: Option<&str>) -> Option<Duration> {
    value?.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// `scheme://authority` of an absolute URL.
pub(crate) fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    Some(format!(
        "{}://{}",
        scheme.to_ascii_lowercase(),
        authority.to_ascii_lowercase()
    ))
}

/// Resolves `reference` (a `Location` or `Link` target) against `base`; only http and https results.
pub(crate) fn resolve_url(base: &str, reference: &str) -> Option<String> {
    let reference = reference.trim();
    let resolved = if let Some((scheme, _)) = reference.split_once("://") {
        if !scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        {
            return None;
        }
        reference.to_owned()
    } else if let Some(rest) = reference.strip_prefix("//") {
        let (scheme, _) = base.split_once("://")?;
        format!("{scheme}://{rest}")
    } else if reference.starts_with('/') {
        format!("{}{reference}", origin(base)?)
    } else {
        let without_query = base.split(['?', '#']).next().unwrap_or(base);
        let origin = origin(base)?;
        let path = &without_query[origin.len().min(without_query.len())..];
        let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
        format!("{origin}{dir}/{reference}")
    };
    let lower = resolved.to_ascii_lowercase();
    if (lower.starts_with("https://") || lower.starts_with("http://"))
        && !resolved.chars().any(|c| c.is_control() || c == ' ')
    {
        Some(resolved)
    } else {
        None
    }
}

/// Percent-encodes a query value (everything but unreserved characters).
pub(crate) fn encode_query(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The `rel="next"` target of a `Link` header.
pub(crate) fn link_next(value: &str) -> Option<&str> {
    for link in value.split(',') {
        let (target, params) = link.split_once(';').unwrap_or((link, ""));
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        let is_next = params.split(';').any(|p| {
            p.trim()
                .strip_prefix("rel=")
                .is_some_and(|r| r.trim_matches('"').split_whitespace().any(|r| r == "next"))
        });
        if is_next {
            return Some(target);
        }
    }
    None
}

/// The cert dir for `registry`: the option, else the first of containers' and docker's that exists.
fn cert_dir(registry: &str, options: &SourceOptions) -> Option<std::path::PathBuf> {
    if let Some(dir) = &options.cert_dir {
        return Some(dir.clone());
    }
    let mut candidates = Vec::new();
    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty())
        && !rustix::process::getuid().is_root()
    {
        candidates.push(Path::new(&home).join(".config/containers/certs.d"));
    }
    candidates.push("/etc/containers/certs.d".into());
    candidates.push("/etc/docker/certs.d".into());
    candidates
        .into_iter()
        .map(|d| d.join(registry))
        .find(|d| d.is_dir())
}

fn tls_config(
    registry: &str,
    insecure: bool,
    options: &SourceOptions,
) -> Result<TlsConfig, RegistryError> {
    let mut builder = TlsConfig::builder().disable_verification(insecure);
    let Some(dir) = cert_dir(registry, options) else {
        if !insecure {
            builder = builder.root_certs(system_roots(&[]));
        }
        return Ok(builder.build());
    };
    let config_error = |path: &Path, reason: String| RegistryError::Config {
        path: path.to_path_buf(),
        reason,
    };
    let mut entries: Vec<std::path::PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| config_error(&dir, e.to_string()))?
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    let mut cas = Vec::new();
    let mut client = None;
    for path in &entries {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        match ext {
            "crt" => {
                let pem = std::fs::read(path).map_err(|e| config_error(path, e.to_string()))?;
                for item in ureq::tls::parse_pem(&pem) {
                    match item {
                        Ok(PemItem::Certificate(c)) => cas.push(c),
                        Ok(_) => {}
                        Err(e) => return Err(config_error(path, e.to_string())),
                    }
                }
            }
            "cert" if client.is_none() => {
                let key_path = path.with_extension("key");
                if !key_path.is_file() {
                    return Err(config_error(
                        path,
                        format!("missing key pair {}", key_path.display()),
                    ));
                }
                let pem = std::fs::read(path).map_err(|e| config_error(path, e.to_string()))?;
                let chain: Vec<Certificate<'static>> = ureq::tls::parse_pem(&pem)
                    .filter_map(|i| match i {
                        Ok(PemItem::Certificate(c)) => Some(c),
                        _ => None,
                    })
                    .collect();
                let key_pem =
                    std::fs::read(&key_path).map_err(|e| config_error(&key_path, e.to_string()))?;
                let key = PrivateKey::from_pem(&key_pem)
                    .map_err(|e| config_error(&key_path, e.to_string()))?;
                if chain.is_empty() {
                    return Err(config_error(path, "no certificate in it".into()));
                }
                client = Some(ClientCert::new_with_certs(&chain, key));
            }
            "key" if !path.with_extension("cert").is_file() => {
                return Err(config_error(
                    path,
                    format!(
                        "missing client certificate {}",
                        path.with_extension("cert").display()
                    ),
                ));
            }
            _ => {}
        }
    }
    if !insecure {
        builder = builder.root_certs(system_roots(&cas));
    }
    Ok(builder.client_cert(client).build())
}

/// The system's CA bundle plus `extra`; Mozilla's roots (webpki) when there is no system bundle.
fn system_roots(extra: &[Certificate<'static>]) -> RootCerts {
    let mut certs: Vec<Certificate<'static>> = Vec::new();
    if let Some(pem) = SYSTEM_BUNDLES.iter().find_map(|p| std::fs::read(p).ok()) {
        certs.extend(ureq::tls::parse_pem(&pem).filter_map(|i| match i {
            Ok(PemItem::Certificate(c)) => Some(c),
            _ => None,
        }));
    }
    if certs.is_empty() && extra.is_empty() {
        return RootCerts::WebPki;
    }
    certs.extend(extra.iter().cloned());
    RootCerts::Specific(Arc::new(certs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let base = "https://reg.example:5000/v2/a/b/tags/list?n=1";
        assert_eq!(
            resolve_url(base, "/v2/a/b/tags/list?last=x").as_deref(),
            Some("https://reg.example:5000/v2/a/b/tags/list?last=x")
        );
        assert_eq!(
            resolve_url(base, "//cdn.example/x").as_deref(),
            Some("https://cdn.example/x")
        );
        assert_eq!(
            resolve_url(base, "http://cdn.example/y").as_deref(),
            Some("http://cdn.example/y")
        );
        assert_eq!(
            resolve_url(base, "list2").as_deref(),
            Some("https://reg.example:5000/v2/a/b/tags/list2")
        );
        assert_eq!(resolve_url(base, "file:///etc/passwd"), None);
        assert_eq!(resolve_url(base, "/a b"), None);
        assert_eq!(
            origin("HTTPS://Reg.example:5000/v2/").as_deref(),
            Some("https://reg.example:5000")
        );
        assert_ne!(origin("http://h:1/x"), origin("http://h:2/x"));
    }

    #[test]
    fn links() {
        assert_eq!(
            link_next(r#"</v2/x/tags/list?last=b&n=2>; rel="next""#),
            Some("/v2/x/tags/list?last=b&n=2")
        );
        assert_eq!(link_next(r#"<a>; rel="prev", <b>; rel=next"#), Some("b"));
        assert_eq!(link_next("garbage"), None);
    }

    #[test]
    fn error_bodies() {
        let (errors, body) = parse_error_body(
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}"#,
        );
        assert_eq!(errors[0].to_string(), "MANIFEST_UNKNOWN: manifest unknown");
        assert!(body.is_empty());
        let (errors, body) = parse_error_body(b"<html>\n\x1b[31mbad\tgateway</html>");
        assert!(errors.is_empty());
        assert_eq!(body, "<html> [31mbad gateway</html>");
        assert_eq!(clean_text(&"x".repeat(1000)).chars().count(), 301);
    }

    #[test]
    fn query_encoding() {
        assert_eq!(
            encode_query("repository:a/b:pull,push"),
            "repository%3Aa%2Fb%3Apull%2Cpush"
        );
    }
}
