//! `framewire rm PATH… [--prefix P [--yes]]`: deletes stored files. A path is answered only once
//! the file is durably gone from the hub.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use anyhow::Context;

use super::UsageError;
use crate::Global;

/// Arguments of `framewire rm`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Stored files to delete.
    #[arg(value_name = "PATH", required_unless_present = "prefix")]
    paths: Vec<String>,
    /// Delete every file whose path starts with P (a folder: `holiday/`). Asks for confirmation
    /// with the count, unless --yes.
    #[arg(long, value_name = "P")]
    prefix: Option<String>,
    /// Do not ask before deleting a whole prefix.
    #[arg(short, long)]
    yes: bool,
}

/// Deletes, prints one line per file, exits 1 if any could not be deleted.
pub async fn run(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    let mut hub = global.connect().await?;
    let mut paths = args.paths;
    if let Some(prefix) = &args.prefix {
        if prefix.is_empty() && !args.yes {
            return Err(UsageError(
                "an empty --prefix means every file on the hub; add --yes if you mean it".into(),
            )
            .into());
        }
        let listed = hub.list(prefix).await?;
        if listed.is_empty() {
            anyhow::bail!("no file stored under {prefix:?}");
        }
        let bytes: u64 = listed.iter().map(|e| e.size).sum();
        if !args.yes
            && !confirm(&format!(
                "delete {} file{} ({}) under {prefix:?}?",
                listed.len(),
                if listed.len() == 1 { "" } else { "s" },
                crate::format::bytes(bytes)
            ))?
        {
            eprintln!("nothing deleted");
            return Ok(ExitCode::FAILURE);
        }
        paths.extend(listed.into_iter().map(|e| e.path));
    }
    let (mut deleted, mut failed, mut freed) = (0usize, 0usize, 0u64);
    hub.delete_many(&paths, |path, r| match r {
        Ok(size) => {
            deleted += 1;
            freed += size;
            if !global.quiet {
                println!("deleted {path}");
            }
        }
        Err(e) => {
            failed += 1;
            eprintln!("error: {path}: {e}");
        }
    })
    .await?;
    if !global.quiet && deleted + failed > 1 {
        eprintln!(
            "{deleted} deleted ({}), {failed} failed",
            crate::format::bytes(freed)
        );
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Asks on the terminal; without one, refuses (a script must say --yes).
fn confirm(question: &str) -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        return Err(UsageError(format!(
            "{question} Not asking without a terminal: add --yes to delete them"
        ))
        .into());
    }
    eprint!("{question} [y/N] ");
    std::io::stderr().flush().ok();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the answer")?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}
