//! The resource kinds: one module per kind, each saying everything about its kind.
//!
//! A kind module owns its resource state (the same type desired and live, so diffing is
//! comparing values), the attributes a plan shows and compares, who owns a resource of the
//! kind, its diff rules (what forces a replacement and why, what an update or a deletion
//! does beyond its attributes), its operations in order, and how each operation is carried
//! out through [`aws::Cloud`](crate::aws::Cloud). All of that is the [`ResourceKind`] trait.
//!
//! What is common is generic over the registry at the bottom of this file (`kinds!`): it
//! generates [`ResourceState`] (the state of any resource, tagged by kind in JSON),
//! [`Operation`] (one step of any kind) and their dispatch, so the planner, the executor and
//! the renderer never name a kind. Registering a kind whose module lacks part of the trait
//! fails to compile, and so does a match that forgets a kind.
//!
//! What this layer does not know: the spec's syntax (`spec`), how a plan is made (`plan`)
//! or scheduled (`apply`, `coordinator`), and the SDK (`aws`, which it calls).
//!
//! # The contract of a kind
//! - Every operation is **idempotent**: a create of something that exists (and is the
//!   project's) succeeds, a put replaces, a delete of something gone succeeds. A change
//!   interrupted halfway is finished by running all its operations again, so re-running
//!   `apply` converges.
//! - **Absent** is no state: a reader returns no resource for what does not exist, never a
//!   state with empty fields, and "not found" errors of a delete count as already done
//!   (the `aws` layer maps them).
//! - A secret is made and stored in one operation (`iam_user`, `key_pair`), and revoked again
//!   if it cannot be stored; no operation carries a secret.

pub mod account_alias;
pub mod batch_compute_environment;
pub mod batch_job_definition;
pub mod batch_job_queue;
pub mod bucket;
pub mod budget;
pub mod elastic_ip;
pub mod iam_group;
pub mod iam_role;
pub mod iam_user;
pub mod idle_alarm;
pub mod instance;
pub mod instance_profile;
pub mod key_pair;
pub mod password_policy;
pub mod record;
pub mod secret;
pub mod security_group;
pub mod ssh_aliases;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::aws::{AwsError, Cloud, OnWait};
use crate::diagnostic::{Diagnostic, Location};
use crate::model::{
    Address, Attribute, ImageCandidate, Kind, Ownership, OwnershipRecord, PasswordPolicyState,
};
use crate::secrets;
use crate::spec::{SecretsMode, Spec};

pub use account_alias::AccountAliasState;
pub use batch_compute_environment::ComputeEnvironmentState;
pub use batch_job_definition::JobDefinitionState;
pub use batch_job_queue::JobQueueState;
pub use bucket::BucketState;
pub use budget::BudgetState;
pub use elastic_ip::ElasticIpState;
pub use iam_group::GroupState;
pub use iam_role::RoleState;
pub use iam_user::UserState;
pub use idle_alarm::IdleAlarmState;
pub use instance::InstanceState;
pub use instance_profile::ProfileState;
pub use key_pair::{KeyPairState, PrivateKeyRecord};
pub use password_policy::PasswordPolicySetting;
pub use security_group::SecurityGroupState;
pub use ssh_aliases::SshConfigState;

/// Everything about one kind of resource. Implemented by a unit type in the kind's module
/// and registered once in `kinds!`; the methods with a default are rules most kinds lack.
pub trait ResourceKind {
    /// The kind in addresses (`bucket.name`).
    const KIND: Kind;
    /// The comparable state, desired and live alike. Fields that are live-only facts (ids,
    /// addresses, records) are skipped in JSON when absent.
    type State: Clone + std::fmt::Debug + PartialEq + Serialize + for<'de> Deserialize<'de>;
    /// The kind's operations: each one call (or one idempotent sequence of calls) to AWS.
    type Op: Clone + std::fmt::Debug + PartialEq;

    /// The desired state of each resource of the kind that `spec` declares: tether's
    /// ownership tags and derived settings included, nothing of this operator's machine
    /// but what `env.home` expands in local paths. Pure.
    fn desired(spec: &Spec, env: &SpecContext<'_>) -> Vec<DesiredResource>;

    /// Set for a kind that must act when something it depends on is replaced (an Elastic IP
    /// is associated with its instance's replacement): why its no-op becomes an update.
    const FOLLOWS_REPLACEMENT: Option<&'static str> = None;

    /// Settles in a desired state what only the account knows (an image lookup's image,
    /// the addresses in the alias block), before the diff; what cannot be settled is
    /// returned as problems at the spec line. Pure: `settling` holds what was read.
    fn settle(
        wanted: &mut Self::State,
        declared: &DesiredResource,
        settling: &Settling<'_>,
    ) -> Vec<Diagnostic> {
        let _ = (wanted, declared, settling);
        Vec::new()
    }

    /// The attributes a plan compares, in display order. `Value::Null` means absent.
    fn attributes(state: &Self::State) -> Vec<Attribute>;

    /// Who owns the resource, judged from the account alone.
    fn ownership(state: &Self::State, project: &str) -> Ownership;

    /// The operations that create `after`, in order. `replacing` is the state a replacement
    /// deletes first (an instance launches its next generation).
    fn create(
        name: &str,
        after: &Self::State,
        replacing: Option<&Self::State>,
        context: &Context,
    ) -> Vec<Self::Op>;

    /// The operations that take `before` to `after` in place, in order; none when equal.
    fn update(
        name: &str,
        before: &Self::State,
        after: &Self::State,
        intent: &Intent,
        context: &Context,
    ) -> Vec<Self::Op>;

    /// The operations that delete `before`, in order.
    fn delete(
        name: &str,
        before: &Self::State,
        intent: &Intent,
        context: &Context,
    ) -> Vec<Self::Op>;

    /// A present-participle description of an operation, for progress lines.
    fn describe(op: &Self::Op) -> &'static str;

    /// Carries out one operation. Must be safe to repeat (see the module's contract).
    fn run(op: &Self::Op, step: &Step<'_>) -> impl Future<Output = Result<(), StepFailure>> + Send;

    /// What to do about a failed AWS call of `op`, where tether knows better than AWS.
    fn hint(op: &Self::Op, error: &AwsError) -> Option<String> {
        let _ = op;
        error.hint()
    }

    /// The attributes whose change from `before` to `after` cannot be made in place
    /// although the attribute in general can (a volume that shrinks).
    fn forced_by_change(before: &Self::State, after: &Self::State) -> Vec<&'static str> {
        let _ = (before, after);
        Vec::new()
    }

    /// Why changing `attribute` means a replacement, where that is not obvious.
    fn forcing_reason(attribute: &str) -> Option<&'static str> {
        let _ = attribute;
        None
    }

    /// Why an in-place update does more than its attributes say.
    fn update_note(before: &Self::State, after: &Self::State) -> Option<String> {
        let _ = (before, after);
        None
    }

    /// What deleting the resource does beyond the deletion itself: whether it empties the
    /// resource first (a bucket, on evidence), and what the plan should say.
    fn deletion(state: &Self::State, empty_tagged_buckets: bool) -> Deletion {
        let _ = (state, empty_tagged_buckets);
        Deletion::default()
    }

    /// The settings a change makes weaker, one line each (`after` `None`: deleted).
    fn weakens(before: &Self::State, after: Option<&Self::State>) -> Vec<String> {
        let _ = (before, after);
        Vec::new()
    }

    /// Whether the resource's secret was made by a run that died before storing it, so that
    /// nobody holds it, and what the plan does about it. Judged from the account alone,
    /// never from this operator's files.
    fn unheld_secret(state: &Self::State) -> Option<UnheldSecret> {
        let _ = state;
        None
    }

    /// The state as if its secret did not exist, so that a diff issues it anew.
    fn without_secret(state: &Self::State) -> Self::State {
        state.clone()
    }

    /// The managed policy ARNs the resource attaches, which must exist.
    fn policy_arns(state: &Self::State) -> Vec<&str> {
        let _ = state;
        Vec::new()
    }

    /// The project's record of how it came to own a resource tags cannot prove (an account
    /// setting); `None` for kinds owned by tags or paths.
    fn setting_record(state: &Self::State) -> Option<OwnershipRecord> {
        let _ = state;
        None
    }

    /// What the account keeps once the project lets the resource go (`forget`): the same
    /// resource without tether's marks of ownership (its tags, its IAM path, its record),
    /// nothing else changed; or why the kind cannot be let go of.
    fn disowned(state: &Self::State) -> Result<Self::State, &'static str> {
        let _ = state;
        Err("tether makes it as part of another resource, and it goes with that one")
    }

    /// The operations that take tether's marks off `before`, leaving `after` (its
    /// `disowned`): by default the update between them. Records go before the marks a
    /// reader would trust them with, so that a run killed halfway leaves the resource
    /// still the project's, and `forget` run again finishes.
    fn forget(
        name: &str,
        before: &Self::State,
        after: &Self::State,
        context: &Context,
    ) -> Vec<Self::Op> {
        Self::update(name, before, after, &Intent::default(), context)
    }
}

/// What desired states are made for besides the spec: the project, the account's region
/// (a policy's partition), and the home that expands `~` in local paths (the alias block).
#[derive(Clone, Copy, Debug)]
pub struct SpecContext<'a> {
    pub project: &'a str,
    pub region: &'a str,
    pub home: Option<&'a Path>,
}

/// What the planner has read when it settles desired states: every desired resource (the
/// alias block looks at the instances and addresses declared) and the live state.
#[derive(Clone, Copy, Debug)]
pub struct Settling<'a> {
    pub project: &'a str,
    pub desired: &'a [DesiredResource],
    pub live: &'a LiveState,
}

/// What the planner decided about a change beyond its action and states.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Intent {
    /// The change adopts the resource: it becomes the project's (record first).
    pub adopt: bool,
    /// Its secret is held by nobody: issue it anew although the account has one.
    pub reissue_secret: bool,
    /// Deleting it empties it first (a bucket, on the project's evidence).
    pub empty_bucket: bool,
}

/// A secret nobody holds (its run died before storing it), and how a plan makes it anew.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnheldSecret {
    /// Why the secret is issued again in place (`without_secret` is what the diff sees).
    pub reason: &'static str,
    /// Set when the secret cannot be issued again in place: why the resource is replaced.
    pub replace: Option<&'static str>,
}

/// What deleting a resource does beyond the deletion itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Deletion {
    /// Its contents go first (a bucket).
    pub empties: bool,
    /// What the plan says about it.
    pub note: Option<String>,
}

/// What operations need beyond the change itself: where secrets go, and how long a
/// generated password must be.
#[derive(Clone, Debug)]
pub struct Context {
    pub project: String,
    pub secrets: SecretsMode,
    /// The plan's `secrets_dir` made absolute for the operator who applies.
    pub secrets_dir: PathBuf,
    /// The applying operator's home, for `~` in the spec's paths.
    pub home: Option<PathBuf>,
    pub minimum_password_length: u16,
}

impl Context {
    /// The operation that records how the project came to own `name` (an account setting
    /// or a bucket) in the parameter `parameter`, with the hashes of the values it wrote.
    fn record(
        &self,
        parameter: String,
        name: &str,
        record: OwnershipRecord,
        values: Vec<String>,
    ) -> record::RecordOp {
        record::RecordOp::Put {
            parameter,
            owner: name.to_string(),
            record,
            values,
        }
    }
}

/// What running an operation needs: the account, the project, and a callback for long waits.
pub struct Step<'a> {
    pub cloud: &'a Cloud,
    pub project: &'a str,
    pub on_wait: OnWait<'a>,
}

/// A failed step: what went wrong, and what to do about it.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct StepError {
    #[source]
    pub error: StepFailure,
    pub hint: Option<String>,
}

/// What went wrong in a step.
#[derive(Debug, thiserror::Error)]
pub enum StepFailure {
    /// An AWS call failed.
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// A secret could not be written to its file; the secret was revoked again (or never
    /// made), so no secret exists that nobody holds.
    #[error("cannot write the secret file `{path}`: {source}; {undone}")]
    SecretFile {
        path: String,
        #[source]
        source: std::io::Error,
        undone: &'static str,
    },
    /// A secret could not be stored in Parameter Store; the secret was revoked again (or
    /// never made), so no secret exists that nobody holds.
    #[error("cannot store the secret in Parameter Store: {source}; {undone}")]
    SecretStore {
        #[source]
        source: AwsError,
        undone: &'static str,
    },
    /// A key pair's private key file exists already, and tether did not write it.
    #[error("refusing to overwrite `{path}`, which tether did not write; no key pair was created")]
    KeyFileExists { path: String },
    /// The SSH config's tether markers are unbalanced or repeated: writing could take the
    /// user's own lines for the block, so nothing was written.
    #[error("refusing to write `{path}`: {problem}; nothing was written")]
    ConfigMarkers { path: String, problem: String },
    /// What a create found proves it did not make the resource (it existed before the
    /// call, or is not new): it is someone else's, and nothing of it was changed.
    #[error("refusing to take over {resource}: {found}; nothing of it was changed")]
    NotCreated { resource: String, found: String },
    /// A local file the operation needs cannot be read.
    #[error("cannot read `{path}`: {source}")]
    ReadFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl StepFailure {
    /// What to do about a failure that is not an AWS error (those are the kind's to hint).
    fn hint(&self) -> Option<String> {
        match self {
            StepFailure::Aws(_) => None,
            StepFailure::SecretFile { path, .. } => Some(format!(
                "make `{}` writable, then apply again",
                std::path::Path::new(path)
                    .parent()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            )),
            StepFailure::KeyFileExists { .. } => {
                Some("move the file away, or set `private_key_file` to a new path".into())
            }
            StepFailure::SecretStore { source, .. } => Some(source.hint().unwrap_or_else(|| {
                "check that the credentials may call ssm:PutParameter with the account's aws/ssm key, or set `secrets: local`".into()
            })),
            StepFailure::ReadFile { .. } => Some("check `public_key_file` in the spec".into()),
            StepFailure::NotCreated { .. } => Some("run `tether plan` again to see it; declare `adopt: true` under it if it should be the project's, or choose another name".into()),
            StepFailure::ConfigMarkers { .. } => Some(
                "fix the markers by hand (one `# BEGIN tether <project>` line, then one `# END tether <project>` line), then apply again".into(),
            ),
        }
    }
}

/// A resource as the spec wants it.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredResource {
    pub address: Address,
    pub state: ResourceState,
    /// Take over an existing resource that nobody owns.
    pub adopt: bool,
    /// Resources that must exist before this one.
    pub depends_on: Vec<Address>,
    /// Where the spec declares it.
    pub location: Location,
}

/// A resource as found in the account.
#[derive(Clone, Debug, PartialEq)]
pub struct LiveResource {
    pub address: Address,
    pub state: ResourceState,
    /// Resources this one refers to in the account (deleted after it).
    pub depends_on: Vec<Address>,
}

/// What was read from the account: owned resources and those the spec names.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LiveState {
    pub resources: BTreeMap<Address, LiveResource>,
    /// Things the reader skipped and the user should know about (a bucket it may not read).
    pub warnings: Vec<String>,
    /// Managed policy ARNs the desired state names that do not exist in the account.
    pub missing_policies: std::collections::BTreeSet<String>,
    /// The images each of the spec's image lookups matched, by `ImageLookup::key`.
    pub images: BTreeMap<String, Vec<ImageCandidate>>,
}

/// Generates, from the list of kinds, the enums over all kinds and their dispatch. Each
/// line registers one kind: its variant name (also its `kind` in JSON, snake_case) and the
/// type implementing [`ResourceKind`].
macro_rules! kinds {
    ($($variant:ident => $kind:ty,)*) => {
        /// The state of any resource, tagged by kind in JSON.
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "kind", rename_all = "snake_case")]
        pub enum ResourceState {
            $($variant(<$kind as ResourceKind>::State),)*
        }

        /// One step of a change, of any kind.
        #[derive(Clone, Debug, PartialEq)]
        pub enum Operation {
            $($variant(<$kind as ResourceKind>::Op),)*
        }

        /// The desired state of every resource in `spec`, for an account in `region`, kind
        /// by kind in the registry's order. `home` expands `~` in the spec's local paths.
        pub fn desired_resources(
            spec: &Spec,
            region: &str,
            home: Option<&Path>,
        ) -> Vec<DesiredResource> {
            let env = SpecContext {
                project: &spec.project,
                region,
                home,
            };
            let mut desired = Vec::new();
            $(desired.extend(<$kind>::desired(spec, &env));)*
            desired
        }

        /// Settles what only the account knows in `wanted` (see [`ResourceKind::settle`]).
        pub fn settle(wanted: &mut DesiredResource, settling: &Settling<'_>) -> Vec<Diagnostic> {
            let declared = wanted.clone();
            match &mut wanted.state {
                $(ResourceState::$variant(state) => <$kind>::settle(state, &declared, settling),)*
            }
        }

        impl ResourceState {
            /// The kind in addresses.
            pub fn kind(&self) -> Kind {
                match self {
                    $(ResourceState::$variant(_) => <$kind as ResourceKind>::KIND,)*
                }
            }

            /// The attributes a plan compares, in display order.
            pub fn attributes(&self) -> Vec<Attribute> {
                match self {
                    $(ResourceState::$variant(state) => <$kind>::attributes(state),)*
                }
            }

            /// Who owns the resource: by tags, by IAM path, or by the project's record.
            pub fn ownership(&self, project: &str) -> Ownership {
                match self {
                    $(ResourceState::$variant(state) => <$kind>::ownership(state, project),)*
                }
            }

            /// The managed policy ARNs the resource attaches.
            pub fn policy_arns(&self) -> Vec<&str> {
                match self {
                    $(ResourceState::$variant(state) => <$kind>::policy_arns(state),)*
                }
            }

            /// Whether the resource's secret is held by nobody (see [`ResourceKind`]).
            pub fn unheld_secret(&self) -> Option<UnheldSecret> {
                match self {
                    $(ResourceState::$variant(state) => <$kind>::unheld_secret(state),)*
                }
            }

            /// The state as if its secret did not exist.
            pub fn without_secret(&self) -> ResourceState {
                match self {
                    $(ResourceState::$variant(state) => {
                        ResourceState::$variant(<$kind>::without_secret(state))
                    })*
                }
            }

            /// What deleting the resource does beyond the deletion itself.
            pub fn deletion(&self, empty_tagged_buckets: bool) -> Deletion {
                match self {
                    $(ResourceState::$variant(state) => {
                        <$kind>::deletion(state, empty_tagged_buckets)
                    })*
                }
            }

            /// The project's record of an account setting, if any.
            pub fn setting_record(&self) -> Option<OwnershipRecord> {
                match self {
                    $(ResourceState::$variant(state) => <$kind>::setting_record(state),)*
                }
            }

            /// The resource without tether's marks of ownership, or why it cannot be let go.
            pub fn disowned(&self) -> Result<ResourceState, &'static str> {
                match self {
                    $(ResourceState::$variant(state) => {
                        <$kind>::disowned(state).map(ResourceState::$variant)
                    })*
                }
            }

            /// Why a change to this resource follows the replacement of one it depends on.
            pub fn follows_replacement(&self) -> Option<&'static str> {
                match self {
                    $(ResourceState::$variant(_) => <$kind as ResourceKind>::FOLLOWS_REPLACEMENT,)*
                }
            }

            /// Why changing `attribute` of this kind means a replacement.
            pub fn forcing_reason(&self, attribute: &str) -> Option<&'static str> {
                match self {
                    $(ResourceState::$variant(_) => <$kind>::forcing_reason(attribute),)*
                }
            }
        }

        /// The attributes whose change from `before` to `after` cannot be made in place.
        pub fn forced_by_change(before: &ResourceState, after: &ResourceState) -> Vec<&'static str> {
            match (before, after) {
                $((ResourceState::$variant(before), ResourceState::$variant(after)) => {
                    <$kind>::forced_by_change(before, after)
                })*
                _ => Vec::new(),
            }
        }

        /// Why an in-place update does more than its attributes say, for the plan to show.
        pub fn update_note(before: &ResourceState, after: &ResourceState) -> Option<String> {
            match (before, after) {
                $((ResourceState::$variant(before), ResourceState::$variant(after)) => {
                    <$kind>::update_note(before, after)
                })*
                _ => None,
            }
        }

        /// What a change from `before` to `after` (`None`: deleted) makes weaker.
        pub fn weakens(before: Option<&ResourceState>, after: Option<&ResourceState>) -> Vec<String> {
            match (before, after) {
                $((Some(ResourceState::$variant(before)), None) => <$kind>::weakens(before, None),
                (Some(ResourceState::$variant(before)), Some(ResourceState::$variant(after))) => {
                    <$kind>::weakens(before, Some(after))
                })*
                _ => Vec::new(),
            }
        }

        /// The operations that create `after` (replacing `replacing`, of the same kind).
        pub fn create(
            name: &str,
            after: &ResourceState,
            replacing: Option<&ResourceState>,
            context: &Context,
        ) -> Vec<Operation> {
            match after {
                $(ResourceState::$variant(after) => {
                    let replacing = match replacing {
                        Some(ResourceState::$variant(before)) => Some(before),
                        _ => None,
                    };
                    <$kind>::create(name, after, replacing, context)
                        .into_iter()
                        .map(Operation::$variant)
                        .collect()
                })*
            }
        }

        /// The operations that take `before` to `after` in place (none across kinds).
        pub fn update(
            name: &str,
            before: &ResourceState,
            after: &ResourceState,
            intent: &Intent,
            context: &Context,
        ) -> Vec<Operation> {
            match (before, after) {
                $((ResourceState::$variant(before), ResourceState::$variant(after)) => {
                    <$kind>::update(name, before, after, intent, context)
                        .into_iter()
                        .map(Operation::$variant)
                        .collect()
                })*
                _ => Vec::new(),
            }
        }

        /// The operations that let `before` go, leaving `after` (see [`ResourceKind::forget`]).
        pub fn forget(
            name: &str,
            before: &ResourceState,
            after: &ResourceState,
            context: &Context,
        ) -> Vec<Operation> {
            match (before, after) {
                $((ResourceState::$variant(before), ResourceState::$variant(after)) => {
                    <$kind>::forget(name, before, after, context)
                        .into_iter()
                        .map(Operation::$variant)
                        .collect()
                })*
                _ => Vec::new(),
            }
        }

        /// The operations that delete `before`.
        pub fn delete(
            name: &str,
            before: &ResourceState,
            intent: &Intent,
            context: &Context,
        ) -> Vec<Operation> {
            match before {
                $(ResourceState::$variant(before) => {
                    <$kind>::delete(name, before, intent, context)
                        .into_iter()
                        .map(Operation::$variant)
                        .collect()
                })*
            }
        }

        impl Operation {
            /// A present-participle description for progress lines.
            pub fn describe(&self) -> &'static str {
                match self {
                    $(Operation::$variant(op) => <$kind>::describe(op),)*
                }
            }

            /// Carries out the operation; on failure, says what to do about it.
            pub async fn run(&self, step: &Step<'_>) -> Result<(), StepError> {
                let result = match self {
                    $(Operation::$variant(op) => <$kind>::run(op, step).await,)*
                };
                result.map_err(|error| {
                    let hint = match &error {
                        StepFailure::Aws(aws) => match self {
                            $(Operation::$variant(op) => <$kind>::hint(op, aws),)*
                        },
                        other => other.hint(),
                    };
                    StepError { error, hint }
                })
            }
        }
    };
}

// The registry: one line per kind, naming its variant (its `kind` in JSON) and its type.
// The order is that of `desired_resources` only; plans sort by address.
kinds! {
    Bucket => bucket::Bucket,
    IamGroup => iam_group::IamGroup,
    IamUser => iam_user::IamUser,
    IamRole => iam_role::IamRole,
    InstanceProfile => instance_profile::InstanceProfile,
    KeyPair => key_pair::KeyPair,
    SecurityGroup => security_group::SecurityGroup,
    Instance => instance::Instance,
    ElasticIp => elastic_ip::ElasticIp,
    IdleAlarm => idle_alarm::IdleAlarm,
    BatchComputeEnvironment => batch_compute_environment::BatchComputeEnvironment,
    BatchJobQueue => batch_job_queue::BatchJobQueue,
    BatchJobDefinition => batch_job_definition::BatchJobDefinition,
    SshConfig => ssh_aliases::SshAliases,
    AccountAlias => account_alias::AccountAlias,
    PasswordPolicy => password_policy::PasswordPolicy,
    Budget => budget::Budget,
}

/// How an identity's (a user's, a role's) policies change from `before` to `after`:
/// managed policies to attach and detach, inline policies to put (new or changed) and to
/// delete. Callers add grants before they take old ones away, so that the identity never
/// briefly has neither.
pub(crate) struct PolicyChanges<'a> {
    pub attach: Vec<&'a String>,
    pub put: Vec<(&'a String, &'a serde_json::Value)>,
    pub detach: Vec<&'a String>,
    pub delete: Vec<&'a String>,
}

pub(crate) fn policy_changes<'a>(
    (before_policies, before_inline): (
        &'a std::collections::BTreeSet<String>,
        &'a BTreeMap<String, serde_json::Value>,
    ),
    (after_policies, after_inline): (
        &'a std::collections::BTreeSet<String>,
        &'a BTreeMap<String, serde_json::Value>,
    ),
) -> PolicyChanges<'a> {
    PolicyChanges {
        attach: after_policies.difference(before_policies).collect(),
        put: after_inline
            .iter()
            .filter(|(name, document)| before_inline.get(*name) != Some(*document))
            .collect(),
        detach: before_policies.difference(after_policies).collect(),
        delete: before_inline
            .keys()
            .filter(|name| !after_inline.contains_key(*name))
            .collect(),
    }
}

/// The names of the tags `before` has and `after` lacks, for tag updates that remove.
pub(crate) fn removed_keys(
    before: &BTreeMap<String, String>,
    after: &BTreeMap<String, String>,
) -> Vec<String> {
    before
        .keys()
        .filter(|k| !after.contains_key(*k))
        .cloned()
        .collect()
}

/// The password policy a plan sets, if any: generated console passwords must meet it.
pub fn planned_password_policy<'a>(
    states: impl IntoIterator<Item = &'a ResourceState>,
) -> Option<&'a PasswordPolicyState> {
    states.into_iter().find_map(|state| match state {
        ResourceState::PasswordPolicy(setting) => Some(&setting.policy),
        _ => None,
    })
}

/// `secrets::expand_home` with the context's home.
fn expand(path: &str, context: &Context) -> PathBuf {
    secrets::expand_home(path, context.home.as_deref())
}

/// An error of tether's own about an AWS operation (what AWS would answer, had tether not
/// stopped first), reported like one of AWS's.
pub(crate) fn refused(operation: &'static str, resource: String, message: String) -> StepFailure {
    StepFailure::Aws(AwsError {
        operation,
        resource,
        code: None,
        message,
        kind: crate::aws::AwsErrorKind::Service,
    })
}
