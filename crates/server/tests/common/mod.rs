//! Test harness shared by the hub's integration tests: an in-process hub on 127.0.0.1:0 and a
//! client that speaks raw messages.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use framewire_proto::*;
use framewire_server::{Config, DoorPolicy, HubBuilder, RunningHub};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const T: Duration = Duration::from_secs(10);

pub struct Hub {
    pub addr: SocketAddr,
    pub raw_addr: Option<SocketAddr>,
    pub udp_addr: Option<SocketAddr>,
    pub http_addr: Option<SocketAddr>,
    pub handle: framewire_server::HubHandle,
    pub data: PathBuf,
    running: Option<RunningHub>,
    _dir: tempfile::TempDir,
}

/// The extra doors a test hub opens.
#[derive(Default)]
pub struct Doors {
    pub raw: Option<DoorPolicy>,
    pub udp: Option<DoorPolicy>,
    pub http: bool,
}

impl Hub {
    pub async fn start() -> Hub {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(dir, |_| {}).await
    }

    pub async fn start_in(dir: tempfile::TempDir, tweak: impl FnOnce(&mut Config)) -> Hub {
        Self::start_with(dir, tweak, Doors::default()).await
    }

    pub async fn start_with(
        dir: tempfile::TempDir,
        tweak: impl FnOnce(&mut Config),
        doors: Doors,
    ) -> Hub {
        let data = dir.path().join("data");
        let mut config = Config::new(&data);
        config.handshake_timeout = Duration::from_millis(500);
        tweak(&mut config);
        let mut b = HubBuilder::new(config).listen("127.0.0.1:0");
        if let Some(p) = doors.raw {
            b = b.raw("127.0.0.1:0", p);
        }
        if let Some(p) = doors.udp {
            b = b.udp("127.0.0.1:0", p);
        }
        if doors.http {
            b = b.http("127.0.0.1:0");
        }
        let running = b.start().await.unwrap();
        Hub {
            addr: running.addr(),
            raw_addr: running.raw_addr(),
            udp_addr: running.udp_addr(),
            http_addr: running.http_addr(),
            handle: running.handle(),
            data,
            running: Some(running),
            _dir: dir,
        }
    }

    pub async fn stop(mut self) -> tempfile::TempDir {
        tokio::time::timeout(T, self.running.take().unwrap().shutdown())
            .await
            .expect("hub stops in time")
            .unwrap();
        self._dir
    }

    pub fn files(&self) -> PathBuf {
        self.data.join("files")
    }
}

/// A client that speaks raw messages.
pub struct Raw {
    pub s: TcpStream,
    pub buf: BytesMut,
}

impl Raw {
    pub async fn connect(addr: SocketAddr) -> Raw {
        let s = TcpStream::connect(addr).await.unwrap();
        Raw {
            s,
            buf: BytesMut::new(),
        }
    }

    pub async fn hello(addr: SocketAddr) -> (Raw, Welcome) {
        let mut r = Raw::connect(addr).await;
        r.send(Message::Hello(Hello {
            version: VERSION,
            name: "raw".into(),
            token: String::new(),
        }))
        .await;
        match r.recv().await {
            Message::Welcome(w) => (r, w),
            other => panic!("expected Welcome, got {other:?}"),
        }
    }

    pub async fn send(&mut self, m: Message) {
        self.s.write_all(&m.to_bytes().unwrap()).await.unwrap();
    }

    pub async fn send_raw(&mut self, b: &[u8]) {
        self.s.write_all(b).await.unwrap();
    }

    pub async fn try_recv(&mut self) -> Option<Message> {
        tokio::time::timeout(T, async {
            loop {
                if let Some(m) = decode(&mut self.buf, DEFAULT_MAX_PAYLOAD).unwrap() {
                    return Some(m);
                }
                if self.s.read_buf(&mut self.buf).await.unwrap_or(0) == 0 {
                    return None;
                }
            }
        })
        .await
        .expect("hub answers in time")
    }

    pub async fn recv(&mut self) -> Message {
        self.try_recv().await.expect("connection closed")
    }

    /// Offers `content` at `path` and sends it, returning the final answer.
    pub async fn upload(&mut self, id: u32, path: &str, content: &[u8], flags: u8) -> Message {
        self.send(Message::Offer(Offer {
            id,
            flags,
            size: content.len() as u64,
            path: path.into(),
        }))
        .await;
        match self.recv().await {
            Message::Accept(a) => {
                assert_eq!(a.id, id);
                let from = a.offset as usize;
                for c in content[from..].chunks(7000) {
                    self.send(Message::Data(Data {
                        id,
                        bytes: Bytes::copy_from_slice(c),
                    }))
                    .await;
                }
                self.send(Message::End(End {
                    id,
                    hash: Some(*blake3::hash(content).as_bytes()),
                }))
                .await;
                self.recv().await
            }
            other => other,
        }
    }
}

pub fn assert_stored(m: &Message, status: StoredStatus) {
    match m {
        Message::Stored(s) => assert_eq!(s.status, status, "{m:?}"),
        other => panic!("expected Stored({status:?}), got {other:?}"),
    }
}

pub fn assert_rejected(m: &Message, code: ErrorCode) -> String {
    match m {
        Message::Rejected(r) => {
            assert_eq!(r.code, code, "{m:?}");
            r.reason.clone()
        }
        other => panic!("expected Rejected({code:?}), got {other:?}"),
    }
}

/// Every path below `root`, to check nothing appeared outside the data folder.
pub fn tree(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p.clone());
            }
            out.push(p);
        }
    }
    out.sort();
    out
}
