//! The `account:` and `iam:` sections of the spec: the account alias, the password policy,
//! IAM groups, users and roles. Shapes, defaults, and what IAM would reject, checked before
//! any call.

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

/// One entry of `iam.roles`.
#[derive(Clone, Debug, PartialEq)]
pub struct RoleSpec {
    pub name: String,
    /// Who may assume the role, validated: from `assumed_by` (services) or `trust_policy`.
    pub trust_policy: Value,
    /// Managed policy ARNs attached to the role.
    pub policies: BTreeSet<String>,
    /// Inline policies by name, validated.
    pub inline_policies: BTreeMap<String, Value>,
    /// Jobs whose S3 inputs the role may read and whose S3 outputs it may write (the
    /// inline policy `tether-jobs`, derived when the plan is made).
    pub jobs: Vec<String>,
    pub tags: BTreeMap<String, String>,
    pub adopt: bool,
    pub location: Location,
}

/// The service principal of EC2: a role it may assume gets an instance profile.
pub const EC2_SERVICE: &str = "ec2.amazonaws.com";

/// The inline policy of a role's `jobs:` shorthand.
pub const JOBS_POLICY: &str = "tether-jobs";

impl RoleSpec {
    /// Whether EC2 may assume the role, so that instances can be given it (through an
    /// instance profile of the same name).
    pub fn for_instances(&self) -> bool {
        policy::trusts_service(&self.trust_policy, EC2_SERVICE)
    }
}

/// Account-wide settings (singletons of the account, shared by every project in it).
#[derive(Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Account")]
pub(super) struct RawAccount {
    /// The account alias: the sign-in link becomes `https://<alias>.signin.aws.amazon.com/console`.
    #[serde(default)]
    alias: Option<RawAlias>,
    /// The IAM password policy for users' console passwords.
    #[serde(default)]
    password_policy: Option<RawPasswordPolicy>,
}

/// `alias: name`, or `alias: {name: ..., adopt: true}` to take over an existing alias.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
#[schemars(rename = "Alias")]
enum RawAlias {
    /// The alias: 3-63 lower-case letters, digits and single hyphens.
    Name(#[schemars(pattern(super::schema::ACCOUNT_ALIAS))] String),
    Full(RawAliasFull),
}

/// An alias that may replace one set outside tether.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "AliasFull")]
struct RawAliasFull {
    /// The alias: 3-63 lower-case letters, digits and single hyphens.
    #[schemars(pattern(super::schema::ACCOUNT_ALIAS))]
    name: String,
    /// Replace an alias that tether did not set.
    #[serde(default)]
    adopt: bool,
}

/// The account's password policy for IAM users.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "PasswordPolicy")]
struct RawPasswordPolicy {
    /// Shortest password allowed (IAM: 6 to 128).
    #[serde(default = "default_minimum_length")]
    #[schemars(range(min = 6, max = 128))]
    minimum_length: u16,
    /// Require a non-alphanumeric character.
    #[serde(default)]
    require_symbols: bool,
    /// Require a digit.
    #[serde(default)]
    require_numbers: bool,
    /// Require an upper-case letter.
    #[serde(default)]
    require_uppercase: bool,
    /// Require a lower-case letter.
    #[serde(default)]
    require_lowercase: bool,
    /// Let users change their own password.
    #[serde(default = "yes")]
    allow_users_to_change_password: bool,
    /// Days a password stays valid (IAM: 1 to 1095); unset: forever.
    #[serde(default)]
    #[schemars(range(min = 1, max = 1095))]
    max_age_days: Option<u16>,
    /// How many earlier passwords may not be reused (IAM: 1 to 24).
    #[serde(default)]
    #[schemars(range(min = 1, max = 24))]
    reuse_prevention: Option<u16>,
    /// An expired password can only be reset by an administrator.
    #[serde(default)]
    hard_expiry: bool,
    /// Replace a policy that tether did not set.
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

/// IAM groups, users and roles, each under the project's path `/tether/<project>/`.
#[derive(Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Iam")]
pub(super) struct RawIam {
    /// Groups by name, with the managed policies their members get.
    #[serde(default)]
    #[schemars(extend("propertyNames" = {"pattern": super::schema::IAM_GROUP}))]
    groups: BTreeMap<String, Option<RawGroup>>,
    /// Users by name: an admin for the console and the CLI instead of the root account.
    #[serde(default)]
    #[schemars(extend("propertyNames" = {"pattern": super::schema::IAM_USER_OR_ROLE}))]
    users: BTreeMap<String, Option<RawUser>>,
    /// Roles by name, for instances (with an instance profile of the same name) and
    /// Batch.
    #[serde(default)]
    #[schemars(extend("propertyNames" = {"pattern": super::schema::IAM_USER_OR_ROLE}))]
    roles: BTreeMap<String, Option<RawRole>>,
}

/// A service or a list of services, as `assumed_by` takes them.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
enum OneOrMany {
    One(#[schemars(pattern(super::schema::SERVICE_PRINCIPAL))] String),
    Many(#[schemars(inner(pattern(super::schema::SERVICE_PRINCIPAL)))] Vec<String>),
}

/// An IAM role: who may assume it, and what it may do.
#[derive(Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Role")]
struct RawRole {
    /// The AWS services that may assume it (`ec2.amazonaws.com`, `batch.amazonaws.com`,
    /// `ecs-tasks.amazonaws.com`); or give `trust_policy`.
    #[serde(default)]
    #[schemars(example = &"ec2.amazonaws.com")]
    assumed_by: Option<OneOrMany>,
    /// A full trust policy document, instead of `assumed_by`.
    #[serde(default)]
    trust_policy: Option<Value>,
    /// Managed policy ARNs to attach (at most 10).
    #[serde(default)]
    #[schemars(inner(pattern(super::schema::MANAGED_POLICY_ARN)))]
    policies: Vec<String>,
    /// Inline policy documents by name.
    #[serde(default)]
    inline_policies: BTreeMap<String, Value>,
    /// Jobs whose inputs it may read and whose outputs it may write (and nothing more):
    /// the inline policy `tether-jobs`.
    #[serde(default)]
    jobs: Vec<String>,
    /// Tags (keys starting with `tether:` are reserved).
    #[serde(default)]
    #[schemars(schema_with = "super::schema::tags")]
    tags: BTreeMap<String, String>,
    /// Take over an existing role of this name that tether did not make.
    #[serde(default)]
    adopt: bool,
}

/// An IAM group.
#[derive(Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Group")]
struct RawGroup {
    /// Managed policy ARNs to attach (at most 10), e.g.
    /// `arn:aws:iam::aws:policy/AdministratorAccess`.
    #[serde(default)]
    #[schemars(inner(pattern(super::schema::MANAGED_POLICY_ARN)))]
    policies: Vec<String>,
    /// Take over an existing group of this name that tether did not make.
    #[serde(default)]
    adopt: bool,
}

/// An IAM user.
#[derive(Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "User")]
struct RawUser {
    /// Declared groups the user belongs to.
    #[serde(default)]
    groups: Vec<String>,
    /// Managed policy ARNs to attach (at most 10).
    #[serde(default)]
    #[schemars(inner(pattern(super::schema::MANAGED_POLICY_ARN)))]
    policies: Vec<String>,
    /// Inline policy documents by name.
    #[serde(default)]
    inline_policies: BTreeMap<String, serde_json::Value>,
    /// Tags (keys starting with `tether:` are reserved).
    #[serde(default)]
    #[schemars(schema_with = "super::schema::tags")]
    tags: BTreeMap<String, String>,
    /// A console password (generated, must be changed at first sign-in), stored as a
    /// secret.
    #[serde(default)]
    console_access: bool,
    /// An access key for the CLI and SDKs, stored as a secret.
    #[serde(default)]
    programmatic_access: bool,
    /// Take over an existing user of this name that tether did not make.
    #[serde(default)]
    adopt: bool,
}

/// IAM allows 10 managed policies on a user, group or role by default.
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
    ) -> (
        BTreeMap<String, GroupSpec>,
        BTreeMap<String, UserSpec>,
        BTreeMap<String, RoleSpec>,
    ) {
        let raw = raw.unwrap_or_default();
        let roles = raw
            .roles
            .into_iter()
            .map(|(name, role)| {
                let role = self.check_role(&name, role.unwrap_or_default());
                (name, role)
            })
            .collect();
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
            let inline_policies = self.check_inline_policies(&key, "user", user.inline_policies);
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
        (groups, users, roles)
    }

    /// Inline policies of the user or role at `key`: names IAM takes, identity policies.
    fn check_inline_policies(
        &mut self,
        key: &[&str],
        what: &str,
        raw: BTreeMap<String, Value>,
    ) -> BTreeMap<String, Value> {
        let name = key.last().copied().unwrap_or_default();
        let mut inline_policies = BTreeMap::new();
        for (policy_name, document) in raw {
            let mut path = key.to_vec();
            path.extend(["inline_policies", policy_name.as_str()]);
            if !is_iam_name(&policy_name, 128) {
                let location = self.key_location(&path);
                self.error(
                    location,
                    format!("invalid inline policy name `{policy_name}`"),
                    Some("IAM names are 1-128 letters, digits and `+=,.@_-`".into()),
                );
            }
            let owner = format!("{what} `{name}` (inline policy `{policy_name}`)");
            if let Some(document) =
                self.check_policy(&path, &owner, document, policy::PolicyKind::Identity)
            {
                inline_policies.insert(policy_name, document);
            }
        }
        inline_policies
    }

    /// One role: who may assume it (services, or a trust policy), its policies and tags.
    /// Its `jobs` are checked against the spec's jobs later.
    fn check_role(&mut self, name: &str, role: RawRole) -> RoleSpec {
        let key = ["iam", "roles", name];
        self.check_iam_name(&key, "role", name, 64);
        let trust_policy = match (role.assumed_by, role.trust_policy) {
            (Some(_), Some(_)) => {
                let location = self.key_location(&["iam", "roles", name, "trust_policy"]);
                self.error(
                    location,
                    format!("role `{name}` has both `assumed_by` and `trust_policy`"),
                    Some("`assumed_by` is the short form of a trust policy: keep one".into()),
                );
                Value::Null
            }
            (None, None) => {
                let location = self.key_location(&key);
                self.error(
                    location,
                    format!("role `{name}` does not say who may assume it"),
                    Some(
                        "add `assumed_by: ec2.amazonaws.com` (for instances), or a `trust_policy`"
                            .into(),
                    ),
                );
                Value::Null
            }
            (Some(services), None) => {
                let services = match services {
                    OneOrMany::One(service) => vec![service],
                    OneOrMany::Many(services) => services,
                };
                for (index, service) in services.iter().enumerate() {
                    if !is_service_principal(service) {
                        let index = index.to_string();
                        let path: Vec<&str> = if services.len() == 1 {
                            vec!["iam", "roles", name, "assumed_by"]
                        } else {
                            vec!["iam", "roles", name, "assumed_by", index.as_str()]
                        };
                        let location = self.value_location(&path);
                        self.error(
                            location,
                            format!("`{service}` is not an AWS service principal"),
                            Some("service principals look like `ec2.amazonaws.com` or `lambda.amazonaws.com`".into()),
                        );
                    }
                }
                policy::service_trust_policy(&services)
            }
            (None, Some(document)) => {
                let owner = format!("role `{name}` (trust policy)");
                self.check_policy(
                    &["iam", "roles", name, "trust_policy"],
                    &owner,
                    document,
                    policy::PolicyKind::Trust,
                )
                .unwrap_or(Value::Null)
            }
        };
        let policies = self.check_policy_arns(&key, &role.policies);
        if !role.jobs.is_empty() && role.inline_policies.contains_key(JOBS_POLICY) {
            let location =
                self.key_location(&["iam", "roles", name, "inline_policies", JOBS_POLICY]);
            self.error(
                location,
                format!("the inline policy name `{JOBS_POLICY}` is the one `jobs:` makes"),
                Some("rename the policy, or let `jobs:` grant the jobs' access".into()),
            );
        }
        let inline_policies = self.check_inline_policies(&key, "role", role.inline_policies);
        self.check_tags(&key, &role.tags);
        RoleSpec {
            name: name.to_string(),
            trust_policy,
            policies,
            inline_policies,
            jobs: role.jobs,
            tags: role.tags,
            adopt: role.adopt,
            location: self.key_location(&key),
        }
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
                format!("{} managed policies is more than IAM's {MAX_ATTACHED_POLICIES} per user, group or role", arns.len()),
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

/// An AWS service principal: `<service>.amazonaws.com` (or `.amazonaws.com.cn`).
pub fn is_service_principal(text: &str) -> bool {
    let service = text
        .strip_suffix(".amazonaws.com")
        .or_else(|| text.strip_suffix(".amazonaws.com.cn"));
    service.is_some_and(|service| {
        !service.is_empty()
            && !service.starts_with(['.', '-'])
            && service
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
    })
}
