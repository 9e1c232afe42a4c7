//! `tether ssh <alias|instance> [-- command...]`: runs the system `ssh` with the right
//! options, so the user's ssh config and agent apply. Through the alias when the
//! spec declares one (the block apply wrote), else straight to the instance's address.
//! First it waits for the instance's sshd (a new or started instance boots for a while)
//! and verifies its host key as jobs do (`ssh::reach`), then connects with that key
//! required.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;

use super::printer::{Printer, WithHint};
use super::Exit;

#[derive(Debug, Args)]
pub struct SshArgs {
    /// An alias from the spec's `ssh.hosts`, or an instance's name.
    #[arg(value_name = "ALIAS|INSTANCE")]
    pub target: String,
    /// The spec file.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// How long to wait for the instance's sshd to answer.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = super::parse_duration)]
    pub ssh_timeout: std::time::Duration,
    /// Only forward the alias's ports (`ssh.hosts.<alias>.forward`), with no shell, until
    /// Ctrl-C; fails at once when a local port is taken.
    #[arg(long, conflicts_with = "command")]
    pub forward: bool,
    /// A command to run there instead of a login shell (after `--`).
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// ssh refuses a private key that others can read; say so before it does, with the fix.
fn check_identity(file: &str) -> anyhow::Result<()> {
    let subject = format!("the identity file `{file}`");
    match tether::secrets::private_key_problem(std::path::Path::new(file), &subject) {
        Some((message, hint)) => bail!(WithHint::new(message, hint)),
        None => Ok(()),
    }
}

/// Fetches the private key ssh will use from Parameter Store when this operator has no
/// copy of it (or tether's copy of an older key pair).
async fn fetch_private_key(
    printer: &Printer,
    spec: &tether::spec::Spec,
    identity: &std::path::Path,
) -> anyhow::Result<()> {
    // Connect only when there is a key to fetch.
    if tether::pull::stored_key_for(spec, identity, super::home().as_deref()).is_none() {
        return Ok(());
    }
    let cloud = super::connect(spec.region.as_deref()).await?;
    let pulled = tether::pull::ensure_private_key(&cloud, spec, identity, super::home().as_deref())
        .await
        .with_context(|| format!("cannot fetch the private key `{}`", identity.display()))?;
    if let Some(pulled) = pulled.filter(|p| p.written == tether::secrets::Written::Written) {
        printer.status(&format!(
            "fetched the private key of {} from Parameter Store into {}",
            pulled.owner,
            pulled.file.display()
        ));
    }
    Ok(())
}

pub async fn exec(args: SshArgs, printer: &Printer) -> anyhow::Result<Exit> {
    let SshArgs {
        target,
        file,
        ssh_timeout,
        forward,
        command,
    } = args;
    let spec = super::load_spec(&super::spec_path(file))?;
    let hosts = spec.ssh.as_ref().map(|ssh| &ssh.hosts);
    let alias = hosts.and_then(|hosts| {
        hosts
            .get(&target)
            .or_else(|| hosts.values().find(|h| h.instance == target))
    });
    let mut ssh = std::process::Command::new("ssh");
    if let Some(host) = alias {
        let config = super::ssh_config_file(&spec);
        let text = std::fs::read_to_string(&config).unwrap_or_default();
        let written = tether::ssh::config::find(&text, &spec.project)
            .is_some_and(|(_, block)| block.contains(&format!("Host {}\n", host.alias)));
        if !written {
            bail!(WithHint::new(
                format!(
                    "alias `{}` is not in {} yet (or its instance has no address)",
                    host.alias,
                    config.display()
                ),
                "run `tether apply` to write it",
            ));
        }
        if let Some(identity) = &host.identity_file {
            let identity = tether::secrets::expand_home(identity, super::home().as_deref());
            fetch_private_key(printer, &spec, &identity).await?;
            check_identity(&identity.display().to_string())?;
        }
        let cloud = super::connect(spec.region.as_deref()).await?;
        let options = super::reach(
            printer,
            &cloud,
            &spec,
            &host.instance,
            host.port,
            ssh_timeout,
        )
        .await?;
        ssh.arg("-F").arg(&config).args(options);
        if forward {
            if host.forwards.is_empty() {
                bail!(WithHint::new(
                    format!("alias `{}` forwards no ports", host.alias),
                    format!(
                        "add `forward: [8888]` under `ssh.hosts.{}` and apply",
                        host.alias
                    ),
                ));
            }
            let ports: Vec<String> = host
                .forwards
                .iter()
                .map(|f| format!("localhost:{} -> {}:{}", f.local, host.alias, f.remote))
                .collect();
            printer.status(&format!("forwarding {} (Ctrl-C stops)", ports.join(", ")));
            ssh.args(["-N", "-o", "ExitOnForwardFailure=yes"]);
        } else if !command.is_empty() {
            // A command is not a session to forward through.
            ssh.args(["-o", "ClearAllForwardings=yes"]);
        }
        ssh.arg(&host.alias);
    } else if forward {
        bail!(WithHint::new(
            format!("`{target}` is no SSH alias of the spec, and only aliases forward ports"),
            "declare an alias under `ssh.hosts` with `forward: [8888]`",
        ));
    } else if spec.instances.contains_key(&target) {
        let cloud = super::connect(spec.region.as_deref()).await?;
        let report = super::show::read_report(&cloud, &spec).await?;
        let view = report
            .instances
            .iter()
            .find(|i| i.name == target)
            .context("the instance is in the spec")?;
        let Some(address) = &view.address else {
            bail!(WithHint::new(
                format!("instance `{target}` has no address ({})", view.state),
                "launch or start it with `state: running` and `tether apply`; an Elastic IP keeps its address across stops",
            ));
        };
        if let Some(key) = &view.key_file {
            fetch_private_key(printer, &spec, std::path::Path::new(key)).await?;
            check_identity(key)?;
            ssh.arg("-i").arg(key);
        }
        ssh.args(super::reach(printer, &cloud, &spec, &target, 22, ssh_timeout).await?);
        ssh.arg(format!(
            "{}@{address}",
            view.user.as_deref().unwrap_or("ec2-user")
        ));
    } else {
        let mut known: Vec<String> = hosts
            .map(|h| h.keys().cloned().collect())
            .unwrap_or_default();
        known.extend(spec.instances.keys().cloned());
        bail!(WithHint::new(
            format!("`{target}` is neither an SSH alias nor an instance of the spec"),
            if known.is_empty() {
                "declare an instance (and an alias under `ssh.hosts`) first".to_string()
            } else {
                format!("known: {}", known.join(", "))
            },
        ));
    }
    if !command.is_empty() {
        ssh.arg("--").args(&command);
    }
    // Only returns if ssh cannot be started.
    let error = ssh.exec();
    Err(anyhow::Error::new(error).context("cannot run `ssh`"))
}
