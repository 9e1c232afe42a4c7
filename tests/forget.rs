//! End-to-end tests of letting resources go (`tether forget`, the spec's `forget:`): the
//! real `tether` binary against moto, the account checked through the SDK. What is let go
//! of loses tether's tags, path and records, keeps everything else, and survives destroy.

mod support;

use std::collections::BTreeMap;

use aws_sdk_ec2::types::Filter;
use support::{block_on, Moto};

fn lab(buckets: &str, tail: &str) -> String {
    format!(
        "\
project: keep
region: us-east-1
secrets: local
buckets:
  keep-data:
    tags: {{team: ds}}
{buckets}key_pairs:
  keep-key:
    private_key_file: ~/.ssh/keep.pem
{tail}"
    )
}

/// What the spec lets go of below: declared in the first spec, forgotten in the second.
const MANAGED: &str = "\
account:
  alias: keep-lab
iam:
  groups:
    admins:
      policies: [arn:aws:iam::aws:policy/AdministratorAccess]
  users:
    alice:
      inline_policies:
        read-data:
          Version: \"2012-10-17\"
          Statement:
            - {Effect: Allow, Action: [s3:GetObject], Resource: [arn:aws:s3:::keep-data/*]}
      tags: {team: ds}
security_groups:
  keep-ssh:
    description: SSH from home
    ingress:
      - {port: 22, cidr: 203.0.113.7/32}
instances:
  worker:
    ami: ami-1e749f67
    type: t3.micro
    key_pair: keep-key
    security_groups: [keep-ssh]
    tags: {team: ds}
elastic_ips:
  worker-ip: {instance: worker}
";

/// Every tag of the project's instance (found by its id, whatever its tags).
fn instance_tags(ec2: &aws_sdk_ec2::Client, id: &str) -> (String, BTreeMap<String, String>) {
    block_on(async {
        let out = ec2
            .describe_instances()
            .instance_ids(id)
            .send()
            .await
            .expect("describe");
        let instance = out
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .next()
            .expect("the instance is still there")
            .clone();
        let state = instance
            .state()
            .and_then(|s| s.name())
            .map(|n| n.as_str().to_string())
            .unwrap_or_default();
        let tags = instance
            .tags()
            .iter()
            .map(|t| {
                (
                    t.key().unwrap_or_default().into(),
                    t.value().unwrap_or_default().into(),
                )
            })
            .collect();
        (state, tags)
    })
}

fn project_instance_id(ec2: &aws_sdk_ec2::Client) -> String {
    block_on(async {
        let out = ec2
            .describe_instances()
            .filters(
                Filter::builder()
                    .name("tag:tether:project")
                    .values("keep")
                    .build(),
            )
            .send()
            .await
            .expect("describe");
        out.reservations()
            .iter()
            .flat_map(|r| r.instances())
            .find(|i| i.state().and_then(|s| s.name()).map(|n| n.as_str()) == Some("running"))
            .and_then(|i| i.instance_id().map(String::from))
            .expect("a running instance of the project")
    })
}

fn no_tether_tags(tags: &BTreeMap<String, String>) -> bool {
    !tags.keys().any(|k| k.starts_with("tether:"))
}

#[test]
fn forgotten_resources_lose_only_tethers_marks_and_survive_destroy() {
    let moto = Moto::start();
    let s3 = moto.s3("us-east-1");
    let (ec2, iam, ssm) = (moto.ec2(), moto.iam(), moto.ssm());
    let managed = moto.write(
        "managed.yaml",
        &lab("  keep-results:\n    force_destroy: true\n", MANAGED),
    );
    let managed = managed.to_str().unwrap();
    moto.tether(&["apply", "-f", managed, "--auto-approve"])
        .expect_code(0);
    support::put_object(&s3, "keep-results", "run-1/out.csv", "a,b\n1,2\n");
    let id = project_instance_id(&ec2);
    assert!(support::parameter(&ssm, "/tether/keep/instances/worker").is_some());
    assert!(support::parameter(&ssm, "/tether/keep/buckets/keep-results").is_some());

    // What the spec declares is not let go of: it would be adopted or made again.
    moto.tether(&[
        "forget",
        "bucket.keep-results",
        "-f",
        managed,
        "--auto-approve",
    ])
    .expect_code(1)
    .expect_stderr("bucket.keep-results is declared in the spec and also to be forgotten");

    // The second spec no longer declares them; the command line lets one go, the spec
    // lists the rest for apply (as CI would).
    let forgetting = lab(
        "",
        "forget:\n  - instance.worker\n  - elastic_ip.worker-ip\n  - security_group.keep-ssh\n  - iam_user.alice\n  - account.alias\n",
    );
    let forgetting = moto.write("forgetting.yaml", &forgetting);
    let forgetting = forgetting.to_str().unwrap();
    moto.tether(&[
        "forget",
        "bucket.nothing-here",
        "-f",
        forgetting,
        "--auto-approve",
    ])
    .expect_code(1)
    .expect_stderr("does not own these");
    let run = moto
        .tether(&[
            "forget",
            "bucket.keep-results",
            "-f",
            forgetting,
            "--auto-approve",
        ])
        .expect_code(0);
    assert!(
        run.stderr.contains("Let go (they stay in the account"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("1 to forget"), "{}", run.stderr);
    assert!(
        !run.stderr.contains("instance.worker"),
        "only what was asked: {}",
        run.stderr
    );
    assert!(no_tether_tags(&support::tags(&s3, "keep-results")));
    assert!(
        support::parameter(&ssm, "/tether/keep/buckets/keep-results").is_none(),
        "the record that would let destroy empty it is gone"
    );

    let plan = moto
        .tether(&["plan", "-f", forgetting, "--detailed-exitcode"])
        .expect_code(2);
    assert!(plan.stderr.contains("5 to forget"), "{}", plan.stderr);
    // The group the second spec drops is deleted as always; only what it lists is let go.
    assert!(plan.stderr.contains("1 to delete"), "{}", plan.stderr);
    assert!(
        plan.stderr.contains("- iam_group.admins"),
        "{}",
        plan.stderr
    );
    assert!(
        !plan.stderr.contains("Cost while running"),
        "what is let go of is not the project's to pay for: {}",
        plan.stderr
    );
    let json = moto
        .tether(&["plan", "-f", forgetting, "--json"])
        .expect_code(0);
    let json: serde_json::Value = serde_json::from_str(&json.stdout).expect("plan JSON");
    let actions: BTreeMap<String, String> = json["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["address"].as_str().unwrap().into(),
                c["action"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(actions["instance.worker"], "forget");
    assert_eq!(actions["account.alias"], "forget");

    let applied = moto
        .tether(&["apply", "-f", forgetting, "--auto-approve"])
        .expect_code(0);
    assert!(
        !applied.stderr.contains("keep-results"),
        "let go of already: {}",
        applied.stderr
    );
    let (state, tags) = instance_tags(&ec2, &id);
    assert_eq!(state, "running", "the instance is left as it was");
    assert!(no_tether_tags(&tags), "{tags:?}");
    assert_eq!(
        tags.get("team").map(String::as_str),
        Some("ds"),
        "the user's tags stay"
    );
    assert!(support::parameter(&ssm, "/tether/keep/instances/worker").is_none());
    assert!(support::parameter(&ssm, "/tether/keep/account/alias").is_none());
    let alice = || {
        block_on(async {
            let user = iam
                .get_user()
                .user_name("alice")
                .send()
                .await
                .expect("alice stays");
            let policies = iam
                .list_user_policies()
                .user_name("alice")
                .send()
                .await
                .expect("policies");
            (
                user.user()
                    .map(|u| u.path().to_string())
                    .unwrap_or_default(),
                policies.policy_names().to_vec(),
            )
        })
    };
    assert_eq!(alice(), ("/".to_string(), vec!["read-data".to_string()]));

    // Nothing left to do, then destroy deletes what the project still owns and nothing
    // it let go of.
    moto.tether(&["plan", "-f", forgetting, "--detailed-exitcode"])
        .expect_code(0)
        .expect_stderr("No changes");
    moto.tether(&["destroy", "-f", forgetting, "--auto-approve"])
        .expect_code(0);
    let buckets = support::buckets(&s3);
    assert!(!buckets.contains(&"keep-data".to_string()), "{buckets:?}");
    assert_eq!(
        support::get_object(&s3, "keep-results", "run-1/out.csv").as_deref(),
        Some(&b"a,b\n1,2\n"[..]),
        "the forgotten bucket keeps its data"
    );
    assert_eq!(instance_tags(&ec2, &id).0, "running");
    assert_eq!(alice(), ("/".to_string(), vec!["read-data".to_string()]));
    block_on(async {
        let addresses = ec2.describe_addresses().send().await.expect("addresses");
        assert!(
            addresses
                .addresses()
                .iter()
                .any(|a| a.instance_id() == Some(id.as_str())),
            "the address stays with its instance"
        );
        let groups = ec2
            .describe_security_groups()
            .group_names("keep-ssh")
            .send()
            .await
            .expect("the group stays");
        assert_eq!(groups.security_groups().len(), 1);
        // The group the project kept is destroyed with the rest.
        assert!(iam.get_group().group_name("admins").send().await.is_err());
        let aliases = iam.list_account_aliases().send().await.expect("aliases");
        assert_eq!(aliases.account_aliases(), ["keep-lab"]);
    });
}
