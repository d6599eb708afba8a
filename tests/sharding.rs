//! Scaling out with `--shard.count N --shard.index I` (SPEC §6):
//! (a) the assignment itself: one owner per target, balance, and how few
//! targets move from N to N+1 shards; (b) N real binaries on one config
//! against one local upstream, each probing only its own targets, all
//! targets covered, `upstream_exporter_shard_info` right, and the filter
//! kept across a reload; (c) the flags and their environment variables,
//! good and bad, through `--config.check`.

mod harness;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use harness::{Binary, Reply, Upstream, client, eventually, summary};
use upstream_exporter::shard::{Shard, owner};

/// 1,000 target names of a few shapes.
fn names(n: usize) -> Vec<String> {
    let shapes = ["target", "status.example.com", "payments-health", "queue"];
    (0..n)
        .map(|i| format!("{}-{i}", shapes[i % shapes.len()]))
        .collect()
}

/// Which shards (by index) own `name` among `count`, asking each replica.
fn owners(name: &str, count: u32) -> Vec<u32> {
    (0..count)
        .filter(|&i| Shard::new(i, count).expect("valid shard").owns(name))
        .collect()
}

// ---------------------------------------------------------------------------
// (a) The assignment

#[test]
fn every_target_has_exactly_one_owner_and_shards_are_balanced() {
    let names = names(1000);
    for count in [1u32, 2, 3, 7] {
        let mut per_shard = vec![0usize; count as usize];
        for name in &names {
            let owned_by = owners(name, count);
            assert_eq!(owned_by.len(), 1, "{name} among {count}: {owned_by:?}");
            per_shard[owned_by[0] as usize] += 1;
        }
        let fair = names.len() as f64 / f64::from(count);
        for (index, &n) in per_shard.iter().enumerate() {
            assert!(
                (n as f64) >= 0.8 * fair && (n as f64) <= 1.2 * fair,
                "shard {index} of {count} owns {n} of 1000 (fair share {fair:.0}): {per_shard:?}"
            );
        }
    }
}

/// Many names: the split is close to even (within 3 % of the fair share).
#[test]
fn balance_over_many_names() {
    let count = 7u32;
    let mut per_shard = vec![0usize; count as usize];
    for i in 0..100_000 {
        per_shard[owner(&format!("t{i}"), count) as usize] += 1;
    }
    let fair = 100_000.0 / f64::from(count);
    for n in &per_shard {
        assert!(((*n as f64) - fair).abs() <= 0.03 * fair, "{per_shard:?}");
    }
}

#[test]
fn adding_a_shard_moves_few_targets_and_only_to_the_new_one() {
    let names = names(1000);
    for count in 1u32..=7 {
        let mut moved = 0usize;
        for name in &names {
            let (before, after) = (owner(name, count), owner(name, count + 1));
            if before != after {
                assert_eq!(
                    after, count,
                    "{name} moved from {before} to {after}, not to the new shard {count}"
                );
                moved += 1;
            }
        }
        let fraction = moved as f64 / names.len() as f64;
        let bound = 1.5 / f64::from(count + 1);
        assert!(
            fraction <= bound,
            "{count} -> {} shards moved {moved} of 1000 ({fraction:.3} > {bound:.3})",
            count + 1
        );
        // And the new shard gets a fair share, not nothing.
        assert!(
            fraction >= 0.5 / f64::from(count + 1),
            "{count} -> {}: only {moved} moved",
            count + 1
        );
    }
}

// ---------------------------------------------------------------------------
// (b) N replicas end to end

const TARGETS: usize = 24;

fn target_name(i: usize) -> String {
    format!("target-{i:02}")
}

fn config_yaml(up: &Upstream, targets: usize) -> String {
    let mut yaml =
        String::from("defaults:\n  interval: 1s\n  timeout: 800ms\n  retries: 0\ntargets:\n");
    for i in 0..targets {
        let name = target_name(i);
        yaml.push_str(&format!(
            "  - name: {name}\n    statuspage: {{ url: \"{}\" }}\n",
            up.url(&format!("/{name}.json"))
        ));
    }
    yaml
}

/// Per replica: the targets its /metrics has a probe result for.
type Probed = Vec<BTreeSet<String>>;

/// Start `count` replicas on one config (one file per replica, so each
/// has its own log), wait until every one is ready, and check what each
/// probed against the assignment and the upstream's log.
async fn replicas_split_the_targets(count: u32) {
    let up = Upstream::start(|_| Reply::json(summary(1, "operational"))).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let yaml = config_yaml(&up, TARGETS);
    let http = client();
    let replicas: Vec<Binary> = (0..count)
        .map(|i| {
            let path = dir.path().join(format!("shard-{i}.yaml"));
            std::fs::write(&path, &yaml).expect("write config");
            Binary::start(
                &path,
                &[
                    &format!("--shard.count={count}"),
                    &format!("--shard.index={i}"),
                ],
            )
        })
        .collect();
    for r in &replicas {
        r.wait_healthy(&http).await;
    }
    // Ready: every target of the replica has finished its first probe.
    for (i, r) in replicas.iter().enumerate() {
        let url = format!("{}/-/ready", r.base);
        eventually(Duration::from_secs(10), &format!("shard {i} ready"), || {
            let http = http.clone();
            let url = url.clone();
            async move {
                let ok = http.get(&url).send().await.ok()?.status() == 200;
                ok.then_some(())
            }
        })
        .await;
    }

    let mut probed: Probed = Vec::new();
    for (i, r) in replicas.iter().enumerate() {
        let scrape = r.scrape(&http).await;
        let index = i.to_string();
        let count_label = count.to_string();
        assert_eq!(
            scrape.get(
                "upstream_exporter_shard_info",
                &[("shard_index", &index), ("shard_count", &count_label)]
            ),
            Some(1.0),
            "shard {i} of {count} info:\n{}",
            scrape.text
        );
        assert_eq!(scrape.samples("upstream_exporter_shard_info").len(), 1);
        let mine: BTreeSet<String> = scrape
            .samples("upstream_probe_success")
            .into_iter()
            .map(|(labels, value)| {
                assert_eq!(value, 1.0, "shard {i}: {labels:?}");
                labels["target"].clone()
            })
            .collect();
        let expected: BTreeSet<String> = (0..TARGETS)
            .map(target_name)
            .filter(|name| owner(name, count) == i as u32)
            .collect();
        assert_eq!(mine, expected, "shard {i} of {count} probed other targets");
        // Every per-target family is limited to the shard's own targets.
        let info: BTreeSet<String> = scrape
            .samples("upstream_target_info")
            .into_iter()
            .map(|(labels, _)| labels["target"].clone())
            .collect();
        assert_eq!(info, expected, "shard {i}: upstream_target_info");
        assert_eq!(
            scrape.get("upstream_exporter_targets", &[]),
            Some(expected.len() as f64)
        );
        assert_eq!(
            scrape.get("upstream_exporter_config_targets", &[]),
            Some(TARGETS as f64)
        );
        probed.push(mine);
    }

    // Together the replicas cover every target, each exactly once.
    let mut coverage: BTreeMap<String, usize> = BTreeMap::new();
    for mine in &probed {
        for name in mine {
            *coverage.entry(name.clone()).or_default() += 1;
        }
    }
    assert_eq!(coverage.len(), TARGETS, "targets probed by nobody");
    assert!(
        coverage.values().all(|&n| n == 1),
        "targets probed by several shards: {coverage:?}"
    );

    // The upstream saw every target's path and no other, and no target
    // more often than its one owner ran probes (retries are off, so one
    // probe is one request; one may be in flight past the scrape).
    let mut requests: BTreeMap<String, usize> = BTreeMap::new();
    for seen in up.seen() {
        *requests.entry(seen.path).or_default() += 1;
    }
    let mut probes_after: BTreeMap<String, f64> = BTreeMap::new();
    for r in &replicas {
        for (labels, value) in r.scrape(&http).await.samples("upstream_probes_total") {
            *probes_after.entry(labels["target"].clone()).or_default() += value;
        }
    }
    let paths: BTreeSet<String> = (0..TARGETS)
        .map(|i| format!("/{}.json", target_name(i)))
        .collect();
    assert_eq!(
        requests.keys().cloned().collect::<BTreeSet<_>>(),
        paths,
        "upstream log"
    );
    for i in 0..TARGETS {
        let name = target_name(i);
        let seen = requests[&format!("/{name}.json")] as f64;
        let probes = probes_after.get(&name).copied().unwrap_or(0.0);
        assert!(
            seen <= probes + 1.0,
            "{name}: the upstream saw {seen} requests, its owner ran {probes} probes"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_replica_probes_everything() {
    replicas_split_the_targets(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_split_the_targets() {
    replicas_split_the_targets(2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_split_the_targets() {
    replicas_split_the_targets(3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seven_replicas_split_the_targets() {
    replicas_split_the_targets(7).await;
}

/// A reload applies the shard filter to the new config too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_keeps_only_the_shards_targets() {
    let up = Upstream::start(|_| Reply::json(summary(1, "operational"))).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("exporter.yaml");
    std::fs::write(&path, config_yaml(&up, 4)).expect("write config");
    let http = client();
    let replica = Binary::start(&path, &["--shard.count=2", "--shard.index=1"]);
    replica.wait_healthy(&http).await;
    let own = |total: usize| -> BTreeSet<String> {
        (0..total)
            .map(target_name)
            .filter(|n| owner(n, 2) == 1)
            .collect()
    };
    let targets = |scrape: &harness::Scrape| -> BTreeSet<String> {
        scrape
            .samples("upstream_target_info")
            .into_iter()
            .map(|(labels, _)| labels["target"].clone())
            .collect()
    };
    assert_eq!(targets(&replica.scrape(&http).await), own(4));

    std::fs::write(&path, config_yaml(&up, TARGETS)).expect("write config");
    let reload = http
        .post(format!("{}/-/reload", replica.base))
        .send()
        .await
        .expect("reload");
    assert_eq!(reload.status(), 200);
    let scrape = replica.scrape(&http).await;
    assert_eq!(targets(&scrape), own(TARGETS));
    assert!(own(TARGETS).len() > own(4).len(), "the reload added none");
    assert_eq!(
        scrape.get("upstream_exporter_targets", &[]),
        Some(own(TARGETS).len() as f64)
    );
    assert_eq!(
        scrape.get("upstream_exporter_config_targets", &[]),
        Some(TARGETS as f64)
    );
}

// ---------------------------------------------------------------------------
// (c) Flags and environment

/// Command-line flags and environment variables of one run.
type Flags<'a> = &'a [&'a str];
type Env<'a> = &'a [(&'a str, &'a str)];

/// `--config.check` on a config of [`TARGETS`] targets with `args` and
/// `env` (the shard variables are cleared first).
fn config_check(dir: &Path, args: Flags, env: Env) -> Output {
    let path = dir.join("check.yaml");
    let mut yaml = String::from("targets:\n");
    for i in 0..TARGETS {
        yaml.push_str(&format!(
            "  - name: {}\n    statuspage: {{ url: \"http://127.0.0.1:9/\" }}\n",
            target_name(i)
        ));
    }
    std::fs::write(&path, yaml).expect("write config");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_upstream-exporter"));
    cmd.arg(format!("--config.file={}", path.display()))
        .arg("--config.check")
        .args(args)
        .env_remove("UPSTREAM_EXPORTER_SHARD_COUNT")
        .env_remove("UPSTREAM_EXPORTER_SHARD_INDEX");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run upstream-exporter")
}

fn owned_by(index: u32, count: u32) -> usize {
    (0..TARGETS)
        .filter(|&i| owner(&target_name(i), count) == index)
        .count()
}

#[test]
fn config_check_reports_the_shards_part() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases: [(Flags, Env, u32, u32); 4] = [
        (&["--shard.count=3", "--shard.index=2"], &[], 2, 3),
        // The StatefulSet's environment, with the pod name as the index.
        (
            &[],
            &[
                ("UPSTREAM_EXPORTER_SHARD_COUNT", "3"),
                ("UPSTREAM_EXPORTER_SHARD_INDEX", "upstream-exporter-1"),
            ],
            1,
            3,
        ),
        // Or the pod-index label's plain number.
        (
            &[],
            &[
                ("UPSTREAM_EXPORTER_SHARD_COUNT", "7"),
                ("UPSTREAM_EXPORTER_SHARD_INDEX", "6"),
            ],
            6,
            7,
        ),
        // A flag wins over its variable.
        (
            &["--shard.index=0"],
            &[
                ("UPSTREAM_EXPORTER_SHARD_COUNT", "2"),
                ("UPSTREAM_EXPORTER_SHARD_INDEX", "1"),
            ],
            0,
            2,
        ),
    ];
    for (args, env, index, count) in cases {
        let out = config_check(dir.path(), args, env);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{args:?} {env:?}: {out:?}");
        let want = format!(
            "; shard {index} of {count} owns {}\n",
            owned_by(index, count)
        );
        assert!(
            stdout.starts_with(&format!("OK: {TARGETS} targets in ")) && stdout.ends_with(&want),
            "{args:?} {env:?}: {stdout:?}, wanted it to end with {want:?}"
        );
    }
    // Unsharded: the plain line, as before.
    let out = config_check(dir.path(), &[], &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(!stdout.contains("shard"), "{stdout:?}");
}

#[test]
fn bad_shard_values_are_usage_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases: [(Flags, Env, &str); 7] = [
        (&["--shard.count=0"], &[], "between 1 and 1000"),
        (&["--shard.count=1001"], &[], "between 1 and 1000"),
        (&["--shard.count=two"], &[], "not a whole number"),
        (&["--shard.index=-1"], &[], "StatefulSet pod name"),
        (
            &["--shard.count=3", "--shard.index=3"],
            &[],
            "--shard.index 3 is out of range for --shard.count 3: indexes run from 0 to 2",
        ),
        // Index without count: count defaults to 1.
        (
            &[],
            &[("UPSTREAM_EXPORTER_SHARD_INDEX", "upstream-exporter-1")],
            "out of range for --shard.count 1",
        ),
        (
            &[],
            &[
                ("UPSTREAM_EXPORTER_SHARD_COUNT", "3"),
                ("UPSTREAM_EXPORTER_SHARD_INDEX", "upstream-exporter"),
            ],
            "StatefulSet pod name",
        ),
    ];
    for (args, env, message) in cases {
        let out = config_check(dir.path(), args, env);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?} {env:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?} {env:?}");
        assert!(
            stderr.contains(message),
            "{args:?} {env:?}: {stderr:?} lacks {message:?}"
        );
    }
}
