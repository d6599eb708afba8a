//! Hot reload against real local servers: `POST /-/reload` and SIGHUP with
//! good and bad configs, add/remove/change of targets with their series
//! appearing and disappearing at once while unchanged targets keep their
//! counters, a Kubernetes-style `..data` symlink swap caught by the file
//! poll, and 200 reloads in a row with tasks (in-process) and open file
//! descriptors (the real binary) staying flat.

mod harness;

use std::path::Path;
use std::time::{Duration, Instant};

use harness::{Binary, Exporter, Reply, Upstream, eventually, summary};
use upstream_exporter::daemon::Parts;

fn target(name: &str, url: &str, extra: &str) -> String {
    format!("  - name: {name}\n{extra}    statuspage: {{ url: \"{url}\" }}\n")
}

fn config(targets: &[String]) -> String {
    format!(
        "defaults:\n  interval: 1s\n  timeout: 800ms\n  retries: 0\ntargets:\n{}",
        targets.concat()
    )
}

/// The file poll every 250 ms instead of the default.
fn polling_fast() -> Parts {
    Parts {
        config_poll_interval: Duration::from_millis(250),
        ..Parts::default()
    }
}

/// Whether `/metrics` lists target `name`.
async fn lists(exporter: &Exporter, name: &str) -> bool {
    exporter
        .scrape()
        .await
        .of("upstream_target_info", name)
        .is_some()
}

async fn operational_upstream() -> Upstream {
    Upstream::start(|_| Reply::json(summary(2, "operational"))).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_reload_reconciles_by_diff_and_rejects_bad_configs_whole() {
    let up = operational_upstream().await;
    let v1 = config(&[
        target("a", &up.url("/a.json"), ""),
        target("b", &up.url("/b.json"), ""),
        target("c", &up.url("/c.json"), ""),
    ]);
    let exporter = Exporter::start(&v1).await;
    let before = eventually(Duration::from_secs(6), "a and c probed 3 times", || async {
        let s = exporter.scrape().await;
        (s.of("upstream_probes_total", "a") >= Some(3.0)
            && s.of("upstream_probes_total", "c") >= Some(3.0)
            && s.of("upstream_probes_total", "b") >= Some(1.0))
        .then_some(s)
    })
    .await;
    let reloaded_at = before
        .get(
            "upstream_exporter_config_last_reload_success_timestamp_seconds",
            &[],
        )
        .unwrap();

    // a unchanged, b removed, c changed (another URL), d added.
    let v2 = config(&[
        target("a", &up.url("/a.json"), ""),
        target("c", &up.url("/c2.json"), ""),
        target("d", &up.url("/d.json"), ""),
    ]);
    exporter.write_config(&v2);
    let (status, body) = exporter.reload().await;
    assert_eq!(status, 200, "{body}");
    let after = exporter.scrape().await;
    assert!(
        !after.mentions_target("b"),
        "b's series stayed:\n{:?}",
        after.families_of("b")
    );
    assert!(
        after.of("upstream_target_info", "d").is_some(),
        "d did not appear at once"
    );
    assert_eq!(after.get("upstream_exporter_targets", &[]), Some(3.0));
    assert!(
        after.of("upstream_probes_total", "a") >= before.of("upstream_probes_total", "a"),
        "a's counters were reset"
    );
    assert!(
        after.of("upstream_probes_total", "c").unwrap_or(0.0) <= 1.0,
        "c changed and should have restarted"
    );
    assert_eq!(
        after.get("upstream_exporter_config_last_reload_successful", &[]),
        Some(1.0)
    );
    assert!(
        after.get(
            "upstream_exporter_config_last_reload_success_timestamp_seconds",
            &[]
        ) >= Some(reloaded_at)
    );
    eventually(
        Duration::from_secs(3),
        "the first probes of d and the new c",
        || async {
            let s = exporter.scrape().await;
            (s.of("upstream_probe_success", "d") == Some(1.0)
                && s.of("upstream_probe_success", "c") == Some(1.0)
                && !up.seen_path("/c2.json").is_empty())
            .then_some(())
        },
    )
    .await;

    // A bad config: 400 with file:line:column, gauge 0, old targets run on.
    let bad = format!(
        "{v2}  - name: e\n    interval: 1 parsec\n    statuspage: {{ url: \"{}\" }}\n",
        up.url("/e.json")
    );
    exporter.write_config(&bad);
    let (status, body) = exporter.reload().await;
    assert_eq!(status, 400, "{body}");
    let position = format!("{}:13:15", exporter.config_path.display());
    assert!(body.contains(&position), "no line:column in {body:?}");
    assert!(body.contains("interval"), "{body}");
    let rejected = exporter.scrape().await;
    assert_eq!(
        rejected.get("upstream_exporter_config_last_reload_successful", &[]),
        Some(0.0)
    );
    assert_eq!(
        rejected.get(
            "upstream_exporter_config_last_reload_success_timestamp_seconds",
            &[]
        ),
        after.get(
            "upstream_exporter_config_last_reload_success_timestamp_seconds",
            &[]
        )
    );
    assert!(!rejected.mentions_target("e"));
    let a_then = rejected.of("upstream_probes_total", "a").unwrap();
    eventually(Duration::from_secs(3), "a to keep probing", || async {
        (exporter.scrape().await.of("upstream_probes_total", "a") > Some(a_then)).then_some(())
    })
    .await;

    // Other methods are refused.
    for method in [
        reqwest::Method::GET,
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
    ] {
        let r = exporter
            .client
            .request(method.clone(), format!("{}/-/reload", exporter.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 405, "{method}");
        assert_eq!(r.headers()["allow"], "POST");
    }
    exporter.stop().await;
}

/// Kubernetes mounts a ConfigMap as `exporter.yaml -> ..data/exporter.yaml`
/// and `..data -> ..<timestamp>`, and updates it by renaming a new `..data`
/// symlink over the old one. The file poll must see that.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configmap_symlink_swap_is_picked_up_by_the_poll() {
    use std::os::unix::fs::symlink;
    let up = operational_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let write_version = |name: &str, yaml: &str| {
        std::fs::create_dir(root.join(name)).unwrap();
        std::fs::write(root.join(name).join("exporter.yaml"), yaml).unwrap();
    };
    write_version(
        "..2026_01_01_00_00_00.1",
        &config(&[target("a", &up.url("/a.json"), "")]),
    );
    symlink("..2026_01_01_00_00_00.1", root.join("..data")).unwrap();
    symlink("..data/exporter.yaml", root.join("exporter.yaml")).unwrap();
    let config_path = root.join("exporter.yaml");
    let exporter = Exporter::start_at(dir, config_path, polling_fast()).await;
    let root = exporter.dir.path().to_path_buf();
    assert!(lists(&exporter, "a").await);

    // The atomic swap, exactly as the kubelet does it.
    std::fs::create_dir(root.join("..2026_01_01_00_01_00.2")).unwrap();
    std::fs::write(
        root.join("..2026_01_01_00_01_00.2/exporter.yaml"),
        config(&[
            target("a", &up.url("/a.json"), ""),
            target("b", &up.url("/b.json"), ""),
        ]),
    )
    .unwrap();
    symlink("..2026_01_01_00_01_00.2", root.join("..data_tmp")).unwrap();
    std::fs::rename(root.join("..data_tmp"), root.join("..data")).unwrap();
    std::fs::remove_dir_all(root.join("..2026_01_01_00_00_00.1")).unwrap();
    let swapped = Instant::now();
    eventually(
        Duration::from_secs(3),
        "target b after the swap",
        || async { lists(&exporter, "b").await.then_some(()) },
    )
    .await;
    // The poll waits for the content to hold still before loading it.
    assert!(
        swapped.elapsed() >= Duration::from_millis(400),
        "{:?}",
        swapped.elapsed()
    );
    let s = exporter.scrape().await;
    assert_eq!(
        s.get("upstream_exporter_config_last_reload_successful", &[]),
        Some(1.0)
    );
    assert!(s.of("upstream_target_info", "a").is_some());
    exporter.stop().await;
}

/// A reload asked for while the file is briefly gone (a deploy tool
/// deleting and rewriting it) fails; when the same content comes back, the
/// poll loads it and the gauge is 1 again, without another reload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_of_a_missing_file_is_undone_by_the_poll_when_it_returns() {
    let up = operational_upstream().await;
    let exporter = Exporter::start_with(
        &config(&[target("a", &up.url("/a.json"), "")]),
        polling_fast(),
    )
    .await;
    let aside = exporter.config_path.with_extension("aside");
    std::fs::rename(&exporter.config_path, &aside).unwrap();
    let (status, body) = exporter.reload().await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("cannot read"), "{body}");
    let gauge = |s: &harness::Scrape| s.get("upstream_exporter_config_last_reload_successful", &[]);
    assert_eq!(gauge(&exporter.scrape().await), Some(0.0));
    std::fs::rename(&aside, &exporter.config_path).unwrap();
    eventually(
        Duration::from_secs(3),
        "the returned file loaded by the poll",
        || async { (gauge(&exporter.scrape().await) == Some(1.0)).then_some(()) },
    )
    .await;
    assert!(lists(&exporter, "a").await);
    exporter.stop().await;
}

fn write(path: &Path, yaml: &str) {
    std::fs::write(path, yaml).unwrap();
}

/// SIGHUP reloads the real binary; a bad config is rejected, keeps the old
/// targets, and is logged once with its line and column (the file poll
/// does not report the same bad content again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_and_a_bad_config_is_logged_once() {
    let up = operational_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("exporter.yaml");
    write(&path, &config(&[target("a", &up.url("/a.json"), "")]));
    let binary = Binary::start(&path, &[]);
    let client = harness::client();
    binary.wait_healthy(&client).await;

    write(
        &path,
        &config(&[
            target("a", &up.url("/a.json"), ""),
            target("b", &up.url("/b.json"), ""),
        ]),
    );
    harness::signal(binary.pid(), "HUP");
    eventually(Duration::from_secs(2), "b after SIGHUP", || async {
        binary
            .scrape(&client)
            .await
            .of("upstream_target_info", "b")
            .is_some()
            .then_some(())
    })
    .await;
    assert!(binary.log_text().contains("SIGHUP received"));

    write(&path, "targets:\n  - name: a\n    interval: soon\n");
    harness::signal(binary.pid(), "HUP");
    let s = eventually(
        Duration::from_secs(2),
        "the reload to be rejected",
        || async {
            let s = binary.scrape(&client).await;
            (s.get("upstream_exporter_config_last_reload_successful", &[]) == Some(0.0))
                .then_some(s)
        },
    )
    .await;
    assert!(s.of("upstream_target_info", "a").is_some());
    assert!(s.of("upstream_target_info", "b").is_some());
    // Longer than a poll interval plus its settle delay.
    tokio::time::sleep(Duration::from_millis(4000)).await;
    let log = binary.log_text();
    let failures: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("config reload failed"))
        .collect();
    assert_eq!(failures.len(), 1, "{log}");
    assert!(
        failures[0].contains(&format!("{}:3:15", path.display())),
        "no line:column in {}",
        failures[0]
    );
}

/// Two configs that differ in a few targets and in a TLS profile (a client
/// with its own connection pool comes and goes), alternated.
fn churn_configs(up: &Upstream) -> (String, String) {
    let mut a = Vec::new();
    let mut b = Vec::new();
    for i in 0..10 {
        a.push(target(
            &format!("t{i}"),
            &up.url(&format!("/t{i}.json")),
            "",
        ));
        let path = if i < 5 {
            format!("/t{i}.json")
        } else {
            format!("/t{i}-v2.json")
        };
        b.push(target(&format!("t{i}"), &up.url(&path), ""));
    }
    b.push(target(
        "extra",
        &up.url("/extra.json"),
        "    tls: { insecure_skip_verify: true }\n",
    ));
    (config(&a), config(&b))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_reloads_keep_the_task_count_flat() {
    let up = operational_upstream().await;
    let (a, b) = churn_configs(&up);
    let exporter = Exporter::start(&a).await;
    let tasks = || {
        tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks()
    };
    // Warm up: both configs once, and their probes.
    for yaml in [&b, &a] {
        exporter.write_config(yaml);
        assert_eq!(exporter.reload().await.0, 200);
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let _ = exporter.scrape().await;
    let before = tasks();
    for i in 0..200 {
        exporter.write_config(if i % 2 == 0 { &b } else { &a });
        let (status, body) = exporter.reload().await;
        assert_eq!(status, 200, "reload {i}: {body}");
    }
    // Ends on config `a`; let aborted tasks and probes settle.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let s = exporter.scrape().await;
    let after = tasks();
    eprintln!("alive tasks: {before} before, {after} after 200 reloads");
    assert_eq!(s.get("upstream_exporter_targets", &[]), Some(10.0));
    // Leaking one task per restarted target would add 1,000.
    assert!(after <= before + 10, "tasks grew from {before} to {after}");
    exporter.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_reloads_keep_the_binarys_open_fds_flat() {
    let up = operational_upstream().await;
    let (a, b) = churn_configs(&up);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("exporter.yaml");
    write(&path, &a);
    let binary = Binary::start(&path, &[]);
    let client = harness::client();
    binary.wait_healthy(&client).await;
    let reload = |yaml: &str| {
        write(&path, yaml);
        let client = client.clone();
        let url = format!("{}/-/reload", binary.base);
        async move {
            let r = client.post(url).send().await.unwrap();
            assert_eq!(r.status(), 200);
        }
    };
    reload(&b).await;
    reload(&a).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let pid = binary.pid();
    let (fds_before, rss_before) = (harness::open_fds(pid), harness::rss_kib(pid));
    for i in 0..200 {
        reload(if i % 2 == 0 { &b } else { &a }).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let s = binary.scrape(&client).await;
    let (fds_after, rss_after) = (harness::open_fds(pid), harness::rss_kib(pid));
    eprintln!(
        "open fds {fds_before} -> {fds_after}, RSS {rss_before} KiB -> {rss_after} KiB over 200 reloads"
    );
    assert_eq!(s.get("upstream_exporter_targets", &[]), Some(10.0));
    assert!(
        fds_after <= fds_before + 4,
        "open fds grew from {fds_before} to {fds_after}"
    );
    assert!(
        rss_after < rss_before + 20 * 1024,
        "resident memory grew from {rss_before} KiB to {rss_after} KiB"
    );
}
