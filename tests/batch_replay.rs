//! What moto's Batch cannot show, replayed: a scripted loopback server answers Batch's
//! REST-JSON calls (jobs stuck in `RUNNABLE`, a compute environment gone `INVALID`, a child
//! retried after a spot reclaim, a run interrupted by Ctrl-C) while moto serves S3, and the
//! real `tether` binary is checked for what it reports and what it calls.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::http::{self, Request, Response};
use support::Moto;

const ACCOUNT: &str = "arn:aws:batch:us-east-1:123456789012";
const JOB_ID: &str = "job-1";

/// The spec: the Batch resources only need to be declared (nothing here applies them); the
/// job's image carries tether, so children run `tether agent --batch STAGE`.
const SPEC: &str = "\
project: replay
region: us-east-1
security_groups:
  batch-workers:
    description: Batch workers (egress only)
iam:
  roles:
    batch-instance: {assumed_by: ec2.amazonaws.com}
    batch-job: {assumed_by: ecs-tasks.amazonaws.com}
batch:
  compute_environments:
    lab-spot:
      type: SPOT
      max_vcpus: 16
      instance_types: [m5.large]
      security_groups: [batch-workers]
      instance_role: batch-instance
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
buckets:
  lab-data: {force_destroy: true}
jobs:
  count:
    run_on: {batch: lab-queue, definition: count, shares: 2, tether_in_image: true}
    inputs: s3://lab-data/docs/
    builtin: word_count
    output: s3://lab-data/results/count.json
";

const DOCS: [&str; 3] = ["alpha beta gamma\n", "one two\nthree four five\n", "six\n"];

/// What the scripted Batch says of the array job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Runnable,
    Running,
    /// Succeeded, child 1 on its second attempt after a spot reclaim.
    Succeeded,
}

/// The scripted Batch: its answers depend on `phase` and `environment`; it records what
/// tether submitted and terminated, and any call it does not know.
struct Batch {
    phase: Phase,
    /// The compute environment's status: `VALID` or `INVALID`.
    environment: &'static str,
    /// The job's `createdAt`, milliseconds since the epoch.
    created: i64,
    submitted: Option<Value>,
    /// Stands in for the job's environment when nothing was submitted (a job found by
    /// `--attach`, submitted by someone else).
    foreign_environment: Option<Value>,
    terminated: Vec<Value>,
    unknown: Vec<String>,
}

/// Batch's refusal of a call the script does not know, which is noted for the test to
/// check (tether made a call nobody expected).
fn not_scripted(unknown: &mut Vec<String>, request: &Request) -> Response {
    unknown.push(request.line.clone());
    Response::json(
        400,
        &json!({"__type": "ClientException", "message": "not scripted"}),
    )
}

const RECLAIMED: &str = "Host EC2 (instance i-0123456789abcdef0) terminated.";

fn now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis(),
    )
    .expect("milliseconds")
}

impl Batch {
    fn answer(&mut self, request: &Request) -> Response {
        let path = request
            .line
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_string();
        let body = request.json();
        let answer = match path.as_str() {
            "/v1/submitjob" => {
                self.submitted = Some(body);
                json!({"jobArn": format!("{ACCOUNT}:job/{JOB_ID}"), "jobName": "tether-replay-count", "jobId": JOB_ID})
            }
            "/v1/terminatejob" => {
                self.terminated.push(body);
                json!({})
            }
            "/v1/describejobs" => {
                let ids = body["jobs"].as_array().cloned().unwrap_or_default();
                let jobs: Vec<Value> = ids
                    .iter()
                    .filter_map(Value::as_str)
                    .map(|id| self.job(id))
                    .collect();
                json!({ "jobs": jobs })
            }
            "/v1/listjobs" => {
                let summaries: Vec<Value> = if body["arrayJobId"].is_string() {
                    let wanted = body["jobStatus"].as_str().unwrap_or("RUNNING");
                    let status = if self.phase == Phase::Succeeded {
                        "SUCCEEDED"
                    } else {
                        "RUNNING"
                    };
                    if wanted == status {
                        (0..2)
                            .map(|i| json!({"jobId": format!("{JOB_ID}:{i}"), "jobName": "tether-replay-count", "status": status, "arrayProperties": {"index": i}}))
                            .collect()
                    } else {
                        Vec::new()
                    }
                } else {
                    vec![
                        json!({"jobId": JOB_ID, "jobName": "tether-replay-count", "createdAt": self.created, "status": self.status(), "arrayProperties": {"size": 2}}),
                    ]
                };
                json!({ "jobSummaryList": summaries })
            }
            "/v1/describejobqueues" => json!({"jobQueues": [{
                "jobQueueName": "lab-queue",
                "jobQueueArn": format!("{ACCOUNT}:job-queue/lab-queue"),
                "state": "ENABLED",
                "status": "VALID",
                "priority": 5,
                "computeEnvironmentOrder": [{"order": 1, "computeEnvironment": format!("{ACCOUNT}:compute-environment/lab-spot")}]
            }]}),
            "/v1/describecomputeenvironments" => {
                let mut environment = json!({
                    "computeEnvironmentName": "lab-spot",
                    "computeEnvironmentArn": format!("{ACCOUNT}:compute-environment/lab-spot"),
                    "type": "MANAGED",
                    "state": "ENABLED",
                    "status": self.environment,
                    "computeResources": {"type": "SPOT", "minvCpus": 0, "maxvCpus": 16, "instanceTypes": ["m5.large"], "subnets": ["subnet-1"], "securityGroupIds": ["sg-1"]}
                });
                if self.environment == "INVALID" {
                    // A reason carrying a terminal escape (a window title): text from the
                    // account must reach the terminal inert.
                    environment["statusReason"] = json!(
                        "CLIENT_ERROR - \u{1b}]0;pwned\u{7}The instance role is not an instance profile"
                    );
                }
                json!({ "computeEnvironments": [environment] })
            }
            _ => return not_scripted(&mut self.unknown, request),
        };
        Response::json(200, &answer)
    }

    fn status(&self) -> &'static str {
        match self.phase {
            Phase::Runnable => "RUNNABLE",
            Phase::Running => "RUNNING",
            Phase::Succeeded => "SUCCEEDED",
        }
    }

    /// The parent (`job-1`) or a child (`job-1:<index>`) as DescribeJobs gives it.
    fn job(&self, id: &str) -> Value {
        let submitted = self.submitted.clone().unwrap_or_else(|| {
            json!({"containerOverrides": {"command": ["tether"], "environment": self.foreign_environment.clone()}})
        });
        let overrides = &submitted["containerOverrides"];
        let mut job = json!({
            "jobId": id,
            "jobName": "tether-replay-count",
            "jobArn": format!("{ACCOUNT}:job/{id}"),
            "jobQueue": format!("{ACCOUNT}:job-queue/lab-queue"),
            "jobDefinition": format!("{ACCOUNT}:job-definition/count:1"),
            "status": self.status(),
            "createdAt": self.created,
            "startedAt": self.created,
            "retryStrategy": {"attempts": 3},
            "dependsOn": [],
            "parameters": {},
            "container": {
                "command": overrides["command"].clone(),
                "environment": overrides["environment"].clone(),
            },
        });
        if let Some((_, index)) = id.split_once(':') {
            let index: i32 = index.parse().expect("child index");
            job["arrayProperties"] = json!({"index": index});
            let done = json!({"container": {"exitCode": 0, "logStreamName": format!("count/default/{index}")}, "statusReason": "Essential container in task exited"});
            job["attempts"] = if index == 1 {
                json!([{"container": {"logStreamName": "count/default/reclaimed"}, "statusReason": RECLAIMED}, done])
            } else {
                json!([done])
            };
        } else {
            let summary = match self.phase {
                Phase::Runnable => json!({"RUNNABLE": 2}),
                Phase::Running => json!({"RUNNING": 2}),
                Phase::Succeeded => json!({"SUCCEEDED": 2}),
            };
            job["arrayProperties"] = json!({"size": 2, "statusSummary": summary});
        }
        job
    }
}

/// moto's environment, with Batch's calls sent to a scripted server answering with
/// `answer` instead.
fn with_scripted_batch(
    moto: &Moto,
    answer: impl Fn(&Request) -> Response + Send + 'static,
) -> Vec<(String, String)> {
    let port = http::serve(answer);
    let mut env = moto.env();
    env.push((
        "AWS_ENDPOINT_URL_BATCH".into(),
        format!("http://127.0.0.1:{port}"),
    ));
    env
}

/// moto (for S3, with the inputs in place), the scripted Batch, and the environment that
/// sends Batch's calls to the script and everything else to moto.
struct Lab {
    moto: Moto,
    batch: Arc<Mutex<Batch>>,
    env: Vec<(String, String)>,
}

fn lab(phase: Phase, environment: &'static str, created: i64) -> Lab {
    let moto = Moto::start();
    moto.write("tether.yaml", SPEC);
    let s3 = moto.s3("us-east-1");
    support::create_bucket(&s3, "lab-data");
    for (i, text) in DOCS.iter().enumerate() {
        support::put_object(&s3, "lab-data", &format!("docs/{i}.txt"), text);
    }
    let batch = Arc::new(Mutex::new(Batch {
        phase,
        environment,
        created,
        submitted: None,
        foreign_environment: None,
        terminated: Vec::new(),
        unknown: Vec::new(),
    }));
    let script = Arc::clone(&batch);
    let env = with_scripted_batch(&moto, move |request| {
        script.lock().expect("script").answer(request)
    });
    Lab { moto, batch, env }
}

/// A running `tether` whose standard error is collected as it comes.
struct Running {
    child: Child,
    stderr: Arc<Mutex<String>>,
}

impl Lab {
    fn spawn(&self, args: &[&str]) -> Running {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tether"))
            .args(args)
            .current_dir(self.moto.dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(self.env.iter().cloned())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tether");
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&stderr);
        let pipe = child.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let mut text = sink.lock().expect("stderr");
                text.push_str(&line);
                text.push('\n');
            }
        });
        Running { child, stderr }
    }

    /// Runs children `indexes` here as Batch would run them: the submitted command, with
    /// the submitted environment and each child's index, against moto's S3.
    fn run_children(&self, indexes: &[i32]) -> Vec<(i32, std::process::Output)> {
        let (command, environment) = {
            let script = self.script();
            let overrides = &script.submitted.as_ref().expect("submitted")["containerOverrides"];
            let command: Vec<String> = serde_json::from_value(overrides["command"].clone())
                .expect("the command is a list of words");
            let environment: Vec<(String, String)> = overrides["environment"]
                .as_array()
                .expect("environment")
                .iter()
                .map(|kv| {
                    (
                        kv["name"].as_str().expect("name").to_string(),
                        kv["value"].as_str().expect("value").to_string(),
                    )
                })
                .collect();
            (command, environment)
        };
        assert_eq!(command[..3], ["tether", "agent", "--batch"]);
        indexes
            .iter()
            .map(|index| {
                let output = Command::new(env!("CARGO_BIN_EXE_tether"))
                    .args(&command[1..])
                    .env_clear()
                    .env("PATH", std::env::var("PATH").unwrap_or_default())
                    .envs(self.moto.env())
                    .envs(environment.iter().cloned())
                    .env("AWS_BATCH_JOB_ARRAY_INDEX", index.to_string())
                    .output()
                    .expect("a child");
                (*index, output)
            })
            .collect()
    }

    fn script(&self) -> std::sync::MutexGuard<'_, Batch> {
        self.batch.lock().expect("script")
    }
}

impl Running {
    /// Waits until standard error holds `text`.
    #[track_caller]
    fn wait_for(&self, text: &str) {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(60) {
            if self.stderr.lock().expect("stderr").contains(text) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "tether never said {text:?}\n--- stderr\n{}",
            self.stderr.lock().expect("stderr")
        );
    }

    fn interrupt(&self) {
        self.signal("-INT");
    }

    /// Sends `signal` (`-TERM`) to the run.
    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Waits for the exit; returns its code and standard error.
    fn finish(mut self) -> (i32, String) {
        let status = self.child.wait().expect("wait for tether");
        // The reader thread ends with the pipe.
        std::thread::sleep(Duration::from_millis(100));
        let stderr = self.stderr.lock().expect("stderr").clone();
        (status.code().unwrap_or(-1), stderr)
    }
}

/// Runs the job, ends the run with `signal` once its array job runs, and checks the run
/// exits with `code` after terminating that job with a reason naming `name`.
fn signal_terminates_the_submitted_job(signal: &str, code: i32, name: &str) -> Lab {
    let lab = lab(Phase::Running, "VALID", now_ms());
    let run = lab.spawn(&["run", "count"]);
    run.wait_for("count: Batch job job-1: running");
    run.signal(signal);
    let (exit, stderr) = run.finish();
    assert_eq!(exit, code, "{stderr}");
    assert!(
        stderr.contains("count: terminated Batch job job-1"),
        "{stderr}"
    );
    {
        let script = lab.script();
        assert_eq!(
            script.terminated,
            [json!({"jobId": JOB_ID, "reason": format!("tether run was interrupted ({name})")})]
        );
        assert!(script.unknown.is_empty(), "{:?}", script.unknown);
    }
    lab
}

#[test]
fn ctrl_c_terminates_the_array_job_this_run_submitted_but_not_one_it_only_follows() {
    let lab = signal_terminates_the_submitted_job("-INT", 130, "Ctrl-C");

    // Following the job from elsewhere and interrupting leaves it to its submitter.
    let attach = lab.spawn(&["run", "count", "--attach"]);
    attach.wait_for("count: Batch job job-1: running");
    attach.interrupt();
    let (code, stderr) = attach.finish();
    assert_eq!(code, 130, "{stderr}");
    assert!(!stderr.contains("terminated"), "{stderr}");
    assert_eq!(lab.script().terminated.len(), 1, "no second TerminateJob");
}

// Regression: SIGTERM (a CI runner cancelling the job) left the submitted array job
// running on Batch, and the lock held; only Ctrl-C cleaned up.
#[test]
fn sigterm_terminates_the_array_job_this_run_submitted_as_ctrl_c_does() {
    signal_terminates_the_submitted_job("-TERM", 143, "SIGTERM");
}

#[test]
fn a_job_stuck_on_an_invalid_compute_environment_fails_with_batchs_reason_and_stays_queued() {
    let lab = lab(Phase::Runnable, "INVALID", now_ms());
    let (code, stderr) = lab.spawn(&["run", "count"]).finish();
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("Batch job job-1 cannot start: no compute environment of queue `lab-queue` can run it: `lab-spot` is INVALID (CLIENT_ERROR - \\x1b]0;pwned\\x07The instance role is not an instance profile)"),
        "{stderr}"
    );
    assert!(
        !stderr.contains('\u{1b}') && !stderr.contains('\u{7}'),
        "no control character reaches the terminal: {stderr:?}"
    );
    assert!(
        stderr.contains("It stays queued") && stderr.contains("tether run --attach"),
        "{stderr}"
    );
    let script = lab.script();
    assert!(script.submitted.is_some());
    assert!(
        script.terminated.is_empty(),
        "a queued job is the operator's to end"
    );
    assert!(script.unknown.is_empty(), "{:?}", script.unknown);
}

#[test]
fn a_long_wait_in_runnable_is_explained_and_a_share_retried_after_a_spot_reclaim_is_named() {
    // Created 20 minutes ago: tether explains the wait at its first look.
    let lab = lab(Phase::Runnable, "VALID", now_ms() - 20 * 60 * 1000);
    let run = lab.spawn(&["run", "count"]);
    run.wait_for("2 children RUNNABLE for 20m on healthy environments (`lab-spot` SPOT, at most 16 vCPUs of m5.large)");

    // Child 1 runs twice: its first attempt is taken to have been reclaimed.
    for (index, output) in lab.run_children(&[0, 1, 1]) {
        assert!(
            output.status.success(),
            "child {index}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    lab.script().phase = Phase::Succeeded;

    let (code, stderr) = run.finish();
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "count: share 1 succeeded on attempt 2 (attempt 1: {RECLAIMED})"
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("share 0 succeeded on attempt"), "{stderr}");
    let summary: Value = serde_json::from_slice(
        &support::get_object(&lab.moto.s3("us-east-1"), "lab-data", "results/count.json")
            .expect("the summary"),
    )
    .expect("JSON");
    assert_eq!(
        summary["total"],
        DOCS.iter().map(|d| support::words(d)).sum::<u64>()
    );
    let script = lab.script();
    assert!(script.terminated.is_empty());
    assert!(script.unknown.is_empty(), "{:?}", script.unknown);
}

#[test]
fn a_job_whose_stage_is_not_this_jobs_is_neither_read_nor_tidied() {
    // Someone allowed to submit jobs names a stage outside this job's runs.
    let lab = lab(Phase::Succeeded, "VALID", now_ms());
    let s3 = lab.moto.s3("us-east-1");
    for key in [
        "important/spec.yaml",
        "important/result-0.json",
        "important/share-0.json",
    ] {
        support::put_object(&s3, "lab-data", key, "keep me");
    }
    lab.script().foreign_environment = Some(json!([
        {"name": "TETHER_STAGE", "value": "s3://lab-data/important/"}
    ]));
    let (code, stderr) = lab.spawn(&["run", "count", "--attach"]).finish();
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains(
            "names no stage of this job's runs (under s3://lab-data/.tether/replay/count/)"
        ),
        "{stderr}"
    );
    for key in [
        "important/spec.yaml",
        "important/result-0.json",
        "important/share-0.json",
    ] {
        assert_eq!(
            support::get_object(&s3, "lab-data", key).as_deref(),
            Some(&b"keep me"[..]),
            "{key} is untouched"
        );
    }
    assert!(support::get_object(&s3, "lab-data", "results/count.json").is_none());
}

/// A compute environment as the scripted Batch keeps it: what tether created, changed since
/// by hand or by tether's own updates.
struct Environments {
    /// The create request's body, updated in place; `None` until created.
    created: Option<Value>,
    /// Describe calls that still answer `UPDATING` after an update.
    updating: u32,
    updates: Vec<Value>,
    unknown: Vec<String>,
}

impl Environments {
    fn answer(&mut self, request: &Request) -> Response {
        let path = request.line.split_whitespace().nth(1).unwrap_or_default();
        let body = request.json();
        let arn = format!("{ACCOUNT}:compute-environment/lab-spot");
        let answer = match path {
            "/v1/createcomputeenvironment" => {
                self.created = Some(body);
                json!({"computeEnvironmentName": "lab-spot", "computeEnvironmentArn": arn})
            }
            "/v1/updatecomputeenvironment" => {
                let created = self.created.as_mut().expect("updated after created");
                for (key, value) in body["computeResources"].as_object().into_iter().flatten() {
                    created["computeResources"][key] = value.clone();
                }
                self.updating = 1;
                self.updates.push(body);
                json!({"computeEnvironmentName": "lab-spot", "computeEnvironmentArn": arn})
            }
            "/v1/describecomputeenvironments" => match &self.created {
                None => json!({"computeEnvironments": []}),
                Some(created) => {
                    let status = if self.updating > 0 {
                        self.updating -= 1;
                        "UPDATING"
                    } else {
                        "VALID"
                    };
                    json!({"computeEnvironments": [{
                        "computeEnvironmentName": "lab-spot",
                        "computeEnvironmentArn": arn,
                        "type": "MANAGED",
                        "state": "ENABLED",
                        "status": status,
                        "computeResources": created["computeResources"].clone(),
                        "tags": created["tags"].clone(),
                    }]})
                }
            },
            "/v1/describejobqueues" => json!({"jobQueues": []}),
            "/v1/describejobdefinitions" => json!({"jobDefinitions": []}),
            _ => return not_scripted(&mut self.unknown, request),
        };
        Response::json(200, &answer)
    }
}

#[test]
fn a_compute_environment_changed_by_hand_is_planned_and_updated_in_place() {
    // moto ignores updates to an environment's resources; the scripted Batch keeps them.
    let moto = Moto::start();
    moto.write(
        "tether.yaml",
        "project: replay-ce
region: us-east-1
security_groups:
  batch-workers: {description: Batch workers}
iam:
  roles:
    batch-instance: {assumed_by: ec2.amazonaws.com}
batch:
  compute_environments:
    lab-spot:
      type: SPOT
      max_vcpus: 16
      instance_types: [m5.large]
      security_groups: [batch-workers]
      instance_role: batch-instance
",
    );
    let environments = Arc::new(Mutex::new(Environments {
        created: None,
        updating: 0,
        updates: Vec::new(),
        unknown: Vec::new(),
    }));
    let script = Arc::clone(&environments);
    let env = with_scripted_batch(&moto, move |request| {
        script.lock().expect("script").answer(request)
    });
    let tether = |args: &[&str]| support::run_tether(moto.dir.path(), &env, args);

    tether(&["apply", "--auto-approve"]).expect_code(0);
    tether(&["plan", "--detailed-exitcode"]).expect_code(0);

    // Someone halves the environment's vCPUs in the console.
    environments
        .lock()
        .expect("script")
        .created
        .as_mut()
        .expect("created")["computeResources"]["maxvCpus"] = json!(8);
    tether(&["plan", "--detailed-exitcode"])
        .expect_code(2)
        .expect_stderr("~ batch_compute_environment.lab-spot")
        .expect_stderr("max_vcpus");
    tether(&["apply", "--auto-approve"]).expect_code(0);
    {
        let environments = environments.lock().expect("script");
        assert_eq!(environments.updates.len(), 1, "{:?}", environments.updates);
        let update = &environments.updates[0];
        assert_eq!(update["computeEnvironment"], "lab-spot");
        assert_eq!(update["computeResources"]["maxvCpus"], 16);
        assert!(
            environments.unknown.is_empty(),
            "{:?}",
            environments.unknown
        );
    }
    // The update waited through UPDATING; the account now matches the spec.
    tether(&["plan", "--detailed-exitcode"]).expect_code(0);
}

/// Puts `lines` (stream, milliseconds after `start`, message) in Batch's log group on moto,
/// as Batch's log driver would.
fn log_lines(lab: &Lab, start: i64, lines: &[(&str, i64, &str)]) {
    let logs = lab.moto.logs();
    support::block_on(async {
        let _ = logs
            .create_log_group()
            .log_group_name("/aws/batch/job")
            .send()
            .await;
        for (stream, at, message) in lines {
            let _ = logs
                .create_log_stream()
                .log_group_name("/aws/batch/job")
                .log_stream_name(*stream)
                .send()
                .await;
            logs.put_log_events()
                .log_group_name("/aws/batch/job")
                .log_stream_name(*stream)
                .log_events(
                    aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                        .timestamp(start + at)
                        .message(*message)
                        .build()
                        .expect("an event"),
                )
                .send()
                .await
                .expect("PutLogEvents");
        }
    });
}

#[test]
fn a_batch_jobs_logs_interleave_its_childrens_streams_by_time_and_follow_it_to_its_end() {
    let lab = lab(Phase::Running, "VALID", now_ms());
    let start = now_ms() - 60_000;
    log_lines(
        &lab,
        start,
        &[
            ("count/default/reclaimed", 0, "starting share 1"),
            ("count/default/0", 1, "starting share 0"),
            (
                "count/default/1",
                2,
                "task docs/1.txt: boom \u{1b}]0;title\u{7}",
            ),
            ("count/default/0", 3, "done"),
            // Another job's container in the same group is not this job's.
            ("other/default/9", 4, "not ours"),
        ],
    );
    let logs = |more: &[&str]| {
        let args: Vec<&str> = ["logs", "count"].iter().chain(more).copied().collect();
        let run = support::run_tether(lab.moto.dir.path(), &lab.env, &args);
        assert_eq!(run.code, 0, "{}", run.stderr);
        run.stdout
    };
    let all = logs(&[]);
    assert_eq!(
        all,
        "[child 1] starting share 1\n[child 0] starting share 0\n[child 1, attempt 2] task docs/1.txt: boom \\x1b]0;title\\x07\n[child 0] done\n"
    );
    assert_eq!(
        logs(&["--child", "0"]),
        "[child 0] starting share 0\n[child 0] done\n"
    );
    assert_eq!(
        logs(&["--task", "docs/1.txt"]),
        "[child 1, attempt 2 docs/1.txt] boom \\x1b]0;title\\x07\n"
    );

    // Followed: a line written while it runs shows once, and the follower ends with the job.
    let mut env = lab.env.clone();
    env.push(("TETHER_TEST_LOGS_POLL_MS".into(), "100".into()));
    let follower = support::spawn_tether(lab.moto.dir.path(), &env, &["logs", "count", "--follow"]);
    std::thread::sleep(Duration::from_millis(700));
    // One line is new, and one reached the logs late: stamped before the newest seen.
    log_lines(
        &lab,
        start,
        &[
            ("count/default/1", 5, "share 1 done"),
            ("count/default/0", 2, "late line"),
        ],
    );
    std::thread::sleep(Duration::from_millis(700));
    lab.script().phase = Phase::Succeeded;
    let followed = follower.wait_with_output().expect("follower");
    assert_eq!(followed.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&followed.stdout),
        format!("{all}[child 0] late line\n[child 1, attempt 2] share 1 done\n")
    );
    assert!(
        lab.script().unknown.is_empty(),
        "{:?}",
        lab.script().unknown
    );
}

#[test]
fn a_batch_child_writes_its_failed_tasks_logs_where_batch_sends_them() {
    let lab = lab(Phase::Running, "VALID", now_ms());
    // The same lab, with a command that fails on one input, saying why.
    let spec = SPEC.replace(
        "    builtin: word_count\n    output: s3://lab-data/results/count.json\n",
        "    command: \"if grep -q six {input}; then echo no sixes here >&2; exit 4; fi; echo fine >&2\"\n",
    );
    lab.moto.write("tether.yaml", &spec);
    let run = lab.spawn(&["run", "count"]);
    run.wait_for("running: 2 running");
    let children = lab.run_children(&[0, 1]);
    lab.script().phase = Phase::Succeeded;
    // The child whose share held the failing input wrote its log to its stderr (which Batch
    // sends to CloudWatch Logs), each line marked with the task; the other wrote nothing
    // of its tasks, which succeeded.
    let stderr: Vec<String> = children
        .iter()
        .map(|(_, output)| String::from_utf8_lossy(&output.stderr).into_owned())
        .collect();
    let failing: Vec<&String> = stderr
        .iter()
        .filter(|text| text.contains("task s3://lab-data/docs/2.txt: no sixes here"))
        .collect();
    assert_eq!(failing.len(), 1, "{stderr:?}");
    assert!(
        stderr.iter().all(|text| !text.contains("fine")),
        "{stderr:?}"
    );
    let (code, stderr) = run.finish();
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("whole log: tether logs count --task s3://lab-data/docs/2.txt"),
        "{stderr}"
    );
}
