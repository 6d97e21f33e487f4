//! `framewire serve`: open the data folder, listen, serve until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use framewire_server::{Config, Server, ServerError};
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::Global;

/// Arguments of `framewire serve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address for framewire clients (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:7878", value_name = "ADDR")]
    listen: String,
    /// Data folder: stored files, uploads in progress, the index.
    #[arg(long, default_value = "./framewire-data", value_name = "DIR")]
    data: PathBuf,
    /// Address of the web dashboard and HTTP API (files, live streams, metrics), or `off`.
    #[arg(long, value_name = "ADDR|off", default_value = "off")]
    http: String,
    /// Largest file the hub stores, in bytes (suffixes K, M, G, T: powers of 1024).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    max_file_size: Option<u64>,
    /// Offers a client may have outstanding at once.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    max_inflight: Option<u16>,
    /// How long a device has to answer a command, in seconds [default: 10].
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    command_timeout: Option<f64>,
}

/// Runs the hub until a signal asks it to stop.
pub async fn run(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    let mut config = Config::new(&args.data);
    if let Some(n) = args.max_file_size {
        config.max_file_size = n;
    }
    if let Some(n) = args.max_inflight {
        config.max_inflight = n;
    }
    if let Some(secs) = args.command_timeout {
        config.command_timeout = Duration::from_secs_f64(secs);
    }
    if let Some(name) = global.explicit_name.as_ref() {
        config.hub_name = name.clone();
    }
    // Before anything can be announced: a signal that arrives once we say "listening" must
    // shut down gracefully, not kill the process.
    let mut sigint = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    let mut sigterm = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let http = (args.http != "off").then_some(args.http.as_str());
    let mut hub = RunningHub::start(config, &args.listen, http).await?;
    let which = tokio::select! {
        _ = sigint.recv() => "SIGINT",
        _ = sigterm.recv() => "SIGTERM",
        r = hub.failed() => return Err(r),
    };
    tracing::info!("{which}: shutting down");
    hub.stop().await?;
    Ok(ExitCode::SUCCESS)
}

/// A hub serving in the background: the native port and, optionally, the web side.
pub struct RunningHub {
    /// The native (framewire protocol) address.
    pub addr: SocketAddr,
    stop: watch::Sender<bool>,
    hub: JoinHandle<Result<(), ServerError>>,
    http: Option<JoinHandle<std::io::Result<()>>>,
}

impl RunningHub {
    /// Opens the data folder, binds the addresses, starts serving, and prints
    /// `framewire hub listening on ADDR (data: DIR)` and `dashboard: http://ADDR/` (the real
    /// ports, also for port 0).
    ///
    /// # Errors
    /// The data folder cannot be opened or an address cannot be bound.
    pub async fn start(config: Config, listen: &str, http: Option<&str>) -> anyhow::Result<Self> {
        let data = config.data_dir.clone();
        let server = Server::open(config)
            .await
            .with_context(|| format!("cannot open the data folder {}", data.display()))?;
        let listener = TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let http_listener = match http {
            None => None,
            Some(a) => Some(
                TcpListener::bind(a)
                    .await
                    .with_context(|| format!("cannot listen for HTTP on {a}"))?,
            ),
        };
        let addr = listener.local_addr().context("listener address")?;
        eprintln!(
            "framewire hub listening on {addr} (data: {})",
            data.display()
        );

        // One signal stops both sides.
        let (stop, stop_rx) = watch::channel(false);
        let stopped = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|stop| *stop).await;
        };
        let http = match http_listener {
            None => None,
            Some(l) => {
                let http_addr = l.local_addr().context("HTTP address")?;
                eprintln!("dashboard: http://{http_addr}/");
                let task = tokio::spawn(framewire_server::web::serve_http(
                    l,
                    server.handle(),
                    stopped(stop_rx.clone()),
                ));
                Some(task)
            }
        };
        let hub = tokio::spawn(server.serve(listener, stopped(stop_rx)));
        Ok(RunningHub {
            addr,
            stop,
            hub,
            http,
        })
    }

    /// Completes only if the hub stops by itself, with the reason.
    pub async fn failed(&mut self) -> anyhow::Error {
        match (&mut self.hub).await {
            Ok(Ok(())) => anyhow::anyhow!("the hub stopped unexpectedly"),
            Ok(Err(e)) => anyhow::Error::new(e).context("hub failed"),
            Err(e) => anyhow::Error::new(e).context("hub task failed"),
        }
    }

    /// Shuts down gracefully (see `docs/ARCHITECTURE.md`) and prints `framewire hub stopped`.
    ///
    /// # Errors
    /// The hub or the web side failed while stopping.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        self.hub
            .await
            .context("hub task failed")?
            .context("hub failed")?;
        if let Some(task) = self.http {
            // An open live view (MJPEG) never ends by itself; do not wait for it forever.
            match tokio::time::timeout(HTTP_GRACE, task).await {
                Ok(Ok(r)) => r.context("HTTP server failed")?,
                Ok(Err(e)) => tracing::warn!(error = %e, "HTTP task failed"),
                Err(_) => tracing::info!("closing live views that were still open"),
            }
        }
        eprintln!("framewire hub stopped");
        Ok(())
    }
}

/// How long shutdown waits for HTTP responses in progress.
const HTTP_GRACE: Duration = Duration::from_secs(2);

/// `1048576`, `512K`, `20M`, `1G`, `1T` (binary multiples; a trailing `B` or `iB` is allowed).
fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let t = t
        .strip_suffix("iB")
        .or_else(|| t.strip_suffix('B'))
        .unwrap_or(t);
    let (digits, shift) = match t.chars().last() {
        Some('K' | 'k') => (&t[..t.len() - 1], 10),
        Some('M' | 'm') => (&t[..t.len() - 1], 20),
        Some('G' | 'g') => (&t[..t.len() - 1], 30),
        Some('T' | 't') => (&t[..t.len() - 1], 40),
        _ => (t, 0),
    };
    let n: u64 = digits
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a size (examples: 1048576, 512K, 20M, 1G)"))?;
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| format!("{s:?} is too large"))
}

/// Seconds, more than 0 and at most an hour.
pub(crate) fn parse_secs(s: &str) -> Result<f64, String> {
    s.parse()
        .ok()
        .filter(|f: &f64| f.is_finite() && *f > 0.0 && *f <= 3600.0)
        .ok_or_else(|| format!("{s:?} is not a number of seconds (0 < SECS <= 3600)"))
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_size("512K"), Ok(512 << 10));
        assert_eq!(parse_size("20M"), Ok(20 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("2TB"), Ok(2 << 40));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("99999999999T").is_err());
    }
}
