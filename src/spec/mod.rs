//! The spec: a YAML file turned into a typed, validated model.
//!
//! Owns the file format (which keys exist, their types and defaults) and every check that can
//! be made without asking AWS: names, tags, policy documents. All errors point at
//! `file:line:column`. This module does no I/O: it is given the file's name and text.
//! It does not know what exists in the account, nor how a spec becomes AWS calls.

mod batch;
mod budget;
mod ec2;
mod iam;
mod instances;
mod jobs;
pub mod schema;
mod source;
mod ssh;

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::diagnostic::{Diagnostic, Location};
use crate::policy;
pub use batch::{
    is_batch_name, is_image_name, BatchSpec, ComputeEnvironmentSpec, ComputeKind,
    JobDefinitionSpec, JobQueueSpec, RetryOn, ECS_TASKS_SERVICE,
};
pub use budget::BudgetSpec;
pub use ec2::{IngressSpec, KeyPairSpec, KeySource, Protocol, SecurityGroupSpec};
pub use iam::{
    check_account_alias, is_iam_name, is_managed_policy_arn, is_service_principal, AccountSpec,
    AliasSpec, GroupSpec, PasswordPolicySpec, RoleSpec, UserSpec, EC2_SERVICE, JOBS_POLICY,
};
pub use instances::{
    is_ami_id, is_instance_type, AmiSpec, ElasticIpSpec, HostKeyTrust, IdleStopSpec, InstanceSpec,
    UserData, IDLE_MINUTES_MAX, IDLE_MINUTES_MIN,
};
pub use jobs::{
    command_script, parse_s3_url, BatchRun, Builtin, Inputs, JobSpec, Mode, Output, Placement,
    Remote, Shares, Work, INPUT_VARIABLE, IO_TASKS_PER_CORE, MAX_ARRAY_SIZE, MAX_IO_TASKS,
    OUTPUT_VARIABLE,
};
pub use source::{Position, SourceIndex};
pub use ssh::{HostSpec, SshSpec, DEFAULT_SSH_CONFIG};

use crate::model::TAG_PREFIX;

/// S3 allows 50 tags on a bucket; tether uses up to 3 of them.
const MAX_USER_TAGS: usize = 47;

/// A validated spec.
#[derive(Clone, Debug, PartialEq)]
pub struct Spec {
    /// The file name as given, for messages.
    pub file: String,
    /// Owner of everything tether creates; the value of the `tether:project` tag.
    pub project: String,
    /// The spec's region; required when the spec declares any resource, so that no
    /// operator's default region decides where they live. When absent (a spec of jobs
    /// only), the AWS chain's region applies.
    pub region: Option<String>,
    pub buckets: BTreeMap<String, BucketSpec>,
    /// The account's alias and password policy.
    pub account: AccountSpec,
    /// `iam.groups`, by name.
    pub groups: BTreeMap<String, GroupSpec>,
    /// `iam.users`, by name.
    pub users: BTreeMap<String, UserSpec>,
    /// `iam.roles`, by name.
    pub roles: BTreeMap<String, RoleSpec>,
    /// Where generated secrets are kept for the team (`secrets:`).
    pub secrets: SecretsMode,
    /// Where local copies of secrets go (credentials, passwords), as written in the spec
    /// (`~` not yet expanded).
    pub secrets_dir: String,
    /// `key_pairs`, by name.
    pub key_pairs: BTreeMap<String, KeyPairSpec>,
    /// `security_groups`, by name.
    pub security_groups: BTreeMap<String, SecurityGroupSpec>,
    /// `instances`, by name.
    pub instances: BTreeMap<String, InstanceSpec>,
    /// `elastic_ips`, by name.
    pub elastic_ips: BTreeMap<String, ElasticIpSpec>,
    /// `jobs`, by name.
    pub jobs: BTreeMap<String, JobSpec>,
    /// The `ssh:` section, when there is one.
    pub ssh: Option<SshSpec>,
    /// The tether binary copied to instances for jobs on them (relative to the spec's
    /// directory), when this machine's own is no Linux build for them.
    pub agent_binary: Option<String>,
    /// The `batch:` section: compute environments, job queues, job definitions.
    pub batch: BatchSpec,
    /// The project's monthly cost budget (`budget:`).
    pub budget: Option<BudgetSpec>,
    /// Resources the project lets go of (`forget:`): tether's marks of ownership come off,
    /// the resources stay. Each with where the spec lists it.
    pub forget: BTreeMap<crate::model::Address, Location>,
}

/// Where the secrets tether generates (access keys, console passwords, private keys) are
/// kept, so that whoever applies the spec leaves them where the team can fetch them.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum SecretsMode {
    /// `SecureString` parameters in the account's Parameter Store (the default): a key
    /// pair's private key at `/ec2/keypair/<key-pair-id>`, a user's access key and console
    /// password under `/tether/<project>/users/<user>/`. `tether secrets pull` makes local
    /// copies.
    #[default]
    ParameterStore,
    /// Only files on the machine of whoever applies (`secrets_dir`, `private_key_file`):
    /// for accounts without Parameter Store access to secrets. Others cannot fetch them.
    Local,
}

/// `secrets_dir` when the spec does not set one.
pub const DEFAULT_SECRETS_DIR: &str = "~/.tether/secrets";

/// One entry of `buckets:`.
#[derive(Clone, Debug, PartialEq)]
pub struct BucketSpec {
    /// The bucket's name, which is also its key in the spec and its address.
    pub name: String,
    /// Adds the standard `AllowPublicRead` statement to the policy.
    pub public_read: bool,
    /// The policy document as written (validated, not yet normalised or merged).
    pub policy: Option<Value>,
    /// The user's tags (tether adds its own when planning).
    pub tags: BTreeMap<String, String>,
    /// Empty the bucket (all object versions) before deleting it.
    pub force_destroy: bool,
    /// Take over a bucket of this name that exists but is not owned by the project.
    pub adopt: bool,
    /// Permit policy statements that let anyone write or delete.
    pub allow_public_write: bool,
    /// Where the bucket is declared, for later errors (ownership conflicts).
    pub location: Location,
}

/// Why a spec was rejected.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The text is not YAML, or does not have the spec's shape (unknown key, wrong type).
    #[error("{0}")]
    Syntax(Diagnostic),
    /// The shape is right but values are invalid; every problem found is listed.
    #[error("{}", render_all(.0))]
    Invalid(Vec<Diagnostic>),
}

impl SpecError {
    /// Every diagnostic in the error.
    pub fn diagnostics(&self) -> Vec<&Diagnostic> {
        match self {
            SpecError::Syntax(d) => vec![d],
            SpecError::Invalid(ds) => ds.iter().collect(),
        }
    }
}

fn render_all(diagnostics: &[Diagnostic]) -> String {
    let rendered: Vec<String> = diagnostics.iter().map(|d| d.to_string()).collect();
    let mut text = rendered.join("\n\nerror: ");
    if diagnostics.len() > 1 {
        text.push_str(&format!("\n\n{} errors in the spec", diagnostics.len()));
    }
    text
}

/// A tether spec: one team's AWS lab (buckets, IAM, key pairs, security groups, instances,
/// Elastic IPs, SSH aliases, AWS Batch) and the jobs that run on it.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Spec")]
struct RawSpec {
    /// The project's name: every resource tether makes is tagged with it, and only
    /// resources so tagged (or adopted) are ever changed or deleted.
    #[schemars(pattern(schema::PROJECT), example = &"lab")]
    project: String,
    /// The AWS region; else `AWS_REGION` or the AWS config file's.
    #[serde(default)]
    #[schemars(pattern(schema::REGION), example = &"us-east-1")]
    region: Option<String>,
    /// S3 buckets by name (3-63 lower-case letters, digits, `.` and `-`; no underscores).
    #[serde(default)]
    #[schemars(extend("propertyNames" = {"pattern": schema::BUCKET}))]
    buckets: BTreeMap<String, Option<RawBucket>>,
    /// Account-wide settings: the sign-in alias and the password policy.
    #[serde(default)]
    account: Option<iam::RawAccount>,
    /// IAM groups, users and roles.
    #[serde(default)]
    iam: Option<iam::RawIam>,
    /// Where secrets (private keys, access keys, console passwords) are kept.
    #[serde(default)]
    secrets: SecretsMode,
    /// With `secrets: local`: the directory for users' access keys and console passwords
    /// (files of mode 0600).
    #[serde(default)]
    secrets_dir: Option<String>,
    /// EC2 key pairs by name.
    #[serde(default)]
    key_pairs: BTreeMap<String, Option<ec2::RawKeyPair>>,
    /// Security groups (in the default VPC) by name.
    #[serde(default)]
    security_groups: BTreeMap<String, Option<ec2::RawSecurityGroup>>,
    /// EC2 instances by name (their `Name` tag).
    #[serde(default)]
    instances: BTreeMap<String, instances::RawInstance>,
    /// Elastic IPs by name, each optionally associated with an instance.
    #[serde(default)]
    elastic_ips: BTreeMap<String, Option<instances::RawElasticIp>>,
    /// Jobs by name: run on this machine, on instances over SSH, or on AWS Batch.
    #[serde(default)]
    jobs: BTreeMap<String, jobs::RawJob>,
    /// SSH aliases for the instances, kept in a marked block of an ssh config file.
    #[serde(default)]
    ssh: Option<ssh::RawSsh>,
    /// A Linux build of tether to copy to instances and Batch jobs (relative to the spec),
    /// when this tether is not one.
    #[serde(default)]
    agent_binary: Option<String>,
    /// AWS Batch compute environments, job queues and job definitions.
    #[serde(default)]
    batch: Option<batch::RawBatch>,
    /// A monthly cost budget for the project's resources, with e-mail alerts.
    #[serde(default)]
    budget: Option<budget::RawBudget>,
    /// Resources the project stops managing without deleting them, by address
    /// (`instance.worker`, `bucket.my-data`, `account.alias`): apply takes tether's tags,
    /// path and records off them and leaves them as they are. List only what the spec no
    /// longer declares.
    #[serde(default)]
    #[schemars(extend("items" = {"type": "string", "pattern": schema::FORGET_ADDRESS}))]
    forget: Vec<String>,
}

/// An S3 bucket: private unless `public_read`; public write only with
/// `allow_public_write`.
#[derive(Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Bucket")]
struct RawBucket {
    /// Allow anonymous `s3:GetObject` on every object (turns off the bucket's public access
    /// block for policies).
    #[serde(default)]
    public_read: bool,
    /// An extra bucket policy document (JSON as YAML); statements granting public write
    /// are refused.
    #[serde(default)]
    policy: Option<Value>,
    /// Tags (keys starting with `tether:` are reserved).
    #[serde(default)]
    #[schemars(schema_with = "schema::tags")]
    tags: BTreeMap<String, String>,
    /// Let `destroy` (or removing the bucket from the spec) delete its objects first.
    #[serde(default)]
    force_destroy: bool,
    /// Take over an existing bucket of this name that tether did not make.
    #[serde(default)]
    adopt: bool,
    /// Permit `policy` statements that let anyone write or delete (refused otherwise).
    #[serde(default)]
    allow_public_write: bool,
}

/// How the spec's YAML is read: YAML 1.2 booleans only (`yes` is a string, not `true`),
/// duplicate keys refused, and no snippet in errors (tether shows its own).
fn yaml_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        strict_booleans: true,
        with_snippet: false,
    }
}

/// The parser's message in tether's words: field names in backticks, as in every other
/// message, and nothing of the parser's own options or jargon.
fn plain_parser_message(message: &str) -> String {
    const ONE_OF: &str = "expected one of ";
    if message.starts_with("invalid boolean") {
        return "expected `true` or `false`".to_string();
    }
    if let Some(rest) = message.strip_prefix("duplicate mapping key: ") {
        let key = rest.split_once(", set ").map_or(rest, |(key, _)| key);
        return format!("`{key}` is given twice in one mapping; only one value can count");
    }
    if message == "expected mapping start" {
        return "expected a mapping (`key: value` entries)".to_string();
    }
    let is_name = |n: &str| {
        !n.is_empty()
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    match message.split_once(ONE_OF) {
        Some((head, names)) if names.split(", ").all(is_name) => {
            // As serde words it: `a`; `a` or `b`; one of `a`, `b`, `c`.
            let names: Vec<String> = names.split(", ").map(|n| format!("`{n}`")).collect();
            match names.as_slice() {
                [one] => format!("{head}expected {one}"),
                [first, second] => format!("{head}expected {first} or {second}"),
                _ => format!("{head}{ONE_OF}{}", names.join(", ")),
            }
        }
        _ => message.to_string(),
    }
}

/// Parses and validates the spec in `text`, read from `file`.
pub fn parse(file: &str, text: &str) -> Result<Spec, SpecError> {
    if text.trim().is_empty() {
        return Err(SpecError::Syntax(
            Diagnostic::new(format!("the spec file `{file}` is empty"), None)
                .with_hint("a spec needs at least `project: <name>`"),
        ));
    }
    let raw: RawSpec =
        serde_saphyr::from_str_with_options(text, yaml_options()).map_err(|error| {
            let number = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
            let at = error.location().map(|l| Position {
                line: number(l.line()),
                column: number(l.column()),
            });
            let mut message = error.to_string();
            // The parser appends the position in prose; it is shown as file:line:column instead.
            if let Some(cut) = message.rfind(" at line ") {
                message.truncate(cut);
            }
            let mut message = plain_parser_message(&message);
            // Say which part of the spec the error is about, as the checks after parsing do.
            if let Some(path) = at.and_then(|at| SourceIndex::build(text).path_at(at)) {
                message = format!("{path}: {message}");
            }
            let location = at.map(|at| Location::new(file, text, at.line, at.column));
            SpecError::Syntax(Diagnostic::new(message, location))
        })?;
    let checker = Checker {
        file,
        text,
        index: SourceIndex::build(text),
        diagnostics: Vec::new(),
    };
    checker.check(raw)
}

impl Checker<'_> {
    /// A Batch job's queue and definition are declared in `batch:`.
    fn check_batch_jobs(&mut self, batch: &BatchSpec, jobs: &BTreeMap<String, JobSpec>) {
        for job in jobs.values() {
            let Placement::Batch(run) = &job.placement else {
                continue;
            };
            if !batch.job_queues.contains_key(&run.queue) {
                let location = self.value_location(&["jobs", job.name.as_str(), "run_on", "batch"]);
                self.error(
                    location,
                    format!(
                        "job `{}` runs on Batch queue `{}`, which is not declared",
                        job.name, run.queue
                    ),
                    Some("declare it under `batch.job_queues`".into()),
                );
            }
            if !batch.job_definitions.contains_key(&run.definition) {
                let location =
                    self.value_location(&["jobs", job.name.as_str(), "run_on", "definition"]);
                self.error(
                    location,
                    format!(
                        "job `{}` uses Batch job definition `{}`, which is not declared",
                        job.name, run.definition
                    ),
                    Some("declare it under `batch.job_definitions`".into()),
                );
            }
        }
    }

    /// What refers to roles, and what roles refer to: an instance's `role` is a declared
    /// role that EC2 may assume; a role's `jobs` are declared jobs.
    fn check_role_references(
        &mut self,
        roles: &BTreeMap<String, RoleSpec>,
        instances: &BTreeMap<String, InstanceSpec>,
        jobs: &BTreeMap<String, JobSpec>,
    ) {
        for instance in instances.values() {
            let Some(role) = &instance.role else { continue };
            let at = ["instances", instance.name.as_str(), "role"];
            match roles.get(role) {
                None => {
                    let location = self.value_location(&at);
                    self.error(
                        location,
                        format!("instance `{}` has role `{role}`, which the spec does not declare", instance.name),
                        Some(format!("declare it under `iam.roles`, e.g. `{role}: {{assumed_by: {EC2_SERVICE}}}`")),
                    );
                }
                Some(declared) if !declared.trust_policy.is_null() && !declared.for_instances() => {
                    let location = self.value_location(&at);
                    self.error(
                        location,
                        format!(
                            "instance `{}` has role `{role}`, which EC2 may not assume",
                            instance.name
                        ),
                        Some(format!("add `{EC2_SERVICE}` to the role's `assumed_by`")),
                    );
                }
                Some(_) => {}
            }
        }
        for role in roles.values() {
            for (index, job) in role.jobs.iter().enumerate() {
                if !jobs.contains_key(job) {
                    let index = index.to_string();
                    let location = self.value_location(&[
                        "iam",
                        "roles",
                        role.name.as_str(),
                        "jobs",
                        index.as_str(),
                    ]);
                    self.error(
                        location,
                        format!(
                            "role `{}` grants job `{job}`, which the spec does not declare",
                            role.name
                        ),
                        Some("name a job under `jobs:`".into()),
                    );
                }
            }
        }
    }
}

struct Checker<'a> {
    file: &'a str,
    text: &'a str,
    index: SourceIndex,
    diagnostics: Vec<Diagnostic>,
}

impl Checker<'_> {
    fn key_location(&self, path: &[&str]) -> Location {
        let position = self
            .index
            .key(path)
            .unwrap_or(Position { line: 1, column: 1 });
        Location::new(self.file, self.text, position.line, position.column)
    }

    fn value_location(&self, path: &[&str]) -> Location {
        let position = self
            .index
            .value(path)
            .unwrap_or(Position { line: 1, column: 1 });
        Location::new(self.file, self.text, position.line, position.column)
    }

    fn error(&mut self, location: Location, message: String, hint: Option<String>) {
        let mut diagnostic = Diagnostic::new(message, Some(location));
        diagnostic.hint = hint;
        self.diagnostics.push(diagnostic);
    }

    /// `project:` and `region:`.
    fn check_project_and_region(&mut self, project: &str, region: Option<&str>) {
        if let Err(message) = check_project_name(project) {
            let location = self.value_location(&["project"]);
            self.error(
                location,
                message,
                Some("use letters, digits, `-` and `_`".into()),
            );
        }
        if let Some(region) = region {
            if !is_region_name(region) {
                let location = self.value_location(&["region"]);
                self.error(
                    location,
                    format!("`{region}` is not an AWS region name"),
                    Some("regions look like `us-east-1` or `eu-west-2`".into()),
                );
            }
        }
    }

    /// `buckets:`: names, tags, policies, and `public_read` beside a policy.
    fn check_buckets(
        &mut self,
        raw: BTreeMap<String, Option<RawBucket>>,
    ) -> BTreeMap<String, BucketSpec> {
        let mut buckets = BTreeMap::new();
        for (name, bucket) in raw {
            let bucket = bucket.unwrap_or_default();
            let key_path = ["buckets", name.as_str()];
            if let Err(message) = check_bucket_name(&name) {
                let location = self.key_location(&key_path);
                self.error(
                    location,
                    format!("invalid bucket name `{name}`: {message}"),
                    Some("bucket names are 3-63 lower-case letters, digits, `.` and `-`, starting and ending with a letter or digit".into()),
                );
            }
            self.check_tags(&key_path, &bucket.tags);
            let policy = match bucket.policy {
                None => None,
                Some(value) => self.check_policy(
                    &["buckets", name.as_str(), "policy"],
                    &format!("bucket `{name}`"),
                    value,
                    policy::PolicyKind::Bucket {
                        bucket: &name,
                        allow_public_write: bucket.allow_public_write,
                    },
                ),
            };
            let spec = BucketSpec {
                name: name.clone(),
                public_read: bucket.public_read,
                policy,
                tags: bucket.tags,
                force_destroy: bucket.force_destroy,
                adopt: bucket.adopt,
                allow_public_write: bucket.allow_public_write,
                location: self.key_location(&key_path),
            };
            if spec.public_read {
                if let Some(policy) = &spec.policy {
                    let clash = policy::statement_ids(policy).contains(&policy::PUBLIC_READ_SID);
                    if clash {
                        let location =
                            self.key_location(&["buckets", name.as_str(), "public_read"]);
                        self.error(
                            location,
                            format!(
                                "`public_read: true` adds a statement `{}`, and the policy already has one",
                                policy::PUBLIC_READ_SID
                            ),
                            Some("drop `public_read` or rename the policy's statement".into()),
                        );
                    }
                }
            }
            buckets.insert(name, spec);
        }
        buckets
    }

    /// A job on an instance reaches it through its alias.
    fn check_job_aliases(
        &mut self,
        jobs: &BTreeMap<String, JobSpec>,
        instances: &BTreeMap<String, InstanceSpec>,
        ssh: Option<&SshSpec>,
    ) {
        for job in jobs.values() {
            let run_on = match &job.placement {
                Placement::Instances(remote) => remote.run_on.as_slice(),
                Placement::Here | Placement::Batch(_) => &[],
            };
            for instance in run_on {
                let has_alias = ssh
                    .as_ref()
                    .is_some_and(|s| s.hosts.values().any(|h| &h.instance == instance));
                if instances.contains_key(instance) && !has_alias {
                    let location = self.key_location(&["jobs", job.name.as_str(), "run_on"]);
                    self.error(
                        location,
                        format!("job `{}` runs on `{instance}`, which has no SSH alias", job.name),
                        Some(format!("declare one under `ssh.hosts`, e.g. `{instance}: {{instance: {instance}, user: ubuntu}}`")),
                    );
                }
            }
        }
    }

    /// Which region a spec's resources live in (and its lock, its secrets) must not
    /// depend on the operator: two with different default regions would plan different
    /// changes, and take different locks. `declared`: each section, and whether the spec
    /// declares resources in it.
    fn check_region_declared(&mut self, region: Option<&str>, declared: &[(&str, bool)]) {
        if let (None, Some((section, _))) = (region, declared.iter().find(|(_, d)| *d)) {
            let location = self.key_location(&[section]);
            self.error(
                location,
                format!("the spec declares `{section}` but names no `region`"),
                Some("add `region: us-east-1` (or your lab's region) at the top: without it each operator's default region would decide where resources, secrets and the project lock live, and two operators could plan different changes".into()),
            );
        }
    }

    /// `agent_binary:`, when given, names a file.
    fn check_agent_binary(&mut self, agent_binary: Option<&str>) {
        if agent_binary.is_some_and(|path| path.trim().is_empty()) {
            let location = self.value_location(&["agent_binary"]);
            self.error(
                location,
                "`agent_binary` is empty".into(),
                Some("give the path of a Linux build of tether, e.g. the `tether` the wheel installs (`pip install`), or `./target/x86_64-unknown-linux-gnu/release/tether` from `scripts/build-wheel.sh`".into()),
            );
        }
    }

    fn check(mut self, raw: RawSpec) -> Result<Spec, SpecError> {
        self.check_project_and_region(&raw.project, raw.region.as_deref());
        let buckets = self.check_buckets(raw.buckets);
        let account = self.check_account(raw.account);
        let (groups, users, roles) = self.check_iam(raw.iam);
        if raw.secrets == SecretsMode::ParameterStore {
            self.check_secret_owners(&users);
        }
        let key_pairs = self.check_key_pairs(raw.key_pairs);
        let security_groups = self.check_security_groups(raw.security_groups);
        let instances = self.check_instances(raw.instances);
        let elastic_ips = self.check_elastic_ips(raw.elastic_ips, &instances);
        let jobs = self.check_jobs(raw.jobs, &instances);
        let batch = self.check_batch(raw.batch, &roles, &security_groups);
        self.check_batch_jobs(&batch, &jobs);
        let ssh = self.check_ssh(raw.ssh, &instances, &key_pairs);
        self.check_role_references(&roles, &instances, &jobs);
        self.check_job_aliases(&jobs, &instances, ssh.as_ref());
        let budget = self.check_budget(raw.budget);
        let forget = self.check_forget(&raw.forget);
        let declares_resources = [
            ("buckets", !buckets.is_empty()),
            (
                "account",
                account.alias.is_some() || account.password_policy.is_some(),
            ),
            (
                "iam",
                !groups.is_empty() || !users.is_empty() || !roles.is_empty(),
            ),
            ("key_pairs", !key_pairs.is_empty()),
            ("security_groups", !security_groups.is_empty()),
            ("instances", !instances.is_empty()),
            ("elastic_ips", !elastic_ips.is_empty()),
            (
                "batch",
                !batch.compute_environments.is_empty()
                    || !batch.job_queues.is_empty()
                    || !batch.job_definitions.is_empty(),
            ),
            ("budget", budget.is_some()),
            ("forget", !forget.is_empty()),
        ];
        self.check_region_declared(raw.region.as_deref(), &declares_resources);
        self.check_agent_binary(raw.agent_binary.as_deref());
        if !self.diagnostics.is_empty() {
            return Err(SpecError::Invalid(self.diagnostics));
        }
        Ok(Spec {
            file: self.file.to_string(),
            project: raw.project,
            region: raw.region,
            buckets,
            account,
            groups,
            users,
            roles,
            secrets: raw.secrets,
            secrets_dir: raw
                .secrets_dir
                .unwrap_or_else(|| DEFAULT_SECRETS_DIR.to_string()),
            key_pairs,
            security_groups,
            instances,
            elastic_ips,
            jobs,
            ssh,
            agent_binary: raw.agent_binary,
            batch,
            budget,
            forget,
        })
    }

    /// `forget:` entries are addresses of kinds tether can let go of, each listed once.
    /// Whether one is still declared is the planner's to say, which knows every address.
    fn check_forget(&mut self, entries: &[String]) -> BTreeMap<crate::model::Address, Location> {
        use crate::model::{Address, Kind};
        const FORGETTABLE: [Kind; 9] = [
            Kind::Bucket,
            Kind::IamGroup,
            Kind::IamUser,
            Kind::KeyPair,
            Kind::SecurityGroup,
            Kind::Instance,
            Kind::ElasticIp,
            Kind::Account,
            Kind::Budget,
        ];
        let mut forget = BTreeMap::new();
        for (index, entry) in entries.iter().enumerate() {
            let index = index.to_string();
            let location = self.value_location(&["forget", index.as_str()]);
            let address = match entry.parse::<Address>() {
                Ok(address) if address.name.is_empty() => Err(format!("`{entry}` names no resource")),
                Ok(address) if !FORGETTABLE.contains(&address.kind) => Err(format!(
                    "tether cannot let go of `{}` resources: IAM cannot move a role off the project's path, and the rest go with what they belong to",
                    address.kind.as_str()
                )),
                other => other,
            };
            match address {
                Ok(address) if forget.contains_key(&address) => {
                    self.error(location, format!("`{entry}` is listed twice"), None);
                }
                Ok(address) => {
                    forget.insert(address, location);
                }
                Err(problem) => self.error(
                    location,
                    format!("cannot forget `{entry}`: {problem}"),
                    Some("list addresses as plans show them: `instance.worker`, `bucket.my-data`, `iam_user.alice`, `account.alias`".into()),
                ),
            }
        }
        forget
    }

    fn check_tags(&mut self, resource_path: &[&str], tags: &BTreeMap<String, String>) {
        let mut path: Vec<&str> = resource_path.to_vec();
        path.push("tags");
        if tags.len() > MAX_USER_TAGS {
            let location = self.key_location(&path);
            self.error(
                location,
                format!(
                    "{} tags is too many: at most {MAX_USER_TAGS} (AWS allows 50, tether uses 3)",
                    tags.len()
                ),
                None,
            );
        }
        for (key, value) in tags {
            let mut tag_path = path.clone();
            tag_path.push(key);
            let problem = if key.is_empty() || key.chars().count() > 128 {
                Some("tag keys are 1 to 128 characters".to_string())
            } else if key.starts_with(TAG_PREFIX) {
                Some(format!(
                    "tag keys starting with `{TAG_PREFIX}` are reserved for tether"
                ))
            } else if key.to_ascii_lowercase().starts_with("aws:") {
                Some("tag keys starting with `aws:` are reserved for AWS".to_string())
            } else if value.chars().count() > 256 {
                Some(format!(
                    "the value of tag `{key}` is longer than 256 characters"
                ))
            } else {
                None
            };
            if let Some(problem) = problem {
                let location = self.key_location(&tag_path);
                self.error(location, format!("invalid tag `{key}`: {problem}"), None);
            }
        }
    }

    /// Converts the YAML (or JSON string) policy at `path` to JSON and validates it as a
    /// policy of `kind`; problems are recorded with the position of the offending node.
    /// `owner` names what the policy belongs to in messages ("bucket `lab`").
    fn check_policy(
        &mut self,
        path: &[&str],
        owner: &str,
        value: Value,
        kind: policy::PolicyKind<'_>,
    ) -> Option<Value> {
        let (document, embedded_json) = match value {
            Value::String(text) => match serde_json::from_str::<Value>(&text) {
                Ok(document) => (document, true),
                Err(error) => {
                    let location = self.value_location(path);
                    self.error(
                        location,
                        format!("the policy of {owner} is not valid JSON: {error}"),
                        Some("write the policy as YAML, or as a JSON string".into()),
                    );
                    return None;
                }
            },
            document => (document, false),
        };
        let problems = policy::validate(&document, kind);
        if problems.is_empty() {
            return Some(document);
        }
        for problem in problems {
            // Inside a JSON string there are no YAML positions: point at the string.
            let mut node_path: Vec<&str> = path.to_vec();
            if !embedded_json {
                node_path.extend(problem.path.iter().map(String::as_str));
            }
            let location = self.key_location(&node_path);
            let where_ = if problem.path.is_empty() || !embedded_json {
                String::new()
            } else {
                format!(" (at `{}`)", problem.path.join("."))
            };
            self.error(
                location,
                format!("invalid policy for {owner}{where_}: {}", problem.message),
                problem.hint,
            );
        }
        None
    }
}

fn check_project_name(project: &str) -> Result<(), String> {
    let valid_chars = project
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if project.is_empty() || project.len() > 64 || !valid_chars {
        return Err(format!(
            "invalid project name `{project}`: it must be 1-64 letters, digits, `-` or `_`"
        ));
    }
    Ok(())
}

/// Region names: `us-east-1`, `eu-central-2`, `us-gov-west-1`, `ap-southeast-3`, ...
pub fn is_region_name(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase()))
        && parts[parts.len() - 1].chars().all(|c| c.is_ascii_digit())
        && !parts[parts.len() - 1].is_empty()
}

/// S3's general purpose bucket naming rules, as AWS documents them.
pub fn check_bucket_name(name: &str) -> Result<(), String> {
    if name.len() < 3 || name.len() > 63 {
        return Err(format!(
            "it is {} characters long; names are 3 to 63",
            name.len()
        ));
    }
    if name.contains('_') {
        return Err("underscores are not allowed".into());
    }
    if name.chars().any(|c| c.is_ascii_uppercase()) {
        return Err("upper-case letters are not allowed".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '.' || *c == '-'))
    {
        return Err(format!("the character `{c}` is not allowed"));
    }
    let first = name.chars().next().unwrap_or('-');
    let last = name.chars().last().unwrap_or('-');
    if !first.is_ascii_alphanumeric() || !last.is_ascii_alphanumeric() {
        return Err("it must start and end with a letter or digit".into());
    }
    if name.contains("..") {
        return Err("two adjacent periods are not allowed".into());
    }
    if name.parse::<std::net::Ipv4Addr>().is_ok() {
        return Err("it must not be formatted like an IP address".into());
    }
    for prefix in ["xn--", "sthree-", "amzn-s3-demo-"] {
        if name.starts_with(prefix) {
            return Err(format!("the prefix `{prefix}` is reserved by AWS"));
        }
    }
    for suffix in ["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"] {
        if name.ends_with(suffix) {
            return Err(format!("the suffix `{suffix}` is reserved by AWS"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
