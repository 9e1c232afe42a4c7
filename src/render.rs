//! Plans as text for people: grouped, coloured like terraform's (`+`, `~`, `-/+`, `-`), with
//! attribute-level diffs and unified diffs of policy documents. Pure: returns strings with
//! ANSI styles, which the printer strips when the output is not a colour terminal.
//! The JSON form of a plan is the `Plan` type itself (serde), not built here.

use std::fmt::Write;

use anstyle::{AnsiColor, Style};
use serde_json::Value;
use similar::TextDiff;

use std::path::Path;

use crate::model::AttributeFormat;
use crate::plan::{Action, AttributeChange, Change, Mode, Plan};
use crate::secrets::UserSecret;
use crate::spec::SecretsMode;

const GREEN: Style = AnsiColor::Green.on_default();
const YELLOW: Style = AnsiColor::Yellow.on_default();
const RED: Style = AnsiColor::Red.on_default();
const CYAN: Style = AnsiColor::Cyan.on_default();
const BOLD: Style = Style::new().bold();
const DIM: Style = Style::new().dimmed();

/// The symbol, style and verb of an action. The symbol and verb carry the meaning; colour
/// only repeats it.
fn look(action: Action) -> (&'static str, Style, &'static str) {
    match action {
        Action::Create => ("+", GREEN, "create"),
        Action::Update => ("~", YELLOW, "update in place"),
        Action::Replace => ("-/+", RED, "replace"),
        Action::Delete => ("-", RED, "delete"),
        Action::Adopt => ("&", CYAN, "adopt"),
        Action::Forget => ("<", CYAN, "forget"),
        Action::NoOp => (" ", Style::new(), "no change"),
    }
}

/// The whole plan, ending with the summary line.
pub fn plan_text(plan: &Plan) -> String {
    let mut out = String::new();
    if plan.actionable().any(|c| c.action != Action::Forget) {
        let verb = match plan.mode {
            Mode::Apply => "apply",
            Mode::Destroy => "destroy",
        };
        let _ = writeln!(
            out,
            "tether will perform these actions to {verb} project {BOLD}{}{BOLD:#} in {}:\n",
            plan.project, plan.region
        );
        for change in plan.actionable().filter(|c| c.action != Action::Forget) {
            change_text(&mut out, plan, change);
            out.push('\n');
        }
    }
    // Under a heading of their own: these are not changes to the resources, only to who
    // manages them.
    let forgotten: Vec<&Change> = plan
        .changes
        .iter()
        .filter(|c| c.action == Action::Forget)
        .collect();
    if !forgotten.is_empty() {
        out.push_str(
            "Let go (they stay in the account as they are; only tether's marks of ownership come off):\n",
        );
        for change in forgotten {
            change_text(&mut out, plan, change);
        }
        out.push('\n');
    }
    // Resources the plan deliberately leaves alone, and why (an adopted account setting
    // that destroy does not delete).
    let kept: Vec<&Change> = plan
        .changes
        .iter()
        .filter(|c| c.action == Action::NoOp && c.reason.is_some())
        .collect();
    if !kept.is_empty() {
        out.push_str("Left as they are:\n");
        for change in kept {
            let _ = writeln!(
                out,
                "    {}  ({})",
                change.address,
                change.reason.as_deref().unwrap_or_default()
            );
        }
        out.push('\n');
    }
    out.push_str(&summary_line(plan));
    out.push('\n');
    out
}

/// What the planned instances and Elastic IPs cost, one line per instance, then the totals
/// and what the stopped instances save.
pub fn costs_text(costs: &crate::pricing::Costs) -> String {
    use crate::model::{Market, RunState};
    let sources: Vec<String> = costs
        .price_sources
        .iter()
        .map(|origin| format!("{} of {}", origin.source, origin.as_of))
        .collect();
    let sources = if sources.is_empty() {
        "no prices known here".to_string()
    } else {
        sources.join("; ")
    };
    let mut out = format!(
        "Cost while running ({}, {}; prices: {sources}):\n",
        costs.region, costs.currency
    );
    if costs.prices_stale {
        let _ = writeln!(
            out,
            "  Prices of {} are more than {} days old: `tether prices refresh` reads today's.",
            costs.prices_as_of,
            crate::pricing::STALE_AFTER_DAYS
        );
    }
    let width = costs
        .instances
        .iter()
        .map(|i| i.name.len())
        .max()
        .unwrap_or(0);
    let type_width = costs
        .instances
        .iter()
        .map(|i| i.instance_type.len())
        .max()
        .unwrap_or(0);
    for instance in &costs.instances {
        let market = match instance.market {
            Market::OnDemand => "on-demand",
            Market::Spot => "spot",
        };
        let state = match instance.state {
            RunState::Running => "running",
            RunState::Stopped => "stopped",
        };
        let hourly = match instance.hourly {
            Some(price) if instance.hourly_is_ceiling => match instance.spot_now {
                Some(now) => format!("at most {}/h, now {}/h", dollars(price), dollars(now)),
                None => format!("at most {}/h", dollars(price)),
            },
            Some(price) => format!("{}/h", dollars(price)),
            None => "price unknown".to_string(),
        };
        let disks = match instance.disks_monthly {
            Some(monthly) => format!("disks {} GiB {}/month", instance.disk_gib, cents(monthly)),
            None => "disks: price unknown".to_string(),
        };
        let _ = writeln!(
            out,
            "  {:width$}  {:type_width$}  {market:9}  {state:7}  {hourly:18}  {disks}",
            instance.name, instance.instance_type
        );
    }
    if costs.elastic_ips > 0 {
        let _ = writeln!(
            out,
            "  {} Elastic IP{}: {}",
            costs.elastic_ips,
            if costs.elastic_ips == 1 { "" } else { "s" },
            costs
                .elastic_ips_hourly
                .map_or("price unknown".to_string(), |p| format!(
                    "{}/h, running instances or not",
                    dollars(p)
                ))
        );
    }
    let running = costs.running_hourly.map_or(
        "price unknown (a type or region outside the table)".to_string(),
        |p| {
            format!(
                "{}/h (about {} a month)",
                dollars(p),
                cents(p * crate::pricing::HOURS_PER_MONTH)
            )
        },
    );
    let disks = costs
        .disks_monthly
        .map_or("price unknown".to_string(), |p| {
            format!("{}/month", cents(p))
        });
    let _ = writeln!(out, "  Total: {running}; disks {disks}.");
    let stopped: Vec<&str> = costs
        .instances
        .iter()
        .filter(|i| i.state == RunState::Stopped)
        .map(|i| i.name.as_str())
        .collect();
    for instance in &costs.instances {
        if let Some(rule) = &instance.idle_stop {
            let _ = writeln!(
                out,
                "  {}: {rule}; it costs only while someone uses it.",
                instance.name
            );
        }
    }
    if !stopped.is_empty() {
        let saves = costs
            .stopped_saves_hourly
            .map_or("their compute (price unknown)".to_string(), |p| {
                format!("{}/h", dollars(p))
            });
        let _ = writeln!(
            out,
            "  `state: stopped` saves {saves} on {}: stopped instances pay for their disks only.",
            stopped.join(", ")
        );
    }
    out
}

/// `$0.192`, `$0.0104`: up to four decimals, trailing zeros dropped (two at least).
fn dollars(price: f64) -> String {
    let text = format!("{price:.4}");
    let trimmed = text.trim_end_matches('0');
    let decimals = trimmed.split_once('.').map_or(0, |(_, d)| d.len());
    if decimals < 2 {
        format!("${price:.2}")
    } else {
        format!("${trimmed}")
    }
}

/// `$12.64`.
fn cents(amount: f64) -> String {
    format!("${amount:.2}")
}

/// `Plan: 1 to create, 1 to update, 0 to replace, 0 to delete.` or `No changes.`; adoptions
/// are named only when there are some.
pub fn summary_line(plan: &Plan) -> String {
    let local = if plan.has_local_changes() {
        " This machine's SSH aliases change too (yours alone: not part of the shared plan)."
    } else {
        ""
    };
    if !plan.has_account_changes() {
        return if local.is_empty() {
            format!("{BOLD}No changes.{BOLD:#} The account matches the spec.")
        } else {
            format!("{BOLD}No changes to the account.{BOLD:#}{local}")
        };
    }
    let s = plan.summary();
    let adopt = if s.adopt > 0 {
        format!("{} to adopt, ", s.adopt)
    } else {
        String::new()
    };
    let forget = if s.forget > 0 {
        format!(", {} to forget", s.forget)
    } else {
        String::new()
    };
    format!(
        "{BOLD}Plan:{BOLD:#} {adopt}{} to create, {} to update, {} to replace, {} to delete{forget}.{local}",
        s.create, s.update, s.replace, s.delete
    )
}

fn change_text(out: &mut String, plan: &Plan, change: &Change) {
    let (symbol, style, verb) = look(change.action);
    let reason = change
        .reason
        .as_deref()
        .map(|r| format!(": {}", one_line(r)))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "  {style}{symbol} {BOLD}{}{BOLD:#}{style:#}  ({verb}{reason})",
        change.address
    );
    for attribute in &change.attributes {
        let note = secret_note(plan, change, attribute);
        attribute_text(out, change.action, attribute, &note);
    }
    // Said in words as well as colour: a weaker password policy is a security decision.
    for weaker in &change.weakens {
        let _ = writeln!(out, "      {RED}! WEAKENS{RED:#} {weaker}");
    }
}

/// Where a secret that this attribute's change creates will be kept. The plan names the
/// parameter or file (as the spec writes it, the same for every operator); the secret itself
/// does not exist until apply.
fn secret_note(plan: &Plan, change: &Change, attribute: &AttributeChange) -> String {
    if attribute.after != serde_json::Value::Bool(true) {
        return String::new();
    }
    let user = &change.address.name;
    let secret = match attribute.name.as_str() {
        "console_access" => UserSecret::ConsolePassword,
        "programmatic_access" => UserSecret::AccessKey,
        _ => return String::new(),
    };
    match plan.secrets {
        SecretsMode::ParameterStore => format!(
            "  (secret stored in Parameter Store at {})",
            secret.parameter(&plan.project, user)
        ),
        SecretsMode::Local => format!(
            "  (secret written to {})",
            secret
                .file(Path::new(&plan.secrets_dir), &plan.project, user)
                .display()
        ),
    }
}

fn attribute_text(out: &mut String, action: Action, attribute: &AttributeChange, note: &str) {
    let forces = if attribute.forces_replacement {
        format!(" {RED}# forces replacement{RED:#}")
    } else {
        note.to_string()
    };
    match attribute.format {
        AttributeFormat::Map => {
            let empty = serde_json::Map::new();
            let before = attribute.before.as_object().unwrap_or(&empty);
            let after = attribute.after.as_object().unwrap_or(&empty);
            let mut keys: Vec<&String> = before.keys().chain(after.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                let name = format!("{}.{}", attribute.name, one_line(key));
                value_line(out, action, &name, before.get(key), after.get(key), &forces);
            }
        }
        AttributeFormat::Value => {
            value_line(
                out,
                action,
                &attribute.name,
                non_null(&attribute.before),
                non_null(&attribute.after),
                &forces,
            );
        }
        AttributeFormat::Document => {
            let (symbol, style) = match (non_null(&attribute.before), non_null(&attribute.after)) {
                (None, _) => ("+", GREEN),
                (_, None) => ("-", RED),
                _ => ("~", YELLOW),
            };
            let _ = writeln!(
                out,
                "      {style}{symbol}{style:#} {}:{forces}",
                attribute.name
            );
            document_diff(out, &attribute.before, &attribute.after);
        }
    }
}

/// `text` as one word of POSIX shell, always quoted: `'it'\''s'`.
pub fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// `text` as one word of POSIX shell for a command people copy: bare when nothing in it is
/// special to the shell, else quoted.
pub fn shell_word(text: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_./-:@%+=,".contains(c);
    if !text.is_empty() && text.chars().all(plain) {
        text.to_string()
    } else {
        shell_quote(text)
    }
}

/// `text` (a tag key, a reason: text anyone in the account may write) as one line, with
/// every control character written out (`\n`, `\x7f`), so that it can neither break the
/// plan's layout nor forge a line of it.
pub fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\n' => "\\n".to_string(),
            '\t' => "\\t".to_string(),
            '\r' => "\\r".to_string(),
            c if c.is_control() => format!("\\x{:02x}", u32::from(c)),
            c => c.to_string(),
        })
        .collect()
}

fn non_null(value: &Value) -> Option<&Value> {
    (!value.is_null()).then_some(value)
}

fn value_line(
    out: &mut String,
    action: Action,
    name: &str,
    before: Option<&Value>,
    after: Option<&Value>,
    forces: &str,
) {
    match (before, after) {
        (Some(old), Some(new)) if old == new => {
            // Unchanged keys of a changed map are shown only on create and delete.
            if matches!(action, Action::Create | Action::Delete) {
                let _ = writeln!(out, "        {name} = {old}");
            }
        }
        (None, Some(new)) => {
            let _ = writeln!(out, "      {GREEN}+{GREEN:#} {name} = {new}{forces}");
        }
        (Some(old), None) => {
            let _ = writeln!(out, "      {RED}-{RED:#} {name} = {old}{forces}");
        }
        (Some(old), Some(new)) => {
            let _ = writeln!(
                out,
                "      {YELLOW}~{YELLOW:#} {name} = {old} -> {new}{forces}"
            );
        }
        (None, None) => {}
    }
}

/// A unified diff of two documents' pretty JSON (the whole document when one side is absent),
/// indented under the attribute.
fn document_diff(out: &mut String, before: &Value, after: &Value) {
    let text = |value: &Value| match value {
        Value::Null => String::new(),
        // Text documents (a config file's block) are compared as the lines they are.
        Value::String(text) => text.clone(),
        other => format!("{}\n", crate::policy::to_pretty_json(other)),
    };
    let (old, new) = (text(before), text(after));
    let diff = TextDiff::from_lines(&old, &new);
    for hunk in diff.unified_diff().context_radius(3).iter_hunks() {
        let _ = writeln!(out, "          {DIM}{}{DIM:#}", hunk.header());
        for change in hunk.iter_changes() {
            let (sign, style) = match change.tag() {
                similar::ChangeTag::Delete => ("-", RED),
                similar::ChangeTag::Insert => ("+", GREEN),
                similar::ChangeTag::Equal => (" ", Style::new()),
            };
            let line = change.value().trim_end_matches('\n');
            let _ = writeln!(out, "          {style}{sign}{line}{style:#}");
        }
    }
}

/// `$12.34` from a decimal amount (AWS's string), rounded half to even; `-$0.50` for a
/// credit; the text itself when it is no number.
fn money(amount: &str) -> String {
    use std::str::FromStr;
    match bigdecimal::BigDecimal::from_str(amount) {
        Ok(value) => {
            let rounded = value.with_scale_round(2, bigdecimal::RoundingMode::HalfEven);
            let text = rounded.abs().to_string();
            if rounded < 0 {
                format!("-${text}")
            } else {
                format!("${text}")
            }
        }
        Err(_) => one_line(amount),
    }
}

/// A bar of `value / most` of `width` columns, in eighths of a column.
fn bar(value: f64, most: f64, width: usize) -> String {
    const EIGHTHS: [&str; 8] = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"];
    if most <= 0.0 || value <= 0.0 {
        return String::new();
    }
    let target = (value / most).min(1.0) * (width * 8) as f64;
    // The nearest count of eighths, at most `width * 8` (a few hundred).
    let eighths = (0..=width * 8)
        .rev()
        .find(|n| *n as f64 <= target + 0.5)
        .unwrap_or(0);
    let mut out = "█".repeat(eighths / 8);
    out.push_str(EIGHTHS[eighths % 8]);
    out
}

/// `tether cost`'s report: each day's spend (with a bar of `chart` columns when drawn on a
/// terminal), the month so far, AWS's forecast, the spend per service, what the price table
/// predicts for the same days, and the notes on what is missing.
pub fn cost_text(report: &crate::cost::Report, chart: Option<usize>) -> String {
    let mut out = format!(
        "Spend of project `{}`, {} to {} ({}; Cost Explorer, resources tagged {} = {}):\n",
        one_line(&report.project),
        report.first_day,
        report.last_day,
        one_line(&report.currency),
        report.tag.key,
        one_line(&report.tag.value),
    );
    let values: Vec<f64> = report
        .days
        .iter()
        .map(|day| {
            day.amount
                .as_deref()
                .and_then(|a| a.parse::<f64>().ok())
                .unwrap_or(0.0)
        })
        .collect();
    let most = values.iter().copied().fold(0.0, f64::max);
    let amounts: Vec<String> = report
        .days
        .iter()
        .map(|day| match &day.amount {
            Some(amount) if day.estimated => format!("{} (estimated)", money(amount)),
            Some(amount) => money(amount),
            None => "no figures yet".to_string(),
        })
        .collect();
    for ((day, value), amount) in report.days.iter().zip(&values).zip(&amounts) {
        match chart {
            Some(width) => {
                let _ = writeln!(
                    out,
                    "  {}  {:width$}  {amount}",
                    day.date,
                    bar(*value, most, width)
                );
            }
            None => {
                let _ = writeln!(out, "  {}  {amount}", day.date);
            }
        }
    }
    let _ = writeln!(out, "  So far: {}", money(&report.total));
    if let (Some(forecast), Some(expected)) = (&report.forecast, &report.month_expected) {
        let _ = writeln!(
            out,
            "  AWS's forecast for {} to {}: {}; the month: {}",
            forecast.first_day,
            forecast.last_day,
            money(&forecast.amount),
            money(expected)
        );
    }
    if let Some(budget) = &report.budget_usd {
        let share = |amount: &str| -> String {
            match (amount.parse::<f64>(), budget.parse::<f64>()) {
                (Ok(spent), Ok(limit)) if limit > 0.0 => format!("{:.0}%", spent / limit * 100.0),
                _ => "?".to_string(),
            }
        };
        let expected = report
            .month_expected
            .as_deref()
            .map(|expected| format!(", {} expected with AWS's forecast", share(expected)))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  Budget: {} a month; {} spent{expected}",
            money(budget),
            share(&report.total)
        );
    }
    if !report.services.is_empty() {
        out.push_str("By service:\n");
        let width = report
            .services
            .iter()
            .map(|s| one_line(&s.service).chars().count())
            .max()
            .unwrap_or(0);
        for service in &report.services {
            let _ = writeln!(
                out,
                "  {:width$}  {}",
                one_line(&service.service),
                money(&service.amount)
            );
        }
    }
    if let Some(predicted) = &report.predicted {
        let spent: f64 = report.total.parse().unwrap_or(0.0);
        let ratio = if spent > 0.0 {
            format!(", {:.1}x what AWS billed", predicted.total / spent)
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "The price table ({}, {}) predicts {} a day for the lab as planned: {} for these {} days{ratio}.",
            predicted.prices_as_of,
            predicted.source,
            cents(predicted.per_day),
            cents(predicted.total),
            report.days.len(),
        );
    }
    for note in &report.notes {
        let _ = writeln!(out, "note: {note}");
    }
    out
}
