//! `framewire events [--json] [--kind KIND]... [--prefix PATH] [--name NAME]`

use std::io::Write;
use std::process::ExitCode;

use framewire_client::{EventFilter, Followed};
use serde_json::{json, Map, Value};

use crate::Global;

/// Arguments of `framewire events`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// One JSON object per line: {"time_us", "kind", "dropped", and the event's fields}.
    #[arg(long)]
    json: bool,
    /// Only events of this kind (stored, message, device, stream, command, connect, disconnect,
    /// reject); repeat for several.
    #[arg(long = "kind", value_name = "KIND")]
    kinds: Vec<String>,
    /// Only events whose path starts with this (events without a path pass).
    #[arg(long, default_value = "")]
    prefix: String,
    /// Also receive texts addressed to this name (`framewire msg --to NAME`); printed as kind
    /// `text`.
    #[arg(long, default_value = "")]
    name: String,
}

/// Prints one line per event until the connection ends (or Ctrl-C).
pub async fn run(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    let hub = global.connect().await?;
    let mut events = hub
        .events(EventFilter {
            kinds: args.kinds,
            prefix: args.prefix,
            name: args.name,
        })
        .await?;
    eprintln!("following events");
    let mut out = std::io::stdout().lock();
    loop {
        let (time_us, dropped, kind, fields) = match events.next().await? {
            Followed::Event(e) => (e.time_us, e.dropped, e.kind, e.fields),
            Followed::Text(t) => (
                0,
                0,
                "text".to_owned(),
                vec![
                    ("from".to_owned(), t.from),
                    ("to".to_owned(), t.to),
                    ("text".to_owned(), t.text),
                ],
            ),
        };
        if args.json {
            let mut m = Map::new();
            m.insert("time_us".into(), json!(time_us));
            m.insert("kind".into(), json!(kind));
            m.insert("dropped".into(), json!(dropped));
            for (k, v) in fields {
                m.insert(k, Value::String(v));
            }
            writeln!(out, "{}", Value::Object(m))?;
        } else {
            if dropped > 0 {
                writeln!(
                    out,
                    "({dropped} events dropped: this follower read too slowly)"
                )?;
            }
            let rest: Vec<String> = fields
                .iter()
                .map(|(k, v)| format!("{k}={}", v.escape_debug()))
                .collect();
            writeln!(out, "{kind} {}", rest.join(" "))?;
        }
        out.flush()?;
    }
}
