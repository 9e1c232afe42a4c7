//! Table-driven tests of the planner. `check` is the only caller of the planning API: it
//! parses a spec, plans against a live state and snapshots the rendered plan (colour
//! stripped), so the API can change without rewriting the cases.

use std::collections::BTreeMap;

use serde_json::json;

use super::*;
use crate::model::{BucketState, LiveResource, PublicAccessBlock, TAG_NAME, TAG_PROJECT};
use crate::render;
use crate::spec;

const REGION: &str = "us-east-1";

fn desired_of(yaml: &str) -> (String, Vec<DesiredResource>) {
    let spec = spec::parse("tether.yaml", yaml).expect("test spec is valid");
    let desired = desired_resources(&spec, REGION, Some(std::path::Path::new("/home/ds")));
    (spec.project, desired)
}

/// The live state an apply of `yaml` leaves behind.
fn applied(yaml: &str) -> LiveState {
    let (_, desired) = desired_of(yaml);
    LiveState {
        resources: desired
            .into_iter()
            .map(|d| {
                let live = LiveResource {
                    address: d.address.clone(),
                    state: d.state,
                    depends_on: Vec::new(),
                };
                (d.address, live)
            })
            .collect(),
        ..LiveState::default()
    }
}

fn bucket_mut<'a>(live: &'a mut LiveState, name: &str) -> &'a mut BucketState {
    match &mut live
        .resources
        .get_mut(&Address::bucket(name))
        .expect("bucket in live state")
        .state
    {
        ResourceState::Bucket(bucket) => bucket,
        other => panic!("not a bucket: {other:?}"),
    }
}

fn foreign_bucket(live: &mut LiveState, name: &str, tags: &[(&str, &str)]) {
    let state = ResourceState::Bucket(BucketState {
        tags: tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        policy: None,
        public_access_block: None,
    });
    live.resources.insert(
        Address::bucket(name),
        LiveResource {
            address: Address::bucket(name),
            state,
            depends_on: Vec::new(),
        },
    );
}

fn outcome(yaml: &str, live: &LiveState, mode: Mode) -> String {
    let (project, desired) = desired_of(yaml);
    match plan(&project, REGION, "/secrets", mode, &desired, live) {
        Ok(plan) => anstream::adapter::strip_str(&render::plan_text(&plan)).to_string(),
        Err(error) => format!("error: {error}"),
    }
}

fn check(name: &str, yaml: &str, live: &LiveState, mode: Mode) {
    insta::assert_snapshot!(name, outcome(yaml, live, mode), yaml);
}

const SPEC: &str = "\
project: lab
buckets:
  lab-data:
    public_read: true
    tags: {team: ds}
  lab-private:
    force_destroy: true
";

#[test]
fn planner_table() {
    let empty = LiveState::default();
    check(
        "create_everything_in_an_empty_account",
        SPEC,
        &empty,
        Mode::Apply,
    );
    check("no_changes_after_apply", SPEC, &applied(SPEC), Mode::Apply);

    let mut drifted = applied(SPEC);
    bucket_mut(&mut drifted, "lab-data").tags.remove("team");
    bucket_mut(&mut drifted, "lab-private").public_access_block = None;
    check("out_of_band_drift_shows", SPEC, &drifted, Mode::Apply);

    let edited = SPEC.replace("public_read: true", "public_read: false");
    check("policy_removed", &edited, &applied(SPEC), Mode::Apply);

    let with_policy = "\
project: lab
buckets:
  lab-data:
    policy:
      Version: \"2012-10-17\"
      Statement:
        - Effect: Allow
          Principal: {AWS: arn:aws:iam::123456789012:root}
          Action: [s3:GetObject, s3:ListBucket]
          Resource: [arn:aws:s3:::lab-data, arn:aws:s3:::lab-data/*]
";
    let changed = with_policy.replace("s3:ListBucket", "s3:GetObjectVersion");
    check(
        "policy_statement_changed",
        &changed,
        &applied(with_policy),
        Mode::Apply,
    );

    let removed =
        "project: lab\nbuckets:\n  lab-data:\n    public_read: true\n    tags: {team: ds}\n";
    check(
        "bucket_removed_from_spec_is_deleted",
        removed,
        &applied(SPEC),
        Mode::Apply,
    );

    let mut with_strangers = applied(SPEC);
    foreign_bucket(&mut with_strangers, "someone-elses", &[("team", "ml")]);
    foreign_bucket(
        &mut with_strangers,
        "other-project",
        &[(TAG_PROJECT, "other"), (TAG_NAME, "other-project")],
    );
    check(
        "destroy_deletes_only_owned",
        SPEC,
        &with_strangers,
        Mode::Destroy,
    );
    check(
        "unrelated_buckets_are_left_alone",
        SPEC,
        &with_strangers,
        Mode::Apply,
    );

    let mut taken = LiveState::default();
    foreign_bucket(&mut taken, "lab-data", &[("team", "ds")]);
    foreign_bucket(
        &mut taken,
        "lab-private",
        &[(TAG_PROJECT, "other"), (TAG_NAME, "lab-private")],
    );
    check(
        "unowned_and_foreign_buckets_are_refused",
        SPEC,
        &taken,
        Mode::Apply,
    );

    let adopting = "project: lab\nbuckets:\n  lab-data:\n    adopt: true\n    tags: {team: ds}\n";
    let mut unowned = LiveState::default();
    foreign_bucket(&mut unowned, "lab-data", &[("team", "ds")]);
    check("adopt_tags_and_manages", adopting, &unowned, Mode::Apply);
    check(
        "adopted_bucket_converges",
        adopting,
        &applied(adopting),
        Mode::Apply,
    );

    let other_adopting = "project: lab\nbuckets:\n  lab-private:\n    adopt: true\n";
    check(
        "adopt_never_takes_from_another_project",
        other_adopting,
        &taken,
        Mode::Apply,
    );
}

#[test]
fn semantically_equal_policies_are_no_change() {
    let spec = "\
project: lab
buckets:
  lab-data:
    policy: '{\"Version\": \"2012-10-17\", \"Statement\": {\"Effect\": \"Allow\", \"Principal\": {\"AWS\": [\"arn:aws:iam::2:root\", \"arn:aws:iam::1:root\"]}, \"Action\": [\"s3:ListBucket\", \"s3:GetObject\"], \"Resource\": [\"arn:aws:s3:::lab-data/*\", \"arn:aws:s3:::lab-data\"]}}'
";
    let mut live = applied(spec);
    // What AWS might return: keys reordered, lists in another order.
    bucket_mut(&mut live, "lab-data").policy = Some(crate::policy::normalise(&json!({
        "Statement": [{
            "Resource": ["arn:aws:s3:::lab-data", "arn:aws:s3:::lab-data/*"],
            "Action": ["s3:GetObject", "s3:ListBucket"],
            "Principal": {"AWS": ["arn:aws:iam::1:root", "arn:aws:iam::2:root"]},
            "Effect": "Allow"
        }],
        "Version": "2012-10-17"
    })));
    assert_eq!(
        outcome(spec, &live, Mode::Apply),
        "No changes. The account matches the spec.\n"
    );
}

#[test]
fn public_access_block_follows_the_policy() {
    let (_, desired) = desired_of(SPEC);
    let blocks: BTreeMap<String, Option<PublicAccessBlock>> = desired
        .iter()
        .filter_map(|d| match &d.state {
            ResourceState::Bucket(b) => Some((d.address.name.clone(), b.public_access_block)),
            _ => None,
        })
        .collect();
    assert_eq!(
        blocks["lab-data"],
        Some(PublicAccessBlock::for_policy(true))
    );
    assert_eq!(
        blocks["lab-private"],
        Some(PublicAccessBlock::for_policy(false))
    );
}

#[test]
fn plan_json_round_trips_for_saved_plans() {
    let (project, desired) = desired_of(SPEC);
    let plan = plan(
        &project,
        REGION,
        "/secrets",
        Mode::Apply,
        &desired,
        &LiveState::default(),
    )
    .expect("plan");
    let text = serde_json::to_string(&plan).expect("serialise");
    let back: Plan = serde_json::from_str(&text).expect("deserialise");
    assert_eq!(back, plan);
    let value: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(value["format_version"], 1);
    assert_eq!(value["changes"][0]["address"], "bucket.lab-data");
    assert_eq!(value["changes"][0]["action"], "create");
}

const IAM_SPEC: &str = "\
project: lab
account:
  alias: lab-alias
iam:
  groups:
    admins:
      policies: [arn:aws:iam::aws:policy/AdministratorAccess]
  users:
    erich:
      groups: [admins]
      console_access: true
";

fn plan_of(yaml: &str, live: &LiveState, mode: Mode) -> Plan {
    let (project, desired) = desired_of(yaml);
    plan(&project, REGION, "/secrets", mode, &desired, live).expect("plan")
}

#[test]
fn iam_planner_table() {
    check(
        "iam_create_with_secret_note",
        IAM_SPEC,
        &LiveState::default(),
        Mode::Apply,
    );
    check("iam_converged", IAM_SPEC, &applied(IAM_SPEC), Mode::Apply);
    // Without the account and iam sections: the user and group go, the alias stays.
    check(
        "iam_removed_keeps_the_singleton",
        "project: lab\n",
        &applied(IAM_SPEC),
        Mode::Apply,
    );
    check(
        "iam_destroy_deletes_the_declared_singleton",
        IAM_SPEC,
        &applied(IAM_SPEC),
        Mode::Destroy,
    );
}

#[test]
fn a_group_is_deleted_after_the_users_that_leave_it() {
    let mut live = applied(IAM_SPEC);
    // The live user is in the group, as the reader reports it.
    let user = live
        .resources
        .get_mut(&Address::new(crate::model::Kind::IamUser, "erich"))
        .expect("user");
    user.depends_on = vec![Address::new(crate::model::Kind::IamGroup, "admins")];
    let plan = plan_of("project: lab\n", &live, Mode::Apply);
    let group = plan
        .changes
        .iter()
        .find(|c| c.address.to_string() == "iam_group.admins")
        .expect("group change");
    assert_eq!(group.action, Action::Delete);
    assert_eq!(
        group.depends_on,
        [Address::new(crate::model::Kind::IamUser, "erich")]
    );

    // A user staying in the spec but leaving the group holds the group's deletion too.
    let kept = "project: lab\niam:\n  users:\n    erich: {console_access: true}\n";
    let plan = plan_of(kept, &live, Mode::Apply);
    let group = plan
        .changes
        .iter()
        .find(|c| c.address.to_string() == "iam_group.admins")
        .expect("group change");
    assert_eq!(
        group.depends_on,
        [Address::new(crate::model::Kind::IamUser, "erich")]
    );
}

#[test]
fn a_missing_managed_policy_is_an_error_at_the_spec_line() {
    let mut live = LiveState::default();
    live.missing_policies
        .insert("arn:aws:iam::aws:policy/AdministratorAccess".to_string());
    insta::assert_snapshot!(outcome(IAM_SPEC, &live, Mode::Apply));
}
