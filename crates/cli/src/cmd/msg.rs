//! `framewire msg TEXT`

use std::process::ExitCode;

use crate::Global;

/// Arguments of `framewire msg`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The text to send.
    text: String,
}

/// Sends the text and prints the hub's answer.
pub async fn run(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    let mut hub = global.connect().await?;
    let reply = hub.message(&args.text).await?;
    println!("{reply}");
    Ok(ExitCode::SUCCESS)
}
