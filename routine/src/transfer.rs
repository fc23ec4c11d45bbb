//! Leaving the municipality: a case transfer package for another municipality's Fiktiv.
//!
//! Seed 002: a pupil's file goes to another municipality only with written consent.
//! The receiving Fiktiv publishes its transfer public key (`fiktiv transfer key`); the
//! sending school seals the case for that key ([`export`]) with the consent recorded:
//! who gave it, when, and its scope (the action plan yes or no; disciplinary matters
//! only with explicit consent). The sending case then ends with the reason "left the
//! municipality" and is shredded on its schedule.
//!
//! The package is HPKE (RFC 9180) in mode Auth: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
//! ChaCha20-Poly1305, from the `hpke` crate. Mode Auth binds the sender's static key
//! into the key schedule, so only the holder of the sender's private key can make a
//! package that opens under that sender's public key: the receiver verifies the sender
//! by opening it. The header (format, package id, time, both keys, the sender's name) is
//! the associated data: changing any of it, or any byte of the ciphertext, makes the
//! package fail to open. Nothing in it is readable without the receiver's private key.
//!
//! The receiving school imports it ([`import`]) as a new case in a unit of its own,
//! after the checks, each refusing with its own clear error and writing nothing: the
//! package is for this Fiktiv, the sender is a configured municipality
//! (`[transfer] senders`), it opens, it was not imported before (a replay), and what it
//! carries is within the consent (no plan without consent to the plan). The new case
//! starts the receiving municipality's own routine from the plan.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use chrono::NaiveDate;
use fiktiv_policies::{Action, Permit};
use fiktiv_vault::audit::{check_purpose, fmt_time};
use fiktiv_vault::{CaseId, IndexKind, ReadContext, Vault};
use hpke::aead::ChaCha20Poly1305;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};
use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, Row};
use utoipa::ToSchema;
use zeroize::Zeroizing;

use super::cases::{self, CaseState};
use super::end::{end_in_tx, EndReason};
use super::plans::{self, Plan};
use super::{
    audit_ok, audit_refused, check_date, country_str, fmt_date, parse_country, today, DomainError,
    DomainResult, FieldProblem, Rules,
};

/// `[transfer]`: case transfer packages between municipalities.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TransferConfig {
    /// This municipality's name, written in every package it makes (for the receiver's
    /// audit trail and staff).
    pub municipality: Option<String>,
    /// The municipalities whose packages are accepted: each name with its Fiktiv's
    /// transfer public key (`fiktiv transfer key` there). A package from anyone else is
    /// refused.
    pub senders: Vec<TransferSender>,
}

/// A municipality whose packages are accepted.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferSender {
    pub name: String,
    /// Base64 of the 32-byte X25519 public key.
    pub key: String,
}

type Kem = X25519HkdfSha256;
type PublicKey = <Kem as hpke::Kem>::PublicKey;
type PrivateKey = <Kem as hpke::Kem>::PrivateKey;
type EncappedKey = <Kem as hpke::Kem>::EncappedKey;

/// The package format.
pub const FORMAT: &str = "fiktiv-transfer/1";
const INFO: &[u8] = b"fiktiv case transfer package v1";
const SECRET_PURPOSE: &str = "transfer-key";
const SECRET_OWNER: &str = "instance";
/// The purpose of the audited read of the real identity for a package.
pub const EXPORT_PURPOSE: &str = "transfer package to another municipality";
/// The purpose of the audit event of a package made: this, then the package id.
pub const PACKAGE_PURPOSE_PREFIX: &str = "transfer package ";

/// A transfer package: the header in the clear (nothing about the pupil), the rest
/// sealed for the receiver.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Package {
    /// `fiktiv-transfer/1`.
    pub format: String,
    /// Unique per package: a package is imported once.
    pub package_id: String,
    pub created_at: String,
    /// The sending Fiktiv's transfer public key (base64).
    pub sender: String,
    /// The sending municipality's name (`[transfer] municipality`).
    pub sender_name: String,
    /// The receiving Fiktiv's transfer public key (base64).
    pub recipient: String,
    /// The HPKE encapsulated key (base64).
    pub enc: String,
    /// The sealed case (base64).
    pub ciphertext: String,
}

/// The written consent the transfer rests on.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Consent {
    /// Who gave it (the guardians, or the pupil after 18), as written on the consent;
    /// no personal number.
    pub given_by: String,
    /// `YYYY-MM-DD`.
    pub given_on: String,
    /// Whether the action plan goes with the case.
    pub plan: bool,
    /// Whether disciplinary matters may go (only with explicit consent). Fiktiv holds
    /// none itself; the receiver sees the scope.
    #[serde(default)]
    pub disciplinary: bool,
}

/// Make a package.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportInput {
    /// The receiving Fiktiv's transfer public key (base64), as it publishes it.
    pub recipient_key: String,
    pub consent: Consent,
}

/// What was imported.
#[derive(Debug, Serialize, ToSchema)]
pub struct Imported {
    pub case_id: String,
    pub unit: String,
    pub sender_name: String,
    pub consent: Consent,
    /// Whether the action plan came with it (then version 1 of the new case's plan).
    pub plan_included: bool,
}

/// The real identity in a package.
#[derive(Serialize, Deserialize)]
pub struct RealPart {
    pub personal_number: Zeroizing<String>,
    pub first_name: Zeroizing<String>,
    pub last_name: Zeroizing<String>,
    pub birth_date: Zeroizing<String>,
}

/// What a package carries, sealed. [`export`] builds it from a case; [`seal_package`]
/// seals one (what any holder of the vault's keys can do anyway).
#[derive(Serialize, Deserialize)]
pub struct Payload {
    pub country: String,
    pub real: RealPart,
    pub consent: Consent,
    pub plan: Option<Plan>,
}

fn aad(p: &Package) -> Vec<u8> {
    let mut out = Vec::new();
    for part in [
        p.format.as_str(),
        &p.package_id,
        &p.created_at,
        &p.sender,
        &p.sender_name,
        &p.recipient,
    ] {
        out.extend_from_slice(&(part.len() as u64).to_be_bytes());
        out.extend_from_slice(part.as_bytes());
    }
    out
}

fn refused(code: &'static str, message: &'static str) -> DomainError {
    DomainError::conflict(code, message)
}

fn decode_key(field: &str, s: &str) -> DomainResult<PublicKey> {
    B64.decode(s.trim())
        .ok()
        .and_then(|b| PublicKey::from_bytes(&b).ok())
        .ok_or_else(|| {
            DomainError::invalid(
                field,
                "transfer.key-invalid",
                "This is not a Fiktiv transfer public key (base64 of 32 bytes).",
            )
        })
}

/// This instance's transfer key pair, made (and its secret sealed) on first use. Read
/// first, without a write transaction; on first use the new pair is inserted only if no
/// other request inserted one meanwhile (`ON CONFLICT DO NOTHING`), and what is stored
/// is read again, so that two first uses at once agree on one key.
async fn own_keys(vault: &Vault) -> DomainResult<(PrivateKey, PublicKey)> {
    if let Some(keys) = stored_keys(vault).await? {
        return Ok(keys);
    }
    let seal = vault
        .keys()
        .transfer_secrets()
        .map_err(|e| DomainError::Internal(e.to_string()))?;
    let (sk, pk) = Kem::gen_keypair(&mut rand::rngs::OsRng);
    let secret = Zeroizing::new(sk.to_bytes().to_vec());
    let sealed = seal
        .seal(SECRET_PURPOSE, SECRET_OWNER, &secret)
        .map_err(|_| DomainError::Internal("sealing the transfer key failed".into()))?;
    let public = B64.encode(pk.to_bytes());
    drop((sk, pk, secret));
    let mut tx = vault.db().begin_write().await?;
    sqlx::query(
        "INSERT INTO transfer_keys (id, public_key, sealed_secret, created_at) \
         VALUES (1, $1, $2, $3) ON CONFLICT (id) DO NOTHING",
    )
    .bind(public)
    .bind(sealed)
    .bind(fmt_time(vault.now()))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    stored_keys(vault)
        .await?
        .ok_or_else(|| DomainError::Internal("the transfer key was not stored".into()))
}

/// The stored key pair, if there is one.
async fn stored_keys(vault: &Vault) -> DomainResult<Option<(PrivateKey, PublicKey)>> {
    let Some(r) = sqlx::query("SELECT public_key, sealed_secret FROM transfer_keys WHERE id = 1")
        .fetch_optional(vault.db().pool())
        .await?
    else {
        return Ok(None);
    };
    let seal = vault
        .keys()
        .transfer_secrets()
        .map_err(|e| DomainError::Internal(e.to_string()))?;
    let sealed: Vec<u8> = r.try_get("sealed_secret")?;
    let secret = seal
        .open(SECRET_PURPOSE, SECRET_OWNER, &sealed)
        .map_err(|_| DomainError::Internal("the transfer key does not open".into()))?;
    let sk = PrivateKey::from_bytes(&secret)
        .map_err(|_| DomainError::Internal("the stored transfer key is malformed".into()))?;
    let pk = decode_key("public_key", &r.try_get::<String, _>("public_key")?)?;
    Ok(Some((sk, pk)))
}

/// This Fiktiv's transfer public key (base64): what another municipality seals for.
pub async fn public_key(vault: &Vault) -> DomainResult<String> {
    let (_, pk) = own_keys(vault).await?;
    Ok(B64.encode(pk.to_bytes()))
}

fn check_consent(c: &Consent, today: NaiveDate) -> Vec<FieldProblem> {
    let mut problems = Vec::new();
    let by = c.given_by.trim();
    if by.is_empty() || by.chars().count() > 200 || check_purpose(by).is_err() {
        problems.push(FieldProblem::new(
            "consent.given_by",
            "transfer.consent-by-invalid",
            "Write who gave the written consent (1 to 200 characters, no personal identity \
             number).",
        ));
    }
    if let Some(d) = check_date("consent.given_on", &c.given_on, &mut problems) {
        if d > today {
            problems.push(FieldProblem::new(
                "consent.given_on",
                "date.in-future",
                "The date is in the future.",
            ));
        }
    }
    problems
}

/// Seal the case for another municipality's Fiktiv, with the written consent, and end
/// it here ("left the municipality"). Permit: `case.transfer-out`. The real identity is
/// read through the audited read; the plan goes only with consent to it.
pub async fn export(
    vault: &Vault,
    rules: &Rules,
    settings: &TransferConfig,
    permit: &Permit,
    case: &CaseId,
    input: ExportInput,
) -> DomainResult<Package> {
    permit.require(Action::CaseTransferOut)?;
    let row = {
        let mut conn = vault.db().pool().acquire().await?;
        cases::load(&mut conn, case).await?
    };
    if row.state == CaseState::Ended || row.identity_shredded_at.is_some() {
        return Err(DomainError::wrong_state());
    }
    let mut problems = check_consent(&input.consent, today(vault, row.country));
    let recipient = match decode_key("recipient_key", &input.recipient_key) {
        Ok(k) => Some(k),
        Err(DomainError::Invalid(p)) => {
            problems.extend(p);
            None
        }
        Err(e) => return Err(e),
    };
    let Some(recipient) = recipient.filter(|_| problems.is_empty()) else {
        return Err(DomainError::Invalid(problems));
    };
    let Some(sender_name) = settings
        .municipality
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
    else {
        return Err(refused(
            "transfer-not-configured",
            "Set [transfer] municipality (this municipality's name) before making packages.",
        ));
    };
    let (sk, pk) = own_keys(vault).await?;
    let real = vault
        .read_identity(
            ReadContext {
                actor: permit.principal_id(),
                action: Action::CaseTransferOut.as_str(),
                purpose: EXPORT_PURPOSE,
            },
            case,
            "pupil",
        )
        .await
        .map_err(cases::shredded)?;
    let mut tx = vault.db().begin_write().await?;
    let plan = if input.consent.plan {
        plans::latest_in(vault, &mut tx, case, &row.plan_key).await?
    } else {
        None
    };
    let payload = Payload {
        country: country_str(row.country).to_owned(),
        real: RealPart {
            personal_number: Zeroizing::new(real.number.canonical().to_owned()),
            first_name: Zeroizing::new(real.first_name.expose().to_owned()),
            last_name: Zeroizing::new(real.last_name.expose().to_owned()),
            birth_date: Zeroizing::new(fmt_date(real.birth_date)),
        },
        consent: input.consent.clone(),
        plan,
    };
    drop(real);
    let package = seal_with(&sk, &pk, &recipient, sender_name, &payload, vault.now())?;
    drop(payload);
    // The case ends here in the same transaction: deprovisioning, then shredding on
    // the retention schedule.
    end_in_tx(
        vault,
        rules,
        &mut tx,
        permit.principal_id(),
        case,
        EndReason::LeftMunicipality,
        None,
    )
    .await?;
    let purpose = format!("{PACKAGE_PURPOSE_PREFIX}{}", package.package_id);
    audit_ok(vault, &mut tx, permit, Some(*case), Some(&purpose)).await?;
    tx.commit().await?;
    Ok(package)
}

fn seal_with(
    sk: &PrivateKey,
    pk: &PublicKey,
    recipient: &PublicKey,
    sender_name: &str,
    payload: &Payload,
    now: chrono::DateTime<chrono::Utc>,
) -> DomainResult<Package> {
    let plain = Zeroizing::new(
        serde_json::to_vec(payload).map_err(|e| DomainError::Internal(e.to_string()))?,
    );
    let mut package = Package {
        format: FORMAT.into(),
        package_id: uuid::Uuid::new_v4().to_string(),
        created_at: fmt_time(now),
        sender: B64.encode(pk.to_bytes()),
        sender_name: sender_name.to_owned(),
        recipient: B64.encode(recipient.to_bytes()),
        enc: String::new(),
        ciphertext: String::new(),
    };
    let (enc, ciphertext) = hpke::single_shot_seal::<ChaCha20Poly1305, HkdfSha256, Kem, _>(
        &OpModeS::Auth((sk.clone(), pk.clone())),
        recipient,
        INFO,
        &plain,
        &aad(&package),
        &mut rand::rngs::OsRng,
    )
    .map_err(|_| DomainError::Internal("sealing the package failed".into()))?;
    package.enc = B64.encode(enc.to_bytes());
    package.ciphertext = B64.encode(ciphertext);
    Ok(package)
}

/// Seals `payload` as a package of this Fiktiv for `recipient_key`, without a case and
/// without the checks of [`export`] (tools and tests: a holder of the vault's keys can
/// read every identity anyway). The receiver's [`import`] checks it as any package.
pub async fn seal_package(
    vault: &Vault,
    sender_name: &str,
    recipient_key: &str,
    payload: &Payload,
) -> DomainResult<Package> {
    let recipient = decode_key("recipient_key", recipient_key)?;
    let (sk, pk) = own_keys(vault).await?;
    seal_with(&sk, &pk, &recipient, sender_name, payload, vault.now())
}

async fn refuse_import(
    vault: &Vault,
    permit: &Permit,
    code: &'static str,
    message: &'static str,
) -> DomainResult<DomainError> {
    let mut tx = vault.db().begin_write().await?;
    audit_refused(vault, &mut tx, permit, None, code).await?;
    tx.commit().await?;
    Ok(refused(code, message))
}

/// Import a package from another municipality as a new case in `unit`. Permit:
/// `case.transfer-in` on the unit. Every refusal writes nothing but its audit event.
pub async fn import(
    vault: &Vault,
    settings: &TransferConfig,
    permit: &Permit,
    unit: &str,
    package: Package,
) -> DomainResult<Imported> {
    permit.require(Action::CaseTransferIn)?;
    let mut problems = Vec::new();
    super::check_unit_code("unit", unit, &mut problems);
    if !problems.is_empty() {
        return Err(DomainError::Invalid(problems));
    }
    if package.format != FORMAT {
        return Err(refuse_import(
            vault,
            permit,
            "transfer-format",
            "This is not a Fiktiv transfer package of a format this version reads.",
        )
        .await?);
    }
    let (sk, pk) = own_keys(vault).await?;
    if package.recipient.trim() != B64.encode(pk.to_bytes()) {
        return Err(refuse_import(
            vault,
            permit,
            "transfer-not-for-us",
            "This package was made for another municipality's Fiktiv. Ask the sender to make \
             it for this Fiktiv's transfer key.",
        )
        .await?);
    }
    let Some(known) = settings
        .senders
        .iter()
        .find(|s| s.key.trim() == package.sender.trim())
    else {
        return Err(refuse_import(
            vault,
            permit,
            "transfer-sender-unknown",
            "The package's sender is not one of the municipalities configured in [transfer] \
             senders.",
        )
        .await?);
    };
    let sender_pk = decode_key("sender", &package.sender)?;
    let opened = (|| {
        let enc = EncappedKey::from_bytes(&B64.decode(package.enc.trim()).ok()?).ok()?;
        let ct = B64.decode(package.ciphertext.trim()).ok()?;
        hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, Kem>(
            &OpModeR::Auth(sender_pk),
            &sk,
            &enc,
            INFO,
            &ct,
            &aad(&package),
        )
        .ok()
        .map(Zeroizing::new)
    })();
    let Some(plain) = opened else {
        return Err(refuse_import(
            vault,
            permit,
            "transfer-tampered",
            "The package does not open: it was changed on the way, or it was not made by the \
             municipality it names. Nothing was imported.",
        )
        .await?);
    };
    // Authentic is not well-formed: the sender's Fiktiv may be of another version, or
    // wrong. A content this version cannot read is refused like any bad package, never
    // an internal error (fuzz target `transfer`).
    let content = serde_json::from_slice::<Payload>(&plain)
        .ok()
        .and_then(|p| parse_country(&p.country).ok().map(|c| (p, c)));
    drop(plain);
    let Some((payload, country)) = content else {
        return Err(refuse_import(
            vault,
            permit,
            "transfer-malformed",
            "The package opens, but it holds no case this version of Fiktiv reads (for \
             example an unknown country). Nothing was imported.",
        )
        .await?);
    };
    let consent_ok = check_consent(&payload.consent, today(vault, country)).is_empty()
        && (payload.plan.is_none() || payload.consent.plan);
    if !consent_ok {
        return Err(refuse_import(
            vault,
            permit,
            "transfer-consent-scope",
            "The package carries more than its written consent allows (or no valid consent). \
             Nothing was imported.",
        )
        .await?);
    }
    let mut problems = Vec::new();
    let identity = cases::parse_real_identity(
        "",
        country,
        &payload.real.personal_number,
        &payload.real.first_name,
        &payload.real.last_name,
        &payload.real.birth_date,
        today(vault, country),
        &mut problems,
    );
    let Some(identity) = identity.filter(|_| problems.is_empty()) else {
        return Err(DomainError::Invalid(problems));
    };
    let pnr = vault
        .keys()
        .blind()
        .index(IndexKind::PersonalNumber, identity.number.canonical());
    let mut tx = vault.db().begin_write().await?;
    if sqlx::query("SELECT 1 AS x FROM transfer_imports WHERE package_id = $1")
        .bind(&package.package_id)
        .fetch_optional(&mut *tx)
        .await?
        .is_some()
    {
        drop(tx);
        return Err(refuse_import(
            vault,
            permit,
            "transfer-replayed",
            "This package was imported before. Nothing was imported again.",
        )
        .await?);
    }
    if let Some(other) = vault
        .cases_with_index(&mut tx, IndexKind::PersonalNumber, &pnr)
        .await?
        .first()
    {
        audit_refused(vault, &mut tx, permit, Some(*other), "duplicate-identity").await?;
        tx.commit().await?;
        return Err(cases::duplicate_identity());
    }
    let today = today(vault, country);
    let (case, plan_key) = cases::insert_case(
        vault,
        &mut tx,
        permit.principal_id(),
        unit,
        country,
        &identity,
        today,
    )
    .await?;
    drop(identity);
    let plan_included = payload.plan.is_some();
    if let Some(plan) = &payload.plan {
        let bytes = Zeroizing::new(
            serde_json::to_vec(plan).map_err(|e| DomainError::Internal(e.to_string()))?,
        );
        plans::insert_version(
            vault,
            &mut tx,
            &case,
            &plan_key,
            permit.principal_id(),
            &bytes,
        )
        .await?;
    }
    insert_import(&mut tx, &package, &known.name, &case, vault).await?;
    let purpose = format!(
        "transfer package {} from {}",
        package.package_id, known.name
    );
    let purpose = if check_purpose(&purpose).is_ok() {
        purpose
    } else {
        format!("transfer package {}", package.package_id)
    };
    audit_ok(vault, &mut tx, permit, Some(case), Some(&purpose)).await?;
    tx.commit().await?;
    Ok(Imported {
        case_id: case.to_string(),
        unit: unit.to_owned(),
        sender_name: known.name.clone(),
        consent: payload.consent.clone(),
        plan_included,
    })
}

async fn insert_import(
    conn: &mut AnyConnection,
    package: &Package,
    sender: &str,
    case: &CaseId,
    vault: &Vault,
) -> DomainResult<()> {
    let r = sqlx::query(
        "INSERT INTO transfer_imports (package_id, sender, case_id, imported_at) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(&package.package_id)
    .bind(sender)
    .bind(case.to_string())
    .bind(fmt_time(vault.now()))
    .execute(&mut *conn)
    .await;
    match r {
        Err(e) if super::is_unique_violation(&e) => Err(refused(
            "transfer-replayed",
            "This package was imported before. Nothing was imported again.",
        )),
        r => r.map(|_| ()).map_err(Into::into),
    }
}
