//! A stand-in for CloudWatch's alarms on loopback. The SDK speaks CloudWatch's RPC v2 CBOR
//! protocol, which moto does not answer (it knows the query and JSON protocols), so this
//! answers the calls tether makes (PutMetricAlarm, DescribeAlarms, DeleteAlarms,
//! ListTagsForResource, TagResource, UntagResource) with the shapes AWS documents, keeping
//! the alarms in memory. Tests read them back through the SDK, as they read moto.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use ciborium::Value;

use super::http::{self, Request, Response};

const ACCOUNT: &str = "123456789012";

#[derive(Clone, Debug, Default)]
struct Alarm {
    /// The PutMetricAlarm request's members (its `MetricAlarm` shape), tags aside.
    members: Vec<(String, Value)>,
    tags: BTreeMap<String, String>,
}

/// The alarms, by name.
type Alarms = Arc<Mutex<BTreeMap<String, Alarm>>>;

pub struct CloudWatch {
    pub endpoint: String,
    alarms: Alarms,
}

impl CloudWatch {
    /// How many alarms it holds.
    pub fn count(&self) -> usize {
        self.alarms.lock().expect("alarms").len()
    }

    /// An SDK client of this stand-in, to read alarms back as AWS would show them.
    pub fn client(&self) -> aws_sdk_cloudwatch::Client {
        let config = aws_sdk_cloudwatch::Config::builder()
            .behavior_version(aws_sdk_cloudwatch::config::BehaviorVersion::latest())
            .region(aws_sdk_cloudwatch::config::Region::new("us-east-1"))
            .endpoint_url(&self.endpoint)
            .credentials_provider(aws_sdk_cloudwatch::config::Credentials::new(
                "testing", "testing", None, None, "tests",
            ))
            .build();
        aws_sdk_cloudwatch::Client::from_conf(config)
    }
}

fn text(value: &Value) -> Option<String> {
    value.as_text().map(str::to_string)
}

fn member<'a>(map: &'a [(Value, Value)], name: &str) -> Option<&'a Value> {
    map.iter()
        .find(|(key, _)| key.as_text() == Some(name))
        .map(|(_, value)| value)
}

fn tag_list(value: Option<&Value>) -> BTreeMap<String, String> {
    value
        .and_then(Value::as_array)
        .map(|tags| {
            tags.iter()
                .filter_map(|tag| {
                    let tag = tag.as_map()?;
                    Some((text(member(tag, "Key")?)?, text(member(tag, "Value")?)?))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn arn(name: &str) -> String {
    format!("arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:{name}")
}

fn cbor(status: u16, body: Value, error: Option<&str>) -> Response {
    let mut bytes = Vec::new();
    ciborium::into_writer(&body, &mut bytes).expect("encode CBOR");
    let mut headers = vec![("smithy-protocol", "rpc-v2-cbor".to_string())];
    if let Some(code) = error {
        headers.push(("x-amzn-query-error", format!("{code};Sender")));
    }
    Response {
        status,
        content_type: "application/cbor",
        body: String::new(),
        bytes: Some(bytes),
        headers,
    }
}

fn map(entries: Vec<(&str, Value)>) -> Value {
    Value::Map(
        entries
            .into_iter()
            .map(|(key, value)| (Value::Text(key.to_string()), value))
            .collect(),
    )
}

fn not_found(what: &str) -> Response {
    cbor(
        400,
        map(vec![
            ("__type", Value::Text("ResourceNotFound".into())),
            ("message", Value::Text(format!("{what} not found"))),
        ]),
        Some("ResourceNotFound"),
    )
}

fn answer(alarms: &Alarms, request: &Request) -> Response {
    let operation = request
        .line
        .split_whitespace()
        .nth(1)
        .and_then(|path| path.rsplit('/').next())
        .unwrap_or_default()
        .to_string();
    let body: Value = if request.body.is_empty() {
        Value::Map(Vec::new())
    } else {
        ciborium::from_reader(request.body.as_slice()).expect("a CBOR request")
    };
    let input = body.as_map().cloned().unwrap_or_default();
    let mut alarms = alarms.lock().expect("alarms");
    match operation.as_str() {
        "PutMetricAlarm" => {
            let name = member(&input, "AlarmName")
                .and_then(text)
                .expect("AlarmName");
            let members: Vec<(String, Value)> = input
                .iter()
                .filter_map(|(key, value)| Some((key.as_text()?.to_string(), value.clone())))
                .filter(|(key, _)| key != "Tags")
                .collect();
            let entry = alarms.entry(name).or_default();
            // Tags count only when the alarm is made (AWS: use TagResource after).
            if entry.members.is_empty() {
                entry.tags = tag_list(member(&input, "Tags"));
            }
            entry.members = members;
            cbor(200, Value::Map(Vec::new()), None)
        }
        "DescribeAlarms" => {
            let prefix = member(&input, "AlarmNamePrefix").and_then(text);
            let names: Option<Vec<String>> = member(&input, "AlarmNames")
                .and_then(Value::as_array)
                .map(|names| names.iter().filter_map(text).collect());
            let found: Vec<Value> = alarms
                .iter()
                .filter(|(name, _)| prefix.as_ref().is_none_or(|p| name.starts_with(p.as_str())))
                .filter(|(name, _)| names.as_ref().is_none_or(|n| n.contains(name)))
                .map(|(name, alarm)| {
                    let mut entries: Vec<(Value, Value)> = alarm
                        .members
                        .iter()
                        .map(|(key, value)| (Value::Text(key.clone()), value.clone()))
                        .collect();
                    entries.push((Value::Text("AlarmArn".into()), Value::Text(arn(name))));
                    entries.push((
                        Value::Text("StateValue".into()),
                        Value::Text("INSUFFICIENT_DATA".into()),
                    ));
                    Value::Map(entries)
                })
                .collect();
            cbor(
                200,
                map(vec![
                    ("MetricAlarms", Value::Array(found)),
                    ("CompositeAlarms", Value::Array(Vec::new())),
                ]),
                None,
            )
        }
        "DeleteAlarms" => {
            let names: Vec<String> = member(&input, "AlarmNames")
                .and_then(Value::as_array)
                .map(|names| names.iter().filter_map(text).collect())
                .unwrap_or_default();
            if let Some(missing) = names.iter().find(|n| !alarms.contains_key(*n)) {
                return not_found(&format!("alarm {missing}"));
            }
            for name in names {
                alarms.remove(&name);
            }
            cbor(200, Value::Map(Vec::new()), None)
        }
        "ListTagsForResource" | "TagResource" | "UntagResource" => {
            let resource = member(&input, "ResourceARN")
                .and_then(text)
                .unwrap_or_default();
            let Some((_, alarm)) = alarms.iter_mut().find(|(name, _)| arn(name) == resource) else {
                return not_found(&resource);
            };
            match operation.as_str() {
                "TagResource" => alarm.tags.extend(tag_list(member(&input, "Tags"))),
                "UntagResource" => {
                    for key in member(&input, "TagKeys")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(text)
                    {
                        alarm.tags.remove(&key);
                    }
                }
                _ => {
                    let tags = alarm
                        .tags
                        .iter()
                        .map(|(key, value)| {
                            map(vec![
                                ("Key", Value::Text(key.clone())),
                                ("Value", Value::Text(value.clone())),
                            ])
                        })
                        .collect();
                    return cbor(200, map(vec![("Tags", Value::Array(tags))]), None);
                }
            }
            cbor(200, Value::Map(Vec::new()), None)
        }
        other => cbor(
            400,
            map(vec![
                ("__type", Value::Text("InvalidAction".into())),
                ("message", Value::Text(format!("{other} is not scripted"))),
            ]),
            Some("InvalidAction"),
        ),
    }
}

/// Starts the stand-in on a loopback port.
pub fn serve() -> CloudWatch {
    let alarms: Alarms = Arc::default();
    let served = Arc::clone(&alarms);
    let port = http::serve(move |request| answer(&served, request));
    CloudWatch {
        endpoint: format!("http://127.0.0.1:{port}"),
        alarms,
    }
}
