//! What the planned lab costs while it runs: the instances per hour (on-demand, or a spot
//! instance's ceiling), their disks per month, and the Elastic IPs' public IPv4 addresses,
//! from a table of AWS list prices that tether ships with its date. Pure: reads a plan,
//! returns numbers; `render` words them and `tether plan --json` carries them.
//!
//! The table holds Linux on-demand prices in USD for common instance types in the regions
//! that share us-east-1's prices; anything else is "price unknown", never a guess. The
//! point is the seed's advice: a stopped instance pays for its disks only, and the plan
//! shows what `state: stopped` saves.

use serde::Serialize;

use crate::kinds::ResourceState;
use crate::model::{Kind, Market, RunState};
use crate::plan::{Action, Plan};

/// When the table's prices were read off AWS's public price list.
pub const PRICES_AS_OF: &str = "2025-01";

/// Where the table's prices come from.
pub const PRICES_SOURCE: &str = "the table shipped with tether";

/// Regions whose prices the table holds (they list the same prices for these types).
const REGIONS: [&str; 3] = ["us-east-1", "us-east-2", "us-west-2"];

/// Linux on-demand USD per hour.
const ON_DEMAND: &[(&str, f64)] = &[
    ("t2.micro", 0.0116),
    ("t2.small", 0.023),
    ("t2.medium", 0.0464),
    ("t2.large", 0.0928),
    ("t3.nano", 0.0052),
    ("t3.micro", 0.0104),
    ("t3.small", 0.0208),
    ("t3.medium", 0.0416),
    ("t3.large", 0.0832),
    ("t3.xlarge", 0.1664),
    ("t3.2xlarge", 0.3328),
    ("t3a.micro", 0.0094),
    ("t3a.small", 0.0188),
    ("t3a.medium", 0.0376),
    ("t3a.large", 0.0752),
    ("t3a.xlarge", 0.1504),
    ("t4g.micro", 0.0084),
    ("t4g.small", 0.0168),
    ("t4g.medium", 0.0336),
    ("t4g.large", 0.0672),
    ("m5.large", 0.096),
    ("m5.xlarge", 0.192),
    ("m5.2xlarge", 0.384),
    ("m5.4xlarge", 0.768),
    ("m5.8xlarge", 1.536),
    ("m6i.large", 0.096),
    ("m6i.xlarge", 0.192),
    ("m6i.2xlarge", 0.384),
    ("m6i.4xlarge", 0.768),
    ("c5.large", 0.085),
    ("c5.xlarge", 0.17),
    ("c5.2xlarge", 0.34),
    ("c5.4xlarge", 0.68),
    ("c5.9xlarge", 1.53),
    ("c6i.large", 0.085),
    ("c6i.xlarge", 0.17),
    ("c6i.2xlarge", 0.34),
    ("c6i.4xlarge", 0.68),
    ("r5.large", 0.126),
    ("r5.xlarge", 0.252),
    ("r5.2xlarge", 0.504),
    ("r5.4xlarge", 1.008),
    ("r6i.large", 0.126),
    ("r6i.xlarge", 0.252),
    ("r6i.2xlarge", 0.504),
    ("g4dn.xlarge", 0.526),
    ("g4dn.2xlarge", 0.752),
    ("g5.xlarge", 1.006),
    ("g5.2xlarge", 1.212),
    ("p3.2xlarge", 3.06),
];

/// EBS USD per GiB-month, by volume type.
const EBS: &[(&str, f64)] = &[
    ("gp3", 0.08),
    ("gp2", 0.10),
    ("io1", 0.125),
    ("io2", 0.125),
    ("st1", 0.045),
    ("sc1", 0.015),
    ("standard", 0.05),
];

/// Every public IPv4 address, an Elastic IP in use or not, per hour.
const PUBLIC_IPV4: f64 = 0.005;

/// Hours in the month the plan's monthly figures use (AWS bills 730 on average).
pub const HOURS_PER_MONTH: f64 = 730.0;

/// An instance type's on-demand hourly price in the region, if the table has it.
pub fn on_demand_hourly(region: &str, instance_type: &str) -> Option<f64> {
    if !REGIONS.contains(&region) {
        return None;
    }
    ON_DEMAND
        .iter()
        .find(|(name, _)| *name == instance_type)
        .map(|(_, price)| *price)
}

/// A volume type's price per GiB-month in the region, if the table has it.
pub fn ebs_gib_month(region: &str, volume_type: &str) -> Option<f64> {
    if !REGIONS.contains(&region) {
        return None;
    }
    EBS.iter()
        .find(|(name, _)| *name == volume_type)
        .map(|(_, price)| *price)
}

/// What the plan's lab costs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Costs {
    /// The table's date.
    pub prices_as_of: &'static str,
    pub currency: &'static str,
    pub region: String,
    pub instances: Vec<InstanceCost>,
    /// Elastic IPs the plan keeps or makes, each a public IPv4 address billed by the hour.
    pub elastic_ips: usize,
    /// What the Elastic IPs cost per hour, running instances or not; `None`: unknown here.
    pub elastic_ips_hourly: Option<f64>,
    /// Per hour, the instances that will be running plus the Elastic IPs; `None` when any
    /// of them has no known price.
    pub running_hourly: Option<f64>,
    /// Per month, every instance's disks (stopped ones too); `None` when any is unknown.
    pub disks_monthly: Option<f64>,
    /// Per hour, what the instances declared `state: stopped` would cost running.
    pub stopped_saves_hourly: Option<f64>,
}

/// One instance's prices.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct InstanceCost {
    pub name: String,
    pub instance_type: String,
    pub market: Market,
    pub state: RunState,
    /// Per hour while running: the on-demand price, or a spot instance's ceiling (its
    /// `max_price`, else the on-demand price); `None`: price unknown.
    pub hourly: Option<f64>,
    /// `hourly` is a spot ceiling: the spot price is usually far below it.
    pub hourly_is_ceiling: bool,
    /// The disks' size: the root volume and the extra volumes.
    pub disk_gib: i64,
    /// The disks per month; `None`: unknown (a type or region outside the table, or a root
    /// volume left at the image's size).
    pub disks_monthly: Option<f64>,
    /// Its idle rule, in words (`stops after 30m idle`): it does not run, and cost, longer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_stop: Option<String>,
}

impl Costs {
    /// A day of the lab as planned: the instances planned to run and the Elastic IPs all
    /// day, and a day's share of every disk; `None` when any price is unknown.
    pub fn per_day(&self) -> Option<f64> {
        Some(self.running_hourly? * 24.0 + self.disks_monthly? * 24.0 / HOURS_PER_MONTH)
    }
}

/// The costs of the instances and Elastic IPs the plan keeps or makes; `None` when it has
/// neither (a destroy plan keeps nothing).
pub fn plan_costs(plan: &Plan) -> Option<Costs> {
    let kept = |kind: Kind| {
        plan.changes
            .iter()
            .filter(move |change| change.address.kind == kind && change.action != Action::Delete)
    };
    let mut instances = Vec::new();
    for change in kept(Kind::Instance) {
        let Some(ResourceState::Instance(after)) = &change.after else {
            continue;
        };
        // The root volume's size: the spec's, else what the live instance has.
        let root = after.root_volume_gb.or(match &change.before {
            Some(ResourceState::Instance(before)) => before.root_volume_gb,
            _ => None,
        });
        let on_demand = on_demand_hourly(&plan.region, &after.instance_type);
        let ceiling = after
            .max_price
            .as_deref()
            .and_then(|price| price.parse::<f64>().ok());
        let hourly = match after.market {
            Market::OnDemand => on_demand,
            Market::Spot => ceiling.or(on_demand),
        };
        // The root volume is priced as gp3, the type of current Amazon Linux images.
        let mut disks = root
            .map(|gib| (i64::from(gib), "gp3"))
            .into_iter()
            .collect::<Vec<_>>();
        disks.extend(
            after
                .volumes
                .values()
                .map(|v| (i64::from(v.size_gb), v.volume_type.as_str())),
        );
        let disks_monthly = if root.is_none() {
            None
        } else {
            disks
                .iter()
                .map(|(gib, kind)| ebs_gib_month(&plan.region, kind).map(|p| p * *gib as f64))
                .sum::<Option<f64>>()
        };
        instances.push(InstanceCost {
            name: change.address.name.clone(),
            instance_type: after.instance_type.clone(),
            market: after.market,
            state: after.state,
            hourly,
            hourly_is_ceiling: after.market == Market::Spot,
            disk_gib: disks.iter().map(|(gib, _)| gib).sum(),
            disks_monthly,
            idle_stop: after
                .idle_stop
                .as_ref()
                .map(crate::idle::IdleRule::describe),
        });
    }
    let elastic_ips = kept(Kind::ElasticIp).count();
    if instances.is_empty() && elastic_ips == 0 {
        return None;
    }
    let elastic_ips_hourly = REGIONS
        .contains(&plan.region.as_str())
        .then_some(PUBLIC_IPV4 * elastic_ips as f64);
    let running_hourly = instances
        .iter()
        .filter(|i| i.state == RunState::Running)
        .map(|i| i.hourly)
        .chain(std::iter::once(elastic_ips_hourly))
        .sum::<Option<f64>>();
    let disks_monthly = instances
        .iter()
        .map(|i| i.disks_monthly)
        .sum::<Option<f64>>();
    let stopped_saves_hourly = instances
        .iter()
        .filter(|i| i.state == RunState::Stopped)
        .map(|i| i.hourly)
        .sum::<Option<f64>>();
    Some(Costs {
        prices_as_of: PRICES_AS_OF,
        currency: "USD",
        region: plan.region.clone(),
        instances,
        elastic_ips,
        elastic_ips_hourly,
        running_hourly,
        disks_monthly,
        stopped_saves_hourly,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_knows_common_types_in_its_regions_only() {
        assert_eq!(on_demand_hourly("us-east-1", "m5.xlarge"), Some(0.192));
        assert_eq!(on_demand_hourly("us-west-2", "t3.micro"), Some(0.0104));
        assert_eq!(on_demand_hourly("eu-west-1", "t3.micro"), None);
        assert_eq!(on_demand_hourly("us-east-1", "x9z.huge"), None);
        assert_eq!(ebs_gib_month("us-east-2", "gp3"), Some(0.08));
        assert_eq!(ebs_gib_month("ap-south-1", "gp3"), None);
    }
}
