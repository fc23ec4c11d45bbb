//! The command line: `fiktiv <command> --data-dir DIR [--config FILE]`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Fiktiv: fictitious identities for pupils with protected personal data.
#[derive(Debug, Parser)]
#[command(name = "fiktiv", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Data directory: the key file and the embedded SQLite database live here.
    #[arg(long, global = true, env = "FIKTIV_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// Configuration file (TOML). Without it, the defaults apply.
    #[arg(long, global = true, env = "FIKTIV_CONFIG")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the data directory, the root key and the database. With `[keys] provider
    /// = "shares"`, the root key is kept only in shares, printed once each for their
    /// holders; with "pkcs11", under a new key in the HSM; with "file", in root.key (0600).
    Init {
        #[command(flatten)]
        shares: SharesArgs,
    },
    /// Enter one key share into the running service on this machine (read from the
    /// terminal without echo, or one line from standard input), through its control
    /// socket in the data directory.
    Unseal,
    /// Seal the running service on this machine: it forgets its keys and answers 503
    /// until the holders unseal it again.
    Seal,
    /// Run the HTTP service. On a new data directory, the key is created first.
    Serve {
        /// Address to listen on, for example 127.0.0.1:8080.
        #[arg(long)]
        listen: Option<SocketAddr>,
    },
    /// The audit trail.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Write an encrypted, integrity-checked archive of the database (keys are never in it).
    Backup {
        /// Where to write the archive. Refuses to overwrite an existing file.
        #[arg(long)]
        out: PathBuf,
    },
    /// Restore an archive into an empty database, then verify the audit chain.
    Restore {
        /// The archive written by `fiktiv backup`.
        #[arg(long = "from")]
        from: PathBuf,
    },
    /// Key management.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// API bearer tokens (stored hashed, revocable, expiring).
    Tokens {
        #[command(subcommand)]
        command: TokensCommand,
    },
    /// Retention: shred what the retention policy says is due.
    Retention {
        #[command(subcommand)]
        command: RetentionCommand,
    },
    /// Print the OpenAPI document of the HTTP API (as checked in at docs/openapi.json).
    Openapi,
    /// Provisioning targets: list them, test one (connectivity, TLS, credentials, schema).
    Targets {
        #[command(subcommand)]
        command: TargetsCommand,
    },
    /// Provisioning: plan, apply, reconcile, and the outbox jobs.
    Sync {
        #[command(subcommand)]
        command: SyncCommand,
    },
    /// The two checks: accounts read back from the targets, and the leak scan.
    Check {
        #[command(subcommand)]
        command: CheckCommand,
    },
    /// Staff accounts of the web UI (password + TOTP second factor). On a new system,
    /// `users add --role central-admin` creates the first administrator.
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// Notifications: run a round now, or send a test mail through `[notifications.smtp]`.
    Notify {
        #[command(subcommand)]
        command: NotifyCommand,
    },
    /// Case transfer packages between municipalities (docs/LIFECYCLE.md).
    Transfer {
        #[command(subcommand)]
        command: TransferCommand,
    },
    /// The school administration system (SS 12000 hub): read it now, see how the
    /// reads stand, set its secret (docs/SS12000.md).
    Hub {
        #[command(subcommand)]
        command: HubCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum HubCommand {
    /// Read the hub now: what changed since the last good read, or everything.
    Read {
        /// Read everything, not only what changed.
        #[arg(long)]
        full: bool,
    },
    /// When the last reads ran, how they went, and the counts (no person).
    Status,
    /// Set the hub secret (bearer token or OAuth client secret), read from standard
    /// input, sealed in the database.
    Secret,
    /// A new consumer of the feed (`/ss12000/v2`): prints its bearer token once.
    ConsumerAdd {
        /// The consumer's name (letters, digits, . _ -), e.g. the platform.
        #[arg(long)]
        name: String,
        /// The endpoints it may read, comma-separated: organisations, persons, groups,
        /// duties, activities.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "organisations,persons,groups,duties,activities"
        )]
        endpoints: Vec<String>,
        /// Person fields left out for it, comma-separated (civicNo, addresses, photo,
        /// emails, phoneNumbers, externalIdentifiers, eduPersonPrincipalNames,
        /// birthDate, sex).
        #[arg(long, value_delimiter = ',')]
        omit: Vec<String>,
    },
    /// Revoke a feed consumer's token.
    ConsumerRevoke {
        #[arg(long)]
        name: String,
    },
    /// The feed's consumers (no tokens).
    Consumers,
}

#[derive(Debug, Subcommand)]
pub enum TransferCommand {
    /// Print this Fiktiv's transfer public key (made on first use), to give to the
    /// municipalities that send cases here: they put it in their request for a package,
    /// and this key in `[transfer] senders` of theirs for the other direction.
    Key,
}

#[derive(Debug, Subcommand)]
pub enum NotifyCommand {
    /// Look for new things to do now, record notices and send the mail that is due
    /// (what `fiktiv serve` does every `[notifications] interval_secs`).
    Run,
    /// Send the notification mail to one address, to check the relay settings.
    Test {
        /// The address to send to.
        #[arg(long)]
        to: String,
        /// The mail's language: sv, nb or en.
        #[arg(long, default_value = "sv")]
        lang: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the whole hash chain; name the first event modified, removed or reordered.
    Verify,
    /// Write the audit trail to stdout, one JSON object per line, with every event's
    /// hashes and then the chain head, so an external tool can re-check the chain
    /// (scripts/verify-audit-export; docs/OPERATIONS.md).
    Export {
        /// Start at this event (default 1: the whole trail).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i64).range(1..))]
        from_seq: i64,
        /// Output format.
        #[arg(long, value_enum, default_value_t = ExportFormat::Jsonl)]
        format: ExportFormat,
    },
}

/// Formats of `fiktiv audit export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// JSON lines: one event per line, then the head.
    Jsonl,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Wrap the root key under a new custody key (new shares, or a new HSM key): nothing
    /// below it is re-sealed; the old shares (or the old HSM key) stop working.
    RotateRoot {
        #[command(flatten)]
        shares: SharesArgs,
    },
    /// Move the root key from the key file into the configured provider (shares or
    /// pkcs11), then delete the key file.
    Custody {
        #[command(flatten)]
        shares: SharesArgs,
    },
    /// Make a new key-encryption key version and rewrap every data key under it.
    Rotate,
    /// Show key-encryption key versions and how much each was used.
    Status,
    /// Rewrite every identity's blind indexes and name-part tags (identities stored
    /// by a release without name-part tags). Reads each identity through the audited read.
    Reindex,
}

/// How a set of key shares is made (`[keys] provider = "shares"`).
#[derive(Debug, Args, Default)]
pub struct SharesArgs {
    /// How many shares to make (default: one per --holder).
    #[arg(long)]
    pub shares: Option<usize>,
    /// How many shares open the key.
    #[arg(long)]
    pub threshold: Option<u8>,
    /// A holder's name, in share order. Repeat for each holder.
    #[arg(long = "holder")]
    pub holders: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Create a token; its secret is printed once and stored only as a hash.
    Create {
        /// A role: central-admin, school, approver or auditor. Repeat for several.
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        /// A school unit code (for the school role). Repeat for several.
        #[arg(long = "unit")]
        units: Vec<String>,
        /// Who holds the token (letters, digits, . _ @ -); the audit trail names them.
        #[arg(long)]
        name: String,
        /// Days until the token expires (default from [tokens] default_expires_days).
        #[arg(long)]
        expires_days: Option<u32>,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token by id.
    Revoke {
        /// The token id shown by `create` and `list`.
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum RetentionCommand {
    /// Shred every record whose retention period has passed.
    Run,
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create an account; prints its one-time password and TOTP secret once.
    Add {
        /// The account name (letters, digits, . _ @ -); the audit trail names it.
        #[arg(long)]
        name: String,
        /// A role: central-admin, school, approver or auditor. Repeat for several.
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        /// A school unit code (for the school role). Repeat for several.
        #[arg(long = "unit")]
        units: Vec<String>,
        /// Also write the QR code of the TOTP URI to this SVG file (readable by its
        /// owner only; delete it once scanned). The QR code is always drawn on stderr.
        #[arg(long = "qr-svg", value_name = "FILE")]
        qr_svg: Option<std::path::PathBuf>,
    },
    /// Disable an account and end its sessions.
    Disable {
        /// The account name.
        name: String,
    },
    /// Enable a disabled account again.
    Enable {
        /// The account name.
        name: String,
    },
    /// New one-time password and new TOTP secret (printed once); ends its sessions and
    /// clears a lockout.
    Reset {
        /// The account name.
        name: String,
        /// Also write the QR code of the new TOTP URI to this SVG file (as for `add`).
        #[arg(long = "qr-svg", value_name = "FILE")]
        qr_svg: Option<std::path::PathBuf>,
    },
    /// List accounts (never their secrets).
    List,
}

#[derive(Debug, Subcommand)]
pub enum TargetsCommand {
    /// List the targets in force (never their credentials).
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Test one target: connectivity, TLS, credentials, bases and schema, with a
    /// diagnosis per failure. Exit code 1 when a step fails.
    Test {
        /// The target's name.
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum SyncCommand {
    /// Show per target what would be created, updated, disabled and deleted.
    Plan {
        /// Plan without the removal-share safety check.
        #[arg(long)]
        force: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Apply the plan: queue the jobs and run them until none is due. Exit code 1 when
    /// removals were refused by the safety check.
    Apply {
        /// Remove even beyond the configured share of a target's accounts.
        #[arg(long)]
        force: bool,
        /// Only queue the jobs (a running `fiktiv serve` carries them out).
        #[arg(long)]
        no_wait: bool,
    },
    /// Reconcile now: read every managed account back, repair drift, report it.
    Reconcile,
    /// Run the jobs that are due now, then stop.
    Run,
    /// List the outbox jobs.
    Jobs {
        /// pending, running, done or failed.
        #[arg(long)]
        state: Option<String>,
        /// Only this target.
        #[arg(long)]
        target: Option<String>,
    },
    /// Retry a job now, with its attempts reset.
    Retry {
        /// The job id shown by `sync jobs`.
        job_id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum CheckCommand {
    /// Account check: each account read back from its target. Exit code 1 when an
    /// account is not as desired. Shows progress on stderr when it is a terminal.
    Accounts {
        /// One case.
        #[arg(long, conflicts_with = "target")]
        case: Option<String>,
        /// Every account on one target.
        #[arg(long)]
        target: Option<String>,
    },
    /// Leak scan: is a real identity anywhere downstream? Exit code 1 when one is found
    /// (or a target cannot be read). Shows progress on stderr when it is a terminal.
    Leaks {
        /// Report for one case only (every target is still read whole).
        #[arg(long)]
        case: Option<String>,
    },
}
