//! The benchmarks' shared fixture: 10,000 statuspage targets, each with
//! one published probe result of a ~6.5 KB, 20-component summary (the
//! shape `bench/compare` serves), built through the real config loader,
//! parser and `runner::publish`, as after one probe round of the daemon.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use upstream_exporter::config::{Config, ProberConfig};
use upstream_exporter::metrics::{ExporterStatus, Metrics};
use upstream_exporter::probe::statuspage::parse;
use upstream_exporter::probe::{ProbeOutput, ProbeSuccess};
use upstream_exporter::state::{SharedTargets, TargetSet, TargetState};

/// Targets of the render benchmark (the issue's `/metrics` goal).
pub const RENDER_TARGETS: usize = 10_000;

const PRODUCTS: [&str; 17] = [
    "API",
    "Web Application",
    "Mobile App",
    "Authentication",
    "Billing",
    "Payments",
    "Webhooks",
    "Notifications",
    "Email Delivery",
    "Search",
    "Dashboard",
    "CDN",
    "Database",
    "File Storage",
    "Git Operations",
    "Analytics",
    "Integrations",
];
const REGIONS: [&str; 4] = ["North America", "Europe", "Asia Pacific", "Australia"];

/// A 12-character Statuspage-like id, deterministic in `seed`.
fn sp_id(seed: u64) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    (0..12)
        .map(|_| {
            x ^= x >> 29;
            x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
            char::from(ALPHABET[(x % 36) as usize])
        })
        .collect()
}

fn component_row(page_id: &str, id: String, name: String, status: &str, position: usize) -> Value {
    json!({
        "id": id, "name": name, "status": status,
        "created_at": "2019-04-24T00:05:14.273Z", "updated_at": "2026-05-24T21:00:17.680Z",
        "position": position, "description": null, "showcase": position.is_multiple_of(2),
        "start_date": null, "group_id": null, "page_id": page_id, "group": false,
        "only_show_if_degraded": false
    })
}

/// Page `i`'s summary.json: 16 top-level components and a group of 4 (20
/// exported components); every tenth page has a degraded component and an
/// open incident. Compact JSON, about 6.5 KB.
pub fn summary_body(i: usize) -> Vec<u8> {
    let seed = (i as u64) << 8;
    let page_id = sp_id(seed);
    let degraded = i % 10 == 3;
    let mut rows: Vec<Value> = PRODUCTS[..16]
        .iter()
        .enumerate()
        .map(|(k, name)| {
            let status = if degraded && k == 5 {
                "degraded_performance"
            } else {
                "operational"
            };
            component_row(
                &page_id,
                sp_id(seed + k as u64 + 1),
                (*name).to_owned(),
                status,
                k + 1,
            )
        })
        .collect();
    let group_id = sp_id(seed + 100);
    let children: Vec<Value> = REGIONS
        .iter()
        .enumerate()
        .map(|(k, region)| {
            let mut row = component_row(
                &page_id,
                sp_id(seed + 101 + k as u64),
                format!("{} - {region}", PRODUCTS[16]),
                "operational",
                k + 1,
            );
            row["group_id"] = json!(group_id);
            row
        })
        .collect();
    let mut group = component_row(
        &page_id,
        group_id,
        PRODUCTS[16].to_owned(),
        "operational",
        17,
    );
    group["group"] = json!(true);
    group["components"] = children.iter().map(|c| c["id"].clone()).collect();
    rows.push(group);
    rows.extend(children);
    let incidents = if degraded {
        json!([{
            "id": sp_id(seed + 200), "name": "Elevated error rates on Payments",
            "status": "investigating", "created_at": "2026-11-22T10:00:00.000Z",
            "updated_at": "2026-11-22T10:05:00.000Z", "monitoring_at": null, "resolved_at": null,
            "impact": "minor", "shortlink": "https://stspg.io/abcdefg",
            "started_at": "2026-11-22T10:00:00.000Z", "page_id": page_id, "incident_updates": []
        }])
    } else {
        json!([])
    };
    let body = json!({
        "page": { "id": page_id, "name": format!("Vendor {i}"),
                  "url": format!("https://status.vendor{i}.example.com"),
                  "time_zone": "Etc/UTC", "updated_at": "2026-11-22T10:05:00.000Z" },
        "components": rows,
        "incidents": incidents,
        "scheduled_maintenances": [],
        "status": if degraded {
            json!({ "indicator": "minor", "description": "Minor Service Outage" })
        } else {
            json!({ "indicator": "none", "description": "All Systems Operational" })
        },
    });
    serde_json::to_vec(&body).expect("a JSON value serialises")
}

/// 10,000 statuspage targets from the config loader, each with one
/// published probe result of a 20-component page.
pub fn render_fixture() -> SharedTargets {
    // Status series go stale 5 intervals after the last success (25 s here),
    // which a benchmark outlasts (criterion runs ~25 s a function, callgrind
    // takes minutes to build the fixture): stale targets would drop their
    // status lines and the body would shrink as the benchmark goes on.
    let mut yaml =
        String::from("defaults:\n  interval: 5s\n  timeout: 4s\n  stale_after: 1000h\ntargets:\n");
    for i in 0..RENDER_TARGETS {
        yaml.push_str(&format!(
            "  - name: t{i:05}\n    statuspage: {{ url: \"http://127.0.0.1:8080/ours/{i}/api/v2/summary.json\" }}\n"
        ));
    }
    let config = Config::from_bytes(yaml.as_bytes(), Path::new("bench.yaml"))
        .expect("the benchmark config is valid");
    let states: Vec<Arc<TargetState>> = config
        .targets
        .iter()
        .enumerate()
        .map(|(i, target)| {
            let ProberConfig::Statuspage(cfg) = &target.prober else {
                unreachable!("every benchmark target is a statuspage target")
            };
            let snapshot = parse(&summary_body(i), cfg).expect("the benchmark body parses");
            let state = Arc::new(TargetState::new(target.clone()));
            let success = ProbeSuccess {
                http_status: 200,
                output: ProbeOutput::Status(snapshot.shared()),
            };
            upstream_exporter::runner::publish(&state, Ok(success), Duration::from_millis(3));
            state
        })
        .collect();
    let targets = SharedTargets::default();
    targets.store(Arc::new(TargetSet { targets: states }));
    targets
}

pub fn metrics_of(targets: &SharedTargets) -> Metrics {
    Metrics::new(targets.clone(), Arc::new(ExporterStatus::default()))
}
