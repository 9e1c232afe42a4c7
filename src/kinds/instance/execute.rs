//! Carrying out the instance operations, each safe to repeat.
//!
//! Instances have no names in EC2, so every operation first finds the project's instance
//! by its record (`Cloud::find_instance`): a launch draws a random client token, records
//! it, then calls RunInstances with it, and EC2 keeps the token on the instance. That is
//! what makes a launch idempotent across runs (an apply that crashed after RunInstances
//! finds the instance by its token and launches no second one), and what keeps an
//! instance someone else tagged with the project's name from ever being taken for it.
//! Within one run, the token also covers a retried RunInstances whose answer was lost.

use crate::aws::{AwsError, Cloud, LaunchRequest, OnWait, WAIT_TIMEOUT};
use crate::kinds::{refused, StepFailure};
use crate::model::{InstanceRecord, InstanceStatus, Market, RunState};

use super::Launch;

/// Finds the project's instance of this name or launches it, then waits until it runs.
pub(super) async fn launch(
    cloud: &Cloud,
    on_wait: OnWait<'_>,
    project: &str,
    name: &str,
    launch: &Launch,
) -> Result<(), StepFailure> {
    let instance = match cloud.find_instance(project, name).await? {
        Some(found) => found,
        None => {
            // The record goes first: a crash after RunInstances leaves an instance the
            // next run finds by it, never one it cannot tell from a stranger's.
            let client_token = format!("tether-{}", nonce()?);
            let request = launch_request(cloud, name, launch, &client_token).await?;
            cloud
                .put_instance_record(
                    project,
                    name,
                    &InstanceRecord::Launched {
                        client_token: client_token.clone(),
                    },
                )
                .await?;
            let id = while_profile_propagates(|| cloud.run_instance(name, &request)).await?;
            cloud
                .wait_for_instance(
                    name,
                    &id,
                    &[
                        InstanceStatus::Running,
                        InstanceStatus::Stopped,
                        InstanceStatus::Stopping,
                    ],
                    WAIT_TIMEOUT,
                    on_wait,
                )
                .await?
        }
    };
    // An instance found stopped (or stopping) is left to the state operations that follow.
    if instance.state == InstanceStatus::Pending {
        cloud
            .wait_for_instance(
                name,
                &instance.id,
                &[InstanceStatus::Running],
                WAIT_TIMEOUT,
                on_wait,
            )
            .await?;
    }
    Ok(())
}

/// 32 random hex digits: a client token of its own for each launch (EC2 takes 64
/// characters at most).
fn nonce() -> Result<String, StepFailure> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|error| {
        refused(
            "RunInstances",
            String::new(),
            format!("no randomness for a client token: {error}"),
        )
    })?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Resolves what RunInstances needs from the account (security group ids, the image's root
/// device) and the disk (user data, which must be what the plan saw).
async fn launch_request(
    cloud: &Cloud,
    name: &str,
    launch: &Launch,
    client_token: &str,
) -> Result<LaunchRequest, StepFailure> {
    let address = format!("instance.{name}");
    let security_group_ids = cloud
        .security_group_ids(&address, &launch.security_groups)
        .await?;
    let root_volume = match launch.root_volume_gb {
        None => None,
        Some(size) => {
            let images = cloud.images(vec![launch.ami.clone()]).await?;
            let device = images
                .get(&launch.ami)
                .and_then(|(_, root)| root.clone())
                .ok_or_else(|| {
                    refused(
                        "DescribeImages",
                        address.clone(),
                        format!("image {} does not exist, or has no root device", launch.ami),
                    )
                })?;
            Some((device, size))
        }
    };
    let user_data = match &launch.user_data {
        None => None,
        Some(encoded) => {
            use base64::Engine;
            let content = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .ok()
                .filter(|content| Some(crate::hash::sha256_hex(content)) == launch.user_data_sha256)
                .ok_or_else(|| {
                    refused(
                        "RunInstances",
                        address,
                        "the plan's user data does not match its hash (a damaged plan); nothing was launched".to_string(),
                    )
                })?;
            Some(content)
        }
    };
    // The watchdog's part goes first; the spec's own user data rides along as it is.
    let user_data = match launch.idle_watchdog {
        true => Some(crate::idle::user_data(user_data.as_deref())),
        false => user_data,
    };
    Ok(LaunchRequest {
        ami: launch.ami.clone(),
        instance_type: launch.instance_type.clone(),
        spot: launch.market == Market::Spot,
        max_price: launch.max_price.clone(),
        key_pair: launch.key_pair.clone(),
        security_group_ids,
        root_volume,
        volumes: launch
            .volumes
            .iter()
            .map(|(device, v)| (device.clone(), v.size_gb, v.volume_type.clone()))
            .collect(),
        user_data,
        instance_profile: launch.instance_profile.clone(),
        tags: launch.tags.clone(),
        client_token: client_token.to_string(),
        stops_itself: launch.idle_watchdog,
    })
}

/// Brings the instance to `target`: waits out a transition the other way, asks EC2 to
/// start or stop it unless that is under way already, then waits until it is there. Safe
/// to repeat at any point.
pub(super) async fn reach(
    cloud: &Cloud,
    on_wait: OnWait<'_>,
    project: &str,
    name: &str,
    target: RunState,
) -> Result<(), StepFailure> {
    // (operation, target state, its transition, the opposite transition and its end)
    use InstanceStatus::{Pending, Running, Stopped, Stopping};
    let (operation, there, going, reverse, reverse_end) = match target {
        RunState::Running => ("StartInstances", Running, Pending, Stopping, Stopped),
        RunState::Stopped => ("StopInstances", Stopped, Stopping, Pending, Running),
    };
    let instance = cloud.existing_instance(operation, project, name).await?;
    if instance.state == reverse {
        cloud
            .wait_for_instance(name, &instance.id, &[reverse_end], WAIT_TIMEOUT, on_wait)
            .await?;
    }
    if instance.state != there {
        if instance.state != going {
            match target {
                RunState::Running => cloud.start_instance(name, &instance.id).await?,
                RunState::Stopped => cloud.stop_instance(name, &instance.id).await?,
            }
        }
        cloud
            .wait_for_instance(name, &instance.id, &[there], WAIT_TIMEOUT, on_wait)
            .await?;
    }
    Ok(())
}

pub(super) async fn set_type(
    cloud: &Cloud,
    project: &str,
    name: &str,
    instance_type: &str,
) -> Result<(), StepFailure> {
    let instance = cloud
        .existing_instance("ModifyInstanceAttribute", project, name)
        .await?;
    if instance.instance_type != instance_type {
        cloud
            .set_instance_type(name, &instance.id, instance_type)
            .await?;
    }
    Ok(())
}

pub(super) async fn set_security_groups(
    cloud: &Cloud,
    project: &str,
    name: &str,
    groups: &std::collections::BTreeSet<String>,
) -> Result<(), StepFailure> {
    let instance = cloud
        .existing_instance("ModifyInstanceAttribute", project, name)
        .await?;
    let ids = cloud
        .security_group_ids(&format!("instance.{name}"), groups)
        .await?;
    cloud
        .set_instance_security_groups(name, &instance.id, ids)
        .await?;
    Ok(())
}

pub(super) async fn set_instance_profile(
    cloud: &Cloud,
    project: &str,
    name: &str,
    profile: Option<&str>,
) -> Result<(), StepFailure> {
    let instance = cloud
        .existing_instance("AssociateIamInstanceProfile", project, name)
        .await?;
    while_profile_propagates(|| cloud.set_instance_profile(name, &instance.id, profile)).await?;
    Ok(())
}

pub(super) async fn modify_volume(
    cloud: &Cloud,
    project: &str,
    name: &str,
    device: Option<&str>,
    size_gb: i32,
    volume_type: Option<&str>,
) -> Result<(), StepFailure> {
    let instance = cloud
        .existing_instance("ModifyVolume", project, name)
        .await?;
    let device = device
        .or(instance.root_device.as_deref())
        .unwrap_or_default();
    let volume = instance.devices.get(device).ok_or_else(|| {
        refused(
            "ModifyVolume",
            format!("instance.{name}"),
            format!("the instance has no volume at {device}"),
        )
    })?;
    cloud
        .modify_volume(name, volume, size_gb, volume_type)
        .await?;
    Ok(())
}

pub(super) async fn set_tags(
    cloud: &Cloud,
    project: &str,
    name: &str,
    tags: &std::collections::BTreeMap<String, String>,
    remove: &[String],
) -> Result<(), StepFailure> {
    let instance = cloud.existing_instance("CreateTags", project, name).await?;
    cloud
        .set_instance_tags(name, &instance.id, tags, remove)
        .await?;
    Ok(())
}

/// Cancels its spot request first (a persistent request would launch a replacement), then
/// terminates the project's instance of the name (the one its record names: never another
/// that merely carries its tags), waits until it is gone, and deletes the record.
pub(super) async fn terminate(
    cloud: &Cloud,
    on_wait: OnWait<'_>,
    project: &str,
    name: &str,
) -> Result<(), StepFailure> {
    if let Some(instance) = cloud.find_instance(project, name).await? {
        if let Some(request) = &instance.spot_request_id {
            cloud.cancel_spot_request(name, request).await?;
        }
        cloud.terminate_instance(name, &instance.id).await?;
        cloud
            .wait_for_termination(name, &instance.id, WAIT_TIMEOUT, on_wait)
            .await?;
    }
    // After the instance: a crash in between leaves a record of an instance that is gone.
    cloud.delete_instance_record(project, name).await?;
    Ok(())
}

/// Takes tether's tags off the project's instance `name` (found by its record, so never
/// another that merely carries its tags), then deletes the record. The tags go first: a
/// run killed between the two leaves an instance no reader takes for the project's.
pub(super) async fn forget(cloud: &Cloud, project: &str, name: &str) -> Result<(), StepFailure> {
    if let Some(instance) = cloud.find_instance(project, name).await? {
        let remove = crate::model::tether_tag_keys(&instance.tags);
        cloud
            .set_instance_tags(name, &instance.id, &Default::default(), &remove)
            .await?;
    }
    cloud.delete_instance_record(project, name).await?;
    Ok(())
}

/// Records the instance `id`, which the plan found tagged with the project and the name
/// but unrecorded, as the project's (the spec says `adopt: true`). It must still be there,
/// tagged so.
pub(super) async fn adopt(
    cloud: &Cloud,
    project: &str,
    name: &str,
    id: &str,
) -> Result<(), StepFailure> {
    let found = cloud.instances(Some(&[id.to_string()])).await?;
    let ownership_tags = crate::model::ownership_tags(project, name);
    // Tagged as this one already (a tether before launch records), or by no tether at
    // all (the spec adopts it by id); anything else is another's since the plan.
    let adoptable =
        found
            .iter()
            .find(|instance| instance.id == id)
            .filter(
                |instance| match instance.tags.get(crate::model::TAG_PROJECT) {
                    None => true,
                    Some(_) => ownership_tags
                        .iter()
                        .all(|(key, value)| instance.tags.get(key) == Some(value)),
                },
            );
    let Some(instance) = adoptable else {
        return Err(StepFailure::NotCreated {
            resource: format!("instance `{name}`"),
            found: format!(
                "{id}, the instance the plan would adopt, is gone or now tagged as another's"
            ),
        });
    };
    // The record first: a run killed before the tags leaves an instance no reader takes
    // for the project's, which the next plan adopts again.
    cloud
        .put_instance_record(
            project,
            name,
            &InstanceRecord::Adopted {
                instance_id: id.to_string(),
            },
        )
        .await?;
    if !instance.tags.contains_key(crate::model::TAG_PROJECT) {
        cloud
            .set_instance_tags(name, id, &ownership_tags, &[])
            .await?;
    }
    Ok(())
}

/// How long EC2 may take to see an instance profile IAM has just made. AWS documents that
/// IAM changes take a while to reach other services; a profile created in the same apply
/// is refused by RunInstances as invalid until then.
const PROFILE_PROPAGATION: std::time::Duration = std::time::Duration::from_secs(90);

/// EC2's answer while a new instance profile has not reached it yet.
fn is_profile_not_yet_visible(error: &AwsError) -> bool {
    error.is_code("InvalidParameterValue")
        && error
            .message
            .to_ascii_lowercase()
            .contains("instance profile")
}

/// Runs `call` again, with backoff, while EC2 does not see an instance profile yet.
async fn while_profile_propagates<T, F, Fut>(call: F) -> Result<T, AwsError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, AwsError>>,
{
    retry_unseen_profile(std::time::Duration::from_secs(2), call).await
}

/// `while_profile_propagates`, starting with pauses of `pause`.
async fn retry_unseen_profile<T, F, Fut>(
    mut pause: std::time::Duration,
    mut call: F,
) -> Result<T, AwsError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, AwsError>>,
{
    let started = std::time::Instant::now();
    loop {
        match call().await {
            Err(error)
                if is_profile_not_yet_visible(&error)
                    && started.elapsed() + pause < PROFILE_PROPAGATION =>
            {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(std::time::Duration::from_secs(15));
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::AwsErrorKind;

    fn error(code: &str, message: &str) -> AwsError {
        AwsError {
            operation: "RunInstances",
            resource: "instance.worker".into(),
            code: Some(code.into()),
            message: message.into(),
            kind: AwsErrorKind::Service,
        }
    }

    // Why it exists: a profile made in the same apply is invisible to EC2 for a few
    // seconds, and the launch must wait for it rather than fail.
    #[test]
    fn only_an_unseen_instance_profile_is_waited_for() {
        assert!(is_profile_not_yet_visible(&error(
            "InvalidParameterValue",
            "Value (lab-worker) for parameter iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name",
        )));
        assert!(!is_profile_not_yet_visible(&error(
            "InvalidParameterValue",
            "Invalid value 't9.huge' for InstanceType.",
        )));
        assert!(!is_profile_not_yet_visible(&error(
            "UnauthorizedOperation",
            "not authorized to pass the instance profile",
        )));
    }

    #[tokio::test]
    async fn a_launch_waits_while_the_profile_propagates_then_succeeds() {
        let mut calls = 0;
        let result = retry_unseen_profile(std::time::Duration::from_millis(1), || {
            calls += 1;
            let attempt = calls;
            async move {
                if attempt < 3 {
                    Err(error(
                        "InvalidParameterValue",
                        "Invalid IAM Instance Profile name",
                    ))
                } else {
                    Ok(attempt)
                }
            }
        })
        .await;
        assert_eq!(result.ok(), Some(3));
    }
}
