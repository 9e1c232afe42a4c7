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

    // Retrying only reclaimed attempts is Batch's `evaluateOnExit`: a reclaimed host
    // retries, any other failure ends the child.
    moto.write(
        "tether.yaml",
        &SPEC
            .replace("memory_mb: 2048", "memory_mb: 4096")
            .replace("attempts: 3\n", "attempts: 3\n      retry_on: reclaim\n"),
    );
    moto.tether(&["plan"])
        .expect_code(0)
        .expect_stderr("retry_on")
        .expect_stderr("reclaim");
    moto.tether(&["apply", "--auto-approve"]).expect_code(0);
    let strategy = block_on(async {
        moto.batch()
            .describe_job_definitions()
            .job_definition_name("count")
            .status("ACTIVE")
            .send()
            .await
            .expect("describe")
            .job_definitions()
            .first()
            .and_then(|d| d.retry_strategy().cloned())
            .expect("a retry strategy")
    });
    assert_eq!(strategy.attempts(), Some(3));
    let conditions: Vec<(Option<&str>, Option<&str>, Option<String>)> = strategy
        .evaluate_on_exit()
        .iter()
        .map(|c| {
            (
                c.on_status_reason(),
                c.on_reason(),
                // Batch takes actions in any case and may answer in lower case.
                c.action().map(|a| a.as_str().to_ascii_uppercase()),
            )
        })
        .collect();
    assert_eq!(
        conditions,
        [
            (Some("Host EC2*"), None, Some("RETRY".to_string())),
            (None, Some("*"), Some("EXIT".to_string()))
        ]
    );
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
    once: {image: python:3.12-slim, vcpus: 1, memory_mb: 512, retry_on: reclaim}
region: us-east-1
",
    );
    moto.tether(&["validate"])
        .expect_code(1)
        .expect_stderr("role `nobody` is not declared")
        .expect_stderr("compute environment `ghost` is not declared")
        .expect_stderr("job queue `mixed` mixes Fargate and EC2 compute environments")
        .expect_stderr("Fargate does not pair 4096 MiB with 0.25 vCPU")
        .expect_stderr("tether.yaml:11:62")
        .expect_stderr("`Not An Image` is not a container image name")
        .expect_stderr("`retry_on` says which attempts run again, but `attempts` allows none")
        .expect_stderr("tether.yaml:13:63");
}

/// Switches moto's Batch to its no-Docker mode, in which a submitted job succeeds at once
/// without running anything.
fn batch_without_docker(moto: &Moto) {
    let status = std::process::Command::new("curl")
        .args(["-fsS", "-X", "POST", "-H", "Content-Type: application/json"])
        .args(["-d", r#"{"batch": {"use_docker": false}}"#])
        .arg(format!("{}/moto-api/config", moto.endpoint))
        .stdout(std::process::Stdio::null())
        .status()
        .expect("curl");
    assert!(status.success(), "moto's configuration endpoint");
}

const JOB: &str = "\
buckets:
  lab-data: {force_destroy: true}
jobs:
  count:
    run_on: {batch: lab-queue, definition: count, shares: 2}
    inputs: s3://lab-data/docs/
    builtin: word_count
    output: s3://lab-data/results/count.json
";

/// The job's summary as written to its output.
fn written_summary(s3: &aws_sdk_s3::Client) -> serde_json::Value {
    serde_json::from_slice(
        &support::get_object(s3, "lab-data", "results/count.json").expect("the summary"),
    )
    .expect("JSON")
}

#[test]
fn a_job_runs_as_one_array_job_whose_children_are_tether_agents_and_the_results_merge() {
    let moto = Moto::start();
    batch_without_docker(&moto);
    moto.write("tether.yaml", &format!("{SPEC}{JOB}"));
    moto.tether(&["apply", "--auto-approve", "--no-jobs"])
        .expect_code(0);
    let s3 = moto.s3("us-east-1");
    let docs = ["alpha beta gamma\n", "one two\nthree four five\n", "six\n"];
    for (i, text) in docs.iter().enumerate() {
        support::put_object(&s3, "lab-data", &format!("docs/{i}.txt"), text);
    }

    // moto's children "succeed" without running anything, so no share has a result.
    let run = moto.tether(&["run", "count"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("share 0 wrote no result")
            && run.stderr.contains("share 1 wrote no result"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("count: Batch job")
            && run.stderr.contains("count: uploading ")
            && run.stderr.contains(" MiB to s3://lab-data"),
        "progress, and the upload of tether's build: {}",
        run.stderr
    );

    // What was submitted: one array job of two children, tether's agent as the command, its
    // data in the environment, and the definition's active revision.
    let batch = moto.batch();
    let job = block_on(async {
        let listed = batch
            .list_jobs()
            .job_queue("lab-queue")
            .send()
            .await
            .expect("list");
        let id = listed
            .job_summary_list()
            .iter()
            .find(|j| j.job_name() == Some("tether-batch-lab-count"))
            .and_then(|j| j.job_id())
            .expect("submitted")
            .to_string();
        batch
            .describe_jobs()
            .jobs(id)
            .send()
            .await
            .expect("describe")
            .jobs()
            .first()
            .cloned()
            .expect("the job")
    });
    assert_eq!(job.array_properties().and_then(|a| a.size()), Some(2));
    assert!(job
        .job_definition()
        .is_some_and(|d| d.ends_with("job-definition/count:1")));
    let container = job.container().expect("container");
    let command = container.command();
    assert_eq!(command[..2], ["sh", "-c"]);
    assert!(
        command[2].contains("agent --batch \"$TETHER_STAGE\""),
        "{command:?}"
    );
    let env: std::collections::BTreeMap<String, String> = container
        .environment()
        .iter()
        .filter_map(|kv| Some((kv.name()?.to_string(), kv.value()?.to_string())))
        .collect();
    let stage = env.get("TETHER_STAGE").expect("the stage").clone();
    assert!(
        stage.starts_with("s3://lab-data/.tether/batch-lab/count/"),
        "{stage}"
    );
    assert!(env.contains_key("TETHER_BINARY_OBJECT"));
    assert!(
        !env.keys()
            .any(|k| k.contains("SECRET") || k.contains("ACCESS_KEY")),
        "no credentials: {env:?}"
    );

    assert_eq!(
        env.get("TETHER_BINARY_SHA256").map(String::len),
        Some(64),
        "children check what they fetch: {env:?}"
    );
    assert!(
        !env.contains_key("TETHER_BINARY_URL"),
        "no URL signed with the operator's session: {env:?}"
    );
    // The container credentials endpoint ECS gives every container, answering with the job
    // role's (here: moto's dummy) credentials, which the child signs its fetch with.
    let credentials = support::http::serve(|_| {
        support::http::Response::json(
            200,
            &serde_json::json!({
                "AccessKeyId": "testing",
                "SecretAccessKey": "testing",
                "Token": "session-token",
                "Expiration": "2099-01-01T00:00:00Z",
                "RoleArn": "arn:aws:iam::123456789012:role/jobs"
            }),
        )
    });
    let mut env = env;
    env.insert(
        "AWS_CONTAINER_CREDENTIALS_FULL_URI".into(),
        format!("http://127.0.0.1:{credentials}/v2/credentials/job"),
    );

    // Regression: children ran whatever sat in the stage. A share or a binary replaced
    // there (anyone who may write the bucket could) is refused before anything runs.
    let child = |index: usize| {
        std::process::Command::new(&command[0])
            .args(&command[1..])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(&env)
            .env("AWS_BATCH_JOB_ARRAY_INDEX", index.to_string())
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .output()
            .expect("the child's command")
    };
    let share_key = format!("{}share-0.json", stage.trim_start_matches("s3://lab-data/"));
    let share = support::get_object(&s3, "lab-data", &share_key).expect("the share");
    support::put_object(
        &s3,
        "lab-data",
        &share_key,
        "{\"job\": \"count\", \"inputs\": []}",
    );
    let refused = child(0);
    assert!(
        !refused.status.success()
            && String::from_utf8_lossy(&refused.stderr)
                .contains("the staged `share-0.json` is not what this job was submitted with"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    support::put_object(
        &s3,
        "lab-data",
        &share_key,
        &String::from_utf8(share).expect("UTF-8"),
    );
    let binary_key = format!(
        ".tether/batch-lab/bin/tether-{}.gz",
        &env["TETHER_BINARY_SHA256"][..16]
    );
    let binary = support::get_object(&s3, "lab-data", &binary_key).expect("the binary");
    let build = std::fs::metadata(env!("CARGO_BIN_EXE_tether"))
        .expect("tether")
        .len();
    assert!(
        (binary.len() as u64) < build * 3 / 4,
        "the staged build is gzipped: {} bytes of {build}",
        binary.len()
    );
    support::put_object(&s3, "lab-data", &binary_key, "#!/bin/sh\ntouch PWNED\n");
    let refused = child(0);
    assert!(
        !refused.status.success()
            && String::from_utf8_lossy(&refused.stderr).contains("refusing to run it"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(!std::path::Path::new("PWNED").exists());
    block_on(async {
        s3.put_object()
            .bucket("lab-data")
            .key(&binary_key)
            .content_encoding("gzip")
            .body(binary.into())
            .send()
            .await
            .expect("restore the binary")
    });

    // The worker side without Batch: each child's exact command, run here with its index
    // against moto's S3, with the job role's credentials from the container credentials
    // endpoint, as ECS gives them. The first child runs twice, as after a spot reclaim:
    // its result is the same.
    for index in [0, 1, 0] {
        let output = child(index);
        assert!(
            output.status.success(),
            "child {index}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    let status = moto.tether(&["run", "--status"]).expect_code(0);
    assert!(
        status
            .stdout
            .contains("count on Batch queue lab-queue: job ")
            && status.stdout.contains(" succeeded"),
        "{}",
        status.stdout
    );

    // Following the submitted job again merges what the children wrote.
    let attach = moto.tether(&["run", "count", "--attach"]);
    assert_eq!(attach.code, 0, "{}", attach.stderr);
    assert!(
        attach.stderr.contains("ran as Batch job")
            && !attach.stderr.contains("succeeded on attempt")
            && !attach.stderr.contains("cannot tell which shares"),
        "no retried share here, and the children's attempts were read: {}",
        attach.stderr
    );
    let summary = written_summary(&s3);
    assert_eq!(
        summary["total"],
        docs.iter().map(|d| support::words(d)).sum::<u64>()
    );
    assert_eq!(summary["tasks"].as_array().map(Vec::len), Some(3));

    // The collected run's stage keeps only its merged tasks; following the job again
    // still finds them, and writes the same summary.
    let prefix = stage.trim_start_matches("s3://lab-data/").to_string();
    let left: Vec<String> = block_on(async {
        s3.list_objects_v2()
            .bucket("lab-data")
            .prefix(&prefix)
            .send()
            .await
            .expect("list the stage")
            .contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_string))
            .collect()
    });
    assert_eq!(left, [format!("{prefix}merged.json")]);
    let again = moto.tether(&["run", "count", "--attach"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    let summary = written_summary(&s3);
    assert_eq!(
        summary["total"],
        docs.iter().map(|d| support::words(d)).sum::<u64>()
    );
}

#[test]
fn a_batch_job_on_an_undeclared_queue_or_too_many_shares_is_refused_at_its_line() {
    let moto = Moto::start();
    moto.write(
        "tether.yaml",
        &format!(
            "{SPEC}jobs:\n  count:\n    run_on: {{batch: nowhere, definition: count, shares: 20000}}\n    inputs: ./docs/*.txt\n    builtin: word_count\n"
        ),
    );
    moto.tether(&["validate"])
        .expect_code(1)
        .expect_stderr("job `count` runs on Batch queue `nowhere`, which is not declared")
        .expect_stderr("`shares` is 1 to 10000")
        .expect_stderr("a Batch job reads its inputs from S3");
}

// The bundled example is a complete lab: it stays valid and applies against moto (the
// job itself is left out: its bucket is empty here).
#[test]
fn the_bundled_batch_example_applies_and_converges() {
    let moto = Moto::start();
    let spec = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/batch/tether.yaml"),
    )
    .expect("the example");
    moto.write("tether.yaml", &spec);
    moto.tether(&["validate"]).expect_code(0);
    let plan = moto.tether(&["plan", "--json"]).expect_code(0);
    // The job role's grant covers the job's inputs, its output prefix, its stage, and
    // tether's build, which children fetch as the job role.
    assert!(
        plan.stdout.contains("arn:aws:s3:::batch-lab-docs/docs/*")
            && plan
                .stdout
                .contains("arn:aws:s3:::batch-lab-docs/.tether/batch-lab/count-words/*")
            && plan
                .stdout
                .contains("arn:aws:s3:::batch-lab-docs/.tether/batch-lab/bin/*"),
        "{}",
        plan.stdout
    );
    moto.tether(&["apply", "--auto-approve", "--no-jobs"])
        .expect_code(0);
    moto.tether(&["plan", "--detailed-exitcode"]).expect_code(0);
    moto.tether(&["destroy", "--auto-approve"]).expect_code(0);
}

#[test]
fn failed_children_are_named_with_batchs_reason_and_log_stream() {
    // moto's no-Docker Batch fails every job at once under MOTO_SIMPLE_BATCH_FAIL_AFTER=0.
    let moto = Moto::start_with_env(&[("MOTO_SIMPLE_BATCH_FAIL_AFTER", "0")]);
    batch_without_docker(&moto);
    moto.write("tether.yaml", &format!("{SPEC}{JOB}"));
    moto.tether(&["apply", "--auto-approve", "--no-jobs"])
        .expect_code(0);
    let s3 = moto.s3("us-east-1");
    for i in 0..3 {
        support::put_object(&s3, "lab-data", &format!("docs/{i}.txt"), "a b\n");
    }
    let run = moto.tether(&["run", "count"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("(FAILED): share 0 failed (")
            && run.stderr.contains("share 1 failed (")
            && run.stderr.contains("log stream "),
        "{}",
        run.stderr
    );
    assert!(
        support::get_object(&s3, "lab-data", "results/count.json").is_none(),
        "no summary of a job that failed is written as if it had run"
    );
}

// Regression: with `public_read: true` on a Batch job's input bucket, the staged spec,
// shares and results were readable by anyone.
#[test]
fn a_batch_job_never_stages_in_a_bucket_the_public_may_read() {
    let moto = Moto::start();
    batch_without_docker(&moto);
    let spec = format!("{SPEC}{JOB}").replace(
        "lab-data: {force_destroy: true}",
        "lab-data: {force_destroy: true, public_read: true}",
    );
    moto.write("tether.yaml", &spec);
    moto.tether(&["apply", "--auto-approve", "--no-jobs"])
        .expect_code(0);
    let s3 = moto.s3("us-east-1");
    support::put_object(&s3, "lab-data", "docs/a.txt", "one two\n");
    moto.tether(&["run", "count"])
        .expect_code(1)
        .expect_stderr("whose policy lets anyone read it");
    let staged = block_on(async {
        s3.list_objects_v2()
            .bucket("lab-data")
            .prefix(".tether/")
            .send()
            .await
            .expect("list")
    });
    assert!(staged.contents().is_empty(), "nothing was staged");
}

/// `--resume` reaches every child in its share (the agent then does what it does on an
/// instance: skips the tasks whose outputs carry this job's record).
#[test]
fn a_resumed_batch_run_tells_its_children_to_resume() {
    let moto = Moto::start();
    batch_without_docker(&moto);
    moto.write("tether.yaml", &format!("{SPEC}{JOB}"));
    moto.tether(&["apply", "--auto-approve", "--no-jobs"])
        .expect_code(0);
    let s3 = moto.s3("us-east-1");
    support::put_object(&s3, "lab-data", "docs/0.txt", "alpha beta\n");
    // moto's children run nothing, so the run fails; its stage stays to be read.
    moto.tether(&["run", "count", "--resume"]).expect_code(1);
    let shares: Vec<serde_json::Value> = block_on(async {
        let listed = s3
            .list_objects_v2()
            .bucket("lab-data")
            .prefix(".tether/batch-lab/count/")
            .send()
            .await
            .expect("list the stage");
        listed
            .contents()
            .iter()
            .filter_map(|o| o.key())
            .filter(|key| key.ends_with(".json") && key.contains("/share-"))
            .map(str::to_string)
            .collect::<Vec<_>>()
    })
    .into_iter()
    .map(|key| {
        serde_json::from_slice(&support::get_object(&s3, "lab-data", &key).expect("share"))
            .expect("a share")
    })
    .collect();
    assert!(!shares.is_empty(), "the stage holds the shares");
    for share in shares {
        assert_eq!(share["resume"], true, "{share}");
    }
}
