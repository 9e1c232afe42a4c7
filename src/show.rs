//! `tether show`: the live facts a user needs next about the spec's machines — instance
//! ids and states, the address to reach each one (the Elastic IP when there is one), a
//! ready `ssh` command line, and the states of AWS Batch compute environments and queues.
//! Pure: built from the spec, the live state and image names.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

use serde::Serialize;

use crate::kinds::{ElasticIpState, InstanceState, LiveState, ResourceState};
use crate::model::{Address, Kind};
use crate::spec::Spec;

/// What `show` reports.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    pub project: String,
    pub instances: Vec<InstanceView>,
    pub elastic_ips: Vec<ElasticIpView>,
    /// The spec's Batch compute environments and job queues.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub batch: Vec<BatchView>,
}

/// A declared Batch compute environment or job queue as it is now.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BatchView {
    /// `batch_compute_environment.<name>` or `batch_job_queue.<name>`.
    pub address: String,
    /// Batch's state and status (`ENABLED VALID`), with its reason; `not created`.
    pub status: String,
}

/// One declared instance as it is now.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct InstanceView {
    pub name: String,
    /// `None` when it is not launched.
    pub id: Option<String>,
    /// `running`, `stopped`, or `not launched`.
    pub state: String,
    pub instance_type: Option<String>,
    /// Where to reach it: the Elastic IP's address, else the instance's own public one.
    pub address: Option<String>,
    /// The Elastic IP holding `address`, if any.
    pub elastic_ip: Option<String>,
    /// The login user for the image (guessed from its name).
    pub user: Option<String>,
    /// The private key file of its key pair, when tether generated the pair.
    pub key_file: Option<String>,
    /// `ssh -i <key> <user>@<address>`, when there is an address.
    pub ssh: Option<String>,
    /// Its idle rule in force (its tag), in words; `None`: it never stops itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_stop: Option<String>,
    /// What its watchdog says now (read over ssh by `tether show`), in words; or why it
    /// could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_now: Option<String>,
}

/// One declared Elastic IP as it is now.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ElasticIpView {
    pub name: String,
    pub address: Option<String>,
    pub instance: Option<String>,
}

/// The login user of the usual images, by their names; `ec2-user` (Amazon Linux, RHEL,
/// SUSE) when the name says nothing better.
pub fn login_user(image_name: &str) -> &'static str {
    let name = image_name.to_ascii_lowercase();
    if name.contains("ubuntu") {
        "ubuntu"
    } else if name.contains("debian") {
        "admin"
    } else if name.contains("centos") {
        "centos"
    } else if name.contains("fedora") {
        "fedora"
    } else if name.contains("bitnami") {
        "bitnami"
    } else {
        "ec2-user"
    }
}

/// Builds the report. `images` maps image ids to names; `home` expands `~` in key paths.
pub fn report(
    spec: &Spec,
    live: &LiveState,
    images: &BTreeMap<String, String>,
    home: Option<&Path>,
) -> Report {
    let addresses: Vec<(&String, &ElasticIpState)> = live
        .resources
        .iter()
        .filter_map(|(address, resource)| match &resource.state {
            ResourceState::ElasticIp(state) => Some((&address.name, state)),
            _ => None,
        })
        .collect();
    let instances = spec
        .instances
        .values()
        .map(|instance| {
            let address = Address::new(Kind::Instance, &instance.name);
            let found = match live.resources.get(&address).map(|r| &r.state) {
                Some(ResourceState::Instance(state)) => Some(state),
                _ => None,
            };
            // One that only carries the project's tags is not its instance: no ssh line
            // may lead there.
            let Some(state) = found.filter(|state| state.recorded) else {
                return InstanceView {
                    name: instance.name.clone(),
                    id: None,
                    state: if found.is_some() {
                        "not launched by the project (an instance carries its tags, but no launch record names it: see `tether plan`)".into()
                    } else {
                        "not launched".into()
                    },
                    instance_type: None,
                    address: None,
                    elastic_ip: None,
                    user: None,
                    key_file: None,
                    idle_stop: None,
                    idle_now: None,
                    ssh: None,
                };
            };
            let elastic = addresses
                .iter()
                .find(|(_, eip)| eip.instance.as_deref() == Some(instance.name.as_str()));
            let public = elastic
                .and_then(|(_, eip)| eip.public_ip.clone())
                .or_else(|| state.public_ip.clone());
            let user = images.get(&state.ami).map(|name| login_user(name));
            let key_file = key_file(spec, state, home);
            let ssh = public.as_ref().map(|ip| {
                let key = key_file
                    .as_ref()
                    .map(|file| format!("-i {file} "))
                    .unwrap_or_default();
                format!("ssh {key}{}@{ip}", user.unwrap_or("ec2-user"))
            });
            InstanceView {
                name: instance.name.clone(),
                id: state.id.clone(),
                state: match state.state {
                    crate::model::RunState::Running => "running".into(),
                    crate::model::RunState::Stopped => "stopped".into(),
                },
                instance_type: Some(state.instance_type.clone()),
                address: public,
                elastic_ip: elastic.map(|(name, _)| (*name).clone()),
                user: user.map(str::to_string),
                key_file,
                ssh,
                idle_stop: state.idle_stop.as_ref().map(crate::idle::IdleRule::describe),
                idle_now: None,
            }
        })
        .collect();
    let elastic_ips = spec
        .elastic_ips
        .values()
        .map(|declared| {
            let found = addresses.iter().find(|(name, _)| **name == declared.name);
            ElasticIpView {
                name: declared.name.clone(),
                address: found.and_then(|(_, eip)| eip.public_ip.clone()),
                instance: found.and_then(|(_, eip)| eip.instance.clone()),
            }
        })
        .collect();
    let status = |address: Address| {
        let status = match live.resources.get(&address).map(|r| &r.state) {
            Some(ResourceState::BatchComputeEnvironment(ce)) => ce.status.clone(),
            Some(ResourceState::BatchJobQueue(queue)) => queue.status.clone(),
            _ => None,
        };
        BatchView {
            address: address.to_string(),
            status: status.unwrap_or_else(|| "not created".into()),
        }
    };
    let batch = spec
        .batch
        .compute_environments
        .keys()
        .map(|name| status(Address::new(Kind::BatchComputeEnvironment, name)))
        .chain(
            spec.batch
                .job_queues
                .keys()
                .map(|name| status(Address::new(Kind::BatchJobQueue, name))),
        )
        .collect();
    Report {
        project: spec.project.clone(),
        instances,
        elastic_ips,
        batch,
    }
}

/// The private key file of the instance's key pair, when the spec generated it.
fn key_file(spec: &Spec, state: &InstanceState, home: Option<&Path>) -> Option<String> {
    let file = spec
        .key_pairs
        .get(state.key_pair.as_ref()?)?
        .private_key_file()?;
    Some(
        crate::secrets::expand_home(file, home)
            .display()
            .to_string(),
    )
}

/// The report as text for people.
pub fn text(report: &Report) -> String {
    let mut out = String::new();
    if report.instances.is_empty() && report.elastic_ips.is_empty() && report.batch.is_empty() {
        let _ = writeln!(
            out,
            "The spec declares no instances, Elastic IPs or Batch resources."
        );
        return out;
    }
    for instance in &report.instances {
        let _ = writeln!(
            out,
            "instance.{}  {}  {}{}",
            instance.name,
            instance.id.as_deref().unwrap_or("-"),
            instance.state,
            instance
                .instance_type
                .as_ref()
                .map(|t| format!("  {t}"))
                .unwrap_or_default()
        );
        match (&instance.address, &instance.elastic_ip) {
            (Some(address), Some(eip)) => {
                let _ = writeln!(out, "  address  {address} (elastic_ip.{eip})");
            }
            (Some(address), None) => {
                let _ = writeln!(
                    out,
                    "  address  {address} (changes when the instance stops; an Elastic IP keeps it)"
                );
            }
            (None, _) if instance.id.is_some() => {
                let _ = writeln!(out, "  address  none (stopped, and no Elastic IP)");
            }
            (None, _) => {
                let _ = writeln!(out, "  run `tether apply` to launch it");
            }
        }
        if let Some(ssh) = &instance.ssh {
            let _ = writeln!(out, "  ssh      {ssh}");
        }
        if let Some(rule) = &instance.idle_stop {
            let _ = writeln!(out, "  idle     {rule}");
        }
        if let Some(now) = &instance.idle_now {
            let _ = writeln!(out, "           now: {now}");
        }
    }
    for eip in &report.elastic_ips {
        let _ = writeln!(
            out,
            "elastic_ip.{}  {}{}",
            eip.name,
            eip.address.as_deref().unwrap_or("not allocated"),
            eip.instance
                .as_ref()
                .map(|i| format!(" -> {i}"))
                .unwrap_or_default()
        );
    }
    for view in &report.batch {
        let _ = writeln!(out, "{}  {}", view.address, view.status);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::login_user;

    #[test]
    fn login_user_follows_the_image_name() {
        assert_eq!(
            login_user("ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-20240101"),
            "ubuntu"
        );
        assert_eq!(login_user("debian-12-amd64-20240101"), "admin");
        assert_eq!(
            login_user("al2023-ami-2023.4.20240401.1-kernel-6.1-x86_64"),
            "ec2-user"
        );
    }
}
