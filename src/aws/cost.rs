//! Cost Explorer: what the project's tagged resources cost, by day and by service, AWS's
//! forecast for the rest of a month, and whether the project's tag is one Cost Explorer
//! may filter by (an active cost allocation tag). Amounts stay AWS's decimal strings:
//! sums are made exactly, in `crate::cost`.

use aws_sdk_costexplorer::types::{
    DateInterval, Expression, Granularity, GroupDefinition, GroupDefinitionType, MatchOption,
    Metric, TagValues,
};

use super::{classify, AwsError, AwsErrorKind, Cloud};

/// The cost metric read: what the account is billed, before credits are shared out.
const METRIC: &str = "UnblendedCost";

/// One day (or other period) of cost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeriodCost {
    /// `YYYY-MM-DD`, the first day of the period.
    pub start: String,
    /// AWS has not closed the period's figures yet.
    pub estimated: bool,
    /// The period's total as AWS gives it (`None` when it gives only per-service figures).
    pub total: Option<Amount>,
    /// Per service (Cost Explorer's SERVICE dimension).
    pub services: Vec<(String, Amount)>,
}

/// An amount of money as AWS wrote it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Amount {
    /// A decimal number, `"0.0101516483"`.
    pub amount: String,
    /// `"USD"`.
    pub unit: String,
}

/// Whether Cost Explorer may filter by a tag key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TagStatus {
    Active,
    Inactive,
    /// Billing has not seen the key yet (it lists a key up to a day after first use).
    NotListed,
}

fn tag_filter(key: &str, value: &str) -> Expression {
    Expression::builder()
        .tags(
            TagValues::builder()
                .key(key)
                .values(value)
                .match_options(MatchOption::Equals)
                .build(),
        )
        .build()
}

fn interval(operation: &'static str, start: &str, end: &str) -> Result<DateInterval, AwsError> {
    DateInterval::builder()
        .start(start)
        .end(end)
        .build()
        .map_err(|e| AwsError {
            operation,
            resource: String::new(),
            code: None,
            message: e.to_string(),
            kind: AwsErrorKind::Service,
        })
}

fn amount(value: &aws_sdk_costexplorer::types::MetricValue) -> Option<Amount> {
    Some(Amount {
        amount: value.amount()?.to_string(),
        unit: value.unit().unwrap_or("USD").to_string(),
    })
}

impl Cloud {
    /// The daily cost, by service, of resources tagged `key` = `value`, from `start` to
    /// `end` (`YYYY-MM-DD`, the end excluded). One GetCostAndUsage call per page.
    pub async fn daily_costs(
        &self,
        (key, value): (&str, &str),
        start: &str,
        end: &str,
    ) -> Result<Vec<PeriodCost>, AwsError> {
        let period = interval("GetCostAndUsage", start, end)?;
        let mut days = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .ce
                .get_cost_and_usage()
                .time_period(period.clone())
                .granularity(Granularity::Daily)
                .metrics(METRIC)
                .filter(tag_filter(key, value))
                .group_by(
                    GroupDefinition::builder()
                        .r#type(GroupDefinitionType::Dimension)
                        .key("SERVICE")
                        .build(),
                )
                .set_next_page_token(token.take())
                .send()
                .await
                .map_err(|e| classify("GetCostAndUsage", value, e))?;
            for result in page.results_by_time() {
                let Some(start) = result.time_period().map(|p| p.start().to_string()) else {
                    continue;
                };
                let total = result
                    .total()
                    .and_then(|total| total.get(METRIC))
                    .and_then(amount);
                let services = result
                    .groups()
                    .iter()
                    .filter_map(|group| {
                        let service = group.keys().first()?.clone();
                        let cost = group.metrics()?.get(METRIC).and_then(amount)?;
                        Some((service, cost))
                    })
                    .collect();
                days.push(PeriodCost {
                    start,
                    estimated: result.estimated(),
                    total,
                    services,
                });
            }
            match page.next_page_token() {
                Some(next) if !next.is_empty() => token = Some(next.to_string()),
                _ => return Ok(days),
            }
        }
    }

    /// AWS's forecast of what resources tagged `key` = `value` will cost from `start` to
    /// `end`; `None` when AWS has too little history to forecast (DataUnavailable).
    pub async fn cost_forecast(
        &self,
        (key, value): (&str, &str),
        start: &str,
        end: &str,
    ) -> Result<Option<Amount>, AwsError> {
        let result = self
            .ce
            .get_cost_forecast()
            .time_period(interval("GetCostForecast", start, end)?)
            .metric(Metric::UnblendedCost)
            .granularity(Granularity::Monthly)
            .filter(tag_filter(key, value))
            .send()
            .await
            .map_err(|e| classify("GetCostForecast", value, e));
        match result {
            Ok(output) => Ok(output.total().and_then(amount)),
            Err(error) if error.is_code("DataUnavailableException") => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Whether `key` is an active cost allocation tag of the account.
    pub async fn cost_tag_status(&self, key: &str) -> Result<TagStatus, AwsError> {
        let output = self
            .ce
            .list_cost_allocation_tags()
            .tag_keys(key)
            .send()
            .await
            .map_err(|e| classify("ListCostAllocationTags", key, e))?;
        let status = output
            .cost_allocation_tags()
            .iter()
            .find(|tag| tag.tag_key() == key)
            .map(|tag| tag.status().as_str() == "Active");
        Ok(match status {
            Some(true) => TagStatus::Active,
            Some(false) => TagStatus::Inactive,
            None => TagStatus::NotListed,
        })
    }
}
