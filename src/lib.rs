//! tether keeps an AWS lab in line with one YAML spec.
//!
//! The library follows the data: [`spec`] (YAML to typed model, pure) -> [`live`] (read the
//! account) -> [`plan`] (diff, pure) -> [`apply`] (the executor); [`planning::plan_spec`]
//! is the read-then-plan pipeline the commands share. [`aws`] is the only module
//! that speaks to the AWS SDK; [`ssh`] reaches instances. See `ARCHITECTURE.md` for the
//! whole picture.

pub mod apply;
pub mod audit;
pub mod aws;
pub mod coordinator;
pub mod cost;
pub mod diagnostic;
pub mod hash;
pub mod idle;
pub mod import;
pub mod jobs;
pub mod kinds;
pub mod live;
pub mod lock;
pub mod model;
pub mod parameters;
pub mod plan;
pub mod planning;
pub mod policy;
pub mod pricing;
pub mod pull;
pub mod render;
pub mod secrets;
pub mod show;
pub mod spec;
pub mod ssh;
