//! Where a command's results go: text for a person, or one JSON object a line for a
//! program (`--json`).

use std::io::Write;

use serde::Serialize;

/// Where results go: text for a person, or JSON lines for a program.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub json: bool,
}

/// One result as a person reads it; as JSON it is the value itself.
pub trait Line: Serialize {
    fn text(&self) -> String;
}

impl Output {
    /// Prints one line. A closed stdout (`| head`) is not an error: the reader has
    /// what it wanted.
    pub fn print(self, line: &impl Line) {
        let text = if self.json {
            serde_json::to_string(line).unwrap_or_default()
        } else {
            line.text()
        };
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{text}");
    }

    /// A header line (column names) for text output only.
    pub fn header(self, text: &str) {
        if !self.json {
            let _ = writeln!(std::io::stdout().lock(), "{text}");
        }
    }
}
