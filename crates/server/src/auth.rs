//! Access tokens and what each may do.
//!
//! A hub started without tokens lets everyone in (and warns loudly if it listens beyond
//! loopback). With tokens, every native handshake and every HTTP request must present one; each
//! token has a name (shown as the sender of its uploads) and a set of permissions. Tokens are
//! compared in constant time: both sides are hashed with BLAKE3 to 32 bytes and compared without
//! early exit, against every configured token, so timing reveals neither a prefix nor which token.

use std::path::Path;

/// What a token allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Perms(u8);

impl Perms {
    /// Upload files.
    pub const UPLOAD: Perms = Perms(1);
    /// Download and list files.
    pub const DOWNLOAD: Perms = Perms(2);
    /// Publish streams and register as a device.
    pub const PUBLISH: Perms = Perms(4);
    /// Subscribe to streams (native, MJPEG, tiles, event socket).
    pub const SUBSCRIBE: Perms = Perms(8);
    /// Send commands to devices.
    pub const COMMAND: Perms = Perms(16);
    /// Everything, including metrics.
    pub const ADMIN: Perms = Perms(32);
    /// Follow the hub's events (`Follow`: files stored, texts, devices, streams, commands) and
    /// receive texts under a name.
    pub const EVENTS: Perms = Perms(64);
    /// Delete stored files (native `Delete`, HTTP `DELETE`, `framewire rm`).
    pub const DELETE: Perms = Perms(128);
    /// Every permission.
    pub const ALL: Perms = Perms(255);

    /// Whether these permissions include `p` (admin includes everything).
    pub fn allows(self, p: Perms) -> bool {
        self.0 & Perms::ADMIN.0 != 0 || self.0 & p.0 == p.0
    }

    /// The name of a single permission, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Perms::UPLOAD => "upload",
            Perms::DOWNLOAD => "download",
            Perms::PUBLISH => "publish",
            Perms::SUBSCRIBE => "subscribe",
            Perms::COMMAND => "command",
            Perms::ADMIN => "admin",
            Perms::EVENTS => "events",
            Perms::DELETE => "delete",
            _ => "several permissions",
        }
    }

    /// Every permission held, in words (`upload, publish`; `admin` for all).
    pub fn names(self) -> String {
        if self.allows(Perms::ADMIN) {
            return "admin".into();
        }
        let all = [
            Perms::UPLOAD,
            Perms::DOWNLOAD,
            Perms::PUBLISH,
            Perms::SUBSCRIBE,
            Perms::COMMAND,
            Perms::EVENTS,
            Perms::DELETE,
        ];
        let held: Vec<&str> = all
            .into_iter()
            .filter(|p| self.allows(*p))
            .map(Perms::name)
            .collect();
        if held.is_empty() {
            "no permissions".into()
        } else {
            held.join(", ")
        }
    }

    fn parse(word: &str) -> Option<Perms> {
        Some(match word {
            "upload" => Perms::UPLOAD,
            "download" => Perms::DOWNLOAD,
            "publish" => Perms::PUBLISH,
            "subscribe" => Perms::SUBSCRIBE,
            "command" => Perms::COMMAND,
            "admin" => Perms::ADMIN,
            "events" => Perms::EVENTS,
            "delete" => Perms::DELETE,
            "all" => Perms::ALL,
            _ => return None,
        })
    }
}

impl std::ops::BitOr for Perms {
    type Output = Perms;
    fn bitor(self, o: Perms) -> Perms {
        Perms(self.0 | o.0)
    }
}

/// Who a valid token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The token's name.
    pub name: String,
    /// Its permissions.
    pub perms: Perms,
    /// The device and stream names it may claim (`None`: any). A pattern is a name, or a prefix
    /// followed by `*`.
    pub names: Option<Vec<String>>,
}

impl Identity {
    /// Everyone, on a hub without tokens.
    pub fn open() -> Identity {
        Identity {
            name: String::new(),
            perms: Perms::ALL,
            names: None,
        }
    }

    /// Whether this identity may claim device or stream `name` (the tokens file's `names=`).
    pub fn may_claim(&self, name: &str) -> bool {
        match &self.names {
            None => true,
            Some(patterns) => patterns.iter().any(|p| match p.strip_suffix('*') {
                Some(prefix) => name.starts_with(prefix),
                None => p == name,
            }),
        }
    }
}

/// A connection claiming a device or stream name. A name belongs to the connection holding it;
/// another connection may take it over only with the same token (a reconnect: the newest wins) or
/// an admin token. On a hub without tokens nobody has a token name or is admin, so the first
/// holder keeps the name while it is connected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Claimant {
    /// The connection.
    pub(crate) conn: u64,
    /// Its token's name (empty without tokens).
    pub(crate) token: String,
    /// Whether its token is an admin token (never on a hub without tokens).
    pub(crate) admin: bool,
}

impl Claimant {
    /// Whether this claimant may take a name that `holder` holds.
    pub(crate) fn may_take_from(&self, holder: &Claimant) -> bool {
        self.conn == holder.conn
            || self.admin
            || (!self.token.is_empty() && self.token == holder.token)
    }
}

#[derive(Debug, Clone)]
struct Entry {
    digest: [u8; 32],
    who: Identity,
}

/// The configured tokens (empty: no authentication).
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    entries: Vec<Entry>,
}

/// Why a tokens file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TokensError {
    /// The file could not be read.
    #[error("cannot read {0}: {1}")]
    Read(String, #[source] std::io::Error),
    /// A line is not `TOKEN NAME PERMISSION[,PERMISSION...] [names=PATTERN[,PATTERN...]]`.
    #[error("{file}:{line}: {reason}")]
    Line {
        /// The file.
        file: String,
        /// Line number (from 1).
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

/// Shortest token accepted: guessing must be hopeless.
pub const MIN_TOKEN_LEN: usize = 16;

fn digest(token: &str) -> [u8; 32] {
    *blake3::hash(token.as_bytes()).as_bytes()
}

fn ct_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Tokens {
    /// Whether tokens are required.
    pub fn enabled(&self) -> bool {
        !self.entries.is_empty()
    }

    /// Adds a token.
    pub fn add(&mut self, token: &str, name: &str, perms: Perms) {
        self.add_identity(
            token,
            Identity {
                name: name.to_owned(),
                perms,
                names: None,
            },
        );
    }

    /// Adds a token for `who` (with its name restrictions).
    pub fn add_identity(&mut self, token: &str, who: Identity) {
        self.entries.push(Entry {
            digest: digest(token),
            who,
        });
    }

    /// Tokens from `--token` flags: each allows everything, named `token-1`, `token-2`…
    pub fn from_flags(tokens: &[String]) -> Tokens {
        let mut t = Tokens::default();
        for (i, tok) in tokens.iter().enumerate() {
            t.add(tok, &format!("token-{}", i + 1), Perms::ALL);
        }
        t
    }

    /// Reads a tokens file: one `TOKEN NAME PERMISSION[,PERMISSION...] [names=PATTERN[,PATTERN...]]`
    /// per line (`#` comments and blank lines allowed; permissions among upload, download, delete, publish,
    /// subscribe, command, admin, all). The optional `names=` column restricts the device and
    /// stream names the token may claim: each pattern is a name (`door`) or a prefix ending in `*`
    /// (`cam-*`); without it, any name. Example: `cam-token-0123456789 cam-1 publish names=cam-*,door`.
    ///
    /// # Errors
    /// [`TokensError`] naming the file and line of the first problem.
    pub fn load_file(&mut self, path: &Path) -> Result<(), TokensError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| TokensError::Read(file.clone(), e))?;
        for (i, line) in text.lines().enumerate() {
            let line_no = i + 1;
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let bad = |reason: String| TokensError::Line {
                file: file.clone(),
                line: line_no,
                reason,
            };
            let mut words = line.split_whitespace();
            const FORMAT: &str =
                "expected: TOKEN NAME PERMISSION[,PERMISSION...] [names=PATTERN[,PATTERN...]]";
            let (Some(token), Some(name), Some(perms), names, None) = (
                words.next(),
                words.next(),
                words.next(),
                words.next(),
                words.next(),
            ) else {
                return Err(bad(FORMAT.into()));
            };
            let names = match names {
                None => None,
                Some(w) => {
                    let list = w.strip_prefix("names=").ok_or_else(|| bad(FORMAT.into()))?;
                    let patterns: Vec<String> = list.split(',').map(str::to_owned).collect();
                    if let Some(p) = patterns
                        .iter()
                        .find(|p| p.is_empty() || p.trim_end_matches('*').contains('*'))
                    {
                        return Err(bad(format!(
                            "bad name pattern {p:?}: a name, or a prefix ending in *"
                        )));
                    }
                    Some(patterns)
                }
            };
            if token.len() < MIN_TOKEN_LEN {
                return Err(bad(format!(
                    "token is shorter than {MIN_TOKEN_LEN} characters"
                )));
            }
            let mut p = Perms::default();
            for w in perms.split(',') {
                p = p | Perms::parse(w).ok_or_else(|| bad(format!("unknown permission {w:?}")))?;
            }
            self.add_identity(
                token,
                Identity {
                    name: name.to_owned(),
                    perms: p,
                    names,
                },
            );
        }
        Ok(())
    }

    /// The identity of the token named `name` (the first one, if several share it).
    pub fn by_name(&self, name: &str) -> Option<Identity> {
        self.entries
            .iter()
            .find(|e| e.who.name == name)
            .map(|e| e.who.clone())
    }

    /// Who `presented` belongs to: `Some` for a valid token, or for anyone when no tokens are
    /// configured. Constant time in the token's content.
    pub fn check(&self, presented: &str) -> Option<Identity> {
        if self.entries.is_empty() {
            return Some(Identity::open());
        }
        let d = digest(presented);
        let mut found = None;
        for e in &self.entries {
            if ct_eq(&e.digest, &d) && found.is_none() {
                found = Some(e.who.clone());
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_permissions() {
        let open = Tokens::default();
        assert_eq!(open.check("anything"), Some(Identity::open()));
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("tokens");
        std::fs::write(
            &f,
            "# who may do what\ncam-token-0123456789 cam-1 publish,upload\n\nviewer-token-012345 viewer subscribe # read only\nroot-token-0123456789 ops admin\n",
        )
        .unwrap();
        let mut t = Tokens::default();
        t.load_file(&f).unwrap();
        let cam = t.check("cam-token-0123456789").unwrap();
        assert_eq!(cam.name, "cam-1");
        assert!(cam.perms.allows(Perms::PUBLISH) && cam.perms.allows(Perms::UPLOAD));
        assert!(!cam.perms.allows(Perms::DOWNLOAD) && !cam.perms.allows(Perms::ADMIN));
        assert!(
            t.check("root-token-0123456789")
                .unwrap()
                .perms
                .allows(Perms::COMMAND),
            "admin allows all"
        );
        assert_eq!(t.check("cam-token-012345678"), None);
        assert_eq!(t.check(""), None);
        assert!(cam.may_claim("anything"), "no names= column: any name");
        std::fs::write(&f, "cam-token-0123456789 cam-1 publish names=cam-*,door\n").unwrap();
        let mut t = Tokens::default();
        t.load_file(&f).unwrap();
        let cam = t.check("cam-token-0123456789").unwrap();
        assert!(cam.may_claim("cam-7") && cam.may_claim("cam-") && cam.may_claim("door"));
        assert!(!cam.may_claim("door2") && !cam.may_claim("camB") && !cam.may_claim("x"));
        for bad in [
            "short cam upload\n",
            "long-enough-token-1 cam\n",
            "long-enough-token-1 cam fly\n",
            "a b c d\n",
            "long-enough-token-1 cam publish cam-*\n",
            "long-enough-token-1 cam publish names=c*m\n",
            "long-enough-token-1 cam publish names=a names=b\n",
        ] {
            std::fs::write(&f, bad).unwrap();
            let err = Tokens::default().load_file(&f).unwrap_err().to_string();
            assert!(err.contains(":1:"), "{err}");
        }
    }
}
