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
use crate::state::{SharedTargets, unix_now};

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
                Method::GET | Method::HEAD => html(landing_page(&state)),
                _ => method_not_allowed("GET"),
            },
            "/-/healthy" => text(StatusCode::OK, "Healthy\n"),
            "/-/ready" => ready(&state),
            "/-/reload" => match *req.method() {
                Method::POST => reload(&state).await,
                _ => method_not_allowed("POST"),
            },
            "/api/v1/targets" => json(targets_json(&state)),
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

/// Every target's last result, for people and scripts.
pub fn targets_json(state: &AppState) -> serde_json::Value {
    let set = state.targets.load();
    let now = unix_now();
    let targets: Vec<serde_json::Value> = set
        .targets
        .iter()
        .map(|t| {
            let r = t.record.load();
            let status = t.fresh_status(&r, now);
            serde_json::json!({
                "name": t.name(),
                "prober": t.config.kind().as_str(),
                "url": t.display_url,
                "interval_seconds": t.config.interval.as_secs_f64(),
                "timeout_seconds": t.config.timeout.as_secs_f64(),
                "labels": t.config.labels.iter().cloned().collect::<std::collections::BTreeMap<_, _>>(),
                "last_run": r.last_run,
                "last_success": r.last_success,
                "success": r.last_run.map(|_| r.success),
                "http_status": r.http_status,
                "duration_seconds": r.duration.as_secs_f64(),
                "reason": r.error.as_ref().map(|e| e.reason.as_str()),
                "error": r.error.as_ref().map(|e| e.message.clone()),
                "page_status": status.as_ref().map(|s| s.page.as_str()),
                "components": status.as_ref().map(|s| s.components.len()),
                "incidents_open": status.as_ref().map(|s| s.incidents.len()),
            })
        })
        .collect();
    serde_json::json!({ "targets": targets })
}

/// Escape text for HTML element content and attribute values.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn landing_page(state: &AppState) -> String {
    use std::fmt::Write as _;
    let set = state.targets.load();
    let now = unix_now();
    let mut rows = String::new();
    for t in &set.targets {
        let r = t.record.load();
        let status = t.fresh_status(&r, now);
        let result = match (r.last_run, &r.error) {
            (None, _) => "pending".to_string(),
            (Some(_), None) => "ok".to_string(),
            (Some(_), Some(e)) => format!("{}: {}", e.reason, e.message),
        };
        let page = status.map(|s| s.page.as_str()).unwrap_or("-");
        let age = r
            .last_run
            .map(|t| format!("{:.0}s ago", (now - t).max(0.0)))
            .unwrap_or_else(|| "-".into());
        let _ = write!(
            rows,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.0} ms</td></tr>",
            escape_html(t.name()),
            t.config.kind(),
            escape_html(page),
            escape_html(&result),
            age,
            r.duration.as_secs_f64() * 1000.0
        );
    }
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<title>upstream-exporter</title><style>body{{font-family:system-ui,sans-serif;margin:1.5rem}}table{{border-collapse:collapse}}td,th{{padding:.3rem .6rem;border-bottom:1px solid #8884;text-align:left}}\
@media (prefers-color-scheme:dark){{body{{background:#111;color:#eee}}a{{color:#8cf}}}}</style></head><body>\
<h1>upstream-exporter</h1><p><a href=\"{}\">Metrics</a> · <a href=\"/api/v1/targets\">Targets API</a> · <a href=\"/-/ready\">Readiness</a> · <a href=\"/-/healthy\">Health</a></p>\
<table><thead><tr><th>Target</th><th>Prober</th><th>Page status</th><th>Last result</th><th>Last check</th><th>Latency</th></tr></thead><tbody>{rows}</tbody></table>\
<p><small>version {}</small></p></body></html>",
        escape_html(&state.telemetry_path),
        crate::metrics::VERSION
    )
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

fn json(value: serde_json::Value) -> Response<Body> {
    let body = serde_json::to_vec_pretty(&value).unwrap_or_default();
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

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape_html("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
    }
}
