//! End-to-end tests of IAM roles and instance profiles: the real `tether` binary against
//! moto, the account checked through the SDK.

mod support;

use std::collections::BTreeSet;

use serde_json::Value;
use support::{block_on, Moto};

const READ_ONLY: &str = "arn:aws:iam::aws:policy/ReadOnlyAccess";

/// A role for instances that may run job `count` (reading `docs/`, writing `counts/`), on
/// an instance that uses it.
fn spec(extra_role: &str) -> String {
    format!(
        "project: roles-lab\nregion: us-east-1\n\
buckets:\n  lab-data: {{force_destroy: true}}\n\
iam:\n  roles:\n    lab-worker:\n      assumed_by: ec2.amazonaws.com\n      policies: [{READ_ONLY}]\n      inline_policies:\n        logs:\n          Version: \"2012-10-17\"\n          Statement:\n            - Effect: Allow\n              Action: logs:PutLogEvents\n              Resource: \"*\"\n      jobs: [count]\n{extra_role}\
instances:\n  worker: {{ami: ami-1e749f67, type: t3.micro, role: lab-worker}}\n\
jobs:\n  count:\n    inputs: s3://lab-data/docs/\n    command: \"wc -w < {{input}} > {{output}}\"\n    output: s3://lab-data/counts/\n"
    )
}

fn role(iam: &aws_sdk_iam::Client, name: &str) -> Option<aws_sdk_iam::types::Role> {
    block_on(async {
        iam.get_role()
            .role_name(name)
            .send()
            .await
            .ok()
            .and_then(|out| out.role().cloned())
    })
}

fn attached(iam: &aws_sdk_iam::Client, role: &str) -> BTreeSet<String> {
    block_on(async {
        let out = iam
            .list_attached_role_policies()
            .role_name(role)
            .send()
            .await
            .expect("list attached");
        out.attached_policies()
            .iter()
            .filter_map(|p| p.policy_arn().map(str::to_string))
            .collect()
    })
}

fn inline(iam: &aws_sdk_iam::Client, role: &str, name: &str) -> Value {
    block_on(async {
        let out = iam
            .get_role_policy()
            .role_name(role)
            .policy_name(name)
            .send()
            .await
            .expect("inline policy");
        let text = out.policy_document();
        let decoded = percent_decode(text);
        serde_json::from_str(&decoded).expect("policy JSON")
    })
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(byte) = u8::from_str_radix(&text[i + 1..i + 3], 16) {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).expect("utf-8")
}

/// The instance profile and the role in it, if the profile exists.
fn profile_roles(iam: &aws_sdk_iam::Client, profile: &str) -> Option<Vec<String>> {
    block_on(async {
        iam.get_instance_profile()
            .instance_profile_name(profile)
            .send()
            .await
            .ok()
            .and_then(|out| out.instance_profile().cloned())
            .map(|p| {
                p.roles()
                    .iter()
                    .map(|r| r.role_name().to_string())
                    .collect()
            })
    })
}

/// The instance profile ARN of the project's live instance `worker`.
fn instance_profile_arn(ec2: &aws_sdk_ec2::Client) -> Option<String> {
    block_on(async {
        let out = ec2
            .describe_instances()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("tag:tether:name")
                    .values("worker")
                    .build(),
            )
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("instance-state-name")
                    .values("running")
                    .build(),
            )
            .send()
            .await
            .expect("describe");
        out.reservations()
            .iter()
            .flat_map(|r| r.instances())
            .find_map(|i| {
                i.iam_instance_profile()
                    .and_then(|p| p.arn().map(str::to_string))
            })
    })
}

#[test]
fn a_role_its_profile_and_an_instance_using_it_apply_converge_and_are_destroyed_in_order() {
    let moto = Moto::start();
    moto.write("tether.yaml", &spec(""));
    let plan = moto.tether(&["plan", "--json"]).expect_code(0);
    let plan: Value = serde_json::from_str(&plan.stdout).expect("plan JSON");
    // The plan says what the job shorthand grants: reading the inputs, writing the outputs,
    // and nothing else.
    let role_change = plan["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .find(|c| c["address"] == "iam_role.lab-worker")
        .expect("the role is in the plan");
    let grants = &role_change["after"]["inline_policies"]["tether-jobs"];
    let statements = grants["Statement"].as_array().expect("statements");
    assert_eq!(statements.len(), 2, "{grants}");
    assert!(statements
        .iter()
        .any(|s| s["Action"] == "s3:GetObject" && s["Resource"] == "arn:aws:s3:::lab-data/docs/*"));
    assert!(statements.iter().any(
        |s| s["Action"] == "s3:PutObject" && s["Resource"] == "arn:aws:s3:::lab-data/counts/*"
    ));

    moto.tether(&["apply", "--auto-approve", "--no-jobs"])
        .expect_code(0);
    let iam = moto.iam();
    let found = role(&iam, "lab-worker").expect("the role exists");
    assert_eq!(
        found.path(),
        "/tether/roles-lab/",
        "the path records ownership"
    );
    let trust = percent_decode(found.assume_role_policy_document().unwrap_or_default());
    assert!(
        trust.contains("ec2.amazonaws.com") && trust.contains("sts:AssumeRole"),
        "{trust}"
    );
    assert_eq!(
        attached(&iam, "lab-worker"),
        BTreeSet::from([READ_ONLY.to_string()])
    );
    // The account holds exactly what the plan showed.
    assert_eq!(inline(&iam, "lab-worker", "tether-jobs"), *grants);
    assert_eq!(
        inline(&iam, "lab-worker", "logs")["Statement"][0]["Action"],
        "logs:PutLogEvents"
    );
    assert_eq!(
        profile_roles(&iam, "lab-worker"),
        Some(vec!["lab-worker".to_string()])
    );
    let arn = instance_profile_arn(&moto.ec2()).expect("the instance has a profile");
    assert!(arn.ends_with("/lab-worker"), "{arn}");

    moto.tether(&["plan", "--detailed-exitcode"])
        .expect_code(0)
        .expect_stderr("No changes");

    // Drift: a policy detached out of band is attached again.
    block_on(async {
        iam.detach_role_policy()
            .role_name("lab-worker")
            .policy_arn(READ_ONLY)
            .send()
            .await
            .expect("detach")
    });
    moto.tether(&["plan", "--detailed-exitcode"])
        .expect_code(2)
        .expect_stderr("iam_role.lab-worker");
    moto.tether(&["apply", "--auto-approve", "--no-jobs"])
        .expect_code(0);
    assert_eq!(
        attached(&iam, "lab-worker"),
        BTreeSet::from([READ_ONLY.to_string()])
    );

    // Destroy goes in the order IAM requires: the instance, then the profile (its role
    // taken out), then the role (policies first). moto refuses any other order.
    moto.tether(&["destroy", "--auto-approve"]).expect_code(0);
    assert!(role(&iam, "lab-worker").is_none(), "the role is gone");
    assert!(
        profile_roles(&iam, "lab-worker").is_none(),
        "the profile is gone"
    );
}

#[test]
fn an_existing_role_is_refused_until_adopted_then_owned_by_its_tags() {
    let moto = Moto::start();
    let iam = moto.iam();
    block_on(async {
        iam.create_role()
            .role_name("legacy")
            .assume_role_policy_document(
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
            )
            .send()
            .await
            .expect("create role")
    });
    let legacy = |adopt: &str| {
        format!("    legacy:\n      assumed_by: lambda.amazonaws.com\n      policies: [{READ_ONLY}]\n{adopt}")
    };
    moto.write("tether.yaml", &spec(&legacy("")));
    moto.tether(&["plan"])
        .expect_code(1)
        .expect_stderr("iam_role.legacy");
    moto.write("tether.yaml", &spec(&legacy("      adopt: true\n")));
    moto.tether(&["apply", "--auto-approve", "--no-jobs"])
        .expect_code(0);
    let adopted = role(&iam, "legacy").expect("still there");
    assert_eq!(
        adopted.path(),
        "/",
        "IAM cannot move a role: it keeps its path"
    );
    assert_eq!(
        attached(&iam, "legacy"),
        BTreeSet::from([READ_ONLY.to_string()])
    );
    // EC2 may not assume it, so it gets no instance profile.
    assert!(profile_roles(&iam, "legacy").is_none());
    moto.tether(&["plan", "--detailed-exitcode"]).expect_code(0);
    // Owned by its tags now, so destroy deletes it with the project's own.
    moto.tether(&["destroy", "--auto-approve"]).expect_code(0);
    assert!(role(&iam, "legacy").is_none());
}

#[test]
fn bad_role_references_are_errors_at_their_spec_lines() {
    let moto = Moto::start();
    moto.write(
        "tether.yaml",
        "project: roles-lab\niam:\n  roles:\n    lambda-only: {assumed_by: lambda.amazonaws.com}\n    nobody: {}\n    bad-service: {assumed_by: ec2.example.com}\n    grants-ghost: {assumed_by: ec2.amazonaws.com, jobs: [ghost]}\ninstances:\n  a: {ami: ami-1e749f67, type: t3.micro, role: missing}\n  b: {ami: ami-1e749f67, type: t3.micro, role: lambda-only}\nregion: us-east-1\n",
    );
    moto.tether(&["validate"])
        .expect_code(1)
        .expect_stderr("role `nobody` does not say who may assume it")
        .expect_stderr("tether.yaml:5:5")
        .expect_stderr("`ec2.example.com` is not an AWS service principal")
        .expect_stderr("tether.yaml:6:31")
        .expect_stderr("role `grants-ghost` grants job `ghost`, which the spec does not declare")
        .expect_stderr("instance `a` has role `missing`, which the spec does not declare")
        .expect_stderr("tether.yaml:9:48")
        .expect_stderr("instance `b` has role `lambda-only`, which EC2 may not assume");
}
