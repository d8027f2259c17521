//! The distribution API for one repository: ping and scheme choice, authentication, manifests, tags,
//! blobs (streamed with resumption, and by range).

use std::io::{self, Read};
use std::sync::{Arc, Mutex};

use strata_oci::{Digest, MAX_MANIFEST_SIZE, media};

use super::auth::{Challenge, TokenCache, basic, parse_challenges};
use super::authfile::{self, Secret};
use super::conf::RegistriesConf;
use super::http::{Body, Http, Method, Request, Response, link_next, origin, resolve_url};
use super::{RegistryError, SourceOptions};

/// The largest page of `tags/list` accepted.
const MAX_TAGS_PAGE: u64 = 16 * 1024 * 1024;
/// The most `tags/list` pages followed.
const MAX_TAGS_PAGES: usize = 10_000;
/// How many times a blob stream cut short is resumed.
const MAX_RESUMES: u32 = 3;

/// Most bytes read past the range asked for, to reach the end of a 206 body and keep its connection.
const MAX_RANGE_OVERRUN: u64 = 64 << 10;

/// What the ping found: where the registry answers and how it wants to be authenticated.
#[derive(Debug, Clone)]
struct Endpoint {
    /// `https://host[:port]` or `http://host[:port]`.
    base: String,
    challenge: Option<Challenge>,
}

/// The access to the repository a request needs (the Bearer token's scope).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Access {
    /// `repository:NAME:pull`.
    Pull,
    /// `repository:NAME:pull,push`.
    Push,
}

/// A manifest as fetched: bytes, digest (verified) and the `Content-Type` it was served as.
pub(crate) struct FetchedManifest {
    pub bytes: Vec<u8>,
    pub digest: Digest,
    pub content_type: Option<String>,
}

/// A client for one repository of one registry.
pub(crate) struct Client {
    registry: String,
    repository: String,
    insecure: bool,
    http: Http,
    secret: Option<Secret>,
    endpoint: Mutex<Option<Endpoint>>,
    tokens: TokenCache,
}

impl Client {
    /// A client for `registry` (`host[:port]`) and `repository`; reads registries.conf and the credentials
    /// now, and talks to the registry only when first asked something. This is the client of a write (and
    /// of the registry's own location): no mirror, no `location` rewrite.
    pub(crate) fn new(
        registry: &str,
        repository: &str,
        options: &SourceOptions,
    ) -> Result<Self, RegistryError> {
        let conf = RegistriesConf::load(options.registries_conf.as_deref())?;
        let insecure = conf
            .lookup(&format!("{registry}/{repository}"))
            .is_some_and(|e| e.insecure);
        Self::with_conf(&conf, registry, repository, insecure, true, options)
    }

    /// A client for `registry` and `repository` under `conf`: refused when `conf` blocks them; insecure
    /// when `conf_insecure` (unless `--tls-verify` says otherwise); credentials looked up for this
    /// registry in the auth files, and `--creds` used only when `given_credentials` (containers/image
    /// does not send them to a mirror on another host than the reference's).
    pub(crate) fn with_conf(
        conf: &RegistriesConf,
        registry: &str,
        repository: &str,
        conf_insecure: bool,
        given_credentials: bool,
        options: &SourceOptions,
    ) -> Result<Self, RegistryError> {
        if let Some(e) = conf
            .lookup(&format!("{registry}/{repository}"))
            .filter(|e| e.blocked)
        {
            return Err(RegistryError::Blocked {
                registry: e.prefix.clone(),
                path: e.path.clone(),
            });
        }
        let insecure = match options.tls_verify {
            Some(verify) => !verify,
            None => conf_insecure,
        };
        let secret = if given_credentials || options.credentials.is_none() {
            authfile::lookup(options, registry, repository)?
        } else {
            let mut without = options.clone();
            without.credentials = None;
            authfile::lookup(&without, registry, repository)?
        };
        Ok(Client {
            registry: registry.to_owned(),
            repository: repository.to_owned(),
            insecure,
            http: Http::new(registry, insecure, options)?,
            secret,
            endpoint: Mutex::new(None),
            tokens: TokenCache::default(),
        })
    }

    /// Pings `/v2/` (HTTPS, then plain HTTP for insecure registries) once, and remembers the answer.
    fn endpoint(&self) -> Result<Endpoint, RegistryError> {
        let mut guard = self.endpoint.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(endpoint) = guard.as_ref() {
            return Ok(endpoint.clone());
        }
        let schemes: &[&str] = if self.insecure {
            &["https", "http"]
        } else {
            &["https"]
        };
        let mut last_error = None;
        for scheme in schemes {
            let base = format!("{scheme}://{}", api_host(&self.registry));
            // An HTTPS attempt that plain HTTP follows is not retried on network failures.
            let network_retries = *scheme == "http" || !self.insecure;
            match self
                .http
                .execute_with(&Request::get(format!("{base}/v2/")), network_retries)
            {
                Ok(resp) if resp.status == 200 || resp.status == 401 => {
                    let challenge = pick_challenge(&resp);
                    resp.drain();
                    let endpoint = Endpoint { base, challenge };
                    *guard = Some(endpoint.clone());
                    return Ok(endpoint);
                }
                Ok(resp) => last_error = Some(resp.into_error(Method::Get)),
                Err(e) => last_error = Some(with_tls_hint(e, self.insecure)),
            }
        }
        Err(
            last_error.unwrap_or_else(|| RegistryError::InvalidResponse {
                url: self.registry.clone(),
                reason: "no scheme to try".into(),
            }),
        )
    }

    /// The `Authorization` value for a request needing `scopes`, under `challenge`.
    fn authorization(
        &self,
        challenge: Option<&Challenge>,
        scopes: &[String],
    ) -> Result<Option<String>, RegistryError> {
        match challenge {
            None => Ok(None),
            Some(Challenge::Basic) => Ok(match &self.secret {
                Some(Secret::Basic(creds)) => Some(basic(creds)),
                _ => None,
            }),
            Some(Challenge::Bearer { realm, service, .. }) => {
                let token = self.tokens.token(
                    &self.http,
                    realm,
                    service.as_deref(),
                    scopes,
                    self.secret.as_ref(),
                )?;
                Ok(Some(format!("Bearer {token}")))
            }
        }
    }

    /// Sends an authenticated GET for `target` (a path under the registry, or an absolute URL) with pull
    /// access: see [`Client::send`].
    pub(super) fn get(
        &self,
        target: &str,
        headers: &[(&'static str, String)],
    ) -> Result<Response, RegistryError> {
        self.send(Method::Get, target, headers, None, Access::Pull)
    }

    /// Sends an authenticated request for `target` (a path under the registry, or an absolute URL),
    /// answering the registry's challenges: a Bearer challenge naming a scope gets a token for it (once
    /// more), a stale token is renewed once. Tokens are asked for `access` to the repository. An absolute
    /// URL on another origin than the registry's gets no credentials.
    pub(super) fn send(
        &self,
        method: Method,
        target: &str,
        headers: &[(&'static str, String)],
        body: Option<&Body>,
        access: Access,
    ) -> Result<Response, RegistryError> {
        self.send_with(method, target, headers, body, access, false)
    }

    /// [`Client::send`], and with `once` each attempt is made once: no retry on a network failure or a
    /// 429/5xx status (the caller decides; a 401 is still answered with credentials).
    pub(super) fn send_with(
        &self,
        method: Method,
        target: &str,
        headers: &[(&'static str, String)],
        body: Option<&Body>,
        access: Access,
        once: bool,
    ) -> Result<Response, RegistryError> {
        let endpoint = self.endpoint()?;
        let url = if target.starts_with('/') {
            format!("{}{target}", endpoint.base)
        } else {
            target.to_owned()
        };
        let foreign = origin(&url) != origin(&endpoint.base);
        let mut challenge = if foreign {
            None
        } else {
            endpoint.challenge.clone()
        };
        let actions = match access {
            Access::Pull => "pull",
            Access::Push => "pull,push",
        };
        let mut scopes = vec![format!("repository:{}:{actions}", self.repository)];
        let mut last = None;
        let mut retried = false;
        for round in 0..3 {
            let mut request = Request::new(method, url.clone());
            request.headers = headers.to_vec();
            request.body = body.cloned();
            request.authorization = self.authorization(challenge.as_ref(), &scopes)?;
            let sent_auth = request.authorization.is_some();
            let resp = if once {
                self.http.execute_once(&request)?
            } else {
                self.http.execute(&request)?
            };
            if resp.status != 401 {
                return Ok(resp);
            }
            if foreign {
                last = Some(resp);
                break;
            }
            let fresh = pick_challenge(&resp);
            let retry = match &fresh {
                Some(Challenge::Bearer {
                    realm,
                    service,
                    scope,
                    ..
                }) => {
                    let same_server = match &challenge {
                        Some(Challenge::Bearer {
                            realm: old_realm,
                            service: old_service,
                            ..
                        }) => {
                            self.tokens
                                .forget(old_realm, old_service.as_deref(), &scopes);
                            old_realm == realm && old_service == service
                        }
                        _ => false,
                    };
                    let mut added = false;
                    for s in scope.iter().flat_map(|s| s.split(' ')) {
                        if !s.is_empty() && !scopes.iter().any(|x| x == s) {
                            scopes.push(s.to_owned());
                            added = true;
                        }
                    }
                    // A refused token without a new scope is renewed once, then strata gives up.
                    added || !same_server || !retried
                }
                Some(Challenge::Basic) => {
                    !sent_auth && matches!(self.secret, Some(Secret::Basic(_)))
                }
                None => false,
            };
            if !retry || round == 2 {
                last = Some(resp);
                break;
            }
            resp.drain();
            retried = true;
            if let Some(fresh) = fresh {
                challenge = Some(fresh);
            }
        }
        let Some(resp) = last else {
            return Err(RegistryError::InvalidResponse {
                url,
                reason: "no response".into(),
            });
        };
        let url = resp.url.clone();
        let mut reason = resp.error_reason("authentication required");
        if self.secret.is_none() {
            reason.push_str(&format!(
                " (no credentials for {}: use --creds or an auth file)",
                self.registry
            ));
        }
        Err(RegistryError::Unauthorized { url, reason })
    }

    /// Sends `method` to `target` (an absolute URL) with a body of `size` bytes streamed from `reader`, once
    /// (see [`Http::execute_streaming`]), with the credentials for push access the registry's challenge
    /// wants (a token is asked for if none is cached). A 401 is an error.
    pub(super) fn send_streaming(
        &self,
        method: Method,
        target: &str,
        content_type: &str,
        size: u64,
        reader: &mut dyn Read,
    ) -> Result<Response, RegistryError> {
        let endpoint = self.endpoint()?;
        let mut request = Request::new(method, target.to_owned());
        if origin(target) == origin(&endpoint.base) {
            let scopes = vec![format!("repository:{}:pull,push", self.repository)];
            request.authorization = self.authorization(endpoint.challenge.as_ref(), &scopes)?;
        }
        let resp = self
            .http
            .execute_streaming(&request, content_type, size, reader)?;
        if resp.status == 401 {
            let url = resp.url.clone();
            let reason = resp.error_reason("authentication required");
            return Err(RegistryError::Unauthorized { url, reason });
        }
        Ok(resp)
    }

    /// How many retries the retry policy allows after a first attempt (`--retry-times`).
    pub(super) fn max_retries(&self) -> u32 {
        self.http.max_retries()
    }

    /// The wait before retry number `retry` (from 0).
    pub(super) fn backoff(&self, retry: u32) -> std::time::Duration {
        self.http.backoff(retry)
    }

    /// `/v2/REPOSITORY/REST`.
    pub(super) fn path(&self, rest: &str) -> String {
        format!("/v2/{}/{rest}", self.repository)
    }

    /// The manifest `reference` (a tag or a digest) designates, verified against `expected` and against the
    /// registry's `Docker-Content-Digest`.
    pub(crate) fn manifest(
        &self,
        reference: &str,
        expected: Option<&Digest>,
    ) -> Result<FetchedManifest, RegistryError> {
        let accept = media::MANIFEST_ACCEPT.join(", ");
        let resp = self.get(
            &self.path(&format!("manifests/{reference}")),
            &[("Accept", accept)],
        )?;
        if resp.status != 200 {
            return Err(resp.into_error(Method::Get));
        }
        let url = resp.url.clone();
        let too_large = || RegistryError::TooLarge {
            url: url.clone(),
            what: "manifest",
            limit: MAX_MANIFEST_SIZE,
        };
        if resp.content_length().is_some_and(|n| n > MAX_MANIFEST_SIZE) {
            return Err(too_large());
        }
        let content_type = resp
            .header("content-type")
            .map(|t| t.split(';').next().unwrap_or(t).trim().to_owned())
            .filter(|t| !t.is_empty());
        let announced = announced_digest(&resp)?;
        let bytes = resp
            .read_limited(Method::Get, MAX_MANIFEST_SIZE)
            .map_err(|e| e.into_registry_error("manifest", MAX_MANIFEST_SIZE))?;
        let check = |want: &Digest| -> Result<(), RegistryError> {
            let actual = Digest::of(want.algorithm(), &bytes);
            if &actual == want {
                Ok(())
            } else {
                Err(RegistryError::DigestMismatch {
                    url: url.clone(),
                    expected: want.to_string(),
                    actual: actual.to_string(),
                })
            }
        };
        if let Some(want) = expected {
            check(want)?;
        }
        if let Some(want) = &announced {
            check(want)?;
        }
        let digest = match expected {
            Some(d) => d.clone(),
            None => Digest::sha256(&bytes),
        };
        Ok(FetchedManifest {
            bytes,
            digest,
            content_type,
        })
    }

    /// Every tag of the repository, following `Link` pagination, in the order served.
    pub(crate) fn tags(&self) -> Result<Vec<String>, RegistryError> {
        #[derive(serde::Deserialize)]
        struct Page {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let mut tags = Vec::new();
        let mut target = self.path("tags/list");
        let mut seen = std::collections::HashSet::new();
        for _ in 0..MAX_TAGS_PAGES {
            let resp = self.get(&target, &[("Accept", "application/json".into())])?;
            if resp.status != 200 {
                return Err(resp.into_error(Method::Get));
            }
            let url = resp.url.clone();
            let next = resp.header("link").and_then(link_next).map(str::to_owned);
            let bytes = resp
                .read_limited(Method::Get, MAX_TAGS_PAGE)
                .map_err(|e| e.into_registry_error("tag list page", MAX_TAGS_PAGE))?;
            let page: Page =
                serde_json::from_slice(&bytes).map_err(|e| RegistryError::InvalidResponse {
                    url: url.clone(),
                    reason: format!("malformed tag list: {e}"),
                })?;
            tags.extend(page.tags.unwrap_or_default());
            let Some(next) = next else {
                return Ok(tags);
            };
            let next_url =
                resolve_url(&url, &next).ok_or_else(|| RegistryError::InvalidResponse {
                    url: url.clone(),
                    reason: format!("unusable Link target {next:?}"),
                })?;
            if !seen.insert(next_url.clone()) {
                return Err(RegistryError::InvalidResponse {
                    url,
                    reason: "the tag list's Link pagination loops".into(),
                });
            }
            target = next_url;
        }
        Err(RegistryError::InvalidResponse {
            url: target,
            reason: format!("more than {MAX_TAGS_PAGES} pages of tags"),
        })
    }

    /// GETs blob `digest`, from `offset` on when it is not 0; the response must be 200 (or 206 for a range).
    fn blob_response(
        &self,
        digest: &Digest,
        range: Option<String>,
    ) -> Result<Response, RegistryError> {
        let mut headers = Vec::new();
        if let Some(range) = range {
            headers.push(("Range", range));
        }
        let resp = self.get(&self.path(&format!("blobs/{digest}")), &headers)?;
        if let Some(announced) = announced_digest(&resp)?
            && announced != *digest
        {
            return Err(RegistryError::DigestMismatch {
                url: resp.url.clone(),
                expected: digest.to_string(),
                actual: announced.to_string(),
            });
        }
        Ok(resp)
    }

    /// Opens blob `digest` for a sequential read: its size and a stream that resumes (by range) when the
    /// connection is cut short. The stream is not verified here: the caller wraps it.
    pub(crate) fn open_blob(
        self: &Arc<Self>,
        digest: &Digest,
    ) -> Result<(u64, BlobStream), RegistryError> {
        let resp = self.blob_response(digest, None)?;
        if resp.status != 200 {
            return Err(resp.into_error(Method::Get));
        }
        let size = resp
            .content_length()
            .ok_or_else(|| RegistryError::InvalidResponse {
                url: resp.url.clone(),
                reason: "blob response without Content-Length".into(),
            })?;
        let url = resp.url.clone();
        Ok((
            size,
            BlobStream {
                client: Arc::clone(self),
                digest: digest.clone(),
                url,
                size,
                offset: 0,
                body: Some(Box::new(resp.body.into_reader())),
                resumes_left: MAX_RESUMES,
            },
        ))
    }

    /// Reads up to `buf.len()` bytes of blob `digest` at `offset` with Range requests: 206 is the range,
    /// 200 (a registry ignoring Range) is the whole blob with the head skipped, 416 is the end. A response
    /// cut short is asked again for the rest (at most [`MAX_RESUMES`] times, after the retry policy's
    /// backoff), so a dropped connection costs a request, not the read.
    pub(crate) fn read_blob_at(
        &self,
        digest: &Digest,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<usize, RegistryError> {
        let mut filled = 0;
        let mut resumes = 0;
        while filled < buf.len() {
            let at = offset.saturating_add(filled as u64);
            match self.read_range(digest, at, &mut buf[filled..]) {
                Ok((0, _)) => break,
                Ok((n, complete)) => {
                    filled += n;
                    if complete {
                        break;
                    }
                }
                Err(RegistryError::Transport { source, .. })
                    if resumes < MAX_RESUMES && is_cut_short(&source) =>
                {
                    resumes += 1;
                    std::thread::sleep(self.http.backoff(resumes - 1));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(filled)
    }

    /// One Range request for `buf.len()` bytes of blob `digest` at `offset`: the bytes read, and whether
    /// the response ended where it said it would (false: the connection was cut short, after the bytes
    /// counted). A body error before any byte arrived is the error.
    fn read_range(
        &self,
        digest: &Digest,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<(usize, bool), RegistryError> {
        if buf.is_empty() {
            return Ok((0, true));
        }
        let last = offset.saturating_add(buf.len() as u64 - 1);
        let resp = self.blob_response(digest, Some(format!("bytes={offset}-{last}")))?;
        let url = resp.url.clone();
        let transport = |source: io::Error| RegistryError::Transport {
            method: "GET",
            url: url.clone(),
            source,
        };
        let partial = resp.status == 206;
        let mut reader: Box<dyn Read> = match resp.status {
            206 => {
                let start = resp
                    .header("content-range")
                    .and_then(content_range_start)
                    .ok_or_else(|| RegistryError::InvalidResponse {
                        url: url.clone(),
                        reason: "206 without a usable Content-Range".into(),
                    })?;
                if start != offset {
                    return Err(RegistryError::InvalidResponse {
                        url: url.clone(),
                        reason: format!("asked for bytes from {offset}, got bytes from {start}"),
                    });
                }
                Box::new(resp.body.into_reader())
            }
            200 => {
                let mut reader = resp.body.into_reader();
                let skipped = io::copy(&mut (&mut reader).take(offset), &mut io::sink())
                    .map_err(transport)?;
                if skipped < offset {
                    return Ok((0, true));
                }
                Box::new(reader)
            }
            416 => return Ok((0, true)),
            _ => return Err(resp.into_error(Method::Get)),
        };
        let mut filled = 0;
        while filled < buf.len() {
            match reader.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if filled > 0 && is_cut_short(&e) => return Ok((filled, false)),
                Err(e) => return Err(transport(e)),
            }
        }
        if partial {
            // The body should end here: reading its end gives the connection back to the pool for the
            // next range (ureq keeps only connections whose body was read to the end). A registry sending
            // more than asked gets its connection dropped instead.
            let _ = io::copy(&mut reader.take(MAX_RANGE_OVERRUN), &mut io::sink());
        }
        Ok((filled, true))
    }
}

/// Where a registry's API answers: Docker Hub's is not at `docker.io` itself.
fn api_host(registry: &str) -> &str {
    match registry {
        "docker.io" => "registry-1.docker.io",
        other => other,
    }
}

/// Adds a hint to the TLS failures people meet most: plain HTTP on the other end, and a self-signed certificate
/// that is its own CA (Go accepts it, rustls does not).
fn with_tls_hint(e: RegistryError, insecure: bool) -> RegistryError {
    let RegistryError::Transport {
        method,
        url,
        source,
    } = e
    else {
        return e;
    };
    let text = source.to_string();
    let hint = if text.contains("InvalidContentType") && !insecure {
        Some(
            "the registry may speak plain HTTP: use --tls-verify=false or mark it insecure in registries.conf",
        )
    } else if text.contains("CaUsedAsEndEntity") {
        Some(
            "the server certificate is a CA certificate used as its own leaf, which rustls refuses: reissue it with basicConstraints CA:FALSE or sign it with a CA",
        )
    } else {
        None
    };
    let source = match hint {
        Some(hint) => io::Error::new(source.kind(), format!("{text} ({hint})")),
        None => source,
    };
    RegistryError::Transport {
        method,
        url,
        source,
    }
}

/// The first challenge of a response's `WWW-Authenticate` headers that strata can answer (Bearer first).
fn pick_challenge(resp: &Response) -> Option<Challenge> {
    let challenges = parse_challenges(
        resp.headers
            .get_all("www-authenticate")
            .iter()
            .filter_map(|v| v.to_str().ok()),
    );
    challenges
        .iter()
        .find(|c| matches!(c, Challenge::Bearer { .. }))
        .or_else(|| challenges.first())
        .cloned()
}

/// `Docker-Content-Digest`, validated, if the response has one.
pub(super) fn announced_digest(resp: &Response) -> Result<Option<Digest>, RegistryError> {
    match resp.header("docker-content-digest") {
        None => Ok(None),
        Some(text) => {
            Digest::parse(text.trim())
                .map(Some)
                .map_err(|e| RegistryError::InvalidResponse {
                    url: resp.url.clone(),
                    reason: format!("Docker-Content-Digest: {e}"),
                })
        }
    }
}

/// The first byte position of `Content-Range: bytes FIRST-LAST/TOTAL`.
fn content_range_start(value: &str) -> Option<u64> {
    let range = value.trim().strip_prefix("bytes")?.trim_start();
    range.split('-').next()?.trim().parse().ok()
}

/// A blob's bytes as the registry sends them, resuming with a Range request from where the connection was cut
/// (at most [`MAX_RESUMES`] times). Reading past the size the registry announced ends the stream.
pub(crate) struct BlobStream {
    client: Arc<Client>,
    digest: Digest,
    url: String,
    size: u64,
    offset: u64,
    body: Option<Box<dyn Read + Send>>,
    resumes_left: u32,
}

impl BlobStream {
    fn reopen(&mut self) -> io::Result<()> {
        let resp = self
            .client
            .blob_response(&self.digest, Some(format!("bytes={}-", self.offset)))
            .map_err(io::Error::other)?;
        match resp.status {
            206 => {
                let start = resp.header("content-range").and_then(content_range_start);
                if start != Some(self.offset) {
                    return Err(io::Error::other(RegistryError::InvalidResponse {
                        url: resp.url,
                        reason: format!("resuming at byte {} got another range", self.offset),
                    }));
                }
                self.body = Some(Box::new(resp.body.into_reader()));
            }
            200 => {
                let mut reader = resp.body.into_reader();
                let skipped = io::copy(&mut (&mut reader).take(self.offset), &mut io::sink())?;
                if skipped < self.offset {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "blob shorter on resumption",
                    ));
                }
                self.body = Some(Box::new(reader));
            }
            _ => return Err(io::Error::other(resp.into_error(Method::Get))),
        }
        Ok(())
    }

    fn fail(&self, e: io::Error) -> io::Error {
        let kind = e.kind();
        io::Error::new(
            kind,
            RegistryError::Transport {
                method: "GET",
                url: self.url.clone(),
                source: io::Error::new(
                    kind,
                    format!(
                        "blob {} cut short at byte {} of {}: {e}",
                        self.digest, self.offset, self.size
                    ),
                ),
            },
        )
    }
}

impl Read for BlobStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.body.is_none() {
                if self.offset >= self.size {
                    return Ok(0);
                }
                if let Err(e) = self.reopen() {
                    return Err(self.fail(e));
                }
            }
            let Some(body) = self.body.as_mut() else {
                return Ok(0);
            };
            let result = body.read(buf);
            match result {
                Ok(0) if self.offset < self.size => {
                    self.body = None;
                    if self.resumes_left == 0 {
                        return Err(self.fail(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "connection closed",
                        )));
                    }
                    self.resumes_left -= 1;
                }
                Ok(n) => {
                    self.offset += n as u64;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if super::http::is_retryable_io(&e) || is_cut_short(&e) => {
                    self.body = None;
                    if self.resumes_left == 0 {
                        return Err(self.fail(e));
                    }
                    self.resumes_left -= 1;
                }
                Err(e) => return Err(self.fail(e)),
            }
        }
    }
}

/// Whether a body read error means the connection ended early (ureq reports some as `Other`).
fn is_cut_short(e: &io::Error) -> bool {
    let text = e.to_string().to_ascii_lowercase();
    text.contains("eof") || text.contains("closed") || text.contains("reset")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hub_api_host() {
        assert_eq!(api_host("docker.io"), "registry-1.docker.io");
        assert_eq!(api_host("quay.io"), "quay.io");
    }

    #[test]
    fn content_ranges() {
        assert_eq!(content_range_start("bytes 0-15/173"), Some(0));
        assert_eq!(content_range_start("bytes 100-199/*"), Some(100));
        assert_eq!(content_range_start("items 1-2/3"), None);
    }
}
