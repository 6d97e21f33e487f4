//! framewire's test kit, shared by the tests (and examples) of every crate of the workspace:
//!
//! - [`TestHub`]: a real hub in-process on 127.0.0.1 with a temporary data folder, optional TLS,
//!   bounded start and stop. Every in-process hub of the tests starts here, so a change to how the
//!   hub is opened and served is made in [`hub`] alone.
//! - [`data`]: seeded, deterministic bytes, files and folder trees.
//! - [`frames`]: sample JPEG frames made with `framewire-media`'s synthetic pattern (the 39
//!   1920×1080 frames the tests use, also as files in a folder).
//!
//! Nothing here reads data from outside the repository: a bare clone runs every test.

pub mod data;
pub mod frames;
pub mod hub;

pub use framewire_server::Config;
pub use hub::{TestHub, TestHubBuilder, HUB_WAIT};
