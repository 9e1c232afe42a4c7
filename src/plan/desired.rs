//! From spec to desired state: what each declared resource should look like in the account,
//! tether's ownership tags and derived settings included. Pure.

use std::collections::BTreeMap;

use base64::Engine;
use std::path::Path;

use crate::model::{
    iam_path, Address, BucketState, DesiredResource, ElasticIpState, GroupState, IngressRule,
    InstanceState, KeyPairState, Kind, PublicAccessBlock, ResourceState, SecurityGroupState,
    SshConfigState, UserState, ACCOUNT_ALIAS, ACCOUNT_PASSWORD_POLICY, SSH_ALIASES,
    TAG_FORCE_DESTROY, TAG_NAME, TAG_PROJECT,
};
use crate::policy;
use crate::spec::{
    AmiSpec, BucketSpec, ElasticIpSpec, GroupSpec, InstanceSpec, KeyPairSpec, KeySource,
    SecurityGroupSpec, Spec, SshSpec, UserSpec,
};
use crate::sshconfig::HostEntry;

/// The desired state of every resource in `spec`, for an account in `region`. `home`
/// expands `~` in the spec's file paths.
pub fn desired_resources(spec: &Spec, region: &str, home: Option<&Path>) -> Vec<DesiredResource> {
    let project = spec.project.as_str();
    let mut desired: Vec<DesiredResource> = spec
        .buckets
        .values()
        .map(|bucket| desired_bucket(project, region, bucket))
        .collect();
    desired.extend(
        spec.groups
            .values()
            .map(|group| desired_group(project, group)),
    );
    desired.extend(spec.users.values().map(|user| desired_user(project, user)));
    desired.extend(
        spec.key_pairs
            .values()
            .map(|key| desired_key_pair(project, key)),
    );
    desired.extend(
        spec.security_groups
            .values()
            .map(|group| desired_security_group(project, group)),
    );
    desired.extend(
        spec.instances
            .values()
            .map(|instance| desired_instance(project, instance)),
    );
    desired.extend(
        spec.elastic_ips
            .values()
            .map(|address| desired_elastic_ip(project, address)),
    );
    if let Some(ssh) = &spec.ssh {
        desired.push(desired_ssh_config(spec, ssh, home));
    }
    if let Some(alias) = &spec.account.alias {
        desired.push(DesiredResource {
            address: Address::new(Kind::Account, ACCOUNT_ALIAS),
            state: ResourceState::AccountAlias {
                alias: alias.name.clone(),
                record: None,
            },
            adopt: alias.adopt,
            depends_on: Vec::new(),
            location: alias.location.clone(),
        });
    }
    if let Some(policy) = &spec.account.password_policy {
        desired.push(DesiredResource {
            address: Address::new(Kind::Account, ACCOUNT_PASSWORD_POLICY),
            state: ResourceState::PasswordPolicy {
                policy: policy.policy.clone(),
                record: None,
            },
            adopt: policy.adopt,
            depends_on: Vec::new(),
            location: policy.location.clone(),
        });
    }
    desired
}

fn ownership_tags(project: &str, name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (TAG_PROJECT.to_string(), project.to_string()),
        (TAG_NAME.to_string(), name.to_string()),
    ])
}

/// An imported key's public key file is recorded as a tag on the key pair (and so
/// compared), as the spec writes it. Where a generated key's local copies go is carried
/// along for apply, but is no attribute: it may differ between operators and never changes
/// the key pair.
fn desired_key_pair(project: &str, key: &KeyPairSpec) -> DesiredResource {
    let (private_key_file, public_key_file) = match &key.source {
        KeySource::Generate { private_key_file } => (Some(private_key_file.clone()), None),
        KeySource::Import { public_key_file } => (None, Some(public_key_file.clone())),
    };
    DesiredResource {
        address: Address::new(Kind::KeyPair, &key.name),
        state: ResourceState::KeyPair(KeyPairState {
            tags: ownership_tags(project, &key.name),
            public_key_file,
            private_key: None,
            private_key_file,
            id: None,
        }),
        adopt: key.adopt,
        depends_on: Vec::new(),
        location: key.location.clone(),
    }
}

fn desired_security_group(project: &str, group: &SecurityGroupSpec) -> DesiredResource {
    DesiredResource {
        address: Address::new(Kind::SecurityGroup, &group.name),
        state: ResourceState::SecurityGroup(SecurityGroupState {
            description: group.description.clone(),
            tags: ownership_tags(project, &group.name),
            ingress: group
                .ingress
                .iter()
                .map(|rule| IngressRule {
                    protocol: rule.protocol.as_str().to_string(),
                    from_port: rule.port.into(),
                    to_port: rule.port.into(),
                    source: rule.cidr.clone(),
                })
                .collect(),
        }),
        adopt: group.adopt,
        depends_on: Vec::new(),
        location: group.location.clone(),
    }
}

/// An image lookup leaves `ami` empty for the planner to fill from what the account has.
fn desired_instance(project: &str, instance: &InstanceSpec) -> DesiredResource {
    let mut tags = instance.tags.clone();
    tags.extend(ownership_tags(project, &instance.name));
    let (ami, image_lookup) = match &instance.ami {
        AmiSpec::Id(id) => (id.clone(), None),
        AmiSpec::Newest(lookup) => (String::new(), Some(lookup.key())),
    };
    let user_data = instance.user_data.as_ref();
    let depends_on =
        crate::model::instance_references(instance.key_pair.as_deref(), &instance.security_groups);
    DesiredResource {
        address: Address::new(Kind::Instance, &instance.name),
        state: ResourceState::Instance(InstanceState {
            tags,
            ami,
            instance_type: instance.instance_type.clone(),
            market: instance.market,
            max_price: instance.max_price.clone(),
            key_pair: instance.key_pair.clone(),
            security_groups: instance.security_groups.clone(),
            root_volume_gb: instance.root_volume_gb,
            volumes: instance.volumes.clone(),
            user_data_sha256: user_data
                .and_then(|u| u.content.as_deref())
                .map(crate::hash::sha256_hex),
            instance_profile: instance.instance_profile.clone(),
            state: instance.state,
            generation: 0,
            user_data: user_data
                .and_then(|u| u.content.as_deref())
                .map(|content| base64::engine::general_purpose::STANDARD.encode(content)),
            image_lookup,
            id: None,
            public_ip: None,
        }),
        adopt: false,
        depends_on,
        location: instance.location.clone(),
    }
}

fn desired_elastic_ip(project: &str, address: &ElasticIpSpec) -> DesiredResource {
    let mut tags = address.tags.clone();
    tags.extend(ownership_tags(project, &address.name));
    DesiredResource {
        address: Address::new(Kind::ElasticIp, &address.name),
        state: ResourceState::ElasticIp(ElasticIpState {
            tags,
            instance: address.instance.clone(),
            public_ip: None,
            allocation_id: None,
        }),
        adopt: false,
        depends_on: address
            .instance
            .iter()
            .map(|instance| Address::new(Kind::Instance, instance))
            .collect(),
        location: address.location.clone(),
    }
}

/// The block's text is left for the planner, which knows the instances' live addresses.
fn desired_ssh_config(spec: &Spec, ssh: &SshSpec, home: Option<&Path>) -> DesiredResource {
    let expand = |file: &str| {
        crate::secrets::expand_home(file, home)
            .display()
            .to_string()
    };
    let hosts: Vec<HostEntry> = ssh
        .hosts
        .values()
        .map(|host| HostEntry {
            alias: host.alias.clone(),
            instance: host.instance.clone(),
            user: host.user.clone(),
            port: host.port,
            identity_file: host.identity_file.as_deref().map(expand),
        })
        .collect();
    // After the instances and their addresses, whose addresses it holds.
    let mut depends_on: Vec<Address> = hosts
        .iter()
        .map(|h| Address::new(Kind::Instance, &h.instance))
        .collect();
    depends_on.extend(
        spec.elastic_ips
            .values()
            .filter(|eip| {
                eip.instance
                    .as_ref()
                    .is_some_and(|i| hosts.iter().any(|h| &h.instance == i))
            })
            .map(|eip| Address::new(Kind::ElasticIp, &eip.name)),
    );
    depends_on.sort();
    depends_on.dedup();
    DesiredResource {
        address: Address::new(Kind::SshConfig, SSH_ALIASES),
        state: ResourceState::SshConfig(SshConfigState {
            file: expand(&ssh.config_file),
            block: String::new(),
            hosts,
        }),
        adopt: false,
        depends_on,
        location: ssh.location.clone(),
    }
}

/// Groups take no tags: their IAM path records the owner.
fn desired_group(project: &str, group: &GroupSpec) -> DesiredResource {
    DesiredResource {
        address: Address::new(Kind::IamGroup, &group.name),
        state: ResourceState::IamGroup(GroupState {
            path: iam_path(project),
            policies: group.policies.clone(),
        }),
        adopt: group.adopt,
        depends_on: Vec::new(),
        location: group.location.clone(),
    }
}

/// Users carry both the owner's path and the ownership tags; the path decides.
fn desired_user(project: &str, user: &UserSpec) -> DesiredResource {
    let mut tags = user.tags.clone();
    tags.extend(ownership_tags(project, &user.name));
    DesiredResource {
        address: Address::new(Kind::IamUser, &user.name),
        state: ResourceState::IamUser(UserState {
            path: iam_path(project),
            tags,
            groups: user.groups.clone(),
            policies: user.policies.clone(),
            inline_policies: user
                .inline_policies
                .iter()
                .map(|(name, document)| (name.clone(), policy::normalise(document)))
                .collect(),
            console_access: user.console_access,
            programmatic_access: user.programmatic_access,
            stored_access_key: None,
        }),
        adopt: user.adopt,
        // Membership needs the groups to exist.
        depends_on: user
            .groups
            .iter()
            .map(|group| Address::new(Kind::IamGroup, group))
            .collect(),
        location: user.location.clone(),
    }
}

fn desired_bucket(project: &str, region: &str, bucket: &BucketSpec) -> DesiredResource {
    let mut tags: BTreeMap<String, String> = bucket.tags.clone();
    tags.extend(ownership_tags(project, &bucket.name));
    if bucket.force_destroy {
        tags.insert(TAG_FORCE_DESTROY.to_string(), "true".to_string());
    }
    let public_read = bucket
        .public_read
        .then(|| policy::public_read_statement(&bucket.name, policy::partition(region)));
    let document = match (&bucket.policy, public_read) {
        (Some(document), Some(statement)) => Some(policy::with_statement(document, statement)),
        (Some(document), None) => Some(document.clone()),
        (None, Some(statement)) => Some(policy::document_of(statement)),
        (None, None) => None,
    };
    let public = document.as_ref().is_some_and(policy::grants_public_access);
    DesiredResource {
        address: Address::bucket(&bucket.name),
        state: ResourceState::Bucket(BucketState {
            record: None,
            tags,
            policy: document.as_ref().map(policy::normalise),
            public_access_block: Some(PublicAccessBlock::for_policy(public)),
        }),
        adopt: bucket.adopt,
        depends_on: Vec::new(),
        location: bucket.location.clone(),
    }
}
