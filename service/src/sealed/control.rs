//! The control socket: `DATA_DIR/control.sock` (mode 0600, in a 0700 directory), so
//! that only the service's own user on its own machine can unseal or seal it from the
//! command line. One JSON request per line, one JSON answer per line:
//!
//! ```text
//! {"op":"status"}                 -> {"ok":true,"state":"sealed","entered":1,"threshold":3}
//! {"op":"unseal","share":"fks1-"} -> the same, or {"ok":false,"code":"...","message":"..."}
//! {"op":"seal"}                   -> {"ok":true,"state":"sealed",...}
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context as _};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use zeroize::Zeroizing;

use super::{Gate, Status, Via};

/// The socket's file name in the data directory.
pub const SOCKET_NAME: &str = "control.sock";
/// The longest request line read.
const MAX_LINE: u64 = 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ControlRequest {
    op: String,
    #[serde(default)]
    share: Option<Zeroizing<String>>,
}

#[derive(Serialize, Deserialize)]
struct ControlAnswer {
    ok: bool,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    entered: Option<usize>,
    #[serde(default)]
    threshold: Option<usize>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

impl ControlAnswer {
    fn of(s: Status) -> Self {
        match s {
            Status::Sealed { entered, threshold } => Self {
                ok: true,
                state: Some("sealed".into()),
                entered: Some(entered),
                threshold: Some(threshold),
                code: None,
                message: None,
            },
            Status::Open => Self {
                ok: true,
                state: Some("open".into()),
                entered: None,
                threshold: None,
                code: None,
                message: None,
            },
        }
    }

    fn refused(code: &str, message: &str) -> Self {
        Self {
            ok: false,
            state: None,
            entered: None,
            threshold: None,
            code: Some(code.into()),
            message: Some(message.into()),
        }
    }
}

/// The listening socket; removed when stopped.
pub struct Control {
    path: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl Control {
    pub fn stop(self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Listen on `DATA_DIR/control.sock` (a stale socket from a killed process is replaced).
pub fn listen(data_dir: &Path, gate: Arc<Gate>) -> anyhow::Result<Control> {
    let path = data_dir.join(SOCKET_NAME);
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(&path).is_ok() {
            bail!(
                "{} is in use: another fiktiv serve runs on this data directory",
                path.display()
            );
        }
        std::fs::remove_file(&path)
            .with_context(|| format!("cannot remove the stale {}", path.display()))?;
    }
    let listener = UnixListener::bind(&path)
        .with_context(|| format!("cannot listen on {}", path.display()))?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot restrict {}", path.display()))?;
    }
    let task = tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    let gate = gate.clone();
                    tokio::spawn(async move {
                        if let Err(e) = serve_one(stream, &gate).await {
                            tracing::warn!(error = %e, "control socket connection failed");
                        }
                    });
                }
                Err(e) => tracing::warn!(error = %e, "control socket accept failed"),
            }
        }
    });
    Ok(Control { path, task })
}

async fn serve_one(stream: UnixStream, gate: &Gate) -> anyhow::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read.take(MAX_LINE));
    let mut line = Zeroizing::new(String::new());
    reader.read_line(&mut line).await?;
    let answer = match serde_json::from_str::<ControlRequest>(&line) {
        Err(_) => ControlAnswer::refused("bad-request", "not a control request"),
        Ok(req) => match (req.op.as_str(), req.share) {
            ("status", None) => ControlAnswer::of(gate.status().await),
            ("unseal", Some(share)) => match gate.enter(&share, Via::ControlSocket).await {
                Ok(s) => ControlAnswer::of(s),
                Err(r) => ControlAnswer::refused(r.code(), r.message()),
            },
            ("seal", None) => {
                gate.seal(Via::ControlSocket).await?;
                ControlAnswer::of(gate.status().await)
            }
            _ => ControlAnswer::refused("bad-request", "not a control request"),
        },
    };
    let mut out = serde_json::to_vec(&answer)?;
    out.push(b'\n');
    write.write_all(&out).await?;
    Ok(())
}

async fn ask(data_dir: &Path, request: &serde_json::Value) -> anyhow::Result<ControlAnswer> {
    let path = data_dir.join(SOCKET_NAME);
    let stream = UnixStream::connect(&path).await.with_context(|| {
        format!(
            "cannot reach the running service at {} (is `fiktiv serve` running with \
             [keys] provider = \"shares\" on this data directory, as this user?)",
            path.display()
        )
    })?;
    let (read, mut write) = stream.into_split();
    let mut out = Zeroizing::new(serde_json::to_vec(request)?);
    out.push(b'\n');
    write.write_all(&out).await?;
    let mut line = String::new();
    BufReader::new(read.take(4096)).read_line(&mut line).await?;
    serde_json::from_str(&line).context("the service's answer is not understood")
}

fn report(a: &ControlAnswer) -> i32 {
    if !a.ok {
        eprintln!(
            "refused: {}",
            a.message.as_deref().unwrap_or("no reason given")
        );
        return 1;
    }
    match (a.state.as_deref(), a.entered, a.threshold) {
        (Some("sealed"), Some(e), Some(t)) => {
            eprintln!("sealed: {e} of {t} shares entered");
        }
        (Some("open"), _, _) => eprintln!("unsealed: the service is open"),
        _ => eprintln!("the service answered"),
    }
    0
}

/// `fiktiv unseal`: read one share (no echo on a terminal) and send it.
pub async fn unseal_command(data_dir: &Path) -> anyhow::Result<i32> {
    let share = crate::commands_keys::read_secret_line("your key share: ")?;
    if share.trim().is_empty() {
        bail!("no share given");
    }
    let answer = ask(
        data_dir,
        &serde_json::json!({ "op": "unseal", "share": share.trim() }),
    )
    .await?;
    Ok(report(&answer))
}

/// `fiktiv seal`: seal the running service.
pub async fn seal_command(data_dir: &Path) -> anyhow::Result<i32> {
    let answer = ask(data_dir, &serde_json::json!({ "op": "seal" })).await?;
    Ok(report(&answer))
}
