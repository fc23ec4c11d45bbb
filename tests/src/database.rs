//! Test databases: a fresh PostgreSQL database per test, or a SQLite file.
//!
//! PostgreSQL comes from `FIKTIV_TEST_DATABASE_URL`, a URL whose role may
//! `CREATE DATABASE` (`scripts/test` defaults it to
//! `postgres://postgres@127.0.0.1:5432/postgres`). Each [`TestDatabase::postgres`]
//! creates `fiktiv_test_<random>` there and drops it again on drop. Creating and
//! dropping go through `psql`, so they block briefly but work inside and outside an
//! async runtime alike.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{anyhow, bail, Context as _};
use tempfile::TempDir;

use crate::process::find_executable;
use crate::{peer_dir, INSTALL_HINT};

/// The environment variable with the PostgreSQL server's URL.
pub const DATABASE_URL_ENV: &str = "FIKTIV_TEST_DATABASE_URL";

const DEFAULT_URL_HINT: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A database that exists for one test. Dropped (PostgreSQL) or deleted (SQLite) on drop.
#[derive(Debug)]
pub struct TestDatabase {
    url: String,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Postgres {
        /// The URL from the environment: where CREATE and DROP are run.
        admin_url: String,
        name: String,
    },
    Sqlite {
        path: PathBuf,
        // Kept for its Drop, which removes the file.
        _dir: TempDir,
    },
}

impl TestDatabase {
    /// Creates a uniquely named PostgreSQL database on the server in
    /// `FIKTIV_TEST_DATABASE_URL`. An error, never a skip, if the variable is unset or
    /// the server cannot be reached.
    pub fn postgres() -> anyhow::Result<Self> {
        Self::postgres_at(std::env::var(DATABASE_URL_ENV).ok())
    }

    /// [`TestDatabase::postgres`] with the value of `FIKTIV_TEST_DATABASE_URL` given
    /// (`None`: unset), so the missing-variable error can be tested without touching
    /// the process environment.
    pub fn postgres_at(admin_url: Option<String>) -> anyhow::Result<Self> {
        let admin_url = admin_url.ok_or_else(|| {
            anyhow!(
                "{DATABASE_URL_ENV} is not set. Set it to a PostgreSQL URL whose role may \
                 CREATE DATABASE, e.g. `export {DATABASE_URL_ENV}={DEFAULT_URL_HINT}` \
                 (scripts/test sets that default); if no server runs, {INSTALL_HINT}"
            )
        })?;
        let name = format!("fiktiv_test_{}", uuid::Uuid::new_v4().simple());
        psql(&admin_url, &format!("CREATE DATABASE {name}")).with_context(|| {
            format!(
                "creating a test database with the server in {DATABASE_URL_ENV}={}. Is \
                 PostgreSQL running and does the role have CREATEDB? Check with \
                 `pg_isready -h 127.0.0.1` and `psql \"$FIKTIV_TEST_DATABASE_URL\" -c 'select 1'`; \
                 to start one, {INSTALL_HINT}",
                redact_password(&admin_url)
            )
        })?;
        let url = with_database(&admin_url, &name)?;
        Ok(Self {
            url,
            kind: Kind::Postgres { admin_url, name },
        })
    }

    /// A SQLite database file in a temporary directory:
    /// `sqlite:///tmp/fiktiv-sqlite-XXXX/fiktiv.db?mode=rwc` (created on first connect).
    pub fn sqlite() -> anyhow::Result<Self> {
        let dir = peer_dir("fiktiv-sqlite-")?;
        let path = dir.path().join("fiktiv.db");
        let url = format!("sqlite://{}?mode=rwc", path.display());
        Ok(Self {
            url,
            kind: Kind::Sqlite { path, _dir: dir },
        })
    }

    /// The URL to connect to (with sqlx, the service's config, ...).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Whether this is a PostgreSQL database.
    pub fn is_postgres(&self) -> bool {
        matches!(self.kind, Kind::Postgres { .. })
    }

    /// The PostgreSQL database's name, `None` for SQLite.
    pub fn name(&self) -> Option<&str> {
        match &self.kind {
            Kind::Postgres { name, .. } => Some(name),
            Kind::Sqlite { .. } => None,
        }
    }

    /// The SQLite file's path, `None` for PostgreSQL.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match &self.kind {
            Kind::Sqlite { path, .. } => Some(path),
            Kind::Postgres { .. } => None,
        }
    }

    /// `pg_dump` of this database (plain SQL, data included), for raw-bytes scans.
    pub fn pg_dump(&self) -> anyhow::Result<Vec<u8>> {
        if !self.is_postgres() {
            bail!("pg_dump of a SQLite database; use raw_bytes()");
        }
        let pg_dump = find_executable("pg_dump", &[])
            .ok_or_else(|| anyhow!("`pg_dump` not found (postgresql-client); {INSTALL_HINT}"))?;
        let output = Command::new(pg_dump)
            .args(["--no-owner", "--no-privileges", "--dbname", &self.url])
            .env("PGCONNECT_TIMEOUT", "10")
            .stdin(Stdio::null())
            .output()
            .context("running pg_dump")?;
        if !output.status.success() {
            bail!(
                "pg_dump failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(output.stdout)
    }

    /// Every byte the database holds: `pg_dump` for PostgreSQL; for SQLite the database
    /// file followed by its `-wal` and `-journal` files where they exist.
    pub fn raw_bytes(&self) -> anyhow::Result<Vec<u8>> {
        match &self.kind {
            Kind::Postgres { .. } => self.pg_dump(),
            Kind::Sqlite { path, .. } => {
                let mut bytes =
                    std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
                for suffix in ["-wal", "-journal"] {
                    let mut side = path.as_os_str().to_owned();
                    side.push(suffix);
                    if let Ok(more) = std::fs::read(PathBuf::from(side)) {
                        bytes.extend_from_slice(&more);
                    }
                }
                Ok(bytes)
            }
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Kind::Postgres { admin_url, name } = &self.kind {
            // WITH (FORCE) ends connections a test's pool may still hold (PostgreSQL 13+).
            let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
            if let Err(e) = psql(admin_url, &sql) {
                eprintln!("fiktiv-tests: could not drop test database {name}: {e:#}");
            }
        }
    }
}

/// Runs one SQL statement with `psql`, failing on any error.
fn psql(url: &str, sql: &str) -> anyhow::Result<()> {
    let psql = find_executable("psql", &[])
        .ok_or_else(|| anyhow!("`psql` not found (postgresql-client); {INSTALL_HINT}"))?;
    let output = Command::new(psql)
        .args([
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "--dbname",
            url,
            "-c",
            sql,
        ])
        .env("PGCONNECT_TIMEOUT", "10")
        .stdin(Stdio::null())
        .output()
        .context("running psql")?;
    if !output.status.success() {
        bail!(
            "psql -c {sql:?} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// `url` with its database (the path) replaced by `name`, query string kept.
fn with_database(url: &str, name: &str) -> anyhow::Result<String> {
    let scheme_end = url
        .find("://")
        .ok_or_else(|| anyhow!("{DATABASE_URL_ENV} is not a URL (expected postgres://...)"))?
        + 3;
    let (before_query, query) = match url.find('?') {
        Some(q) => url.split_at(q),
        None => (url, ""),
    };
    let authority_end = before_query[scheme_end..]
        .find('/')
        .map_or(before_query.len(), |i| scheme_end + i);
    Ok(format!("{}/{name}{query}", &before_query[..authority_end]))
}

/// The URL with any password replaced, for error messages.
fn redact_password(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let rest = &url[scheme_end..];
    let authority = rest.split('/').next().unwrap_or_default();
    match authority.rfind('@') {
        Some(at) => match authority[..at].split_once(':') {
            Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end], &rest[at..]),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

    use super::*;

    #[test]
    fn database_name_replaces_the_path() {
        let u = |s| with_database(s, "db1").unwrap();
        assert_eq!(
            u("postgres://postgres@127.0.0.1:5432/postgres"),
            "postgres://postgres@127.0.0.1:5432/db1"
        );
        assert_eq!(u("postgres://h:5432"), "postgres://h:5432/db1");
        assert_eq!(
            u("postgres://h/x?sslmode=disable"),
            "postgres://h/db1?sslmode=disable"
        );
        assert!(with_database("nonsense", "db1").is_err());
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_password("postgres://u:secret@h:1/d"),
            "postgres://u:***@h:1/d"
        );
        assert_eq!(redact_password("postgres://u@h/d"), "postgres://u@h/d");
    }
}
