//! Jobs on instances: each instance gets a share of the inputs (balanced by size), its own
//! copy of tether, the job's files and the spec, runs `setup` once, then runs its share in
//! a detached tmux session (`tether-<project>-<job>`) with `tether agent`, which reads
//! and writes S3 directly, so data never travels through this machine.
//!
//! This machine follows progress by polling the agent's status file over short ssh calls:
//! a dropped connection or a closed laptop does not stop the job, and a poll that fails is
//! simply tried again. Connections use the system `ssh`/`scp` through the spec's alias
//! (`-F <config_file> <alias>`), so the user's ssh settings and agent apply; before the
//! first, the preflight waits for each instance's sshd and verifies its host key
//! ([`super::reach`]), and every call of the run goes over one connection per instance.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{Event, Input, JobSummary, OnEvent, Options, Status, TaskSummary};
use crate::spec::{JobSpec, Remote, Spec};
use crate::ssh::connections::Connections;

/// How often the status file is read.
const POLL_EVERY: Duration = Duration::from_secs(2);
/// How long polls may keep failing before the instance counts as lost.
const LOST_AFTER: Duration = Duration::from_secs(300);

/// Why a share could not run on an instance. The text of each is one line, for the job's
/// summary; the cause is part of it.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The preflight did not reach the instance, so no connection to it is verified.
    #[error("{why}")]
    NotReached { instance: String, why: String },
    /// The spec gives the instance no SSH alias to reach it by.
    #[error("instance `{instance}` has no SSH alias: declare one under `ssh.hosts` for the job to reach it")]
    NoAlias { instance: String },
    /// A local program (`ssh`, `scp`) could not be started.
    #[error("cannot run `{program}`: {source}")]
    Spawn {
        program: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// A command on the instance (or ssh itself) failed; the tail of its error output.
    #[error("{stderr}")]
    Command { stderr: String },
    /// Copying a file to the instance failed.
    #[error("copying {local} to {instance}: {stderr}")]
    Copy {
        local: String,
        instance: String,
        stderr: String,
    },
    /// `--attach` found no session of the job to follow.
    #[error("job `{job}` is not running on `{instance}` (no tmux session `{session}`); run it without --attach")]
    NotRunning {
        job: String,
        instance: String,
        session: String,
    },
    /// A running session's share (its run id) cannot be read, so it cannot be followed.
    #[error("the session of job `{job}` on `{instance}` has no share this tether can read")]
    UnreadableShare { job: String, instance: String },
    /// This machine's tether binary, which is copied to the instance, cannot be found.
    #[error("cannot find tether's own binary: {0}")]
    OwnBinary(#[source] std::io::Error),
    /// The instance does not run Linux, the only system the agent runs on.
    #[error(
        "instance `{instance}` runs {system}, not Linux: jobs on instances need a Linux image"
    )]
    NotLinux { instance: String, system: String },
    /// The agent binary cannot be read here.
    #[error("cannot read the agent binary `{path}`: {source}")]
    AgentUnreadable {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The agent binary is no Linux executable (a macOS or Windows build, a script).
    #[error("the agent binary `{path}` is {what}, not a Linux executable, so it cannot run on `{instance}`; {FIX}")]
    AgentNotLinux {
        path: String,
        what: String,
        instance: String,
    },
    /// The agent binary is built for another CPU than the instance's.
    #[error("the agent binary `{path}` is built for {binary}, and instance `{instance}` is {remote}: choose an instance type of that architecture, or {FIX}")]
    AgentArchitecture {
        path: String,
        binary: String,
        instance: String,
        remote: String,
    },
    /// The agent binary was copied but does not start there (a damaged file, say);
    /// nothing was started.
    #[error("the agent binary `{path}` does not start on `{instance}` ({output}); nothing was started there; {FIX}")]
    AgentWontStart {
        path: String,
        instance: String,
        output: String,
    },
    /// The agent binary needs a newer glibc than the instance's image has.
    #[error("the agent binary `{path}` needs glibc {needs}, and `{instance}` has {has}: nothing was started there; {FIX}")]
    AgentGlibc {
        path: String,
        instance: String,
        needs: String,
        /// The image's glibc version, or what was found of it.
        has: String,
    },
    /// The share file could not be written locally.
    #[error("cannot write the share file: {0}")]
    ShareFile(#[source] std::io::Error),
    /// The job's `setup` failed on the instance.
    #[error("setup failed on `{instance}`: {source}")]
    Setup {
        instance: String,
        #[source]
        source: Box<RemoteError>,
    },
    /// tmux is missing on the instance.
    #[error("tmux is not installed on `{instance}`: install the `tmux` package (in `setup`, e.g. `sudo apt-get install -y tmux`)")]
    NoTmux { instance: String },
    /// The job's tmux session could not be started.
    #[error("cannot start the tmux session on `{instance}`: {source}")]
    StartSession {
        instance: String,
        #[source]
        source: Box<RemoteError>,
    },
    /// Polls kept failing for longer than tether waits.
    #[error("lost contact with `{instance}`: {source}")]
    Lost {
        instance: String,
        #[source]
        source: Box<RemoteError>,
    },
    /// The session is gone and the agent wrote no result; the tail of its log.
    #[error("the job's session on `{instance}` ended without a result: {log}")]
    EndedWithoutResult { instance: String, log: String },
    /// Shares failed on instances, and none was left to run them again.
    #[error("{}", .0.iter().map(|(instance, error)| format!("on {instance}: {error}")).collect::<Vec<_>>().join("; "))]
    Failed(Vec<(String, RemoteError)>),
    /// A failed instance's share failed again on a healthy one.
    #[error("on {instance}, running a failed instance's share: {source}")]
    Rerun {
        instance: String,
        #[source]
        source: Box<RemoteError>,
    },
}

/// How to get an agent binary that runs on any Linux instance, for error messages.
const FIX: &str = "use the tether of the wheel (`pip install` it: linked against glibc 2.17, it runs on every supported image), or build one with `scripts/build-wheel.sh`, and name it with `agent_binary:` in the spec or `--agent-binary`";

/// The newest glibc version a binary asked for and the loader did not find, from what it
/// printed when it would not start (`version `GLIBC_2.34' not found (required by ...)`).
pub fn missing_glibc(output: &str) -> Option<String> {
    output
        .split("version `GLIBC_")
        .skip(1)
        .filter_map(|rest| {
            let version = rest.split('\'').next()?;
            let parts: Option<Vec<u32>> = version.split('.').map(|p| p.parse().ok()).collect();
            Some((parts?, version.to_string()))
        })
        .max()
        .map(|(_, version)| version)
}

/// The glibc version in what `getconf GNU_LIBC_VERSION` (`glibc 2.26`) or `ldd --version`
/// (`ldd (GNU libc) 2.31`) printed.
pub fn glibc_version(output: &str) -> Option<String> {
    let line = output.lines().next()?;
    let version = line.split_whitespace().last()?;
    let numeric = version.split('.').count() >= 2
        && version
            .split('.')
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
    numeric.then(|| version.to_string())
}

/// What an executable's first bytes say it is: a Linux (ELF) binary's CPU, as `uname -m`
/// names it, or what else it is.
pub fn executable_kind(header: &[u8]) -> Result<String, String> {
    match header {
        [0x7f, b'E', b'L', b'F', _, data, ..] if header.len() >= 20 => {
            let machine = if *data == 2 {
                u16::from_be_bytes([header[18], header[19]])
            } else {
                u16::from_le_bytes([header[18], header[19]])
            };
            Ok(match machine {
                62 => "x86_64".to_string(),
                183 => "aarch64".to_string(),
                3 => "i686".to_string(),
                40 => "arm".to_string(),
                other => format!("ELF machine {other}"),
            })
        }
        [0xfe, 0xed, 0xfa, 0xce | 0xcf, ..]
        | [0xce | 0xcf, 0xfa, 0xed, 0xfe, ..]
        | [0xca, 0xfe, 0xba, 0xbe, ..] => Err("a macOS (Mach-O) binary".into()),
        [b'M', b'Z', ..] => Err("a Windows (PE) binary".into()),
        [b'#', b'!', ..] => Err("a script".into()),
        _ => Err("no executable format tether knows".into()),
    }
}

/// The first bytes of the file at `path`, enough to tell what executable it is.
fn read_header(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut header = Vec::with_capacity(64);
    std::fs::File::open(path)?
        .take(64)
        .read_to_end(&mut header)?;
    Ok(header)
}

/// Whether an ELF binary for `binary` runs on a CPU `uname -m` calls `remote`.
fn same_cpu(binary: &str, remote: &str) -> bool {
    binary == remote || (binary == "aarch64" && remote == "arm64")
}

/// What the agent on an instance is given: which job, which inputs.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Share {
    pub job: String,
    /// Names this run's share, so that its follower never takes an earlier run's status
    /// (left in the job's directory) for this one's.
    #[serde(default)]
    pub run_id: String,
    pub inputs: Vec<Input>,
    pub retries: u32,
    pub fail_fast: bool,
    /// `--resume`: skip the tasks whose outputs are there already.
    #[serde(default)]
    pub resume: bool,
}

/// What the agent reports while it works, and at the end.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct AgentStatus {
    /// The run id of the share it reports on.
    #[serde(default)]
    pub run_id: String,
    pub done: usize,
    pub total: usize,
    pub failed: usize,
    /// Present once the share is finished.
    pub summary: Option<JobSummary>,
}

/// Splits `inputs` into `count` shares of about equal size: largest first, each to the
/// share with the fewest bytes so far.
pub fn split(mut inputs: Vec<Input>, count: usize) -> Vec<Vec<Input>> {
    let mut shares: Vec<(u64, Vec<Input>)> = (0..count.max(1)).map(|_| (0, Vec::new())).collect();
    inputs.sort_by(|a, b| b.size.cmp(&a.size).then_with(|| a.name.cmp(&b.name)));
    for input in inputs {
        let lightest = shares
            .iter_mut()
            .min_by_key(|(bytes, items)| (*bytes, items.len()))
            .expect("at least one share");
        lightest.0 += input.size;
        lightest.1.push(input);
    }
    shares.into_iter().map(|(_, inputs)| inputs).collect()
}

/// How to reach one instance with ssh.
struct Target {
    instance: String,
    /// Arguments before the command: `-F config`, the options, `alias`.
    ssh: Vec<String>,
    /// The same for scp, and the host part of its paths.
    scp: Vec<String>,
    host: String,
}

/// The spec's alias for `instance`.
fn alias_of<'s>(spec: &'s Spec, instance: &str) -> Result<&'s crate::spec::HostSpec, RemoteError> {
    spec.ssh
        .as_ref()
        .and_then(|ssh| ssh.hosts.values().find(|h| h.instance == instance))
        .ok_or_else(|| RemoteError::NoAlias {
            instance: instance.to_string(),
        })
}

fn target(context: &Context<'_>, instance: &str) -> Result<Target, RemoteError> {
    let host = alias_of(context.spec, instance)?;
    let reached = context
        .connections
        .reached(instance)
        .ok_or_else(|| RemoteError::NotReached {
            instance: instance.to_string(),
            why: context
                .connections
                .why_unreachable(instance)
                .unwrap_or_else(|| "the preflight did not reach it".into()),
        })?;
    let mut common = vec!["-F".to_string(), context.config_file.display().to_string()];
    common.extend(context.connections.options(&reached, &context.known_hosts));
    // The alias was checked at its spec line: it cannot pass for an option.
    let mut ssh = common.clone();
    ssh.push(host.alias.clone());
    Ok(Target {
        instance: instance.to_string(),
        ssh,
        scp: common,
        host: host.alias.clone(),
    })
}

impl Context<'_> {
    /// Closes every shared connection of the run (each through its instance's alias).
    pub async fn close_connections(&self) {
        self.connections
            .close(self.config_file, &self.known_hosts, |instance| {
                alias_of(self.spec, instance)
                    .ok()
                    .map(|host| host.alias.clone())
            })
            .await;
    }
}

/// Runs `script` on the instance through `sh -c`; returns stdout, or stderr's tail.
async fn remote(target: &Target, script: &str) -> Result<String, RemoteError> {
    let stdout = remote_bytes(target, script).await?;
    Ok(String::from_utf8_lossy(&stdout).into_owned())
}

/// [`remote`], with stdout as the bytes it was.
async fn remote_bytes(target: &Target, script: &str) -> Result<Vec<u8>, RemoteError> {
    let output = tokio::process::Command::new("ssh")
        .args(&target.ssh)
        .arg("--")
        .arg(format!("sh -c {}", quote(script)))
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|source| RemoteError::Spawn {
            program: "ssh",
            source,
        })?;
    if output.status.success() {
        Ok(output.stdout)
    } else {
        Err(RemoteError::Command {
            stderr: super::tail(&String::from_utf8_lossy(&output.stderr), 10, 2000),
        })
    }
}

async fn copy(target: &Target, local: &Path, remote_path: &str) -> Result<(), RemoteError> {
    let output = tokio::process::Command::new("scp")
        .args(&target.scp)
        .arg("-q")
        .arg(local)
        .arg(format!("{}:{remote_path}", target.host))
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|source| RemoteError::Spawn {
            program: "scp",
            source,
        })?;
    if output.status.success() {
        Ok(())
    } else {
        Err(RemoteError::Copy {
            local: local.display().to_string(),
            instance: target.instance.clone(),
            stderr: super::tail(&String::from_utf8_lossy(&output.stderr), 10, 2000),
        })
    }
}

fn quote(text: &str) -> String {
    crate::render::shell_quote(text)
}

/// The tmux session of a job.
pub fn session(project: &str, job: &str) -> String {
    format!("tether-{project}-{job}")
}

/// A tmux target naming exactly `session`: a bare name would also match a session whose
/// name merely starts with it (`tether-p-count` matching `tether-p-count-words`).
fn exact(session: &str) -> String {
    quote(&format!("={session}"))
}

/// The job's directory on an instance, relative to the login's home (named after the
/// instance too, so that two instances sharing a home never share a directory).
fn workdir(project: &str, job: &str, instance: &str) -> String {
    format!(".tether/{project}/{job}/{instance}")
}

/// Everything a job on instances needs from this machine.
pub struct Context<'a> {
    pub spec: &'a Spec,
    pub spec_file: &'a Path,
    pub config_file: &'a Path,
    /// Environment for the agent: the region and endpoint settings, never credentials
    /// (the instance has its own).
    pub agent_env: Vec<(String, String)>,
    /// For `~` in identity file paths.
    pub home: Option<PathBuf>,
    /// Only follow sessions already running (`--attach`); start nothing.
    pub attach_only: bool,
    /// The project's known_hosts file (`hostkeys::known_hosts_file`).
    pub known_hosts: PathBuf,
    /// How long the preflight waits for an instance's sshd.
    pub ssh_timeout: Duration,
    /// The run's connections.
    pub connections: Connections,
    /// The tether binary to copy to instances (`agent_binary`, `--agent-binary`); `None`:
    /// this machine's own.
    pub agent_binary: Option<PathBuf>,
    /// That binary's hash and gzip, made once for the run.
    pub agent_build: AgentBuild,
}

/// Where a run of jobs on instances starts from: this machine's files and settings.
pub struct Setup<'a> {
    pub spec: &'a Spec,
    pub spec_file: &'a Path,
    /// The ssh config file that holds the spec's aliases.
    pub config_file: &'a Path,
    /// This operator's home (`~` in paths, and the project's known_hosts file under it).
    pub home: Option<PathBuf>,
    pub attach_only: bool,
    pub ssh_timeout: Duration,
    pub agent_binary: Option<PathBuf>,
}

impl<'a> Context<'a> {
    /// The context of a run against `region`: the agent's environment (the region and this
    /// machine's endpoint settings, never credentials: the instance has its own), the
    /// project's known_hosts file, and a fresh set of connections in a private directory.
    pub fn new(setup: Setup<'a>, region: &str) -> std::io::Result<Context<'a>> {
        let Setup {
            spec,
            spec_file,
            config_file,
            home,
            attach_only,
            ssh_timeout,
            agent_binary,
        } = setup;
        let mut agent_env = vec![("AWS_REGION".to_string(), region.to_string())];
        for name in ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"] {
            if let Ok(value) = std::env::var(name) {
                agent_env.push((name.to_string(), value));
            }
        }
        let known_hosts = crate::ssh::hostkeys::known_hosts_file(
            home.as_deref().unwrap_or(Path::new(".")),
            &spec.project,
        );
        Ok(Context {
            spec,
            spec_file,
            config_file,
            agent_env,
            home,
            attach_only,
            known_hosts,
            ssh_timeout,
            connections: Connections::new()?,
            agent_binary,
            agent_build: AgentBuild::default(),
        })
    }
}

/// This run's agent build: its SHA-256, and its gzip, each made once (the gzip only when
/// some instance lacks the build).
#[derive(Debug, Default)]
pub struct AgentBuild {
    sha256: tokio::sync::OnceCell<String>,
    gzip: tokio::sync::OnceCell<(tempfile::TempPath, u64)>,
}

impl AgentBuild {
    pub(crate) async fn sha256(&self, binary: &Path) -> std::io::Result<&str> {
        let binary = binary.to_path_buf();
        self.sha256
            .get_or_try_init(|| async move {
                tokio::task::spawn_blocking(move || {
                    crate::hash::sha256_hex_of(std::fs::File::open(&binary)?).map(|(sha, _)| sha)
                })
                .await
                .map_err(std::io::Error::other)?
            })
            .await
            .map(String::as_str)
    }

    /// The build gzipped into a temporary file, and the file's size.
    pub(crate) async fn gzip(&self, binary: &Path) -> std::io::Result<&(tempfile::TempPath, u64)> {
        let binary = binary.to_path_buf();
        self.gzip
            .get_or_try_init(|| async move {
                tokio::task::spawn_blocking(move || {
                    let file = tempfile::Builder::new()
                        .prefix("tether-agent-")
                        .suffix(".gz")
                        .tempfile()?;
                    let mut encoder =
                        flate2::write::GzEncoder::new(file, flate2::Compression::default());
                    std::io::copy(&mut std::fs::File::open(&binary)?, &mut encoder)?;
                    let file = encoder.finish()?;
                    let size = file.as_file().metadata()?.len();
                    Ok((file.into_temp_path(), size))
                })
                .await
                .map_err(std::io::Error::other)?
            })
            .await
    }
}

/// Puts the agent build on the instance, unless it holds that very build (by its SHA-256,
/// checked there): the build travels gzipped, under a partial name of this run's, must
/// start there, and only then takes its place. `sending` is told the bytes that will travel
/// (0 when none) before any do. Returns the build's path, relative to the login's home.
async fn install_agent(
    context: &Context<'_>,
    target: &Target,
    (binary, shown): (&Path, &str),
    home: &str,
    sending: impl FnOnce(u64),
) -> Result<String, RemoteError> {
    let unreadable = |source| RemoteError::AgentUnreadable {
        path: shown.to_string(),
        source,
    };
    let sha256 = context
        .agent_build
        .sha256(binary)
        .await
        .map_err(unreadable)?;
    // One copy of each build on the instance, named by its content, reused by every job.
    let remote_binary = format!(".tether/bin/tether-{}", &sha256[..16]);
    let held = remote(
        target,
        &format!("[ -x {remote_binary} ] && sha256sum {remote_binary} 2>/dev/null || true"),
    )
    .await?;
    if held.split_whitespace().next() == Some(sha256) {
        sending(0);
        return Ok(remote_binary);
    }
    let (gzip, bytes) = context.agent_build.gzip(binary).await.map_err(unreadable)?;
    sending(*bytes);
    // A partial name of this run's own: two runs may upload to one instance at once, and
    // the rename makes whichever finishes last the one in place (both are the same build).
    let partial = format!(
        "{remote_binary}.partial-{}-{}",
        std::process::id(),
        target.instance
    );
    copy(target, gzip, &format!("{home}/{partial}.gz")).await?;
    // It must start there before it takes the place of a good copy: a binary linked
    // against a newer glibc than the image's fails here, not mid-job.
    let started = remote(
        target,
        &format!(
            "gzip -dc {partial}.gz > {partial} && chmod 755 {partial} && ./{partial} --version 2>&1 || rm -f {partial}; rm -f {partial}.gz"
        ),
    )
    .await?;
    if !started.starts_with("tether ") {
        if let Some(needs) = missing_glibc(&started) {
            let found = remote(
                target,
                "getconf GNU_LIBC_VERSION 2>/dev/null || ldd --version 2>&1",
            )
            .await
            .unwrap_or_default();
            return Err(RemoteError::AgentGlibc {
                path: shown.to_string(),
                instance: target.instance.clone(),
                needs,
                has: glibc_version(&found)
                    .unwrap_or_else(|| "an older one (its version could not be read)".into()),
            });
        }
        return Err(RemoteError::AgentWontStart {
            path: shown.to_string(),
            instance: target.instance.clone(),
            output: super::tail(started.trim(), 3, 400),
        });
    }
    remote(target, &format!("mv -f {partial} {remote_binary}")).await?;
    Ok(remote_binary)
}

/// Checks, before any job starts, that each instance of the remote jobs runs, that its
/// identity file is one ssh will use, and that it answers ssh with a host key tether can
/// verify (waiting for it to boot).
pub async fn preflight(
    context: &Context<'_>,
    cloud: &crate::aws::Cloud,
    jobs: &[&JobSpec],
    on_event: OnEvent<'_>,
) -> Result<Vec<crate::diagnostic::Diagnostic>, crate::aws::AwsError> {
    let mut problems = Vec::new();
    let mut checked = std::collections::BTreeSet::new();
    let mut to_reach: Vec<(&JobSpec, &str)> = Vec::new();
    for job in jobs.iter().copied() {
        let crate::spec::Placement::Instances(remote) = &job.placement else {
            continue;
        };
        for instance in &remote.run_on {
            if !checked.insert(instance.clone()) {
                continue;
            }
            let problem = |message: String, hint: String| {
                crate::diagnostic::Diagnostic::new(message, Some(job.location.clone()))
                    .with_hint(hint)
            };
            let up = match cloud.find_instance(&context.spec.project, instance).await? {
                Some(found) if found.state.is_up() => true,
                Some(found) => {
                    problems.push(problem(
                        format!("job `{}` runs on `{instance}`, which is {}", job.name, found.state),
                        "declare it `state: running` and `tether apply` (add `then: stop` to stop it after the job)".into(),
                    ));
                    false
                }
                None => {
                    problems.push(problem(
                        format!(
                            "job `{}` runs on `{instance}`, which is not launched",
                            job.name
                        ),
                        "`tether apply` launches it".into(),
                    ));
                    false
                }
            };
            let identity = context
                .spec
                .ssh
                .as_ref()
                .and_then(|ssh| ssh.hosts.values().find(|h| &h.instance == instance))
                .and_then(|h| h.identity_file.as_deref())
                .map(|file| crate::secrets::expand_home(file, context.home.as_deref()));
            if let Some(file) = identity {
                // An operator without a copy of a generated key fetches the team's.
                if let Err(error) = crate::pull::ensure_private_key(
                    cloud,
                    context.spec,
                    &file,
                    context.home.as_deref(),
                )
                .await
                {
                    problems.push(problem(
                        format!("cannot fetch the private key for `{instance}`: {error}"),
                        "run `tether secrets pull` to see why".into(),
                    ));
                }
                let subject = format!("the identity file `{}` for `{instance}`", file.display());
                if let Some((message, hint)) = crate::secrets::private_key_problem(&file, &subject)
                {
                    problems.push(problem(message, hint));
                }
            }
            if up {
                to_reach.push((job, instance));
            }
        }
    }
    // All instances at once: each may take a minute to boot.
    let reaches = to_reach
        .iter()
        .map(|(_, instance)| reach_instance(context, cloud, instance, on_event));
    let results = futures::future::join_all(reaches).await;
    for ((job, instance), result) in to_reach.into_iter().zip(results) {
        match result {
            Ok(()) => {}
            // An instance that does not answer fails its share, which the others run
            // (when there are others); a host key that cannot be trusted stops everything.
            Err(error @ crate::ssh::reach::ReachError::NotAnswering { .. }) => {
                context.connections.unreachable(instance, &error);
            }
            Err(error) => problems.push(
                crate::diagnostic::Diagnostic::new(
                    format!("job `{}` cannot reach `{instance}`: {error}", job.name),
                    Some(job.location.clone()),
                )
                .with_hint(error.hint().unwrap_or_default()),
            ),
        }
    }
    Ok(problems)
}

/// Waits for `instance`'s sshd and verifies its host key (see [`super::reach`]), then
/// keeps it among the run's connections.
pub async fn reach_instance(
    context: &Context<'_>,
    cloud: &crate::aws::Cloud,
    instance: &str,
    on_event: OnEvent<'_>,
) -> Result<(), crate::ssh::reach::ReachError> {
    let port = alias_of(context.spec, instance).map_or(22, |host| host.port);
    let on_wait = |waited: Duration| on_event(Event::WaitingForSsh { instance, waited });
    let reached = crate::ssh::reach::reach(
        cloud,
        &context.spec.project,
        instance,
        port,
        &context.known_hosts,
        context
            .spec
            .instances
            .get(instance)
            .map(|declared| declared.host_key)
            .unwrap_or_default(),
        context.ssh_timeout,
        &on_wait,
    )
    .await?;
    on_event(Event::Reached {
        instance,
        trust: reached.trust,
    });
    context.connections.insert(reached);
    Ok(())
}

/// Runs the job's shares on its instances and merges what they report. The share of an
/// instance that fails (cannot be reached, or its session ends without a result) is run
/// again on the instances that did not fail; tasks are safe to repeat, since an output is
/// a complete object or absent. Returns the tasks and notes for the summary.
pub async fn run(
    context: &Context<'_>,
    job: &JobSpec,
    remote: &Remote,
    inputs: Vec<Input>,
    options: &Options,
    on_event: OnEvent<'_>,
) -> Result<(Vec<TaskSummary>, Vec<String>), RemoteError> {
    on_event(Event::JobStarted {
        job: &job.name,
        tasks: inputs.len(),
        bytes: inputs.iter().map(|i| i.size).sum(),
    });
    let shares = split(inputs, remote.run_on.len());
    let runs = remote
        .run_on
        .iter()
        .zip(shares.clone())
        .map(|(instance, share)| {
            run_share(context, job, remote, instance, share, options, on_event)
        });
    let results = futures::future::join_all(runs).await;
    let mut tasks = Vec::new();
    let mut healthy = Vec::new();
    let mut failed: Vec<(String, RemoteError, Vec<Input>)> = Vec::new();
    for ((instance, result), share) in remote.run_on.iter().zip(results).zip(shares) {
        match result {
            Ok(summary) => {
                tasks.extend(summary.tasks);
                healthy.push(instance.clone());
            }
            Err(error) => failed.push((instance.clone(), error, share)),
        }
    }
    let mut notes = Vec::new();
    if !failed.is_empty() {
        if healthy.is_empty() || context.attach_only {
            let errors = failed
                .into_iter()
                .map(|(instance, error, _)| (instance, error))
                .collect();
            return Err(RemoteError::Failed(errors));
        }
        let mut orphaned = Vec::new();
        for (instance, error, share) in failed {
            notes.push(format!(
                "{instance} failed ({error}); its {} input(s) ran again on {}",
                share.len(),
                healthy.join(", ")
            ));
            orphaned.extend(share);
        }
        let reruns = healthy
            .iter()
            .zip(split(orphaned, healthy.len()))
            .map(|(instance, share)| {
                run_share(context, job, remote, instance, share, options, on_event)
            });
        for (instance, result) in healthy.iter().zip(futures::future::join_all(reruns).await) {
            match result {
                Ok(summary) => tasks.extend(summary.tasks),
                Err(error) => {
                    return Err(RemoteError::Rerun {
                        instance: instance.clone(),
                        source: Box::new(error),
                    })
                }
            }
        }
    }
    tasks.sort_by(|a, b| a.input.cmp(&b.input));
    Ok((tasks, notes))
}

#[allow(clippy::too_many_arguments)]
async fn run_share(
    context: &Context<'_>,
    job: &JobSpec,
    remote_job: &Remote,
    instance: &str,
    inputs: Vec<Input>,
    options: &Options,
    on_event: OnEvent<'_>,
) -> Result<JobSummary, RemoteError> {
    let project = &context.spec.project;
    let target = target(context, instance)?;
    let dir = workdir(project, &job.name, instance);
    let session = session(project, &job.name);

    // A session already there is this job, started earlier: follow it, start nothing.
    let running = remote(
        &target,
        &format!(
            "tmux has-session -t {} 2>/dev/null && echo yes || true",
            exact(&session)
        ),
    )
    .await?
    .trim()
        == "yes";
    if !running && context.attach_only {
        return Err(RemoteError::NotRunning {
            job: job.name.clone(),
            instance: instance.to_string(),
            session,
        });
    }
    let run_id = if running {
        // Following a session started earlier: its run id is in the share it was given.
        let share = remote(
            &target,
            &format!("cat {dir}/share.json 2>/dev/null || true"),
        )
        .await?;
        serde_json::from_str::<Share>(share.trim())
            .map(|share| share.run_id)
            .map_err(|_| RemoteError::UnreadableShare {
                job: job.name.clone(),
                instance: instance.to_string(),
            })?
    } else {
        crate::lock::new_lock_id()
    };
    if !running {
        let binary = match &context.agent_binary {
            Some(binary) => binary.clone(),
            None => std::env::current_exe().map_err(RemoteError::OwnBinary)?,
        };
        let shown = binary.display().to_string();
        let header = read_header(&binary).map_err(|source| RemoteError::AgentUnreadable {
            path: shown.clone(),
            source,
        })?;
        let binary_cpu = executable_kind(&header).map_err(|what| RemoteError::AgentNotLinux {
            path: shown.clone(),
            what,
            instance: instance.to_string(),
        })?;
        let prepared = remote(
            &target,
            // The job's files (its spec, shares, scratch and results) are the team's:
            // private to the login user, whatever the image's umask.
            &format!(
                "umask 077 && mkdir -p {dir} .tether/bin && chmod 700 .tether && uname -s && uname -m && pwd"
            ),
        )
        .await?;
        let mut facts = prepared.lines();
        let system = facts.next().unwrap_or_default().trim();
        let remote_arch = facts.next().unwrap_or_default().trim();
        // Paths for scp are absolute: not every server starts its file transfers at home.
        let home = facts.next().unwrap_or_default().trim().to_string();
        if system != "Linux" {
            return Err(RemoteError::NotLinux {
                instance: instance.to_string(),
                system: system.to_string(),
            });
        }
        if !same_cpu(&binary_cpu, remote_arch) {
            return Err(RemoteError::AgentArchitecture {
                path: shown,
                binary: binary_cpu,
                instance: instance.to_string(),
                remote: remote_arch.to_string(),
            });
        }
        let upload_bytes: u64 = remote_job
            .upload
            .iter()
            .filter_map(|file| std::fs::metadata(options.base_dir.join(file)).ok())
            .map(|m| m.len())
            .sum();
        let remote_binary =
            install_agent(context, &target, (&binary, &shown), &home, |binary_bytes| {
                on_event(Event::Uploading {
                    job: &job.name,
                    to: instance,
                    bytes: binary_bytes + upload_bytes,
                });
            })
            .await?;
        copy(
            &target,
            context.spec_file,
            &format!("{home}/{dir}/tether.yaml"),
        )
        .await?;
        for file in &remote_job.upload {
            let local = options.base_dir.join(file);
            let name = Path::new(file)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            copy(&target, &local, &format!("{home}/{dir}/{name}")).await?;
        }
        on_event(Event::Uploaded {
            job: &job.name,
            to: instance,
        });
        let share = Share {
            job: job.name.clone(),
            run_id: run_id.clone(),
            inputs,
            retries: options.retries,
            fail_fast: options.fail_fast,
            resume: options.resume,
        };
        let share_file = tempfile::NamedTempFile::new().map_err(RemoteError::ShareFile)?;
        std::fs::write(
            share_file.path(),
            serde_json::to_vec(&share).map_err(|e| RemoteError::ShareFile(e.into()))?,
        )
        .map_err(RemoteError::ShareFile)?;
        copy(
            &target,
            share_file.path(),
            &format!("{home}/{dir}/share.json"),
        )
        .await?;
        if let Some(setup) = &remote_job.setup {
            // Once per instance and setup command.
            let marker = format!(
                ".setup-{}",
                &crate::hash::sha256_hex(setup.as_bytes())[..16]
            );
            remote(
                &target,
                &format!(
                    "cd {dir} && if [ ! -e {marker} ]; then sh -c {} && touch {marker}; fi",
                    quote(setup)
                ),
            )
            .await
            .map_err(|error| RemoteError::Setup {
                instance: instance.to_string(),
                source: Box::new(error),
            })?;
        }
        let has_tmux = remote(&target, "command -v tmux || true").await?;
        if has_tmux.trim().is_empty() {
            return Err(RemoteError::NoTmux {
                instance: instance.to_string(),
            });
        }
        let env: String = context
            .agent_env
            .iter()
            .map(|(k, v)| format!("{k}={} ", quote(v)))
            .collect();
        let command = format!(
            "cd {dir} && rm -f status.json && env {env}~/{remote_binary} agent share.json > agent.log 2>&1"
        );
        remote(
            &target,
            &format!(
                "tmux new-session -d -s {} {}",
                quote(&session),
                quote(&command)
            ),
        )
        .await
        .map_err(|error| RemoteError::StartSession {
            instance: instance.to_string(),
            source: Box::new(error),
        })?;
    }
    follow(&target, &dir, &session, &run_id, &job.name, on_event).await
}

/// What runs on an instance for a job: whether its tmux session is alive, and the agent's
/// last status, if it ever wrote one.
pub async fn session_status(
    context: &Context<'_>,
    job: &JobSpec,
    instance: &str,
) -> Result<(bool, Option<AgentStatus>), RemoteError> {
    let target = target(context, instance)?;
    let dir = workdir(&context.spec.project, &job.name, instance);
    read_session(&target, &dir, &session(&context.spec.project, &job.name)).await
}

/// One short ssh call: whether the session is alive, and the agent's last status.
async fn read_session(
    target: &Target,
    dir: &str,
    session: &str,
) -> Result<(bool, Option<AgentStatus>), RemoteError> {
    let text = remote(
        target,
        &format!(
            "cat {dir}/status.json 2>/dev/null || true; echo; tmux has-session -t {} 2>/dev/null && echo alive || echo gone",
            exact(session)
        ),
    )
    .await?;
    let mut lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let alive = lines.pop() == Some("alive");
    let status = lines.first().and_then(|l| serde_json::from_str(l).ok());
    Ok((alive, status))
}

/// The directory under a job's directory on an instance where its tasks' logs are kept.
const LOGS_DIR: &str = "logs";

/// Where a job lives on an instance, for shell code run there: its directory (relative to
/// the login's home), its tasks' logs (relative to that directory), and the tmux target of
/// its session, quoted.
pub struct JobPlace {
    pub dir: String,
    pub logs: String,
    pub session: String,
}

/// Runs the shell code `script` makes for the job's place on `instance`; returns its stdout
/// as the bytes it was. One short ssh call over the run's connection.
pub async fn call_in_job(
    context: &Context<'_>,
    job: &JobSpec,
    instance: &str,
    script: impl FnOnce(&JobPlace) -> String,
) -> Result<Vec<u8>, RemoteError> {
    let target = target(context, instance)?;
    let place = JobPlace {
        dir: workdir(&context.spec.project, &job.name, instance),
        logs: format!("{LOGS_DIR}/{}", job.name),
        session: exact(&session(&context.spec.project, &job.name)),
    };
    remote_bytes(&target, &script(&place)).await
}

/// Polls the agent's status until its share is done.
async fn follow(
    target: &Target,
    dir: &str,
    session: &str,
    run_id: &str,
    job: &str,
    on_event: OnEvent<'_>,
) -> Result<JobSummary, RemoteError> {
    let mut seen = 0usize;
    let mut failing_since: Option<Instant> = None;
    loop {
        match read_session(target, dir, session).await {
            Err(error) => {
                let since = *failing_since.get_or_insert_with(Instant::now);
                if since.elapsed() > LOST_AFTER {
                    return Err(RemoteError::Lost {
                        instance: target.instance.clone(),
                        source: Box::new(error),
                    });
                }
            }
            Ok((alive, status)) => {
                failing_since = None;
                // A status of another run (an earlier one's, not yet replaced) is not ours.
                let status = status.filter(|status| status.run_id == run_id);
                if let Some(status) = &status {
                    for _ in seen..status.done {
                        on_event(Event::TaskFinished {
                            job,
                            status: Status::Succeeded,
                            bytes: 0,
                        });
                    }
                    seen = seen.max(status.done);
                    if let Some(summary) = &status.summary {
                        return Ok(summary.clone());
                    }
                }
                if !alive {
                    let log = remote(
                        target,
                        &format!("tail -n 20 {dir}/agent.log 2>/dev/null || true"),
                    )
                    .await
                    .unwrap_or_default();
                    return Err(RemoteError::EndedWithoutResult {
                        instance: target.instance.clone(),
                        log: log.trim().to_string(),
                    });
                }
            }
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// Runs one share on this machine, for `tether agent`: the job of `spec` over the share's
/// inputs, reporting to `status_file` as it goes. The job's summary is not written to its
/// `output` here: the machine that started the job merges the shares and writes it.
///
/// The tasks' logs go to `logs/` under `base_dir`; `echo_failed` also writes a failed
/// task's log to this process's stderr (a Batch child's goes to CloudWatch Logs).
pub async fn agent(
    cloud: &crate::aws::Cloud,
    spec: &Spec,
    share: Share,
    (base_dir, status_file): (PathBuf, &Path),
    echo_failed: bool,
) -> JobSummary {
    let mut job = spec
        .jobs
        .get(&share.job)
        .cloned()
        .expect("the share's job is in the spec");
    // Here, on the instance or in the container, the job runs where it is.
    job.placement = crate::spec::Placement::Here;
    if matches!(job.output, Some(crate::spec::Output::S3Object { .. })) {
        job.output = None;
    }
    let options = Options {
        fail_fast: share.fail_fast,
        retries: share.retries,
        resume: share.resume,
        logs: Some(base_dir.join(LOGS_DIR)),
        echo_failed,
        base_dir,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let status = std::sync::Mutex::new(AgentStatus {
        run_id: share.run_id.clone(),
        total: share.inputs.len(),
        ..AgentStatus::default()
    });
    let write = |status: &AgentStatus| {
        if let Ok(text) = serde_json::to_string(status) {
            let partial = status_file.with_extension("partial");
            if std::fs::write(&partial, text).is_ok() {
                let _ = std::fs::rename(&partial, status_file);
            }
        }
    };
    write(&status.lock().expect("status lock"));
    let on_event = |event: Event<'_>| {
        if let Event::TaskFinished { status: task, .. } = event {
            let mut status = status.lock().expect("status lock");
            status.done += 1;
            if task == Status::Failed {
                status.failed += 1;
            }
            write(&status);
        }
    };
    let summary = super::run_job(cloud, &job, Some(share.inputs), &options, None, &on_event).await;
    let mut status = status.lock().expect("status lock");
    status.summary = Some(summary.clone());
    write(&status);
    summary
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_binary_too_new_for_the_image_names_both_glibc_versions() {
        let output = "./tether: /lib64/libc.so.6: version `GLIBC_2.28' not found (required by ./tether)\n./tether: /lib64/libc.so.6: version `GLIBC_2.34' not found (required by ./tether)\n./tether: /lib64/libc.so.6: version `GLIBC_2.3.4' not found (required by ./tether)";
        assert_eq!(missing_glibc(output).as_deref(), Some("2.34"));
        assert_eq!(missing_glibc("Segmentation fault"), None);
        assert_eq!(glibc_version("glibc 2.26\n").as_deref(), Some("2.26"));
        assert_eq!(
            glibc_version("ldd (GNU libc) 2.31\nCopyright (C) 2020").as_deref(),
            Some("2.31")
        );
        assert_eq!(glibc_version("musl libc (x86_64)\nVersion 1.2.4"), None);
    }
    use crate::jobs::Source;

    fn input(name: &str, size: u64) -> Input {
        Input {
            name: name.into(),
            relative: name.into(),
            source: Source::S3 {
                bucket: "b".into(),
                key: name.into(),
            },
            size,
            version: None,
        }
    }

    #[test]
    fn executables_are_told_apart_by_their_first_bytes() {
        let mut elf = vec![0x7f, b'E', b'L', b'F', 2, 1];
        elf.resize(20, 0);
        elf[18] = 62;
        assert_eq!(executable_kind(&elf), Ok("x86_64".to_string()));
        elf[18] = 183;
        assert_eq!(executable_kind(&elf), Ok("aarch64".to_string()));
        assert!(same_cpu("aarch64", "arm64") && !same_cpu("x86_64", "aarch64"));
        for (header, what) in [
            (&[0xcf, 0xfa, 0xed, 0xfe, 7, 0, 0, 1][..], "Mach-O"),
            (&[0xca, 0xfe, 0xba, 0xbe][..], "Mach-O"),
            (b"MZ\x90\x00".as_slice(), "Windows"),
            (b"#!/bin/sh\n".as_slice(), "script"),
            (b"".as_slice(), "no executable format"),
        ] {
            let error = executable_kind(header).expect_err(what);
            assert!(error.contains(what), "{error}");
        }
        // This test's own binary is one for this machine.
        let own = read_header(&std::env::current_exe().expect("exe")).expect("read");
        assert_eq!(
            executable_kind(&own),
            Ok(std::env::consts::ARCH.to_string())
        );
    }

    #[test]
    fn shares_are_balanced_by_size() {
        let inputs = vec![
            input("a", 100),
            input("b", 60),
            input("c", 50),
            input("d", 10),
        ];
        let shares = split(inputs, 2);
        let sizes: Vec<u64> = shares
            .iter()
            .map(|s| s.iter().map(|i| i.size).sum())
            .collect();
        assert_eq!(sizes, [110, 110]);
        assert_eq!(
            split(vec![input("a", 1)], 3)
                .iter()
                .filter(|s| !s.is_empty())
                .count(),
            1
        );
    }
}
