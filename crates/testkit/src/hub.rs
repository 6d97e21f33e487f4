//! [`TestHub`]: a real hub, in-process, on 127.0.0.1.
//!
//! Every test that needs a hub starts it here, so that how a hub is assembled
//! (`framewire_server::HubBuilder`) is written down once.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use framewire_server::tls::TlsIdentity;
use framewire_server::{Config, DoorPolicy, HubBuilder, HubHandle, Listener, RunningHub};
use tempfile::TempDir;
use tokio::net::TcpListener;

/// Longest a hub may take to open its data folder and start listening, or to stop.
pub const HUB_WAIT: Duration = Duration::from_secs(30);

/// A hub serving on 127.0.0.1 inside the test process, with its data folder.
///
/// Start one with [`TestHub::start`], [`TestHub::start_with`] or [`TestHub::builder`]; stop it
/// with [`TestHub::stop`], which waits (bounded by [`HUB_WAIT`]) until it has shut down cleanly.
/// Dropped without `stop`, it is told to shut down and its temporary folder is removed.
pub struct TestHub {
    /// The native port: plain TCP, or TLS for a hub built with [`TestHubBuilder::tls`].
    pub addr: SocketAddr,
    /// The plain TCP port beside the TLS one ([`TestHubBuilder::plain_listener`]).
    pub plain_addr: Option<SocketAddr>,
    /// The HTTP (HTTPS with TLS) door ([`TestHubBuilder::http`]).
    pub http_addr: Option<SocketAddr>,
    /// The raw TCP door ([`TestHubBuilder::raw`]).
    pub raw_addr: Option<SocketAddr>,
    /// The UDP door ([`TestHubBuilder::udp`]).
    pub udp_addr: Option<SocketAddr>,
    /// The hub's live state (clients, streams, devices, store, stats).
    pub handle: HubHandle,
    /// The data folder (`files/`, `spool/`, `index.sqlite`).
    pub data: PathBuf,
    tls: Option<TlsIdentity>,
    config: Config,
    doors: Doors,
    running: Option<RunningHub>,
    /// The temporary folder holding `data` when the caller did not choose one.
    root: Option<TempDir>,
}

impl TestHub {
    /// A hub with the default settings, its data in a new temporary folder.
    pub async fn start() -> TestHub {
        TestHub::builder().start().await
    }

    /// A hub whose settings `tweak` changes, its data in a new temporary folder.
    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> TestHub {
        TestHub::builder().config(tweak).start().await
    }

    /// Chooses the data folder, the address, TLS and settings before starting.
    pub fn builder() -> TestHubBuilder {
        TestHubBuilder {
            data: None,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            plain_listen: None,
            tls: false,
            config: Config::new(PathBuf::new()),
            doors: Doors::default(),
        }
    }

    /// The folder stored files land in: `data/files`.
    pub fn files(&self) -> PathBuf {
        self.data.join("files")
    }

    /// The settings the hub runs with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The hub's TLS certificate and key.
    ///
    /// # Panics
    /// If the hub was started without TLS.
    pub fn tls(&self) -> &TlsIdentity {
        self.tls
            .as_ref()
            .expect("the hub was started without TLS (TestHubBuilder::tls)")
    }

    /// Whether the hub is still serving (not stopped).
    pub fn is_serving(&self) -> bool {
        self.running.is_some()
    }

    /// The start-up banner the hub would print.
    pub fn banner(&self) -> &[String] {
        self.running.as_ref().map_or(&[], |r| r.banner())
    }

    /// Stops the hub: no new connections, open ones finish what they committed to, the store is
    /// closed. A temporary data folder is removed afterwards.
    ///
    /// # Panics
    /// If the hub does not stop within [`HUB_WAIT`] or ends with an error.
    pub async fn stop(mut self) {
        self.shut_down().await;
    }

    /// Stops the hub and starts a new one on the same data folder, address(es), settings and TLS
    /// certificate, as after a restart of the real hub.
    ///
    /// # Panics
    /// As [`TestHub::stop`] and [`TestHubBuilder::start`].
    pub async fn restart(mut self) -> TestHub {
        self.shut_down().await;
        let builder = TestHubBuilder {
            data: Some(self.data.clone()),
            listen: self.addr,
            plain_listen: self.plain_addr,
            tls: self.tls.is_some(),
            config: self.config.clone(),
            doors: self.doors.clone(),
        };
        let mut hub = builder.start().await;
        hub.root = self.root.take();
        hub
    }

    async fn shut_down(&mut self) {
        if let Some(running) = self.running.take() {
            match tokio::time::timeout(HUB_WAIT, running.shutdown()).await {
                Err(_) => panic!("the hub did not stop within {HUB_WAIT:?}"),
                Ok(Err(e)) => panic!("the hub ended with an error: {e}"),
                Ok(Ok(())) => {}
            }
        }
    }
}

impl std::fmt::Debug for TestHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestHub")
            .field("addr", &self.addr)
            .field("plain_addr", &self.plain_addr)
            .field("data", &self.data)
            .field("tls", &self.tls.is_some())
            .field("serving", &self.is_serving())
            .finish_non_exhaustive()
    }
}

impl Drop for TestHub {
    fn drop(&mut self) {
        // Not stopped by the test (it failed, or did not care): shut down in the background if a
        // runtime is still there (dropping the running hub closes its ports in any case). The
        // temporary folder goes with `root`.
        if let Some(running) = self.running.take() {
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(running.shutdown());
            }
        }
    }
}

/// The doors besides the native port(s).
#[derive(Debug, Clone, Default)]
struct Doors {
    http: bool,
    raw: Option<DoorPolicy>,
    udp: Option<DoorPolicy>,
}

/// Settings of a [`TestHub`] to start: see [`TestHub::builder`].
#[derive(Debug)]
pub struct TestHubBuilder {
    data: Option<PathBuf>,
    listen: SocketAddr,
    plain_listen: Option<SocketAddr>,
    tls: bool,
    config: Config,
    doors: Doors,
}

impl TestHubBuilder {
    /// Also opens the HTTP door (HTTPS with [`TestHubBuilder::tls`]) on 127.0.0.1:0.
    pub fn http(mut self) -> TestHubBuilder {
        self.doors.http = true;
        self
    }

    /// Also opens the raw TCP door on 127.0.0.1:0 with `policy`.
    pub fn raw(mut self, policy: DoorPolicy) -> TestHubBuilder {
        self.doors.raw = Some(policy);
        self
    }

    /// Also opens the UDP door on 127.0.0.1:0 with `policy`.
    pub fn udp(mut self, policy: DoorPolicy) -> TestHubBuilder {
        self.doors.udp = Some(policy);
        self
    }

    /// Keeps the data in `dir` (created if missing, left in place after the hub stops) instead
    /// of a new temporary folder: to look at it afterwards, or to start another hub on it.
    pub fn data(mut self, dir: impl AsRef<Path>) -> TestHubBuilder {
        self.data = Some(dir.as_ref().to_path_buf());
        self
    }

    /// Listens on `addr` instead of 127.0.0.1:0, to start a hub where an earlier one was.
    pub fn listen(mut self, addr: SocketAddr) -> TestHubBuilder {
        self.listen = addr;
        self
    }

    /// Changes the settings (applied now, on top of `Config::new`'s defaults; the data folder is
    /// set when the hub starts).
    pub fn config(mut self, tweak: impl FnOnce(&mut Config)) -> TestHubBuilder {
        tweak(&mut self.config);
        self
    }

    /// Serves TLS on the native port with a self-signed certificate kept in `DATA/tls/` (the
    /// same one after a restart), as `framewire serve --tls-self-signed` does.
    pub fn tls(mut self) -> TestHubBuilder {
        self.tls = true;
        self
    }

    /// Also serves plain TCP on a second port (127.0.0.1:0), beside the TLS one.
    pub fn plain_listener(mut self) -> TestHubBuilder {
        self.plain_listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
        self
    }

    /// Opens the data folder and starts serving.
    ///
    /// # Panics
    /// If the hub cannot start within [`HUB_WAIT`] (a test cannot go on without it).
    pub async fn start(self) -> TestHub {
        tokio::time::timeout(HUB_WAIT, self.start_now())
            .await
            .unwrap_or_else(|_| panic!("the hub did not start within {HUB_WAIT:?}"))
    }

    async fn start_now(self) -> TestHub {
        let TestHubBuilder {
            data,
            listen,
            plain_listen,
            tls,
            mut config,
            doors,
        } = self;
        let (root, data) = match data {
            Some(data) => (None, data),
            None => {
                let root = tempfile::Builder::new()
                    .prefix("framewire-testhub-")
                    .tempdir()
                    .expect("a temporary folder for the hub");
                let data = root.path().join("data");
                (Some(root), data)
            }
        };
        config.data_dir.clone_from(&data);
        let tls = tls.then(|| {
            TlsIdentity::self_signed(&data)
                .unwrap_or_else(|e| panic!("a self-signed certificate in {}: {e}", data.display()))
        });

        let main = bind(listen).await;
        let addr = main.local_addr().expect("the listener's address");
        let mut b = HubBuilder::new(config.clone()).listener(match &tls {
            Some(identity) => Listener::Tls(main, identity.native_acceptor()),
            None => Listener::Plain(main),
        });
        let mut plain_addr = None;
        if let Some(plain) = plain_listen {
            let l = bind(plain).await;
            plain_addr = Some(l.local_addr().expect("the listener's address"));
            b = b.listener(Listener::Plain(l));
        }
        if doors.http {
            b = b.http("127.0.0.1:0");
            if let Some(id) = &tls {
                // The same certificate, loaded again from the data folder, for HTTPS.
                let again = TlsIdentity::self_signed(&data).expect("the certificate, again");
                debug_assert_eq!(again.fingerprint(), id.fingerprint());
                b = b.tls(again);
            }
        }
        if let Some(p) = &doors.raw {
            b = b.raw("127.0.0.1:0", p.clone());
        }
        if let Some(p) = &doors.udp {
            b = b.udp("127.0.0.1:0", p.clone());
        }
        let running = b
            .start()
            .await
            .unwrap_or_else(|e| panic!("start the hub on {}: {e}", data.display()));
        TestHub {
            addr,
            plain_addr,
            http_addr: running.http_addr(),
            raw_addr: running.raw_addr(),
            udp_addr: running.udp_addr(),
            handle: running.handle(),
            data,
            tls,
            config,
            doors,
            running: Some(running),
            root,
        }
    }
}

/// A listener on `addr`, retried briefly: a port just given up by a stopped hub may still be
/// held for a moment by its last connections.
async fn bind(addr: SocketAddr) -> TcpListener {
    let mut tries = 0;
    loop {
        match TcpListener::bind(addr).await {
            Ok(l) => return l,
            Err(e) if addr.port() != 0 && tries < 50 => {
                tries += 1;
                let _ = e;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("listen on {addr}: {e}"),
        }
    }
}
