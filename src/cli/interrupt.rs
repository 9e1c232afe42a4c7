//! What a run that is told to end cleans up before tether exits, whichever way it is told:
//! Ctrl-C (SIGINT), SIGTERM (CI cancelling a job, `timeout`, `docker stop`) or SIGHUP (a
//! dropped ssh session, a closed terminal). Batch jobs this run submitted are terminated
//! (Batch keeps a job after its submitter is gone, so nothing else would stop it) and the
//! project lock is released; local tasks are killed as their handles drop. A job only
//! followed (`run --attach`) is left running: the run that submitted it owns it.

use std::sync::Mutex;
use std::time::Duration;

use tether::aws::Cloud;
use tether::jobs::Event;

use super::printer::Printer;

/// Batch jobs submitted by this process and not yet ended: (client, job name, job id).
static SUBMITTED: Mutex<Vec<(Cloud, String, String)>> = Mutex::new(Vec::new());

/// How long each clean-up call may take after Ctrl-C.
const CLEAN_UP_WITHIN: Duration = Duration::from_secs(5);

/// Notes the Batch jobs a run submits and forgets those that end.
pub fn track(cloud: &Cloud, event: &Event<'_>) {
    let mut submitted = SUBMITTED.lock().unwrap_or_else(|e| e.into_inner());
    match event {
        Event::BatchSubmitted { job, id } => {
            submitted.push((cloud.clone(), (*job).to_string(), (*id).to_string()));
        }
        Event::BatchReleased { id, .. } => submitted.retain(|(_, _, held)| held != id),
        _ => {}
    }
}

/// A signal that ends a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// Ctrl-C.
    Interrupt,
    /// SIGTERM.
    Terminate,
    /// SIGHUP.
    HangUp,
}

impl Signal {
    /// 128 plus the signal's number.
    pub fn exit_code(self) -> u8 {
        match self {
            Signal::Interrupt => 130,
            Signal::Terminate => 143,
            Signal::HangUp => 129,
        }
    }

    /// How it is named to people and in Batch's status reason.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Interrupt => "Ctrl-C",
            Signal::Terminate => "SIGTERM",
            Signal::HangUp => "SIGHUP",
        }
    }
}

/// Waits for the first of SIGINT, SIGTERM and SIGHUP. Listening starts when this is
/// called, before the command runs, so that no signal is missed; a listener that cannot
/// be installed leaves that signal its default action.
pub fn any_signal() -> impl std::future::Future<Output = Signal> {
    use tokio::signal::unix::{signal, SignalKind};
    let listen = |kind: SignalKind| signal(kind).ok();
    let (mut interrupt, mut terminate, mut hang_up) = (
        listen(SignalKind::interrupt()),
        listen(SignalKind::terminate()),
        listen(SignalKind::hangup()),
    );
    async fn next(listener: &mut Option<tokio::signal::unix::Signal>) {
        match listener {
            Some(listener) => {
                listener.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    }
    async move {
        tokio::select! {
            _ = next(&mut interrupt) => Signal::Interrupt,
            _ = next(&mut terminate) => Signal::Terminate,
            _ = next(&mut hang_up) => Signal::HangUp,
        }
    }
}

/// After a signal: terminates the Batch jobs this run submitted, then releases the lock.
pub async fn clean_up(printer: &Printer, signal: Signal) {
    let submitted = std::mem::take(&mut *SUBMITTED.lock().unwrap_or_else(|e| e.into_inner()));
    let terminations = submitted.iter().map(|(cloud, job, id)| async move {
        let ended = tokio::time::timeout(
            CLEAN_UP_WITHIN,
            cloud.terminate_job(id, &format!("tether run was interrupted ({})", signal.name())),
        )
        .await;
        match ended {
            Ok(Ok(())) => printer.status(&format!("{job}: terminated Batch job {id}")),
            Ok(Err(error)) => printer.status(&format!(
                "{job}: cannot terminate Batch job {id} ({error}); terminate it with `aws batch terminate-job --job-id {id} --reason interrupted`"
            )),
            Err(_) => printer.status(&format!(
                "{job}: Batch did not answer within {}s; terminate job {id} with `aws batch terminate-job --job-id {id} --reason interrupted`",
                CLEAN_UP_WITHIN.as_secs()
            )),
        }
    });
    futures::future::join_all(terminations).await;
    super::release_held_lock().await;
}
