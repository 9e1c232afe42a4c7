//! `tether show`: the live facts about the spec's instances and Elastic IPs, with a ready
//! `ssh` line for each reachable instance. Read-only.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use super::printer::Printer;
use super::Exit;
use tether::kinds::ResourceState;
use tether::model::Kind;

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The spec file.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Print the facts as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// What `show` reports: the spec's instances and Elastic IPs as they are, with the names of
/// their images (for the login user). Also what `tether ssh` reaches an instance by.
pub async fn read_report(
    cloud: &tether::aws::Cloud,
    spec: &tether::spec::Spec,
) -> anyhow::Result<tether::show::Report> {
    let addresses: Vec<tether::model::Address> =
        tether::plan::desired_resources(spec, cloud.region(), super::home().as_deref())
            .into_iter()
            .map(|d| d.address)
            .filter(|a| {
                matches!(
                    a.kind,
                    Kind::Instance
                        | Kind::ElasticIp
                        | Kind::BatchComputeEnvironment
                        | Kind::BatchJobQueue
                )
            })
            .collect();
    let live = tether::live::read(cloud, &spec.project, tether::live::Scope::Only(&addresses))
        .await
        .context("cannot read the account")?;
    let amis: Vec<String> = live
        .resources
        .values()
        .filter_map(|r| match &r.state {
            ResourceState::Instance(instance) => Some(instance.ami.clone()),
            _ => None,
        })
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let images = cloud
        .images(amis)
        .await
        .context("cannot read the instances' images")?
        .into_iter()
        .map(|(id, (name, _))| (id, name))
        .collect();
    Ok(tether::show::report(
        spec,
        &live,
        &images,
        super::home().as_deref(),
    ))
}

pub async fn exec(args: ShowArgs, printer: &Printer) -> anyhow::Result<Exit> {
    let ShowArgs { file, json } = args;
    let spec = super::load_spec(&super::spec_path(file))?;
    let cloud = super::connect(spec.region.as_deref()).await?;
    let report = read_report(&cloud, &spec).await?;
    if json {
        let mut text = serde_json::to_string_pretty(&report).expect("a report always serialises");
        text.push('\n');
        printer.json(&text)?;
    } else {
        printer.data(&tether::show::text(&report))?;
    }
    Ok(Exit::Success)
}
