//! `framewire serve`: open the data folder, listen, serve until SIGINT or SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use framewire_server::tls::TlsIdentity;
use framewire_server::{Config, DoorPolicy, HubBuilder, RunningHub, ServerError};
use tokio::signal::unix::{signal, SignalKind};

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
    /// A host name the dashboard answers to besides localhost and IP addresses (repeatable): a hub
    /// reached as http://hub.local:7879 needs `--allowed-host hub.local`. Other names are refused
    /// (against DNS rebinding).
    #[arg(long = "allowed-host", value_name = "NAME")]
    allowed_hosts: Vec<String>,
    /// Require tokens from FILE: one `TOKEN NAME PERMISSION[,PERMISSION...]` per line, permissions
    /// among upload, download, delete, publish, subscribe, command, events (follow the hub's
    /// events and receive texts under a name), admin.
    #[arg(long = "tokens", value_name = "FILE")]
    tokens_file: Option<PathBuf>,
    #[command(flatten)]
    doors: SimpleDoors,
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
    /// Seconds a connection may leave its outgoing queue full (the peer not reading) before it
    /// is closed [default: 30].
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    write_timeout: Option<f64>,
    /// Seconds a stream without a publisher is kept after its last frame [default: 300].
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    stream_ttl: Option<f64>,
    /// Most streams at once; a new one past it is refused [default: 1000].
    #[arg(long, value_name = "N")]
    max_streams: Option<usize>,
    /// Memory for buffered payload, all clients together (bodies being read, queues of slow
    /// readers, live frames, image decodes); past it readers wait [default: 256M].
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    max_memory: Option<u64>,
    /// Seconds an accepted offer may wait for its data before it is withdrawn [default: 30].
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    offer_timeout: Option<f64>,
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
        if let Some(t) = self.write_timeout {
            c.write_timeout = secs(t);
        }
        if let Some(t) = self.stream_ttl {
            c.stream_ttl = secs(t);
        }
        if let Some(n) = self.max_streams {
            c.max_streams = n.max(1);
        }
        if let Some(n) = self.max_memory {
            anyhow::ensure!(n >= 1 << 20, "--max-memory must be at least 1M");
            c.memory_budget = usize::try_from(n).unwrap_or(usize::MAX);
        }
        if let Some(t) = self.offer_timeout {
            c.offer_timeout = secs(t);
        }
        Ok(())
    }
}

/// The doors that cannot present a token: raw TCP uploads and UDP datagrams, and who they act as.
#[derive(Debug, Clone, clap::Args)]
#[group(skip)]
pub struct SimpleDoors {
    /// Also accept raw TCP uploads here: each connection's bytes become one stored file
    /// (`nc -q0 HOST PORT < photo.jpg`).
    #[arg(long, value_name = "ADDR", help_heading = "Doors for simple devices")]
    raw_listen: Option<String>,
    /// On a hub with tokens: the token name (from --tokens) whose permissions apply to raw uploads.
    #[arg(
        long,
        value_name = "NAME",
        requires = "raw_listen",
        help_heading = "Doors for simple devices"
    )]
    raw_as: Option<String>,
    /// Accept raw uploads only from these addresses (repeatable; `10.0.0.0/8`, `192.168.1.7`).
    #[arg(
        long,
        value_name = "CIDR",
        requires = "raw_listen",
        help_heading = "Doors for simple devices"
    )]
    raw_allow: Vec<framewire_server::Cidr>,
    /// Also accept UDP datagrams here: text messages and single-datagram frames.
    #[arg(long, value_name = "ADDR", help_heading = "Doors for simple devices")]
    udp: Option<String>,
    /// On a hub with tokens: the token name whose permissions apply to UDP datagrams.
    #[arg(
        long,
        value_name = "NAME",
        requires = "udp",
        help_heading = "Doors for simple devices"
    )]
    udp_as: Option<String>,
    /// Accept UDP datagrams only from these addresses (repeatable).
    #[arg(
        long,
        value_name = "CIDR",
        requires = "udp",
        help_heading = "Doors for simple devices"
    )]
    udp_allow: Vec<framewire_server::Cidr>,
    /// Run PROGRAM for each stored file: `PROGRAM PATH SIZE HASH SENDER`, also as FRAMEWIRE_PATH,
    /// FRAMEWIRE_SIZE, FRAMEWIRE_HASH, FRAMEWIRE_SENDER (no shell; stdin empty). Never delays the
    /// upload's acknowledgement.
    #[arg(long, value_name = "PROGRAM", help_heading = "Programs that react")]
    on_upload: Option<std::path::PathBuf>,
    /// Run PROGRAM for each text message: `PROGRAM FROM TO TEXT`, also as FRAMEWIRE_FROM,
    /// FRAMEWIRE_TO, FRAMEWIRE_TEXT.
    #[arg(long, value_name = "PROGRAM", help_heading = "Programs that react")]
    on_message: Option<std::path::PathBuf>,
    /// Publish events to this MQTT broker and take device commands from it (mqtt://HOST:PORT).
    #[arg(long, value_name = "URL", help_heading = "Programs that react")]
    mqtt: Option<String>,
    /// Topic prefix for MQTT.
    #[arg(
        long,
        value_name = "PREFIX",
        default_value = "framewire",
        help_heading = "Programs that react"
    )]
    mqtt_prefix: String,
    /// On a hub with tokens: the token name whose permissions apply to commands from MQTT.
    #[arg(
        long,
        value_name = "NAME",
        requires = "mqtt",
        help_heading = "Programs that react"
    )]
    mqtt_as: Option<String>,
    /// Most hook programs running at once.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 4,
        help_heading = "Programs that react"
    )]
    hook_concurrency: usize,
    /// A hook program still running after this many seconds is killed.
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 30.0,
        help_heading = "Programs that react"
    )]
    hook_timeout: f64,
    /// A hand-written socket server's clients, unchanged: play PROFILE's server side on ADDR
    /// (repeatable). PROFILE[:KEY=VALUE,...]=ADDR, e.g. `seed003-batch=0.0.0.0:9999`,
    /// `seed001-stream:stream=cam=0.0.0.0:1998`. Profiles: seed000-image, seed000-chat,
    /// seed001-stream, seed002-control, seed003-batch, seed004-stm32 (README: "Coming from a
    /// hand-written socket server").
    #[arg(
        long,
        value_name = "PROFILE=ADDR",
        value_parser = framewire_server::parse_legacy_flag,
        help_heading = "Doors for simple devices"
    )]
    legacy: Vec<(framewire_server::LegacyDoor, String)>,
    /// On a hub with tokens: the token name whose permissions apply to the legacy doors.
    #[arg(long, value_name = "NAME", help_heading = "Doors for simple devices")]
    legacy_as: Option<String>,
    /// Accept legacy-door connections only from these addresses (repeatable).
    #[arg(long, value_name = "CIDR", help_heading = "Doors for simple devices")]
    legacy_allow: Vec<framewire_server::Cidr>,
}

/// Runs the hub until a signal asks it to stop.
pub async fn run(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    let mut config = Config::new(&args.data);
    args.limits.apply(&mut config)?;
    // Clients send whatever token they are given; the hub refuses to require one that is
    // guessable, as it does in a tokens file.
    if global
        .tokens
        .iter()
        .any(|t| t.len() < framewire_server::auth::MIN_TOKEN_LEN)
    {
        return Err(crate::cmd::UsageError(format!(
            "--token (or FRAMEWIRE_TOKEN) for `serve` must be at least {} characters, so that it \
             cannot be guessed (for example: `openssl rand -hex 16`)",
            framewire_server::auth::MIN_TOKEN_LEN
        ))
        .into());
    }
    config.allowed_hosts = args.allowed_hosts.clone();
    config.hooks = framewire_server::hooks::Hooks {
        on_upload: args.doors.on_upload.clone(),
        on_message: args.doors.on_message.clone(),
        concurrency: args.doors.hook_concurrency,
        time_limit: std::time::Duration::from_secs_f64(args.doors.hook_timeout.max(0.001)),
    };
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
    // Before anything can be announced: a signal that arrives once we say "listening" must
    // shut down gracefully, not kill the process.
    let mut sigint = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    let mut sigterm = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut hub = HubBuilder::new(config).listen(&args.listen);
    if let Some(id) = args.tls.identity(&args.data)? {
        hub = hub.tls(id);
    }
    if let Some(a) = &args.tls.plain_listen {
        hub = hub.plain(a);
    }
    if args.http != "off" {
        hub = hub.http(&args.http);
    }
    let d = &args.doors;
    if let Some(a) = &d.raw_listen {
        let policy = DoorPolicy {
            act_as: d.raw_as.clone(),
            allow: d.raw_allow.clone(),
        };
        hub = hub.raw(a, policy);
    }
    if let Some(a) = &d.udp {
        let policy = DoorPolicy {
            act_as: d.udp_as.clone(),
            allow: d.udp_allow.clone(),
        };
        hub = hub.udp(a, policy);
    }
    if let Some(url) = &d.mqtt {
        hub = hub.mqtt(framewire_server::doors::mqtt::MqttSettings {
            url: url.clone(),
            prefix: d.mqtt_prefix.clone(),
            policy: DoorPolicy {
                act_as: d.mqtt_as.clone(),
                allow: Vec::new(),
            },
        });
    }
    for (door, a) in &d.legacy {
        hub = hub.legacy(a, door.clone());
    }
    if !d.legacy.is_empty() {
        hub = hub.legacy_policy(DoorPolicy {
            act_as: d.legacy_as.clone(),
            allow: d.legacy_allow.clone(),
        });
    }
    let hub = start(hub, &args.data).await?;
    let which = tokio::select! {
        _ = sigint.recv() => "SIGINT",
        _ = sigterm.recv() => "SIGTERM",
    };
    tracing::info!("{which}: shutting down");
    stop(hub).await?;
    Ok(ExitCode::SUCCESS)
}

/// Starts the hub and prints its banner (every door and who may use it).
///
/// # Errors
/// The data folder cannot be opened, an address cannot be bound, or a door's policy cannot work.
pub async fn start(hub: HubBuilder, data: &std::path::Path) -> anyhow::Result<RunningHub> {
    let hub = hub.start().await.map_err(|e| match e {
        ServerError::DataDir(..) | ServerError::Index(_) => {
            anyhow::Error::new(e).context(format!("cannot open the data folder {}", data.display()))
        }
        other => anyhow::Error::new(other),
    })?;
    for line in hub.banner() {
        eprintln!("{line}");
    }
    Ok(hub)
}

/// Shuts the hub down gracefully (see `docs/ARCHITECTURE.md`) and prints `framewire hub stopped`.
///
/// # Errors
/// A hub task failed while stopping.
pub async fn stop(hub: RunningHub) -> anyhow::Result<()> {
    hub.shutdown().await.context("hub failed while stopping")?;
    eprintln!("framewire hub stopped");
    Ok(())
}

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
