//! Idle alarms: the account's backstop of `instances.<name>.idle_stop`. A CloudWatch alarm
//! on the instance's average CPU that stops it (`arn:aws:automate:<region>:ec2:stop`) when
//! the CPU stays below the rule's floor for a long window, so an instance whose watchdog
//! is wedged (or was stopped by hand) still stops. One per instance with a rule, named
//! `tether-<project>-<instance>-idle`, owned by its tags, put again in place when the rule
//! changes, deleted with the instance or when the rule goes.
//!
//! The alarm cannot see ssh sessions: its window is four times the rule's (two hours at
//! least, a day at most, CloudWatch's limit), so it acts only where the watchdog did not.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::aws::{AlarmInfo, CpuAlarmRequest};
use crate::model::{
    attribute, ownership, ownership_tags, Address, Attribute, AttributeFormat, Kind, Ownership,
};
use crate::spec::Spec;

use super::{
    refused, removed_keys, Context, DesiredResource, Intent, ResourceKind, ResourceState,
    SpecContext, Step, StepFailure,
};

/// CloudWatch's basic monitoring reports EC2's CPU every five minutes.
pub const PERIOD_SECONDS: i32 = 300;
/// The floor when the rule gives none: an instance nobody uses idles near 0%.
pub const DEFAULT_CPU_BELOW: u8 = 2;

/// What the alarm watches and does, in one line; compared, so that an alarm someone
/// pointed at another metric or action is put back.
pub const DEFINITION: &str = "AWS/EC2 CPUUtilization Average < threshold, then ec2:stop";

/// The comparable state of an idle alarm.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IdleAlarmState {
    pub tags: BTreeMap<String, String>,
    /// The instance it stops: its spec name when it is one of the project's, else its id.
    pub instance: Option<String>,
    /// What it watches and does (`DEFINITION` when it is tether's).
    pub definition: String,
    /// Average CPU below this percent...
    pub cpu_below: u8,
    /// ...for this many minutes.
    pub window_minutes: u32,
    /// CloudWatch's state of it (live only; shown, not compared).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Its ARN (live only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
}

/// An idle alarm's operations.
#[derive(Clone, Debug, PartialEq)]
pub enum IdleAlarmOp {
    /// Find the instance's id, then put the alarm (create or redefine) with its tags, and
    /// take away tags it no longer has.
    Put {
        instance: String,
        state: Box<IdleAlarmState>,
        remove_tags: Vec<String>,
    },
    /// Delete the alarm (gone already counts as done).
    Delete { instance: String },
}

/// The idle alarm kind.
pub struct IdleAlarm;

/// The alarm's name in CloudWatch.
pub fn alarm_name(project: &str, instance: &str) -> String {
    format!("tether-{project}-{instance}-idle")
}

/// The prefix of every idle alarm of the project.
pub fn alarm_prefix(project: &str) -> String {
    format!("tether-{project}-")
}

/// The alarm's window for a rule of `after_minutes`: four times as long, two hours at
/// least, a day at most, in whole periods.
pub fn window_minutes(after_minutes: u32) -> u32 {
    let period = u32::try_from(PERIOD_SECONDS / 60).unwrap_or(5);
    let window = (after_minutes.saturating_mul(4)).clamp(120, 24 * 60);
    window.div_ceil(period) * period
}

/// A listed alarm as a live resource (`instance_names`: the project's instance names by
/// id; `stop_action`: this region's stop action). `None` for an alarm of the prefix whose
/// name is not `tether-<project>-<instance>-idle`.
pub(crate) fn read(
    project: &str,
    alarm: AlarmInfo,
    instance_names: &BTreeMap<String, String>,
    stop_action: &str,
) -> Option<super::LiveResource> {
    let instance_name = alarm
        .name
        .strip_prefix(&alarm_prefix(project))?
        .strip_suffix("-idle")?
        .to_string();
    let instance = alarm.instance_id.as_ref().map(|id| {
        instance_names
            .get(id)
            .cloned()
            .unwrap_or_else(|| id.clone())
    });
    let actions = if alarm.actions == [stop_action.to_string()] {
        "ec2:stop".to_string()
    } else {
        alarm.actions.join(" ")
    };
    let operator = match alarm.comparison.as_deref() {
        Some("LessThanThreshold") => "<",
        Some(other) => other,
        None => "?",
    };
    let definition = format!(
        "{} {} {} {operator} threshold, then {actions}",
        alarm.namespace,
        alarm.metric,
        alarm.statistic.as_deref().unwrap_or("?"),
    );
    let window = alarm.period_seconds.unwrap_or_default()
        * alarm.evaluation_periods.unwrap_or_default()
        / 60;
    Some(super::LiveResource {
        address: Address::new(Kind::IdleAlarm, &instance_name),
        // The alarm goes before the instance it stops.
        depends_on: alarm
            .instance_id
            .as_ref()
            .and_then(|id| instance_names.get(id))
            .map(|name| Address::new(Kind::Instance, name))
            .into_iter()
            .collect(),
        state: ResourceState::IdleAlarm(IdleAlarmState {
            tags: alarm.tags,
            instance,
            definition,
            // A whole percent, as tether writes it; anything else reads as 0 (and differs).
            cpu_below: alarm
                .threshold
                .and_then(|t| (0u8..=100).find(|p| f64::from(*p) == t))
                .unwrap_or(0),
            window_minutes: u32::try_from(window).unwrap_or_default(),
            status: alarm.state,
            arn: Some(alarm.arn),
        }),
    })
}

impl ResourceKind for IdleAlarm {
    const KIND: Kind = Kind::IdleAlarm;
    type State = IdleAlarmState;
    type Op = IdleAlarmOp;
    const FOLLOWS_REPLACEMENT: Option<&'static str> =
        Some("its instance is replaced: the alarm watches the new one");

    fn desired(spec: &Spec, env: &SpecContext<'_>) -> Vec<DesiredResource> {
        spec.instances
            .values()
            .filter_map(|instance| {
                let rule = instance.idle_stop?;
                let mut tags = ownership_tags(env.project, &instance.name);
                tags.insert("Name".to_string(), alarm_name(env.project, &instance.name));
                Some(DesiredResource {
                    address: Address::new(Kind::IdleAlarm, &instance.name),
                    state: ResourceState::IdleAlarm(IdleAlarmState {
                        tags,
                        instance: Some(instance.name.clone()),
                        definition: DEFINITION.to_string(),
                        cpu_below: rule.cpu_below.unwrap_or(DEFAULT_CPU_BELOW),
                        window_minutes: window_minutes(rule.after_minutes),
                        status: None,
                        arn: None,
                    }),
                    adopt: false,
                    depends_on: vec![Address::new(Kind::Instance, &instance.name)],
                    location: instance.location.clone(),
                })
            })
            .collect()
    }

    fn attributes(alarm: &IdleAlarmState) -> Vec<Attribute> {
        use AttributeFormat::{Map, Value as Scalar};
        vec![
            attribute("instance", &alarm.instance, Scalar),
            attribute("definition", &alarm.definition, Scalar),
            attribute("cpu_below", alarm.cpu_below, Scalar),
            attribute("window_minutes", alarm.window_minutes, Scalar),
            attribute("tags", &alarm.tags, Map),
        ]
    }

    fn ownership(alarm: &IdleAlarmState, project: &str) -> Ownership {
        ownership(&alarm.tags, project)
    }

    fn create(
        name: &str,
        after: &IdleAlarmState,
        _replacing: Option<&IdleAlarmState>,
        _context: &Context,
    ) -> Vec<IdleAlarmOp> {
        vec![IdleAlarmOp::Put {
            instance: name.to_string(),
            state: Box::new(after.clone()),
            remove_tags: Vec::new(),
        }]
    }

    /// Put again: PutMetricAlarm replaces the whole definition (and, after its instance's
    /// replacement, points it at the new instance).
    fn update(
        name: &str,
        before: &IdleAlarmState,
        after: &IdleAlarmState,
        _intent: &Intent,
        _context: &Context,
    ) -> Vec<IdleAlarmOp> {
        vec![IdleAlarmOp::Put {
            instance: name.to_string(),
            state: Box::new(after.clone()),
            remove_tags: removed_keys(&before.tags, &after.tags),
        }]
    }

    fn delete(
        name: &str,
        _before: &IdleAlarmState,
        _intent: &Intent,
        _context: &Context,
    ) -> Vec<IdleAlarmOp> {
        vec![IdleAlarmOp::Delete {
            instance: name.to_string(),
        }]
    }

    fn describe(op: &IdleAlarmOp) -> &'static str {
        match op {
            IdleAlarmOp::Put { .. } => "putting the idle alarm",
            IdleAlarmOp::Delete { .. } => "deleting the idle alarm",
        }
    }

    async fn run(op: &IdleAlarmOp, step: &Step<'_>) -> Result<(), StepFailure> {
        let (cloud, project) = (step.cloud, step.project);
        match op {
            IdleAlarmOp::Put {
                instance,
                state,
                remove_tags,
            } => {
                let name = alarm_name(project, instance);
                let found =
                    cloud
                        .find_instance(project, instance)
                        .await?
                        .ok_or_else(|| {
                            refused(
                        "PutMetricAlarm",
                        format!("idle_alarm.{instance}"),
                        format!("the project has no instance `{instance}` for the alarm to stop"),
                    )
                        })?;
                let window = i32::try_from(state.window_minutes).unwrap_or(24 * 60) * 60;
                let arn = cloud
                    .put_cpu_alarm(&CpuAlarmRequest {
                        name: name.clone(),
                        description: format!(
                            "tether project {project}: stops instance {instance} when its CPU stays below {}% for {} (the backstop of its idle rule)",
                            state.cpu_below,
                            crate::idle::minutes_text(state.window_minutes),
                        ),
                        instance_id: found.id,
                        threshold: f64::from(state.cpu_below),
                        period_seconds: PERIOD_SECONDS,
                        evaluation_periods: (window / PERIOD_SECONDS).max(1),
                        action: cloud.stop_action(),
                        tags: state.tags.clone(),
                    })
                    .await?;
                cloud.untag_alarm(&name, &arn, remove_tags).await?;
                Ok(())
            }
            IdleAlarmOp::Delete { instance } => {
                Ok(cloud.delete_alarm(&alarm_name(project, instance)).await?)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_is_four_rules_long_within_cloudwatchs_limits() {
        assert_eq!(window_minutes(5), 120);
        assert_eq!(window_minutes(30), 120);
        assert_eq!(window_minutes(61), 245);
        assert_eq!(window_minutes(120), 480);
        assert_eq!(window_minutes(24 * 60), 24 * 60);
    }

    #[test]
    fn an_alarm_reads_back_as_its_definition() {
        let alarm = AlarmInfo {
            name: "tether-lab-worker-idle".into(),
            arn: "arn:aws:cloudwatch:us-east-1:123456789012:alarm:tether-lab-worker-idle".into(),
            instance_id: Some("i-0123".into()),
            namespace: "AWS/EC2".into(),
            metric: "CPUUtilization".into(),
            statistic: Some("Average".into()),
            comparison: Some("LessThanThreshold".into()),
            threshold: Some(5.0),
            period_seconds: Some(300),
            evaluation_periods: Some(24),
            actions: vec!["arn:aws:automate:us-east-1:ec2:stop".into()],
            state: Some("OK".into()),
            tags: BTreeMap::new(),
        };
        let names = BTreeMap::from([("i-0123".to_string(), "worker".to_string())]);
        let read = read(
            "lab",
            alarm.clone(),
            &names,
            "arn:aws:automate:us-east-1:ec2:stop",
        )
        .expect("an idle alarm");
        let ResourceState::IdleAlarm(state) = read.state else {
            panic!("an idle alarm state");
        };
        assert_eq!(state.definition, DEFINITION);
        assert_eq!((state.cpu_below, state.window_minutes), (5, 120));
        assert_eq!(state.instance.as_deref(), Some("worker"));
        assert_eq!(read.depends_on, [Address::new(Kind::Instance, "worker")]);
        // Pointed at another action, it no longer reads as tether's definition.
        let terminate = AlarmInfo {
            actions: vec!["arn:aws:automate:us-east-1:ec2:terminate".into()],
            ..alarm.clone()
        };
        let read = read_state(read_alarm(terminate, &names));
        assert_ne!(read.definition, DEFINITION);
        // Another alarm under the prefix is none of this kind's.
        let other = AlarmInfo {
            name: "tether-lab-billing".into(),
            ..alarm
        };
        assert!(super::read("lab", other, &names, "arn:aws:automate:us-east-1:ec2:stop").is_none());
    }

    fn read_alarm(
        alarm: AlarmInfo,
        names: &BTreeMap<String, String>,
    ) -> Option<super::super::LiveResource> {
        read("lab", alarm, names, "arn:aws:automate:us-east-1:ec2:stop")
    }

    fn read_state(read: Option<super::super::LiveResource>) -> IdleAlarmState {
        match read.map(|r| r.state) {
            Some(ResourceState::IdleAlarm(state)) => state,
            other => panic!("an idle alarm state, not {other:?}"),
        }
    }
}
