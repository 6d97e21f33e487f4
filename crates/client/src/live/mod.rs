//! Live video: publish frames ([`Publisher`]), receive them newest-first ([`Subscriber`]), answer
//! commands as a device ([`DeviceCommand`]) and send commands ([`Client::command`]).
//!
//! Publishers and subscribers each own one [`link`](link::Link): a background task that
//! reconnects with backoff when the hub goes away, so a camera loop or a processing loop never has
//! to care: frames produced while the hub is away replace each other (only the newest is kept),
//! and a subscriber simply waits for the next frame.
//!
//! Freshness comes from never queueing: a publisher keeps one pending frame (a newer one replaces
//! it, counted as skipped) and at most `in_flight` unacknowledged frames on the wire; a subscriber
//! acknowledges a frame only when its consumer asks for the next one, and the hub then sends the
//! newest frame it has. Those rules live in [`window`], free of I/O.
//!
//! [`Client::command`]: crate::Client::command

mod command;
mod device;
mod link;
mod publisher;
mod subscriber;
mod window;

pub use command::CommandReply;
pub use device::DeviceCommand;
pub use link::LinkSnapshot;
pub use publisher::{FrameSink, PublishOptions, Publisher, PublisherSnapshot};
pub use subscriber::{ReceivedFrame, Subscriber};
