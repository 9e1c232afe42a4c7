//! `tether prices refresh`: today's prices for the spec's region (its instance types, or
//! every type the shipped table knows), from AWS's Price List Query API and the spot price
//! history, into the user's cache directory, where `plan` and `cost` take them when they
//! are newer than the shipped table.

use std::collections::BTreeSet;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use futures::stream::{self, StreamExt, TryStreamExt};

use super::printer::Printer;
use super::Exit;
use tether::pricing::{PriceCache, Refreshed};

/// Price List calls in flight at once.
const CONCURRENT_CALLS: usize = 8;

#[derive(Debug, Subcommand)]
pub enum PricesCommand {
    /// Read today's prices for the spec's region and instance types (every type of the
    /// shipped table with --all) into the cache `plan` and `cost` use.
    Refresh(RefreshArgs),
}

#[derive(Debug, Args)]
pub struct RefreshArgs {
    /// The spec file.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Every instance type of the shipped table, not only the spec's.
    #[arg(long)]
    pub all: bool,
}

/// Each of `names`' Price List documents, asked with `filters(name)`.
async fn documents(
    cloud: &tether::aws::Cloud,
    service: &str,
    names: &BTreeSet<String>,
    filters: impl Fn(&str) -> Vec<(&'static str, String)>,
) -> anyhow::Result<Vec<(String, Vec<String>)>> {
    let found = stream::iter(names)
        .map(|name| {
            let filters = filters(name);
            async move {
                let pairs: Vec<(&str, &str)> =
                    filters.iter().map(|(k, v)| (*k, v.as_str())).collect();
                let documents = cloud.price_list(service, &pairs).await?;
                Ok::<_, tether::aws::AwsError>((name.clone(), documents))
            }
        })
        .buffer_unordered(CONCURRENT_CALLS)
        .try_collect()
        .await?;
    Ok(found)
}

pub async fn exec(command: PricesCommand, printer: &Printer) -> anyhow::Result<Exit> {
    let PricesCommand::Refresh(RefreshArgs { file, all }) = command;
    let spec = super::load_spec(&super::spec_path(file))?;
    let region = spec
        .region
        .clone()
        .context("the spec names no region: prices are per region (add `region:` to the spec)")?;
    let cache_file = super::prices_cache_file().context(
        "neither XDG_CACHE_HOME nor HOME is set: there is no cache directory for the prices",
    )?;
    let mut types: BTreeSet<String> = spec
        .instances
        .values()
        .map(|instance| instance.instance_type.clone())
        .collect();
    if all {
        types.extend(tether::pricing::shipped_instance_types().map(str::to_string));
    }
    let mut volume_types: BTreeSet<String> = ["gp3".to_string()].into();
    volume_types.extend(
        spec.instances
            .values()
            .flat_map(|instance| instance.volumes.values().map(|v| v.volume_type.clone())),
    );
    let cloud = super::connect(Some(&region)).await?;
    let compute = |instance_type: &str| {
        vec![
            ("regionCode", region.clone()),
            ("instanceType", instance_type.to_string()),
            ("operatingSystem", "Linux".to_string()),
            ("tenancy", "Shared".to_string()),
            ("preInstalledSw", "NA".to_string()),
            ("capacitystatus", "Used".to_string()),
        ]
    };
    let storage = |volume_type: &str| {
        vec![
            ("regionCode", region.clone()),
            ("productFamily", "Storage".to_string()),
            ("volumeApiName", volume_type.to_string()),
        ]
    };
    let types_list: Vec<String> = types.iter().cloned().collect();
    let public_ipv4 = [
        ("regionCode", region.as_str()),
        ("group", "VPCPublicIPv4Address"),
    ];
    let (on_demand, ebs, public_ipv4, spot) = tokio::join!(
        documents(&cloud, "AmazonEC2", &types, compute),
        documents(&cloud, "AmazonEC2", &volume_types, storage),
        cloud.price_list("AmazonVPC", &public_ipv4),
        cloud.spot_prices(&types_list),
    );
    let refreshed = Refreshed {
        on_demand: on_demand.context("cannot read on-demand prices from the Price List API")?,
        ebs: ebs.context("cannot read storage prices from the Price List API")?,
        public_ipv4: public_ipv4
            .context("cannot read public IPv4 prices from the Price List API")?,
        spot: spot.context("cannot read the spot price history")?,
    };
    let today = super::today()?.to_string();
    let table = tether::pricing::region_prices(&today, &refreshed);
    for missing in types.iter().filter(|t| !table.on_demand.contains_key(*t)) {
        printer.status(&format!(
            "warning: the Price List API has no Linux on-demand price for {missing} in {region}"
        ));
    }
    let summary = format!(
        "Prices of {region} read {today} ({}): {} instance types on-demand, {} with a spot price now, {} volume types, public IPv4 {}.\nWritten to `{}`; `plan` and `cost` use them from now on.",
        table.source,
        table.on_demand.len(),
        table.spot.len(),
        table.ebs.len(),
        table
            .public_ipv4
            .map_or("not found (the shipped price stays)".to_string(), |p| format!("${p}/h")),
        cache_file.display()
    );
    let mut cache = super::prices_cache(printer).unwrap_or(PriceCache {
        format_version: 1,
        ..PriceCache::default()
    });
    cache.format_version = 1;
    cache.regions.insert(region.clone(), table);
    write_cache(&cache_file, &cache)?;
    printer.status(&summary);
    Ok(Exit::Success)
}

/// Writes the cache whole or not at all: a temporary file beside it, renamed into place.
fn write_cache(path: &std::path::Path, cache: &PriceCache) -> anyhow::Result<()> {
    let dir = path.parent().context("the cache file has no directory")?;
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot make the cache directory `{}`", dir.display()))?;
    let mut text = serde_json::to_string_pretty(cache)?;
    text.push('\n');
    super::write_whole(path, &text, true)
        .with_context(|| format!("cannot write the prices to `{}`", path.display()))
}
