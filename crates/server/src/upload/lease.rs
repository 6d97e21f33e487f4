//! One upload per path at a time, whatever door it comes through.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use framewire_proto::{ErrorCode, RemotePath};

use crate::store::Refusal;

/// Paths with an upload in progress.
#[derive(Default)]
pub(crate) struct Leases(Mutex<HashSet<String>>);

/// Exclusive claim on a path while one upload to it is in progress; released on drop.
pub(crate) struct Lease {
    path: String,
    leases: Arc<Leases>,
}

impl Leases {
    /// Claims `path`, or refuses with [`ErrorCode::Busy`].
    pub(crate) fn take(self: &Arc<Self>, path: &RemotePath) -> Result<Lease, Refusal> {
        if !self.0.lock().unwrap().insert(path.as_str().to_owned()) {
            return Err(Refusal::new(
                ErrorCode::Busy,
                format!("another upload to {path} is in progress"),
            ));
        }
        Ok(Lease {
            path: path.as_str().to_owned(),
            leases: Arc::clone(self),
        })
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.leases.0.lock().unwrap().remove(&self.path);
    }
}
