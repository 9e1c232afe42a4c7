//! Errors that point into a source file: a message, a `file:line:column`, the offending line
//! with a caret under it, and an optional hint.
//!
//! This module owns only the shape and the rendering of such errors; finding the position is
//! the job of whoever parsed the file (see `spec::source`).

use std::fmt;

/// A position in a named source file, with the text of its line kept for rendering.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// The file name as the user gave it (not canonicalised, so messages match their command).
    pub file: String,
    /// 1-based line number.
    pub line: usize,
    /// 1-based column number.
    pub column: usize,
    /// The full text of that line, without its newline.
    pub line_text: String,
}

impl Location {
    /// The location of 1-based `line` and `column` in `source`, named `file`.
    pub fn new(file: &str, source: &str, line: usize, column: usize) -> Location {
        let line_text = source
            .lines()
            .nth(line.saturating_sub(1))
            .unwrap_or_default()
            .to_string();
        Location {
            file: file.to_string(),
            line: line.max(1),
            column: column.max(1),
            line_text,
        }
    }
}

/// One error about a source file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// What is wrong, lower-case, no trailing period.
    pub message: String,
    /// Where it is wrong; `None` when the error is about the file as a whole.
    pub location: Option<Location>,
    /// How to fix it, when there is something better to say than the message.
    pub hint: Option<String>,
}

impl Diagnostic {
    /// A diagnostic at `location` with no hint.
    pub fn new(message: impl Into<String>, location: Option<Location>) -> Diagnostic {
        Diagnostic {
            message: message.into(),
            location,
            hint: None,
        }
    }

    /// The same diagnostic with a hint added.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Diagnostic {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for Diagnostic {
    /// Renders as rustc does:
    ///
    /// ```text
    /// invalid bucket name `Lab_Data`: ...
    ///   --> tether.yaml:5:3
    ///    |
    ///  5 |   Lab_Data:
    ///    |   ^
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(location) = &self.location {
            let number = location.line.to_string();
            let gutter = " ".repeat(number.len());
            write!(
                f,
                "\n{gutter}--> {}:{}:{}",
                location.file, location.line, location.column
            )?;
            write!(f, "\n{gutter} |")?;
            write!(f, "\n{number} | {}", location.line_text)?;
            // Columns count characters, so pad with the characters before the caret (tabs kept,
            // so the caret lines up in a terminal).
            let pad: String = location
                .line_text
                .chars()
                .take(location.column - 1)
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            write!(f, "\n{gutter} | {pad}^")?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "\n\nhint: {hint}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_location_line_and_caret_under_the_column() {
        let source = "project: x\nbuckets:\n  Bad_Name: {}\n";
        let diagnostic = Diagnostic::new(
            "invalid bucket name `Bad_Name`",
            Some(Location::new("tether.yaml", source, 3, 3)),
        )
        .with_hint("use lower-case letters");
        assert_eq!(
            diagnostic.to_string(),
            "invalid bucket name `Bad_Name`\n --> tether.yaml:3:3\n  |\n3 |   Bad_Name: {}\n  |   ^\n\nhint: use lower-case letters"
        );
    }

    #[test]
    fn renders_without_location() {
        let diagnostic = Diagnostic::new("the spec is empty", None);
        assert_eq!(diagnostic.to_string(), "the spec is empty");
    }
}
