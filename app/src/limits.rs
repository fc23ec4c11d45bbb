//! Rate limits of the API (the web UI's sign-in has its own, `fiktiv_web::security`):
//!
//! - **Bearer tokens:** a client address that sent `failed_tokens_per_address` requests
//!   with a missing, unknown, expired or revoked token within `failed_token_window_secs`
//!   gets `429 rate-limited` for every request until the window has passed, without its
//!   token being looked at. Guessing a token (32 random bytes) is hopeless anyway; the
//!   limit keeps a scanner from loading the database and the log. Requests without a
//!   known client address (the router called in-process) are not limited by address.
//! - **Reveal requests:** one person (`staff:<name>`, whatever token or account they
//!   use) may ask for `reveal_requests_per_person` reveals within
//!   `reveal_request_window_secs`. Every request still needs another person's approval;
//!   the limit keeps one person from flooding the approvers. Decided by the domain
//!   (`domain::reveal::request`, counted from the stored requests), so the web UI keeps
//!   it too.
//!
//! - **Checks:** account checks and leak scans run in the background, each reading whole
//!   targets. At most `concurrent_runs` may be running at once, counted and claimed in
//!   one serialized transaction by the domain (`fiktiv_delivery::checks::start`), for the
//!   API, the web UI and the CLI alike; starting one more answers `429 runs-busy`. The
//!   provisioning jobs themselves run on a fixed pool of `[provisioning] workers` tasks.
//!
//! The windows run on the vault clock. The count of bad tokens is in memory: per
//! instance, and reset by a restart (see SECURITY.md, known limits).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// `[limits]` in the configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Requests with a bad bearer token per client address per window.
    pub failed_tokens_per_address: u32,
    pub failed_token_window_secs: u64,
    /// Reveal requests per person per window.
    pub reveal_requests_per_person: u32,
    pub reveal_request_window_secs: u64,
    /// Account checks and leak scans running at once.
    pub concurrent_runs: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            failed_tokens_per_address: 20,
            failed_token_window_secs: 60,
            reveal_requests_per_person: 10,
            reveal_request_window_secs: 60 * 60,
            concurrent_runs: 4,
        }
    }
}

/// Keys kept before stale ones are swept.
const SWEEP_AT: usize = 10_000;

/// Events per key in a sliding window. Keys are hashed, so what a client sent is not
/// kept in memory.
#[derive(Debug)]
pub struct Window {
    max: usize,
    window: TimeDelta,
    seen: Mutex<HashMap<[u8; 32], VecDeque<DateTime<Utc>>>>,
}

impl Window {
    pub fn new(max: u32, window_secs: u64) -> Self {
        Self {
            max: usize::try_from(max.max(1)).unwrap_or(usize::MAX),
            window: i64::try_from(window_secs.max(1))
                .ok()
                .and_then(TimeDelta::try_seconds)
                .unwrap_or(TimeDelta::MAX),
            seen: Mutex::new(HashMap::new()),
        }
    }

    fn with<R>(
        &self,
        key: &str,
        now: DateTime<Utc>,
        f: impl FnOnce(&mut VecDeque<DateTime<Utc>>) -> R,
    ) -> R {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() > SWEEP_AT {
            let window = self.window;
            seen.retain(|_, q| q.back().is_some_and(|t| now - *t < window));
        }
        let q = seen
            .entry(Sha256::digest(key.as_bytes()).into())
            .or_default();
        while q.front().is_some_and(|t| now - *t >= self.window) {
            q.pop_front();
        }
        f(q)
    }

    /// The window's length in whole seconds (for `Retry-After`).
    pub fn seconds(&self) -> i64 {
        self.window.num_seconds()
    }

    /// Whether `key` has used up its window (nothing is recorded).
    pub fn exhausted(&self, key: &str, now: DateTime<Utc>) -> bool {
        let max = self.max;
        self.with(key, now, |q| q.len() >= max)
    }

    /// Records one event for `key`; `false` when that went over the limit (the event is
    /// not kept then, so a refused attempt does not extend the lockout).
    pub fn record(&self, key: &str, now: DateTime<Utc>) -> bool {
        let max = self.max;
        self.with(key, now, |q| {
            if q.len() >= max {
                return false;
            }
            q.push_back(now);
            true
        })
    }
}

/// The API's own limits, shared by every handler. The limits on reveal requests and on
/// running checks are not here: they hold for the web UI and the CLI too, so the domain
/// decides them (`domain::reveal::request`, `fiktiv_delivery::checks::start`).
#[derive(Debug)]
pub struct ApiLimits {
    pub failed_tokens: Window,
}

impl ApiLimits {
    pub fn new(c: &LimitsConfig) -> Self {
        Self {
            failed_tokens: Window::new(c.failed_tokens_per_address, c.failed_token_window_secs),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code

    use super::*;

    #[test]
    fn a_window_counts_slides_and_does_not_extend_on_refusal() {
        let w = Window::new(2, 60);
        let t0 = DateTime::parse_from_rfc3339("2026-03-02T09:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert!(!w.exhausted("a", t0));
        assert!(w.record("a", t0));
        assert!(w.record("a", t0 + TimeDelta::seconds(10)));
        assert!(w.exhausted("a", t0 + TimeDelta::seconds(11)));
        assert!(!w.record("a", t0 + TimeDelta::seconds(50)));
        assert!(!w.exhausted("b", t0), "keys are apart");
        // The first event leaves the window at t0 + 60; the refused one was not kept.
        assert!(!w.exhausted("a", t0 + TimeDelta::seconds(60)));
        assert!(w.record("a", t0 + TimeDelta::seconds(60)));
        assert!(w.exhausted("a", t0 + TimeDelta::seconds(61)));
    }
}
