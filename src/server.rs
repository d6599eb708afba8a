//! The exporter's own HTTP server (hyper 1): `/metrics`, the landing page,
//! health, readiness, reload and the targets API.
//!
//! Five routes need no framework. Every handler reads shared state without
//! waiting on probes. Slow clients are cut off by a header read timeout, and
//! shutdown stops accepting, lets in-flight requests finish, then returns.

use std::convert::Infallible;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::metrics::{Format, Metrics};
use crate::runner::Runner;
use crate::state::SharedTargets;

/// A client that has not sent its request headers within this is cut off.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Upper bound of a request's header block.
const MAX_HEADER_BYTES: usize = 64 * 1024;

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
}

type Body = Full<Bytes>;

/// Accept connections until `shutdown`, then drain within `grace`.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: CancellationToken,
    grace: Duration,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
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
        let state = state.clone();
        let service = service_fn(move |req| handle(state.clone(), req, peer));
        let conn = builder.serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
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

async fn handle(
    state: Arc<AppState>,
    req: Request<Incoming>,
    _peer: SocketAddr,
) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path();
    let response = if path == state.telemetry_path {
        match *req.method() {
            Method::GET | Method::HEAD => metrics(&state, &req),
            _ => method_not_allowed("GET"),
        }
    } else {
        match path {
            "/" => match *req.method() {
                Method::GET | Method::HEAD => html(crate::board::landing_page(
                    &state.targets.load(),
                    &state.telemetry_path,
                )),
                _ => method_not_allowed("GET"),
            },
            "/-/healthy" => text(StatusCode::OK, "Healthy\n"),
            "/-/ready" => ready(&state),
            "/-/reload" => match *req.method() {
                Method::POST => reload(&state).await,
                _ => method_not_allowed("POST"),
            },
            "/api/v1/targets" => json(crate::api::targets_body(&state.targets.load())),
            p if p.starts_with(crate::api::TARGET_PATH_PREFIX) => {
                let name = &p[crate::api::TARGET_PATH_PREFIX.len()..];
                let (code, body) = crate::api::one_target_body(&state.targets.load(), name);
                let code = StatusCode::from_u16(code).unwrap_or(StatusCode::NOT_FOUND);
                respond(code, "application/json", body)
            }
            _ => text(StatusCode::NOT_FOUND, "Not found\n"),
        }
    };
    Ok(response)
}

fn metrics(state: &AppState, req: &Request<Incoming>) -> Response<Body> {
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok());
    let format = Format::negotiate(accept);
    let body = state.metrics.render(format);
    let gzip = req
        .headers()
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(accepts_gzip);
    let mut builder = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, format.content_type())
        .header(header::VARY, "Accept, Accept-Encoding");
    let bytes = if gzip {
        match gzip_bytes(body.as_bytes()) {
            Ok(compressed) => {
                builder = builder.header(header::CONTENT_ENCODING, "gzip");
                compressed
            }
            Err(_) => body.into_bytes(),
        }
    } else {
        body.into_bytes()
    };
    builder
        .body(Full::new(Bytes::from(bytes)))
        .unwrap_or_else(|_| internal_error())
}

/// `Accept-Encoding` lists gzip without `q=0`.
fn accepts_gzip(value: &str) -> bool {
    value.split(',').any(|part| {
        let mut pieces = part.split(';');
        let coding = pieces.next().unwrap_or("").trim();
        let refused = pieces.any(|p| {
            p.trim()
                .strip_prefix("q=")
                .and_then(|q| q.parse::<f32>().ok())
                .is_some_and(|q| q == 0.0)
        });
        (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
    })
}

fn gzip_bytes(data: &[u8]) -> std::io::Result<Vec<u8>> {
    // Fast level: scrapes are frequent and the saving of higher levels is small.
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(data.len() / 4),
        flate2::Compression::fast(),
    );
    encoder.write_all(data)?;
    encoder.finish()
}

fn ready(state: &AppState) -> Response<Body> {
    let loaded = state
        .config_loaded
        .load(std::sync::atomic::Ordering::Acquire);
    if loaded && state.runner.ready() {
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
    let mut response = Response::new(Full::new(Bytes::from(body)));
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

    #[test]
    fn gzip_negotiation() {
        assert!(accepts_gzip("gzip"));
        assert!(accepts_gzip("deflate, gzip;q=0.8"));
        assert!(!accepts_gzip("gzip;q=0"));
        assert!(!accepts_gzip("identity"));
    }
}
