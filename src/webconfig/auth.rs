//! Basic auth against bcrypt hashes, at a cost no client can drive up.
//!
//! bcrypt is slow on purpose (tens of milliseconds at cost 10), so checking
//! it at every scrape would burn a core, and any client could queue such
//! work. So, as in exporter-toolkit, a successful check is remembered: the
//! cache keeps an HMAC (under a key drawn at start) of user, hash and
//! password, never the password, until it goes unused for
//! [`CACHE_WINDOW`] (each use renews it, so a scraper that keeps coming
//! never waits for bcrypt again, not even behind a flood of wrong
//! passwords that fills the queue), at most [`CACHE_CAPACITY`] entries. Failures are not cached, so a wrong password
//! can never be taken for a right one, and a flood of wrong ones cannot
//! push the right ones out.
//!
//! bcrypt runs on the blocking pool, never on the reactor, one check at a
//! time; at most [`MAX_WAITING`] checks queue for it, and past that a
//! request is refused at once (429) instead of piling up. An unknown user
//! is checked against a decoy hash, so response times do not tell which
//! users exist.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use hyper::header::HeaderValue;
use ring::hmac;
use tokio::sync::Semaphore;

use crate::config::Secret;

/// How long a verified user/password pair stays trusted without bcrypt
/// after its last use.
pub const CACHE_WINDOW: Duration = Duration::from_secs(300);
/// Verified pairs remembered at most (oldest dropped first).
pub const CACHE_CAPACITY: usize = 256;
/// bcrypt checks allowed to wait for the one running.
pub const MAX_WAITING: usize = 32;

/// A cost-10 bcrypt hash of a random string nobody knows: what unknown
/// users are checked against, so they take as long as known ones.
const DECOY_HASH: &str = "$2b$10$.5OA7d5TLTAZ1aSXTRJg6uTOKq3vA6Sqe1ohusnSjGlKJuzPeRhjO";

/// HMAC-SHA256 of one user/hash/password triple: the cache's key.
type Tag = [u8; 32];

/// What a request's credentials amount to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthOutcome {
    Allowed,
    /// Missing, malformed or wrong credentials (401).
    Denied,
    /// Too many checks already queued (429); try again shortly.
    Busy,
}

/// Checks `Authorization: Basic` headers against `basic_auth_users`.
pub struct Authenticator {
    users: HashMap<String, Secret>,
    key: hmac::Key,
    /// Verified tags and when each was last used.
    verified: Arc<Mutex<HashMap<Tag, Instant>>>,
    /// [`CACHE_WINDOW`] but in tests.
    window: Duration,
    /// One bcrypt at a time.
    gate: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
    verifications: AtomicU64,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("users", &self.users.len())
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// `users`: user name → bcrypt hash (validated by `WebConfig`).
    pub fn new(users: &[(String, Secret)]) -> Self {
        let rng = ring::rand::SystemRandom::new();
        // Only fails if the OS has no randomness; a fixed key would still
        // keep passwords out of memory, it just makes tags predictable.
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &rng)
            .unwrap_or_else(|_| hmac::Key::new(hmac::HMAC_SHA256, b"upstream-exporter"));
        Authenticator {
            users: users.iter().cloned().collect(),
            key,
            verified: Arc::default(),
            window: CACHE_WINDOW,
            gate: Arc::new(Semaphore::new(1)),
            waiting: Arc::new(AtomicUsize::new(0)),
            verifications: AtomicU64::new(0),
        }
    }

    /// Check a request's `Authorization` header.
    pub async fn check(&self, authorization: Option<&HeaderValue>) -> AuthOutcome {
        let Some((user, password)) = authorization.and_then(parse_basic) else {
            return AuthOutcome::Denied;
        };
        let known = self.users.get(&user);
        let hash = known.map_or(DECOY_HASH, Secret::expose);
        let tag = self.tag(&user, hash, &password);
        if known.is_some() && self.remembered(&tag) {
            return AuthOutcome::Allowed;
        }
        let Some(queued) = Queued::join(&self.waiting) else {
            return AuthOutcome::Busy;
        };
        let Ok(permit) = self.gate.clone().acquire_owned().await else {
            return AuthOutcome::Denied;
        };
        drop(queued);
        // Concurrent requests with the same credentials wait here while the
        // first is verified: it may have answered for them all.
        if known.is_some() && self.remembered(&tag) {
            return AuthOutcome::Allowed;
        }
        self.verifications.fetch_add(1, Ordering::Relaxed);
        let hash = hash.to_owned();
        let verified = known.is_some().then(|| self.verified.clone());
        let window = self.window;
        // The permit moves into the blocking task and is released only
        // after a success is remembered: a client that hangs up mid-check
        // cannot start a second bcrypt beside it, and requests queued with
        // the same credentials find the success when they get their turn.
        let matched = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let matched = bcrypt::verify(&password, &hash).unwrap_or(false);
            if matched && let Some(verified) = verified {
                remember(&verified, tag, window);
            }
            matched
        })
        .await
        .unwrap_or(false);
        if matched && known.is_some() {
            AuthOutcome::Allowed
        } else {
            AuthOutcome::Denied
        }
    }

    /// bcrypt checks run so far (tests assert the cache works).
    #[doc(hidden)]
    pub fn bcrypt_verifications(&self) -> u64 {
        self.verifications.load(Ordering::Relaxed)
    }

    fn tag(&self, user: &str, hash: &str, password: &[u8]) -> Tag {
        let mut ctx = hmac::Context::with_key(&self.key);
        // Length-prefixed, so no two different triples hash the same bytes.
        for part in [user.as_bytes(), hash.as_bytes(), password] {
            ctx.update(&(part.len() as u64).to_le_bytes());
            ctx.update(part);
        }
        let mut tag = [0u8; 32];
        tag.copy_from_slice(ctx.sign().as_ref());
        tag
    }

    /// Whether `tag` was verified and used within the window; a use renews it.
    fn remembered(&self, tag: &Tag) -> bool {
        let Ok(mut verified) = self.verified.lock() else {
            return false;
        };
        match verified.get_mut(tag) {
            Some(used) if used.elapsed() < self.window => {
                *used = Instant::now();
                true
            }
            _ => false,
        }
    }
}

/// Add a verified triple, dropping expired entries, then the least recently
/// used, when full.
fn remember(verified: &Mutex<HashMap<Tag, Instant>>, tag: Tag, window: Duration) {
    let Ok(mut verified) = verified.lock() else {
        return;
    };
    if verified.len() >= CACHE_CAPACITY {
        verified.retain(|_, at| at.elapsed() < window);
    }
    if verified.len() >= CACHE_CAPACITY
        && let Some(oldest) = verified.iter().min_by_key(|(_, at)| **at).map(|(t, _)| *t)
    {
        verified.remove(&oldest);
    }
    verified.insert(tag, Instant::now());
}

/// A place in the bcrypt queue, given back on drop (also when the request
/// is abandoned while waiting).
struct Queued(Arc<AtomicUsize>);

impl Queued {
    fn join(waiting: &Arc<AtomicUsize>) -> Option<Queued> {
        let before = waiting.fetch_add(1, Ordering::AcqRel);
        let place = Queued(waiting.clone());
        (before < MAX_WAITING).then_some(place)
    }
}

impl Drop for Queued {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// `Basic base64(user:password)` → (user, password), as Go's
/// `Request.BasicAuth` reads it.
fn parse_basic(value: &HeaderValue) -> Option<(String, Vec<u8>)> {
    let text = value.to_str().ok()?;
    let (scheme, encoded) = text.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    let user = String::from_utf8(decoded[..colon].to_vec()).ok()?;
    Some((user, decoded[colon + 1..].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user: &str, password: &str) -> HeaderValue {
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        HeaderValue::from_str(&format!("Basic {encoded}")).unwrap()
    }

    fn authenticator() -> Authenticator {
        let hash = bcrypt::hash("right", 4).unwrap();
        Authenticator::new(&[("alice".to_owned(), Secret::new(hash))])
    }

    #[test]
    fn decoy_hash_is_a_cost_10_bcrypt_hash() {
        let parts: bcrypt::HashParts = DECOY_HASH.parse().unwrap();
        assert_eq!(parts.get_cost(), 10);
    }

    #[test]
    fn basic_header_parsing() {
        assert_eq!(
            parse_basic(&basic("alice", "a:b")),
            Some(("alice".to_owned(), b"a:b".to_vec()))
        );
        assert_eq!(
            parse_basic(&HeaderValue::from_static("bAsIc YWxpY2U6eA==")),
            Some(("alice".to_owned(), b"x".to_vec()))
        );
        assert_eq!(parse_basic(&HeaderValue::from_static("Bearer abc")), None);
        assert_eq!(parse_basic(&HeaderValue::from_static("Basic !!!")), None);
        // No colon: not a user:password pair.
        assert_eq!(
            parse_basic(&HeaderValue::from_static("Basic YWxpY2U=")),
            None
        );
    }

    #[tokio::test]
    async fn right_password_is_verified_once_then_remembered() {
        let auth = authenticator();
        for _ in 0..20 {
            assert_eq!(
                auth.check(Some(&basic("alice", "right"))).await,
                AuthOutcome::Allowed
            );
        }
        assert_eq!(auth.bcrypt_verifications(), 1);
    }

    #[tokio::test]
    async fn a_success_in_use_stays_remembered_past_the_window() {
        let mut auth = authenticator();
        auth.window = Duration::from_secs(2);
        let right = basic("alice", "right");
        assert_eq!(auth.check(Some(&right)).await, AuthOutcome::Allowed);
        // Used every 250 ms for 5 s: two and a half windows, one bcrypt
        // (a stall of up to 1.75 s between two uses would not matter).
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_millis(250)).await;
            assert_eq!(auth.check(Some(&right)).await, AuthOutcome::Allowed);
        }
        assert_eq!(auth.bcrypt_verifications(), 1);
        // Left unused for longer than the window, it is checked again.
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert_eq!(auth.check(Some(&right)).await, AuthOutcome::Allowed);
        assert_eq!(auth.bcrypt_verifications(), 2);
    }

    #[tokio::test]
    async fn wrong_passwords_and_unknown_users_are_never_cached_as_success() {
        let auth = authenticator();
        for _ in 0..3 {
            assert_eq!(
                auth.check(Some(&basic("alice", "wrong"))).await,
                AuthOutcome::Denied
            );
        }
        assert_eq!(
            auth.bcrypt_verifications(),
            3,
            "every wrong try runs bcrypt"
        );
        // An unknown user costs a (decoy) bcrypt run too, and fails.
        assert_eq!(
            auth.check(Some(&basic("mallory", "right"))).await,
            AuthOutcome::Denied
        );
        assert_eq!(auth.bcrypt_verifications(), 4);
        assert_eq!(auth.check(None).await, AuthOutcome::Denied);
        assert_eq!(
            auth.check(Some(&basic("alice", "right"))).await,
            AuthOutcome::Allowed
        );
        // The cached success is for that password only.
        assert_eq!(
            auth.check(Some(&basic("alice", "right "))).await,
            AuthOutcome::Denied
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_right_passwords_share_one_bcrypt_run() {
        let auth = Arc::new(authenticator());
        let checks: Vec<_> = (0..10)
            .map(|_| {
                let auth = auth.clone();
                tokio::spawn(async move { auth.check(Some(&basic("alice", "right"))).await })
            })
            .collect();
        for check in checks {
            assert_eq!(check.await.unwrap(), AuthOutcome::Allowed);
        }
        assert_eq!(auth.bcrypt_verifications(), 1);
    }

    #[test]
    fn queue_is_bounded_and_places_are_given_back() {
        let waiting = Arc::new(AtomicUsize::new(0));
        let places: Vec<_> = (0..MAX_WAITING)
            .map(|_| Queued::join(&waiting).expect("room in the queue"))
            .collect();
        assert!(Queued::join(&waiting).is_none(), "the queue is full");
        drop(places);
        assert_eq!(waiting.load(Ordering::Relaxed), 0);
        assert!(Queued::join(&waiting).is_some());
    }

    #[test]
    fn cache_is_bounded() {
        let auth = authenticator();
        for i in 0..(CACHE_CAPACITY + 10) {
            remember(
                &auth.verified,
                auth.tag("alice", "h", i.to_string().as_bytes()),
                auth.window,
            );
        }
        assert_eq!(auth.verified.lock().unwrap().len(), CACHE_CAPACITY);
        // The newest is always kept.
        let newest = auth.tag("alice", "h", (CACHE_CAPACITY + 9).to_string().as_bytes());
        assert!(auth.remembered(&newest));
    }
}
