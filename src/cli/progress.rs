//! How long waits show: on a terminal, indicatif bars and spinners redrawn in place (with
//! counts, bytes, elapsed time and ETA); anywhere else (CI logs, pipes, files) plain lines
//! now and then, with no control sequence. Lines printed while something is drawn go above
//! the drawing, and every bar or spinner is cleared when its wait ends, so the final screen
//! holds finished lines only.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle, TermLike};

use super::printer::{terminal_safe, Printer};

/// How often the drawing may be redrawn (indicatif's default for a terminal).
const REFRESHES_PER_SECOND: u8 = 20;

/// Columns left free at the end of every drawn line.
const ECHO_ROOM: u16 = 2;

/// stderr as indicatif's terminal, `ECHO_ROOM` columns narrower than it is. indicatif pads
/// each line to the terminal's width and parks the cursor past the last column; a typed
/// Ctrl-C's `^C`, which the terminal itself echoes there, would then wrap onto a line of
/// its own and the final clearing would miss the drawing by one line. With two columns
/// to spare the echo stays on the drawing's line and is cleared with it.
#[derive(Debug)]
struct Narrowed(console::Term);

impl TermLike for Narrowed {
    fn width(&self) -> u16 {
        self.0.size().1.saturating_sub(ECHO_ROOM).max(1)
    }

    fn height(&self) -> u16 {
        self.0.size().0
    }

    fn move_cursor_up(&self, n: usize) -> std::io::Result<()> {
        self.0.move_cursor_up(n)
    }

    fn move_cursor_down(&self, n: usize) -> std::io::Result<()> {
        self.0.move_cursor_down(n)
    }

    fn move_cursor_right(&self, n: usize) -> std::io::Result<()> {
        self.0.move_cursor_right(n)
    }

    fn move_cursor_left(&self, n: usize) -> std::io::Result<()> {
        self.0.move_cursor_left(n)
    }

    fn write_line(&self, s: &str) -> std::io::Result<()> {
        self.0.write_line(s)
    }

    fn write_str(&self, s: &str) -> std::io::Result<()> {
        self.0.write_str(s)
    }

    fn clear_line(&self) -> std::io::Result<()> {
        self.0.clear_line()
    }

    fn flush(&self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// How often a spinner turns (and its elapsed time moves) while nothing else happens.
const TICK: Duration = Duration::from_millis(120);

pub struct Live<'a> {
    printer: &'a Printer,
    /// `None` when stderr is no terminal: then nothing is drawn.
    bars: Option<MultiProgress>,
}

impl<'a> Live<'a> {
    pub fn new(printer: &'a Printer) -> Live<'a> {
        let bars = std::io::stderr().is_terminal().then(|| {
            MultiProgress::with_draw_target(ProgressDrawTarget::term_like_with_hz(
                Box::new(Narrowed(console::Term::stderr())),
                REFRESHES_PER_SECOND,
            ))
        });
        Live { printer, bars }
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
