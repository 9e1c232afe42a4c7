//! The project lock: one run at a time changes a project's resources, whoever starts it (a
//! person, a CI job) and wherever.
//!
//! The lock is a Parameter Store parameter, `/tether/<project>/lock`, created without
//! overwrite: AWS creates a parameter at most once, so of two runs that try at the same
//! moment exactly one succeeds. Its value says who holds it, where, since when and for which
//! command, so that a waiting run can name the holder. It is deleted when the run ends.
//!
//! **No dead run holds it.** The holder refreshes its heartbeat every 30 s (`keep_alive`)
//! for as long as it runs, however long its waits. A run that finds the lock held by a run
//! that is certainly dead (on this host: its process is gone, or the host was rebooted
//! since) or silent (no heartbeat for two minutes, wherever it ran) takes it over
//! (`Takeover`), saying which run it replaced. A holder that finds its lock taken over
//! (it was suspended past the two minutes, say) stops: `keep_alive` reports the loss and
//! the run ends. `tether force-unlock LOCK_ID` remains for a person to break any other.
//! Whatever else sits at the lock's name (a damaged or foreign value) is a lock all the
//! same, waited for and broken like any other, by an id made from its text: nothing there
//! can wedge a project for good. Talks to AWS only through `aws::Cloud`.
//!
//! Parameter Store deletes and overwrites without a condition, so release, a heartbeat, a
//! takeover and `force-unlock` read the holder, then write: a lock taken by another run
//! within that one round trip would be overwritten. A takeover therefore reads the lock
//! again a few round trips after taking it (`SETTLE`), and yields when two runs raced for
//! the same dead holder; a heartbeat that finds another holder reports the loss instead of
//! writing.

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
    /// When the holder last said it was alive (seconds since the Unix epoch). A record of
    /// an older tether has none: such a holder never beats, so its silence proves nothing,
    /// and only this host's own checks (or `force-unlock`) can find it gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat: Option<u64>,
    /// The holding host's boot (Linux's `boot_id`): a lock of this host from an earlier
    /// boot belongs to a run that is gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot: Option<String>,
}

/// How often a holder refreshes its heartbeat.
pub const HEARTBEAT: Duration = Duration::from_secs(30);
/// A holder silent this long is taken for dead, wherever it ran.
pub const SILENT: Duration = Duration::from_secs(120);
/// How long a takeover waits before reading the lock again, to see that no other run took
/// over the same dead holder at the same time (several round trips to Parameter Store).
pub const SETTLE: Duration = Duration::from_secs(3);

/// What this machine knows of a process: whether the holder of a lock is alive.
#[derive(Clone, Debug)]
pub struct ThisHost {
    pub host: String,
    pub boot: Option<String>,
    /// Whether a process of that pid running tether exists here.
    pub alive: fn(u32) -> bool,
}

/// Why a lock's holder counts as gone, if it does.
pub fn gone(holder: &LockInfo, here: &ThisHost, now: u64) -> Option<String> {
    if holder.host == here.host {
        if let (Some(theirs), Some(ours)) = (&holder.boot, &here.boot) {
            if theirs != ours {
                return Some(format!(
                    "its host {} has restarted since it took the lock",
                    holder.host
                ));
            }
        }
        if !(here.alive)(holder.pid) {
            return Some(format!(
                "its process {} on this host ({}) is gone",
                holder.pid, holder.host
            ));
        }
    }
    let last = holder.heartbeat?;
    let silent = now.saturating_sub(last);
    (silent >= SILENT.as_secs()).then(|| {
        format!(
            "it has not said it is alive for {silent}s (a live run does every {}s)",
            HEARTBEAT.as_secs()
        )
    })
}

/// A lock this run took over from a run that was gone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Takeover {
    pub replaced: LockInfo,
    pub why: String,
}

/// Seconds since the Unix epoch.
pub fn now_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
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
/// account until its heartbeat is two minutes old, then the next run takes it over.
#[derive(Debug)]
pub struct Lock {
    pub project: String,
    pub info: LockInfo,
    /// Set when this run took the lock over from a run that was gone.
    pub takeover: Option<Takeover>,
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
/// (checking every `poll`); `on_wait` hears of the holder and the time waited so far. A lock
/// whose holder is `gone` (judged with `here`) is taken over.
pub async fn acquire(
    cloud: &Cloud,
    project: &str,
    info: LockInfo,
    here: &ThisHost,
    (timeout, poll): (Duration, Duration),
    on_wait: &(dyn Fn(&Holder, Duration) + Sync),
) -> Result<Lock, LockError> {
    let parameter = crate::parameters::lock_parameter(project);
    let tags = BTreeMap::from([(TAG_PROJECT.to_string(), project.to_string())]);
    let started = std::time::Instant::now();
    let mut takeover = None;
    loop {
        let mut info = info.clone();
        info.heartbeat = Some(now_seconds());
        let value = serde_json::to_string(&info).expect("a lock record always serialises");
        let taken = cloud
            .create_parameter(&parameter, &value, ParameterKind::Record, &tags)
            .await
            .map_err(LockError::Aws)?;
        if taken {
            if takeover.is_some() {
                // Another run may have taken over the same dead holder at the same time,
                // and deleted this lock on the way: read it again once that could show.
                tokio::time::sleep(SETTLE).await;
                match holder(cloud, project).await? {
                    Some(current) if current.id() == info.id => {}
                    _ => {
                        takeover = None;
                        continue;
                    }
                }
            }
            return Ok(Lock {
                project: project.to_string(),
                info,
                takeover,
            });
        }
        // Lost the race for it (a takeover of a dead holder included): a live run holds it.
        takeover = None;
        // Released between the attempt and this read: try again shortly.
        let Some(current) = holder(cloud, project).await? else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        if let Holder::Run(held) = &current {
            if let Some(why) = gone(held, here, now_seconds()) {
                // The lock just read as gone: delete it, then race for it like anyone (the
                // re-read after `SETTLE` catches a run that raced the same way).
                cloud
                    .delete_parameter(&parameter)
                    .await
                    .map_err(LockError::Aws)?;
                takeover = Some(Takeover {
                    replaced: held.clone(),
                    why,
                });
                continue;
            }
        }
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

    /// Refreshes the lock's heartbeat every `every` (`HEARTBEAT`) until the returned task is
    /// aborted. The receiver turns `true` once the lock is no longer this run's (taken
    /// over after this run fell silent, or broken by `force-unlock`): the run must stop.
    /// A failed refresh is tried again at the next beat; the lock is lost only when another
    /// holds it.
    pub fn keep_alive(
        &self,
        cloud: &Cloud,
        every: Duration,
    ) -> (
        tokio::task::JoinHandle<()>,
        tokio::sync::watch::Receiver<bool>,
    ) {
        let (lost, receiver) = tokio::sync::watch::channel(false);
        let (cloud, project, info) = (cloud.clone(), self.project.clone(), self.info.clone());
        let task = tokio::spawn(async move {
            let parameter = crate::parameters::lock_parameter(&project);
            loop {
                tokio::time::sleep(every).await;
                match holder(&cloud, &project).await {
                    Ok(Some(current)) if current.id() == info.id => {
                        let mut info = info.clone();
                        info.heartbeat = Some(now_seconds());
                        let value =
                            serde_json::to_string(&info).expect("a lock record always serialises");
                        // Silence is not loss: a failed write is tried at the next beat. The
                        // lock exists (just read): overwrite, no create attempt first.
                        let _ = cloud
                            .overwrite_parameter(&parameter, &value, ParameterKind::Record)
                            .await;
                    }
                    Ok(_) => {
                        let _ = lost.send(true);
                        return;
                    }
                    Err(_) => {}
                }
            }
        });
        (task, receiver)
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

    fn holder(host: &str, pid: u32, heartbeat: u64, boot: Option<&str>) -> LockInfo {
        LockInfo {
            id: "0123456789abcdef".into(),
            who: "alice".into(),
            host: host.into(),
            pid,
            command: "apply".into(),
            since: 1_000,
            heartbeat: Some(heartbeat),
            boot: boot.map(str::to_string),
        }
    }

    #[test]
    fn a_holder_is_gone_when_its_process_or_its_heartbeat_is() {
        let here = ThisHost {
            host: "laptop".into(),
            boot: Some("boot-2".into()),
            alive: |pid| pid == 42,
        };
        let now = 10_000;
        // Alive on this host, beating: held.
        assert_eq!(
            gone(&holder("laptop", 42, now - 10, Some("boot-2")), &here, now),
            None
        );
        // Its process is gone.
        let dead = gone(&holder("laptop", 7, now - 10, Some("boot-2")), &here, now);
        assert!(dead.is_some_and(|why| why.contains("process 7")));
        // An earlier boot of this host.
        let rebooted = gone(&holder("laptop", 42, now - 10, Some("boot-1")), &here, now);
        assert!(rebooted.is_some_and(|why| why.contains("restarted")));
        // Another host: only its heartbeat tells, and a minute of silence is not enough.
        assert_eq!(
            gone(&holder("ci-runner", 7, now - 60, None), &here, now),
            None
        );
        let silent = gone(&holder("ci-runner", 7, now - 121, None), &here, now);
        assert!(silent.is_some_and(|why| why.contains("121s")));
        // An older tether's record has no heartbeat: a live old run never beats, so its
        // silence is no evidence elsewhere; on this host its process still tells.
        let mut old = holder("ci-runner", 7, 0, None);
        old.heartbeat = None;
        assert_eq!(gone(&old, &here, now), None);
        let mut old_here = holder("laptop", 7, 0, None);
        old_here.heartbeat = None;
        assert!(gone(&old_here, &here, now).is_some());
    }

    #[test]
    fn lock_ids_are_sixteen_hex_digits_and_differ() {
        let (a, b) = (new_lock_id(), new_lock_id());
        assert_eq!(a.len(), 16);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
