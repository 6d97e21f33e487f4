//! Hub settings, all with working defaults.

use std::path::PathBuf;
use std::time::Duration;

/// Everything the hub can be told at start-up.
#[derive(Debug, Clone)]
pub struct Config {
    /// Data folder: `files/` (stored files), `spool/` (uploads in progress), `index.sqlite`.
    pub data_dir: PathBuf,
    /// The hub's name, sent in `Welcome`.
    pub hub_name: String,
    /// Largest message payload accepted.
    pub max_payload: u32,
    /// Largest file stored.
    pub max_file_size: u64,
    /// Most bytes the store may hold (0: no limit besides the disk). Uploads that would pass it are
    /// refused with "storage full", like a real full disk.
    pub max_storage: u64,
    /// Offers a client may have outstanding.
    pub max_inflight: u16,
    /// Suggested `Data` chunk size.
    pub chunk_size: u32,
    /// Time a new connection has to complete the handshake.
    pub handshake_timeout: Duration,
    /// A raw-ingest connection that sends nothing for this long is dropped (nothing stored).
    pub raw_idle_timeout: Duration,
    /// Most connections served at once; more are told so and closed.
    pub max_connections: usize,
    /// Most connections from one IP address at once.
    pub max_connections_per_ip: usize,
    /// A connection with no traffic either way for this long is closed (clients ping to stay).
    pub idle_timeout: Duration,
    /// Most subscribers (native and MJPEG) of one stream.
    pub max_subscribers_per_stream: usize,
    /// Access tokens; empty means anyone may connect.
    pub tokens: crate::auth::Tokens,
    /// How long a device has to answer a command.
    pub command_timeout: Duration,
    /// How long shutdown waits for connections to finish before it gives up on them.
    pub shutdown_grace: Duration,
    /// A connection whose socket takes no write for this long (its outgoing queue full, the peer
    /// not reading) is closed.
    pub write_timeout: Duration,
    /// A stream without a publisher is forgotten after this long without a frame.
    pub stream_ttl: Duration,
    /// Most streams at once; a new one past it is refused.
    pub max_streams: usize,
    /// Host names the HTTP side answers to besides `localhost` and IP addresses (a browser reaching
    /// the hub as `http://hub.local:7879` needs `hub.local` here). Any other `Host` header is
    /// refused, so a web page cannot reach the hub through DNS rebinding.
    pub allowed_hosts: Vec<String>,
    /// Bytes of payload the hub may buffer at once, all connections together: message bodies being
    /// read, messages queued for slow peers, live frames kept for subscribers, images being
    /// decoded. Past it, readers wait (and are refused after `write_timeout`).
    pub memory_budget: usize,
    /// An accepted offer whose connection sends no file data for this long is withdrawn (its path
    /// released for others, the client told `Rejected{Timeout}`).
    pub offer_timeout: Duration,
    /// Programs run for each stored file and text message.
    pub hooks: crate::hooks::Hooks,
}

impl Config {
    /// Defaults, storing under `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Config {
            data_dir: data_dir.into(),
            hub_name: "framewire".into(),
            max_payload: framewire_proto::DEFAULT_MAX_PAYLOAD,
            max_file_size: 1 << 40,
            max_storage: 0,
            max_inflight: 256,
            chunk_size: framewire_proto::DEFAULT_CHUNK_SIZE,
            handshake_timeout: Duration::from_secs(10),
            max_connections: 10_000,
            max_connections_per_ip: 1_000,
            idle_timeout: Duration::from_secs(300),
            max_subscribers_per_stream: 100,
            tokens: Default::default(),
            raw_idle_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(3),
            command_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(30),
            stream_ttl: Duration::from_secs(300),
            max_streams: 1_000,
            allowed_hosts: Vec::new(),
            memory_budget: 256 << 20,
            offer_timeout: Duration::from_secs(30),
            hooks: Default::default(),
        }
    }
}
