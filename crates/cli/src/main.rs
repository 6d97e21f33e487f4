//! `framewire`: run a hub, send files and folders to it, list, download, message, ping; publish
//! and watch live streams, command devices, run a self-contained demo.
//!
//! Thin on purpose: the protocol work is in `framewire-client` and `framewire-server`; this binary
//! parses arguments, shows progress, prints results and picks the exit code
//! (0 ok, 1 failure, 2 usage).

mod cmd;
mod format;
mod logging;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use framewire_client::{Client, ConnectOptions, TlsOptions};

/// framewire: move files and live frames between devices and a hub.
#[derive(Debug, Parser)]
#[command(name = "framewire", version, propagate_version = true)]
struct Cli {
    /// Hub address (host:port).
    #[arg(
        long,
        global = true,
        help_heading = "Connection",
        env = "FRAMEWIRE_SERVER",
        default_value = "127.0.0.1:7878",
        value_name = "ADDR"
    )]
    server: String,

    /// This client's name, recorded as the sender of uploaded files [default: the host name].
    /// With `serve` and `demo`, the hub's name; with `stream`, the stream's and device's name.
    #[arg(long, global = true, help_heading = "Connection")]
    name: Option<String>,

    /// Access token: clients present it; `serve` requires it (repeat for several tokens, each
    /// allowed everything; see `serve --tokens` for names and permissions).
    #[arg(
        long = "token",
        global = true,
        help_heading = "Connection",
        env = "FRAMEWIRE_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    tokens: Vec<String>,

    /// Connect with TLS. The hub's certificate is checked against --tls-fingerprint, --tls-ca, or
    /// else this system's CA certificates.
    #[arg(long, global = true, help_heading = "Connection")]
    tls: bool,

    /// Accept exactly the hub certificate with this SHA-256 (as `serve` prints it: AB:CD:... or
    /// plain hex). Implies --tls.
    #[arg(
        long,
        global = true,
        help_heading = "Connection",
        env = "FRAMEWIRE_TLS_FINGERPRINT",
        value_name = "HEX",
        value_parser = framewire_client::parse_fingerprint
    )]
    tls_fingerprint: Option<[u8; 32]>,

    /// Verify the hub's certificate against the CA certificates in FILE (PEM; a self-signed hub's
    /// cert.pem works). Implies --tls.
    #[arg(long, global = true, help_heading = "Connection", value_name = "FILE")]
    tls_ca: Option<PathBuf>,

    /// With --tls-ca: the name the hub's certificate must be for [default: the --server host].
    #[arg(long, global = true, help_heading = "Connection", value_name = "NAME")]
    tls_server_name: Option<String>,

    /// Print only results and errors (no progress, no summaries).
    #[arg(short, long, global = true)]
    quiet: bool,

    /// More log output (-v info, -vv debug, -vvv trace); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a hub: store uploaded files under --data and serve clients on --listen.
    Serve(Box<cmd::serve::Args>),
    /// Send files and folders to the hub (folders recursively, named like `scp -r`).
    Send(cmd::send::Args),
    /// List files stored on the hub.
    Ls(cmd::ls::Args),
    /// Download a stored file, or a folder with -r (verified with BLAKE3).
    Get(cmd::get::Args),
    /// Delete stored files (`--prefix` for a whole folder).
    Rm(cmd::rm::Args),
    /// Send a text message; prints the hub's answer.
    Msg(cmd::msg::Args),
    /// Follow the hub's events: one line per file stored, text, device, stream, command.
    Events(cmd::events::Args),
    /// Measure the round trip to the hub and the offset between its clock and ours.
    Ping(cmd::ping::Args),
    /// Publish a live stream (camera, folder, MJPEG, test pattern) and answer commands as a device.
    Stream(cmd::stream::Args),
    /// Receive a live stream: save frames, pipe them as MJPEG to a player, or show figures.
    Watch(cmd::watch::Args),
    /// Send a command to a device and print its answer.
    Cmd(cmd::command::Args),
    /// Run a hub with its dashboard and two synthetic cameras, all in this process.
    Demo(cmd::demo::Args),
}

/// The options every client command shares.
pub struct Global {
    server: String,
    name: String,
    /// `--name` as given (the hub's name for `serve`).
    explicit_name: Option<String>,
    token: String,
    /// Every `--token` given (a hub requires them all as valid tokens).
    tokens: Vec<String>,
    quiet: bool,
    /// TLS for client commands (`None`: plain TCP).
    tls: Option<TlsOptions>,
    /// `--tls` was given (meaningless for `serve`, which is told so).
    tls_flag: bool,
}

impl Global {
    /// The shared connection options.
    fn connect_options(&self) -> ConnectOptions {
        ConnectOptions {
            name: self.name.clone(),
            token: self.token.clone(),
            connect_timeout: Duration::from_secs(5),
            handshake_timeout: Duration::from_secs(10),
            io_timeout: Duration::from_secs(30),
            tls: self.tls.clone(),
        }
    }

    /// Connects to the hub with the shared options.
    async fn connect(&self) -> anyhow::Result<Client> {
        Ok(Client::connect(&self.server, self.connect_options()).await?)
    }
}

/// glibc's allocator returns freed memory to the kernel eagerly; a hub that allocates and frees
/// many 100 KiB–1 MiB buffers per second then spends its time in page faults (measured: 3–5× more
/// faults, ~18% more CPU for 3,000 small files). Keep freed memory for reuse instead, up to 64 MiB
/// at the top of the heap; buffers of 4 MiB or more (large message bodies, up to 16 MiB) are
/// mapped on their own and returned when freed, so that the memory budget (`--max-memory`) bounds
/// the process's resident memory too.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_allocator() {
    // SAFETY: mallopt only sets allocator parameters; called once, before any other thread runs.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 64 << 20);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_allocator() {}

fn main() -> ExitCode {
    tune_allocator();
    // Exactly one rustls crypto provider, chosen before anything uses TLS.
    framewire_server::tls::install_crypto_provider();
    let cli = Cli::parse();
    let serving = matches!(cli.command, Command::Serve(_) | Command::Demo(_));
    let progress = logging::init(cli.verbose, cli.quiet, serving);
    let global = Global {
        server: cli.server,
        name: cli.name.clone().unwrap_or_else(default_name),
        explicit_name: cli.name,
        token: cli.tokens.last().cloned().unwrap_or_default(),
        tokens: cli.tokens,
        quiet: cli.quiet,
        tls: (cli.tls
            || cli.tls_fingerprint.is_some()
            || cli.tls_ca.is_some()
            || cli.tls_server_name.is_some())
        .then_some(TlsOptions {
            ca: cli.tls_ca,
            fingerprint: cli.tls_fingerprint,
            server_name: cli.tls_server_name,
        }),
        tls_flag: cli.tls,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(a) => cmd::serve::run(&global, *a).await,
            Command::Send(a) => cmd::send::run(&global, a, progress).await,
            Command::Ls(a) => cmd::ls::run(&global, a).await,
            Command::Get(a) => cmd::get::run(&global, a, progress).await,
            Command::Rm(a) => cmd::rm::run(&global, a).await,
            Command::Msg(a) => cmd::msg::run(&global, a).await,
            Command::Events(a) => cmd::events::run(&global, a).await,
            Command::Ping(a) => cmd::ping::run(&global, a).await,
            Command::Stream(a) => cmd::stream::run(&global, a).await,
            Command::Watch(a) => cmd::watch::run(&global, a).await,
            Command::Cmd(a) => cmd::command::run(&global, a).await,
            Command::Demo(a) => cmd::demo::run(&global, a).await,
        }
    });
    // Do not wait for stray blocking tasks (a file read the hub no longer wants, say).
    runtime.shutdown_timeout(Duration::from_millis(100));
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            if e.downcast_ref::<cmd::UsageError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// The host name, or `framewire-cli` if it cannot be read.
fn default_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "framewire-cli".into())
}
