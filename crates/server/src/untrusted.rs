//! Text a client chose (messages, names, commands) on its way into the hub's log and event log:
//! bounded in length and with control characters escaped, so a client can neither flood the log
//! (five 16 MiB texts once added 80 MiB to it), nor forge a log line with a newline, nor drive the
//! operator's terminal with escape sequences.

use std::fmt;

/// Longest piece of client text written to the log, in characters.
const LOG_CHARS: usize = 200;
/// Longest client text kept in the event log, in characters.
pub(crate) const EVENT_CHARS: usize = 1000;
/// Longest client name kept (Hello.name), in characters.
const NAME_CHARS: usize = 64;

/// Displays client text for the log: at most [`LOG_CHARS`] characters, control characters
/// escaped (`\n`, `\u{1b}`), and how much was left out.
pub(crate) struct Shown<'a>(&'a str);

/// Client text as it may appear in the log.
pub(crate) fn shown(s: &str) -> Shown<'_> {
    Shown(s)
}

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_bounded(f, self.0, LOG_CHARS)
    }
}

fn write_bounded(out: &mut impl fmt::Write, s: &str, max: usize) -> fmt::Result {
    for (chars, (i, c)) in s.char_indices().enumerate() {
        if chars == max {
            return write!(out, "… (+{} bytes)", s.len() - i);
        }
        if c.is_control() {
            write!(out, "{}", c.escape_default())?;
        } else {
            out.write_char(c)?;
        }
    }
    Ok(())
}

/// Client text as it is kept in the event log (shown by the dashboard, sent to programs).
pub(crate) fn bounded(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max * 4));
    let _ = write_bounded(&mut out, s, max);
    out
}

/// A name a client picked (its Hello name), as the hub records it: control characters replaced
/// by `?`, at most 64 characters.
pub(crate) fn clean_name(s: &str) -> String {
    s.chars()
        .take(NAME_CHARS)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_text_cannot_forge_lines_or_flood() {
        assert_eq!(shown("hi").to_string(), "hi");
        assert_eq!(
            shown("ok\n2026-01-01 INFO forged\u{1b}[2J").to_string(),
            "ok\\n2026-01-01 INFO forged\\u{1b}[2J"
        );
        let big = "x".repeat(16 << 20);
        let s = shown(&big).to_string();
        assert!(s.len() < 300, "{}", s.len());
        assert!(
            s.ends_with(&format!("… (+{} bytes)", (16 << 20) - 200)),
            "{s}"
        );
        assert_eq!(bounded("é".repeat(5).as_str(), 3), "ééé… (+4 bytes)");
        assert_eq!(clean_name("cam\n1\u{7}"), "cam?1?");
        assert_eq!(clean_name(&"n".repeat(100)).len(), 64);
    }
}
