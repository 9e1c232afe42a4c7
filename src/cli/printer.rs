//! All output goes through the `Printer`: human text and progress to stderr, data (JSON
//! plans) to stdout. Styles are ANSI codes that `anstream` strips when the stream is not a
//! colour terminal or `NO_COLOR` is set; meaning never rests on colour alone.
//!
//! Text from the account (tags, Batch's status reasons, which anyone allowed to terminate a
//! job can write, an instance's console output, S3 keys) reaches the terminal here, so every
//! control character but newline and tab is shown escaped (`\x1b`), never sent: no such
//! text can move the cursor, rewrite a line, set the window title or the clipboard. Only
//! colour (SGR) sequences pass, which tether's own styles are.

use std::borrow::Cow;
use std::fmt;
use std::io::Write;

use tether::apply::StepError;
use tether::aws::AwsError;

pub struct Printer;

impl Printer {
    pub fn new() -> Printer {
        Printer
    }

    /// A line of human text on stderr.
    pub fn status(&self, text: &str) {
        let mut stderr = anstream::stderr().lock();
        let _ = writeln!(stderr, "{}", terminal_safe(text));
    }

    /// Text without a newline on stderr, flushed (a prompt).
    pub fn prompt(&self, text: &str) {
        let mut stderr = anstream::stderr().lock();
        let _ = write!(stderr, "{}", terminal_safe(text));
        let _ = stderr.flush();
    }

    /// Text data on stdout (a report, a man page), shown as [`terminal_safe`] shows it. A
    /// closed pipe is reported to the caller, which exits quietly.
    pub fn data(&self, text: &str) -> std::io::Result<()> {
        let mut stdout = anstream::stdout().lock();
        stdout.write_all(terminal_safe(text).as_bytes())?;
        stdout.flush()
    }

    /// JSON on stdout, escaped by JSON's rules only (see [`json_safe`]), so a parser
    /// reads back exactly what the account holds and a terminal is sent no control
    /// character. `text` is what `serde_json` wrote.
    pub fn json(&self, text: &str) -> std::io::Result<()> {
        // Written as it is: `anstream` would strip what looks like a colour sequence.
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(json_safe(text).as_bytes())?;
        stdout.flush()
    }

    /// An error with its causes and, where one is known, a hint:
    ///
    /// ```text
    /// error: cannot read the spec file `x.yaml`
    ///   caused by: No such file or directory (os error 2)
    ///
    /// hint: ...
    /// ```
    pub fn error(&self, error: &anyhow::Error) {
        let red = anstyle::AnsiColor::Red.on_default().bold();
        let mut text = format!("{red}error{red:#}: {error}");
        for cause in error.chain().skip(1) {
            text.push_str(&format!("\n  caused by: {cause}"));
        }
        if let Some(hint) = hint_of(error) {
            text.push_str(&format!("\n\nhint: {hint}"));
        }
        self.status(&text);
    }
}

/// `text` with every control character but newline and tab written out (`\x1b`, `\r`,
/// `\u{9b}`), except colour sequences (`ESC [ digits;... m`).
pub fn terminal_safe(text: &str) -> Cow<'_, str> {
    let unsafe_char = |c: char| c.is_control() && c != '\n' && c != '\t';
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if c == '\u{1b}' {
            if let Some(length) = sgr_length(rest) {
                out.push_str(&rest[..length]);
                rest = &rest[length..];
                continue;
            }
        }
        if unsafe_char(c) {
            match c {
                '\r' => out.push_str("\\r"),
                c if u32::from(c) < 0x100 => out.push_str(&format!("\\x{:02x}", u32::from(c))),
                c => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            }
        } else {
            out.push(c);
        }
        rest = &rest[c.len_utf8()..];
    }
    Cow::Owned(out)
}

/// `json` (as `serde_json` writes it) with DEL and the C1 controls (U+007F to U+009F)
/// written as `\u007f`..`\u009f`. `serde_json` escapes only U+0000 to U+001F, as JSON
/// requires; the rest would reach a terminal raw. Outside strings, JSON text holds only
/// ASCII punctuation and whitespace, so every such character is inside a string, where
/// the `\u` escape means the same character to any parser.
pub fn json_safe(json: &str) -> Cow<'_, str> {
    let escaped = |c: char| ('\u{7f}'..='\u{9f}').contains(&c);
    if !json.chars().any(escaped) {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if escaped(c) {
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// The length of the colour sequence `ESC [ [0-9;]* m` that `text` starts with, if it does.
fn sgr_length(text: &str) -> Option<usize> {
    let body = text.strip_prefix("\u{1b}[")?;
    let parameters = body
        .bytes()
        .take_while(|b| b.is_ascii_digit() || *b == b';')
        .count();
    (body.as_bytes().get(parameters) == Some(&b'm')).then_some(2 + parameters + 1)
}

/// The hint carried by any error in the chain that knows one.
fn hint_of(error: &anyhow::Error) -> Option<String> {
    error.chain().find_map(|cause| {
        if let Some(aws) = cause.downcast_ref::<AwsError>() {
            aws.hint()
        } else if let Some(step) = cause.downcast_ref::<StepError>() {
            step.hint.clone()
        } else {
            cause.downcast_ref::<WithHint>().map(|h| h.hint.clone())
        }
    })
}

/// Whether the error is a closed stdout (`tether plan --json | head`).
pub fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// A command-layer error with a hint.
#[derive(Debug)]
pub struct WithHint {
    message: String,
    hint: String,
}

impl WithHint {
    pub fn new(message: impl Into<String>, hint: impl Into<String>) -> WithHint {
        WithHint {
            message: message.into(),
            hint: hint.into(),
        }
    }
}

impl fmt::Display for WithHint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for WithHint {}

#[cfg(test)]
mod tests {
    use super::{json_safe, terminal_safe};

    // Regression: a DEL in an S3 key reached stdout as `\x7f`, which is no JSON escape,
    // and CI's parser failed on `tether run --json`.
    #[test]
    fn json_is_escaped_by_json_rules_and_reads_back_the_same() {
        let value = serde_json::json!({"key": "del\u{7f} c1\u{9b}31m nl\n esc\u{1b}"});
        let text = serde_json::to_string_pretty(&value).expect("serialises");
        let safe = json_safe(&text);
        assert!(!safe.chars().any(|c| c.is_control() && c != '\n'), "{safe}");
        assert!(
            safe.contains("\\u007f") && safe.contains("\\u009b"),
            "{safe}"
        );
        let back: serde_json::Value = serde_json::from_str(&safe).expect("still JSON");
        assert_eq!(back, value);
    }

    #[test]
    fn text_from_the_account_cannot_drive_the_terminal() {
        assert_eq!(terminal_safe("plain\n\tline"), "plain\n\tline");
        // Colour passes; a title, a clipboard write, a cursor move, a carriage return and
        // a C1 control are shown, not sent.
        assert_eq!(
            terminal_safe("\u{1b}[1;31merror\u{1b}[0m"),
            "\u{1b}[1;31merror\u{1b}[0m"
        );
        assert_eq!(
            terminal_safe("a\u{1b}]0;pwned\u{7}b"),
            "a\\x1b]0;pwned\\x07b"
        );
        assert_eq!(
            terminal_safe("\u{1b}]52;c;ZXZpbA==\u{7}"),
            "\\x1b]52;c;ZXZpbA==\\x07"
        );
        assert_eq!(terminal_safe("ok\u{1b}[2Aup"), "ok\\x1b[2Aup");
        assert_eq!(terminal_safe("real\rfake"), "real\\rfake");
        assert_eq!(terminal_safe("c1\u{9b}31m"), "c1\\x9b31m");
        assert_eq!(terminal_safe("end\u{1b}"), "end\\x1b");
    }
}
