//! Downloads: `Get` → `FileInfo`, `Data`…, `End`, written to a temporary file next to the
//! destination, verified against the announced BLAKE3 hash, then renamed into place. A file that
//! does not verify never appears under the destination name.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use framewire_proto::{ErrorCode, Get, Message, RemotePath};
use tokio::sync::mpsc;

use crate::client::{hub_error, Client};
use crate::error::{ClientError, Result};

/// A downloaded, verified file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetResult {
    /// The remote path.
    pub remote: String,
    /// Where the file was written.
    pub local: PathBuf,
    /// Its size.
    pub size: u64,
    /// Its BLAKE3 hash (checked equal to the hub's).
    pub hash: [u8; 32],
}

impl Client {
    /// Downloads the stored file `remote` to `local` (a file path, or an existing folder to put
    /// it in under its own name), replacing any file there only once the download verified.
    ///
    /// # Errors
    /// [`ClientError::BadPath`] for an invalid remote path, [`ClientError::Hub`] if the hub
    /// refuses (code `NotFound` for a missing file), [`ClientError::Corrupt`] if the bytes do not
    /// match the announced size and hash, [`ClientError::Local`] if the local file cannot be
    /// written, or any connection error.
    pub async fn get(&mut self, remote: &str, local: impl AsRef<Path>) -> Result<GetResult> {
        let rp = RemotePath::parse(remote).map_err(|error| ClientError::BadPath {
            path: remote.to_owned(),
            error,
        })?;
        let mut dest = local.as_ref().to_owned();
        if dest.is_dir() {
            let name = rp.segments().last().unwrap_or(remote);
            dest.push(name);
        }
        let id = self.alloc_id();
        self.send(&Message::Get(Get {
            id,
            offset: 0,
            path: remote.to_owned(),
        }))
        .await?;
        let info = loop {
            match self.recv("the FileInfo answer").await? {
                Message::FileInfo(f) if f.id == id => break f,
                Message::Error(e) if e.id == id => return Err(hub_error(e)),
                other => self.stray(other),
            }
        };

        let tmp = temp_path(&dest, id);
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|error| ClientError::Local {
                path: dest.clone(),
                error,
            })?;
        let result = self
            .receive(id, remote, info.size, file, &dest, blake3::Hasher::new(), 0)
            .await;
        let verified = result.and_then(|(size, hash)| {
            if size != info.size {
                Err(ClientError::Corrupt {
                    path: remote.to_owned(),
                    detail: format!("got {size} bytes, {} were announced", info.size),
                })
            } else if hash != info.hash {
                Err(ClientError::Corrupt {
                    path: remote.to_owned(),
                    detail: format!(
                        "BLAKE3 {} differs from the announced {}",
                        hex::encode(hash),
                        hex::encode(info.hash)
                    ),
                })
            } else {
                Ok(hash)
            }
        });
        let hash = match verified {
            Ok(h) => h,
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(e);
            }
        };
        if let Err(error) = fs::rename(&tmp, &dest) {
            let _ = fs::remove_file(&tmp);
            return Err(ClientError::Local { path: dest, error });
        }
        Ok(GetResult {
            remote: remote.to_owned(),
            local: dest,
            size: info.size,
            hash,
        })
    }

    /// Receives the `Data`…`End` of download `id` into `file` (on a blocking thread, which also
    /// hashes); returns the byte count and hash of what was written.
    #[allow(clippy::too_many_arguments)]
    async fn receive(
        &mut self,
        id: u32,
        remote: &str,
        size: u64,
        file: File,
        dest: &Path,
        hasher: blake3::Hasher,
        already: u64,
    ) -> Result<(u64, [u8; 32])> {
        let (tx, rx) = mpsc::channel::<Bytes>(8);
        let writer = tokio::task::spawn_blocking(move || write_chunks(file, rx, hasher, already));
        let mut got = already;
        let end = loop {
            let msg = match self.recv("the download's data").await {
                Ok(m) => m,
                Err(e) => break Err(e),
            };
            match msg {
                Message::Data(d) if d.id == id => {
                    got += d.bytes.len() as u64;
                    if got > size {
                        break Err(ClientError::Corrupt {
                            path: remote.to_owned(),
                            detail: format!("more than the announced {size} bytes arrived"),
                        });
                    }
                    if tx.send(d.bytes).await.is_err() {
                        break Ok(None); // the writer failed; its error follows
                    }
                }
                Message::End(e) if e.id == id => break Ok(e.hash),
                Message::Error(e) if e.id == id => break Err(hub_error(e)),
                other => self.stray(other),
            }
        };
        drop(tx);
        let written = writer
            .await
            .map_err(|e| ClientError::Protocol(format!("download writer failed: {e}")))?
            .map_err(|error| ClientError::Local {
                path: dest.to_owned(),
                error,
            });
        let end_hash = end?;
        let (n, hash) = written?;
        if let Some(h) = end_hash {
            if h != hash {
                return Err(ClientError::Corrupt {
                    path: remote.to_owned(),
                    detail: "the hub's End hash differs from the received bytes".into(),
                });
            }
        }
        Ok((n, hash))
    }
}

fn write_chunks(
    mut file: File,
    mut rx: mpsc::Receiver<Bytes>,
    mut hasher: blake3::Hasher,
    mut n: u64,
) -> std::io::Result<(u64, [u8; 32])> {
    while let Some(chunk) = rx.blocking_recv() {
        file.write_all(&chunk)?;
        hasher.update(&chunk);
        n += chunk.len() as u64;
    }
    file.flush()?;
    Ok((n, *hasher.finalize().as_bytes()))
}

impl Client {
    /// Downloads `remote` to the file `dest` so that an interrupted download resumes: the bytes
    /// arrive in `dest` + `.part` (kept if interrupted), a later call continues after them (their
    /// prefix counts in the final BLAKE3 check; if the whole does not verify, it starts over
    /// once from byte 0), and the verified file is renamed into place. Returns the result and how
    /// many bytes were resumed from the `.part`.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn get_resumable(&mut self, remote: &str, dest: &Path) -> Result<(GetResult, u64)> {
        let part = part_path(dest);
        let kept = fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
        match self.get_from(remote, dest, &part, kept).await {
            Err(ClientError::Corrupt { .. }) if kept > 0 => {
                let _ = fs::remove_file(&part);
                Ok((self.get_from(remote, dest, &part, 0).await?, 0))
            }
            r => r.map(|g| (g, kept)),
        }
    }

    async fn get_from(
        &mut self,
        remote: &str,
        dest: &Path,
        part: &Path,
        offset: u64,
    ) -> Result<GetResult> {
        let local = |error| ClientError::Local {
            path: dest.to_owned(),
            error,
        };
        let id = self.alloc_id();
        self.send(&Message::Get(Get {
            id,
            offset,
            path: remote.to_owned(),
        }))
        .await?;
        let info = loop {
            match self.recv("the FileInfo answer").await? {
                Message::FileInfo(f) if f.id == id => break f,
                // A part longer than the stored file: the file changed; start over.
                Message::Error(e) if e.id == id && offset > 0 && e.code == ErrorCode::Malformed => {
                    return Err(ClientError::Corrupt {
                        path: remote.to_owned(),
                        detail: "the kept part is longer than the stored file".into(),
                    })
                }
                Message::Error(e) if e.id == id => return Err(hub_error(e)),
                other => self.stray(other),
            }
        };
        let hasher = if offset > 0 {
            let part = part.to_owned();
            let hashed = tokio::task::spawn_blocking(move || hash_prefix(&part, offset))
                .await
                .map_err(|e| ClientError::Protocol(format!("hashing failed: {e}")))?;
            hashed.map_err(local)?
        } else {
            blake3::Hasher::new()
        };
        let file = if offset == 0 {
            File::create(part).map_err(local)?
        } else {
            let f = File::options().write(true).open(part).map_err(local)?;
            f.set_len(offset).map_err(local)?;
            let mut f = f;
            std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(offset)).map_err(local)?;
            f
        };
        let (size, hash) = self
            .receive(id, remote, info.size, file, dest, hasher, offset)
            .await?;
        if size != info.size || hash != info.hash {
            return Err(ClientError::Corrupt {
                path: remote.to_owned(),
                detail: format!(
                    "got {size} bytes with BLAKE3 {}; the hub has {} bytes with {}",
                    hex::encode(&hash[..8]),
                    info.size,
                    hex::encode(&info.hash[..8])
                ),
            });
        }
        fs::rename(part, dest).map_err(local)?;
        Ok(GetResult {
            remote: remote.to_owned(),
            local: dest.to_owned(),
            size,
            hash,
        })
    }
}

/// `dest.part`: where a resumable download keeps its bytes until verified.
pub fn part_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_owned();
    name.push(".part");
    dest.with_file_name(name)
}

fn hash_prefix(path: &Path, len: u64) -> std::io::Result<blake3::Hasher> {
    let mut h = blake3::Hasher::new();
    let mut f = std::io::Read::take(File::open(path)?, len);
    std::io::copy(&mut f, &mut h)?;
    Ok(h)
}

/// A hidden name next to `dest`, so the final rename stays on one file system.
fn temp_path(dest: &Path, id: u32) -> PathBuf {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "download".into());
    dest.with_file_name(format!(
        ".{name}.framewire-{}-{id}.part",
        std::process::id()
    ))
}
