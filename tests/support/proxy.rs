//! The HTTP proxy the `docker://` tests put in front of a [`Registry`](crate::registry::Registry).
//!
//! - **Connections** from clients are kept alive (HTTP/1.1: several requests per connection, as a client with
//!   a connection pool sends them); each request goes to the registry on a fresh connection, so the registry
//!   can restart ([`Registry::restart`](crate::registry::Registry::restart)) or be switched
//!   ([`FaultProxy::set_upstream`]) under live clients. Answers are streamed, never held whole.
//! - **Faults** ([`Fault`], chosen by [`Rule`]s) answer in the registry's place, delay, cut, corrupt or reshape
//!   an answer, or make the client's credentials fail as an expired token does.
//! - **A slow link** ([`Link`]): latency added each way to every byte and a bandwidth cap shared by all
//!   connections, in user space (no netem needed), between the clients and the proxy.
//! - **Counting**: every request is logged ([`Seen`]) with the answer's status and the body bytes the proxy
//!   sent back ([`FaultProxy::blob_gets`], [`FaultProxy::blob_bytes`]).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream, ToSocketAddrs as _};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::registry::{HeadRead, RequestHead, TLS_ANSWER, query_pairs, read_head_from};

/// How long a client connection may sit idle between requests before the proxy closes it.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a write to a client, or a read from the registry, may block.
const IO_TIMEOUT: Duration = Duration::from_secs(60);
/// How long connecting to the registry may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest piece a shaped link carries at once.
const PIECE: usize = 16 * 1024;
/// Pieces a shaped direction holds in flight (they wait out the latency); enough for 100 Mbit/s × 20 ms.
const IN_FLIGHT: usize = 256;
/// The longest response head or chunk-size line read from the registry.
const MAX_LINE: usize = 64 * 1024;

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
    /// As [`Fault::CorruptBody`], for requests with a `Range` header only (a mirror or cache serving
    /// other bytes for ranges of a blob than the blob's): other requests pass the rule by.
    CorruptRanges,
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
    /// Forward with the client's credentials made to fail as an expired token does: a `Bearer` token is sent
    /// with a broken signature part, `Basic` credentials are dropped. The registry itself then answers `401`
    /// with its own `WWW-Authenticate` challenge (for a token registry `Bearer realm=…,service=…,scope=…,
    /// error="invalid_token"`, exactly what an expired token gets), and the client must authenticate again.
    /// A registry without authentication answers as usual.
    Unauthorized,
    /// For a request whose `Content-Range` starts with `content_range`: take the head and the first `after`
    /// body bytes from the client, and close the client's connection, as a link that died mid-upload. With
    /// `forward`, the registry gets the head and those bytes before its connection is closed too (it holds
    /// part of the request); without, it never sees the request. Requests without such a `Content-Range`
    /// pass the rule by (it is not used up on them).
    CutRequest {
        /// The start of the `Content-Range` value the fault applies to, e.g. `1048576-`.
        content_range: String,
        /// Body bytes read from the client before closing.
        after: usize,
        /// Whether the registry is sent the head and those bytes.
        forward: bool,
    },
    /// Forward, making an absolute `Location` in the answer relative (path and query only), as some
    /// registries send upload locations.
    RelativeLocation,
}

impl Fault {
    /// Whether the fault applies to a request with this head (most apply to any).
    fn applies_to(&self, head: &RequestHead) -> bool {
        match self {
            Fault::CutRequest { content_range, .. } => head
                .header("content-range")
                .is_some_and(|v| v.starts_with(content_range.as_str())),
            Fault::CorruptRanges => head.header("range").is_some(),
            _ => true,
        }
    }
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

/// The network between the clients and the proxy, imitated in user space: every byte, each way, arrives
/// `latency` after it was sent, and each direction carries at most `bits_per_second` (shared by all the
/// proxy's connections, as one link is). A new connection also pays the TCP handshake's round trip before its
/// first request arrives. Bytes are carried in pieces of at most 16 KiB, each sent when the link is free and
/// delivered `latency` after it has been sent whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    /// One-way delay, each direction.
    pub latency: Duration,
    /// The bandwidth cap each way, in bits per second; `None` for none.
    pub bits_per_second: Option<u64>,
}

impl Link {
    /// No shaping at all: loopback speed.
    pub const LOOPBACK: Link = Link {
        latency: Duration::ZERO,
        bits_per_second: None,
    };

    /// `latency` each way and a cap of `mbit_per_second` megabits (10⁶ bits) per second each way.
    pub fn new(latency: Duration, mbit_per_second: u64) -> Link {
        Link {
            latency,
            bits_per_second: Some(mbit_per_second * 1_000_000),
        }
    }

    /// The link of issue 13's figures: 20 ms each way, 100 Mbit/s.
    pub fn wan() -> Link {
        Link::new(Duration::from_millis(20), 100)
    }

    fn is_shaped(&self) -> bool {
        *self != Link::LOOPBACK
    }

    /// How long `bytes` take to send at the cap.
    fn transmit_time(&self, bytes: usize) -> Duration {
        match self.bits_per_second {
            Some(bps) if bps > 0 => {
                let nanos = (bytes as u128 * 8 * 1_000_000_000) / u128::from(bps);
                Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
            }
            _ => Duration::ZERO,
        }
    }
}

/// One request the proxy saw, and what it answered.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The request head.
    pub head: RequestHead,
    /// The fault applied, if any.
    pub fault: Option<Fault>,
    /// The client connection it came on: connections are numbered 0, 1, … in the order the proxy accepted
    /// them, so requests sharing a number came over one kept-alive connection.
    pub connection: u64,
    /// The status of the answer the client got; `None` while none has been sent, or when none was (the
    /// connection failed first).
    pub status: Option<u16>,
    /// The body bytes of the answer sent to the client so far (as they went on the wire: a chunked body
    /// counts its framing). Counted as each piece is handed to the client's connection, so once a client has
    /// read a body, its bytes are counted; a client that drops a connection mid-body may be counted for
    /// bytes in flight it never read, as a registry's own log counts them.
    pub body_bytes: u64,
    /// When the proxy had read the request's head (on a shaped link, after its one-way latency).
    pub arrived: Instant,
}

impl Seen {
    /// The request's `Range` header.
    pub fn range(&self) -> Option<&str> {
        self.head.header("range")
    }

    /// Whether this is a `GET` of a blob (`…/blobs/…`).
    pub fn is_blob_get(&self) -> bool {
        self.head.method == "GET" && self.head.target.contains("/blobs/")
    }
}

/// A request in the log, with the counters its connection thread updates while answering.
struct Record {
    head: RequestHead,
    fault: Option<Fault>,
    connection: u64,
    status: Arc<AtomicU16>,
    body_bytes: Arc<AtomicU64>,
    arrived: Instant,
}

impl Record {
    fn seen(&self) -> Seen {
        let status = self.status.load(Ordering::SeqCst);
        Seen {
            head: self.head.clone(),
            fault: self.fault.clone(),
            connection: self.connection,
            status: (status != 0).then_some(status),
            body_bytes: self.body_bytes.load(Ordering::SeqCst),
            arrived: self.arrived,
        }
    }
}

/// The link's two directions, as indexes into [`ProxyState::free_at`].
const TO_REGISTRY: usize = 0;
const TO_CLIENT: usize = 1;

struct ProxyState {
    upstream: Mutex<String>,
    rules: Mutex<Vec<Rule>>,
    seen: Mutex<Vec<Record>>,
    /// Replaces any `Authorization` when forwarding (a CDN that needs no client credentials).
    upstream_authorization: Option<String>,
    link: Link,
    /// When each direction of the link is free to send again.
    free_at: [Mutex<Instant>; 2],
    /// Live client connections, to cut them all at once.
    connections: Mutex<HashMap<u64, TcpStream>>,
    next_connection: AtomicU64,
}

impl ProxyState {
    /// Books `bytes` on direction `dir` of the link: when they may start (the link is free, and not before
    /// `not_before`) and when they arrive at the other end.
    fn book(&self, dir: usize, bytes: usize, not_before: Instant) -> (Instant, Instant) {
        let mut free = lock(&self.free_at[dir]);
        let start = Instant::now().max(*free).max(not_before);
        let sent = start + self.link.transmit_time(bytes);
        *free = sent;
        (start, sent + self.link.latency)
    }
}

/// Locks `mutex`, even one a panicking thread poisoned (the proxy's state stays usable).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// An HTTP proxy on 127.0.0.1 forwarding to a registry, injecting [`Fault`]s over an optional slow [`Link`]
/// and logging every request with the bytes it answered ([`Seen`]). Stopped on drop, with every connection
/// it still has.
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
        Self::launch(upstream, rules, None, Link::LOOPBACK)
    }

    /// Like [`FaultProxy::start`]; `upstream_authorization` replaces the clients' `Authorization`.
    pub fn start_with(
        upstream: &str,
        rules: Vec<Rule>,
        upstream_authorization: Option<String>,
    ) -> FaultProxy {
        Self::launch(upstream, rules, upstream_authorization, Link::LOOPBACK)
    }

    /// Like [`FaultProxy::start`], over `link` between the clients and the proxy (e.g. [`Link::wan`]).
    pub fn start_shaped(upstream: &str, rules: Vec<Rule>, link: Link) -> FaultProxy {
        Self::launch(upstream, rules, None, link)
    }

    fn launch(
        upstream: &str,
        rules: Vec<Rule>,
        upstream_authorization: Option<String>,
        link: Link,
    ) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the proxy");
        let host = listener.local_addr().expect("proxy address").to_string();
        let now = Instant::now();
        let state = Arc::new(ProxyState {
            upstream: Mutex::new(upstream.to_owned()),
            rules: Mutex::new(rules),
            seen: Mutex::new(Vec::new()),
            upstream_authorization,
            link,
            free_at: [Mutex::new(now), Mutex::new(now)],
            connections: Mutex::new(HashMap::new()),
            next_connection: AtomicU64::new(0),
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
                        let accepted = Instant::now();
                        let state = Arc::clone(&state);
                        std::thread::spawn(move || serve_connection(&state, conn, accepted));
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

    /// The link it imitates.
    pub fn link(&self) -> Link {
        self.state.link
    }

    /// Sends the next requests to `upstream` (`HOST:PORT`) instead; requests being answered finish where they
    /// are.
    pub fn set_upstream(&self, upstream: &str) {
        upstream.clone_into(&mut lock(&self.state.upstream));
    }

    /// Appends `rule` to the rules (it applies when no earlier rule with uses left matches).
    pub fn add_rule(&self, rule: Rule) {
        lock(&self.state.rules).push(rule);
    }

    /// Replaces the rules.
    pub fn set_rules(&self, rules: Vec<Rule>) {
        *lock(&self.state.rules) = rules;
    }

    /// The requests seen so far, in the order they arrived.
    pub fn seen(&self) -> Vec<Seen> {
        lock(&self.state.seen).iter().map(Record::seen).collect()
    }

    /// Forgets the requests seen so far (a test measuring one step clears the log before it).
    pub fn clear_seen(&self) {
        lock(&self.state.seen).clear();
    }

    /// How many requests so far had a target containing `part`.
    pub fn count(&self, part: &str) -> usize {
        self.seen()
            .iter()
            .filter(|s| s.head.target.contains(part))
            .count()
    }

    /// The blob `GET`s seen so far, each with its `Range` ([`Seen::range`]), status and body bytes.
    pub fn blob_gets(&self) -> Vec<Seen> {
        self.seen().into_iter().filter(Seen::is_blob_get).collect()
    }

    /// The body bytes sent in answer to blob `GET`s so far: what the clients fetched of the blobs.
    pub fn blob_bytes(&self) -> u64 {
        self.blob_gets().iter().map(|s| s.body_bytes).sum()
    }

    /// How many client connections the proxy has accepted so far.
    pub fn connections(&self) -> u64 {
        self.state.next_connection.load(Ordering::SeqCst)
    }

    /// Cuts every client connection now (both ways), as a network failure would; clients must reconnect.
    pub fn drop_connections(&self) {
        for (_, conn) in lock(&self.state.connections).drain() {
            let _ = conn.shutdown(Shutdown::Both);
        }
    }

    /// The request log as text, for failure messages.
    pub fn describe(&self) -> String {
        self.seen()
            .iter()
            .map(|s| {
                let mut line = format!(
                    "#{} {} {} -> {} ({} body bytes)",
                    s.connection,
                    s.head.method,
                    s.head.target,
                    s.status.map_or_else(|| "-".to_owned(), |c| c.to_string()),
                    s.body_bytes
                );
                if let Some(range) = s.range() {
                    let _ = write!(line, " range {range}");
                }
                if let Some(fault) = &s.fault {
                    let _ = write!(line, " fault {fault:?}");
                }
                line
            })
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
        self.drop_connections();
    }
}

/// Sleeps until `at` (at once when it is past).
fn sleep_until(at: Instant) {
    let now = Instant::now();
    if at > now {
        std::thread::sleep(at - now);
    }
}

/// The client → proxy direction of a shaped link: a thread reads the client's bytes as they come, books them on
/// the link and passes them on; reading waits until each piece has arrived.
struct Uplink {
    pieces: Receiver<(Instant, Vec<u8>)>,
    piece: Vec<u8>,
    pos: usize,
}

impl Uplink {
    fn spawn(mut stream: TcpStream, state: Arc<ProxyState>, not_before: Instant) -> Uplink {
        let (tx, rx) = sync_channel::<(Instant, Vec<u8>)>(IN_FLIGHT);
        std::thread::spawn(move || {
            let mut buf = vec![0u8; PIECE];
            // Ends with the client's end of stream, an error (the idle timeout, the connection cut) or the
            // proxy side gone; dropping the sender is the end of stream for the reader.
            while let Ok(n @ 1..) = stream.read(&mut buf) {
                let (start, arrival) = state.book(TO_REGISTRY, n, not_before);
                sleep_until(start);
                if tx.send((arrival, buf[..n].to_vec())).is_err() {
                    break;
                }
            }
        });
        Uplink {
            pieces: rx,
            piece: Vec::new(),
            pos: 0,
        }
    }
}

impl Read for Uplink {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.piece.len() {
            let Ok((arrival, piece)) = self.pieces.recv() else {
                return Ok(0);
            };
            sleep_until(arrival);
            self.piece = piece;
            self.pos = 0;
        }
        let n = buf.len().min(self.piece.len() - self.pos);
        buf[..n].copy_from_slice(&self.piece[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// The proxy → client direction: straight to the socket, or over the shaped link (a thread delivers each piece
/// when it arrives).
enum Downlink {
    Direct(TcpStream),
    Shaped {
        state: Arc<ProxyState>,
        pieces: Option<SyncSender<(Instant, Vec<u8>)>>,
        thread: Option<JoinHandle<()>>,
    },
}

impl Downlink {
    fn shaped(mut stream: TcpStream, state: Arc<ProxyState>) -> Downlink {
        let (tx, rx) = sync_channel::<(Instant, Vec<u8>)>(IN_FLIGHT);
        let thread = std::thread::spawn(move || {
            for (arrival, piece) in rx {
                sleep_until(arrival);
                if stream.write_all(&piece).is_err() {
                    break;
                }
            }
        });
        Downlink::Shaped {
            state,
            pieces: Some(tx),
            thread: Some(thread),
        }
    }

    /// Waits until everything written has been delivered (or the connection failed).
    fn finish(&mut self) {
        if let Downlink::Shaped { pieces, thread, .. } = self {
            drop(pieces.take());
            if let Some(thread) = thread.take() {
                let _ = thread.join();
            }
        }
    }
}

impl Write for Downlink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Downlink::Direct(stream) => stream.write(buf),
            Downlink::Shaped { state, pieces, .. } => {
                let n = buf.len().min(PIECE);
                let (start, arrival) = state.book(TO_CLIENT, n, Instant::now());
                // Wait for the link to be free, as a full socket buffer makes a sender wait.
                sleep_until(start);
                pieces
                    .as_ref()
                    .ok_or(io::ErrorKind::BrokenPipe)?
                    .send((arrival, buf[..n].to_vec()))
                    .map_err(|_| io::ErrorKind::BrokenPipe)?;
                Ok(n)
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Downlink::Direct(stream) => stream.flush(),
            Downlink::Shaped { .. } => Ok(()),
        }
    }
}

/// A client connection: its requests (buffered, so several may come one after another) and its answers.
struct Client {
    reader: BufReader<Box<dyn Read + Send>>,
    writer: Downlink,
    stream: TcpStream,
}

impl Client {
    fn new(state: &Arc<ProxyState>, stream: TcpStream, accepted: Instant) -> io::Result<Client> {
        stream.set_read_timeout(Some(IDLE_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        stream.set_nodelay(true)?;
        let (reader, writer): (Box<dyn Read + Send>, Downlink) = if state.link.is_shaped() {
            // The handshake's round trip comes before the first request can arrive.
            let handshake = accepted + state.link.latency * 2;
            (
                Box::new(Uplink::spawn(
                    stream.try_clone()?,
                    Arc::clone(state),
                    handshake,
                )),
                Downlink::shaped(stream.try_clone()?, Arc::clone(state)),
            )
        } else {
            (
                Box::new(stream.try_clone()?),
                Downlink::Direct(stream.try_clone()?),
            )
        };
        Ok(Client {
            reader: BufReader::new(reader),
            writer,
            stream,
        })
    }

    /// Delivers what is still on the way, then closes the connection both ways.
    fn close(mut self) {
        let _ = self.writer.flush();
        self.writer.finish();
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}

fn serve_connection(state: &Arc<ProxyState>, stream: TcpStream, accepted: Instant) {
    let number = state.next_connection.fetch_add(1, Ordering::SeqCst);
    if let Ok(clone) = stream.try_clone() {
        lock(&state.connections).insert(number, clone);
    }
    if let Ok(mut client) = Client::new(state, stream, accepted) {
        loop {
            let head = match read_head_from(&mut client.reader) {
                HeadRead::Head(head) => head,
                HeadRead::Tls => {
                    let _ = answer(&mut client.writer, "400 Bad Request", &[], TLS_ANSWER, true);
                    break;
                }
                HeadRead::End => break,
            };
            if !proxy_request(state, &mut client, head, number) {
                break;
            }
        }
        client.close();
    }
    lock(&state.connections).remove(&number);
}

/// How a message's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// No body.
    Empty,
    /// `Content-Length` bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Until the connection closes (a response with neither).
    UntilClose,
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn is_chunked(headers: &[(String, String)]) -> bool {
    header(headers, "transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
}

fn content_length(headers: &[(String, String)]) -> Option<u64> {
    header(headers, "content-length").and_then(|v| v.trim().parse().ok())
}

fn request_framing(head: &RequestHead) -> Framing {
    if is_chunked(&head.headers) {
        Framing::Chunked
    } else {
        content_length(&head.headers).map_or(Framing::Empty, Framing::Length)
    }
}

/// Whether the client asked to keep the connection after this request (HTTP/1.1 without `Connection: close`).
fn keeps_alive(head: &RequestHead) -> bool {
    let first_line = head.raw.split(|&b| b == b'\r').next().unwrap_or_default();
    first_line.ends_with(b"HTTP/1.1")
        && !header(&head.headers, "connection")
            .is_some_and(|v| v.to_ascii_lowercase().contains("close"))
}

/// A response head from the registry.
struct ResponseHead {
    /// `HTTP/1.1 200 OK`.
    status_line: String,
    status: u16,
    /// Names (lowercase) and values.
    headers: Vec<(String, String)>,
    /// The header lines as they came (without line ends).
    lines: Vec<String>,
}

fn read_line(src: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut line = Vec::new();
    src.by_ref()
        .take(MAX_LINE as u64)
        .read_until(b'\n', &mut line)?;
    if !line.ends_with(b"\n") {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "a line cut short or too long",
        ));
    }
    Ok(line)
}

fn read_response_head(src: &mut impl BufRead) -> io::Result<ResponseHead> {
    let status_line = String::from_utf8_lossy(&read_line(src)?)
        .trim_end()
        .to_owned();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::other(format!("not an HTTP status line: {status_line:?}")))?;
    let mut headers = Vec::new();
    let mut lines = Vec::new();
    let mut total = 0;
    loop {
        let line = read_line(src)?;
        total += line.len();
        if total > MAX_LINE {
            return Err(io::Error::other("response head over 64 KiB"));
        }
        let line = String::from_utf8_lossy(&line).trim_end().to_owned();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
        lines.push(line);
    }
    Ok(ResponseHead {
        status_line,
        status,
        headers,
        lines,
    })
}

fn response_framing(method: &str, head: &ResponseHead) -> Framing {
    if method == "HEAD" || (100..200).contains(&head.status) || matches!(head.status, 204 | 304) {
        Framing::Empty
    } else if is_chunked(&head.headers) {
        Framing::Chunked
    } else {
        content_length(&head.headers).map_or(Framing::UntilClose, Framing::Length)
    }
}

/// Copies exactly `n` bytes.
fn copy_exact(src: &mut impl BufRead, dst: &mut impl Write, mut n: u64) -> io::Result<()> {
    while n > 0 {
        let buf = src.fill_buf()?;
        if buf.is_empty() {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let k = buf.len().min(usize::try_from(n).unwrap_or(usize::MAX));
        dst.write_all(&buf[..k])?;
        src.consume(k);
        n -= k as u64;
    }
    Ok(())
}

/// Copies a body as it is on the wire (a chunked one with its framing).
fn copy_body(framing: Framing, src: &mut impl BufRead, dst: &mut impl Write) -> io::Result<()> {
    match framing {
        Framing::Empty => Ok(()),
        Framing::Length(n) => copy_exact(src, dst, n),
        Framing::UntilClose => io::copy(src, dst).map(drop),
        Framing::Chunked => loop {
            let line = read_line(src)?;
            dst.write_all(&line)?;
            let text = String::from_utf8_lossy(&line);
            let size = text.split(';').next().unwrap_or_default().trim();
            let size = u64::from_str_radix(size, 16)
                .map_err(|_| io::Error::other(format!("bad chunk size line {text:?}")))?;
            if size == 0 {
                // Trailers, up to the blank line.
                loop {
                    let line = read_line(src)?;
                    dst.write_all(&line)?;
                    if line == b"\r\n" || line == b"\n" {
                        return Ok(());
                    }
                }
            }
            copy_exact(src, dst, size + 2)?;
        },
    }
}

/// Reads a body whole, without its chunked framing.
fn read_body(framing: Framing, src: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    if framing != Framing::Chunked {
        copy_body(framing, src, &mut body)?;
        return Ok(body);
    }
    loop {
        let line = read_line(src)?;
        let text = String::from_utf8_lossy(&line);
        let size = u64::from_str_radix(text.split(';').next().unwrap_or_default().trim(), 16)
            .map_err(|_| io::Error::other(format!("bad chunk size line {text:?}")))?;
        if size == 0 {
            while !matches!(read_line(src)?.as_slice(), b"\r\n" | b"\n") {}
            return Ok(body);
        }
        copy_exact(src, &mut body, size)?;
        read_line(src)?;
    }
}

/// Writes a complete answer made here; `close` says the connection ends after it. A `HEAD` gets no body.
fn answer(
    out: &mut impl Write,
    status: &str,
    headers: &[(&str, String)],
    body: &[u8],
    close: bool,
) -> io::Result<()> {
    let mut head = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\n", body.len());
    if close {
        head.push_str("Connection: close\r\n");
    }
    for (n, v) in headers {
        let _ = write!(head, "{n}: {v}\r\n");
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes())?;
    out.write_all(body)?;
    out.flush()
}

/// The client's side of one answer: counts the body bytes into the request's record before they go (so a
/// client that has read them finds them counted), flips one byte at `flip_at`, and stops at `cut_after`.
struct Tap<'a, W: Write> {
    out: &'a mut W,
    counted: Arc<AtomicU64>,
    written: u64,
    flip_at: Option<u64>,
    cut_after: Option<u64>,
}

impl<W: Write> Write for Tap<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut buf = buf;
        if let Some(cut) = self.cut_after {
            let room = cut.saturating_sub(self.written);
            if room == 0 {
                return Err(io::Error::other("cut by the fault proxy"));
            }
            buf = &buf[..buf.len().min(usize::try_from(room).unwrap_or(usize::MAX))];
        }
        let flipped;
        if let Some(at) = self.flip_at
            && let Some(i) = at.checked_sub(self.written)
            && let Ok(i) = usize::try_from(i)
            && i < buf.len()
        {
            let mut copy = buf.to_vec();
            copy[i] ^= 0x20;
            flipped = copy;
            buf = &flipped;
        }
        self.counted.fetch_add(buf.len() as u64, Ordering::SeqCst);
        let result = self.out.write(buf);
        let n = *result.as_ref().unwrap_or(&0);
        self.counted
            .fetch_sub((buf.len() - n) as u64, Ordering::SeqCst);
        self.written += n as u64;
        result
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Answers one request; whether the connection goes on.
fn proxy_request(
    state: &ProxyState,
    client: &mut Client,
    head: RequestHead,
    connection: u64,
) -> bool {
    let fault = {
        let mut rules = lock(&state.rules);
        rules
            .iter_mut()
            .find(|r| {
                r.times > 0 && head.target.contains(&r.path_contains) && r.fault.applies_to(&head)
            })
            .map(|r| {
                r.times = r.times.saturating_sub(1);
                r.fault.clone()
            })
    };
    let status = Arc::new(AtomicU16::new(0));
    let body_bytes = Arc::new(AtomicU64::new(0));
    lock(&state.seen).push(Record {
        head: head.clone(),
        fault: fault.clone(),
        connection,
        status: Arc::clone(&status),
        body_bytes: Arc::clone(&body_bytes),
        arrived: Instant::now(),
    });
    let exchange = Exchange {
        state,
        head: &head,
        fault: fault.as_ref(),
        keep: keeps_alive(&head),
        status,
        body_bytes,
    };
    if header(&head.headers, "expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
        && client
            .writer
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .is_err()
    {
        return false;
    }
    exchange.run(client).unwrap_or(false)
}

/// One request being answered.
struct Exchange<'a> {
    state: &'a ProxyState,
    head: &'a RequestHead,
    fault: Option<&'a Fault>,
    /// Whether the client keeps the connection after this request.
    keep: bool,
    status: Arc<AtomicU16>,
    body_bytes: Arc<AtomicU64>,
}

impl Exchange<'_> {
    /// Answers; whether the connection goes on (an error ends it).
    fn run(&self, client: &mut Client) -> io::Result<bool> {
        let request_body = request_framing(self.head);
        match self.fault {
            Some(Fault::Status {
                status,
                retry_after,
            }) => {
                copy_body(request_body, &mut client.reader, &mut io::sink())?;
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
                self.answer_here(client, *status, "Injected", &headers, body.as_bytes())
            }
            Some(Fault::CutRequest { after, forward, .. }) => {
                let want = match request_body {
                    Framing::Length(n) => n.min(*after as u64),
                    _ => 0,
                };
                if *forward && let Ok(mut upstream) = self.connect_upstream() {
                    let mut head = self.forwarded_head();
                    // The registry is told the whole length, and gets `after` bytes of it.
                    head = head.replace("connection: close\r\n", "");
                    let _ = upstream.write_all(head.as_bytes());
                    let _ = copy_exact(&mut client.reader, &mut upstream, want);
                    let _ = upstream.flush();
                    // Give the registry a moment to take the bytes before the connection drops.
                    std::thread::sleep(Duration::from_millis(200));
                    let _ = upstream.shutdown(Shutdown::Both);
                } else {
                    let _ = copy_exact(&mut client.reader, &mut io::sink(), want);
                }
                client.writer.finish();
                let _ = client.stream.shutdown(Shutdown::Both);
                Ok(false)
            }
            Some(Fault::Redirect { base }) => {
                copy_body(request_body, &mut client.reader, &mut io::sink())?;
                let location = format!("{base}{}", self.head.target);
                self.answer_here(
                    client,
                    307,
                    "Temporary Redirect",
                    &[("Location", location)],
                    b"",
                )
            }
            _ => self.forward(client, request_body),
        }
    }

    /// Answers with a response made here.
    fn answer_here(
        &self,
        client: &mut Client,
        status: u16,
        reason: &str,
        headers: &[(&str, String)],
        body: &[u8],
    ) -> io::Result<bool> {
        let body = if self.head.method == "HEAD" {
            &[][..]
        } else {
            body
        };
        self.status.store(status, Ordering::SeqCst);
        self.body_bytes
            .fetch_add(body.len() as u64, Ordering::SeqCst);
        answer(
            &mut client.writer,
            &format!("{status} {reason}"),
            headers,
            body,
            !self.keep,
        )?;
        Ok(self.keep)
    }

    /// The request head as the registry gets it.
    fn forwarded_head(&self) -> String {
        let head = self.head;
        let target = if matches!(self.fault, Some(Fault::PaginateTags(_))) {
            head.target
                .split_once('?')
                .map_or(head.target.as_str(), |(p, _)| p)
        } else {
            head.target.as_str()
        };
        let mut out = format!("{} {target} HTTP/1.1\r\n", head.method);
        let replace_auth = self.state.upstream_authorization.is_some()
            || matches!(self.fault, Some(Fault::Unauthorized));
        for (name, value) in &head.headers {
            let skip = matches!(name.as_str(), "connection" | "keep-alive" | "expect")
                || (name == "range" && matches!(self.fault, Some(Fault::StripRange)))
                || (name == "authorization" && replace_auth);
            if !skip {
                let _ = write!(out, "{name}: {value}\r\n");
            }
        }
        if let Some(auth) = &self.state.upstream_authorization {
            let _ = write!(out, "authorization: {auth}\r\n");
        } else if matches!(self.fault, Some(Fault::Unauthorized))
            && let Some(token) = head
                .header("authorization")
                .and_then(|a| a.strip_prefix("Bearer "))
        {
            // A JWT with a fourth part: the registry rejects it as it rejects an expired one.
            let _ = write!(out, "authorization: Bearer {token}.expired\r\n");
        }
        out.push_str("connection: close\r\n\r\n");
        out
    }

    fn connect_upstream(&self) -> io::Result<TcpStream> {
        let upstream = lock(&self.state.upstream).clone();
        let addr = upstream
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| io::Error::other(format!("no address for {upstream}")))?;
        let stream = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        Ok(stream)
    }

    /// Forwards the request to the registry on a fresh connection and its answer to the client, streamed,
    /// through the fault.
    fn forward(&self, client: &mut Client, request_body: Framing) -> io::Result<bool> {
        if let Some(Fault::Delay(d)) = self.fault {
            std::thread::sleep(*d);
        }
        let Ok(mut upstream) = self.connect_upstream() else {
            copy_body(request_body, &mut client.reader, &mut io::sink())?;
            return self.answer_here(client, 502, "Bad Gateway", &[], b"no upstream");
        };
        upstream.write_all(self.forwarded_head().as_bytes())?;
        copy_body(request_body, &mut client.reader, &mut upstream)?;
        upstream.flush()?;
        let mut from = BufReader::with_capacity(64 * 1024, upstream);
        let Ok(response) = read_response_head(&mut from) else {
            // The registry went away before answering (a restart): as a gateway says it.
            return self.answer_here(client, 502, "Bad Gateway", &[], b"no answer upstream");
        };
        let framing = response_framing(&self.head.method, &response);
        if let Some(Fault::PaginateTags(page)) = self.fault {
            let body = read_body(framing, &mut from)?;
            return self.paginate(client, &body, *page);
        }
        let cut_after = match self.fault {
            Some(Fault::CutBody { after }) => Some(*after as u64),
            _ => None,
        };
        let keep = self.keep && framing != Framing::UntilClose && cut_after.is_none();
        // The head, without the registry's connection management, with ours.
        let mut out_head = format!("{}\r\n", response.status_line);
        for line in &response.lines {
            let name = line.split(':').next().unwrap_or_default().trim();
            if name.eq_ignore_ascii_case("connection") || name.eq_ignore_ascii_case("keep-alive") {
                continue;
            }
            match (self.fault, line.split_once(':')) {
                (Some(Fault::RelativeLocation), Some((name, value)))
                    if name.trim().eq_ignore_ascii_case("location") =>
                {
                    let value = value.trim();
                    let relative = value
                        .split_once("://")
                        .and_then(|(_, rest)| rest.find('/').map(|p| &rest[p..]))
                        .unwrap_or(value);
                    let _ = write!(out_head, "{name}: {relative}\r\n");
                }
                _ => {
                    let _ = write!(out_head, "{line}\r\n");
                }
            }
        }
        if !keep {
            out_head.push_str("Connection: close\r\n");
        }
        out_head.push_str("\r\n");
        self.status.store(response.status, Ordering::SeqCst);
        client.writer.write_all(out_head.as_bytes())?;
        let mut tap = Tap {
            out: &mut client.writer,
            counted: Arc::clone(&self.body_bytes),
            written: 0,
            flip_at: None,
            cut_after,
        };
        let copied = match (self.fault, framing) {
            (Some(Fault::CorruptBody | Fault::CorruptRanges), Framing::Length(n)) => {
                tap.flip_at = Some(n / 2);
                copy_body(framing, &mut from, &mut tap)
            }
            (Some(Fault::CorruptBody | Fault::CorruptRanges), _) => {
                // The length is known only at the end: read the body whole (it is the wire form).
                let mut body = Vec::new();
                copy_body(framing, &mut from, &mut body)?;
                tap.flip_at = Some(body.len() as u64 / 2);
                tap.write_all(&body)
            }
            _ => copy_body(framing, &mut from, &mut tap),
        };
        if cut_after.is_some() {
            // Cut on purpose (or the body was shorter): close hard, as a dying server would.
            let _ = client.writer.flush();
            client.writer.finish();
            let _ = client.stream.shutdown(Shutdown::Both);
            return Ok(false);
        }
        copied?;
        client.writer.flush()?;
        Ok(keep)
    }

    /// Answers a `tags/list` request with one page of the registry's whole list.
    fn paginate(&self, client: &mut Client, body: &[u8], page: usize) -> io::Result<bool> {
        let list: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
        let tags: Vec<String> = list["tags"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t.as_str().map(str::to_owned))
            .collect();
        let (path, query) = self
            .head
            .target
            .split_once('?')
            .unwrap_or((self.head.target.as_str(), ""));
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
        self.answer_here(client, 200, "OK", &headers, out.to_string().as_bytes())
    }
}

/// A minimal HTTP/1.1 client on one kept-alive connection, for tests that talk to a registry or a proxy by
/// hand (several requests on one connection, raw statuses and headers).
pub struct HttpConnection {
    host: String,
    reader: BufReader<TcpStream>,
}

/// An answer an [`HttpConnection`] read.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// Header names (lowercase) and values.
    pub headers: Vec<(String, String)>,
    /// The body, without any chunked framing.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }
}

impl HttpConnection {
    /// Connects to `host` (`HOST:PORT`), with 60 s read and write timeouts.
    ///
    /// # Errors
    /// When the connection fails.
    pub fn connect(host: &str) -> io::Result<HttpConnection> {
        let stream = TcpStream::connect(host)?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        Ok(HttpConnection {
            host: host.to_owned(),
            reader: BufReader::new(stream),
        })
    }

    /// Sends `METHOD TARGET` with `headers` (and `Host`, no body) and reads the whole answer.
    ///
    /// # Errors
    /// When the connection fails or closes before a whole answer (e.g. the server closed a kept-alive
    /// connection).
    pub fn request(
        &mut self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
    ) -> io::Result<HttpResponse> {
        let mut head = format!("{method} {target} HTTP/1.1\r\nHost: {}\r\n", self.host);
        for (name, value) in headers {
            let _ = write!(head, "{name}: {value}\r\n");
        }
        head.push_str("\r\n");
        self.reader.get_mut().write_all(head.as_bytes())?;
        let response = read_response_head(&mut self.reader)?;
        let framing = response_framing(method, &response);
        let body = read_body(framing, &mut self.reader)?;
        Ok(HttpResponse {
            status: response.status,
            headers: response.headers,
            body,
        })
    }
}
