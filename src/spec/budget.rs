//! `budget:`: a monthly AWS Budgets cost budget on the project's tag, with e-mail alerts at
//! percentages of its limit and, optionally, on AWS's forecast.

use std::collections::BTreeSet;

use serde::Deserialize;

use super::Checker;
use crate::diagnostic::Location;
use crate::model::{decimal_text, AlertKind, BudgetAlert};

/// AWS Budgets allows this many notifications per budget.
const MOST_ALERTS: usize = 5;

/// AWS Budgets allows this many e-mail subscribers per notification.
const MOST_SUBSCRIBERS: usize = 10;

/// The project's monthly cost budget.
#[derive(Clone, Debug, PartialEq)]
pub struct BudgetSpec {
    /// The month's limit in USD, as decimal text (`100`, `42.5`).
    pub monthly_usd: String,
    /// The limit as a number, for comparing with the plan's costs.
    pub monthly: f64,
    pub alerts: Vec<BudgetAlert>,
    /// Take over a budget of the project's name that tether did not make.
    pub adopt: bool,
    pub location: Location,
}

/// A monthly cost budget for the project's resources (those tagged with the project),
/// with e-mail alerts.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Budget")]
pub(super) struct RawBudget {
    /// The month's limit in USD.
    #[schemars(range(min = 0.01))]
    monthly_usd: f64,
    /// E-mail `notify` when the month's spend passes these percentages of the limit.
    #[serde(default)]
    alert_at: Vec<f64>,
    /// Also e-mail `notify` when AWS forecasts the month's spend will pass the limit.
    #[serde(default)]
    forecast_alert: bool,
    /// The e-mail addresses the alerts go to (at most 10).
    #[serde(default)]
    notify: Vec<String>,
    /// Take over a budget of the project's name (`tether-<project>`) that tether did not
    /// make.
    #[serde(default)]
    adopt: bool,
}

/// Whether `address` can be an e-mail address: one `@` with text on both sides, no space or
/// control character.
fn is_email(address: &str) -> bool {
    let Some((local, domain)) = address.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.contains('@')
        && address.len() <= 254
        && !address.chars().any(|c| c.is_whitespace() || c.is_control())
}

impl Checker<'_> {
    pub(super) fn check_budget(&mut self, raw: Option<RawBudget>) -> Option<BudgetSpec> {
        let raw = raw?;
        let at = |key: &'static str| ["budget", key];
        if !(raw.monthly_usd.is_finite() && raw.monthly_usd >= 0.01 && raw.monthly_usd <= 1e9) {
            let location = self.value_location(&at("monthly_usd"));
            self.error(
                location,
                format!(
                    "a monthly budget of {} USD is not one AWS takes",
                    raw.monthly_usd
                ),
                Some("give the month's limit in USD, at least 0.01".into()),
            );
        }
        let mut alerts = Vec::new();
        let mut seen = BTreeSet::new();
        for (index, percent) in raw.alert_at.iter().enumerate() {
            let index = index.to_string();
            let location = self.value_location(&["budget", "alert_at", index.as_str()]);
            if !(percent.is_finite() && *percent > 0.0 && *percent <= 1000.0) {
                self.error(
                    location,
                    format!("an alert at {percent}% of the budget is outside 0 to 1000"),
                    Some("alerts are percentages of the monthly limit, such as 80 or 100".into()),
                );
                continue;
            }
            let text = decimal_text(*percent);
            if !seen.insert(text.clone()) {
                self.error(
                    location,
                    format!("an alert at {text}% is given twice"),
                    None,
                );
                continue;
            }
            alerts.push((AlertKind::Actual, text));
        }
        if raw.forecast_alert {
            alerts.push((AlertKind::Forecasted, "100".to_string()));
        }
        if alerts.len() > MOST_ALERTS {
            let location = self.value_location(&at("alert_at"));
            self.error(
                location,
                format!(
                    "{} alerts (the forecast one included) are more than AWS Budgets' {MOST_ALERTS} per budget",
                    alerts.len()
                ),
                None,
            );
        }
        let mut subscribers = BTreeSet::new();
        for (index, address) in raw.notify.iter().enumerate() {
            if !is_email(address) {
                let index = index.to_string();
                let location = self.value_location(&["budget", "notify", index.as_str()]);
                self.error(
                    location,
                    format!("`{}` is not an e-mail address", address.escape_debug()),
                    None,
                );
                continue;
            }
            subscribers.insert(address.clone());
        }
        if subscribers.len() > MOST_SUBSCRIBERS {
            let location = self.value_location(&at("notify"));
            self.error(
                location,
                format!(
                    "{} addresses are more than AWS Budgets' {MOST_SUBSCRIBERS} per alert",
                    subscribers.len()
                ),
                None,
            );
        }
        if !alerts.is_empty() && raw.notify.is_empty() {
            let location = self.key_location(&["budget"]);
            self.error(
                location,
                "the budget's alerts notify nobody".into(),
                Some("add `notify: [you@example.com]`".into()),
            );
        }
        let mut alerts: Vec<BudgetAlert> = alerts
            .into_iter()
            .map(|(kind, percent)| BudgetAlert {
                kind,
                percent,
                subscribers: subscribers.clone(),
            })
            .collect();
        alerts.sort();
        Some(BudgetSpec {
            monthly_usd: decimal_text(raw.monthly_usd),
            monthly: raw.monthly_usd,
            alerts,
            adopt: raw.adopt,
            location: self.key_location(&["budget"]),
        })
    }
}
