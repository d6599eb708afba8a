//! Shared by the fault, reload and etiquette suites: a scriptable
//! misbehaving upstream (raw HTTP/1.1 over tokio TCP, optionally TLS) on
//! 127.0.0.1, the exporter running in-process on a bound port (the daemon's
//! own `start_with`, so the same code as the binary), the real binary for
//! signal tests, and a small parser for the metrics text.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use upstream_exporter::config::Config;
use upstream_exporter::daemon::{DaemonOptions, Parts};

// ---------------------------------------------------------------------------
// The upstream

/// One request as the upstream saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub at: Instant,
    pub method: String,
    pub path: String,
    /// Lower-cased names.
    pub headers: BTreeMap<String, String>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// What the upstream does with one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A whole answer (Content-Length set, keep-alive).
    Full {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// As `Full`, after a pause.
    Slow(Duration, Box<Reply>),
    /// Read the request, never answer, keep the connection open.
    Hang,
    /// Headers announcing `len` bytes, then one byte per second.
    Drip { len: usize },
    /// Headers announcing 10,000 bytes, 100 of them, then a TCP reset.
    ResetMidBody,
    /// A chunked 200 body of `total` bytes, generated as it is sent.
    Stream { total: u64 },
}

impl Reply {
    pub fn status(status: u16) -> Reply {
        Reply::Full {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn json(body: impl Into<Vec<u8>>) -> Reply {
        Reply::Full {
            status: 200,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: body.into(),
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Reply {
        if let Reply::Full { headers, .. } = &mut self {
            headers.push((name.to_owned(), value.to_owned()));
        }
        self
    }
}

pub type Handler = Arc<dyn Fn(&Seen) -> Reply + Send + Sync>;

/// A local HTTP/1.1 server whose every answer is chosen by a handler.
pub struct Upstream {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    /// Requests being answered right now, and the most at once.
    in_flight: Arc<AtomicUsize>,
    max_in_flight: Arc<AtomicUsize>,
    /// Body bytes written by `Reply::Stream`.
    pub streamed: Arc<AtomicU64>,
    stop: CancellationToken,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Upstream {
    pub async fn start(handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Upstream {
        Self::start_inner(Arc::new(handler), None).await
    }

    /// The same, over TLS with this server config.
    pub async fn start_tls(
        handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static,
        tls: Arc<rustls::ServerConfig>,
    ) -> Upstream {
        Self::start_inner(Arc::new(handler), Some(tls)).await
    }

    async fn start_inner(handler: Handler, tls: Option<Arc<rustls::ServerConfig>>) -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind upstream");
        let addr = listener.local_addr().expect("upstream addr");
        let upstream = Upstream {
            addr,
            seen: Arc::default(),
            in_flight: Arc::default(),
            max_in_flight: Arc::default(),
            streamed: Arc::default(),
            stop: CancellationToken::new(),
        };
        let shared = Conn {
            handler,
            seen: upstream.seen.clone(),
            in_flight: upstream.in_flight.clone(),
            max_in_flight: upstream.max_in_flight.clone(),
            streamed: upstream.streamed.clone(),
            stop: upstream.stop.clone(),
        };
        let stop = upstream.stop.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = tokio::select! {
                    _ = stop.cancelled() => return,
                    r = listener.accept() => match r { Ok(c) => c, Err(_) => continue },
                };
                let conn = shared.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    match tls {
                        None => {
                            let stop = conn.stop.clone();
                            tokio::select! {
                                _ = stop.cancelled() => {}
                                _ = conn.serve(stream, |s: &TcpStream| { let _ = s.set_zero_linger(); }) => {}
                            }
                        }
                        Some(cfg) => {
                            let acceptor = tokio_rustls::TlsAcceptor::from(cfg);
                            // A client that rejects the certificate ends the handshake.
                            if let Ok(s) = acceptor.accept(stream).await {
                                let stop = conn.stop.clone();
                                tokio::select! {
                                    _ = stop.cancelled() => {}
                                    _ = conn.serve(s, |s: &tokio_rustls::server::TlsStream<TcpStream>| {
                                        let _ = s.get_ref().0.set_zero_linger();
                                    }) => {}
                                }
                            }
                        }
                    }
                });
            }
        });
        upstream
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub fn seen_path(&self, path: &str) -> Vec<Seen> {
        self.seen().into_iter().filter(|s| s.path == path).collect()
    }

    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight.load(Ordering::SeqCst)
    }
}

#[derive(Clone)]
struct Conn {
    handler: Handler,
    seen: Arc<Mutex<Vec<Seen>>>,
    in_flight: Arc<AtomicUsize>,
    max_in_flight: Arc<AtomicUsize>,
    streamed: Arc<AtomicU64>,
    stop: CancellationToken,
}

/// Decrements the in-flight gauge however the answer ends.
struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Conn {
    async fn serve<S: AsyncRead + AsyncWrite + Unpin>(&self, mut stream: S, reset: impl Fn(&S)) {
        let mut buf: Vec<u8> = Vec::new();
        loop {
            let Some(seen) = read_request(&mut stream, &mut buf).await else {
                return;
            };
            self.seen.lock().unwrap().push(seen.clone());
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_in_flight.fetch_max(now, Ordering::SeqCst);
            let guard = InFlight(self.in_flight.clone());
            let mut reply = (self.handler)(&seen);
            if let Reply::Slow(pause, inner) = reply {
                tokio::time::sleep(pause).await;
                reply = *inner;
            }
            match reply {
                Reply::Full {
                    status,
                    headers,
                    body,
                } => {
                    // Counted as in flight until the answer starts: the
                    // client cannot finish (and start another request)
                    // before that, so the count never overstates overlap.
                    drop(guard);
                    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason_phrase(status));
                    for (k, v) in &headers {
                        head.push_str(&format!("{k}: {v}\r\n"));
                    }
                    if status != 304 {
                        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
                    }
                    head.push_str("\r\n");
                    if stream.write_all(head.as_bytes()).await.is_err()
                        || stream.write_all(&body).await.is_err()
                        || stream.flush().await.is_err()
                    {
                        return;
                    }
                }
                Reply::Slow(..) => return,
                Reply::Hang => {
                    // Hold the connection until the client gives up.
                    let mut sink = [0u8; 512];
                    while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
                    return;
                }
                Reply::Drip { len } => {
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len}\r\n\r\n"
                    );
                    if stream.write_all(head.as_bytes()).await.is_err() {
                        return;
                    }
                    for _ in 0..len {
                        if stream.write_all(b" ").await.is_err() || stream.flush().await.is_err() {
                            return;
                        }
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    return;
                }
                Reply::ResetMidBody => {
                    let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 10000\r\n\r\n";
                    let _ = stream.write_all(head.as_bytes()).await;
                    let _ = stream.write_all(&[b' '; 100]).await;
                    let _ = stream.flush().await;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    reset(&stream);
                    return;
                }
                Reply::Stream { total } => {
                    let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
                    if stream.write_all(head.as_bytes()).await.is_err() {
                        return;
                    }
                    let chunk = vec![b' '; 64 * 1024];
                    let mut sent = 0u64;
                    while sent < total {
                        let n = chunk.len().min((total - sent) as usize);
                        let framed =
                            [format!("{n:x}\r\n").as_bytes(), &chunk[..n], b"\r\n"].concat();
                        if stream.write_all(&framed).await.is_err() {
                            return;
                        }
                        sent += n as u64;
                        self.streamed.fetch_add(n as u64, Ordering::SeqCst);
                    }
                    let _ = stream.write_all(b"0\r\n\r\n").await;
                    return;
                }
            }
        }
    }
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Whatever",
    }
}

/// Read one request head (GET requests have no body).
async fn read_request<S: AsyncRead + Unpin>(stream: &mut S, buf: &mut Vec<u8>) -> Option<Seen> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            buf.drain(..end + 4);
            let mut lines = head.split("\r\n");
            let mut first = lines.next()?.split(' ');
            let method = first.next()?.to_owned();
            let path = first.next()?.to_owned();
            let headers = lines
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
                .collect();
            return Some(Seen {
                at: Instant::now(),
                method,
                path,
                headers,
            });
        }
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

// ---------------------------------------------------------------------------
// Bodies

/// A Statuspage summary with `n` components, all of severity `status`.
pub fn summary(n: usize, status: &str) -> String {
    let components: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"id":"c{i}","name":"Component {i}","status":"{status}","group_id":null,"group":false}}"#
            )
        })
        .collect();
    format!(
        r#"{{"page":{{"id":"p","name":"Test"}},"status":{{"indicator":"none","description":"ok"}},"components":[{}],"incidents":[],"scheduled_maintenances":[]}}"#,
        components.join(",")
    )
}

// ---------------------------------------------------------------------------
// The exporter, in-process

pub struct Exporter {
    pub base: String,
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    pub client: reqwest::Client,
    shutdown: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Exporter {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A plain HTTP client for talking to the exporter (no proxy, fixed timeout).
pub fn client() -> reqwest::Client {
    let tls = upstream_exporter::http::rustls_config(&Default::default()).expect("tls config");
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client")
}

impl Exporter {
    pub async fn start(yaml: &str) -> Exporter {
        Self::start_with(yaml, Parts::default()).await
    }

    pub async fn start_with(yaml: &str, parts: Parts) -> Exporter {
        let dir = tempfile::tempdir().expect("tempdir");
        let config_path = dir.path().join("exporter.yaml");
        std::fs::write(&config_path, yaml).expect("write config");
        Self::start_at(dir, config_path, parts).await
    }

    /// Start on a config file prepared by the caller (e.g. a symlink farm).
    pub async fn start_at(dir: tempfile::TempDir, config_path: PathBuf, parts: Parts) -> Exporter {
        let config = Config::load(&config_path).unwrap_or_else(|e| panic!("test config: {e}"));
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind exporter");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let shutdown = CancellationToken::new();
        let opts = DaemonOptions {
            config_file: config_path.clone(),
            listen_address: base.clone(),
            telemetry_path: "/metrics".into(),
            shutdown_timeout: Duration::from_secs(2),
            shard: Default::default(),
            web_config_file: None,
        };
        let task = tokio::spawn(upstream_exporter::daemon::start_with(
            opts,
            config,
            listener,
            shutdown.clone(),
            parts,
        ));
        Exporter {
            base,
            dir,
            config_path,
            client: client(),
            shutdown,
            task: Some(task),
        }
    }

    /// GET /metrics; panics unless it answers 200 within `within`.
    pub async fn scrape_within(&self, within: Duration) -> Scrape {
        let started = Instant::now();
        let response = tokio::time::timeout(
            within,
            self.client.get(format!("{}/metrics", self.base)).send(),
        )
        .await
        .unwrap_or_else(|_| panic!("/metrics did not answer within {within:?}"))
        .expect("/metrics request");
        assert_eq!(response.status(), 200, "/metrics status");
        let text = response.text().await.expect("/metrics body");
        Scrape {
            text,
            latency: started.elapsed(),
        }
    }

    pub async fn scrape(&self) -> Scrape {
        self.scrape_within(Duration::from_secs(2)).await
    }

    pub async fn targets_api(&self) -> serde_json::Value {
        let body = self
            .client
            .get(format!("{}/api/v1/targets", self.base))
            .send()
            .await
            .expect("targets api")
            .bytes()
            .await
            .expect("targets body");
        serde_json::from_slice(&body).expect("targets json")
    }

    /// `POST /-/reload`: (status, body).
    pub async fn reload(&self) -> (u16, String) {
        let r = self
            .client
            .post(format!("{}/-/reload", self.base))
            .send()
            .await
            .expect("reload request");
        (r.status().as_u16(), r.text().await.unwrap_or_default())
    }

    pub fn write_config(&self, yaml: &str) {
        std::fs::write(&self.config_path, yaml).expect("write config");
    }

    /// Cancel and wait for the daemon to return; how long that took.
    pub async fn stop(mut self) -> Duration {
        let started = Instant::now();
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
        started.elapsed()
    }
}

/// Poll `check` every 50 ms until it returns Some, or panic after `within`.
pub async fn eventually<T, F, Fut>(within: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---------------------------------------------------------------------------
// Metrics text

/// One scrape's body and how long it took.
#[derive(Debug, Clone)]
pub struct Scrape {
    pub text: String,
    pub latency: Duration,
}

impl Scrape {
    /// The value of the first sample of `name` whose labels include all of `labels`.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.samples(name)
            .into_iter()
            .find(|(l, _)| {
                labels
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|(_, v)| v)
    }

    /// Shorthand for a per-target sample.
    pub fn of(&self, name: &str, target: &str) -> Option<f64> {
        self.get(name, &[("target", target)])
    }

    /// Every sample of `name` (exact metric name) with its labels.
    pub fn samples(&self, name: &str) -> Vec<(BTreeMap<String, String>, f64)> {
        self.text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|line| {
                let (series, value) = line.rsplit_once(' ')?;
                let (metric, labels) = match series.split_once('{') {
                    Some((m, rest)) => (m, rest.strip_suffix('}')?),
                    None => (series, ""),
                };
                if metric != name {
                    return None;
                }
                Some((parse_labels(labels), value.parse().ok()?))
            })
            .collect()
    }

    /// Whether any series mentions `target="name"`.
    pub fn mentions_target(&self, target: &str) -> bool {
        let needle = format!("target=\"{target}\"");
        self.text
            .lines()
            .any(|l| !l.starts_with('#') && l.contains(&needle))
    }

    /// Series names (before `{`) that carry `target="name"`.
    pub fn families_of(&self, target: &str) -> Vec<String> {
        let needle = format!("target=\"{target}\"");
        let mut names: Vec<String> = self
            .text
            .lines()
            .filter(|l| !l.starts_with('#') && l.contains(&needle))
            .filter_map(|l| l.split('{').next().map(str::to_owned))
            .collect();
        names.sort();
        names.dedup();
        names
    }
}

fn parse_labels(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = text;
    while let Some((key, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, n)) = chars.next() {
                        value.push(match n {
                            'n' => '\n',
                            other => other,
                        });
                    }
                }
                '"' => {
                    end = i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        out.insert(key.trim_start_matches(',').trim().to_owned(), value);
        rest = &after[end..];
    }
    out
}

// ---------------------------------------------------------------------------
// Processes

/// Open file descriptors of a process.
pub fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Resident memory of a process in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

/// Send a signal with `kill(1)` (no libc binding needed).
pub fn signal(pid: u32, sig: &str) {
    let status = std::process::Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{sig} {pid}");
}

/// A free port on 127.0.0.1 that this test process has not handed out
/// before. The port is released before the binary binds it, and the kernel
/// may give a just-released port to the next `bind(0)`: seven replicas
/// started together once got the same port twice, and a scrape of one
/// replica reached another.
fn unused_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// The real binary on a config file, stderr captured to a file.
pub struct Binary {
    pub child: std::process::Child,
    pub base: String,
    pub log: PathBuf,
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Binary {
    pub fn start(config: &Path, extra: &[&str]) -> Binary {
        let port = unused_port();
        let log = config.with_extension("log");
        let stderr = std::fs::File::create(&log).expect("log file");
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_upstream-exporter"))
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .args(extra)
            .stdout(std::process::Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn exporter");
        Binary {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub async fn wait_healthy(&self, client: &reqwest::Client) {
        let url = format!("{}/-/healthy", self.base);
        eventually(Duration::from_secs(10), "the binary to listen", || async {
            client
                .get(&url)
                .send()
                .await
                .ok()
                .filter(|r| r.status() == 200)
                .map(|_| ())
        })
        .await;
    }

    pub async fn scrape(&self, client: &reqwest::Client) -> Scrape {
        let started = Instant::now();
        let text = client
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .expect("scrape")
            .text()
            .await
            .expect("scrape body");
        Scrape {
            text,
            latency: started.elapsed(),
        }
    }

    /// Wait for the process to exit; its status and how long that took.
    pub fn wait_exit(&mut self, within: Duration) -> (Option<std::process::ExitStatus>, Duration) {
        let started = Instant::now();
        while started.elapsed() < within {
            if let Ok(Some(status)) = self.child.try_wait() {
                return (Some(status), started.elapsed());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        (None, started.elapsed())
    }
}
