//! The `account:` and `iam:` sections of the spec: the account alias, the password policy,
//! IAM groups and users. Shapes, defaults, and what IAM would reject, checked before any call.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use serde_json::Value;

use super::Checker;
use crate::diagnostic::Location;
use crate::model::PasswordPolicyState;
use crate::policy;

/// The account's singletons. Each is managed only while the spec declares it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AccountSpec {
    /// The sign-in link's name: `https://<alias>.signin.aws.amazon.com/console`.
    pub alias: Option<AliasSpec>,
    pub password_policy: Option<PasswordPolicySpec>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct AliasSpec {
    pub name: String,
    /// Take over an alias the account has that this project did not set.
    pub adopt: bool,
    pub location: Location,
}

/// The account password policy, as IAM's UpdateAccountPasswordPolicy takes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasswordPolicySpec {
    pub policy: PasswordPolicyState,
    /// Take over a policy the account has that this project did not set.
    pub adopt: bool,
    pub location: Location,
}

/// One entry of `iam.groups`.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupSpec {
    pub name: String,
    /// Managed policy ARNs attached to the group.
    pub policies: BTreeSet<String>,
    pub adopt: bool,
    pub location: Location,
}

/// One entry of `iam.users`.
#[derive(Clone, Debug, PartialEq)]
pub struct UserSpec {
    pub name: String,
    /// Groups of the spec the user belongs to.
    pub groups: BTreeSet<String>,
    /// Managed policy ARNs attached to the user directly.
    pub policies: BTreeSet<String>,
    /// Inline policies by name, validated.
    pub inline_policies: BTreeMap<String, Value>,
    pub tags: BTreeMap<String, String>,
    /// A login profile (console password), reset required at first sign-in.
    pub console_access: bool,
    /// One active access key.
    pub programmatic_access: bool,
    pub adopt: bool,
    pub location: Location,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAccount {
    #[serde(default)]
    alias: Option<RawAlias>,
    #[serde(default)]
    password_policy: Option<RawPasswordPolicy>,
}

/// `alias: name`, or `alias: {name: ..., adopt: true}` to take over an existing alias.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawAlias {
    Name(String),
    Full(RawAliasFull),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAliasFull {
    name: String,
    #[serde(default)]
    adopt: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPasswordPolicy {
    #[serde(default = "default_minimum_length")]
    minimum_length: u16,
    #[serde(default)]
    require_symbols: bool,
    #[serde(default)]
    require_numbers: bool,
    #[serde(default)]
    require_uppercase: bool,
    #[serde(default)]
    require_lowercase: bool,
    #[serde(default = "yes")]
    allow_users_to_change_password: bool,
    #[serde(default)]
    max_age_days: Option<u16>,
    #[serde(default)]
    reuse_prevention: Option<u16>,
    #[serde(default)]
    hard_expiry: bool,
    #[serde(default)]
    adopt: bool,
}

fn default_minimum_length() -> u16 {
    // IAM's own default.
    8
}

fn yes() -> bool {
    true
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawIam {
    #[serde(default)]
    groups: BTreeMap<String, Option<RawGroup>>,
    #[serde(default)]
    users: BTreeMap<String, Option<RawUser>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    #[serde(default)]
    policies: Vec<String>,
    #[serde(default)]
    adopt: bool,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawUser {
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    policies: Vec<String>,
    #[serde(default)]
    inline_policies: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
    #[serde(default)]
    console_access: bool,
    #[serde(default)]
    programmatic_access: bool,
    #[serde(default)]
    adopt: bool,
}

/// IAM allows 10 managed policies on a user or group by default.
const MAX_ATTACHED_POLICIES: usize = 10;

impl Checker<'_> {
    pub(super) fn check_account(&mut self, raw: Option<RawAccount>) -> AccountSpec {
        let Some(raw) = raw else {
            return AccountSpec::default();
        };
        let alias = raw.alias.map(|alias| {
            let (name, adopt) = match alias {
                RawAlias::Name(name) => (name, false),
                RawAlias::Full(RawAliasFull { name, adopt }) => (name, adopt),
            };
            if let Err(problem) = check_account_alias(&name) {
                let location = self.value_location(&["account", "alias"]);
                self.error(
                    location,
                    format!("invalid account alias `{name}`: {problem}"),
                    Some("an alias is 3-63 lower-case letters, digits and single hyphens".into()),
                );
            }
            AliasSpec {
                name,
                adopt,
                location: self.key_location(&["account", "alias"]),
            }
        });
        let password_policy = raw.password_policy.map(|p| {
            let at = |key: &str| ["account", "password_policy", key].map(str::to_string);
            let mut problems: Vec<([String; 3], String)> = Vec::new();
            if !(6..=128).contains(&p.minimum_length) {
                problems.push((
                    at("minimum_length"),
                    format!(
                        "a minimum length of {} is outside IAM's 6 to 128",
                        p.minimum_length
                    ),
                ));
            }
            if let Some(days) = p.max_age_days.filter(|d| !(1..=1095).contains(d)) {
                problems.push((
                    at("max_age_days"),
                    format!("a maximum age of {days} days is outside IAM's 1 to 1095"),
                ));
            }
            if let Some(count) = p.reuse_prevention.filter(|c| !(1..=24).contains(c)) {
                problems.push((
                    at("reuse_prevention"),
                    format!("remembering {count} passwords is outside IAM's 1 to 24"),
                ));
            }
            for (path, message) in problems {
                let path: Vec<&str> = path.iter().map(String::as_str).collect();
                let location = self.value_location(&path);
                self.error(
                    location,
                    format!("invalid password policy: {message}"),
                    None,
                );
            }
            PasswordPolicySpec {
                policy: PasswordPolicyState {
                    minimum_length: p.minimum_length,
                    require_symbols: p.require_symbols,
                    require_numbers: p.require_numbers,
                    require_uppercase: p.require_uppercase,
                    require_lowercase: p.require_lowercase,
                    allow_users_to_change_password: p.allow_users_to_change_password,
                    max_age_days: p.max_age_days,
                    reuse_prevention: p.reuse_prevention,
                    hard_expiry: p.hard_expiry,
                },
                adopt: p.adopt,
                location: self.key_location(&["account", "password_policy"]),
            }
        });
        AccountSpec {
            alias,
            password_policy,
        }
    }

    /// Users whose secrets go to Parameter Store must have names its parameter paths take
    /// (no `+=,@`, which IAM allows).
    pub(super) fn check_secret_owners(&mut self, users: &BTreeMap<String, UserSpec>) {
        for user in users.values() {
            let has_secret = user.console_access || user.programmatic_access;
            if has_secret && !crate::secrets::is_parameter_segment(&user.name) {
                let location = self.key_location(&["iam", "users", user.name.as_str()]);
                self.error(
                    location,
                    format!(
                        "user `{}` has a secret, and Parameter Store names cannot hold `+=,@`",
                        user.name
                    ),
                    Some("rename the user with letters, digits and `_.-`, or keep secrets on the applying machine with `secrets: local`".into()),
                );
            }
        }
    }

    pub(super) fn check_iam(
        &mut self,
        raw: Option<RawIam>,
    ) -> (BTreeMap<String, GroupSpec>, BTreeMap<String, UserSpec>) {
        let raw = raw.unwrap_or_default();
        let mut groups = BTreeMap::new();
        for (name, group) in raw.groups {
            let group = group.unwrap_or_default();
            let key = ["iam", "groups", name.as_str()];
            self.check_iam_name(&key, "group", &name, 128);
            let policies = self.check_policy_arns(&key, &group.policies);
            let location = self.key_location(&key);
            groups.insert(
                name.clone(),
                GroupSpec {
                    name: name.clone(),
                    policies,
                    adopt: group.adopt,
                    location,
                },
            );
        }
        let mut users = BTreeMap::new();
        for (name, user) in raw.users {
            let user = user.unwrap_or_default();
            let key = ["iam", "users", name.as_str()];
            self.check_iam_name(&key, "user", &name, 64);
            for (index, group) in user.groups.iter().enumerate() {
                if !groups.contains_key(group) {
                    let index = index.to_string();
                    let location = self.value_location(&[
                        "iam",
                        "users",
                        name.as_str(),
                        "groups",
                        index.as_str(),
                    ]);
                    self.error(
                        location,
                        format!(
                            "user `{name}` is in group `{group}`, which the spec does not declare"
                        ),
                        Some(format!(
                            "declare it under `iam.groups`, e.g. `{group}: {{policies: [...]}}`"
                        )),
                    );
                }
            }
            let policies = self.check_policy_arns(&key, &user.policies);
            let mut inline_policies = BTreeMap::new();
            for (policy_name, document) in user.inline_policies {
                let path = [
                    "iam",
                    "users",
                    name.as_str(),
                    "inline_policies",
                    policy_name.as_str(),
                ];
                if !is_iam_name(&policy_name, 128) {
                    let location = self.key_location(&path);
                    self.error(
                        location,
                        format!("invalid inline policy name `{policy_name}`"),
                        Some("IAM names are 1-128 letters, digits and `+=,.@_-`".into()),
                    );
                }
                let owner = format!("user `{name}` (inline policy `{policy_name}`)");
                if let Some(document) =
                    self.check_policy(&path, &owner, document, policy::PolicyKind::Identity)
                {
                    inline_policies.insert(policy_name, document);
                }
            }
            self.check_tags(&key, &user.tags);
            let location = self.key_location(&key);
            users.insert(
                name.clone(),
                UserSpec {
                    name: name.clone(),
                    groups: user.groups.into_iter().collect(),
                    policies,
                    inline_policies,
                    tags: user.tags,
                    console_access: user.console_access,
                    programmatic_access: user.programmatic_access,
                    adopt: user.adopt,
                    location,
                },
            );
        }
        (groups, users)
    }

    fn check_iam_name(&mut self, key: &[&str], what: &str, name: &str, max: usize) {
        if !is_iam_name(name, max) {
            let location = self.key_location(key);
            self.error(
                location,
                format!("invalid IAM {what} name `{name}`"),
                Some(format!(
                    "IAM {what} names are 1-{max} letters, digits and `+=,.@_-`"
                )),
            );
        }
    }

    fn check_policy_arns(&mut self, owner_key: &[&str], arns: &[String]) -> BTreeSet<String> {
        if arns.len() > MAX_ATTACHED_POLICIES {
            let mut path = owner_key.to_vec();
            path.push("policies");
            let location = self.key_location(&path);
            self.error(
                location,
                format!("{} managed policies is more than IAM's {MAX_ATTACHED_POLICIES} per user or group", arns.len()),
                Some("group the permissions into fewer policies, or attach them to a group".into()),
            );
        }
        for (index, arn) in arns.iter().enumerate() {
            if !is_managed_policy_arn(arn) {
                let index = index.to_string();
                let mut path = owner_key.to_vec();
                path.extend(["policies", index.as_str()]);
                let location = self.value_location(&path);
                self.error(
                    location,
                    format!("`{arn}` is not a managed policy ARN"),
                    Some("managed policy ARNs look like `arn:aws:iam::aws:policy/AdministratorAccess` or `arn:aws:iam::123456789012:policy/name`".into()),
                );
            }
        }
        arns.iter().cloned().collect()
    }
}

/// IAM's name rule: 1 to `max` characters of letters, digits and `+=,.@_-`.
pub fn is_iam_name(name: &str, max: usize) -> bool {
    !name.is_empty()
        && name.chars().count() <= max
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c))
}

/// `arn:<partition>:iam::(aws|<12 digits>):policy/<path/>name`.
pub fn is_managed_policy_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [prefix, partition, service, region, account, resource] = parts.as_slice() else {
        return false;
    };
    let account_ok =
        *account == "aws" || (account.len() == 12 && account.chars().all(|c| c.is_ascii_digit()));
    let name = resource.strip_prefix("policy/").unwrap_or_default();
    *prefix == "arn"
        && partition.starts_with("aws")
        && *service == "iam"
        && region.is_empty()
        && account_ok
        && !name.is_empty()
        && !name.ends_with('/')
        && name.split('/').all(|part| is_iam_name(part, 128))
}

/// IAM's account alias rule.
pub fn check_account_alias(alias: &str) -> Result<(), String> {
    if alias.len() < 3 || alias.len() > 63 {
        return Err(format!(
            "it is {} characters long; aliases are 3 to 63",
            alias.len()
        ));
    }
    if let Some(c) = alias
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(format!("the character `{c}` is not allowed"));
    }
    if alias.starts_with('-') || alias.ends_with('-') || alias.contains("--") {
        return Err("hyphens may not start or end it, nor follow each other".into());
    }
    if alias.len() == 12 && alias.chars().all(|c| c.is_ascii_digit()) {
        return Err("it must not look like an account id".into());
    }
    Ok(())
}
