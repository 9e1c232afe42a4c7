//! How long waits show: on a terminal, indicatif bars and spinners redrawn in place (with
//! counts, bytes, elapsed time and ETA); anywhere else (CI logs, pipes, files) plain lines
//! now and then, with no control sequence. Lines printed while something is drawn go above
//! the drawing, and every bar or spinner is cleared when its wait ends, so the final screen
//! holds finished lines only.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use super::printer::{terminal_safe, Printer};

/// How often a spinner turns (and its elapsed time moves) while nothing else happens.
const TICK: Duration = Duration::from_millis(120);

pub struct Live<'a> {
    printer: &'a Printer,
    /// `None` when stderr is no terminal: then nothing is drawn.
    bars: Option<MultiProgress>,
}

impl<'a> Live<'a> {
    pub fn new(printer: &'a Printer) -> Live<'a> {
        Live {
            printer,
            bars: std::io::stderr().is_terminal().then(MultiProgress::new),
        }
    }

    /// A status line, above whatever is drawn.
    pub fn status(&self, text: &str) {
        match &self.bars {
            Some(bars) => bars.suspend(|| self.printer.status(text)),
            None => self.printer.status(text),
        }
    }

    /// A bar of `len` steps in `template` (indicatif's), or `None` off a terminal.
    pub fn bar(&self, len: u64, template: &str) -> Option<ProgressBar> {
        let bars = self.bars.as_ref()?;
        let bar = bars.add(ProgressBar::new(len.max(1)));
        bar.set_style(
            ProgressStyle::with_template(template)
                .expect("a valid template")
                .progress_chars("=> "),
        );
        Some(bar)
    }

    /// A spinner showing `prefix: message (elapsed)`, or `None` off a terminal.
    pub fn spinner(&self, prefix: &str, message: &str) -> Option<ProgressBar> {
        let bars = self.bars.as_ref()?;
        let spinner = bars.add(ProgressBar::new_spinner());
        spinner.set_style(
            ProgressStyle::with_template("{spinner} {prefix}: {msg} ({elapsed})")
                .expect("a valid template"),
        );
        spinner.set_prefix(terminal_safe(prefix).into_owned());
        spinner.set_message(terminal_safe(message).into_owned());
        spinner.enable_steady_tick(TICK);
        Some(spinner)
    }
}
