//! `framewire cmd NAME COMMAND [ARGS...]`: send a command to a device through the hub.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use framewire_client::{ClientError, ConnectOptions, ReplyStatus};

use crate::{format, Global};

/// How much longer than the device's time the CLI waits, so that the hub's own `Timeout` answer
/// (sent when its limit passes) arrives before the CLI gives up.
const HUB_MARGIN: Duration = Duration::from_secs(2);

/// Arguments of `framewire cmd`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  framewire cmd cam status
  framewire cmd cam capture          # prints the stored snapshot's path
  framewire cmd cam set fps 5")]
pub struct Args {
    /// The device's name.
    device: String,
    /// The command, e.g. `status`.
    command: String,
    /// Its arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
    /// How long the device has to answer, in seconds. The hub enforces its own limit
    /// (`serve --command-timeout`, 10 s by default) and answers `timeout` when it passes.
    #[arg(long, default_value_t = 10.0, value_name = "SECS", value_parser = crate::cmd::serve::parse_secs)]
    timeout: f64,
}

/// Prints the device's answer; exits 1 unless it is `Ok`.
pub async fn run(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    let wait = Duration::from_secs_f64(args.timeout);
    let opts = ConnectOptions {
        io_timeout: wait + HUB_MARGIN,
        ..global.connect_options()
    };
    let mut hub = framewire_client::Client::connect(&global.server, opts).await?;
    let reply = match hub.command(&args.device, &args.command, &args.args).await {
        Ok(r) => r,
        Err(ClientError::Timeout { after, .. }) => anyhow::bail!(
            "device {:?} did not answer within {} (and neither did the hub)",
            args.device,
            format::seconds(after)
        ),
        Err(e) => return Err(e.into()),
    };
    let _ = hub.close().await;
    let text = reply.text();
    let line = std::iter::once(args.command.as_str())
        .chain(args.args.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(" ");
    match reply.status {
        ReplyStatus::Ok => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())?;
            if !text.is_empty() && !text.ends_with('\n') {
                out.write_all(b"\n")?;
            }
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
        ReplyStatus::UnknownDevice => anyhow::bail!(
            "no device named {:?} is connected to the hub at {}",
            args.device,
            global.server
        ),
        ReplyStatus::UnknownCommand => {
            anyhow::bail!("device {:?} does not know {line:?}: {text}", args.device)
        }
        ReplyStatus::Failed => anyhow::bail!("{} {line}: {text}", args.device),
        // The hub's words: `device "cam" did not answer within 10000 ms`.
        ReplyStatus::Timeout if !text.is_empty() => anyhow::bail!("{text}"),
        ReplyStatus::Timeout => anyhow::bail!(
            "device {:?} did not answer within the hub's time limit",
            args.device
        ),
    }
}
