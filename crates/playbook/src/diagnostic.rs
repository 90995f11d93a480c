use std::fmt;

use crate::node::Position;

/// One problem in a playbook, at a line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub position: Position,
    pub message: String,
}

impl Diagnostic {
    pub fn new(position: Position, message: impl Into<String>) -> Self {
        Diagnostic { position, message: message.into() }
    }

    /// Formats the problem as `FILE:LINE:COLUMN: message`.
    pub fn display_in<'a>(&'a self, file: &'a str) -> impl fmt::Display + 'a {
        DiagnosticInFile { file, diagnostic: self }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.position.line, self.position.column, self.message)
    }
}

struct DiagnosticInFile<'a> {
    file: &'a str,
    diagnostic: &'a Diagnostic,
}

impl fmt::Display for DiagnosticInFile<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.diagnostic)
    }
}

/// Every problem found in one playbook, in the order of their positions.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} problem(s) in the playbook, the first at {}", .0.len(), .0.first().map(|d| d.to_string()).unwrap_or_default())]
pub struct Diagnostics(pub Vec<Diagnostic>);
