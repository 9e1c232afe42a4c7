//! All output goes through the `Printer`: human text and progress to stderr, data (JSON
//! plans) to stdout. Styles are ANSI codes that `anstream` strips when the stream is not a
//! colour terminal or `NO_COLOR` is set; meaning never rests on colour alone.

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
        let _ = writeln!(stderr, "{text}");
    }

    /// Text without a newline on stderr, flushed (a prompt).
    pub fn prompt(&self, text: &str) {
        let mut stderr = anstream::stderr().lock();
        let _ = write!(stderr, "{text}");
        let _ = stderr.flush();
    }

    /// Data on stdout. A closed pipe is reported to the caller, which exits quietly.
    pub fn data(&self, text: &str) -> std::io::Result<()> {
        let mut stdout = anstream::stdout().lock();
        stdout.write_all(text.as_bytes())?;
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
