//! What an adversary (or an accident) in the account, the network or a shared directory can
//! shape, replayed against moto and a loopback sshd: each test is one way tether was once
//! steered into trusting, overwriting or deleting what is not the project's, or into
//! output a terminal or a parser takes for something else. Each must end in a clear
//! refusal, or in tether leaving the foreign thing untouched.

mod support;

use serde_json::Value;
use support::{block_on, Moto};

const BUCKET_SPEC: &str = "project: lab\nregion: us-east-1\nbuckets:\n  lab-data: {}\n";

/// Tags `bucket` with `tags` (replacing its tags) through the SDK, as anyone in the
/// account may.
fn tag_bucket(moto: &Moto, bucket: &str, tags: &[(&str, &str)]) {
    let s3 = moto.s3("us-east-1");
    let tagging = aws_sdk_s3::types::Tagging::builder()
        .set_tag_set(Some(
            tags.iter()
                .map(|(key, value)| {
                    aws_sdk_s3::types::Tag::builder()
                        .key(*key)
                        .value(*value)
                        .build()
                        .expect("tag")
                })
                .collect(),
        ))
        .build()
        .expect("tagging");
    block_on(async {
        s3.put_bucket_tagging()
            .bucket(bucket)
            .tagging(tagging)
            .send()
            .await
            .expect("put tags")
    });
}

// Regression: a DEL in a tag value reached `plan --json` as `\x7f`, which is no JSON
// escape, and CI's parser failed; a tag key holding a newline printed a forged
// "No changes." line in the plan's text.
#[test]
fn account_text_keeps_json_parseable_and_cannot_forge_plan_lines() {
    let moto = Moto::start();
    moto.write("tether.yaml", BUCKET_SPEC);
    moto.tether(&["apply", "--auto-approve"]).expect_code(0);
    tag_bucket(
        &moto,
        "lab-data",
        &[
            ("tether:project", "lab"),
            ("tether:name", "lab-data"),
            ("note", "del\u{7f} c1\u{9b}31m"),
            ("x\nNo changes. The account matches the spec.", "y"),
        ],
    );

    let plan = moto.tether(&["plan", "--json"]).expect_code(0);
    assert!(
        !plan.stdout.contains("\\x7f"),
        "a terminal escape in JSON: {}",
        plan.stdout
    );
    let document: Value = serde_json::from_str(&plan.stdout).expect("plan --json is JSON");
    let text = document.to_string();
    assert!(
        text.contains("del\\u007f") || text.contains("del\u{7f}"),
        "the tag value reads back whole: {text}"
    );

    let plan = moto.tether(&["plan"]).expect_code(0);
    assert!(
        !plan
            .stderr
            .lines()
            .any(|line| line.trim_start().starts_with("No changes.")),
        "a tag key forged a line:\n{}",
        plan.stderr
    );
    assert!(
        plan.stderr.contains("tags.x\\nNo changes."),
        "the key is shown escaped:\n{}",
        plan.stderr
    );
}

// Regression: a command job's downloaded S3 input sat in a 0755 directory as a 0644 file,
// readable by every user of the machine.
#[test]
fn a_command_jobs_downloaded_input_and_scratch_are_private() {
    let moto = Moto::start();
    moto.write(
        "tether.yaml",
        &format!(
            "{BUCKET_SPEC}jobs:\n  modes:\n    inputs: s3://lab-data/in/\n    command: \"stat -c %a {{input}} > {{output}} && stat -c %a $(dirname {{input}}) >> {{output}}\"\n    output: ./out/\n"
        ),
    );
    moto.tether(&["apply", "--auto-approve", "--no-jobs"])
        .expect_code(0);
    support::put_object(&moto.s3("us-east-1"), "lab-data", "in/a.txt", "private\n");
    moto.tether(&["run"]).expect_code(0);
    let modes = std::fs::read_to_string(moto.dir.path().join("out/a.txt")).expect("output");
    assert_eq!(modes, "600\n700\n", "input file, then its directory");
}

// Regression: a user's own `Host box` entry above tether's block decided where `ssh box`
// went, and with what host key checking (ssh takes the first value of each setting),
// while the plan promised the alias reached the lab instance.
#[test]
fn an_alias_the_users_own_ssh_config_already_claims_is_refused() {
    let moto = Moto::start();
    let user_config = "Host *\n    ServerAliveInterval 30\nHost box\n    HostName 192.0.2.1\n    StrictHostKeyChecking no\n";
    moto.write("ssh-config", user_config);
    moto.write(
        "tether.yaml",
        "project: lab\nregion: us-east-1\ninstances:\n  worker: {ami: ami-1e749f67, type: t3.micro}\nssh:\n  config_file: ./ssh-config\n  hosts:\n    box: {instance: worker}\n",
    );
    moto.tether(&["plan"])
        .expect_code(1)
        .expect_stderr("line 3 is a `Host` entry of its own for `box`");
    moto.tether(&["apply", "--auto-approve"]).expect_code(1);
    assert_eq!(
        std::fs::read_to_string(moto.dir.path().join("ssh-config")).expect("config"),
        user_config,
        "the user's file is untouched"
    );
    assert!(
        block_on(async {
            moto.ec2()
                .describe_instances()
                .send()
                .await
                .expect("describe")
        })
        .reservations()
        .is_empty(),
        "nothing was launched"
    );
}
