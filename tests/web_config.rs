//! `--web.config.file` and the exporter's own server limits, against the
//! exporter running in-process on 127.0.0.1 (the daemon's `start_with`)
//! and the real binary: TLS with a private CA, mTLS, bcrypt basic auth and
//! its cache, extra headers, reload of the web config on change (good and
//! bad), the good/bad fixture files, slow-loris clients and TLS handshakes
//! that never finish, oversize headers and bodies, and no request-driven
//! fetching.

mod harness;
mod tls_server;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use harness::{Exporter, Reply, Upstream, eventually, summary};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tls_server::Pki;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use upstream_exporter::daemon::Parts;
use upstream_exporter::webconfig::{LiveWeb, WebConfig, WebSecurity};

// ---------------------------------------------------------------------------
// Helpers

fn exporter_yaml(up: &Upstream) -> String {
    format!(
        "defaults:\n  interval: 1s\n  timeout: 800ms\n  retries: 0\ntargets:\n  - name: a\n    \
         statuspage: {{ url: \"{}\" }}\n",
        up.url("/a.json")
    )
}

async fn operational_upstream() -> Upstream {
    Upstream::start(|_| Reply::json(summary(1, "operational"))).await
}

/// The exporter in-process with `web_yaml` as its web config (files it
/// names are relative to the same temp dir, prepared by `files`).
struct Secured {
    exporter: Exporter,
    web: Arc<LiveWeb>,
    web_path: PathBuf,
    _up: Upstream,
}

impl Secured {
    async fn start(web_yaml: &str, files: impl FnOnce(&Path)) -> Secured {
        Self::start_with(web_yaml, files, Parts::default()).await
    }

    async fn start_with(web_yaml: &str, files: impl FnOnce(&Path), parts: Parts) -> Secured {
        let up = operational_upstream().await;
        let dir = tempfile::tempdir().unwrap();
        files(dir.path());
        let web_path = dir.path().join("web.yml");
        std::fs::write(&web_path, web_yaml).unwrap();
        let config_path = dir.path().join("exporter.yaml");
        std::fs::write(&config_path, exporter_yaml(&up)).unwrap();
        let web =
            Arc::new(LiveWeb::load(Some(&web_path)).unwrap_or_else(|e| panic!("web config: {e}")));
        let parts = Parts {
            web: Some(web.clone()),
            ..parts
        };
        let exporter = Exporter::start_at(dir, config_path, parts).await;
        Secured {
            exporter,
            web,
            web_path,
            _up: up,
        }
    }

    /// Basic auth for `alice` / `one`, both files polled every 200 ms.
    async fn start_polled_with_alice() -> Secured {
        let parts = Parts {
            config_poll_interval: Duration::from_millis(200),
            ..Parts::default()
        };
        Self::start_with(&users_yaml(&[("alice", "one")], 4), |_| {}, parts).await
    }

    fn addr(&self) -> String {
        self.exporter.base.trim_start_matches("http://").to_owned()
    }

    fn https(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr())
    }

    fn http(&self, path: &str) -> String {
        format!("{}{path}", self.exporter.base)
    }

    fn bcrypt_verifications(&self) -> u64 {
        self.web
            .current()
            .authenticator()
            .expect("basic auth is on")
            .bcrypt_verifications()
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

/// Write a server chain and key from `pki` as `server.crt` / `server.key`,
/// and the PKI's root as `ca.crt`, into `dir`.
fn write_server_files(pki: &Pki, dir: &Path) {
    let (chain, key, _) = pki.leaf((2024, 1, 1), (2035, 1, 1));
    let chain_pem: String = chain.iter().map(|c| pem("CERTIFICATE", c)).collect();
    std::fs::write(dir.join("server.crt"), chain_pem).unwrap();
    std::fs::write(dir.join("server.key"), pem("PRIVATE KEY", key.secret_der())).unwrap();
    std::fs::copy(pki.path("ca.pem"), dir.join("ca.crt")).unwrap();
}

fn tls_client(
    roots: rustls::RootCertStore,
    identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> reqwest::Client {
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    let config = match identity {
        Some((chain, key)) => builder.with_client_auth_cert(chain, key).unwrap(),
        None => builder.with_no_client_auth(),
    };
    reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

fn client_identity(pki: &Pki) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
    pki.client_files();
    let chain = CertificateDer::pem_file_iter(pki.path("client.pem"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(pki.path("client-key.pem")).unwrap();
    (chain, key)
}

async fn status(response: Result<reqwest::Response, reqwest::Error>) -> u16 {
    response.expect("request").status().as_u16()
}

// ---------------------------------------------------------------------------
// TLS

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_server_trusted_by_its_ca_only() {
    let pki = Pki::new();
    let s = Secured::start(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n",
        |dir| write_server_files(&pki, dir),
    )
    .await;
    let trusting = tls_client(pki.root_store(), None);
    let r = trusting.get(s.https("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("upstream_exporter_build_info")
    );

    let other_ca = Pki::new();
    let distrusting = tls_client(other_ca.root_store(), None);
    let err = distrusting
        .get(s.https("/metrics"))
        .send()
        .await
        .expect_err("a client with another CA must fail the handshake");
    assert!(err.is_connect(), "{err:?}");

    // Plain HTTP on the TLS port gets no page.
    let plain = harness::client().get(s.http("/metrics")).send().await;
    assert!(plain.is_err() || plain.unwrap().status() != 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_requires_a_client_certificate_signed_by_the_client_ca() {
    let pki = Pki::new();
    let s = Secured::start(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  \
         client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n",
        |dir| write_server_files(&pki, dir),
    )
    .await;
    let with_cert = tls_client(pki.root_store(), Some(client_identity(&pki)));
    assert_eq!(
        status(with_cert.get(s.https("/metrics")).send().await).await,
        200
    );

    let without_cert = tls_client(pki.root_store(), None);
    let err = without_cert
        .get(s.https("/metrics"))
        .send()
        .await
        .expect_err("no client certificate: the handshake fails");
    assert!(!err.is_status(), "{err:?}");

    // A certificate from another CA is refused as well.
    let stranger = Pki::new();
    let foreign = tls_client(pki.root_store(), Some(client_identity(&stranger)));
    assert!(foreign.get(s.https("/metrics")).send().await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_allowed_sans_refuses_certificates_without_a_listed_san() {
    let pki = Pki::new();
    // The test client certificate has no SAN at all.
    let s = Secured::start(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  \
         client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n  \
         client_allowed_sans: [prometheus.monitoring.svc]\n",
        |dir| write_server_files(&pki, dir),
    )
    .await;
    let client = tls_client(pki.root_store(), Some(client_identity(&pki)));
    assert!(client.get(s.https("/metrics")).send().await.is_err());
}

// ---------------------------------------------------------------------------
// Basic auth and headers

fn users_yaml(users: &[(&str, &str)], cost: u32) -> String {
    let mut yaml = String::from(
        "http_server_config:\n  headers:\n    X-Frame-Options: deny\n    \
         Content-Security-Policy: \"default-src 'none'\"\nbasic_auth_users:\n",
    );
    for (user, password) in users {
        let hash = bcrypt::hash(password, cost).unwrap();
        yaml.push_str(&format!("  {user}: \"{hash}\"\n"));
    }
    yaml
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_guards_every_endpoint_but_health_and_readiness() {
    let s = Secured::start(&users_yaml(&[("alice", "wonderland")], 4), |_| {}).await;
    let c = harness::client();
    for path in ["/metrics", "/", "/api/v1/targets", "/nope"] {
        let r = c
            .get(s.http(path))
            .basic_auth("alice", Some("wonderland"))
            .send()
            .await
            .unwrap();
        assert_ne!(r.status(), 401, "{path} with the right password");

        let r = c
            .get(s.http(path))
            .basic_auth("alice", Some("wrong"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{path} with a wrong password");
        assert_eq!(r.headers()["www-authenticate"], "Basic");

        let r = c.get(s.http(path)).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path} without credentials");
        assert_eq!(r.headers()["www-authenticate"], "Basic");
        assert_eq!(r.headers()["x-frame-options"], "deny", "headers on 401 too");
    }
    let r = c
        .get(s.http("/metrics"))
        .basic_auth("mallory", Some("wonderland"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "an unknown user");
    let r = c.post(s.http("/-/reload")).send().await.unwrap();
    assert_eq!(r.status(), 401, "reload needs auth");
    let r = c
        .post(s.http("/-/reload"))
        .basic_auth("alice", Some("wonderland"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "reload with auth");

    let r = c.get(s.http("/-/healthy")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-frame-options"], "deny");
    assert_eq!(r.headers()["content-security-policy"], "default-src 'none'");
    eventually(Duration::from_secs(5), "/-/ready without auth", || async {
        let r = c.get(s.http("/-/ready")).send().await.ok()?;
        (r.status() == 200).then_some(())
    })
    .await;
    let r = c
        .get(s.http("/metrics"))
        .basic_auth("alice", Some("wonderland"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-frame-options"], "deny");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cost_10_hash_is_checked_once_per_cache_window() {
    let s = Secured::start(&users_yaml(&[("alice", "wonderland")], 10), |_| {}).await;
    let c = harness::client();
    for _ in 0..20 {
        let r = c
            .get(s.http("/metrics"))
            .basic_auth("alice", Some("wonderland"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    assert_eq!(s.bcrypt_verifications(), 1, "20 requests, one bcrypt run");

    // Wrong passwords are checked (and refused) every time, never cached
    // as a success, and do not disturb the cached right one.
    for _ in 0..2 {
        let r = c
            .get(s.http("/metrics"))
            .basic_auth("alice", Some("wonderlandd"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    }
    assert_eq!(s.bcrypt_verifications(), 3);
    let r = c
        .get(s.http("/metrics"))
        .basic_auth("alice", Some("wonderland"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(s.bcrypt_verifications(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_config_reload_on_change_and_a_bad_one_keeps_the_old() {
    let s = Secured::start_polled_with_alice().await;
    let c = harness::client();
    let get = |user: &'static str, password: &'static str| {
        let c = c.clone();
        let url = s.http("/metrics");
        async move {
            c.get(url)
                .basic_auth(user, Some(password))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(get("alice", "one").await, 200);

    std::fs::write(&s.web_path, users_yaml(&[("bob", "two")], 4)).unwrap();
    eventually(Duration::from_secs(5), "the new user to work", || async {
        (get("bob", "two").await == 200).then_some(())
    })
    .await;
    assert_eq!(get("alice", "one").await, 401, "the old user is gone");

    // A bad file is rejected: bob keeps working, the reload says why.
    std::fs::write(&s.web_path, "basic_auth_users:\n  carol: plaintext\n").unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(get("bob", "two").await, 200);
    assert_eq!(get("carol", "plaintext").await, 401);
    let r = c
        .post(s.http("/-/reload"))
        .basic_auth("bob", Some("two"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body = r.text().await.unwrap();
    assert!(
        body.contains(&format!(
            "{}:2:10: the password of user `carol` is not a bcrypt hash",
            s.web_path.display()
        )),
        "{body}"
    );
    assert!(!body.contains("plaintext"), "{body}");
    assert!(
        body.trim_end()
            .ends_with("was reloaded; only the web config was rejected"),
        "{body}"
    );
    assert_eq!(get("bob", "two").await, 200);
    let scrape = c
        .get(s.http("/metrics"))
        .basic_auth("bob", Some("two"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        scrape.contains("upstream_exporter_config_last_reload_successful 0"),
        "a rejected web config shows in the reload gauge"
    );
}

/// Each config file keeps its own verdict in the reload gauge: a web config
/// that loads (a user added, a certificate renewed) does not turn it back
/// to 1 while `exporter.yaml` is still rejected, nor does a good
/// `exporter.yaml` while the web config is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reload_gauge_is_1_only_while_both_files_load() {
    let s = Secured::start_polled_with_alice().await;
    let c = harness::client();
    let scrape = || {
        let (c, url) = (c.clone(), s.http("/metrics"));
        async move {
            let r = c.get(url).basic_auth("alice", Some("one")).send().await;
            r.unwrap().text().await.unwrap()
        }
    };
    let gauge_is = |want: &'static str| {
        let scrape = &scrape;
        async move {
            let line = format!("\nupstream_exporter_config_last_reload_successful {want}\n");
            scrape().await.contains(&line).then_some(())
        }
    };
    eventually(Duration::from_secs(5), "gauge 1 at start", || gauge_is("1")).await;
    let good = exporter_yaml(&s._up);

    // exporter.yaml rejected, then the web config changes and loads.
    s.exporter.write_config("targets: [oops\n");
    eventually(Duration::from_secs(5), "gauge 0", || gauge_is("0")).await;
    let two_users = users_yaml(&[("alice", "one"), ("bob", "two")], 4);
    std::fs::write(&s.web_path, two_users).unwrap();
    eventually(Duration::from_secs(5), "bob to work", || {
        let c = c.clone();
        let url = s.http("/api/v1/targets");
        async move {
            let r = c
                .get(url)
                .basic_auth("bob", Some("two"))
                .send()
                .await
                .ok()?;
            (r.status() == 200).then_some(())
        }
    })
    .await;
    assert!(
        gauge_is("0").await.is_some(),
        "exporter.yaml is still rejected"
    );
    s.exporter.write_config(&good);
    eventually(Duration::from_secs(5), "gauge 1 again", || gauge_is("1")).await;

    // The web config rejected, then exporter.yaml changes and loads.
    std::fs::write(&s.web_path, "basic_auth_users:\n  carol: plaintext\n").unwrap();
    eventually(Duration::from_secs(5), "gauge 0", || gauge_is("0")).await;
    let with_b = format!(
        "{good}  - name: b\n    statuspage: {{ url: \"{}\" }}\n",
        s._up.url("/b.json")
    );
    s.exporter.write_config(&with_b);
    eventually(Duration::from_secs(5), "target b", || async {
        scrape()
            .await
            .contains("upstream_target_info{target=\"b\"")
            .then_some(())
    })
    .await;
    assert!(
        gauge_is("0").await.is_some(),
        "the web config is still rejected"
    );
    std::fs::write(&s.web_path, users_yaml(&[("alice", "one")], 4)).unwrap();
    eventually(Duration::from_secs(5), "gauge 1 again", || gauge_is("1")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_certificate_rotation_on_disk_is_picked_up() {
    let first = Pki::new();
    let parts = Parts {
        config_poll_interval: Duration::from_millis(200),
        ..Parts::default()
    };
    let s = Secured::start_with(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n",
        |dir| write_server_files(&first, dir),
        parts,
    )
    .await;
    let trusts_first = tls_client(first.root_store(), None);
    assert_eq!(
        status(trusts_first.get(s.https("/-/healthy")).send().await).await,
        200
    );
    // Rotate: same web config file, new certificate and key files.
    let second = Pki::new();
    let dir = s.web_path.parent().unwrap().to_path_buf();
    write_server_files(&second, &dir);
    let trusts_second = tls_client(second.root_store(), None);
    eventually(Duration::from_secs(5), "the new certificate", || async {
        let r = trusts_second.get(s.https("/-/healthy")).send().await.ok()?;
        (r.status() == 200).then_some(())
    })
    .await;
}

// ---------------------------------------------------------------------------
// Fixture files

fn fixtures(kind: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/webconfig")
        .join(kind);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .collect();
    files.sort();
    assert!(files.len() >= 5, "fixtures in {}", dir.display());
    files
}

#[test]
fn good_fixture_files_validate() {
    for path in fixtures("good") {
        let bytes = std::fs::read(&path).unwrap();
        if let Err(e) = WebConfig::from_yaml(&bytes, &path) {
            panic!("{}: {e}", path.display());
        }
    }
}

/// Each bad fixture starts with `# expect: LINE:COLUMN: message start`.
#[test]
fn bad_fixture_files_fail_with_their_expected_message() {
    for path in fixtures("bad") {
        let text = std::fs::read_to_string(&path).unwrap();
        let expect = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{}: no `# expect:` line", path.display()))
            .trim();
        let err = match WebSecurity::load(&path) {
            Ok(_) => panic!("{}: expected an error", path.display()),
            Err(e) => e.to_string(),
        };
        let wanted = format!("{}:{expect}", path.display());
        assert!(
            err.lines().any(|l| l.starts_with(&wanted)),
            "{}:\n  wanted a line starting with: {wanted}\n  got: {err}",
            path.display()
        );
    }
}

#[test]
fn binary_exits_1_on_a_bad_web_config_and_config_check_checks_it() {
    let up_dir = tempfile::tempdir().unwrap();
    let config = up_dir.path().join("exporter.yaml");
    std::fs::write(
        &config,
        "targets:\n  - name: a\n    statuspage: { url: \"http://127.0.0.1:9/\" }\n",
    )
    .unwrap();
    let bad = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/webconfig/bad/plaintext_password.yml");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let run = |extra: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_upstream-exporter"))
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--web.config.file={}", bad.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .args(extra)
            .output()
            .unwrap()
    };
    let started = Instant::now();
    let out = run(&[]);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let wanted = format!(
        "{}:3:15: the password of user `prometheus` is not a bcrypt hash",
        bad.display()
    );
    assert!(stderr.contains(&wanted), "{stderr}");
    assert!(!stderr.contains("correct-horse"), "{stderr}");

    let out = run(&["--config.check"]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("OK: 1 targets"), "{stdout}");
    assert!(stderr.contains(&wanted), "{stderr}");

    let good = bad.with_file_name("../good/users_and_headers.yml");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_upstream-exporter"))
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--web.config.file={}", good.display()))
        .arg("--config.check")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("OK: web config"));
}

// ---------------------------------------------------------------------------
// Our own server's limits

/// Read until EOF, an error or `within`; (bytes read, whether it ended).
async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> (Vec<u8>, bool) {
    let deadline = Instant::now() + within;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match tokio::time::timeout(deadline - Instant::now(), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (seen, true),
            Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
    (seen, false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_loris_is_cut_off_at_the_header_timeout() {
    assert_eq!(
        Parts::default().header_read_timeout,
        Duration::from_secs(10),
        "the real default"
    );
    let up = operational_upstream().await;
    let parts = Parts {
        header_read_timeout: Duration::from_secs(1),
        ..Parts::default()
    };
    let exporter = Exporter::start_with(&exporter_yaml(&up), parts).await;
    let addr = exporter.base.trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(&addr).await.unwrap();
    let started = Instant::now();
    let head = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaa";
    let mut closed_after = None;
    for byte in head.iter().take(20) {
        if stream.write_all(&[*byte]).await.is_err() {
            closed_after = Some(started.elapsed());
            break;
        }
        let (_, closed) = read_until_closed(&mut stream, Duration::from_millis(500)).await;
        if closed {
            closed_after = Some(started.elapsed());
            break;
        }
    }
    let closed_after = closed_after.expect("a client sending a byte every 0.5 s stays connected");
    assert!(
        closed_after >= Duration::from_millis(900) && closed_after < Duration::from_secs(3),
        "cut off after {closed_after:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_handshake_that_never_completes_is_cut_off() {
    let pki = Pki::new();
    let parts = Parts {
        header_read_timeout: Duration::from_secs(1),
        ..Parts::default()
    };
    let s = Secured::start_with(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n",
        |dir| write_server_files(&pki, dir),
        parts,
    )
    .await;
    // Connect and say nothing: no ClientHello ever comes.
    let mut silent = TcpStream::connect(s.addr()).await.unwrap();
    let started = Instant::now();
    let (_, closed) = read_until_closed(&mut silent, Duration::from_secs(4)).await;
    assert!(closed, "a silent TLS client is disconnected");
    let after = started.elapsed();
    assert!(
        after >= Duration::from_millis(900) && after < Duration::from_secs(3),
        "{after:?}"
    );
    // Well-behaved clients are still served.
    let client = tls_client(pki.root_store(), None);
    assert_eq!(
        status(client.get(s.https("/-/healthy")).send().await).await,
        200
    );
}

async fn exporter_on_plain_http() -> (Exporter, Upstream, String) {
    let up = operational_upstream().await;
    let exporter = Exporter::start(&exporter_yaml(&up)).await;
    let addr = exporter.base.trim_start_matches("http://").to_owned();
    (exporter, up, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_header_block_is_refused() {
    let (_exporter, _up, addr) = exporter_on_plain_http().await;
    let mut stream = TcpStream::connect(&addr).await.unwrap();
    let mut request = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
    request.extend(std::iter::repeat_n(b'a', 70 * 1024));
    request.extend_from_slice(b"\r\n\r\n");
    // The server may stop reading (and close) before all of it is sent.
    let _ = stream.write_all(&request).await;
    let (answer, closed) = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(closed, "the connection is closed; got {answer:?}");
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 431"),
        "{answer}"
    );
    // Just under the limit is fine.
    let mut stream = TcpStream::connect(&addr).await.unwrap();
    let mut request =
        b"GET /-/healthy HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Big: ".to_vec();
    request.extend(std::iter::repeat_n(b'a', 32 * 1024));
    request.extend_from_slice(b"\r\n\r\n");
    stream.write_all(&request).await.unwrap();
    let (answer, _) = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_body_is_not_buffered() {
    let (_exporter, _up, addr) = exporter_on_plain_http().await;
    // 1 GiB announced, 1 KiB sent: answered 413 at once, connection closed.
    let mut stream = TcpStream::connect(&addr).await.unwrap();
    stream
        .write_all(b"POST /-/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 1073741824\r\n\r\n")
        .await
        .unwrap();
    stream.write_all(&[b'x'; 1024]).await.unwrap();
    let started = Instant::now();
    let (answer, closed) = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    let answer = String::from_utf8_lossy(&answer).to_ascii_lowercase();
    assert!(answer.starts_with("http/1.1 413"), "{answer}");
    assert!(answer.contains("connection: close"), "{answer}");
    assert!(closed && started.elapsed() < Duration::from_secs(3));

    // A chunked body that never ends is not read either: the reload is
    // answered and the connection closed while the client is still sending.
    let mut stream = TcpStream::connect(&addr).await.unwrap();
    stream
        .write_all(
            b"POST /-/reload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n400\r\n",
        )
        .await
        .unwrap();
    stream.write_all(&[b'x'; 1024]).await.unwrap();
    let (answer, closed) = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    let answer = String::from_utf8_lossy(&answer).to_ascii_lowercase();
    assert!(answer.starts_with("http/1.1 200"), "{answer}");
    assert!(answer.contains("connection: close"), "{answer}");
    assert!(closed);
}

/// A listener that counts connections: the host a request names.
async fn bait() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        while let Ok((_stream, _)) = listener.accept().await {
            seen.fetch_add(1, Ordering::SeqCst);
        }
    });
    (addr, count)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_request_makes_the_exporter_contact_a_host_it_names() {
    let (exporter, up, addr) = exporter_on_plain_http().await;
    let (bait_addr, contacted) = bait().await;
    let target = format!("http://{bait_addr}/");
    let c = harness::client();
    let queries = [
        format!("/probe?target={target}"),
        format!("/probe?module=http_2xx&target={bait_addr}"),
        format!("/metrics?target={target}"),
        format!("/?target={target}&url={target}"),
        format!("/api/v1/targets?url={target}"),
        format!("/api/v1/targets/a?url={target}"),
        format!("/-/ready?target={target}"),
    ];
    for q in &queries {
        let _ = c.get(format!("{}{q}", exporter.base)).send().await.unwrap();
    }
    let _ = c
        .post(format!("{}/-/reload?target={target}", exporter.base))
        .body(format!("url: {target}\n"))
        .send()
        .await
        .unwrap();
    // Host and forwarding headers naming the bait, and an absolute-form
    // request line, as a proxy would send.
    for request in [
        format!("GET /metrics HTTP/1.1\r\nHost: {bait_addr}\r\nConnection: close\r\n\r\n"),
        format!(
            "GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-Host: {bait_addr}\r\nForwarded: \
             host={bait_addr}\r\nConnection: close\r\n\r\n"
        ),
        format!(
            "GET http://{bait_addr}/ HTTP/1.1\r\nHost: {bait_addr}\r\nConnection: close\r\n\r\n"
        ),
        format!("CONNECT {bait_addr} HTTP/1.1\r\nHost: {bait_addr}\r\n\r\n"),
    ] {
        let mut stream = TcpStream::connect(&addr).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let _ = read_until_closed(&mut stream, Duration::from_secs(2)).await;
    }
    // The exporter does fetch: its own configured target, and only it.
    eventually(
        Duration::from_secs(5),
        "the configured target probed",
        || async { (!up.seen().is_empty()).then_some(()) },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        contacted.load(Ordering::SeqCst),
        0,
        "the bait was contacted"
    );
}
