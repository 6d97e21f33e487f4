//! `framewire ping [--count N]`

use std::process::ExitCode;
use std::time::Duration;

use framewire_proto::ClockEstimate;

use crate::{format, Global};

/// Arguments of `framewire ping`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// How many pings to send.
    #[arg(short, long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..))]
    count: u32,
    /// Pause between pings, in milliseconds.
    #[arg(long, default_value_t = 200, value_name = "MS")]
    interval: u64,
}

/// Pings, prints each round trip, then the best clock-offset estimate.
pub async fn run(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    let mut hub = global.connect().await?;
    let hub_name = hub.welcome().hub_name.clone();
    let mut clock = ClockEstimate::default();
    let mut rtts = Vec::new();
    for i in 0..args.count {
        if i > 0 {
            tokio::time::sleep(Duration::from_millis(args.interval)).await;
        }
        let p = hub.ping().await?;
        clock.add(p.sample);
        rtts.push(p.rtt);
        println!(
            "pong from {hub_name} ({}): seq={} rtt={} clock offset {}",
            global.server,
            i + 1,
            format::millis(p.rtt),
            format::offset_ms(p.clock_offset_us)
        );
    }
    if args.count > 1 {
        let min = rtts.iter().min().copied().unwrap_or_default();
        let max = rtts.iter().max().copied().unwrap_or_default();
        let avg = rtts.iter().sum::<Duration>() / rtts.len() as u32;
        println!(
            "{} pings: rtt min/avg/max {}/{}/{}; hub clock {} from ours (± {})",
            args.count,
            format::millis(min),
            format::millis(avg),
            format::millis(max),
            format::offset_ms(clock.offset_us().unwrap_or(0)),
            format::millis(Duration::from_micros(
                clock.rtt_us().unwrap_or(0).max(0) as u64 / 2
            )),
        );
    }
    Ok(ExitCode::SUCCESS)
}
