//! `framewire serve`: open the data folder, listen, serve until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use framewire_server::tls::TlsIdentity;
use framewire_server::{Config, Listener, Server, ServerError};
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
    #[arg(long, value_name = "ADDR|off", default_value = "127.0.0.1:7879")]
    http: String,
    /// Also accept raw TCP uploads here: each connection's bytes become one stored file
    /// (`nc -q0 HOST PORT < photo.jpg`).
    #[arg(long, value_name = "ADDR")]
    raw_listen: Option<String>,
    /// Also accept UDP datagrams here: text messages and single-datagram frames.
    #[arg(long, value_name = "ADDR")]
    udp: Option<String>,
    /// Require tokens from FILE: one `TOKEN NAME PERMISSION[,PERMISSION...]` per line, permissions
    /// among upload, download, publish, subscribe, command, admin.
    #[arg(long = "tokens", value_name = "FILE")]
    tokens_file: Option<PathBuf>,
    #[command(flatten)]
    tls: TlsArgs,
    #[command(flatten)]
    limits: Limits,
}

/// TLS for the hub: with a certificate, `--listen` and the dashboard speak TLS only.
#[derive(Debug, Clone, clap::Args)]
#[group(skip)]
pub struct TlsArgs {
    /// Serve TLS with this certificate (PEM, leaf first, then any intermediates); needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key", group = "tls_source")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, EC or RSA).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Serve TLS with a self-signed certificate kept in DATA/tls/ (made on first start, reused
    /// after); clients pin it with the SHA-256 printed at start-up (--tls-fingerprint).
    #[arg(long, group = "tls_source")]
    tls_self_signed: bool,
    /// With TLS: also accept plain TCP framewire clients here (for microcontrollers that cannot do
    /// TLS). Without it, every native client must use TLS.
    #[arg(long, value_name = "ADDR", requires = "tls_source")]
    pub plain_listen: Option<String>,
}

impl TlsArgs {
    /// The hub's certificate, loaded or made, if TLS was asked for.
    ///
    /// # Errors
    /// The files cannot be read or are not a certificate and its key; the self-signed one cannot be
    /// made or saved.
    pub fn identity(&self, data: &std::path::Path) -> anyhow::Result<Option<TlsIdentity>> {
        let id = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => TlsIdentity::from_pem_files(cert, key)?,
            _ if self.tls_self_signed => TlsIdentity::self_signed(data)?,
            _ => return Ok(None),
        };
        Ok(Some(id))
    }
}

/// The hub's limits (all optional; see `docs/RELIABILITY.md` for the defaults).
#[derive(Debug, clap::Args)]
pub struct Limits {
    /// Largest file the hub stores, in bytes (suffixes K, M, G, T: powers of 1024) [default: 1T].
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    max_file_size: Option<u64>,
    /// Most bytes the store may hold; uploads past it are refused with "storage full" [default: the disk].
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    max_storage: Option<u64>,
    /// Largest message payload, in bytes [default: 16M].
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    max_message: Option<u64>,
    /// Offers a client may have outstanding at once [default: 256].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    max_inflight: Option<u16>,
    /// Most connections at once [default: 10000].
    #[arg(long, value_name = "N")]
    max_connections: Option<usize>,
    /// Most connections from one IP address [default: 1000].
    #[arg(long, value_name = "N")]
    max_connections_per_ip: Option<usize>,
    /// Most subscribers of one stream [default: 100].
    #[arg(long, value_name = "N")]
    max_subscribers: Option<usize>,
    /// Seconds a new connection has to send its handshake [default: 10].
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    handshake_timeout: Option<f64>,
    /// Seconds without traffic after which a connection is closed [default: 300].
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    idle_timeout: Option<f64>,
    /// How long a device has to answer a command, in seconds [default: 10].
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    command_timeout: Option<f64>,
}

impl Limits {
    /// Applies the limits given on the command line.
    pub fn apply(&self, c: &mut Config) -> anyhow::Result<()> {
        let secs = Duration::from_secs_f64;
        if let Some(n) = self.max_file_size {
            c.max_file_size = n;
        }
        if let Some(n) = self.max_storage {
            c.max_storage = n;
        }
        if let Some(n) = self.max_message {
            anyhow::ensure!(
                (1024..=1 << 30).contains(&n),
                "--max-message must be between 1K and 1G"
            );
            c.max_payload = n as u32;
            c.chunk_size = c.chunk_size.min(c.max_payload - 64);
        }
        if let Some(n) = self.max_inflight {
            c.max_inflight = n;
        }
        if let Some(n) = self.max_connections {
            c.max_connections = n.max(1);
        }
        if let Some(n) = self.max_connections_per_ip {
            c.max_connections_per_ip = n.max(1);
        }
        if let Some(n) = self.max_subscribers {
            c.max_subscribers_per_stream = n.max(1);
        }
        if let Some(t) = self.handshake_timeout {
            c.handshake_timeout = secs(t);
        }
        if let Some(t) = self.idle_timeout {
            c.idle_timeout = secs(t);
        }
        if let Some(t) = self.command_timeout {
            c.command_timeout = secs(t);
        }
        Ok(())
    }
}

/// The extra doors a hub may open besides its native port.
#[derive(Debug, Default, Clone)]
pub struct Doors {
    /// Plain TCP framewire clients, beside a TLS `--listen`.
    pub plain: Option<String>,
    /// HTTP (dashboard and API).
    pub http: Option<String>,
    /// Raw TCP ingest.
    pub raw: Option<String>,
    /// UDP datagrams.
    pub udp: Option<String>,
}

/// Runs the hub until a signal asks it to stop.
pub async fn run(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    let mut config = Config::new(&args.data);
    args.limits.apply(&mut config)?;
    config.tokens = framewire_server::auth::Tokens::from_flags(&global.tokens);
    if let Some(f) = &args.tokens_file {
        config.tokens.load_file(f)?;
    }
    if let Some(name) = global.explicit_name.as_ref() {
        config.hub_name = name.clone();
    }
    if global.tls_flag {
        return Err(crate::cmd::UsageError(
            "--tls is for clients; a hub serves TLS with --tls-self-signed or --tls-cert FILE --tls-key FILE"
                .into(),
        )
        .into());
    }
    let tls = args.tls.identity(&args.data)?;
    // Before anything can be announced: a signal that arrives once we say "listening" must
    // shut down gracefully, not kill the process.
    let mut sigint = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    let mut sigterm = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let doors = Doors {
        plain: args.tls.plain_listen.clone(),
        http: (args.http != "off").then(|| args.http.clone()),
        raw: args.raw_listen.clone(),
        udp: args.udp.clone(),
    };
    let mut hub = RunningHub::start(config, &args.listen, &doors, tls.as_ref()).await?;
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
    /// With TLS: the SHA-256 of the hub's certificate, which clients pin.
    pub fingerprint: Option<[u8; 32]>,
    stop: watch::Sender<bool>,
    hub: JoinHandle<Result<(), ServerError>>,
    doors: Vec<JoinHandle<std::io::Result<()>>>,
    http: Option<JoinHandle<std::io::Result<()>>>,
}

impl RunningHub {
    /// Opens the data folder, binds the addresses, starts serving, and prints
    /// `framewire hub listening on ADDR (data: DIR)` and `dashboard: http://ADDR/` (the real
    /// ports, also for port 0). With `tls`, the native port and the dashboard speak TLS only, and
    /// `TLS certificate SHA-256: AB:CD:...` and `dashboard: https://ADDR/` are printed.
    ///
    /// # Errors
    /// The data folder cannot be opened or an address cannot be bound.
    pub async fn start(
        config: Config,
        listen: &str,
        doors: &Doors,
        tls: Option<&TlsIdentity>,
    ) -> anyhow::Result<Self> {
        let data = config.data_dir.clone();
        let open_hub = !config.tokens.enabled();
        let server = Server::open(config)
            .await
            .with_context(|| format!("cannot open the data folder {}", data.display()))?;
        let listener = TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let plain_listener = match doors.plain.as_deref() {
            None => None,
            Some(a) => Some(
                TcpListener::bind(a)
                    .await
                    .with_context(|| format!("cannot listen for plain TCP clients on {a}"))?,
            ),
        };
        let http_listener = match doors.http.as_deref() {
            None => None,
            Some(a) => Some(
                TcpListener::bind(a)
                    .await
                    .with_context(|| format!("cannot listen for HTTP on {a}"))?,
            ),
        };
        let raw_listener = match doors.raw.as_deref() {
            None => None,
            Some(a) => Some(
                TcpListener::bind(a)
                    .await
                    .with_context(|| format!("cannot listen for raw uploads on {a}"))?,
            ),
        };
        let udp_socket = match doors.udp.as_deref() {
            None => None,
            Some(a) => Some(
                tokio::net::UdpSocket::bind(a)
                    .await
                    .with_context(|| format!("cannot bind UDP on {a}"))?,
            ),
        };
        let addr = listener.local_addr().context("listener address")?;
        let mut exposed = !addr.ip().is_loopback();
        for l in [&plain_listener, &http_listener, &raw_listener]
            .into_iter()
            .flatten()
        {
            exposed |= l.local_addr().is_ok_and(|a| !a.ip().is_loopback());
        }
        exposed |= udp_socket
            .as_ref()
            .is_some_and(|u| u.local_addr().is_ok_and(|a| !a.ip().is_loopback()));
        if open_hub && exposed {
            eprintln!(
                "WARNING: this hub listens beyond this machine and requires NO token: anyone who can reach it\n\
                 WARNING: can upload, download, watch and command devices. Start it with --token TOKEN or --tokens FILE."
            );
        }
        let with_tls = if tls.is_some() { " with TLS" } else { "" };
        eprintln!(
            "framewire hub listening on {addr}{with_tls} (data: {})",
            data.display()
        );
        if let Some(id) = tls {
            if id.created {
                eprintln!(
                    "TLS: made a self-signed certificate, kept in {}",
                    id.cert_path.display()
                );
            }
            eprintln!("TLS certificate SHA-256: {}", id.fingerprint_hex());
        }
        let mut listeners = vec![match tls {
            Some(id) => Listener::Tls(listener, id.native_acceptor()),
            None => Listener::Plain(listener),
        }];
        if let Some(l) = plain_listener {
            eprintln!(
                "plain TCP (no TLS) clients: {}",
                l.local_addr().context("plain address")?
            );
            listeners.push(Listener::Plain(l));
        }

        // One signal stops both sides.
        let (stop, stop_rx) = watch::channel(false);
        let stopped = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|stop| *stop).await;
        };
        let http = match http_listener {
            None => None,
            Some(l) => {
                let http_addr = l.local_addr().context("HTTP address")?;
                let task = match tls {
                    None => {
                        eprintln!("dashboard: http://{http_addr}/");
                        tokio::spawn(framewire_server::web::serve_http(
                            l,
                            server.handle(),
                            stopped(stop_rx.clone()),
                        ))
                    }
                    Some(id) => {
                        eprintln!("dashboard: https://{http_addr}/");
                        tokio::spawn(framewire_server::web::serve_https(
                            l,
                            id.https_acceptor(),
                            server.handle(),
                            stopped(stop_rx.clone()),
                        ))
                    }
                };
                Some(task)
            }
        };
        let mut doors = Vec::new();
        if let Some(l) = raw_listener {
            eprintln!("raw uploads: {}", l.local_addr().context("raw address")?);
            doors.push(tokio::spawn(framewire_server::ingest::serve_raw(
                l,
                server.handle(),
                stopped(stop_rx.clone()),
            )));
        }
        if let Some(u) = udp_socket {
            eprintln!("udp: {}", u.local_addr().context("UDP address")?);
            doors.push(tokio::spawn(framewire_server::ingest::serve_udp(
                u,
                server.handle(),
                stopped(stop_rx.clone()),
            )));
        }
        let hub = tokio::spawn(server.serve_listeners(listeners, stopped(stop_rx)));
        Ok(RunningHub {
            addr,
            fingerprint: tls.map(TlsIdentity::fingerprint),
            stop,
            hub,
            doors,
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
        for d in self.doors {
            let _ = tokio::time::timeout(HTTP_GRACE, d).await;
        }
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
