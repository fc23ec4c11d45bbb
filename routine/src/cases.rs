//! Step 1: a case, opened by the school with the pupil's real identity sealed in the
//! vault. A real identity already in the vault is refused by blind index, without
//! saying whose it is.

use chrono::NaiveDate;
use fiktiv_policies::{Action, Country, Permit};
use fiktiv_vault::audit::fmt_time;
use fiktiv_vault::ids::{IdError, PersonalNumber};
use fiktiv_vault::{CaseId, IndexKind, ReadContext, RealIdentity, RealName, Vault, VaultError};
use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, Row};
use utoipa::ToSchema;
use zeroize::Zeroizing;

use super::{
    audit_ok, audit_refused, check_date, check_name, check_unit_code, country_str, fmt_date,
    is_unique_violation, parse_country, parse_date, today, vault_country, DomainError,
    DomainResult, FieldProblem,
};

/// The country whose rules apply to the pupil.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CountryCode {
    Se,
    No,
}

impl From<CountryCode> for Country {
    fn from(c: CountryCode) -> Self {
        match c {
            CountryCode::Se => Country::Se,
            CountryCode::No => Country::No,
        }
    }
}

impl From<Country> for CountryCode {
    fn from(c: Country) -> Self {
        match c {
            Country::Se => CountryCode::Se,
            Country::No => CountryCode::No,
        }
    }
}

/// Where a case is in the routine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CaseState {
    /// Opened; plan, decision and fictitious identity are being written.
    Open,
    /// The order was sent to the central administrator.
    Ordered,
    /// The central administrator registered the fictitious pupil: ready for provisioning.
    Registered,
    /// The pupil left or the protection was lifted.
    Ended,
}

impl CaseState {
    pub fn as_str(self) -> &'static str {
        match self {
            CaseState::Open => "open",
            CaseState::Ordered => "ordered",
            CaseState::Registered => "registered",
            CaseState::Ended => "ended",
        }
    }

    pub(crate) fn parse(s: &str) -> DomainResult<Self> {
        Ok(match s {
            "open" => CaseState::Open,
            "ordered" => CaseState::Ordered,
            "registered" => CaseState::Registered,
            "ended" => CaseState::Ended,
            _ => {
                return Err(DomainError::Internal(
                    "stored case state is malformed".into(),
                ))
            }
        })
    }
}

/// Open a case: the pupil's real identity. Nothing of it is ever echoed back.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenCase {
    pub country: CountryCode,
    /// Swedish personnummer/samordningsnummer or Norwegian fødselsnummer/D-number, in
    /// any usual written form.
    #[schema(value_type = String)]
    pub personal_number: Zeroizing<String>,
    #[schema(value_type = String)]
    pub first_name: Zeroizing<String>,
    #[schema(value_type = String)]
    pub last_name: Zeroizing<String>,
    /// `YYYY-MM-DD`; must be the birth date the personal number encodes.
    #[schema(value_type = String)]
    pub birth_date: Zeroizing<String>,
}

impl std::fmt::Debug for OpenCase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OpenCase([redacted])")
    }
}

/// The case that was opened.
#[derive(Debug, Serialize, ToSchema)]
pub struct CaseOpened {
    pub case_id: String,
    pub unit: String,
    pub country: CountryCode,
    pub state: CaseState,
}

/// A case as stored (no real identity).
#[derive(Debug, Clone)]
pub struct CaseRow {
    pub id: CaseId,
    pub unit: String,
    pub country: Country,
    pub state: CaseState,
    pub opened_at: String,
    pub last_review_on: NaiveDate,
    pub plan_key: CaseId,
    pub login_decision: Option<String>,
    pub guardians_informed_on: Option<String>,
    pub fict_first: Option<String>,
    pub fict_last: Option<String>,
    pub fict_birth: Option<String>,
    pub fict_number: Option<String>,
    pub ended_on: Option<String>,
    pub end_reason: Option<String>,
    pub identity_shredded_at: Option<String>,
    pub left_on: Option<String>,
    pub identity_shred_on: Option<String>,
    pub plan_shred_on: Option<String>,
    pub records_shred_on: Option<String>,
    /// Set when the case was reopened: nothing is provisioned until a new plan version.
    pub plan_required_since: Option<String>,
}

pub(crate) fn parse_case_id(s: &str) -> DomainResult<CaseId> {
    s.parse()
        .map_err(|_| DomainError::Internal("stored case id is malformed".into()))
}

/// Load a case row in the caller's connection or transaction.
pub async fn load(conn: &mut AnyConnection, case: &CaseId) -> DomainResult<CaseRow> {
    let r = sqlx::query(
        "SELECT case_id, unit, country, state, opened_at, last_review_on, plan_key, \
         login_decision, guardians_informed_on, fict_first, fict_last, fict_birth, fict_number, \
         ended_on, end_reason, identity_shredded_at, left_on, identity_shred_on, \
         plan_shred_on, records_shred_on, plan_required_since FROM cases WHERE case_id = $1",
    )
    .bind(case.to_string())
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(DomainError::NotFound)?;
    Ok(CaseRow {
        id: parse_case_id(&r.try_get::<String, _>("case_id")?)?,
        unit: r.try_get("unit")?,
        country: parse_country(&r.try_get::<String, _>("country")?)?,
        state: CaseState::parse(&r.try_get::<String, _>("state")?)?,
        opened_at: r.try_get("opened_at")?,
        last_review_on: parse_date(&r.try_get::<String, _>("last_review_on")?)?,
        plan_key: parse_case_id(&r.try_get::<String, _>("plan_key")?)?,
        login_decision: r.try_get("login_decision")?,
        guardians_informed_on: r.try_get("guardians_informed_on")?,
        fict_first: r.try_get("fict_first")?,
        fict_last: r.try_get("fict_last")?,
        fict_birth: r.try_get("fict_birth")?,
        fict_number: r.try_get("fict_number")?,
        ended_on: r.try_get("ended_on")?,
        end_reason: r.try_get("end_reason")?,
        identity_shredded_at: r.try_get("identity_shredded_at")?,
        left_on: r.try_get("left_on")?,
        identity_shred_on: r.try_get("identity_shred_on")?,
        plan_shred_on: r.try_get("plan_shred_on")?,
        records_shred_on: r.try_get("records_shred_on")?,
        plan_required_since: r.try_get("plan_required_since")?,
    })
}

/// The unit a case belongs to: what the handler needs to ask the authorizer. Not
/// found for unknown ids.
pub async fn unit_of(vault: &Vault, case: &CaseId) -> DomainResult<String> {
    let r = sqlx::query("SELECT unit FROM cases WHERE case_id = $1")
        .bind(case.to_string())
        .fetch_optional(vault.db().pool())
        .await?
        .ok_or(DomainError::NotFound)?;
    Ok(r.try_get("unit")?)
}

pub(crate) fn id_problem(field: &str, e: &IdError) -> FieldProblem {
    let code = match e {
        IdError::Empty => "personal-number.empty",
        IdError::TooLong => "personal-number.too-long",
        IdError::BadCharacters => "personal-number.bad-characters",
        IdError::BadFormat => "personal-number.bad-format",
        IdError::BadChecksum => "personal-number.bad-checksum",
        IdError::ImpossibleDate => "personal-number.impossible-date",
        IdError::InFuture => "personal-number.in-future",
        IdError::UnknownCentury => "personal-number.unknown-century",
        IdError::OutOfRange => "personal-number.out-of-range",
        IdError::NoChecksumPossible => "personal-number.no-checksum-possible",
    };
    FieldProblem {
        field: field.to_owned(),
        code: code.to_owned(),
        // IdError messages are fixed text and never hold the input.
        message: e.to_string(),
    }
}

/// A real identity from untrusted input: the number parsed under the country's rules,
/// the names checked, the birth date equal to the number's. Problems name the field
/// under `prefix`.
#[allow(clippy::too_many_arguments)] // four raw input fields plus context; a struct would only rename them
pub(crate) fn parse_real_identity(
    prefix: &str,
    country: Country,
    personal_number: &str,
    first_name: &str,
    last_name: &str,
    birth_date: &str,
    today: NaiveDate,
    out: &mut Vec<FieldProblem>,
) -> Option<RealIdentity> {
    let number = match PersonalNumber::parse_country(vault_country(country), personal_number, today)
    {
        Ok(n) => Some(n),
        Err(e) => {
            out.push(id_problem(&format!("{prefix}personal_number"), &e));
            None
        }
    };
    check_name(&format!("{prefix}first_name"), first_name, out);
    check_name(&format!("{prefix}last_name"), last_name, out);
    let birth = check_date(&format!("{prefix}birth_date"), birth_date, out);
    let (number, birth) = (number?, birth?);
    if number.birth_date() != birth {
        out.push(FieldProblem::new(
            format!("{prefix}birth_date"),
            "birth-date.does-not-match-number",
            "The birth date is not the one the personal number gives.",
        ));
        return None;
    }
    if !out.is_empty() {
        return None;
    }
    Some(RealIdentity {
        number,
        first_name: RealName::new(first_name),
        last_name: RealName::new(last_name),
        birth_date: birth,
    })
}

/// Open a case in `unit` (step 1). Permit: `case.open` on the unit.
pub async fn open(
    vault: &Vault,
    permit: &Permit,
    unit: &str,
    input: OpenCase,
) -> DomainResult<CaseOpened> {
    permit.require(Action::CaseOpen)?;
    let mut problems = Vec::new();
    check_unit_code("unit", unit, &mut problems);
    let country: Country = input.country.into();
    let today = today(vault, country);
    let identity = parse_real_identity(
        "",
        country,
        &input.personal_number,
        &input.first_name,
        &input.last_name,
        &input.birth_date,
        today,
        &mut problems,
    );
    drop(input);
    let identity = match identity {
        Some(i) if problems.is_empty() => i,
        _ => return Err(DomainError::Invalid(problems)),
    };
    let pnr_index = vault
        .keys()
        .blind()
        .index(IndexKind::PersonalNumber, identity.number.canonical());

    let mut tx = vault.db().begin_write().await?;
    let existing = vault
        .cases_with_index(&mut tx, IndexKind::PersonalNumber, &pnr_index)
        .await?;
    if let Some(other) = existing.first() {
        // Refused, but not silently: a school that tries numbers to learn whether a
        // pupil is protected somewhere leaves a trail the auditor can read (the other
        // case is named there, never in the answer). Nothing else is written.
        let ended = load(&mut tx, other).await?.state == CaseState::Ended;
        let code = if ended {
            "earlier-case-ended"
        } else {
            "duplicate-identity"
        };
        audit_refused(vault, &mut tx, permit, Some(*other), code).await?;
        tx.commit().await?;
        return Err(if ended {
            earlier_case_ended()
        } else {
            duplicate_identity()
        });
    }
    let (case, _) = insert_case(
        vault,
        &mut tx,
        permit.principal_id(),
        unit,
        country,
        &identity,
        today,
    )
    .await?;
    audit_ok(vault, &mut tx, permit, Some(case), None).await?;
    match tx.commit().await {
        Err(e) if is_unique_violation(&e) => return Err(duplicate_identity()),
        r => r?,
    }
    Ok(CaseOpened {
        case_id: case.to_string(),
        unit: unit.to_owned(),
        country: country.into(),
        state: CaseState::Open,
    })
}

/// A new open case in `unit` with the pupil's real identity sealed and indexed, in the
/// caller's transaction (the caller checked the duplicate rule). Returns the case and
/// its plan key.
pub(crate) async fn insert_case(
    vault: &Vault,
    conn: &mut AnyConnection,
    opened_by: &str,
    unit: &str,
    country: Country,
    identity: &RealIdentity,
    today: NaiveDate,
) -> DomainResult<(CaseId, CaseId)> {
    let pnr_index = vault
        .keys()
        .blind()
        .index(IndexKind::PersonalNumber, identity.number.canonical());
    let case = CaseId::new();
    let plan_key = CaseId::new();
    vault.create_case_key(conn, &case).await?;
    // The plan has its own data key so that it can be shredded on its own schedule
    // (retention is per record class).
    vault.create_case_key(conn, &plan_key).await?;
    vault.store_identity(conn, &case, "pupil", identity).await?;
    let inserted = sqlx::query(
        "INSERT INTO cases (case_id, unit, country, state, opened_by, opened_at, last_review_on, \
         plan_key, pnr_index) VALUES ($1, $2, $3, 'open', $4, $5, $6, $7, $8)",
    )
    .bind(case.to_string())
    .bind(unit)
    .bind(country_str(country))
    .bind(opened_by)
    .bind(fmt_time(vault.now()))
    // Opening the case counts as the first review of its plan.
    .bind(fmt_date(today))
    .bind(plan_key.to_string())
    .bind(pnr_index.to_hex())
    .execute(&mut *conn)
    .await;
    match inserted {
        Err(e) if is_unique_violation(&e) => Err(duplicate_identity()),
        r => {
            r?;
            Ok((case, plan_key))
        }
    }
}

pub(crate) fn duplicate_identity() -> DomainError {
    DomainError::conflict(
        "duplicate-identity",
        "This real identity already has a case in Fiktiv. If the pupil is moving to this \
         unit, ask for the case (Take over or reopen a case); the other case is not named here.",
    )
}

fn earlier_case_ended() -> DomainError {
    DomainError::conflict(
        "earlier-case-ended",
        "This pupil had a case in Fiktiv that has ended and is still kept. Ask to reopen it \
         (Take over or reopen a case); the case is not named here.",
    )
}

/// A case's fictitious identity, as the school and the central administrator see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct FictitiousView {
    pub first_name: String,
    pub last_name: String,
    pub birth_date: String,
    /// Set once the central administrator registered the order.
    pub number: Option<String>,
}

/// Case metadata: no real identity, no action plan.
#[derive(Debug, Serialize, ToSchema)]
pub struct CaseView {
    pub case_id: String,
    pub unit: String,
    pub country: CountryCode,
    pub state: CaseState,
    pub opened_at: String,
    pub last_review_on: String,
    /// `fictitious-user` or `no-digital-login`, once decided.
    pub login_decision: Option<String>,
    pub guardians_informed_on: Option<String>,
    pub fictitious: Option<FictitiousView>,
    pub ended_on: Option<String>,
    pub end_reason: Option<String>,
    pub identity_shredded: bool,
    /// The day the pupil left, when the end gave it.
    pub left_on: Option<String>,
    /// Once ended: when the real identities, the action plan and the other records
    /// are shredded (`null`: kept by the retention policy).
    pub identity_shred_on: Option<String>,
    pub plan_shred_on: Option<String>,
    pub records_shred_on: Option<String>,
    /// The case was reopened: the unit must write a new plan version before anything
    /// is provisioned again.
    pub plan_required: bool,
    /// Real identities the pupil had before a correction, still looked for by the leak
    /// scan until closed (metadata only).
    pub old_identities: Vec<super::corrections::OldIdentity>,
    /// The link to the pupil in the school administration system (SS 12000), if any.
    pub hub: Option<HubLinkView>,
}

/// A case's link to the pupil in the school administration system (no hub id).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HubLinkView {
    /// When the case was linked (RFC 3339).
    pub linked_at: String,
    /// The hub's marking when last read: `Sekretessmarkering` or `Skyddad folkbokföring`.
    pub marking: String,
    /// When a read first found the marking lifted in the hub: a reason to review the
    /// case with the guardians, never acted on by Fiktiv.
    pub marking_lifted_at: Option<String>,
}

impl CaseRow {
    pub fn fictitious(&self) -> Option<FictitiousView> {
        match (&self.fict_first, &self.fict_last, &self.fict_birth) {
            (Some(f), Some(l), Some(b)) => Some(FictitiousView {
                first_name: f.clone(),
                last_name: l.clone(),
                birth_date: b.clone(),
                number: self.fict_number.clone(),
            }),
            _ => None,
        }
    }

    pub(crate) fn view(&self) -> CaseView {
        CaseView {
            case_id: self.id.to_string(),
            unit: self.unit.clone(),
            country: self.country.into(),
            state: self.state,
            opened_at: self.opened_at.clone(),
            last_review_on: fmt_date(self.last_review_on),
            login_decision: self.login_decision.clone(),
            guardians_informed_on: self.guardians_informed_on.clone(),
            fictitious: self.fictitious(),
            ended_on: self.ended_on.clone(),
            end_reason: self.end_reason.clone(),
            left_on: self.left_on.clone(),
            identity_shred_on: self.identity_shred_on.clone(),
            plan_shred_on: self.plan_shred_on.clone(),
            records_shred_on: self.records_shred_on.clone(),
            identity_shredded: self.identity_shredded_at.is_some(),
            plan_required: self.plan_required_since.is_some(),
            old_identities: Vec::new(),
            hub: None,
        }
    }
}

/// Case metadata. Permit: `case.read` on the case.
pub async fn read(vault: &Vault, permit: &Permit, case: &CaseId) -> DomainResult<CaseView> {
    permit.require(Action::CaseRead)?;
    let mut conn = vault.db().pool().acquire().await?;
    let mut view = load(&mut conn, case).await?.view();
    view.old_identities = super::corrections::old_identities_in(vault, &mut conn, case).await?;
    view.hub = sqlx::query(
        "SELECT linked_at, marking, marking_lifted_at FROM hub_links WHERE case_id = $1",
    )
    .bind(case.to_string())
    .fetch_optional(&mut *conn)
    .await?
    .map(|r| -> DomainResult<HubLinkView> {
        Ok(HubLinkView {
            linked_at: r.try_get("linked_at")?,
            marking: r.try_get("marking")?,
            marking_lifted_at: r.try_get("marking_lifted_at")?,
        })
    })
    .transpose()?;
    Ok(view)
}

/// One line of a case list.
#[derive(Debug, Serialize, ToSchema)]
pub struct CaseSummary {
    pub case_id: String,
    pub unit: String,
    pub country: CountryCode,
    pub state: CaseState,
    pub opened_at: String,
    /// The fictitious name, once decided (`Maja Berg`): how the case is told apart.
    pub fictitious_name: Option<String>,
    /// The school's own label ([`super::labels`]): filled in for those who may read it
    /// (the case's unit), otherwise absent.
    pub label: Option<String>,
}

/// Cases of one unit, or of the whole municipality (`unit` = None). Permit:
/// `case.list` on that unit or the municipality.
pub async fn list(
    vault: &Vault,
    permit: &Permit,
    unit: Option<&str>,
) -> DomainResult<Vec<CaseSummary>> {
    permit.require(Action::CaseList)?;
    let rows = sqlx::query(
        "SELECT case_id, unit, country, state, opened_at, fict_first, fict_last FROM cases \
         WHERE ($1 IS NULL OR unit = $1) ORDER BY opened_at, case_id",
    )
    .bind(unit.map(str::to_owned))
    .fetch_all(vault.db().pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(CaseSummary {
                case_id: r.try_get("case_id")?,
                unit: r.try_get("unit")?,
                country: parse_country(&r.try_get::<String, _>("country")?)?.into(),
                state: CaseState::parse(&r.try_get::<String, _>("state")?)?,
                opened_at: r.try_get("opened_at")?,
                fictitious_name: match (
                    r.try_get::<Option<String>, _>("fict_first")?,
                    r.try_get::<Option<String>, _>("fict_last")?,
                ) {
                    (Some(f), Some(l)) => Some(format!("{f} {l}")),
                    _ => None,
                },
                label: None,
            })
        })
        .collect()
}

/// [`list`] of one unit with the school's labels filled in when `labels` (a
/// `case.label` permit on the unit's cases) is given.
pub async fn list_labelled(
    vault: &Vault,
    permit: &Permit,
    unit: &str,
    labels: Option<&Permit>,
) -> DomainResult<Vec<CaseSummary>> {
    let mut rows = list(vault, permit, Some(unit)).await?;
    if let Some(p) = labels {
        let mut by_case = super::labels::of_unit(vault, p, unit).await?;
        for r in &mut rows {
            r.label = by_case.remove(&r.case_id);
        }
    }
    Ok(rows)
}

/// A real identity as shown on the school's own case page or an approved reveal.
/// Only built from [`Vault::read_identity`], which audits first.
#[derive(Serialize, ToSchema)]
pub struct IdentityView {
    pub case_id: String,
    pub country: CountryCode,
    // Zeroized when the answer or the page has been written.
    #[schema(value_type = String)]
    pub personal_number: Zeroizing<String>,
    #[schema(value_type = String)]
    pub first_name: Zeroizing<String>,
    #[schema(value_type = String)]
    pub last_name: Zeroizing<String>,
    #[schema(value_type = String)]
    pub birth_date: Zeroizing<String>,
}

impl std::fmt::Debug for IdentityView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdentityView([redacted])")
    }
}

impl IdentityView {
    pub(crate) fn from_identity(case: &CaseId, country: Country, id: &RealIdentity) -> Self {
        Self {
            case_id: case.to_string(),
            country: country.into(),
            personal_number: Zeroizing::new(id.number.canonical().to_owned()),
            first_name: Zeroizing::new(id.first_name.expose().to_owned()),
            last_name: Zeroizing::new(id.last_name.expose().to_owned()),
            birth_date: Zeroizing::new(fmt_date(id.birth_date)),
        }
    }
}

/// Map the vault's "nothing to open" to `Gone`: the identity was shredded.
pub(crate) fn shredded(e: VaultError) -> DomainError {
    match e {
        VaultError::NoKey | VaultError::NotFound => DomainError::Gone {
            code: "identity-shredded",
            message: "The real identity of this case has been shredded.",
        },
        e => e.into(),
    }
}

/// The school's own case page with the real identity. Permit: `case.read-identity`.
/// The read is audited before anything is decrypted.
pub async fn read_identity(
    vault: &Vault,
    permit: &Permit,
    case: &CaseId,
) -> DomainResult<IdentityView> {
    permit.require(Action::CaseReadIdentity)?;
    let mut conn = vault.db().pool().acquire().await?;
    let row = load(&mut conn, case).await?;
    drop(conn);
    let id = vault
        .read_identity(
            ReadContext {
                actor: permit.principal_id(),
                action: Action::CaseReadIdentity.as_str(),
                purpose: "school case page",
            },
            case,
            "pupil",
        )
        .await
        .map_err(shredded)?;
    Ok(IdentityView::from_identity(case, row.country, &id))
}
