//! Everything the runner prints: Claude's events and its own, one JSON line each on stdout, diagnostics on
//! stderr — all redacted.

use std::io::Write;

use agentfarm_shared::runner::RunnerEvent;

use agentfarm_shared::redact::Redactor;

/// The runner's printer.
#[derive(Debug, Clone)]
pub struct Output {
    redactor: Redactor,
}

impl Output {
    /// A printer that masks what `redactor` knows.
    pub fn new(redactor: Redactor) -> Self {
        Self { redactor }
    }

    /// Prints a line of Claude's output unchanged (but redacted).
    pub fn claude(&self, line: &str) {
        self.stdout(line);
    }

    /// Prints one of the runner's events.
    pub fn event(&self, event: &RunnerEvent) {
        self.stdout(&event.to_line());
    }

    /// Prints a diagnostic line on stderr.
    pub fn note(&self, text: &str) {
        let mut err = std::io::stderr().lock();
        // Nobody to tell if stderr is gone.
        let _ = writeln!(err, "{}", self.redactor.redact(text));
    }

    fn stdout(&self, line: &str) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", self.redactor.redact(line));
        let _ = out.flush();
    }
}
