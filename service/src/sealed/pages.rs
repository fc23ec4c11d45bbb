//! The routes that answer while sealed: health, readiness, the unseal step, and a 503
//! for everything else, in the reader's language.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Json, Router};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{Gate, Refusal, Status, Via};
use fiktiv_app::i18n::{Lang, Tr};
use fiktiv_web::labels::fill;

pub(super) fn sealed_router(gate: Arc<Gate>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/unseal", get(unseal_page).post(unseal_form))
        .route("/static/fiktiv.css", get(fiktiv_web::pages::css))
        .route("/api/v1/unseal", get(unseal_status).post(unseal_api))
        .fallback(unavailable)
        .layer(axum::extract::DefaultBodyLimit::max(4096))
        .with_state(gate)
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
    sealed: bool,
}

async fn healthz() -> Json<Health> {
    Json(Health {
        status: "sealed",
        sealed: true,
    })
}

#[derive(Serialize)]
struct Ready {
    status: &'static str,
    sealed: bool,
    database: bool,
    keys: bool,
    audit: bool,
}

async fn readyz(State(gate): State<Arc<Gate>>) -> (StatusCode, Json<Ready>) {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(Ready {
            status: "sealed",
            sealed: true,
            database: gate.db.ping().await.is_ok(),
            keys: false,
            audit: false,
        }),
    )
}

#[derive(Serialize)]
struct UnsealState {
    state: &'static str,
    entered: usize,
    threshold: usize,
}

fn state_of(s: Status) -> UnsealState {
    match s {
        Status::Sealed { entered, threshold } => UnsealState {
            state: "sealed",
            entered,
            threshold,
        },
        Status::Open => UnsealState {
            state: "open",
            entered: 0,
            threshold: 0,
        },
    }
}

async fn unseal_status(State(gate): State<Arc<Gate>>) -> Json<UnsealState> {
    Json(state_of(gate.status().await))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ShareBody {
    share: Zeroizing<String>,
}

#[derive(Serialize)]
struct ProblemBody {
    r#type: &'static str,
    title: &'static str,
    status: u16,
    detail: &'static str,
    code: &'static str,
}

fn problem(
    status: StatusCode,
    title: &'static str,
    code: &'static str,
    detail: &'static str,
) -> Response {
    let mut r = (
        status,
        Json(ProblemBody {
            r#type: "about:blank",
            title,
            status: status.as_u16(),
            detail,
            code,
        }),
    )
        .into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    r
}

/// `POST /api/v1/unseal` `{"share": "..."}`: one share; answers where unsealing stands.
async fn unseal_api(
    State(gate): State<Arc<Gate>>,
    body: Result<Json<ShareBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Ok(Json(body)) = body else {
        return problem(
            StatusCode::BAD_REQUEST,
            "Bad request",
            "bad-body",
            "send {\"share\": \"fks1-...\"} as application/json",
        );
    };
    match gate.enter(&body.share, Via::Api).await {
        Ok(s) => Json(state_of(s)).into_response(),
        Err(r) => problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Share refused",
            r.code(),
            r.message(),
        ),
    }
}

fn lang(headers: &HeaderMap) -> Lang {
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == fiktiv_web::pages::LANG_COOKIE)
        .map(|(_, v)| v.to_string());
    Lang::negotiate(
        cookie.as_deref(),
        headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok()),
    )
}

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A whole page: no script, no outside resource.
fn page(tr: &Tr, status: StatusCode, body: &str) -> Response {
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"referrer\" content=\"no-referrer\">\
         <title>{title} · {app}</title><link rel=\"stylesheet\" href=\"/static/fiktiv.css\">\
         </head><body><a class=\"skip-link\" href=\"#main\">{skip}</a>\
         <header class=\"top\"><div class=\"top-inner\"><p class=\"brand\">{app}</p></div></header>\
         <main id=\"main\" tabindex=\"-1\"><h1>{title}</h1>{body}</main>\
         <footer class=\"foot\"><p>{foot}</p></footer></body></html>\n",
        lang = tr.lang.code(),
        title = esc(tr.t("sealed.title")),
        app = esc(tr.t("app.name")),
        skip = esc(tr.t("layout.skip-to-content")),
        foot = esc(tr.t("layout.footer")),
    );
    let mut r = (status, html).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    r
}

fn progress(tr: &Tr, entered: usize, threshold: usize) -> String {
    fill(
        tr.t("sealed.progress"),
        &[
            ("entered", &entered.to_string()),
            ("threshold", &threshold.to_string()),
        ],
    )
}

#[derive(Deserialize)]
struct PageQuery {
    #[serde(default)]
    r: Option<String>,
}

fn refusal_key(code: &str) -> Option<&'static str> {
    Some(match code {
        "not-a-share" => "sealed.not-a-share",
        "other-set" => "sealed.other-set",
        "repeated" => "sealed.repeated",
        "do-not-open" => "sealed.do-not-open",
        "failed" => "sealed.failed",
        "accepted" => "sealed.accepted",
        _ => return None,
    })
}

/// `GET /unseal`: the form, where unsealing stands, and the outcome of the last share.
async fn unseal_page(
    State(gate): State<Arc<Gate>>,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<PageQuery>,
) -> Response {
    let tr = gate.catalog.tr(lang(&headers));
    let mut body = String::new();
    if let Some(key) = q.r.as_deref().and_then(refusal_key) {
        let role = if key == "sealed.accepted" {
            "status"
        } else {
            "alert"
        };
        body.push_str(&format!(
            "<p class=\"notice\" id=\"unseal-outcome\" role=\"{role}\">{}</p>",
            esc(tr.t(key))
        ));
    }
    match gate.status().await {
        Status::Open => {
            body.push_str(&format!(
                "<p id=\"unseal-open\">{}</p><p><a href=\"/signin\">{}</a></p>",
                esc(tr.t("sealed.opened")),
                esc(tr.t("sealed.signin"))
            ));
        }
        Status::Sealed { entered, threshold } => {
            body.push_str(&format!(
                "<p>{}</p><p id=\"unseal-progress\">{}</p>\
                 <form method=\"post\" action=\"/unseal\" class=\"form\" autocomplete=\"off\">\
                 <div class=\"field\"><label for=\"share\">{}</label>\
                 <p class=\"hint\" id=\"share-hint\">{}</p>\
                 <input id=\"share\" name=\"share\" type=\"password\" autocomplete=\"off\" \
                 spellcheck=\"false\" required maxlength=\"200\" \
                 aria-describedby=\"share-hint\"></div>\
                 <button type=\"submit\" class=\"primary\">{}</button></form>",
                esc(&fill(
                    tr.t("sealed.explain"),
                    &[("threshold", &threshold.to_string())]
                )),
                esc(&progress(&tr, entered, threshold)),
                esc(tr.t("sealed.share-label")),
                esc(tr.t("sealed.share-hint")),
                esc(tr.t("sealed.submit")),
            ));
        }
    }
    page(&tr, StatusCode::OK, &body)
}

#[derive(Deserialize)]
struct ShareForm {
    share: Zeroizing<String>,
}

/// `POST /unseal`: one share from the page, then back to the page (post/redirect/get,
/// so that reloading never sends a share again).
async fn unseal_form(
    State(gate): State<Arc<Gate>>,
    form: Result<Form<ShareForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let code = match form.ok() {
        None => Refusal::NotAShare.code(),
        Some(Form(f)) => match gate.enter(&f.share, Via::Web).await {
            Ok(_) => "accepted",
            Err(r) => r.code(),
        },
    };
    Redirect::to(&format!("/unseal?r={code}")).into_response()
}

/// Everything else: 503, with a text in the reader's language (HTML) or a problem
/// (the API).
async fn unavailable(
    State(gate): State<Arc<Gate>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    let mut r = if uri.path().starts_with("/api/") || uri.path().starts_with("/ss12000/") {
        problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "Sealed",
            "sealed",
            "Fiktiv is sealed: its keys are not open until the key holders enter their shares (POST /api/v1/unseal, or the /unseal page)",
        )
    } else {
        let tr = gate.catalog.tr(lang(&headers));
        let body = format!(
            "<p id=\"sealed-unavailable\">{}</p><p><a href=\"/unseal\">{}</a></p>",
            esc(tr.t("sealed.unavailable")),
            esc(tr.t("sealed.to-unseal"))
        );
        page(&tr, StatusCode::SERVICE_UNAVAILABLE, &body)
    };
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
    r
}
