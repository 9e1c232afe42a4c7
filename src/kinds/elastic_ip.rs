//! Elastic IPs: found by tags like instances, associated with one of the project's
//! instances (which the address follows when that instance is replaced).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::aws::{Cloud, OnWait, WAIT_TIMEOUT};
use crate::model::{
    attribute, ownership, Attribute, AttributeFormat, InstanceStatus, Kind, Ownership, TAG_NAME,
    TAG_PROJECT,
};

use crate::model::{ownership_tags, Address};
use crate::spec::Spec;

use super::{
    refused, removed_keys, Context, Deletion, DesiredResource, Intent, ResourceKind, ResourceState,
    SpecContext, Step, StepFailure,
};

/// The comparable state of an Elastic IP.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ElasticIpState {
    pub tags: BTreeMap<String, String>,
    /// The instance it is associated with: its spec name when it is one of the project's
    /// instances, else its id.
    pub instance: Option<String>,
    /// The address (live only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_ip: Option<String>,
    /// The allocation id (live only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allocation_id: Option<String>,
}

/// An address's operations.
#[derive(Clone, Debug, PartialEq)]
pub enum AddressOp {
    /// Find the project's address of this name, or allocate it, tagged.
    Allocate {
        name: String,
        tags: BTreeMap<String, String>,
    },
    /// Wait until the instance is running (or stopped), then associate the address with it.
    /// An address associated with another instance is taken from it only if the plan said
    /// so (`replacing` names the instance the plan saw it on); otherwise this fails.
    Associate {
        name: String,
        instance: String,
        replacing: Option<String>,
    },
    Disassociate {
        name: String,
    },
    /// Disassociate the address if needed (AWS refuses to release an associated one), then
    /// release it.
    Release {
        name: String,
    },
    SetTags {
        name: String,
        tags: BTreeMap<String, String>,
        remove: Vec<String>,
    },
    /// Tag the address `allocation_id`, which no tether project owns, as this one (the
    /// spec adopts it); it must still be there and untagged by tether.
    Adopt {
        name: String,
        allocation_id: String,
    },
}

/// The Elastic IP kind.
pub struct ElasticIp;

/// A listed address, tagged `name`, as a live resource (`instance_names`: the project's
/// instance names by id; an instance not among them is shown by its id).
pub(crate) fn read(
    name: &str,
    address: crate::aws::AddressInfo,
    instance_names: &BTreeMap<String, String>,
) -> super::LiveResource {
    let instance = address.instance_id.as_ref().map(|id| {
        instance_names
            .get(id)
            .cloned()
            .unwrap_or_else(|| id.clone())
    });
    super::LiveResource {
        address: Address::new(Kind::ElasticIp, name),
        // An address goes before the instance it is on.
        depends_on: address
            .instance_id
            .as_ref()
            .and_then(|id| instance_names.get(id))
            .map(|instance| Address::new(Kind::Instance, instance))
            .into_iter()
            .collect(),
        state: ResourceState::ElasticIp(ElasticIpState {
            tags: address.tags,
            instance,
            public_ip: Some(address.public_ip),
            allocation_id: Some(address.allocation_id),
        }),
    }
}

impl ResourceKind for ElasticIp {
    const KIND: Kind = Kind::ElasticIp;
    type State = ElasticIpState;
    type Op = AddressOp;
    const FOLLOWS_REPLACEMENT: Option<&'static str> =
        Some("its instance is replaced: the address is associated with the new one");

    /// An allocation id to adopt that the account does not show is refused, not
    /// allocated anew.
    fn settle(
        address: &mut ElasticIpState,
        declared: &DesiredResource,
        settling: &super::Settling<'_>,
    ) -> Vec<crate::diagnostic::Diagnostic> {
        let found = settling.live.resources.contains_key(&declared.address);
        match (&address.allocation_id, declared.adopt && !found) {
            (Some(id), true) => vec![crate::diagnostic::Diagnostic::new(
                format!("{} adopts {id}, which the account does not show", declared.address),
                Some(declared.location.clone()),
            )
            .with_hint("plan again in a moment if it was just allocated; if it is gone, remove `allocation_id:` and `adopt:` to allocate a new one")],
            _ => Vec::new(),
        }
    }

    fn desired(spec: &Spec, env: &SpecContext<'_>) -> Vec<DesiredResource> {
        spec.elastic_ips
            .values()
            .map(|address| {
                let mut tags = address.tags.clone();
                tags.extend(ownership_tags(env.project, &address.name));
                DesiredResource {
                    address: Address::new(Kind::ElasticIp, &address.name),
                    state: ResourceState::ElasticIp(ElasticIpState {
                        tags,
                        instance: address.instance.clone(),
                        public_ip: None,
                        // The address the spec adopts; an allocation gets its own.
                        allocation_id: address.adopt_id.clone(),
                    }),
                    adopt: address.adopt_id.is_some(),
                    depends_on: address
                        .instance
                        .iter()
                        .map(|instance| Address::new(Kind::Instance, instance))
                        .collect(),
                    location: address.location.clone(),
                }
            })
            .collect()
    }

    fn attributes(address: &ElasticIpState) -> Vec<Attribute> {
        vec![
            attribute("instance", &address.instance, AttributeFormat::Value),
            attribute("tags", &address.tags, AttributeFormat::Map),
        ]
    }

    fn ownership(address: &ElasticIpState, project: &str) -> Ownership {
        ownership(&address.tags, project)
    }

    /// The address stays allocated and associated; only the tags go.
    fn disowned(address: &ElasticIpState) -> Result<ElasticIpState, &'static str> {
        Ok(ElasticIpState {
            tags: crate::model::without_tether_tags(&address.tags),
            ..address.clone()
        })
    }

    /// Only the tags: an update would also associate it again, and its instance may be
    /// let go of in the same run.
    fn forget(
        name: &str,
        before: &ElasticIpState,
        after: &ElasticIpState,
        _context: &Context,
    ) -> Vec<AddressOp> {
        vec![AddressOp::SetTags {
            name: name.to_string(),
            tags: after.tags.clone(),
            remove: removed_keys(&before.tags, &after.tags),
        }]
    }

    fn create(
        name: &str,
        address: &ElasticIpState,
        _replacing: Option<&ElasticIpState>,
        _context: &Context,
    ) -> Vec<AddressOp> {
        let mut ops = vec![AddressOp::Allocate {
            name: name.to_string(),
            tags: address.tags.clone(),
        }];
        ops.extend(
            address
                .instance
                .iter()
                .map(|instance| AddressOp::Associate {
                    name: name.to_string(),
                    instance: instance.clone(),
                    replacing: None,
                }),
        );
        ops
    }

    /// An adoption tags the address first, so that every later step finds it.
    fn update(
        name: &str,
        before: &ElasticIpState,
        after: &ElasticIpState,
        intent: &Intent,
        _context: &Context,
    ) -> Vec<AddressOp> {
        let mut ops = Vec::new();
        if let (true, Some(allocation_id)) = (intent.adopt, &before.allocation_id) {
            ops.push(AddressOp::Adopt {
                name: name.to_string(),
                allocation_id: allocation_id.clone(),
            });
        }
        if before.tags != after.tags {
            ops.push(AddressOp::SetTags {
                name: name.to_string(),
                tags: after.tags.clone(),
                remove: removed_keys(&before.tags, &after.tags),
            });
        }
        // Associating is a no-op when the address is already on the instance; running it
        // on every update also re-associates it after its instance was replaced.
        match &after.instance {
            Some(instance) => ops.push(AddressOp::Associate {
                name: name.to_string(),
                instance: instance.clone(),
                replacing: before.instance.clone(),
            }),
            None if before.instance.is_some() => ops.push(AddressOp::Disassociate {
                name: name.to_string(),
            }),
            None => {}
        }
        ops
    }

    fn delete(
        name: &str,
        _before: &ElasticIpState,
        _intent: &Intent,
        _context: &Context,
    ) -> Vec<AddressOp> {
        vec![AddressOp::Release {
            name: name.to_string(),
        }]
    }

    fn describe(op: &AddressOp) -> &'static str {
        match op {
            AddressOp::Allocate { .. } => "allocating address",
            AddressOp::Associate { .. } => "associating address",
            AddressOp::Disassociate { .. } => "disassociating address",
            AddressOp::Release { .. } => "releasing address",
            AddressOp::SetTags { .. } => "tagging",
            AddressOp::Adopt { .. } => "tagging the adopted address",
        }
    }

    async fn run(op: &AddressOp, step: &Step<'_>) -> Result<(), StepFailure> {
        let (cloud, project) = (step.cloud, step.project);
        match op {
            AddressOp::Allocate { name, tags } => {
                allocate_address(cloud, project, name, tags).await
            }
            AddressOp::Associate {
                name,
                instance,
                replacing,
            } => {
                associate_address(
                    cloud,
                    step.on_wait,
                    project,
                    name,
                    instance,
                    replacing.as_deref(),
                )
                .await
            }
            AddressOp::Disassociate { name } => disassociate_address(cloud, project, name).await,
            AddressOp::Release { name } => release_address(cloud, project, name).await,
            AddressOp::SetTags { name, tags, remove } => {
                set_address_tags(cloud, project, name, tags, remove).await
            }
            AddressOp::Adopt {
                name,
                allocation_id,
            } => adopt_address(cloud, project, name, allocation_id).await,
        }
    }

    fn deletion(address: &ElasticIpState, _empty_tagged_buckets: bool) -> Deletion {
        Deletion {
            empties: false,
            note: address
                .public_ip
                .as_ref()
                .map(|ip| format!("the address {ip} is released for good")),
        }
    }
}

async fn adopt_address(
    cloud: &Cloud,
    project: &str,
    name: &str,
    allocation_id: &str,
) -> Result<(), StepFailure> {
    let found = cloud.addresses(Some(&[allocation_id.to_string()])).await?;
    let Some(address) = found.iter().find(|a| a.allocation_id == allocation_id) else {
        return Err(StepFailure::NotCreated {
            resource: format!("Elastic IP `{name}`"),
            found: format!("{allocation_id}, the address the plan would adopt, is gone"),
        });
    };
    match address.tags.get(TAG_PROJECT) {
        None => Ok(cloud
            .set_address_tags(name, allocation_id, &ownership_tags(project, name), &[])
            .await?),
        Some(owner)
            if owner == project && address.tags.get(TAG_NAME).map(String::as_str) == Some(name) =>
        {
            Ok(())
        }
        Some(_) => Err(StepFailure::NotCreated {
            resource: format!("Elastic IP `{name}`"),
            found: format!("{allocation_id} is now tagged as another's"),
        }),
    }
}

async fn allocate_address(
    cloud: &Cloud,
    project: &str,
    name: &str,
    tags: &BTreeMap<String, String>,
) -> Result<(), StepFailure> {
    // AllocateAddress takes no client token: finding the tagged address is what keeps a
    // repeated step from allocating a second one.
    if cloud.find_address(project, name).await?.is_none() {
        cloud.allocate_address(name, tags).await?;
    }
    Ok(())
}

/// Associates the address with the instance once the instance runs (or is stopped). An
/// address on another instance is moved only when `replacing` says the plan saw it there.
async fn associate_address(
    cloud: &Cloud,
    on_wait: OnWait<'_>,
    project: &str,
    name: &str,
    instance_name: &str,
    replacing: Option<&str>,
) -> Result<(), StepFailure> {
    let resource = format!("elastic_ip.{name}");
    let address = cloud.find_address(project, name).await?.ok_or_else(|| {
        refused(
            "AssociateAddress",
            resource.clone(),
            "the address does not exist".into(),
        )
    })?;
    let instance = cloud
        .existing_instance("AssociateAddress", project, instance_name)
        .await?;
    let instance = cloud
        .wait_for_instance(
            instance_name,
            &instance.id,
            &[InstanceStatus::Running, InstanceStatus::Stopped],
            WAIT_TIMEOUT,
            on_wait,
        )
        .await?;
    match (&address.instance_id, &address.association_id) {
        (Some(current), _) if *current == instance.id => return Ok(()),
        (Some(current), Some(association)) => {
            let holder = cloud.instance_tags(current).await?;
            let seen_by_plan = replacing.is_some_and(|expected| {
                expected == current
                    || (holder.get(TAG_PROJECT).map(String::as_str) == Some(project)
                        && holder.get(TAG_NAME).map(String::as_str) == Some(expected))
            });
            if !seen_by_plan {
                return Err(refused(
                    "AssociateAddress",
                    resource,
                    format!(
                        "the address is associated with {current}, which the plan did not expect; tether never moves an address away from an instance silently"
                    ),
                ));
            }
            cloud.disassociate_address(name, association).await?;
        }
        _ => {}
    }
    cloud
        .associate_address(name, &address.allocation_id, &instance.id)
        .await?;
    Ok(())
}

async fn disassociate_address(cloud: &Cloud, project: &str, name: &str) -> Result<(), StepFailure> {
    if let Some(association) = cloud
        .find_address(project, name)
        .await?
        .and_then(|a| a.association_id)
    {
        cloud.disassociate_address(name, &association).await?;
    }
    Ok(())
}

async fn release_address(cloud: &Cloud, project: &str, name: &str) -> Result<(), StepFailure> {
    let Some(address) = cloud.find_address(project, name).await? else {
        return Ok(());
    };
    if let Some(association) = &address.association_id {
        cloud.disassociate_address(name, association).await?;
    }
    cloud.release_address(name, &address.allocation_id).await?;
    Ok(())
}

async fn set_address_tags(
    cloud: &Cloud,
    project: &str,
    name: &str,
    tags: &BTreeMap<String, String>,
    remove: &[String],
) -> Result<(), StepFailure> {
    let address = cloud.find_address(project, name).await?.ok_or_else(|| {
        refused(
            "CreateTags",
            format!("elastic_ip.{name}"),
            "the address does not exist".into(),
        )
    })?;
    cloud
        .set_address_tags(name, &address.allocation_id, tags, remove)
        .await?;
    Ok(())
}
