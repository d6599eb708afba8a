//! Which failures are worth another attempt, and the retry loop around one
//! request.
//!
//! Only transient failures are retried: timeouts, broken connections, 5xx
//! and 429. Everything else (404, a body of the wrong shape, TLS) would fail
//! the same way again, so retrying would only add load on a vendor that is
//! already having a bad day. The whole loop lives inside the probe's own
//! timeout; a `Retry-After` longer than the time left ends it early.

use std::future::Future;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use tokio::time::Instant;

use crate::config::Backoff;
use crate::probe::{ProbeError, Reason};

/// Whether another attempt could succeed.
pub fn is_transient(err: &ProbeError) -> bool {
    match err.reason {
        Reason::Timeout | Reason::Connect | Reason::RateLimited => true,
        Reason::HttpStatus => err.http_status.is_some_and(|s| s >= 500),
        _ => false,
    }
}

/// The pause before the next attempt, or None to give up: the backoff's
/// delay, stretched to `Retry-After` when the server asked for one, and only
/// if the attempt can still finish before `deadline`.
pub fn next_delay(
    err: &ProbeError,
    backoff: Option<Duration>,
    deadline: Instant,
) -> Option<Duration> {
    let delay = backoff?;
    let delay = match err.retry_after {
        Some(asked) => asked.max(delay),
        None => delay,
    };
    let remaining = deadline.saturating_duration_since(Instant::now());
    (delay < remaining).then_some(delay)
}

/// Run `attempt` up to `1 + retries` times with exponential backoff and jitter.
pub async fn with_retries<T, F, Fut>(
    retries: u32,
    backoff: Backoff,
    deadline: Instant,
    attempt: F,
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
    attempt
        .retry(policy)
        .sleep(tokio::time::sleep)
        .when(is_transient)
        .adjust(|err, delay| next_delay(err, delay, deadline))
        .await
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
            next_delay(&e, Some(Duration::from_millis(10)), deadline),
            None
        );
        e.retry_after = Some(Duration::from_millis(200));
        assert_eq!(
            next_delay(&e, Some(Duration::from_millis(10)), deadline),
            Some(Duration::from_millis(200))
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
        let r: Result<(), _> = with_retries(3, backoff, deadline, || async {
            calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Err(err(Reason::HttpStatus, Some(404)))
        })
        .await;
        assert!(r.is_err());
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
        calls.store(0, std::sync::atomic::Ordering::SeqCst);
        let r: Result<(), _> = with_retries(3, backoff, deadline, || async {
            calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Err(err(Reason::HttpStatus, Some(500)))
        })
        .await;
        assert!(r.is_err());
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 4);
    }
}
