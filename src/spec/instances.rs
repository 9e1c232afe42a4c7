//! The `instances:` and `elastic_ips:` sections of the spec, and what EC2 would reject in
//! them, checked before any call: image ids, instance type names, spot prices, volumes,
//! references between the sections.
//!
//! Whether a key pair or security group that the spec does not declare exists in the
//! account is for the planner to say; whether a named image exists too.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Deserialize;

use super::{Checker, Spec, SpecError};
use crate::diagnostic::{Diagnostic, Location};
use crate::model::{ImageLookup, Market, RunState, VolumeState};

/// EBS volume sizes AWS accepts, in GiB.
const VOLUME_SIZES: std::ops::RangeInclusive<i64> = 1..=16_384;
/// EBS volume types.
const VOLUME_TYPES: [&str; 7] = ["gp3", "gp2", "io1", "io2", "st1", "sc1", "standard"];
/// EC2 refuses user data larger than this (before base64).
const MAX_USER_DATA: usize = 16 * 1024;

/// One entry of `instances`.
#[derive(Clone, Debug, PartialEq)]
pub struct InstanceSpec {
    pub name: String,
    pub ami: AmiSpec,
    pub instance_type: String,
    pub market: Market,
    pub max_price: Option<String>,
    pub key_pair: Option<String>,
    pub security_groups: BTreeSet<String>,
    pub root_volume_gb: Option<i32>,
    /// By device name.
    pub volumes: BTreeMap<String, VolumeState>,
    pub user_data: Option<UserData>,
    /// An existing IAM instance profile, by name: the role the instance's programs (and
    /// jobs) use, e.g. to read and write S3.
    pub instance_profile: Option<String>,
    /// A role of `iam.roles`, given to the instance through its instance profile (of the
    /// same name, which tether makes with the role).
    pub role: Option<String>,
    pub state: RunState,
    /// What may vouch for its ssh host key.
    pub host_key: HostKeyTrust,
    /// When it stops itself for being idle.
    pub idle_stop: Option<IdleStopSpec>,
    /// Take over an instance tagged with the project and this name that the project has
    /// no record of launching (launched by a tether before launch records, say), or, with
    /// `adopt_id`, that instance, which no tether project owns.
    pub adopt: bool,
    /// The id of the instance to adopt (`id:`).
    pub adopt_id: Option<String>,
    /// The user's tags; `Name` defaults to the instance's key in the spec.
    pub tags: BTreeMap<String, String>,
    pub location: Location,
}

/// `idle_stop:` as checked: stop after this many minutes idle (5 to 1440), with the CPU
/// below this percent when given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdleStopSpec {
    pub after_minutes: u32,
    pub cpu_below: Option<u8>,
}

/// The shortest idle rule: a shorter one stops an instance while its user is still
/// connecting, and CloudWatch's basic monitoring sees the CPU in 5-minute periods.
pub const IDLE_MINUTES_MIN: u32 = 5;
/// The longest: a CloudWatch alarm looks back one day at most.
pub const IDLE_MINUTES_MAX: u32 = 24 * 60;

/// What may vouch for an instance's ssh host key before tether connects to it. Not part of
/// the instance's state in the account: it decides only what this machine trusts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum HostKeyTrust {
    /// Only the fingerprints cloud-init printed to its console output; tether waits for
    /// them (they appear minutes after boot) and refuses any other key.
    #[default]
    Console,
    /// Those, or, for an image whose console shows none (no cloud-init), the key it
    /// offers the first time, recorded then and held to after.
    TrustOnFirstUse,
}

/// Which image an instance runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AmiSpec {
    Id(String),
    /// The newest image matching a name pattern among one owner's.
    Newest(ImageLookup),
}

/// An instance's user data: a file, relative to the spec's directory.
#[derive(Clone, Debug, PartialEq)]
pub struct UserData {
    /// As written in the spec.
    pub file: String,
    /// The file's path, resolved against the spec's directory by [`Spec::read_files`].
    pub path: Option<String>,
    /// The file's bytes, once [`Spec::read_files`] has read them.
    pub content: Option<Vec<u8>>,
    pub location: Location,
}

/// One entry of `elastic_ips`.
#[derive(Clone, Debug, PartialEq)]
pub struct ElasticIpSpec {
    pub name: String,
    /// The declared instance it is associated with.
    pub instance: Option<String>,
    pub tags: BTreeMap<String, String>,
    /// The allocation id of an address no tether project owns, to take over.
    pub adopt_id: Option<String>,
    pub location: Location,
}

/// An EC2 instance in the default VPC, known by its `Name` tag.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Instance")]
pub(super) struct RawInstance {
    /// The image: an AMI id, or a lookup of the newest image by name pattern and owner.
    ami: RawAmi,
    /// The instance type, `family.size`.
    #[serde(rename = "type")]
    #[schemars(pattern(super::schema::INSTANCE_TYPE), example = &"t3.micro")]
    instance_type: String,
    /// `on-demand` (the default) or `spot`.
    #[serde(default = "on_demand")]
    market: Market,
    /// With `market: spot`: the highest price per hour, in dollars; unset: the on-demand
    /// price.
    #[serde(default)]
    #[schemars(pattern(super::schema::PRICE), example = &"0.05")]
    max_price: Option<String>,
    /// A declared key pair for SSH.
    #[serde(default)]
    key_pair: Option<String>,
    /// Declared security groups.
    #[serde(default)]
    security_groups: Vec<String>,
    /// The root volume's size in GiB; unset: the image's.
    #[serde(default)]
    #[schemars(range(min = 1, max = 16384))]
    root_volume_gb: Option<i64>,
    /// Extra EBS volumes, deleted with the instance.
    #[serde(default)]
    volumes: Vec<RawVolume>,
    /// A file (relative to the spec) given to the instance as user data at launch.
    #[serde(default)]
    user_data: Option<String>,
    /// An existing instance profile, by name (or use `role`).
    #[serde(default)]
    instance_profile: Option<String>,
    /// A role of `iam.roles` that EC2 may assume, given through its instance profile.
    #[serde(default)]
    role: Option<String>,
    /// `running` (the default) or `stopped`: stop it when idle, and pay for its disks
    /// only.
    #[serde(default = "running")]
    state: RunState,
    /// What may vouch for its ssh host key: `console` (the default: the fingerprints
    /// cloud-init prints, waited for) or `trust_on_first_use` (for an image that prints
    /// none: the first key it offers).
    #[serde(default)]
    host_key: HostKeyTrust,
    /// Stop the instance once nobody has used it this long: `30m`, `2h` (5 minutes to 24
    /// hours), or `{after: 30m, cpu_below: 5}` to also need the average CPU below that
    /// percent. Nobody uses it when no tether job runs there, no ssh session (a forward
    /// included) is open, and no Jupyter kernel is busy or connected. A watchdog installed
    /// at launch stops it from inside (no credentials needed); a CloudWatch alarm on its
    /// CPU stops it from outside if the instance is wedged.
    #[serde(default)]
    idle_stop: Option<RawIdleStop>,
    /// Take over the instance tagged with the project and this name that the project has
    /// no record of launching (one a tether before launch records made, or one you vouch
    /// for): its id is recorded as the project's. Without it such an instance is refused.
    #[serde(default)]
    adopt: bool,
    /// With `adopt: true`: the id of an instance no tether project owns (one made in the
    /// console, say) to take over as this one; its id is recorded, then it is tagged.
    #[serde(default)]
    #[schemars(pattern(super::schema::INSTANCE_ID), example = &"i-0123456789abcdef0")]
    id: Option<String>,
    /// Tags; `Name` is the instance's key in the spec.
    #[serde(default)]
    #[schemars(schema_with = "super::schema::tags")]
    tags: BTreeMap<String, String>,
}

/// An idle rule: a duration, or a duration and a CPU floor.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
#[schemars(rename = "IdleStop")]
enum RawIdleStop {
    /// How long idle before it stops: minutes (`30m`) or hours (`2h`).
    After(#[schemars(pattern(super::schema::IDLE_DURATION))] String),
    Rule(RawIdleRule),
}

/// An idle rule with a CPU floor.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "IdleRule")]
struct RawIdleRule {
    /// How long idle before it stops: minutes (`30m`) or hours (`2h`).
    #[schemars(pattern(super::schema::IDLE_DURATION))]
    after: String,
    /// Idle also needs the average CPU over that time below this percent (1 to 99).
    #[serde(default)]
    #[schemars(range(min = 1, max = 99))]
    cpu_below: Option<i64>,
}

/// An AMI id, or a lookup of the newest image matching a name pattern.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
#[schemars(rename = "Ami")]
enum RawAmi {
    /// An AMI id: `ami-` and 8 or 17 hex digits.
    Id(#[schemars(pattern(super::schema::AMI_ID))] String),
    Lookup(RawImageLookup),
}

/// The newest image whose name matches `name` among `owner`'s.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "ImageLookup")]
struct RawImageLookup {
    /// A name pattern (`*` and `?` as wildcards).
    #[schemars(example = &"al2023-ami-2023.*-x86_64")]
    name: String,
    /// `amazon`, `self`, `aws-marketplace` or a 12-digit account id.
    #[schemars(pattern(super::schema::IMAGE_OWNER))]
    owner: String,
}

/// An extra EBS volume.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Volume")]
struct RawVolume {
    /// The device name: `/dev/sdf`, `/dev/xvdb`, ...
    #[schemars(pattern(super::schema::DEVICE), example = &"/dev/sdf")]
    device: String,
    /// Its size in GiB.
    #[schemars(range(min = 1, max = 16384))]
    size_gb: i64,
    /// The EBS volume type.
    #[serde(default = "gp3", rename = "type")]
    #[schemars(extend("enum" = VOLUME_TYPES))]
    volume_type: String,
}

/// An Elastic IP: an address that survives the instance's stops.
#[derive(Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "ElasticIp")]
pub(super) struct RawElasticIp {
    /// A declared instance to associate it with.
    #[serde(default)]
    instance: Option<String>,
    /// Tags.
    #[serde(default)]
    #[schemars(schema_with = "super::schema::tags")]
    tags: BTreeMap<String, String>,
    /// Take over the address with `allocation_id`, which no tether project owns (one
    /// allocated in the console, say).
    #[serde(default)]
    adopt: bool,
    /// With `adopt: true`: the allocation id of the address to take over.
    #[serde(default)]
    #[schemars(pattern(super::schema::ALLOCATION_ID), example = &"eipalloc-0123456789abcdef0")]
    allocation_id: Option<String>,
}

fn on_demand() -> Market {
    Market::OnDemand
}

fn running() -> RunState {
    RunState::Running
}

fn gp3() -> String {
    "gp3".to_string()
}

/// `ami-` and 8 or 17 lower-case hex digits.
pub fn is_ami_id(id: &str) -> bool {
    id.strip_prefix("ami-").is_some_and(|hex| {
        (hex.len() == 8 || hex.len() == 17)
            && hex
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    })
}

/// `family.size`: `m5.xlarge`, `t3a.micro`, `u-6tb1.metal`, `c7gn.16xlarge`.
pub fn is_instance_type(name: &str) -> bool {
    let Some((family, size)) = name.split_once('.') else {
        return false;
    };
    let lower_alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    family.starts_with(|c: char| c.is_ascii_lowercase())
        && family.chars().all(|c| lower_alnum(c) || c == '-')
        && !family.ends_with('-')
        && !size.is_empty()
        && size.chars().all(lower_alnum)
}

/// `/dev/sdf`, `/dev/xvdb`, `/dev/nvme1n1` is not accepted: EC2 names devices `sd*`/`xvd*`.
fn is_device_name(device: &str) -> bool {
    let letters = device
        .strip_prefix("/dev/sd")
        .or_else(|| device.strip_prefix("/dev/xvd"));
    letters.is_some_and(|rest| {
        let mut chars = rest.chars();
        chars.next().is_some_and(|c| c.is_ascii_lowercase())
            && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    })
}

/// A spot price: a positive decimal number of dollars.
fn is_price(price: &str) -> bool {
    let mut parts = price.splitn(2, '.');
    let whole = parts.next().unwrap_or_default();
    let fraction = parts.next().unwrap_or("0");
    !whole.is_empty()
        && whole.chars().all(|c| c.is_ascii_digit())
        && !fraction.is_empty()
        && fraction.chars().all(|c| c.is_ascii_digit())
        && price.chars().any(|c| ('1'..='9').contains(&c))
}

fn is_image_owner(owner: &str) -> bool {
    matches!(owner, "self" | "amazon" | "aws-marketplace")
        || (owner.len() == 12 && owner.chars().all(|c| c.is_ascii_digit()))
}

impl Checker<'_> {
    pub(super) fn check_instances(
        &mut self,
        raw: BTreeMap<String, RawInstance>,
    ) -> BTreeMap<String, InstanceSpec> {
        let mut instances = BTreeMap::new();
        for (name, instance) in raw {
            let location = self.key_location(&["instances", name.as_str()]);
            self.check_instance_name(&name, &location);
            let ami = self.check_ami(&name, instance.ami);
            self.check_instance_type(
                &name,
                &instance.instance_type,
                instance.market,
                instance.max_price.as_deref(),
            );
            // An undeclared key pair or security group may exist in the account: the planner
            // checks that.
            if let Some(key) = &instance.key_pair {
                if key.is_empty() {
                    let location = self.value_location(&["instances", &name, "key_pair"]);
                    self.error(location, "the key pair name is empty".into(), None);
                }
            }
            let idle_stop = instance
                .idle_stop
                .and_then(|rule| self.check_idle_stop(&name, rule));
            let adopt_id = self.check_adopt_id(
                ["instances", name.as_str(), "id"],
                (instance.adopt, instance.id),
                ("i-", "an instance id such as `i-0123456789abcdef0`"),
            );
            let (root_volume_gb, volumes) =
                self.check_volumes(&name, instance.root_volume_gb, instance.volumes);
            let user_data = instance.user_data.map(|file| UserData {
                file,
                path: None,
                content: None,
                location: self.value_location(&["instances", &name, "user_data"]),
            });
            self.check_instance_role(
                &name,
                instance.role.as_deref(),
                instance.instance_profile.as_deref(),
            );
            self.check_tags(&["instances", name.as_str()], &instance.tags);
            if idle_stop.is_some() {
                self.check_metadata_tag_keys(&name, &instance.tags);
            }
            let mut tags = instance.tags;
            tags.entry("Name".to_string())
                .or_insert_with(|| name.clone());
            instances.insert(
                name.clone(),
                InstanceSpec {
                    name,
                    ami,
                    instance_type: instance.instance_type,
                    market: instance.market,
                    max_price: instance.max_price,
                    key_pair: instance.key_pair,
                    security_groups: instance.security_groups.into_iter().collect(),
                    root_volume_gb,
                    volumes,
                    user_data,
                    instance_profile: instance.instance_profile,
                    role: instance.role,
                    host_key: instance.host_key,
                    idle_stop,
                    adopt: instance.adopt,
                    adopt_id,
                    state: instance.state,
                    tags,
                    location,
                },
            );
        }
        instances
    }

    /// The instance's name: what EC2's Name tag and an alias may carry.
    fn check_instance_name(&mut self, name: &str, location: &Location) {
        if name.is_empty()
            || name.len() > 128
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            self.error(
                location.clone(),
                format!("invalid instance name `{name}`"),
                Some("instance names are 1-128 letters, digits, `-` and `_`".into()),
            );
        }
    }

    /// `ami:`, an id or a lookup of the newest image by name.
    fn check_ami(&mut self, name: &str, ami: RawAmi) -> AmiSpec {
        match ami {
            RawAmi::Id(id) => {
                if !is_ami_id(&id) {
                    let location = self.value_location(&["instances", name, "ami"]);
                    self.error(
                        location,
                        format!("`{id}` is not an AMI id"),
                        Some("AMI ids are `ami-` and 8 or 17 hex digits; or look one up by name: `ami: {name: \"my-image-*\", owner: self}`".into()),
                    );
                }
                AmiSpec::Id(id)
            }
            RawAmi::Lookup(lookup) => {
                if !is_image_owner(&lookup.owner) {
                    let location = self.value_location(&["instances", name, "ami", "owner"]);
                    self.error(
                        location,
                        format!("`{}` is not an image owner", lookup.owner),
                        Some(
                            "use `self`, `amazon`, `aws-marketplace` or a 12-digit account id"
                                .into(),
                        ),
                    );
                }
                if lookup.name.is_empty() {
                    let location = self.value_location(&["instances", name, "ami", "name"]);
                    self.error(location, "the image name pattern is empty".into(), None);
                }
                AmiSpec::Newest(ImageLookup {
                    name: lookup.name,
                    owner: lookup.owner,
                })
            }
        }
    }

    /// `type:`, and `max_price:` (spot only).
    fn check_instance_type(
        &mut self,
        name: &str,
        instance_type: &str,
        market: Market,
        max_price: Option<&str>,
    ) {
        if !is_instance_type(instance_type) {
            let location = self.value_location(&["instances", name, "type"]);
            self.error(
                location,
                format!("`{}` is not an instance type", instance_type),
                Some(
                    "instance types are a family and a size, like `t3.micro` or `m5.xlarge`".into(),
                ),
            );
        }
        if let Some(price) = max_price {
            if market != Market::Spot {
                let location = self.key_location(&["instances", name, "max_price"]);
                self.error(
                    location,
                    "`max_price` applies only to spot instances".into(),
                    Some("add `market: spot`, or remove `max_price`".into()),
                );
            } else if !is_price(price) {
                let location = self.value_location(&["instances", name, "max_price"]);
                self.error(
                    location,
                    format!("`{price}` is not a price"),
                    Some("write dollars per hour as a quoted decimal, like \"0.10\"".into()),
                );
            }
        }
    }

    /// `root_volume_gb:` and `volumes:`, as sizes and volumes by device.
    fn check_volumes(
        &mut self,
        name: &str,
        root_volume_gb: Option<i64>,
        raw: Vec<RawVolume>,
    ) -> (Option<i32>, BTreeMap<String, VolumeState>) {
        let root_volume_gb = root_volume_gb.and_then(|size| {
            if VOLUME_SIZES.contains(&size) {
                i32::try_from(size).ok()
            } else {
                let location = self.value_location(&["instances", name, "root_volume_gb"]);
                self.error(
                    location,
                    format!("{size} GiB is not a volume size"),
                    Some("EBS volumes are 1 to 16384 GiB".into()),
                );
                None
            }
        });
        let mut volumes = BTreeMap::new();
        for (index, volume) in raw.into_iter().enumerate() {
            let index = index.to_string();
            let path = |field: &'static str| ["instances", name, "volumes", index.as_str(), field];
            if !is_device_name(&volume.device) {
                let location = self.value_location(&path("device"));
                self.error(
                    location,
                    format!("`{}` is not a device name", volume.device),
                    Some("name extra volumes `/dev/sdf` to `/dev/sdp`".into()),
                );
            }
            let size_gb = match i32::try_from(volume.size_gb) {
                Ok(size) if VOLUME_SIZES.contains(&volume.size_gb) => size,
                _ => {
                    let location = self.value_location(&path("size_gb"));
                    self.error(
                        location,
                        format!("{} GiB is not a volume size", volume.size_gb),
                        Some("EBS volumes are 1 to 16384 GiB".into()),
                    );
                    0
                }
            };
            if !VOLUME_TYPES.contains(&volume.volume_type.as_str()) {
                let location = self.value_location(&path("type"));
                self.error(
                    location,
                    format!("`{}` is not an EBS volume type", volume.volume_type),
                    Some(format!("use one of {}", VOLUME_TYPES.join(", "))),
                );
            }
            let state = VolumeState {
                size_gb,
                volume_type: volume.volume_type,
            };
            if volumes.insert(volume.device.clone(), state).is_some() {
                let location = self.value_location(&path("device"));
                self.error(
                    location,
                    format!("device `{}` is given twice", volume.device),
                    None,
                );
            }
        }
        (root_volume_gb, volumes)
    }

    /// `idle_stop:`, a duration in range and a CPU floor in percent.
    fn check_idle_stop(&mut self, name: &str, rule: RawIdleStop) -> Option<IdleStopSpec> {
        let (after, cpu_below, path): (String, Option<i64>, &[&str]) = match rule {
            RawIdleStop::After(after) => (after, None, &["idle_stop"]),
            RawIdleStop::Rule(rule) => (rule.after, rule.cpu_below, &["idle_stop", "after"]),
        };
        let at = |checker: &Self, path: &[&str]| {
            let mut full = vec!["instances", name];
            full.extend_from_slice(path);
            checker.value_location(&full)
        };
        let minutes = idle_minutes(&after);
        let after_minutes = match minutes {
            Some(minutes) if (IDLE_MINUTES_MIN..=IDLE_MINUTES_MAX).contains(&minutes) => minutes,
            _ => {
                let location = at(self, path);
                let problem = match minutes {
                    Some(_) => format!("`{after}` is outside the idle rule's range"),
                    None => format!("`{after}` is not a duration"),
                };
                self.error(
                    location,
                    problem,
                    Some("give minutes or hours from 5m to 24h, like `30m` or `2h`".into()),
                );
                return None;
            }
        };
        let cpu_below = match cpu_below {
            None => None,
            Some(cpu) => match u8::try_from(cpu) {
                Ok(cpu) if (1..=99).contains(&cpu) => Some(cpu),
                _ => {
                    let location = at(self, &["idle_stop", "cpu_below"]);
                    self.error(
                        location,
                        format!("CPU floor {cpu} is not a percent from 1 to 99"),
                        Some("an idle instance's CPU stays near 0; `5` is a common floor".into()),
                    );
                    return None;
                }
            },
        };
        Some(IdleStopSpec {
            after_minutes,
            cpu_below,
        })
    }

    /// An instance with an idle rule shows its tags in its metadata (where the watchdog
    /// reads the rule), and EC2 then refuses tag keys that metadata paths cannot hold.
    fn check_metadata_tag_keys(&mut self, name: &str, tags: &BTreeMap<String, String>) {
        for key in tags.keys() {
            let fits = !key.is_empty()
                && key != "."
                && key != ".."
                && key != "_index"
                && key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-=.,_:@".contains(c));
            if !fits {
                let location = self.key_location(&["instances", name, "tags", key]);
                self.error(
                    location,
                    format!("tag key `{key}` cannot be shown in instance metadata, which `idle_stop` needs"),
                    Some("with `idle_stop`, tag keys are letters, digits and + - = . , _ : @ (no spaces or `/`)".into()),
                );
            }
        }
    }

    /// `role:` or `instance_profile:`, not both.
    fn check_instance_role(
        &mut self,
        name: &str,
        role: Option<&str>,
        instance_profile: Option<&str>,
    ) {
        if let Some(profile) = instance_profile {
            if !crate::spec::is_iam_name(profile, 128) {
                let location = self.value_location(&["instances", name, "instance_profile"]);
                self.error(
                    location,
                    format!("`{profile}` is not an instance profile name"),
                    Some("instance profile names are 1-128 letters, digits and +=,.@_-".into()),
                );
            }
        }
        if role.is_some() && instance_profile.is_some() {
            let location = self.key_location(&["instances", name, "role"]);
            self.error(
                location,
                format!("instance `{name}` has both `role` and `instance_profile`"),
                Some("`role` gives it a declared role (through a profile tether makes); `instance_profile` one made elsewhere: keep one".into()),
            );
        }
    }

    pub(super) fn check_elastic_ips(
        &mut self,
        raw: BTreeMap<String, Option<RawElasticIp>>,
        instances: &BTreeMap<String, InstanceSpec>,
    ) -> BTreeMap<String, ElasticIpSpec> {
        let mut addresses = BTreeMap::new();
        let mut taken: BTreeMap<String, String> = BTreeMap::new();
        for (name, address) in raw {
            let address = address.unwrap_or_default();
            let location = self.key_location(&["elastic_ips", name.as_str()]);
            if name.is_empty() || name.len() > 128 || !name.is_ascii() {
                self.error(
                    location.clone(),
                    format!("invalid Elastic IP name `{name}`"),
                    Some("names are 1-128 ASCII characters".into()),
                );
            }
            if let Some(instance) = &address.instance {
                let instance_location =
                    self.value_location(&["elastic_ips", name.as_str(), "instance"]);
                if !instances.contains_key(instance) {
                    self.error(
                        instance_location,
                        format!("Elastic IP `{name}` names instance `{instance}`, which is not declared"),
                        Some(format!("declare `{instance}` under `instances`, or fix the name")),
                    );
                } else if let Some(other) = taken.insert(instance.clone(), name.clone()) {
                    self.error(
                        instance_location,
                        format!("Elastic IPs `{other}` and `{name}` both name instance `{instance}`"),
                        Some("an instance has one public address: give each Elastic IP its own instance".into()),
                    );
                }
            }
            self.check_tags(&["elastic_ips", name.as_str()], &address.tags);
            let adopt_id = self.check_adopt_id(
                ["elastic_ips", name.as_str(), "allocation_id"],
                (address.adopt, address.allocation_id),
                (
                    "eipalloc-",
                    "an allocation id such as `eipalloc-0123456789abcdef0`",
                ),
            );
            if address.adopt && adopt_id.is_none() {
                self.error(
                    location.clone(),
                    format!("Elastic IP `{name}` says `adopt: true` but names no `allocation_id`"),
                    Some("an address has no name in EC2: give the `allocation_id` of the one to take over (the console shows it)".into()),
                );
            }
            addresses.insert(
                name.clone(),
                ElasticIpSpec {
                    name,
                    instance: address.instance,
                    tags: address.tags,
                    adopt_id,
                    location,
                },
            );
        }
        addresses
    }
}

impl Checker<'_> {
    /// An id of a resource to adopt (at `path`): given only with `adopt: true`, and of
    /// the shape EC2 gives (`prefix` and 8 or 17 hex digits).
    fn check_adopt_id(
        &mut self,
        path: [&str; 3],
        (adopt, id): (bool, Option<String>),
        (prefix, example): (&str, &str),
    ) -> Option<String> {
        let id = id?;
        let location = self.value_location(&path);
        let digits = id.strip_prefix(prefix).unwrap_or_default();
        let shaped = matches!(digits.len(), 8 | 17)
            && digits
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c));
        if !shaped {
            self.error(location, format!("`{id}` is not {example}"), None);
            return None;
        }
        if !adopt {
            self.error(
                location,
                format!("`{}: {id}` is for adopting: add `adopt: true` beside it", path[2]),
                Some("tether launches and allocates its own resources; an id names one that exists, to take over".into()),
            );
            return None;
        }
        Some(id)
    }
}

impl Spec {
    /// The image lookups of the spec's instances, each once.
    pub fn image_lookups(&self) -> Vec<ImageLookup> {
        let lookups: BTreeSet<&ImageLookup> = self
            .instances
            .values()
            .filter_map(|instance| match &instance.ami {
                AmiSpec::Newest(lookup) => Some(lookup),
                AmiSpec::Id(_) => None,
            })
            .collect();
        lookups.into_iter().cloned().collect()
    }

    /// Reads the files the spec names for their contents (user data), relative to
    /// `base_dir`, through `read`: the caller decides how files are read, so the spec
    /// module stays free of I/O. Every file that cannot be read is reported at its line.
    pub fn read_files(
        &mut self,
        base_dir: &Path,
        read: impl Fn(&Path) -> std::io::Result<Vec<u8>>,
    ) -> Result<(), SpecError> {
        let mut problems = Vec::new();
        for instance in self.instances.values_mut() {
            let Some(user_data) = &mut instance.user_data else {
                continue;
            };
            let path = base_dir.join(&user_data.file);
            match read(&path) {
                Ok(content) if content.len() > MAX_USER_DATA => problems.push(
                    Diagnostic::new(
                        format!(
                            "user data `{}` is {} bytes; EC2 takes at most {MAX_USER_DATA}",
                            user_data.file,
                            content.len()
                        ),
                        Some(user_data.location.clone()),
                    )
                    .with_hint("have the script fetch the rest (from S3, say) when it runs"),
                ),
                Ok(content) if instance.idle_stop.is_some() => {
                    // Beside the idle watchdog, in one archive cloud-init takes apart.
                    let merged = crate::idle::user_data(Some(&content)).len();
                    if crate::idle::part_type(&content).is_none() {
                        problems.push(
                            Diagnostic::new(
                                format!(
                                    "user data `{}` is an archive (MIME or gzip) of its own, which cannot go beside the idle watchdog of `idle_stop`",
                                    user_data.file
                                ),
                                Some(user_data.location.clone()),
                            )
                            .with_hint("give its parts as plain files (a `#cloud-config` or a `#!` script), or drop `idle_stop`"),
                        );
                    } else if merged > MAX_USER_DATA {
                        problems.push(
                            Diagnostic::new(
                                format!(
                                    "user data `{}` with the idle watchdog of `idle_stop` is {merged} bytes; EC2 takes at most {MAX_USER_DATA}",
                                    user_data.file
                                ),
                                Some(user_data.location.clone()),
                            )
                            .with_hint("have the script fetch the rest (from S3, say) when it runs"),
                        );
                    } else {
                        user_data.path = Some(path.display().to_string());
                        user_data.content = Some(content);
                    }
                }
                Ok(content) => {
                    user_data.path = Some(path.display().to_string());
                    user_data.content = Some(content);
                }
                Err(error) => problems.push(
                    Diagnostic::new(
                        format!("cannot read user data `{}`: {error}", path.display()),
                        Some(user_data.location.clone()),
                    )
                    .with_hint("paths are relative to the spec file's directory"),
                ),
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(SpecError::Invalid(problems))
        }
    }
}

/// Minutes in an idle rule's duration (`30m`, `2h`); `None` when it is not one.
fn idle_minutes(text: &str) -> Option<u32> {
    let (number, factor) = match text.strip_suffix('m') {
        Some(number) => (number, 1),
        None => (text.strip_suffix('h')?, 60),
    };
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    number.parse::<u32>().ok()?.checked_mul(factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ami_ids_have_8_or_17_hex_digits() {
        assert!(is_ami_id("ami-0abcdef1234567890"));
        assert!(is_ami_id("ami-12c6146b"));
        assert!(!is_ami_id("ami-12C6146B"));
        assert!(!is_ami_id("ami-123"));
        assert!(!is_ami_id("ubuntu-22.04"));
    }

    #[test]
    fn instance_types_are_family_dot_size() {
        for good in ["m5.xlarge", "t3a.micro", "u-6tb1.metal", "c7gn.16xlarge"] {
            assert!(is_instance_type(good), "{good}");
        }
        for bad in ["m5", "M5.large", "m5.", ".large", "m5-.large", "m5.x-large"] {
            assert!(!is_instance_type(bad), "{bad}");
        }
    }

    #[test]
    fn prices_are_positive_decimals() {
        assert!(is_price("0.10"));
        assert!(is_price("2"));
        assert!(!is_price("0"));
        assert!(!is_price("-1"));
        assert!(!is_price("0.1.2"));
        assert!(!is_price("ten"));
    }

    #[test]
    fn devices_are_sd_or_xvd() {
        assert!(is_device_name("/dev/sdf"));
        assert!(is_device_name("/dev/xvdb"));
        assert!(!is_device_name("/dev/nvme1n1"));
        assert!(!is_device_name("sdf"));
    }
}
