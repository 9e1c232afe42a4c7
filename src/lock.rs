//! The project lock: one run at a time changes a project's resources, whoever starts it (a
//! person, a CI job) and wherever.
//!
//! The lock is a Parameter Store parameter, `/tether/<project>/lock`, created without
//! overwrite: AWS creates a parameter at most once, so of two runs that try at the same
//! moment exactly one succeeds. Its value says who holds it, where, since when and for which
//! command, so that a waiting run can name the holder. It is deleted when the run ends; one
//! left by a killed run is broken with `tether force-unlock LOCK_ID`. Whatever else sits at
//! the lock's name (a damaged or foreign value) is a lock all the same, waited for and
//! broken like any other, by an id made from its text: nothing there can wedge a project
//! for good. Talks to AWS only through `aws::Cloud`.
//!
//! Parameter Store deletes without a condition, so release and `force-unlock` read the
//! holder, then delete: a lock broken and taken by another run within that one round trip
//! would be deleted too. Only `force-unlock` (a person's act) opens that window.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::aws::{AwsError, Cloud, ParameterKind};
use crate::model::TAG_PROJECT;

/// Who holds a lock, as recorded in it. Describes a run; holds no secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    /// Names the lock for `force-unlock`.
    pub id: String,
    /// The operating-system user of the holding run.
    pub who: String,
    /// The host and process of the holding run.
    pub host: String,
    pub pid: u32,
    /// The command that holds it (`apply`, `destroy`, `rotate-key erich`).
    pub command: String,
    /// When it was taken, in seconds since the Unix epoch.
    pub since: u64,
}

impl std::fmt::Display for LockInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "lock {} held by {} on {} (pid {}) for `tether {}` since {}",
            self.id,
            self.who,
            self.host,
            self.pid,
            self.command,
            unix_time_text(self.since)
        )
    }
}

/// What holds the project's lock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Holder {
    /// A run of tether, as its record says.
    Run(LockInfo),
    /// A value that is no lock record of tether's (damaged, or written by something else),
    /// known by an id made from its text (`damaged-` and 16 hex digits of its SHA-256).
    Damaged { id: String },
}

impl Holder {
    /// The id `force-unlock` takes to break it.
    pub fn id(&self) -> &str {
        match self {
            Holder::Run(info) => &info.id,
            Holder::Damaged { id } => id,
        }
    }

    fn of(value: &str) -> Holder {
        match serde_json::from_str(value) {
            Ok(info) => Holder::Run(info),
            Err(_) => Holder::Damaged {
                id: format!(
                    "damaged-{}",
                    &crate::hash::sha256_hex(value.as_bytes())[..16]
                ),
            },
        }
    }
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Holder::Run(info) => info.fmt(f),
            Holder::Damaged { id } => write!(
                f,
                "lock {id}: the lock parameter holds a value that is no tether lock record (damaged, or written by something else)"
            ),
        }
    }
}

/// Why the lock could not be taken or broken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another run held the lock for longer than this run would wait.
    #[error("project `{project}` is locked: {holder}")]
    Held { project: String, holder: Holder },
    /// `force-unlock` named no lock: the project holds none.
    #[error("project `{project}` holds no lock, so there is no lock {id} to break")]
    NoLock { project: String, id: String },
    /// `force-unlock` named another lock than the one the project holds.
    #[error("lock {id} is not project `{project}`'s lock; it holds {holder}")]
    NotThisLock {
        project: String,
        id: String,
        holder: Holder,
    },
    /// An AWS call failed.
    #[error("cannot use the project lock in Parameter Store")]
    Aws(#[source] AwsError),
}

/// A lock this run holds. Release it with `release`; one dropped unreleased stays in the
/// account until `force-unlock`.
#[derive(Debug)]
pub struct Lock {
    pub project: String,
    pub info: LockInfo,
}

/// A new lock id: 16 random hex digits.
pub fn new_lock_id() -> String {
    // Without randomness a lock id still only needs to differ from the holder's.
    let value = getrandom::u64().unwrap_or_else(|_| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| u64::from(d.subsec_nanos()))
            .unwrap_or_default();
        now ^ u64::from(std::process::id())
    });
    format!("{value:016x}")
}

/// The holder of the project's lock, if any.
pub async fn holder(cloud: &Cloud, project: &str) -> Result<Option<Holder>, LockError> {
    let parameter = crate::parameters::lock_parameter(project);
    let found = cloud.parameter(&parameter).await.map_err(LockError::Aws)?;
    Ok(found.map(|found| Holder::of(&found.value)))
}

/// Takes the project's lock for `info`, waiting up to `timeout` while another run holds it
/// (checking every `poll`); `on_wait` hears of the holder and the time waited so far.
pub async fn acquire(
    cloud: &Cloud,
    project: &str,
    info: LockInfo,
    timeout: Duration,
    poll: Duration,
    on_wait: &(dyn Fn(&Holder, Duration) + Sync),
) -> Result<Lock, LockError> {
    let parameter = crate::parameters::lock_parameter(project);
    let value = serde_json::to_string(&info).expect("a lock record always serialises");
    let tags = BTreeMap::from([(TAG_PROJECT.to_string(), project.to_string())]);
    let started = std::time::Instant::now();
    loop {
        let taken = cloud
            .create_parameter(&parameter, &value, ParameterKind::Record, &tags)
            .await
            .map_err(LockError::Aws)?;
        if taken {
            return Ok(Lock {
                project: project.to_string(),
                info,
            });
        }
        // Released between the attempt and this read: try again shortly.
        let Some(current) = holder(cloud, project).await? else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let waited = started.elapsed();
        if waited >= timeout {
            return Err(LockError::Held {
                project: project.to_string(),
                holder: current,
            });
        }
        on_wait(&current, waited);
        tokio::time::sleep(poll.min(timeout - waited)).await;
    }
}

impl Lock {
    /// Releases the lock, if it is still this run's (a lock broken by `force-unlock` and
    /// taken by another run is left to that run).
    pub async fn release(self, cloud: &Cloud) -> Result<(), LockError> {
        release(cloud, &self.project, &self.info.id).await
    }
}

/// Deletes the project's lock if its id is `id`.
pub async fn release(cloud: &Cloud, project: &str, id: &str) -> Result<(), LockError> {
    match holder(cloud, project).await? {
        Some(current) if current.id() == id => cloud
            .delete_parameter(&crate::parameters::lock_parameter(project))
            .await
            .map_err(LockError::Aws),
        _ => Ok(()),
    }
}

/// Breaks the project's lock `id`, left by a run that was killed (or a damaged one).
/// Returns what held it.
pub async fn force_unlock(cloud: &Cloud, project: &str, id: &str) -> Result<Holder, LockError> {
    let Some(current) = holder(cloud, project).await? else {
        return Err(LockError::NoLock {
            project: project.to_string(),
            id: id.to_string(),
        });
    };
    if current.id() != id {
        return Err(LockError::NotThisLock {
            project: project.to_string(),
            id: id.to_string(),
            holder: current,
        });
    }
    cloud
        .delete_parameter(&crate::parameters::lock_parameter(project))
        .await
        .map_err(LockError::Aws)?;
    Ok(current)
}

/// `2026-12-02 05:31:59 UTC` for seconds since the Unix epoch (civil calendar, UTC).
fn unix_time_text(seconds: u64) -> String {
    let days = i64::try_from(seconds / 86_400).unwrap_or(i64::MAX / 2);
    let rest = seconds % 86_400;
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_times_read_as_utc_dates() {
        assert_eq!(unix_time_text(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(unix_time_text(1_796_189_519), "2026-12-02 05:31:59 UTC");
        assert_eq!(unix_time_text(951_782_400), "2000-02-29 00:00:00 UTC");
    }

    #[test]
    fn lock_ids_are_sixteen_hex_digits_and_differ() {
        let (a, b) = (new_lock_id(), new_lock_id());
        assert_eq!(a.len(), 16);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
