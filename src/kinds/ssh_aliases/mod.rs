//! The project's block of SSH aliases in the operator's OpenSSH config file: the one local
//! kind. Its changes are this operator's (`Kind::is_local`), so they stay out of the shared
//! plan; the block is rendered at apply time with the addresses the instances have then.

mod write;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::model::{attribute, Attribute, AttributeFormat, Kind, Ownership};

use std::path::Path;

use crate::model::{Address, SSH_ALIASES};
use crate::spec::{Spec, SshSpec};
use crate::ssh::config::HostEntry;

use crate::diagnostic::Diagnostic;
use crate::model::RunState;
use crate::ssh::config::HostAddress;

use super::{
    Context, DesiredResource, Intent, LiveState, ResourceKind, ResourceState, Settling,
    SpecContext, Step, StepFailure,
};

/// The project's block of aliases in an OpenSSH config file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SshConfigState {
    /// The config file (absolute).
    pub file: String,
    /// The block's text, markers included; the planner renders the desired one from the
    /// hosts and the live addresses.
    pub block: String,
    /// The declared aliases (desired state only), for apply to render the block with the
    /// addresses it finds then.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<crate::ssh::config::HostEntry>,
    /// The project's known_hosts file (absolute; desired only), which the block points
    /// ssh at for the host keys tether verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub known_hosts: Option<String>,
}

/// The block's operations.
#[derive(Clone, Debug, PartialEq)]
pub enum SshConfigOp {
    /// Render the project's alias block with the addresses the instances have now, and put
    /// it into `file` (atomically; nothing outside the block changes).
    Write {
        file: PathBuf,
        hosts: Vec<crate::ssh::config::HostEntry>,
        known_hosts: Option<String>,
    },
    /// Take the project's block out of `file`.
    Remove { file: PathBuf },
}

/// The SSH alias block kind.
pub struct SshAliases;

/// The project's alias block in `file`, if the file holds one. Reads a local file.
/// Refuses a file whose markers are unbalanced, or whose own lines (outside the block)
/// claim one of `aliases`.
pub fn read(
    file: &Path,
    project: &str,
    aliases: &[&str],
) -> std::io::Result<Option<super::LiveResource>> {
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error),
    };
    // Unbalanced markers make the block's extent unknowable: no plan is made on a guess.
    crate::ssh::config::check_markers(&text, project).map_err(|problem| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{problem}: fix the markers by hand (one `# BEGIN tether {project}` line, then one `# END tether {project}` line)"),
        )
    })?;
    let clashes = crate::ssh::config::clashing_hosts(&text, project, aliases);
    if let Some((line, alias)) = clashes.first() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("line {line} is a `Host` entry of its own for `{alias}`, which ssh would follow instead of tether's alias: rename the alias in the spec, or remove that entry"),
        ));
    }
    Ok(
        crate::ssh::config::find(&text, project).map(|(_, block)| super::LiveResource {
            address: Address::new(Kind::SshConfig, SSH_ALIASES),
            state: ResourceState::SshConfig(SshConfigState {
                file: file.display().to_string(),
                block,
                hosts: Vec::new(),
                known_hosts: None,
            }),
            depends_on: Vec::new(),
        }),
    )
}

impl ResourceKind for SshAliases {
    const KIND: Kind = Kind::SshConfig;
    type State = SshConfigState;
    type Op = SshConfigOp;

    /// The block is settled before the planner knows what it replaces: a replaced instance
    /// comes back with another address and host key, which only the write can know.
    const FOLLOWS_REPLACEMENT: Option<&'static str> =
        Some("an instance it reaches is replaced: its new address and host key are written after");

    /// The block's text is left for the planner, which knows the instances' live addresses.
    fn desired(spec: &Spec, env: &SpecContext<'_>) -> Vec<DesiredResource> {
        spec.ssh
            .iter()
            .map(|ssh| desired_ssh_config(spec, ssh, env.home))
            .collect()
    }

    /// The block's text, rendered with the addresses the instances will have.
    fn settle(
        config: &mut SshConfigState,
        _declared: &DesiredResource,
        settling: &Settling<'_>,
    ) -> Vec<Diagnostic> {
        let instance_id = |instance: &str| match settling
            .live
            .resources
            .get(&Address::new(Kind::Instance, instance))
            .map(|r| &r.state)
        {
            Some(ResourceState::Instance(state)) => state.id.clone(),
            _ => None,
        };
        let host_keys = config
            .known_hosts
            .as_deref()
            .map(|file| crate::ssh::config::HostKeys {
                file,
                instance_id: &instance_id,
            });
        config.block = crate::ssh::config::render(
            settling.project,
            &config.hosts,
            |instance| host_address(instance, settling.desired, settling.live),
            host_keys.as_ref(),
        );
        Vec::new()
    }

    fn attributes(config: &SshConfigState) -> Vec<Attribute> {
        vec![
            attribute("file", &config.file, AttributeFormat::Value).forcing(),
            attribute("block", &config.block, AttributeFormat::Document),
        ]
    }

    /// The block's markers name the project: a block is only ever the project's own.
    fn ownership(_config: &SshConfigState, _project: &str) -> Ownership {
        Ownership::Owned
    }

    fn create(
        _name: &str,
        config: &SshConfigState,
        _replacing: Option<&SshConfigState>,
        _context: &Context,
    ) -> Vec<SshConfigOp> {
        vec![SshConfigOp::Write {
            file: PathBuf::from(&config.file),
            hosts: config.hosts.clone(),
            known_hosts: config.known_hosts.clone(),
        }]
    }

    /// Always rewritten: the addresses in it are the instances' at apply time.
    fn update(
        _name: &str,
        _before: &SshConfigState,
        config: &SshConfigState,
        _intent: &Intent,
        _context: &Context,
    ) -> Vec<SshConfigOp> {
        vec![SshConfigOp::Write {
            file: PathBuf::from(&config.file),
            hosts: config.hosts.clone(),
            known_hosts: config.known_hosts.clone(),
        }]
    }

    fn delete(
        _name: &str,
        config: &SshConfigState,
        _intent: &Intent,
        _context: &Context,
    ) -> Vec<SshConfigOp> {
        vec![SshConfigOp::Remove {
            file: PathBuf::from(&config.file),
        }]
    }

    fn describe(op: &SshConfigOp) -> &'static str {
        match op {
            SshConfigOp::Write { .. } => "writing SSH aliases",
            SshConfigOp::Remove { .. } => "removing SSH aliases",
        }
    }

    async fn run(op: &SshConfigOp, step: &Step<'_>) -> Result<(), StepFailure> {
        match op {
            SshConfigOp::Write {
                file,
                hosts,
                known_hosts,
            } => {
                write::write(
                    step.cloud,
                    step.project,
                    file,
                    hosts,
                    known_hosts.as_deref(),
                )
                .await
            }
            SshConfigOp::Remove { file } => write::remove(step.project, file),
        }
    }
}

fn desired_ssh_config(spec: &Spec, ssh: &SshSpec, home: Option<&Path>) -> DesiredResource {
    let expand = |file: &str| {
        crate::secrets::expand_home(file, home)
            .display()
            .to_string()
    };
    let hosts: Vec<HostEntry> = ssh
        .hosts
        .values()
        .map(|host| HostEntry {
            alias: host.alias.clone(),
            instance: host.instance.clone(),
            user: host.user.clone(),
            port: host.port,
            identity_file: host.identity_file.as_deref().map(expand),
            forwards: host.forwards.clone(),
            adopt: host.adopt,
        })
        .collect();
    // After the instances and their addresses, whose addresses it holds.
    let mut depends_on: Vec<Address> = hosts
        .iter()
        .map(|h| Address::new(Kind::Instance, &h.instance))
        .collect();
    depends_on.extend(
        spec.elastic_ips
            .values()
            .filter(|eip| {
                eip.instance
                    .as_ref()
                    .is_some_and(|i| hosts.iter().any(|h| &h.instance == i))
            })
            .map(|eip| Address::new(Kind::ElasticIp, &eip.name)),
    );
    depends_on.sort();
    depends_on.dedup();
    let known_hosts = home.map(|home| {
        crate::ssh::hostkeys::known_hosts_file(home, &spec.project)
            .display()
            .to_string()
    });
    DesiredResource {
        address: Address::new(Kind::SshConfig, SSH_ALIASES),
        state: ResourceState::SshConfig(SshConfigState {
            file: expand(&ssh.config_file),
            block: String::new(),
            hosts,
            known_hosts,
        }),
        adopt: false,
        depends_on,
        location: ssh.location.clone(),
    }
}

/// An instance's address as the alias block should hold it: its Elastic IP, else its
/// public address while it runs. Only what this apply leaves as it is can be known now: an
/// instance to be launched, started or stopped, or an address to be made or moved, is
/// known after apply.
fn host_address(instance: &str, desired: &[DesiredResource], live: &LiveState) -> HostAddress {
    let address = Address::new(Kind::Instance, instance);
    let wanted = desired.iter().find_map(|d| match &d.state {
        ResourceState::Instance(state) if d.address == address => Some(state),
        _ => None,
    });
    let wanted_eip = desired.iter().find_map(|d| match &d.state {
        ResourceState::ElasticIp(eip) if eip.instance.as_deref() == Some(instance) => {
            Some(&d.address)
        }
        _ => None,
    });
    // Stopped and without an Elastic IP, it will have no address, whatever it has now.
    if wanted_eip.is_none() && wanted.is_some_and(|w| w.state == RunState::Stopped) {
        return HostAddress::None;
    }
    let Some(ResourceState::Instance(current)) = live.resources.get(&address).map(|r| &r.state)
    else {
        return HostAddress::AfterApply;
    };
    if wanted.is_some_and(|w| w.state != current.state) {
        return HostAddress::AfterApply;
    }
    let live_eip = live.resources.iter().find_map(|(a, r)| match &r.state {
        ResourceState::ElasticIp(eip) if eip.instance.as_deref() == Some(instance) => {
            Some((a, eip))
        }
        _ => None,
    });
    match (wanted_eip, live_eip) {
        (Some(wanted), Some((found, eip))) if wanted == found => match &eip.public_ip {
            Some(ip) => HostAddress::Known(ip.clone()),
            None => HostAddress::AfterApply,
        },
        (Some(_), _) => HostAddress::AfterApply,
        (None, _) => match (current.state, &current.public_ip) {
            (RunState::Running, Some(ip)) => HostAddress::Known(ip.clone()),
            (RunState::Running, None) => HostAddress::AfterApply,
            (RunState::Stopped, _) => HostAddress::None,
        },
    }
}
