//! `tether audit`: a read-only security report of the account. This module is the pure
//! half — the checks over facts already read (`Facts`), each with a verdict and the details
//! that explain it. Gathering the facts is `live::audit_facts`; printing is the CLI's.

use serde::Serialize;
use serde_json::Value;

use crate::model::PasswordPolicyState;
use crate::policy;

/// Active access keys older than this many days fail the audit.
pub const MAX_KEY_AGE_DAYS: i64 = 90;

/// The password policy baseline (CIS AWS Foundations): every field at least this strict.
pub const BASELINE: PasswordPolicyState = PasswordPolicyState {
    minimum_length: 14,
    require_symbols: true,
    require_numbers: true,
    require_uppercase: true,
    require_lowercase: true,
    allow_users_to_change_password: true,
    max_age_days: Some(90),
    reuse_prevention: Some(5),
    hard_expiry: false,
};

/// What the audit looks at, as read from the account.
#[derive(Clone, Debug, Default)]
pub struct Facts {
    /// The root user has access keys.
    pub root_access_keys: bool,
    /// The root user has MFA.
    pub root_mfa: bool,
    pub users: Vec<UserFacts>,
    pub password_policy: Option<PasswordPolicyState>,
    /// Buckets of the region and their policies.
    pub buckets: Vec<(String, Option<Value>)>,
    /// Security groups of the region's default VPC: name and ingress rules.
    pub security_groups: Vec<(String, Vec<crate::model::IngressRule>)>,
}

/// Jupyter's port: a notebook's token travels over it in plain HTTP.
pub const JUPYTER_PORT: i32 = 8888;

#[derive(Clone, Debug, Default)]
pub struct UserFacts {
    pub name: String,
    /// Managed policies attached to the user directly.
    pub attached_policies: Vec<String>,
    pub console_access: bool,
    pub mfa_devices: usize,
    /// Ages in days of the user's active access keys.
    pub active_key_ages_days: Vec<i64>,
}

/// One check's outcome.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Stable identifier, for scripts.
    pub id: &'static str,
    pub title: &'static str,
    pub passed: bool,
    /// What failed, one line each; empty when passed.
    pub details: Vec<String>,
    /// What to do when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<&'static str>,
}

/// The whole report, as `tether audit --json` prints it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Report {
    pub format_version: u32,
    pub passed: bool,
    pub checks: Vec<Check>,
}

fn check(id: &'static str, title: &'static str, details: Vec<String>, hint: &'static str) -> Check {
    Check {
        id,
        title,
        passed: details.is_empty(),
        hint: (!details.is_empty()).then_some(hint),
        details,
    }
}

/// Runs every check over `facts`.
pub fn evaluate(facts: &Facts) -> Report {
    let checks = vec![
        check(
            "root-access-keys",
            "the root user has no access keys",
            if facts.root_access_keys { vec!["the root user has access keys".into()] } else { vec![] },
            "delete the root user's access keys; use an IAM user's instead",
        ),
        check(
            "root-mfa",
            "the root user has MFA",
            if facts.root_mfa { vec![] } else { vec!["the root user has no MFA device".into()] },
            "enable MFA for the root user in the console (Security credentials)",
        ),
        check(
            "iam-users-exist",
            "people sign in as IAM users, not root",
            if facts.users.is_empty() { vec!["the account has no IAM users".into()] } else { vec![] },
            "declare an admin user under `iam.users` and apply",
        ),
        check(
            "permissions-through-groups",
            "permissions come through groups, not policies attached to users",
            facts
                .users
                .iter()
                .filter(|u| !u.attached_policies.is_empty())
                .map(|u| format!("user `{}` has {} directly attached: {}", u.name, plural(u.attached_policies.len(), "policy", "policies"), u.attached_policies.join(", ")))
                .collect(),
            "attach the policies to a group and put the user in it",
        ),
        check(
            "password-policy",
            "the password policy is at least as strict as the baseline",
            password_policy_gaps(facts.password_policy.as_ref()),
            "declare `account.password_policy` at least as strict as the baseline (see the README) and apply",
        ),
        check(
            "access-key-age",
            "active access keys are at most 90 days old",
            facts
                .users
                .iter()
                .flat_map(|u| {
                    u.active_key_ages_days
                        .iter()
                        .filter(|age| **age > MAX_KEY_AGE_DAYS)
                        .map(move |age| format!("user `{}` has an active access key {age} days old", u.name))
                })
                .collect(),
            "rotate the key: `tether rotate-key USER`",
        ),
        check(
            "console-mfa",
            "every console user has MFA",
            facts
                .users
                .iter()
                .filter(|u| u.console_access && u.mfa_devices == 0)
                .map(|u| format!("user `{}` signs in to the console without MFA", u.name))
                .collect(),
            "have each console user register an MFA device",
        ),
        check(
            "bucket-public-write",
            "no bucket policy lets anyone write or delete",
            facts
                .buckets
                .iter()
                .filter_map(|(name, document)| {
                    let action = policy::public_write(document.as_ref()?)?;
                    Some(format!("bucket `{name}` lets anyone `{action}`"))
                })
                .collect(),
            "remove the statement, or narrow its principal",
        ),
        check(
            "jupyter-open",
            "no security group opens Jupyter's port to the internet",
            jupyter_open(&facts.security_groups),
            "forward the port through ssh instead (`ssh.hosts.<alias>.forward: [8888]`, then `tether ssh <alias> --forward`) and remove the rule: a notebook's token crosses the internet in plain HTTP",
        ),
    ];
    Report {
        format_version: 1,
        passed: checks.iter().all(|c| c.passed),
        checks,
    }
}

/// The rules that admit anyone (`0.0.0.0/0`, `::/0`) to Jupyter's port, one line each.
fn jupyter_open(groups: &[(String, Vec<crate::model::IngressRule>)]) -> Vec<String> {
    groups
        .iter()
        .flat_map(|(name, rules)| {
            rules
                .iter()
                .filter(|rule| {
                    matches!(rule.source.as_str(), "0.0.0.0/0" | "::/0")
                        && matches!(rule.protocol.as_str(), "tcp" | "-1")
                        && (rule.protocol == "-1"
                            || (rule.from_port..=rule.to_port).contains(&JUPYTER_PORT))
                })
                .map(move |rule| {
                    format!(
                        "security group `{}` admits {} to port {JUPYTER_PORT}",
                        crate::render::one_line(name),
                        rule.source
                    )
                })
        })
        .collect()
}

fn plural(count: usize, one: &str, many: &str) -> String {
    format!("{count} {}", if count == 1 { one } else { many })
}

/// How `policy` falls short of the baseline, one line per field.
fn password_policy_gaps(policy: Option<&PasswordPolicyState>) -> Vec<String> {
    let Some(policy) = policy else {
        return vec!["the account has no password policy".into()];
    };
    let mut gaps = Vec::new();
    if policy.minimum_length < BASELINE.minimum_length {
        gaps.push(format!(
            "minimum length {} is below {}",
            policy.minimum_length, BASELINE.minimum_length
        ));
    }
    for (required, name) in [
        (policy.require_symbols, "symbols"),
        (policy.require_numbers, "numbers"),
        (policy.require_uppercase, "upper-case letters"),
        (policy.require_lowercase, "lower-case letters"),
    ] {
        if !required {
            gaps.push(format!("{name} are not required"));
        }
    }
    let max_age = BASELINE.max_age_days.unwrap_or_default();
    match policy.max_age_days {
        Some(days) if days <= max_age => {}
        Some(days) => gaps.push(format!("passwords last {days} days, more than {max_age}")),
        None => gaps.push(format!(
            "passwords never expire (the baseline is {max_age} days)"
        )),
    }
    let reuse = BASELINE.reuse_prevention.unwrap_or_default();
    if policy.reuse_prevention.unwrap_or(0) < reuse {
        gaps.push(format!(
            "fewer than the last {reuse} passwords are remembered"
        ));
    }
    gaps
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn strong() -> Facts {
        Facts {
            root_access_keys: false,
            root_mfa: true,
            users: vec![UserFacts {
                name: "erich".into(),
                attached_policies: vec![],
                console_access: true,
                mfa_devices: 1,
                active_key_ages_days: vec![10],
            }],
            password_policy: Some(BASELINE),
            buckets: vec![(
                "lab-data".into(),
                Some(
                    json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::lab-data/*"}]}),
                ),
            )],
            // Jupyter from one address, SSH from anywhere: neither is the audit's finding.
            security_groups: vec![(
                "lab-access".into(),
                vec![
                    rule("tcp", 8888, 8888, "203.0.113.7/32"),
                    rule("tcp", 22, 22, "0.0.0.0/0"),
                ],
            )],
        }
    }

    fn rule(
        protocol: &str,
        from_port: i32,
        to_port: i32,
        source: &str,
    ) -> crate::model::IngressRule {
        crate::model::IngressRule {
            protocol: protocol.into(),
            from_port,
            to_port,
            source: source.into(),
        }
    }

    fn failures(facts: &Facts) -> Vec<String> {
        evaluate(facts)
            .checks
            .into_iter()
            .filter(|c| !c.passed)
            .flat_map(|c| c.details.into_iter().map(move |d| format!("{}: {d}", c.id)))
            .collect()
    }

    #[test]
    fn a_strong_account_passes_every_check() {
        let report = evaluate(&strong());
        assert!(report.passed, "{report:?}");
        assert_eq!(report.checks.len(), 9);
    }

    #[test]
    fn each_weakness_fails_its_own_check() {
        let mut weak = strong();
        weak.root_access_keys = true;
        weak.root_mfa = false;
        weak.users[0].attached_policies =
            vec!["arn:aws:iam::aws:policy/AdministratorAccess".into()];
        weak.users[0].mfa_devices = 0;
        weak.users[0].active_key_ages_days = vec![91, 3];
        weak.password_policy = Some(PasswordPolicyState {
            minimum_length: 8,
            require_symbols: false,
            max_age_days: None,
            reuse_prevention: Some(2),
            ..BASELINE
        });
        weak.buckets.push(("lab-drop".into(), Some(json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": ["s3:PutObject"], "Resource": "arn:aws:s3:::lab-drop/*"}]}))));
        weak.buckets.push(("lab-none".into(), None));
        weak.security_groups.push((
            "notebooks".into(),
            vec![
                rule("tcp", 8000, 9000, "::/0"),
                rule("udp", 8888, 8888, "0.0.0.0/0"),
                rule("tcp", 8889, 8889, "0.0.0.0/0"),
            ],
        ));
        weak.security_groups
            .push(("everything".into(), vec![rule("-1", -1, -1, "0.0.0.0/0")]));
        assert_eq!(
            failures(&weak),
            [
                "root-access-keys: the root user has access keys",
                "root-mfa: the root user has no MFA device",
                "permissions-through-groups: user `erich` has 1 policy directly attached: arn:aws:iam::aws:policy/AdministratorAccess",
                "password-policy: minimum length 8 is below 14",
                "password-policy: symbols are not required",
                "password-policy: passwords never expire (the baseline is 90 days)",
                "password-policy: fewer than the last 5 passwords are remembered",
                "access-key-age: user `erich` has an active access key 91 days old",
                "console-mfa: user `erich` signs in to the console without MFA",
                "bucket-public-write: bucket `lab-drop` lets anyone `s3:PutObject`",
                "jupyter-open: security group `notebooks` admits ::/0 to port 8888",
                "jupyter-open: security group `everything` admits 0.0.0.0/0 to port 8888",
            ]
        );
    }

    #[test]
    fn no_users_and_no_password_policy_fail() {
        let facts = Facts {
            root_mfa: true,
            ..Facts::default()
        };
        assert_eq!(
            failures(&facts),
            [
                "iam-users-exist: the account has no IAM users",
                "password-policy: the account has no password policy",
            ]
        );
    }
}
