//! End-to-end tests of jobs on instances: moto for the account and S3, real OpenSSH
//! servers on loopback standing in for the instances (the test hook
//! `TETHER_TEST_PUBLIC_IPS` gives the instances their loopback address; everything else is
//! the production path: the alias block, ssh/scp, tmux, the agent reading S3).

mod support;

use serde_json::Value;
use support::{
    apply_job_lab, block_on, env_for, get_object, host, job_spec, project, put_object, run_tether,
    words, Cleanup, Moto, Sshd, USER_SSH_CONFIG,
};

fn instance_states(moto: &Moto) -> Vec<String> {
    block_on(async {
        let out = moto
            .ec2()
            .describe_instances()
            .send()
            .await
            .expect("instances");
        out.reservations()
            .iter()
            .flat_map(|r| r.instances())
            .filter_map(|i| i.state()?.name().map(|n| n.as_str().to_string()))
            .collect()
    })
}

#[test]
fn a_job_runs_in_tmux_on_the_instance_reads_and_writes_s3_and_then_stops_it() {
    let moto = Moto::start();
    let sshd = Sshd::start();
    let project = project("one");
    let _cleanup = Cleanup(project.clone());
    moto.write("ssh-config", USER_SSH_CONFIG);
    moto.write(
        "shout.sh",
        "#!/bin/sh\n# Runs on the instance, next to the uploaded files.\ntr a-z A-Z < \"$1\" > \"$2\"\n",
    );
    let spec = format!(
        "project: {project}
region: us-east-1
buckets:
  lab-data: {{force_destroy: true}}
instances:
  worker:
    ami: ami-1e749f67
    type: t3.micro
ssh:
  config_file: ./ssh-config
  hosts:
{host}jobs:
  word-count:
    run_on: worker
    inputs: s3://lab-data/docs/
    builtin: word_count
    output: s3://lab-data/results/word-count.json
    then: stop
  shout:
    run_on: worker
    upload: [./shout.sh]
    setup: \"touch setup-ran\"
    inputs: s3://lab-data/docs/
    command: \"sh shout.sh {{input}} {{output}}\"
    output: s3://lab-data/shout/
    after: [word-count]
    then: stop
",
        host = host("box", "worker", &sshd)
    );
    moto.write("tether.yaml", &spec);
    let mut env = moto.env();
    env.push(("TETHER_TEST_PUBLIC_IPS".into(), "worker=127.0.0.1".into()));
    // cloud-init's fingerprints on the console vouch for the stand-in's host key.
    env.push((
        "TETHER_TEST_CONSOLE_OUTPUT".into(),
        format!("worker={}", sshd.console_file().display()),
    ));
    let apply = run_tether(
        moto.dir.path(),
        &env,
        &["apply", "--auto-approve", "--no-jobs"],
    );
    assert_eq!(apply.code, 0, "{}", apply.stderr);
    assert!(
        std::fs::read_to_string(moto.dir.path().join("ssh-config"))
            .expect("config")
            .contains(&format!(
                "HostName 127.0.0.1\n    User {}\n    Port {}\n",
                sshd.user, sshd.port
            )),
        "the alias leads to the stand-in"
    );
    let s3 = moto.s3("us-east-1");
    let docs = ["alpha beta gamma\n", "one two\nthree four five\n", ""];
    for (i, text) in docs.iter().enumerate() {
        put_object(&s3, "lab-data", &format!("docs/{i}.txt"), text);
    }

    let run = run_tether(moto.dir.path(), &env, &["run", "--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    // Off a terminal the uploads (tether's build when the instance lacks it, the job's
    // `upload` files) are a plain line.
    assert!(
        run.stderr.contains("shout: uploading ") && run.stderr.contains(" B to worker"),
        "the upload is reported: {}",
        run.stderr
    );
    let summaries: Value = serde_json::from_str(&run.stdout).expect("JSON");
    let stored: Value = serde_json::from_slice(
        &get_object(&s3, "lab-data", "results/word-count.json").expect("summary in S3"),
    )
    .expect("JSON");
    assert_eq!(stored["total"], docs.iter().map(|d| words(d)).sum::<u64>());
    assert_eq!(stored["instances"][0], "worker");
    assert_eq!(stored["stopped"][0], "worker", "the stored summary says so");
    assert_eq!(
        get_object(&s3, "lab-data", "shout/1.txt").expect("an output"),
        b"ONE TWO\nTHREE FOUR FIVE\n"
    );
    let shout = summaries
        .as_array()
        .expect("summaries")
        .iter()
        .find(|s| s["job"] == "shout")
        .expect("shout");
    assert_eq!(shout["stopped"][0], "worker", "{shout}");
    assert_eq!(instance_states(&moto), ["stopped"], "then: stop");
    assert!(
        run.stderr.contains("stopped worker (then: stop)"),
        "{}",
        run.stderr
    );
    let home = std::env::var("HOME").expect("HOME");
    assert!(
        std::path::Path::new(&home)
            .join(".tether")
            .join(&project)
            .join("shout/worker/setup-ran")
            .exists(),
        "setup ran in the job's directory"
    );
}

#[test]
fn a_job_split_over_two_instances_merges_its_counts() {
    let moto = Moto::start();
    let (first, second) = (Sshd::start(), Sshd::start());
    let project = project("two");
    let _cleanup = Cleanup(project.clone());
    moto.write("ssh-config", USER_SSH_CONFIG);
    let spec = format!(
        "project: {project}
region: us-east-1
buckets:
  lab-data: {{force_destroy: true}}
instances:
  worker-1: {{ami: ami-1e749f67, type: t3.micro}}
  worker-2: {{ami: ami-1e749f67, type: t3.micro}}
ssh:
  config_file: ./ssh-config
  hosts:
{one}{two}jobs:
  word-count:
    run_on: [worker-1, worker-2]
    inputs: s3://lab-data/docs/
    builtin: word_count
    output: s3://lab-data/results/word-count.json
",
        one = host("box-1", "worker-1", &first),
        two = host("box-2", "worker-2", &second),
    );
    moto.write("tether.yaml", &spec);
    let mut env = moto.env();
    env.push((
        "TETHER_TEST_PUBLIC_IPS".into(),
        "worker-1=127.0.0.1,worker-2=127.0.0.1".into(),
    ));
    env.push((
        "TETHER_TEST_CONSOLE_OUTPUT".into(),
        format!(
            "worker-1={},worker-2={}",
            first.console_file().display(),
            second.console_file().display()
        ),
    ));
    let apply = run_tether(
        moto.dir.path(),
        &env,
        &["apply", "--auto-approve", "--no-jobs"],
    );
    assert_eq!(apply.code, 0, "{}", apply.stderr);
    let s3 = moto.s3("us-east-1");
    let mut expected = 0;
    for i in 0..6 {
        let text = "word ".repeat(10 * (i + 1));
        expected += words(&text);
        put_object(&s3, "lab-data", &format!("docs/{i}.txt"), &text);
    }
    let run = run_tether(moto.dir.path(), &env, &["run"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let stored: Value = serde_json::from_slice(
        &get_object(&s3, "lab-data", "results/word-count.json").expect("summary in S3"),
    )
    .expect("JSON");
    assert_eq!(stored["total"], expected);
    assert_eq!(stored["tasks"].as_array().map(Vec::len), Some(6));
    // Each server ran a share: its own tmux server holds the finished session's directory.
    for (sshd, instance) in [(&first, "worker-1"), (&second, "worker-2")] {
        let home = std::env::var("HOME").expect("HOME");
        let status = std::path::Path::new(&home)
            .join(".tether")
            .join(&project)
            .join("word-count")
            .join(instance)
            .join("status.json");
        let status: Value =
            serde_json::from_slice(&std::fs::read(&status).expect("status")).expect("JSON");
        assert!(
            status["done"].as_u64().expect("done") >= 1,
            "{instance} ran a share"
        );
        let _ = sshd;
    }
}

#[test]
fn the_share_of_an_instance_that_cannot_be_reached_runs_on_the_others() {
    let moto = Moto::start();
    let alive = Sshd::start();
    let mut gone = Sshd::start();
    let project = project("lost");
    let _cleanup = Cleanup(project.clone());
    let hosts = host("box-1", "worker-1", &alive) + &host("box-2", "worker-2", &gone);
    let env = apply_job_lab(
        &moto,
        &project,
        &["worker-1", "worker-2"],
        &hosts,
        "  word-count:\n    run_on: [worker-1, worker-2]\n    inputs: s3://lab-data/docs/\n    builtin: word_count\n    output: s3://lab-data/results/word-count.json\n",
    );
    let s3 = moto.s3("us-east-1");
    for i in 0..4 {
        put_object(&s3, "lab-data", &format!("docs/{i}.txt"), "a b c\n");
    }
    gone.stop();
    let run = run_tether(moto.dir.path(), &env, &["run", "--ssh-timeout", "4s"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("worker-2 failed") && run.stderr.contains("ran again on worker-1"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("did not answer ssh within"),
        "the unreachable instance's failure says why: {}",
        run.stderr
    );
    let stored: Value = serde_json::from_slice(
        &get_object(&s3, "lab-data", "results/word-count.json").expect("summary"),
    )
    .expect("JSON");
    assert_eq!(stored["total"], 12);
    assert_eq!(stored["tasks"].as_array().map(Vec::len), Some(4));
}

/// The job runs in tmux on the instance: when the tether that started it dies (a closed
/// laptop), the job goes on, and `run --attach` follows it to the end.
#[test]
fn a_job_survives_its_watcher_and_attach_follows_it_to_the_end() {
    let moto = Moto::start();
    let sshd = Sshd::start();
    let project = project("attach");
    let _cleanup = Cleanup(project.clone());
    let env = apply_job_lab(
        &moto,
        &project,
        &["worker"],
        &host("box", "worker", &sshd),
        "  slow:\n    run_on: worker\n    inputs: s3://lab-data/docs/\n    command: \"sleep 3; cp {input} {output}\"\n    parallelism: 1\n    output: s3://lab-data/copies/\n",
    );
    let s3 = moto.s3("us-east-1");
    for i in 0..2 {
        put_object(&s3, "lab-data", &format!("docs/{i}.txt"), "x\n");
    }
    let mut watcher = std::process::Command::new(env!("CARGO_BIN_EXE_tether"))
        .arg("run")
        .current_dir(moto.dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().cloned())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("tether run");
    let home = std::env::var("HOME").expect("HOME");
    let status = std::path::Path::new(&home)
        .join(".tether")
        .join(&project)
        .join("slow/worker/status.json");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !status.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(status.exists(), "the agent started");
    watcher.kill().expect("kill the watcher");
    let _ = watcher.wait();
    let session = format!("tether-{project}-slow");
    let alive = std::process::Command::new("tmux")
        .env("TMUX_TMPDIR", sshd.dir.path().join("tmux"))
        .args(["has-session", "-t", &session])
        .status()
        .expect("tmux");
    assert!(alive.success(), "the job outlives its watcher");

    let status = run_tether(moto.dir.path(), &env, &["run", "--status"]);
    assert_eq!(status.code, 0, "{}", status.stderr);
    assert!(
        status.stdout.contains("slow on worker: running"),
        "{}",
        status.stdout
    );

    let attach = run_tether(moto.dir.path(), &env, &["run", "--attach", "slow"]);
    assert_eq!(attach.code, 0, "{}", attach.stderr);
    assert_eq!(
        get_object(&s3, "lab-data", "copies/1.txt").as_deref(),
        Some(&b"x\n"[..])
    );

    let status = run_tether(moto.dir.path(), &env, &["run", "--status"]);
    assert!(
        status
            .stdout
            .contains("slow on worker: ended, succeeded (2/2 tasks done, 0 failed)"),
        "{}",
        status.stdout
    );
    // Nothing runs any more: attaching again says so, and starts nothing.
    let again = run_tether(moto.dir.path(), &env, &["run", "--attach", "slow"]);
    assert_eq!(again.code, 1);
    assert!(
        again.stderr.contains("is not running on `worker`"),
        "{}",
        again.stderr
    );
}

#[test]
fn a_job_on_a_stopped_instance_or_with_a_loose_key_starts_nothing() {
    let moto = Moto::start();
    let sshd = Sshd::start();
    let project = project("stopped");
    let _cleanup = Cleanup(project.clone());
    moto.write("ssh-config", USER_SSH_CONFIG);
    let job = "  count:\n    run_on: worker\n    inputs: s3://lab-data/docs/\n    builtin: word_count\n    then: stop\n";
    let spec = job_spec(&project, &["worker"], &host("box", "worker", &sshd), job)
        .replace("type: t3.micro,", "type: t3.micro, state: stopped,");
    moto.write("tether.yaml", &spec);
    let env = env_for(&moto, &["worker"]);
    let apply = run_tether(
        moto.dir.path(),
        &env,
        &["apply", "--auto-approve", "--no-jobs"],
    );
    assert_eq!(apply.code, 0, "{}", apply.stderr);
    put_object(&moto.s3("us-east-1"), "lab-data", "docs/a.txt", "a\n");
    let run = run_tether(moto.dir.path(), &env, &["run"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("runs on `worker`, which is stopped"),
        "{}",
        run.stderr
    );

    moto.write(
        "tether.yaml",
        &job_spec(&project, &["worker"], &host("box", "worker", &sshd), job),
    );
    let apply = run_tether(
        moto.dir.path(),
        &env,
        &["apply", "--auto-approve", "--no-jobs"],
    );
    assert_eq!(apply.code, 0, "{}", apply.stderr);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&sshd.user_key, std::fs::Permissions::from_mode(0o644))
        .expect("chmod");
    let run = run_tether(moto.dir.path(), &env, &["run"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains("ssh refuses private keys that others can read"),
        "{}",
        run.stderr
    );
    let home = std::env::var("HOME").expect("HOME");
    assert!(
        !std::path::Path::new(&home)
            .join(".tether")
            .join(&project)
            .exists(),
        "nothing was started"
    );
}

// Regression: `tmux has-session -t tether-p-count` also matched `tether-p-count-words`, so
// tether could follow a session it never started; and an earlier run's status file could
// pass for this run's result.
#[test]
fn only_the_jobs_own_session_and_this_runs_status_are_followed() {
    let moto = Moto::start();
    let sshd = Sshd::start();
    let project = project("exact");
    let _cleanup = Cleanup(project.clone());
    let env = apply_job_lab(
        &moto,
        &project,
        &["worker"],
        &host("box", "worker", &sshd),
        "  count:\n    run_on: worker\n    inputs: s3://lab-data/docs/\n    builtin: word_count\n    output: s3://lab-data/results/count.json\n",
    );
    let s3 = moto.s3("us-east-1");
    put_object(&s3, "lab-data", "docs/0.txt", "one two three\n");

    // A session whose name merely extends the job's. (Its tmux server is the one the
    // job's session joins later, so it gets the environment an ssh session would have.)
    let tmux = |args: &[&str]| {
        std::process::Command::new("tmux")
            .env("TMUX_TMPDIR", sshd.dir.path().join("tmux"))
            .envs([
                ("AWS_ACCESS_KEY_ID", "testing"),
                ("AWS_SECRET_ACCESS_KEY", "testing"),
                ("AWS_EC2_METADATA_DISABLED", "true"),
                ("AWS_CONFIG_FILE", "/nonexistent"),
                ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent"),
            ])
            .args(args)
            .status()
            .expect("tmux")
    };
    let longer = format!("tether-{project}-count-words");
    assert!(tmux(&["new-session", "-d", "-s", &longer, "sleep 60"]).success());
    let attach = run_tether(moto.dir.path(), &env, &["run", "--attach", "count"]);
    assert_eq!(attach.code, 1, "{}", attach.stderr);
    assert!(
        attach.stderr.contains("is not running on `worker`"),
        "{}",
        attach.stderr
    );

    // An earlier run's finished status, claiming a count that is not this run's.
    let home = std::env::var("HOME").expect("HOME");
    let dir = std::path::Path::new(&home)
        .join(".tether")
        .join(&project)
        .join("count/worker");
    std::fs::create_dir_all(&dir).expect("job dir");
    let stale = serde_json::json!({
        "run_id": "0000000000000000", "done": 1, "total": 1, "failed": 0,
        "summary": {"job": "count", "status": "succeeded", "kind": "word_count",
                    "duration_ms": 1, "bytes": 1, "total": 999, "tasks": []}
    });
    std::fs::write(dir.join("status.json"), stale.to_string()).expect("stale status");
    let run = run_tether(moto.dir.path(), &env, &["run", "--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let summaries: Value = serde_json::from_str(&run.stdout).expect("JSON");
    assert_eq!(
        summaries[0]["total"], 3,
        "this run's count, not the stale 999"
    );
    assert!(tmux(&["has-session", "-t", &format!("={longer}")]).success());
    let _ = tmux(&["kill-session", "-t", &format!("={longer}")]);
}

/// `--resume` on an instance: the agent there skips the tasks whose outputs its command
/// already wrote from the same inputs.
#[test]
fn a_resumed_job_on_an_instance_runs_only_the_tasks_that_failed() {
    let moto = Moto::start();
    let sshd = Sshd::start();
    let project = project("resume");
    let _cleanup = Cleanup(project.clone());
    let marks = tempfile::tempdir().expect("temp dir");
    let (fail, log) = (marks.path().join("fail-now"), marks.path().join("ran.log"));
    let env = apply_job_lab(
        &moto,
        &project,
        &["worker"],
        &host("box", "worker", &sshd),
        &format!(
            "  shout:\n    run_on: worker\n    inputs: s3://lab-data/docs/\n    command: \"echo ran >> {log}; if [ -e {fail} ] && grep -q BAD {{input}}; then echo cannot shout BAD >&2; exit 1; fi; tr a-z A-Z < {{input}} > {{output}}\"\n    output: s3://lab-data/shout/\n",
            log = log.display(),
            fail = fail.display()
        ),
    );
    let s3 = moto.s3("us-east-1");
    for i in 0..4 {
        let text = if i == 2 { "bad BAD\n" } else { "a b c\n" };
        put_object(&s3, "lab-data", &format!("docs/{i}.txt"), text);
    }
    let ran = || {
        let count = std::fs::read_to_string(&log)
            .map(|text| text.lines().count())
            .unwrap_or(0);
        let _ = std::fs::remove_file(&log);
        count
    };
    std::fs::write(&fail, "").expect("mark");
    let first = run_tether(moto.dir.path(), &env, &["run"]);
    assert_eq!(first.code, 1, "{}", first.stderr);
    assert_eq!(ran(), 4);
    // The failed task's log stays on the instance, and `tether logs` reads it over ssh, by
    // the name the run gave for it.
    let hint = first
        .stderr
        .lines()
        .find_map(|line| {
            line.trim()
                .strip_prefix("whole log: tether logs shout --task ")
        })
        .unwrap_or_else(|| panic!("run names the log command: {}", first.stderr))
        .to_string();
    let mut follow_env = env.clone();
    follow_env.push(("TETHER_TEST_LOGS_POLL_MS".into(), "100".into()));
    for args in [
        vec!["logs", "shout"],
        vec!["logs", "shout", "--follow", "--task", &hint],
    ] {
        let logs = run_tether(moto.dir.path(), &follow_env, &args);
        assert_eq!(logs.code, 0, "{}", logs.stderr);
        let task_lines: Vec<&str> = logs
            .stdout
            .lines()
            .filter(|l| !l.starts_with("[worker agent]"))
            .collect();
        assert_eq!(
            task_lines,
            [format!("[worker {hint}] cannot shout BAD")],
            "{args:?}"
        );
    }
    std::fs::remove_file(&fail).expect("unmark");
    let resumed = run_tether(moto.dir.path(), &env, &["run", "--resume"]);
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    assert!(
        resumed.stderr.contains("(3 of 4 task(s) resumed"),
        "{}",
        resumed.stderr
    );
    assert_eq!(ran(), 1);
    assert_eq!(
        get_object(&s3, "lab-data", "shout/2.txt").expect("output"),
        b"BAD BAD\n"
    );
}
