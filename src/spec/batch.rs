//! The `batch:` section of the spec: AWS Batch compute environments, job queues and job
//! definitions. Shapes, defaults, and what Batch would reject (names, vCPU and memory
//! pairs on Fargate, queues mixing Fargate and EC2 environments), checked before any call.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use super::{Checker, RoleSpec, SecurityGroupSpec, EC2_SERVICE};
use crate::diagnostic::Location;

/// The service principal of containers' roles (job roles, execution roles).
pub const ECS_TASKS_SERVICE: &str = "ecs-tasks.amazonaws.com";

/// The `batch:` section.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BatchSpec {
    pub compute_environments: BTreeMap<String, ComputeEnvironmentSpec>,
    pub job_queues: BTreeMap<String, JobQueueSpec>,
    pub job_definitions: BTreeMap<String, JobDefinitionSpec>,
}

/// Where a compute environment's containers run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize, schemars::JsonSchema)]
pub enum ComputeKind {
    /// On-demand EC2 instances that Batch starts and stops.
    #[serde(rename = "EC2")]
    Ec2,
    /// Spot instances: cheaper, reclaimed when EC2 needs them (a child then retries).
    #[serde(rename = "SPOT")]
    Spot,
    /// Fargate: no instances to manage.
    #[serde(rename = "FARGATE")]
    Fargate,
    /// Fargate Spot.
    #[serde(rename = "FARGATE_SPOT")]
    FargateSpot,
}

impl ComputeKind {
    /// Batch's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            ComputeKind::Ec2 => "EC2",
            ComputeKind::Spot => "SPOT",
            ComputeKind::Fargate => "FARGATE",
            ComputeKind::FargateSpot => "FARGATE_SPOT",
        }
    }

    pub fn is_fargate(self) -> bool {
        matches!(self, ComputeKind::Fargate | ComputeKind::FargateSpot)
    }
}

/// One entry of `batch.compute_environments`: a managed environment in the default VPC.
#[derive(Clone, Debug, PartialEq)]
pub struct ComputeEnvironmentSpec {
    pub name: String,
    pub kind: ComputeKind,
    pub max_vcpus: i32,
    /// EC2 and SPOT only.
    pub min_vcpus: Option<i32>,
    /// EC2 and SPOT only (`optimal` by default).
    pub instance_types: BTreeSet<String>,
    /// SPOT only: the highest share of the on-demand price to pay.
    pub bid_percentage: Option<i32>,
    /// Declared security groups.
    pub security_groups: BTreeSet<String>,
    /// EC2 and SPOT: a declared role EC2 may assume (its instance profile).
    pub instance_role: Option<String>,
    /// A declared role Batch assumes; `None`: Batch's service-linked role.
    pub service_role: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub adopt: bool,
    pub location: Location,
}

/// One entry of `batch.job_queues`.
#[derive(Clone, Debug, PartialEq)]
pub struct JobQueueSpec {
    pub name: String,
    pub priority: i32,
    /// Declared compute environments, in the order Batch tries them.
    pub compute_environments: Vec<String>,
    pub tags: BTreeMap<String, String>,
    pub adopt: bool,
    pub location: Location,
}

/// One entry of `batch.job_definitions`: a container job.
#[derive(Clone, Debug, PartialEq)]
pub struct JobDefinitionSpec {
    pub name: String,
    pub image: String,
    /// As Batch takes it: `1`, `0.25`, ...
    pub vcpus: String,
    pub memory_mb: u32,
    /// A declared role containers may assume: what the job's programs may do.
    pub job_role: Option<String>,
    /// A declared role containers may assume: what Batch uses to pull the image and write
    /// logs (needed on Fargate for private images).
    pub execution_role: Option<String>,
    /// Attempts per job, retries included (1 to 10).
    pub attempts: Option<i32>,
    /// Which failed attempts are tried again.
    pub retry_on: RetryOn,
    pub timeout_seconds: Option<i32>,
    /// `EC2` or `FARGATE`.
    pub platform: String,
    pub tags: BTreeMap<String, String>,
    pub adopt: bool,
    pub location: Location,
}

/// AWS Batch resources, owned by the project's tags.
#[derive(Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Batch")]
pub(super) struct RawBatch {
    /// Managed compute environments by name, in the default VPC.
    #[serde(default)]
    #[schemars(extend("propertyNames" = {"pattern": super::schema::BATCH_NAME}))]
    compute_environments: BTreeMap<String, RawComputeEnvironment>,
    /// Job queues by name.
    #[serde(default)]
    #[schemars(extend("propertyNames" = {"pattern": super::schema::BATCH_NAME}))]
    job_queues: BTreeMap<String, RawJobQueue>,
    /// Job definitions by name (a change registers the next revision).
    #[serde(default)]
    #[schemars(extend("propertyNames" = {"pattern": super::schema::BATCH_NAME}))]
    job_definitions: BTreeMap<String, RawJobDefinition>,
}

/// A managed compute environment.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "ComputeEnvironment")]
struct RawComputeEnvironment {
    /// `EC2`, `SPOT`, `FARGATE` or `FARGATE_SPOT`.
    #[serde(rename = "type")]
    kind: ComputeKind,
    /// The most vCPUs it runs at once.
    #[schemars(range(min = 1))]
    max_vcpus: i64,
    /// vCPUs kept running when idle (EC2 and SPOT; default 0).
    #[serde(default)]
    #[schemars(range(min = 0))]
    min_vcpus: Option<i64>,
    /// Instance types (EC2 and SPOT; default `optimal`).
    #[serde(default)]
    instance_types: Option<Vec<String>>,
    /// SPOT: the highest price as a percentage of on-demand (1 to 100).
    #[serde(default)]
    #[schemars(range(min = 1, max = 100))]
    bid_percentage: Option<i64>,
    /// Declared security groups for its instances or tasks.
    #[serde(default)]
    security_groups: Vec<String>,
    /// A declared role EC2 may assume, for its instances (EC2 and SPOT).
    #[serde(default)]
    instance_role: Option<String>,
    /// A declared role Batch may assume; default Batch's service-linked role.
    #[serde(default)]
    service_role: Option<String>,
    /// Tags (keys starting with `tether:` are reserved).
    #[serde(default)]
    #[schemars(schema_with = "super::schema::tags")]
    tags: BTreeMap<String, String>,
    /// Take over an existing environment of this name that tether did not make.
    #[serde(default)]
    adopt: bool,
}

/// A job queue.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "JobQueue")]
struct RawJobQueue {
    /// Higher runs first among queues sharing environments (0 to 1000).
    #[serde(default = "one")]
    #[schemars(range(min = 0, max = 1000))]
    priority: i64,
    /// 1 to 3 declared compute environments, tried in order; not Fargate and EC2 mixed.
    #[schemars(length(min = 1, max = 3))]
    compute_environments: Vec<String>,
    /// Tags (keys starting with `tether:` are reserved).
    #[serde(default)]
    #[schemars(schema_with = "super::schema::tags")]
    tags: BTreeMap<String, String>,
    /// Take over an existing queue of this name that tether did not make.
    #[serde(default)]
    adopt: bool,
}

fn one() -> i64 {
    1
}

/// A container job definition.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "JobDefinition")]
struct RawJobDefinition {
    /// The container image, `[registry/]repository[:tag][@digest]`.
    #[schemars(example = &"public.ecr.aws/amazonlinux/amazonlinux:2023")]
    image: String,
    /// vCPUs per child (Fargate: 0.25, 0.5, 1, 2, 4, 8 or 16).
    #[schemars(range(min = 0.25))]
    vcpus: f64,
    /// Memory per child in MiB (Fargate: one of the sizes it pairs with the vCPUs).
    #[schemars(range(min = 4))]
    memory_mb: i64,
    /// A declared role the containers use (`ecs-tasks.amazonaws.com` may assume it).
    #[serde(default)]
    job_role: Option<String>,
    /// Fargate: a declared role that pulls the image and writes logs.
    #[serde(default)]
    execution_role: Option<String>,
    /// Attempts per child, 1 to 10: a child whose instance is reclaimed runs again.
    #[serde(default)]
    #[schemars(range(min = 1, max = 10))]
    attempts: Option<i64>,
    /// `failure` (the default): any failed attempt runs again; `reclaim`: only one whose
    /// spot instance was reclaimed (retries through Batch's `evaluateOnExit`).
    #[serde(default)]
    retry_on: Option<RetryOn>,
    /// Seconds a child may run (at least 60).
    #[serde(default)]
    #[schemars(range(min = 60))]
    timeout_seconds: Option<i64>,
    /// `EC2` (the default) or `FARGATE`.
    #[serde(default)]
    #[schemars(extend("enum" = ["EC2", "FARGATE"]))]
    platform: Option<String>,
    /// Tags (keys starting with `tether:` are reserved).
    #[serde(default)]
    #[schemars(schema_with = "super::schema::tags")]
    tags: BTreeMap<String, String>,
    /// Take over an existing definition of this name that tether did not make.
    #[serde(default)]
    adopt: bool,
}

/// Which failed attempts of a child Batch tries again (up to `attempts`).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum RetryOn {
    /// Any failed attempt (Batch's own behaviour).
    #[default]
    Failure,
    /// Only an attempt whose instance was taken away under it (a spot reclaim: Batch's
    /// reason reads `Host EC2 (instance i-…) terminated.`); a failure of the job itself ends
    /// the child at once (tether's agent retries tasks itself, `--retries`).
    Reclaim,
}

/// Batch's name rule for environments, queues and definitions: 1 to 128 letters, digits,
/// hyphens and underscores, starting with a letter or digit.
pub fn is_batch_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// A container image reference: `[registry/]repository[:tag][@digest]`, lower-case path,
/// no whitespace.
pub fn is_image_name(image: &str) -> bool {
    let (name, digest) = match image.split_once('@') {
        Some((name, digest)) => (name, Some(digest)),
        None => (image, None),
    };
    let digest_ok = digest.is_none_or(|d| {
        d.split_once(':').is_some_and(|(algorithm, hex)| {
            !algorithm.is_empty() && !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit())
        })
    });
    // A tag follows the last `:` after the last `/` (a registry may carry a port).
    let last_segment = name.rsplit('/').next().unwrap_or(name);
    let (path, tag) = match last_segment.rsplit_once(':') {
        Some((_, tag)) => (&name[..name.len() - tag.len() - 1], Some(tag)),
        None => (name, None),
    };
    let tag_ok = tag.is_none_or(|t| {
        !t.is_empty()
            && t.len() <= 128
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    });
    let mut segments = path.split('/');
    let first = segments.next().unwrap_or_default();
    // The first segment may be a registry host (with dots or a port).
    let registry = path.contains('/') && (first.contains('.') || first.contains(':'));
    let path_ok = !path.is_empty()
        && path.split('/').enumerate().all(|(i, segment)| {
            !segment.is_empty()
                && if i == 0 && registry {
                    segment
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || ".-:".contains(c))
                } else {
                    segment
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
                }
        });
    path_ok && tag_ok && digest_ok
}

/// Fargate's allowed memory (MiB) for `vcpus`, as Batch documents the pairs.
fn fargate_memory(vcpus: &str) -> Option<Vec<u32>> {
    let range = |from: u32, to: u32, step: u32| (from..=to).step_by(step as usize).collect();
    Some(match vcpus {
        "0.25" => vec![512, 1024, 2048],
        "0.5" => range(1024, 4096, 1024),
        "1" => range(2048, 8192, 1024),
        "2" => range(4096, 16384, 1024),
        "4" => range(8192, 30720, 1024),
        "8" => range(16384, 61440, 4096),
        "16" => range(32768, 122_880, 8192),
        _ => return None,
    })
}

/// `1.0` as `1`, `0.25` as `0.25`: how Batch spells vCPUs.
fn spell_vcpus(vcpus: f64) -> String {
    if vcpus.fract() == 0.0 {
        format!("{vcpus:.0}")
    } else {
        format!("{vcpus}")
    }
}

impl Checker<'_> {
    pub(super) fn check_batch(
        &mut self,
        raw: Option<RawBatch>,
        roles: &BTreeMap<String, RoleSpec>,
        security_groups: &BTreeMap<String, SecurityGroupSpec>,
    ) -> BatchSpec {
        let Some(raw) = raw else {
            return BatchSpec::default();
        };
        let mut spec = BatchSpec::default();
        for (name, ce) in raw.compute_environments {
            let ce = self.check_compute_environment(&name, ce, roles, security_groups);
            spec.compute_environments.insert(name, ce);
        }
        for (name, queue) in raw.job_queues {
            let queue = self.check_job_queue(&name, queue, &spec.compute_environments);
            spec.job_queues.insert(name, queue);
        }
        for (name, definition) in raw.job_definitions {
            let definition = self.check_job_definition(&name, definition, roles);
            spec.job_definitions.insert(name, definition);
        }
        spec
    }

    fn check_batch_name(&mut self, key: &[&str], what: &str, name: &str) {
        if !is_batch_name(name) {
            let location = self.key_location(key);
            self.error(
                location,
                format!("invalid {what} name `{name}`"),
                Some("Batch names are 1-128 letters, digits, `-` and `_`, starting with a letter or digit".into()),
            );
        }
    }

    /// A reference at `path` to a declared role that `service` may assume.
    fn check_role_reference(
        &mut self,
        path: &[&str],
        role: &str,
        service: &str,
        roles: &BTreeMap<String, RoleSpec>,
    ) {
        match roles.get(role) {
            None => {
                let location = self.value_location(path);
                self.error(
                    location,
                    format!("role `{role}` is not declared"),
                    Some(format!(
                        "declare it under `iam.roles`, e.g. `{role}: {{assumed_by: {service}}}`"
                    )),
                );
            }
            Some(declared)
                if !declared.trust_policy.is_null()
                    && !crate::policy::trusts_service(&declared.trust_policy, service) =>
            {
                let location = self.value_location(path);
                self.error(
                    location,
                    format!("role `{role}` may not be assumed by `{service}`"),
                    Some(format!("add `{service}` to the role's `assumed_by`")),
                );
            }
            Some(_) => {}
        }
    }

    fn check_compute_environment(
        &mut self,
        name: &str,
        raw: RawComputeEnvironment,
        roles: &BTreeMap<String, RoleSpec>,
        security_groups: &BTreeMap<String, SecurityGroupSpec>,
    ) -> ComputeEnvironmentSpec {
        let key = ["batch", "compute_environments", name];
        let at = |field: &'static str| ["batch", "compute_environments", name, field];
        self.check_batch_name(&key, "compute environment", name);
        let fargate = raw.kind.is_fargate();
        let max_vcpus = i32::try_from(raw.max_vcpus).unwrap_or(-1);
        if max_vcpus < 1 {
            let location = self.value_location(&at("max_vcpus"));
            self.error(
                location,
                format!("`max_vcpus` must be at least 1, not {}", raw.max_vcpus),
                None,
            );
        }
        let min_vcpus = raw.min_vcpus.map(|v| i32::try_from(v).unwrap_or(-1));
        let misplaced = |checker: &mut Self, field: &'static str, present: bool, rule: &str| {
            if present {
                let location = checker.key_location(&at(field));
                checker.error(
                    location,
                    format!(
                        "`{field}` does not apply to a {} compute environment",
                        raw.kind.as_str()
                    ),
                    Some(rule.to_string()),
                );
            }
        };
        if fargate {
            misplaced(
                self,
                "min_vcpus",
                raw.min_vcpus.is_some(),
                "Fargate scales by itself: drop it",
            );
            misplaced(
                self,
                "instance_types",
                raw.instance_types.is_some(),
                "Fargate chooses the machines: drop it",
            );
            misplaced(
                self,
                "instance_role",
                raw.instance_role.is_some(),
                "Fargate containers have no instance: use a job definition's `job_role`",
            );
        } else {
            if let Some(min) = min_vcpus {
                if min < 0 || min > max_vcpus {
                    let location = self.value_location(&at("min_vcpus"));
                    self.error(
                        location,
                        format!("`min_vcpus` must be between 0 and `max_vcpus` ({max_vcpus})"),
                        None,
                    );
                }
            }
            match &raw.instance_role {
                None => {
                    let location = self.key_location(&key);
                    self.error(
                        location,
                        format!("compute environment `{name}` has no `instance_role`"),
                        Some(format!("name a role of `iam.roles` that `{EC2_SERVICE}` may assume: its instances get it")),
                    );
                }
                Some(role) => {
                    self.check_role_reference(&at("instance_role"), role, EC2_SERVICE, roles);
                }
            }
        }
        let bid_percentage = raw.bid_percentage.map(|b| i32::try_from(b).unwrap_or(-1));
        if raw.kind == ComputeKind::Spot {
            if let Some(bid) = bid_percentage.filter(|b| !(1..=100).contains(b)) {
                let location = self.value_location(&at("bid_percentage"));
                self.error(
                    location,
                    format!(
                        "`bid_percentage` is a share of the on-demand price, 1 to 100, not {bid}"
                    ),
                    None,
                );
            }
        } else {
            misplaced(
                self,
                "bid_percentage",
                raw.bid_percentage.is_some(),
                "only SPOT environments bid",
            );
        }
        if let Some(role) = &raw.service_role {
            self.check_role_reference(&at("service_role"), role, "batch.amazonaws.com", roles);
        }
        if raw.security_groups.is_empty() {
            let location = self.key_location(&key);
            self.error(
                location,
                format!("compute environment `{name}` has no `security_groups`"),
                Some("name a security group of `security_groups` (it needs no ingress; egress reaches S3)".into()),
            );
        }
        for (index, group) in raw.security_groups.iter().enumerate() {
            if !security_groups.contains_key(group) {
                let index = index.to_string();
                let location = self.value_location(&[
                    "batch",
                    "compute_environments",
                    name,
                    "security_groups",
                    index.as_str(),
                ]);
                self.error(
                    location,
                    format!("security group `{group}` is not declared"),
                    Some("declare it under `security_groups`".into()),
                );
            }
        }
        self.check_tags(&key, &raw.tags);
        let instance_types = if fargate {
            BTreeSet::new()
        } else {
            raw.instance_types
                .unwrap_or_else(|| vec!["optimal".to_string()])
                .into_iter()
                .collect()
        };
        ComputeEnvironmentSpec {
            name: name.to_string(),
            kind: raw.kind,
            max_vcpus,
            min_vcpus: if fargate {
                None
            } else {
                Some(min_vcpus.unwrap_or(0))
            },
            instance_types,
            bid_percentage: if raw.kind == ComputeKind::Spot {
                bid_percentage
            } else {
                None
            },
            security_groups: raw.security_groups.into_iter().collect(),
            instance_role: raw.instance_role,
            service_role: raw.service_role,
            tags: raw.tags,
            adopt: raw.adopt,
            location: self.key_location(&key),
        }
    }

    fn check_job_queue(
        &mut self,
        name: &str,
        raw: RawJobQueue,
        compute_environments: &BTreeMap<String, ComputeEnvironmentSpec>,
    ) -> JobQueueSpec {
        let key = ["batch", "job_queues", name];
        self.check_batch_name(&key, "job queue", name);
        let priority = i32::try_from(raw.priority).unwrap_or(-1);
        if !(0..=1000).contains(&priority) {
            let location = self.value_location(&["batch", "job_queues", name, "priority"]);
            self.error(
                location,
                format!("`priority` is 0 to 1000, not {}", raw.priority),
                None,
            );
        }
        if raw.compute_environments.is_empty() || raw.compute_environments.len() > 3 {
            let location =
                self.key_location(&["batch", "job_queues", name, "compute_environments"]);
            self.error(
                location,
                format!(
                    "a job queue takes 1 to 3 compute environments, not {}",
                    raw.compute_environments.len()
                ),
                None,
            );
        }
        let mut kinds = BTreeSet::new();
        for (index, ce) in raw.compute_environments.iter().enumerate() {
            match compute_environments.get(ce) {
                Some(declared) => {
                    kinds.insert(declared.kind.is_fargate());
                }
                None => {
                    let index = index.to_string();
                    let location = self.value_location(&[
                        "batch",
                        "job_queues",
                        name,
                        "compute_environments",
                        index.as_str(),
                    ]);
                    self.error(
                        location,
                        format!("compute environment `{ce}` is not declared"),
                        Some("declare it under `batch.compute_environments`".into()),
                    );
                }
            }
        }
        if kinds.len() > 1 {
            let location =
                self.key_location(&["batch", "job_queues", name, "compute_environments"]);
            self.error(
                location,
                format!("job queue `{name}` mixes Fargate and EC2 compute environments, which Batch refuses"),
                Some("give Fargate and EC2 environments queues of their own".into()),
            );
        }
        self.check_tags(&key, &raw.tags);
        JobQueueSpec {
            name: name.to_string(),
            priority,
            compute_environments: raw.compute_environments,
            tags: raw.tags,
            adopt: raw.adopt,
            location: self.key_location(&key),
        }
    }

    fn check_job_definition(
        &mut self,
        name: &str,
        raw: RawJobDefinition,
        roles: &BTreeMap<String, RoleSpec>,
    ) -> JobDefinitionSpec {
        let key = ["batch", "job_definitions", name];
        let at = |field: &'static str| ["batch", "job_definitions", name, field];
        self.check_batch_name(&key, "job definition", name);
        if !is_image_name(&raw.image) {
            let location = self.value_location(&at("image"));
            self.error(
                location,
                format!("`{}` is not a container image name", raw.image),
                Some("images look like `public.ecr.aws/amazonlinux/amazonlinux:2023` or `python:3.12-slim`".into()),
            );
        }
        let platform = raw.platform.unwrap_or_else(|| "EC2".to_string());
        if platform != "EC2" && platform != "FARGATE" {
            let location = self.value_location(&at("platform"));
            self.error(
                location,
                format!("`platform` is `EC2` or `FARGATE`, not `{platform}`"),
                None,
            );
        }
        let vcpus = spell_vcpus(raw.vcpus);
        let memory_mb = u32::try_from(raw.memory_mb).unwrap_or(0);
        if platform == "FARGATE" {
            match fargate_memory(&vcpus) {
                None => {
                    let location = self.value_location(&at("vcpus"));
                    self.error(
                        location,
                        format!("Fargate takes 0.25, 0.5, 1, 2, 4, 8 or 16 vCPUs, not {vcpus}"),
                        None,
                    );
                }
                Some(allowed) if !allowed.contains(&memory_mb) => {
                    let location = self.value_location(&at("memory_mb"));
                    self.error(
                        location,
                        format!("Fargate does not pair {memory_mb} MiB with {vcpus} vCPU"),
                        Some(format!(
                            "with {vcpus} vCPU, memory_mb is one of {}",
                            allowed
                                .iter()
                                .map(u32::to_string)
                                .collect::<Vec<_>>()
                                .join(", ")
                        )),
                    );
                }
                Some(_) => {}
            }
        } else {
            if raw.vcpus < 1.0 || raw.vcpus.fract() != 0.0 {
                let location = self.value_location(&at("vcpus"));
                self.error(
                    location,
                    format!("on EC2, `vcpus` is a whole number of at least 1, not {vcpus}"),
                    None,
                );
            }
            if memory_mb < 4 {
                let location = self.value_location(&at("memory_mb"));
                self.error(
                    location,
                    format!("`memory_mb` must be at least 4, not {}", raw.memory_mb),
                    None,
                );
            }
        }
        let attempts = raw.attempts.map(|a| i32::try_from(a).unwrap_or(0));
        if let Some(a) = attempts.filter(|a| !(1..=10).contains(a)) {
            let location = self.value_location(&at("attempts"));
            self.error(location, format!("`attempts` is 1 to 10, not {a}"), None);
        }
        if raw.retry_on.is_some() && attempts.is_none_or(|a| a < 2) {
            let location = self.key_location(&at("retry_on"));
            self.error(
                location,
                "`retry_on` says which attempts run again, but `attempts` allows none".into(),
                Some("set `attempts` to 2 or more (3 rides out most spot reclaims)".into()),
            );
        }
        let timeout_seconds = raw.timeout_seconds.map(|t| i32::try_from(t).unwrap_or(0));
        if let Some(t) = timeout_seconds.filter(|t| *t < 60) {
            let location = self.value_location(&at("timeout_seconds"));
            self.error(
                location,
                format!("Batch's shortest timeout is 60 seconds, not {t}"),
                None,
            );
        }
        for (field, role) in [
            ("job_role", &raw.job_role),
            ("execution_role", &raw.execution_role),
        ] {
            if let Some(role) = role {
                self.check_role_reference(&at(field), role, ECS_TASKS_SERVICE, roles);
            }
        }
        self.check_tags(&key, &raw.tags);
        JobDefinitionSpec {
            name: name.to_string(),
            image: raw.image,
            vcpus,
            memory_mb,
            job_role: raw.job_role,
            execution_role: raw.execution_role,
            attempts,
            retry_on: raw.retry_on.unwrap_or_default(),
            timeout_seconds,
            platform,
            tags: raw.tags,
            adopt: raw.adopt,
            location: self.key_location(&key),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names_as_registries_take_them() {
        for good in [
            "python:3.12-slim",
            "public.ecr.aws/amazonlinux/amazonlinux:2023",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/lab/worker:v1",
            "localhost:5000/tether",
            "busybox@sha256:abcdef0123456789",
        ] {
            assert!(is_image_name(good), "{good}");
        }
        for bad in [
            "",
            "Python:3",
            "lab worker",
            "x:",
            "a//b",
            "busybox@sha256:xyz",
        ] {
            assert!(!is_image_name(bad), "{bad}");
        }
    }

    #[test]
    fn fargate_pairs_and_vcpu_spelling() {
        assert_eq!(spell_vcpus(1.0), "1");
        assert_eq!(spell_vcpus(0.25), "0.25");
        assert!(fargate_memory("1").is_some_and(|m| m.contains(&2048) && !m.contains(&512)));
        assert!(fargate_memory("3").is_none());
        assert!(is_batch_name("lab_queue-1") && !is_batch_name("-x") && !is_batch_name("a.b"));
    }
}
