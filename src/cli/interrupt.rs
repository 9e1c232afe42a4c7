//! What Ctrl-C cleans up before tether exits: Batch jobs this run submitted (Batch keeps a
//! job after its submitter is gone, so nothing else would stop it) and the project lock.
//! A job only followed (`run --attach`) is left running: the run that submitted it owns it.

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

/// After Ctrl-C: terminates the Batch jobs this run submitted, then releases the lock.
pub async fn clean_up(printer: &Printer) {
    let submitted = std::mem::take(&mut *SUBMITTED.lock().unwrap_or_else(|e| e.into_inner()));
    let terminations = submitted.iter().map(|(cloud, job, id)| async move {
        let ended = tokio::time::timeout(
            CLEAN_UP_WITHIN,
            cloud.terminate_job(id, "tether run was interrupted (Ctrl-C)"),
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
