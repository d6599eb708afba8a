//! Credentials given as files are read again for every request: a token
//! rotated in place (a Kubernetes projected service-account token, a Vault
//! agent's) reaches the upstream at the next probe, without a reload; and a
//! reload after the rotation keeps the target as it was (its counters go
//! on), since its config did not change. The daemon runs in-process against
//! a real upstream on 127.0.0.1.

mod harness;

use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use harness::{Exporter, Reply, Upstream, eventually, summary};

/// Replace `path`'s content the way Kubernetes and Vault agent do: a new
/// file renamed over the old one.
fn rotate(path: &Path, content: &str) {
    let next = path.with_extension("next");
    std::fs::write(&next, content).unwrap();
    std::fs::rename(&next, path).unwrap();
}

fn basic(user: &str, password: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {encoded}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_credential_files_are_sent_without_a_reload() {
    let upstream = Upstream::start(|seen| {
        if seen.path.starts_with("/json") {
            Reply::json(r#"{"depth": 3}"#)
        } else {
            Reply::json(summary(2, "operational"))
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    let password = dir.path().join("password");
    let key = dir.path().join("api-key");
    std::fs::write(&token, "token-one\n").unwrap();
    std::fs::write(&password, "password-one\n").unwrap();
    std::fs::write(&key, "key-one").unwrap();
    let yaml = format!(
        "defaults:\n  interval: 1s\n  timeout: 500ms\n  retries: 0\ntargets:\n\
         \x20 - name: bearer\n    bearer_token_file: \"{token}\"\n    statuspage: {{ url: \"{sp}\" }}\n\
         \x20 - name: basic\n    json:\n      url: \"{json}\"\n      auth: {{ basic: {{ username: monitor, password_file: \"{password}\" }} }}\n      metrics:\n        - {{ name: depth, path: \"$.depth\" }}\n\
         \x20 - name: header\n    headers_file: {{ X-Api-Key: \"{key}\" }}\n    http: {{ url: \"{health}\" }}\n",
        token = token.display(),
        password = password.display(),
        key = key.display(),
        sp = upstream.url("/sp"),
        json = upstream.url("/json"),
        health = upstream.url("/health"),
    );
    let exporter = Exporter::start(&yaml).await;
    let sent = |path: &'static str, header: &'static str, want: String| {
        let upstream = &upstream;
        async move {
            eventually(Duration::from_secs(10), &format!("{header} {want}"), || {
                let found = upstream
                    .seen_path(path)
                    .iter()
                    .rev()
                    .take(1)
                    .any(|s| s.header(header) == Some(want.as_str()));
                async move { found.then_some(()) }
            })
            .await;
        }
    };
    let sp = "/sp/api/v2/summary.json";
    sent(sp, "authorization", "Bearer token-one".into()).await;
    sent("/json", "authorization", basic("monitor", "password-one")).await;
    sent("/health", "x-api-key", "key-one".into()).await;

    rotate(&token, "token-two\n");
    rotate(&password, "password-two\n");
    rotate(&key, "key-two");
    sent(sp, "authorization", "Bearer token-two".into()).await;
    sent("/json", "authorization", basic("monitor", "password-two")).await;
    sent("/health", "x-api-key", "key-two".into()).await;

    // A reload after the rotation: the config is the same, so the target
    // goes on with its counters instead of starting again.
    let before = exporter
        .scrape()
        .await
        .of("upstream_probes_total", "bearer")
        .expect("probes counted");
    assert_eq!(exporter.reload().await.0, 200);
    let after = exporter
        .scrape()
        .await
        .of("upstream_probes_total", "bearer")
        .expect("probes counted");
    assert!(after >= before, "counters went from {before} to {after}");
}
