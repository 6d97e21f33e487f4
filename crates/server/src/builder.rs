//! Assembling a hub: open the storage, bind every door, start accepting; and taking it down again
//! in order.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::doors::legacy::LegacyDoor;
use crate::gate::{DoorAccess, DoorPolicy, Gate};
use crate::store::{LocalStorage, ReconcileReport, Storage};
use crate::tls::TlsIdentity;
use crate::upload::Pipeline;
use crate::{doors, Config, Hub, HubHandle, ServerError};

/// A socket the hub accepts native clients on, bound by the caller.
pub enum Listener {
    /// Plain TCP.
    Plain(TcpListener),
    /// TLS: each connection's handshake runs in the connection's own task and counts against
    /// `Config::handshake_timeout`. A plaintext client is told, in plaintext, to use TLS.
    Tls(TcpListener, TlsAcceptor),
}

enum Bind {
    Addr(String),
    Bound(TcpListener),
}

impl Bind {
    async fn bind(self, what: &'static str) -> Result<TcpListener, ServerError> {
        match self {
            Bind::Bound(l) => Ok(l),
            Bind::Addr(addr) => TcpListener::bind(&addr)
                .await
                .map_err(|source| ServerError::Bind { what, addr, source }),
        }
    }
}

/// The doors a hub should open, and its settings. [`HubBuilder::start`] opens the data folder,
/// binds everything, and returns the [`RunningHub`].
pub struct HubBuilder {
    config: Config,
    tls: Option<TlsIdentity>,
    native: Vec<Bind>,
    prebound: Vec<Listener>,
    plain: Option<Bind>,
    http: Option<Bind>,
    raw: Option<(Bind, DoorPolicy)>,
    udp: Option<(String, DoorPolicy)>,
    mqtt: Option<doors::mqtt::MqttSettings>,
    legacy: Vec<(Bind, LegacyDoor)>,
    legacy_policy: DoorPolicy,
}

impl HubBuilder {
    /// A hub with `config` and no doors yet.
    pub fn new(config: Config) -> Self {
        HubBuilder {
            config,
            tls: None,
            native: Vec::new(),
            prebound: Vec::new(),
            plain: None,
            http: None,
            raw: None,
            udp: None,
            mqtt: None,
            legacy: Vec::new(),
            legacy_policy: DoorPolicy::default(),
        }
    }

    /// The native (framewire protocol) port; TLS only if [`HubBuilder::tls`] is given.
    pub fn listen(mut self, addr: impl Into<String>) -> Self {
        self.native.push(Bind::Addr(addr.into()));
        self
    }

    /// A native port bound by the caller.
    pub fn listener(mut self, l: Listener) -> Self {
        self.prebound.push(l);
        self
    }

    /// Serve TLS with this certificate on the native port and HTTP.
    pub fn tls(mut self, identity: TlsIdentity) -> Self {
        self.tls = Some(identity);
        self
    }

    /// With TLS: also a plain TCP native port (for microcontrollers that cannot do TLS).
    pub fn plain(mut self, addr: impl Into<String>) -> Self {
        self.plain = Some(Bind::Addr(addr.into()));
        self
    }

    /// The dashboard and HTTP API (HTTPS with TLS).
    pub fn http(mut self, addr: impl Into<String>) -> Self {
        self.http = Some(Bind::Addr(addr.into()));
        self
    }

    /// The dashboard and HTTP API on a listener bound by the caller.
    pub fn http_listener(mut self, l: TcpListener) -> Self {
        self.http = Some(Bind::Bound(l));
        self
    }

    /// The raw TCP door: each connection's bytes become one stored file.
    pub fn raw(mut self, addr: impl Into<String>, policy: DoorPolicy) -> Self {
        self.raw = Some((Bind::Addr(addr.into()), policy));
        self
    }

    /// The UDP door: one datagram is one text message or one small frame.
    pub fn udp(mut self, addr: impl Into<String>, policy: DoorPolicy) -> Self {
        self.udp = Some((addr.into(), policy));
        self
    }

    /// The MQTT door: publish events to a broker and take commands from it.
    pub fn mqtt(mut self, settings: doors::mqtt::MqttSettings) -> Self {
        self.mqtt = Some(settings);
        self
    }

    /// A legacy door: the raw door playing a hand-written server's side of its conversation
    /// (`door`'s profile), so that its clients work unchanged. Repeatable, one address each.
    pub fn legacy(mut self, addr: impl Into<String>, door: LegacyDoor) -> Self {
        self.legacy.push((Bind::Addr(addr.into()), door));
        self
    }

    /// Who the legacy doors act as and who may use them (all of them: `--legacy-as`,
    /// `--legacy-allow`).
    pub fn legacy_policy(mut self, policy: DoorPolicy) -> Self {
        self.legacy_policy = policy;
        self
    }

    /// Opens the data folder (repairing the index from the disk), binds every door and starts
    /// serving.
    ///
    /// # Errors
    /// A door's policy cannot work (a tokenless door on a hub with tokens, unbound), the data
    /// folder cannot be opened, or an address cannot be bound.
    pub async fn start(self) -> Result<RunningHub, ServerError> {
        let HubBuilder {
            config,
            tls,
            native,
            prebound,
            plain,
            http,
            raw,
            udp,
            mqtt,
            legacy,
            legacy_policy,
        } = self;
        let legacy_access = if legacy.is_empty() {
            None
        } else {
            Some(legacy_policy.resolve("legacy", &config.tokens)?)
        };
        let raw_access = match &raw {
            Some((_, p)) => Some(p.resolve("raw", &config.tokens)?),
            None => None,
        };
        let udp_access = match &udp {
            Some((_, p)) => Some(p.resolve("udp", &config.tokens)?),
            None => None,
        };
        let mqtt_access = match &mqtt {
            Some(m) => {
                m.broker().map_err(ServerError::Door)?;
                Some(m.policy.resolve("mqtt", &config.tokens)?)
            }
            None => None,
        };
        let dir = config.data_dir.clone();
        let (storage, reconcile) = tokio::task::spawn_blocking(move || LocalStorage::open(&dir))
            .await
            .map_err(|e| ServerError::Task(e.to_string()))??;
        let storage: Arc<dyn Storage> = Arc::new(storage);
        let gate = Gate::new(&config);
        let stats = Arc::<crate::stats::Stats>::default();
        let events = Arc::<crate::events::EventLog>::default();
        let pipeline = Pipeline::start(
            Arc::clone(&storage),
            &config,
            gate.work.clone(),
            Arc::clone(&stats),
            Arc::clone(&events),
        )
        .map_err(|e| ServerError::DataDir(config.data_dir.clone(), e))?;
        let streams = crate::streams::StreamHub::new(config.max_streams, config.stream_ttl);
        let hub = Arc::new(Hub {
            config,
            storage,
            pipeline,
            gate,
            stats,
            streams,
            devices: Default::default(),
            clients: Default::default(),
            events,
            receivers: Default::default(),
            udp: Default::default(),
            next_conn: Default::default(),
        });

        let mut natives: Vec<Listener> = prebound;
        for b in native {
            let l = b.bind("framewire clients").await?;
            natives.push(match &tls {
                Some(id) => Listener::Tls(l, id.native_acceptor()),
                None => Listener::Plain(l),
            });
        }
        let mut plain_addr = None;
        if let Some(b) = plain {
            let l = b.bind("plain TCP framewire clients").await?;
            plain_addr = Some(local(&l)?);
            natives.push(Listener::Plain(l));
        }
        let http = match http {
            Some(b) => Some(b.bind("HTTP").await?),
            None => None,
        };
        let raw = match raw {
            Some((b, _)) => Some(b.bind("raw uploads").await?),
            None => None,
        };
        let mut legacies = Vec::new();
        for (b, door) in legacy {
            let l = b.bind("a legacy door").await?;
            legacies.push((local(&l)?, l, door));
        }
        let udp = match udp {
            Some((addr, _)) => {
                Some(
                    UdpSocket::bind(&addr)
                        .await
                        .map_err(|source| ServerError::Bind {
                            what: "UDP datagrams",
                            addr,
                            source,
                        })?,
                )
            }
            None => None,
        };

        let addrs = Addrs {
            native: natives
                .iter()
                .map(|l| match l {
                    Listener::Plain(l) | Listener::Tls(l, _) => local(l),
                })
                .collect::<Result<_, _>>()?,
            plain: plain_addr,
            http: http.as_ref().map(local).transpose()?,
            raw: raw.as_ref().map(local).transpose()?,
            udp: udp
                .as_ref()
                .map(|u| u.local_addr().map_err(listen_error))
                .transpose()?,
            legacy: legacies.iter().map(|(a, _, d)| (d.clone(), *a)).collect(),
        };
        let banner = banner(
            &hub,
            &addrs,
            tls.as_ref(),
            raw_access.as_ref(),
            udp_access.as_ref(),
            legacy_access.as_ref(),
        );

        let mut accepting = JoinSet::new();
        for l in natives {
            accepting.spawn(doors::native::accept(l, Arc::clone(&hub)));
        }
        if let Some(l) = http {
            let acceptor = tls.as_ref().map(TlsIdentity::https_acceptor);
            accepting.spawn(doors::http::accept(l, acceptor, Arc::clone(&hub)));
        }
        if let (Some(l), Some(access)) = (raw, raw_access) {
            accepting.spawn(doors::raw::accept(l, access, Arc::clone(&hub)));
        }
        if let Some(access) = legacy_access {
            for (_, l, door) in legacies {
                accepting.spawn(doors::legacy::accept(
                    l,
                    door,
                    access.clone(),
                    Arc::clone(&hub),
                ));
            }
        }
        if let (Some(u), Some(access)) = (udp, udp_access) {
            accepting.spawn(doors::udp::receive(u, access, Arc::clone(&hub)));
        }
        let mut banner = banner;
        if let (Some(m), Some(access)) = (mqtt, mqtt_access) {
            banner.push(format!("mqtt: {} (topics under {}/)", m.url, m.prefix));
            banner.push(format!("access: mqtt: {}", access.describe()));
            accepting.spawn(doors::mqtt::run(m, access, Arc::clone(&hub)));
        }
        if hub.config.hooks.any() {
            accepting.spawn(crate::hooks::run(
                hub.config.hooks.clone(),
                Arc::clone(&hub.events),
                hub.gate.stop.clone(),
            ));
        }
        Ok(RunningHub {
            hub,
            addrs,
            fingerprint: tls.as_ref().map(TlsIdentity::fingerprint),
            banner,
            reconcile,
            accepting,
        })
    }
}

fn local(l: &TcpListener) -> Result<SocketAddr, ServerError> {
    l.local_addr().map_err(listen_error)
}

fn listen_error(e: std::io::Error) -> ServerError {
    ServerError::Bind {
        what: "a door",
        addr: "?".into(),
        source: e,
    }
}

struct Addrs {
    native: Vec<SocketAddr>,
    plain: Option<SocketAddr>,
    http: Option<SocketAddr>,
    raw: Option<SocketAddr>,
    udp: Option<SocketAddr>,
    legacy: Vec<(LegacyDoor, SocketAddr)>,
}

/// A hub serving in the background. It owns every listener and connection task; dropping it
/// closes the ports, [`RunningHub::shutdown`] stops it gracefully.
pub struct RunningHub {
    hub: Arc<Hub>,
    addrs: Addrs,
    fingerprint: Option<[u8; 32]>,
    banner: Vec<String>,
    reconcile: ReconcileReport,
    /// The accept loops; a JoinSet aborts them when dropped, so dropping the hub closes its ports.
    accepting: JoinSet<()>,
}

impl RunningHub {
    /// The first native port's address (the real port, also when 0 was asked for).
    ///
    /// # Panics
    /// If the hub was built without a native port.
    pub fn addr(&self) -> SocketAddr {
        *self
            .addrs
            .native
            .first()
            .expect("this hub was built without a native port")
    }

    /// Every native port's address.
    pub fn native_addrs(&self) -> &[SocketAddr] {
        &self.addrs.native
    }

    /// The plain TCP native port beside a TLS one.
    pub fn plain_addr(&self) -> Option<SocketAddr> {
        self.addrs.plain
    }

    /// The HTTP (or HTTPS) address.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.addrs.http
    }

    /// The raw TCP door's address.
    pub fn raw_addr(&self) -> Option<SocketAddr> {
        self.addrs.raw
    }

    /// The UDP door's address.
    pub fn udp_addr(&self) -> Option<SocketAddr> {
        self.addrs.udp
    }

    /// The legacy doors and their addresses, in the order they were added.
    pub fn legacy_addrs(&self) -> &[(LegacyDoor, SocketAddr)] {
        &self.addrs.legacy
    }

    /// With TLS: the SHA-256 of the hub's certificate, which clients pin.
    pub fn fingerprint(&self) -> Option<[u8; 32]> {
        self.fingerprint
    }

    /// What start-up repair found.
    pub fn reconcile_report(&self) -> &ReconcileReport {
        &self.reconcile
    }

    /// A handle to the hub's live state.
    pub fn handle(&self) -> HubHandle {
        HubHandle(Arc::clone(&self.hub))
    }

    /// The lines to print at start-up: every door's address and who may use it. Scripts read
    /// `framewire hub listening on ADDR`, `dashboard: URL`, `raw uploads: ADDR`, `udp: ADDR`,
    /// `plain TCP (no TLS) clients: ADDR` and `TLS certificate SHA-256: FINGERPRINT`.
    pub fn banner(&self) -> &[String] {
        &self.banner
    }

    /// Shuts down, in order: stop accepting on every door and admitting uploads; let uploads in
    /// flight on every door finish within `Config::shutdown_grace`, then park the unfinished
    /// ones as resumable partials (native and HTTP uploads of known size) and close every
    /// connection, telling native clients `ShuttingDown`; wait for the commits already made; close
    /// the storage last.
    ///
    /// # Errors
    /// Only if a hub task failed.
    pub async fn shutdown(mut self) -> Result<(), ServerError> {
        let hub = &self.hub;
        hub.pipeline.stop_admitting();
        hub.gate.stop.cancel();
        while self.accepting.join_next().await.is_some() {}
        hub.gate.tracker.close();
        let grace = hub.config.shutdown_grace;
        if tokio::time::timeout(grace, hub.gate.tracker.wait())
            .await
            .is_err()
        {
            tracing::info!("grace period over: parking unfinished uploads and closing");
            hub.gate.abort.cancel();
            if tokio::time::timeout(ABORT_GRACE, hub.gate.tracker.wait())
                .await
                .is_err()
            {
                tracing::warn!("some connections did not close in time");
            }
        }
        let pipeline = Arc::clone(&hub.pipeline);
        tokio::task::spawn_blocking(move || pipeline.close())
            .await
            .map_err(|e| ServerError::Task(e.to_string()))
    }
}

/// After the grace period, how long connections have to park their uploads and close.
const ABORT_GRACE: Duration = Duration::from_secs(2);

fn banner(
    hub: &Hub,
    addrs: &Addrs,
    tls: Option<&TlsIdentity>,
    raw: Option<&DoorAccess>,
    udp: Option<&DoorAccess>,
    legacy: Option<&DoorAccess>,
) -> Vec<String> {
    let mut out = Vec::new();
    let tokens = hub.config.tokens.enabled();
    let with_tls = if tls.is_some() { " with TLS" } else { "" };
    if let Some(a) = addrs.native.first() {
        out.push(format!(
            "framewire hub listening on {a}{with_tls} (data: {})",
            hub.config.data_dir.display()
        ));
    }
    for a in addrs.native.iter().skip(1) {
        if Some(*a) != addrs.plain {
            out.push(format!("also listening on {a}"));
        }
    }
    if let Some(id) = tls {
        if id.created {
            out.push(format!(
                "TLS: made a self-signed certificate, kept in {}",
                id.cert_path.display()
            ));
        }
        out.push(format!("TLS certificate SHA-256: {}", id.fingerprint_hex()));
    }
    if let Some(a) = addrs.plain {
        out.push(format!("plain TCP (no TLS) clients: {a}"));
    }
    if let Some(a) = addrs.http {
        let scheme = if tls.is_some() { "https" } else { "http" };
        out.push(format!("dashboard: {scheme}://{a}/"));
    }
    if let Some(a) = addrs.raw {
        out.push(format!("raw uploads: {a}"));
    }
    if let Some(a) = addrs.udp {
        out.push(format!("udp: {a}"));
    }
    for (door, a) in &addrs.legacy {
        out.push(format!("legacy {}: {a}", door.describe()));
    }
    let token_doors = if addrs.http.is_some() {
        "native port and HTTP"
    } else {
        "native port"
    };
    out.push(if tokens {
        format!("access: {token_doors}: a token is required")
    } else {
        format!("access: {token_doors}: open, no token needed")
    });
    if let Some(r) = raw {
        out.push(format!("access: raw uploads: {}", r.describe()));
    }
    if let Some(u) = udp {
        out.push(format!("access: udp: {}", u.describe()));
    }
    if let Some(l) = legacy {
        out.push(format!("access: legacy doors: {}", l.describe()));
    }
    let exposed = addrs
        .native
        .iter()
        .chain(addrs.http.iter())
        .chain(addrs.raw.iter())
        .chain(addrs.udp.iter())
        .chain(addrs.legacy.iter().map(|(_, a)| a))
        .any(|a| !a.ip().is_loopback());
    if !tokens && exposed {
        out.push(
            "WARNING: this hub listens beyond this machine and requires NO token: anyone who can reach it"
                .into(),
        );
        out.push("WARNING: can upload, download, watch and command devices. Start it with --token TOKEN or --tokens FILE.".into());
    }
    out
}
