//! `tether import`: write a spec for what the account holds that no tether project owns,
//! every resource `adopt: true`, then say what a first apply would change besides taking
//! ownership. Reads the account and this user's ssh config; writes only the spec (and the
//! schema beside it for editors, if absent).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;

use super::printer::Printer;
use super::Exit;
use tether::import::{Family, Inventory, Selection};
use tether::kinds::ResourceState;
use tether::plan::{Mode, Target};

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The region to read (default: the environment's, as the AWS CLI takes it).
    #[arg(long)]
    pub region: Option<String>,
    /// Only these families, comma-separated: buckets, iam, ec2, account, ssh.
    #[arg(long, value_delimiter = ',', value_parser = parse_family)]
    pub only: Vec<Family>,
    /// Only resources carrying this tag (and the IAM groups their users are in).
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_tag)]
    pub tag: Option<(String, String)>,
    /// Only resources whose name starts with this.
    #[arg(long, value_name = "PREFIX")]
    pub name_prefix: Option<String>,
    /// Where to write the spec.
    #[arg(
        short = 'o',
        long = "out",
        value_name = "FILE",
        default_value = "tether.yaml"
    )]
    pub out: PathBuf,
    /// The project the spec names (default: the name of the directory it is written to).
    #[arg(long)]
    pub project: Option<String>,
    /// Replace the output file if it exists.
    #[arg(long)]
    pub force: bool,
}

fn parse_family(text: &str) -> Result<Family, String> {
    Family::parse(text).ok_or_else(|| {
        let all: Vec<&str> = Family::ALL.iter().map(|f| f.as_str()).collect();
        format!("`{text}` is none of {}", all.join(", "))
    })
}

fn parse_tag(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err(format!("`{text}` is not KEY=VALUE")),
    }
}

/// The project a spec written to `out` names by default: its directory's name, if that
/// is a valid project name.
fn default_project(out: &Path) -> Option<String> {
    let dir = std::path::absolute(out)
        .ok()?
        .parent()?
        .file_name()?
        .to_str()?
        .to_string();
    let valid = !dir.is_empty()
        && dir.len() <= 64
        && dir
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    valid.then_some(dir)
}

pub async fn exec(args: ImportArgs, printer: &Printer) -> anyhow::Result<Exit> {
    let ImportArgs {
        region,
        only,
        tag,
        name_prefix,
        out,
        project,
        force,
    } = args;
    let Some(project) = project.or_else(|| default_project(&out)) else {
        bail!("cannot name the project after the directory of `{}`: pass --project NAME (letters, digits, `-` and `_`)", out.display());
    };
    if !force && out.exists() {
        bail!(
            "`{}` exists: write the spec elsewhere with -o FILE, or pass --force to replace it",
            out.display()
        );
    }
    let selection = Selection {
        families: if only.is_empty() {
            Family::ALL.into_iter().collect()
        } else {
            only.into_iter().collect::<BTreeSet<_>>()
        },
        tag,
        name_prefix,
    };
    let cloud = super::connect(region.as_deref()).await?;
    let region = cloud.region().to_string();
    printer.status(&format!(
        "Reading what the account holds in {region} that no tether project owns..."
    ));
    let (read, account_id) = tokio::join!(
        tether::live::read_for_import(&cloud, &project, &selection.families),
        cloud.account_id()
    );
    let read = read.context("cannot read the account")?;
    let account_id = account_id.context("cannot tell which account the credentials are for")?;
    let (found, others) = tether::import::select(read, &project, &selection);
    let ssh_hosts = if selection.families.contains(&Family::Ssh) {
        ssh_hosts(&found)?
    } else {
        Vec::new()
    };
    let inventory = Inventory {
        project: project.clone(),
        region: region.clone(),
        found,
        others,
        ssh_hosts,
    };
    let text = tether::import::spec_text(&inventory);
    // What was written must read back as a spec, and plan as adoptions only.
    let name = out.display().to_string();
    let spec = tether::spec::parse(&name, &text).map_err(|e| {
        anyhow::anyhow!(
            "the spec tether wrote does not read back (a bug in tether; nothing was written):\n{e}"
        )
    })?;
    let desired = tether::plan::desired_resources(&spec, &region, super::home().as_deref());
    let target = Target {
        project: project.clone(),
        account_id,
        region: region.clone(),
        secrets: spec.secrets,
        secrets_dir: spec.secrets_dir.clone(),
        empty_tagged_buckets: false,
        forget: Default::default(),
    };
    let problems = match tether::plan::plan(&target, Mode::Apply, &desired, &inventory.found) {
        Ok(plan) => tether::import::differences(&plan),
        Err(error) => vec![error.to_string()],
    };
    super::write_whole(&out, &text, force)
        .with_context(|| format!("cannot write the spec to `{}`", out.display()))?;
    let schema = out.with_file_name("tether.schema.json");
    if !schema.exists() {
        let _ = super::write_whole(
            &schema,
            &format!("{}\n", tether::spec::schema::json_schema_text()),
            false,
        );
    }
    let count = inventory.found.resources.len() + usize::from(!inventory.ssh_hosts.is_empty());
    printer.status(&format!(
        "Wrote `{}` for project `{project}`: {count} resource(s) to adopt{}.",
        out.display(),
        if inventory.others.is_empty() {
            String::new()
        } else {
            format!(
                "; left out {} that other tether projects own",
                inventory.others.len()
            )
        }
    ));
    if problems.is_empty() {
        printer.status(&format!(
            "Its first apply only takes ownership: `tether plan -f {}` shows the adoptions.",
            out.display()
        ));
    } else {
        printer.status("warning: the spec does not say all that the account holds; a first apply would also change:");
        for problem in &problems {
            printer.status(&format!("  {problem}"));
        }
        printer.status("Edit the spec (or the account) until `tether plan` shows adoptions only.");
    }
    Ok(Exit::Success)
}

/// This user's ssh config entries for the instances found, by the addresses they have.
fn ssh_hosts(found: &tether::kinds::LiveState) -> anyhow::Result<Vec<tether::import::SshHost>> {
    let Some(home) = super::home() else {
        return Ok(Vec::new());
    };
    let file = tether::secrets::expand_home(tether::spec::DEFAULT_SSH_CONFIG, Some(&home));
    let text = match std::fs::read_to_string(&file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read `{}`", file.display())),
    };
    let mut instances: Vec<(String, Vec<String>)> = found
        .resources
        .values()
        .filter_map(|r| match &r.state {
            ResourceState::Instance(i) => Some((
                r.address.name.clone(),
                i.public_ip.iter().cloned().collect(),
            )),
            _ => None,
        })
        .collect();
    for resource in found.resources.values() {
        if let ResourceState::ElasticIp(address) = &resource.state {
            if let (Some(instance), Some(ip)) = (&address.instance, &address.public_ip) {
                if let Some((_, names)) = instances.iter_mut().find(|(n, _)| n == instance) {
                    names.push(ip.clone());
                }
            }
        }
    }
    Ok(tether::import::ssh_hosts(&text, &instances))
}
