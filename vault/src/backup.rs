//! Backups: a consistent, encrypted, integrity-checked archive of the whole database.
//!
//! The archive holds every row of every table (sealed values stay sealed; the plaintext
//! of a real identity is never in it), encrypted again with a per-archive key derived
//! from the backup key. Keys are never in the archive: restoring needs the same root
//! key. A case shredded before the backup has no data key in the archive, so it cannot
//! be recovered from it.
//!
//! Format: `"FIKTIVBK" || version(1) || salt(32) || header_len(4) || header(JSON)`,
//! then chunks `len(4) || AES-256-GCM(chunk)`, nonce = chunk counter, associated data =
//! SHA-256(prefix) || counter || last-flag. Reordered, truncated, extended or edited
//! archives fail before anything is written to the database.

use std::collections::{BTreeMap, BTreeSet};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use rand::RngCore;
use ring::hmac;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::{Row, ValueRef};
use zeroize::Zeroizing;

use crate::db::{Backend, Db};
use crate::keys::BackupKey;

const MAGIC: &[u8; 8] = b"FIKTIVBK";
const VERSION: u8 = 1;
const CHUNK: usize = 1 << 20;
const SKIP_TABLES: &[&str] = &["_sqlx_migrations"];

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("database error")]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    DbOpen(#[from] crate::db::DbError),
    #[error("the archive is not a Fiktiv backup or is of an unknown version")]
    NotAnArchive,
    #[error(
        "the archive failed its integrity check (tampered, truncated or made with another key)"
    )]
    Integrity,
    #[error(
        "the archive's schema (migration {archive}) does not match this database (migration {db})"
    )]
    Schema { archive: i64, db: i64 },
    #[error(
        "the target database already holds data ({0} cases); restore only into an empty database"
    )]
    NotEmpty(i64),
    #[error("encryption failed")]
    Encrypt,
    #[error("archive content is malformed")]
    Malformed,
}

/// Unencrypted archive header (authenticated, not secret).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Header {
    pub format: u8,
    pub created_at: String,
    pub source_backend: String,
    pub schema_version: i64,
    pub tables: Vec<String>,
    /// The key custody record (shares, HSM) at the time of the backup: on a new machine
    /// the holders' shares (or the HSM) open the root key from it, and then the archive.
    /// Not secret (the root key in it is wrapped). None with the file provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custody: Option<crate::custody::CustodyRecord>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "t", content = "v")]
enum Val {
    N,
    I(i64),
    F(f64),
    B(bool),
    S(String),
    X(String), // base64 bytes
}

#[derive(Debug, Serialize, Deserialize)]
struct TableDump {
    name: String,
    columns: Vec<String>,
    rows: Vec<Vec<Val>>,
}

/// What a backup or restore covered.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub tables: usize,
    pub rows: u64,
    pub bytes: usize,
}

fn archive_key(key: &BackupKey, salt: &[u8]) -> Zeroizing<[u8; 32]> {
    let k = hmac::Key::new(hmac::HMAC_SHA256, &key.0 .0);
    let mut out = Zeroizing::new([0u8; 32]);
    out.copy_from_slice(hmac::sign(&k, salt).as_ref());
    out
}

fn chunk_aad(prefix_hash: &[u8], counter: u64, last: bool) -> Vec<u8> {
    let mut aad = Vec::with_capacity(48);
    aad.extend_from_slice(prefix_hash);
    aad.extend_from_slice(&counter.to_be_bytes());
    aad.push(u8::from(last));
    aad
}

fn nonce_for(counter: u64) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&counter.to_be_bytes());
    n
}

async fn schema_version(db: &Db) -> Result<i64, BackupError> {
    let v: Option<i64> = sqlx::query("SELECT MAX(version) AS v FROM _sqlx_migrations")
        .fetch_one(db.pool())
        .await?
        .try_get("v")?;
    Ok(v.unwrap_or(0))
}

async fn table_names(db: &Db) -> Result<Vec<String>, BackupError> {
    let sql = match db.backend() {
        Backend::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
        }
        Backend::Postgres => {
            "SELECT CAST(table_name AS TEXT) AS name FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name"
        }
    };
    let rows = sqlx::query(sql).fetch_all(db.pool()).await?;
    let mut names = Vec::new();
    for r in rows {
        let n: String = r.try_get("name")?;
        if !SKIP_TABLES.contains(&n.as_str()) {
            names.push(n);
        }
    }
    Ok(names)
}

/// Foreign-key edges: table -> tables it references.
async fn references(
    db: &Db,
    tables: &[String],
) -> Result<BTreeMap<String, BTreeSet<String>>, BackupError> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for t in tables {
        out.entry(t.clone()).or_default();
    }
    match db.backend() {
        Backend::Sqlite => {
            for t in tables {
                let rows = sqlx::query("SELECT \"table\" AS r FROM pragma_foreign_key_list($1)")
                    .bind(t)
                    .fetch_all(db.pool())
                    .await?;
                for r in rows {
                    let to: String = r.try_get("r")?;
                    if &to != t {
                        out.entry(t.clone()).or_default().insert(to);
                    }
                }
            }
        }
        Backend::Postgres => {
            let rows = sqlx::query(
                "SELECT CAST(tc.table_name AS TEXT) AS f, CAST(ccu.table_name AS TEXT) AS r FROM information_schema.table_constraints tc \
                 JOIN information_schema.constraint_column_usage ccu ON tc.constraint_name = ccu.constraint_name \
                 AND tc.table_schema = ccu.table_schema \
                 WHERE tc.constraint_type = 'FOREIGN KEY' AND tc.table_schema = current_schema()",
            )
            .fetch_all(db.pool())
            .await?;
            for r in rows {
                let f: String = r.try_get("f")?;
                let to: String = r.try_get("r")?;
                if f != to {
                    out.entry(f).or_default().insert(to);
                }
            }
        }
    }
    Ok(out)
}

/// Tables ordered so every table comes after the tables it references.
fn topo_order(refs: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let mut done: BTreeSet<String> = BTreeSet::new();
    let mut order = Vec::new();
    while order.len() < refs.len() {
        let before = order.len();
        for (t, deps) in refs {
            if !done.contains(t)
                && deps
                    .iter()
                    .all(|d| done.contains(d) || !refs.contains_key(d))
            {
                done.insert(t.clone());
                order.push(t.clone());
            }
        }
        if order.len() == before {
            // A cycle: append the rest in name order (restore would then fail loudly).
            for t in refs.keys() {
                if !done.contains(t) {
                    order.push(t.clone());
                }
            }
            break;
        }
    }
    order
}

fn quote_ident(s: &str) -> Result<String, BackupError> {
    if s.is_empty() || !s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(BackupError::Malformed);
    }
    Ok(format!("\"{s}\""))
}

fn decode_value(row: &sqlx::any::AnyRow, i: usize) -> Result<Val, BackupError> {
    use sqlx::any::AnyTypeInfoKind as K;
    let raw = row.try_get_raw(i)?;
    if raw.is_null() {
        return Ok(Val::N);
    }
    let kind = raw.type_info().kind();
    Ok(match kind {
        K::Bool => Val::B(row.try_get(i)?),
        K::SmallInt | K::Integer | K::BigInt => Val::I(row.try_get(i)?),
        K::Real | K::Double => Val::F(row.try_get(i)?),
        K::Text => Val::S(row.try_get(i)?),
        K::Blob => {
            Val::X(base64::engine::general_purpose::STANDARD.encode(row.try_get::<Vec<u8>, _>(i)?))
        }
        K::Null => Val::N,
    })
}

/// Write a backup archive of the whole database. A read transaction gives a consistent
/// snapshot on both backends.
pub async fn create(
    db: &Db,
    key: &BackupKey,
    created_at: &str,
) -> Result<(Vec<u8>, Summary), BackupError> {
    let tables = table_names(db).await?;
    let mut tx = match db.backend() {
        // REPEATABLE READ: every table read sees the same snapshot.
        Backend::Postgres => {
            db.pool()
                .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                .await?
        }
        Backend::Sqlite => db.pool().begin().await?,
    };
    let mut dumps = Vec::new();
    let mut rows_total = 0u64;
    for t in &tables {
        let rows = sqlx::query(&format!("SELECT * FROM {}", quote_ident(t)?))
            .fetch_all(&mut *tx)
            .await?;
        let columns: Vec<String> = match rows.first() {
            Some(r) => {
                use sqlx::Column;
                r.columns().iter().map(|c| c.name().to_string()).collect()
            }
            None => Vec::new(),
        };
        let mut out_rows = Vec::with_capacity(rows.len());
        for r in &rows {
            let mut vals = Vec::with_capacity(columns.len());
            for i in 0..columns.len() {
                vals.push(decode_value(r, i)?);
            }
            out_rows.push(vals);
        }
        rows_total += out_rows.len() as u64;
        dumps.push(TableDump {
            name: t.clone(),
            columns,
            rows: out_rows,
        });
    }
    tx.commit().await?;

    let header = Header {
        format: VERSION,
        created_at: created_at.to_string(),
        source_backend: format!("{:?}", db.backend()).to_lowercase(),
        schema_version: schema_version(db).await?,
        tables: tables.clone(),
        custody: crate::custody::load(db)
            .await
            .map_err(|_| BackupError::Malformed)?,
    };
    let plain = Zeroizing::new(serde_json::to_vec(&dumps).map_err(|_| BackupError::Malformed)?);
    let header_json = serde_json::to_vec(&header).map_err(|_| BackupError::Malformed)?;

    let mut salt = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    let mut out = Vec::with_capacity(plain.len() + 1024);
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.extend_from_slice(&salt);
    out.extend_from_slice(&(header_json.len() as u32).to_be_bytes());
    out.extend_from_slice(&header_json);
    let prefix_hash = Sha256::digest(&out);
    let k = archive_key(key, &salt);
    let cipher = Aes256Gcm::new_from_slice(&k[..]).map_err(|_| BackupError::Encrypt)?;
    let chunks: Vec<&[u8]> = if plain.is_empty() {
        vec![&[][..]]
    } else {
        plain.chunks(CHUNK).collect()
    };
    for (i, chunk) in chunks.iter().enumerate() {
        let last = i + 1 == chunks.len();
        let ct = cipher
            .encrypt(
                Nonce::from_slice(&nonce_for(i as u64)),
                Payload {
                    msg: chunk,
                    aad: &chunk_aad(&prefix_hash, i as u64, last),
                },
            )
            .map_err(|_| BackupError::Encrypt)?;
        out.extend_from_slice(&(ct.len() as u32).to_be_bytes());
        out.extend_from_slice(&ct);
    }
    let summary = Summary {
        tables: tables.len(),
        rows: rows_total,
        bytes: out.len(),
    };
    Ok((out, summary))
}

/// Check an archive and decrypt it, without touching any database.
fn open_archive(
    archive: &[u8],
    key: &BackupKey,
) -> Result<(Header, Zeroizing<Vec<u8>>), BackupError> {
    let (salt, header_json, mut rest) = split_prefix(archive)?;
    let prefix_len = archive.len() - rest.len();
    let prefix_hash = Sha256::digest(&archive[..prefix_len]);
    let k = archive_key(key, salt);
    let cipher = Aes256Gcm::new_from_slice(&k[..]).map_err(|_| BackupError::Encrypt)?;
    let mut plain = Zeroizing::new(Vec::with_capacity(archive.len()));
    let mut counter = 0u64;
    loop {
        let (len, r) = rest.split_at_checked(4).ok_or(BackupError::Integrity)?;
        let len = u32::from_be_bytes(len.try_into().map_err(|_| BackupError::Integrity)?) as usize;
        let (ct, r) = r.split_at_checked(len).ok_or(BackupError::Integrity)?;
        let last = r.is_empty();
        let pt = cipher
            .decrypt(
                Nonce::from_slice(&nonce_for(counter)),
                Payload {
                    msg: ct,
                    aad: &chunk_aad(&prefix_hash, counter, last),
                },
            )
            .map_err(|_| BackupError::Integrity)?;
        plain.extend_from_slice(&pt);
        rest = r;
        counter += 1;
        if last {
            break;
        }
    }
    // The header is authenticated through the chunks' associated data.
    let header: Header = serde_json::from_slice(header_json).map_err(|_| BackupError::Integrity)?;
    Ok((header, plain))
}

/// Restore an archive into an empty, migrated database, in one transaction. The archive
/// is checked completely before anything is written.
pub async fn restore(db: &Db, key: &BackupKey, archive: &[u8]) -> Result<Summary, BackupError> {
    let (header, plain) = open_archive(archive, key)?;
    let dumps: Vec<TableDump> =
        serde_json::from_slice(&plain).map_err(|_| BackupError::Malformed)?;
    let db_version = schema_version(db).await?;
    if header.schema_version != db_version {
        return Err(BackupError::Schema {
            archive: header.schema_version,
            db: db_version,
        });
    }
    let existing: i64 = sqlx::query("SELECT COUNT(*) AS n FROM case_keys")
        .fetch_one(db.pool())
        .await?
        .try_get("n")?;
    if existing > 0 {
        return Err(BackupError::NotEmpty(existing));
    }
    let tables = table_names(db).await?;
    let order = topo_order(&references(db, &tables).await?);
    let by_name: BTreeMap<&str, &TableDump> = dumps.iter().map(|d| (d.name.as_str(), d)).collect();
    for d in &dumps {
        if !tables.contains(&d.name) {
            return Err(BackupError::Malformed);
        }
    }
    // PostgreSQL needs a NULL parameter of the column's type.
    let mut null_types: BTreeMap<(String, String), String> = BTreeMap::new();
    if db.backend() == Backend::Postgres {
        let rows = sqlx::query(
            "SELECT CAST(table_name AS TEXT) AS t, CAST(column_name AS TEXT) AS c, CAST(data_type AS TEXT) AS d FROM information_schema.columns \
             WHERE table_schema = current_schema()",
        )
        .fetch_all(db.pool())
        .await?;
        for r in rows {
            null_types.insert((r.try_get("t")?, r.try_get("c")?), r.try_get("d")?);
        }
    }
    let mut tx = db.begin_write().await.map_err(BackupError::DbOpen)?;
    for t in order.iter().rev() {
        sqlx::query(&format!("DELETE FROM {}", quote_ident(t)?))
            .execute(&mut *tx)
            .await?;
    }
    let mut rows_total = 0u64;
    for t in &order {
        let Some(d) = by_name.get(t.as_str()) else {
            continue;
        };
        if d.rows.is_empty() {
            continue;
        }
        let cols = d
            .columns
            .iter()
            .map(|c| quote_ident(c))
            .collect::<Result<Vec<_>, _>>()?;
        let params: Vec<String> = (1..=cols.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "INSERT INTO {} ({}) VALUES ({})",
            quote_ident(t)?,
            cols.join(", "),
            params.join(", ")
        );
        for row in &d.rows {
            if row.len() != cols.len() {
                return Err(BackupError::Malformed);
            }
            let mut q = sqlx::query(&sql);
            for (v, c) in row.iter().zip(&d.columns) {
                q = match v {
                    Val::N => match null_types.get(&(t.clone(), c.clone())).map(String::as_str) {
                        Some("bigint" | "integer" | "smallint") => q.bind(None::<i64>),
                        Some("bytea") => q.bind(None::<Vec<u8>>),
                        Some("boolean") => q.bind(None::<bool>),
                        Some("double precision" | "real" | "numeric") => q.bind(None::<f64>),
                        _ => q.bind(None::<String>),
                    },
                    Val::I(i) => q.bind(*i),
                    Val::F(f) => q.bind(*f),
                    Val::B(b) => q.bind(*b),
                    Val::S(s) => q.bind(s.clone()),
                    Val::X(b64) => q.bind(
                        base64::engine::general_purpose::STANDARD
                            .decode(b64)
                            .map_err(|_| BackupError::Malformed)?,
                    ),
                };
            }
            q.execute(&mut *tx).await?;
            rows_total += 1;
        }
    }
    tx.commit().await?;
    Ok(Summary {
        tables: dumps.len(),
        rows: rows_total,
        bytes: archive.len(),
    })
}

/// The key custody record an archive names, read before its integrity can be checked
/// (its key is what the record opens). A changed record opens no key, or a key under
/// which the archive then fails its integrity check.
pub fn peek_custody(archive: &[u8]) -> Result<Option<crate::custody::CustodyRecord>, BackupError> {
    let (_, header_json, _) = split_prefix(archive)?;
    let header: Header = serde_json::from_slice(header_json).map_err(|_| BackupError::Integrity)?;
    Ok(header.custody)
}

/// An archive split at its unencrypted prefix: `(salt, header JSON, the chunks after it)`.
type Prefix<'a> = (&'a [u8], &'a [u8], &'a [u8]);

/// The unencrypted prefix of an archive.
fn split_prefix(archive: &[u8]) -> Result<Prefix<'_>, BackupError> {
    let rest = archive
        .strip_prefix(&MAGIC[..])
        .ok_or(BackupError::NotAnArchive)?;
    let (&ver, rest) = rest.split_first().ok_or(BackupError::NotAnArchive)?;
    if ver != VERSION {
        return Err(BackupError::NotAnArchive);
    }
    let (salt, rest) = rest.split_at_checked(32).ok_or(BackupError::Integrity)?;
    let (hlen, rest) = rest.split_at_checked(4).ok_or(BackupError::Integrity)?;
    let hlen = u32::from_be_bytes(hlen.try_into().map_err(|_| BackupError::Integrity)?) as usize;
    let (header_json, rest) = rest.split_at_checked(hlen).ok_or(BackupError::Integrity)?;
    Ok((salt, header_json, rest))
}

/// Read an archive's header after checking its integrity.
pub fn inspect(archive: &[u8], key: &BackupKey) -> Result<Header, BackupError> {
    open_archive(archive, key).map(|(h, _)| h)
}
