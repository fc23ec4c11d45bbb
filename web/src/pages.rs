//! The handlers of the page shell: sign-in, sign-out, home, password change, step-up
//! and the language switch. Thin: parse, check the session and the CSRF token, call
//! one function of `accounts`/`session`, render.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::i18n::{Lang, Tr};
use super::security::{clear_cookie, cookie, cross_site, local_path, set_cookie};
use super::views::{
    role_intro_key, Base, HomePage, MessagePage, PasswordPage, SigninPage, StepUpPage, REAUTH,
};
use super::Web;
use fiktiv_app::AppState;
use fiktiv_routine::DomainError;
use fiktiv_staff::accounts::{self, PasswordChange, Reauth, Refusal};
use fiktiv_staff::session::{self, Session, COOKIE};

/// The double-submit CSRF cookie of forms shown before sign-in.
pub const ANON_CSRF_COOKIE: &str = "__Host-fiktiv-csrf";
/// The language choice.
pub const LANG_COOKIE: &str = "__Host-fiktiv-lang";

/// What every handler starts from.
pub(super) struct Req {
    pub(super) tr: Tr,
    pub(super) session: Option<Session>,
    /// A session cookie was sent but opened no live session (expired, ended).
    pub(super) stale_cookie: bool,
}

pub(super) async fn begin(st: &AppState, web: &Web, headers: &HeaderMap) -> Result<Req, Response> {
    let lang = Lang::negotiate(
        cookie(headers, LANG_COOKIE),
        headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok()),
    );
    let tr = web.catalog.tr(lang);
    let (session, stale_cookie) = match cookie(headers, COOKIE) {
        Some(c) => match session::lookup(&st.ctx.vault, web.timeouts, c).await {
            Ok(s) => {
                let stale = s.is_none();
                (s, stale)
            }
            Err(e) => return Err(internal(web, &tr, e)),
        },
        None => (None, false),
    };
    Ok(Req {
        tr,
        session,
        stale_cookie,
    })
}

pub(super) fn html(status: StatusCode, t: &impl Template) -> Response {
    match t.render() {
        Ok(body) => (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            body,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template rendering failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

fn message(tr: &Tr, status: StatusCode, heading: &'static str, text: &'static str) -> Response {
    message_with_link(tr, status, heading, text, "/", "error.to-start")
}

/// A page with a heading, a text and one link (all message keys but the link).
pub(super) fn message_with_link(
    tr: &Tr,
    status: StatusCode,
    heading: &'static str,
    text: &'static str,
    link_href: &'static str,
    link_label: &'static str,
) -> Response {
    let page = MessagePage {
        base: Base::new(tr.clone(), heading, String::new(), "/"),
        heading,
        text,
        link_href,
        link_label,
    };
    html(status, &page)
}

pub(super) fn internal(_web: &Web, tr: &Tr, e: DomainError) -> Response {
    tracing::error!(error = %e, "web UI request failed");
    message(
        tr,
        StatusCode::INTERNAL_SERVER_ERROR,
        "error.internal-title",
        "error.internal-text",
    )
}

/// 403 for a missing or wrong CSRF token, or a cross-site request.
pub(super) fn forbidden(tr: &Tr) -> Response {
    message(
        tr,
        StatusCode::FORBIDDEN,
        "error.forbidden-title",
        "error.forbidden-text",
    )
}

fn to_signin(ended: bool) -> Response {
    let target = if ended { "/signin?ended=1" } else { "/signin" };
    let mut r = Redirect::to(target).into_response();
    if ended {
        if let Ok(v) = clear_cookie(COOKIE).parse() {
            r.headers_mut().insert(header::SET_COOKIE, v);
        }
    }
    r
}

/// Where a request without a usable session is sent.
pub(super) enum Away {
    /// To sign in; `ended` when a session cookie was sent but has expired or ended.
    SignIn { ended: bool },
    /// To change the one-time password first.
    Password,
}

impl IntoResponse for Away {
    fn into_response(self) -> Response {
        match self {
            Away::SignIn { ended } => to_signin(ended),
            Away::Password => Redirect::to("/password").into_response(),
        }
    }
}

/// The signed-in session, or where to send the person instead.
pub(super) fn require_session(req: &Req, allow_must_change: bool) -> Result<&Session, Away> {
    match &req.session {
        None => Err(Away::SignIn {
            ended: req.stale_cookie,
        }),
        Some(s) if s.account.must_change_password && !allow_must_change => Err(Away::Password),
        Some(s) => Ok(s),
    }
}

fn base_for(
    st: &AppState,
    web: &Web,
    req: &Req,
    s: &Session,
    title: &'static str,
    here: &str,
) -> Base {
    Base::new(req.tr.clone(), title, s.csrf.clone(), here)
        .signed_in(&s.account, &st.ctx.authz)
        .idle_warning(web.timeouts.idle)
}

/// `GET /session/alive`: 204 while the session lives (and it is touched, so the idle
/// timeout starts again), 401 once it has ended. The page's script calls it when the
/// person chooses to keep working after the warning.
pub async fn session_alive(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    headers: HeaderMap,
) -> Response {
    match begin(&st, &web, &headers).await {
        Ok(req) if req.session.is_some() => StatusCode::NO_CONTENT.into_response(),
        Ok(_) => StatusCode::UNAUTHORIZED.into_response(),
        Err(r) => r,
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct CsrfOnly {
    csrf: String,
}

// ---------------------------------------------------------------------------
// Home
// ---------------------------------------------------------------------------

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct HomeQuery {
    /// `changed`: back from a password change.
    password: Option<String>,
}

pub async fn home(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Query(q): Query<HomeQuery>,
    headers: HeaderMap,
) -> Response {
    let req = match begin(&st, &web, &headers).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let s = match require_session(&req, false) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    let tasks = match fiktiv_app::tasks::tasks(&st.ctx, &st.ctx.authz, &s.account.principal()).await
    {
        Ok(t) => t,
        Err(e) => {
            // The start page still shows its links; the list says it could not be made.
            tracing::warn!(error = %e, "the start page's tasks could not be listed");
            Vec::new()
        }
    };
    let drafts = fiktiv_routine::drafts::list_own(&st.ctx.vault, &s.account.principal().id)
        .await
        .unwrap_or_default();
    let unread = fiktiv_app::notify::store::unread(&st.ctx.vault, &s.account.user_id)
        .await
        .unwrap_or_default();
    let page = HomePage {
        base: base_for(&st, &web, &req, s, "home.title", "/"),
        tasks,
        drafts,
        unread,
        intros: s.account.roles.iter().map(|r| role_intro_key(*r)).collect(),
        notice: (q.password.as_deref() == Some("changed"))
            .then_some("home.notice-password-changed"),
    };
    html(StatusCode::OK, &page)
}

// ---------------------------------------------------------------------------
// Sign-in and sign-out
// ---------------------------------------------------------------------------

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct SigninQuery {
    ended: Option<String>,
    out: Option<String>,
    draft: Option<String>,
}

/// The anonymous CSRF token: the cookie's, or a new one (with its Set-Cookie).
fn anon_csrf(headers: &HeaderMap) -> (String, Option<String>) {
    match cookie(headers, ANON_CSRF_COOKIE).filter(|c| c.len() == 43) {
        Some(c) => (c.to_owned(), None),
        None => {
            let t = session::random_token().to_string();
            let set = set_cookie(ANON_CSRF_COOKIE, &t, None);
            (t, Some(set))
        }
    }
}

fn signin_page(
    req: &Req,
    web: &Web,
    headers: &HeaderMap,
    status: StatusCode,
    name: String,
    error: Option<&'static str>,
    notice: Option<&'static str>,
) -> Response {
    signin_page_with(req, web, headers, status, name, error, notice, false)
}

// The page's parts, each its own argument as the template has them.
#[allow(clippy::too_many_arguments)]
fn signin_page_with(
    req: &Req,
    web: &Web,
    headers: &HeaderMap,
    status: StatusCode,
    name: String,
    error: Option<&'static str>,
    notice: Option<&'static str>,
    first_run: bool,
) -> Response {
    let (csrf, set) = anon_csrf(headers);
    let page = SigninPage {
        base: Base::new(req.tr.clone(), "signin.title", csrf, "/signin"),
        name,
        error,
        notice,
        oidc_provider: web.oidc.as_ref().map(|o| o.settings.provider_name.clone()),
        first_run,
    };
    let mut r = html(status, &page);
    if let Some(v) = set.and_then(|s| s.parse().ok()) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

pub async fn signin_form(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Query(q): Query<SigninQuery>,
    headers: HeaderMap,
) -> Response {
    let req = match begin(&st, &web, &headers).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    if req.session.is_some() {
        return Redirect::to("/").into_response();
    }
    let notice = if q.draft.is_some() {
        Some("signin.notice-draft")
    } else if q.ended.is_some() || req.stale_cookie {
        Some("signin.notice-ended")
    } else if q.out.is_some() {
        Some("signin.notice-signed-out")
    } else {
        None
    };
    // A first run (no account yet): the page names the command that makes the first.
    let first_run = fiktiv_staff::accounts::none_yet(&st.ctx.vault)
        .await
        .unwrap_or(false);
    let mut r = signin_page_with(
        &req,
        &web,
        &headers,
        StatusCode::OK,
        String::new(),
        None,
        notice,
        first_run,
    );
    if req.stale_cookie {
        if let Ok(v) = clear_cookie(COOKIE).parse() {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    r
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct SigninForm {
    csrf: String,
    name: String,
    password: Zeroizing<String>,
    code: String,
}

pub async fn signin(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    parts: Parts,
    Form(form): Form<SigninForm>,
) -> Response {
    let headers = &parts.headers;
    let req = match begin(&st, &web, headers).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let csrf_ok = cookie(headers, ANON_CSRF_COOKIE)
        .is_some_and(|c| !form.csrf.is_empty() && session::tokens_equal(c, &form.csrf));
    if cross_site(&parts.method, headers) || !csrf_ok {
        return forbidden(&req.tr);
    }
    let vault = &st.ctx.vault;
    let name = form.name.trim().to_owned();
    let ip = format!("ip:{}", super::security::client_addr(&parts.extensions));
    let acct = format!("acct:{name}");
    if !web.limiter.allow(&[&ip, &acct], vault.now()) {
        let audited = match accounts::actor_for(vault, &name).await {
            Ok(actor) => accounts::audit_refusal(vault, &actor, Refusal::RateLimited).await,
            Err(e) => Err(e),
        };
        if let Err(e) = audited {
            return internal(&web, &req.tr, e);
        }
        return signin_page(
            &req,
            &web,
            headers,
            StatusCode::TOO_MANY_REQUESTS,
            name,
            Some("signin.error-rate-limited"),
            None,
        );
    }
    match accounts::sign_in(vault, web.limits, &name, form.password, &form.code).await {
        Err(e) => internal(&web, &req.tr, e),
        Ok(Err(why)) => {
            tracing::info!(reason = why.code(), "sign-in refused");
            signin_page(
                &req,
                &web,
                headers,
                StatusCode::UNAUTHORIZED,
                name,
                Some("signin.error-failed"),
                None,
            )
        }
        Ok(Ok((account, new))) => {
            let target = if account.must_change_password {
                "/password"
            } else {
                "/"
            };
            let mut r = Redirect::to(target).into_response();
            for c in [
                set_cookie(COOKIE, &new.cookie_value, None),
                clear_cookie(ANON_CSRF_COOKIE),
            ] {
                if let Ok(v) = c.parse() {
                    r.headers_mut().append(header::SET_COOKIE, v);
                }
            }
            r
        }
    }
}

pub async fn signout(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    parts: Parts,
    Form(form): Form<CsrfOnly>,
) -> Response {
    let req = match begin(&st, &web, &parts.headers).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let s = match require_session(&req, true) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    if cross_site(&parts.method, &parts.headers) || !s.csrf_ok(&form.csrf) {
        return forbidden(&req.tr);
    }
    if let Err(e) = s.end(&st.ctx.vault).await {
        return internal(&web, &req.tr, e);
    }
    let mut r = Redirect::to("/signin?out=1").into_response();
    if let Ok(v) = clear_cookie(COOKIE).parse() {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

// ---------------------------------------------------------------------------
// Password change (required after a one-time password; offered in the header)
// ---------------------------------------------------------------------------

/// The forced change of a one-time password right after the sign-in with it (within
/// `step_up_valid_secs`): that sign-in proved the one-time password and a code, so
/// neither is asked again. Every other change asks for the current password and a code.
fn is_first_change(web: &Web, s: &Session, now: chrono::DateTime<chrono::Utc>) -> bool {
    s.account.must_change_password && s.signed_in_within(web.timeouts.step_up_valid, now)
}

fn password_page(
    st: &AppState,
    web: &Web,
    req: &Req,
    s: &Session,
    status: StatusCode,
    errors: Vec<(&'static str, &'static str)>,
) -> Response {
    let page = PasswordPage {
        base: base_for(st, web, req, s, "password.title", "/password"),
        errors,
        first_change: s.account.must_change_password,
        reauth: !is_first_change(web, s, st.ctx.vault.now()),
    };
    html(status, &page)
}

pub async fn password_form(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    headers: HeaderMap,
) -> Response {
    let req = match begin(&st, &web, &headers).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let s = match require_session(&req, true) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    if s.account.oidc {
        // The password of an OIDC account is the identity provider's.
        return Redirect::to("/").into_response();
    }
    password_page(&st, &web, &req, s, StatusCode::OK, Vec::new())
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct PasswordForm {
    csrf: String,
    current_password: Zeroizing<String>,
    code: String,
    new_password: Zeroizing<String>,
    confirm: Zeroizing<String>,
}

pub async fn password(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    parts: Parts,
    Form(form): Form<PasswordForm>,
) -> Response {
    let req = match begin(&st, &web, &parts.headers).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let s = match require_session(&req, true) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    if cross_site(&parts.method, &parts.headers) || !s.csrf_ok(&form.csrf) {
        return forbidden(&req.tr);
    }
    if s.account.oidc {
        return Redirect::to("/").into_response();
    }
    let vault = &st.ctx.vault;
    let first_change = is_first_change(&web, s, vault.now());
    // Empty fields first: nothing is checked or counted until the form is complete.
    let mut errors = Vec::new();
    if !first_change {
        if form.current_password.is_empty() {
            errors.push(("current_password", "password.error-current-missing"));
        }
        if form.code.trim().is_empty() {
            errors.push(("code", "password.error-code-missing"));
        }
    }
    errors.extend(accounts::check_new_password(
        &form.new_password,
        &form.confirm,
    ));
    if !errors.is_empty() {
        return password_page(&st, &web, &req, s, StatusCode::UNPROCESSABLE_ENTITY, errors);
    }
    let reauth = if first_change {
        Reauth::FirstChange
    } else {
        // Counted like a sign-in attempt (same keys), so the form cannot be used to
        // guess the password faster than the sign-in form.
        let ip = format!("ip:{}", super::security::client_addr(&parts.extensions));
        let acct = format!("acct:{}", s.account.name);
        if !web.limiter.allow(&[&ip, &acct], vault.now()) {
            let actor = fiktiv_staff::principal::principal_id(&s.account.name);
            if let Err(e) =
                accounts::audit_refused(vault, &actor, "web.password-change", Refusal::RateLimited)
                    .await
            {
                return internal(&web, &req.tr, e);
            }
            tracing::info!(
                reason = Refusal::RateLimited.code(),
                "password change refused"
            );
            return password_page(
                &st,
                &web,
                &req,
                s,
                StatusCode::TOO_MANY_REQUESTS,
                vec![(REAUTH, "password.error-rate-limited")],
            );
        }
        Reauth::Credentials {
            current: form.current_password,
            code: form.code.trim().to_owned(),
        }
    };
    match accounts::change_password(vault, web.limits, s, reauth, form.new_password).await {
        Err(e) => internal(&web, &req.tr, e),
        Ok(PasswordChange::Changed(new)) => {
            // The forced change goes on to the start page as before; a chosen one says
            // that it worked.
            let target = if first_change {
                "/"
            } else {
                "/?password=changed"
            };
            let mut r = Redirect::to(target).into_response();
            if let Ok(v) = set_cookie(COOKIE, &new.cookie_value, None).parse() {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
        Ok(PasswordChange::SessionsEnded) => {
            tracing::info!("password change refused; the account's sessions ended");
            to_signin(true)
        }
        Ok(PasswordChange::Refused(why)) => {
            tracing::info!(reason = why.code(), "password change refused");
            let (status, key) = match why {
                Refusal::Password | Refusal::SecondFactor => {
                    (StatusCode::UNAUTHORIZED, "password.error-reauth-wrong")
                }
                Refusal::Locked => (StatusCode::FORBIDDEN, "password.error-locked"),
                _ => return forbidden(&req.tr),
            };
            password_page(&st, &web, &req, s, status, vec![(REAUTH, key)])
        }
    }
}

// ---------------------------------------------------------------------------
// Step-up: re-enter the second factor before revealing a real identity
// ---------------------------------------------------------------------------

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct NextQuery {
    pub(super) next: String,
}

pub(super) fn next_or_home(next: &str) -> String {
    local_path(next).unwrap_or("/").to_owned()
}

/// The step-up page's title: a code for a local account, a new sign-in at the
/// provider for an OIDC account.
fn step_up_title(s: &Session) -> &'static str {
    if s.account.oidc {
        "step-up.oidc-title"
    } else {
        "step-up.title"
    }
}

/// For an OIDC account: the provider's name (empty when `[web.oidc]` is gone; the
/// link then leads to "not found").
fn oidc_provider_of(web: &Web, s: &Session) -> Option<String> {
    s.account.oidc.then(|| {
        web.oidc
            .as_ref()
            .map(|o| o.settings.provider_name.clone())
            .unwrap_or_default()
    })
}

pub async fn step_up_form(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Query(q): Query<NextQuery>,
    headers: HeaderMap,
) -> Response {
    let req = match begin(&st, &web, &headers).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let s = match require_session(&req, false) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    let page = StepUpPage {
        base: base_for(&st, &web, &req, s, step_up_title(s), "/step-up"),
        next: next_or_home(&q.next),
        error: None,
        oidc_provider: oidc_provider_of(&web, s),
    };
    html(StatusCode::OK, &page)
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct StepUpForm {
    csrf: String,
    next: String,
    code: String,
}

pub async fn step_up(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    parts: Parts,
    Form(form): Form<StepUpForm>,
) -> Response {
    let req = match begin(&st, &web, &parts.headers).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let s = match require_session(&req, false) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    if cross_site(&parts.method, &parts.headers) || !s.csrf_ok(&form.csrf) {
        return forbidden(&req.tr);
    }
    if s.account.oidc {
        // No code to check: an OIDC account steps up at the provider (`/step-up/oidc`).
        return Redirect::to("/step-up").into_response();
    }
    let vault = &st.ctx.vault;
    match accounts::verify_step_up(vault, web.limits, &s.account, &form.code).await {
        Err(e) => internal(&web, &req.tr, e),
        Ok(true) => match s.mark_stepped_up(vault).await {
            Ok(()) => Redirect::to(&next_or_home(&form.next)).into_response(),
            Err(e) => internal(&web, &req.tr, e),
        },
        Ok(false) => {
            let page = StepUpPage {
                base: base_for(&st, &web, &req, s, "step-up.title", "/step-up"),
                next: next_or_home(&form.next),
                error: Some("step-up.error-wrong"),
                oidc_provider: None,
            };
            html(StatusCode::UNAUTHORIZED, &page)
        }
    }
}

// ---------------------------------------------------------------------------
// Language
// ---------------------------------------------------------------------------

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct LangForm {
    csrf: String,
    lang: String,
    back: String,
}

pub async fn set_lang(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    parts: Parts,
    Form(form): Form<LangForm>,
) -> Response {
    let headers = &parts.headers;
    let req = match begin(&st, &web, headers).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let csrf_ok = !form.csrf.is_empty()
        && match &req.session {
            Some(s) => s.csrf_ok(&form.csrf),
            None => cookie(headers, ANON_CSRF_COOKIE)
                .is_some_and(|c| session::tokens_equal(c, &form.csrf)),
        };
    if cross_site(&parts.method, headers) || !csrf_ok {
        return forbidden(&req.tr);
    }
    let mut r = Redirect::to(&next_or_home(&form.back)).into_response();
    if let Some(l) = Lang::from_code(&form.lang) {
        // A year; not secret, but kept HttpOnly and Strict like every cookie here.
        if let Ok(v) = set_cookie(LANG_COOKIE, l.code(), Some(365 * 24 * 3600)).parse() {
            r.headers_mut().insert(header::SET_COOKIE, v);
        }
    }
    r
}

// ---------------------------------------------------------------------------
// Static files (vendored, compiled in)
// ---------------------------------------------------------------------------

pub async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        include_str!("../static/fiktiv.css"),
    )
        .into_response()
}

/// The one script: small progressive enhancement (refreshing the progress of a run).
/// The pages work without it.
pub async fn js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        include_str!("../static/fiktiv.js"),
    )
        .into_response()
}
