//! EC2 calls for instances, their volumes and images, and Elastic IPs, in tether's types.
//!
//! Instances and addresses have no names in EC2: tether finds its own by the tags
//! `tether:project` and `tether:name`, which are given in the very call that creates them
//! (RunInstances, AllocateAddress), so nothing tether makes is ever untagged.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use aws_sdk_ec2::types::{
    AttributeValue, BlockDeviceMapping, DomainType, EbsBlockDevice, Filter,
    InstanceInterruptionBehavior, InstanceLifecycleType, InstanceMarketOptionsRequest,
    InstanceType, MarketType, ResourceType, ShutdownBehavior, SpotInstanceType, SpotMarketOptions,
    VolumeType,
};

use super::ec2::{from_tags, not_found, tag_specification};
use super::{classify, done_if, AwsError, AwsErrorKind, Cloud};
use crate::model::{
    ImageCandidate, ImageLookup, InstanceRecord, InstanceStatus, TAG_NAME, TAG_PROJECT,
};

/// How long to wait for an instance to reach a state before giving up.
pub const WAIT_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// How often a long wait reports that it is still waiting.
const WAIT_REPORT_EVERY: Duration = Duration::from_secs(20);

/// Told, during a long wait, the state seen so far and the time spent.
pub type OnWait<'a> = &'a (dyn Fn(&str, Duration) + Sync);

/// An instance as described.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceInfo {
    pub id: String,
    pub state: InstanceStatus,
    pub instance_type: String,
    pub ami: String,
    pub spot: bool,
    pub spot_request_id: Option<String>,
    pub key_name: Option<String>,
    /// Security group names.
    pub security_groups: BTreeSet<String>,
    pub root_device: Option<String>,
    /// Volume ids by device name.
    pub devices: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
    pub public_ip: Option<String>,
    /// ISO 8601.
    pub launched: String,
    /// The IAM instance profile's name.
    pub instance_profile: Option<String>,
    /// The idempotency token it was launched with, if any.
    pub client_token: Option<String>,
}

/// An EBS volume as described.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VolumeInfo {
    pub size_gb: i32,
    pub volume_type: String,
}

/// An Elastic IP as described.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddressInfo {
    pub allocation_id: String,
    pub public_ip: String,
    pub instance_id: Option<String>,
    pub association_id: Option<String>,
    pub tags: BTreeMap<String, String>,
}

/// Everything RunInstances needs for one of tether's instances.
#[derive(Clone, Debug)]
pub struct LaunchRequest {
    pub ami: String,
    pub instance_type: String,
    pub spot: bool,
    pub max_price: Option<String>,
    pub key_pair: Option<String>,
    pub security_group_ids: Vec<String>,
    /// The root device name and size, when the size is set.
    pub root_volume: Option<(String, i32)>,
    /// Further volumes: device, size, type.
    pub volumes: Vec<(String, i32, String)>,
    pub user_data: Option<Vec<u8>>,
    pub instance_profile: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub client_token: String,
    /// The instance shuts itself down when idle: a shutdown from inside stops it (never
    /// terminates it), and its tags are in its metadata, where its watchdog reads its rule.
    pub stops_itself: bool,
}

fn instance_address(name: &str) -> String {
    format!("instance.{name}")
}

fn address_address(name: &str) -> String {
    format!("elastic_ip.{name}")
}

/// The filters for the project's resources of a kind, or its one of `name`.
fn owner_filters(project: &str, name: Option<&str>) -> Vec<Filter> {
    let mut filters = vec![tag_filter(TAG_PROJECT, project)];
    filters.extend(name.map(|name| tag_filter(TAG_NAME, name)));
    filters
}

/// The filters for resources with these ids (`filter` names the id: `instance-id`), or
/// for every one with `None`; `None` back when `ids` names none, so there is nothing to ask.
fn id_filters(filter: &str, ids: Option<&[String]>) -> Option<Vec<Filter>> {
    match ids {
        Some([]) => None,
        Some(ids) => Some(vec![Filter::builder()
            .name(filter)
            .set_values(Some(ids.to_vec()))
            .build()]),
        None => Some(Vec::new()),
    }
}

fn tag_filter(key: &str, value: &str) -> Filter {
    Filter::builder()
        .name(format!("tag:{key}"))
        .values(value)
        .build()
}

/// The test hook `TETHER_TEST_PUBLIC_IPS=name=address,...`: a running instance whose
/// `tether:name` is listed reports that public address instead of EC2's, so that tests can
/// stand an sshd on loopback in for the instance. Everything after it is the production
/// path. It exists only in debug builds (which `cargo test` makes), opted into by setting
/// the variable: a release build ignores it, so nobody can redirect where it connects.
fn public_ip_override(tags: &BTreeMap<String, String>) -> Option<String> {
    let overrides = test_hook(
        cfg!(debug_assertions),
        std::env::var("TETHER_TEST_PUBLIC_IPS").ok(),
    )?;
    let name = tags.get(TAG_NAME)?;
    overrides.split(',').find_map(|pair| {
        let (instance, address) = pair.split_once('=')?;
        (instance == name).then(|| address.to_string())
    })
}

/// The test hook `TETHER_TEST_CONSOLE_OUTPUT=name=file,...`: the console output of the
/// instance named `name` is that file's text instead of EC2's, so that tests can print the
/// host keys of the loopback sshd standing in for it. Debug builds only, as above.
fn console_output_override(name: &str) -> Option<String> {
    let overrides = test_hook(
        cfg!(debug_assertions),
        std::env::var("TETHER_TEST_CONSOLE_OUTPUT").ok(),
    )?;
    let file = overrides.split(',').find_map(|pair| {
        let (instance, file) = pair.split_once('=')?;
        (instance == name).then_some(file)
    })?;
    std::fs::read_to_string(file).ok()
}

/// The gate of test hooks: the variable's value in a debug build, nothing in a release
/// build whatever the environment says.
fn test_hook(debug_build: bool, value: Option<String>) -> Option<String> {
    value.filter(|_| debug_build)
}

/// An instance in tether's terms; `None` for one without an id or with a state EC2 has
/// not documented (it is skipped rather than guessed at).
fn instance_info(instance: &aws_sdk_ec2::types::Instance) -> Option<InstanceInfo> {
    let tags = from_tags(instance.tags());
    let state = InstanceStatus::parse(instance.state()?.name()?.as_str())?;
    let public_ip = match public_ip_override(&tags) {
        Some(address) if state.is_up() => Some(address),
        _ => instance.public_ip_address().map(str::to_string),
    };
    Some(InstanceInfo {
        id: instance.instance_id()?.to_string(),
        state,
        instance_type: instance
            .instance_type()
            .map(|t| t.as_str().to_string())
            .unwrap_or_default(),
        ami: instance.image_id().unwrap_or_default().to_string(),
        spot: instance.instance_lifecycle() == Some(&InstanceLifecycleType::Spot),
        spot_request_id: instance.spot_instance_request_id().map(str::to_string),
        key_name: instance.key_name().map(str::to_string),
        security_groups: instance
            .security_groups()
            .iter()
            .filter_map(|g| g.group_name().map(str::to_string))
            .collect(),
        root_device: instance.root_device_name().map(str::to_string),
        devices: instance
            .block_device_mappings()
            .iter()
            .filter_map(|m| {
                Some((
                    m.device_name()?.to_string(),
                    m.ebs()?.volume_id()?.to_string(),
                ))
            })
            .collect(),
        tags,
        public_ip,
        instance_profile: instance
            .iam_instance_profile()
            .and_then(|p| p.arn())
            .and_then(|arn| arn.rsplit('/').next())
            .map(str::to_string),
        client_token: instance
            .client_token()
            .filter(|token| !token.is_empty())
            .map(str::to_string),
        launched: instance
            .launch_time()
            .and_then(|t| t.fmt(aws_smithy_types::date_time::Format::DateTime).ok())
            .unwrap_or_default(),
    })
}

impl Cloud {
    /// The project's instances that exist (not terminated), oldest first; with `name`, only
    /// those carrying that `tether:name`.
    pub async fn project_instances(
        &self,
        project: &str,
        name: Option<&str>,
    ) -> Result<Vec<InstanceInfo>, AwsError> {
        let resource = name.map(instance_address).unwrap_or_default();
        self.live_instances(owner_filters(project, name), &resource)
            .await
    }

    /// Instances that exist (not terminated), oldest first, whoever owns them: those with
    /// these ids (a spec adopting one by id), or with `None` every one in the region (what
    /// `tether import` looks through). An id that names nothing is no error: it is absent.
    pub async fn instances(&self, ids: Option<&[String]>) -> Result<Vec<InstanceInfo>, AwsError> {
        match id_filters("instance-id", ids) {
            Some(filters) => self.live_instances(filters, "").await,
            None => Ok(Vec::new()),
        }
    }

    /// Instances matching `filters` that exist, oldest first, with volumes' devices.
    async fn live_instances(
        &self,
        filters: Vec<Filter>,
        resource: &str,
    ) -> Result<Vec<InstanceInfo>, AwsError> {
        let request = self
            .ec2
            .describe_instances()
            .set_filters(Some(filters))
            .filters(
                Filter::builder()
                    .name("instance-state-name")
                    .set_values(Some(
                        InstanceStatus::LIVE
                            .map(|s| s.as_str().to_string())
                            .to_vec(),
                    ))
                    .build(),
            );
        let mut pages = request.into_paginator().send();
        let mut found = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("DescribeInstances", resource, e))?;
            for reservation in page.reservations() {
                found.extend(reservation.instances().iter().filter_map(instance_info));
            }
        }
        found.sort_by(|a, b| (&a.launched, &a.id).cmp(&(&b.launched, &b.id)));
        Ok(found)
    }

    /// The project's instance `name`: the one its record names (`InstanceRecord`), among
    /// those tagged with the project and the name. Tags and launch times anyone may set;
    /// an instance without the project's record is none of its instances.
    pub async fn find_instance(
        &self,
        project: &str,
        name: &str,
    ) -> Result<Option<InstanceInfo>, AwsError> {
        let (record, tagged) = tokio::try_join!(
            self.instance_record(project, name),
            self.project_instances(project, Some(name))
        )?;
        let Some(record) = record else {
            return Ok(None);
        };
        Ok(tagged
            .into_iter()
            .find(|instance| record.identifies(&instance.id, instance.client_token.as_deref())))
    }

    /// The project's record of its instance `name`, if it has one it can read.
    pub async fn instance_record(
        &self,
        project: &str,
        name: &str,
    ) -> Result<Option<InstanceRecord>, AwsError> {
        let parameter = crate::parameters::instance_record_parameter(project, name);
        Ok(self
            .parameter(&parameter)
            .await?
            .and_then(|found| InstanceRecord::parse(&found.value)))
    }

    /// Records which instance is the project's instance `name` (overwrites).
    pub async fn put_instance_record(
        &self,
        project: &str,
        name: &str,
        record: &InstanceRecord,
    ) -> Result<(), AwsError> {
        let parameter = crate::parameters::instance_record_parameter(project, name);
        self.put_parameter(
            &parameter,
            &record.text(),
            super::ParameterKind::Record,
            &crate::model::ownership_tags(project, name),
        )
        .await
    }

    /// Deletes the record of instance `name` (gone already counts as done).
    pub async fn delete_instance_record(&self, project: &str, name: &str) -> Result<(), AwsError> {
        self.delete_parameter(&crate::parameters::instance_record_parameter(project, name))
            .await
    }

    /// Like `find_instance`, but its absence is an error.
    pub async fn existing_instance(
        &self,
        operation: &'static str,
        project: &str,
        name: &str,
    ) -> Result<InstanceInfo, AwsError> {
        self.find_instance(project, name).await?.ok_or_else(|| {
            not_found(
                operation,
                instance_address(name),
                "the instance does not exist (terminated, or never launched)".into(),
            )
        })
    }

    async fn describe_instance(&self, id: &str) -> Result<Option<InstanceInfo>, AwsError> {
        let result = self
            .ec2
            .describe_instances()
            .instance_ids(id)
            .send()
            .await
            .map_err(|e| classify("DescribeInstances", id, e));
        let Some(output) = super::none_if(result, "InvalidInstanceID.NotFound")? else {
            return Ok(None);
        };
        Ok(output
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .find_map(instance_info))
    }

    /// Sizes and types of the volumes with these ids.
    pub async fn volumes(
        &self,
        ids: Vec<String>,
    ) -> Result<BTreeMap<String, VolumeInfo>, AwsError> {
        if ids.is_empty() {
            return Ok(BTreeMap::new());
        }
        let mut pages = self
            .ec2
            .describe_volumes()
            .set_volume_ids(Some(ids))
            .into_paginator()
            .send();
        let mut found = BTreeMap::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("DescribeVolumes", "", e))?;
            for volume in page.volumes() {
                let Some(id) = volume.volume_id() else {
                    continue;
                };
                found.insert(
                    id.to_string(),
                    VolumeInfo {
                        size_gb: volume.size().unwrap_or_default(),
                        volume_type: volume
                            .volume_type()
                            .map(|t| t.as_str().to_string())
                            .unwrap_or_default(),
                    },
                );
            }
        }
        Ok(found)
    }

    /// The images matching `lookup`.
    pub async fn find_images(&self, lookup: &ImageLookup) -> Result<Vec<ImageCandidate>, AwsError> {
        let output = self
            .ec2
            .describe_images()
            .owners(&lookup.owner)
            .filters(Filter::builder().name("name").values(&lookup.name).build())
            .filters(Filter::builder().name("state").values("available").build())
            .send()
            .await
            .map_err(|e| classify("DescribeImages", &lookup.key(), e))?;
        Ok(output
            .images()
            .iter()
            .filter_map(|image| {
                Some(ImageCandidate {
                    id: image.image_id()?.to_string(),
                    created: image.creation_date().unwrap_or_default().to_string(),
                })
            })
            .collect())
    }

    /// The names and root device names of these images, by id.
    pub async fn images(
        &self,
        ids: Vec<String>,
    ) -> Result<BTreeMap<String, (String, Option<String>)>, AwsError> {
        if ids.is_empty() {
            return Ok(BTreeMap::new());
        }
        let output = self
            .ec2
            .describe_images()
            .set_image_ids(Some(ids))
            .send()
            .await
            .map_err(|e| classify("DescribeImages", "", e))?;
        Ok(output
            .images()
            .iter()
            .filter_map(|image| {
                Some((
                    image.image_id()?.to_string(),
                    (
                        image.name().unwrap_or_default().to_string(),
                        image.root_device_name().map(str::to_string),
                    ),
                ))
            })
            .collect())
    }

    /// The ids of the default VPC's security groups with these names; any missing is an
    /// error naming it.
    pub async fn security_group_ids(
        &self,
        address: &str,
        names: &BTreeSet<String>,
    ) -> Result<Vec<String>, AwsError> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let groups = self.list_security_groups().await?;
        names
            .iter()
            .map(|name| {
                groups
                    .iter()
                    .find(|g| &g.name == name)
                    .map(|g| g.id.clone())
                    .ok_or_else(|| {
                        not_found(
                            "DescribeSecurityGroups",
                            address.to_string(),
                            format!("security group `{name}` does not exist in the default VPC"),
                        )
                    })
            })
            .collect()
    }

    /// Launches one instance, tagged at launch, with `client_token` making a repeated call
    /// return the same instance. Returns its id.
    pub async fn run_instance(
        &self,
        name: &str,
        launch: &LaunchRequest,
    ) -> Result<String, AwsError> {
        let mut request = self
            .ec2
            .run_instances()
            .image_id(&launch.ami)
            .instance_type(InstanceType::from(launch.instance_type.as_str()))
            .min_count(1)
            .max_count(1)
            .client_token(&launch.client_token)
            .set_key_name(launch.key_pair.clone())
            .set_security_group_ids(
                (!launch.security_group_ids.is_empty()).then(|| launch.security_group_ids.clone()),
            )
            .tag_specifications(tag_specification(ResourceType::Instance, &launch.tags))
            .tag_specifications(tag_specification(ResourceType::Volume, &launch.tags));
        let ebs = |size: i32, volume_type: Option<&str>| {
            EbsBlockDevice::builder()
                .volume_size(size)
                .set_volume_type(volume_type.map(VolumeType::from))
                .delete_on_termination(true)
                .build()
        };
        if let Some((device, size)) = &launch.root_volume {
            request = request.block_device_mappings(
                BlockDeviceMapping::builder()
                    .device_name(device)
                    .ebs(ebs(*size, None))
                    .build(),
            );
        }
        for (device, size, volume_type) in &launch.volumes {
            request = request.block_device_mappings(
                BlockDeviceMapping::builder()
                    .device_name(device)
                    .ebs(ebs(*size, Some(volume_type)))
                    .build(),
            );
        }
        if let Some(profile) = &launch.instance_profile {
            request = request.iam_instance_profile(
                aws_sdk_ec2::types::IamInstanceProfileSpecification::builder()
                    .name(profile)
                    .build(),
            );
        }
        if let Some(user_data) = &launch.user_data {
            request = request.user_data(aws_smithy_types::base64::encode(user_data));
        }
        if launch.stops_itself {
            request = request
                .instance_initiated_shutdown_behavior(ShutdownBehavior::Stop)
                .metadata_options(
                    aws_sdk_ec2::types::InstanceMetadataOptionsRequest::builder()
                        .instance_metadata_tags(
                            aws_sdk_ec2::types::InstanceMetadataTagsState::Enabled,
                        )
                        .build(),
                );
        }
        if launch.spot {
            // A persistent request that stops on interruption, so the instance can be
            // stopped and started like an on-demand one. Deleting it cancels the request.
            request = request.instance_market_options(
                InstanceMarketOptionsRequest::builder()
                    .market_type(MarketType::Spot)
                    .spot_options(
                        SpotMarketOptions::builder()
                            .set_max_price(launch.max_price.clone())
                            .spot_instance_type(SpotInstanceType::Persistent)
                            .instance_interruption_behavior(InstanceInterruptionBehavior::Stop)
                            .build(),
                    )
                    .build(),
            );
        }
        let output = request
            .send()
            .await
            .map_err(|e| classify("RunInstances", &instance_address(name), e))?;
        output
            .instances()
            .first()
            .and_then(|i| i.instance_id())
            .map(str::to_string)
            .ok_or_else(|| {
                not_found(
                    "RunInstances",
                    instance_address(name),
                    "the answer named no instance".into(),
                )
            })
    }

    /// Polls the instance until its state is one of `targets`. Fails when it reaches a
    /// state it cannot leave for a target (terminated), or after `timeout`.
    pub async fn wait_for_instance(
        &self,
        name: &str,
        id: &str,
        targets: &[InstanceStatus],
        timeout: Duration,
        on_wait: OnWait<'_>,
    ) -> Result<InstanceInfo, AwsError> {
        let found = self
            .poll_instance(name, id, targets, timeout, false, on_wait)
            .await?;
        found.ok_or_else(|| {
            not_found(
                "DescribeInstances",
                instance_address(name),
                format!("instance {id} does not exist"),
            )
        })
    }

    /// Polls the instance until it is terminated, or no longer listed at all.
    pub async fn wait_for_termination(
        &self,
        name: &str,
        id: &str,
        timeout: Duration,
        on_wait: OnWait<'_>,
    ) -> Result<(), AwsError> {
        self.poll_instance(
            name,
            id,
            &[InstanceStatus::Terminated],
            timeout,
            true,
            on_wait,
        )
        .await
        .map(|_| ())
    }

    async fn poll_instance(
        &self,
        name: &str,
        id: &str,
        targets: &[InstanceStatus],
        timeout: Duration,
        absent_is_done: bool,
        on_wait: OnWait<'_>,
    ) -> Result<Option<InstanceInfo>, AwsError> {
        let started = Instant::now();
        let mut reported = started;
        let mut delay = Duration::from_millis(500);
        loop {
            // Right after a launch EC2 may not know the id yet: that is "not yet", unless
            // the instance is expected to go away.
            let seen = self.describe_instance(id).await?;
            if seen.is_none() && absent_is_done {
                return Ok(None);
            }
            let state = seen.as_ref().map(|i| i.state);
            if let Some(info) = seen.filter(|i| targets.contains(&i.state)) {
                return Ok(Some(info));
            }
            let dead_end = state.is_some_and(InstanceStatus::is_gone)
                && !targets.contains(&InstanceStatus::Terminated);
            if dead_end || started.elapsed() > timeout {
                return Err(AwsError {
                    operation: "DescribeInstances",
                    resource: instance_address(name),
                    code: None,
                    message: format!(
                        "instance {id} is {} after {}s of waiting for it to be {}",
                        state.map_or("not found", InstanceStatus::as_str),
                        started.elapsed().as_secs(),
                        targets
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(" or ")
                    ),
                    kind: AwsErrorKind::Service,
                });
            }
            if reported.elapsed() >= WAIT_REPORT_EVERY {
                on_wait(
                    state.map_or("not yet listed", InstanceStatus::as_str),
                    started.elapsed(),
                );
                reported = Instant::now();
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(10));
        }
    }

    /// The tags of any instance, by id (empty when it does not exist).
    pub async fn instance_tags(&self, id: &str) -> Result<BTreeMap<String, String>, AwsError> {
        Ok(self
            .describe_instance(id)
            .await?
            .map(|i| i.tags)
            .unwrap_or_default())
    }

    pub async fn stop_instance(&self, name: &str, id: &str) -> Result<(), AwsError> {
        self.ec2
            .stop_instances()
            .instance_ids(id)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("StopInstances", &instance_address(name), e))
    }

    pub async fn start_instance(&self, name: &str, id: &str) -> Result<(), AwsError> {
        self.ec2
            .start_instances()
            .instance_ids(id)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("StartInstances", &instance_address(name), e))
    }

    /// Terminates the instance; an instance already gone counts as terminated.
    pub async fn terminate_instance(&self, name: &str, id: &str) -> Result<(), AwsError> {
        let result = self
            .ec2
            .terminate_instances()
            .instance_ids(id)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("TerminateInstances", &instance_address(name), e));
        done_if(result, "InvalidInstanceID.NotFound")
    }

    /// Cancels a spot request, so that it launches nothing more.
    pub async fn cancel_spot_request(&self, name: &str, request: &str) -> Result<(), AwsError> {
        let result = self
            .ec2
            .cancel_spot_instance_requests()
            .spot_instance_request_ids(request)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("CancelSpotInstanceRequests", &instance_address(name), e));
        done_if(result, "InvalidSpotInstanceRequestID.NotFound")
    }

    pub async fn set_instance_type(
        &self,
        name: &str,
        id: &str,
        instance_type: &str,
    ) -> Result<(), AwsError> {
        self.ec2
            .modify_instance_attribute()
            .instance_id(id)
            .instance_type(AttributeValue::builder().value(instance_type).build())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("ModifyInstanceAttribute", &instance_address(name), e))
    }

    pub async fn set_instance_security_groups(
        &self,
        name: &str,
        id: &str,
        group_ids: Vec<String>,
    ) -> Result<(), AwsError> {
        self.ec2
            .modify_instance_attribute()
            .instance_id(id)
            .set_groups(Some(group_ids))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("ModifyInstanceAttribute", &instance_address(name), e))
    }

    /// The instance profile associated with each of these instances, by instance id. The
    /// associations are the record of what an instance has now (an instance's own
    /// description may lag behind a replaced association).
    pub async fn instance_profiles(
        &self,
        ids: Vec<String>,
    ) -> Result<BTreeMap<String, String>, AwsError> {
        if ids.is_empty() {
            return Ok(BTreeMap::new());
        }
        let output = self
            .ec2
            .describe_iam_instance_profile_associations()
            .filters(
                Filter::builder()
                    .name("instance-id")
                    .set_values(Some(ids))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| classify("DescribeIamInstanceProfileAssociations", "", e))?;
        Ok(output
            .iam_instance_profile_associations()
            .iter()
            .filter(|a| {
                matches!(
                    a.state().map(|s| s.as_str()),
                    Some("associated" | "associating")
                )
            })
            .filter_map(|a| {
                let name = a.iam_instance_profile()?.arn()?.rsplit('/').next()?;
                Some((a.instance_id()?.to_string(), name.to_string()))
            })
            .collect())
    }

    /// Gives the instance this instance profile (or none), in place: associating,
    /// replacing or removing its association.
    pub async fn set_instance_profile(
        &self,
        name: &str,
        id: &str,
        profile: Option<&str>,
    ) -> Result<(), AwsError> {
        let address = instance_address(name);
        let associations = self
            .ec2
            .describe_iam_instance_profile_associations()
            .filters(Filter::builder().name("instance-id").values(id).build())
            .send()
            .await
            .map_err(|e| classify("DescribeIamInstanceProfileAssociations", &address, e))?;
        let current = associations
            .iam_instance_profile_associations()
            .iter()
            .filter(|a| {
                matches!(
                    a.state().map(|s| s.as_str()),
                    Some("associated" | "associating")
                )
            })
            .find_map(|a| a.association_id().map(str::to_string));
        let specification = |profile: &str| {
            aws_sdk_ec2::types::IamInstanceProfileSpecification::builder()
                .name(profile)
                .build()
        };
        match (current, profile) {
            (Some(association), Some(profile)) => self
                .ec2
                .replace_iam_instance_profile_association()
                .association_id(association)
                .iam_instance_profile(specification(profile))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| classify("ReplaceIamInstanceProfileAssociation", &address, e)),
            (Some(association), None) => self
                .ec2
                .disassociate_iam_instance_profile()
                .association_id(association)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| classify("DisassociateIamInstanceProfile", &address, e)),
            (None, Some(profile)) => self
                .ec2
                .associate_iam_instance_profile()
                .instance_id(id)
                .iam_instance_profile(specification(profile))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| classify("AssociateIamInstanceProfile", &address, e)),
            (None, None) => Ok(()),
        }
    }

    /// Sets a volume's size and type (EBS grows volumes in place, online).
    pub async fn modify_volume(
        &self,
        name: &str,
        volume_id: &str,
        size_gb: i32,
        volume_type: Option<&str>,
    ) -> Result<(), AwsError> {
        self.ec2
            .modify_volume()
            .volume_id(volume_id)
            .size(size_gb)
            .set_volume_type(volume_type.map(VolumeType::from))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("ModifyVolume", &instance_address(name), e))
    }

    pub async fn set_instance_tags(
        &self,
        name: &str,
        id: &str,
        tags: &BTreeMap<String, String>,
        remove: &[String],
    ) -> Result<(), AwsError> {
        self.retag(id, &instance_address(name), tags, remove).await
    }

    /// The project's Elastic IPs; with `name`, only the one carrying that `tether:name`.
    pub async fn project_addresses(
        &self,
        project: &str,
        name: Option<&str>,
    ) -> Result<Vec<AddressInfo>, AwsError> {
        let resource = name.map(address_address).unwrap_or_default();
        self.described_addresses(owner_filters(project, name), &resource)
            .await
    }

    /// Elastic IPs whoever owns them: those with these allocation ids (a spec adopting one),
    /// or with `None` every one in the region (what `tether import` looks through).
    pub async fn addresses(&self, ids: Option<&[String]>) -> Result<Vec<AddressInfo>, AwsError> {
        match id_filters("allocation-id", ids) {
            Some(filters) => self.described_addresses(filters, "").await,
            None => Ok(Vec::new()),
        }
    }

    async fn described_addresses(
        &self,
        filters: Vec<Filter>,
        resource: &str,
    ) -> Result<Vec<AddressInfo>, AwsError> {
        let output = self
            .ec2
            .describe_addresses()
            .set_filters(Some(filters))
            .send()
            .await
            .map_err(|e| classify("DescribeAddresses", resource, e))?;
        let mut found: Vec<AddressInfo> = output
            .addresses()
            .iter()
            .filter_map(|a| {
                Some(AddressInfo {
                    allocation_id: a.allocation_id()?.to_string(),
                    public_ip: a.public_ip().unwrap_or_default().to_string(),
                    instance_id: a.instance_id().map(str::to_string),
                    association_id: a.association_id().map(str::to_string),
                    tags: from_tags(a.tags()),
                })
            })
            .collect();
        found.sort_by(|a, b| a.allocation_id.cmp(&b.allocation_id));
        Ok(found)
    }

    pub async fn find_address(
        &self,
        project: &str,
        name: &str,
    ) -> Result<Option<AddressInfo>, AwsError> {
        Ok(self
            .project_addresses(project, Some(name))
            .await?
            .into_iter()
            .next())
    }

    /// Allocates a VPC address, tagged in the same call. Returns its allocation id.
    pub async fn allocate_address(
        &self,
        name: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<String, AwsError> {
        let output = self
            .ec2
            .allocate_address()
            .domain(DomainType::Vpc)
            .tag_specifications(tag_specification(ResourceType::ElasticIp, tags))
            .send()
            .await
            .map_err(|e| classify("AllocateAddress", &address_address(name), e))?;
        output.allocation_id().map(str::to_string).ok_or_else(|| {
            not_found(
                "AllocateAddress",
                address_address(name),
                "the answer named no allocation".into(),
            )
        })
    }

    /// Associates the address with an instance; never takes it from another instance
    /// (`AllowReassociation` is off).
    pub async fn associate_address(
        &self,
        name: &str,
        allocation_id: &str,
        instance_id: &str,
    ) -> Result<(), AwsError> {
        self.ec2
            .associate_address()
            .allocation_id(allocation_id)
            .instance_id(instance_id)
            .allow_reassociation(false)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("AssociateAddress", &address_address(name), e))
    }

    pub async fn disassociate_address(
        &self,
        name: &str,
        association_id: &str,
    ) -> Result<(), AwsError> {
        let result = self
            .ec2
            .disassociate_address()
            .association_id(association_id)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("DisassociateAddress", &address_address(name), e));
        done_if(result, "InvalidAssociationID.NotFound")
    }

    pub async fn release_address(&self, name: &str, allocation_id: &str) -> Result<(), AwsError> {
        let result = self
            .ec2
            .release_address()
            .allocation_id(allocation_id)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("ReleaseAddress", &address_address(name), e));
        done_if(result, "InvalidAllocationID.NotFound")
    }

    pub async fn set_address_tags(
        &self,
        name: &str,
        allocation_id: &str,
        tags: &BTreeMap<String, String>,
        remove: &[String],
    ) -> Result<(), AwsError> {
        self.retag(allocation_id, &address_address(name), tags, remove)
            .await
    }
}

impl Cloud {
    /// The instance's console output (what it printed at boot, as EC2 keeps it), decoded;
    /// `None` when EC2 has none yet.
    pub async fn console_output(&self, name: &str, id: &str) -> Result<Option<String>, AwsError> {
        if let Some(text) = console_output_override(name) {
            return Ok(Some(text));
        }
        let output = self
            .ec2
            .get_console_output()
            .instance_id(id)
            .send()
            .await
            .map_err(|e| classify("GetConsoleOutput", &instance_address(name), e))?;
        Ok(output.output().map(|encoded| {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
                .unwrap_or_else(|_| encoded.to_string())
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::test_hook;

    // Regression: the release binary honoured `TETHER_TEST_PUBLIC_IPS`, which redirects
    // where tether connects.
    #[test]
    fn a_release_build_ignores_the_test_hook() {
        let set = Some("worker=127.0.0.1".to_string());
        assert_eq!(test_hook(false, set.clone()), None);
        assert_eq!(test_hook(true, set.clone()), set);
        assert_eq!(test_hook(true, None), None);
    }
}
