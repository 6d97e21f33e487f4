//! Legacy doors: the raw door speaking the conversation of a hand-written socket server, so that
//! the clients people wrote for one (and often cannot change: a microcontroller's firmware) work
//! against the hub unchanged. Each profile plays one seed server's side exactly and maps what
//! arrives onto the hub's own concepts: stored files (through the upload pipeline), live streams,
//! device commands and message events.
//!
//! One file per protocol: [`seed000`] (image + timestamp, echo chat), [`seed001`] (camera frames
//! with the 80 ms rule), [`seed002`] (a control process's commands), [`seed003`] (batch upload),
//! [`seed004`] (STM32 commands and files). Each has a sans-IO part (bytes and `now` in, what to do
//! out) tested without sockets, and a small async driver over [`Conn`].
//!
//! Like the raw door, a legacy door cannot present a token: on a hub with tokens it acts as the
//! identity it was bound to (`--legacy-as NAME`), only for the addresses allowed
//! (`--legacy-allow CIDR`), and goes through the same gate (connection budgets, deadlines).

mod base64;
mod seed000;
mod seed001;
mod seed002;
mod seed003;
mod seed004;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use framewire_proto::{ErrorCode, RemotePath, UtcTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::gate::DoorAccess;
use crate::store::Refusal;
use crate::upload::{Admitted, Request, Stored, Upload, Uploader};
use crate::Hub;

/// A seed server whose side of the conversation a legacy door plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// Seed 000: greets, takes base64 + `timestamp<secs>` until EOF, stores the image.
    Seed000Image,
    /// Seed 000's echo chat: answers each read, the text becomes a message event.
    Seed000Chat,
    /// Seed 001: a camera's JPEG frames (32-byte lengths, the server's time echoed, the 80 ms
    /// rule), published as a live stream.
    Seed001Stream,
    /// Seed 002: a control process's texts (`c`, `exit`, …) become commands to a device.
    Seed002Control,
    /// Seed 003: 16-digit length, 32-character name, base64: a file stored under its name.
    Seed003Batch,
    /// Seed 004: an STM32's `begin to send`/`f` files and `c` commands.
    Seed004Stm32,
}

impl Profile {
    /// Every profile, in order.
    pub const ALL: [Profile; 6] = [
        Profile::Seed000Image,
        Profile::Seed000Chat,
        Profile::Seed001Stream,
        Profile::Seed002Control,
        Profile::Seed003Batch,
        Profile::Seed004Stm32,
    ];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Seed000Image => "seed000-image",
            Profile::Seed000Chat => "seed000-chat",
            Profile::Seed001Stream => "seed001-stream",
            Profile::Seed002Control => "seed002-control",
            Profile::Seed003Batch => "seed003-batch",
            Profile::Seed004Stm32 => "seed004-stm32",
        }
    }

    /// The options the profile takes, with their defaults (`None`: unset unless given).
    fn options(self) -> &'static [(&'static str, Option<&'static str>)] {
        match self {
            Profile::Seed000Image => &[("dir", Some("seed000"))],
            Profile::Seed000Chat => &[],
            Profile::Seed001Stream => &[("stream", Some("seed001"))],
            Profile::Seed002Control => &[
                ("device", Some("cam")),
                ("c", Some("capture")),
                ("exit", Some("stop")),
            ],
            Profile::Seed003Batch => &[("dir", Some("seed003"))],
            Profile::Seed004Stm32 => &[
                ("dir", Some("seed004")),
                ("greeting", Some("hello client")),
                ("device", None),
            ],
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A legacy door's profile and options: `seed001-stream:stream=cam`,
/// `seed002-control:device=cam,exit=exit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyDoor {
    profile: Profile,
    options: BTreeMap<String, String>,
}

impl LegacyDoor {
    /// The door of `profile` with its default options.
    pub fn new(profile: Profile) -> LegacyDoor {
        LegacyDoor {
            profile,
            options: BTreeMap::new(),
        }
    }

    /// Sets option `key` (one the profile takes).
    ///
    /// # Errors
    /// The profile has no such option, or the value is not allowed for it.
    pub fn with(mut self, key: &str, value: &str) -> Result<LegacyDoor, String> {
        let known = self.profile.options();
        if !known.iter().any(|(k, _)| *k == key) {
            let names: Vec<&str> = known.iter().map(|(k, _)| *k).collect();
            return Err(format!(
                "{} has no option {key:?} (options: {})",
                self.profile,
                if names.is_empty() {
                    "none".to_owned()
                } else {
                    names.join(", ")
                }
            ));
        }
        if key == "dir" {
            RemotePath::parse(value)
                .map_err(|e| format!("{}: dir={value:?} is not a valid path: {e}", self.profile))?;
        }
        if value.is_empty() && key != "greeting" {
            return Err(format!("{}: {key}= needs a value", self.profile));
        }
        self.options.insert(key.to_owned(), value.to_owned());
        Ok(self)
    }

    /// The profile.
    pub fn profile(&self) -> Profile {
        self.profile
    }

    /// Option `key`, or its default.
    fn option(&self, key: &str) -> Option<&str> {
        self.options.get(key).map(String::as_str).or_else(|| {
            self.profile
                .options()
                .iter()
                .find(|(k, _)| *k == key)
                .and_then(|(_, d)| *d)
        })
    }

    /// The profile and its options in words, for the banner.
    pub fn describe(&self) -> String {
        let opts: Vec<String> = self
            .profile
            .options()
            .iter()
            .filter_map(|(k, _)| self.option(k).map(|v| format!("{k}={v}")))
            .collect();
        if opts.is_empty() {
            self.profile.name().to_owned()
        } else {
            format!("{} ({})", self.profile, opts.join(", "))
        }
    }
}

impl FromStr for LegacyDoor {
    type Err = String;

    /// `PROFILE[:KEY=VALUE[,KEY=VALUE…]]`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, opts) = match s.split_once(':') {
            Some((n, o)) => (n, Some(o)),
            None => (s, None),
        };
        let profile = Profile::ALL
            .into_iter()
            .find(|p| p.name() == name)
            .ok_or_else(|| {
                let names: Vec<&str> = Profile::ALL.iter().map(|p| p.name()).collect();
                format!(
                    "unknown legacy profile {name:?} (profiles: {})",
                    names.join(", ")
                )
            })?;
        let mut door = LegacyDoor::new(profile);
        for kv in opts.into_iter().flat_map(|o| o.split(',')) {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| format!("{profile}: option {kv:?} is not KEY=VALUE"))?;
            door = door.with(k, v)?;
        }
        Ok(door)
    }
}

/// Parses `--legacy PROFILE[:KEY=VALUE[,KEY=VALUE…]]=ADDR` into the door and its address (after
/// the last `=`).
///
/// # Errors
/// No address, an unknown profile or option.
pub fn parse_legacy_flag(s: &str) -> Result<(LegacyDoor, String), String> {
    let (spec, addr) = s.rsplit_once('=').ok_or_else(|| {
        format!("{s:?}: expected PROFILE[:KEY=VALUE,…]=ADDR, e.g. seed003-batch=0.0.0.0:9999")
    })?;
    if addr.is_empty() || !addr.contains(':') {
        return Err(format!(
            "{s:?}: {addr:?} is not an address to listen on (HOST:PORT)"
        ));
    }
    Ok((spec.parse()?, addr.to_owned()))
}

/// Accepts connections for `door` until the hub stops.
pub(crate) async fn accept(
    listener: TcpListener,
    door: LegacyDoor,
    access: DoorAccess,
    hub: Arc<Hub>,
) {
    let (door, access) = (Arc::new(door), Arc::new(access));
    let name = door.profile.name();
    // The seeds' clients do not read a refusal; it is said anyway, for people using nc.
    let refuse = |mut stream: TcpStream, why: String| async move {
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            stream
                .write_all(format!("refused: {why}\n").as_bytes())
                .await
        })
        .await;
    };
    while let Some((stream, peer, admission)) = super::admitted(&listener, &hub, name, refuse).await
    {
        if !access.allows(peer.ip()) {
            tracing::warn!(%peer, door = name, "legacy connection refused: address not allowed");
            tokio::spawn(refuse(
                stream,
                format!("this address may not use the {name} door"),
            ));
            continue;
        }
        let c = Conn {
            stream,
            peer,
            who: Uploader {
                sender: access.sender(name, peer.ip()),
                perms: access.identity.perms,
            },
            access: Arc::clone(&access),
            hub: Arc::clone(&hub),
            door: Arc::clone(&door),
        };
        hub.gate.tracker.spawn(async move {
            let _admission = admission;
            let profile = c.door.profile;
            let (peer, sender) = (c.peer, c.who.sender.clone());
            tracing::debug!(%peer, door = profile.name(), "legacy connection");
            let ended = match profile {
                Profile::Seed000Image => seed000::image(c).await,
                Profile::Seed000Chat => seed000::chat(c).await,
                Profile::Seed001Stream => seed001::serve(c).await,
                Profile::Seed002Control => seed002::serve(c).await,
                Profile::Seed003Batch => seed003::serve(c).await,
                Profile::Seed004Stm32 => seed004::serve(c).await,
            };
            if let Err(why) = ended {
                tracing::info!(from = %sender, door = profile.name(), reason = %why, "legacy connection ended");
            }
        });
    }
}

/// Why a legacy conversation ended early.
#[derive(Debug)]
pub(crate) enum Ended {
    /// The client closed its side before the conversation was complete.
    Eof,
    /// Reset, or the hub is shutting down.
    Gone,
    /// Silent past `raw_idle_timeout`.
    Silent,
    /// The client sent something the seed server could not have understood either.
    Malformed(String),
    /// A limit or permission refused what arrived.
    Refused(Refusal),
}

impl fmt::Display for Ended {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ended::Eof => f.write_str("closed before the conversation was complete"),
            Ended::Gone => f.write_str("connection lost"),
            Ended::Silent => f.write_str("went silent"),
            Ended::Malformed(why) => write!(f, "malformed: {why}"),
            Ended::Refused(r) => write!(f, "refused: {}", r.reason),
        }
    }
}

/// One legacy connection: the socket, who it acts as, and the hub.
pub(crate) struct Conn {
    stream: TcpStream,
    peer: SocketAddr,
    who: Uploader,
    access: Arc<DoorAccess>,
    hub: Arc<Hub>,
    door: Arc<LegacyDoor>,
}

/// Socket reads go into at least this much free buffer.
const READ_CHUNK: usize = 64 * 1024;

impl Conn {
    /// The sender name of what arrives (`NAME@ip`, or `seedNNN-…@ip`).
    fn sender(&self) -> &str {
        &self.who.sender
    }

    /// Option `key` of the door, or its default.
    fn option(&self, key: &str) -> Option<&str> {
        self.door.option(key)
    }

    /// Writes `bytes` (bounded by the hub's write timeout).
    async fn say(&mut self, bytes: &[u8]) -> Result<(), Ended> {
        match tokio::time::timeout(self.hub.config.write_timeout, self.stream.write_all(bytes))
            .await
        {
            Ok(Ok(())) => Ok(()),
            _ => Err(Ended::Gone),
        }
    }

    /// Acknowledges the client's segments at once instead of after the delayed-ACK timer (up to
    /// 40 ms on Linux). A client that writes a message in several small sends with Nagle on
    /// (seed 001: length, JPEG, time) otherwise waits for each ACK, and the 80 ms rule fails on a
    /// quiet local link. Linux resets the flag by itself, so it is set before each read.
    fn quick_ack(&self) {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            let one: libc::c_int = 1;
            // SAFETY: a valid socket descriptor and a c_int option of the right size.
            unsafe {
                libc::setsockopt(
                    self.stream.as_raw_fd(),
                    libc::IPPROTO_TCP,
                    libc::TCP_QUICKACK,
                    (&one as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                );
            }
        }
    }

    /// Appends what the client sends next to `buf`: `Ok(0)` at EOF.
    async fn read_some(&mut self, buf: &mut BytesMut) -> Result<usize, Ended> {
        self.quick_ack();
        if buf.capacity() - buf.len() < READ_CHUNK / 4 {
            buf.reserve(READ_CHUNK);
        }
        let idle = self.hub.config.raw_idle_timeout;
        tokio::select! {
            r = tokio::time::timeout(idle, self.stream.read_buf(buf)) => match r {
                Err(_) => Err(Ended::Silent),
                Ok(Err(_)) => Err(Ended::Gone),
                Ok(Ok(n)) => Ok(n),
            },
            _ = self.hub.gate.abort.cancelled() => Err(Ended::Gone),
        }
    }

    /// One read, as the seed servers' `recv(1024)`: what the client sent in one go. `None` at EOF.
    async fn recv(&mut self, max: usize) -> Result<Option<Bytes>, Ended> {
        let mut buf = BytesMut::with_capacity(max);
        let idle = self.hub.config.raw_idle_timeout;
        let n = tokio::select! {
            r = tokio::time::timeout(idle, self.stream.read_buf(&mut buf)) => match r {
                Err(_) => return Err(Ended::Silent),
                Ok(Err(_)) => return Err(Ended::Gone),
                Ok(Ok(n)) => n,
            },
            _ = self.hub.gate.abort.cancelled() => return Err(Ended::Gone),
        };
        Ok((n > 0).then(|| buf.freeze()))
    }

    /// Everything until the client closes its side, at most `limit` bytes.
    async fn read_to_eof(&mut self, limit: usize) -> Result<Bytes, Ended> {
        let mut buf = BytesMut::new();
        loop {
            if self.read_some(&mut buf).await? == 0 {
                return Ok(buf.freeze());
            }
            if buf.len() > limit {
                return Err(Ended::Refused(Refusal::new(
                    ErrorCode::TooLarge,
                    format!("more than {limit} bytes"),
                )));
            }
        }
    }

    /// Exactly `n` bytes (`buf` may already hold some).
    async fn read_exact(&mut self, buf: &mut BytesMut, n: usize) -> Result<Bytes, Ended> {
        while buf.len() < n {
            if self.read_some(buf).await? == 0 {
                return Err(Ended::Eof);
            }
        }
        Ok(buf.split_to(n).freeze())
    }

    /// Starts an upload to `path` through the pipeline (size known or not).
    async fn begin_upload(&self, path: RemotePath, size: Option<u64>) -> Result<Upload, Ended> {
        let req = Request {
            path,
            size,
            overwrite: false,
            resume: false,
            // Sending the same file again is answered Unchanged, not refused.
            identical_ok: true,
        };
        match self.hub.pipeline.admit(&self.who, req, None).await {
            Ok(Admitted::Upload(u)) => Ok(u),
            Ok(Admitted::Existing(_)) => unreachable!("resume is off"),
            // Already counted by the pipeline.
            Err(r) => Err(Ended::Refused(r)),
        }
    }

    /// Stores `data` at `path`, acknowledged only once durable (as every door).
    async fn store(&self, path: RemotePath, data: Bytes) -> Result<Stored, Ended> {
        let mut u = self.begin_upload(path, Some(data.len() as u64)).await?;
        if !data.is_empty() {
            u.write(data).await.map_err(Ended::Refused)?;
        }
        finish(u).await
    }

    /// The largest decoded file the hub takes, and the base64 text that carries it.
    fn base64_limit(&self) -> usize {
        let max = usize::try_from(self.hub.config.max_file_size).unwrap_or(usize::MAX);
        max.saturating_add(2) / 3 * 4 + 64
    }
}

/// Verifies and commits an upload, waiting until it is durable.
async fn finish(u: Upload) -> Result<Stored, Ended> {
    let path = u.path().clone();
    let stored = u
        .finish(None)
        .await
        .map_err(Ended::Refused)?
        .commit_and_wait()
        .await
        .map_err(Ended::Refused)?;
    tracing::debug!(path = %path, size = stored.size, "legacy upload stored");
    Ok(stored)
}

/// `DIR/<peer ip>/<YYYYMMDD-HHMMSS.micros>-<n>.<ext>` at `time_us` (UTC): unique, sortable, and
/// safe as a remote path, like the raw door's names.
fn dated_path(dir: &str, peer: SocketAddr, time_us: i64, ext: &str) -> RemotePath {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Relaxed);
    let t = UtcTime::from_unix_us(time_us);
    let ip = peer.ip().to_string().replace(':', "-");
    let name = format!(
        "{dir}/{ip}/{:04}{:02}{:02}-{:02}{:02}{:02}.{:06}-{n}.{ext}",
        t.year, t.month, t.day, t.hour, t.minute, t.second, t.micros
    );
    RemotePath::parse(&name).expect("a valid dir and generated name make a valid path")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_flag() {
        let (d, a) = parse_legacy_flag("seed003-batch=127.0.0.1:9999").unwrap();
        assert_eq!(d.profile(), Profile::Seed003Batch);
        assert_eq!(a, "127.0.0.1:9999");
        assert_eq!(d.option("dir"), Some("seed003"));
        let (d, a) = parse_legacy_flag("seed001-stream:stream=cam=[::1]:1998").unwrap();
        assert_eq!(d.option("stream"), Some("cam"));
        assert_eq!(a, "[::1]:1998");
        let (d, _) =
            parse_legacy_flag("seed002-control:device=lab,exit=exit=0.0.0.0:8233").unwrap();
        assert_eq!(d.option("device"), Some("lab"));
        assert_eq!(d.option("exit"), Some("exit"));
        assert_eq!(d.option("c"), Some("capture"));
        assert_eq!(
            d.describe(),
            "seed002-control (device=lab, c=capture, exit=exit)"
        );
        let (d, _) = parse_legacy_flag("seed004-stm32=127.0.0.1:9999").unwrap();
        assert_eq!(d.option("device"), None);
        for bad in [
            "seed003-batch",
            "seed009-x=127.0.0.1:1",
            "seed001-stream:name=cam=127.0.0.1:1",
            "seed000-image:dir=../up=127.0.0.1:1",
            "seed001-stream:stream=127.0.0.1:1",
        ] {
            assert!(parse_legacy_flag(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dated_names() {
        let peer: SocketAddr = "10.0.0.7:5000".parse().unwrap();
        let p = dated_path("seed000", peer, 1_709_210_096_789_012, "png");
        assert!(
            p.as_str()
                .starts_with("seed000/10.0.0.7/20240229-123456.789012-"),
            "{p}"
        );
        assert!(p.as_str().ends_with(".png"));
    }
}
