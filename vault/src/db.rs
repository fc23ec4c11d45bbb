//! The database handle: SQLite (embedded default, WAL mode) or PostgreSQL, behind
//! one `sqlx::AnyPool`, with migrations per backend.

use std::ops::{Deref, DerefMut};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyConnection, AnyPool, Executor};
use tokio::sync::{Mutex, OwnedMutexGuard};

/// Which backend a [`Db`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("unsupported database URL: use sqlite://PATH or postgres://…")]
    UnsupportedUrl,
    #[error("cannot connect to the database")]
    Connect(#[source] sqlx::Error),
    #[error("database migration failed")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    #[error("database error")]
    Query(#[from] sqlx::Error),
    #[error("the database is busy: a write waited too long for its turn")]
    Busy,
}

/// How long a write waits for its turn at SQLite's writer gate before it fails, as
/// SQLite's own busy timeout would (a writer that waits longer is stuck, not slow).
const GATE_WAIT: Duration = Duration::from_secs(60);

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// A connection pool plus the backend it talks to.
#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
    /// SQLite's writer gate: one write transaction of this process at a time, the
    /// others waiting in the order they came (tokio's mutex is fair). Without it,
    /// writers collide on SQLite's database lock and back off by sleeping in SQLite's
    /// busy handler, which made the 99th percentile of opening a case 0.5 to 0.9 s with
    /// 4 to 16 writers at once. `None` on PostgreSQL, which locks rows itself.
    gate: Option<Arc<Mutex<()>>>,
}

/// A database connection, as the store functions take it: `&mut *tx` of a [`Tx`], or a
/// connection of the pool. Crates above the store name it by this name, without SQL.
pub type Conn = AnyConnection;

/// A write transaction ([`Db::begin_write`]). It holds the writer gate on SQLite until
/// it is committed, rolled back or dropped. Use `&mut *tx` as the connection.
#[derive(Debug)]
pub struct Tx {
    tx: sqlx::Transaction<'static, sqlx::Any>,
    // Released after the transaction: fields drop in order of declaration.
    _turn: Option<OwnedMutexGuard<()>>,
}

impl Tx {
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }

    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        self.tx.rollback().await
    }
}

impl Deref for Tx {
    type Target = AnyConnection;

    fn deref(&self) -> &AnyConnection {
        &self.tx
    }
}

impl DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }
}

impl Db {
    /// Connect and run the migrations of the backend.
    pub async fn connect(url: &str) -> Result<Self, DbError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(DbError::UnsupportedUrl);
        };
        let opts = AnyConnectOptions::from_str(url).map_err(DbError::Connect)?;
        let pool_opts = AnyPoolOptions::new()
            .acquire_timeout(Duration::from_secs(5))
            .max_connections(match backend {
                Backend::Sqlite => 4,
                Backend::Postgres => 16,
            });
        let pool = match backend {
            Backend::Sqlite => pool_opts.after_connect(|conn, _meta| {
                Box::pin(async move {
                    // WAL for concurrent readers; secure_delete so that shredded
                    // ciphertext and wrapped keys are overwritten in the file;
                    // FULL sync so a committed audit event survives power loss.
                    conn.execute(
                        "PRAGMA journal_mode=WAL; PRAGMA busy_timeout=10000; \
                         PRAGMA foreign_keys=ON; PRAGMA secure_delete=ON; \
                         PRAGMA synchronous=FULL;",
                    )
                    .await?;
                    Ok(())
                })
            }),
            Backend::Postgres => pool_opts,
        }
        .connect_with(opts)
        .await
        .map_err(DbError::Connect)?;
        let migrator = match backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.run(&pool).await.map_err(DbError::Migrate)?;
        let gate = (backend == Backend::Sqlite).then(|| Arc::new(Mutex::new(())));
        Ok(Self {
            pool,
            backend,
            gate,
        })
    }

    /// The same database without SQLite's writer gate: write transactions go straight
    /// to SQLite's lock and its busy handler. Only for the benchmark's baseline
    /// (`service/benches/writers.rs`); the service always keeps the gate.
    pub fn without_write_gate(mut self) -> Self {
        self.gate = None;
        self
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Begin a transaction that will write. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`), so a read-then-write transaction cannot fail half-way with
    /// "database is locked".
    ///
    /// On SQLite the transaction first waits for its turn at the writer gate, before it
    /// takes a connection from the pool, so that waiting writers hold no connection.
    /// Another process on the same file (a CLI command beside `fiktiv serve`) is still
    /// met by SQLite's own lock and busy timeout.
    pub async fn begin_write(&self) -> Result<Tx, DbError> {
        let turn = match &self.gate {
            Some(gate) => Some(
                tokio::time::timeout(GATE_WAIT, Arc::clone(gate).lock_owned())
                    .await
                    .map_err(|_| DbError::Busy)?,
            ),
            None => None,
        };
        let tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        };
        Ok(Tx { tx, _turn: turn })
    }

    /// Is the database reachable?
    pub async fn ping(&self) -> Result<(), DbError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// After crypto-shredding on SQLite: move the WAL into the main file and truncate it,
    /// so that no page with the destroyed key lingers in the WAL.
    pub async fn checkpoint(&self) -> Result<(), DbError> {
        if self.backend == Backend::Sqlite {
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}
