//! Test harness shared by the hub's integration tests: the test kit's in-process hub with these
//! tests' settings, and a client that speaks raw messages.
#![allow(dead_code, unused_imports)] // each test file uses a part of it

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use framewire_proto::*;
pub use framewire_testkit::data::list_tree as tree;
pub use framewire_testkit::{Config, TestHub, TestHubBuilder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const T: Duration = Duration::from_secs(10);

/// The kit's hub as these tests want it: a 500 ms handshake timeout, so that tests of clients that
/// never say hello are quick.
pub fn hub_builder() -> TestHubBuilder {
    TestHub::builder().config(|c| c.handshake_timeout = Duration::from_millis(500))
}

/// A hub with these tests' settings and a temporary data folder.
pub async fn start_hub() -> TestHub {
    hub_builder().start().await
}

/// A hub with these tests' settings changed by `tweak`, and a temporary data folder.
pub async fn start_hub_with(tweak: impl FnOnce(&mut Config)) -> TestHub {
    hub_builder().config(tweak).start().await
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
        match Raw::greet(addr, "raw", "").await {
            (r, Message::Welcome(w)) => (r, w),
            (_, other) => panic!("expected Welcome, got {other:?}"),
        }
    }

    /// Connects and says Hello with `name` and `token`: the hub's first answer (Welcome, or the
    /// Error that refuses the connection).
    pub async fn greet(addr: SocketAddr, name: &str, token: &str) -> (Raw, Message) {
        let mut r = Raw::connect(addr).await;
        r.send(Message::Hello(Hello {
            version: VERSION,
            name: name.into(),
            token: token.into(),
        }))
        .await;
        let answer = r.recv().await;
        (r, answer)
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

/// Reads one unmasked server→client WebSocket frame's text (small frames only).
pub async fn ws_text(s: &mut tokio::net::TcpStream) -> String {
    let mut h = [0u8; 2];
    s.read_exact(&mut h).await.unwrap();
    assert_eq!(h[0] & 0x0f, 1, "text frame");
    let len = match h[1] & 0x7f {
        126 => {
            let mut l = [0u8; 2];
            s.read_exact(&mut l).await.unwrap();
            u16::from_be_bytes(l) as usize
        }
        127 => {
            let mut l = [0u8; 8];
            s.read_exact(&mut l).await.unwrap();
            u64::from_be_bytes(l) as usize
        }
        n => n as usize,
    };
    let mut b = vec![0u8; len];
    s.read_exact(&mut b).await.unwrap();
    String::from_utf8(b).unwrap()
}
