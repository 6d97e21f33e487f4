//! The Rust client for a framewire hub: upload files and folders (pipelined, resumable,
//! verified with BLAKE3), list and download stored files, send text messages, ping.
//!
//! ```no_run
//! use framewire_client::{plan_upload, Client, ConnectOptions, SendOptions};
//!
//! # async fn demo() -> Result<(), framewire_client::ClientError> {
//! let mut hub = Client::connect("127.0.0.1:7878", ConnectOptions::default()).await?;
//! let plan = plan_upload(&["photos"], Some("backup"))?; // stores backup/photos/...
//! let report = hub.send_plan(plan, SendOptions::default(), |_event| {}).await?;
//! for f in &report.failed {
//!     eprintln!("{}: {}", f.local.display(), f.reason);
//! }
//! println!("{} stored, {} already there", report.stored.len(), report.skipped.len());
//! # Ok(()) }
//! ```
//!
//! A [`Client`] is one TCP connection, plain or TLS ([`ConnectOptions::tls`]). A background task reads and decodes the hub's messages;
//! each method writes its request and waits for the matching answer, never longer than the
//! timeouts in [`ConnectOptions`]. Uploads keep many offers in flight and read, hash and send
//! files on a blocking thread, so one connection can saturate a fast link.

#![forbid(unsafe_code)]

mod client;
mod delete;
mod download;
mod error;
mod events;
mod live;
mod plan;
mod tls;
mod transport;
mod upload;

pub use client::{Client, ConnectOptions, PingResult};
pub use download::GetResult;
pub use error::{ClientError, Result};
pub use events::{EventFilter, Events, Followed};
pub use live::{
    CommandReply, DeviceCommand, FrameSink, LinkSnapshot, PublishOptions, Publisher,
    PublisherSnapshot, ReceivedFrame, Subscriber,
};
pub use plan::{plan_upload, remote_dir, PlanProblem, UploadJob, UploadPlan};
pub use tls::{certificate_fingerprint, format_fingerprint, parse_fingerprint, TlsOptions};
pub use upload::{
    FailedFile, FileOutcome, ProgressEvent, SendOptions, SendReport, StoredFile, Totals,
};

/// The protocol types this API exposes (listing entries, stored status, error codes...).
pub use framewire_proto::{
    frame_format, DeliveryStatus, ErrorCode, Event, ListEntry, ReplyStatus, StoredStatus, TextFrom,
    Welcome,
};
