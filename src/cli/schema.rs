//! `tether schema`: the spec's JSON Schema (draft 2020-12) on stdout, derived from the
//! parser's own types. Editors validate and complete a spec with it
//! (`# yaml-language-server: $schema=<path>` as the spec's first line); `schema/` holds
//! the committed copy.

use clap::Args;

use super::printer::Printer;
use super::Exit;

#[derive(Debug, Args)]
pub struct SchemaArgs {}

pub fn exec(args: SchemaArgs, printer: &Printer) -> anyhow::Result<Exit> {
    let SchemaArgs {} = args;
    printer.json(&tether::spec::schema::json_schema_text())?;
    Ok(Exit::Success)
}
