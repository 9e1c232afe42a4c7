//! CloudWatch alarms: the idle backstop of an instance (an alarm on its CPU whose action
//! stops it). The SDK speaks CloudWatch's RPC v2 CBOR protocol.

use std::collections::BTreeMap;

use aws_sdk_cloudwatch::types::{ComparisonOperator, Dimension, Statistic, Tag};

use super::{classify, done_if, AwsError, Cloud};

/// An alarm as CloudWatch describes it, with its tags.
#[derive(Clone, Debug, PartialEq)]
pub struct AlarmInfo {
    pub name: String,
    pub arn: String,
    /// The `InstanceId` dimension of its metric, if it has one.
    pub instance_id: Option<String>,
    pub namespace: String,
    pub metric: String,
    pub statistic: Option<String>,
    pub comparison: Option<String>,
    pub threshold: Option<f64>,
    pub period_seconds: Option<i32>,
    pub evaluation_periods: Option<i32>,
    pub actions: Vec<String>,
    /// `OK`, `ALARM` or `INSUFFICIENT_DATA`.
    pub state: Option<String>,
    pub tags: BTreeMap<String, String>,
}

/// What putting an alarm on an instance's average CPU takes: below `threshold` percent for
/// `evaluation_periods` periods of `period_seconds`, then `action`.
#[derive(Clone, Debug, PartialEq)]
pub struct CpuAlarmRequest {
    pub name: String,
    pub description: String,
    pub instance_id: String,
    pub threshold: f64,
    pub period_seconds: i32,
    pub evaluation_periods: i32,
    pub action: String,
    pub tags: BTreeMap<String, String>,
}

fn alarm_address(name: &str) -> String {
    format!("alarm {name}")
}

impl Cloud {
    /// The ARN of the alarm action that stops an instance, in the client's region.
    pub fn stop_action(&self) -> String {
        format!("arn:aws:automate:{}:ec2:stop", self.region)
    }

    /// The metric alarms whose names start with `prefix`, each with its tags.
    pub async fn alarms(&self, prefix: &str) -> Result<Vec<AlarmInfo>, AwsError> {
        let mut found = Vec::new();
        let mut pages = self
            .cloudwatch
            .describe_alarms()
            .alarm_name_prefix(prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("DescribeAlarms", prefix, e))?;
            for alarm in page.metric_alarms() {
                let Some(name) = alarm.alarm_name() else {
                    continue;
                };
                found.push(AlarmInfo {
                    name: name.to_string(),
                    arn: alarm.alarm_arn().unwrap_or_default().to_string(),
                    instance_id: alarm
                        .dimensions()
                        .iter()
                        .find(|d| d.name() == Some("InstanceId"))
                        .and_then(|d| d.value())
                        .map(str::to_string),
                    namespace: alarm.namespace().unwrap_or_default().to_string(),
                    metric: alarm.metric_name().unwrap_or_default().to_string(),
                    statistic: alarm.statistic().map(|s| s.as_str().to_string()),
                    comparison: alarm.comparison_operator().map(|c| c.as_str().to_string()),
                    threshold: alarm.threshold(),
                    period_seconds: alarm.period(),
                    evaluation_periods: alarm.evaluation_periods(),
                    actions: alarm.alarm_actions().to_vec(),
                    state: alarm.state_value().map(|s| s.as_str().to_string()),
                    tags: BTreeMap::new(),
                });
            }
        }
        for alarm in &mut found {
            alarm.tags = self.alarm_tags(&alarm.name, &alarm.arn).await?;
        }
        Ok(found)
    }

    async fn alarm_tags(
        &self,
        name: &str,
        arn: &str,
    ) -> Result<BTreeMap<String, String>, AwsError> {
        let output = self
            .cloudwatch
            .list_tags_for_resource()
            .resource_arn(arn)
            .send()
            .await
            .map_err(|e| classify("ListTagsForResource", &alarm_address(name), e))?;
        Ok(output
            .tags()
            .iter()
            .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
            .collect())
    }

    /// The ARN of the alarm named `name` (DescribeAlarms by its exact name; no tags read).
    async fn alarm_arn(&self, name: &str) -> Result<String, AwsError> {
        let output = self
            .cloudwatch
            .describe_alarms()
            .alarm_names(name)
            .send()
            .await
            .map_err(|e| classify("DescribeAlarms", &alarm_address(name), e))?;
        output
            .metric_alarms()
            .iter()
            .find(|a| a.alarm_name() == Some(name))
            .and_then(|a| a.alarm_arn())
            .map(str::to_string)
            .ok_or_else(|| AwsError {
                operation: "DescribeAlarms",
                resource: alarm_address(name),
                code: None,
                message: "the alarm just put is not listed".into(),
                kind: super::AwsErrorKind::Service,
            })
    }

    /// Creates the alarm, or replaces its definition (PutMetricAlarm is both); its tags are
    /// set with it, and on an existing alarm, by TagResource. Returns its ARN.
    pub async fn put_cpu_alarm(&self, request: &CpuAlarmRequest) -> Result<String, AwsError> {
        let tags: Vec<Tag> = request
            .tags
            .iter()
            .map(|(key, value)| Tag::builder().key(key).value(value).build())
            .collect();
        self.cloudwatch
            .put_metric_alarm()
            .alarm_name(&request.name)
            .alarm_description(&request.description)
            .namespace("AWS/EC2")
            .metric_name("CPUUtilization")
            .dimensions(
                Dimension::builder()
                    .name("InstanceId")
                    .value(&request.instance_id)
                    .build(),
            )
            .statistic(Statistic::Average)
            .comparison_operator(ComparisonOperator::LessThanThreshold)
            .threshold(request.threshold)
            .period(request.period_seconds)
            .evaluation_periods(request.evaluation_periods)
            .alarm_actions(&request.action)
            .actions_enabled(true)
            .set_tags(Some(tags.clone()))
            .send()
            .await
            .map_err(|e| classify("PutMetricAlarm", &alarm_address(&request.name), e))?;
        // PutMetricAlarm sets tags only when it creates the alarm.
        let arn = self.alarm_arn(&request.name).await?;
        self.cloudwatch
            .tag_resource()
            .resource_arn(&arn)
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(|e| classify("TagResource", &alarm_address(&request.name), e))?;
        Ok(arn)
    }

    /// Removes tags from an alarm.
    pub async fn untag_alarm(
        &self,
        name: &str,
        arn: &str,
        keys: &[String],
    ) -> Result<(), AwsError> {
        if keys.is_empty() {
            return Ok(());
        }
        self.cloudwatch
            .untag_resource()
            .resource_arn(arn)
            .set_tag_keys(Some(keys.to_vec()))
            .send()
            .await
            .map_err(|e| classify("UntagResource", &alarm_address(name), e))?;
        Ok(())
    }

    /// Deletes the alarm; one that is gone already counts as deleted.
    pub async fn delete_alarm(&self, name: &str) -> Result<(), AwsError> {
        let result = self
            .cloudwatch
            .delete_alarms()
            .alarm_names(name)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("DeleteAlarms", &alarm_address(name), e));
        done_if(result, "ResourceNotFound")
    }
}
