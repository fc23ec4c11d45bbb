//! The page templates (askama, `web/templates/`) and what every page shares: the
//! layout's signed-in user, the navigation and the language switch.
//!
//! Templates show message keys only (`base.t("...")`); page titles are fixed keys, so
//! a real identity can never end up in a title, a URL or the browser history.

use askama::Template;
use fiktiv_policies::{Action, Authorizer, Principal, Resource, Role};

use super::i18n::{Lang, Tr};
use fiktiv_staff::accounts::Account;

/// The signed-in user as the layout shows them.
#[derive(Debug, Clone)]
pub struct UserView {
    pub name: String,
    /// Message keys of the role names.
    pub roles: Vec<&'static str>,
    pub units: Vec<String>,
    /// A local account: the header offers "Change password" (an OIDC account's
    /// password is the identity provider's).
    pub password_link: bool,
}

/// A navigation entry: the page, its label and a one-line description (keys).
#[derive(Debug, Clone)]
pub struct NavLink {
    pub href: &'static str,
    pub label: &'static str,
    pub description: &'static str,
    pub current: bool,
}

/// A language button.
#[derive(Debug, Clone)]
pub struct LangButton {
    pub code: &'static str,
    pub label: &'static str,
    pub current: bool,
}

/// What the layout needs.
#[derive(Debug, Clone)]
pub struct Base {
    pub tr: Tr,
    /// Message key of the page title.
    pub title: &'static str,
    pub user: Option<UserView>,
    pub nav: Vec<NavLink>,
    pub langs: Vec<LangButton>,
    /// The CSRF token every form of the page carries.
    pub csrf: String,
    /// This page's path, for the language switch to come back to.
    pub here: String,
    /// The session's idle timeout in seconds, for the warning before it ends (0: not
    /// signed in, no warning).
    pub idle_secs: i64,
}

impl Base {
    pub fn t<'a>(&'a self, key: &'a str) -> &'a str {
        self.tr.t(key)
    }

    pub fn new(tr: Tr, title: &'static str, csrf: String, here: &str) -> Self {
        let langs = Lang::ALL
            .into_iter()
            .map(|l| LangButton {
                code: l.code(),
                label: match l {
                    Lang::Sv => "lang.sv",
                    Lang::Nb => "lang.nb",
                    Lang::En => "lang.en",
                },
                current: l == tr.lang,
            })
            .collect();
        Self {
            tr,
            title,
            user: None,
            nav: Vec::new(),
            langs,
            csrf,
            here: here.to_owned(),
            idle_secs: 0,
        }
    }

    /// Warn before the session's idle timeout ends it (the page's script).
    pub fn idle_warning(mut self, idle: chrono::TimeDelta) -> Self {
        self.idle_secs = idle.num_seconds();
        self
    }

    /// Add the signed-in user and the navigation the authorizer allows them.
    pub fn signed_in(mut self, account: &Account, authz: &Authorizer) -> Self {
        let p = account.principal();
        self.user = Some(UserView {
            name: account.name.clone(),
            roles: p.roles.iter().map(|r| role_key(*r)).collect(),
            units: p.units.clone(),
            password_link: !account.oidc,
        });
        let here = self.here.clone();
        self.nav = nav(&p, authz)
            .into_iter()
            .map(|mut l| {
                l.current = here == l.href || here.starts_with(&format!("{}/", l.href));
                l
            })
            .collect();
        self
    }
}

/// Message key of a role's name.
pub const fn role_key(r: Role) -> &'static str {
    match r {
        Role::CentralAdmin => "role.central-admin",
        Role::School => "role.school",
        Role::Approver => "role.approver",
        Role::Auditor => "role.auditor",
    }
}

/// Message key of a role's introduction on the home page.
pub const fn role_intro_key(r: Role) -> &'static str {
    match r {
        Role::CentralAdmin => "home.intro-central-admin",
        Role::School => "home.intro-school",
        Role::Approver => "home.intro-approver",
        Role::Auditor => "home.intro-auditor",
    }
}

/// The navigation of a principal, decided by the one [`Authorizer`]: an entry shows
/// when the policies allow its page's action. Showing a link grants nothing; every
/// page authorizes again.
pub fn nav(p: &Principal, authz: &Authorizer) -> Vec<NavLink> {
    let muni = authz.allowed_actions(p, &Resource::Municipality);
    let mut unit_actions = Vec::new();
    for u in &p.units {
        unit_actions.extend(authz.allowed_actions(p, &Resource::Unit(u.clone())));
    }
    // A request by somebody else in no particular unit: may this person decide one?
    let reveal = authz.allowed_actions(
        p,
        &Resource::RevealRequest {
            unit: "-".into(),
            requested_by: "-".into(),
        },
    );
    let anywhere = |a: Action| muni.contains(&a) || unit_actions.contains(&a);
    let mut out = Vec::new();
    let mut push = |show: bool, href, label, description| {
        if show {
            out.push(NavLink {
                href,
                label,
                description,
                current: false,
            });
        }
    };
    push(
        muni.contains(&Action::OrderQueueRead),
        "/orders",
        "nav.orders",
        "nav.orders-text",
    );
    push(
        muni.contains(&Action::IntakeCounts) || unit_actions.contains(&Action::IntakeList),
        "/intake",
        "nav.intake",
        "nav.intake-text",
    );
    push(
        anywhere(Action::CaseList),
        "/cases",
        "nav.cases",
        "nav.cases-text",
    );
    push(
        muni.contains(&Action::ProvisioningStatusRead),
        "/provisioning",
        "nav.provisioning",
        "nav.provisioning-text",
    );
    push(
        anywhere(Action::ReviewsListAll) || anywhere(Action::ReviewsList),
        "/reviews",
        "nav.reviews",
        "nav.reviews-text",
    );
    push(
        anywhere(Action::CaseRequestList),
        "/case-requests",
        "nav.case-requests",
        "nav.case-requests-text",
    );
    // Approvers decide requests; whoever may ask for a reveal follows their own.
    push(
        reveal.contains(&Action::RevealApprove) || muni.contains(&Action::RevealListOwn),
        "/reveals",
        "nav.reveals",
        "nav.reveals-text",
    );
    push(
        muni.contains(&Action::AuditRead),
        "/audit",
        "nav.audit",
        "nav.audit-text",
    );
    out
}

#[derive(Template)]
#[template(path = "signin.html")]
pub struct SigninPage {
    pub base: Base,
    /// What was typed as the name, shown again after a failure (never a secret).
    pub name: String,
    pub error: Option<&'static str>,
    pub notice: Option<&'static str>,
    /// The identity provider's name when `[web.oidc]` is configured: the page offers
    /// "Sign in with <name>".
    pub oidc_provider: Option<String>,
    /// No account exists yet: the page says which command makes the first one.
    pub first_run: bool,
}

#[derive(Template)]
#[template(path = "home.html")]
pub struct HomePage {
    pub base: Base,
    pub intros: Vec<&'static str>,
    /// A message key shown once (after a password change).
    pub notice: Option<&'static str>,
    /// What needs doing (`tasks::tasks`, as `GET /api/v1/me/tasks`).
    pub tasks: Vec<fiktiv_app::tasks::Task>,
    /// The person's own plan drafts (kept when a session ended while writing).
    pub drafts: Vec<fiktiv_routine::drafts::DraftInfo>,
    /// Unread notices (`/notifications`).
    pub unread: i64,
}

/// The error of the re-authentication as a whole (a wrong password or code, a lockout,
/// the rate limit): shown once above both fields and tied to each of them.
pub const REAUTH: &str = "reauth";

#[derive(Template)]
#[template(path = "password.html")]
pub struct PasswordPage {
    pub base: Base,
    /// (field id or [`REAUTH`], message key)
    pub errors: Vec<(&'static str, &'static str)>,
    /// The forced change of a one-time password (another introduction).
    pub first_change: bool,
    /// Ask for the current password and a code (every change but the forced one
    /// right after the sign-in).
    pub reauth: bool,
}

impl PasswordPage {
    pub fn error_for(&self, field: &str) -> Option<&'static str> {
        self.errors
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, k)| *k)
    }

    /// Where the error summary links to: the field, or the first re-authentication
    /// field for an error of both.
    pub fn anchor<'a>(&self, field: &'a str) -> &'a str {
        if field == REAUTH {
            "current_password"
        } else {
            field
        }
    }

    /// Does a re-authentication field (`current_password`, `code`) show an error?
    pub fn reauth_invalid(&self, field: &str) -> bool {
        self.error_for(field).is_some() || self.error_for(REAUTH).is_some()
    }

    /// The `aria-describedby` ids of a re-authentication field: its hint, its own
    /// error and the common one.
    pub fn reauth_describedby(&self, field: &str, hint: &str) -> String {
        let mut ids = vec![hint.to_owned()];
        if self.error_for(field).is_some() {
            ids.push(format!("{field}-error"));
        }
        if self.error_for(REAUTH).is_some() {
            ids.push(format!("{REAUTH}-error"));
        }
        ids.join(" ")
    }
}

#[derive(Template)]
#[template(path = "step_up.html")]
pub struct StepUpPage {
    pub base: Base,
    pub next: String,
    pub error: Option<&'static str>,
    /// An OIDC account steps up by signing in again at this provider.
    pub oidc_provider: Option<String>,
}

/// After an OpenID Connect sign-in or step-up: the provider sent the browser here from
/// its own site, so the new `SameSite=Strict` session cookie would not be sent on a
/// redirect; this page moves on with a same-site navigation (`<meta http-equiv=
/// "refresh">`, no script) and a link.
#[derive(Template)]
#[template(path = "continue.html")]
pub struct ContinuePage {
    pub base: Base,
    /// A local path (checked with `security::local_path`).
    pub next: String,
}

#[derive(Template)]
#[template(path = "message.html")]
pub struct MessagePage {
    pub base: Base,
    pub heading: &'static str,
    pub text: &'static str,
    pub link_href: &'static str,
    pub link_label: &'static str,
}
