//! `tether show`: the live facts about the spec's instances and Elastic IPs, with a ready
//! `ssh` line for each reachable instance. Read-only.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use super::printer::Printer;
use super::Exit;
use tether::kinds::ResourceState;
use tether::model::Kind;

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The spec file.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Print the facts as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// What `show` reports: the spec's instances and Elastic IPs as they are, with the names of
/// their images (for the login user). Also what `tether ssh` reaches an instance by.
pub async fn read_report(
    cloud: &tether::aws::Cloud,
    spec: &tether::spec::Spec,
) -> anyhow::Result<tether::show::Report> {
    let addresses: Vec<tether::model::Address> =
        tether::plan::desired_resources(spec, cloud.region(), super::home().as_deref())
            .into_iter()
            .map(|d| d.address)
            .filter(|a| {
                matches!(
                    a.kind,
                    Kind::Instance
                        | Kind::ElasticIp
                        | Kind::BatchComputeEnvironment
                        | Kind::BatchJobQueue
                )
            })
            .collect();
    let live = tether::live::read(
        cloud,
        &spec.project,
        tether::live::Scope::Only(&addresses, &Default::default()),
    )
    .await
    .context("cannot read the account")?;
    let amis: Vec<String> = live
        .resources
        .values()
        .filter_map(|r| match &r.state {
            ResourceState::Instance(instance) => Some(instance.ami.clone()),
            _ => None,
        })
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let images = cloud
        .images(amis)
        .await
        .context("cannot read the instances' images")?
        .into_iter()
        .map(|(id, (name, _))| (id, name))
        .collect();
    Ok(tether::show::report(
        spec,
        &live,
        &images,
        super::home().as_deref(),
    ))
}

/// How long `show` waits for an instance's sshd to read its watchdog's status.
const IDLE_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// The watchdog's status file on the instance; a debug build reads the file
/// `TETHER_TEST_IDLE_STATUS` names instead (the tests' loopback "instance" is this machine).
fn status_file() -> String {
    if cfg!(debug_assertions) {
        if let Ok(path) = std::env::var("TETHER_TEST_IDLE_STATUS") {
            // It goes into a remote command: a plain path only.
            if path
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c))
            {
                return path;
            }
        }
    }
    tether::idle::STATUS_FILE.to_string()
}

/// What the watchdog of one running instance says now, read over its alias with its host
/// key verified (as `tether ssh` does).
async fn idle_now(
    printer: &Printer,
    cloud: &tether::aws::Cloud,
    spec: &tether::spec::Spec,
    host: &tether::spec::HostSpec,
) -> anyhow::Result<String> {
    let options = super::reach(
        printer,
        cloud,
        spec,
        &host.instance,
        host.port,
        IDLE_READ_TIMEOUT,
    )
    .await?;
    let output = tokio::process::Command::new("ssh")
        .arg("-F")
        .arg(super::ssh_config_file(spec))
        .args(options)
        .args(["-o", "BatchMode=yes", "-o", "ClearAllForwardings=yes"])
        .arg(&host.alias)
        .arg("--")
        .arg(format!("cat {}", status_file()))
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .context("cannot run `ssh`")?;
    let text = String::from_utf8_lossy(&output.stdout);
    Ok(match tether::idle::IdleStatus::parse(&text) {
        Some(status) => status.describe(),
        None if output.status.success() => "the watchdog has not reported yet".to_string(),
        None => "unknown: the watchdog's status cannot be read (is it installed?)".to_string(),
    })
}

/// Fills in what the watchdogs of the running instances with an idle rule say now; one
/// that cannot be reached says why.
async fn read_idle(
    printer: &Printer,
    cloud: &tether::aws::Cloud,
    spec: &tether::spec::Spec,
    report: &mut tether::show::Report,
) {
    for view in &mut report.instances {
        if view.idle_stop.is_none() || view.state != "running" {
            continue;
        }
        let host = spec
            .ssh
            .as_ref()
            .and_then(|ssh| ssh.hosts.values().find(|h| h.instance == view.name));
        let now = match host {
            None => "unknown: no ssh alias reaches it".to_string(),
            Some(host) => match idle_now(printer, cloud, spec, host).await {
                Ok(text) => text,
                Err(error) => format!("unknown: {error:#}"),
            },
        };
        // The watchdog's reason is text from the instance: one line, escaped, whatever
        // its file holds.
        view.idle_now = Some(tether::render::one_line(&now));
    }
}

pub async fn exec(args: ShowArgs, printer: &Printer) -> anyhow::Result<Exit> {
    let ShowArgs { file, json } = args;
    let spec = super::load_spec(&super::spec_path(file))?;
    let cloud = super::connect(spec.region.as_deref()).await?;
    let mut report = read_report(&cloud, &spec).await?;
    read_idle(printer, &cloud, &spec, &mut report).await;
    if json {
        let mut text = serde_json::to_string_pretty(&report).expect("a report always serialises");
        text.push('\n');
        printer.json(&text)?;
    } else {
        printer.data(&tether::show::text(&report))?;
    }
    Ok(Exit::Success)
}
