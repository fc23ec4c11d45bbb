//! Pupils with protected personal data whom the school administration system (the SS
//! 12000 hub) has enrolled at a unit with no case yet: the unit's school sees the list
//! (no identity), opens an item's pupil after re-entering the second factor (audited),
//! and opens the case from what the hub gave in one step (nothing is typed). The
//! central administrator sees counts per unit, never a pupil. The identity is shown
//! only in the answer to a POST: never in a title, a URL, or a page that can be reloaded.
//!
//! Routes: `GET /intake`, `POST /intake/{unit}/{id}/pupil`, `POST /intake/{unit}/{id}/case`.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::{Extension, Form};
use fiktiv_policies::Action;

use super::pages::html;
use super::pages_cases::ctx;
use super::ui::{posted, see_other, signed_in, CsrfForm};
use super::views::Base;
use super::Web;
use fiktiv_app::AppState;
use fiktiv_routine::hub::{self, HubStatus, IntakeItem, IntakePupil, UnitCount};

#[derive(Template)]
#[template(path = "intake.html")]
pub struct IntakePage {
    pub base: Base,
    /// The school's items (empty for the central administrator).
    pub items: Vec<IntakeItem>,
    /// The central administrator's counts (empty for a school).
    pub counts: Vec<UnitCount>,
    pub central: bool,
    /// Where the reads of the hub stand (for those who may see it).
    pub hub: Option<HubStatus>,
}

impl IntakePage {
    /// What the running read does now, in words.
    pub fn stage_text(&self, stage: &str) -> &str {
        self.base.t(match stage {
            "organisations" => "intake.stage-organisations",
            "persons" => "intake.stage-persons",
            "groups" => "intake.stage-groups",
            "duties" => "intake.stage-duties",
            "activities" => "intake.stage-activities",
            "deletedEntities" => "intake.stage-deleted",
            _ => "intake.stage-applying",
        })
    }

    /// How far the running read has come, in words.
    pub fn progress_text(&self, pages: &i64, items: &i64) -> String {
        super::labels::fill(
            self.base.t("intake.hub-progress"),
            &[("pages", &pages.to_string()), ("items", &items.to_string())],
        )
    }
}

#[derive(Template)]
#[template(path = "intake_pupil.html")]
pub struct IntakePupilPage {
    pub base: Base,
    pub unit: String,
    pub intake_id: String,
    pub pupil: IntakePupil,
}

pub async fn list(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    headers: HeaderMap,
) -> Response {
    let c = ctx!(signed_in(&st, &web, &headers).await);
    let vault = &st.ctx.vault;
    if let Ok(permit) = c.municipality_permit(&st, Action::IntakeCounts) {
        let counts = match hub::intake_counts_permitted(vault, &permit).await {
            Ok(counts) => counts,
            Err(e) => return c.fail(&st, e, "/"),
        };
        let hub = match c.municipality_permit(&st, Action::HubStatusRead) {
            Ok(permit) => match hub::status_permitted(vault, &permit).await {
                Ok(s) => Some(s),
                Err(e) => return c.fail(&st, e, "/"),
            },
            Err(_) => None,
        };
        return html(
            StatusCode::OK,
            &IntakePage {
                base: c.base(&st, "intake.title", "/intake"),
                items: Vec::new(),
                counts,
                central: true,
                hub,
            },
        );
    }
    let mut items = Vec::new();
    let mut allowed = false;
    for unit in &c.principal.units {
        let Ok(permit) = c.unit_permit(&st, unit, Action::IntakeList) else {
            continue;
        };
        allowed = true;
        match hub::intake_list(vault, &permit, unit).await {
            Ok(mut i) => items.append(&mut i),
            Err(e) => return c.fail(&st, e, "/"),
        }
    }
    if !allowed {
        return c.not_allowed(&st);
    }
    html(
        StatusCode::OK,
        &IntakePage {
            base: c.base(&st, "intake.title", "/intake"),
            items,
            counts: Vec::new(),
            central: false,
            hub: None,
        },
    )
}

pub async fn pupil(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Path((unit, id)): Path<(String, String)>,
    parts: Parts,
    Form(form): Form<CsrfForm>,
) -> Response {
    let c = ctx!(posted(&st, &web, &parts, &form.csrf).await);
    let permit = ctx!(c.unit_permit(&st, &unit, Action::IntakeReadIdentity));
    // Seeing a real identity needs the second factor re-entered first.
    if fiktiv_staff::session::require_fresh_second_factor(&c.session, web.timeouts, c.now(&st))
        .is_err()
    {
        return see_other("/step-up?next=/intake");
    }
    match hub::intake_identity(&st.ctx.vault, &permit, &unit, &id).await {
        Ok(pupil) => html(
            StatusCode::OK,
            &IntakePupilPage {
                // `here` is the list: switching language must not read again.
                base: c.base(&st, "intake.pupil-title", "/intake"),
                unit,
                intake_id: id,
                pupil,
            },
        ),
        Err(e) => c.fail(&st, e, "/intake"),
    }
}

pub async fn open_case(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Path((unit, id)): Path<(String, String)>,
    parts: Parts,
    Form(form): Form<CsrfForm>,
) -> Response {
    let c = ctx!(posted(&st, &web, &parts, &form.csrf).await);
    let open = ctx!(c.unit_permit(&st, &unit, Action::CaseOpen));
    let read = ctx!(c.unit_permit(&st, &unit, Action::IntakeReadIdentity));
    match hub::open_case_from_intake(&st.ctx.vault, &open, &read, &unit, &id).await {
        Ok(opened) => see_other(&format!("/cases/{}", opened.case_id)),
        Err(e) => c.fail(&st, e, "/intake"),
    }
}
