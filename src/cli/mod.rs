//! Command-line wiring: argument definitions, one module per command, shared loading of the
//! spec and the AWS clients, and the exit codes. Commands call the library and print through
//! the `Printer`; they make no decisions of their own about the account.

pub mod agent;
pub mod apply;
pub mod audit;
pub mod changes;
pub mod completions;
pub mod cost;
pub mod destroy;
pub mod force_unlock;
pub mod forget;
pub mod import;
pub mod interrupt;
pub mod jobs;
pub mod logs;
pub mod man;
pub mod plan;
pub mod prices;
pub mod printer;
pub mod progress;
pub mod rotate_key;
pub mod run;
pub mod schema;
pub mod secrets;
pub mod show;
pub mod ssh;
pub mod validate;

use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};

use printer::Printer;
use tether::aws::Cloud;
use tether::spec::Spec;

/// Keep an AWS lab in line with one YAML spec.
#[derive(Debug, Parser)]
#[command(name = "tether", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the spec without contacting AWS.
    Validate(validate::ValidateArgs),
    /// Show what apply would change.
    Plan(plan::PlanArgs),
    /// Make the account match the spec, or apply a saved plan.
    Apply(apply::ApplyArgs),
    /// Delete everything the project owns.
    Destroy(destroy::DestroyArgs),
    /// Write a spec for what the account holds that no tether project owns (a lab built in
    /// the console), every resource `adopt: true`.
    Import(import::ImportArgs),
    /// Stop managing resources without deleting them: tether's tags, paths and records come
    /// off, the resources stay.
    Forget(forget::ForgetArgs),
    /// Give a user a new access key, write it, then delete the old one.
    RotateKey(rotate_key::RotateKeyArgs),
    /// Write local copies of the team's secrets from Parameter Store.
    #[command(subcommand)]
    Secrets(secrets::SecretsCommand),
    /// Break the project's lock left by a run that was killed.
    ForceUnlock(force_unlock::ForceUnlockArgs),
    /// Report on the account's security; exit 3 when a check fails.
    Audit(audit::AuditArgs),
    /// Run one share of a job on an instance (started by `tether run` over ssh).
    #[command(hide = true)]
    Agent(agent::AgentArgs),
    /// Open ssh to an alias or instance of the spec (or run a command there after `--`).
    Ssh(ssh::SshArgs),
    /// Print the completion script for a shell (bash, zsh, fish, powershell, elvish).
    Completions(completions::CompletionsArgs),
    /// Print tether's man page (roff): `tether man > tether.1`.
    Man(man::ManArgs),
    /// Print the spec's JSON Schema, for editors: `tether schema > tether.schema.json`.
    Schema(schema::SchemaArgs),
    /// Run the spec's jobs (all, or those named, with the jobs they run after).
    Run(run::RunArgs),
    /// Show what a job's tasks wrote: failed tasks' stderr here, the agent's and the tasks'
    /// logs on instances, the children's CloudWatch Logs on Batch.
    Logs(logs::LogsArgs),
    /// Show the spec's instances and Elastic IPs as they are: ids, states, addresses, and
    /// a ready ssh command.
    Show(show::ShowArgs),
    /// Read today's prices (on-demand, storage, spot) for the spec's region into the cache
    /// `plan` and `cost` price with.
    #[command(subcommand)]
    Prices(prices::PricesCommand),
    /// What the project has cost this month (or --month), by day and service, from Cost
    /// Explorer, with AWS's forecast and the price table's prediction beside it.
    Cost(cost::CostArgs),
}

/// tether's exit codes, documented in the README.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// The command did what was asked (for `plan`, also "there are changes" without
    /// `--detailed-exitcode`).
    Success,
    /// Any error: bad spec, AWS failure, a failed apply step, a refused prompt.
    Error,
    /// `plan --detailed-exitcode` found changes.
    Changes,
    /// `audit` found a failing check.
    AuditFailed,
    /// Ended by a signal (Ctrl-C's SIGINT, SIGTERM, SIGHUP) after cleaning up: 128 plus
    /// the signal's number, as shells report it.
    Interrupted(interrupt::Signal),
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(match exit {
            Exit::Success => 0,
            Exit::Error => 1,
            Exit::Changes => 2,
            Exit::AuditFailed => 3,
            Exit::Interrupted(signal) => signal.exit_code(),
        })
    }
}

pub async fn run(cli: Cli, printer: &Printer) -> anyhow::Result<Exit> {
    match cli.command {
        Command::Validate(args) => validate::exec(args, printer),
        Command::Plan(args) => plan::exec(args, printer).await,
        Command::Apply(args) => apply::exec(args, printer).await,
        Command::Destroy(args) => destroy::exec(args, printer).await,
        Command::Forget(args) => forget::exec(args, printer).await,
        Command::Import(args) => import::exec(args, printer).await,
        Command::RotateKey(args) => rotate_key::exec(args, printer).await,
        Command::Audit(args) => audit::exec(args, printer).await,
        Command::Secrets(command) => secrets::exec(command, printer).await,
        Command::ForceUnlock(args) => force_unlock::exec(args, printer).await,
        Command::Show(args) => show::exec(args, printer).await,
        Command::Cost(args) => cost::exec(args, printer).await,
        Command::Prices(command) => prices::exec(command, printer).await,
        Command::Run(args) => run::exec(args, printer).await,
        Command::Logs(args) => logs::exec(args, printer).await,
        Command::Ssh(args) => ssh::exec(args, printer).await,
        Command::Completions(args) => completions::exec(args, printer),
        Command::Man(args) => man::exec(args, printer),
        Command::Schema(args) => schema::exec(args, printer),
        Command::Agent(args) => agent::exec(args, printer).await,
    }
}

/// The spec file used when `-f` is not given.
pub const DEFAULT_SPEC: &str = "tether.yaml";

/// Reads and validates the spec at `path`.
pub fn load_spec(path: &Path) -> anyhow::Result<Spec> {
    let text = std::fs::read_to_string(path).with_context(|| {
        if path == Path::new(DEFAULT_SPEC) && !path.exists() {
            format!("no `{DEFAULT_SPEC}` in the current directory (pass the spec with -f FILE)")
        } else {
            format!("cannot read the spec file `{}`", path.display())
        }
    })?;
    let mut spec = tether::spec::parse(&path.display().to_string(), &text)?;
    let base_dir = path.parent().unwrap_or(Path::new("."));
    spec.read_files(base_dir, |file| std::fs::read(file))?;
    Ok(spec)
}

/// Clients for the spec's region (or the AWS chain's when the spec names none).
///
/// `TETHER_MAX_IN_FLIGHT`, when set, caps the requests tether keeps in flight at once
/// (reads of the account, S3 objects of builtin jobs), which otherwise grow with the
/// endpoint's distance.
pub async fn connect(region: Option<&str>) -> anyhow::Result<Cloud> {
    let cloud = Cloud::connect(region).await?;
    if let Ok(text) = std::env::var("TETHER_MAX_IN_FLIGHT") {
        let most: u32 = text.parse().ok().filter(|n| *n > 0).with_context(|| {
            format!("TETHER_MAX_IN_FLIGHT is `{text}`: it must be a number of requests, 1 or more")
        })?;
        cloud.limit_in_flight(most);
    }
    Ok(cloud)
}

/// Waits for `instance`'s sshd and verifies its host key, printing progress (for `ssh` and
/// `apply --wait-for-ssh`); returns the
/// ssh options that hold it to that key at its current address.
pub async fn reach(
    printer: &Printer,
    cloud: &tether::aws::Cloud,
    spec: &tether::spec::Spec,
    instance: &str,
    port: u16,
    timeout: std::time::Duration,
) -> anyhow::Result<Vec<String>> {
    let home = home();
    let known_hosts = tether::ssh::hostkeys::known_hosts_file(
        home.as_deref().unwrap_or(std::path::Path::new(".")),
        &spec.project,
    );
    let on_wait = |waited: std::time::Duration| {
        printer.status(&format!(
            "waiting for `{instance}` to answer ssh ({}s)",
            waited.as_secs()
        ));
    };
    let reached = tether::ssh::reach::reach(
        cloud,
        &spec.project,
        instance,
        port,
        &known_hosts,
        spec.instances
            .get(instance)
            .map(|declared| declared.host_key)
            .unwrap_or_default(),
        timeout,
        &on_wait,
    )
    .await
    .map_err(|error| match error.hint() {
        Some(hint) => anyhow::Error::new(printer::WithHint::new(error.to_string(), hint)),
        None => anyhow::Error::new(error),
    })?;
    if reached.trust == tether::ssh::reach::Trust::FirstUse {
        printer.status(&first_use_warning(instance));
    }
    Ok(tether::ssh::reach::verified_options(&reached, &known_hosts))
}

/// The warning for an instance whose host key nothing could vouch for (`Trust::FirstUse`).
pub fn first_use_warning(instance: &str) -> String {
    format!(
        "warning: `{instance}`: its console output shows no host key fingerprints (an image without cloud-init?), so its host key was trusted on first use and recorded; a different one later is refused"
    )
}

/// Asks for `yes` on the terminal. Refuses, rather than waiting, when stdin is not one.
/// The answer is read on a blocking thread, so Ctrl-C at the prompt is still handled (and
/// releases the project lock) while the read waits.
pub async fn confirm(printer: &Printer, question: &str) -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        bail!(printer::WithHint::new(
            "refusing to ask for confirmation: standard input is not a terminal",
            "pass --auto-approve to apply without asking",
        ));
    }
    printer.status(&format!("\n{question}\n  Only 'yes' is accepted.\n"));
    printer.prompt("  Enter a value: ");
    let answer = tokio::task::spawn_blocking(|| {
        let mut answer = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut answer)
            .map(|_| answer)
    })
    .await
    .context("cannot read the answer from standard input")?
    .context("cannot read the answer from standard input")?;
    Ok(answer.trim() == "yes")
}

/// `-f`'s value, defaulting to `tether.yaml`.
pub fn spec_path(file: Option<PathBuf>) -> PathBuf {
    file.unwrap_or_else(|| PathBuf::from(DEFAULT_SPEC))
}

/// Reads the account and plans `spec` against it (the library's `planning::plan_spec`),
/// printing the reader's warnings.
pub async fn fresh_plan(
    printer: &Printer,
    cloud: &Cloud,
    spec: &Spec,
    mode: tether::plan::Mode,
    empty_tagged_buckets: bool,
    forget: &[tether::model::Address],
) -> anyhow::Result<tether::plan::Plan> {
    let home = home();
    let options = tether::planning::Options {
        mode,
        empty_tagged_buckets,
        home: home.as_deref(),
        forget,
    };
    let planned = tether::planning::plan_spec(cloud, spec, options).await?;
    for warning in &planned.warnings {
        printer.status(&format!("warning: {warning}"));
    }
    Ok(planned.plan)
}

/// The OpenSSH config file the spec's aliases go to, for this operator.
pub fn ssh_config_file(spec: &Spec) -> PathBuf {
    tether::planning::ssh_config_file(spec, home().as_deref())
}

/// The spec's `secrets_dir` with `~` expanded from HOME.
pub fn secrets_dir(spec: &Spec) -> PathBuf {
    tether::secrets::expand_home(&spec.secrets_dir, home().as_deref())
}

/// The context of a command that only reads what jobs on instances do (`run --status`,
/// `logs`): it starts nothing and copies no agent.
pub fn reading_context<'a>(
    spec: &'a Spec,
    config_file: &'a Path,
    region: &str,
    ssh_timeout: std::time::Duration,
) -> anyhow::Result<tether::jobs::remote::Context<'a>> {
    tether::jobs::remote::Context::new(
        tether::jobs::remote::Setup {
            spec,
            spec_file: Path::new(DEFAULT_SPEC),
            config_file,
            home: home(),
            attach_only: true,
            ssh_timeout,
            agent_binary: None,
        },
        region,
    )
    .context("cannot make a private directory for ssh connections")
}

/// The user's home directory, for `~` in the spec's paths.
/// Writes `text` to `path` whole or not at all (a temporary file beside it, renamed into
/// place); without `replace`, an existing file is left as it is and is an error.
pub fn write_whole(path: &Path, text: &str, replace: bool) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let temp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot write in `{}`", dir.display()))?;
    std::fs::write(temp.path(), text)
        .with_context(|| format!("cannot write `{}`", temp.path().display()))?;
    if replace {
        temp.persist(path)?;
    } else {
        temp.persist_noclobber(path)?;
    }
    Ok(())
}

pub fn home() -> Option<PathBuf> {
    std::env::var_os("HOME").map(PathBuf::from)
}

/// The plan as JSON for `--json` and `--out`: the plan itself plus its summary. The format
/// is versioned by `format_version`; saved plans are read back from it.
pub fn plan_json(plan: &tether::plan::Plan, costs: Option<tether::pricing::Costs>) -> String {
    #[derive(serde::Serialize)]
    struct Document<'a> {
        #[serde(flatten)]
        plan: &'a tether::plan::Plan,
        summary: tether::plan::Summary,
        /// What the planned instances and Elastic IPs cost (not read back from a saved
        /// plan: the prices are tether's, not the account's).
        #[serde(skip_serializing_if = "Option::is_none")]
        costs: Option<tether::pricing::Costs>,
    }
    let document = Document {
        plan,
        summary: plan.summary(),
        costs,
    };
    let mut text = serde_json::to_string_pretty(&document).expect("a plan always serialises");
    text.push('\n');
    text
}

/// Today in UTC; in debug builds `TETHER_TEST_TODAY` (YYYY-MM-DD) stands for it, so tests
/// can ask about the days their figures cover and the age of prices.
pub fn today() -> anyhow::Result<time::Date> {
    if cfg!(debug_assertions) {
        if let Ok(text) = std::env::var("TETHER_TEST_TODAY") {
            let format = time::macros::format_description!("[year]-[month]-[day]");
            return time::Date::parse(&text, format)
                .with_context(|| format!("TETHER_TEST_TODAY is `{text}`, not YYYY-MM-DD"));
        }
    }
    Ok(time::OffsetDateTime::now_utc().date())
}

/// Where `tether prices refresh` keeps its prices: `$XDG_CACHE_HOME/tether/prices.json`,
/// else `~/.cache/tether/prices.json`; `None` without either variable.
pub fn prices_cache_file() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .or_else(|| home().map(|home| home.join(".cache")))?;
    Some(base.join("tether").join("prices.json"))
}

/// The refreshed prices, if any: a missing file is none; one that cannot be read or parsed
/// is a warning and none (the shipped table still prices the plan).
pub fn prices_cache(printer: &Printer) -> Option<tether::pricing::PriceCache> {
    let path = prices_cache_file()?;
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return None,
        Err(error) => {
            printer.status(&format!(
                "warning: cannot read the prices in `{}` ({error}); using the shipped table",
                path.display()
            ));
            return None;
        }
    };
    match serde_json::from_str(&text) {
        Ok(cache) => Some(cache),
        Err(error) => {
            printer.status(&format!(
                "warning: the prices in `{}` are not tether's ({error}); using the shipped table (`tether prices refresh` rewrites them)",
                path.display()
            ));
            None
        }
    }
}

/// What the plan's lab costs, at the newest prices this operator has (the shipped table,
/// or refreshed ones), with their age today.
pub fn plan_costs(
    printer: &Printer,
    plan: &tether::plan::Plan,
) -> anyhow::Result<Option<tether::pricing::Costs>> {
    let cache = prices_cache(printer);
    let prices = tether::pricing::Prices::new(&plan.region, cache.as_ref());
    Ok(tether::pricing::plan_costs(plan, &prices, today()?))
}

/// `--lock-timeout`: how long a command that changes the project waits for another run's
/// lock.
#[derive(Debug, clap::Args)]
pub struct LockOptions {
    /// How long to wait for another run's lock on the project (`90s`, `5m`; `0` fails at
    /// once, naming the holder).
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
    pub lock_timeout: std::time::Duration,
}

/// `30`, `30s`, `5m`, `1h`.
pub(crate) fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let value: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 90s, 5m or 1h"))?;
    let seconds = match unit {
        "s" => value,
        "m" => value * 60,
        "h" => value * 3600,
        _ => return Err(format!("`{text}` is not a duration like 90s, 5m or 1h")),
    };
    Ok(std::time::Duration::from_secs(seconds))
}

/// The lock this process holds, so that Ctrl-C can release it (see `release_held_lock`).
static HELD_LOCK: std::sync::Mutex<Option<(Cloud, String, String)>> = std::sync::Mutex::new(None);

/// Takes the project's lock for `command`, waiting up to the timeout with a progress line
/// that names the holder.
pub async fn take_lock(
    printer: &Printer,
    cloud: &Cloud,
    project: &str,
    command: &str,
    options: &LockOptions,
) -> anyhow::Result<tether::lock::Lock> {
    let info = tether::lock::LockInfo {
        id: tether::lock::new_lock_id(),
        who: std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .unwrap_or_else(|_| "unknown".into()),
        host: host_name(),
        pid: std::process::id(),
        command: command.to_string(),
        since: tether::lock::now_seconds(),
        heartbeat: None,
        boot: boot_id(),
    };
    let here = tether::lock::ThisHost {
        host: info.host.clone(),
        boot: info.boot.clone(),
        alive: tether_process_alive,
    };
    let last_said = std::sync::Mutex::new(None::<std::time::Duration>);
    let on_wait = |holder: &tether::lock::Holder, waited: std::time::Duration| {
        let mut last = last_said.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_none_or(|said| waited.saturating_sub(said).as_secs() >= 20) {
            printer.status(&format!(
                "waiting for the project lock ({}s so far): {holder}",
                waited.as_secs()
            ));
            *last = Some(waited);
        }
    };
    // Known before it is taken: Ctrl-C between AWS taking it and this run hearing so must
    // still release it (release deletes only a lock with this id).
    *HELD_LOCK.lock().unwrap_or_else(|e| e.into_inner()) =
        Some((cloud.clone(), project.to_string(), info.id.clone()));
    let lock = tether::lock::acquire(
        cloud,
        project,
        info,
        &here,
        (options.lock_timeout, std::time::Duration::from_secs(2)),
        &on_wait,
    )
    .await
    .map_err(|error| match &error {
        tether::lock::LockError::Held { holder, .. } => anyhow::Error::new(printer::WithHint::new(
            error.to_string(),
            format!(
                "wait for that run to finish (--lock-timeout waits longer); if it was killed, break its lock with `tether force-unlock {}`",
                holder.id()
            ),
        )),
        tether::lock::LockError::Aws(aws) => {
            let hint = aws.hint().unwrap_or_default();
            anyhow::Error::new(printer::WithHint::new(
                format!("cannot take the project lock: {aws}"),
                format!("{hint}{}the lock is the Parameter Store parameter /tether/{project}/lock: the credentials need ssm:PutParameter, ssm:GetParameter and ssm:DeleteParameter on /tether/{project}/*", if hint.is_empty() { "" } else { "; " }),
            ))
        }
        _ => anyhow::Error::msg(error.to_string()),
    });
    if lock.is_err() {
        HELD_LOCK.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
    if let Ok(tether::lock::Lock {
        takeover: Some(takeover),
        ..
    }) = &lock
    {
        printer.status(&format!(
            "note: took over the project lock from a run that is gone: {} ({})",
            takeover.replaced, takeover.why
        ));
    }
    lock
}

/// How often the lock's heartbeat beats: `lock::HEARTBEAT`; a debug build takes
/// `TETHER_TEST_LOCK_HEARTBEAT` (seconds), so tests see beats without waiting minutes.
fn heartbeat_interval() -> std::time::Duration {
    let test = cfg!(debug_assertions)
        .then(|| std::env::var("TETHER_TEST_LOCK_HEARTBEAT").ok())
        .flatten()
        .and_then(|secs| secs.parse().ok());
    test.map_or(tether::lock::HEARTBEAT, std::time::Duration::from_secs)
}

/// This boot of this machine (Linux's `boot_id`), for lock records.
fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|id| id.trim().to_string())
        .filter(|id| !id.is_empty())
}

/// Whether process `pid` on this machine is alive and runs tether (a pid reused by another
/// program is no lock holder). Without `/proc` there is no telling: it counts as alive,
/// and only the holder's heartbeat decides.
fn tether_process_alive(pid: u32) -> bool {
    if !std::path::Path::new("/proc/self").exists() {
        return true;
    }
    match std::fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(cmdline) => String::from_utf8_lossy(&cmdline).contains("tether"),
        Err(_) => false,
    }
}

/// Releases a lock taken by `take_lock`.
pub async fn release_lock(cloud: &Cloud, lock: tether::lock::Lock) -> anyhow::Result<()> {
    let id = lock.info.id.clone();
    HELD_LOCK.lock().unwrap_or_else(|e| e.into_inner()).take();
    lock.release(cloud).await.with_context(|| {
        format!("cannot release the project lock {id}; break it with `tether force-unlock {id}`")
    })
}

/// Runs `body` holding the project's lock, and releases it whatever `body` returns.
pub async fn with_lock<T>(
    printer: &Printer,
    cloud: &Cloud,
    project: &str,
    command: &str,
    options: &LockOptions,
    body: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    let lock = take_lock(printer, cloud, project, command, options).await?;
    // The heartbeat runs for as long as the body does, however long its waits; a lock
    // taken over by another run (this one fell silent) stops the body.
    let (heartbeat, mut lost) = lock.keep_alive(cloud, heartbeat_interval());
    let result = tokio::select! {
        result = body => result,
        _ = lost.wait_for(|lost| *lost) => Err(anyhow::Error::new(printer::WithHint::new(
            format!("the project lock {} is no longer this run's: another run took it over, or it was broken", lock.info.id),
            "this run stopped where it was; every step can be run again: run the command again once the other run is done",
        ))),
    };
    heartbeat.abort();
    let released = release_lock(cloud, lock).await;
    let value = result?;
    released?;
    Ok(value)
}

/// Releases the lock this process holds, if any (after Ctrl-C, within a few seconds).
pub async fn release_held_lock() {
    let held = HELD_LOCK.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some((cloud, project, id)) = held {
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            tether::lock::release(&cloud, &project, &id),
        )
        .await;
    }
}

/// This machine's host name, for lock records.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|name| name.trim().to_string())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "unknown-host".into())
}

/// Tells the operator which of the spec's secrets they hold no local copy of, with the
/// command that fetches them. Says nothing to the plan: what one operator holds is no fact
/// about the account.
pub fn note_unheld_copies(printer: &Printer, spec: &Spec) {
    if spec.secrets != tether::spec::SecretsMode::ParameterStore {
        return;
    }
    let home = home();
    let missing: Vec<String> = spec
        .key_pairs
        .values()
        .filter_map(|key| {
            let file = key.private_key_file()?;
            let path = tether::secrets::expand_home(file, home.as_deref());
            (!path.exists()).then(|| format!("{} ({file})", key.name))
        })
        .collect();
    if !missing.is_empty() {
        printer.status(&format!(
            "note: no local copy of the private key of {}: `tether secrets pull` fetches it (`tether ssh` does so by itself)",
            missing.join(", ")
        ));
    }
}
