//! The encrypted identity store: per-case data keys (wrapped), sealed records, blind
//! indexes, key rotation and crypto-shredding.
//!
//! The only function that returns a [`RealIdentity`] is [`Vault::read_identity`], and it
//! commits an audit event before it decrypts anything: if the audit write fails, the
//! read fails.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sqlx::{AnyConnection, Row};
use zeroize::Zeroizing;

use crate::audit::{self, AuditError, NewEvent, Outcome};
use crate::blind::{BlindIndex, IndexKind};
use crate::clock::SharedClock;
use crate::db::{Db, DbError};
use crate::identity::{DecodeError, RealIdentity};
use crate::keys::{KeyError, KeyRing};
use crate::seal::{self, DataKey, SealError, MAX_ENCRYPTIONS_PER_KEY};
use crate::CaseId;

/// Field name of a subject's sealed real identity.
fn identity_field(subject: &str) -> String {
    format!("{IDENTITY_PREFIX}{subject}")
}

const IDENTITY_PREFIX: &str = "identity:";

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("database error")]
    Sql(#[from] sqlx::Error),
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Seal(#[from] SealError),
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("the case has no data key (it was shredded or never created)")]
    NoKey,
    #[error("no sealed record of that kind exists for the case")]
    NotFound,
    #[error("the case's data key has reached its encryption limit; no more values can be sealed for this case")]
    KeyExhausted,
    #[error("a real identity can only be opened through the audited identity read")]
    IdentityNeedsAuditedRead,
    #[error("the root key does not match this database (wrong key file or FIKTIV_ROOT_KEY?)")]
    WrongKey,
}

/// A sealed value plus the data-key version it was sealed under.
#[derive(Debug, Clone)]
pub struct Sealed {
    pub bytes: Vec<u8>,
    pub dk_version: u32,
}

/// Who reads, and why: written to the audit trail before a real identity is opened.
#[derive(Debug, Clone, Copy)]
pub struct ReadContext<'a> {
    pub actor: &'a str,
    pub action: &'a str,
    pub purpose: &'a str,
}

/// Usage of one key-encryption key version.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KeyVersionInfo {
    pub version: i64,
    pub state: String,
    pub encryptions: i64,
    pub data_keys: i64,
}

/// What a rotation did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RotationReport {
    pub new_version: i64,
    pub rewrapped: u64,
    pub retired: Vec<i64>,
}

/// The vault: database, keys and clock.
#[derive(Clone)]
pub struct Vault {
    db: Db,
    keys: Arc<KeyRing>,
    clock: SharedClock,
    kek_limit: i64,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Vault")
    }
}

impl Vault {
    pub fn new(db: Db, keys: KeyRing, clock: SharedClock) -> Self {
        Self {
            db,
            keys: Arc::new(keys),
            clock,
            kek_limit: MAX_ENCRYPTIONS_PER_KEY,
        }
    }

    /// Lower the per-key encryption limit (tests of automatic rotation).
    pub fn with_kek_limit(mut self, limit: i64) -> Self {
        self.kek_limit = limit;
        self
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn keys(&self) -> &KeyRing {
        &self.keys
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// Append an audit event in the caller's transaction.
    pub async fn audit(
        &self,
        conn: &mut AnyConnection,
        ev: &NewEvent<'_>,
    ) -> Result<i64, VaultError> {
        Ok(audit::append(conn, self.keys.audit(), ev, self.now()).await?)
    }

    /// The active key-encryption key version, creating version 1 on first use and a
    /// new version when the active one reaches its encryption limit.
    async fn active_kek(&self, conn: &mut AnyConnection) -> Result<i64, VaultError> {
        let row = sqlx::query(
            "SELECT version, encryptions FROM key_versions WHERE state = 'active' ORDER BY version DESC LIMIT 1",
        )
        .fetch_optional(&mut *conn)
        .await?;
        let now = audit::fmt_time(self.now());
        match row {
            Some(r) => {
                let v: i64 = r.try_get("version")?;
                let n: i64 = r.try_get("encryptions")?;
                if n < self.kek_limit {
                    return Ok(v);
                }
                // Start a new version; the old one keeps wrapping nothing new and is
                // retired by the next `keys rotate`. Only the writer whose update finds
                // the version still active starts the next one: a concurrent writer
                // waits for that writer's row lock, finds it retiring, and uses the
                // version the other started (committed with the same transaction).
                let retired =
                    sqlx::query("UPDATE key_versions SET state = 'retiring' WHERE version = $1 AND state = 'active'")
                        .bind(v)
                        .execute(&mut *conn)
                        .await?
                        .rows_affected();
                if retired == 0 {
                    let active: i64 = sqlx::query(
                        "SELECT version FROM key_versions WHERE state = 'active' ORDER BY version DESC LIMIT 1",
                    )
                    .fetch_one(&mut *conn)
                    .await?
                    .try_get("version")?;
                    return Ok(active);
                }
                let next = v + 1;
                sqlx::query(
                    "INSERT INTO key_versions (version, state, created_at, encryptions) VALUES ($1, 'active', $2, 0)",
                )
                .bind(next)
                .bind(&now)
                .execute(&mut *conn)
                .await?;
                tracing::warn!(
                    version = v,
                    "key-encryption key reached its limit; new version started"
                );
                Ok(next)
            }
            None => {
                // Two first writes at once on PostgreSQL (read committed) both get here.
                // One statement, one snapshot: it inserts the next version only while no
                // version is active. The second writer either sees the first's committed
                // row (and inserts nothing) or, while the first has not committed, picks
                // the same version number, waits for the first's row and inserts nothing.
                // (Reading MAX(version) in a statement of its own let a writer see the
                // first's commit there but not in its earlier check, and start a second
                // active version.)
                sqlx::query(
                    "INSERT INTO key_versions (version, state, created_at, encryptions) \
                     SELECT x.m + 1, 'active', $1, 0 \
                     FROM (SELECT COALESCE(MAX(version), 0) AS m FROM key_versions) AS x \
                     WHERE NOT EXISTS (SELECT 1 FROM key_versions WHERE state = 'active') \
                     ON CONFLICT (version) DO NOTHING",
                )
                .bind(&now)
                .execute(&mut *conn)
                .await?;
                let active: i64 = sqlx::query(
                    "SELECT version FROM key_versions WHERE state = 'active' ORDER BY version DESC LIMIT 1",
                )
                .fetch_one(&mut *conn)
                .await?
                .try_get("version")?;
                Ok(active)
            }
        }
    }

    async fn count_kek_use(conn: &mut AnyConnection, version: i64) -> Result<(), VaultError> {
        sqlx::query("UPDATE key_versions SET encryptions = encryptions + 1 WHERE version = $1")
            .bind(version)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    /// Give a new case its own random data key, wrapped by the active KEK.
    pub async fn create_case_key(
        &self,
        conn: &mut AnyConnection,
        case: &CaseId,
    ) -> Result<(), VaultError> {
        let version = self.active_kek(conn).await?;
        let kek = self.keys.kek(version as u32)?;
        let dk = DataKey::generate();
        let wrapped = seal::wrap(&kek, version as u32, case, &dk)?;
        Self::count_kek_use(conn, version).await?;
        sqlx::query(
            "INSERT INTO case_keys (case_id, kek_version, dk_version, wrapped, encryptions, created_at) \
             VALUES ($1, $2, 1, $3, 0, $4)",
        )
        .bind(case.to_string())
        .bind(version)
        .bind(wrapped)
        .bind(audit::fmt_time(self.now()))
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    async fn data_key(
        &self,
        conn: &mut AnyConnection,
        case: &CaseId,
    ) -> Result<(DataKey, u32, i64), VaultError> {
        let row = sqlx::query(
            "SELECT kek_version, dk_version, wrapped, encryptions FROM case_keys WHERE case_id = $1",
        )
        .bind(case.to_string())
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(VaultError::NoKey)?;
        let kv: i64 = row.try_get("kek_version")?;
        let dkv: i64 = row.try_get("dk_version")?;
        let wrapped: Vec<u8> = row.try_get("wrapped")?;
        let n: i64 = row.try_get("encryptions")?;
        let kek = self.keys.kek(kv as u32)?;
        let dk = seal::unwrap_key(&kek, kv as u32, case, &wrapped)?;
        Ok((dk, dkv as u32, n))
    }

    /// Seal bytes for a case and field. The caller stores the result where it likes;
    /// only this vault, with the case's data key, can open it.
    pub async fn seal(
        &self,
        conn: &mut AnyConnection,
        case: &CaseId,
        field: &str,
        plaintext: &[u8],
    ) -> Result<Sealed, VaultError> {
        let (dk, dkv, n) = self.data_key(conn, case).await?;
        if n >= self.kek_limit {
            return Err(VaultError::KeyExhausted);
        }
        let bytes = seal::seal(&dk, case, field, dkv, plaintext)?;
        sqlx::query("UPDATE case_keys SET encryptions = encryptions + 1 WHERE case_id = $1")
            .bind(case.to_string())
            .execute(&mut *conn)
            .await?;
        Ok(Sealed {
            bytes,
            dk_version: dkv,
        })
    }

    /// Open a sealed value of a case that is not a real identity (for example an
    /// action plan). The caller must have audited the read in the same transaction.
    pub async fn open(
        &self,
        conn: &mut AnyConnection,
        case: &CaseId,
        field: &str,
        sealed: &Sealed,
    ) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        if field.starts_with(IDENTITY_PREFIX) {
            return Err(VaultError::IdentityNeedsAuditedRead);
        }
        self.open_any(conn, case, field, sealed).await
    }

    async fn open_any(
        &self,
        conn: &mut AnyConnection,
        case: &CaseId,
        field: &str,
        sealed: &Sealed,
    ) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        let (dk, _, _) = self.data_key(conn, case).await?;
        Ok(seal::open(
            &dk,
            case,
            field,
            sealed.dk_version,
            &sealed.bytes,
        )?)
    }

    /// The key-check value: proves at startup that the root key is the one this
    /// database was written with. The first call on a new database records it.
    pub async fn check_key(&self) -> Result<(), VaultError> {
        let want = self.keys.key_check();
        let row = sqlx::query("SELECT key_check FROM vault_meta WHERE id = 1")
            .fetch_optional(self.db.pool())
            .await?;
        let have: String = match row {
            Some(r) => r.try_get("key_check")?,
            None => {
                sqlx::query(
                    "INSERT INTO vault_meta (id, key_check, created_at) VALUES (1, $1, $2) \
                     ON CONFLICT (id) DO NOTHING",
                )
                .bind(&want)
                .bind(audit::fmt_time(self.now()))
                .execute(self.db.pool())
                .await?;
                sqlx::query("SELECT key_check FROM vault_meta WHERE id = 1")
                    .fetch_one(self.db.pool())
                    .await?
                    .try_get("key_check")?
            }
        };
        if have == want {
            Ok(())
        } else {
            Err(VaultError::WrongKey)
        }
    }

    /// Seal and store a subject's real identity with its blind indexes.
    /// `subject` names whose identity it is within the case (for example "pupil").
    pub async fn store_identity(
        &self,
        conn: &mut AnyConnection,
        case: &CaseId,
        subject: &str,
        identity: &RealIdentity,
    ) -> Result<(), VaultError> {
        let field = identity_field(subject);
        let plain = identity.encode();
        let sealed = self.seal(conn, case, &field, &plain).await?;
        let version: Option<i64> = sqlx::query(
            "SELECT MAX(version) AS v FROM sealed_records WHERE case_id = $1 AND field = $2",
        )
        .bind(case.to_string())
        .bind(&field)
        .fetch_one(&mut *conn)
        .await?
        .try_get("v")?;
        sqlx::query(
            "INSERT INTO sealed_records (case_id, field, version, dk_version, sealed, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(case.to_string())
        .bind(&field)
        .bind(version.unwrap_or(0) + 1)
        .bind(sealed.dk_version as i64)
        .bind(sealed.bytes)
        .bind(audit::fmt_time(self.now()))
        .execute(&mut *conn)
        .await?;
        self.write_indexes(conn, case, subject, identity).await
    }

    /// Corrects a subject's real identity (a new name, a new personal number), in the
    /// caller's transaction: every earlier version of the subject's sealed record is
    /// deleted, the new identity is sealed anew, and the subject's blind indexes and
    /// name-part tags are replaced by the new identity's, so the old values leave no
    /// index behind under `subject`.
    ///
    /// `keep_old`: the identity being replaced, stored as a subject of its own (sealed,
    /// indexed), so that the leak scan and the egress guard go on looking for it (a
    /// downstream system may still hold the old name) until [`Vault::forget_subject`]
    /// closes it. The caller read it through the audited [`Vault::read_identity`].
    pub async fn correct_identity(
        &self,
        conn: &mut AnyConnection,
        case: &CaseId,
        subject: &str,
        identity: &RealIdentity,
        keep_old: Option<(&str, &RealIdentity)>,
    ) -> Result<(), VaultError> {
        if let Some((old_subject, old)) = keep_old {
            self.store_identity(conn, case, old_subject, old).await?;
        }
        sqlx::query("DELETE FROM sealed_records WHERE case_id = $1 AND field = $2")
            .bind(case.to_string())
            .bind(identity_field(subject))
            .execute(&mut *conn)
            .await?;
        self.store_identity(conn, case, subject, identity).await
    }

    /// Forgets one subject of a case: its sealed records and its blind indexes, in the
    /// caller's transaction. Returns whether there was anything to forget. Call
    /// [`Db::checkpoint`] after commit.
    pub async fn forget_subject(
        &self,
        conn: &mut AnyConnection,
        case: &CaseId,
        subject: &str,
    ) -> Result<bool, VaultError> {
        let sealed = sqlx::query("DELETE FROM sealed_records WHERE case_id = $1 AND field = $2")
            .bind(case.to_string())
            .bind(identity_field(subject))
            .execute(&mut *conn)
            .await?
            .rows_affected();
        let indexes = sqlx::query("DELETE FROM blind_indexes WHERE case_id = $1 AND subject = $2")
            .bind(case.to_string())
            .bind(subject)
            .execute(&mut *conn)
            .await?
            .rows_affected();
        Ok(sealed + indexes > 0)
    }

    /// The subjects of a case whose real identity is stored, with when each was first
    /// stored (`created_at` of its first version), in subject order. No identity.
    pub async fn identity_subjects(
        &self,
        conn: &mut AnyConnection,
        case: &CaseId,
    ) -> Result<Vec<(String, String)>, VaultError> {
        let rows = sqlx::query(
            "SELECT field, MIN(created_at) AS since FROM sealed_records \
             WHERE case_id = $1 AND field LIKE 'identity:%' GROUP BY field ORDER BY field",
        )
        .bind(case.to_string())
        .fetch_all(&mut *conn)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let field: String = r.try_get("field")?;
            if let Some(subject) = field.strip_prefix(IDENTITY_PREFIX) {
                out.push((subject.to_owned(), r.try_get("since")?));
            }
        }
        Ok(out)
    }

    /// Replaces a subject's blind indexes and name-part tags with those of `identity`.
    async fn write_indexes(
        &self,
        conn: &mut AnyConnection,
        case: &CaseId,
        subject: &str,
        identity: &RealIdentity,
    ) -> Result<(), VaultError> {
        sqlx::query("DELETE FROM blind_indexes WHERE case_id = $1 AND subject = $2")
            .bind(case.to_string())
            .bind(subject)
            .execute(&mut *conn)
            .await?;
        let owner = format!("{case}/{subject}");
        for (kind, idx) in identity.blind_indexes(self.keys.blind(), &owner) {
            sqlx::query(
                "INSERT INTO blind_indexes (kind, idx, case_id, subject) VALUES ($1, $2, $3, $4)",
            )
            .bind(kind.as_str())
            .bind(idx.to_hex())
            .bind(case.to_string())
            .bind(subject)
            .execute(&mut *conn)
            .await?;
        }
        // One row per spelling of the names (always as many, each sealed with its own
        // nonce, so equal rows look unequal).
        let seal = self.keys.name_part_seal()?;
        for tags in crate::name_parts::spelling_tags(
            self.keys.name_parts(),
            identity.first_name.expose(),
            identity.last_name.expose(),
        ) {
            let row = crate::name_parts::seal_row(&seal, case, subject, &tags)?;
            sqlx::query(
                "INSERT INTO blind_indexes (kind, idx, case_id, subject) VALUES ($1, $2, $3, $4)",
            )
            .bind(crate::name_parts::KIND)
            .bind(row)
            .bind(case.to_string())
            .bind(subject)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }

    /// Cases whose stored identities have this blind index.
    pub async fn cases_with_index(
        &self,
        conn: &mut AnyConnection,
        kind: IndexKind,
        idx: &BlindIndex,
    ) -> Result<Vec<CaseId>, VaultError> {
        let rows =
            sqlx::query("SELECT DISTINCT case_id FROM blind_indexes WHERE kind = $1 AND idx = $2")
                .bind(kind.as_str())
                .bind(idx.to_hex())
                .fetch_all(&mut *conn)
                .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let s: String = r.try_get("case_id")?;
            if let Ok(c) = s.parse() {
                out.push(c);
            }
        }
        Ok(out)
    }

    /// The cases that have a real identity in the vault (at least one blind index).
    pub async fn indexed_cases(&self) -> Result<Vec<CaseId>, VaultError> {
        Ok(
            sqlx::query_scalar::<_, String>("SELECT DISTINCT case_id FROM blind_indexes")
                .fetch_all(self.db.pool())
                .await?
                .iter()
                .filter_map(|c| c.parse().ok())
                .collect(),
        )
    }

    /// Every blind index of every real identity in the vault: what the egress guard and
    /// the leak scan compare against. Holds no real identity.
    ///
    /// It carries the name-part pre-filter ([`crate::name_parts`]) only when every
    /// identity's tags are there and open; otherwise (identities stored by a release
    /// without name-part tags and not yet re-indexed, or a row that fails to open) the matcher
    /// computes every blind index, which is slower and finds the same.
    pub async fn blind_index_set(&self) -> Result<BlindIndexSet, VaultError> {
        let rows = sqlx::query("SELECT kind, idx, case_id, subject FROM blind_indexes")
            .fetch_all(self.db.pool())
            .await?;
        let mut set = BlindIndexSet::default();
        let seal = self.keys.name_part_seal()?;
        let mut filter = crate::name_parts::NamePartFilter::new(self.keys.name_parts().clone());
        let mut identities: HashSet<(CaseId, String)> = HashSet::new();
        let mut tagged: HashSet<(CaseId, String)> = HashSet::new();
        // Full-name and name + birth rows per identity: fewer than the slots means an
        // identity stored before the spellings (or the initial + family name) were
        // indexed.
        let mut full_names: HashMap<(CaseId, String), (usize, usize)> = HashMap::new();
        for r in rows {
            let kind: String = r.try_get("kind")?;
            let idx: String = r.try_get("idx")?;
            let case: String = r.try_get("case_id")?;
            let subject: String = r.try_get("subject")?;
            let Ok(c) = case.parse::<CaseId>() else {
                continue;
            };
            if kind == crate::name_parts::KIND {
                if let Some(tags) = crate::name_parts::open_row(&seal, &c, &subject, &idx) {
                    filter.add(&tags);
                    tagged.insert((c, subject));
                }
            } else if let (Some(k), Some(i)) = (IndexKind::parse(&kind), BlindIndex::from_hex(&idx))
            {
                set.map.entry((k, i)).or_default().insert(c);
                let counts = full_names.entry((c, subject.clone())).or_default();
                match k {
                    IndexKind::FullName => counts.0 += 1,
                    IndexKind::NameBirth => counts.1 += 1,
                    _ => {}
                }
                identities.insert((c, subject));
            }
        }
        let unspelled = full_names
            .values()
            .filter(|&&(full, birth)| {
                full < crate::identity::NAME_SPELLING_SLOTS
                    || birth < crate::identity::NAME_SPELLING_SLOTS + crate::identity::INITIAL_SLOTS
            })
            .count();
        if unspelled > 0 {
            tracing::warn!(
                unspelled,
                "identities indexed without every spelling of their names: the egress \
                 guard and the leak scan do not recognise their transliterated spellings \
                 or their initial + family name; run `fiktiv keys reindex`"
            );
        }
        let untagged = identities.difference(&tagged).count();
        if untagged == 0 {
            if !filter.prefixes_complete() {
                tracing::info!(
                    "identities without name-prefix tags: the egress guard and the leak scan \
                     check more candidates than they need to (same findings); run \
                     `fiktiv keys reindex`"
                );
            }
            set.name_parts = Some(Arc::new(filter));
        } else {
            tracing::warn!(
                untagged,
                "identities without name-part tags: the egress guard and the leak scan run \
                 without their pre-filter (slower, same findings); run `fiktiv keys reindex`"
            );
        }
        Ok(set)
    }

    /// Rewrites the blind indexes and name-part tags of every stored identity (after an
    /// upgrade from a version that wrote no name-part tags). Each identity is read
    /// through the audited read (`keys.reindex`, purpose `reindex`), so the trail shows
    /// every case it touched; each case's rows are replaced in one transaction.
    /// Returns how many identities were re-indexed.
    pub async fn reindex(&self, actor: &str) -> Result<u64, VaultError> {
        let rows = sqlx::query(
            "SELECT DISTINCT case_id, field FROM sealed_records WHERE field LIKE 'identity:%' \
             ORDER BY case_id, field",
        )
        .fetch_all(self.db.pool())
        .await?;
        let mut done = 0u64;
        for r in rows {
            let case: String = r.try_get("case_id")?;
            let field: String = r.try_get("field")?;
            let (Ok(case), Some(subject)) =
                (case.parse::<CaseId>(), field.strip_prefix(IDENTITY_PREFIX))
            else {
                continue;
            };
            let ctx = ReadContext {
                actor,
                action: "keys.reindex",
                purpose: "reindex",
            };
            let identity = match self.read_identity(ctx, &case, subject).await {
                Ok(i) => i,
                // Shredded between the listing and the read: nothing left to index.
                Err(VaultError::NoKey) => continue,
                Err(e) => return Err(e),
            };
            let mut tx = self.db.begin_write().await?;
            self.write_indexes(&mut tx, &case, subject, &identity)
                .await?;
            tx.commit().await?;
            done += 1;
        }
        Ok(done)
    }

    /// Read a real identity. The audit event is committed first, in its own
    /// transaction; if it cannot be written, nothing is decrypted.
    pub async fn read_identity(
        &self,
        ctx: ReadContext<'_>,
        case: &CaseId,
        subject: &str,
    ) -> Result<RealIdentity, VaultError> {
        let mut tx = self.db.begin_write().await?;
        self.audit(
            &mut tx,
            &NewEvent {
                actor: ctx.actor,
                action: ctx.action,
                case_id: Some(*case),
                purpose: Some(ctx.purpose),
                outcome: Outcome::Ok,
            },
        )
        .await?;
        tx.commit()
            .await
            .map_err(|e| VaultError::Audit(AuditError::Write(e)))?;

        let mut conn = self.db.pool().acquire().await?;
        let field = identity_field(subject);
        let row = sqlx::query(
            "SELECT dk_version, sealed FROM sealed_records WHERE case_id = $1 AND field = $2 \
             ORDER BY version DESC LIMIT 1",
        )
        .bind(case.to_string())
        .bind(&field)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(VaultError::NotFound)?;
        let sealed = Sealed {
            dk_version: row.try_get::<i64, _>("dk_version")? as u32,
            bytes: row.try_get("sealed")?,
        };
        let opened = match self.open_any(&mut conn, case, &field, &sealed).await {
            Ok(plain) => RealIdentity::decode(&plain).map_err(VaultError::from),
            Err(e) => Err(e),
        };
        if opened.is_err() {
            // The access was recorded as granted before decryption; record that it
            // failed too (best effort: the first event already stands).
            if let Ok(mut tx) = self.db.begin_write().await {
                let failed = self
                    .audit(
                        &mut tx,
                        &NewEvent {
                            actor: ctx.actor,
                            action: ctx.action,
                            case_id: Some(*case),
                            purpose: None,
                            outcome: Outcome::Failed,
                        },
                    )
                    .await;
                if failed.is_ok() {
                    let _ = tx.commit().await;
                }
            }
        }
        opened
    }

    /// Crypto-shred a case: destroy its data key, its sealed records and its blind
    /// indexes, in the caller's transaction. Call [`Db::checkpoint`] after commit.
    pub async fn shred(&self, conn: &mut AnyConnection, case: &CaseId) -> Result<(), VaultError> {
        let id = case.to_string();
        for sql in [
            "DELETE FROM case_keys WHERE case_id = $1",
            "DELETE FROM sealed_records WHERE case_id = $1",
            "DELETE FROM blind_indexes WHERE case_id = $1",
        ] {
            sqlx::query(sql).bind(&id).execute(&mut *conn).await?;
        }
        sqlx::query("INSERT INTO shredded_cases (case_id, shredded_at) VALUES ($1, $2)")
            .bind(&id)
            .bind(audit::fmt_time(self.now()))
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    /// Usage per key-encryption key version.
    pub async fn key_versions(&self) -> Result<Vec<KeyVersionInfo>, VaultError> {
        let rows = sqlx::query(
            "SELECT k.version AS version, k.state AS state, k.encryptions AS encryptions, \
             (SELECT COUNT(*) FROM case_keys c WHERE c.kek_version = k.version) AS data_keys \
             FROM key_versions k ORDER BY k.version",
        )
        .fetch_all(self.db.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(KeyVersionInfo {
                    version: r.try_get("version")?,
                    state: r.try_get("state")?,
                    encryptions: r.try_get("encryptions")?,
                    data_keys: r.try_get("data_keys")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(VaultError::from)
    }

    /// Rotate: make a new key-encryption key version and rewrap every data key under
    /// it, in batches (each batch one transaction, so the service keeps running and a
    /// crash half-way is finished by the next run). Versions no data key uses any more
    /// are retired.
    pub async fn rotate(&self, actor: &str) -> Result<RotationReport, VaultError> {
        let mut tx = self.db.begin_write().await?;
        let max: Option<i64> = sqlx::query("SELECT MAX(version) AS m FROM key_versions")
            .fetch_one(&mut *tx)
            .await?
            .try_get("m")?;
        let new_version = max.unwrap_or(0) + 1;
        sqlx::query("UPDATE key_versions SET state = 'retiring' WHERE state = 'active'")
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO key_versions (version, state, created_at, encryptions) VALUES ($1, 'active', $2, 0)",
        )
        .bind(new_version)
        .bind(audit::fmt_time(self.now()))
        .execute(&mut *tx)
        .await?;
        self.audit(
            &mut tx,
            &NewEvent {
                actor,
                action: "keys.rotate",
                case_id: None,
                purpose: None,
                outcome: Outcome::Ok,
            },
        )
        .await?;
        tx.commit().await?;

        let new_kek = self.keys.kek(new_version as u32)?;
        let mut rewrapped = 0u64;
        loop {
            let mut tx = self.db.begin_write().await?;
            let rows = sqlx::query(
                "SELECT case_id, kek_version, wrapped FROM case_keys WHERE kek_version <> $1 LIMIT 500",
            )
            .bind(new_version)
            .fetch_all(&mut *tx)
            .await?;
            if rows.is_empty() {
                break;
            }
            for r in &rows {
                let id: String = r.try_get("case_id")?;
                let case: CaseId = id.parse().map_err(|_| VaultError::NotFound)?;
                let old: i64 = r.try_get("kek_version")?;
                let wrapped: Vec<u8> = r.try_get("wrapped")?;
                let dk =
                    seal::unwrap_key(&self.keys.kek(old as u32)?, old as u32, &case, &wrapped)?;
                let rewrapped_key = seal::wrap(&new_kek, new_version as u32, &case, &dk)?;
                sqlx::query(
                    "UPDATE case_keys SET kek_version = $1, wrapped = $2 WHERE case_id = $3",
                )
                .bind(new_version)
                .bind(rewrapped_key)
                .bind(&id)
                .execute(&mut *tx)
                .await?;
                Self::count_kek_use(&mut tx, new_version).await?;
                rewrapped += 1;
            }
            tx.commit().await?;
        }

        let mut tx = self.db.begin_write().await?;
        let rows = sqlx::query(
            "SELECT version FROM key_versions k WHERE state <> 'retired' AND version <> $1 \
             AND NOT EXISTS (SELECT 1 FROM case_keys c WHERE c.kek_version = k.version)",
        )
        .bind(new_version)
        .fetch_all(&mut *tx)
        .await?;
        let mut retired = Vec::new();
        for r in rows {
            let v: i64 = r.try_get("version")?;
            sqlx::query(
                "UPDATE key_versions SET state = 'retired', retired_at = $1 WHERE version = $2",
            )
            .bind(audit::fmt_time(self.now()))
            .bind(v)
            .execute(&mut *tx)
            .await?;
            retired.push(v);
        }
        tx.commit().await?;
        Ok(RotationReport {
            new_version,
            rewrapped,
            retired,
        })
    }
}

/// All blind indexes of real identities, with the cases they belong to.
#[derive(Debug, Clone, Default)]
pub struct BlindIndexSet {
    map: HashMap<(IndexKind, BlindIndex), HashSet<CaseId>>,
    name_parts: Option<Arc<crate::name_parts::NamePartFilter>>,
}

impl BlindIndexSet {
    /// The name-part pre-filter, when every identity's tags are known.
    pub fn name_parts(&self) -> Option<&crate::name_parts::NamePartFilter> {
        self.name_parts.as_deref()
    }

    /// Cases whose real identity has this index (empty when none).
    pub fn cases(&self, kind: IndexKind, idx: &BlindIndex) -> Vec<CaseId> {
        self.map
            .get(&(kind, *idx))
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default()
    }

    pub fn contains(&self, kind: IndexKind, idx: &BlindIndex) -> bool {
        self.map.contains_key(&(kind, *idx))
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}
