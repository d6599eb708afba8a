//! A fixture status-page upstream on 127.0.0.1 whose answers switch between
//! scenarios while it runs. Every body is a real recorded Atlassian
//! Statuspage payload from `tests/fixtures/statuspage/` (provenance in
//! `fixtures/real/SOURCES.md`); nothing here is hand-written JSON.
//!
//! Two targets are served, the way one exporter watches several vendors:
//!
//! | scenario      | `primary` (`summary.json` path)            | `secondary` (`components.json` path)             |
//! |---------------|--------------------------------------------|--------------------------------------------------|
//! | operational   | GitHub summary, indicator `none` (1)       | Box components, all operational (1)              |
//! | degraded      | Instructure summary, `minor` (3), 1 incident | Box components, 2 `degraded_performance` (3)   |
//! | major outage  | Qualys components, 2 `major_outage` (5)    | Twilio summary: 2 open incidents, 9 maintenances |
//! | down          | 503 Service Unavailable                    | connection closed before any response            |
//!
//! No single recorded body has both a critical indicator and an open
//! incident, so the major-outage scenario takes the outage from one target
//! and the incidents from the other.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::common::fixture_bytes;

/// What the upstream answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    Operational,
    Degraded,
    MajorOutage,
    Down,
}

impl Scenario {
    pub const ALL: [Scenario; 4] = [
        Scenario::Operational,
        Scenario::Degraded,
        Scenario::MajorOutage,
        Scenario::Down,
    ];
}

/// Path of the `primary` target (its config `url` is `<base>/primary`).
pub const PRIMARY_PATH: &str = "/primary/api/v2/summary.json";
/// Path of the `secondary` target (its config `url` is this path in full).
pub const SECONDARY_PATH: &str = "/secondary/api/v2/components.json";

pub const OPERATIONAL_PRIMARY: &str = "statuspage/github-summary-all-operational-2026.json";
pub const OPERATIONAL_SECONDARY: &str = "statuspage/box-components.json";
pub const DEGRADED_PRIMARY: &str = "statuspage/instructure-summary.json";
pub const DEGRADED_SECONDARY: &str = "statuspage/box-components-with-problem.json";
pub const MAJOR_PRIMARY: &str = "statuspage/qualys-components.json";
pub const MAJOR_SECONDARY: &str =
    "statuspage/twilio-summary-incidents-and-scheduled-maintenances.json";

/// The fixture file a target is served in a scenario (None: no body).
pub fn fixture_for(scenario: Scenario, primary: bool) -> Option<&'static str> {
    match (scenario, primary) {
        (Scenario::Operational, true) => Some(OPERATIONAL_PRIMARY),
        (Scenario::Operational, false) => Some(OPERATIONAL_SECONDARY),
        (Scenario::Degraded, true) => Some(DEGRADED_PRIMARY),
        (Scenario::Degraded, false) => Some(DEGRADED_SECONDARY),
        (Scenario::MajorOutage, true) => Some(MAJOR_PRIMARY),
        (Scenario::MajorOutage, false) => Some(MAJOR_SECONDARY),
        (Scenario::Down, _) => None,
    }
}

/// The parsed fixture a target is served in a scenario.
pub fn fixture_json(scenario: Scenario, primary: bool) -> serde_json::Value {
    let file = fixture_for(scenario, primary).expect("scenario serves no body");
    serde_json::from_slice(&fixture_bytes(file)).expect("fixture is JSON")
}

struct Bodies {
    by_file: Vec<(&'static str, Bytes)>,
}

impl Bodies {
    fn load() -> Self {
        let mut by_file = Vec::new();
        for scenario in Scenario::ALL {
            for primary in [true, false] {
                if let Some(file) = fixture_for(scenario, primary) {
                    by_file.push((file, Bytes::from(fixture_bytes(file))));
                }
            }
        }
        Bodies { by_file }
    }

    fn get(&self, file: &str) -> Bytes {
        self.by_file
            .iter()
            .find(|(f, _)| *f == file)
            .map(|(_, b)| b.clone())
            .expect("body loaded")
    }
}

/// The running fixture server; stops when dropped.
pub struct Upstream {
    pub base: String,
    scenario: Arc<Mutex<Scenario>>,
    task: JoinHandle<()>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Upstream {
    pub async fn start(initial: Scenario) -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let scenario = Arc::new(Mutex::new(initial));
        let bodies = Arc::new(Bodies::load());
        let shared = scenario.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let scenario = shared.clone();
                let bodies = bodies.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<Incoming>| {
                        let now = *scenario.lock().unwrap();
                        let reply = respond(now, req.uri().path(), &bodies);
                        async move { reply }
                    });
                    // A hang-up answer ends the connection with an error; that
                    // is the point, so the result is ignored.
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Upstream {
            base,
            scenario,
            task,
        }
    }

    pub fn set(&self, scenario: Scenario) {
        *self.scenario.lock().unwrap() = scenario;
    }
}

type Reply = Result<Response<Full<Bytes>>, std::io::Error>;

fn respond(scenario: Scenario, path: &str, bodies: &Bodies) -> Reply {
    let primary = match path {
        PRIMARY_PATH => true,
        SECONDARY_PATH => false,
        _ => return Ok(plain(StatusCode::NOT_FOUND, "not found\n")),
    };
    match (scenario, primary) {
        (Scenario::Down, true) => Ok(plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "<html><body><h1>503 Service Unavailable</h1></body></html>\n",
        )),
        // Returning an error makes hyper close the connection without a
        // response: the upstream broke mid-request.
        (Scenario::Down, false) => Err(std::io::Error::other("fixture hangs up")),
        (scenario, primary) => {
            let file = fixture_for(scenario, primary).expect("body");
            Ok(Response::builder()
                .status(StatusCode::OK)
                .header("content-type", "application/json; charset=utf-8")
                .body(Full::new(bodies.get(file)))
                .expect("response"))
        }
    }
}

fn plain(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "text/html; charset=utf-8")
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .expect("response")
}
