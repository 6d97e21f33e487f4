//! [`Beneath`]: a folder of the data folder (`files/`, `spool/`, `thumbs/`) held open, and every
//! path below it resolved from that handle without ever following a symbolic link.
//!
//! Someone with local access can swap a folder or file for a link while the hub runs (between an
//! offer and its commit, say). Paths joined onto `DATA/files` would follow it and write or serve
//! outside the data folder; resolving from a handle with `openat2(RESOLVE_BENEATH |
//! RESOLVE_NO_SYMLINKS)` and `O_NOFOLLOW` fails with `ELOOP` instead. Where `openat2` is missing
//! (Linux before 5.6, seccomp filters, other systems) each component is opened in turn with
//! `O_NOFOLLOW`, which refuses the same links at the cost of one call per component.

use std::fmt::Display;
use std::fs::File;
use std::io;
use std::path::Path;

use framewire_proto::ErrorCode;
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat};

use crate::store::Refusal;

/// A folder held open; paths given to it are relative to it, `/`-separated, without `..`.
pub(super) struct Beneath {
    dir: OwnedFd,
}

impl Beneath {
    /// Opens the folder at `path` (which must not itself be a symbolic link).
    pub(super) fn open(path: &Path) -> io::Result<Beneath> {
        let dir = rustix::fs::open(
            path,
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Beneath { dir })
    }

    /// The folder's own handle.
    pub(super) fn fd(&self) -> BorrowedFd<'_> {
        self.dir.as_fd()
    }

    /// The folder `rel` below this one (`""` for this one), for `*at` calls and syncing.
    pub(super) fn dir(&self, rel: &str) -> io::Result<OwnedFd> {
        resolve(
            self.fd(),
            rel,
            OFlags::DIRECTORY | OFlags::RDONLY,
            Mode::empty(),
        )
    }

    /// Opens the file `rel` with `flags` (`O_NOFOLLOW` and `O_CLOEXEC` are added).
    pub(super) fn open_file(&self, rel: &str, flags: OFlags) -> io::Result<File> {
        // openat2 takes a mode only with O_CREAT.
        let mode = if flags.contains(OFlags::CREATE) {
            Mode::from_raw_mode(0o666)
        } else {
            Mode::empty()
        };
        resolve(self.fd(), rel, flags, mode).map(File::from)
    }

    /// What is at `rel`, without following a link there.
    pub(super) fn stat(&self, rel: &str) -> io::Result<Stat> {
        let (parent, name) = split(rel);
        Ok(rustix::fs::statat(
            self.dir(parent)?,
            name,
            AtFlags::SYMLINK_NOFOLLOW,
        )?)
    }

    /// Removes the file (or link) `rel`; never what a link points to. Hands back the folder it
    /// was in, for syncing.
    pub(super) fn remove(&self, rel: &str) -> io::Result<OwnedFd> {
        let (parent, name) = split(rel);
        let dir = self.dir(parent)?;
        rustix::fs::unlinkat(&dir, name, AtFlags::empty())?;
        Ok(dir)
    }
}

/// `("a/b", "c")` for `"a/b/c"`, `("", "c")` for `"c"`.
pub(super) fn split(rel: &str) -> (&str, &str) {
    rel.rsplit_once('/').unwrap_or(("", rel))
}

/// Whether `e` is the refusal of a symbolic link on the way (`ELOOP`) or of a path leading out
/// (`EXDEV`, from `RESOLVE_BENEATH`).
pub(super) fn is_link(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ELOOP) | Some(libc::EXDEV))
}

/// The refusal for a symbolic link at (or on the way to) `what`.
pub(super) fn link_refusal(what: impl Display) -> Refusal {
    Refusal::new(
        ErrorCode::BadPath,
        format!("{what} is a symbolic link on the hub; refusing to follow it"),
    )
}

/// Whether `st` is a symbolic link, a folder, or a regular file.
pub(super) fn file_type(st: &Stat) -> FileType {
    FileType::from_raw_mode(st.st_mode)
}

/// Opens `rel` beneath `dir` with `flags`, following no link on the way or at the end.
pub(super) fn resolve(
    dir: BorrowedFd<'_>,
    rel: &str,
    flags: OFlags,
    mode: Mode,
) -> io::Result<OwnedFd> {
    let rel = if rel.is_empty() { "." } else { rel };
    let opened = resolve_once(dir, rel, flags, mode);
    match opened {
        // A folder asked for with O_NOFOLLOW that is a link can fail as "not a folder": say which.
        Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) && flags.contains(OFlags::DIRECTORY) => {
            let (parent, name) = split(rel);
            let is_link = resolve(
                dir,
                parent,
                OFlags::DIRECTORY | OFlags::RDONLY,
                Mode::empty(),
            )
            .and_then(|p| Ok(rustix::fs::statat(p, name, AtFlags::SYMLINK_NOFOLLOW)?))
            .is_ok_and(|st| file_type(&st) == FileType::Symlink);
            if is_link {
                Err(io::Error::from_raw_os_error(libc::ELOOP))
            } else {
                Err(e)
            }
        }
        other => other,
    }
}

fn resolve_once(dir: BorrowedFd<'_>, rel: &str, flags: OFlags, mode: Mode) -> io::Result<OwnedFd> {
    let flags = flags | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use rustix::fs::ResolveFlags;
        use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
        static MISSING: AtomicBool = AtomicBool::new(false);
        if !MISSING.load(Relaxed) {
            let how =
                ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
            match rustix::fs::openat2(dir, rel, flags, mode, how) {
                // Not there (or filtered): walk instead, now and from now on.
                Err(rustix::io::Errno::NOSYS) | Err(rustix::io::Errno::PERM) => {
                    MISSING.store(true, Relaxed)
                }
                // A rename raced the lookup: the walk below is not subject to that.
                Err(rustix::io::Errno::AGAIN) => {}
                done => return Ok(done?),
            }
        }
    }
    walk(dir, rel, flags, mode)
}

/// The portable way: one `openat(O_NOFOLLOW)` per component.
fn walk(dir: BorrowedFd<'_>, rel: &str, flags: OFlags, mode: Mode) -> io::Result<OwnedFd> {
    let (parent, name) = split(rel);
    let mut cur: Option<OwnedFd> = None;
    for seg in parent.split('/').filter(|s| !s.is_empty()) {
        if seg == ".." {
            return Err(io::Error::from_raw_os_error(libc::EXDEV));
        }
        let at = cur.as_ref().map_or(dir, |f| f.as_fd());
        let flags = OFlags::DIRECTORY | OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        cur = Some(match rustix::fs::openat(at, seg, flags, Mode::empty()) {
            // A link in the way can fail as "not a folder": say it is a link.
            Err(rustix::io::Errno::NOTDIR)
                if rustix::fs::statat(at, seg, AtFlags::SYMLINK_NOFOLLOW)
                    .is_ok_and(|st| file_type(&st) == FileType::Symlink) =>
            {
                return Err(io::Error::from_raw_os_error(libc::ELOOP))
            }
            opened => opened?,
        });
    }
    if name == ".." {
        return Err(io::Error::from_raw_os_error(libc::EXDEV));
    }
    let at = cur.as_ref().map_or(dir, |f| f.as_fd());
    Ok(rustix::fs::openat(at, name, flags, mode)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn links_are_refused_on_the_way_and_at_the_end() {
        let d = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), b"outside").unwrap();
        let root = d.path().join("files");
        std::fs::create_dir_all(root.join("a")).unwrap();
        std::fs::write(root.join("a/f"), b"inside").unwrap();
        symlink(outside.path(), root.join("out")).unwrap();
        symlink(outside.path().join("secret"), root.join("a/link")).unwrap();
        let b = Beneath::open(&root).unwrap();
        for rel in ["out/secret", "a/link", "out"] {
            let e = b.open_file(rel, OFlags::RDONLY).unwrap_err();
            assert!(is_link(&e), "{rel}: {e}");
        }
        let e = b.dir("out").unwrap_err();
        assert!(is_link(&e), "{e}");
        assert!(b.open_file("a/f", OFlags::RDONLY).is_ok());
        for rel in ["a/link", "out/secret"] {
            let e = walk(
                b.fd(),
                rel,
                OFlags::RDONLY | OFlags::NOFOLLOW,
                Mode::empty(),
            );
            assert!(is_link(&e.unwrap_err()), "{rel}");
        }
        assert!(file_type(&b.stat("a/link").unwrap()) == FileType::Symlink);
        b.remove("a/link").unwrap();
        assert_eq!(
            std::fs::read(outside.path().join("secret")).unwrap(),
            b"outside"
        );
    }
}
