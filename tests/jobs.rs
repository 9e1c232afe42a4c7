//! End-to-end tests of local jobs: the real `tether` binary against moto's S3, results
//! checked through the SDK against counts made independently here.

mod support;

use std::process::{Command, Stdio};

use serde_json::Value;
use support::{block_on, create_bucket, get_object, put_object, words, Moto};

/// Deterministic text: `lines` lines of words of varied length and spacing.
fn document(seed: u64, lines: usize) -> String {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut text = String::new();
    for _ in 0..lines {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
        let words = (state >> 33) % 12;
        for w in 0..words {
            let separator = ["", " ", "  ", "\t"][((state >> (w % 8 + 20)) % 4) as usize];
            text.push_str(separator);
            text.push_str(
                ["data", "science", "lab", "é-word", "x"][((state >> (w + 3)) % 5) as usize],
            );
            text.push(' ');
        }
        text.push('\n');
    }
    text
}

fn keys(s3: &aws_sdk_s3::Client, bucket: &str, prefix: &str) -> Vec<String> {
    block_on(async {
        let out = s3
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .send()
            .await
            .expect("list");
        out.contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_string))
            .collect()
    })
}

const BUCKET_SPEC: &str = "\
project: lab
region: us-east-1
buckets:
  lab-data: {force_destroy: true}
";

#[test]
fn word_count_over_a_prefix_writes_its_summary_to_s3() {
    let moto = Moto::start();
    let spec = format!(
        "{BUCKET_SPEC}jobs:\n  word-count:\n    inputs: s3://lab-data/docs/\n    builtin: word_count\n    output: s3://lab-data/results/word-count.json\n"
    );
    moto.write("tether.yaml", &spec);
    moto.tether(&["apply", "--auto-approve", "--no-jobs"])
        .expect_code(0);
    let s3 = moto.s3("us-east-1");
    let mut expected = std::collections::BTreeMap::new();
    // More than one listing page (1000 keys) would make the test slow; 30 objects, one
    // of them empty, show the counting, and the listing's pagination is the SDK's.
    for i in 0..30u8 {
        let text = if i == 7 {
            String::new()
        } else {
            document(i.into(), 40 + usize::from(i))
        };
        let key = format!("docs/part-{i:03}.txt");
        put_object(&s3, "lab-data", &key, &text);
        expected.insert(format!("s3://lab-data/{key}"), words(&text));
    }
    put_object(&s3, "lab-data", "other/ignored.txt", "not under the prefix");

    moto.tether(&["plan"])
        .expect_code(0)
        .expect_stderr("word-count: builtin word_count over s3://lab-data/docs/");
    let run = moto.tether(&["run", "--json"]).expect_code(0);
    let printed: Value = serde_json::from_str(&run.stdout).expect("--json is JSON");

    let stored = get_object(&s3, "lab-data", "results/word-count.json").expect("summary in S3");
    let summary: Value = serde_json::from_slice(&stored).expect("summary is JSON");
    assert_eq!(summary, printed[0], "the summary printed is the one stored");
    assert_eq!(summary["status"], "succeeded");
    assert_eq!(summary["total"], expected.values().sum::<u64>());
    let tasks = summary["tasks"].as_array().expect("tasks");
    assert_eq!(tasks.len(), 30);
    for task in tasks {
        let input = task["input"].as_str().expect("input");
        assert_eq!(task["count"], expected[input], "{input}");
    }
}

#[test]
fn a_command_job_uploads_each_output_under_the_prefix_and_reports_a_failing_task() {
    let moto = Moto::start();
    std::fs::create_dir_all(moto.dir.path().join("raw/2026")).expect("raw dir");
    moto.write("raw/a.csv", "id,name\n1,ada\n");
    moto.write("raw/2026/b.csv", "id,name\n2,grace\n");
    moto.write("raw/bad.csv", "broken\n");
    moto.write(
        "clean.sh",
        "#!/bin/sh\nset -e\nif grep -q broken \"$1\"; then echo \"cannot parse $1\" >&2; exit 4; fi\ntr a-z A-Z < \"$1\" > \"$2\"\n",
    );
    let spec = format!(
        "{BUCKET_SPEC}jobs:\n  clean-csv:\n    inputs: ./raw/**/*.csv\n    command: \"sh clean.sh {{input}} {{output}}\"\n    mode: cpu\n    parallelism: 2\n    output: s3://lab-data/clean/\n"
    );
    moto.write("tether.yaml", &spec);
    let run = moto
        .tether(&["apply", "--auto-approve", "--retries", "1"])
        .expect_code(1)
        .expect_stderr(
            "clean-csv: task raw/bad.csv failed after 2 attempt(s): exit code 4: cannot parse",
        );
    let s3 = moto.s3("us-east-1");
    assert_eq!(
        keys(&s3, "lab-data", "clean/"),
        ["clean/2026/b.csv", "clean/a.csv"]
    );
    assert_eq!(
        get_object(&s3, "lab-data", "clean/a.csv").expect("output"),
        b"ID,NAME\n1,ADA\n"
    );
    assert!(run.stderr.contains("FAILED"), "{}", run.stderr);
}

#[test]
fn jobs_run_in_after_order_and_a_later_job_reads_what_an_earlier_one_wrote() {
    let moto = Moto::start();
    std::fs::create_dir_all(moto.dir.path().join("raw")).expect("raw dir");
    for i in 0..5 {
        moto.write(&format!("raw/{i}.txt"), &document(i, 20));
    }
    let spec = format!(
        "{BUCKET_SPEC}jobs:
  count-stage:
    inputs: s3://lab-data/stage/
    builtin: word_count
    output: s3://lab-data/results/count.json
    after: [stage]
  stage:
    inputs: ./raw/*.txt
    command: \"cp {{input}} {{output}}\"
    mode: io
    output: s3://lab-data/stage/
  shout:
    inputs: s3://lab-data/stage/
    command: \"tr a-z A-Z < {{input}} > {{output}}\"
    output: s3://lab-data/shout/
    after: [stage]
"
    );
    moto.write("tether.yaml", &spec);
    moto.tether(&["apply", "--auto-approve"]).expect_code(0);
    let s3 = moto.s3("us-east-1");
    let summary: Value = serde_json::from_slice(
        &get_object(&s3, "lab-data", "results/count.json").expect("summary"),
    )
    .expect("JSON");
    let expected: u64 = (0..5).map(|i| words(&document(i, 20))).sum();
    assert_eq!(summary["total"], expected);
    assert_eq!(summary["tasks"].as_array().map(Vec::len), Some(5));
    // A command over S3 inputs gets each object as a local file.
    assert_eq!(
        get_object(&s3, "lab-data", "shout/3.txt").expect("shouted"),
        document(3, 20).to_ascii_uppercase().into_bytes()
    );

    // Running one job alone brings the jobs it runs after.
    moto.tether(&["run", "count-stage"])
        .expect_code(0)
        .expect_stderr("stage: succeeded");
    moto.tether(&["run", "nope"])
        .expect_code(1)
        .expect_stderr("no job named `nope`");
}

#[test]
fn a_glob_that_matches_nothing_or_an_unknown_bucket_stops_everything_before_it_starts() {
    let moto = Moto::start();
    std::fs::create_dir_all(moto.dir.path().join("raw")).expect("raw dir");
    moto.write("raw/a.txt", "a b c\n");
    moto.write(
        "tether.yaml",
        "project: lab\nregion: us-east-1\njobs:\n  fine:\n    inputs: ./raw/*.txt\n    command: \"touch ran-{input}\"\n  empty:\n    inputs: ./missing/*.txt\n    builtin: word_count\n  elsewhere:\n    inputs: s3://nobodys-bucket/x/\n    builtin: word_count\n",
    );
    moto.tether(&["run"])
        .expect_code(1)
        .expect_stderr("job `elsewhere` uses bucket `nobodys-bucket`, which is neither in the spec nor in the account")
        .expect_stderr("tether.yaml:");
    create_bucket(&moto.s3("us-east-1"), "nobodys-bucket");
    moto.tether(&["run"])
        .expect_code(1)
        .expect_stderr("job `empty`: `./missing/*.txt` matches no file")
        .expect_stderr("tether.yaml:8:13")
        .expect_stderr("job `elsewhere`: s3://nobodys-bucket/x/ holds no object");
    assert!(
        !std::fs::read_dir(moto.dir.path().join("raw"))
            .expect("raw")
            .any(|e| e
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .starts_with("ran-")),
        "nothing ran"
    );
}

/// The body of an S3 object is counted as it streams: the process never holds it whole.
/// Peak memory is measured by the kernel (getrusage of the child), not guessed.
#[test]
fn an_object_larger_than_the_memory_cap_is_streamed() {
    const OBJECT_MB: usize = 96;
    const CAP_MB: i64 = 64;
    let moto = Moto::start();
    moto.write(
        "tether.yaml",
        &format!("{BUCKET_SPEC}jobs:\n  big:\n    inputs: s3://lab-data/big/\n    builtin: word_count\n    output: s3://lab-data/results/big.json\n"),
    );
    moto.tether(&["apply", "--auto-approve", "--no-jobs"])
        .expect_code(0);
    let line = "the quick brown fox jumps over the lazy dog 0123456789\n";
    let body: String = line.repeat(OBJECT_MB * 1024 * 1024 / line.len());
    let expected = words(&body);
    block_on(async {
        moto.s3("us-east-1")
            .put_object()
            .bucket("lab-data")
            .key("big/huge.txt")
            .body(body.into_bytes().into())
            .send()
            .await
            .expect("PutObject")
    });

    // A small parent (Python) starts tether and reports its children's peak: measured
    // from this test process, the peak would include this process's own memory, which a
    // forked child inherits until it runs tether.
    let measure = "import resource, subprocess, sys\n\
code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode\n\
print(code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n";
    let output = Command::new("python3")
        .args(["-c", measure, env!("CARGO_BIN_EXE_tether"), "run", "big"])
        .current_dir(moto.dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(moto.env())
        .stdin(Stdio::null())
        .output()
        .expect("run tether under python3");
    let report = String::from_utf8_lossy(&output.stdout);
    let mut fields = report.split_whitespace();
    assert_eq!(fields.next(), Some("0"), "tether run failed: {report}");
    let peak_mb = fields
        .next()
        .and_then(|kb| kb.parse::<i64>().ok())
        .expect("peak")
        / 1024;
    assert!(
        peak_mb < CAP_MB,
        "peak memory {peak_mb} MB for a {OBJECT_MB} MB object: it was buffered"
    );
    let summary: Value = serde_json::from_slice(
        &get_object(&moto.s3("us-east-1"), "lab-data", "results/big.json").expect("summary"),
    )
    .expect("JSON");
    assert_eq!(summary["total"], expected);
}

#[test]
fn fail_fast_starts_no_task_after_the_first_failure() {
    let moto = Moto::start();
    std::fs::create_dir_all(moto.dir.path().join("in")).expect("in dir");
    for i in 0..6 {
        moto.write(&format!("in/{i}.txt"), "x\n");
    }
    moto.write(
        "tether.yaml",
        "project: lab\nregion: us-east-1\njobs:\n  first-fails:\n    inputs: ./in/*.txt\n    command: \"case {input} in *0.txt) exit 9;; esac; touch {input}.ran\"\n    parallelism: 1\n",
    );
    let run = moto
        .tether(&["run", "--fail-fast", "--json"])
        .expect_code(1);
    let summaries: Value = serde_json::from_str(&run.stdout).expect("JSON");
    let statuses: Vec<&str> = summaries[0]["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .map(|t| t["status"].as_str().expect("status"))
        .collect();
    assert_eq!(statuses[0], "failed");
    assert!(
        statuses[1..].iter().all(|s| *s == "skipped"),
        "{statuses:?}"
    );
    assert_eq!(summaries[0]["tasks"][0]["exit_code"], 9);
    let ran = std::fs::read_dir(moto.dir.path().join("in"))
        .expect("in")
        .filter(|e| {
            e.as_ref()
                .expect("entry")
                .path()
                .extension()
                .is_some_and(|x| x == "ran")
        })
        .count();
    assert_eq!(ran, 0, "no task started after the failure");
}

/// Ctrl-C must take the running tasks down with tether and upload nothing half-done.
#[test]
fn an_interrupt_kills_the_running_tasks_and_uploads_nothing() {
    let moto = Moto::start();
    std::fs::create_dir_all(moto.dir.path().join("in")).expect("in dir");
    for i in 0..2 {
        moto.write(&format!("in/{i}.txt"), "x\n");
    }
    // A sleep of an odd length makes this test's processes (the shells and the sleeps
    // they start) findable, and only them.
    let marker = format!("sleep 30.{}", std::process::id());
    moto.write(
        "tether.yaml",
        &format!("{BUCKET_SPEC}jobs:\n  slow:\n    inputs: ./in/*.txt\n    command: \"{marker}; cp {{input}} {{output}}\"\n    output: s3://lab-data/slow/\n"),
    );
    moto.tether(&["apply", "--auto-approve", "--no-jobs"])
        .expect_code(0);
    let mut child = Command::new(env!("CARGO_BIN_EXE_tether"))
        .args(["run"])
        .current_dir(moto.dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(moto.env())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run tether");
    let running = || {
        Command::new("pgrep")
            .args(["-f", &marker])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).lines().count())
            .unwrap_or(0)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while running() < 4 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(
        running(),
        4,
        "both tasks started, each a shell and its sleep"
    );
    // Ctrl-C, as a terminal sends it, through kill(1): no unsafe code in the tests.
    let sent = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(sent.success());
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(130));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while running() > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(running(), 0, "no task outlives tether");
    assert!(keys(&moto.s3("us-east-1"), "lab-data", "slow/").is_empty());
}

// Why it exists: a spec whose job reads and writes only local files failed with "set
// region" on a laptop without any AWS setup, although nothing in it needs AWS.
#[test]
fn a_job_over_local_files_runs_without_any_aws_configuration() {
    let dir = tempfile::tempdir().expect("temp dir");
    let empty_home = tempfile::tempdir().expect("home");
    std::fs::create_dir_all(dir.path().join("data")).expect("data");
    std::fs::write(dir.path().join("data/a.txt"), "one two three\n").expect("a");
    std::fs::write(dir.path().join("data/b.txt"), "four five\n").expect("b");
    std::fs::write(
        dir.path().join("tether.yaml"),
        "project: offline\njobs:\n  count:\n    inputs: ./data/*.txt\n    builtin: word_count\n    output: ./results/count.json\n  remote-data:\n    inputs: s3://lab-data/docs/\n    builtin: word_count\n",
    )
    .expect("spec");
    // Nothing but a home with nothing in it: no region, credentials or endpoint.
    let env = vec![("HOME".to_string(), empty_home.path().display().to_string())];
    let validate = support::run_tether(dir.path(), &env, &["validate"]);
    assert_eq!(validate.code, 0, "{}", validate.stderr);
    let run = support::run_tether(dir.path(), &env, &["run", "count"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let summary: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("results/count.json")).expect("summary"),
    )
    .expect("JSON");
    assert_eq!(summary["total"], 5);
    // A job that does read S3 still says what is missing.
    let run = support::run_tether(dir.path(), &env, &["run", "remote-data"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("region"), "{}", run.stderr);
}

#[test]
fn a_job_through_injected_s3_faults_produces_exact_results() {
    let moto = Moto::start();
    let spec = format!(
        "{BUCKET_SPEC}jobs:\n  shout:\n    inputs: s3://lab-data/docs/\n    command: \"tr a-z A-Z < {{input}} > {{output}}\"\n    mode: io\n    output: s3://lab-data/shout/\n  word-count:\n    inputs: s3://lab-data/docs/\n    builtin: word_count\n    output: s3://lab-data/results/word-count.json\n"
    );
    moto.write("tether.yaml", &spec);
    moto.tether(&["apply", "--auto-approve", "--no-jobs"])
        .expect_code(0);
    let s3 = moto.s3("us-east-1");
    let mut expected = std::collections::BTreeMap::new();
    // Bodies large enough to arrive in many chunks, so a cut lands mid-stream.
    for i in 0..24u64 {
        let text = document(100 + i, 200 + 300 * usize::try_from(i % 4).unwrap_or(0));
        let key = format!("docs/part-{i:03}.txt");
        put_object(&s3, "lab-data", &key, &text);
        expected.insert(key, text);
    }
    // Every request of the run goes through the proxy: 15% of them fail.
    let proxy = support::faults::start(moto.port, 15);
    let env = proxy.env_through(&moto);
    let run = support::run_tether(moto.dir.path(), &env, &["run", "--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let counts = &proxy.counts;
    use std::sync::atomic::Ordering::Relaxed;
    assert!(
        counts.throttled.load(Relaxed) > 0
            && counts.server_errors.load(Relaxed) > 0
            && counts.dropped.load(Relaxed) > 0,
        "faults were injected: {} requests, {} throttled, {} 500s, {} dropped",
        counts.requests.load(Relaxed),
        counts.throttled.load(Relaxed),
        counts.server_errors.load(Relaxed),
        counts.dropped.load(Relaxed)
    );
    // Exact results: every output whole, every count right.
    for (key, text) in &expected {
        let shouted = key.replacen("docs/", "shout/", 1);
        assert_eq!(
            get_object(&s3, "lab-data", &shouted).expect("shouted output"),
            text.to_ascii_uppercase().into_bytes(),
            "{shouted}"
        );
    }
    let summary: Value = serde_json::from_slice(
        &get_object(&s3, "lab-data", "results/word-count.json").expect("summary"),
    )
    .expect("JSON");
    assert_eq!(summary["status"], "succeeded");
    assert_eq!(
        summary["total"],
        expected.values().map(|text| words(text)).sum::<u64>()
    );
    assert!(
        !keys(&s3, "lab-data", "")
            .iter()
            .any(|k| k.ends_with(".partial")),
        "no partial object"
    );
}

#[test]
fn a_resumed_run_redoes_only_what_failed_or_changed() {
    let moto = Moto::start();
    let job = |version: &str| {
        format!(
            "{BUCKET_SPEC}jobs:\n  shout:\n    inputs: s3://lab-data/docs/\n    command: \"echo ran >> ran.log; if [ -e fail-now ] && grep -q BAD {{input}}; then exit 1; fi; tr a-z A-Z < {{input}} > {{output}} # {version}\"\n    output: s3://lab-data/shout/\n"
        )
    };
    moto.write("tether.yaml", &job("v1"));
    moto.tether(&["apply", "--auto-approve", "--no-jobs"])
        .expect_code(0);
    let s3 = moto.s3("us-east-1");
    let mut texts = std::collections::BTreeMap::new();
    for i in 0..6u64 {
        let mut text = document(200 + i, 20);
        if i % 3 == 0 {
            text.push_str("BAD\n");
        }
        put_object(&s3, "lab-data", &format!("docs/{i}.txt"), &text);
        texts.insert(i, text);
    }
    let ran = || {
        let log = moto.dir.path().join("ran.log");
        let count = std::fs::read_to_string(&log)
            .map(|text| text.lines().count())
            .unwrap_or(0);
        let _ = std::fs::remove_file(&log);
        count
    };
    let exact = |texts: &std::collections::BTreeMap<u64, String>| {
        for (i, text) in texts {
            assert_eq!(
                get_object(&s3, "lab-data", &format!("shout/{i}.txt")).expect("output"),
                text.to_ascii_uppercase().into_bytes(),
                "shout/{i}.txt"
            );
        }
    };

    // Two tasks fail; the rest write their outputs.
    moto.write("fail-now", "");
    moto.tether(&["run"]).expect_code(1);
    assert_eq!(ran(), 6);
    // Resumed: only the two failed tasks run.
    std::fs::remove_file(moto.dir.path().join("fail-now")).expect("rm");
    moto.tether(&["run", "--resume"])
        .expect_code(0)
        .expect_stderr("shout: succeeded in")
        .expect_stderr("(4 of 6 task(s) resumed: done before)");
    assert_eq!(ran(), 2);
    exact(&texts);
    // A finished run resumed runs nothing.
    moto.tether(&["run", "--resume"])
        .expect_code(0)
        .expect_stderr("(6 of 6 task(s) resumed");
    assert_eq!(ran(), 0);
    // A changed input is redone, and only it.
    let changed = document(999, 30);
    put_object(&s3, "lab-data", "docs/4.txt", &changed);
    texts.insert(4, changed);
    moto.tether(&["run", "--resume"]).expect_code(0);
    assert_eq!(ran(), 1);
    exact(&texts);
    // A changed command redoes everything; and without --resume everything runs.
    moto.write("tether.yaml", &job("v2"));
    moto.tether(&["run", "--resume"]).expect_code(0);
    assert_eq!(ran(), 6);
    moto.tether(&["run"]).expect_code(0);
    assert_eq!(ran(), 6);
    // An output of the same name that the job's record does not vouch for is no evidence.
    put_object(&s3, "lab-data", "shout/1.txt", "planted");
    moto.tether(&["run", "--resume"]).expect_code(0);
    assert_eq!(ran(), 1);
    exact(&texts);
}

#[test]
fn a_finished_count_resumed_is_not_made_again() {
    let moto = Moto::start();
    let spec = format!(
        "{BUCKET_SPEC}jobs:\n  word-count:\n    inputs: s3://lab-data/docs/\n    builtin: word_count\n    output: s3://lab-data/results/word-count.json\n"
    );
    moto.write("tether.yaml", &spec);
    moto.tether(&["apply", "--auto-approve", "--no-jobs"])
        .expect_code(0);
    let s3 = moto.s3("us-east-1");
    let mut total = 0;
    for i in 0..12u64 {
        let text = document(300 + i, 30);
        total += words(&text);
        put_object(&s3, "lab-data", &format!("docs/{i}.txt"), &text);
    }
    // Every request goes through a proxy that counts them (and fails none).
    let proxy = support::faults::start(moto.port, 0);
    let env = proxy.env_through(&moto);
    let requests = || {
        proxy
            .counts
            .requests
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    let first = support::run_tether(moto.dir.path(), &env, &["run"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let counted = requests();
    assert!(counted >= 12, "each object was read: {counted} requests");
    let stored = get_object(&s3, "lab-data", "results/word-count.json").expect("summary");

    // Resumed: the stored summary stands, and no input is read again.
    let resumed = support::run_tether(moto.dir.path(), &env, &["run", "--resume", "--json"]);
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    assert!(
        resumed.stderr.contains("(12 of 12 task(s) resumed"),
        "{}",
        resumed.stderr
    );
    assert!(
        requests() - counted < 12,
        "no input read again: {} requests",
        requests() - counted
    );
    let printed: Value = serde_json::from_str(&resumed.stdout).expect("JSON");
    assert_eq!(printed[0]["total"], total);
    assert_eq!(
        get_object(&s3, "lab-data", "results/word-count.json").expect("summary"),
        stored,
        "the stored summary is left as it was"
    );

    // One input changed: the count is made again, over everything.
    put_object(&s3, "lab-data", "docs/5.txt", "one two three\n");
    let again = support::run_tether(moto.dir.path(), &env, &["run", "--resume", "--json"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(!again.stderr.contains("resumed"), "{}", again.stderr);
    let printed: Value = serde_json::from_str(&again.stdout).expect("JSON");
    assert_eq!(printed[0]["total"], total - words(&document(305, 30)) + 3);
}

/// Waits (at most 30 s) until `ready` says so.
#[track_caller]
fn wait_until(what: &str, ready: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !ready() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting: {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn a_local_jobs_failed_tasks_keep_their_logs_and_a_follower_reads_them_as_they_grow() {
    let dir = tempfile::tempdir().expect("temp dir");
    let home = tempfile::tempdir().expect("home");
    std::fs::create_dir_all(dir.path().join("in")).expect("in");
    for i in 0..4 {
        std::fs::write(dir.path().join(format!("in/{i}.txt")), format!("{i}\n")).expect("input");
    }
    // Tasks 1 and 3 fail, each after a line of its own; the others say something and succeed.
    std::fs::write(
        dir.path().join("tether.yaml"),
        "project: offline\njobs:\n  shout:\n    inputs: ./in/*.txt\n    command: \"echo start $(cat {input}) >&2; case {input} in *[13].txt) printf 'boom\\\\033[2J\\\\n' >&2; exit 3;; esac\"\n",
    )
    .expect("spec");
    let env = vec![("HOME".to_string(), home.path().display().to_string())];
    let run = support::run_tether(dir.path(), &env, &["run", "--retries", "1"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("whole log: tether logs shout --task in/3.txt"),
        "run names the command that shows a failed task's log: {}",
        run.stderr
    );
    let logs = support::run_tether(dir.path(), &env, &["logs", "shout"]);
    assert_eq!(logs.code, 0, "{}", logs.stderr);
    // Only the failed tasks' logs stay, every attempt in each, and no control character
    // reaches the terminal.
    assert_eq!(
        logs.stdout,
        "[in/1.txt] start 1\n[in/1.txt] boom\\x1b[2J\n[in/1.txt] tether: attempt 2\n[in/1.txt] start 1\n[in/1.txt] boom\\x1b[2J\n\
         [in/3.txt] start 3\n[in/3.txt] boom\\x1b[2J\n[in/3.txt] tether: attempt 2\n[in/3.txt] start 3\n[in/3.txt] boom\\x1b[2J\n"
    );
    let one = support::run_tether(
        dir.path(),
        &env,
        &["logs", "shout", "--task", "in/3.txt", "--json"],
    );
    assert_eq!(one.code, 0, "{}", one.stderr);
    let lines: Vec<Value> = one
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 5);
    assert_eq!(lines[1]["text"], "boom\u{1b}[2J");
    assert!(lines.iter().all(|l| l["source"] == "in/3.txt"));

    // A follower started while a run goes on reads what its tasks write until the run ends.
    std::fs::write(
        dir.path().join("tether.yaml"),
        "project: offline\njobs:\n  shout:\n    inputs: ./in/0.txt\n    command: \"echo before >&2; while [ ! -e gate ]; do sleep 0.05; done; echo after >&2; exit 1 # {input}\"\n",
    )
    .expect("spec");
    let mut run = support::spawn_tether(dir.path(), &env, &["run"]);
    let log = home.path().join(".tether/logs/offline/shout/0.log");
    wait_until("the task's first line", || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.contains("before"))
    });
    let mut follow_env = env.clone();
    follow_env.push(("TETHER_TEST_LOGS_POLL_MS".into(), "100".into()));
    let follower = support::spawn_tether(dir.path(), &follow_env, &["logs", "shout", "--follow"]);
    std::thread::sleep(std::time::Duration::from_millis(500));
    std::fs::write(dir.path().join("gate"), "").expect("gate");
    assert_eq!(run.wait().expect("run").code(), Some(1));
    let followed = follower.wait_with_output().expect("follower");
    assert_eq!(followed.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&followed.stdout),
        "[in/0.txt] before\n[in/0.txt] after\n"
    );
    // A run whose tasks all succeed leaves no log behind, and says so.
    std::fs::write(
        dir.path().join("tether.yaml"),
        "project: offline\njobs:\n  shout:\n    inputs: ./in/0.txt\n    command: \"echo fine {input} >&2\"\n",
    )
    .expect("spec");
    assert_eq!(support::run_tether(dir.path(), &env, &["run"]).code, 0);
    let logs = support::run_tether(dir.path(), &env, &["logs", "shout"]);
    assert_eq!((logs.code, logs.stdout.as_str()), (0, ""));
    assert!(logs.stderr.contains("has no log lines"), "{}", logs.stderr);
}

#[test]
fn a_resumed_local_job_trusts_only_the_outputs_its_records_vouch_for() {
    let dir = tempfile::tempdir().expect("temp dir");
    let home = tempfile::tempdir().expect("home");
    let env = vec![("HOME".to_string(), home.path().display().to_string())];
    std::fs::create_dir_all(dir.path().join("in")).expect("in");
    for i in 0..4 {
        let bad = if i == 1 { " BAD" } else { "" };
        std::fs::write(
            dir.path().join(format!("in/{i}.txt")),
            format!("text {i}{bad}\n"),
        )
        .expect("input");
    }
    let spec = |version: &str| {
        format!("project: offline\njobs:\n  shout:\n    inputs: ./in/*.txt\n    command: \"echo ran >> ran.log; if [ -e fail-now ] && grep -q BAD {{input}}; then exit 1; fi; tr a-z A-Z < {{input}} > {{output}} # {version}\"\n    output: ./out/\n  again:\n    after: [shout]\n    inputs: ./out/**/*\n    builtin: line_count\n    output: ./count.json\n")
    };
    std::fs::write(dir.path().join("tether.yaml"), spec("v1")).expect("spec");
    let ran = || {
        let log = dir.path().join("ran.log");
        let count = std::fs::read_to_string(&log)
            .map(|t| t.lines().count())
            .unwrap_or(0);
        let _ = std::fs::remove_file(&log);
        count
    };
    let run = |args: &[&str]| support::run_tether(dir.path(), &env, args);
    std::fs::write(dir.path().join("fail-now"), "").expect("mark");
    assert_eq!(run(&["run", "shout"]).code, 1);
    assert_eq!(ran(), 4);
    std::fs::remove_file(dir.path().join("fail-now")).expect("unmark");
    let resumed = run(&["run", "--resume"]);
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    assert!(
        resumed.stderr.contains("(3 of 4 task(s) resumed"),
        "{}",
        resumed.stderr
    );
    assert_eq!(ran(), 1);
    for i in 0..4 {
        let bad = if i == 1 { " BAD" } else { "" };
        assert_eq!(
            std::fs::read_to_string(dir.path().join(format!("out/{i}.txt"))).expect("output"),
            format!("TEXT {i}{bad}\n")
        );
    }
    // tether's records in the output directory are no input of the job that reads it.
    let count: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("count.json")).expect("count"),
    )
    .expect("JSON");
    assert_eq!(count["total"], 4, "{count}");
    // An output edited since it was made is not taken as made; the rest are.
    std::fs::write(dir.path().join("out/2.txt"), "edited\n").expect("edit");
    assert_eq!(run(&["run", "shout", "--resume"]).code, 0);
    assert_eq!(ran(), 1);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out/2.txt")).expect("output"),
        "TEXT 2\n"
    );
    // A changed command redoes everything.
    std::fs::write(dir.path().join("tether.yaml"), spec("v2")).expect("spec");
    assert_eq!(run(&["run", "shout", "--resume"]).code, 0);
    assert_eq!(ran(), 4);
}
