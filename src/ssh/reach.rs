//! Reaching an instance over SSH as EC2 needs it: an instance reported `running` boots for
//! another 20 to 90 seconds before sshd answers, and its host key is new to everyone.
//!
//! [`reach`] waits (with backoff) until the instance's port accepts a connection and its
//! sshd completes a key exchange (`ssh-keyscan`), then verifies the keys it offers: against
//! the project's `known_hosts` when tether has met the instance before (a changed key is an
//! error, never accepted), else against the fingerprints cloud-init printed to the
//! instance's console at first boot, a channel the network cannot forge. Silence is not
//! trust: EC2 shows a console output minutes after boot, so an empty or unreadable one is
//! read again until the wait runs out. Only an instance whose spec asks for it by name
//! (`host_key: trust_on_first_use`, for an image that prints no fingerprints) has its key
//! trusted on first use, and the caller says so. Verified keys are kept
//! under the instance's id (`HostKeyAlias`), so a new address after a stop and start still
//! verifies. When the wait runs out, the error carries the tail of the console output,
//! which is where a failed boot shows.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::hostkeys::{self, HostKey};
use crate::aws::{AwsError, Cloud};
use crate::spec::HostKeyTrust;

/// How long tether waits for an instance's sshd by default.
pub const SSH_WAIT: Duration = Duration::from_secs(300);

/// How a reached instance's host keys came to be trusted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trust {
    /// tether recorded them on an earlier visit, and the sshd still offers one of them.
    Recorded,
    /// The instance's console output vouches for them (cloud-init's fingerprints).
    Console,
    /// Nothing vouches for them: the console shows no fingerprints, and the spec declares
    /// the instance `host_key: trust_on_first_use`, so they were trusted on first use.
    FirstUse,
}

/// An instance ready for ssh: where it answers, and what it is known by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reached {
    pub instance: String,
    /// The EC2 instance id: its `HostKeyAlias` in the known_hosts file.
    pub instance_id: String,
    pub address: String,
    pub port: u16,
    pub trust: Trust,
}

/// Why an instance could not be reached, or not trusted.
#[derive(Debug, thiserror::Error)]
pub enum ReachError {
    /// The instance does not exist.
    #[error("instance `{instance}` is not launched")]
    NotLaunched { instance: String },
    /// The instance exists but has no address to reach.
    #[error("instance `{instance}` has no public address ({state})")]
    NoAddress { instance: String, state: String },
    /// sshd did not answer within the wait.
    #[error("instance `{instance}` ({address}:{port}) did not answer ssh within {waited}s; the end of its console output:\n{console}")]
    NotAnswering {
        instance: String,
        address: String,
        port: u16,
        waited: u64,
        console: String,
    },
    /// The sshd offers none of the keys tether recorded for this instance.
    #[error("the host key of instance `{instance}` ({id}) changed since tether first met it: it offers {offered}, and {file} holds another; refusing to connect")]
    KeyChanged {
        instance: String,
        id: String,
        offered: String,
        file: String,
    },
    /// The console vouches for host keys, and none of them is what the sshd offers.
    #[error("instance `{instance}` ({id}) offers host keys ({offered}) that its console output does not vouch for ({vouched}); refusing to connect")]
    KeyMismatch {
        instance: String,
        id: String,
        offered: String,
        vouched: String,
    },
    /// The console showed no host key fingerprints within the wait, and the spec does not
    /// allow trusting a key on first use.
    #[error("instance `{instance}` ({id}) answers ssh, but its console output showed no host key fingerprints within {waited}s, so nothing vouches for the key it offers ({offered}); refusing to connect{last_error}")]
    NotVouched {
        instance: String,
        id: String,
        offered: String,
        waited: u64,
        /// Why the console could not be read, when it could not (with its separator).
        last_error: String,
    },
    /// The known_hosts file cannot be read or written.
    #[error("cannot use the known hosts file `{file}`: {source}")]
    KnownHosts {
        file: String,
        #[source]
        source: std::io::Error,
    },
    /// `ssh-keyscan` could not be started.
    #[error("cannot run `ssh-keyscan`: {0}")]
    Keyscan(#[source] std::io::Error),
    /// Reading the instance or its console failed.
    #[error(transparent)]
    Aws(#[from] AwsError),
}

impl ReachError {
    /// What to do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            ReachError::NotLaunched { .. } => Some("`tether apply` launches it".into()),
            ReachError::NoAddress { .. } => Some("declare it `state: running` and `tether apply`; an Elastic IP keeps its address across stops".into()),
            ReachError::NotAnswering { .. } => Some("check that its security group admits ssh from this address, and the console output above for a failed boot; `--ssh-timeout` waits longer".into()),
            ReachError::KeyChanged { file, id, .. } => Some(format!("if the instance was really rebuilt in place, remove the lines of `{id}` from {file} and run again; otherwise someone may be intercepting the connection")),
            ReachError::KeyMismatch { .. } => Some("someone may be intercepting the connection; check the instance's console output in the EC2 console".into()),
            ReachError::NotVouched { instance, .. } => Some(format!("EC2 shows an instance's console output some minutes after it boots: `--ssh-timeout` waits longer; an image that prints no fingerprints (no cloud-init) needs `host_key: trust_on_first_use` under `instances.{instance}`")),
            ReachError::KnownHosts { .. } | ReachError::Keyscan(_) | ReachError::Aws(_) => None,
        }
    }
}

/// Waits until `instance` of `project` answers ssh on `port`, and verifies its host keys,
/// recording them in `known_hosts`. `on_wait` is told how long it has waited, now and then.
#[allow(clippy::too_many_arguments)]
pub async fn reach(
    cloud: &Cloud,
    project: &str,
    instance: &str,
    port: u16,
    known_hosts: &Path,
    policy: HostKeyTrust,
    timeout: Duration,
    on_wait: &(dyn Fn(Duration) + Sync),
) -> Result<Reached, ReachError> {
    let found = cloud
        .find_instance(project, instance)
        .await?
        .ok_or_else(|| ReachError::NotLaunched {
            instance: instance.to_string(),
        })?;
    let Some(address) = found.public_ip.clone().filter(|_| found.state.is_up()) else {
        return Err(ReachError::NoAddress {
            instance: instance.to_string(),
            state: found.state.to_string(),
        });
    };
    if !is_plain_target(&address, &found.id) {
        return Err(ReachError::NoAddress {
            instance: instance.to_string(),
            state: format!(
                "EC2 reports the address `{}` and the id `{}`, which tether does not take",
                address.escape_debug(),
                found.id.escape_debug()
            ),
        });
    }
    let started = Instant::now();
    let mut pause = Duration::from_secs(1);
    let offered = loop {
        if tcp_answers(&address, port).await {
            let keys = keyscan(&address, port).await?;
            if !keys.is_empty() {
                break keys;
            }
        }
        if started.elapsed() + pause > timeout {
            let console = cloud
                .console_output(instance, &found.id)
                .await
                .ok()
                .flatten()
                .unwrap_or_default();
            return Err(ReachError::NotAnswering {
                instance: instance.to_string(),
                address,
                port,
                waited: started.elapsed().as_secs(),
                console: tail(&console, 25),
            });
        }
        on_wait(started.elapsed());
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(10));
    };
    let id = found.id.clone();
    let file_error = |source| ReachError::KnownHosts {
        file: known_hosts.display().to_string(),
        source,
    };
    let recorded = hostkeys::known(known_hosts, &id).map_err(file_error)?;
    let trust = if recorded.is_empty() {
        let vouched = loop {
            // An empty console is not yet an answer, nor an unreadable one: read it again.
            // Only a console read whole that shows no fingerprints lets an instance declared
            // `trust_on_first_use` go on without them.
            let last_error = match cloud.console_output(instance, &id).await {
                Ok(console) => {
                    let vouched = hostkeys::parse_console(&console.unwrap_or_default());
                    if !vouched.is_empty() || policy == HostKeyTrust::TrustOnFirstUse {
                        break vouched;
                    }
                    String::new()
                }
                Err(error) => format!("; the last read of it failed: {error}"),
            };
            if started.elapsed() + pause > timeout {
                return Err(ReachError::NotVouched {
                    instance: instance.to_string(),
                    id,
                    offered: describe(&offered),
                    waited: started.elapsed().as_secs(),
                    last_error,
                });
            }
            on_wait(started.elapsed());
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(10));
        };
        let (keep, trust): (Vec<HostKey>, Trust) = if vouched.is_empty() {
            (offered.clone(), Trust::FirstUse)
        } else {
            let keep: Vec<HostKey> = offered
                .iter()
                .filter(|key| vouched.vouches_for(key))
                .cloned()
                .collect();
            if keep.is_empty() {
                return Err(ReachError::KeyMismatch {
                    instance: instance.to_string(),
                    id,
                    offered: describe(&offered),
                    vouched: vouched.fingerprints.join(", "),
                });
            }
            (keep, Trust::Console)
        };
        hostkeys::record(known_hosts, &id, &keep).map_err(file_error)?;
        trust
    } else if offered.iter().any(|key| recorded.contains(key)) {
        Trust::Recorded
    } else {
        return Err(ReachError::KeyChanged {
            instance: instance.to_string(),
            id,
            offered: describe(&offered),
            file: known_hosts.display().to_string(),
        });
    };
    Ok(Reached {
        instance: instance.to_string(),
        instance_id: found.id,
        address,
        port,
        trust,
    })
}

/// Whether what the account says of an instance may go into ssh's options and the
/// known_hosts file: an IP address and an instance id (`i-` and hex), never other text.
fn is_plain_target(address: &str, id: &str) -> bool {
    let id_is_plain = id
        .strip_prefix("i-")
        .is_some_and(|hex| !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit()));
    address.parse::<std::net::IpAddr>().is_ok() && id_is_plain
}

/// Whether something accepts a TCP connection at `address:port` within a few seconds.
async fn tcp_answers(address: &str, port: u16) -> bool {
    matches!(
        tokio::time::timeout(
            Duration::from_secs(5),
            tokio::net::TcpStream::connect((address, port))
        )
        .await,
        Ok(Ok(_))
    )
}

/// The host keys the sshd at `address:port` offers (a full key exchange per key type);
/// none when it does not complete one.
async fn keyscan(address: &str, port: u16) -> Result<Vec<HostKey>, ReachError> {
    let output = tokio::process::Command::new("ssh-keyscan")
        .args(["-T", "5", "-p", &port.to_string(), "--", address])
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(ReachError::Keyscan)?;
    Ok(hostkeys::parse_keyscan(&String::from_utf8_lossy(
        &output.stdout,
    )))
}

fn describe(keys: &[HostKey]) -> String {
    keys.iter()
        .map(|key| {
            format!(
                "{} {}",
                key.kind,
                key.fingerprint().unwrap_or_else(|| "(not base64)".into())
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The last `lines` lines of `text`, trimmed; a placeholder when there are none.
fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    if all.is_empty() {
        return "(EC2 has no console output for it yet)".to_string();
    }
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The ssh options that make every connection to a reached instance verify its host key
/// against the project's file under its id, go to its current address, and share one
/// connection (a master in `control_dir`, closed with [`close`]).
pub fn ssh_options(reached: &Reached, known_hosts: &Path, control_dir: &Path) -> Vec<String> {
    let option = |text: String| ["-o".to_string(), text];
    let mut options: Vec<String> = [
        option("BatchMode=yes".into()),
        option("ConnectTimeout=15".into()),
    ]
    .into_iter()
    .flatten()
    .collect();
    options.extend(verified_options(reached, known_hosts));
    options.extend(
        [
            option("CheckHostIP=no".into()),
            // The alias's `LocalForward` lines are the user's: a job's shared connection,
            // open for the whole run, must not hold the ports (or fail on them when the
            // user's own `ssh -N <alias>` holds them).
            option("ClearAllForwardings=yes".into()),
            option("ControlMaster=auto".into()),
            option(format!(
                "ControlPath={}",
                control_path(control_dir).display()
            )),
            // A master left by a killed run closes itself after ten idle minutes.
            option("ControlPersist=600".into()),
        ]
        .into_iter()
        .flatten(),
    );
    options
}

/// The ssh options that hold a connection to a reached instance's verified host key (kept
/// in `known_hosts` under its id) at its current address: what every ssh tether runs to
/// an instance has, `tether ssh`'s included.
pub fn verified_options(reached: &Reached, known_hosts: &Path) -> Vec<String> {
    let option = |text: String| ["-o".to_string(), text];
    [
        option(format!("HostName={}", reached.address)),
        option(format!("Port={}", reached.port)),
        option(format!("HostKeyAlias={}", reached.instance_id)),
        option(format!("UserKnownHostsFile={}", known_hosts.display())),
        option("StrictHostKeyChecking=yes".into()),
    ]
    .into_iter()
    .flatten()
    .collect()
}

fn control_path(control_dir: &Path) -> PathBuf {
    control_dir.join("%C")
}

/// Closes the shared connection to `alias` (reached with `ssh_options`); a master that is
/// gone already is fine.
pub async fn close(config_file: &Path, alias: &str, options: &[String]) {
    let _ = tokio::process::Command::new("ssh")
        .arg("-F")
        .arg(config_file)
        .args(options)
        .args(["-O", "exit", "--", alias])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .status()
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    // Why it exists: the address and id come from the account, and go into ssh's `-o`
    // options and the known_hosts file.
    #[test]
    fn only_an_ip_and_an_instance_id_from_the_account_reach_ssh() {
        assert!(is_plain_target("203.0.113.7", "i-0123456789abcdef0"));
        assert!(is_plain_target("2001:db8::1", "i-1"));
        assert!(!is_plain_target("203.0.113.7 -oProxyCommand=x", "i-1"));
        assert!(!is_plain_target("example.com", "i-1"));
        assert!(!is_plain_target("203.0.113.7", "i-1\nevil"));
        assert!(!is_plain_target("203.0.113.7", "host"));
    }
}
