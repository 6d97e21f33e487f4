//! Turning local files and folders into upload jobs, the way `scp -r` names things: sending folder
//! `photos` stores `photos/...`, sending file `a.jpg` stores `a.jpg`, both under an optional remote
//! folder.
//!
//! Folders are walked recursively in byte order of names. Only regular files are sent; symbolic
//! links inside folders and special files are listed as ignored. Names that cannot form a valid
//! [`RemotePath`] (not UTF-8, control characters, `:`...) become failures, so nothing is skipped
//! silently.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs;
use std::path::{Component, Path, PathBuf};

use framewire_proto::RemotePath;

use crate::error::{io_reason, ClientError, Result};

/// One local file to store at one remote path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadJob {
    /// The local file.
    pub local: PathBuf,
    /// Where to store it on the hub (checked against the [`RemotePath`] rules before sending).
    pub remote: String,
}

/// A local file (or folder) that cannot be sent, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanProblem {
    /// The local path.
    pub local: PathBuf,
    /// Why it is not sent.
    pub reason: String,
}

/// What to send, and what will not be sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UploadPlan {
    /// Files to send, in walk order.
    pub jobs: Vec<UploadJob>,
    /// Files or folders that should have been sent but cannot be (bad names, unreadable folders,
    /// missing paths): these count as failures.
    pub failed: Vec<PlanProblem>,
    /// Entries deliberately left out (symbolic links found inside folders, sockets, devices...).
    pub ignored: Vec<PlanProblem>,
}

/// Normalizes a remote folder given by the user (`--to`): trailing `/` are dropped; an empty
/// result means the hub's top level.
///
/// # Errors
/// [`ClientError::BadPath`] if the folder breaks the [`RemotePath`] rules.
pub fn remote_dir(to: &str) -> Result<Option<String>> {
    let trimmed = to.trim_end_matches('/');
    if trimmed.is_empty() {
        return Ok(None);
    }
    RemotePath::parse(trimmed).map_err(|error| ClientError::BadPath {
        path: to.to_owned(),
        error,
    })?;
    Ok(Some(trimmed.to_owned()))
}

/// Plans the upload of `paths` (files or folders) under remote folder `to`.
///
/// A folder argument whose last component is `.` or `..` (or `/`) sends its contents, as there
/// is no name to give the folder itself. Command-line paths that are symbolic links are followed;
/// links found while walking are not.
///
/// # Errors
/// [`ClientError::BadPath`] if `to` is not a valid remote folder. Problems with individual paths
/// are reported in the plan instead.
pub fn plan_upload<P: AsRef<Path>>(paths: &[P], to: Option<&str>) -> Result<UploadPlan> {
    let base = match to {
        Some(t) => remote_dir(t)?,
        None => None,
    };
    let mut plan = UploadPlan::default();
    for path in paths {
        plan_path(path.as_ref(), base.as_deref(), &mut plan);
    }
    mark_duplicates(&mut plan);
    Ok(plan)
}

fn plan_path(path: &Path, base: Option<&str>, plan: &mut UploadPlan) {
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) => {
            plan.failed.push(PlanProblem {
                local: path.to_owned(),
                reason: io_reason(&e),
            });
            return;
        }
    };
    let name = match path.components().next_back() {
        Some(Component::Normal(n)) => Some(n),
        _ => None,
    };
    if meta.is_dir() {
        let prefix = match name {
            None => base.map(str::to_owned),
            Some(n) => match utf8_name(n) {
                Ok(n) => Some(join(base, n)),
                Err(reason) => {
                    plan.failed.push(PlanProblem {
                        local: path.to_owned(),
                        reason: format!("{reason}; nothing in this folder was sent"),
                    });
                    return;
                }
            },
        };
        walk(path, prefix.as_deref(), plan);
    } else if meta.is_file() {
        let Some(n) = name else {
            plan.failed.push(PlanProblem {
                local: path.to_owned(),
                reason: "has no file name".into(),
            });
            return;
        };
        push_file(path.to_owned(), base, n, plan);
    } else {
        plan.ignored.push(PlanProblem {
            local: path.to_owned(),
            reason: kind_of(&meta.file_type()).into(),
        });
    }
}

fn walk(dir: &Path, prefix: Option<&str>, plan: &mut UploadPlan) {
    let mut entries = match fs::read_dir(dir).and_then(|rd| rd.collect::<Result<Vec<_>, _>>()) {
        Ok(e) => e,
        Err(e) => {
            plan.failed.push(PlanProblem {
                local: dir.to_owned(),
                reason: format!("cannot read folder: {}", io_reason(&e)),
            });
            return;
        }
    };
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let file_type = match entry.file_type() {
            Ok(t) => t,
            Err(e) => {
                plan.failed.push(PlanProblem {
                    local: path,
                    reason: io_reason(&e),
                });
                continue;
            }
        };
        let name = entry.file_name();
        if file_type.is_dir() {
            match utf8_name(&name) {
                Ok(n) => walk(&path, Some(&join(prefix, n)), plan),
                Err(reason) => plan.failed.push(PlanProblem {
                    local: path,
                    reason: format!("{reason}; nothing in this folder was sent"),
                }),
            }
        } else if file_type.is_file() {
            push_file(path, prefix, &name, plan);
        } else {
            plan.ignored.push(PlanProblem {
                local: path,
                reason: kind_of(&file_type).into(),
            });
        }
    }
}

fn push_file(local: PathBuf, prefix: Option<&str>, name: &OsStr, plan: &mut UploadPlan) {
    let name = match utf8_name(name) {
        Ok(n) => n,
        Err(reason) => {
            plan.failed.push(PlanProblem { local, reason });
            return;
        }
    };
    let remote = join(prefix, name);
    match RemotePath::parse(&remote) {
        Ok(_) => plan.jobs.push(UploadJob { local, remote }),
        Err(e) => plan.failed.push(PlanProblem {
            local,
            reason: format!("cannot be stored as {remote:?}: {e}"),
        }),
    }
}

/// Two arguments can map to the same remote path (`send a/x.jpg b/x.jpg`); sending both would
/// race on the hub, so every copy after the first becomes a failure.
fn mark_duplicates(plan: &mut UploadPlan) {
    let mut seen = HashSet::new();
    let mut failed = Vec::new();
    plan.jobs.retain(|job| {
        if seen.insert(job.remote.clone()) {
            true
        } else {
            failed.push(PlanProblem {
                local: job.local.clone(),
                reason: format!("another file is also sent as {:?}", job.remote),
            });
            false
        }
    });
    plan.failed.extend(failed);
}

fn utf8_name(name: &OsStr) -> Result<&str, String> {
    name.to_str()
        .ok_or_else(|| format!("name {:?} is not valid UTF-8", name.to_string_lossy()))
}

fn join(prefix: Option<&str>, name: &str) -> String {
    match prefix {
        Some(p) => format!("{p}/{name}"),
        None => name.to_owned(),
    }
}

fn kind_of(t: &fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_socket() {
            return "socket (not a regular file)";
        }
        if t.is_fifo() {
            return "named pipe (not a regular file)";
        }
        if t.is_block_device() || t.is_char_device() {
            return "device (not a regular file)";
        }
    }
    if t.is_symlink() {
        "symbolic link (not followed inside folders)"
    } else {
        "not a regular file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(p: &Path) {
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, b"x").unwrap();
    }

    fn remotes(plan: &UploadPlan) -> Vec<&str> {
        plan.jobs.iter().map(|j| j.remote.as_str()).collect()
    }

    #[test]
    fn folder_keeps_its_name_like_scp() {
        let t = tempfile::tempdir().unwrap();
        let photos = t.path().join("photos");
        touch(&photos.join("b.jpg"));
        touch(&photos.join("a.jpg"));
        touch(&photos.join("2024/x.jpg"));
        let plan = plan_upload(&[&photos], None).unwrap();
        assert_eq!(
            remotes(&plan),
            ["photos/2024/x.jpg", "photos/a.jpg", "photos/b.jpg"]
        );
        assert_eq!(plan.jobs[1].local, photos.join("a.jpg"));
        assert!(plan.failed.is_empty() && plan.ignored.is_empty());

        // a trailing slash names the same folder, as with scp
        let with_slash = PathBuf::from(format!("{}/", photos.display()));
        let plan = plan_upload(&[with_slash], Some("backup/")).unwrap();
        assert_eq!(remotes(&plan)[0], "backup/photos/2024/x.jpg");
    }

    #[test]
    fn single_file_and_to_dir() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("a.jpg");
        touch(&f);
        assert_eq!(remotes(&plan_upload(&[&f], None).unwrap()), ["a.jpg"]);
        assert_eq!(
            remotes(&plan_upload(&[&f], Some("cam/2024")).unwrap()),
            ["cam/2024/a.jpg"]
        );
        assert_eq!(remotes(&plan_upload(&[&f], Some("")).unwrap()), ["a.jpg"]);
    }

    #[test]
    fn spaces_and_non_ascii_names() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("vacances été");
        touch(&d.join("photo 01.jpg"));
        touch(&d.join("写真/猫.jpg"));
        let plan = plan_upload(&[&d], Some("données")).unwrap();
        assert_eq!(
            remotes(&plan),
            [
                "données/vacances été/photo 01.jpg",
                "données/vacances été/写真/猫.jpg"
            ]
        );
    }

    #[test]
    fn dot_sends_contents() {
        let t = tempfile::tempdir().unwrap();
        touch(&t.path().join("sub/a"));
        let dot = t.path().join("sub").join(".");
        // "sub/." is normalized to "sub" by Path, so it keeps the name
        assert_eq!(remotes(&plan_upload(&[&dot], None).unwrap()), ["sub/a"]);
        let dotdot = t.path().join("sub").join("..");
        let plan = plan_upload(&[&dotdot], Some("up")).unwrap();
        assert_eq!(remotes(&plan), ["up/sub/a"]);
    }

    #[test]
    fn bad_names_fail_and_links_are_ignored() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("d");
        touch(&d.join("ok.txt"));
        touch(&d.join("a:b.txt"));
        touch(&d.join("tab\there.txt"));
        #[cfg(unix)]
        std::os::unix::fs::symlink(d.join("ok.txt"), d.join("link.txt")).unwrap();
        let plan = plan_upload(&[&d], None).unwrap();
        assert_eq!(remotes(&plan), ["d/ok.txt"]);
        assert_eq!(plan.failed.len(), 2, "{:?}", plan.failed);
        assert!(plan.failed[0].reason.contains("':'"), "{:?}", plan.failed);
        assert!(
            plan.failed[1].reason.contains("control"),
            "{:?}",
            plan.failed
        );
        #[cfg(unix)]
        {
            assert_eq!(plan.ignored.len(), 1);
            assert!(plan.ignored[0].reason.contains("symbolic link"));
        }
    }

    #[cfg(unix)]
    #[test]
    fn non_utf8_names_are_failures() {
        use std::os::unix::ffi::OsStrExt;
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("d");
        touch(&d.join(OsStr::from_bytes(b"bad\xffname")));
        touch(&d.join(OsStr::from_bytes(b"bad\xfedir")).join("inner"));
        let plan = plan_upload(&[&d], None).unwrap();
        assert!(plan.jobs.is_empty());
        assert_eq!(plan.failed.len(), 2);
        assert!(plan.failed.iter().all(|p| p.reason.contains("UTF-8")));
        assert!(plan.failed[0].reason.contains("nothing in this folder"));
    }

    #[test]
    fn missing_paths_and_duplicates_fail() {
        let t = tempfile::tempdir().unwrap();
        touch(&t.path().join("a/x.jpg"));
        touch(&t.path().join("b/x.jpg"));
        let plan = plan_upload(
            &[
                t.path().join("a/x.jpg"),
                t.path().join("b/x.jpg"),
                t.path().join("nope"),
            ],
            None,
        )
        .unwrap();
        assert_eq!(remotes(&plan), ["x.jpg"]);
        assert_eq!(plan.failed.len(), 2);
        assert_eq!(plan.failed[0].reason, "no such file or directory");
        assert!(plan.failed[1].reason.contains("also sent as"));
    }

    #[test]
    fn bad_remote_dir_is_an_error() {
        assert!(matches!(
            plan_upload::<&Path>(&[], Some("../up")),
            Err(ClientError::BadPath { .. })
        ));
        assert!(remote_dir("/abs").is_err());
        assert_eq!(remote_dir("a/b//").unwrap().as_deref(), Some("a/b"));
    }
}
