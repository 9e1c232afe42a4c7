//! IAM calls, one function (or one idempotent sequence) each, in tether's types. "Already
//! exists" on create and "no such entity" on delete count as success, so every step can be
//! repeated after a crash.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_iam::types::Tag;
use serde_json::Value;

use super::{classify, done_if, none_if, AwsError, AwsErrorKind, Cloud};
use crate::model::{Address, Kind, PasswordPolicyState};

fn group_address(group: &str) -> String {
    Address::new(Kind::IamGroup, group).to_string()
}

fn user_address(user: &str) -> String {
    Address::new(Kind::IamUser, user).to_string()
}

fn account_address(name: &str) -> String {
    Address::new(Kind::Account, name).to_string()
}

fn build_error(
    operation: &'static str,
    resource: String,
    error: impl std::fmt::Display,
) -> AwsError {
    AwsError {
        operation,
        resource,
        code: None,
        message: error.to_string(),
        kind: AwsErrorKind::Service,
    }
}

/// An IAM user or group as listed: its name and path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IamEntity {
    pub name: String,
    pub path: String,
}

/// An access key as listed (no secret).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessKeyInfo {
    pub id: String,
    pub active: bool,
    /// Seconds since the Unix epoch.
    pub created: Option<i64>,
}

/// A new access key with its secret. `Debug` never shows the secret.
pub struct NewAccessKey {
    pub id: String,
    pub secret: String,
}

impl std::fmt::Debug for NewAccessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewAccessKey")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl Cloud {
    /// From the account summary: whether the root user has access keys, and has MFA.
    pub async fn root_user_facts(&self) -> Result<(bool, bool), AwsError> {
        use aws_sdk_iam::types::SummaryKeyType;
        let output = self
            .iam
            .get_account_summary()
            .send()
            .await
            .map_err(|e| classify("GetAccountSummary", "", e))?;
        let summary = output.summary_map();
        let value = |key: SummaryKeyType| summary.and_then(|m| m.get(&key)).copied().unwrap_or(0);
        Ok((
            value(SummaryKeyType::AccountAccessKeysPresent) > 0,
            value(SummaryKeyType::AccountMfaEnabled) > 0,
        ))
    }

    /// How many MFA devices the user has.
    pub async fn mfa_device_count(&self, user: &str) -> Result<usize, AwsError> {
        let output = self
            .iam
            .list_mfa_devices()
            .user_name(user)
            .send()
            .await
            .map_err(|e| classify("ListMFADevices", &user_address(user), e))?;
        Ok(output.mfa_devices().len())
    }

    /// Whether the user has a login profile (a console password).
    pub async fn has_login_profile(&self, user: &str) -> Result<bool, AwsError> {
        let result = self
            .iam
            .get_login_profile()
            .user_name(user)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("GetLoginProfile", &user_address(user), e));
        Ok(none_if(result, "NoSuchEntity")?.is_some())
    }

    /// The user's access keys, without secrets.
    pub async fn access_keys(&self, user: &str) -> Result<Vec<AccessKeyInfo>, AwsError> {
        let output = self
            .iam
            .list_access_keys()
            .user_name(user)
            .send()
            .await
            .map_err(|e| classify("ListAccessKeys", &user_address(user), e))?;
        Ok(output
            .access_key_metadata()
            .iter()
            .map(|key| AccessKeyInfo {
                id: key.access_key_id().unwrap_or_default().to_string(),
                active: key.status().map(|s| s.as_str()) == Some("Active"),
                created: key.create_date().map(|d| d.secs()),
            })
            .collect())
    }

    /// Creates a login profile whose password must be changed at first sign-in. The
    /// password goes to AWS and nowhere else from here.
    pub async fn create_login_profile(&self, user: &str, password: &str) -> Result<(), AwsError> {
        self.iam
            .create_login_profile()
            .user_name(user)
            .password(password)
            .password_reset_required(true)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("CreateLoginProfile", &user_address(user), e))
    }

    pub async fn delete_login_profile(&self, user: &str) -> Result<(), AwsError> {
        let result = self
            .iam
            .delete_login_profile()
            .user_name(user)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("DeleteLoginProfile", &user_address(user), e));
        done_if(result, "NoSuchEntity")
    }

    /// Creates an access key and returns it with its secret, which AWS shows only now.
    pub async fn create_access_key(&self, user: &str) -> Result<NewAccessKey, AwsError> {
        let output = self
            .iam
            .create_access_key()
            .user_name(user)
            .send()
            .await
            .map_err(|e| classify("CreateAccessKey", &user_address(user), e))?;
        let key = output.access_key().ok_or_else(|| {
            build_error(
                "CreateAccessKey",
                user_address(user),
                "the answer held no key",
            )
        })?;
        Ok(NewAccessKey {
            id: key.access_key_id().to_string(),
            secret: key.secret_access_key().to_string(),
        })
    }

    pub async fn delete_access_key(&self, user: &str, id: &str) -> Result<(), AwsError> {
        let result = self
            .iam
            .delete_access_key()
            .user_name(user)
            .access_key_id(id)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("DeleteAccessKey", &user_address(user), e));
        done_if(result, "NoSuchEntity")
    }

    /// Every IAM group of the account.
    pub async fn list_groups(&self) -> Result<Vec<IamEntity>, AwsError> {
        let mut found = Vec::new();
        let mut pages = self.iam.list_groups().into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("ListGroups", "", e))?;
            found.extend(page.groups().iter().map(|g| IamEntity {
                name: g.group_name().to_string(),
                path: g.path().to_string(),
            }));
        }
        Ok(found)
    }

    /// Every IAM user of the account.
    pub async fn list_users(&self) -> Result<Vec<IamEntity>, AwsError> {
        let mut found = Vec::new();
        let mut pages = self.iam.list_users().into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("ListUsers", "", e))?;
            found.extend(page.users().iter().map(|u| IamEntity {
                name: u.user_name().to_string(),
                path: u.path().to_string(),
            }));
        }
        Ok(found)
    }

    /// Managed policies attached to a group.
    pub async fn group_policies(&self, group: &str) -> Result<BTreeSet<String>, AwsError> {
        let mut arns = BTreeSet::new();
        let mut pages = self
            .iam
            .list_attached_group_policies()
            .group_name(group)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page =
                page.map_err(|e| classify("ListAttachedGroupPolicies", &group_address(group), e))?;
            arns.extend(
                page.attached_policies()
                    .iter()
                    .filter_map(|p| p.policy_arn().map(str::to_string)),
            );
        }
        Ok(arns)
    }

    /// A user's tags.
    pub async fn user_tags(&self, user: &str) -> Result<BTreeMap<String, String>, AwsError> {
        let mut tags = BTreeMap::new();
        let mut pages = self
            .iam
            .list_user_tags()
            .user_name(user)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("ListUserTags", &user_address(user), e))?;
            tags.extend(
                page.tags()
                    .iter()
                    .map(|t| (t.key().to_string(), t.value().to_string())),
            );
        }
        Ok(tags)
    }

    /// The groups a user is in.
    pub async fn user_groups(&self, user: &str) -> Result<BTreeSet<String>, AwsError> {
        let mut groups = BTreeSet::new();
        let mut pages = self
            .iam
            .list_groups_for_user()
            .user_name(user)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("ListGroupsForUser", &user_address(user), e))?;
            groups.extend(page.groups().iter().map(|g| g.group_name().to_string()));
        }
        Ok(groups)
    }

    /// Managed policies attached to a user directly.
    pub async fn user_policies(&self, user: &str) -> Result<BTreeSet<String>, AwsError> {
        let mut arns = BTreeSet::new();
        let mut pages = self
            .iam
            .list_attached_user_policies()
            .user_name(user)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page =
                page.map_err(|e| classify("ListAttachedUserPolicies", &user_address(user), e))?;
            arns.extend(
                page.attached_policies()
                    .iter()
                    .filter_map(|p| p.policy_arn().map(str::to_string)),
            );
        }
        Ok(arns)
    }

    /// A user's inline policies, by name, as JSON.
    pub async fn user_inline_policies(
        &self,
        user: &str,
    ) -> Result<BTreeMap<String, Value>, AwsError> {
        let mut names = Vec::new();
        let mut pages = self
            .iam
            .list_user_policies()
            .user_name(user)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("ListUserPolicies", &user_address(user), e))?;
            names.extend(page.policy_names().iter().cloned());
        }
        let mut policies = BTreeMap::new();
        for name in names {
            let output = self
                .iam
                .get_user_policy()
                .user_name(user)
                .policy_name(&name)
                .send()
                .await
                .map_err(|e| classify("GetUserPolicy", &user_address(user), e))?;
            policies.insert(
                name,
                decode_policy_document(output.policy_document(), &user_address(user))?,
            );
        }
        Ok(policies)
    }

    /// Whether a managed policy exists.
    pub async fn policy_exists(&self, arn: &str) -> Result<bool, AwsError> {
        let result = self
            .iam
            .get_policy()
            .policy_arn(arn)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("GetPolicy", arn, e));
        Ok(none_if(result, "NoSuchEntity")?.is_some())
    }

    pub async fn create_group(&self, group: &str, path: &str) -> Result<(), AwsError> {
        let result = self
            .iam
            .create_group()
            .group_name(group)
            .path(path)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("CreateGroup", &group_address(group), e));
        done_if(result, "EntityAlreadyExists")
    }

    pub async fn set_group_path(&self, group: &str, path: &str) -> Result<(), AwsError> {
        self.iam
            .update_group()
            .group_name(group)
            .new_path(path)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("UpdateGroup", &group_address(group), e))
    }

    pub async fn attach_group_policy(&self, group: &str, arn: &str) -> Result<(), AwsError> {
        self.iam
            .attach_group_policy()
            .group_name(group)
            .policy_arn(arn)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("AttachGroupPolicy", &group_address(group), e))
    }

    pub async fn detach_group_policy(&self, group: &str, arn: &str) -> Result<(), AwsError> {
        let result = self
            .iam
            .detach_group_policy()
            .group_name(group)
            .policy_arn(arn)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("DetachGroupPolicy", &group_address(group), e));
        done_if(result, "NoSuchEntity")
    }

    /// Deletes a group with everything IAM requires gone first: attached and inline
    /// policies and members.
    pub async fn delete_group(&self, group: &str) -> Result<(), AwsError> {
        let address = group_address(group);
        let result = self
            .iam
            .get_group()
            .group_name(group)
            .send()
            .await
            .map_err(|e| classify("GetGroup", &address, e));
        let Some(details) = none_if(result, "NoSuchEntity")? else {
            return Ok(());
        };
        for member in details.users() {
            let result = self
                .iam
                .remove_user_from_group()
                .group_name(group)
                .user_name(member.user_name())
                .send()
                .await
                .map(|_| ())
                .map_err(|e| classify("RemoveUserFromGroup", &address, e));
            done_if(result, "NoSuchEntity")?;
        }
        for arn in self.group_policies(group).await? {
            self.detach_group_policy(group, &arn).await?;
        }
        let inline = self
            .iam
            .list_group_policies()
            .group_name(group)
            .send()
            .await
            .map_err(|e| classify("ListGroupPolicies", &address, e))?;
        for name in inline.policy_names() {
            let result = self
                .iam
                .delete_group_policy()
                .group_name(group)
                .policy_name(name)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| classify("DeleteGroupPolicy", &address, e));
            done_if(result, "NoSuchEntity")?;
        }
        let result = self
            .iam
            .delete_group()
            .group_name(group)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("DeleteGroup", &address, e));
        done_if(result, "NoSuchEntity")
    }

    pub async fn create_user(
        &self,
        user: &str,
        path: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), AwsError> {
        let result = self
            .iam
            .create_user()
            .user_name(user)
            .path(path)
            .set_tags(Some(iam_tags(tags, &user_address(user))?))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("CreateUser", &user_address(user), e));
        done_if(result, "EntityAlreadyExists")
    }

    pub async fn set_user_path(&self, user: &str, path: &str) -> Result<(), AwsError> {
        self.iam
            .update_user()
            .user_name(user)
            .new_path(path)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("UpdateUser", &user_address(user), e))
    }

    /// Sets `tags` and removes the keys in `remove`.
    pub async fn set_user_tags(
        &self,
        user: &str,
        tags: &BTreeMap<String, String>,
        remove: &[String],
    ) -> Result<(), AwsError> {
        let address = user_address(user);
        if !remove.is_empty() {
            self.iam
                .untag_user()
                .user_name(user)
                .set_tag_keys(Some(remove.to_vec()))
                .send()
                .await
                .map_err(|e| classify("UntagUser", &address, e))?;
        }
        if !tags.is_empty() {
            self.iam
                .tag_user()
                .user_name(user)
                .set_tags(Some(iam_tags(tags, &address)?))
                .send()
                .await
                .map_err(|e| classify("TagUser", &address, e))?;
        }
        Ok(())
    }

    pub async fn add_user_to_group(&self, user: &str, group: &str) -> Result<(), AwsError> {
        self.iam
            .add_user_to_group()
            .user_name(user)
            .group_name(group)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("AddUserToGroup", &user_address(user), e))
    }

    pub async fn remove_user_from_group(&self, user: &str, group: &str) -> Result<(), AwsError> {
        let result = self
            .iam
            .remove_user_from_group()
            .user_name(user)
            .group_name(group)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("RemoveUserFromGroup", &user_address(user), e));
        done_if(result, "NoSuchEntity")
    }

    pub async fn attach_user_policy(&self, user: &str, arn: &str) -> Result<(), AwsError> {
        self.iam
            .attach_user_policy()
            .user_name(user)
            .policy_arn(arn)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("AttachUserPolicy", &user_address(user), e))
    }

    pub async fn detach_user_policy(&self, user: &str, arn: &str) -> Result<(), AwsError> {
        let result = self
            .iam
            .detach_user_policy()
            .user_name(user)
            .policy_arn(arn)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("DetachUserPolicy", &user_address(user), e));
        done_if(result, "NoSuchEntity")
    }

    pub async fn put_user_policy(
        &self,
        user: &str,
        name: &str,
        document: &Value,
    ) -> Result<(), AwsError> {
        self.iam
            .put_user_policy()
            .user_name(user)
            .policy_name(name)
            .policy_document(document.to_string())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("PutUserPolicy", &user_address(user), e))
    }

    pub async fn delete_user_policy(&self, user: &str, name: &str) -> Result<(), AwsError> {
        let result = self
            .iam
            .delete_user_policy()
            .user_name(user)
            .policy_name(name)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("DeleteUserPolicy", &user_address(user), e));
        done_if(result, "NoSuchEntity")
    }

    /// Deletes a user in the order IAM requires: login profile, access keys, attached and
    /// inline policies, group memberships, then the user.
    pub async fn delete_user(&self, user: &str) -> Result<(), AwsError> {
        let address = user_address(user);
        // NoSuchEntity here: no login profile, or no user at all (then the next call says so).
        self.delete_login_profile(user).await?;
        let keys = self.access_keys(user).await;
        let Some(keys) = none_if(keys, "NoSuchEntity")? else {
            return Ok(());
        };
        for key in keys {
            self.delete_access_key(user, &key.id).await?;
        }
        for arn in self.user_policies(user).await? {
            self.detach_user_policy(user, &arn).await?;
        }
        for name in self.user_inline_policies(user).await?.keys() {
            self.delete_user_policy(user, name).await?;
        }
        for group in self.user_groups(user).await? {
            self.remove_user_from_group(user, &group).await?;
        }
        let result = self
            .iam
            .delete_user()
            .user_name(user)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("DeleteUser", &address, e));
        done_if(result, "NoSuchEntity")
    }

    /// The account alias, if it has one.
    pub async fn account_alias(&self) -> Result<Option<String>, AwsError> {
        let output = self
            .iam
            .list_account_aliases()
            .send()
            .await
            .map_err(|e| classify("ListAccountAliases", "", e))?;
        Ok(output.account_aliases().first().cloned())
    }

    /// Sets the alias, removing `previous` first (an account has at most one).
    pub async fn set_account_alias(
        &self,
        alias: &str,
        previous: Option<&str>,
    ) -> Result<(), AwsError> {
        if let Some(previous) = previous {
            self.delete_account_alias(previous).await?;
        }
        let result = self
            .iam
            .create_account_alias()
            .account_alias(alias)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("CreateAccountAlias", &account_address("alias"), e));
        done_if(result, "EntityAlreadyExists")
    }

    pub async fn delete_account_alias(&self, alias: &str) -> Result<(), AwsError> {
        let result = self
            .iam
            .delete_account_alias()
            .account_alias(alias)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("DeleteAccountAlias", &account_address("alias"), e));
        done_if(result, "NoSuchEntity")
    }

    /// The account password policy, if one is set.
    pub async fn password_policy(&self) -> Result<Option<PasswordPolicyState>, AwsError> {
        let result = self
            .iam
            .get_account_password_policy()
            .send()
            .await
            .map_err(|e| {
                classify(
                    "GetAccountPasswordPolicy",
                    &account_address("password_policy"),
                    e,
                )
            });
        let Some(output) = none_if(result, "NoSuchEntity")? else {
            return Ok(None);
        };
        Ok(output.password_policy().map(|p| PasswordPolicyState {
            minimum_length: p
                .minimum_password_length()
                .unwrap_or(8)
                .try_into()
                .unwrap_or(8),
            require_symbols: p.require_symbols(),
            require_numbers: p.require_numbers(),
            require_uppercase: p.require_uppercase_characters(),
            require_lowercase: p.require_lowercase_characters(),
            allow_users_to_change_password: p.allow_users_to_change_password(),
            max_age_days: p
                .max_password_age()
                .and_then(|d| u16::try_from(d).ok())
                .filter(|d| *d > 0),
            reuse_prevention: p
                .password_reuse_prevention()
                .and_then(|d| u16::try_from(d).ok())
                .filter(|d| *d > 0),
            hard_expiry: p.hard_expiry().unwrap_or(false),
        }))
    }

    pub async fn put_password_policy(&self, policy: &PasswordPolicyState) -> Result<(), AwsError> {
        self.iam
            .update_account_password_policy()
            .minimum_password_length(policy.minimum_length.into())
            .require_symbols(policy.require_symbols)
            .require_numbers(policy.require_numbers)
            .require_uppercase_characters(policy.require_uppercase)
            .require_lowercase_characters(policy.require_lowercase)
            .allow_users_to_change_password(policy.allow_users_to_change_password)
            .set_max_password_age(policy.max_age_days.map(i32::from))
            .set_password_reuse_prevention(policy.reuse_prevention.map(i32::from))
            .hard_expiry(policy.hard_expiry)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                classify(
                    "UpdateAccountPasswordPolicy",
                    &account_address("password_policy"),
                    e,
                )
            })
    }

    pub async fn delete_password_policy(&self) -> Result<(), AwsError> {
        let result = self
            .iam
            .delete_account_password_policy()
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                classify(
                    "DeleteAccountPasswordPolicy",
                    &account_address("password_policy"),
                    e,
                )
            });
        done_if(result, "NoSuchEntity")
    }
}

pub(super) fn iam_tags(
    tags: &BTreeMap<String, String>,
    resource: &str,
) -> Result<Vec<Tag>, AwsError> {
    tags.iter()
        .map(|(key, value)| {
            Tag::builder()
                .key(key)
                .value(value)
                .build()
                .map_err(|e| build_error("TagUser", resource.to_string(), e))
        })
        .collect()
}

/// IAM returns policy documents URL-encoded (RFC 3986).
pub(super) fn decode_policy_document(encoded: &str, resource: &str) -> Result<Value, AwsError> {
    let decoded = percent_encoding::percent_decode_str(encoded)
        .decode_utf8()
        .map_err(|e| build_error("GetUserPolicy", resource.to_string(), e))?;
    serde_json::from_str(&decoded)
        .or_else(|_| serde_json::from_str(encoded))
        .map_err(|e| {
            build_error(
                "GetUserPolicy",
                resource.to_string(),
                format!("the policy is not valid JSON: {e}"),
            )
        })
}
