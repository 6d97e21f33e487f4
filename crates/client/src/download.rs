//! Downloads: `Get` → `FileInfo`, `Data`…, `End`, written to a temporary file next to the
//! destination, verified against the announced BLAKE3 hash, then renamed into place. A file that
//! does not verify never appears under the destination name.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use framewire_proto::{Get, Message, RemotePath};
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
        let result = self.receive(id, remote, info.size, file, &dest).await;
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
    async fn receive(
        &mut self,
        id: u32,
        remote: &str,
        size: u64,
        file: File,
        dest: &Path,
    ) -> Result<(u64, [u8; 32])> {
        let (tx, rx) = mpsc::channel::<Bytes>(8);
        let writer = tokio::task::spawn_blocking(move || write_chunks(file, rx));
        let mut got = 0u64;
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

fn write_chunks(mut file: File, mut rx: mpsc::Receiver<Bytes>) -> std::io::Result<(u64, [u8; 32])> {
    let mut hasher = blake3::Hasher::new();
    let mut n = 0u64;
    while let Some(chunk) = rx.blocking_recv() {
        file.write_all(&chunk)?;
        hasher.update(&chunk);
        n += chunk.len() as u64;
    }
    file.flush()?;
    Ok((n, *hasher.finalize().as_bytes()))
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
