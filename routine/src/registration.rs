//! Step 7: registration. The central administrator assigns the individual digits of
//! the fictitious number, or asks Fiktiv to pick free ones. Swedish: the 3-digit serial
//! with the check digit computed as the number policy says. Norwegian: the synthetic
//! form (month + 80) with both mod-11 check digits. The number must be unique among all
//! fictitious numbers and never equal a real number in the vault (blind index).
//!
//! A refused number is refused with one answer, "unavailable", whether another
//! fictitious pupil has it or a real person in the vault does: telling the two apart
//! would tell the administrator a protected person's real number.

use chrono::{Datelike, NaiveDate};
use fiktiv_policies::number_ranges::{CheckDigitRule, NumberPolicy};
use fiktiv_policies::{Action, Country, Permit};
use fiktiv_vault::audit::{fmt_time, NewEvent, Outcome};
use fiktiv_vault::ids::{make_no_synthetic_number, make_se_number};
use fiktiv_vault::{CaseId, IndexKind, Vault};
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, Row};
use utoipa::ToSchema;

use super::cases::{self, CaseState};
use super::guardians::{self, GuardianFictitious};
use super::ids::OrderId;
use super::{
    audit_ok, is_unique_violation, parse_date, DomainError, DomainResult, FieldProblem, Rules,
};

/// Register an order.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterInput {
    /// The pupil's individual digits: the Swedish serial or the Norwegian individual
    /// number (0..=999). Leave out to let Fiktiv pick free ones.
    pub serial: Option<u16>,
    /// Individual digits for linked guardians, by guardian number. A linked guardian
    /// left out gets free digits picked by Fiktiv.
    #[serde(default)]
    pub guardian_serials: Vec<GuardianSerial>,
}

/// The individual digits chosen for one linked guardian.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GuardianSerial {
    /// The guardian's number on the order (1..=4).
    pub guardian_no: i64,
    /// 0..=999.
    pub serial: u16,
}

/// How many chosen numbers may be refused as unavailable for one order before only
/// Fiktiv's pick is accepted. Every refusal is audited. The limit keeps the answer
/// "unavailable" from being used to search for a protected person's real number.
pub const MAX_UNAVAILABLE_ANSWERS: i64 = 3;

/// The registered fictitious pupil: ready for provisioning.
#[derive(Debug, Serialize, ToSchema)]
pub struct Registered {
    pub order_id: String,
    pub case_id: String,
    pub number: String,
    pub guardians: Vec<GuardianFictitious>,
}

/// The number with these individual digits, if policy allows them.
fn compose(
    policy: &NumberPolicy,
    country: Country,
    birth: NaiveDate,
    serial: u16,
) -> Option<String> {
    match country {
        Country::Se => {
            if !policy.allowed_se_serial(serial) {
                return None;
            }
            if policy.se.check_digit == CheckDigitRule::Ss12000Temporary {
                // The date, two letters, two digits: serials 0 to 99.
                if serial > 99 {
                    return None;
                }
                return Some(format!(
                    "{}{}{serial:02}",
                    birth.format("%Y%m%d"),
                    policy.se.temporary_letters.as_str()
                ));
            }
            let valid = make_se_number(birth, serial).ok()?;
            let number = match policy.se.check_digit {
                CheckDigitRule::MustPassLuhn
                | CheckDigitRule::Ss12000Temporary
                | CheckDigitRule::TaxAgencyTestNumbers => valid,
                CheckDigitRule::MustFailLuhn => {
                    // Any other digit fails; take the next one.
                    let (head, last) = valid.split_at(11);
                    let d = last.parse::<u8>().ok()?;
                    format!("{head}{}", (d + 1) % 10)
                }
            };
            let last_four = number.get(8..)?;
            policy
                .check_se_last_four(birth, last_four)
                .is_empty()
                .then_some(number)
        }
        Country::No => {
            if !policy.check_no_individual(serial, birth.year()).is_empty() {
                return None;
            }
            make_no_synthetic_number(birth, serial).ok()
        }
    }
}

/// A number of the scheme in force for `country` (a fixed birth date, the first
/// serial the policy allows), for `fiktiv targets test` to try on a target. Never given
/// to anyone.
pub fn sample_number(policy: &NumberPolicy, country: Country) -> Option<String> {
    let birth = NaiveDate::from_ymd_opt(2015, 1, 1)?;
    (0..=999).find_map(|s| compose(policy, country, birth, s))
}

/// Free: not given to any fictitious person, not any real person's number.
async fn is_free(vault: &Vault, conn: &mut AnyConnection, number: &str) -> DomainResult<bool> {
    let taken = sqlx::query("SELECT 1 AS x FROM fictitious_numbers WHERE number = $1")
        .bind(number)
        .fetch_optional(&mut *conn)
        .await?
        .is_some();
    if taken {
        return Ok(false);
    }
    let idx = vault
        .keys()
        .blind()
        .index(IndexKind::PersonalNumber, number);
    Ok(vault
        .cases_with_index(conn, IndexKind::PersonalNumber, &idx)
        .await?
        .is_empty())
}

fn unavailable() -> DomainError {
    DomainError::conflict(
        "number-unavailable",
        "That number cannot be given out. Choose other digits, or let Fiktiv pick.",
    )
}

/// Pick a free number, trying the allowed digits in random order.
pub(crate) async fn pick(
    vault: &Vault,
    conn: &mut AnyConnection,
    policy: &NumberPolicy,
    country: Country,
    birth: NaiveDate,
    avoid: &[String],
) -> DomainResult<String> {
    let mut serials: Vec<u16> = (0..=999).collect();
    serials.shuffle(&mut rand::thread_rng());
    for s in serials {
        let Some(n) = compose(policy, country, birth, s) else {
            continue;
        };
        if !avoid.contains(&n) && is_free(vault, conn, &n).await? {
            return Ok(n);
        }
    }
    Err(DomainError::conflict(
        "no-number-free",
        "No free number is left for this birth date under the number policy.",
    ))
}

pub(crate) async fn reserve(
    vault: &Vault,
    conn: &mut AnyConnection,
    number: &str,
    case: &CaseId,
    subject: &str,
) -> DomainResult<()> {
    let r = sqlx::query(
        "INSERT INTO fictitious_numbers (number, case_id, subject, assigned_at) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(number)
    .bind(case.to_string())
    .bind(subject)
    .bind(fmt_time(vault.now()))
    .execute(&mut *conn)
    .await;
    match r {
        Err(e) if is_unique_violation(&e) => Err(unavailable()),
        r => r.map(|_| ()).map_err(Into::into),
    }
}

fn digits_problem(field: &str) -> FieldProblem {
    FieldProblem::new(
        field,
        "number.not-digits",
        "The individual digits are three digits, 000 to 999.",
    )
}

fn not_allowed_problem(field: &str) -> FieldProblem {
    FieldProblem::new(
        field,
        "number.not-allowed",
        "These digits are not allowed by the number policy for this birth date.",
    )
}

/// The shape of the input, before anything is read.
fn check_input(input: &RegisterInput) -> DomainResult<()> {
    let mut problems = Vec::new();
    if input.serial.is_some_and(|s| s > 999) {
        problems.push(digits_problem("serial"));
    }
    if input.guardian_serials.len() > guardians::MAX_GUARDIANS as usize {
        problems.push(FieldProblem::new(
            "guardian_serials",
            "list.too-long",
            "The list has too many items (at most 4).",
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for (i, g) in input.guardian_serials.iter().enumerate() {
        if g.serial > 999 {
            problems.push(digits_problem(&format!("guardian_serials[{i}].serial")));
        }
        if !seen.insert(g.guardian_no) {
            problems.push(FieldProblem::new(
                "guardian_serials",
                "list.duplicate",
                "The list has the same guardian twice.",
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(DomainError::Invalid(problems))
    }
}

/// How often a chosen number was refused as unavailable for this case.
async fn unavailable_answers(conn: &mut AnyConnection, case: &CaseId) -> DomainResult<i64> {
    Ok(sqlx::query(
        "SELECT COUNT(*) AS n FROM audit_events WHERE case_id = $1 AND action = $2 \
         AND outcome = 'denied'",
    )
    .bind(case.to_string())
    .bind(Action::OrderRegister.as_str())
    .fetch_one(&mut *conn)
    .await?
    .try_get("n")?)
}

/// Register an order (step 7). Permit: `order.register` on the order's case.
///
/// Digits chosen by the administrator are checked first; a chosen number that is
/// taken (by a fictitious person, or as a real person's number in the vault) is
/// refused as `number-unavailable`, that refusal is audited, and after
/// [`MAX_UNAVAILABLE_ANSWERS`] of them only Fiktiv's pick is accepted for the order.
pub async fn register(
    vault: &Vault,
    rules: &Rules,
    permit: &Permit,
    order: &OrderId,
    input: RegisterInput,
) -> DomainResult<Registered> {
    permit.require(Action::OrderRegister)?;
    check_input(&input)?;
    let mut tx = vault.db().begin_write().await?;
    let r = sqlx::query("SELECT case_id FROM orders WHERE order_id = $1")
        .bind(order.to_string())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(DomainError::NotFound)?;
    let case: CaseId = r
        .try_get::<String, _>("case_id")?
        .parse()
        .map_err(|_| DomainError::Internal("stored case id is malformed".into()))?;
    let row = cases::load(&mut tx, &case).await?;
    if row.state != CaseState::Ordered {
        return Err(DomainError::wrong_state());
    }
    let birth = parse_date(row.fict_birth.as_deref().unwrap_or_default())?;
    let policy = &rules.numbers;
    let mut guardians = guardians::linked(&mut tx, &case).await?;

    // The administrator's own digits: the policy first, then one number per person.
    let mut chosen: Vec<(Option<i64>, String)> = Vec::new();
    let mut problems = Vec::new();
    if let Some(s) = input.serial {
        match compose(policy, row.country, birth, s) {
            Some(n) => chosen.push((None, n)),
            None => problems.push(not_allowed_problem("serial")),
        }
    }
    for (i, gs) in input.guardian_serials.iter().enumerate() {
        let Some(g) = guardians.iter().find(|g| g.guardian_no == gs.guardian_no) else {
            problems.push(FieldProblem::new(
                format!("guardian_serials[{i}].guardian_no"),
                "guardian.not-linked",
                "The order has no linked guardian with this number.",
            ));
            continue;
        };
        match compose(policy, row.country, parse_date(&g.birth_date)?, gs.serial) {
            Some(n) => chosen.push((Some(gs.guardian_no), n)),
            None => problems.push(not_allowed_problem(&format!(
                "guardian_serials[{i}].serial"
            ))),
        }
    }
    let mut distinct = std::collections::HashSet::new();
    if !chosen.iter().all(|(_, n)| distinct.insert(n.as_str())) {
        problems.push(FieldProblem::new(
            "guardian_serials",
            "number.chosen-twice",
            "The chosen digits give two people the same number.",
        ));
    }
    if !problems.is_empty() {
        return Err(DomainError::Invalid(problems));
    }
    if !chosen.is_empty() {
        if unavailable_answers(&mut tx, &case).await? >= MAX_UNAVAILABLE_ANSWERS {
            return Err(DomainError::conflict(
                "chosen-digits-locked",
                "Too many chosen numbers were unavailable for this order. Let Fiktiv pick \
                 the digits.",
            ));
        }
        for (_, n) in &chosen {
            if !is_free(vault, &mut tx, n).await? {
                drop(tx);
                let mut tx = vault.db().begin_write().await?;
                vault
                    .audit(
                        &mut tx,
                        &NewEvent {
                            actor: permit.principal_id(),
                            action: Action::OrderRegister.as_str(),
                            case_id: Some(case),
                            purpose: None,
                            outcome: Outcome::Denied,
                        },
                    )
                    .await?;
                tx.commit().await?;
                return Err(unavailable());
            }
        }
    }

    let mut given: Vec<String> = chosen.iter().map(|(_, n)| n.clone()).collect();
    let number = match chosen.iter().find(|(g, _)| g.is_none()) {
        Some((_, n)) => n.clone(),
        None => {
            let n = pick(vault, &mut tx, policy, row.country, birth, &given).await?;
            given.push(n.clone());
            n
        }
    };
    reserve(vault, &mut tx, &number, &case, "pupil").await?;
    for g in &mut guardians {
        let n = match chosen.iter().find(|(no, _)| *no == Some(g.guardian_no)) {
            Some((_, n)) => n.clone(),
            None => {
                let gb = parse_date(&g.birth_date)?;
                let n = pick(vault, &mut tx, policy, row.country, gb, &given).await?;
                given.push(n.clone());
                n
            }
        };
        reserve(
            vault,
            &mut tx,
            &n,
            &case,
            &guardians::subject(g.guardian_no),
        )
        .await?;
        sqlx::query(
            "UPDATE guardians SET fict_number = $1 WHERE case_id = $2 AND guardian_no = $3",
        )
        .bind(&n)
        .bind(case.to_string())
        .bind(g.guardian_no)
        .execute(&mut *tx)
        .await?;
        g.number = Some(n);
    }
    let now = fmt_time(vault.now());
    sqlx::query("UPDATE cases SET fict_number = $1, state = 'registered' WHERE case_id = $2")
        .bind(&number)
        .bind(case.to_string())
        .execute(&mut *tx)
        .await?;
    sqlx::query("UPDATE orders SET registered_by = $1, registered_at = $2 WHERE order_id = $3")
        .bind(permit.principal_id())
        .bind(&now)
        .bind(order.to_string())
        .execute(&mut *tx)
        .await?;
    crate::desired::sync_case(vault, &mut tx, &case).await?; // desired on the targets
    audit_ok(vault, &mut tx, permit, Some(case), None).await?;
    match tx.commit().await {
        Err(e) if is_unique_violation(&e) => return Err(unavailable()),
        r => r?,
    }
    Ok(Registered {
        order_id: order.to_string(),
        case_id: case.to_string(),
        number,
        guardians,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use fiktiv_vault::ids::PersonalNumber;

    #[test]
    fn default_policy_composes_numbers_that_are_nobodys() {
        let p = NumberPolicy::default_policy().unwrap();
        let today = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        let birth = NaiveDate::from_ymd_opt(2014, 3, 9).unwrap();
        // Sweden: the birth date and serial, and a check digit that fails Luhn, so the
        // number is no real personal number (it does not parse as one).
        let se = compose(&p, Country::Se, birth, 123).unwrap();
        assert_eq!(&se[..11], "20140309123");
        assert_ne!(se, make_se_number(birth, 123).unwrap());
        assert!(PersonalNumber::parse_country(fiktiv_vault::ids::Country::Se, &se, today).is_err());
        // The SS 12000 temporary form: the date, two letters, two digits.
        let mut temp = p.clone();
        temp.se.check_digit = CheckDigitRule::Ss12000Temporary;
        assert_eq!(
            compose(&temp, Country::Se, birth, 7).as_deref(),
            Some("20140309TF07")
        );
        assert!(compose(&temp, Country::Se, birth, 100).is_none());
        // With `must-pass-luhn`, a valid one.
        let mut pass = p.clone();
        pass.se.check_digit = CheckDigitRule::MustPassLuhn;
        let valid = compose(&pass, Country::Se, birth, 123).unwrap();
        assert!(
            PersonalNumber::parse_country(fiktiv_vault::ids::Country::Se, &valid, today).is_ok()
        );
        let no = (500..1000)
            .find_map(|s| compose(&p, Country::No, birth, s))
            .unwrap();
        let parsed =
            PersonalNumber::parse_country(fiktiv_vault::ids::Country::No, &no, today).unwrap();
        assert_eq!(parsed.kind(), fiktiv_vault::ids::NumberKind::NoSynthetic);
        // Wrong century for a 2014 birth.
        assert!(compose(&p, Country::No, birth, 100).is_none());
    }
}
