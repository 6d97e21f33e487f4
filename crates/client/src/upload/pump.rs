//! The file pump: a blocking thread that reads accepted files in order, hashes them while they
//! go out, and hands the upload loop ready-to-write buffers.
//!
//! Each buffer holds one whole `Data` message (12-byte head, then up to one chunk read straight
//! from the file) and, for a file's last chunk, the `End` (or `Cancel`) message right behind it,
//! so a small file costs one socket write. Buffers circulate between the pump and the loop, so
//! the steady state allocates nothing.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::{mpsc as std_mpsc, Arc, Mutex};

use framewire_proto::{encode_data_head, Cancel, End, Message, HEADER_LEN};
use tokio::sync::mpsc;

use crate::error::io_reason;

/// Bytes in front of a chunk's file bytes: header and file id.
pub(crate) const DATA_HEAD_LEN: usize = HEADER_LEN + framewire_proto::DATA_PREFIX_LEN;
/// Room behind a chunk: one probe byte (to notice a file that grew) and the `End` message.
const TRAILER_LEN: usize = 64;
/// Buffers in circulation: enough to read and hash ahead while the socket drains.
const POOL_BUFFERS: usize = 4;

/// Send one accepted file from `offset`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct PumpRequest {
    pub id: u32,
    pub local: PathBuf,
    pub size: u64,
    pub offset: u64,
    pub prefix_hash: [u8; 32],
}

/// How a file's transfer ended, carried by its last buffer.
#[derive(Debug)]
pub(crate) enum PumpEnd {
    /// Every byte went out; the buffer ends with `End` carrying this hash of the whole file.
    Finished([u8; 32]),
    /// The hub's bytes `[0, offset)` differ from ours; the buffer holds only a `Cancel`.
    PrefixMismatch,
    /// The file cannot be sent as offered; the buffer ends with a `Cancel`.
    Failed(String),
    /// The loop gave up on this file; the buffer holds nothing to write.
    Abandoned,
}

/// One buffer to write (`buf[..len]`), from file `id`.
#[derive(Debug)]
pub(crate) struct PumpOut {
    pub id: u32,
    pub buf: Vec<u8>,
    pub len: usize,
    /// File bytes in this buffer.
    pub data: u64,
    /// Set on the file's last buffer.
    pub end: Option<PumpEnd>,
}

/// The loop's ends of the pump's channels.
pub(crate) struct PumpHandle {
    pub requests: std_mpsc::Sender<PumpRequest>,
    pub outputs: mpsc::Receiver<PumpOut>,
    pub free: std_mpsc::Sender<Vec<u8>>,
    /// Ids the loop no longer wants sent (rejected mid-way); the pump stops at the next chunk.
    pub abandoned: Arc<Mutex<HashSet<u32>>>,
    pub thread: tokio::task::JoinHandle<()>,
}

/// Starts the pump on tokio's blocking pool.
pub(crate) fn start(chunk: usize) -> PumpHandle {
    let (req_tx, req_rx) = std_mpsc::channel();
    let (out_tx, out_rx) = mpsc::channel(POOL_BUFFERS);
    let (free_tx, free_rx) = std_mpsc::channel();
    let abandoned = Arc::new(Mutex::new(HashSet::new()));
    let pump = Pump {
        chunk,
        requests: req_rx,
        out: out_tx,
        free: free_rx,
        allocated: 0,
        abandoned: abandoned.clone(),
    };
    let thread = tokio::task::spawn_blocking(move || pump.run());
    PumpHandle {
        requests: req_tx,
        outputs: out_rx,
        free: free_tx,
        abandoned,
        thread,
    }
}

/// The loop went away; stop quietly.
struct Gone;

struct Pump {
    chunk: usize,
    requests: std_mpsc::Receiver<PumpRequest>,
    out: mpsc::Sender<PumpOut>,
    free: std_mpsc::Receiver<Vec<u8>>,
    allocated: usize,
    abandoned: Arc<Mutex<HashSet<u32>>>,
}

impl Pump {
    fn run(mut self) {
        while let Ok(req) = self.requests.recv() {
            if self.send_file(&req).is_err() {
                return;
            }
        }
    }

    fn take_buf(&mut self) -> Result<Vec<u8>, Gone> {
        if let Ok(b) = self.free.try_recv() {
            return Ok(b);
        }
        if self.allocated < POOL_BUFFERS {
            self.allocated += 1;
            return Ok(vec![0; DATA_HEAD_LEN + self.chunk + TRAILER_LEN]);
        }
        self.free.recv().map_err(|_| Gone)
    }

    fn emit(&self, out: PumpOut) -> Result<(), Gone> {
        self.out.blocking_send(out).map_err(|_| Gone)
    }

    fn is_abandoned(&self, id: u32) -> bool {
        self.abandoned.lock().expect("pump lock").remove(&id)
    }

    /// Ends file `id` with nothing to write: the loop no longer wants it.
    fn abandon(&self, id: u32, buf: Vec<u8>) -> Result<(), Gone> {
        self.emit(PumpOut {
            id,
            buf,
            len: 0,
            data: 0,
            end: Some(PumpEnd::Abandoned),
        })
    }

    /// Ends file `id` with a `Cancel` in `buf` (nothing else of `buf` is sent).
    fn cancel(&self, id: u32, mut buf: Vec<u8>, end: PumpEnd) -> Result<(), Gone> {
        let len = put_message(&mut buf, 0, &Message::Cancel(Cancel { id }));
        self.emit(PumpOut {
            id,
            buf,
            len,
            data: 0,
            end: Some(end),
        })
    }

    fn send_file(&mut self, req: &PumpRequest) -> Result<(), Gone> {
        let id = req.id;
        let mut buf = self.take_buf()?;
        if self.is_abandoned(id) {
            return self.abandon(id, buf);
        }
        let mut file = match File::open(&req.local) {
            Ok(f) => f,
            Err(e) => {
                let why = format!("cannot open: {}", io_reason(&e));
                return self.cancel(id, buf, PumpEnd::Failed(why));
            }
        };
        let mut hasher = blake3::Hasher::new();

        // Resume: our bytes [0, offset) must be the hub's. They are needed for the whole-file
        // hash anyway, so this read is not wasted even when they match.
        let mut pos = 0u64;
        while pos < req.offset {
            let want = (req.offset - pos).min(self.chunk as u64) as usize;
            let area = &mut buf[DATA_HEAD_LEN..DATA_HEAD_LEN + want];
            match read_at_least(&mut file, area, want) {
                Ok(n) if n == want => {}
                Ok(n) => {
                    let why = shrank(req.size, pos + n as u64);
                    return self.cancel(id, buf, PumpEnd::Failed(why));
                }
                Err(e) => return self.cancel(id, buf, PumpEnd::Failed(read_failed(&e))),
            }
            hasher.update(&buf[DATA_HEAD_LEN..DATA_HEAD_LEN + want]);
            pos += want as u64;
        }
        if req.offset > 0 && *hasher.finalize().as_bytes() != req.prefix_hash {
            return self.cancel(id, buf, PumpEnd::PrefixMismatch);
        }

        let mut checked_eof = false;
        loop {
            let remaining = req.size - pos;
            let want = remaining.min(self.chunk as u64) as usize;
            let last = want as u64 == remaining;
            if want > 0 {
                if self.is_abandoned(id) {
                    return self.abandon(id, buf);
                }
                // On the last chunk, ask for one byte more than offered: getting it means the
                // file grew since it was offered, at no extra system call.
                let room = if last { want + 1 } else { want };
                let area = &mut buf[DATA_HEAD_LEN..DATA_HEAD_LEN + room];
                match read_at_least(&mut file, area, want) {
                    Ok(n) if n == want => {}
                    Ok(n) if n > want => {
                        return self.cancel(id, buf, PumpEnd::Failed(grew(req.size)));
                    }
                    Ok(n) => {
                        let why = shrank(req.size, pos + n as u64);
                        return self.cancel(id, buf, PumpEnd::Failed(why));
                    }
                    Err(e) => return self.cancel(id, buf, PumpEnd::Failed(read_failed(&e))),
                }
                checked_eof = last;
                let data = &buf[DATA_HEAD_LEN..DATA_HEAD_LEN + want];
                hasher.update(data);
                encode_data_head(id, want as u32, &mut &mut buf[..DATA_HEAD_LEN]);
                pos += want as u64;
            }
            let mut len = DATA_HEAD_LEN + want;
            if want == 0 {
                len = 0;
            }
            if !last {
                self.emit(PumpOut {
                    id,
                    buf,
                    len,
                    data: want as u64,
                    end: None,
                })?;
                buf = self.take_buf()?;
                continue;
            }
            if !checked_eof {
                // Nothing was read at the end (empty file, or resumed at its very end).
                let mut probe = [0u8; 1];
                match read_at_least(&mut file, &mut probe, 1) {
                    Ok(0) => {}
                    Ok(_) => return self.cancel(id, buf, PumpEnd::Failed(grew(req.size))),
                    Err(e) => return self.cancel(id, buf, PumpEnd::Failed(read_failed(&e))),
                }
            }
            let hash = *hasher.finalize().as_bytes();
            let end = Message::End(End {
                id,
                hash: Some(hash),
            });
            len += put_message(&mut buf, len, &end);
            return self.emit(PumpOut {
                id,
                buf,
                len,
                data: want as u64,
                end: Some(PumpEnd::Finished(hash)),
            });
        }
    }
}

/// Encodes a small message into `buf` at `at`; returns its length.
fn put_message(buf: &mut [u8], at: usize, msg: &Message) -> usize {
    let len = HEADER_LEN + msg.payload_len();
    let mut dst = &mut buf[at..at + len];
    msg.encode(&mut dst)
        .expect("End and Cancel have no variable-length fields");
    len
}

/// Reads into `buf` until at least `min` bytes are in or the file ends; returns the count.
fn read_at_least(file: &mut File, buf: &mut [u8], min: usize) -> io::Result<usize> {
    let mut filled = 0;
    while filled < min {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

fn shrank(size: u64, at: u64) -> String {
    format!("file shrank while sending (offered {size} bytes, it ends at {at}); not stored")
}

fn grew(size: u64) -> String {
    format!("file grew while sending (offered {size} bytes); not stored")
}

fn read_failed(e: &io::Error) -> String {
    format!("read error: {}", io_reason(e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use framewire_proto::decode;

    /// Runs one request through a pump and decodes everything it would have written.
    async fn pump_one(
        bytes: &[u8],
        size: u64,
        offset: u64,
        prefix: &[u8],
    ) -> (Vec<Message>, PumpEnd) {
        let dir = tempfile::tempdir().unwrap();
        let local = dir.path().join("f");
        std::fs::write(&local, bytes).unwrap();
        let mut p = start(4096);
        p.requests
            .send(PumpRequest {
                id: 9,
                local,
                size,
                offset,
                prefix_hash: *blake3::hash(prefix).as_bytes(),
            })
            .unwrap();
        let mut wire = BytesMut::new();
        loop {
            let out = p.outputs.recv().await.unwrap();
            wire.extend_from_slice(&out.buf[..out.len]);
            p.free.send(out.buf).unwrap();
            if let Some(end) = out.end {
                let mut msgs = Vec::new();
                while let Some(m) = decode(&mut wire, 1 << 20).unwrap() {
                    msgs.push(m);
                }
                assert!(wire.is_empty());
                return (msgs, end);
            }
        }
    }

    fn data_of(msgs: &[Message]) -> Vec<u8> {
        msgs.iter()
            .filter_map(|m| match m {
                Message::Data(d) => Some(d.bytes.to_vec()),
                _ => None,
            })
            .flatten()
            .collect()
    }

    #[tokio::test]
    async fn sends_chunks_then_end_with_whole_hash() {
        let bytes: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        let (msgs, end) = pump_one(&bytes, 10_000, 0, b"").await;
        assert_eq!(msgs.len(), 4, "3 chunks of at most 4096, then End");
        assert_eq!(data_of(&msgs), bytes);
        let hash = *blake3::hash(&bytes).as_bytes();
        assert_eq!(
            msgs[3],
            Message::End(End {
                id: 9,
                hash: Some(hash)
            })
        );
        assert!(matches!(end, PumpEnd::Finished(h) if h == hash));
    }

    #[tokio::test]
    async fn resumes_after_a_matching_prefix() {
        let bytes: Vec<u8> = (0..10_000u32).map(|i| (i * 7) as u8).collect();
        let (msgs, end) = pump_one(&bytes, 10_000, 5000, &bytes[..5000]).await;
        assert_eq!(data_of(&msgs), &bytes[5000..]);
        assert!(matches!(end, PumpEnd::Finished(h) if h == *blake3::hash(&bytes).as_bytes()));

        // offset == size: only End, no Data
        let (msgs, _) = pump_one(&bytes, 10_000, 10_000, &bytes).await;
        assert_eq!(msgs.len(), 1);
        assert!(matches!(msgs[0], Message::End(_)));

        let (msgs, end) = pump_one(&bytes, 10_000, 5000, b"other").await;
        assert_eq!(msgs, [Message::Cancel(Cancel { id: 9 })]);
        assert!(matches!(end, PumpEnd::PrefixMismatch));
    }

    #[tokio::test]
    async fn a_file_that_changed_size_is_cancelled_not_misreported() {
        let bytes = vec![1u8; 6000];
        // offered more than the file holds: it "shrank"
        let (msgs, end) = pump_one(&bytes, 6005, 0, b"").await;
        assert!(matches!(msgs.last(), Some(Message::Cancel(_))));
        assert!(!msgs.iter().any(|m| matches!(m, Message::End(_))));
        assert!(
            matches!(end, PumpEnd::Failed(ref w) if w.contains("shrank")),
            "{end:?}"
        );
        // offered less: it "grew"
        for size in [5999, 4096, 0] {
            let (msgs, end) = pump_one(&bytes, size, 0, b"").await;
            assert!(matches!(msgs.last(), Some(Message::Cancel(_))));
            assert!(
                matches!(end, PumpEnd::Failed(ref w) if w.contains("grew")),
                "{end:?}"
            );
        }
    }

    #[tokio::test]
    async fn missing_file_is_cancelled() {
        let mut p = start(4096);
        p.requests
            .send(PumpRequest {
                id: 3,
                local: "/nonexistent/framewire/x".into(),
                size: 1,
                offset: 0,
                prefix_hash: [0; 32],
            })
            .unwrap();
        let out = p.outputs.recv().await.unwrap();
        assert!(matches!(out.end, Some(PumpEnd::Failed(ref w)) if w.starts_with("cannot open")));
        let mut wire = BytesMut::from(&out.buf[..out.len]);
        assert_eq!(
            decode(&mut wire, 1 << 20).unwrap(),
            Some(Message::Cancel(Cancel { id: 3 }))
        );
    }
}
