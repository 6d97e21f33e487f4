//! `framewire get REMOTE_PATH [-o LOCAL]`

use std::path::PathBuf;
use std::process::ExitCode;

use crate::{format, Global};

/// Arguments of `framewire get`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The stored file's path.
    remote: String,
    /// Where to write it: a file, or an existing folder [default: its name, in the current folder].
    #[arg(short, long, value_name = "LOCAL")]
    output: Option<PathBuf>,
}

/// Downloads, verifies and renames into place.
pub async fn run(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    let local = args.output.unwrap_or_else(|| PathBuf::from("."));
    let mut hub = global.connect().await?;
    let got = hub.get(&args.remote, &local).await?;
    if !global.quiet {
        eprintln!(
            "saved {} to {} ({}, blake3 {})",
            got.remote,
            got.local.display(),
            format::bytes(got.size),
            hex::encode(&got.hash[..8])
        );
    }
    Ok(ExitCode::SUCCESS)
}
