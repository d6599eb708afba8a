//! The status board in a real browser: headless Chromium loads `/` from the
//! exporter (in-process, the daemon's own `start_with`) probing local
//! upstreams on 127.0.0.1 that serve real Statuspage bodies, a hand-made
//! hostile one, HTML where JSON belongs, a hang, a health check and a JSON
//! API. The DOM Chromium built (`--dump-dom`) must show the real degraded
//! components and incident titles, show the hostile `<script>` title as
//! text, and bear no trace of it having run. Screenshots (desktop light,
//! phone dark) are written to `target/test-artifacts/` for people to look at.
//!
//! Without `chromium` the test is skipped locally and fails under
//! `CI=true` (`.ci/run` installs Debian's `chromium`).

mod common;
mod harness;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use harness::{Exporter, Reply, Upstream, eventually};

/// One browser run may take this long (cold start on a busy machine).
const BROWSER_TIMEOUT: Duration = Duration::from_secs(90);

/// Flags that keep headless Chromium quiet and local: no sandbox (tests
/// may run as root), no GPU, no background traffic, no proxy.
const CHROMIUM_FLAGS: [&str; 10] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-proxy-server",
    "--hide-scrollbars",
];

/// Run Chromium with `args` on `url` and a fresh profile; its stdout.
/// A run past [`BROWSER_TIMEOUT`] is killed (its whole process group)
/// and fails the test.
async fn chromium(args: &[&str], url: &str) -> String {
    let profile = tempfile::tempdir().expect("profile dir");
    let mut command = tokio::process::Command::new("chromium");
    command
        .args(CHROMIUM_FLAGS)
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so a hung run can be killed with its children.
        .process_group(0)
        .kill_on_drop(true);
    let child = command.spawn().expect("spawn chromium");
    let pid = child.id().expect("chromium pid");
    match tokio::time::timeout(BROWSER_TIMEOUT, child.wait_with_output()).await {
        Ok(output) => {
            let output = output.expect("chromium output");
            assert!(
                output.status.success(),
                "chromium {args:?} failed: {}\n{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
            String::from_utf8(output.stdout).expect("chromium stdout is UTF-8")
        }
        Err(_) => {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .status();
            panic!("chromium {args:?} did not finish within {BROWSER_TIMEOUT:?}; killed");
        }
    }
}

/// Where screenshots go: `target/test-artifacts/` of this package.
fn artifacts_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&dir).expect("create target/test-artifacts");
    dir
}

/// Width and height of a PNG file, checking that it is one.
fn png_size(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.len() > 1000,
        "{} is not a PNG with content",
        path.display()
    );
    let be = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    (be(16), be(20))
}

/// Take a screenshot of `url` at `size` into `file`, with extra flags.
async fn screenshot(url: &str, size: (u32, u32), file: &str, extra: &[&str]) -> PathBuf {
    let path = artifacts_dir().join(file);
    let _ = std::fs::remove_file(&path);
    let mut args = vec![
        format!("--screenshot={}", path.display()),
        format!("--window-size={},{}", size.0, size.1),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    chromium(&args, url).await;
    assert_eq!(png_size(&path), size, "{}", path.display());
    println!("screenshot: {}", path.display());
    path
}

/// The serialized DOM of one target's card.
fn card<'a>(dom: &'a str, name: &str) -> &'a str {
    let start = dom
        .find(&format!("id=\"target-{name}\""))
        .unwrap_or_else(|| panic!("no card for {name} in the DOM:\n{dom}"));
    let end = dom[start..]
        .find("</article>")
        .map_or(dom.len(), |e| start + e);
    &dom[start..end]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_board_renders_in_chromium() {
    if !common::require("chromium") {
        return;
    }
    let twilio = common::fixture_bytes(
        "statuspage/twilio-summary-incidents-and-scheduled-maintenances.json",
    );
    let instructure = common::fixture_bytes("statuspage/instructure-summary.json");
    let github = common::fixture_bytes("statuspage/github-summary-all-operational-2026.json");
    let hostile = common::fixture_bytes("board/statuspage-hostile-incident.json");
    let upstream = Upstream::start(move |seen| match seen.path.as_str() {
        "/twilio.json" => Reply::json(twilio.clone()),
        "/instructure.json" => Reply::json(instructure.clone()),
        "/github.json" => Reply::json(github.clone()),
        "/hostile.json" => Reply::json(hostile.clone()),
        "/moved.json" => Reply::Full {
            status: 200,
            headers: vec![("Content-Type".into(), "text/html".into())],
            body: b"<!doctype html><html><body>We moved!</body></html>".to_vec(),
        },
        "/hang.json" => Reply::Hang,
        "/healthz" => Reply::status(204),
        "/stats" => {
            Reply::json(r#"{"queues":[{"name":"mail","depth":3},{"name":"sms","depth":0}]}"#)
        }
        _ => Reply::status(404),
    })
    .await;
    let statuspage = |name: &str, path: &str| {
        format!(
            "  - name: {name}\n    statuspage: {{ url: \"{}\" }}\n",
            upstream.url(path)
        )
    };
    let yaml = [
        "defaults:\n  interval: 3s\n  timeout: 1s\n  retries: 0\ntargets:\n".to_owned(),
        statuspage("twilio", "/twilio.json"),
        statuspage("instructure", "/instructure.json"),
        statuspage("github", "/github.json"),
        statuspage("hostile-vendor", "/hostile.json"),
        statuspage("moved-vendor", "/moved.json"),
        statuspage("hanging-vendor", "/hang.json"),
        format!(
            "  - name: payments-health\n    http: {{ url: \"{}\" }}\n",
            upstream.url("/healthz")
        ),
        format!(
            "  - name: queues\n    json:\n      url: \"{}\"\n      metrics:\n        - {{ name: queue_depth, path: \"$.queues[*]\", value: \"$.depth\", labels: {{ queue: \"$.name\" }} }}\n",
            upstream.url("/stats")
        ),
    ]
    .concat();
    let exporter = Exporter::start(&yaml).await;
    let client = &exporter.client;
    eventually(Duration::from_secs(15), "every first probe", || async {
        let r = client
            .get(format!("{}/-/ready", exporter.base))
            .send()
            .await
            .ok()?;
        (r.status() == 200).then_some(())
    })
    .await;
    let board = format!("{}/", exporter.base);

    let dom = chromium(&["--dump-dom"], &board).await;

    // Nothing from the hostile body ran: the title is ours, no element or
    // attribute the payloads would have created exists.
    assert!(
        dom.contains("<title>upstream-exporter status</title>"),
        "title changed:\n{dom}"
    );
    assert!(
        !dom.contains("<pwned-by-incident"),
        "the incident's script ran"
    );
    assert!(
        !dom.contains("data-pwned=\""),
        "the component's onerror ran"
    );
    assert!(
        !dom.contains("<script"),
        "a script element made it into the DOM"
    );
    assert!(!dom.contains("<img"), "an img element made it into the DOM");
    // ... and both payloads are on the page as text.
    let hostile = card(&dom, "hostile-vendor");
    assert!(
        hostile.contains(
            "Login failures &lt;script&gt;document.title='pwned';document.body.appendChild("
        ),
        "{hostile}"
    );
    assert!(hostile.contains("API &lt;img src=x onerror="), "{hostile}");

    // Real fixture: degraded components and open incidents are shown.
    let twilio = card(&dom, "twilio");
    for text in [
        "SMS Short Code, North America",
        "MMS Short Code, North America",
        "SMS Delivery Delays to Mozambique Movitel",
        "SMS Delivery Delays from Subset of Twilio Short Codes to US Sprint",
        "Next maintenance",
    ] {
        assert!(
            twilio.contains(text),
            "twilio card lacks {text:?}:\n{twilio}"
        );
    }
    assert!(twilio.contains(">degraded</span>"), "{twilio}");
    let instructure = card(&dom, "instructure");
    assert!(
        instructure.contains("Amazon Web Services (AWS) is currently experiencing"),
        "{instructure}"
    );
    // Failures in plain words, with the probe's own message.
    let moved = card(&dom, "moved-vendor");
    assert!(moved.contains("probe failing"), "{moved}");
    assert!(
        moved.contains("answered HTML instead of JSON — has the vendor moved its status page?"),
        "{moved}"
    );
    let hanging = card(&dom, "hanging-vendor");
    assert!(
        hanging.contains("The upstream did not answer in time"),
        "{hanging}"
    );
    assert!(hanging.contains("timed out after 1s"), "{hanging}");
    assert!(card(&dom, "payments-health").contains("HTTP 204"));
    assert!(card(&dom, "queues").contains("2 samples from 1 rule"));
    // Worst first: the failing probes lead, the all-operational page is late.
    let at = |name: &str| dom.find(&format!("id=\"target-{name}\"")).unwrap();
    assert!(at("hanging-vendor") < at("hostile-vendor"));
    assert!(at("moved-vendor") < at("hostile-vendor"));
    assert!(at("hostile-vendor") < at("twilio"));
    assert!(at("twilio") < at("github"));

    screenshot(&board, (1280, 1500), "status-board.png", &[]).await;
    screenshot(
        &board,
        (390, 1600),
        "status-board-phone-dark.png",
        &[
            "--force-dark-mode",
            "--blink-settings=preferredColorScheme=0",
        ],
    )
    .await;
    exporter.stop().await;
}
