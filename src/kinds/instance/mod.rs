//! EC2 instances: the project's instance of a name is the one its record in Parameter Store
//! names (`model::InstanceRecord`: the random client token tether launched it with, written
//! before the launch, or the id the spec adopted), among those tagged with the project and
//! the name; tags alone prove nothing. Changed in place where EC2 allows it
//! (tags, security groups, profile, growing volumes, type while stopped, run state) and
//! replaced where it does not (image, key pair, market, user data, shrinking volumes).

mod execute;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::model::{
    attribute, ownership, Attribute, AttributeFormat, Kind, Market, Ownership, RunState,
    VolumeState, TAG_GENERATION, TAG_MAX_PRICE, TAG_USER_DATA,
};

use crate::model::{ownership_tags, Address};
use crate::spec::{AmiSpec, InstanceSpec, Spec};

use crate::diagnostic::Diagnostic;
use crate::idle::{IdleRule, TAG_IDLE_STOP, TAG_IDLE_WATCHDOG, WATCHDOG_VERSION};

use super::{
    removed_keys, Context, Deletion, DesiredResource, Intent, ResourceKind, ResourceState,
    Settling, SpecContext, Step, StepFailure,
};

/// The comparable state of an EC2 instance, plus facts a plan shows but never compares
/// (its id and public address).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InstanceState {
    /// All tags, tether's ownership tags and `Name` included; tether's bookkeeping tags
    /// (generation, max price, user data hash) are the fields below.
    pub tags: BTreeMap<String, String>,
    /// The image id.
    pub ami: String,
    pub instance_type: String,
    pub market: Market,
    /// A spot instance's maximum hourly price; `None` means the on-demand price.
    pub max_price: Option<String>,
    pub key_pair: Option<String>,
    /// Security group names.
    pub security_groups: BTreeSet<String>,
    /// The root volume's size; `None` in a desired state means the image's own size.
    pub root_volume_gb: Option<i32>,
    /// Further volumes by device name.
    pub volumes: BTreeMap<String, VolumeState>,
    /// SHA-256 of the user data, hex.
    pub user_data_sha256: Option<String>,
    /// The IAM instance profile's name.
    #[serde(default)]
    pub instance_profile: Option<String>,
    pub state: RunState,
    /// Launches so far under this name; a new launch uses the next one in its client token.
    #[serde(default)]
    pub generation: u32,
    /// The user data itself (base64), carried for the launch so that a plan is whole and
    /// the same for every operator (no path of this machine's); not compared (its hash is).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_data: Option<String>,
    /// The image lookup the AMI was chosen by, for display; not compared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_lookup: Option<String>,
    /// The instance id (live only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The instance's own public address (live only; an Elastic IP shows here once associated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_ip: Option<String>,
    /// Whether the project's record names this instance (live only): without it, an
    /// instance tagged with the project and the name is not the project's.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub recorded: bool,
    /// When it stops itself for being idle (its tag `tether:idle-stop`, which the
    /// watchdog reads); changes in place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_stop: Option<IdleRule>,
    /// The idle watchdog is installed (desired: at launch; live: it was). Not compared:
    /// an instance without it is launched again only when a rule needs it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub idle_watchdog: bool,
}

/// What a launch needs, beyond the instance's name.
#[derive(Clone, Debug, PartialEq)]
pub struct Launch {
    pub ami: String,
    pub instance_type: String,
    pub market: Market,
    pub max_price: Option<String>,
    pub key_pair: Option<String>,
    pub security_groups: BTreeSet<String>,
    pub root_volume_gb: Option<i32>,
    pub volumes: BTreeMap<String, VolumeState>,
    /// The user data, base64, as the plan carries it.
    pub user_data: Option<String>,
    /// The user data must still hash to this, or the plan is stale.
    pub user_data_sha256: Option<String>,
    pub instance_profile: Option<String>,
    /// All tags, tether's bookkeeping tags included.
    pub tags: BTreeMap<String, String>,
    /// Install the idle watchdog: its part goes beside the user data, and the instance
    /// stops (not terminates) when it shuts itself down.
    pub idle_watchdog: bool,
}

/// An instance's operations.
#[derive(Clone, Debug, PartialEq)]
pub enum InstanceOp {
    /// Find the project's instance of this name, or launch it (with a client token, so a
    /// retried call launches nothing more); then wait until it runs.
    Launch { name: String, launch: Box<Launch> },
    /// Stop the instance (if it runs) and wait until it is stopped.
    Stop { name: String },
    /// Start the instance (if stopped) and wait until it runs.
    Start { name: String },
    /// Change the type of a stopped instance.
    SetType { name: String, instance_type: String },
    SetSecurityGroups {
        name: String,
        groups: BTreeSet<String>,
    },
    /// Give the instance this instance profile, or none, in place.
    SetProfile {
        name: String,
        profile: Option<String>,
    },
    /// Grow a volume (`device: None` is the root volume), or change its type.
    ModifyVolume {
        name: String,
        device: Option<String>,
        size_gb: i32,
        volume_type: Option<String>,
    },
    SetTags {
        name: String,
        tags: BTreeMap<String, String>,
        remove: Vec<String>,
    },
    /// Cancel its spot request (if any), terminate the project's instance of the name (the
    /// one its record names), wait until it is terminated, and delete the record.
    Terminate { name: String },
    /// Record instance `id` (tagged with the project and the name, but unrecorded) as the
    /// project's: the spec adopts it.
    Adopt { name: String, id: String },
    /// Take every tether tag off the project's instance of the name (the one its record
    /// names), then delete the record; the instance, its volumes and its state stay.
    Forget { name: String },
}

/// The instance kind.
pub struct Instance;

/// A listed instance, tagged `name`, as a live resource: tether's tags about it become
/// fields, its volumes (`volumes`, by id) its root size and attached disks. `recorded`:
/// the project's launch record names it.
pub(crate) fn read(
    name: &str,
    instance: crate::aws::InstanceInfo,
    recorded: bool,
    volumes: &BTreeMap<String, crate::aws::VolumeInfo>,
) -> super::LiveResource {
    let mut tags = instance.tags;
    let generation = tags
        .remove(TAG_GENERATION)
        .and_then(|g| g.parse().ok())
        .unwrap_or(0);
    let max_price = tags.remove(TAG_MAX_PRICE);
    let user_data_sha256 = tags.remove(TAG_USER_DATA);
    let idle_stop = tags
        .remove(TAG_IDLE_STOP)
        .and_then(|value| IdleRule::parse(&value));
    let idle_watchdog = tags.remove(TAG_IDLE_WATCHDOG).is_some();
    let root_device = instance.root_device.unwrap_or_default();
    let mut root_volume_gb = None;
    let mut attached = BTreeMap::new();
    for (device, volume_id) in &instance.devices {
        let Some(volume) = volumes.get(volume_id) else {
            continue;
        };
        if *device == root_device {
            root_volume_gb = Some(volume.size_gb);
        } else {
            attached.insert(
                device.clone(),
                VolumeState {
                    size_gb: volume.size_gb,
                    volume_type: volume.volume_type.clone(),
                },
            );
        }
    }
    // An instance refers to its key pair, groups and profile: they are deleted after it.
    let depends_on = references(
        instance.key_name.as_deref(),
        &instance.security_groups,
        instance.instance_profile.as_deref(),
    );
    super::LiveResource {
        address: Address::new(Kind::Instance, name),
        depends_on,
        state: ResourceState::Instance(InstanceState {
            tags,
            ami: instance.ami,
            instance_type: instance.instance_type,
            market: if instance.spot {
                Market::Spot
            } else {
                Market::OnDemand
            },
            max_price,
            key_pair: instance.key_name,
            security_groups: instance.security_groups,
            root_volume_gb,
            volumes: attached,
            user_data_sha256,
            instance_profile: instance.instance_profile,
            state: if instance.state.is_down() {
                RunState::Stopped
            } else {
                RunState::Running
            },
            generation,
            user_data: None,
            image_lookup: None,
            id: Some(instance.id),
            public_ip: instance.public_ip,
            recorded,
            idle_stop,
            idle_watchdog,
        }),
    }
}

impl ResourceKind for Instance {
    const KIND: Kind = Kind::Instance;
    type State = InstanceState;
    type Op = InstanceOp;

    fn desired(spec: &Spec, env: &SpecContext<'_>) -> Vec<DesiredResource> {
        spec.instances
            .values()
            .map(|instance| desired_instance(env.project, instance, spec.ssh.as_ref()))
            .collect()
    }

    /// The image of an image lookup: the newest match, unless the instance already runs a
    /// matching one (so a new image release does not replace a working instance); and a
    /// root volume size left to the image, which is the one it runs with. A lookup that
    /// matches nothing is a problem.
    fn settle(
        instance: &mut InstanceState,
        declared: &DesiredResource,
        settling: &Settling<'_>,
    ) -> Vec<Diagnostic> {
        let mut problems = Vec::new();
        let current = match settling
            .live
            .resources
            .get(&declared.address)
            .map(|r| &r.state)
        {
            Some(ResourceState::Instance(current)) => Some(current),
            _ => None,
        };
        if let Some(lookup) = &instance.image_lookup {
            let candidates = settling
                .live
                .images
                .get(lookup)
                .map(Vec::as_slice)
                .unwrap_or_default();
            let kept = current
                .filter(|c| candidates.iter().any(|image| image.id == c.ami))
                .map(|c| c.ami.clone());
            let newest = candidates
                .iter()
                .max_by(|a, b| a.created.cmp(&b.created))
                .map(|image| image.id.clone());
            match kept.or(newest) {
                Some(id) => instance.ami = id,
                None => problems.push(
                    Diagnostic::new(
                        format!("{}: no image matches: {lookup}", declared.address),
                        Some(declared.location.clone()),
                    )
                    .with_hint("check the name pattern and owner (`aws ec2 describe-images --owners OWNER --filters Name=name,Values=PATTERN`)"),
                ),
            }
        }
        if instance.root_volume_gb.is_none() {
            instance.root_volume_gb = current.and_then(|c| c.root_volume_gb);
        }
        // An id to adopt that the account does not show is no reason to launch anew: the
        // answer may lag, or the instance be gone; either way the user decides.
        if let (true, Some(id), None) = (declared.adopt, &instance.id, current) {
            problems.push(
                Diagnostic::new(
                    format!("{} adopts {id}, which the account does not show", declared.address),
                    Some(declared.location.clone()),
                )
                .with_hint("plan again in a moment if it was just launched; if it is gone, remove `id:` and `adopt:` to launch a new one"),
            );
        }
        problems
    }

    fn attributes(instance: &InstanceState) -> Vec<Attribute> {
        use AttributeFormat::{Map, Value as Scalar};
        vec![
            attribute("ami", &instance.ami, Scalar).forcing(),
            attribute("instance_type", &instance.instance_type, Scalar),
            attribute("market", instance.market, Scalar).forcing(),
            attribute("max_price", &instance.max_price, Scalar).forcing(),
            attribute("key_pair", &instance.key_pair, Scalar).forcing(),
            attribute("security_groups", &instance.security_groups, Scalar),
            attribute("root_volume_gb", instance.root_volume_gb, Scalar),
            attribute("volumes", &instance.volumes, Map),
            attribute("user_data_sha256", &instance.user_data_sha256, Scalar).forcing(),
            attribute("instance_profile", &instance.instance_profile, Scalar),
            attribute("state", instance.state, Scalar),
            attribute(
                "idle_stop",
                instance.idle_stop.as_ref().map(IdleRule::tag_value),
                Scalar,
            ),
            attribute("tags", &instance.tags, Map),
        ]
    }

    /// Tags name the project, but only the project's record makes the instance its own.
    fn ownership(instance: &InstanceState, project: &str) -> Ownership {
        match ownership(&instance.tags, project) {
            Ownership::Owned if !instance.recorded => Ownership::Unowned,
            other => other,
        }
    }

    /// The instance keeps running (or stopped) as it is, with its volumes and its user's
    /// tags; tether's tags and launch record go, the bookkeeping ones (generation, price,
    /// user data, idle rule) with them.
    fn disowned(instance: &InstanceState) -> Result<InstanceState, &'static str> {
        Ok(InstanceState {
            tags: crate::model::without_tether_tags(&instance.tags),
            recorded: false,
            ..instance.clone()
        })
    }

    fn forget(
        name: &str,
        _before: &InstanceState,
        _after: &InstanceState,
        _context: &Context,
    ) -> Vec<InstanceOp> {
        vec![InstanceOp::Forget {
            name: name.to_string(),
        }]
    }

    /// A replacement launches the next generation, so its client token is new.
    fn create(
        name: &str,
        instance: &InstanceState,
        replacing: Option<&InstanceState>,
        _context: &Context,
    ) -> Vec<InstanceOp> {
        let generation = replacing.map_or(1, |old| old.generation + 1);
        create_instance(name, instance, generation)
    }

    /// An adoption records the instance first, so that every later step finds it.
    fn update(
        name: &str,
        before: &InstanceState,
        after: &InstanceState,
        intent: &Intent,
        _context: &Context,
    ) -> Vec<InstanceOp> {
        let mut ops = Vec::new();
        if let (true, Some(id)) = (intent.adopt, &before.id) {
            ops.push(InstanceOp::Adopt {
                name: name.to_string(),
                id: id.clone(),
            });
        }
        ops.extend(update_instance(name, before, after));
        ops
    }

    fn delete(
        name: &str,
        _before: &InstanceState,
        _intent: &Intent,
        _context: &Context,
    ) -> Vec<InstanceOp> {
        vec![InstanceOp::Terminate {
            name: name.to_string(),
        }]
    }

    fn describe(op: &InstanceOp) -> &'static str {
        match op {
            InstanceOp::Launch { .. } => "launching instance, then waiting until it runs",
            InstanceOp::Stop { .. } => "stopping instance, then waiting until it stops",
            InstanceOp::Start { .. } => "starting instance, then waiting until it runs",
            InstanceOp::SetType { .. } => "changing instance type",
            InstanceOp::SetSecurityGroups { .. } => "setting security groups",
            InstanceOp::SetProfile { .. } => "setting instance profile",
            InstanceOp::ModifyVolume { .. } => "modifying volume",
            InstanceOp::SetTags { .. } => "tagging",
            InstanceOp::Terminate { .. } => "terminating instance, then waiting until it is gone",
            InstanceOp::Adopt { .. } => "recording the adopted instance",
            InstanceOp::Forget { .. } => "taking tether's tags and record off the instance",
        }
    }

    async fn run(op: &InstanceOp, step: &Step<'_>) -> Result<(), StepFailure> {
        let (cloud, on_wait, project) = (step.cloud, step.on_wait, step.project);
        match op {
            InstanceOp::Launch { name, launch } => {
                execute::launch(cloud, on_wait, project, name, launch).await
            }
            InstanceOp::Stop { name } => {
                execute::reach(cloud, on_wait, project, name, RunState::Stopped).await
            }
            InstanceOp::Start { name } => {
                execute::reach(cloud, on_wait, project, name, RunState::Running).await
            }
            InstanceOp::SetType {
                name,
                instance_type,
            } => execute::set_type(cloud, project, name, instance_type).await,
            InstanceOp::SetProfile { name, profile } => {
                execute::set_instance_profile(cloud, project, name, profile.as_deref()).await
            }
            InstanceOp::SetSecurityGroups { name, groups } => {
                execute::set_security_groups(cloud, project, name, groups).await
            }
            InstanceOp::ModifyVolume {
                name,
                device,
                size_gb,
                volume_type,
            } => {
                execute::modify_volume(
                    cloud,
                    project,
                    name,
                    device.as_deref(),
                    *size_gb,
                    volume_type.as_deref(),
                )
                .await
            }
            InstanceOp::SetTags { name, tags, remove } => {
                execute::set_tags(cloud, project, name, tags, remove).await
            }
            InstanceOp::Terminate { name } => {
                execute::terminate(cloud, on_wait, project, name).await
            }
            InstanceOp::Adopt { name, id } => execute::adopt(cloud, project, name, id).await,
            InstanceOp::Forget { name } => execute::forget(cloud, project, name).await,
        }
    }

    /// A volume that shrinks, or one added or removed (volumes are attached at launch only);
    /// an idle rule on an instance launched without the watchdog.
    fn forced_by_change(before: &InstanceState, after: &InstanceState) -> Vec<&'static str> {
        let mut forcing = Vec::new();
        if after.idle_stop.is_some() && !before.idle_watchdog {
            forcing.push("idle_stop");
        }
        if let (Some(old), Some(new)) = (before.root_volume_gb, after.root_volume_gb) {
            if new < old {
                forcing.push("root_volume_gb");
            }
        }
        let same_devices = before.volumes.keys().eq(after.volumes.keys());
        let shrinks = after.volumes.iter().any(|(device, new)| {
            before
                .volumes
                .get(device)
                .is_some_and(|old| new.size_gb < old.size_gb)
        });
        if !same_devices || shrinks {
            forcing.push("volumes");
        }
        forcing
    }

    fn forcing_reason(attribute: &str) -> Option<&'static str> {
        match attribute {
            "root_volume_gb" | "volumes" => {
                Some("EBS volumes cannot shrink, and tether attaches volumes only at launch")
            }
            "user_data_sha256" => Some("user data runs only at an instance's first boot"),
            "idle_stop" => Some(
                "the idle watchdog is installed at launch, and this instance was launched without it",
            ),
            "ami" | "key_pair" | "market" | "max_price" => {
                Some("an instance's image, key pair and market are fixed at launch")
            }
            _ => None,
        }
    }

    fn update_note(before: &InstanceState, after: &InstanceState) -> Option<String> {
        if before.instance_type != after.instance_type {
            return Some(
                if before.state == RunState::Running {
                    if after.state == RunState::Running {
                        "changing instance_type stops the instance, changes it, and starts it again"
                    } else {
                        "changing instance_type stops the instance first"
                    }
                } else {
                    "instance_type is changed while the instance is stopped"
                }
                .to_string(),
            );
        }
        (before.state != after.state).then(|| {
            match after.state {
                RunState::Stopped => {
                    "stops the instance: compute billing ends, its volumes are still billed"
                }
                RunState::Running => "starts the instance",
            }
            .to_string()
        })
    }

    fn deletion(instance: &InstanceState, _empty_tagged_buckets: bool) -> Deletion {
        Deletion {
            empties: false,
            note: Some(format!(
                "terminated{}; its volumes are deleted with it",
                instance
                    .id
                    .as_ref()
                    .map(|id| format!(" ({id})"))
                    .unwrap_or_default()
            )),
        }
    }
}

/// What an instance refers to (its key pair, security groups and instance profile), which
/// must exist before it and may be deleted only after it.
pub fn references(
    key_pair: Option<&str>,
    security_groups: &BTreeSet<String>,
    instance_profile: Option<&str>,
) -> Vec<crate::model::Address> {
    use crate::model::Address;
    key_pair
        .map(|key| Address::new(Kind::KeyPair, key))
        .into_iter()
        .chain(
            security_groups
                .iter()
                .map(|group| Address::new(Kind::SecurityGroup, group)),
        )
        .chain(instance_profile.map(|profile| Address::new(Kind::InstanceProfile, profile)))
        .collect()
}

/// Launch (then stop, for `state: stopped`). `generation` counts launches under the name.
fn create_instance(name: &str, instance: &InstanceState, generation: u32) -> Vec<InstanceOp> {
    let mut tags = instance.tags.clone();
    tags.insert(TAG_GENERATION.to_string(), generation.to_string());
    if let Some(price) = &instance.max_price {
        tags.insert(TAG_MAX_PRICE.to_string(), price.clone());
    }
    if let Some(hash) = &instance.user_data_sha256 {
        tags.insert(TAG_USER_DATA.to_string(), hash.clone());
    }
    if let Some(rule) = &instance.idle_stop {
        tags.insert(TAG_IDLE_STOP.to_string(), rule.tag_value());
    }
    if instance.idle_watchdog {
        tags.insert(TAG_IDLE_WATCHDOG.to_string(), WATCHDOG_VERSION.to_string());
    }
    let mut ops = vec![InstanceOp::Launch {
        name: name.to_string(),
        launch: Box::new(Launch {
            ami: instance.ami.clone(),
            instance_type: instance.instance_type.clone(),
            market: instance.market,
            max_price: instance.max_price.clone(),
            key_pair: instance.key_pair.clone(),
            security_groups: instance.security_groups.clone(),
            root_volume_gb: instance.root_volume_gb,
            volumes: instance.volumes.clone(),
            user_data: instance.user_data.clone(),
            user_data_sha256: instance.user_data_sha256.clone(),
            instance_profile: instance.instance_profile.clone(),
            tags,
            idle_watchdog: instance.idle_watchdog,
        }),
    }];
    if instance.state == RunState::Stopped {
        ops.push(InstanceOp::Stop {
            name: name.to_string(),
        });
    }
    ops
}

/// Tags and security groups first (they change on a running instance), then volumes (EBS
/// grows them online), then the type (which needs the instance stopped), then the state.
fn update_instance(name: &str, before: &InstanceState, after: &InstanceState) -> Vec<InstanceOp> {
    let name_ = || name.to_string();
    let mut ops = Vec::new();
    if before.tags != after.tags {
        ops.push(InstanceOp::SetTags {
            name: name_(),
            tags: after.tags.clone(),
            remove: removed_keys(&before.tags, &after.tags),
        });
    }
    // The watchdog reads its rule from this tag each minute.
    if before.idle_stop != after.idle_stop {
        let (tags, remove) = match &after.idle_stop {
            Some(rule) => (
                BTreeMap::from([(TAG_IDLE_STOP.to_string(), rule.tag_value())]),
                Vec::new(),
            ),
            None => (BTreeMap::new(), vec![TAG_IDLE_STOP.to_string()]),
        };
        ops.push(InstanceOp::SetTags {
            name: name_(),
            tags,
            remove,
        });
    }
    if before.security_groups != after.security_groups {
        ops.push(InstanceOp::SetSecurityGroups {
            name: name_(),
            groups: after.security_groups.clone(),
        });
    }
    if before.instance_profile != after.instance_profile {
        ops.push(InstanceOp::SetProfile {
            name: name_(),
            profile: after.instance_profile.clone(),
        });
    }
    if let (Some(old), Some(new)) = (before.root_volume_gb, after.root_volume_gb) {
        if new > old {
            ops.push(InstanceOp::ModifyVolume {
                name: name_(),
                device: None,
                size_gb: new,
                volume_type: None,
            });
        }
    }
    for (device, new) in &after.volumes {
        if let Some(old) = before.volumes.get(device) {
            if old != new {
                ops.push(InstanceOp::ModifyVolume {
                    name: name_(),
                    device: Some(device.clone()),
                    size_gb: new.size_gb,
                    volume_type: (old.volume_type != new.volume_type)
                        .then(|| new.volume_type.clone()),
                });
            }
        }
    }
    let mut running = before.state == RunState::Running;
    if before.instance_type != after.instance_type {
        if running {
            ops.push(InstanceOp::Stop { name: name_() });
            running = false;
        }
        ops.push(InstanceOp::SetType {
            name: name_(),
            instance_type: after.instance_type.clone(),
        });
    }
    match (running, after.state) {
        (true, RunState::Stopped) => ops.push(InstanceOp::Stop { name: name_() }),
        (false, RunState::Running) => ops.push(InstanceOp::Start { name: name_() }),
        _ => {}
    }
    ops
}

/// An image lookup leaves `ami` empty for the planner to fill from what the account has.
fn desired_instance(
    project: &str,
    instance: &InstanceSpec,
    ssh: Option<&crate::spec::SshSpec>,
) -> DesiredResource {
    use base64::Engine;
    let mut tags = instance.tags.clone();
    tags.extend(ownership_tags(project, &instance.name));
    let (ami, image_lookup) = match &instance.ami {
        AmiSpec::Id(id) => (id.clone(), None),
        AmiSpec::Newest(lookup) => (String::new(), Some(lookup.key())),
    };
    let user_data = instance.user_data.as_ref();
    // A declared role reaches the instance through its profile, of the role's name.
    let instance_profile = instance
        .role
        .clone()
        .or_else(|| instance.instance_profile.clone());
    let depends_on = references(
        instance.key_pair.as_deref(),
        &instance.security_groups,
        instance.role.as_deref(),
    );
    DesiredResource {
        address: Address::new(Kind::Instance, &instance.name),
        state: ResourceState::Instance(InstanceState {
            tags,
            ami,
            instance_type: instance.instance_type.clone(),
            market: instance.market,
            max_price: instance.max_price.clone(),
            key_pair: instance.key_pair.clone(),
            security_groups: instance.security_groups.clone(),
            root_volume_gb: instance.root_volume_gb,
            volumes: instance.volumes.clone(),
            user_data_sha256: user_data
                .and_then(|u| u.content.as_deref())
                .map(crate::hash::sha256_hex),
            instance_profile,
            state: instance.state,
            generation: 0,
            user_data: user_data
                .and_then(|u| u.content.as_deref())
                .map(|content| base64::engine::general_purpose::STANDARD.encode(content)),
            image_lookup,
            // The instance the spec adopts by id; a launch gets its own.
            id: instance.adopt_id.clone(),
            public_ip: None,
            recorded: false,
            idle_stop: instance.idle_stop.map(|rule| IdleRule {
                after_minutes: rule.after_minutes,
                cpu_below: rule.cpu_below,
                ports: use_ports(&instance.name, ssh),
            }),
            idle_watchdog: instance.idle_stop.is_some(),
        }),
        adopt: instance.adopt,
        depends_on,
        location: instance.location.clone(),
    }
}

/// The ports whose connections are use of instance `name`: the sshd port of each alias
/// that reaches it (22 without one), the ports they forward, and Jupyter's.
fn use_ports(name: &str, ssh: Option<&crate::spec::SshSpec>) -> BTreeSet<u16> {
    let hosts: Vec<_> = ssh
        .map(|ssh| ssh.hosts.values().filter(|h| h.instance == name).collect())
        .unwrap_or_default();
    let mut ports: BTreeSet<u16> = hosts
        .iter()
        .flat_map(|h| std::iter::once(h.port).chain(h.forwards.iter().map(|f| f.remote)))
        .collect();
    if hosts.is_empty() {
        ports.insert(22);
    }
    ports.insert(crate::idle::JUPYTER_PORT);
    ports
}
