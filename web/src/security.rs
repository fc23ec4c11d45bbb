//! Response headers, cookies, request-origin checks and the sign-in rate limiter.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Mutex;

use axum::extract::ConnectInfo;
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::response::Response;
use chrono::{DateTime, TimeDelta, Utc};
use sha2::{Digest, Sha256};

/// The Content-Security-Policy of every UI response: no inline script or style, no
/// framing, forms post only to us.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
                       frame-ancestors 'none'; form-action 'self'; base-uri 'none'";

/// Add the security headers to a UI response. Pages are never cached.
pub async fn headers(mut res: Response) -> Response {
    let h = res.headers_mut();
    let set = |h: &mut HeaderMap, k: header::HeaderName, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    set(h, header::CONTENT_SECURITY_POLICY, CSP);
    set(
        h,
        header::STRICT_TRANSPORT_SECURITY,
        "max-age=31536000; includeSubDomains",
    );
    set(h, header::REFERRER_POLICY, "no-referrer");
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(
        h,
        header::HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    set(
        h,
        header::HeaderName::from_static("permissions-policy"),
        "camera=(), microphone=(), geolocation=(), interest-cohort=()",
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        set(h, header::CACHE_CONTROL, "no-store");
    }
    res
}

/// The value of cookie `name` in the request, if any.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// A `Set-Cookie` value for a `__Host-` cookie: Secure, HttpOnly, SameSite=Strict,
/// Path=/, no Domain. `max_age` `None` makes it a browser-session cookie.
pub fn set_cookie(name: &str, value: &str, max_age: Option<i64>) -> String {
    let mut s = format!("{name}={value}; Secure; HttpOnly; SameSite=Strict; Path=/");
    if let Some(a) = max_age {
        s.push_str(&format!("; Max-Age={a}"));
    }
    s
}

/// Like [`set_cookie`] but `SameSite=Lax`: only for the cookie that binds an OpenID
/// Connect flow to the browser, which must come along when the provider sends the
/// browser back with a top-level GET from its own site.
pub fn set_cookie_lax(name: &str, value: &str, max_age: i64) -> String {
    format!("{name}={value}; Secure; HttpOnly; SameSite=Lax; Path=/; Max-Age={max_age}")
}

/// A `Set-Cookie` value that deletes cookie `name`.
pub fn clear_cookie(name: &str) -> String {
    set_cookie(name, "", Some(0))
}

/// A state-changing request from another site: `Sec-Fetch-Site` says it came from
/// another origin, or (from browsers without it) `Origin` names another host.
/// `Origin: null` is what Chromium sends on every form post under
/// `Referrer-Policy: no-referrer`, so it is not taken as cross-site. SameSite=Strict
/// cookies and the CSRF token are the main defence; this is a second one.
pub fn cross_site(method: &Method, headers: &HeaderMap) -> bool {
    if method == Method::GET || method == Method::HEAD {
        return false;
    }
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return !matches!(site, "same-origin" | "none");
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    if origin == "null" {
        return false;
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let authority = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .unwrap_or("");
    authority.is_empty() || !authority.eq_ignore_ascii_case(host)
}

/// The client address of a request (the TCP peer; behind a proxy, the proxy).
pub fn client_addr(ext: &axum::http::Extensions) -> String {
    ext.get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Sign-in attempts per key (client address, or account name) in a sliding window.
/// In memory: per instance, and reset by a restart; the per-account lockout is in the
/// database and survives both.
#[derive(Debug)]
pub struct RateLimiter {
    max: usize,
    window: TimeDelta,
    seen: Mutex<HashMap<String, VecDeque<DateTime<Utc>>>>,
}

/// Keys kept before stale ones are swept.
const SWEEP_AT: usize = 10_000;

impl RateLimiter {
    pub fn new(max: u32, window: TimeDelta) -> Self {
        Self {
            max: usize::try_from(max.max(1)).unwrap_or(usize::MAX),
            window,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Record an attempt for each key; `false` when any of them is over the limit.
    /// Keys are hashed, so what a person typed as a name is not kept in memory.
    pub fn allow(&self, keys: &[&str], now: DateTime<Utc>) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() > SWEEP_AT {
            let window = self.window;
            seen.retain(|_, q| q.back().is_some_and(|t| now - *t < window));
        }
        let mut ok = true;
        for key in keys {
            let k = hex::encode(Sha256::digest(key.as_bytes()));
            let q = seen.entry(k).or_default();
            while q.front().is_some_and(|t| now - *t >= self.window) {
                q.pop_front();
            }
            if q.len() >= self.max {
                ok = false;
            } else {
                q.push_back(now);
            }
        }
        ok
    }
}

/// A local path to go back to after a form (`/x?y`), never another site.
pub fn local_path(next: &str) -> Option<&str> {
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && next.len() <= 512
        && next.chars().all(|c| c.is_ascii_graphic());
    ok.then_some(next)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn limiter_counts_per_key_in_a_window() {
        let l = RateLimiter::new(2, TimeDelta::seconds(60));
        let t = Utc.with_ymd_and_hms(2025, 1, 1, 9, 0, 0).unwrap();
        assert!(l.allow(&["ip:1", "acct:a"], t));
        assert!(l.allow(&["ip:1", "acct:b"], t));
        assert!(!l.allow(&["ip:1", "acct:c"], t));
        assert!(l.allow(&["ip:2", "acct:c"], t));
        assert!(l.allow(&["ip:1"], t + TimeDelta::seconds(61)));
    }

    #[test]
    fn cookies_and_origins() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; __Host-fiktiv=xyz"),
        );
        h.insert(
            header::HOST,
            HeaderValue::from_static("fiktiv.example:8080"),
        );
        assert_eq!(cookie(&h, "__Host-fiktiv"), Some("xyz"));
        assert_eq!(cookie(&h, "b"), None);
        assert!(!cross_site(&Method::POST, &h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://fiktiv.example:8080"),
        );
        assert!(!cross_site(&Method::POST, &h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert!(cross_site(&Method::POST, &h));
        assert!(!cross_site(&Method::GET, &h));
        h.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(!cross_site(&Method::POST, &h));
        h.insert("sec-fetch-site", HeaderValue::from_static("same-site"));
        assert!(cross_site(&Method::POST, &h));
        h.insert("sec-fetch-site", HeaderValue::from_static("same-origin"));
        assert!(!cross_site(&Method::POST, &h));
        assert_eq!(
            set_cookie("__Host-fiktiv", "v", None),
            "__Host-fiktiv=v; Secure; HttpOnly; SameSite=Strict; Path=/"
        );
    }

    #[test]
    fn only_local_paths() {
        assert_eq!(local_path("/reveals/1"), Some("/reveals/1"));
        assert_eq!(local_path("//evil.example"), None);
        assert_eq!(local_path("https://evil.example"), None);
        assert_eq!(local_path("/\\evil"), None);
    }
}
