//! `framewire ls [PREFIX] [--long]`

use std::io::Write;
use std::process::ExitCode;

use crate::{format, Global};

/// Arguments of `framewire ls`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only paths starting with this (e.g. `photos/`).
    #[arg(default_value = "")]
    prefix: String,
    /// Also show size, time stored (UTC), sender and the start of the BLAKE3 hash.
    #[arg(short, long)]
    long: bool,
}

/// Prints the stored paths, one per line.
pub async fn run(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    let mut hub = global.connect().await?;
    let entries = hub.list(&args.prefix).await?;
    let mut out = std::io::stdout().lock();
    for e in &entries {
        if args.long {
            writeln!(
                out,
                "{:>12}  {}  {:<16}  {}  {}",
                e.size,
                format::utc(e.stored_us),
                e.sender,
                hex::encode(&e.hash[..6]),
                e.path
            )?;
        } else {
            writeln!(out, "{}", e.path)?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
