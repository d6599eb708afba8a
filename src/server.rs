//! The exporter's own HTTP server (hyper 1): `/metrics`, the landing page,
//! health, readiness, reload and the targets API.
//!
//! Five routes need no framework. Every handler reads shared state without
//! waiting on probes. Slow clients are cut off by a header read timeout (a
//! TLS handshake gets the same time), header blocks are capped, request
//! bodies are never read, and shutdown stops accepting, lets in-flight
//! requests finish, then returns.
//!
//! The answers that walk every target (`/metrics`, the status board, the
//! targets API) are built on blocking threads, never on the async worker
//! that runs the probes (one, see `main.rs`): tens of milliseconds of
//! building there would show as upstream latency. At most
//! [`MAX_SCRAPES_IN_FLIGHT`] scrapes run at once, at most
//! [`MAX_SCRAPES_PER_CLIENT`] of them for one client address (more get 503
//! after waiting [`SCRAPE_SLOT_WAIT`] for a slot, as node_exporter's
//! `--web.max-requests` answers), and a scraper that takes nothing of its
//! body for [`SCRAPE_STALL_TIMEOUT`] is dropped, so stalled clients cannot
//! pile up threads and buffers, and one client cannot take every slot.
//!
//! The web config in force (`--web.config.file`) is read per connection
//! for TLS and per request for basic auth, the rate limit and the extra
//! headers, so a reload applies without a restart. No route fetches
//! anything named in a request: the exporter only contacts the targets of
//! its config file.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::metrics::{Format, Metrics};
use crate::runner::Runner;
use crate::state::SharedTargets;
use crate::webconfig::{AuthOutcome, LiveWeb, WebSecurity};

/// A client that has not sent its request headers (or finished its TLS
/// handshake) within this is cut off.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Upper bound of a request's header block.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
/// Largest request body announced that is answered at all; no route reads
/// a body, so larger ones get 413 and the connection is closed unread.
pub const MAX_BODY_BYTES: u64 = 64 * 1024;

/// `/metrics` scrapes rendered at once; the next one waits for a slot
/// ([`SCRAPE_SLOT_WAIT`]), then gets 503.
/// Prometheus sends one per job and server (an HA pair: two); each holds a
/// blocking thread, its render threads and up to a few MB in flight.
pub const MAX_SCRAPES_IN_FLIGHT: usize = 8;
/// Scrapes one client address may have running at once: a Prometheus server
/// runs one per target, and an HA pair has two addresses.
pub const MAX_SCRAPES_PER_CLIENT: usize = 2;
/// How long a scrape waits for a slot before it gets 503: scrapes that
/// overlap for a moment both get served.
pub const SCRAPE_SLOT_WAIT: Duration = Duration::from_secs(1);
/// A scraper that takes no chunk of its body for this long is dropped (its
/// body ends in an error, never looking whole).
pub const SCRAPE_STALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Status board pages and targets API answers built at once; more wait
/// (without a thread) for their turn.
const MAX_LISTINGS_IN_FLIGHT: usize = 2;

/// A reload request: the reply says whether the new config took effect.
pub type ReloadRequest = oneshot::Sender<Result<(), String>>;

/// Everything the handlers read.
pub struct AppState {
    pub metrics: Metrics,
    pub runner: Arc<Runner>,
    pub targets: SharedTargets,
    pub telemetry_path: String,
    /// Where `POST /-/reload` sends its request; None disables reload.
    pub reload: Option<mpsc::Sender<ReloadRequest>>,
    /// True once the config is loaded (readiness needs it).
    pub config_loaded: std::sync::atomic::AtomicBool,
    /// TLS, basic auth, rate limit and extra headers in force.
    pub web: Arc<LiveWeb>,
    /// What bounds the answers that walk every target.
    pub limits: HeavyLimits,
    /// Set once `/-/ready` has said 200: a reload that adds targets does
    /// not make the replica unready again while they make their first probe.
    pub was_ready: AtomicBool,
}

/// Bounds on the requests that walk every target.
pub struct HeavyLimits {
    scrapes: Arc<Semaphore>,
    /// Each client address's own share of the scrapes.
    per_client: Arc<PerClient>,
    listings: Arc<Semaphore>,
    stall_timeout: Duration,
}

/// Client address → its [`MAX_SCRAPES_PER_CLIENT`] permits, while in use.
type PerClient = std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, Arc<Semaphore>>>;

/// A scrape's place: one of its client's permits and a global slot, given
/// back on drop (when the render has ended).
struct ScrapeSlot {
    client_permit: Option<tokio::sync::OwnedSemaphorePermit>,
    _slot: tokio::sync::OwnedSemaphorePermit,
    client: std::net::IpAddr,
    per_client: Arc<PerClient>,
}

impl Drop for ScrapeSlot {
    fn drop(&mut self) {
        drop(self.client_permit.take());
        forget_if_idle(&self.per_client, self.client);
    }
}

/// Drop a client's entry once nothing holds or waits for its permits.
fn forget_if_idle(per_client: &PerClient, client: std::net::IpAddr) {
    let mut clients = per_client.lock().unwrap_or_else(|p| p.into_inner());
    // Waiters and holders each keep a clone: only the map's is left.
    if clients
        .get(&client)
        .is_some_and(|permits| Arc::strong_count(permits) == 1)
    {
        clients.remove(&client);
    }
}

impl HeavyLimits {
    /// [`MAX_SCRAPES_IN_FLIGHT`] scrapes, dropped after `stall_timeout`
    /// ([`SCRAPE_STALL_TIMEOUT`] but in tests) without progress.
    pub fn new(stall_timeout: Duration) -> HeavyLimits {
        HeavyLimits {
            scrapes: Arc::new(Semaphore::new(MAX_SCRAPES_IN_FLIGHT)),
            per_client: Arc::default(),
            listings: Arc::new(Semaphore::new(MAX_LISTINGS_IN_FLIGHT)),
            stall_timeout,
        }
    }

    /// A slot for a scrape from `client`, waiting up to
    /// [`SCRAPE_SLOT_WAIT`] for one of the client's share and a global one;
    /// None if they do not come.
    async fn scrape_slot(&self, client: std::net::IpAddr) -> Option<ScrapeSlot> {
        let permits = {
            let mut clients = self.per_client.lock().unwrap_or_else(|p| p.into_inner());
            clients
                .entry(client)
                .or_insert_with(|| Arc::new(Semaphore::new(MAX_SCRAPES_PER_CLIENT)))
                .clone()
        };
        let both = async {
            let client_permit = permits.clone().acquire_owned().await.ok()?;
            let slot = self.scrapes.clone().acquire_owned().await.ok()?;
            Some((client_permit, slot))
        };
        let claimed = tokio::time::timeout(SCRAPE_SLOT_WAIT, both)
            .await
            .ok()
            .flatten();
        drop(permits);
        match claimed {
            Some((client_permit, slot)) => Some(ScrapeSlot {
                client_permit: Some(client_permit),
                _slot: slot,
                client,
                per_client: self.per_client.clone(),
            }),
            None => {
                forget_if_idle(&self.per_client, client);
                None
            }
        }
    }
}

/// Why a streamed body ended early.
type BodyError = Box<dyn std::error::Error + Send + Sync>;
type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, BodyError>;

/// Accept connections until `shutdown`, then drain within `grace`.
/// `header_timeout` is [`HEADER_READ_TIMEOUT`] but for tests.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: CancellationToken,
    grace: Duration,
    header_timeout: Duration,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .max_buf_size(MAX_HEADER_BYTES)
        .keep_alive(true);
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of fds or similar: back off briefly instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let service_state = state.clone();
        let service = service_fn(move |req| serve_request(service_state.clone(), req, peer));
        // The TLS settings in force when the connection arrives are the
        // ones it keeps; a reload applies to the next connections.
        let Some(acceptor) = state.web.current().tls_acceptor().cloned() else {
            let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!(error = %e, %peer, "connection ended with an error");
                }
            });
            continue;
        };
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            // A handshake that never completes gets no longer than a
            // request head would.
            let handshake = tokio::time::timeout(header_timeout, acceptor.accept(stream));
            let tls = tokio::select! {
                _ = shutdown.cancelled() => return,
                done = handshake => match done {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(e)) => {
                        tracing::debug!(error = %e, %peer, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "TLS handshake timed out");
                        return;
                    }
                },
            };
            let conn = builder.serve_connection(TokioIo::new(tls), service);
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("HTTP connections still open after the shutdown grace period");
    }
}

/// Every request: the web config's gate, then the route, then the web
/// config's headers on whatever the answer is.
async fn serve_request(
    state: Arc<AppState>,
    req: Request<Incoming>,
    peer: SocketAddr,
) -> Result<Response<Body>, Infallible> {
    let web = state.web.current();
    // A refused request may have a body, or the rest of a too large head,
    // that keep-alive would have to read: close instead.
    let mut close = has_body(&req);
    let mut response = match refuse(&web, &req).await {
        Some(refusal) => {
            close |= refusal.status() == StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE;
            refusal
        }
        None => {
            let Ok(response) = handle(state, req, peer).await;
            response
        }
    };
    let headers = response.headers_mut();
    for (name, value) in web.headers() {
        headers.insert(name.clone(), value.clone());
    }
    if close {
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    Ok(response)
}

/// The answer to a request that must not reach a route: a header block
/// over [`MAX_HEADER_BYTES`] (431), over the rate limit (429), without
/// valid credentials where they are needed (401), or announcing a body
/// larger than any route takes (413). None: serve it.
async fn refuse(web: &WebSecurity, req: &Request<Incoming>) -> Option<Response<Body>> {
    // hyper's buffer cap bounds memory but lets a head that arrives in one
    // read through, so the size is checked here as well.
    let header_bytes: usize = req
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if header_bytes + req.uri().to_string().len() > MAX_HEADER_BYTES {
        return Some(text(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "Request header fields too large\n",
        ));
    }
    if !web.admit() {
        return Some(text(StatusCode::TOO_MANY_REQUESTS, "Too many requests\n"));
    }
    if let Some(auth) = web.authenticator()
        && web.requires_auth(req.uri().path())
    {
        match auth.check(req.headers().get(header::AUTHORIZATION)).await {
            AuthOutcome::Allowed => {}
            AuthOutcome::Denied => {
                let mut response = text(StatusCode::UNAUTHORIZED, "Unauthorized\n");
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic"));
                return Some(response);
            }
            AuthOutcome::Busy => {
                let mut response = text(
                    StatusCode::TOO_MANY_REQUESTS,
                    "Too many authentication attempts in progress\n",
                );
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                return Some(response);
            }
        }
    }
    let announced = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if announced.is_some_and(|n| n > MAX_BODY_BYTES) {
        return Some(text(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Request body too large\n",
        ));
    }
    None
}

/// Whether the request comes with a body (which no route reads).
fn has_body(req: &Request<Incoming>) -> bool {
    let headers = req.headers();
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0")
}

async fn handle(
    state: Arc<AppState>,
    req: Request<Incoming>,
    peer: SocketAddr,
) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path();
    let reading = matches!(*req.method(), Method::GET | Method::HEAD);
    let read_only_route = path == state.telemetry_path
        || matches!(path, "/" | "/-/healthy" | "/-/ready" | "/api/v1/targets")
        || path.starts_with(crate::api::TARGET_PATH_PREFIX);
    if read_only_route && !reading {
        return Ok(method_not_allowed("GET, HEAD"));
    }
    let response = if path == state.telemetry_path {
        metrics(&state, &req, peer).await
    } else {
        match path {
            "/" => {
                listing(&state, |s| {
                    html(crate::board::landing_page(
                        &s.targets.load(),
                        &s.telemetry_path,
                    ))
                })
                .await
            }
            "/-/healthy" => text(StatusCode::OK, "Healthy\n"),
            "/-/ready" => ready(&state),
            "/-/reload" => match *req.method() {
                Method::POST => reload(&state).await,
                _ => method_not_allowed("POST"),
            },
            "/api/v1/targets" => {
                listing(&state, |s| {
                    json(crate::api::targets_body(&s.targets.load()))
                })
                .await
            }
            p if p.starts_with(crate::api::TARGET_PATH_PREFIX) => {
                let name = p[crate::api::TARGET_PATH_PREFIX.len()..].to_owned();
                listing(&state, move |s| {
                    let (code, body) = crate::api::one_target_body(&s.targets.load(), &name);
                    let code = StatusCode::from_u16(code).unwrap_or(StatusCode::NOT_FOUND);
                    respond(code, "application/json", body)
                })
                .await
            }
            _ => text(StatusCode::NOT_FOUND, "Not found\n"),
        }
    };
    Ok(response)
}

/// An answer built from every target, on a blocking thread, at most
/// [`MAX_LISTINGS_IN_FLIGHT`] at once.
async fn listing(
    state: &Arc<AppState>,
    build: impl FnOnce(&AppState) -> Response<Body> + Send + 'static,
) -> Response<Body> {
    let Ok(turn) = state.limits.listings.clone().acquire_owned().await else {
        return internal_error();
    };
    let state = state.clone();
    // The turn goes with the build: a client that hangs up cannot start
    // another build beside one that is still running.
    tokio::task::spawn_blocking(move || {
        let _turn = turn;
        build(&state)
    })
    .await
    .unwrap_or_else(|_| internal_error())
}

async fn metrics(
    state: &Arc<AppState>,
    req: &Request<Incoming>,
    peer: SocketAddr,
) -> Response<Body> {
    let header_text = |name| req.headers().get(name).and_then(|v| v.to_str().ok());
    let format = crate::negotiate::format(header_text(header::ACCEPT));
    let gzip = crate::negotiate::gzip(header_text(header::ACCEPT_ENCODING));
    let mut builder = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, format.content_type())
        .header(header::VARY, "Accept, Accept-Encoding");
    if gzip {
        builder = builder.header(header::CONTENT_ENCODING, "gzip");
    }
    if req.method() == Method::HEAD {
        // The same head as a GET's, and no render: a HEAD's body is never
        // sent, so rendering one would only burn a scrape's CPU.
        let nothing = futures_util::stream::empty::<Result<Frame<Bytes>, BodyError>>();
        return builder
            .body(BodyExt::boxed_unsync(StreamBody::new(nothing)))
            .unwrap_or_else(|_| internal_error());
    }
    let Some(slot) = state.limits.scrape_slot(peer.ip()).await else {
        let mut busy = text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "Too many scrapes at once (at most {MAX_SCRAPES_IN_FLIGHT}, \
                 {MAX_SCRAPES_PER_CLIENT} per client); retry\n"
            ),
        );
        busy.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return busy;
    };
    builder
        .body(stream_metrics(state.clone(), format, gzip, slot))
        .unwrap_or_else(|_| internal_error())
}

/// The `/metrics` body, rendered (and gzip-compressed when asked) on
/// blocking threads, every core at once (see [`crate::render`]), and
/// streamed chunk by chunk through a bounded queue: a slow scraper slows
/// the rendering instead of growing a buffer, and a scraper that hangs up,
/// or takes nothing for the stall timeout, stops it. `slot` is held until
/// the render has ended.
fn stream_metrics(state: Arc<AppState>, format: Format, gzip: bool, slot: ScrapeSlot) -> Body {
    // Two chunks queued for the socket (each at least 64 KB) keep it busy;
    // more would only hold memory.
    let (tx, rx) = mpsc::channel::<Bytes>(2);
    let cut_short = Arc::new(AtomicBool::new(false));
    let mut sink = ChunkSink {
        tx,
        runtime: tokio::runtime::Handle::current(),
        stall_timeout: state.limits.stall_timeout,
        cut_short: cut_short.clone(),
    };
    tokio::task::spawn_blocking(move || {
        let _slot = slot;
        // Moved in: the response ends as the last chunk goes, not once the
        // scrape has cleaned up after itself.
        state
            .metrics
            .render_to(format, gzip, move |chunk| sink.send(chunk));
    });
    let chunks = futures_util::stream::unfold(Some((rx, cut_short)), |state| async move {
        let (mut rx, cut_short) = state?;
        match rx.recv().await {
            Some(chunk) => Some((Ok(Frame::data(chunk)), Some((rx, cut_short)))),
            // An error instead of the end of the body: the connection is
            // closed without the final chunk, so no client takes a cut
            // body for a whole one.
            None if cut_short.load(Ordering::Acquire) => Some((
                Err(BodyError::from("the /metrics body was cut short")),
                None,
            )),
            None => None,
        }
    });
    BodyExt::boxed_unsync(StreamBody::new(chunks))
}

/// Hands a scrape's chunks to its response, from the rendering thread.
struct ChunkSink {
    tx: mpsc::Sender<Bytes>,
    runtime: tokio::runtime::Handle,
    stall_timeout: Duration,
    /// Set before `tx` goes if the body is not whole.
    cut_short: Arc<AtomicBool>,
}

impl ChunkSink {
    /// Queue one chunk; false (stop rendering) if the scraper is gone or
    /// took nothing for the stall timeout.
    fn send(&mut self, chunk: Vec<u8>) -> bool {
        let queued = self.runtime.block_on(tokio::time::timeout(
            self.stall_timeout,
            self.tx.send(chunk.into()),
        ));
        match queued {
            Ok(Ok(())) => return true,
            // The scraper hung up.
            Ok(Err(_)) => {}
            Err(_) => tracing::debug!(
                timeout = %crate::config::format_duration(self.stall_timeout),
                "dropping a /metrics scraper that took nothing of its body"
            ),
        }
        self.cut_short.store(true, Ordering::Release);
        false
    }
}

impl Drop for ChunkSink {
    fn drop(&mut self) {
        // A render that panicked ends here too: its body is not whole.
        if std::thread::panicking() {
            self.cut_short.store(true, Ordering::Release);
        }
    }
}

fn ready(state: &AppState) -> Response<Body> {
    let loaded = state.config_loaded.load(Ordering::Acquire);
    // Not loaded also means draining at shutdown: unready then, whatever
    // was said before.
    if loaded && (state.was_ready.load(Ordering::Acquire) || state.runner.ready()) {
        state.was_ready.store(true, Ordering::Release);
        text(StatusCode::OK, "Ready\n")
    } else if !loaded {
        text(
            StatusCode::SERVICE_UNAVAILABLE,
            "Not ready: config not loaded\n",
        )
    } else {
        text(
            StatusCode::SERVICE_UNAVAILABLE,
            "Not ready: waiting for every target's first probe\n",
        )
    }
}

async fn reload(state: &AppState) -> Response<Body> {
    let Some(tx) = &state.reload else {
        return text(StatusCode::NOT_FOUND, "Reload is not enabled\n");
    };
    let (reply_tx, reply_rx) = oneshot::channel();
    if tx.send(reply_tx).await.is_err() {
        return text(StatusCode::SERVICE_UNAVAILABLE, "Shutting down\n");
    }
    match reply_rx.await {
        Ok(Ok(())) => text(StatusCode::OK, "Config reloaded\n"),
        Ok(Err(message)) => text(StatusCode::BAD_REQUEST, format!("{message}\n")),
        Err(_) => text(StatusCode::SERVICE_UNAVAILABLE, "Shutting down\n"),
    }
}

fn text(status: StatusCode, body: impl Into<String>) -> Response<Body> {
    respond(
        status,
        "text/plain; charset=utf-8",
        body.into().into_bytes(),
    )
}

fn html(body: String) -> Response<Body> {
    respond(
        StatusCode::OK,
        "text/html; charset=utf-8",
        body.into_bytes(),
    )
}

fn json(body: Vec<u8>) -> Response<Body> {
    respond(StatusCode::OK, "application/json", body)
}

fn respond(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> Response<Body> {
    let body = Full::new(Bytes::from(body)).map_err(|never: Infallible| match never {});
    let mut response = Response::new(body.boxed_unsync());
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn method_not_allowed(allow: &'static str) -> Response<Body> {
    let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed\n");
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

fn internal_error() -> Response<Body> {
    text(StatusCode::INTERNAL_SERVER_ERROR, "Internal error\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client gets its share and no more; a freed slot goes to whoever
    /// waits; and a client's entry goes once it holds and waits for nothing.
    #[tokio::test(start_paused = true)]
    async fn scrape_slots_per_client_and_in_all() {
        let limits = HeavyLimits::new(SCRAPE_STALL_TIMEOUT);
        let a: std::net::IpAddr = [10, 0, 0, 1].into();
        let mut held = Vec::new();
        for _ in 0..MAX_SCRAPES_PER_CLIENT {
            held.push(limits.scrape_slot(a).await.expect("within its share"));
        }
        assert!(limits.scrape_slot(a).await.is_none(), "over its share");
        for i in 0..(MAX_SCRAPES_IN_FLIGHT - MAX_SCRAPES_PER_CLIENT) {
            let other: std::net::IpAddr = [10, 0, 1, i as u8].into();
            held.push(limits.scrape_slot(other).await.expect("a slot left"));
        }
        let late: std::net::IpAddr = [10, 0, 2, 1].into();
        assert!(limits.scrape_slot(late).await.is_none(), "every slot taken");
        // A slot freed while one waits goes to it.
        let waiting = limits.scrape_slot(late);
        let freed = held.pop();
        let (got, ()) = tokio::join!(waiting, async move { drop(freed) });
        assert!(got.is_some());
        drop(got);
        drop(held);
        assert!(limits.per_client.lock().unwrap().is_empty());
    }
}
