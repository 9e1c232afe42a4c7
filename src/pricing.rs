//! What the planned lab costs while it runs: the instances per hour (on-demand, or a spot
//! instance's ceiling beside the current spot price), their disks per month, and the
//! Elastic IPs' public IPv4 addresses. Pure: reads a plan and the prices, returns numbers;
//! `render` words them and `tether plan --json` carries them.
//!
//! Prices come from two tables, each price from the newer one that has it: the table
//! tether ships with its date (Linux on-demand prices in USD for common instance types in
//! the regions that share us-east-1's prices), and the cache `tether prices refresh` writes
//! from AWS's Price List API and spot price history (`PriceCache`, per region, dated).
//! Anything in neither is "price unknown", never a guess. Every figure says which table
//! it came from and how old that is; prices older than `STALE_AFTER_DAYS` are flagged.
//! The point is the seed's advice: a stopped instance pays for its disks only, and the
//! plan shows what `state: stopped` saves.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::kinds::ResourceState;
use crate::model::{Kind, Market, RunState};
use crate::plan::{Action, Plan};

/// When the shipped table's prices were read off AWS's public price list.
pub const PRICES_AS_OF: &str = "2025-01";

/// Where the shipped table's prices come from.
pub const PRICES_SOURCE: &str = "the table shipped with tether";

/// Where refreshed prices come from.
pub const REFRESHED_SOURCE: &str = "AWS Price List API and spot price history";

/// Prices older than this many days are flagged.
pub const STALE_AFTER_DAYS: i64 = 30;

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

/// A table's date and source.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Origin {
    /// `2025-01` or `2026-12-03`.
    pub as_of: String,
    pub source: String,
}

/// One region's prices from one refresh.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RegionPrices {
    /// The day they were read, `YYYY-MM-DD`.
    pub as_of: String,
    pub source: String,
    /// Linux on-demand USD per hour, by instance type.
    #[serde(default)]
    pub on_demand: BTreeMap<String, f64>,
    /// USD per GiB-month, by volume type.
    #[serde(default)]
    pub ebs: BTreeMap<String, f64>,
    /// USD per hour of a public IPv4 address.
    #[serde(default)]
    pub public_ipv4: Option<f64>,
    /// The lowest current spot price (Linux) across the region's zones, by instance type.
    #[serde(default)]
    pub spot: BTreeMap<String, f64>,
}

/// What `tether prices refresh` keeps in the user's cache directory.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PriceCache {
    pub format_version: u32,
    #[serde(default)]
    pub regions: BTreeMap<String, RegionPrices>,
}

/// The prices a plan in `region` is costed with: each from the newer of the shipped table
/// and the cache's table of the region that has it.
#[derive(Clone, Copy, Debug)]
pub struct Prices<'a> {
    region: &'a str,
    cached: Option<&'a RegionPrices>,
}

impl<'a> Prices<'a> {
    /// The shipped table and, when given, the cache.
    pub fn new(region: &'a str, cache: Option<&'a PriceCache>) -> Prices<'a> {
        Prices {
            region,
            cached: cache.and_then(|cache| cache.regions.get(region)),
        }
    }

    /// The shipped table alone.
    pub fn shipped(region: &'a str) -> Prices<'a> {
        Prices::new(region, None)
    }

    /// `pick` from the cache when it is newer than the shipped table and has it, else from
    /// the shipped table when its region is covered.
    fn pick(
        &self,
        cached: impl Fn(&RegionPrices) -> Option<f64>,
        shipped: impl Fn() -> Option<f64>,
    ) -> Option<(f64, Origin)> {
        let from_cache = self
            .cached
            .filter(|table| table.as_of.as_str() >= PRICES_AS_OF)
            .and_then(|table| Some((cached(table)?, table.origin())));
        from_cache.or_else(|| {
            REGIONS
                .contains(&self.region)
                .then(shipped)
                .flatten()
                .map(|price| (price, shipped_origin()))
        })
    }

    /// An instance type's on-demand hourly price.
    pub fn on_demand_hourly(&self, instance_type: &str) -> Option<(f64, Origin)> {
        self.pick(
            |table| table.on_demand.get(instance_type).copied(),
            || table_price(ON_DEMAND, instance_type),
        )
    }

    /// A volume type's price per GiB-month.
    pub fn ebs_gib_month(&self, volume_type: &str) -> Option<(f64, Origin)> {
        self.pick(
            |table| table.ebs.get(volume_type).copied(),
            || table_price(EBS, volume_type),
        )
    }

    /// A public IPv4 address per hour.
    pub fn public_ipv4_hourly(&self) -> Option<(f64, Origin)> {
        self.pick(|table| table.public_ipv4, || Some(PUBLIC_IPV4))
    }

    /// The current spot price of an instance type (refreshed prices only: it moves hourly).
    pub fn spot_hourly(&self, instance_type: &str) -> Option<(f64, Origin)> {
        let table = self.cached?;
        Some((*table.spot.get(instance_type)?, table.origin()))
    }
}

impl RegionPrices {
    fn origin(&self) -> Origin {
        Origin {
            as_of: self.as_of.clone(),
            source: self.source.clone(),
        }
    }
}

fn shipped_origin() -> Origin {
    Origin {
        as_of: PRICES_AS_OF.to_string(),
        source: PRICES_SOURCE.to_string(),
    }
}

fn table_price(table: &[(&str, f64)], name: &str) -> Option<f64> {
    table.iter().find(|(n, _)| *n == name).map(|(_, p)| *p)
}

/// The instance types the shipped table prices (what `prices refresh --all` asks about).
pub fn shipped_instance_types() -> impl Iterator<Item = &'static str> {
    ON_DEMAND.iter().map(|(name, _)| *name)
}

/// Whether prices of `as_of` (`YYYY-MM` or `YYYY-MM-DD`) are older than
/// `STALE_AFTER_DAYS` on `today`. A date that does not parse counts as stale.
pub fn is_stale(as_of: &str, today: time::Date) -> bool {
    let day = if as_of.len() == 7 {
        format!("{as_of}-01")
    } else {
        as_of.to_string()
    };
    let format = time::macros::format_description!("[year]-[month]-[day]");
    match time::Date::parse(&day, format) {
        Ok(date) => (today - date).whole_days() > STALE_AFTER_DAYS,
        Err(_) => true,
    }
}

/// What AWS answered a refresh of one region, for `region_prices`.
#[derive(Clone, Debug, Default)]
pub struct Refreshed {
    /// Per instance type, the Price List documents of its Linux on-demand products.
    pub on_demand: Vec<(String, Vec<String>)>,
    /// Per volume type, the documents of its storage products.
    pub ebs: Vec<(String, Vec<String>)>,
    /// The documents of the public IPv4 address products.
    pub public_ipv4: Vec<String>,
    pub spot: Vec<crate::aws::SpotPrice>,
}

/// A region's table from what a refresh on `as_of` (`YYYY-MM-DD`) read: each type's price
/// from its documents (left out where they hold none), and each type's lowest spot price
/// across the zones.
pub fn region_prices(as_of: &str, refreshed: &Refreshed) -> RegionPrices {
    let priced = |answers: &[(String, Vec<String>)], unit: &str| -> BTreeMap<String, f64> {
        answers
            .iter()
            .filter_map(|(name, documents)| {
                let price = documents
                    .iter()
                    .find_map(|document| price_list_price(document, unit))?;
                Some((name.clone(), price))
            })
            .collect()
    };
    let mut spot: BTreeMap<String, f64> = BTreeMap::new();
    for price in &refreshed.spot {
        let lowest = spot
            .entry(price.instance_type.clone())
            .or_insert(price.usd_per_hour);
        *lowest = lowest.min(price.usd_per_hour);
    }
    RegionPrices {
        as_of: as_of.to_string(),
        source: REFRESHED_SOURCE.to_string(),
        on_demand: priced(&refreshed.on_demand, "Hrs"),
        ebs: priced(&refreshed.ebs, "GB-Mo"),
        public_ipv4: refreshed
            .public_ipv4
            .iter()
            .find_map(|document| price_list_price(document, "Hrs")),
        spot,
    }
}

/// The USD price per `unit` (`Hrs`, `GB-Mo`) of a product in the Price List API's answer
/// (one `PriceList` entry, a JSON document): its on-demand terms' first price dimension
/// in that unit with a price above zero. `None` when it has none.
pub fn price_list_price(document: &str, unit: &str) -> Option<f64> {
    let product: serde_json::Value = serde_json::from_str(document).ok()?;
    let terms = product.get("terms")?.get("OnDemand")?.as_object()?;
    terms
        .values()
        .filter_map(|term| term.get("priceDimensions")?.as_object())
        .flat_map(|dimensions| dimensions.values())
        .filter(|dimension| dimension.get("unit").and_then(|u| u.as_str()) == Some(unit))
        .filter_map(|dimension| {
            dimension
                .get("pricePerUnit")?
                .get("USD")?
                .as_str()?
                .parse::<f64>()
                .ok()
        })
        .find(|price| *price > 0.0)
}

/// What the plan's lab costs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Costs {
    /// The date of the oldest prices used (`2025-01`, `2026-12-03`).
    pub prices_as_of: String,
    /// The tables the prices came from, each with its date.
    pub price_sources: Vec<Origin>,
    /// Some price used is older than `STALE_AFTER_DAYS`: `tether prices refresh`.
    pub prices_stale: bool,
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
    /// A spot instance's current spot price per hour (the lowest across the region's
    /// zones), from refreshed prices; `None`: not refreshed, or on-demand.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spot_now: Option<f64>,
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
    /// A month of the lab as planned: the instances planned to run and the Elastic IPs for
    /// `HOURS_PER_MONTH`, and every disk; `None` when any price is unknown.
    pub fn monthly(&self) -> Option<f64> {
        Some(self.running_hourly? * HOURS_PER_MONTH + self.disks_monthly?)
    }

    /// A day of the lab as planned: the instances planned to run and the Elastic IPs all
    /// day, and a day's share of every disk; `None` when any price is unknown.
    pub fn per_day(&self) -> Option<f64> {
        Some(self.running_hourly? * 24.0 + self.disks_monthly? * 24.0 / HOURS_PER_MONTH)
    }
}

/// The costs of the instances and Elastic IPs the plan keeps or makes, at `prices`, with
/// their age on `today`; `None` when it has neither (a destroy plan keeps nothing; what it
/// lets go of is no longer the project's to pay for).
pub fn plan_costs(plan: &Plan, prices: &Prices<'_>, today: time::Date) -> Option<Costs> {
    let kept = |kind: Kind| {
        plan.changes.iter().filter(move |change| {
            change.address.kind == kind && !matches!(change.action, Action::Delete | Action::Forget)
        })
    };
    let mut used: BTreeSet<Origin> = BTreeSet::new();
    let mut price = |found: Option<(f64, Origin)>| {
        found.map(|(price, origin)| {
            used.insert(origin);
            price
        })
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
        let ceiling = after
            .max_price
            .as_deref()
            .and_then(|price| price.parse::<f64>().ok());
        let (hourly, spot_now) = match after.market {
            Market::OnDemand => (price(prices.on_demand_hourly(&after.instance_type)), None),
            Market::Spot => {
                let on_demand = prices.on_demand_hourly(&after.instance_type);
                let hourly = match ceiling {
                    Some(ceiling) => Some(ceiling),
                    None => price(on_demand),
                };
                (hourly, price(prices.spot_hourly(&after.instance_type)))
            }
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
                .map(|(gib, kind)| price(prices.ebs_gib_month(kind)).map(|p| p * *gib as f64))
                .sum::<Option<f64>>()
        };
        instances.push(InstanceCost {
            name: change.address.name.clone(),
            instance_type: after.instance_type.clone(),
            market: after.market,
            state: after.state,
            hourly,
            hourly_is_ceiling: after.market == Market::Spot,
            spot_now,
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
    let elastic_ips_hourly = match elastic_ips {
        0 => Some(0.0),
        n => price(prices.public_ipv4_hourly()).map(|p| p * n as f64),
    };
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
    let price_sources: Vec<Origin> = used.into_iter().collect();
    let oldest = price_sources
        .iter()
        .map(|origin| origin.as_of.as_str())
        .min()
        .unwrap_or(PRICES_AS_OF);
    Some(Costs {
        prices_as_of: oldest.to_string(),
        prices_stale: is_stale(oldest, today),
        price_sources,
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
        let price = |region, kind| Prices::shipped(region).on_demand_hourly(kind).map(|p| p.0);
        assert_eq!(price("us-east-1", "m5.xlarge"), Some(0.192));
        assert_eq!(price("us-west-2", "t3.micro"), Some(0.0104));
        assert_eq!(price("eu-west-1", "t3.micro"), None);
        assert_eq!(price("us-east-1", "x9z.huge"), None);
        let ebs = |region| Prices::shipped(region).ebs_gib_month("gp3").map(|p| p.0);
        assert_eq!(ebs("us-east-2"), Some(0.08));
        assert_eq!(ebs("ap-south-1"), None);
    }

    #[test]
    fn a_newer_cache_wins_where_it_has_the_price_and_says_so() {
        let mut cache = PriceCache::default();
        cache.regions.insert(
            "eu-west-1".into(),
            RegionPrices {
                as_of: "2026-12-01".into(),
                source: REFRESHED_SOURCE.into(),
                on_demand: [("m5.xlarge".to_string(), 0.214)].into(),
                spot: [("m5.xlarge".to_string(), 0.07)].into(),
                ..RegionPrices::default()
            },
        );
        let prices = Prices::new("eu-west-1", Some(&cache));
        let (price, origin) = prices.on_demand_hourly("m5.xlarge").expect("cached");
        assert_eq!((price, origin.as_of.as_str()), (0.214, "2026-12-01"));
        assert_eq!(prices.spot_hourly("m5.xlarge").map(|p| p.0), Some(0.07));
        assert_eq!(
            prices.on_demand_hourly("t3.micro"),
            None,
            "not in the cache, region not shipped"
        );
        let east = Prices::new("us-east-1", Some(&cache));
        assert_eq!(
            east.on_demand_hourly("t3.micro").map(|p| p.1.as_of),
            Some(PRICES_AS_OF.to_string())
        );
        assert_eq!(
            east.spot_hourly("m5.xlarge"),
            None,
            "spot prices are never shipped"
        );
    }

    #[test]
    fn prices_older_than_thirty_days_are_stale() {
        let today = time::macros::date!(2026 - 12 - 03);
        assert!(is_stale("2025-01", today));
        assert!(!is_stale("2026-11-20", today));
        assert!(is_stale("2026-11-02", today));
        assert!(is_stale("garbage", today));
    }

    #[test]
    fn a_price_list_document_gives_its_on_demand_price_per_unit() {
        let document = r#"{"product": {"productFamily": "Compute Instance", "attributes": {"instanceType": "m5.xlarge"}, "sku": "ABC"},
            "serviceCode": "AmazonEC2",
            "terms": {"OnDemand": {"ABC.JRTCKXETXF": {"priceDimensions": {"ABC.JRTCKXETXF.6YS6EN2CT7": {
                "unit": "Hrs", "pricePerUnit": {"USD": "0.1920000000"}, "description": "$0.192 per On Demand Linux m5.xlarge Instance Hour"}}}},
                "Reserved": {"ABC.X": {"priceDimensions": {"ABC.X.Y": {"unit": "Hrs", "pricePerUnit": {"USD": "0.1200000000"}}}}}}}"#;
        assert_eq!(price_list_price(document, "Hrs"), Some(0.192));
        assert_eq!(price_list_price(document, "GB-Mo"), None);
        assert_eq!(price_list_price("not json", "Hrs"), None);
    }
}
