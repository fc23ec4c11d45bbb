//! Step 4: the fictitious identity. The school decides the fictitious first name, last
//! name and birth date; Fiktiv checks them under policy (not the real ones, birth date
//! in the same year by default) and offers suggestions from bundled name lists.

use chrono::NaiveDate;
use fiktiv_policies::identity_rules::{IdentityRules, NameAndBirthDate, Violation};
use fiktiv_policies::{Action, Country, Permit};
use fiktiv_vault::audit::fmt_time;
use fiktiv_vault::identity::{name_birth_of, name_spelling_keys};
use fiktiv_vault::{CaseId, IndexKind, ReadContext, RealIdentity, Vault};
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;
use utoipa::ToSchema;
use zeroize::Zeroizing;

use super::cases::{self, CaseState};
use super::{
    audit_ok, check_date, check_name, fmt_date, fold_name_parts, today, DomainError, DomainResult,
    FieldProblem, Rules,
};

/// A proposed fictitious identity.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FictitiousInput {
    pub first_name: String,
    pub last_name: String,
    /// `YYYY-MM-DD`.
    pub birth_date: String,
}

/// The accepted fictitious identity.
#[derive(Debug, Serialize, ToSchema)]
pub struct FictitiousAccepted {
    pub first_name: String,
    pub last_name: String,
    pub birth_date: String,
}

fn violation_field(v: Violation) -> &'static str {
    match v {
        Violation::FirstNameEmpty => "first_name",
        Violation::LastNameEmpty => "last_name",
        Violation::NameEqualsReal
        | Violation::NameSwapsReal
        | Violation::NameSharesPartWithReal => "name",
        Violation::BirthDateInFuture
        | Violation::BirthDateEqualsReal
        | Violation::BirthYearDiffers
        | Violation::BirthSchoolYearDiffers => "birth_date",
    }
}

/// Check a fictitious identity's shape and compare it with the real one under policy.
/// Returns the parsed birth date when there is no problem. Problems are appended with
/// field names under `prefix`; they never hold a value.
pub(crate) fn check_against_real(
    rules: &Rules,
    country: Country,
    real: &RealIdentity,
    input: &FictitiousInput,
    today: NaiveDate,
    prefix: &str,
    out: &mut Vec<FieldProblem>,
) -> Option<NaiveDate> {
    let before = out.len();
    check_name(&format!("{prefix}first_name"), &input.first_name, out);
    check_name(&format!("{prefix}last_name"), &input.last_name, out);
    let birth = check_date(&format!("{prefix}birth_date"), &input.birth_date, out)?;
    if out.len() > before {
        return None;
    }
    let real_first = Zeroizing::new(fold_name_parts(real.first_name.expose()));
    let real_last = Zeroizing::new(fold_name_parts(real.last_name.expose()));
    let f_first = fold_name_parts(&input.first_name);
    let f_last = fold_name_parts(&input.last_name);
    let calendar = rules.review_policy(country).calendar();
    let checker = IdentityRules::new(rules.identity, calendar);
    let violations = checker.validate(
        &NameAndBirthDate {
            first_name: &real_first,
            last_name: &real_last,
            birth_date: real.birth_date,
        },
        &NameAndBirthDate {
            first_name: &f_first,
            last_name: &f_last,
            birth_date: birth,
        },
        today,
    );
    for v in violations {
        if is_name_refusal(v) {
            // One neutral answer for every refused name ([`name_not_allowed`]).
            if !out.iter().any(|p| p.code == NAME_NOT_ALLOWED) {
                out.push(name_not_allowed(prefix));
            }
            continue;
        }
        out.push(FieldProblem::new(
            format!("{prefix}{}", violation_field(v)),
            v.code(),
            v.message(),
        ));
    }
    (out.len() == before).then_some(birth)
}

/// Is this violation a refusal of the name because of a real name?
fn is_name_refusal(v: Violation) -> bool {
    matches!(
        v,
        Violation::NameEqualsReal | Violation::NameSwapsReal | Violation::NameSharesPartWithReal
    )
}

/// The code of [`name_not_allowed`].
pub(crate) const NAME_NOT_ALLOWED: &str = "fictitious.name-not-allowed";

/// Refused names per person per [`REFUSED_NAMES_WINDOW_HOURS`]; past it, the step is
/// refused until the window has passed. A school that tries names one by one needs a few;
/// many are someone testing names against the vault.
pub const MAX_REFUSED_NAMES: i64 = 10;
/// The window of [`MAX_REFUSED_NAMES`], in hours.
pub const REFUSED_NAMES_WINDOW_HOURS: i64 = 24;

/// The one answer for a refused fictitious name, whatever the reason: it is the pupil's
/// own real name (or shares a part with it, or swaps it), or it is another protected
/// person's real name in the vault, in any spelling. The answer must not tell these
/// apart: a school user could otherwise test any child's name against the vault. The
/// reason is written to the audit trail only ([`refuse_name`]).
pub(crate) fn name_not_allowed(prefix: &str) -> FieldProblem {
    FieldProblem::new(
        format!("{prefix}name"),
        NAME_NOT_ALLOWED,
        "This name cannot be used. Choose another name, for example one of the suggestions.",
    )
}

/// Why a name was refused, for the audit trail (an auditor reads it; the school does
/// not).
#[derive(Debug, Clone, Copy)]
pub(crate) enum NameRefusal {
    /// The pupil's own real name, or a part of it, or its parts swapped.
    OwnRealName,
    /// A real identity in the vault (another case's, or this one's in another
    /// spelling).
    RealIdentityInVault,
}

impl NameRefusal {
    fn reason(self) -> &'static str {
        match self {
            NameRefusal::OwnRealName => {
                "fictitious name refused: the real name of this case's person, or a part of it"
            }
            NameRefusal::RealIdentityInVault => {
                "fictitious name refused: a real identity in the vault (another case's, or \
                 this case's in another spelling)"
            }
        }
    }
}

/// Records a refused name as a `denied` audit event with its reason (in a transaction
/// of its own: the refused write changes nothing else) and returns the answer: the
/// `problems`, which hold the neutral [`name_not_allowed`].
pub(crate) async fn refuse_name(
    vault: &Vault,
    permit: &Permit,
    case: &CaseId,
    why: NameRefusal,
    problems: Vec<FieldProblem>,
) -> DomainResult<DomainError> {
    let mut tx = vault.db().begin_write().await?;
    super::audit_refused(vault, &mut tx, permit, Some(*case), why.reason()).await?;
    tx.commit().await?;
    Ok(DomainError::Invalid(problems))
}

/// The refusal of a fictitious name that is a real identity in the vault
/// ([`matches_a_real_identity`]): the neutral answer for the field under `prefix`,
/// audited with its reason ([`refuse_name`]).
pub(crate) async fn refuse_real_identity(
    vault: &Vault,
    permit: &Permit,
    case: &CaseId,
    prefix: &str,
) -> DomainResult<DomainError> {
    let problems = vec![name_not_allowed(prefix)];
    refuse_name(
        vault,
        permit,
        case,
        NameRefusal::RealIdentityInVault,
        problems,
    )
    .await
}

/// Refuses the step when this person has had [`MAX_REFUSED_NAMES`] names refused in the
/// last [`REFUSED_NAMES_WINDOW_HOURS`], for pupils and guardians together (counted from
/// the audit trail, so the API and the web UI share one count, and a restart does not
/// reset it).
pub(crate) async fn check_refused_names(
    vault: &Vault,
    conn: &mut AnyConnection,
    permit: &Permit,
) -> DomainResult<()> {
    let since = vault.now() - chrono::Duration::hours(REFUSED_NAMES_WINDOW_HOURS);
    let refused: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_events WHERE actor = $1 \
         AND outcome = 'denied' AND purpose LIKE 'fictitious name refused:%' AND at >= $2",
    )
    .bind(permit.principal_id())
    .bind(fmt_time(since))
    .fetch_one(&mut *conn)
    .await
    // The count is read from the audit trail: without it the limit cannot be kept, and
    // the step is refused as any step whose audit trail is unavailable.
    .map_err(|e| super::from_sql(&e, true))?;
    if refused >= MAX_REFUSED_NAMES {
        return Err(DomainError::conflict(
            "too-many-refused-names",
            "Too many names were refused. Try again tomorrow, or ask the central \
             administrator.",
        ));
    }
    Ok(())
}

/// Whether a fictitious name (with or without its birth date) is some real person's in
/// the vault, by blind index, in any spelling an ASCII-only system makes of either
/// (the vault keeps the real names' spellings; the fictitious name's are tried here,
/// since a target may transliterate it into a real one). The answer never says whose.
pub(crate) async fn matches_a_real_identity(
    vault: &Vault,
    conn: &mut AnyConnection,
    first: &str,
    last: &str,
    birth: NaiveDate,
) -> DomainResult<bool> {
    let key = vault.keys().blind();
    for full in name_spelling_keys(first, last) {
        let nb = name_birth_of(&full, birth);
        for (kind, k) in [(IndexKind::FullName, &full), (IndexKind::NameBirth, &nb)] {
            let idx = key.index(kind, k);
            if !vault.cases_with_index(conn, kind, &idx).await?.is_empty() {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// A fictitious identity for `case`, checked as the school's decision is: its shape, the
/// person's count of refused names, and the real identity (an audited read, under the
/// permit's action) under the identity policy. Returns the trimmed names and the birth
/// date. The caller then checks every real identity in the vault
/// ([`matches_a_real_identity`]) in the transaction that writes. Used by the decision
/// itself and by a change after registration.
pub(crate) async fn checked(
    vault: &Vault,
    rules: &Rules,
    permit: &Permit,
    case: &CaseId,
    row: &cases::CaseRow,
    subject: &str,
    input: &FictitiousInput,
) -> DomainResult<(String, String, NaiveDate)> {
    // The shape first: a malformed input is refused without reading the real identity.
    let mut problems = Vec::new();
    check_name("first_name", &input.first_name, &mut problems);
    check_name("last_name", &input.last_name, &mut problems);
    check_date("birth_date", &input.birth_date, &mut problems);
    if !problems.is_empty() {
        return Err(DomainError::Invalid(problems));
    }
    {
        let mut conn = vault.db().pool().acquire().await?;
        check_refused_names(vault, &mut conn, permit).await?;
    }
    let real = vault
        .read_identity(
            ReadContext {
                actor: permit.principal_id(),
                action: permit.action().as_str(),
                purpose: "check the fictitious identity against the real one",
            },
            case,
            subject,
        )
        .await
        .map_err(cases::shredded)?;
    let birth = check_against_real(
        rules,
        row.country,
        &real,
        input,
        today(vault, row.country),
        "",
        &mut problems,
    );
    drop(real);
    if problems.iter().any(|p| p.code == NAME_NOT_ALLOWED) {
        return Err(refuse_name(vault, permit, case, NameRefusal::OwnRealName, problems).await?);
    }
    let birth = match birth {
        Some(b) if problems.is_empty() => b,
        _ => return Err(DomainError::Invalid(problems)),
    };
    Ok((
        input.first_name.trim().to_owned(),
        input.last_name.trim().to_owned(),
        birth,
    ))
}

/// Decide the pupil's fictitious identity. Permit: `fictitious-identity.write`. Needs
/// the decision "fictitious user" and a case whose order was not sent yet.
pub async fn write(
    vault: &Vault,
    rules: &Rules,
    permit: &Permit,
    case: &CaseId,
    input: FictitiousInput,
) -> DomainResult<FictitiousAccepted> {
    permit.require(Action::FictitiousIdentityWrite)?;
    let row = {
        let mut conn = vault.db().pool().acquire().await?;
        cases::load(&mut conn, case).await?
    };
    if row.state != CaseState::Open {
        return Err(DomainError::wrong_state());
    }
    if row.login_decision.as_deref() != Some("fictitious-user") {
        return Err(DomainError::conflict(
            "decision-required",
            "Record the decision \"fictitious user\" before the fictitious identity.",
        ));
    }
    let (first, last, birth) = checked(vault, rules, permit, case, &row, "pupil", &input).await?;
    let mut tx = vault.db().begin_write().await?;
    if matches_a_real_identity(vault, &mut tx, &first, &last, birth).await? {
        drop(tx);
        return Err(refuse_real_identity(vault, permit, case, "").await?);
    }
    let row = cases::load(&mut tx, case).await?;
    if row.state != CaseState::Open {
        return Err(DomainError::wrong_state());
    }
    sqlx::query(
        "UPDATE cases SET fict_first = $1, fict_last = $2, fict_birth = $3, fict_by = $4, \
         fict_at = $5 WHERE case_id = $6",
    )
    .bind(&first)
    .bind(&last)
    .bind(fmt_date(birth))
    .bind(permit.principal_id())
    .bind(fmt_time(vault.now()))
    .bind(case.to_string())
    .execute(&mut *tx)
    .await?;
    audit_ok(vault, &mut tx, permit, Some(*case), None).await?;
    tx.commit().await?;
    Ok(FictitiousAccepted {
        first_name: first,
        last_name: last,
        birth_date: fmt_date(birth),
    })
}

const SE_FIRST: &str = include_str!("../data/names/se_first_names.txt");
const SE_LAST: &str = include_str!("../data/names/se_last_names.txt");
const NO_FIRST: &str = include_str!("../data/names/no_first_names.txt");
const NO_LAST: &str = include_str!("../data/names/no_last_names.txt");

fn names(text: &str) -> Vec<&str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

/// The bundled first- and surname lists of a country.
pub fn name_lists(country: Country) -> (Vec<&'static str>, Vec<&'static str>) {
    match country {
        Country::Se => (names(SE_FIRST), names(SE_LAST)),
        Country::No => (names(NO_FIRST), names(NO_LAST)),
    }
}

/// Name suggestions.
#[derive(Debug, Serialize, ToSchema)]
pub struct Suggestions {
    pub first_names: Vec<String>,
    pub last_names: Vec<String>,
    /// Where the lists come from.
    pub source: String,
}

/// Random suggestions from the bundled lists of the case's country. Permit:
/// `fictitious-identity.write` (the suggestions are for that step). The school still
/// decides, and the choice is checked when it is written.
///
/// No first name suggested makes, with any last name suggested, a real identity's full
/// name in the vault, in any spelling ([`drop_real_pairs`]): any pair the school takes
/// from the two lists is accepted by that check.
pub async fn suggestions(
    vault: &Vault,
    permit: &Permit,
    case: &CaseId,
    count: usize,
) -> DomainResult<Suggestions> {
    permit.require(Action::FictitiousIdentityWrite)?;
    let mut conn = vault.db().pool().acquire().await?;
    let row = cases::load(&mut conn, case).await?;
    let (first, last) = name_lists(row.country);
    let n = count.clamp(1, 20);
    let (mut firsts, lasts): (Vec<&str>, Vec<&str>) = {
        let mut rng = rand::thread_rng();
        (
            first.choose_multiple(&mut rng, 2 * n).copied().collect(),
            last.choose_multiple(&mut rng, n).copied().collect(),
        )
    };
    drop_real_pairs(vault, &mut conn, &mut firsts, &lasts).await?;
    firsts.truncate(n);
    Ok(Suggestions {
        first_names: firsts.into_iter().map(str::to_owned).collect(),
        last_names: lasts.into_iter().map(str::to_owned).collect(),
        source: match row.country {
            Country::Se => "Statistics Sweden (SCB), Namnstatistik".into(),
            Country::No => "Statistics Norway (SSB), Navn".into(),
        },
    })
}

/// Removes every first name that makes, with one of `lasts`, a real identity's full
/// name in the vault (in any spelling), by blind index, in one query per hundred keys.
async fn drop_real_pairs(
    vault: &Vault,
    conn: &mut AnyConnection,
    firsts: &mut Vec<&str>,
    lasts: &[&str],
) -> DomainResult<()> {
    let key = vault.keys().blind();
    let mut by_index: Vec<(String, usize)> = Vec::new();
    for (i, f) in firsts.iter().enumerate() {
        for l in lasts {
            for full in name_spelling_keys(f, l) {
                by_index.push((key.index(IndexKind::FullName, &full).to_hex(), i));
            }
        }
    }
    let mut real: std::collections::BTreeSet<usize> = std::collections::BTreeSet::new();
    for chunk in by_index.chunks(100) {
        let marks: Vec<String> = (0..chunk.len()).map(|k| format!("${}", k + 2)).collect();
        let sql = format!(
            "SELECT idx FROM blind_indexes WHERE kind = $1 AND idx IN ({})",
            marks.join(", ")
        );
        let mut q = sqlx::query_scalar::<_, String>(&sql).bind(IndexKind::FullName.as_str());
        for (hex, _) in chunk {
            q = q.bind(hex.as_str());
        }
        for hit in q.fetch_all(&mut *conn).await? {
            real.extend(chunk.iter().filter(|(h, _)| *h == hit).map(|(_, i)| *i));
        }
    }
    let mut i = 0;
    firsts.retain(|_| {
        let keep = !real.contains(&i);
        i += 1;
        keep
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn bundled_lists_are_valid_names() {
        for c in [Country::Se, Country::No] {
            let (f, l) = name_lists(c);
            assert!(f.len() >= 30 && l.len() >= 30);
            for n in f.iter().chain(&l) {
                fiktiv_vault::normalize::validate_display_name(n).unwrap();
            }
        }
    }
}
