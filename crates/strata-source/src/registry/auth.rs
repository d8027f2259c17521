//! Authentication: `WWW-Authenticate` challenges, Basic, and the Bearer token flow (token server, token
//! cache with expiry).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::Deserialize;

use super::authfile::Secret;
use super::http::{Body, Http, Method, Request, encode_query};
use super::{Credentials, RegistryError};

/// The largest token response accepted.
const MAX_TOKEN_RESPONSE: u64 = 1024 * 1024;
/// A token's lifetime when the server names none, and the least strata assumes (the token spec's 60 s).
const MIN_TOKEN_LIFETIME: Duration = Duration::from_secs(60);
/// The longest strata keeps a token, whatever the server says.
const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// How long before its expiry a cached token is renewed.
const TOKEN_MARGIN: Duration = Duration::from_secs(10);

/// One `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Challenge {
    /// `Basic realm="…"`: send the credentials with every request.
    Basic,
    /// `Bearer realm="…",service="…",scope="…"`: get a token from the realm.
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
        error: Option<String>,
    },
}

/// Parses the challenges of `WWW-Authenticate` header values (several may share one value).
pub(crate) fn parse_challenges<'a>(values: impl Iterator<Item = &'a str>) -> Vec<Challenge> {
    let mut out = Vec::new();
    for value in values {
        for (scheme, params) in split_challenges(value) {
            let get = |k: &str| {
                params
                    .iter()
                    .find(|(name, _)| name.eq_ignore_ascii_case(k))
                    .map(|(_, v)| v.clone())
            };
            if scheme.eq_ignore_ascii_case("basic") {
                out.push(Challenge::Basic);
            } else if scheme.eq_ignore_ascii_case("bearer")
                && let Some(realm) = get("realm")
            {
                out.push(Challenge::Bearer {
                    realm,
                    service: get("service"),
                    scope: get("scope"),
                    error: get("error"),
                });
            }
        }
    }
    out
}

/// Splits `Scheme k=v, k="v", Scheme2 k=v` into schemes and their parameters (RFC 7235 syntax).
fn split_challenges(value: &str) -> Vec<(String, Vec<(String, String)>)> {
    let chars: Vec<char> = value.chars().collect();
    let mut i = 0;
    let mut out: Vec<(String, Vec<(String, String)>)> = Vec::new();
    let is_token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~/".contains(c);
    let skip = |i: &mut usize, chars: &[char]| {
        while *i < chars.len() && (chars[*i] == ',' || chars[*i].is_whitespace()) {
            *i += 1;
        }
    };
    loop {
        skip(&mut i, &chars);
        if i >= chars.len() {
            break;
        }
        let start = i;
        while i < chars.len() && is_token(chars[i]) {
            i += 1;
        }
        if i == start {
            // Not a token: skip the character and go on.
            i += 1;
            continue;
        }
        let word: String = chars[start..i].iter().collect();
        let mut j = i;
        while j < chars.len() && chars[j].is_whitespace() {
            j += 1;
        }
        if j < chars.len() && chars[j] == '=' && !out.is_empty() {
            // A parameter of the current challenge.
            j += 1;
            while j < chars.len() && chars[j].is_whitespace() {
                j += 1;
            }
            let mut val = String::new();
            if j < chars.len() && chars[j] == '"' {
                j += 1;
                while j < chars.len() && chars[j] != '"' {
                    if chars[j] == '\\' && j + 1 < chars.len() {
                        j += 1;
                    }
                    val.push(chars[j]);
                    j += 1;
                }
                j += 1;
            } else {
                while j < chars.len() && chars[j] != ',' && !chars[j].is_whitespace() {
                    val.push(chars[j]);
                    j += 1;
                }
            }
            if let Some((_, params)) = out.last_mut() {
                params.push((word, val));
            }
            i = j;
        } else {
            out.push((word, Vec::new()));
        }
    }
    out
}

#[derive(Deserialize)]
struct TokenResponse {
    #[serde(default)]
    token: String,
    #[serde(default)]
    access_token: String,
    /// Seconds; anything but a non-negative integer means the default.
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
}

struct CachedToken {
    token: String,
    renew_at: Instant,
}

/// Bearer tokens by realm, service and scopes, kept until shortly before they expire.
#[derive(Default)]
pub(crate) struct TokenCache {
    tokens: Mutex<HashMap<String, CachedToken>>,
}

fn cache_key(realm: &str, service: Option<&str>, scopes: &[String]) -> String {
    let mut scopes = scopes.to_vec();
    scopes.sort();
    format!("{realm}\n{}\n{}", service.unwrap_or(""), scopes.join(" "))
}

impl TokenCache {
    /// A cached, unexpired token for these scopes, or a fresh one from the token server.
    pub(crate) fn token(
        &self,
        http: &Http,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
        secret: Option<&Secret>,
    ) -> Result<String, RegistryError> {
        let key = cache_key(realm, service, scopes);
        if let Ok(tokens) = self.tokens.lock()
            && let Some(cached) = tokens.get(&key)
            && Instant::now() < cached.renew_at
        {
            return Ok(cached.token.clone());
        }
        let (token, lifetime) = fetch_token(http, realm, service, scopes, secret)?;
        let renew_at = Instant::now() + lifetime.saturating_sub(TOKEN_MARGIN);
        if let Ok(mut tokens) = self.tokens.lock() {
            tokens.insert(
                key,
                CachedToken {
                    token: token.clone(),
                    renew_at,
                },
            );
        }
        Ok(token)
    }

    /// Forgets the token for these scopes (the registry refused it).
    pub(crate) fn forget(&self, realm: &str, service: Option<&str>, scopes: &[String]) {
        if let Ok(mut tokens) = self.tokens.lock() {
            tokens.remove(&cache_key(realm, service, scopes));
        }
    }
}

/// `Basic base64(user:password)`.
pub(crate) fn basic(creds: &Credentials) -> String {
    let raw = format!("{}:{}", creds.username, creds.password);
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

/// Asks the token server for a token: GET with Basic credentials (or anonymous), or for an identity token
/// the OAuth2 refresh-token POST.
fn fetch_token(
    http: &Http,
    realm: &str,
    service: Option<&str>,
    scopes: &[String],
    secret: Option<&Secret>,
) -> Result<(String, Duration), RegistryError> {
    let mut params = Vec::new();
    if let Some(service) = service {
        params.push(format!("service={}", encode_query(service)));
    }
    for scope in scopes {
        params.push(format!("scope={}", encode_query(scope)));
    }
    let request = match secret {
        Some(Secret::IdentityToken { token, .. }) => {
            let mut form = params.clone();
            form.push("grant_type=refresh_token".into());
            form.push("client_id=strata".into());
            form.push(format!("refresh_token={}", encode_query(token)));
            let mut request = Request::new(Method::Post, realm.to_owned());
            request.body = Some(Body {
                content_type: "application/x-www-form-urlencoded".into(),
                bytes: form.join("&").into_bytes().into(),
            });
            request
        }
        other => {
            let mut authorization = None;
            if let Some(Secret::Basic(creds)) = other {
                params.push(format!("account={}", encode_query(&creds.username)));
                authorization = Some(basic(creds));
            }
            let sep = if realm.contains('?') { '&' } else { '?' };
            let url = if params.is_empty() {
                realm.to_owned()
            } else {
                format!("{realm}{sep}{}", params.join("&"))
            };
            let mut request = Request::get(url);
            request.authorization = authorization;
            request
        }
    };
    if !(realm.starts_with("https://") || realm.starts_with("http://")) {
        return Err(RegistryError::InvalidResponse {
            url: realm.to_owned(),
            reason: "the token realm is not an http(s) URL".into(),
        });
    }
    let method = request.method;
    let resp = http.execute(&request)?;
    match resp.status {
        200 => {}
        401 | 403 => {
            let url = resp.url.clone();
            let reason = resp.error_reason("the token server refused the credentials");
            return Err(RegistryError::Unauthorized { url, reason });
        }
        _ => return Err(resp.into_error(method)),
    }
    let url = resp.url.clone();
    let bytes = resp
        .read_limited(method, MAX_TOKEN_RESPONSE)
        .map_err(|e| e.into_registry_error("token response", MAX_TOKEN_RESPONSE))?;
    let parsed: TokenResponse =
        serde_json::from_slice(&bytes).map_err(|e| RegistryError::InvalidResponse {
            url: url.clone(),
            reason: format!("malformed token response: {e}"),
        })?;
    let token = if parsed.token.is_empty() {
        parsed.access_token
    } else {
        parsed.token
    };
    if token.is_empty() || token.chars().any(|c| c.is_control() || c == ' ') {
        return Err(RegistryError::InvalidResponse {
            url,
            reason: "the token response has no usable token".into(),
        });
    }
    let lifetime = parsed
        .expires_in
        .and_then(|v| v.as_u64())
        .map(Duration::from_secs)
        .unwrap_or(MIN_TOKEN_LIFETIME)
        .clamp(MIN_TOKEN_LIFETIME, MAX_TOKEN_LIFETIME);
    Ok((token, lifetime))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_challenges() {
        let c = parse_challenges(
            [r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull",error="insufficient_scope""#]
                .into_iter(),
        );
        assert_eq!(
            c,
            vec![Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into()),
                scope: Some("repository:a/b:pull".into()),
                error: Some("insufficient_scope".into()),
            }]
        );
        let c = parse_challenges([r#"Basic realm="x, y", Bearer realm=http://t/tok"#].into_iter());
        assert_eq!(c.len(), 2);
        assert_eq!(c[0], Challenge::Basic);
        assert!(matches!(&c[1], Challenge::Bearer { realm, .. } if realm == "http://t/tok"));
        assert!(parse_challenges(["Bearer service=x", "garbage=,,\"", ""].into_iter()).is_empty());
        let c = parse_challenges([r#"Bearer realm="a\"b""#].into_iter());
        assert!(matches!(&c[0], Challenge::Bearer { realm, .. } if realm == "a\"b"));
    }

    #[test]
    fn cache_keys_ignore_scope_order() {
        let a = cache_key("r", Some("s"), &["x".into(), "y".into()]);
        let b = cache_key("r", Some("s"), &["y".into(), "x".into()]);
        assert_eq!(a, b);
    }
}
