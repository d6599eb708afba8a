//! Helpers shared by the integration tests: config from YAML text (through
//! the real loader), one-shot probes through the daemon's own code path, and
//! small local servers on 127.0.0.1.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use upstream_exporter::config::{Config, TargetConfig};
use upstream_exporter::http::HttpClients;
use upstream_exporter::probe::{ProbeError, ProbeSuccess};
use upstream_exporter::runner::{HostLimits, run_probe};

/// Validate YAML text with the real config loader.
pub fn config(yaml: &str) -> Config {
    match Config::from_bytes(yaml.as_bytes(), Path::new("test.yaml")) {
        Ok(c) => c,
        Err(e) => panic!("test config invalid:\n{e}\n---\n{yaml}"),
    }
}

/// The single target of a one-target config.
pub fn target(yaml: &str) -> Arc<TargetConfig> {
    config(yaml).targets[0].clone()
}

/// A statuspage target at `url` with fast retries, for failure tests;
/// `extra` adds target-level YAML lines (indented four spaces).
pub fn statuspage_target(url: &str, extra: &str) -> Arc<TargetConfig> {
    statuspage_target_with(url, extra, "")
}

/// As [`statuspage_target`], with `block` added inside the `statuspage:`
/// block as flow-mapping entries (e.g. `max_components: 10`).
pub fn statuspage_target_with(url: &str, extra: &str, block: &str) -> Arc<TargetConfig> {
    let block = if block.is_empty() {
        String::new()
    } else {
        format!(", {block}")
    };
    target(&format!(
        "defaults:\n  interval: 30s\n  timeout: 3s\n  backoff: {{ initial: 10ms, max: 50ms }}\ntargets:\n  - name: t\n{extra}    statuspage: {{ url: \"{url}\"{block} }}\n"
    ))
}

/// Probe once through the daemon's code path.
pub async fn probe(target: &TargetConfig) -> Result<ProbeSuccess, ProbeError> {
    let clients = HttpClients::new();
    let hosts = HostLimits::new(4);
    run_probe(target, &clients, &hosts).await
}

/// Path of a test fixture copied from ../shared/fixtures/real.
pub fn fixture(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(relative)
}

pub fn fixture_bytes(relative: &str) -> Vec<u8> {
    std::fs::read(fixture(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

/// A plain HTTP client for talking to the exporter under test.
pub fn http_client() -> reqwest::Client {
    let tls = upstream_exporter::http::rustls_config(&Default::default()).expect("tls config");
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .no_proxy()
        .build()
        .expect("client")
}

/// Whether a command exists on PATH.
pub fn have(cmd: &str) -> bool {
    std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {cmd} >/dev/null 2>&1"))
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Skip a test needing `cmd` locally, but fail under CI=true, where a
/// missing tool means the CI script is broken.
pub fn require(cmd: &str) -> bool {
    if have(cmd) {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("`{cmd}` is required under CI=true but not installed (.ci/run installs it)");
    }
    eprintln!("SKIPPED: `{cmd}` not installed");
    false
}

/// `yaml` written to `exporter.yaml` in a fresh temporary directory,
/// which lives as long as the returned guard.
pub fn config_file(yaml: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = dir.path().join("exporter.yaml");
    std::fs::write(&file, yaml).expect("write exporter.yaml");
    (dir, file)
}

/// A free port on 127.0.0.1 (bound then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Run `promtool check metrics` on an exposition body; any complaint fails.
pub fn promtool_check_metrics(body: &str) {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn promtool");
    child
        .stdin
        .take()
        .expect("promtool stdin")
        .write_all(body.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool output");
    let complaints = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && complaints.trim().is_empty(),
        "promtool check metrics complained:\n{complaints}\n---\n{body}"
    );
}
