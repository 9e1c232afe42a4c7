//! EC2 calls for key pairs and security groups, in tether's types. Security groups live in
//! the region's default VPC. "Already exists" on create and "not found" on delete count as
//! success, so every step can be repeated.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ec2::types::{
    Filter, IpPermission, IpRange, Ipv6Range, ResourceType, Tag, TagSpecification, UserIdGroupPair,
};

use super::{classify, done_if, none_if, AwsError, AwsErrorKind, Cloud};
use crate::model::{Address, IngressRule, Kind};

fn key_address(name: &str) -> String {
    Address::new(Kind::KeyPair, name).to_string()
}

fn group_address(name: &str) -> String {
    Address::new(Kind::SecurityGroup, name).to_string()
}

pub(super) fn not_found(operation: &'static str, resource: String, message: String) -> AwsError {
    AwsError {
        operation,
        resource,
        code: None,
        message,
        kind: AwsErrorKind::Service,
    }
}

pub(super) fn tag_specification(
    kind: ResourceType,
    tags: &BTreeMap<String, String>,
) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(kind)
        .set_tags(Some(to_tags(tags)))
        .build()
}

fn to_tags(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

pub(super) fn from_tags(tags: &[Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .filter_map(|t| {
            Some((
                t.key()?.to_string(),
                t.value().unwrap_or_default().to_string(),
            ))
        })
        .collect()
}

/// A key pair as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyPairInfo {
    pub name: String,
    /// The key pair id (`key-...`), which names its private key in Parameter Store.
    pub id: Option<String>,
    pub tags: BTreeMap<String, String>,
}

/// A key pair AWS just generated: its id and private key.
#[derive(Debug)]
pub struct CreatedKeyPair {
    pub id: String,
    pub private_key: PrivateKey,
}

/// A security group as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecurityGroupInfo {
    pub id: String,
    pub name: String,
    pub description: String,
    pub tags: BTreeMap<String, String>,
    pub ingress: BTreeSet<IngressRule>,
}

/// A generated private key. `Debug` never shows it.
pub struct PrivateKey(pub String);

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PrivateKey(<redacted>)")
    }
}

/// The rules of one EC2 permission, one per source.
fn rules_of(permission: &IpPermission) -> Vec<IngressRule> {
    let rule = |source: String| IngressRule {
        protocol: permission.ip_protocol().unwrap_or("-1").to_string(),
        from_port: permission.from_port().unwrap_or(-1),
        to_port: permission.to_port().unwrap_or(-1),
        source,
    };
    let v4 = permission
        .ip_ranges()
        .iter()
        .filter_map(|r| r.cidr_ip().map(str::to_string));
    let v6 = permission
        .ipv6_ranges()
        .iter()
        .filter_map(|r| r.cidr_ipv6().map(str::to_string));
    let groups = permission
        .user_id_group_pairs()
        .iter()
        .filter_map(|p| p.group_id().map(str::to_string));
    v4.chain(v6).chain(groups).map(rule).collect()
}

/// The EC2 permission for one rule.
fn permission_of(rule: &IngressRule) -> IpPermission {
    let builder = IpPermission::builder()
        .ip_protocol(&rule.protocol)
        .from_port(rule.from_port)
        .to_port(rule.to_port);
    let builder = if rule.source.starts_with("sg-") {
        builder.user_id_group_pairs(UserIdGroupPair::builder().group_id(&rule.source).build())
    } else if rule.source.contains(':') {
        builder.ipv6_ranges(Ipv6Range::builder().cidr_ipv6(&rule.source).build())
    } else {
        builder.ip_ranges(IpRange::builder().cidr_ip(&rule.source).build())
    };
    builder.build()
}

impl Cloud {
    /// Every key pair of the region.
    pub async fn list_key_pairs(&self) -> Result<Vec<KeyPairInfo>, AwsError> {
        let output = self
            .ec2
            .describe_key_pairs()
            .send()
            .await
            .map_err(|e| classify("DescribeKeyPairs", "", e))?;
        Ok(output
            .key_pairs()
            .iter()
            .filter_map(|k| {
                Some(KeyPairInfo {
                    name: k.key_name()?.to_string(),
                    id: k.key_pair_id().map(str::to_string),
                    tags: from_tags(k.tags()),
                })
            })
            .collect())
    }

    /// Creates a key pair and returns its id and private key, which AWS shows only now.
    pub async fn create_key_pair(
        &self,
        name: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<CreatedKeyPair, AwsError> {
        let output = self
            .ec2
            .create_key_pair()
            .key_name(name)
            .tag_specifications(tag_specification(ResourceType::KeyPair, tags))
            .send()
            .await
            .map_err(|e| classify("CreateKeyPair", &key_address(name), e))?;
        let material = output.key_material().ok_or_else(|| {
            not_found(
                "CreateKeyPair",
                key_address(name),
                "the answer held no private key".into(),
            )
        })?;
        let id = output.key_pair_id().ok_or_else(|| {
            not_found(
                "CreateKeyPair",
                key_address(name),
                "the answer held no key pair id".into(),
            )
        })?;
        Ok(CreatedKeyPair {
            id: id.to_string(),
            private_key: PrivateKey(material.to_string()),
        })
    }

    /// Imports a public key as a key pair. Repeating it finds the key pair already there.
    pub async fn import_key_pair(
        &self,
        name: &str,
        public_key: &[u8],
        tags: &BTreeMap<String, String>,
    ) -> Result<(), AwsError> {
        let result = self
            .ec2
            .import_key_pair()
            .key_name(name)
            .public_key_material(aws_smithy_types::Blob::new(public_key))
            .tag_specifications(tag_specification(ResourceType::KeyPair, tags))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("ImportKeyPair", &key_address(name), e));
        done_if(result, "InvalidKeyPair.Duplicate")
    }

    /// The id of the key pair `name`.
    pub async fn key_pair_id(&self, name: &str) -> Result<String, AwsError> {
        let output = self
            .ec2
            .describe_key_pairs()
            .key_names(name)
            .send()
            .await
            .map_err(|e| classify("DescribeKeyPairs", &key_address(name), e))?;
        output
            .key_pairs()
            .first()
            .and_then(|k| k.key_pair_id())
            .map(str::to_string)
            .ok_or_else(|| {
                not_found(
                    "DescribeKeyPairs",
                    key_address(name),
                    "the key pair does not exist".into(),
                )
            })
    }

    pub async fn set_key_pair_tags(
        &self,
        name: &str,
        tags: &BTreeMap<String, String>,
        remove: &[String],
    ) -> Result<(), AwsError> {
        let id = self.key_pair_id(name).await?;
        self.retag(&id, &key_address(name), tags, remove).await
    }

    /// Deletes a key pair; EC2 answers success when it is already gone.
    pub async fn delete_key_pair(&self, name: &str) -> Result<(), AwsError> {
        self.ec2
            .delete_key_pair()
            .key_name(name)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("DeleteKeyPair", &key_address(name), e))
    }

    /// Sets `tags` on a resource and removes the keys in `remove`.
    pub(super) async fn retag(
        &self,
        id: &str,
        address: &str,
        tags: &BTreeMap<String, String>,
        remove: &[String],
    ) -> Result<(), AwsError> {
        if !remove.is_empty() {
            let keys: Vec<Tag> = remove
                .iter()
                .map(|k| Tag::builder().key(k).build())
                .collect();
            self.ec2
                .delete_tags()
                .resources(id)
                .set_tags(Some(keys))
                .send()
                .await
                .map_err(|e| classify("DeleteTags", address, e))?;
        }
        if !tags.is_empty() {
            self.ec2
                .create_tags()
                .resources(id)
                .set_tags(Some(to_tags(tags)))
                .send()
                .await
                .map_err(|e| classify("CreateTags", address, e))?;
        }
        Ok(())
    }

    /// The id of the region's default VPC, where tether's security groups live.
    pub async fn default_vpc(&self) -> Result<Option<String>, AwsError> {
        let output = self
            .ec2
            .describe_vpcs()
            .filters(Filter::builder().name("is-default").values("true").build())
            .send()
            .await
            .map_err(|e| classify("DescribeVpcs", "", e))?;
        Ok(output
            .vpcs()
            .first()
            .and_then(|v| v.vpc_id())
            .map(str::to_string))
    }

    /// Every security group of the default VPC.
    pub async fn list_security_groups(&self) -> Result<Vec<SecurityGroupInfo>, AwsError> {
        let Some(vpc) = self.default_vpc().await? else {
            return Ok(Vec::new());
        };
        let mut found = Vec::new();
        let mut pages = self
            .ec2
            .describe_security_groups()
            .filters(Filter::builder().name("vpc-id").values(vpc).build())
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("DescribeSecurityGroups", "", e))?;
            for group in page.security_groups() {
                found.push(SecurityGroupInfo {
                    id: group.group_id().unwrap_or_default().to_string(),
                    name: group.group_name().unwrap_or_default().to_string(),
                    description: group.description().unwrap_or_default().to_string(),
                    tags: from_tags(group.tags()),
                    ingress: group.ip_permissions().iter().flat_map(rules_of).collect(),
                });
            }
        }
        Ok(found)
    }

    /// The id of the default VPC's group named `name`, if there is one.
    async fn security_group_id(&self, name: &str) -> Result<Option<String>, AwsError> {
        Ok(self
            .list_security_groups()
            .await?
            .into_iter()
            .find(|g| g.name == name)
            .map(|g| g.id))
    }

    async fn existing_group_id(
        &self,
        operation: &'static str,
        name: &str,
    ) -> Result<String, AwsError> {
        self.security_group_id(name).await?.ok_or_else(|| {
            not_found(
                operation,
                group_address(name),
                "the security group does not exist".into(),
            )
        })
    }

    /// Creates a security group in the default VPC, tagged. Repeating it finds the group.
    pub async fn create_security_group(
        &self,
        name: &str,
        description: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), AwsError> {
        let vpc = self.default_vpc().await?.ok_or_else(|| {
            not_found(
                "CreateSecurityGroup",
                group_address(name),
                "the region has no default VPC, where tether puts security groups".into(),
            )
        })?;
        let result = self
            .ec2
            .create_security_group()
            .group_name(name)
            .description(description)
            .vpc_id(vpc)
            .tag_specifications(tag_specification(ResourceType::SecurityGroup, tags))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("CreateSecurityGroup", &group_address(name), e));
        done_if(result, "InvalidGroup.Duplicate")
    }

    pub async fn set_security_group_tags(
        &self,
        name: &str,
        tags: &BTreeMap<String, String>,
        remove: &[String],
    ) -> Result<(), AwsError> {
        let id = self.existing_group_id("CreateTags", name).await?;
        self.retag(&id, &group_address(name), tags, remove).await
    }

    pub async fn authorize_ingress(
        &self,
        name: &str,
        rules: &[IngressRule],
    ) -> Result<(), AwsError> {
        let id = self
            .existing_group_id("AuthorizeSecurityGroupIngress", name)
            .await?;
        for rule in rules {
            let result = self
                .ec2
                .authorize_security_group_ingress()
                .group_id(&id)
                .ip_permissions(permission_of(rule))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| classify("AuthorizeSecurityGroupIngress", &group_address(name), e));
            none_if(result, "InvalidPermission.Duplicate")?;
        }
        Ok(())
    }

    pub async fn revoke_ingress(&self, name: &str, rules: &[IngressRule]) -> Result<(), AwsError> {
        let id = self
            .existing_group_id("RevokeSecurityGroupIngress", name)
            .await?;
        for rule in rules {
            let result = self
                .ec2
                .revoke_security_group_ingress()
                .group_id(&id)
                .ip_permissions(permission_of(rule))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| classify("RevokeSecurityGroupIngress", &group_address(name), e));
            none_if(result, "InvalidPermission.NotFound")?;
        }
        Ok(())
    }

    pub async fn delete_security_group(&self, name: &str) -> Result<(), AwsError> {
        let Some(id) = self.security_group_id(name).await? else {
            return Ok(());
        };
        let result = self
            .ec2
            .delete_security_group()
            .group_id(id)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("DeleteSecurityGroup", &group_address(name), e));
        done_if(result, "InvalidGroup.NotFound")
    }
}
