//! Secrets never leak: a unique value is planted in every place a secret
//! can sit (bearer token and its file, basic password and its file, URL
//! userinfo, URL query token, header values literal, from `${ENV}` and
//! from `headers_file`, proxy credentials literal and from `proxy_url_file`, an invalid URL with credentials, the web config's
//! users), the real binary runs at `--log.level=debug` against local
//! upstreams that fail in several ways (so errors are logged), and then
//! every output is searched for the planted values: stdout and stderr,
//! `/metrics` as text and OpenMetrics, `/`, `/api/v1/targets`,
//! `--config.check`, and the answers and logs of rejected reloads of both
//! config files. Each secret is also shown to have reached its upstream,
//! so the search cannot pass because a secret was never used.

mod harness;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use harness::{Reply, Upstream, eventually, signal};

const BEARER: &str = "pl4nted-bearer-token-71c3";
const BEARER_FILE: &str = "pl4nted-bearer-file-0a9e";
const BASIC_PASSWORD: &str = "pl4nted-basic-password-5d2b";
const PASSWORD_FILE: &str = "pl4nted-password-file-c8f4";
const USERINFO: &str = "pl4nted-userinfo-9e07";
const QUERY_TOKEN: &str = "pl4nted-query-token-4b1d";
const HEADER_VALUE: &str = "pl4nted-header-value-e6a2";
const ENV_VALUE: &str = "pl4nted-env-value-37f8";
const PROXY_PASSWORD: &str = "pl4nted-proxy-password-b5c0";
const HEADER_FILE: &str = "pl4nted-header-file-1d5a";
const PROXY_FILE_PASSWORD: &str = "pl4nted-proxy-file-password-93e4";
const INVALID_URL_PASSWORD: &str = "pl4nted-invalid-url-password-2e6f";
const INVALID_URL_QUERY: &str = "pl4nted-invalid-url-query-8a13";
const WEB_PASSWORD: &str = "pl4nted-web-password-d4e9";
const WEB_WRONG_PASSWORD: &str = "pl4nted-web-wrong-password-61b7";
const WEB_PLAINTEXT: &str = "pl4nted-web-plaintext-f0c2";

/// Every planted value; each must be absent from every output.
const PLANTED: [&str; 16] = [
    BEARER,
    BEARER_FILE,
    BASIC_PASSWORD,
    PASSWORD_FILE,
    USERINFO,
    QUERY_TOKEN,
    HEADER_VALUE,
    ENV_VALUE,
    PROXY_PASSWORD,
    HEADER_FILE,
    PROXY_FILE_PASSWORD,
    INVALID_URL_PASSWORD,
    INVALID_URL_QUERY,
    WEB_PASSWORD,
    WEB_WRONG_PASSWORD,
    WEB_PLAINTEXT,
];

/// Fail if `text` (named `what`) holds a planted value or its base64 form
/// as sent in an `Authorization: Basic` header.
fn assert_clean(what: &str, text: &str, extra: &[&str]) {
    for secret in PLANTED.iter().chain(extra) {
        assert!(
            !text.contains(secret),
            "{what} leaks `{secret}`:\n{}",
            text.lines()
                .filter(|l| l.contains(secret))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

fn b64(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

fn json_rule() -> &'static str {
    "      metrics:\n        - { name: queue_depth, path: \"$.depth\" }"
}

/// A valid config with every kind of secret, aimed at failing upstreams.
fn exporter_yaml(fail: &Upstream, bad_json: &Upstream, dir: &Path, closed: u16) -> String {
    let f = fail.addr;
    let j = bad_json.addr;
    let bearer_file = dir.join("bearer.txt");
    let password_file = dir.join("password.txt");
    let rule = json_rule();
    [
        "defaults: { interval: 1s, timeout: 900ms, retries: 0 }".to_owned(),
        "targets:".to_owned(),
        "  - name: bearer".to_owned(),
        format!("    bearer_token: \"{BEARER}\""),
        format!("    http: {{ url: \"http://{f}/bearer\" }}"),
        "  - name: bearer-file".to_owned(),
        "    json:".to_owned(),
        format!("      url: \"http://{j}/bearer-file\""),
        format!(
            "      auth: {{ bearer_token_file: \"{}\" }}",
            bearer_file.display()
        ),
        rule.to_owned(),
        "  - name: basic".to_owned(),
        "    json:".to_owned(),
        format!("      url: \"http://127.0.0.1:{closed}/basic\""),
        format!("      auth: {{ basic: {{ username: monitor, password: \"{BASIC_PASSWORD}\" }} }}"),
        rule.to_owned(),
        "  - name: basic-file".to_owned(),
        "    json:".to_owned(),
        format!("      url: \"http://{j}/basic-file\""),
        format!(
            "      auth: {{ basic: {{ username: monitor, password_file: \"{}\" }} }}",
            password_file.display()
        ),
        rule.to_owned(),
        "  - name: userinfo".to_owned(),
        format!("    statuspage: {{ url: \"http://monitor:{USERINFO}@{f}/page\" }}"),
        "  - name: query".to_owned(),
        format!("    http: {{ url: \"http://{f}/health?token={QUERY_TOKEN}&x=1\" }}"),
        "  - name: query-refused".to_owned(),
        format!("    http: {{ url: \"http://127.0.0.1:{closed}/health?token={QUERY_TOKEN}\" }}"),
        "  - name: headers".to_owned(),
        format!(
            "    headers: {{ X-Api-Key: \"{HEADER_VALUE}\", X-Env-Key: \"${{PLANTED_SECRET}}\" }}"
        ),
        format!(
            "    headers_file: {{ X-File-Key: \"{}\" }}",
            dir.join("header.txt").display()
        ),
        format!("    http: {{ url: \"http://{f}/headers\" }}"),
        "  - name: ok".to_owned(),
        format!("    headers: {{ X-Api-Key: \"{HEADER_VALUE}\" }}"),
        format!("    http: {{ url: \"http://monitor:{USERINFO}@{f}/ok?token={QUERY_TOKEN}\" }}"),
        "  - name: proxied".to_owned(),
        format!("    proxy_url: \"http://proxyuser:{PROXY_PASSWORD}@127.0.0.1:{closed}\""),
        format!("    http: {{ url: \"http://{f}/proxied\" }}"),
        "  - name: proxied-file".to_owned(),
        format!(
            "    proxy_url_file: \"{}\"",
            dir.join("proxy.txt").display()
        ),
        format!("    http: {{ url: \"http://{f}/proxied-file\" }}"),
    ]
    .join("\n")
        + "\n"
}

/// A config whose only faults are invalid URLs carrying credentials.
fn invalid_yaml() -> String {
    [
        "targets:".to_owned(),
        "  - name: broken".to_owned(),
        format!(
            "    statuspage: {{ url: \"http://monitor:{INVALID_URL_PASSWORD}@status example.com:99999/?token={INVALID_URL_QUERY}\" }}"
        ),
        "  - name: broken-proxy".to_owned(),
        format!(
            "    proxy_url: \"http://u:{INVALID_URL_PASSWORD}@proxy host:1/?k={INVALID_URL_QUERY}\""
        ),
        "    http: { url: \"http://127.0.0.1:9/\" }".to_owned(),
    ]
    .join("\n")
        + "\n"
}

fn web_yaml() -> String {
    format!(
        "basic_auth_users:\n  prometheus: \"{}\"\n",
        bcrypt::hash(WEB_PASSWORD, 4).unwrap()
    )
}

struct Running {
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
    base: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn exporter(config: &Path, web: &Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_upstream-exporter"));
    cmd.arg(format!("--config.file={}", config.display()))
        .arg(format!("--web.config.file={}", web.display()))
        .arg("--log.level=debug")
        .args(extra)
        .env("PLANTED_SECRET", ENV_VALUE)
        .env_remove("HTTPS_PROXY")
        .env_remove("HTTP_PROXY")
        .env_remove("https_proxy")
        .env_remove("http_proxy")
        .env("NO_PROXY", "*");
    cmd
}

fn start(config: &Path, web: &Path, dir: &Path) -> Running {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let stdout = dir.join("stdout.log");
    let stderr = dir.join("stderr.log");
    let child = exporter(config, web, &[])
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    Running {
        child,
        stdout,
        stderr,
        base: format!("http://127.0.0.1:{port}"),
    }
}

fn output_text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planted_secrets_appear_in_no_output() {
    // Fails everything but `/ok`, which answers 200 (a success is logged
    // at debug level with the target's name).
    let fail = Upstream::start(|seen| {
        if seen.path.starts_with("/ok") {
            Reply::status(200)
        } else {
            Reply::status(500)
        }
    })
    .await;
    let bad_json = Upstream::start(|_| Reply::json("this is not JSON")).await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("bearer.txt"), format!("{BEARER_FILE}\n")).unwrap();
    std::fs::write(d.join("password.txt"), PASSWORD_FILE).unwrap();
    std::fs::write(d.join("header.txt"), format!("{HEADER_FILE}\n")).unwrap();
    std::fs::write(
        d.join("proxy.txt"),
        format!("http://proxyuser:{PROXY_FILE_PASSWORD}@127.0.0.1:{closed}\n"),
    )
    .unwrap();
    let config = d.join("exporter.yaml");
    std::fs::write(&config, exporter_yaml(&fail, &bad_json, d, closed)).unwrap();
    let web = d.join("web.yml");
    let web_text = web_yaml();
    std::fs::write(&web, &web_text).unwrap();
    let hash = web_text.split('"').nth(1).unwrap().to_owned();
    let no_hash = [hash.as_str()];

    // --config.check, good and bad.
    let out = exporter(&config, &web, &["--config.check"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", output_text(&out));
    assert_clean("--config.check", &output_text(&out), &no_hash);
    let invalid = d.join("invalid.yaml");
    std::fs::write(&invalid, invalid_yaml()).unwrap();
    let out = exporter(&invalid, &web, &["--config.check"])
        .output()
        .unwrap();
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("invalid.yaml:3:"),
        "the error names the URL: {text}"
    );
    assert!(
        text.contains("invalid.yaml:5:"),
        "and the proxy URL: {text}"
    );
    assert_clean("--config.check of an invalid URL", &text, &no_hash);

    // The daemon, with failing upstreams.
    let running = start(&config, &web, d);
    let client = harness::client();
    let get = |path: &str, accept: &str| {
        client
            .get(format!("{}{path}", running.base))
            .basic_auth("prometheus", Some(WEB_PASSWORD))
            .header("Accept", accept.to_owned())
            .send()
    };
    let probed_twice = eventually(
        Duration::from_secs(20),
        "every target to be probed twice",
        || async {
            let text = get("/metrics", "*/*").await.ok()?.text().await.ok()?;
            let failing = text
                .lines()
                .filter(|l| l.starts_with("upstream_probes_total{"))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .filter(|n| *n >= 2.0)
                .count();
            (failing == 11).then_some(text)
        },
    )
    .await;
    assert_clean("/metrics (text)", &probed_twice, &no_hash);
    let open_metrics = get("/metrics", "application/openmetrics-text; version=1.0.0")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(open_metrics.ends_with("# EOF\n"));
    assert_clean("/metrics (OpenMetrics)", &open_metrics, &no_hash);
    let landing = get("/", "text/html").await.unwrap().text().await.unwrap();
    assert!(landing.contains("query-refused"));
    assert_clean("/", &landing, &no_hash);
    let targets = get("/api/v1/targets", "*/*")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(targets.contains("\"error\""));
    assert_clean("/api/v1/targets", &targets, &no_hash);

    // A wrong web password is refused and not logged.
    let r = client
        .get(format!("{}/metrics", running.base))
        .basic_auth("prometheus", Some(WEB_WRONG_PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // Rejected reloads: the exporter config, then the web config.
    std::fs::write(&config, invalid_yaml()).unwrap();
    let r = client
        .post(format!("{}/-/reload", running.base))
        .basic_auth("prometheus", Some(WEB_PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body = r.text().await.unwrap();
    assert!(body.contains("exporter.yaml:3:"), "{body}");
    assert_clean("the reload error", &body, &no_hash);
    std::fs::write(
        &web,
        format!("basic_auth_users:\n  prometheus: {WEB_PLAINTEXT}\n"),
    )
    .unwrap();
    let r = client
        .post(format!("{}/-/reload", running.base))
        .basic_auth("prometheus", Some(WEB_PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body = r.text().await.unwrap();
    assert!(body.contains("web.yml:2:15:"), "{body}");
    assert_clean("the web config reload error", &body, &no_hash);
    // SIGHUP logs the same rejections.
    signal(running.child.id(), "HUP");
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Every secret was used: it reached its upstream.
    let seen = fail.seen();
    let header = |path: &str, name: &str| {
        seen.iter()
            .find(|s| s.path.starts_with(path))
            .and_then(|s| s.header(name).map(str::to_owned))
            .unwrap_or_else(|| panic!("{path} was not requested with {name}"))
    };
    assert_eq!(
        header("/bearer", "authorization"),
        format!("Bearer {BEARER}")
    );
    assert_eq!(header("/headers", "x-api-key"), HEADER_VALUE);
    assert_eq!(header("/headers", "x-env-key"), ENV_VALUE);
    assert_eq!(header("/headers", "x-file-key"), HEADER_FILE);
    assert_eq!(
        header("/page", "authorization"),
        format!("Basic {}", b64(&format!("monitor:{USERINFO}")))
    );
    assert!(seen.iter().any(|s| s.path.contains(QUERY_TOKEN)));
    assert_eq!(header("/ok", "x-api-key"), HEADER_VALUE);
    let seen_json = bad_json.seen();
    assert!(
        seen_json
            .iter()
            .any(|s| s.header("authorization") == Some(&format!("Bearer {BEARER_FILE}")))
    );
    assert!(seen_json.iter().any(|s| {
        s.header("authorization")
            == Some(&format!(
                "Basic {}",
                b64(&format!("monitor:{PASSWORD_FILE}"))
            ))
    }));

    // Stop, then search the logs, which must hold the failures.
    let mut running = running;
    signal(running.child.id(), "TERM");
    let _ = running.child.wait();
    let stderr = std::fs::read_to_string(&running.stderr).unwrap();
    let stdout = std::fs::read_to_string(&running.stdout).unwrap();
    for evidence in [
        "level=debug msg=\"probe succeeded\" target=ok",
        "probe failed",
        "target=basic",
        "target=proxied",
        "target=proxied-file reason=connect",
        "target=query-refused",
        "config reload failed",
        "web config reload failed",
        "SIGHUP",
    ] {
        assert!(
            stderr.contains(evidence),
            "the log lacks `{evidence}`:\n{stderr}"
        );
    }
    assert_clean("stderr", &stderr, &no_hash);
    assert_clean("stdout", &stdout, &no_hash);
    // Base64 forms, as they would appear if an Authorization header were logged.
    for (user, password) in [
        ("monitor", USERINFO),
        ("monitor", BASIC_PASSWORD),
        ("monitor", PASSWORD_FILE),
        ("prometheus", WEB_PASSWORD),
    ] {
        let encoded = b64(&format!("{user}:{password}"));
        for (what, text) in [
            ("stderr", &stderr),
            ("/metrics", &probed_twice),
            ("/api/v1/targets", &targets),
        ] {
            assert!(
                !text.contains(&encoded),
                "{what} leaks base64 of {password}"
            );
        }
    }
}
