//! `framewire msg TEXT`

use std::process::ExitCode;

use anyhow::Context;

use crate::Global;

/// Arguments of `framewire msg`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The text to send.
    text: String,
    /// Send it as one UDP datagram to this address instead (fire and forget; the hub must be
    /// started with `--udp`).
    #[arg(long, value_name = "ADDR")]
    udp: Option<String>,
}

/// Sends the text and prints the hub's answer.
pub async fn run(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    if let Some(addr) = &args.udp {
        let datagram = framewire_proto::Message::Text(framewire_proto::Text {
            id: 1,
            text: args.text.clone(),
        })
        .to_bytes()?;
        anyhow::ensure!(
            datagram.len() <= 65_507,
            "the text is too long for one UDP datagram"
        );
        let socket = tokio::net::UdpSocket::bind(if addr.starts_with('[') {
            "[::]:0"
        } else {
            "0.0.0.0:0"
        })
        .await?;
        socket
            .send_to(&datagram, addr)
            .await
            .with_context(|| format!("cannot send to {addr}"))?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut hub = global.connect().await?;
    let reply = hub.message(&args.text).await?;
    println!("{reply}");
    Ok(ExitCode::SUCCESS)
}
