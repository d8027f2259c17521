//! Plain HTTP(S) reads beside a registry: the files of a lookaside signature server.

use super::http::{Http, Method, Request};
use super::{RegistryError, SourceOptions};

/// Reads the file at `url` (`http://` or `https://`), at most `limit` bytes, with the client's TLS
/// settings for the URL's host (system roots, the host's cert dir) and its retry policy, without
/// credentials: a lookaside server's `signature-N`. `Ok(None)` when the server answers 404.
///
/// # Errors
/// When `url` is not HTTP(S), the server cannot be reached, answers another error status, or sends more
/// than `limit` bytes.
pub fn fetch_url(
    url: &str,
    limit: u64,
    options: &SourceOptions,
) -> Result<Option<Vec<u8>>, RegistryError> {
    let host = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .and_then(|rest| rest.split(['/', '?', '#']).next())
        .filter(|host| !host.is_empty())
        .ok_or_else(|| RegistryError::InvalidUrl {
            url: url.to_owned(),
        })?;
    let http = Http::new(host, false, options)?;
    let response = http.execute(&Request::get(url.to_owned()))?;
    match response.status {
        200 => response
            .read_limited(Method::Get, limit)
            .map(Some)
            .map_err(|e| e.into_registry_error("file", limit)),
        404 => {
            response.drain();
            Ok(None)
        }
        _ => Err(response.into_error(Method::Get)),
    }
}
