//! Which failures are worth another attempt, and the retry loop around one
//! request.
//!
//! Only transient failures are retried: timeouts, broken connections, 5xx
//! and 429. Everything else (404, a body of the wrong shape, TLS) would fail
//! the same way again, so retrying would only add load on a vendor that is
//! already having a bad day. The whole loop lives inside the probe's own
//! timeout; a `Retry-After` longer than the time left ends it early, and so
//! does a pause after which an attempt as long as the last one could not
//! finish. When the timeout comes in the middle of a retry anyway, the
//! probe fails with what the upstream said the attempt before (a slow 502
//! stays a 502, with its status), not with a bare timeout.

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use tokio::time::Instant;

use crate::config::{Backoff, format_duration};
use crate::probe::{ProbeError, Reason};

/// Whether another attempt could succeed.
pub fn is_transient(err: &ProbeError) -> bool {
    match err.reason {
        Reason::Timeout | Reason::Connect | Reason::RateLimited => true,
        Reason::HttpStatus => err.http_status.is_some_and(|s| s >= 500),
        _ => false,
    }
}

/// The error of a probe that ran out of time: "timed out after 10s".
pub fn timed_out(timeout: Duration) -> ProbeError {
    ProbeError::new(
        Reason::Timeout,
        format!("timed out after {}", format_duration(timeout)),
    )
}

/// The pause before the next attempt, or None to give up: the backoff's
/// delay, stretched to `Retry-After` when the server asked for one, and only
/// if an attempt as long as the last one (`last_took`) can still finish
/// before `deadline`.
pub fn next_delay(
    err: &ProbeError,
    backoff: Option<Duration>,
    deadline: Instant,
    last_took: Duration,
) -> Option<Duration> {
    let delay = backoff?;
    let delay = match err.retry_after {
        Some(asked) => asked.max(delay),
        None => delay,
    };
    let remaining = deadline.saturating_duration_since(Instant::now());
    (delay.saturating_add(last_took) < remaining).then_some(delay)
}

/// Run `attempt` up to `1 + retries` times with exponential backoff and
/// jitter, until `deadline` at the latest (`timeout` is how long the probe
/// was given, for the message). When the deadline comes during a retry, the
/// result is the error of the attempt before it, its message saying that a
/// retry did not finish; during the first attempt, [`timed_out`].
pub async fn with_retries<T, F, Fut>(
    retries: u32,
    backoff: Backoff,
    deadline: Instant,
    timeout: Duration,
    mut attempt: F,
) -> Result<T, ProbeError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ProbeError>>,
{
    let policy = ExponentialBuilder::default()
        .with_min_delay(backoff.initial)
        .with_max_delay(backoff.max)
        .with_max_times(retries as usize)
        .with_jitter();
    // The last failed attempt: its error and how long it took.
    let last: Mutex<Option<(ProbeError, Duration)>> = Mutex::new(None);
    let remember = |failed: (ProbeError, Duration)| {
        *last.lock().unwrap_or_else(|p| p.into_inner()) = Some(failed);
    };
    let tracked = || {
        let started = Instant::now();
        let running = attempt();
        async move {
            let result = running.await;
            if let Err(e) = &result {
                remember((e.clone(), started.elapsed()));
            }
            result
        }
    };
    let last_took = || {
        last.lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map_or(Duration::ZERO, |(_, took)| *took)
    };
    let retried = tracked
        .retry(policy)
        .sleep(tokio::time::sleep)
        .when(is_transient)
        .adjust(|err, delay| next_delay(err, delay, deadline, last_took()));
    match tokio::time::timeout_at(deadline, retried).await {
        Ok(result) => result,
        Err(_) => {
            let before = last.lock().unwrap_or_else(|p| p.into_inner()).take();
            Err(match before {
                Some((mut e, _)) => {
                    e.message = format!(
                        "{}; a retry did not finish within the timeout ({})",
                        e.message,
                        format_duration(timeout)
                    );
                    e
                }
                None => timed_out(timeout),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(reason: Reason, status: Option<u16>) -> ProbeError {
        let mut e = ProbeError::new(reason, "x");
        e.http_status = status;
        e
    }

    #[test]
    fn transient_set() {
        assert!(is_transient(&err(Reason::Timeout, None)));
        assert!(is_transient(&err(Reason::Connect, None)));
        assert!(is_transient(&err(Reason::HttpStatus, Some(502))));
        assert!(is_transient(&err(Reason::RateLimited, Some(429))));
        assert!(!is_transient(&err(Reason::HttpStatus, Some(404))));
        assert!(!is_transient(&err(Reason::Schema, Some(200))));
        assert!(!is_transient(&err(Reason::Tls, None)));
        assert!(!is_transient(&err(Reason::Dns, None)));
    }

    #[tokio::test]
    async fn retry_after_beyond_deadline_gives_up() {
        let deadline = Instant::now() + Duration::from_secs(1);
        let mut e = err(Reason::RateLimited, Some(429));
        e.retry_after = Some(Duration::from_secs(5));
        assert_eq!(
            next_delay(
                &e,
                Some(Duration::from_millis(10)),
                deadline,
                Duration::ZERO
            ),
            None
        );
        e.retry_after = Some(Duration::from_millis(200));
        assert_eq!(
            next_delay(
                &e,
                Some(Duration::from_millis(10)),
                deadline,
                Duration::ZERO
            ),
            Some(Duration::from_millis(200))
        );
        // An attempt as long as the last one would not end in time.
        assert_eq!(
            next_delay(
                &e,
                Some(Duration::from_millis(10)),
                deadline,
                Duration::from_millis(900)
            ),
            None
        );
    }

    const QUICK: Backoff = Backoff {
        initial: Duration::from_millis(100),
        max: Duration::from_millis(200),
    };

    fn attempts() -> std::sync::atomic::AtomicU32 {
        std::sync::atomic::AtomicU32::new(0)
    }

    /// A 502 after 1.2 s with 2 s to go: another attempt like it cannot end
    /// in time, so none is made and the 502 is the answer.
    #[tokio::test(start_paused = true)]
    async fn no_retry_that_could_not_finish() {
        let calls = attempts();
        let t0 = Instant::now();
        let deadline = t0 + Duration::from_secs(2);
        let r: Result<(), _> = with_retries(2, QUICK, deadline, Duration::from_secs(2), || async {
            calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(1200)).await;
            Err(err(Reason::HttpStatus, Some(502)))
        })
        .await;
        let e = r.unwrap_err();
        assert_eq!((e.reason, e.http_status), (Reason::HttpStatus, Some(502)));
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(Instant::now(), t0 + Duration::from_millis(1200));
    }

    /// The deadline in the middle of a retry: the answer before it stands.
    #[tokio::test(start_paused = true)]
    async fn a_retry_cut_by_the_deadline_keeps_the_answer_before_it() {
        let calls = attempts();
        let deadline = Instant::now() + Duration::from_secs(2);
        let r: Result<(), _> = with_retries(2, QUICK, deadline, Duration::from_secs(2), || async {
            let n = calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if n == 0 {
                tokio::time::sleep(Duration::from_millis(50)).await;
                let mut e = err(Reason::HttpStatus, Some(502));
                e.message = "HTTP 502 Bad Gateway".into();
                return Err(e);
            }
            std::future::pending().await
        })
        .await;
        let e = r.unwrap_err();
        assert_eq!((e.reason, e.http_status), (Reason::HttpStatus, Some(502)));
        assert_eq!(
            e.message,
            "HTTP 502 Bad Gateway; a retry did not finish within the timeout (2s)"
        );
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);

        // With no answer before it, a plain timeout.
        let deadline = Instant::now() + Duration::from_millis(1500);
        let r: Result<(), _> =
            with_retries(2, QUICK, deadline, Duration::from_millis(1500), || {
                std::future::pending()
            })
            .await;
        let e = r.unwrap_err();
        assert_eq!(
            (e.reason, e.message.as_str()),
            (Reason::Timeout, "timed out after 1s 500ms")
        );
    }

    #[tokio::test]
    async fn retries_only_transient() {
        let calls = std::sync::atomic::AtomicU32::new(0);
        let deadline = Instant::now() + Duration::from_secs(5);
        let backoff = Backoff {
            initial: Duration::from_millis(1),
            max: Duration::from_millis(2),
        };
        let r: Result<(), _> =
            with_retries(3, backoff, deadline, Duration::from_secs(5), || async {
                calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Err(err(Reason::HttpStatus, Some(404)))
            })
            .await;
        assert!(r.is_err());
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
        calls.store(0, std::sync::atomic::Ordering::SeqCst);
        let r: Result<(), _> =
            with_retries(3, backoff, deadline, Duration::from_secs(5), || async {
                calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Err(err(Reason::HttpStatus, Some(500)))
            })
            .await;
        assert!(r.is_err());
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 4);
    }
}
