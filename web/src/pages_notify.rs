//! Notifications: each person's notices ("something new to do"), and their choice of
//! being told in Fiktiv only or by e-mail too, with their work address and language.
//! What is new is decided in [`fiktiv_app::notify`]; this page only shows and stores.
//!
//! Routes: `GET|POST /notifications`, `POST /notifications/read`.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::{Extension, Form};
use serde::Deserialize;

use super::i18n::Lang;
use super::pages::html;
use super::pages_cases::ctx;
use super::ui::{choices, posted, see_other, signed_in, Choice, CsrfForm, Ctx, FormErrors};
use super::views::Base;
use super::Web;
use fiktiv_app::notify::{self, store, Channel, Notice, Prefs};
use fiktiv_app::AppState;

/// How many notices the page shows.
const SHOWN: i64 = 50;

#[derive(Template)]
#[template(path = "notifications.html")]
pub struct NotificationsPage {
    pub base: Base,
    pub notices: Vec<Notice>,
    pub unread: i64,
    /// The form's values: `email` or `in-app`, the address, the language code.
    pub channel: &'static str,
    pub email: String,
    pub lang: &'static str,
    /// `[notifications.smtp]` is configured: mail can be sent.
    pub mail_on: bool,
    pub errors: FormErrors,
    pub notice: Option<&'static str>,
}

impl NotificationsPage {
    pub fn channels(&self) -> Vec<Choice> {
        choices(
            "channel",
            &[
                (
                    "in-app",
                    "notify.channel-in-app",
                    "notify.channel-in-app-hint",
                ),
                ("email", "notify.channel-email", "notify.channel-email-hint"),
            ],
        )
    }

    pub fn langs(&self) -> Vec<Choice> {
        choices(
            "lang",
            &[
                ("sv", "lang.sv", ""),
                ("nb", "lang.nb", ""),
                ("en", "lang.en", ""),
            ],
        )
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct NotificationsQuery {
    saved: String,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct PrefsForm {
    csrf: String,
    channel: String,
    email: String,
    lang: String,
}

async fn page(
    c: &Ctx,
    st: &AppState,
    form: Option<(Prefs, String)>,
    errors: FormErrors,
    status: StatusCode,
    notice: Option<&'static str>,
) -> Response {
    let vault = &st.ctx.vault;
    let user = &c.session.account.user_id;
    let (notices, unread) = match (
        store::notices(vault, user, SHOWN).await,
        store::unread(vault, user).await,
    ) {
        (Ok(n), Ok(u)) => (n, u),
        (Err(e), _) | (_, Err(e)) => return c.fail(st, e, "/"),
    };
    let (prefs, email) = match form {
        Some(f) => f,
        None => match store::prefs(vault, user).await {
            Ok(p) => {
                let e = p.email.clone().unwrap_or_default();
                // Without a stored choice the form offers the page's language.
                let p = if p == Prefs::default() {
                    Prefs {
                        lang: c.tr.lang,
                        ..p
                    }
                } else {
                    p
                };
                (p, e)
            }
            Err(e) => return c.fail(st, e, "/"),
        },
    };
    let p = NotificationsPage {
        base: c.base(st, "notify.title", "/notifications"),
        notices,
        unread,
        channel: prefs.channel.as_str(),
        email,
        lang: prefs.lang.code(),
        mail_on: st.ctx.config.notifications.smtp.is_some(),
        errors,
        notice,
    };
    html(status, &p)
}

pub async fn show(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Query(q): Query<NotificationsQuery>,
    headers: HeaderMap,
) -> Response {
    let c = ctx!(signed_in(&st, &web, &headers).await);
    let notice = match q.saved.as_str() {
        "prefs" => Some("notify.notice-saved"),
        "read" => Some("notify.notice-read"),
        _ => None,
    };
    page(&c, &st, None, FormErrors::default(), StatusCode::OK, notice).await
}

pub async fn save(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    parts: Parts,
    Form(form): Form<PrefsForm>,
) -> Response {
    let c = ctx!(posted(&st, &web, &parts, &form.csrf).await);
    let mut errors = FormErrors::default();
    let channel = Channel::parse(&form.channel).unwrap_or_else(|| {
        errors.add("channel-in-app", "notify.error-channel");
        Channel::InApp
    });
    let lang = Lang::from_code(&form.lang).unwrap_or_else(|| {
        errors.add("lang-sv", "notify.error-lang");
        c.tr.lang
    });
    let email = form.email.trim().to_owned();
    if email.is_empty() {
        if channel == Channel::Email {
            errors.add("email", "notify.error-email-missing");
        }
    } else if notify::check_address(&email).is_err() {
        errors.add("email", "notify.error-email-invalid");
    }
    let prefs = Prefs {
        channel,
        email: (!email.is_empty()).then(|| email.clone()),
        lang,
    };
    if !errors.items.is_empty() {
        return page(
            &c,
            &st,
            Some((prefs, email)),
            errors,
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
        )
        .await;
    }
    match store::save_prefs(
        &st.ctx.vault,
        &c.principal.id,
        &c.session.account.user_id,
        &prefs,
    )
    .await
    {
        Ok(()) => see_other("/notifications?saved=prefs"),
        Err(e) => c.fail(&st, e, "/notifications"),
    }
}

pub async fn mark_read(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    parts: Parts,
    Form(form): Form<CsrfForm>,
) -> Response {
    let c = ctx!(posted(&st, &web, &parts, &form.csrf).await);
    match store::mark_read(&st.ctx.vault, &c.session.account.user_id).await {
        Ok(_) => see_other("/notifications?saved=read"),
        Err(e) => c.fail(&st, e, "/notifications"),
    }
}
