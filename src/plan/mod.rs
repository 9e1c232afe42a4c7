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

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::diagnostic::{Diagnostic, Location};
pub use crate::kinds::desired_resources;
use crate::kinds::{
    forced_by_change, update_note, weakens, DesiredResource, LiveResource, LiveState,
    ResourceState, Settling,
};
use crate::model::{Address, AttributeFormat, Kind, Ownership, OwnershipRecord};
use crate::spec::SecretsMode;

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
    /// Resources to let go of (the spec's `forget:`, `tether forget`): their marks of
    /// ownership come off and they stay as they are. Each with where the spec lists it
    /// (`None`: the command line).
    pub forget: BTreeMap<Address, Option<Location>>,
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
    /// Take the project's marks off a resource it owns, leaving the resource as it is.
    Forget,
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
    pub forget: usize,
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
                Action::Forget => summary.forget += 1,
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
        conflicts.extend(reference_problems(address, wanted, &declared, live));
        match change_for(project, address, wanted, live) {
            Ok(change) => {
                changes.insert((*address).clone(), change);
            }
            Err(conflict) => conflicts.push(conflict),
        }
    }
    for (address, listed) in &target.forget {
        match forgetting(project, address, listed.as_ref(), &declared, live) {
            Ok(Some(change)) => {
                changes.insert(address.clone(), change);
            }
            Ok(None) => {}
            Err(conflict) => conflicts.push(conflict),
        }
    }
    for (address, found) in &live.resources {
        if target.forget.contains_key(address) {
            continue;
        }
        if let Some(change) = deletion_for(target, mode, (&declared, &wanted), address, found) {
            changes.insert(address.clone(), change);
        }
    }
    follow_replacements(&mut changes);
    order_deletions(&mut changes, live);
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

/// What is wrong with a wanted resource's references: a key pair or security group that is
/// neither declared nor in the account, a managed policy that does not exist.
fn reference_problems(
    address: &Address,
    wanted: &DesiredResource,
    declared: &BTreeMap<&Address, &DesiredResource>,
    live: &LiveState,
) -> Vec<Diagnostic> {
    let mut problems = Vec::new();
    for reference in &wanted.depends_on {
        let known = declared.contains_key(reference) || live.resources.contains_key(reference);
        if !known && matches!(reference.kind, Kind::KeyPair | Kind::SecurityGroup) {
            problems.push(
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
            problems.push(
                Diagnostic::new(
                    format!("{address} attaches `{arn}`, which does not exist in the account"),
                    Some(wanted.location.clone()),
                )
                .with_hint("check the policy's name and path; AWS managed policies live under `arn:aws:iam::aws:policy/`"),
            );
        }
    }
    problems
}

/// The change that takes what the account holds at `address` (if anything) to `wanted`,
/// or why the plan may not touch it: another's resource, a setting someone else made.
fn change_for(
    project: &str,
    address: &Address,
    wanted: &DesiredResource,
    live: &LiveState,
) -> Result<Change, Diagnostic> {
    let Some(found) = live.resources.get(address) else {
        return Ok(Change {
            address: address.clone(),
            action: Action::Create,
            reason: None,
            attributes: diff_attributes(None, Some(&wanted.state)),
            before: None,
            after: Some(wanted.state.clone()),
            depends_on: wanted.depends_on.clone(),
            reissue_secret: false,
            weakens: Vec::new(),
            empty_bucket: false,
        });
    };
    match found.state.ownership(project) {
        Ownership::Owned => Ok(owned_change(address, wanted, found)),
        Ownership::Unowned if wanted.adopt => Ok(Change {
            address: address.clone(),
            action: Action::Adopt,
            reason: None,
            attributes: diff_attributes(Some(&found.state), Some(&wanted.state)),
            before: Some(found.state.clone()),
            after: Some(wanted.state.clone()),
            depends_on: wanted.depends_on.clone(),
            reissue_secret: false,
            weakens: weakens(Some(&found.state), Some(&wanted.state)),
            empty_bucket: false,
        }),
        Ownership::Unowned if address.kind.is_singleton() => Err(Diagnostic::new(
            format!("{address} is already set in the account, and not by project `{project}`"),
            Some(wanted.location.clone()),
        )
        .with_hint(
            "someone else set it (a security team, another tool): add `adopt: true` to manage it from this spec (destroy then leaves it as it is), or remove it from the spec",
        )),
        Ownership::Unowned => Err(Diagnostic::new(
            format!("{address} exists but is not owned by project `{project}`"),
            Some(wanted.location.clone()),
        )
        .with_hint(
            "tether never touches what it does not own: add `adopt: true` to take it over, or choose another name",
        )),
        Ownership::OtherProject(other) => Err(Diagnostic::new(
            format!("{address} belongs to tether project `{other}`, not `{project}`"),
            Some(wanted.location.clone()),
        )
        .with_hint(format!(
            "a resource has one owner: remove it from project `{other}`'s spec first, or choose another name"
        ))),
    }
}

/// The change that takes an owned resource, found as `found`, to `wanted`: nothing, an
/// update, or a replacement (an attribute that cannot change in place, a secret no one
/// holds).
fn owned_change(address: &Address, wanted: &DesiredResource, found: &LiveResource) -> Change {
    let unheld = found.state.unheld_secret();
    let before = if unheld.is_some() {
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
    let (action, reason) = if let Some(reason) = unheld.and_then(|u| u.replace) {
        (Action::Replace, Some(reason.to_string()))
    } else if attributes.is_empty() {
        (Action::NoOp, None)
    } else if let Some(unheld) = unheld {
        (Action::Update, Some(unheld.reason.to_string()))
    } else if forcing.is_empty() {
        (Action::Update, update_note(&before, &wanted.state))
    } else {
        let because: BTreeSet<&str> = forcing
            .iter()
            .filter_map(|a| wanted.state.forcing_reason(a))
            .collect();
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
        address: address.clone(),
        action,
        reason,
        attributes,
        before: Some(found.state.clone()),
        after: Some(wanted.state.clone()),
        depends_on: wanted.depends_on.clone(),
        reissue_secret: unheld.is_some() && action == Action::Update,
        weakens: weakens(Some(&found.state), Some(&wanted.state)),
        empty_bucket: false,
    }
}

/// Letting go of the resource at `address` (listed at `listed`): its change, or none when
/// the project does not own it (never did, or already let it go: forgetting again is
/// nothing), or why it cannot be let go of: the spec still declares it, or its kind keeps
/// no mark that can come off.
fn forgetting(
    project: &str,
    address: &Address,
    listed: Option<&Location>,
    declared: &BTreeMap<&Address, &DesiredResource>,
    live: &LiveState,
) -> Result<Option<Change>, Diagnostic> {
    if let Some(wanted) = declared.get(address) {
        return Err(Diagnostic::new(
            format!("{address} is declared in the spec and also to be forgotten"),
            Some(listed.unwrap_or(&wanted.location).clone()),
        )
        .with_hint(
            "forgetting lets go of what the spec no longer declares: remove it from the spec first (or from the forget list, to keep managing it)",
        ));
    }
    let Some(found) = live.resources.get(address) else {
        return Ok(None);
    };
    if found.state.ownership(project) != Ownership::Owned {
        return Ok(None);
    }
    let after = found.state.disowned().map_err(|why| {
        Diagnostic::new(
            format!("{address} cannot be forgotten: {why}"),
            listed.cloned(),
        )
    })?;
    Ok(Some(Change {
        address: address.clone(),
        action: Action::Forget,
        reason: Some(format!(
            "project `{project}` lets it go: it stays in the account as it is, no longer managed"
        )),
        attributes: diff_attributes(Some(&found.state), Some(&after)),
        before: Some(found.state.clone()),
        after: Some(after),
        depends_on: Vec::new(),
        reissue_secret: false,
        weakens: Vec::new(),
        empty_bucket: false,
    }))
}

/// What becomes of a resource the account holds (`found`, at `address`) beyond what the
/// spec wants: a deletion when it is owned and no longer wanted (a singleton only with
/// `destroy`, only when declared and created by the project); on `destroy`, an adopted
/// singleton is left as it is, which the plan says. `None`: the plan does not touch it.
fn deletion_for(
    target: &Target,
    mode: Mode,
    (declared, wanted): (
        &BTreeMap<&Address, &DesiredResource>,
        &BTreeMap<&Address, &DesiredResource>,
    ),
    address: &Address,
    found: &LiveResource,
) -> Option<Change> {
    let project = target.project.as_str();
    let record = found.state.setting_record();
    if mode == Mode::Destroy && record == Some(OwnershipRecord::Adopted) {
        return Some(Change {
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
        });
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
        return None;
    }
    let reason = match mode {
        Mode::Apply => "no longer in the spec",
        Mode::Destroy => "destroy",
    };
    let deletion = found.state.deletion(target.empty_tagged_buckets);
    let reason = match deletion.note {
        Some(note) => format!("{reason}; {note}"),
        None => reason.to_string(),
    };
    Some(Change {
        address: address.clone(),
        action: Action::Delete,
        reason: Some(reason),
        attributes: diff_attributes(Some(&found.state), None),
        before: Some(found.state.clone()),
        after: None,
        depends_on: Vec::new(),
        reissue_secret: false,
        weakens: weakens(Some(&found.state), None),
        empty_bucket: deletion.empties,
    })
}

/// A kind that follows replacements (an Elastic IP whose instance is replaced must be
/// associated with the new one) acts although its own attributes do not change.
fn follow_replacements(changes: &mut BTreeMap<Address, Change>) {
    let replaced: BTreeSet<Address> = changes
        .values()
        .filter(|c| c.action == Action::Replace)
        .map(|c| c.address.clone())
        .collect();
    for change in changes.values_mut() {
        let follows = change
            .after
            .as_ref()
            .and_then(ResourceState::follows_replacement);
        if let Some(reason) = follows {
            if change.action == Action::NoOp
                && change.depends_on.iter().any(|d| replaced.contains(d))
            {
                change.action = Action::Update;
                change.reason = Some(reason.into());
            }
        }
    }
}

/// A resource is deleted only after every change to what refers to it in the account: a
/// group after its members have left it or been deleted.
fn order_deletions(changes: &mut BTreeMap<Address, Change>, live: &LiveState) {
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
}

/// The desired states with what only the account can settle filled in, each by its kind
/// (an image lookup's image, the alias block's addresses). What cannot be settled is a
/// conflict at the spec line.
fn resolve(
    project: &str,
    desired: &[DesiredResource],
    live: &LiveState,
    conflicts: &mut Vec<Diagnostic>,
) -> Vec<DesiredResource> {
    let settling = Settling {
        project,
        desired,
        live,
    };
    desired
        .iter()
        .map(|wanted| {
            let mut wanted = wanted.clone();
            conflicts.extend(crate::kinds::settle(&mut wanted, &settling));
            wanted
        })
        .collect()
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
