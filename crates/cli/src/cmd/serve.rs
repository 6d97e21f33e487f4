//! `framewire serve`: open the data folder, listen, serve until SIGINT or SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use framewire_server::{Config, Server};
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

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
    if let Some(name) = global.explicit_name.as_ref() {
        config.hub_name = name.clone();
    }
    // Before anything can be announced: a signal that arrives once we say "listening" must
    // shut down gracefully, not kill the process.
    let mut sigint = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    let mut sigterm = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;

    let server = Server::open(config)
        .await
        .with_context(|| format!("cannot open the data folder {}", args.data.display()))?;
    let listener = TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let http = if args.http == "off" {
        None
    } else {
        let l = TcpListener::bind(&args.http)
            .await
            .with_context(|| format!("cannot listen for HTTP on {}", args.http))?;
        Some(l)
    };
    let addr = listener.local_addr().context("listener address")?;
    eprintln!(
        "framewire hub listening on {addr} (data: {})",
        args.data.display()
    );

    // One signal stops both sides.
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let http_task = match http {
        None => None,
        Some(l) => {
            let http_addr = l.local_addr().context("HTTP address")?;
            eprintln!("dashboard: http://{http_addr}/");
            Some(tokio::spawn(framewire_server::web::serve_http(
                l,
                server.handle(),
                stopped(stop_rx.clone()),
            )))
        }
    };
    tokio::spawn(async move {
        let which = tokio::select! {
            _ = sigint.recv() => "SIGINT",
            _ = sigterm.recv() => "SIGTERM",
        };
        tracing::info!("{which}: shutting down");
        let _ = stop_tx.send(true);
    });
    server
        .serve(listener, stopped(stop_rx))
        .await
        .context("hub failed")?;
    if let Some(task) = http_task {
        // An open live view (MJPEG) never ends by itself; do not wait for it forever.
        match tokio::time::timeout(HTTP_GRACE, task).await {
            Ok(Ok(r)) => r.context("HTTP server failed")?,
            Ok(Err(e)) => tracing::warn!(error = %e, "HTTP task failed"),
            Err(_) => tracing::info!("closing live views that were still open"),
        }
    }
    eprintln!("framewire hub stopped");
    Ok(ExitCode::SUCCESS)
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
