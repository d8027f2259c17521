//! The fault-injecting HTTP proxy the `docker://` tests put in front of a [`Registry`](crate::registry::Registry).

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::registry::{RequestHead, query_pairs, read_head, respond};

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
    if upstream.write_all(forwarded.as_bytes()).is_err() {
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
