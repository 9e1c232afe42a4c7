//! IAM roles and instance profiles, one function (or one idempotent sequence) each, in
//! tether's types. As for users and groups, "already exists" on create and "no such entity"
//! on delete count as success.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::iam::{decode_policy_document, iam_tags, IamEntity};
use super::{classify, done_if, none_if, AwsError, Cloud};
use crate::model::{Address, Kind};

fn role_address(role: &str) -> String {
    Address::new(Kind::IamRole, role).to_string()
}

fn profile_address(profile: &str) -> String {
    Address::new(Kind::InstanceProfile, profile).to_string()
}

/// A role as IAM describes it: its path, trust policy and tags.
#[derive(Clone, Debug, PartialEq)]
pub struct RoleInfo {
    pub path: String,
    /// The trust (assume role) policy, as JSON.
    pub trust_policy: Value,
    pub tags: BTreeMap<String, String>,
}

/// An instance profile as listed: its name, path and the roles in it (at most one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProfileInfo {
    pub name: String,
    pub path: String,
    pub roles: Vec<String>,
}

impl Cloud {
    /// Every IAM role of the account.
    pub async fn list_roles(&self) -> Result<Vec<IamEntity>, AwsError> {
        let mut found = Vec::new();
        let mut pages = self.iam.list_roles().into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("ListRoles", "", e))?;
            found.extend(page.roles().iter().map(|r| IamEntity {
                name: r.role_name().to_string(),
                path: r.path().to_string(),
            }));
        }
        Ok(found)
    }

    /// A role's path, trust policy and tags; `None` when it does not exist.
    pub async fn role(&self, role: &str) -> Result<Option<RoleInfo>, AwsError> {
        let address = role_address(role);
        let result = self
            .iam
            .get_role()
            .role_name(role)
            .send()
            .await
            .map_err(|e| classify("GetRole", &address, e));
        let Some(output) = none_if(result, "NoSuchEntity")? else {
            return Ok(None);
        };
        let Some(found) = output.role() else {
            return Ok(None);
        };
        let trust_policy = match found.assume_role_policy_document() {
            Some(document) => decode_policy_document(document, &address)?,
            None => Value::Null,
        };
        // GetRole returns the tags with the role; ListRoleTags pages them when there are many.
        let mut tags = BTreeMap::new();
        let mut pages = self
            .iam
            .list_role_tags()
            .role_name(role)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("ListRoleTags", &address, e))?;
            tags.extend(
                page.tags()
                    .iter()
                    .map(|t| (t.key().to_string(), t.value().to_string())),
            );
        }
        Ok(Some(RoleInfo {
            path: found.path().to_string(),
            trust_policy,
            tags,
        }))
    }

    /// Managed policies attached to a role.
    pub async fn role_policies(&self, role: &str) -> Result<BTreeSet<String>, AwsError> {
        let mut arns = BTreeSet::new();
        let mut pages = self
            .iam
            .list_attached_role_policies()
            .role_name(role)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page =
                page.map_err(|e| classify("ListAttachedRolePolicies", &role_address(role), e))?;
            arns.extend(
                page.attached_policies()
                    .iter()
                    .filter_map(|p| p.policy_arn().map(str::to_string)),
            );
        }
        Ok(arns)
    }

    /// A role's inline policies, by name, as JSON.
    pub async fn role_inline_policies(
        &self,
        role: &str,
    ) -> Result<BTreeMap<String, Value>, AwsError> {
        let address = role_address(role);
        let mut names = Vec::new();
        let mut pages = self
            .iam
            .list_role_policies()
            .role_name(role)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("ListRolePolicies", &address, e))?;
            names.extend(page.policy_names().iter().cloned());
        }
        let mut policies = BTreeMap::new();
        for name in names {
            let output = self
                .iam
                .get_role_policy()
                .role_name(role)
                .policy_name(&name)
                .send()
                .await
                .map_err(|e| classify("GetRolePolicy", &address, e))?;
            policies.insert(
                name,
                decode_policy_document(output.policy_document(), &address)?,
            );
        }
        Ok(policies)
    }

    pub async fn create_role(
        &self,
        role: &str,
        path: &str,
        trust_policy: &Value,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), AwsError> {
        let address = role_address(role);
        let result = self
            .iam
            .create_role()
            .role_name(role)
            .path(path)
            .assume_role_policy_document(trust_policy.to_string())
            .set_tags(Some(iam_tags(tags, &address)?))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("CreateRole", &address, e));
        done_if(result, "EntityAlreadyExists")
    }

    pub async fn set_trust_policy(&self, role: &str, trust_policy: &Value) -> Result<(), AwsError> {
        self.iam
            .update_assume_role_policy()
            .role_name(role)
            .policy_document(trust_policy.to_string())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("UpdateAssumeRolePolicy", &role_address(role), e))
    }

    /// Sets `tags` and removes the keys in `remove`.
    pub async fn set_role_tags(
        &self,
        role: &str,
        tags: &BTreeMap<String, String>,
        remove: &[String],
    ) -> Result<(), AwsError> {
        let address = role_address(role);
        if !remove.is_empty() {
            self.iam
                .untag_role()
                .role_name(role)
                .set_tag_keys(Some(remove.to_vec()))
                .send()
                .await
                .map_err(|e| classify("UntagRole", &address, e))?;
        }
        if !tags.is_empty() {
            self.iam
                .tag_role()
                .role_name(role)
                .set_tags(Some(iam_tags(tags, &address)?))
                .send()
                .await
                .map_err(|e| classify("TagRole", &address, e))?;
        }
        Ok(())
    }

    pub async fn attach_role_policy(&self, role: &str, arn: &str) -> Result<(), AwsError> {
        self.iam
            .attach_role_policy()
            .role_name(role)
            .policy_arn(arn)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("AttachRolePolicy", &role_address(role), e))
    }

    pub async fn detach_role_policy(&self, role: &str, arn: &str) -> Result<(), AwsError> {
        let result = self
            .iam
            .detach_role_policy()
            .role_name(role)
            .policy_arn(arn)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("DetachRolePolicy", &role_address(role), e));
        done_if(result, "NoSuchEntity")
    }

    pub async fn put_role_policy(
        &self,
        role: &str,
        name: &str,
        document: &Value,
    ) -> Result<(), AwsError> {
        self.iam
            .put_role_policy()
            .role_name(role)
            .policy_name(name)
            .policy_document(document.to_string())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("PutRolePolicy", &role_address(role), e))
    }

    pub async fn delete_role_policy(&self, role: &str, name: &str) -> Result<(), AwsError> {
        let result = self
            .iam
            .delete_role_policy()
            .role_name(role)
            .policy_name(name)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("DeleteRolePolicy", &role_address(role), e));
        done_if(result, "NoSuchEntity")
    }

    /// Deletes a role in the order IAM requires: out of every instance profile, attached
    /// and inline policies detached and deleted, then the role.
    pub async fn delete_role(&self, role: &str) -> Result<(), AwsError> {
        let address = role_address(role);
        let profiles = self
            .iam
            .list_instance_profiles_for_role()
            .role_name(role)
            .send()
            .await
            .map_err(|e| classify("ListInstanceProfilesForRole", &address, e));
        let Some(profiles) = none_if(profiles, "NoSuchEntity")? else {
            return Ok(());
        };
        for profile in profiles.instance_profiles() {
            self.remove_role_from_profile(profile.instance_profile_name(), role)
                .await?;
        }
        for arn in self.role_policies(role).await? {
            self.detach_role_policy(role, &arn).await?;
        }
        for name in self.role_inline_policies(role).await?.keys() {
            self.delete_role_policy(role, name).await?;
        }
        let result = self
            .iam
            .delete_role()
            .role_name(role)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("DeleteRole", &address, e));
        done_if(result, "NoSuchEntity")
    }

    /// Every instance profile of the account, with its roles.
    pub async fn list_instance_profiles(&self) -> Result<Vec<ProfileInfo>, AwsError> {
        let mut found = Vec::new();
        let mut pages = self.iam.list_instance_profiles().into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("ListInstanceProfiles", "", e))?;
            found.extend(page.instance_profiles().iter().map(|p| {
                ProfileInfo {
                    name: p.instance_profile_name().to_string(),
                    path: p.path().to_string(),
                    roles: p
                        .roles()
                        .iter()
                        .map(|r| r.role_name().to_string())
                        .collect(),
                }
            }));
        }
        Ok(found)
    }

    pub async fn create_instance_profile(
        &self,
        profile: &str,
        path: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), AwsError> {
        let result = self
            .iam
            .create_instance_profile()
            .instance_profile_name(profile)
            .path(path)
            .set_tags(Some(iam_tags(tags, &profile_address(profile))?))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("CreateInstanceProfile", &profile_address(profile), e));
        done_if(result, "EntityAlreadyExists")
    }

    /// A profile's tags. ListInstanceProfiles leaves tags out (as AWS documents);
    /// GetInstanceProfile has them.
    pub async fn profile_tags(&self, profile: &str) -> Result<BTreeMap<String, String>, AwsError> {
        let output = self
            .iam
            .get_instance_profile()
            .instance_profile_name(profile)
            .send()
            .await
            .map_err(|e| classify("GetInstanceProfile", &profile_address(profile), e))?;
        Ok(output
            .instance_profile()
            .map(|p| {
                p.tags()
                    .iter()
                    .map(|t| (t.key().to_string(), t.value().to_string()))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Sets `tags` and removes the keys in `remove`.
    pub async fn set_profile_tags(
        &self,
        profile: &str,
        tags: &BTreeMap<String, String>,
        remove: &[String],
    ) -> Result<(), AwsError> {
        let address = profile_address(profile);
        if !remove.is_empty() {
            self.iam
                .untag_instance_profile()
                .instance_profile_name(profile)
                .set_tag_keys(Some(remove.to_vec()))
                .send()
                .await
                .map_err(|e| classify("UntagInstanceProfile", &address, e))?;
        }
        if !tags.is_empty() {
            self.iam
                .tag_instance_profile()
                .instance_profile_name(profile)
                .set_tags(Some(iam_tags(tags, &address)?))
                .send()
                .await
                .map_err(|e| classify("TagInstanceProfile", &address, e))?;
        }
        Ok(())
    }

    /// Puts `role` into the profile. A profile holds one role: a repeated call finds it
    /// there (LimitExceeded) and succeeds.
    pub async fn add_role_to_profile(&self, profile: &str, role: &str) -> Result<(), AwsError> {
        let result = self
            .iam
            .add_role_to_instance_profile()
            .instance_profile_name(profile)
            .role_name(role)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("AddRoleToInstanceProfile", &profile_address(profile), e));
        match result {
            Err(error)
                if error.is_code("LimitExceeded") || error.is_code("EntityAlreadyExists") =>
            {
                let roles = self
                    .list_instance_profiles()
                    .await?
                    .into_iter()
                    .find(|p| p.name == profile)
                    .map(|p| p.roles)
                    .unwrap_or_default();
                if roles.iter().any(|r| r == role) {
                    Ok(())
                } else {
                    Err(error)
                }
            }
            other => other,
        }
    }

    pub async fn remove_role_from_profile(
        &self,
        profile: &str,
        role: &str,
    ) -> Result<(), AwsError> {
        let result = self
            .iam
            .remove_role_from_instance_profile()
            .instance_profile_name(profile)
            .role_name(role)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                classify(
                    "RemoveRoleFromInstanceProfile",
                    &profile_address(profile),
                    e,
                )
            });
        done_if(result, "NoSuchEntity")
    }

    /// Deletes a profile, taking its roles out first as IAM requires.
    pub async fn delete_instance_profile(&self, profile: &str) -> Result<(), AwsError> {
        let address = profile_address(profile);
        let result = self
            .iam
            .get_instance_profile()
            .instance_profile_name(profile)
            .send()
            .await
            .map_err(|e| classify("GetInstanceProfile", &address, e));
        let Some(output) = none_if(result, "NoSuchEntity")? else {
            return Ok(());
        };
        let roles: Vec<String> = output
            .instance_profile()
            .map(|p| {
                p.roles()
                    .iter()
                    .map(|r| r.role_name().to_string())
                    .collect()
            })
            .unwrap_or_default();
        for role in roles {
            self.remove_role_from_profile(profile, &role).await?;
        }
        let result = self
            .iam
            .delete_instance_profile()
            .instance_profile_name(profile)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("DeleteInstanceProfile", &address, e));
        done_if(result, "NoSuchEntity")
    }
}
