//! `/metrics`: what an operator watches, in the Prometheus text format (OpenMetrics
//! 1.0, as the Prometheus project's `prometheus-client` writes it).
//!
//! Two kinds of values:
//!
//! - **Read from the database at scrape time** (the same on every instance, because the
//!   instances share the database): jobs per target and state, when each target was
//!   last reconciled, open alerts, the last leak scan, reviews due and overdue, key
//!   versions and their encryptions, the number of audit events.
//! - **Counted by this process**: the HTTP request latency histogram, per route
//!   template (never a path with ids), method and status class.
//!
//! No value is personal data: labels are target names, states, alert kinds, key
//! versions, route templates, methods and status classes.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::AtomicU64;

use chrono::{DateTime, Utc};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::context::Context;
use fiktiv_routine::counts;
use fiktiv_routine::{DomainError, DomainResult};

/// Latency buckets in seconds.
const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Labels of one request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The route template (`/api/v1/cases/{case_id}`), or `unmatched`.
    pub route: String,
    pub method: String,
    /// `2xx`, `3xx`, `4xx` or `5xx`.
    pub status: String,
}

type HistogramFamily = Family<RequestLabels, Histogram, fn() -> Histogram>;

fn new_histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

/// The metrics this process counts itself.
#[derive(Debug, Clone)]
pub struct HttpMetrics {
    requests: HistogramFamily,
}

impl Default for HttpMetrics {
    fn default() -> Self {
        Self {
            requests: Family::new_with_constructor(new_histogram),
        }
    }
}

impl HttpMetrics {
    /// Counts one finished request.
    pub fn observe(&self, route: &str, method: &str, status: u16, seconds: f64) {
        let class = match status {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        self.requests
            .get_or_create(&RequestLabels {
                route: route.to_owned(),
                method: method.to_owned(),
                status: class.to_owned(),
            })
            .observe(seconds);
    }
}

/// What the database says at scrape time.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub now: Option<DateTime<Utc>>,
    /// (target, state) → jobs; every target in force has every state.
    pub jobs: BTreeMap<(String, String), i64>,
    /// target → when a reconciliation last read it completely (None: never).
    pub reconciled: BTreeMap<String, Option<DateTime<Utc>>>,
    /// alert kind → open (not acknowledged) alerts.
    pub open_alerts: BTreeMap<String, i64>,
    /// The last finished leak scan: (findings, finished at).
    pub last_leak_scan: Option<(i64, DateTime<Utc>)>,
    pub reviews_due_soon: i64,
    pub reviews_overdue: i64,
    /// (version, state) → (encryptions, data keys).
    pub keys: BTreeMap<(i64, String), (i64, i64)>,
    pub audit_events: i64,
}

const JOB_STATES: [&str; 4] = ["pending", "running", "failed", "done"];
const ALERT_KINDS: [&str; 3] = ["leak-found", "egress-blocked", "job-failed"];

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Reads everything the metrics show from the database, at the vault clock's now.
pub async fn snapshot(ctx: &Context) -> DomainResult<Snapshot> {
    let vault = &ctx.vault;
    let now = vault.now();
    let mut s = Snapshot {
        now: Some(now),
        ..Snapshot::default()
    };

    let set = ctx.delivery.runtime.targets(vault).await?;
    let mut targets: BTreeSet<String> = set.entries.keys().map(|n| n.to_string()).collect();
    let counts = fiktiv_delivery::jobs::counts(vault).await?;
    targets.extend(counts.iter().map(|(t, _, _)| t.clone()));
    for t in &targets {
        for st in JOB_STATES {
            s.jobs.insert((t.clone(), st.to_owned()), 0);
        }
    }
    for (t, st, n) in counts {
        s.jobs.insert((t, st), n);
    }

    for t in set.entries.keys() {
        s.reconciled.insert(t.to_string(), None);
    }
    for (t, at) in counts::reconciled(vault).await? {
        if set.entries.keys().any(|n| n.as_str() == t) {
            s.reconciled.insert(t, parse_time(&at));
        }
    }

    for k in ALERT_KINDS {
        s.open_alerts.insert(k.to_owned(), 0);
    }
    for (kind, n) in counts::open_alerts(vault).await? {
        s.open_alerts.insert(kind, n);
    }

    if let Some((findings, at)) = counts::last_leak_scan(vault).await? {
        if let Some(at) = at.as_deref().and_then(parse_time) {
            s.last_leak_scan = Some((findings, at));
        }
    }

    for (country, last) in counts::open_case_reviews(vault).await? {
        let country = fiktiv_routine::parse_country(&country)?;
        let last = fiktiv_routine::parse_date(&last)?;
        let a = ctx
            .rules
            .review_policy(country)
            .assess(last, fiktiv_routine::today(vault, country));
        match a.status {
            fiktiv_policies::review::ReviewStatus::DueSoon => s.reviews_due_soon += 1,
            fiktiv_policies::review::ReviewStatus::Overdue => s.reviews_overdue += 1,
            fiktiv_policies::review::ReviewStatus::Ok => {}
        }
    }

    for k in vault
        .key_versions()
        .await
        .map_err(|e| DomainError::Internal(e.to_string()))?
    {
        s.keys
            .insert((k.version, k.state.clone()), (k.encryptions, k.data_keys));
    }

    s.audit_events = counts::audit_events(vault).await?;
    Ok(s)
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TargetState {
    target: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TargetLabel {
    target: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KeyLabel {
    version: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabel {
    version: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

fn age(now: Option<DateTime<Utc>>, at: DateTime<Utc>) -> f64 {
    now.map_or(0.0, |n| (n - at).num_milliseconds().max(0) as f64 / 1000.0)
}

/// The exposition text of `snap` and the process's own `http` metrics.
pub fn render(snap: &Snapshot, http: &HttpMetrics) -> Result<String, std::fmt::Error> {
    let mut reg = Registry::default();

    let info = Family::<VersionLabel, Gauge>::default();
    info.get_or_create(&VersionLabel {
        version: env!("CARGO_PKG_VERSION").to_owned(),
    })
    .set(1);
    reg.register("fiktiv_build_info", "The running version (always 1)", info);

    let jobs = Family::<TargetState, Gauge>::default();
    for ((t, st), n) in &snap.jobs {
        jobs.get_or_create(&TargetState {
            target: t.clone(),
            state: st.clone(),
        })
        .set(*n);
    }
    reg.register(
        "fiktiv_provisioning_jobs",
        "Outbox jobs per target and state (pending, running, failed, done)",
        jobs,
    );

    let rec_age = Family::<TargetLabel, FloatGauge>::default();
    let rec_at = Family::<TargetLabel, FloatGauge>::default();
    for (t, at) in &snap.reconciled {
        let l = TargetLabel { target: t.clone() };
        match at {
            Some(at) => {
                rec_age.get_or_create(&l).set(age(snap.now, *at));
                rec_at
                    .get_or_create(&l)
                    .set(at.timestamp_millis() as f64 / 1000.0);
            }
            None => {
                rec_age.get_or_create(&l).set(f64::INFINITY);
            }
        }
    }
    reg.register(
        "fiktiv_reconcile_last_success_age_seconds",
        "Seconds since a reconciliation last read the target completely (+Inf: never)",
        rec_age,
    );
    reg.register(
        "fiktiv_reconcile_last_success_timestamp_seconds",
        "When a reconciliation last read the target completely (Unix time)",
        rec_at,
    );

    let alerts = Family::<KindLabel, Gauge>::default();
    for (k, n) in &snap.open_alerts {
        alerts.get_or_create(&KindLabel { kind: k.clone() }).set(*n);
    }
    reg.register(
        "fiktiv_alerts_open",
        "Alerts not acknowledged, by kind (leak-found: leak-scan findings)",
        alerts,
    );

    if let Some((findings, at)) = snap.last_leak_scan {
        let g = Gauge::<i64, std::sync::atomic::AtomicI64>::default();
        g.set(findings);
        reg.register(
            "fiktiv_leak_scan_last_findings",
            "Cases found or suspect in the last finished leak scan",
            g,
        );
        let a = FloatGauge::default();
        a.set(age(snap.now, at));
        reg.register(
            "fiktiv_leak_scan_last_age_seconds",
            "Seconds since the last leak scan finished",
            a,
        );
    }

    let reviews = Family::<StatusLabel, Gauge>::default();
    reviews
        .get_or_create(&StatusLabel {
            status: "due-soon".into(),
        })
        .set(snap.reviews_due_soon);
    reviews
        .get_or_create(&StatusLabel {
            status: "overdue".into(),
        })
        .set(snap.reviews_overdue);
    reg.register(
        "fiktiv_reviews",
        "Open cases whose yearly review is due soon or overdue",
        reviews,
    );

    let enc = Family::<KeyLabel, Gauge>::default();
    let dks = Family::<KeyLabel, Gauge>::default();
    for ((v, st), (e, d)) in &snap.keys {
        let l = KeyLabel {
            version: v.to_string(),
            state: st.clone(),
        };
        enc.get_or_create(&l).set(*e);
        dks.get_or_create(&l).set(*d);
    }
    reg.register(
        "fiktiv_key_encryptions",
        "Encryptions by each key-encryption key version (limit 2^31 per version)",
        enc,
    );
    reg.register(
        "fiktiv_key_data_keys",
        "Case data keys wrapped by each key-encryption key version",
        dks,
    );

    let audit = Gauge::<i64, std::sync::atomic::AtomicI64>::default();
    audit.set(snap.audit_events);
    reg.register(
        "fiktiv_audit_events",
        "Events in the audit trail (it must never go down)",
        audit,
    );

    reg.register(
        "fiktiv_http_request_duration_seconds",
        "HTTP request latency of this instance, by route template, method and status class",
        http.requests.clone(),
    );

    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &reg)?;
    Ok(out)
}

/// The metrics state shared by the request middleware and the handler.
#[derive(Debug, Default)]
pub struct MetricsState {
    pub http: HttpMetrics,
    pub access: crate::config::MetricsAccess,
}
