//! IAM-style policy documents: validation, semantic normalisation and the public-access rules.
//!
//! Pure functions over `serde_json::Value`. This module knows the policy language (statements,
//! effects, principals, actions) and S3's rules for bucket policies; it does not know where a
//! document came from (spec or account) nor how problems are shown: problems carry a path into
//! the document and the spec layer turns that path into `file:line:column`.

use serde_json::{Map, Value};

/// The `Sid` of the statement that `public_read: true` adds.
pub const PUBLIC_READ_SID: &str = "AllowPublicRead";

/// Policy language versions AWS accepts.
const VERSIONS: [&str; 2] = ["2012-10-17", "2008-10-17"];

const STATEMENT_KEYS: [&str; 9] = [
    "Sid",
    "Effect",
    "Principal",
    "NotPrincipal",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
];

/// Keys whose values are sets of strings: order and a one-element list versus a single value
/// do not matter to AWS.
const SET_KEYS: [&str; 4] = ["Action", "NotAction", "Resource", "NotResource"];

/// S3 actions that write or delete. An `Allow` to everyone of any action pattern matching one
/// of these is public write access.
const S3_WRITE_ACTIONS: [&str; 20] = [
    "s3:PutObject",
    "s3:PutObjectAcl",
    "s3:PutObjectTagging",
    "s3:PutObjectRetention",
    "s3:PutBucketPolicy",
    "s3:PutBucketAcl",
    "s3:PutBucketTagging",
    "s3:PutBucketPublicAccessBlock",
    "s3:PutLifecycleConfiguration",
    "s3:PutEncryptionConfiguration",
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
    "s3:DeleteObjectTagging",
    "s3:DeleteBucket",
    "s3:DeleteBucketPolicy",
    "s3:AbortMultipartUpload",
    "s3:RestoreObject",
    "s3:ReplicateObject",
    "s3:ReplicateDelete",
    "s3:BypassGovernanceRetention",
];

/// One thing wrong with a policy document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Path from the document's root to the offending node (`["Statement", "0", "Effect"]`).
    pub path: Vec<String>,
    pub message: String,
    pub hint: Option<String>,
}

impl Problem {
    fn new<S: AsRef<str>>(path: &[S], message: impl Into<String>) -> Problem {
        Problem {
            path: path.iter().map(|s| s.as_ref().to_string()).collect(),
            message: message.into(),
            hint: None,
        }
    }

    fn with_hint(mut self, hint: impl Into<String>) -> Problem {
        self.hint = Some(hint.into());
        self
    }
}

/// The AWS partition of a region, for ARNs.
pub fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// The statement `public_read: true` stands for: anyone may read the bucket's objects.
pub fn public_read_statement(bucket: &str, partition: &str) -> Value {
    serde_json::json!({
        "Sid": PUBLIC_READ_SID,
        "Effect": "Allow",
        "Principal": "*",
        "Action": "s3:GetObject",
        "Resource": format!("arn:{partition}:s3:::{bucket}/*"),
    })
}

/// The statements of a document: a single statement object counts as a list of one.
fn statements(document: &Value) -> Vec<&Value> {
    match document.get("Statement") {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(single @ Value::Object(_)) => vec![single],
        _ => Vec::new(),
    }
}

/// The `Sid`s of the document's statements.
pub fn statement_ids(document: &Value) -> Vec<&str> {
    statements(document)
        .into_iter()
        .filter_map(|s| s.get("Sid").and_then(Value::as_str))
        .collect()
}

/// `document` with the statement appended (a single statement object becomes a list).
pub fn with_statement(document: &Value, statement: Value) -> Value {
    let mut document = document.clone();
    if let Value::Object(map) = &mut document {
        let mut list: Vec<Value> = match map.remove("Statement") {
            Some(Value::Array(items)) => items,
            Some(single) => vec![single],
            None => Vec::new(),
        };
        list.push(statement);
        map.insert("Statement".to_string(), Value::Array(list));
    }
    document
}

/// A new document holding only `statement`.
pub fn document_of(statement: Value) -> Value {
    serde_json::json!({"Version": "2012-10-17", "Statement": [statement]})
}

/// Which kind of policy a document is; the kinds differ in what a statement must name.
#[derive(Clone, Copy, Debug)]
pub enum PolicyKind<'a> {
    /// An S3 bucket policy: every statement names a principal, `s3:` actions and resources in
    /// `bucket`; public write access is refused unless allowed.
    Bucket {
        bucket: &'a str,
        allow_public_write: bool,
    },
    /// An identity policy (inline on a user, group or role): no principal, any service's
    /// actions.
    Identity,
    /// A role's trust policy: who may assume the role. Every statement names a principal and
    /// `sts:` actions, and no resource (the role is the resource).
    Trust,
}

/// The trust policy that lets `services` (service principals) assume a role.
pub fn service_trust_policy(services: &[String]) -> Value {
    let principal = match services {
        [one] => Value::String(one.clone()),
        many => Value::Array(many.iter().cloned().map(Value::String).collect()),
    };
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": principal},
            "Action": "sts:AssumeRole",
        }],
    })
}

/// Whether a trust policy lets `service` assume the role: an `Allow` statement naming it as a
/// service principal, with `sts:AssumeRole` (or `sts:*`, `*`).
pub fn trusts_service(document: &Value, service: &str) -> bool {
    statements(document).into_iter().any(|statement| {
        let allows = statement.get("Effect").and_then(Value::as_str) == Some("Allow");
        let names_service = statement
            .get("Principal")
            .and_then(|p| p.get("Service"))
            .is_some_and(|services| one_or_many(services).any(|s| s == service));
        let assumes = statement.get("Action").is_some_and(|actions| {
            one_or_many(actions).any(|a| {
                let a = a.to_ascii_lowercase();
                a == "sts:assumerole" || a == "sts:*" || a == "*"
            })
        });
        allows && names_service && assumes
    })
}

/// The strings of a string-or-list node.
fn one_or_many(value: &Value) -> impl Iterator<Item = &str> {
    let items: Vec<&str> = match value {
        Value::String(one) => vec![one.as_str()],
        Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    items.into_iter()
}

/// Checks what AWS would reject in an S3 bucket policy for `bucket`, and refuses public write
/// access unless `allow_public_write`.
pub fn validate_bucket_policy(
    document: &Value,
    bucket: &str,
    allow_public_write: bool,
) -> Vec<Problem> {
    validate(
        document,
        PolicyKind::Bucket {
            bucket,
            allow_public_write,
        },
    )
}

/// Checks what AWS would reject in a policy document of the given kind.
pub fn validate(document: &Value, kind: PolicyKind<'_>) -> Vec<Problem> {
    let mut problems = Vec::new();
    let Value::Object(map) = document else {
        problems.push(Problem::new::<&str>(
            &[],
            "a policy document must be a mapping (a JSON object)",
        ));
        return problems;
    };
    for key in map.keys() {
        if !["Version", "Id", "Statement"].contains(&key.as_str()) {
            problems.push(
                Problem::new(&[key], format!("unknown policy key `{key}`"))
                    .with_hint("a policy document has `Version`, `Statement` and optionally `Id`"),
            );
        }
    }
    match map.get("Version") {
        None => problems.push(
            Problem::new::<&str>(&[], "the policy has no `Version`")
                .with_hint("add `Version: \"2012-10-17\"`"),
        ),
        Some(Value::String(version)) if VERSIONS.contains(&version.as_str()) => {}
        Some(other) => problems.push(
            Problem::new(&["Version"], format!("unsupported policy version {other}"))
                .with_hint("use \"2012-10-17\" (quoted, so YAML keeps it a string)"),
        ),
    }
    let statements: Vec<(String, &Value)> = match map.get("Statement") {
        None => {
            problems.push(Problem::new::<&str>(&[], "the policy has no `Statement`"));
            Vec::new()
        }
        Some(Value::Array(items)) if items.is_empty() => {
            problems.push(Problem::new(
                &["Statement"],
                "the policy's `Statement` list is empty",
            ));
            Vec::new()
        }
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, s)| (i.to_string(), s))
            .collect(),
        Some(single @ Value::Object(_)) => vec![(String::new(), single)],
        Some(_) => {
            problems.push(Problem::new(
                &["Statement"],
                "`Statement` must be a statement or a list of statements",
            ));
            Vec::new()
        }
    };
    let mut sids: Vec<&str> = Vec::new();
    for (index, statement) in statements {
        // A single statement object has no index in its path.
        let base: Vec<&str> = if index.is_empty() {
            vec!["Statement"]
        } else {
            vec!["Statement", index.as_str()]
        };
        let at = |key: &str| -> Vec<String> {
            let mut path: Vec<String> = base.iter().map(|s| s.to_string()).collect();
            if !key.is_empty() {
                path.push(key.to_string());
            }
            path
        };
        let Value::Object(statement_map) = statement else {
            problems.push(Problem::new(&base, "a statement must be a mapping"));
            continue;
        };
        for key in statement_map.keys() {
            if !STATEMENT_KEYS.contains(&key.as_str()) {
                problems.push(Problem::new(&at(key), format!("unknown statement key `{key}`")).with_hint(
                    "a statement has Sid, Effect, Principal, Action, Resource and Condition (or their Not forms)",
                ));
            }
        }
        if let Some(sid) = statement_map.get("Sid") {
            match sid.as_str() {
                Some(sid) if sids.contains(&sid) => problems.push(Problem::new(
                    &at("Sid"),
                    format!("duplicate statement id `{sid}`"),
                )),
                Some(sid) => sids.push(sid),
                None => problems.push(Problem::new(&at("Sid"), "`Sid` must be a string")),
            }
        }
        match statement_map.get("Effect").and_then(Value::as_str) {
            Some("Allow" | "Deny") => {}
            Some(other) => problems.push(
                Problem::new(&at("Effect"), format!("invalid effect `{other}`"))
                    .with_hint("`Effect` is `Allow` or `Deny`"),
            ),
            None => problems.push(
                Problem::new(&at(""), "the statement has no `Effect`")
                    .with_hint("`Effect` is `Allow` or `Deny`"),
            ),
        }
        let is_bucket_policy = matches!(kind, PolicyKind::Bucket { .. });
        let is_trust_policy = matches!(kind, PolicyKind::Trust);
        for (positive, negative, what) in [
            ("Principal", "NotPrincipal", "a principal"),
            ("Action", "NotAction", "an action"),
            ("Resource", "NotResource", "a resource"),
        ] {
            // What a statement of this kind of policy may not name, and why.
            let forbidden = match (positive, &kind) {
                ("Principal", PolicyKind::Identity) => Some((
                    "a user's, group's or role's own policy names no principal",
                    "the principal is whoever the policy is attached to",
                )),
                ("Resource", PolicyKind::Trust) => Some((
                    "a trust policy names no resource",
                    "the resource is the role itself",
                )),
                _ => None,
            };
            match (
                statement_map.contains_key(positive),
                statement_map.contains_key(negative),
            ) {
                (true, true) => problems.push(Problem::new(
                    &at(negative),
                    format!("a statement has either `{positive}` or `{negative}`, not both"),
                )),
                (false, false) if forbidden.is_none() => problems.push(Problem::new(
                    &at(""),
                    format!("the statement names no {positive}: a policy statement needs {what}"),
                )),
                (true, _) | (_, true) => {
                    if let Some((message, hint)) = forbidden {
                        let key = if statement_map.contains_key(positive) {
                            positive
                        } else {
                            negative
                        };
                        problems.push(Problem::new(&at(key), message).with_hint(hint));
                    }
                }
                _ => {}
            }
        }
        for key in ["Action", "NotAction"] {
            for (action, path) in string_items(statement_map.get(key), &at(key), &mut problems) {
                let lower = action.to_ascii_lowercase();
                if is_trust_policy && !lower.starts_with("sts:") {
                    problems.push(
                        Problem::new(&path, format!("`{action}` is not an STS action")).with_hint(
                            "a trust policy allows `sts:AssumeRole` (or another `sts:` action)",
                        ),
                    );
                } else if is_bucket_policy && action != "*" && !lower.starts_with("s3:") {
                    problems.push(
                        Problem::new(&path, format!("`{action}` is not an S3 action"))
                            .with_hint("bucket policies grant only `s3:` actions"),
                    );
                } else if action != "*" && !is_action_name(&action) {
                    problems.push(
                        Problem::new(&path, format!("`{action}` is not an action"))
                            .with_hint("actions look like `service:Action`, e.g. `s3:GetObject`"),
                    );
                }
            }
        }
        let PolicyKind::Bucket {
            bucket,
            allow_public_write,
        } = kind
        else {
            // Identity policies: resources are any ARN or `*`; checked by shape above only.
            for key in ["Resource", "NotResource"] {
                string_items(statement_map.get(key), &at(key), &mut problems);
            }
            if is_trust_policy {
                if let Some(principal) = statement_map.get("Principal") {
                    check_principal(principal, &at("Principal"), &mut problems);
                }
            }
            continue;
        };
        for key in ["Resource", "NotResource"] {
            for (resource, path) in string_items(statement_map.get(key), &at(key), &mut problems) {
                if !resource_is_in_bucket(&resource, bucket) {
                    problems.push(
                        Problem::new(&path, format!("resource `{resource}` is not in bucket `{bucket}`"))
                            .with_hint(format!(
                                "a bucket policy may only name `arn:aws:s3:::{bucket}` or `arn:aws:s3:::{bucket}/...`"
                            )),
                    );
                }
            }
        }
        if let Some(principal) = statement_map.get("Principal") {
            check_principal(principal, &at("Principal"), &mut problems);
        }
        if !allow_public_write {
            if let Some(action) = public_write_action(statement_map) {
                let path = if statement_map.contains_key("Action") {
                    at("Action")
                } else {
                    at("NotAction")
                };
                problems.push(
                    Problem::new(&path, format!("this statement lets anyone write or delete (`{action}`)"))
                        .with_hint("public write access is refused unless the bucket says `allow_public_write: true`"),
                );
            }
        }
    }
    problems
}

/// The strings of a string-or-list-of-strings node, each with its path; non-strings are
/// reported as problems.
fn string_items<S: AsRef<str>>(
    value: Option<&Value>,
    path: &[S],
    problems: &mut Vec<Problem>,
) -> Vec<(String, Vec<String>)> {
    let owned = |extra: Option<String>| -> Vec<String> {
        let mut p: Vec<String> = path.iter().map(|s| s.as_ref().to_string()).collect();
        p.extend(extra);
        p
    };
    match value {
        None => Vec::new(),
        Some(Value::String(s)) => vec![(s.clone(), owned(None))],
        Some(Value::Array(items)) => {
            let mut out = Vec::new();
            for (i, item) in items.iter().enumerate() {
                match item {
                    Value::String(s) => out.push((s.clone(), owned(Some(i.to_string())))),
                    _ => problems.push(Problem {
                        path: owned(Some(i.to_string())),
                        message: "expected a string".to_string(),
                        hint: None,
                    }),
                }
            }
            if items.is_empty() {
                problems.push(Problem {
                    path: owned(None),
                    message: "the list is empty".to_string(),
                    hint: None,
                });
            }
            out
        }
        Some(_) => {
            problems.push(Problem {
                path: owned(None),
                message: "expected a string or a list of strings".to_string(),
                hint: None,
            });
            Vec::new()
        }
    }
}

fn check_principal(principal: &Value, path: &[String], problems: &mut Vec<Problem>) {
    match principal {
        Value::String(s) if s == "*" => {}
        Value::Object(map) if !map.is_empty() => {
            for (kind, value) in map {
                if !["AWS", "Service", "Federated", "CanonicalUser"].contains(&kind.as_str()) {
                    let mut at = path.to_vec();
                    at.push(kind.clone());
                    problems.push(
                        Problem::new(&at, format!("unknown principal type `{kind}`")).with_hint(
                            "principal types are AWS, Service, Federated and CanonicalUser",
                        ),
                    );
                }
                let mut at = path.to_vec();
                at.push(kind.clone());
                string_items(Some(value), &at, problems);
            }
        }
        _ => problems.push(Problem::new(
            path,
            "a principal is `\"*\"` or a mapping such as `{AWS: [arn...]}`",
        )),
    }
}

fn resource_is_in_bucket(resource: &str, bucket: &str) -> bool {
    let Some(rest) = resource.strip_prefix("arn:") else {
        return false;
    };
    let Some((partition, rest)) = rest.split_once(':') else {
        return false;
    };
    let Some(path) = rest.strip_prefix("s3:::") else {
        return false;
    };
    partition.starts_with("aws")
        && (path == bucket
            || path
                .strip_prefix(bucket)
                .is_some_and(|tail| tail.starts_with('/')))
}

/// `service:Action`, where the action part may hold wildcards.
fn is_action_name(action: &str) -> bool {
    action.split_once(':').is_some_and(|(service, name)| {
        !service.is_empty()
            && service
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '*' || c == '?')
    })
}

/// Whether the principal is everyone: `"*"` or `{"AWS": "*"}` (or a list holding `"*"`).
fn is_public_principal(principal: Option<&Value>) -> bool {
    match principal {
        Some(Value::String(s)) => s == "*",
        Some(Value::Object(map)) => match map.get("AWS") {
            Some(Value::String(s)) => s == "*",
            Some(Value::Array(items)) => items.iter().any(|v| v.as_str() == Some("*")),
            _ => false,
        },
        _ => false,
    }
}

/// If the statement allows everyone a write or delete action, the action pattern that does.
fn public_write_action(statement: &Map<String, Value>) -> Option<String> {
    if statement.get("Effect").and_then(Value::as_str) != Some("Allow")
        || !is_public_principal(statement.get("Principal"))
    {
        return None;
    }
    if statement.contains_key("NotAction") {
        // "Everything except these" almost always includes a write; treat it as one.
        return Some("NotAction".to_string());
    }
    let patterns: Vec<&str> = match statement.get("Action") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    patterns
        .into_iter()
        .find(|pattern| {
            S3_WRITE_ACTIONS
                .iter()
                .any(|action| glob_matches(pattern, action))
        })
        .map(str::to_string)
}

/// If any statement of `document` lets everyone write or delete, the action pattern that does.
pub fn public_write(document: &Value) -> Option<String> {
    statements(document)
        .into_iter()
        .filter_map(Value::as_object)
        .find_map(public_write_action)
}

/// Whether any `Allow` statement names everyone as principal: such a policy only takes effect
/// when the bucket's public access block lets public policies through.
pub fn grants_public_access(document: &Value) -> bool {
    statements(document).into_iter().any(|statement| {
        statement.get("Effect").and_then(Value::as_str) == Some("Allow")
            && is_public_principal(statement.get("Principal"))
    })
}

/// IAM action matching: case-insensitive, `*` any run of characters, `?` one character.
fn glob_matches(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.to_ascii_lowercase().chars().collect();
    let text: Vec<char> = text.to_ascii_lowercase().chars().collect();
    let (mut p, mut t) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            backtrack = Some((p, t));
            p += 1;
        } else if let Some((star, matched)) = backtrack {
            p = star + 1;
            t = matched + 1;
            backtrack = Some((star, matched + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

/// The canonical form of a policy document: two documents AWS treats alike normalise to the
/// same value. Key order and whitespace vanish with parsing; on top of that, string sets
/// (`Action`, `Resource`, principals, condition values) are sorted and de-duplicated, a
/// one-element list becomes its single value, a single statement becomes a list of one, and
/// condition values are compared as strings (AWS stores `true` and `"true"` alike).
/// Statement order is kept: it is what the user wrote and what AWS returns.
pub fn normalise(document: &Value) -> Value {
    let Value::Object(map) = document else {
        return document.clone();
    };
    let mut out = Map::new();
    for (key, value) in canonical_order(map, &["Version", "Id", "Statement"]) {
        let value = if key == "Statement" {
            let items = match value {
                Value::Array(items) => items.clone(),
                single => vec![single.clone()],
            };
            Value::Array(items.iter().map(normalise_statement).collect())
        } else {
            value.clone()
        };
        out.insert(key.clone(), value);
    }
    Value::Object(out)
}

fn normalise_statement(statement: &Value) -> Value {
    let Value::Object(map) = statement else {
        return statement.clone();
    };
    let mut out = Map::new();
    for (key, value) in canonical_order(map, &STATEMENT_KEYS) {
        let value = match key.as_str() {
            k if SET_KEYS.contains(&k) => string_set(value),
            "Principal" | "NotPrincipal" => match value {
                Value::Object(kinds) => Value::Object(
                    canonical_order(kinds, &[])
                        .into_iter()
                        .map(|(kind, ids)| (kind.clone(), string_set(ids)))
                        .collect(),
                ),
                other => other.clone(),
            },
            "Condition" => match value {
                Value::Object(operators) => Value::Object(
                    canonical_order(operators, &[])
                        .into_iter()
                        .map(|(operator, keys)| {
                            let keys = match keys {
                                Value::Object(keys) => Value::Object(
                                    canonical_order(keys, &[])
                                        .into_iter()
                                        .map(|(k, v)| {
                                            (k.clone(), string_set(&stringify_scalars(v)))
                                        })
                                        .collect(),
                                ),
                                other => other.clone(),
                            };
                            (operator.clone(), keys)
                        })
                        .collect(),
                ),
                other => other.clone(),
            },
            _ => value.clone(),
        };
        out.insert(key.clone(), value);
    }
    Value::Object(out)
}

/// The entries of `map` with the `known` keys first, in that order, then the rest sorted, so
/// that normalised documents print alike whatever order AWS or the user wrote them in.
fn canonical_order<'a>(
    map: &'a Map<String, Value>,
    known: &[&str],
) -> Vec<(&'a String, &'a Value)> {
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    entries.sort_by_key(|(key, _)| {
        let rank = known.iter().position(|k| k == key).unwrap_or(known.len());
        (rank, key.as_str())
    });
    entries
}

fn stringify_scalars(value: &Value) -> Value {
    match value {
        Value::Bool(b) => Value::String(b.to_string()),
        Value::Number(n) => Value::String(n.to_string()),
        Value::Array(items) => Value::Array(items.iter().map(stringify_scalars).collect()),
        other => other.clone(),
    }
}

/// A string or list of strings as a sorted, de-duplicated list, or the single value when
/// only one remains. Anything else is returned unchanged (validation reports it).
fn string_set(value: &Value) -> Value {
    match value {
        Value::Array(items) if items.iter().all(Value::is_string) => {
            let mut strings: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
            strings.sort_unstable();
            strings.dedup();
            match strings.as_slice() {
                [single] => Value::String(single.to_string()),
                many => Value::Array(many.iter().map(|s| Value::String(s.to_string())).collect()),
            }
        }
        other => other.clone(),
    }
}

/// The document as indented JSON, keys in the order of the value (canonical after
/// `normalise`). Used for diffs and for the body sent to AWS, so what is shown is what is sent.
pub fn to_pretty_json(document: &Value) -> String {
    serde_json::to_string_pretty(document).expect("a JSON value always serialises")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn equivalent_documents_normalise_alike() {
        let cases = [
            (
                "single value versus one-element list",
                json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": ["arn:aws:s3:::b/*"]}]}),
                json!({"Statement": [{"Resource": "arn:aws:s3:::b/*", "Action": ["s3:GetObject"], "Principal": "*", "Effect": "Allow"}], "Version": "2012-10-17"}),
            ),
            (
                "order of actions, resources and principals",
                json!({"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam::1:root", "arn:aws:iam::2:root"]}, "Action": ["s3:PutObject", "s3:GetObject"], "Resource": ["arn:aws:s3:::b/*", "arn:aws:s3:::b"]}}),
                json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam::2:root", "arn:aws:iam::1:root"]}, "Action": ["s3:GetObject", "s3:PutObject", "s3:GetObject"], "Resource": ["arn:aws:s3:::b", "arn:aws:s3:::b/*"]}]}),
            ),
            (
                "condition values as booleans or strings",
                json!({"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::b/*", "Condition": {"Bool": {"aws:SecureTransport": false}}}]}),
                json!({"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::b/*", "Condition": {"Bool": {"aws:SecureTransport": ["false"]}}}]}),
            ),
        ];
        for (name, left, right) in cases {
            assert_eq!(normalise(&left), normalise(&right), "{name}");
        }
    }

    #[test]
    fn real_differences_survive_normalisation() {
        let cases = [
            (
                "another action",
                json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}]}),
                json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::b/*"}]}),
            ),
            (
                "statement order",
                json!({"Version": "2012-10-17", "Statement": [{"Sid": "a", "Effect": "Allow"}, {"Sid": "b", "Effect": "Deny"}]}),
                json!({"Version": "2012-10-17", "Statement": [{"Sid": "b", "Effect": "Deny"}, {"Sid": "a", "Effect": "Allow"}]}),
            ),
        ];
        for (name, left, right) in cases {
            assert_ne!(normalise(&left), normalise(&right), "{name}");
        }
    }

    fn messages(document: Value, allow_public_write: bool) -> Vec<String> {
        validate_bucket_policy(&document, "lab", allow_public_write)
            .into_iter()
            .map(|p| format!("{}: {}", p.path.join("."), p.message))
            .collect()
    }

    #[test]
    fn validation_table() {
        let ok =
            json!({"Version": "2012-10-17", "Statement": [public_read_statement("lab", "aws")]});
        assert_eq!(messages(ok, false), Vec::<String>::new());

        let cases: Vec<(&str, Value, bool, Vec<&str>)> = vec![
            ("not a mapping", json!(["x"]), false, vec![": a policy document must be a mapping (a JSON object)"]),
            (
                "missing version and statement",
                json!({}),
                false,
                vec![": the policy has no `Version`", ": the policy has no `Statement`"],
            ),
            (
                "bad version and effect",
                json!({"Version": "2020-01-01", "Statement": [{"Effect": "Permit", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::lab/*"}]}),
                false,
                vec!["Version: unsupported policy version \"2020-01-01\"", "Statement.0.Effect: invalid effect `Permit`"],
            ),
            (
                "foreign action and resource",
                json!({"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Principal": "*", "Action": "ec2:RunInstances", "Resource": "arn:aws:s3:::other/*"}}),
                false,
                vec![
                    "Statement.Action: `ec2:RunInstances` is not an S3 action",
                    "Statement.Resource: resource `arn:aws:s3:::other/*` is not in bucket `lab`",
                ],
            ),
            (
                "bucket name prefix is not the bucket",
                json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::lab-other/*"}]}),
                false,
                vec!["Statement.0.Resource: resource `arn:aws:s3:::lab-other/*` is not in bucket `lab`"],
            ),
            (
                "public write by wildcard",
                json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": ["s3:GetObject", "s3:Put*"], "Resource": "arn:aws:s3:::lab/*"}]}),
                false,
                vec!["Statement.0.Action: this statement lets anyone write or delete (`s3:Put*`)"],
            ),
            (
                "public write of everything",
                json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "arn:aws:s3:::lab/*"}]}),
                false,
                vec!["Statement.0.Action: this statement lets anyone write or delete (`*`)"],
            ),
            (
                "public write allowed when asked for",
                json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::lab/*"}]}),
                true,
                vec![],
            ),
            (
                "denying everyone writes is fine",
                json!({"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Principal": "*", "Action": "s3:DeleteObject", "Resource": "arn:aws:s3:::lab/*"}]}),
                false,
                vec![],
            ),
            (
                "duplicate sid and missing principal",
                json!({"Version": "2012-10-17", "Statement": [
                    {"Sid": "a", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::lab/*"},
                    {"Sid": "a", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::lab/*"}]}),
                false,
                vec![
                    "Statement.1.Sid: duplicate statement id `a`",
                    "Statement.1: the statement names no Principal: a policy statement needs a principal",
                ],
            ),
        ];
        for (name, document, allow, expected) in cases {
            assert_eq!(messages(document, allow), expected, "{name}");
        }
    }

    #[test]
    fn normalised_documents_print_in_canonical_key_order() {
        let document = json!({"Statement": {"Resource": "arn:aws:s3:::b/*", "Action": "s3:GetObject", "Principal": "*", "Effect": "Allow", "Sid": "s"}, "Version": "2012-10-17"});
        assert_eq!(
            serde_json::to_string(&normalise(&document)).unwrap(),
            r#"{"Version":"2012-10-17","Statement":[{"Sid":"s","Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}]}"#
        );
    }

    #[test]
    fn identity_policies_name_no_principal_and_any_service() {
        let ok = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject", "ec2:Describe*"], "Resource": "*"}]});
        assert_eq!(validate(&ok, PolicyKind::Identity), Vec::<Problem>::new());
        let bad = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "GetObject", "Resource": "*"}]});
        let messages: Vec<String> = validate(&bad, PolicyKind::Identity)
            .into_iter()
            .map(|p| format!("{}: {}", p.path.join("."), p.message))
            .collect();
        assert_eq!(
            messages,
            [
                "Statement.0.Principal: a user's, group's or role's own policy names no principal",
                "Statement.0.Action: `GetObject` is not an action",
            ]
        );
    }

    #[test]
    fn glob_matching_is_case_insensitive_with_stars_and_question_marks() {
        assert!(glob_matches("s3:*", "s3:PutObject"));
        assert!(glob_matches("S3:put*", "s3:PutObject"));
        assert!(glob_matches("s3:*Object", "s3:DeleteObject"));
        assert!(glob_matches("s3:?utObject", "s3:PutObject"));
        assert!(!glob_matches("s3:Get*", "s3:PutObject"));
        assert!(!glob_matches("s3:PutObject", "s3:PutObjectAcl"));
    }

    #[test]
    fn public_access_is_any_allow_to_everyone() {
        assert!(grants_public_access(&document_of(public_read_statement(
            "b", "aws"
        ))));
        let private = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::1:root"}, "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}]});
        assert!(!grants_public_access(&private));
    }
}
