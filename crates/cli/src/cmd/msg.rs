//! `framewire msg TEXT`, `framewire msg --to NAME TEXT`

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
    #[arg(long, value_name = "ADDR", conflicts_with = "to")]
    udp: Option<String>,
    /// Deliver it to whichever client holds this name (a device, or a program following events
    /// under it) instead; exits 1 if nobody does.
    #[arg(long, value_name = "NAME")]
    to: Option<String>,
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
    if let Some(to) = &args.to {
        let mut hub = global.connect().await?;
        return Ok(match hub.text_to(to, &args.text).await? {
            framewire_client::DeliveryStatus::Delivered => {
                println!("delivered to {to}");
                ExitCode::SUCCESS
            }
            framewire_client::DeliveryStatus::NoReceiver => {
                eprintln!("no such receiver: nobody holds the name {to:?}");
                ExitCode::FAILURE
            }
            framewire_client::DeliveryStatus::ReceiverBusy => {
                eprintln!("{to} is not reading its texts (its queue is full); not delivered");
                ExitCode::FAILURE
            }
        });
    }
    let mut hub = global.connect().await?;
    let reply = hub.message(&args.text).await?;
    println!("{reply}");
    Ok(ExitCode::SUCCESS)
}
