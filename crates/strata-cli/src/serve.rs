//! `strata serve`: one BIDS dataset over HTTP, read-only, for viewers and remote readers.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use strata_serve::{Dataset, Origins, ServeOptions};

use crate::common::DynResult;

/// Access-log formats.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    /// One human-readable line per request.
    Text,
    /// One JSON object per request.
    Json,
}

/// The flags of `strata serve`.
#[derive(Debug, clap::Args)]
pub(crate) struct ServeCmd {
    /// The dataset: a folder (or file:///path), s3://bucket/prefix (endpoint and credentials
    /// from the environment), or one .ozx archive (zip:///path/x.ozx).
    root: String,
    /// Address to listen on. Loopback by default; give 0.0.0.0:PORT to serve the network
    /// (then consider --token-file). Port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Web origins allowed to read from a browser (CORS), comma-separated or repeated, for
    /// example https://viewer.example.org; default: any origin.
    #[arg(long = "cors-origin", value_delimiter = ',')]
    cors_origins: Vec<String>,
    /// A file holding a token: every request but /healthz must then carry
    /// `Authorization: Bearer <token>`.
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// Connections served at once (more wait in the listen backlog).
    #[arg(long, default_value_t = 1024)]
    max_connections: usize,
    /// Seconds a client has to send a request's headers (also the keep-alive idle time).
    #[arg(long, default_value_t = 30)]
    header_timeout: u64,
    /// Seconds a write to a client may wait without any of it being taken (a client that
    /// stops reading a response is disconnected after it).
    #[arg(long, default_value_t = 60)]
    write_timeout: u64,
    /// Largest request head in bytes (larger gets 431).
    #[arg(long, default_value_t = 16384)]
    max_header_bytes: usize,
    /// Access-log format (on standard error).
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,
    /// No access log (errors are still logged).
    #[arg(long)]
    no_access_log: bool,
}

impl ServeCmd {
    pub(crate) fn run(self) -> DynResult<bool> {
        let token = match &self.token_file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("--token-file {}: {e}", path.display()))?;
                let token = text.trim().to_owned();
                if token.is_empty() || token.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    return Err(format!(
                        "--token-file {}: the file must hold one token (no spaces)",
                        path.display()
                    )
                    .into());
                }
                Some(token)
            }
            None => None,
        };
        let origins = if self.cors_origins.is_empty() || self.cors_origins.iter().any(|o| o == "*")
        {
            Origins::Any
        } else {
            Origins::List(self.cors_origins.clone())
        };
        let options = ServeOptions::default()
            .origins(origins)
            .token(token)
            .max_connections(self.max_connections)
            .max_header_bytes(self.max_header_bytes)
            .header_timeout(Duration::from_secs(self.header_timeout.max(1)))
            .write_timeout(Duration::from_secs(self.write_timeout.max(1)));
        init_log(self.log_format, self.no_access_log);
        raise_open_files_limit(self.max_connections);
        let dataset = Arc::new(Dataset::open(&self.root)?);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the server's runtime: {e}"))?;
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind(self.addr)
                .await
                .map_err(|e| format!("cannot listen on {}: {e}", self.addr))?;
            let local = listener.local_addr()?;
            let mut out = std::io::stdout().lock();
            writeln!(out, "serving {} at http://{local}/", self.root)?;
            out.flush()?;
            drop(out);
            strata_serve::serve(listener, dataset, options, stop_signal()).await?;
            Ok::<_, Box<dyn std::error::Error>>(())
        })?;
        Ok(false)
    }
}

/// Resolves on SIGTERM or SIGINT.
async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
    tracing::info!(target: "strata_serve", "stopping: finishing in-flight requests");
}

fn init_log(format: LogFormat, no_access_log: bool) {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::prelude::*;
    let access = if no_access_log {
        LevelFilter::OFF
    } else {
        LevelFilter::INFO
    };
    let filter = Targets::new()
        .with_target("strata_serve::access", access)
        .with_target("strata_serve", LevelFilter::INFO)
        .with_default(LevelFilter::WARN);
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(false);
    let registry = tracing_subscriber::registry().with(filter);
    let _ = match format {
        LogFormat::Text => registry.with(layer).try_init(),
        LogFormat::Json => registry.with(layer.json().flatten_event(true)).try_init(),
    };
}

/// Raises the soft limit of open files towards the hard one, as far as the server can use
/// (a descriptor per connection, one per open archive, and some to spare): the common
/// default soft limit of 1024 would otherwise cap `--max-connections`. Logged, never fatal.
fn raise_open_files_limit(max_connections: usize) {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let want = u64::try_from(max_connections)
        .unwrap_or(u64::MAX)
        .saturating_add(1024);
    let limit = getrlimit(Resource::Nofile);
    let (Some(current), maximum) = (limit.current, limit.maximum) else {
        return;
    };
    let target = maximum.map_or(want, |m| want.min(m));
    if target <= current {
        return;
    }
    let new = Rlimit {
        current: Some(target),
        maximum,
    };
    if let Err(e) = setrlimit(Resource::Nofile, new) {
        tracing::warn!(target: "strata_serve", error = %e, current, "cannot raise the open-files limit");
    }
}
