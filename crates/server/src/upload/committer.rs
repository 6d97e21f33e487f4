//! The group committer: one thread that takes every verified upload waiting and hands them to
//! [`Storage::commit_batch`] together, so many small files share a few syncs. While a batch is
//! being made durable the next one queues up: the busier the hub, the bigger the batches.

use std::sync::{mpsc, Arc, Mutex};
use std::thread;

use crate::store::{CommitItem, Committed, Refusal, Storage};

/// Most uploads committed together.
const MAX_BATCH: usize = 4096;

/// What to do with a commit's outcome (runs on the committer thread; must not block).
pub(crate) type OnCommitted = Box<dyn FnOnce(Result<Committed, Refusal>) + Send>;

struct Job {
    item: CommitItem,
    done: OnCommitted,
}

pub(crate) struct Committer {
    tx: Mutex<Option<mpsc::Sender<Job>>>,
    thread: Mutex<Option<thread::JoinHandle<()>>>,
}

impl Committer {
    pub(crate) fn start(storage: Arc<dyn Storage>) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel();
        let thread = thread::Builder::new()
            .name("framewire-commit".into())
            .spawn(move || run(&rx, &*storage))?;
        Ok(Committer {
            tx: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Queues an upload; `done` gets its outcome (shutting down, if the committer has stopped).
    pub(crate) fn submit(&self, item: CommitItem, done: OnCommitted) {
        let job = Job { item, done };
        let refused = match &*self.tx.lock().unwrap() {
            Some(tx) => tx.send(job).err().map(|e| e.0),
            None => Some(job),
        };
        if let Some(job) = refused {
            if let crate::store::CommitData::Staged(s) = job.item.data {
                s.discard();
            }
            (job.done)(Err(Refusal::shutting_down()));
        }
    }

    /// Lets the queue drain, then stops the thread.
    pub(crate) fn close(&self) {
        self.tx.lock().unwrap().take();
        if let Some(t) = self.thread.lock().unwrap().take() {
            let _ = t.join();
        }
    }
}

fn run(rx: &mpsc::Receiver<Job>, storage: &dyn Storage) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        let (items, dones): (Vec<_>, Vec<_>) = batch.into_iter().map(|j| (j.item, j.done)).unzip();
        let answers = storage.commit_batch(items);
        for (done, answer) in dones.into_iter().zip(answers) {
            done(answer);
        }
    }
}
