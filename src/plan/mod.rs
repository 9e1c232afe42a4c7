//! The planner: diff the desired state against the live state and say exactly what would
//! change. Pure: no I/O, no clock, no AWS types.
//!
//! A plan is a list of changes, one per resource, each with an action (create, update in
//! place, replace, delete, adopt, no-op), the attribute-level diff, and the full `before` and
//! `after` states. `before` is what the plan saw; `apply` of a saved plan re-reads the
//! account and refuses if anything touched differs from it. The plan also carries the
//! dependencies between changes that the executor must respect.
//!
//! Ownership rules live here: tether touches only resources tagged with the project, adopts
//! untagged ones only when the spec says `adopt: true`, and never touches another project's.

mod desired;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::diagnostic::Diagnostic;
use crate::model::{
    forced_by_change, forcing_reason, update_note, Address, AttributeFormat, DesiredResource, Kind,
    LiveState, Ownership, OwnershipRecord, PasswordPolicyState, ResourceState,
};
use crate::spec::SecretsMode;
pub use desired::desired_resources;

/// The version of the plan's JSON format (`tether plan --json`, saved plans). Version 2
/// binds a plan to its account and says where secrets go instead of a local directory.
pub const FORMAT_VERSION: u32 = 2;

/// What a plan is made for: the project, and the account and region that were read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub project: String,
    /// The account id of the credentials that read the account (STS GetCallerIdentity).
    pub account_id: String,
    pub region: String,
    /// Where generated secrets are kept.
    pub secrets: SecretsMode,
    /// The spec's `secrets_dir` as written (`~` unexpanded), for `secrets: local`.
    pub secrets_dir: String,
    /// `--empty-tagged-buckets`: empty buckets tagged `force_destroy` even without the
    /// project's record of creating them.
    pub empty_tagged_buckets: bool,
}

/// What a plan is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Make the account match the spec.
    Apply,
    /// Delete everything the project owns.
    Destroy,
}

/// A plan: every resource the spec or the account knows, and what to do with it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub format_version: u32,
    pub project: String,
    /// The account the plan was made against; a saved plan is applied to no other.
    pub account_id: String,
    pub region: String,
    pub mode: Mode,
    /// Where generated secrets are kept; secrets themselves never enter a plan.
    pub secrets: SecretsMode,
    /// Where `secrets: local` writes them, as the spec writes it (`~` unexpanded, so that
    /// every operator's plan is the same).
    pub secrets_dir: String,
    /// The account's changes, sorted by address; no-ops included. The same for every
    /// operator who plans one spec against one account.
    pub changes: Vec<Change>,
    /// Changes on this operator's machine (the SSH alias block), applied with the spec but
    /// not part of the shared plan: not in its JSON, not saved, not counted by
    /// `--detailed-exitcode`.
    #[serde(skip)]
    pub local_changes: Vec<Change>,
}

/// What happens to one resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Create,
    Update,
    Replace,
    Delete,
    /// Tag an existing, unowned resource as the project's, then manage it.
    Adopt,
    NoOp,
}

/// One resource's change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub address: Address,
    pub action: Action,
    /// Why a replace or delete happens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The attributes that differ (all set attributes for a create or delete).
    pub attributes: Vec<AttributeChange>,
    /// The live state the plan saw; `None` when the resource does not exist.
    pub before: Option<ResourceState>,
    /// The state after the change; `None` for a delete.
    pub after: Option<ResourceState>,
    /// Changes that must finish before this one starts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<Address>,
    /// The resource's secret (an access key) is held by nobody: issue it anew even though
    /// the account has one.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reissue_secret: bool,
    /// The settings this change makes weaker (a password policy's), one line each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub weakens: Vec<String>,
    /// Deleting this bucket empties it first: it is tagged `force_destroy` and the project's
    /// record shows it created it (or the command line said `--empty-tagged-buckets`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_bucket: bool,
}

/// One attribute's difference; `Value::Null` stands for "absent".
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttributeChange {
    pub name: String,
    pub before: Value,
    pub after: Value,
    pub format: AttributeFormat,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub forces_replacement: bool,
}

/// Counts of changes by action.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub adopt: usize,
    pub create: usize,
    pub update: usize,
    pub replace: usize,
    pub delete: usize,
    pub no_op: usize,
}

impl Plan {
    /// Counts of the account's changes.
    pub fn summary(&self) -> Summary {
        let mut summary = Summary::default();
        for change in &self.changes {
            match change.action {
                Action::Adopt => summary.adopt += 1,
                Action::Create => summary.create += 1,
                Action::Update => summary.update += 1,
                Action::Replace => summary.replace += 1,
                Action::Delete => summary.delete += 1,
                Action::NoOp => summary.no_op += 1,
            }
        }
        summary
    }

    /// Whether applying the plan would change anything, in the account or on this machine.
    pub fn has_changes(&self) -> bool {
        self.actionable().next().is_some()
    }

    /// Whether applying the plan would change the account.
    pub fn has_account_changes(&self) -> bool {
        self.changes.iter().any(|c| c.action != Action::NoOp)
    }

    /// Whether applying the plan would change this machine's files.
    pub fn has_local_changes(&self) -> bool {
        self.local_changes.iter().any(|c| c.action != Action::NoOp)
    }

    /// The changes that do something, the account's and this machine's.
    pub fn actionable(&self) -> impl Iterator<Item = &Change> {
        self.changes
            .iter()
            .chain(&self.local_changes)
            .filter(|c| c.action != Action::NoOp)
    }

    /// The change of the resource at `address`.
    pub fn change(&self, address: &Address) -> Option<&Change> {
        self.changes
            .iter()
            .chain(&self.local_changes)
            .find(|c| &c.address == address)
    }
}

/// Why no plan could be made.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// Resources the spec names exist in the account but belong to someone else.
    #[error("{}", render_conflicts(.0))]
    NotOwned(Vec<Diagnostic>),
}

fn render_conflicts(conflicts: &[Diagnostic]) -> String {
    conflicts
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("\n\nerror: ")
}

/// Diffs `desired` against `live` for the target's project. In `Mode::Destroy`, every owned
/// resource is deleted, and of the account's singletons those the project created.
pub fn plan(
    target: &Target,
    mode: Mode,
    desired: &[DesiredResource],
    live: &LiveState,
) -> Result<Plan, PlanError> {
    let project = target.project.as_str();
    let mut conflicts = Vec::new();
    // Destroying needs no image: every instance goes.
    let desired = match mode {
        Mode::Apply => resolve(project, desired, live, &mut conflicts),
        Mode::Destroy => desired.to_vec(),
    };
    let declared: BTreeMap<&Address, &DesiredResource> =
        desired.iter().map(|d| (&d.address, d)).collect();
    let wanted: BTreeMap<&Address, &DesiredResource> = match mode {
        Mode::Apply => declared.clone(),
        Mode::Destroy => BTreeMap::new(),
    };
    let mut changes: BTreeMap<Address, Change> = BTreeMap::new();

    for (address, wanted) in &wanted {
        for reference in &wanted.depends_on {
            let known = declared.contains_key(reference) || live.resources.contains_key(reference);
            if !known && matches!(reference.kind, Kind::KeyPair | Kind::SecurityGroup) {
                conflicts.push(
                    Diagnostic::new(
                        format!(
                            "{address} refers to {reference}, which is neither in the spec nor in the account"
                        ),
                        Some(wanted.location.clone()),
                    )
                    .with_hint(format!(
                        "declare `{}` under `{}s`, or check the name",
                        reference.name,
                        reference.kind.as_str()
                    )),
                );
            }
        }
        for arn in wanted.state.policy_arns() {
            if live.missing_policies.contains(arn) {
                conflicts.push(
                    Diagnostic::new(
                        format!("{address} attaches `{arn}`, which does not exist in the account"),
                        Some(wanted.location.clone()),
                    )
                    .with_hint("check the policy's name and path; AWS managed policies live under `arn:aws:iam::aws:policy/`"),
                );
            }
        }
        let change = match live.resources.get(*address) {
            None => Change {
                address: (*address).clone(),
                action: Action::Create,
                reason: None,
                attributes: diff_attributes(None, Some(&wanted.state)),
                before: None,
                after: Some(wanted.state.clone()),
                depends_on: wanted.depends_on.clone(),
                reissue_secret: false,
                weakens: Vec::new(),
                empty_bucket: false,
            },
            Some(found) => match found.state.ownership(project) {
                Ownership::Owned => {
                    let unheld = found.state.secret_unheld();
                    let before = if unheld {
                        found.state.without_secret()
                    } else {
                        found.state.clone()
                    };
                    let mut attributes = diff_attributes(Some(&before), Some(&wanted.state));
                    let forced_here = forced_by_change(&before, &wanted.state);
                    for attribute in &mut attributes {
                        if forced_here.contains(&attribute.name.as_str()) {
                            attribute.forces_replacement = true;
                        }
                    }
                    let forcing: Vec<&str> = attributes
                        .iter()
                        .filter(|a| a.forces_replacement)
                        .map(|a| a.name.as_str())
                        .collect();
                    let (action, reason) = if unheld && address.kind == Kind::KeyPair {
                        (
                            Action::Replace,
                            Some("a run that created it died before storing its private key, so nobody holds it, and AWS never shows a private key twice".to_string()),
                        )
                    } else if attributes.is_empty() {
                        (Action::NoOp, None)
                    } else if unheld {
                        (
                            Action::Update,
                            Some(
                                "a run that issued its access key died before storing it, so nobody holds it"
                                    .to_string(),
                            ),
                        )
                    } else if forcing.is_empty() {
                        (Action::Update, update_note(&before, &wanted.state))
                    } else {
                        let because: BTreeSet<&str> =
                            forcing.iter().filter_map(|a| forcing_reason(a)).collect();
                        let because = because.into_iter().collect::<Vec<_>>().join("; ");
                        let reason = format!("{} cannot change in place", forcing.join(", "));
                        (
                            Action::Replace,
                            Some(if because.is_empty() {
                                reason
                            } else {
                                format!("{reason}: {because}")
                            }),
                        )
                    };
                    Change {
                        address: (*address).clone(),
                        action,
                        reason,
                        attributes,
                        before: Some(found.state.clone()),
                        after: Some(wanted.state.clone()),
                        depends_on: wanted.depends_on.clone(),
                        reissue_secret: unheld && action == Action::Update,
                        weakens: weakening(Some(&found.state), Some(&wanted.state)),
                        empty_bucket: false,
                    }
                }
                Ownership::Unowned if wanted.adopt => Change {
                    address: (*address).clone(),
                    action: Action::Adopt,
                    reason: None,
                    attributes: diff_attributes(Some(&found.state), Some(&wanted.state)),
                    before: Some(found.state.clone()),
                    after: Some(wanted.state.clone()),
                    depends_on: wanted.depends_on.clone(),
                    reissue_secret: false,
                    weakens: weakening(Some(&found.state), Some(&wanted.state)),
                    empty_bucket: false,
                },
                Ownership::Unowned if address.kind.is_singleton() => {
                    conflicts.push(
                        Diagnostic::new(
                            format!("{address} is already set in the account, and not by project `{project}`"),
                            Some(wanted.location.clone()),
                        )
                        .with_hint(
                            "someone else set it (a security team, another tool): add `adopt: true` to manage it from this spec (destroy then leaves it as it is), or remove it from the spec",
                        ),
                    );
                    continue;
                }
                Ownership::Unowned => {
                    conflicts.push(
                        Diagnostic::new(
                            format!("{address} exists but is not owned by project `{project}`"),
                            Some(wanted.location.clone()),
                        )
                        .with_hint(
                            "tether never touches what it does not own: add `adopt: true` to take it over, or choose another name",
                        ),
                    );
                    continue;
                }
                Ownership::OtherProject(other) => {
                    conflicts.push(
                        Diagnostic::new(
                            format!("{address} belongs to tether project `{other}`, not `{project}`"),
                            Some(wanted.location.clone()),
                        )
                        .with_hint(format!(
                            "a resource has one owner: remove it from project `{other}`'s spec first, or choose another name"
                        )),
                    );
                    continue;
                }
            },
        };
        changes.insert((*address).clone(), change);
    }

    for (address, found) in &live.resources {
        let record = match &found.state {
            ResourceState::AccountAlias { record, .. }
            | ResourceState::PasswordPolicy { record, .. } => *record,
            _ => None,
        };
        if mode == Mode::Destroy && record == Some(OwnershipRecord::Adopted) {
            changes.insert(
                address.clone(),
                Change {
                    address: address.clone(),
                    action: Action::NoOp,
                    reason: Some(format!(
                        "adopted, not created by project `{project}`: left as it is"
                    )),
                    attributes: Vec::new(),
                    before: Some(found.state.clone()),
                    after: Some(found.state.clone()),
                    depends_on: Vec::new(),
                    reissue_secret: false,
                    weakens: Vec::new(),
                    empty_bucket: false,
                },
            );
            continue;
        }
        let deletable = if address.kind.is_singleton() {
            // Singletons go only with `destroy`, only those the spec declares, and only
            // those the project created.
            mode == Mode::Destroy
                && declared.contains_key(address)
                && record == Some(OwnershipRecord::Created)
        } else {
            !wanted.contains_key(address) && found.state.ownership(project) == Ownership::Owned
        };
        if !deletable {
            continue;
        }
        let reason = match mode {
            Mode::Apply => "no longer in the spec",
            Mode::Destroy => "destroy",
        };
        let (empty_bucket, bucket_note) =
            bucket_emptying(&found.state, target.empty_tagged_buckets);
        let reason = match bucket_note.or_else(|| found.state.deletion_note()) {
            Some(note) => format!("{reason}; {note}"),
            None => reason.to_string(),
        };
        changes.insert(
            address.clone(),
            Change {
                address: address.clone(),
                action: Action::Delete,
                reason: Some(reason),
                attributes: diff_attributes(Some(&found.state), None),
                before: Some(found.state.clone()),
                after: None,
                depends_on: Vec::new(),
                reissue_secret: false,
                weakens: weakening(Some(&found.state), None),
                empty_bucket,
            },
        );
    }

    // An Elastic IP whose instance is replaced must follow it to the new one, although its
    // own attributes (the instance's name) do not change.
    let replaced: BTreeSet<Address> = changes
        .values()
        .filter(|c| c.action == Action::Replace)
        .map(|c| c.address.clone())
        .collect();
    for change in changes.values_mut() {
        if change.action == Action::NoOp
            && change.address.kind == Kind::ElasticIp
            && change.depends_on.iter().any(|d| replaced.contains(d))
        {
            change.action = Action::Update;
            change.reason =
                Some("its instance is replaced: the address is associated with the new one".into());
        }
    }

    // A resource is deleted only after every change to what refers to it in the account:
    // a group after its members have left it or been deleted.
    let changing: Vec<Address> = changes
        .values()
        .filter(|c| c.action != Action::NoOp)
        .map(|c| c.address.clone())
        .collect();
    for change in changes.values_mut().filter(|c| c.action == Action::Delete) {
        change.depends_on = changing
            .iter()
            .filter(|other| {
                live.resources
                    .get(*other)
                    .is_some_and(|r| r.depends_on.contains(&change.address))
            })
            .cloned()
            .collect();
    }

    if !conflicts.is_empty() {
        return Err(PlanError::NotOwned(conflicts));
    }
    let (local_changes, changes) = changes
        .into_values()
        .partition(|change| change.address.kind.is_local());
    Ok(Plan {
        format_version: FORMAT_VERSION,
        project: project.to_string(),
        account_id: target.account_id.clone(),
        region: target.region.clone(),
        mode,
        secrets: target.secrets,
        secrets_dir: target.secrets_dir.clone(),
        changes,
        local_changes,
    })
}

/// The desired states with what only the account can settle filled in: the image of an
/// image lookup (the newest match, unless the instance already runs a matching one, so a new
/// image release does not replace a working instance), and a root volume size left to the
/// image. Lookups that match nothing are conflicts.
fn resolve(
    project: &str,
    desired: &[DesiredResource],
    live: &LiveState,
    conflicts: &mut Vec<Diagnostic>,
) -> Vec<DesiredResource> {
    desired
        .iter()
        .map(|wanted| {
            let mut wanted = wanted.clone();
            if let ResourceState::SshConfig(config) = &mut wanted.state {
                config.block = crate::sshconfig::render(project, &config.hosts, |instance| {
                    host_address(instance, desired, live)
                });
                return wanted;
            }
            let ResourceState::Instance(instance) = &mut wanted.state else {
                return wanted;
            };
            let current = match live.resources.get(&wanted.address).map(|r| &r.state) {
                Some(ResourceState::Instance(current)) => Some(current),
                _ => None,
            };
            if let Some(lookup) = &instance.image_lookup {
                let candidates = live.images.get(lookup).map(Vec::as_slice).unwrap_or_default();
                let kept = current
                    .filter(|c| candidates.iter().any(|image| image.id == c.ami))
                    .map(|c| c.ami.clone());
                let newest = candidates
                    .iter()
                    .max_by(|a, b| a.created.cmp(&b.created))
                    .map(|image| image.id.clone());
                match kept.or(newest) {
                    Some(id) => instance.ami = id,
                    None => conflicts.push(
                        Diagnostic::new(
                            format!("{}: no image matches: {lookup}", wanted.address),
                            Some(wanted.location.clone()),
                        )
                        .with_hint("check the name pattern and owner (`aws ec2 describe-images --owners OWNER --filters Name=name,Values=PATTERN`)"),
                    ),
                }
            }
            if instance.root_volume_gb.is_none() {
                instance.root_volume_gb = current.and_then(|c| c.root_volume_gb);
            }
            wanted
        })
        .collect()
}

/// An instance's address as the alias block should hold it: its Elastic IP, else its
/// public address while it runs. Only what this apply leaves as it is can be known now: an
/// instance to be launched, started or stopped, or an address to be made or moved, is
/// known after apply.
fn host_address(
    instance: &str,
    desired: &[DesiredResource],
    live: &LiveState,
) -> crate::sshconfig::HostAddress {
    use crate::sshconfig::HostAddress;
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
    if wanted_eip.is_none() && wanted.is_some_and(|w| w.state == crate::model::RunState::Stopped) {
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
            (crate::model::RunState::Running, Some(ip)) => HostAddress::Known(ip.clone()),
            (crate::model::RunState::Running, None) => HostAddress::AfterApply,
            (crate::model::RunState::Stopped, _) => HostAddress::None,
        },
    }
}

/// Whether deleting `state` (a bucket) empties it first, and what the plan says about it.
/// A `force_destroy` tag alone is no evidence: anyone allowed to tag a bucket can write it.
/// The bucket is emptied when the project's record (in its Parameter Store path, written
/// when it created the bucket) shows it created it, or when the command line says so.
fn bucket_emptying(state: &ResourceState, empty_tagged: bool) -> (bool, Option<String>) {
    let ResourceState::Bucket(bucket) = state else {
        return (false, None);
    };
    let tagged = bucket
        .tags
        .get(crate::model::TAG_FORCE_DESTROY)
        .map(String::as_str)
        == Some("true");
    match (tagged, bucket.record, empty_tagged) {
        (false, _, _) => (false, None),
        (true, Some(OwnershipRecord::Created), _) => (
            true,
            Some("force_destroy: its contents are deleted too (the project's record shows it created the bucket)".into()),
        ),
        (true, _, true) => (
            true,
            Some("force_destroy: its contents are deleted too (--empty-tagged-buckets)".into()),
        ),
        (true, _, false) => (
            false,
            Some("force_destroy is tagged, but no record of the project's shows it created the bucket, so its contents are kept and deleting it fails if it holds objects (--empty-tagged-buckets empties it)".into()),
        ),
    }
}

/// What a change to the password policy makes weaker, one line per setting: a shorter
/// minimum, a character class no longer required, passwords that live longer or may be
/// reused sooner, expiry no longer hard. Deleting the policy weakens everything it sets.
fn weakening(before: Option<&ResourceState>, after: Option<&ResourceState>) -> Vec<String> {
    let Some(ResourceState::PasswordPolicy { policy: old, .. }) = before else {
        return Vec::new();
    };
    let new = match after {
        Some(ResourceState::PasswordPolicy { policy, .. }) => policy,
        Some(_) => return Vec::new(),
        None => return vec!["the policy is deleted: IAM's defaults apply".to_string()],
    };
    weakened_settings(old, new)
}

fn weakened_settings(old: &PasswordPolicyState, new: &PasswordPolicyState) -> Vec<String> {
    let mut weaker = Vec::new();
    if new.minimum_length < old.minimum_length {
        weaker.push(format!(
            "minimum_length {} -> {}",
            old.minimum_length, new.minimum_length
        ));
    }
    for (name, was, is) in [
        ("require_symbols", old.require_symbols, new.require_symbols),
        ("require_numbers", old.require_numbers, new.require_numbers),
        (
            "require_uppercase",
            old.require_uppercase,
            new.require_uppercase,
        ),
        (
            "require_lowercase",
            old.require_lowercase,
            new.require_lowercase,
        ),
        ("hard_expiry", old.hard_expiry, new.hard_expiry),
    ] {
        if was && !is {
            weaker.push(format!("{name} true -> false"));
        }
    }
    let show = |days: Option<u16>| days.map_or("none".to_string(), |d| d.to_string());
    // A maximum age or a reuse count of none is the weakest of all.
    let longer = match (old.max_age_days, new.max_age_days) {
        (Some(_), None) => true,
        (Some(was), Some(is)) => is > was,
        _ => false,
    };
    if longer {
        weaker.push(format!(
            "max_age_days {} -> {}",
            show(old.max_age_days),
            show(new.max_age_days)
        ));
    }
    let fewer = match (old.reuse_prevention, new.reuse_prevention) {
        (Some(_), None) => true,
        (Some(was), Some(is)) => is < was,
        _ => false,
    };
    if fewer {
        weaker.push(format!(
            "reuse_prevention {} -> {}",
            show(old.reuse_prevention),
            show(new.reuse_prevention)
        ));
    }
    weaker
}

fn is_blank(value: &Value) -> bool {
    match value {
        Value::Null | Value::Bool(false) => true,
        Value::Array(items) => items.is_empty(),
        Value::Object(map) => map.is_empty(),
        _ => false,
    }
}

/// The attributes that differ between two states of one resource. Either side may be absent
/// (create, delete); then every attribute that is set on the other side is listed.
fn diff_attributes(
    before: Option<&ResourceState>,
    after: Option<&ResourceState>,
) -> Vec<AttributeChange> {
    let before_attributes = before.map(ResourceState::attributes).unwrap_or_default();
    let after_attributes = after.map(ResourceState::attributes).unwrap_or_default();
    let template = if after_attributes.is_empty() {
        &before_attributes
    } else {
        &after_attributes
    };
    template
        .iter()
        .filter_map(|attribute| {
            let find = |list: &[crate::model::Attribute]| {
                list.iter()
                    .find(|a| a.name == attribute.name)
                    .map(|a| a.value.clone())
                    .unwrap_or(Value::Null)
            };
            let old = find(&before_attributes);
            let new = find(&after_attributes);
            // On a create or delete, an empty or false attribute says nothing worth showing.
            let one_sided = before.is_none() || after.is_none();
            if one_sided && is_blank(if before.is_none() { &new } else { &old }) {
                return None;
            }
            (old != new).then(|| AttributeChange {
                name: attribute.name.to_string(),
                forces_replacement: attribute.forces_replacement
                    && before.is_some()
                    && after.is_some(),
                before: old,
                after: new,
                format: attribute.format,
            })
        })
        .collect()
}
