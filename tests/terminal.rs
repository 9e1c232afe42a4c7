//! Progress as a person sees it: tether run inside a real terminal (a tmux pane), its
//! screen captured mid-run and at the end; and the same run into a pipe, as CI logs it.
//! The job is local and the environment empty: no AWS configuration is needed for it.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A spec whose one job takes a few seconds: twelve inputs, one at a time. Returns the
/// inputs' bytes.
fn slow_lab(dir: &Path) -> usize {
    std::fs::create_dir_all(dir.join("data")).expect("data dir");
    let mut bytes = 0;
    for i in 0..12 {
        let text = format!("w{i} x y\n");
        bytes += text.len();
        std::fs::write(dir.join(format!("data/{i}.txt")), text).expect("input");
    }
    std::fs::write(
        dir.join("tether.yaml"),
        "project: term\njobs:\n  slow:\n    inputs: ./data/*.txt\n    command: sleep 0.4; wc -w {input}\n    parallelism: 1\n",
    )
    .expect("spec");
    bytes
}

/// A tmux server of the test's own (its socket in the test's directory).
struct Terminal {
    socket: std::path::PathBuf,
}

impl Terminal {
    fn tmux(&self) -> Command {
        let mut command = Command::new("tmux");
        command
            .arg("-S")
            .arg(&self.socket)
            .args(["-f", "/dev/null"]);
        command
    }

    /// Starts `tether run` in a 110x30 pane, with nothing of this environment but PATH;
    /// the pane stays after it exits, showing its exit status.
    fn start(dir: &Path) -> Terminal {
        let terminal = Terminal {
            socket: dir.join("tmux.sock"),
        };
        let shell = format!(
            "cd '{}' && env -i PATH='{}' HOME='{}' TERM=xterm-256color '{}' run; echo tether-exit-$?; sleep 600",
            dir.display(),
            std::env::var("PATH").unwrap_or_default(),
            dir.display(),
            env!("CARGO_BIN_EXE_tether"),
        );
        let status = terminal
            .tmux()
            .args([
                "new-session",
                "-d",
                "-x",
                "110",
                "-y",
                "30",
                "-s",
                "t",
                &shell,
            ])
            .status()
            .expect("tmux (installed by tests/support/install-sshd.sh)");
        assert!(status.success(), "tmux new-session");
        terminal
    }

    /// The pane's screen as text.
    fn screen(&self) -> String {
        let output = self
            .tmux()
            .args(["capture-pane", "-p", "-t", "t"])
            .output()
            .expect("capture-pane");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Captures the screen until `ready` says yes (within 30 s).
    #[track_caller]
    fn wait_for(&self, what: &str, ready: impl Fn(&str) -> bool) -> String {
        let started = Instant::now();
        loop {
            let screen = self.screen();
            if ready(&screen) {
                return screen;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the screen never showed {what}:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = self.tmux().arg("kill-server").status();
    }
}

#[test]
fn on_a_terminal_a_job_draws_a_bar_mid_run_and_leaves_only_finished_lines() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bytes = slow_lab(dir.path());
    let terminal = Terminal::start(dir.path());

    let mid = terminal.wait_for("the job's bar", |screen| {
        screen
            .lines()
            .any(|l| l.contains("slow [=") && l.contains("/12 tasks") && l.contains("ETA"))
    });
    let bar = mid
        .lines()
        .find(|l| l.contains("/12 tasks"))
        .expect("the bar");
    assert!(
        bar.contains(&format!(" B of {bytes} B (")) && bar.contains(" B/s)"),
        "bytes and rate: {bar}"
    );

    let end = terminal.wait_for("the end of the run", |screen| {
        screen.contains("tether-exit-")
    });
    assert!(end.contains("tether-exit-0"), "{end}");
    assert!(end.contains("slow: succeeded in"), "{end}");
    assert!(
        end.contains("slow                 ok             12"),
        "{end}"
    );
    assert!(
        !end.contains("/12 tasks") && !end.contains("ETA") && !end.contains("[="),
        "the bar is cleared at the end:\n{end}"
    );
    assert!(
        !end.contains('\u{1b}') && !end.contains("[2K") && !end.contains("[1A"),
        "no control sequence is left on the screen:\n{end:?}"
    );
}

/// The processes whose parent is `pid`, from `/proc` (no procps needed).
fn children_of(pid: &str) -> Vec<String> {
    std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{name}/stat")).ok()?;
            // `pid (comm) state ppid ...`: the command may hold spaces, so split after `)`.
            let parent = stat.rsplit_once(')')?.1.split_whitespace().nth(1)?;
            (parent == pid).then_some(name)
        })
        .collect()
}

/// How a run is interrupted.
enum Interrupt {
    /// Ctrl-C typed on the terminal: the terminal sends SIGINT and echoes `^C` itself.
    Typed,
    /// SIGINT sent by another process (a supervisor, a CI runner).
    Sent,
}

/// The final screen of a run interrupted mid-bar.
fn interrupted_screen(how: Interrupt) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    slow_lab(dir.path());
    let terminal = Terminal::start(dir.path());
    terminal.wait_for("the job's bar", |screen| screen.contains("/12 tasks"));
    let status = match how {
        Interrupt::Typed => terminal
            .tmux()
            .args(["send-keys", "-t", "t", "C-c"])
            .status()
            .expect("type Ctrl-C"),
        Interrupt::Sent => {
            let shell = terminal
                .tmux()
                .args(["display-message", "-p", "-t", "t", "#{pane_pid}"])
                .output()
                .expect("the pane's shell");
            let shell = String::from_utf8_lossy(&shell.stdout).trim().to_string();
            // The shell's child: `env`, which became tether.
            let tether = children_of(&shell);
            assert_eq!(tether.len(), 1, "tether runs in the pane: {tether:?}");
            Command::new("kill")
                .args(["-INT", &tether[0]])
                .status()
                .expect("kill")
        }
    };
    assert!(status.success());
    terminal.wait_for("the end of the run", |screen| {
        screen.contains("tether-exit-")
    })
}

/// An interrupted run leaves no drawing behind, whether Ctrl-C was typed (the terminal
/// then echoes `^C` where the cursor is, which the drawing leaves room for) or sent.
#[test]
fn an_interrupt_mid_run_leaves_no_bar_behind() {
    for how in [Interrupt::Typed, Interrupt::Sent] {
        let end = interrupted_screen(how);
        assert!(end.contains("tether-exit-130"), "{end}");
        assert!(end.contains("interrupted"), "{end}");
        assert!(
            !end.contains("/12 tasks") && !end.contains("ETA"),
            "the bar is cleared when the run is cut short:\n{end}"
        );
    }
}

#[test]
fn into_a_pipe_the_same_run_prints_plain_lines_without_control_sequences() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bytes = slow_lab(dir.path());
    let output = Command::new(env!("CARGO_BIN_EXE_tether"))
        .arg("run")
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir.path())
        .env("TERM", "xterm-256color")
        .stdin(Stdio::null())
        .output()
        .expect("tether run");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("slow: started, 12 task(s), {bytes} B")),
        "{stderr}"
    );
    assert!(
        stderr.contains("tasks done, 0 failed"),
        "a line now and then: {stderr}"
    );
    assert!(!stderr.contains('\u{1b}'), "{stderr:?}");
    assert!(!stderr.contains("ETA"), "{stderr}");
}
