//! `tether apply`: plan and apply the spec, or apply a saved plan exactly.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;

use super::printer::{Printer, WithHint};
use super::Exit;
use tether::plan::{Mode, Plan};

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// A plan saved by `tether plan --out`; applied exactly, after checking it is not stale.
    #[arg(value_name = "PLAN", conflicts_with = "file")]
    pub plan: Option<PathBuf>,
    /// The spec file.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    #[command(flatten)]
    pub options: super::changes::ChangeOptions,
    /// Do not run the spec's jobs after a successful apply.
    #[arg(long)]
    pub no_jobs: bool,
    /// After a successful apply, wait until every running instance answers ssh and its
    /// host key is verified and recorded (up to --ssh-timeout), so that its alias works at
    /// once.
    #[arg(long, conflicts_with = "plan")]
    pub wait_for_ssh: bool,
    #[command(flatten)]
    pub job_options: super::jobs::JobOptions,
}

pub async fn exec(args: ApplyArgs, printer: &Printer) -> anyhow::Result<Exit> {
    let ApplyArgs {
        plan,
        file,
        options:
            super::changes::ChangeOptions {
                auto_approve,
                parallelism,
                lock,
                empty_tagged_buckets,
            },
        no_jobs,
        wait_for_ssh,
        job_options,
    } = args;
    let path = match plan {
        Some(path) => {
            // A saved plan holds resources only: its spec's jobs are for `tether run`.
            let plan = read_saved_plan(&path)?;
            let cloud = super::connect(Some(&plan.region)).await?;
            tether::apply::check_target(&cloud, &plan).await?;
            let apply = async {
                tether::apply::check_fresh(&cloud, &plan).await?;
                printer.status(tether::render::plan_text(&plan).trim_end());
                super::changes::run_plan(printer, &cloud, &plan, parallelism.into()).await
            };
            return super::with_lock(
                printer,
                &cloud,
                &plan.project,
                "apply (saved plan)",
                &lock,
                apply,
            )
            .await;
        }
        None => super::spec_path(file),
    };
    let spec = super::load_spec(&path)?;
    let cloud = super::connect(spec.region.as_deref()).await?;
    let run_jobs = !no_jobs && !spec.jobs.is_empty();
    // The plan is made while holding the lock, so no other run changes what it saw.
    let apply = async {
        let plan = super::fresh_plan(
            printer,
            &cloud,
            &spec,
            Mode::Apply,
            empty_tagged_buckets,
            &[],
        )
        .await?;
        printer.status(tether::render::plan_text(&plan).trim_end());
        if run_jobs {
            printer.status(&super::plan::jobs_text(&spec));
        }
        if plan.has_changes()
            && !auto_approve
            && !super::confirm(printer, "Do you want to perform these actions?").await?
        {
            printer.status("Apply cancelled: nothing was changed.");
            return Ok(Exit::Error);
        }
        let applied = super::changes::run_plan(printer, &cloud, &plan, parallelism.into()).await?;
        if applied == Exit::Success {
            super::note_unheld_copies(printer, &spec);
        }
        Ok(applied)
    };
    let applied = super::with_lock(printer, &cloud, &spec.project, "apply", &lock, apply).await?;
    if applied != Exit::Success {
        return Ok(applied);
    }
    if wait_for_ssh
        && wait_for_instances(printer, &cloud, &spec, job_options.ssh_timeout).await
            != Exit::Success
    {
        return Ok(Exit::Error);
    }
    if !run_jobs {
        return Ok(applied);
    }
    printer.status(
        "
Running the jobs:",
    );
    super::jobs::run_jobs(
        printer,
        &cloud,
        &spec,
        &path,
        &[],
        &job_options,
        super::jobs::How::default(),
    )
    .await
}

/// `--wait-for-ssh`: reaches every instance the spec wants running, at once, on its alias's
/// port (22 without one), verifying and recording its host key as `tether ssh` does.
async fn wait_for_instances(
    printer: &Printer,
    cloud: &tether::aws::Cloud,
    spec: &tether::spec::Spec,
    timeout: std::time::Duration,
) -> Exit {
    let running: Vec<(&str, u16)> = spec
        .instances
        .values()
        .filter(|instance| instance.state == tether::model::RunState::Running)
        .map(|instance| {
            let port = spec
                .ssh
                .iter()
                .flat_map(|ssh| ssh.hosts.values())
                .find(|host| host.instance == instance.name)
                .map_or(22, |host| host.port);
            (instance.name.as_str(), port)
        })
        .collect();
    if running.is_empty() {
        return Exit::Success;
    }
    printer.status("\nWaiting for the instances to answer ssh:");
    let reached = futures::future::join_all(
        running
            .iter()
            .map(|(name, port)| super::reach(printer, cloud, spec, name, *port, timeout)),
    )
    .await;
    let mut status = Exit::Success;
    for ((name, _), result) in running.iter().zip(reached) {
        match result {
            Ok(_) => printer.status(&format!(
                "`{name}` answers ssh; its host key is verified and recorded"
            )),
            Err(error) => {
                printer.error(&error.context(format!("`{name}` is applied but not reachable")));
                status = Exit::Error;
            }
        }
    }
    status
}

fn read_saved_plan(path: &Path) -> anyhow::Result<Plan> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the plan file `{}`", path.display()))?;
    let value: serde_json::Value = match serde_json::from_str(&text) {
        Ok(value) => value,
        Err(_) => bail!(WithHint::new(
            format!("`{}` is not a saved plan", path.display()),
            format!(
                "to apply a spec, pass it with -f: tether apply -f {}",
                path.display()
            ),
        )),
    };
    match value
        .get("format_version")
        .and_then(serde_json::Value::as_u64)
    {
        Some(version) if version == u64::from(tether::plan::FORMAT_VERSION) => {}
        Some(version) => bail!(WithHint::new(
            format!(
                "the plan `{}` has format version {version}; this tether reads version {}",
                path.display(),
                tether::plan::FORMAT_VERSION
            ),
            "make the plan again with this version of tether",
        )),
        None => bail!(WithHint::new(
            format!(
                "`{}` is not a saved plan (it has no format_version)",
                path.display()
            ),
            format!(
                "to apply a spec, pass it with -f: tether apply -f {}",
                path.display()
            ),
        )),
    }
    serde_json::from_value(value)
        .with_context(|| format!("the plan file `{}` is damaged", path.display()))
}
