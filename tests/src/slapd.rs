//! A throw-away OpenLDAP server: `slapd` from a temporary `slapd.conf` with back_mdb.
//!
//! It touches no system configuration: configuration, database, pidfile and log all
//! live in one temporary directory, removed on drop. The schemas are Debian's core,
//! cosine, inetorgperson and nis from `/etc/ldap/schema`, plus the eduPerson and
//! norEduPerson schemas of this crate (`tests/ldap-schema/`).
//!
//! The database is opened with `dbnosync`: a throw-away server needs no fsync per
//! write (it made adding 10,000 entries over ten times slower), and a clean stop
//! still flushes everything, so [`Slapd::stop`] / [`Slapd::start_again`] keep the data.
//!
//! slapd runs in the foreground with `-d stats`, so every operation, search filters
//! included, is written to the log ([`Slapd::log`]). Tests can thus check that no real
//! identifier ever reached the directory, not even as a filter.

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use tempfile::TempDir;

use crate::process::{
    find_executable, log_len, log_says_address_in_use, log_since, running_as_root, spawn_logged,
    terminate, wait_ready,
};
use crate::{free_port, peer_dir, INSTALL_HINT};

/// The suffix (base DN) a [`Slapd`] serves unless [`SlapdBuilder::suffix`] says otherwise.
pub const DEFAULT_SUFFIX: &str = "dc=example,dc=org";

/// The rootdn's password. A plain `rootpw` is fine in a throw-away server on loopback.
const ADMIN_PASSWORD: &str = "fiktiv-test-admin-password";

/// Debian's schema files this server includes, in dependency order.
const SYSTEM_SCHEMAS: [&str; 4] = ["core", "cosine", "inetorgperson", "nis"];

/// This crate's schema files (relative to `tests/`).
const OWN_SCHEMAS: [&str; 2] = [
    "ldap-schema/eduperson.schema",
    "ldap-schema/noreduperson.schema",
];

/// Generous: a loaded machine (CI beside other builds) can be slow to start a peer.
const START_TIMEOUT: Duration = Duration::from_secs(300);
const STOP_GRACE: Duration = Duration::from_secs(10);
const START_ATTEMPTS: usize = 5;

/// Builds a [`Slapd`] with non-default settings.
#[derive(Debug, Clone)]
pub struct SlapdBuilder {
    suffix: String,
    tls: bool,
}

impl Default for SlapdBuilder {
    fn default() -> Self {
        Self {
            suffix: DEFAULT_SUFFIX.to_owned(),
            tls: false,
        }
    }
}

impl SlapdBuilder {
    /// The suffix to serve, e.g. `dc=skolan,dc=se` or `o=kommunen`. Its first RDN must be
    /// `dc=`, `o=` or `ou=` so that the base entry can be created.
    pub fn suffix(mut self, suffix: impl Into<String>) -> Self {
        self.suffix = suffix.into();
        self
    }

    /// Also serve TLS: StartTLS on the plain port and `ldaps://` on a second port, with a
    /// server certificate for `localhost` and `127.0.0.1` issued by a throw-away CA made
    /// with `openssl` ([`Slapd::ca_file`]).
    pub fn tls(mut self) -> Self {
        self.tls = true;
        self
    }

    /// Writes the configuration, starts slapd, waits until it accepts connections and
    /// creates the base entry, `ou=people` and `ou=groups`.
    pub fn start(self) -> anyhow::Result<Slapd> {
        let tools = Tools::find()?;
        let base_ldif = base_entries_ldif(&self.suffix)?;
        let dir = peer_dir("fiktiv-slapd-")?;
        let db_dir = dir.path().join("db");
        std::fs::create_dir(&db_dir).context("creating the slapd database directory")?;
        let password_file = dir.path().join("admin.password");
        std::fs::write(&password_file, ADMIN_PASSWORD).context("writing the password file")?;
        std::fs::set_permissions(&password_file, std::fs::Permissions::from_mode(0o600))
            .context("restricting the password file")?;

        let tls = if self.tls {
            Some(make_certificates(dir.path())?)
        } else {
            None
        };
        let mut slapd = Slapd {
            suffix: self.suffix,
            port: 0,
            tls_port: 0,
            tls,
            conf: dir.path().join("slapd.conf"),
            log: dir.path().join("slapd.log"),
            db_dir,
            password_file,
            tools,
            child: None,
            dir,
        };
        std::fs::write(&slapd.conf, slapd.config_text()?).context("writing slapd.conf")?;

        // A port may be taken between free_port() and slapd's bind(); retry on a new one.
        let mut attempt = 0;
        loop {
            attempt += 1;
            slapd.port = free_port()?;
            if slapd.tls.is_some() {
                slapd.tls_port = free_port()?;
            }
            match slapd.spawn() {
                Ok(()) => break,
                Err(e) if attempt < START_ATTEMPTS && log_says_address_in_use(&slapd.log) => {
                    eprintln!(
                        "fiktiv-tests: slapd port {} taken, retrying: {e:#}",
                        slapd.port
                    );
                }
                Err(e) => return Err(e),
            }
        }
        slapd
            .ldapadd(&base_ldif)
            .context("creating the base entries")?;
        Ok(slapd)
    }
}

/// The OpenLDAP programs the harness runs.
#[derive(Debug, Clone)]
struct Tools {
    slapd: PathBuf,
    slapcat: PathBuf,
    ldapadd: PathBuf,
    ldapmodify: PathBuf,
    ldapsearch: PathBuf,
}

impl Tools {
    fn find() -> anyhow::Result<Self> {
        let find = |name: &str, dir: &str, package: &str| {
            find_executable(name, &[Path::new(dir).join(name)]).ok_or_else(|| {
                anyhow!("`{name}` not found (Debian package {package}); {INSTALL_HINT}")
            })
        };
        let tools = Self {
            slapd: find("slapd", "/usr/sbin", "slapd")?,
            slapcat: find("slapcat", "/usr/sbin", "slapd")?,
            ldapadd: find("ldapadd", "/usr/bin", "ldap-utils")?,
            ldapmodify: find("ldapmodify", "/usr/bin", "ldap-utils")?,
            ldapsearch: find("ldapsearch", "/usr/bin", "ldap-utils")?,
        };
        for schema in SYSTEM_SCHEMAS {
            let path = system_schema(schema);
            if !path.is_file() {
                bail!(
                    "{} not found (Debian package slapd); {INSTALL_HINT}",
                    path.display()
                );
            }
        }
        Ok(tools)
    }
}

fn system_schema(name: &str) -> PathBuf {
    Path::new("/etc/ldap/schema").join(format!("{name}.schema"))
}

/// A running throw-away slapd. Stops it and removes its directory on drop.
#[derive(Debug)]
pub struct Slapd {
    suffix: String,
    port: u16,
    /// The `ldaps://` port, when built with [`SlapdBuilder::tls`].
    tls_port: u16,
    tls: Option<TlsFiles>,
    conf: PathBuf,
    log: PathBuf,
    db_dir: PathBuf,
    password_file: PathBuf,
    tools: Tools,
    child: Option<Child>,
    // Last, so that it is removed after Drop::drop stopped the process.
    dir: TempDir,
}

impl Slapd {
    /// A server for [`DEFAULT_SUFFIX`]. Errors (never skips) if slapd is missing.
    pub fn start() -> anyhow::Result<Self> {
        SlapdBuilder::default().start()
    }

    /// A builder for a server with other settings.
    pub fn builder() -> SlapdBuilder {
        SlapdBuilder::default()
    }

    /// `ldap://127.0.0.1:PORT/`
    pub fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}/", self.port)
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `ldaps://localhost:PORT/` (the certificate names `localhost`), when built with
    /// [`SlapdBuilder::tls`].
    pub fn ldaps_url(&self) -> Option<String> {
        self.tls
            .as_ref()
            .map(|_| format!("ldaps://localhost:{}/", self.tls_port))
    }

    /// `ldap://localhost:PORT/`, for StartTLS (the certificate names `localhost`).
    pub fn starttls_url(&self) -> String {
        format!("ldap://localhost:{}/", self.port)
    }

    /// The PEM file of the CA that issued the server certificate, when built with
    /// [`SlapdBuilder::tls`].
    pub fn ca_file(&self) -> Option<&Path> {
        self.tls.as_ref().map(|t| t.ca.as_path())
    }

    /// The suffix, e.g. `dc=example,dc=org`.
    pub fn base_dn(&self) -> &str {
        &self.suffix
    }

    /// `ou=people,<suffix>`, created at start.
    pub fn people_dn(&self) -> String {
        format!("ou=people,{}", self.suffix)
    }

    /// `ou=groups,<suffix>`, created at start.
    pub fn groups_dn(&self) -> String {
        format!("ou=groups,{}", self.suffix)
    }

    /// `cn=admin,<suffix>`, the rootdn.
    pub fn admin_dn(&self) -> String {
        format!("cn=admin,{}", self.suffix)
    }

    /// The rootdn's password.
    pub fn admin_password(&self) -> &str {
        ADMIN_PASSWORD
    }

    /// The temporary directory (configuration, `db/`, pidfile, log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The log file: slapd's stdout and stderr at debug level `stats`.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The whole log so far: every connection, bind, search filter and modification.
    pub fn log(&self) -> anyhow::Result<String> {
        let bytes =
            std::fs::read(&self.log).with_context(|| format!("reading {}", self.log.display()))?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Adds entries with `ldapadd`, bound as the rootdn. Fails on the first bad entry.
    pub fn ldapadd(&self, ldif: &str) -> anyhow::Result<()> {
        self.ldap_write(&self.tools.ldapadd, ldif)
    }

    /// Applies an LDIF change file with `ldapmodify`, bound as the rootdn.
    pub fn ldapmodify(&self, ldif: &str) -> anyhow::Result<()> {
        self.ldap_write(&self.tools.ldapmodify, ldif)
    }

    fn ldap_write(&self, tool: &Path, ldif: &str) -> anyhow::Result<()> {
        // Through a file, not stdin: ldapadd prints a line per entry, and writing a big
        // LDIF to its stdin while it blocks on a full stdout pipe would deadlock.
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let file = self.dir.path().join(format!(
            "input-{}.ldif",
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&file, ldif).context("writing an LDIF input file")?;
        let output = Command::new(tool)
            .args(["-x", "-H", &self.url(), "-D", &self.admin_dn(), "-y"])
            .arg(&self.password_file)
            .arg("-f")
            .arg(&file)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running {}", tool.display()));
        let _ = std::fs::remove_file(&file);
        let output = output?;
        if !output.status.success() {
            bail!(
                "{} failed ({}): {}{}",
                tool.display(),
                output.status,
                String::from_utf8_lossy(&output.stderr),
                String::from_utf8_lossy(&output.stdout)
                    .lines()
                    .last()
                    .unwrap_or_default()
            );
        }
        Ok(())
    }

    /// `ldapsearch -LLL` of the whole subtree under the suffix, bound as the rootdn.
    /// `attrs` empty means all user attributes. Returns the LDIF text.
    pub fn ldapsearch(&self, filter: &str, attrs: &[&str]) -> anyhow::Result<String> {
        let output = Command::new(&self.tools.ldapsearch)
            .args(["-x", "-LLL", "-o", "ldif-wrap=no", "-H", &self.url()])
            .args(["-D", &self.admin_dn(), "-y"])
            .arg(&self.password_file)
            .args(["-b", &self.suffix, "-s", "sub", filter])
            .args(attrs)
            .stdin(Stdio::null())
            .output()
            .context("running ldapsearch")?;
        if !output.status.success() {
            bail!(
                "ldapsearch {filter:?} failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        String::from_utf8(output.stdout).context("ldapsearch output is not UTF-8")
    }

    /// Everything stored, operational attributes included: `slapcat` of the database
    /// (safe while slapd runs, back_mdb reads a consistent snapshot).
    pub fn dump(&self) -> anyhow::Result<String> {
        let output = Command::new(&self.tools.slapcat)
            .arg("-f")
            .arg(&self.conf)
            .args(["-b", &self.suffix, "-o", "ldif-wrap=no"])
            .stdin(Stdio::null())
            .output()
            .context("running slapcat")?;
        if !output.status.success() {
            bail!(
                "slapcat failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        String::from_utf8(output.stdout).context("slapcat output is not UTF-8")
    }

    /// The raw bytes of the mdb database file, for scans that must not trust LDIF.
    pub fn db_bytes(&self) -> anyhow::Result<Vec<u8>> {
        let path = self.db_dir.join("data.mdb");
        std::fs::read(&path).with_context(|| format!("reading {}", path.display()))
    }

    /// The slapd process's id while it runs (for a benchmark that reads its CPU time
    /// from `/proc`).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the slapd process is running.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Stops slapd (SIGTERM, so back_mdb shuts down cleanly; SIGKILL after 10 s). The
    /// port and the database stay, for [`Slapd::start_again`]. Idempotent.
    pub fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            terminate(&mut child, "TERM", STOP_GRACE).context("stopping slapd")?;
        }
        Ok(())
    }

    /// Starts slapd again on the same port with the same database, after [`Slapd::stop`].
    pub fn start_again(&mut self) -> anyhow::Result<()> {
        if self.is_running() {
            bail!("slapd on port {} is still running", self.port);
        }
        self.spawn()
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let mut cmd = Command::new(&self.tools.slapd);
        // -d keeps slapd in the foreground (so it is our child and dies with kill),
        // and `stats` logs every operation.
        let mut listen = self.url();
        if self.tls.is_some() {
            listen.push_str(&format!(" ldaps://127.0.0.1:{}/", self.tls_port));
        }
        cmd.arg("-f")
            .arg(&self.conf)
            .args(["-h", &listen, "-d", "stats"]);
        if running_as_root() {
            cmd.args(["-u", "root", "-g", "root"]);
        }
        let log_start = log_len(&self.log);
        let mut child = spawn_logged(&mut cmd, &self.log)
            .with_context(|| format!("starting slapd; {INSTALL_HINT}"))?;
        let mut addrs = vec![SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))];
        if self.tls.is_some() {
            addrs.push(SocketAddr::from((Ipv4Addr::LOCALHOST, self.tls_port)));
        }
        let log = self.log.clone();
        let ready = wait_ready("slapd", &mut child, &self.log, START_TIMEOUT, || {
            // "slapd starting" is logged once the listeners are open; the connects prove
            // they are ours and reachable.
            log_since(&log, log_start).contains("slapd starting")
                && addrs
                    .iter()
                    .all(|a| TcpStream::connect_timeout(a, Duration::from_millis(200)).is_ok())
        });
        match ready {
            Ok(()) => {
                self.child = Some(child);
                Ok(())
            }
            Err(e) => {
                let _ = terminate(&mut child, "KILL", STOP_GRACE);
                Err(e.context(format!(
                    "starting slapd on {} with {}",
                    self.url(),
                    self.conf.display()
                )))
            }
        }
    }

    fn config_text(&self) -> anyhow::Result<String> {
        let mut conf = String::from("# Throw-away test server written by fiktiv-tests.\n");
        if let Some(t) = &self.tls {
            conf.push_str(&format!(
                "TLSCACertificateFile {}\nTLSCertificateFile {}\nTLSCertificateKeyFile {}\n",
                t.ca.display(),
                t.cert.display(),
                t.key.display()
            ));
        }
        for schema in SYSTEM_SCHEMAS {
            conf.push_str(&format!("include {}\n", system_schema(schema).display()));
        }
        for schema in OWN_SCHEMAS {
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(schema);
            if !path.is_file() {
                bail!("schema file {} is missing", path.display());
            }
            conf.push_str(&format!("include {}\n", path.display()));
        }
        let dir = self.dir.path().display();
        conf.push_str(&format!(
            "pidfile {dir}/slapd.pid\n\
             argsfile {dir}/slapd.args\n\
             modulepath /usr/lib/ldap\n\
             moduleload back_mdb\n\
             sizelimit unlimited\n\
             \n\
             database mdb\n\
             maxsize 1073741824\n\
             dbnosync\n\
             suffix \"{suffix}\"\n\
             rootdn \"{rootdn}\"\n\
             rootpw {ADMIN_PASSWORD}\n\
             directory {db}\n\
             index objectClass eq\n",
            suffix = self.suffix,
            rootdn = self.admin_dn(),
            db = self.db_dir.display(),
        ));
        Ok(conf)
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Err(e) = terminate(&mut child, "TERM", STOP_GRACE) {
                eprintln!(
                    "fiktiv-tests: could not stop slapd on port {}: {e:#}",
                    self.port
                );
            }
        }
    }
}

/// The PEM files of a TLS-serving slapd.
#[derive(Debug)]
pub(crate) struct TlsFiles {
    pub(crate) ca: PathBuf,
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
}

/// A throw-away CA and a server certificate it issued for `localhost` and 127.0.0.1
/// (P-256 keys, valid two days), made with the `openssl` program in `dir`.
pub(crate) fn make_certificates(dir: &Path) -> anyhow::Result<TlsFiles> {
    let openssl = find_executable("openssl", &[PathBuf::from("/usr/bin/openssl")])
        .ok_or_else(|| anyhow!("`openssl` not found (Debian package openssl); {INSTALL_HINT}"))?;
    let f = |name: &str| dir.join(name).display().to_string();
    let ext = dir.join("server.ext");
    std::fs::write(
        &ext,
        "basicConstraints = critical, CA:FALSE\n\
         keyUsage = critical, digitalSignature\n\
         extendedKeyUsage = serverAuth\n\
         subjectAltName = DNS:localhost, IP:127.0.0.1\n",
    )
    .context("writing the certificate extensions")?;
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let steps: [Vec<String>; 3] = [
        [
            &["req", "-x509"][..],
            &ec[..],
            &["-keyout", &f("ca.key"), "-out", &f("ca.pem"), "-days", "2"],
            &["-subj", "/CN=fiktiv-tests throw-away CA"],
            &["-addext", "basicConstraints=critical,CA:TRUE"],
            &["-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        ]
        .concat()
        .into_iter()
        .map(str::to_owned)
        .collect(),
        [
            &["req"][..],
            &ec[..],
            &["-keyout", &f("server.key"), "-out", &f("server.csr")],
            &["-subj", "/CN=localhost"],
        ]
        .concat()
        .into_iter()
        .map(str::to_owned)
        .collect(),
        [
            "x509",
            "-req",
            "-in",
            &f("server.csr"),
            "-CA",
            &f("ca.pem"),
            "-CAkey",
            &f("ca.key"),
            "-CAcreateserial",
            "-out",
            &f("server.pem"),
            "-days",
            "2",
            "-extfile",
            &f("server.ext"),
        ]
        .into_iter()
        .map(str::to_owned)
        .collect(),
    ];
    for args in steps {
        let out = Command::new(&openssl)
            .args(&args)
            .output()
            .context("running openssl")?;
        if !out.status.success() {
            bail!(
                "openssl {}: {}",
                args.first().map(String::as_str).unwrap_or_default(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    Ok(TlsFiles {
        ca: dir.join("ca.pem"),
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
    })
}

/// The LDIF of the base entry, `ou=people` and `ou=groups` for `suffix`.
fn base_entries_ldif(suffix: &str) -> anyhow::Result<String> {
    let first_rdn = suffix.split(',').next().unwrap_or_default();
    let (attr, value) = first_rdn
        .split_once('=')
        .map(|(a, v)| (a.trim().to_ascii_lowercase(), v.trim()))
        .ok_or_else(|| anyhow!("suffix {suffix:?} does not start with an RDN like dc=..."))?;
    let base = match attr.as_str() {
        "dc" => format!(
            "dn: {suffix}\nobjectClass: top\nobjectClass: dcObject\nobjectClass: organization\n\
             dc: {value}\no: {value}\n"
        ),
        "o" => format!("dn: {suffix}\nobjectClass: top\nobjectClass: organization\no: {value}\n"),
        "ou" => format!(
            "dn: {suffix}\nobjectClass: top\nobjectClass: organizationalUnit\nou: {value}\n"
        ),
        other => bail!("suffix {suffix:?}: cannot create a base entry for an RDN of type {other}"),
    };
    Ok(format!(
        "{base}\n\
         dn: ou=people,{suffix}\nobjectClass: top\nobjectClass: organizationalUnit\nou: people\n\n\
         dn: ou=groups,{suffix}\nobjectClass: top\nobjectClass: organizationalUnit\nou: groups\n"
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

    use super::*;

    #[test]
    fn base_entries_follow_the_first_rdn() {
        let dc = base_entries_ldif("dc=skolan,dc=se").unwrap();
        assert!(dc.starts_with("dn: dc=skolan,dc=se\n"));
        assert!(dc.contains("objectClass: dcObject\n") && dc.contains("dc: skolan\n"));
        assert!(dc.contains("dn: ou=people,dc=skolan,dc=se\n"));
        assert!(base_entries_ldif("o=kommunen")
            .unwrap()
            .contains("o: kommunen\n"));
        assert!(base_entries_ldif("cn=x").is_err());
        assert!(base_entries_ldif("nonsense").is_err());
    }
}
