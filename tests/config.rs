//! Config loading against the fixtures in `tests/fixtures/config/`.
//!
//! - every `good/*.yaml` must load;
//! - every `bad/*.yaml` must fail, and each line of its `.expected` twin must
//!   appear in the error text (lines include the `file:LINE:COL:` prefix);
//! - each line of an optional `.forbidden` twin must NOT appear (secrets),
//!   neither in the compact text nor in the annotated one that echoes the
//!   offending lines;
//! - the annotated form keeps every compact issue line and adds a snippet
//!   under each (insta snapshots pin a few renderings).
//!
//! `env-expansion.yaml` uses `CARGO_PKG_*`, which cargo sets when it runs tests.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use upstream_exporter::config::{
    Config, ConfigError, ProberConfig, Secret, StatuspageConfig, TargetConfig,
};

fn fixture_dir(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/config")
        .join(kind)
}

fn yaml_files(kind: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixture_dir(kind))
        .expect("fixture dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

/// Non-empty lines of a twin file (`.expected`, `.forbidden`).
fn twin_lines(yaml: &Path, ext: &str) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(yaml.with_extension(ext)).ok()?;
    Some(
        text.lines()
            .map(str::trim_end)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect(),
    )
}

fn load_good(name: &str) -> Config {
    let path = fixture_dir("good").join(name);
    Config::load(&path).unwrap_or_else(|e| panic!("{name} should load:\n{e}"))
}

fn target<'a>(config: &'a Config, name: &str) -> &'a TargetConfig {
    config
        .targets
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no target {name}"))
}

fn header<'a>(t: &'a TargetConfig, name: &str) -> Option<&'a str> {
    t.headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.expose())
}

fn statuspage(t: &TargetConfig) -> &StatuspageConfig {
    match &t.prober {
        ProberConfig::Statuspage(c) => c,
        other => panic!("{}: not a statuspage target: {other:?}", t.name),
    }
}

fn statuspage_url(t: &TargetConfig) -> &str {
    statuspage(t).url.as_str()
}

#[test]
fn every_good_fixture_loads() {
    let files = yaml_files("good");
    assert!(files.len() >= 5, "expected at least 5 good fixtures");
    for path in files {
        if let Err(e) = Config::load(&path) {
            panic!("{} should load, got:\n{e}", path.display());
        }
    }
}

#[test]
fn every_bad_fixture_fails_with_its_expected_message() {
    let files = yaml_files("bad");
    assert!(files.len() >= 15, "expected at least 15 bad fixtures");
    let mut failures = Vec::new();
    for path in files {
        let expected = twin_lines(&path, "expected")
            .unwrap_or_else(|| panic!("{} has no .expected twin", path.display()));
        assert!(
            !expected.is_empty(),
            "{} .expected is empty",
            path.display()
        );
        let err = match Config::load(&path) {
            Ok(_) => {
                failures.push(format!("{} loaded but should fail", path.display()));
                continue;
            }
            Err(e) => e,
        };
        let text = err.to_string();
        for want in &expected {
            if !text.contains(want.as_str()) {
                failures.push(format!(
                    "{}:\n  want: {want}\n  got:  {}",
                    path.display(),
                    text.replace('\n', "\n        ")
                ));
            }
        }
        for secret in twin_lines(&path, "forbidden").unwrap_or_default() {
            let debug = format!("{err:?}");
            if text.contains(&secret) || debug.contains(&secret) {
                failures.push(format!(
                    "{}: error leaks `{secret}`: {text}",
                    path.display()
                ));
            }
        }
        // Every issue line has the `path:line:col: message` shape.
        let prefix = format!("{}:", path.display());
        for line in text.lines() {
            assert!(line.starts_with(&prefix), "bad line shape: {line}");
        }
        assert!(err.issues().iter().all(|i| i.line > 0 && i.column > 0));
        failures.extend(check_annotated(&path, &err, &text));
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// The annotated form of a bad fixture's error: the compact issue lines
/// in order, each followed by its line of the file (when the file has it)
/// and a caret line; no forbidden text anywhere.
fn check_annotated(path: &Path, err: &ConfigError, compact: &str) -> Vec<String> {
    let mut failures = Vec::new();
    let annotated = err.annotated().to_string();
    let prefix = format!("{}:", path.display());
    let issue_lines: Vec<&str> = annotated
        .lines()
        .filter(|l| l.starts_with(&prefix))
        .collect();
    if issue_lines != compact.lines().collect::<Vec<_>>() {
        failures.push(format!(
            "{}: annotated issue lines differ from the compact ones:\n{annotated}",
            path.display()
        ));
    }
    let file_lines = std::fs::read_to_string(path).map_or(0, |t| t.lines().count());
    let with_snippet = err
        .issues()
        .iter()
        .filter(|i| i.line as usize <= file_lines)
        .count();
    let carets = annotated
        .lines()
        .filter(|l| l.trim_start().starts_with('|') && l.contains('^'))
        .count();
    if carets != with_snippet {
        failures.push(format!(
            "{}: {with_snippet} issues in the file but {carets} caret lines:\n{annotated}",
            path.display()
        ));
    }
    for secret in twin_lines(path, "forbidden").unwrap_or_default() {
        if annotated.contains(&secret) {
            failures.push(format!(
                "{}: annotated error echoes `{secret}`:\n{annotated}",
                path.display()
            ));
        }
    }
    failures
}

/// The annotated error of a bad fixture, loaded under its bare file name
/// so the snapshot does not depend on where the repository is.
fn annotated_fixture(name: &str) -> String {
    let bytes = std::fs::read(fixture_dir("bad").join(name)).expect("fixture");
    let err = Config::from_bytes(&bytes, Path::new(name)).expect_err("bad fixture loads");
    err.annotated().to_string()
}

#[test]
fn caret_rendering_of_a_bad_value() {
    insta::assert_snapshot!(annotated_fixture("bad-duration.yaml"));
}

#[test]
fn caret_rendering_of_every_issue_in_a_file() {
    insta::assert_snapshot!(annotated_fixture("many-issues.yaml"));
}

#[test]
fn caret_rendering_never_echoes_secrets() {
    insta::assert_snapshot!(annotated_fixture("credentials-twice.yaml"));
}

#[test]
fn caret_rendering_of_a_yaml_syntax_error_and_unknown_key() {
    let text = format!(
        "{}\n{}",
        annotated_fixture("yaml-syntax.yaml"),
        annotated_fixture("unknown-target-key.yaml")
    );
    insta::assert_snapshot!(text);
}

#[test]
fn minimal_gets_builtin_defaults() {
    let config = load_good("minimal.yaml");
    assert_eq!(config.concurrency, 64);
    assert_eq!(config.per_host_concurrency, 4);
    assert_eq!(config.targets.len(), 1);
    let t = &config.targets[0];
    assert_eq!(t.name, "github");
    assert!(t.labels.is_empty());
    assert_eq!(t.interval, Duration::from_secs(60));
    assert_eq!(t.timeout, Duration::from_secs(10));
    assert_eq!(t.retries, 2);
    assert_eq!(t.backoff.initial, Duration::from_millis(500));
    assert_eq!(t.backoff.max, Duration::from_secs(5));
    assert_eq!(t.max_body_size, 4 * 1024 * 1024);
    assert_eq!(
        *t.user_agent,
        format!("upstream-exporter/{}", env!("CARGO_PKG_VERSION"))
    );
    assert!(t.headers.is_empty());
    assert_eq!(t.tls, Default::default());
    assert!(t.proxy_url.is_none());
    assert_eq!(t.stale_after, Duration::from_secs(300));
    assert_eq!(
        statuspage_url(t),
        "https://www.githubstatus.com/api/v2/summary.json"
    );
    let sp = statuspage(t);
    assert_eq!(sp.max_components, 1000);
    assert!(sp.components.allows("any", "Anything"));
}

/// Targets with the same TLS block and user agent share one copy of each
/// (a config of 10,000 targets would otherwise hold 10,000 equal copies);
/// a target whose settings differ gets its own.
#[test]
fn equal_tls_and_user_agents_are_shared_between_targets() {
    let yaml = "\
defaults:
  user_agent: shared-agent
targets:
  - name: a
    statuspage: {url: https://a.example}
  - name: b
    statuspage: {url: https://b.example}
  - name: c
    user_agent: own-agent
    tls: {server_name: c.internal}
    statuspage: {url: https://c.example}
";
    let config = Config::from_bytes(yaml.as_bytes(), Path::new("shared.yaml"))
        .unwrap_or_else(|e| panic!("{e}"));
    let (a, b, c) = (
        target(&config, "a"),
        target(&config, "b"),
        target(&config, "c"),
    );
    assert!(
        Arc::ptr_eq(&a.tls, &b.tls),
        "a and b have equal TLS settings"
    );
    assert!(Arc::ptr_eq(&a.user_agent, &b.user_agent));
    assert_eq!(&*a.user_agent, "shared-agent");
    assert!(!Arc::ptr_eq(&a.tls, &c.tls));
    assert_eq!(c.tls.server_name.as_deref(), Some("c.internal"));
    assert_eq!(a.tls.server_name, None);
    assert_eq!(&*c.user_agent, "own-agent");
}

/// Every target holds one of these for its life: at 10,000 targets each
/// 100 bytes is a megabyte of the 64 MiB goal. 568 bytes before the `http`
/// block was boxed and the TLS block and user agent shared.
#[test]
fn target_config_stays_small() {
    let size = std::mem::size_of::<TargetConfig>();
    assert!(size <= 400, "TargetConfig is {size} bytes");
}

#[test]
fn repository_example_config_loads() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("exporter.yaml");
    let config = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert!(!config.targets.is_empty());
}

#[test]
fn empty_target_list_is_allowed() {
    assert!(load_good("empty-targets.yaml").targets.is_empty());
}

#[test]
fn full_config_sets_every_field() {
    let config = load_good("full.yaml");
    assert_eq!(config.concurrency, 32);
    assert_eq!(config.per_host_concurrency, 2);
    let dir = fixture_dir("good");

    let gh = target(&config, "github");
    assert_eq!(
        gh.labels,
        vec![
            ("team".to_owned(), "dev".to_owned()),
            ("tier".to_owned(), "1".to_owned())
        ]
    );
    assert_eq!(gh.interval, Duration::from_secs(90));
    assert_eq!(gh.timeout, Duration::from_secs(15));
    assert_eq!(gh.retries, 1);
    assert_eq!(gh.backoff.initial, Duration::from_secs(1));
    assert_eq!(gh.backoff.max, Duration::from_secs(10));
    assert_eq!(gh.max_body_size, 1_048_576);
    assert_eq!(&*gh.user_agent, "github-probe");
    assert_eq!(header(gh, "X-Team"), Some("platform"));
    assert_eq!(header(gh, "X-Request-Source"), Some("upstream-exporter"));
    assert_eq!(header(gh, "X-Api-Key"), Some("hdr-S3cret-value"));
    assert_eq!(header(gh, "Authorization"), Some("Bearer gh-B3arer-S3cret"));
    // TLS: own ca_file and server_name, client pair inherited from defaults,
    // paths relative to the config file's directory.
    assert_eq!(gh.tls.ca_file, Some(dir.join("tls/ca.pem")));
    assert_eq!(gh.tls.cert_file, Some(dir.join("tls/client.pem")));
    assert_eq!(gh.tls.key_file, Some(dir.join("tls/client-key.pem")));
    assert_eq!(gh.tls.server_name.as_deref(), Some("www.githubstatus.com"));
    assert!(gh.tls.insecure_skip_verify);
    assert_eq!(
        gh.proxy_url.as_ref().map(Secret::expose),
        Some("https://proxyuser:Pr0xy-S3cret@proxy.example.com:8443")
    );
    assert_eq!(gh.stale_after, Duration::from_secs(600));
    assert_eq!(
        statuspage_url(gh),
        "https://www.githubstatus.com/api/v2/summary.json"
    );
    let sp = statuspage(gh);
    assert_eq!(sp.max_components, 50);
    assert!(sp.components.allows("x", "Git Operations"));
    assert!(sp.components.allows("brv1bkgrwx7q", "API Requests"));
    assert!(!sp.components.allows("y", "API Requests"));
    assert!(!sp.components.allows("z", "Visit www.githubstatus.com"));

    // `openai` takes everything from `defaults:`.
    let oa = target(&config, "openai");
    assert_eq!(oa.interval, Duration::from_secs(120));
    assert_eq!(oa.timeout, Duration::from_secs(20));
    assert_eq!(oa.retries, 3);
    assert_eq!(oa.backoff.initial, Duration::from_millis(250));
    assert_eq!(oa.backoff.max, Duration::from_secs(4));
    assert_eq!(oa.max_body_size, 8 * 1024 * 1024);
    assert_eq!(&*oa.user_agent, "acme-monitoring/1.0");
    assert_eq!(header(oa, "X-Team"), Some("sre"));
    assert_eq!(oa.tls.server_name.as_deref(), Some("status.internal"));
    assert!(!oa.tls.insecure_skip_verify);
    assert_eq!(
        oa.proxy_url.as_ref().map(Secret::expose),
        Some("http://proxy.internal:3128")
    );
    assert_eq!(oa.stale_after, Duration::from_secs(900));
    // URL userinfo is moved into a basic-auth header.
    assert_eq!(
        statuspage_url(oa),
        "https://status.openai.com/api/v2/summary.json"
    );
    assert_eq!(
        header(oa, "Authorization"),
        Some("Basic bW9uaXRvcjpVcmwtUzNjcmV0")
    );
}

#[test]
fn target_fields_override_defaults() {
    let config = load_good("defaults-overridden.yaml");
    let a = target(&config, "inherits");
    assert_eq!(a.interval, Duration::from_secs(30));
    assert_eq!(a.timeout, Duration::from_secs(5));
    assert_eq!(a.retries, 0);
    assert_eq!(a.backoff.initial, Duration::from_millis(100));
    assert_eq!(a.backoff.max, Duration::from_secs(1));
    assert_eq!(a.max_body_size, 512 * 1024);
    assert_eq!(a.stale_after, Duration::from_secs(180));
    assert_eq!(header(a, "X-Shared"), Some("from-defaults"));
    assert_eq!(header(a, "X-Override"), Some("from-defaults"));

    let b = target(&config, "overrides");
    assert_eq!(b.interval, Duration::from_secs(300));
    assert_eq!(b.timeout, Duration::from_secs(60));
    assert_eq!(b.retries, 4);
    // Only `max` given: `initial` still comes from defaults.
    assert_eq!(b.backoff.initial, Duration::from_millis(100));
    assert_eq!(b.backoff.max, Duration::from_secs(30));
    assert_eq!(b.max_body_size, 100_000);
    assert_eq!(b.stale_after, Duration::from_secs(3600));
    assert_eq!(header(b, "X-Shared"), Some("from-defaults"));
    // Header names are case-insensitive: the target's replaces the default.
    assert_eq!(header(b, "X-Override"), Some("from-target"));
    assert_eq!(b.headers.len(), 2);
    // A URL ending in .json is used as is.
    assert_eq!(statuspage_url(b), "https://b.example.com/status.json");
}

#[test]
fn environment_variables_are_expanded() {
    let config = load_good("env-expansion.yaml");
    let name = std::env::var("CARGO_PKG_NAME").expect("run through cargo");
    let version = std::env::var("CARGO_PKG_VERSION").expect("run through cargo");
    let t = &config.targets[0];
    assert_eq!(t.name, name);
    assert_eq!(
        t.labels,
        vec![
            ("price".to_owned(), "$5".to_owned()),
            ("version".to_owned(), format!("v{version}")),
        ]
    );
    assert_eq!(header(t, "X-Version"), Some(version.as_str()));
    assert_eq!(
        statuspage_url(t),
        format!("https://{name}.example.com/api/v2/summary.json")
    );
    let sp = statuspage(t);
    let sources: Vec<&str> = sp
        .components
        .exclude
        .iter()
        .map(|m| m.source.as_str())
        .collect();
    assert_eq!(sources, ["^Visit$", "^Status$"]);
}

#[test]
fn bearer_token_file_is_read_relative_to_the_config() {
    let config = load_good("bearer-token-file.yaml");
    let t = &config.targets[0];
    assert_eq!(
        header(t, "Authorization"),
        Some("Bearer token-from-file-XYZ")
    );
    assert!(!format!("{config:?}").contains("token-from-file-XYZ"));
}

#[test]
fn anchors_and_json_urls() {
    let config = load_good("json-url-and-anchors.yaml");
    assert_eq!(
        statuspage_url(&config.targets[0]),
        "http://127.0.0.1:8080/proxy/api/v2/summary.json"
    );
    assert_eq!(config.targets[0].labels, config.targets[1].labels);
    assert_eq!(config.targets[1].name, "with.dots:and-dashes_0");
}

#[test]
fn secrets_print_as_placeholder() {
    let s = Secret::new("hunter2");
    assert_eq!(format!("{s:?}"), "<secret>");
    assert_eq!(format!("{s}"), "<secret>");
    assert_eq!(s.expose(), "hunter2");
}

#[test]
fn loaded_config_debug_has_no_secrets() {
    let config = load_good("full.yaml");
    let debug = format!("{config:?}");
    for planted in [
        "hdr-S3cret-value",
        "gh-B3arer-S3cret",
        "Pr0xy-S3cret",
        "Url-S3cret",
        // base64 of `monitor:Url-S3cret`
        "bW9uaXRvcjpVcmwtUzNjcmV0",
    ] {
        assert!(!debug.contains(planted), "Debug leaks {planted}: {debug}");
    }
    assert!(debug.contains("<secret>"));
}

#[test]
fn a_bad_value_in_defaults_is_reported_once() {
    let path = fixture_dir("bad").join("timeout-from-defaults.yaml");
    let err = Config::load(&path).unwrap_err();
    assert_eq!(err.issues().len(), 1, "{err}");
    assert_eq!((err.issues()[0].line, err.issues()[0].column), (3, 12));
}

#[test]
fn all_issues_are_collected() {
    let path = fixture_dir("bad").join("many-issues.yaml");
    let err = Config::load(&path).unwrap_err();
    assert_eq!(err.issues().len(), 5, "{err}");
    assert_eq!(err.to_string().lines().count(), 5);
}

#[test]
fn unreadable_file_is_an_io_error() {
    let path = fixture_dir("bad").join("does-not-exist.yaml");
    let err: ConfigError = Config::load(&path).unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("{}: cannot read: ", path.display())),
        "{text}"
    );
    assert_eq!(err.path(), path);
    assert_eq!(err.issues().len(), 1);
    assert_eq!(err.issues()[0].line, 0);
}

#[test]
fn from_bytes_accepts_a_bom_and_rejects_other_encodings() {
    let path = Path::new("inline.yaml");
    let ok = Config::from_bytes(
        b"\xEF\xBB\xBFtargets:\n  - name: a\n    statuspage: {url: https://a.example}\n",
        path,
    )
    .unwrap();
    assert_eq!(ok.targets[0].name, "a");

    let err = Config::from_bytes(b"\xFF\xFEt\0a\0", path).unwrap_err();
    assert!(err.to_string().contains("UTF-16"), "{err}");

    let err = Config::from_bytes(b"targets: []\nx: \"\xC3\x28\"\n", path).unwrap_err();
    assert_eq!(
        err.to_string(),
        "inline.yaml:2:5: the file is not valid UTF-8 here: save it as UTF-8"
    );
}

#[test]
fn odd_inputs_never_panic() {
    let path = Path::new("fuzz.yaml");
    let inputs: [&[u8]; 14] = [
        b"",
        b"~",
        b"42",
        b"[]",
        b"targets:",
        b"targets: ~",
        b"targets: [~]",
        b"targets: [[]]",
        b"targets:\n  - name: ''\n    statuspage: ~\n",
        b"targets:\n  - name: a\n    statuspage: {url: 'http://'}\n",
        b"targets:\n  - name: a\n    statuspage: {url: 'https://[::1'}\n",
        b"targets:\n  - name: a\n    interval: 99999999999999999999w\n    statuspage: {url: 'https://a'}\n",
        b"a: &a [*a]",
        b"targets:\n  - name: a\n    labels: {x: }\n    statuspage: {url: 'https://a'}\n",
    ];
    for input in inputs {
        let result = Config::from_bytes(input, path);
        if let Err(e) = &result {
            assert!(!e.issues().is_empty());
            assert!(!e.to_string().is_empty());
        }
    }
}

#[test]
fn url_credentials_never_reach_messages() {
    for secret_url in [
        "https://u:Hidden-Pass@exa mple.com/",
        "ftp://u:Hidden-Pass@example.com/",
        "u:Hidden-Pass@example.com",
    ] {
        let yaml = format!("targets:\n  - name: a\n    statuspage: {{url: '{secret_url}'}}\n");
        let err = Config::from_bytes(yaml.as_bytes(), Path::new("c.yaml")).unwrap_err();
        let text = err.to_string();
        assert!(!text.contains("Hidden-Pass"), "{text}");
        assert!(text.contains("***@"), "{text}");
        assert!(text.starts_with("c.yaml:3:23: "), "{text}");
    }
}

/// The URL `upstream_target_info` shows for a target: the one fetched.
fn shown_url(config: &Config, name: &str) -> String {
    target(config, name).prober.display_url()
}

#[test]
fn every_prober_block_loads_with_its_settings() {
    use upstream_exporter::probe::ProberKind;
    use upstream_exporter::probe::http_check::StatusRange;
    use upstream_exporter::probe::json::{LabelSource, MetricKind};

    let config = load_good("every-prober.yaml");
    assert_eq!(config.min_interval_per_host, Duration::from_secs(1));
    let kinds: Vec<ProberKind> = config.targets.iter().map(|t| t.kind()).collect();
    for kind in [
        ProberKind::Statuspage,
        ProberKind::Statusio,
        ProberKind::Instatus,
        ProberKind::Cachet,
        ProberKind::Slack,
        ProberKind::GoogleCloud,
        ProberKind::Heroku,
        ProberKind::Salesforce,
        ProberKind::Http,
        ProberKind::Json,
    ] {
        assert!(kinds.contains(&kind), "no {kind} target");
    }

    // The URL each prober fetches, with the vendor's default base URL
    // where `url:` is not given; no query string, no credentials.
    for (name, url) in [
        ("github", "https://www.githubstatus.com/api/v2/summary.json"),
        (
            "docker",
            "https://api.status.io/1.0/status/533c6539221ae15e3f000031",
        ),
        (
            "docker-mirror",
            "http://127.0.0.1:8080/statusio/1.0/status/abc%2Fdef",
        ),
        ("instatus", "https://status.example.com/summary.json"),
        ("cachet", "https://cachet.example.com/api/v1/components"),
        ("slack", "https://slack-status.com/api/v2.0.0/current"),
        (
            "slack-mirror",
            "https://mirror.example.com/slack/api/v2.0.0/current",
        ),
        ("gcp", "https://status.cloud.google.com/incidents.json"),
        ("heroku", "https://status.heroku.com/api/v4/current-status"),
        (
            "salesforce",
            "https://api.status.salesforce.com/v1/instances/status/preview",
        ),
        ("payments-health", "https://payments.example.com/healthz"),
        ("generate-204", "https://www.google.com/generate_204"),
        ("queue", "http://queue.example.com/stats"),
    ] {
        assert_eq!(shown_url(&config, name), url, "{name}");
    }

    let ProberConfig::Statusio(docker) = &target(&config, "docker").prober else {
        panic!("docker is statusio");
    };
    assert_eq!(docker.page_id, "533c6539221ae15e3f000031");
    assert_eq!(docker.max_components, 200);
    assert!(!docker.components.allows("x", "Docs"));
    assert!(docker.components.allows("x", "Hub"));

    let ProberConfig::Instatus(instatus) = &target(&config, "instatus").prober else {
        panic!("instatus");
    };
    assert_eq!(instatus.max_components, 1000);
    assert!(instatus.components.allows("x", "API gateway"));
    assert!(!instatus.components.allows("x", "Website"));

    // URL userinfo becomes basic auth and leaves the URL.
    let mirror = target(&config, "slack-mirror");
    assert_eq!(
        header(mirror, "Authorization"),
        Some("Basic dXNlcjpTbDRjay1TM2NyZXQ=")
    );
    assert!(!format!("{mirror:?}").contains("Sl4ck-S3cret"));

    let ProberConfig::GoogleCloud(gcp) = &target(&config, "gcp").prober else {
        panic!("gcp");
    };
    assert_eq!(gcp.products, ["Cloud Run", "Google Compute Engine"]);

    let ProberConfig::Salesforce(sf) = &target(&config, "salesforce").prober else {
        panic!("salesforce");
    };
    assert_eq!(sf.max_components, 50);
    assert!(sf.components.allows("NA135", "NA135"));
    assert!(!sf.components.allows("NA1", "NA1"));

    let health = target(&config, "payments-health");
    let ProberConfig::Http(http) = &health.prober else {
        panic!("http");
    };
    assert_eq!(http.method, reqwest::Method::POST);
    assert_eq!(
        http.body.as_ref().map(Secret::expose),
        Some(r#"{"ping": true}"#)
    );
    assert_eq!(
        http.url.as_str(),
        "https://payments.example.com/healthz?verbose=1"
    );
    assert_eq!(
        http.expect.status,
        [
            StatusRange {
                low: 200,
                high: 200
            },
            StatusRange {
                low: 204,
                high: 204
            },
            StatusRange {
                low: 300,
                high: 399
            },
            StatusRange {
                low: 400,
                high: 404
            },
        ]
    );
    assert!(http.expect.body_regex.is_some() && http.expect.body_not_regex.is_some());
    assert_eq!(http.expect.max_latency, Some(Duration::from_secs(2)));
    assert!(!http.follow_redirects);
    assert!(!health.prober.follow_redirects());
    assert_eq!(header(health, "Content-Type"), Some("application/json"));

    let ProberConfig::Http(g204) = &target(&config, "generate-204").prober else {
        panic!("http");
    };
    assert_eq!(
        g204.expect.status,
        [StatusRange {
            low: 204,
            high: 204
        }]
    );
    assert_eq!(g204.method, reqwest::Method::GET);
    assert!(g204.follow_redirects);

    let queue = target(&config, "queue");
    let ProberConfig::Json(json) = &queue.prober else {
        panic!("json");
    };
    // base64 of `monitor:json-S3cret-pass`, read from the password file.
    assert_eq!(
        header(queue, "Authorization"),
        Some("Basic bW9uaXRvcjpqc29uLVMzY3JldC1wYXNz")
    );
    assert_eq!(header(queue, "X-Api-Version"), Some("2"));
    assert!(!format!("{config:?}").contains("json-S3cret-pass"));
    assert_eq!(json.rules.len(), 4);
    let depth = &json.rules[0];
    assert_eq!(depth.name, "queue_depth");
    assert_eq!(depth.help, "Messages waiting per queue");
    assert_eq!(depth.kind, MetricKind::Gauge);
    let label_names: Vec<&str> = depth.labels.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(label_names, ["queue", "source"]);
    assert!(matches!(&depth.labels[0].1, LabelSource::Path(_)));
    assert_eq!(depth.labels[1].1, LabelSource::Static("stats".to_owned()));
    assert_eq!(
        depth.value_map,
        [
            ("ok".to_owned(), 1.0),
            ("degraded".to_owned(), 0.5),
            ("down".to_owned(), 0.0)
        ]
    );
    let processed = &json.rules[2];
    assert_eq!(processed.kind, MetricKind::Counter);
    assert_eq!(processed.family(), "jobs_processed");
    assert_eq!(
        json.rules[3].help,
        "Extracted from a JSON API by upstream-exporter."
    );
}
