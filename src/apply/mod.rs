//! The executor: carries out a plan against the account.
//!
//! Each actionable change becomes one job for the [`coordinator`], which runs jobs in
//! dependency order with bounded parallelism; a job runs its change's operations
//! ([`steps`]) one after another. A failed job stops only the jobs that depend on it, and the
//! run ends with a per-resource report. Every operation is idempotent, so after a crash or a
//! failure, planning and applying again converges without duplicates.
//!
//! Before a saved plan is applied, [`check_fresh`] re-reads every resource it touches and
//! refuses if any differs from what the plan saw.

pub mod steps;

use std::path::Path;
use std::time::{Duration, Instant};

use crate::aws::{AwsError, Cloud};
use crate::coordinator::{self, Outcome};
use crate::kinds::{Operation, ResourceState, Step};
pub use crate::kinds::{StepError, StepFailure};
use crate::live::{self, Scope};
use crate::model::Address;
use crate::plan::{Action, Plan};

/// Why a plan cannot be applied at all.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The account changed since the saved plan was made; nothing was changed.
    #[error("stale plan: the account changed since the plan was made, so nothing was applied\n{}", .0.join("\n"))]
    Stale(Vec<String>),
    /// The plan was made against another account than the credentials in use belong to.
    #[error("the plan was made for account {planned}, but the credentials in use belong to account {configured}; nothing was applied")]
    WrongAccount { planned: String, configured: String },
    /// The account the credentials belong to could not be found out.
    #[error("could not tell which account the credentials belong to")]
    Identity(#[source] AwsError),
    /// The plan was made for another region than the one tether is talking to.
    #[error("the plan is for region {planned}, but tether is configured for {configured}")]
    WrongRegion { planned: String, configured: String },
    /// Reading the account to check the plan failed.
    #[error("could not check the plan against the account")]
    Read(#[source] AwsError),
    /// Reading a local file the plan changes failed.
    #[error("could not read `{path}` to check the plan")]
    ReadFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Something the executor reports while it works, for progress output.
#[derive(Debug)]
pub enum Progress<'a> {
    Started {
        address: &'a Address,
        operation: &'a Operation,
    },
    Finished {
        address: &'a Address,
        action: Action,
        elapsed: Duration,
    },
    Failed {
        address: &'a Address,
        error: &'a StepError,
    },
    /// A long wait for an instance's state goes on: the state seen so far, the time spent.
    Waiting {
        address: &'a Address,
        state: &'a str,
        elapsed: Duration,
    },
}

/// How one resource's change ended.
#[derive(Debug)]
pub enum StepResult {
    Done,
    Failed(StepError),
    /// Not attempted because `because` failed.
    Skipped {
        because: Option<Address>,
    },
}

/// The outcome of an apply, one entry per actionable change, in address order.
#[derive(Debug, Default)]
pub struct Report {
    pub results: Vec<(Address, Action, StepResult)>,
}

impl Report {
    pub fn succeeded(&self) -> bool {
        self.results
            .iter()
            .all(|(_, _, r)| matches!(r, StepResult::Done))
    }
}

/// Checks that the credentials belong to the plan's account and the client talks to its
/// region. Reads only; changes nothing (callers check before taking the project lock, so a
/// plan for another account leaves nothing in this one).
pub async fn check_target(cloud: &Cloud, plan: &Plan) -> Result<(), ApplyError> {
    if cloud.region() != plan.region {
        return Err(ApplyError::WrongRegion {
            planned: plan.region.clone(),
            configured: cloud.region().to_string(),
        });
    }
    let account_id = cloud.account_id().await.map_err(ApplyError::Identity)?;
    if account_id != plan.account_id {
        return Err(ApplyError::WrongAccount {
            planned: plan.account_id.clone(),
            configured: account_id,
        });
    }
    Ok(())
}

/// Re-reads every resource the plan changes and refuses if any differs from what the plan
/// saw (`before`). Reads only; changes nothing. Check the target first (`check_target`).
pub async fn check_fresh(cloud: &Cloud, plan: &Plan) -> Result<(), ApplyError> {
    let touched: Vec<Address> = plan.actionable().map(|c| c.address.clone()).collect();
    if touched.is_empty() {
        return Ok(());
    }
    // What the plan adopts by id carries no tag of the project yet: it is asked by id.
    let adopting = live::Expected::adopting(
        plan.changes
            .iter()
            .filter(|c| c.action == crate::plan::Action::Adopt)
            .filter_map(|c| Some((&c.address, c.after.as_ref()?))),
    );
    let mut live = live::read(cloud, &plan.project, Scope::Only(&touched, &adopting))
        .await
        .map_err(ApplyError::Read)?;
    // The alias block lives in a local file, which the account reader does not see.
    for change in plan.actionable() {
        let state = change.before.as_ref().or(change.after.as_ref());
        if let Some(ResourceState::SshConfig(config)) = state {
            let aliases: Vec<&str> = change
                .after
                .iter()
                .filter_map(|after| match after {
                    ResourceState::SshConfig(desired) => Some(desired),
                    _ => None,
                })
                .flat_map(|desired| desired.hosts.iter().filter(|host| !host.adopt))
                .map(|host| host.alias.as_str())
                .collect();
            let block =
                crate::kinds::ssh_aliases::read(Path::new(&config.file), &plan.project, &aliases)
                    .map_err(|source| ApplyError::ReadFile {
                    path: config.file.clone(),
                    source,
                })?;
            if let Some(block) = block {
                live.resources.insert(block.address.clone(), block);
            }
        }
    }
    let stale: Vec<String> = plan
        .actionable()
        .filter_map(|change| {
            let now = live.resources.get(&change.address).map(|r| &r.state);
            match (change.before.as_ref(), now) {
                (None, Some(_)) => Some(format!(
                    "  {}: now exists; the plan expected to create it",
                    change.address
                )),
                (Some(_), None) => Some(format!("  {}: no longer exists", change.address)),
                (Some(before), Some(now)) if before != now => Some(format!(
                    "  {}: changed since the plan was made",
                    change.address
                )),
                _ => None,
            }
        })
        .collect();
    if stale.is_empty() {
        Ok(())
    } else {
        Err(ApplyError::Stale(stale))
    }
}

/// Applies the plan's changes, at most `parallelism` resources at a time. `home` is the
/// applying operator's, for `~` in local secret files.
pub async fn apply(
    cloud: &Cloud,
    plan: &Plan,
    home: Option<&Path>,
    parallelism: usize,
    progress: &(dyn Fn(Progress<'_>) + Sync),
) -> Report {
    let jobs: Vec<(Address, Vec<Address>)> = plan
        .actionable()
        .map(|c| (c.address.clone(), c.depends_on.clone()))
        .collect();
    let context = steps::context_of(plan, home);
    let context = &context;
    let mut outcomes = coordinator::run(jobs, parallelism, |address: Address| async move {
        let change = plan
            .change(&address)
            .expect("every job is a change of the plan");
        let started = Instant::now();
        for operation in steps::operations(change, context) {
            progress(Progress::Started {
                address: &change.address,
                operation: &operation,
            });
            let on_wait = |state: &str, elapsed: Duration| {
                progress(Progress::Waiting {
                    address: &change.address,
                    state,
                    elapsed,
                });
            };
            let step = Step {
                cloud,
                project: &context.project,
                on_wait: &on_wait,
            };
            if let Err(error) = operation.run(&step).await {
                progress(Progress::Failed {
                    address: &change.address,
                    error: &error,
                });
                return Err(error);
            }
        }
        progress(Progress::Finished {
            address: &change.address,
            action: change.action,
            elapsed: started.elapsed(),
        });
        Ok(())
    })
    .await;
    let results = plan
        .actionable()
        .map(|change| {
            let result = match outcomes.remove(&change.address) {
                Some(Outcome::Succeeded) => StepResult::Done,
                Some(Outcome::Failed(error)) => StepResult::Failed(error),
                Some(Outcome::Skipped { because }) => StepResult::Skipped { because },
                None => StepResult::Skipped { because: None },
            };
            (change.address.clone(), change.action, result)
        })
        .collect();
    Report { results }
}
