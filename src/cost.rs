//! What the project has cost: the pure half of `tether cost`. Which days to ask Cost
//! Explorer about (a month so far, or a whole past month), what AWS's forecast covers, and
//! the report made of AWS's answers beside what the plan's price table predicts for the
//! same days. No I/O: the CLI asks AWS (`aws::Cloud::daily_costs`, `cost_forecast`,
//! `cost_tag_status`) and prints (`render::cost_text`).
//!
//! Amounts stay decimal from AWS's strings to the report: daily figures and their sums are
//! exact (`bigdecimal`), never rounded through floating point; only the chart's bars and
//! the price table's prediction use `f64`.

use std::collections::BTreeMap;
use std::str::FromStr;

use bigdecimal::BigDecimal;
use serde::Serialize;
use time::{Date, Duration, Month};

use crate::aws::{Amount, PeriodCost, TagStatus};

/// Which days a report covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Period {
    pub year: i32,
    pub month: Month,
    /// The first day asked about.
    pub start: Date,
    /// The day after the last one asked about (Cost Explorer's end is exclusive).
    pub end: Date,
    /// The rest of the month, for AWS's forecast: from the day after today to the end of
    /// the month; `None` for a past month, or on its last day.
    pub forecast: Option<(Date, Date)>,
}

/// Why no report can be made for what was asked.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CostError {
    #[error("`{0}` is not a month: write it as YYYY-MM, such as 2026-11")]
    NotAMonth(String),
    #[error("{0} has not begun (today is {1} in UTC)")]
    NotBegun(String, String),
    #[error("AWS gave amounts in {0} and {1}: tether adds up one currency only")]
    Currencies(String, String),
    #[error("AWS gave `{0}` as an amount, which is not a decimal number")]
    NotAnAmount(String),
}

/// `YYYY-MM` as a year and month.
pub fn parse_month(text: &str) -> Result<(i32, Month), CostError> {
    let bad = || CostError::NotAMonth(text.to_string());
    let (year, month) = text.split_once('-').ok_or_else(bad)?;
    if year.len() != 4 || month.len() != 2 {
        return Err(bad());
    }
    let year: i32 = year.parse().map_err(|_| bad())?;
    let month: u8 = month.parse().map_err(|_| bad())?;
    Ok((year, Month::try_from(month).map_err(|_| bad())?))
}

fn first_day(year: i32, month: Month) -> Date {
    Date::from_calendar_date(year, month, 1).expect("every month has a first day")
}

fn next_month(year: i32, month: Month) -> (i32, Month) {
    match month {
        Month::December => (year + 1, Month::January),
        month => (year, month.next()),
    }
}

/// The days to report for `month` (this month when `None`), as seen on `today` (UTC): a
/// past month whole; this month up to and including today, with the rest of it forecast.
pub fn period(month: Option<(i32, Month)>, today: Date) -> Result<Period, CostError> {
    let (year, month) = month.unwrap_or((today.year(), today.month()));
    let start = first_day(year, month);
    let (next_year, next) = next_month(year, month);
    let month_end = first_day(next_year, next);
    if start > today {
        return Err(CostError::NotBegun(
            format!("{year}-{:02}", u8::from(month)),
            today.to_string(),
        ));
    }
    if month_end <= today {
        return Ok(Period {
            year,
            month,
            start,
            end: month_end,
            forecast: None,
        });
    }
    let tomorrow = today + Duration::days(1);
    Ok(Period {
        year,
        month,
        start,
        end: tomorrow,
        forecast: (tomorrow < month_end).then_some((tomorrow, month_end)),
    })
}

/// What `tether cost` reports (also its `--json`, with `format_version`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    pub project: String,
    /// `2026-12`.
    pub month: String,
    /// The first and the last day reported.
    pub first_day: String,
    pub last_day: String,
    pub currency: String,
    /// The tag the figures are filtered by, and whether Cost Explorer may filter by it.
    pub tag: TagReport,
    /// Every day reported, in order; `amount` is `None` where AWS gave nothing for it.
    pub days: Vec<Day>,
    /// The days' sum.
    pub total: String,
    /// Per service over the days, the most first.
    pub services: Vec<ServiceCost>,
    /// AWS's forecast for the rest of the month, when it is this month and AWS made one.
    pub forecast: Option<Forecast>,
    /// `total` plus the forecast.
    pub month_expected: Option<String>,
    /// What the plan's price table predicts for the same days.
    pub predicted: Option<Predicted>,
    /// The spec's monthly budget in USD (`budget.monthly_usd`), beside the spend.
    pub budget_usd: Option<String>,
    /// Why figures may be missing or partial, one sentence each.
    pub notes: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TagReport {
    pub key: String,
    pub value: String,
    /// `active`, `inactive`, `not_listed` (billing has not seen the key yet) or `unknown`
    /// (it could not be asked).
    pub status: &'static str,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Day {
    /// `YYYY-MM-DD`.
    pub date: String,
    pub amount: Option<String>,
    /// AWS has not closed the day's figures yet.
    pub estimated: bool,
    pub services: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ServiceCost {
    pub service: String,
    pub amount: String,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Forecast {
    pub first_day: String,
    pub last_day: String,
    pub amount: String,
}

/// The price table's figure for the lab as planned, over the report's days.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Predicted {
    /// Per day: the instances planned to run and the Elastic IPs all day, every disk.
    pub per_day: f64,
    pub total: f64,
    /// The table's date and where it came from.
    pub prices_as_of: String,
    pub source: String,
}

/// What AWS answered, for `report`.
#[derive(Clone, Debug, Default)]
pub struct Answers {
    /// `None`: the tag's status could not be asked.
    pub tag_status: Option<TagStatus>,
    pub days: Vec<PeriodCost>,
    /// `Some(None)`: asked, and AWS had too little data to forecast.
    pub forecast: Option<Option<Amount>>,
}

fn decimal(text: &str) -> Result<BigDecimal, CostError> {
    BigDecimal::from_str(text).map_err(|_| CostError::NotAnAmount(text.to_string()))
}

/// Checks every amount is in one currency, and returns it (USD when there is none).
fn currency<'a>(amounts: impl Iterator<Item = &'a Amount>) -> Result<String, CostError> {
    let mut seen: Option<&str> = None;
    for amount in amounts {
        match seen {
            Some(unit) if unit != amount.unit => {
                return Err(CostError::Currencies(unit.into(), amount.unit.clone()))
            }
            _ => seen = Some(&amount.unit),
        }
    }
    Ok(seen.unwrap_or("USD").to_string())
}

/// The last day of a period whose end is exclusive.
fn last_of(end: Date) -> String {
    (end - Duration::days(1)).to_string()
}

/// The report of `project`'s costs over `period` from AWS's `answers`, beside the price
/// table's `per_day` figure for the lab as planned (`predicted_per_day`: the figure and
/// the table's date and source).
pub fn report(
    project: &str,
    period: &Period,
    answers: &Answers,
    predicted_per_day: Option<(f64, String, String)>,
    budget_usd: Option<&str>,
) -> Result<Report, CostError> {
    let all_amounts = answers
        .days
        .iter()
        .flat_map(|day| day.total.iter().chain(day.services.iter().map(|(_, a)| a)))
        .chain(answers.forecast.iter().flatten());
    let currency = currency(all_amounts)?;
    let by_date: BTreeMap<&str, &PeriodCost> = answers
        .days
        .iter()
        .map(|day| (day.start.as_str(), day))
        .collect();
    let mut days = Vec::new();
    let mut total = BigDecimal::from(0);
    let mut services: BTreeMap<String, BigDecimal> = BTreeMap::new();
    let mut date = period.start;
    while date < period.end {
        let key = date.to_string();
        let day = match by_date.get(key.as_str()) {
            None => Day {
                date: key,
                amount: None,
                estimated: false,
                services: BTreeMap::new(),
            },
            Some(cost) => {
                let mut day_services = BTreeMap::new();
                let mut sum = BigDecimal::from(0);
                for (service, amount) in &cost.services {
                    let value = decimal(&amount.amount)?;
                    sum += &value;
                    *services.entry(service.clone()).or_default() += &value;
                    day_services.insert(service.clone(), amount.amount.clone());
                }
                // AWS's own total where it gave one; else the services' sum.
                let (amount, value) = match &cost.total {
                    Some(day_total) => (day_total.amount.clone(), decimal(&day_total.amount)?),
                    None => (sum.to_string(), sum),
                };
                total += value;
                Day {
                    date: key,
                    amount: Some(amount),
                    estimated: cost.estimated,
                    services: day_services,
                }
            }
        };
        days.push(day);
        date = date.next_day().expect("a date before the end of time");
    }
    let mut services: Vec<(BigDecimal, String)> = services
        .into_iter()
        .map(|(name, sum)| (sum, name))
        .collect();
    services.sort_by(|(a, a_name), (b, b_name)| b.cmp(a).then_with(|| a_name.cmp(b_name)));
    let services = services
        .into_iter()
        .map(|(amount, service)| ServiceCost {
            service,
            amount: amount.to_string(),
        })
        .collect();
    let forecast = match (&period.forecast, &answers.forecast) {
        (Some((start, end)), Some(Some(amount))) => Some(Forecast {
            first_day: start.to_string(),
            last_day: last_of(*end),
            amount: amount.amount.clone(),
        }),
        _ => None,
    };
    let month_expected = match &forecast {
        Some(forecast) => Some((&total + decimal(&forecast.amount)?).to_string()),
        None => None,
    };
    let day_count = days.len() as f64;
    let predicted = predicted_per_day.map(|(per_day, prices_as_of, source)| Predicted {
        per_day,
        total: per_day * day_count,
        prices_as_of,
        source,
    });
    let tag_key = crate::model::TAG_PROJECT;
    let status = match answers.tag_status {
        Some(TagStatus::Active) => "active",
        Some(TagStatus::Inactive) => "inactive",
        Some(TagStatus::NotListed) => "not_listed",
        None => "unknown",
    };
    let mut notes = Vec::new();
    match answers.tag_status {
        Some(TagStatus::Active) => {}
        Some(TagStatus::Inactive) => notes.push(format!(
            "`{tag_key}` is not an active cost allocation tag, so Cost Explorer cannot tell this project's costs from the rest: activate it in the Billing console (Cost allocation tags); figures appear for days after that, up to a day later"
        )),
        Some(TagStatus::NotListed) => notes.push(format!(
            "billing has not seen the tag `{tag_key}` yet (it lists a new tag key up to a day after resources first carry it); once listed, it must be activated as a cost allocation tag"
        )),
        None => notes.push(format!(
            "whether `{tag_key}` is an active cost allocation tag could not be asked; the figures are only this project's if it is"
        )),
    }
    let missing = days.iter().filter(|day| day.amount.is_none()).count();
    if missing > 0 {
        notes.push(format!(
            "AWS has no figures yet for {missing} of the {} days (Cost Explorer takes up to a day to show a day's costs)",
            days.len()
        ));
    }
    if period.forecast.is_some() && matches!(answers.forecast, Some(None)) {
        notes.push(
            "AWS has too little history of this project's costs to forecast the rest of the month"
                .into(),
        );
    }
    if predicted.is_some() {
        notes.push("the price table prices instances, their disks and Elastic IPs only: S3, data transfer and other services are not in its prediction".into());
    }
    Ok(Report {
        project: project.to_string(),
        month: format!("{}-{:02}", period.year, u8::from(period.month)),
        first_day: period.start.to_string(),
        last_day: last_of(period.end),
        currency,
        tag: TagReport {
            key: tag_key.to_string(),
            value: project.to_string(),
            status,
        },
        days,
        total: total.to_string(),
        services,
        forecast,
        month_expected,
        predicted,
        budget_usd: budget_usd.map(str::to_string),
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn a_month_is_written_yyyy_mm() {
        assert_eq!(parse_month("2026-11"), Ok((2026, Month::November)));
        for bad in [
            "2026-13", "2026-1", "26-11", "2026/11", "november", "2026-00",
        ] {
            assert_eq!(
                parse_month(bad),
                Err(CostError::NotAMonth(bad.into())),
                "{bad}"
            );
        }
    }

    #[test]
    fn this_month_runs_to_today_and_the_rest_is_forecast() {
        let today = date!(2026 - 12 - 03);
        let this = period(None, today).unwrap();
        assert_eq!(
            (this.start, this.end),
            (date!(2026 - 12 - 01), date!(2026 - 12 - 04))
        );
        assert_eq!(
            this.forecast,
            Some((date!(2026 - 12 - 04), date!(2027 - 01 - 01)))
        );
        let past = period(Some((2026, Month::February)), today).unwrap();
        assert_eq!(
            (past.start, past.end),
            (date!(2026 - 02 - 01), date!(2026 - 03 - 01))
        );
        assert_eq!(past.forecast, None);
        let last_day = period(None, date!(2026 - 12 - 31)).unwrap();
        assert_eq!(last_day.end, date!(2027 - 01 - 01));
        assert_eq!(
            last_day.forecast, None,
            "nothing is left of the month to forecast"
        );
        assert_eq!(
            period(Some((2027, Month::January)), today),
            Err(CostError::NotBegun("2027-01".into(), "2026-12-03".into()))
        );
    }

    fn usd(amount: &str) -> Amount {
        Amount {
            amount: amount.into(),
            unit: "USD".into(),
        }
    }

    #[test]
    fn sums_are_exact_and_every_day_is_shown() {
        let period = period(None, date!(2026 - 12 - 03)).unwrap();
        let answers = Answers {
            tag_status: Some(TagStatus::Active),
            days: vec![
                PeriodCost {
                    start: "2026-12-01".into(),
                    estimated: false,
                    total: None,
                    services: vec![
                        ("Amazon EC2".into(), usd("0.1")),
                        ("Amazon S3".into(), usd("0.2")),
                    ],
                },
                PeriodCost {
                    start: "2026-12-02".into(),
                    estimated: true,
                    total: Some(usd("0.0101516483")),
                    services: vec![],
                },
            ],
            forecast: Some(Some(usd("7.7"))),
        };
        let report = report(
            "lab",
            &period,
            &answers,
            Some((1.5, "2025-01".into(), "x".into())),
            Some("100"),
        )
        .unwrap();
        let amounts: Vec<Option<&str>> = report.days.iter().map(|d| d.amount.as_deref()).collect();
        assert_eq!(amounts, [Some("0.3"), Some("0.0101516483"), None]);
        assert_eq!(
            report.total, "0.3101516483",
            "0.1 + 0.2 is 0.3 here, not 0.30000000000000004"
        );
        assert_eq!(report.month_expected.as_deref(), Some("8.0101516483"));
        assert_eq!(report.services[0].service, "Amazon S3");
        assert_eq!(report.predicted.as_ref().map(|p| p.total), Some(4.5));
        assert!(report
            .notes
            .iter()
            .any(|n| n.contains("no figures yet for 1 of the 3 days")));
        let mixed = Answers {
            forecast: Some(Some(Amount {
                amount: "1".into(),
                unit: "EUR".into(),
            })),
            ..answers
        };
        assert!(matches!(
            super::report("lab", &period, &mixed, None, None),
            Err(CostError::Currencies(..))
        ));
    }
}
