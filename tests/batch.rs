//! End-to-end tests of AWS Batch compute environments, job queues and job definitions: the
//! real `tether` binary against moto, the account checked through the SDK.

mod support;

use support::{block_on, Moto};

const SPEC: &str = "\
project: batch-lab
region: us-east-1
security_groups:
  batch-workers:
    description: Batch workers (egress only)
iam:
  roles:
    batch-instance: {assumed_by: ec2.amazonaws.com}
    batch-service: {assumed_by: batch.amazonaws.com}
    batch-job: {assumed_by: ecs-tasks.amazonaws.com}
batch:
  compute_environments:
    lab-spot:
      type: SPOT
      max_vcpus: 16
      instance_types: [m5.large]
      bid_percentage: 60
      security_groups: [batch-workers]
      instance_role: batch-instance
      service_role: batch-service
  job_queues:
    lab-queue:
      priority: 5
      compute_environments: [lab-spot]
  job_definitions:
    count:
      image: public.ecr.aws/amazonlinux/amazonlinux:2023
      vcpus: 1
      memory_mb: 2048
      job_role: batch-job
      attempts: 3
      timeout_seconds: 3600
";

fn environment(moto: &Moto) -> Option<aws_sdk_batch::types::ComputeEnvironmentDetail> {
    block_on(async {
        moto.batch()
            .describe_compute_environments()
            .compute_environments("lab-spot")
            .send()
            .await
            .expect("describe")
            .compute_environments()
            .first()
            .cloned()
    })
}

fn queue(moto: &Moto) -> Option<aws_sdk_batch::types::JobQueueDetail> {
    block_on(async {
        moto.batch()
            .describe_job_queues()
            .job_queues("lab-queue")
            .send()
            .await
            .expect("describe")
            .job_queues()
            .first()
            .cloned()
    })
}

/// Revisions of `count` by status: (revision, status).
fn revisions(moto: &Moto) -> Vec<(i32, String)> {
    block_on(async {
        let out = moto
            .batch()
            .describe_job_definitions()
            .job_definition_name("count")
            .send()
            .await
            .expect("describe");
        let mut found: Vec<(i32, String)> = out
            .job_definitions()
            .iter()
            .map(|d| {
                (
                    d.revision().unwrap_or_default(),
                    d.status().unwrap_or_default().to_string(),
                )
            })
            .collect();
        found.sort();
        found
    })
}

fn memory_of_active(moto: &Moto) -> Option<String> {
    block_on(async {
        let out = moto
            .batch()
            .describe_job_definitions()
            .job_definition_name("count")
            .status("ACTIVE")
            .send()
            .await
            .expect("describe");
        out.job_definitions().iter().find_map(|d| {
            d.container_properties()?
                .resource_requirements()
                .iter()
                .find(|r| r.r#type() == Some(&aws_sdk_batch::types::ResourceType::Memory))
                .and_then(|r| r.value().map(str::to_string))
        })
    })
}

#[test]
fn batch_resources_apply_converge_follow_drift_revise_and_are_destroyed_in_batchs_order() {
    let moto = Moto::start();
    moto.write("tether.yaml", SPEC);
    moto.tether(&["plan"])
        .expect_code(0)
        .expect_stderr("+ batch_compute_environment.lab-spot")
        .expect_stderr("+ batch_job_queue.lab-queue")
        .expect_stderr("+ batch_job_definition.count");
    moto.tether(&["apply", "--auto-approve"]).expect_code(0);

    let ce = environment(&moto).expect("the compute environment exists");
    assert_eq!(ce.state().map(|s| s.as_str()), Some("ENABLED"));
    let resources = ce.compute_resources().expect("managed");
    assert_eq!(resources.r#type().map(|t| t.as_str()), Some("SPOT"));
    assert_eq!(resources.maxv_cpus(), Some(16));
    assert_eq!(resources.bid_percentage(), Some(60));
    assert_eq!(resources.instance_types(), ["m5.large"]);
    assert!(
        resources
            .instance_role()
            .is_some_and(|r| r.ends_with("instance-profile/tether/batch-lab/batch-instance")),
        "{:?}",
        resources.instance_role()
    );
    assert!(!resources.subnets().is_empty(), "the default VPC's subnets");
    let tags = ce.tags().expect("tags");
    assert_eq!(
        tags.get("tether:project").map(String::as_str),
        Some("batch-lab")
    );
    let queue_detail = queue(&moto).expect("the queue exists");
    assert_eq!(queue_detail.priority(), Some(5));
    assert!(queue_detail.compute_environment_order()[0]
        .compute_environment()
        .is_some_and(|arn| arn.ends_with("/lab-spot")));
    assert_eq!(revisions(&moto), [(1, "ACTIVE".to_string())]);
    assert_eq!(memory_of_active(&moto).as_deref(), Some("2048"));

    moto.tether(&["plan", "--detailed-exitcode"])
        .expect_code(0)
        .expect_stderr("No changes");
    let show = moto.tether(&["show"]).expect_code(0);
    assert!(
        show.stdout
            .contains("batch_compute_environment.lab-spot  ENABLED VALID")
            && show
                .stdout
                .contains("batch_job_queue.lab-queue  ENABLED VALID"),
        "{}",
        show.stdout
    );

    // Drift: someone lowered the queue's priority in the console. (moto ignores changes
    // to an environment's resources, so the queue stands in for them here.)
    block_on(async {
        moto.batch()
            .update_job_queue()
            .job_queue("lab-queue")
            .priority(50)
            .send()
            .await
            .expect("update")
    });
    moto.tether(&["plan", "--detailed-exitcode"])
        .expect_code(2)
        .expect_stderr("~ batch_job_queue.lab-queue");
    moto.tether(&["apply", "--auto-approve"]).expect_code(0);
    assert_eq!(queue(&moto).and_then(|q| q.priority()), Some(5));

    // A change to the definition registers revision 2 and deregisters revision 1.
    moto.write(
        "tether.yaml",
        &SPEC.replace("memory_mb: 2048", "memory_mb: 4096"),
    );
    moto.tether(&["plan"])
        .expect_code(0)
        .expect_stderr("registers the next revision and deregisters count:1");
    moto.tether(&["apply", "--auto-approve"]).expect_code(0);
    assert_eq!(
        revisions(&moto),
        [(1, "INACTIVE".to_string()), (2, "ACTIVE".to_string())]
    );
    assert_eq!(memory_of_active(&moto).as_deref(), Some("4096"));
    moto.tether(&["plan", "--detailed-exitcode"]).expect_code(0);

    // Destroy: the queue (disabled first) before its environment (disabled first), the
    // definition deregistered, then the roles.
    moto.tether(&["destroy", "--auto-approve"]).expect_code(0);
    assert!(queue(&moto).is_none_or(|q| q.status().map(|s| s.as_str()) == Some("DELETED")));
    assert!(environment(&moto).is_none_or(|ce| ce.status().map(|s| s.as_str()) == Some("DELETED")));
    assert!(revisions(&moto)
        .iter()
        .all(|(_, status)| status == "INACTIVE"));
}

#[test]
fn bad_batch_input_is_an_error_at_its_spec_line_and_nothing_is_called() {
    let moto = Moto::start();
    moto.write(
        "tether.yaml",
        "project: batch-lab
security_groups:
  sg: {description: x}
batch:
  compute_environments:
    fargate: {type: FARGATE, max_vcpus: 8, security_groups: [sg]}
    ec2: {type: EC2, max_vcpus: 8, security_groups: [sg], instance_role: nobody}
  job_queues:
    mixed: {compute_environments: [fargate, ec2, ghost]}
  job_definitions:
    small: {image: python:3.12-slim, vcpus: 0.25, memory_mb: 4096, platform: FARGATE}
    named: {image: Not An Image, vcpus: 1, memory_mb: 512}
",
    );
    moto.tether(&["validate"])
        .expect_code(1)
        .expect_stderr("role `nobody` is not declared")
        .expect_stderr("compute environment `ghost` is not declared")
        .expect_stderr("job queue `mixed` mixes Fargate and EC2 compute environments")
        .expect_stderr("Fargate does not pair 4096 MiB with 0.25 vCPU")
        .expect_stderr("tether.yaml:11:62")
        .expect_stderr("`Not An Image` is not a container image name");
}
