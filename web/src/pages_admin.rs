//! The central administrator's orders: the queue with waiting times (fictitious data
//! only) and registering a fictitious pupil, with the individual digits of the number
//! chosen by the administrator or picked by Fiktiv.
//!
//! Routes: `GET /orders`, `GET /orders/{id}`, `POST /orders/{id}`.

use std::collections::HashMap;
use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::{Extension, Form};
use fiktiv_policies::Action;
use serde::Deserialize;

use super::pages::html;
use super::pages_cases::ctx;
use super::ui::{choices, posted, see_other, signed_in, Choice, Ctx, FormErrors};
use super::views::Base;
use super::Web;
use fiktiv_app::AppState;
use fiktiv_routine::cases::CaseState;
use fiktiv_routine::fictitious_changes::{self, FictitiousChange};
use fiktiv_routine::orders::{self, OrderView};
use fiktiv_routine::registration::{self, GuardianSerial, RegisterInput};

#[derive(Template)]
#[template(path = "orders.html")]
pub struct OrdersPage {
    pub base: Base,
    pub orders: Vec<OrderView>,
    pub all: bool,
    /// Changes of registered pupils' fictitious identities, waiting for registration.
    pub changes: Vec<FictitiousChange>,
    /// New guardians of registered pupils, waiting for registration.
    pub guardians: Vec<fiktiv_routine::guardians::GuardianWaiting>,
    pub notice: Option<&'static str>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct QueueQuery {
    all: Option<String>,
    registered: Option<String>,
    done: Option<String>,
}

pub async fn queue(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Query(q): Query<QueueQuery>,
    headers: HeaderMap,
) -> Response {
    let c = ctx!(signed_in(&st, &web, &headers).await);
    let permit = ctx!(c.municipality_permit(&st, Action::OrderQueueRead));
    let all = q.all.is_some();
    let changes = match fictitious_changes::queue(&st.ctx.vault, &permit).await {
        Ok(c) => c,
        Err(e) => return c.fail(&st, e, "/"),
    };
    let guardians = match fiktiv_routine::guardians::waiting(&st.ctx.vault, &permit).await {
        Ok(g) => g,
        Err(e) => return c.fail(&st, e, "/"),
    };
    match orders::queue(&st.ctx.vault, &permit, all).await {
        Ok(list) => {
            let page = OrdersPage {
                base: c.base(&st, "orders.title", "/orders"),
                orders: list,
                all,
                changes,
                guardians,
                notice: match q.done.as_deref() {
                    Some("change-registered") => Some("orders.change-registered"),
                    Some("guardian-registered") => Some("orders.guardian-registered"),
                    _ => None,
                },
            };
            html(StatusCode::OK, &page)
        }
        Err(e) => c.fail(&st, e, "/"),
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct ChangeForm {
    csrf: String,
}

/// Register a change of a fictitious identity (`POST /fictitious-changes/{id}/register`).
pub async fn register_change(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Path(id): Path<String>,
    parts: Parts,
    Form(form): Form<ChangeForm>,
) -> Response {
    let c = ctx!(posted(&st, &web, &parts, &form.csrf).await);
    let unit = match fictitious_changes::case_of(&st.ctx.vault, &id).await {
        Ok((_, unit)) => unit,
        Err(e) => return c.fail(&st, e, "/orders"),
    };
    let Ok(permit) = st.ctx.authz.authorize(
        &c.principal,
        Action::OrderRegister,
        &fiktiv_policies::Resource::Case { unit },
    ) else {
        return c.not_found(&st);
    };
    match fictitious_changes::register(&st.ctx.vault, &st.ctx.rules, &permit, &id).await {
        Ok(_) => see_other("/orders?done=change-registered"),
        Err(e) => c.fail(&st, e, "/orders"),
    }
}

/// Register a new guardian of a registered pupil
/// (`POST /cases/{id}/guardians/{n}/register`).
pub async fn register_guardian(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Path((id, n)): Path<(String, String)>,
    parts: Parts,
    Form(form): Form<ChangeForm>,
) -> Response {
    let c = ctx!(posted(&st, &web, &parts, &form.csrf).await);
    let (case, _, permit) = ctx!(c.case_permit(&st, &id, Action::OrderRegister).await);
    let Ok(n) = n.parse::<i64>() else {
        return c.not_found(&st);
    };
    match fiktiv_routine::guardians::register(&st.ctx.vault, &st.ctx.rules, &permit, &case, n).await
    {
        Ok(_) => see_other("/orders?done=guardian-registered"),
        Err(e) => c.fail(&st, e, "/orders"),
    }
}

#[derive(Template)]
#[template(path = "register.html")]
pub struct RegisterPage {
    pub base: Base,
    pub order: OrderView,
    pub mode: String,
    pub serial: String,
    /// Typed digits per linked guardian number.
    pub guardian_serials: HashMap<i64, String>,
    pub errors: FormErrors,
    pub registered: bool,
    /// The Swedish check-digit rule in force (`number_ranges`).
    pub check_digit: fiktiv_policies::number_ranges::CheckDigitRule,
    /// For a Norwegian pupil: the individual numbers the policy allows for the
    /// pupil's birth year, as `500–599, 700–999`.
    pub no_allowed: Option<String>,
}

/// The Norwegian individual numbers allowed for a (fictitious) birth date, written as
/// ranges; `None` for a Swedish order or a date that does not parse.
fn no_allowed_text(st: &AppState, order: &OrderView) -> Option<String> {
    if order.country != fiktiv_routine::cases::CountryCode::No {
        return None;
    }
    let year: i32 = order.pupil.birth_date.get(..4)?.parse().ok()?;
    let ranges = st.ctx.rules.numbers.no_allowed_individuals(year);
    Some(
        ranges
            .iter()
            .map(|(a, b)| {
                if a == b {
                    format!("{a:03}")
                } else {
                    format!("{a:03}–{b:03}")
                }
            })
            .collect::<Vec<_>>()
            .join(", "),
    )
}

impl RegisterPage {
    pub fn waiting(&self) -> bool {
        self.order.registered_at.is_none() && self.order.case_state == CaseState::Ordered
    }

    pub fn modes(&self) -> Vec<Choice> {
        choices(
            "mode",
            &[
                ("pick", "register.mode-pick", "register.mode-pick-hint"),
                (
                    "choose",
                    "register.mode-choose",
                    "register.mode-choose-hint",
                ),
            ],
        )
    }

    /// What the number scheme in force guarantees for this order's country, in words
    /// (`register.guarantee-*`).
    pub fn guarantee(&self) -> &'static str {
        use fiktiv_policies::number_ranges::CheckDigitRule;
        match (self.order.country, self.check_digit) {
            (fiktiv_routine::cases::CountryCode::No, _) => "register.guarantee-no-synthetic",
            (_, CheckDigitRule::MustFailLuhn) => "register.guarantee-se-fail-luhn",
            (_, CheckDigitRule::MustPassLuhn) => "register.guarantee-se-pass-luhn",
            (_, CheckDigitRule::Ss12000Temporary) => "register.guarantee-se-temporary",
            (_, CheckDigitRule::TaxAgencyTestNumbers) => "register.guarantee-se-test-numbers",
        }
    }

    pub fn guardian_error(&self, n: &i64) -> Option<&'static str> {
        self.errors.get(&format!("guardian_serial_{n}"))
    }

    pub fn guardian_aria(&self, n: &i64) -> String {
        self.errors.aria(&format!("guardian_serial_{n}"), "")
    }

    pub fn guardian_serial(&self, n: &i64) -> &str {
        self.guardian_serials
            .get(n)
            .map(String::as_str)
            .unwrap_or_default()
    }
}

/// The order, from the queue (the administrator's own view: fictitious data only).
async fn order_view(c: &Ctx, st: &AppState, id: &str) -> Result<OrderView, Response> {
    let permit = c.municipality_permit(st, Action::OrderQueueRead)?;
    let all = orders::queue(&st.ctx.vault, &permit, true)
        .await
        .map_err(|e| c.fail(st, e, "/orders"))?;
    all.into_iter()
        .find(|o| o.order_id == id)
        .ok_or_else(|| c.not_found(st))
}

pub async fn register_form(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Path(id): Path<String>,
    Query(q): Query<QueueQuery>,
    headers: HeaderMap,
) -> Response {
    let c = ctx!(signed_in(&st, &web, &headers).await);
    let (order_id, _) = ctx!(c.order_permit(&st, &id, Action::OrderRegister).await);
    let order = ctx!(order_view(&c, &st, &order_id.to_string()).await);
    let no_allowed = no_allowed_text(&st, &order);
    let page = RegisterPage {
        base: c.base(&st, "register.title", &format!("/orders/{order_id}")),
        order,
        mode: "pick".into(),
        serial: String::new(),
        guardian_serials: HashMap::new(),
        errors: FormErrors::default(),
        check_digit: st.ctx.rules.numbers.se.check_digit,
        no_allowed,
        registered: q.registered.is_some(),
    };
    html(StatusCode::OK, &page)
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct RegisterForm {
    csrf: String,
    mode: String,
    serial: String,
    #[serde(flatten)]
    rest: HashMap<String, String>,
}

/// Three digits, `000` to `999` (one or two digits are read as written).
fn digits(s: &str) -> Option<u16> {
    let t = s.trim();
    if t.is_empty() || t.len() > 3 || !t.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    t.parse().ok()
}

pub async fn register(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Path(id): Path<String>,
    parts: Parts,
    Form(form): Form<RegisterForm>,
) -> Response {
    let c = ctx!(posted(&st, &web, &parts, &form.csrf).await);
    let (order_id, permit) = ctx!(c.order_permit(&st, &id, Action::OrderRegister).await);
    let order = ctx!(order_view(&c, &st, &order_id.to_string()).await);
    let typed: HashMap<i64, String> = order
        .guardians
        .iter()
        .map(|g| {
            let v = form
                .rest
                .get(&format!("guardian_serial_{}", g.guardian_no))
                .cloned()
                .unwrap_or_default();
            (g.guardian_no, v)
        })
        .collect();
    let mut errors = FormErrors::default();
    let input = match form.mode.as_str() {
        "pick" => RegisterInput {
            serial: None,
            guardian_serials: Vec::new(),
        },
        "choose" => {
            let serial = digits(&form.serial);
            if serial.is_none() {
                errors.add("serial", "problem.number-not-digits");
            }
            let mut guardian_serials = Vec::new();
            for g in &order.guardians {
                let t = typed.get(&g.guardian_no).map(String::as_str).unwrap_or("");
                if t.trim().is_empty() {
                    continue; // Fiktiv picks for a guardian left empty.
                }
                match digits(t) {
                    Some(serial) => guardian_serials.push(GuardianSerial {
                        guardian_no: g.guardian_no,
                        serial,
                    }),
                    None => errors.add(
                        &format!("guardian_serial_{}", g.guardian_no),
                        "problem.number-not-digits",
                    ),
                }
            }
            RegisterInput {
                serial,
                guardian_serials,
            }
        }
        _ => {
            errors.add("mode-pick", "problem.mode-required");
            RegisterInput {
                serial: None,
                guardian_serials: Vec::new(),
            }
        }
    };
    let result = if errors.is_empty() {
        match registration::register(&st.ctx.vault, &st.ctx.rules, &permit, &order_id, input).await
        {
            Ok(_) => return see_other(&format!("/orders/{order_id}?registered=1")),
            Err(e) => {
                let mut fields: Vec<String> = vec!["serial".into()];
                fields.extend(
                    order
                        .guardians
                        .iter()
                        .map(|g| format!("guardian_serial_{}", g.guardian_no)),
                );
                let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
                FormErrors::from_domain(e, &fields, &[])
            }
        }
    } else {
        Ok((StatusCode::UNPROCESSABLE_ENTITY, errors))
    };
    match result {
        Ok((status, errors)) => {
            let no_allowed = no_allowed_text(&st, &order);
            let page = RegisterPage {
                base: c.base(&st, "register.title", &format!("/orders/{order_id}")),
                order,
                mode: form.mode,
                serial: form.serial,
                guardian_serials: typed,
                errors,
                registered: false,
                check_digit: st.ctx.rules.numbers.se.check_digit,
                no_allowed,
            };
            html(status, &page)
        }
        Err(e) => c.fail(&st, e, &format!("/orders/{order_id}")),
    }
}

#[cfg(test)]
mod tests {
    use super::digits;

    #[test]
    fn individual_digits() {
        assert_eq!(digits("007"), Some(7));
        assert_eq!(digits(" 999 "), Some(999));
        assert_eq!(digits("1000"), None);
        assert_eq!(digits("12a"), None);
        assert_eq!(digits(""), None);
    }
}
