//! Planning a spec against the live account: the read-then-plan pipeline that `plan`,
//! `apply` and `destroy` share. It reads what the spec names and the project owns (the
//! account, the managed policies the spec attaches, the images it looks up, who the
//! credentials are, and this operator's SSH alias block), then hands everything to the
//! pure planner.
//!
//! The reads run at the same time. This module decides nothing about the account itself:
//! reading is `live`'s, deciding is `plan`'s. Warnings (what the reader skipped) are
//! returned for the caller to show.

use std::path::{Path, PathBuf};

use crate::aws::{AwsError, Cloud};
use std::collections::BTreeMap;

use crate::diagnostic::Location;
use crate::model::Address;
use crate::plan::{self, Mode, Plan, PlanError, Target};
use crate::spec::Spec;

/// How to plan.
#[derive(Clone, Copy, Debug)]
pub struct Options<'a> {
    pub mode: Mode,
    /// `--empty-tagged-buckets`: empty buckets tagged `force_destroy` without the project's
    /// record of creating them.
    pub empty_tagged_buckets: bool,
    /// The operator's home, for `~` in the SSH config's path (a local file).
    pub home: Option<&'a Path>,
    /// Resources to let go of besides the spec's `forget:` (`tether forget`'s arguments).
    pub forget: &'a [Address],
}

/// A plan and what the reader skipped on the way.
#[derive(Debug)]
pub struct Planned {
    pub plan: Plan,
    /// Things the user should know (a bucket whose tags could not be read), one line each.
    pub warnings: Vec<String>,
}

/// Why no plan could be made.
#[derive(Debug, thiserror::Error)]
pub enum PlanningError {
    /// Reading the account failed.
    #[error("cannot read the account")]
    Read(#[source] AwsError),
    /// Checking the managed policies the spec attaches failed.
    #[error("cannot check the managed policies the spec names")]
    Policies(#[source] AwsError),
    /// Looking up the spec's images failed.
    #[error("cannot look up the spec's images")]
    Images(#[source] AwsError),
    /// STS could not say whose credentials these are.
    #[error("cannot tell which account the credentials belong to")]
    Identity(#[source] AwsError),
    /// The SSH config holding the project's alias block cannot be read (or its markers
    /// are unbalanced).
    #[error("cannot read the SSH config `{path}`")]
    SshConfig {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The planner refused: resources that are not the project's, references to nothing.
    #[error(transparent)]
    Plan(#[from] PlanError),
}

/// The OpenSSH config file the spec's aliases go to (the default one without an `ssh:`
/// section, where an earlier block may still be), with `~` expanded from `home`.
pub fn ssh_config_file(spec: &Spec, home: Option<&Path>) -> PathBuf {
    let file = spec
        .ssh
        .as_ref()
        .map_or(crate::spec::DEFAULT_SSH_CONFIG, |ssh| {
            ssh.config_file.as_str()
        });
    crate::secrets::expand_home(file, home)
}

/// Reads the account and plans `spec` against it.
pub async fn plan_spec(
    cloud: &Cloud,
    spec: &Spec,
    options: Options<'_>,
) -> Result<Planned, PlanningError> {
    let Options {
        mode,
        empty_tagged_buckets,
        home,
        forget,
    } = options;
    let forget: BTreeMap<Address, Option<Location>> = spec
        .forget
        .iter()
        .map(|(address, location)| (address.clone(), Some(location.clone())))
        .chain(forget.iter().map(|address| (address.clone(), None)))
        .collect();
    let desired = plan::desired_resources(spec, cloud.region(), home);
    // What the spec declares and what it refers to (a key pair it does not declare, say),
    // and what it lets go of (an account setting is read only when named).
    let addresses: Vec<Address> = desired
        .iter()
        .flat_map(|d| std::iter::once(&d.address).chain(&d.depends_on))
        .chain(forget.keys())
        .cloned()
        .collect();
    let expected = crate::live::Expected::of(&desired);
    // Destroying needs neither the policies the spec attaches nor its images.
    let applying = mode == Mode::Apply;
    let check_policies = async {
        match applying {
            true => crate::live::missing_policies(cloud, &desired).await,
            false => Ok(Default::default()),
        }
    };
    let lookups = if applying {
        spec.image_lookups()
    } else {
        Vec::new()
    };
    // The first call is made alone: its round trip, behind no other request, tells how
    // far the endpoint is, and so how many reads to keep in flight after it.
    let account_id = cloud.account_id().await;
    let (live, missing_policies, images) = tokio::join!(
        crate::live::read(
            cloud,
            &spec.project,
            crate::live::Scope::Project(&addresses, &expected)
        ),
        check_policies,
        crate::live::find_images(cloud, &lookups),
    );
    let mut live = live.map_err(PlanningError::Read)?;
    live.missing_policies = missing_policies.map_err(PlanningError::Policies)?;
    live.images = images.map_err(PlanningError::Images)?;
    let account_id = account_id.map_err(PlanningError::Identity)?;
    let ssh_config = ssh_config_file(spec, home);
    // An adopted alias's own entry is the user's to give up, not a clash.
    let aliases: Vec<&str> = spec
        .ssh
        .iter()
        .flat_map(|ssh| ssh.hosts.values().filter(|h| !h.adopt))
        .map(|h| h.alias.as_str())
        .collect();
    let block = crate::kinds::ssh_aliases::read(&ssh_config, &spec.project, &aliases).map_err(
        |source| PlanningError::SshConfig {
            path: ssh_config.display().to_string(),
            source,
        },
    )?;
    if let Some(block) = block {
        live.resources.insert(block.address.clone(), block);
    }
    let target = Target {
        project: spec.project.clone(),
        account_id,
        region: cloud.region().to_string(),
        secrets: spec.secrets,
        secrets_dir: spec.secrets_dir.clone(),
        empty_tagged_buckets,
        forget,
    };
    let plan = plan::plan(&target, mode, &desired, &live)?;
    Ok(Planned {
        plan,
        warnings: live.warnings,
    })
}
