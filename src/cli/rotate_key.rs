//! `tether rotate-key USER`: give an owned user a new access key, write it, then delete the
//! old one, so the user's programs switch over by re-reading their credentials file.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;

use super::printer::{Printer, WithHint};
use super::Exit;
use tether::kinds::secret::SecretDestination;
use tether::live::{self, Scope};
use tether::model::{Address, Kind, Ownership};

#[derive(Debug, Args)]
pub struct RotateKeyArgs {
    /// The IAM user, as named under `iam.users` in the spec.
    pub user: String,
    /// The spec file.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    #[command(flatten)]
    pub lock: super::LockOptions,
}

pub async fn exec(args: RotateKeyArgs, printer: &Printer) -> anyhow::Result<Exit> {
    let RotateKeyArgs { user, file, lock } = args;
    let spec = super::load_spec(&super::spec_path(file))?;
    let declared = spec.users.get(&user);
    if !declared.is_some_and(|u| u.programmatic_access) {
        bail!(WithHint::new(
            format!("the spec gives no user `{user}` programmatic access"),
            format!("declare `iam.users.{user}` with `programmatic_access: true` and apply first"),
        ));
    }
    let cloud = super::connect(spec.region.as_deref()).await?;
    let command = format!("rotate-key {user}");
    let rotate = rotate(printer, &cloud, &spec, &user);
    super::with_lock(printer, &cloud, &spec.project, &command, &lock, rotate).await
}

async fn rotate(
    printer: &Printer,
    cloud: &tether::aws::Cloud,
    spec: &tether::spec::Spec,
    user: &str,
) -> anyhow::Result<Exit> {
    let address = Address::new(Kind::IamUser, user);
    let live = live::read(
        cloud,
        &spec.project,
        Scope::Only(std::slice::from_ref(&address), &Default::default()),
    )
    .await
    .context("cannot read the account")?;
    match live
        .resources
        .get(&address)
        .map(|r| r.state.ownership(&spec.project))
    {
        Some(Ownership::Owned) => {}
        Some(_) => bail!(
            "{address} is not owned by project `{}`; tether rotates only its own users' keys",
            spec.project
        ),
        None => bail!(WithHint::new(
            format!("{address} does not exist"),
            "run `tether apply` first"
        )),
    }
    let old = cloud.access_keys(user).await?;
    if old.len() >= 2 {
        bail!(WithHint::new(
            format!("{address} already has two access keys, the most AWS allows"),
            "delete the one no program uses, then rotate again",
        ));
    }
    let destination = SecretDestination::of_user(
        spec.secrets,
        &spec.project,
        &super::secrets_dir(spec),
        tether::secrets::UserSecret::AccessKey,
        user,
    );
    let profile = tether::secrets::profile_name(&spec.project, user);
    let place = match &destination {
        SecretDestination::Parameter(name) => {
            format!("Parameter Store at {name} (`tether secrets pull {user}` writes a local copy)")
        }
        SecretDestination::File(file) => format!("{} (profile {profile})", file.display()),
    };
    let new_id = tether::kinds::iam_user::issue_access_key(
        cloud,
        &spec.project,
        user,
        &destination,
        &profile,
    )
    .await
    .with_context(|| format!("cannot create a new access key for {address}"))?;
    for key in old.iter().filter(|k| k.id != new_id) {
        cloud
            .delete_access_key(user, &key.id)
            .await
            .with_context(|| {
                format!("the new key is stored in {place}, but the old one could not be deleted")
            })?;
    }
    printer.status(&format!(
        "Rotated the access key of {address}: the new key is in {place}; {} old key(s) deleted.",
        old.len()
    ));
    Ok(Exit::Success)
}
