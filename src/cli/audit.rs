//! `tether audit`: a read-only security report of the account; exit 3 when a check fails.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;

use super::printer::Printer;
use super::Exit;

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// A spec, for its region (buckets are read there); without one, `tether.yaml` is used
    /// if present, else the AWS chain's region.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

pub async fn exec(args: AuditArgs, printer: &Printer) -> anyhow::Result<Exit> {
    let AuditArgs { file, json } = args;
    let region = match file {
        Some(path) => super::load_spec(&path)?.region,
        None if Path::new(super::DEFAULT_SPEC).exists() => {
            super::load_spec(Path::new(super::DEFAULT_SPEC))?.region
        }
        None => None,
    };
    let cloud = super::connect(region.as_deref()).await?;
    let facts = tether::live::audit_facts(&cloud)
        .await
        .context("cannot read the account for the audit")?;
    let report = tether::audit::evaluate(&facts);
    if json {
        let mut text = serde_json::to_string_pretty(&report).expect("a report always serialises");
        text.push('\n');
        printer.json(&text)?;
    } else {
        printer.status(&render(&report, cloud.region()));
    }
    Ok(if report.passed {
        Exit::Success
    } else {
        Exit::AuditFailed
    })
}

fn render(report: &tether::audit::Report, region: &str) -> String {
    let green = anstyle::AnsiColor::Green.on_default().bold();
    let red = anstyle::AnsiColor::Red.on_default().bold();
    let mut text = format!("Security audit of the account (buckets in {region}):\n");
    for check in &report.checks {
        if check.passed {
            text.push_str(&format!("\n  {green}PASS{green:#}  {}", check.title));
        } else {
            text.push_str(&format!("\n  {red}FAIL{red:#}  {}", check.title));
            for detail in &check.details {
                text.push_str(&format!("\n          {detail}"));
            }
            if let Some(hint) = check.hint {
                text.push_str(&format!("\n          hint: {hint}"));
            }
        }
    }
    let passed = report.checks.iter().filter(|c| c.passed).count();
    text.push_str(&format!(
        "\n\n{passed} of {} checks passed.",
        report.checks.len()
    ));
    text
}
