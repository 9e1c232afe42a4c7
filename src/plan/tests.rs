//! Table-driven tests of the planner. Most cases go through two helpers, so the planning
//! API can change without rewriting them: `check` parses a spec, plans against a live
//! state and snapshots the rendered plan (colour stripped); `plan_of` returns the plan
//! itself, for the cases that look at one change. A few (another target, the bundled
//! examples) call `plan` directly.

use std::collections::BTreeMap;

use serde_json::json;

use super::*;
use crate::kinds::{BucketState, LiveResource};
use crate::model::{Kind, OwnershipRecord, PublicAccessBlock, TAG_NAME, TAG_PROJECT};
use crate::render;
use crate::spec;

const REGION: &str = "us-east-1";

fn desired_of(yaml: &str) -> (String, Vec<DesiredResource>) {
    let spec = spec::parse("tether.yaml", yaml).expect("test spec is valid");
    let desired = desired_resources(&spec, REGION, Some(std::path::Path::new("/home/ds")));
    (spec.project, desired)
}

/// The live state an apply of `yaml` leaves behind.
/// The live state after applying `yaml`: as desired, with what apply records (account
/// settings the project created).
fn applied(yaml: &str) -> LiveState {
    let (_, desired) = desired_of(yaml);
    LiveState {
        resources: desired
            .into_iter()
            .map(|d| {
                let mut state = d.state;
                match &mut state {
                    ResourceState::AccountAlias(crate::kinds::AccountAliasState {
                        record, ..
                    })
                    | ResourceState::PasswordPolicy(crate::kinds::PasswordPolicySetting {
                        record,
                        ..
                    }) => {
                        *record = Some(OwnershipRecord::Created);
                    }
                    // Apply records every bucket it creates; the reader reads the record of
                    // those tagged force_destroy.
                    ResourceState::Bucket(bucket)
                        if bucket.tags.contains_key(crate::model::TAG_FORCE_DESTROY) =>
                    {
                        bucket.record = Some(OwnershipRecord::Created);
                    }
                    // Apply records every instance it launches.
                    ResourceState::Instance(instance) => instance.recorded = true,
                    _ => {}
                }
                let live = LiveResource {
                    address: d.address.clone(),
                    state,
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
        record: None,
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

/// The target every test plans for: one account, secrets in Parameter Store.
fn target(project: &str) -> Target {
    Target {
        project: project.to_string(),
        account_id: "123456789012".into(),
        region: REGION.into(),
        secrets: crate::spec::SecretsMode::ParameterStore,
        secrets_dir: "~/.tether/secrets".into(),
        empty_tagged_buckets: false,
        forget: BTreeMap::new(),
    }
}

fn outcome(yaml: &str, live: &LiveState, mode: Mode) -> String {
    let (project, desired) = desired_of(yaml);
    match plan(&target(&project), mode, &desired, live) {
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
region: us-east-1
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
region: us-east-1
";
    let changed = with_policy.replace("s3:ListBucket", "s3:GetObjectVersion");
    check(
        "policy_statement_changed",
        &changed,
        &applied(with_policy),
        Mode::Apply,
    );

    let removed =
        "project: lab\nbuckets:\n  lab-data:\n    public_read: true\n    tags: {team: ds}\nregion: us-east-1\n";
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

    let adopting = "project: lab\nbuckets:\n  lab-data:\n    adopt: true\n    tags: {team: ds}\nregion: us-east-1\n";
    let mut unowned = LiveState::default();
    foreign_bucket(&mut unowned, "lab-data", &[("team", "ds")]);
    check("adopt_tags_and_manages", adopting, &unowned, Mode::Apply);
    check(
        "adopted_bucket_converges",
        adopting,
        &applied(adopting),
        Mode::Apply,
    );

    let other_adopting =
        "project: lab\nbuckets:\n  lab-private:\n    adopt: true\nregion: us-east-1\n";
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
region: us-east-1
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
        &target(&project),
        Mode::Apply,
        &desired,
        &LiveState::default(),
    )
    .expect("plan");
    let text = serde_json::to_string(&plan).expect("serialise");
    let back: Plan = serde_json::from_str(&text).expect("deserialise");
    assert_eq!(back, plan);
    let value: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(value["format_version"], 2);
    assert_eq!(value["account_id"], "123456789012");
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
region: us-east-1
";

fn plan_of(yaml: &str, live: &LiveState, mode: Mode) -> Plan {
    let (project, desired) = desired_of(yaml);
    plan(&target(&project), mode, &desired, live).expect("plan")
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
    let kept =
        "project: lab\niam:\n  users:\n    erich: {console_access: true}\nregion: us-east-1\n";
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

const LAB_SPEC: &str = "\
project: lab
key_pairs:
  lab-key: {private_key_file: ~/.ssh/lab-key.pem}
security_groups:
  ssh-from-home:
    ingress: [{port: 22, cidr: 203.0.113.7/32}]
instances:
  worker:
    ami: ami-0abcdef1234567890
    type: m5.xlarge
    key_pair: lab-key
    security_groups: [ssh-from-home]
    root_volume_gb: 50
    volumes: [{device: /dev/sdf, size_gb: 100}]
elastic_ips:
  worker-ip: {instance: worker}
region: us-east-1
";

fn edited(from: &str, to: &str) -> String {
    assert!(LAB_SPEC.contains(from), "{from}");
    LAB_SPEC.replace(from, to)
}

#[test]
fn instance_planner_table() {
    let live = applied(LAB_SPEC);
    check("lab_create", LAB_SPEC, &LiveState::default(), Mode::Apply);
    check("lab_converged", LAB_SPEC, &live, Mode::Apply);
    check(
        "instance_type_change_stops_and_starts",
        &edited("m5.xlarge", "m5.2xlarge"),
        &live,
        Mode::Apply,
    );
    check(
        "instance_ami_change_replaces_and_the_address_follows",
        &edited("ami-0abcdef1234567890", "ami-0fedcba9876543210"),
        &live,
        Mode::Apply,
    );
    check(
        "instance_volume_growth_is_in_place",
        &edited("size_gb: 100", "size_gb: 200").replace("root_volume_gb: 50", "root_volume_gb: 80"),
        &live,
        Mode::Apply,
    );
    check(
        "instance_volume_shrink_replaces",
        &edited("root_volume_gb: 50", "root_volume_gb: 20"),
        &live,
        Mode::Apply,
    );
    check(
        "instance_stop",
        &edited("    volumes:", "    state: stopped\n    volumes:"),
        &live,
        Mode::Apply,
    );
    check("lab_destroy", LAB_SPEC, &live, Mode::Destroy);
}

#[test]
fn an_undeclared_key_pair_that_does_not_exist_is_an_error_at_the_spec_line() {
    let yaml = "project: lab\ninstances:\n  worker:\n    ami: ami-0abcdef1234567890\n    type: t3.micro\n    key_pair: old-key\nregion: us-east-1\n";
    insta::assert_snapshot!(outcome(yaml, &LiveState::default(), Mode::Apply));
    // One that exists in the account (whoever owns it) is fine, and is not deleted.
    let mut live = LiveState::default();
    live.resources.insert(
        Address::new(Kind::KeyPair, "old-key"),
        LiveResource {
            address: Address::new(Kind::KeyPair, "old-key"),
            state: ResourceState::KeyPair(crate::kinds::KeyPairState {
                tags: BTreeMap::new(),
                public_key_file: None,
                private_key: None,
                private_key_file: None,
                id: None,
            }),
            depends_on: Vec::new(),
        },
    );
    let plan = plan_of(yaml, &live, Mode::Apply);
    assert_eq!(plan.summary().create, 1);
    assert_eq!(plan.summary().delete, 0);
}

#[test]
fn an_image_lookup_keeps_a_matching_image_and_takes_the_newest_for_a_launch() {
    use crate::model::ImageCandidate;
    let yaml = "project: lab\ninstances:\n  worker:\n    ami: {name: \"DSI-Template*\", owner: self}\n    type: t3.micro\nregion: us-east-1\n";
    let key = "newest image named `DSI-Template*` owned by self".to_string();
    let candidates = vec![
        ImageCandidate {
            id: "ami-00000001".into(),
            created: "2026-01-01T00:00:00.000Z".into(),
        },
        ImageCandidate {
            id: "ami-00000002".into(),
            created: "2026-06-01T00:00:00.000Z".into(),
        },
    ];
    let mut live = LiveState::default();
    live.images.insert(key.clone(), candidates);
    let ami_of = |plan: &Plan| match &plan.changes[0].after {
        Some(ResourceState::Instance(instance)) => instance.ami.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(ami_of(&plan_of(yaml, &live, Mode::Apply)), "ami-00000002");

    // An instance launched from the older image still matches: no replacement.
    let (_, desired) = desired_of(yaml);
    let ResourceState::Instance(mut running) = desired[0].state.clone() else {
        panic!("instance")
    };
    running.ami = "ami-00000001".into();
    running.image_lookup = None;
    running.recorded = true;
    live.resources.insert(
        desired[0].address.clone(),
        LiveResource {
            address: desired[0].address.clone(),
            state: ResourceState::Instance(running),
            depends_on: Vec::new(),
        },
    );
    let plan = plan_of(yaml, &live, Mode::Apply);
    assert!(!plan.has_changes(), "{:?}", plan.changes[0]);

    // No match at all is an error pointing at the instance.
    live.images.insert(key, Vec::new());
    live.resources.clear();
    insta::assert_snapshot!(outcome(yaml, &live, Mode::Apply));
}

const POLICY_SPEC: &str = "\
project: lab
account:
  alias: lab-alias
  password_policy:
    minimum_length: 14
    require_numbers: true
region: us-east-1
";

/// The account a security team set up before the project: a strict policy and an alias.
fn set_by_security_team() -> LiveState {
    let mut live = LiveState::default();
    for (name, state) in [
        (
            crate::model::ACCOUNT_ALIAS,
            ResourceState::AccountAlias(crate::kinds::AccountAliasState {
                alias: "lab-alias".into(),
                record: None,
            }),
        ),
        (
            crate::model::ACCOUNT_PASSWORD_POLICY,
            ResourceState::PasswordPolicy(crate::kinds::PasswordPolicySetting {
                policy: crate::model::PasswordPolicyState {
                    minimum_length: 20,
                    require_symbols: true,
                    require_numbers: true,
                    require_uppercase: false,
                    require_lowercase: false,
                    allow_users_to_change_password: true,
                    max_age_days: Some(90),
                    reuse_prevention: Some(5),
                    hard_expiry: false,
                },
                record: None,
            }),
        ),
    ] {
        let address = Address::new(Kind::Account, name);
        live.resources.insert(
            address.clone(),
            LiveResource {
                address,
                state,
                depends_on: Vec::new(),
            },
        );
    }
    live
}

// Regression: a declared password policy silently replaced (and weakened) the one a
// security team had set, and destroy then deleted it.
#[test]
fn account_settings_someone_else_set_are_refused_until_adopted() {
    let live = set_by_security_team();
    insta::assert_snapshot!(
        "account_settings_unowned",
        outcome(POLICY_SPEC, &live, Mode::Apply)
    );
    let adopting = POLICY_SPEC
        .replace("alias: lab-alias", "alias: {name: lab-alias, adopt: true}")
        .replace("minimum_length: 14", "minimum_length: 14\n    adopt: true");
    let plan = plan_of(&adopting, &live, Mode::Apply);
    let policy = plan
        .changes
        .iter()
        .find(|c| c.address.name == crate::model::ACCOUNT_PASSWORD_POLICY)
        .expect("policy change");
    assert_eq!(policy.action, Action::Adopt);
    assert_eq!(
        policy.weakens,
        [
            "minimum_length 20 -> 14",
            "require_symbols true -> false",
            "max_age_days 90 -> none",
            "reuse_prevention 5 -> none",
        ]
    );
    insta::assert_snapshot!(
        "account_settings_adopted",
        outcome(&adopting, &live, Mode::Apply)
    );
    let json = serde_json::to_value(&plan).expect("json");
    assert_eq!(
        json["changes"][1]["weakens"][0], "minimum_length 20 -> 14",
        "the JSON plan marks the weakening too"
    );
}

#[test]
fn destroy_leaves_adopted_settings_and_deletes_created_ones() {
    let mut live = set_by_security_team();
    for resource in live.resources.values_mut() {
        match &mut resource.state {
            ResourceState::AccountAlias(crate::kinds::AccountAliasState { record, .. }) => {
                *record = Some(OwnershipRecord::Adopted);
            }
            ResourceState::PasswordPolicy(crate::kinds::PasswordPolicySetting {
                record, ..
            }) => {
                *record = Some(OwnershipRecord::Created);
            }
            _ => {}
        }
    }
    let plan = plan_of(POLICY_SPEC, &live, Mode::Destroy);
    let action = |name: &str| {
        plan.changes
            .iter()
            .find(|c| c.address.name == name)
            .map(|c| (c.action, c.reason.clone().unwrap_or_default()))
    };
    let (alias_action, alias_reason) = action(crate::model::ACCOUNT_ALIAS).expect("alias listed");
    assert_eq!(alias_action, Action::NoOp);
    assert!(alias_reason.contains("adopted"), "{alias_reason}");
    assert_eq!(
        action(crate::model::ACCOUNT_PASSWORD_POLICY).map(|a| a.0),
        Some(Action::Delete)
    );
    insta::assert_snapshot!(
        "destroy_leaves_adopted",
        outcome(POLICY_SPEC, &live, Mode::Destroy)
    );
}

// Regression: a second operator without the first one's local files planned to revoke the
// team's access key and replace its key pair. Only the account decides now.
#[test]
fn secrets_are_reissued_only_when_the_account_says_a_run_died_before_storing_them() {
    let yaml = "project: lab\niam:\n  users:\n    erich: {programmatic_access: true}\nkey_pairs:\n  lab-key: {private_key_file: ~/.ssh/lab-key.pem}\nregion: us-east-1\n";
    let mut live = applied(yaml);
    for resource in live.resources.values_mut() {
        match &mut resource.state {
            ResourceState::IamUser(user) => user.stored_access_key = Some("AKIDEXAMPLE".into()),
            ResourceState::KeyPair(key) => {
                key.private_key = Some(crate::kinds::PrivateKeyRecord::ParameterStore);
                key.private_key_file = None;
            }
            _ => {}
        }
    }
    let plan = plan_of(yaml, &live, Mode::Apply);
    assert!(!plan.has_changes(), "{}", render::plan_text(&plan));
    for resource in live.resources.values_mut() {
        match &mut resource.state {
            ResourceState::IamUser(user) => user.stored_access_key = Some("pending".into()),
            ResourceState::KeyPair(key) => {
                key.private_key = Some(crate::kinds::PrivateKeyRecord::Pending);
            }
            _ => {}
        }
    }
    insta::assert_snapshot!("secrets_left_pending", outcome(yaml, &live, Mode::Apply));
    let plan = plan_of(yaml, &live, Mode::Apply);
    let user = plan
        .changes
        .iter()
        .find(|c| c.address.kind == Kind::IamUser)
        .expect("user");
    assert!(user.reissue_secret);
}

// Regression: a bucket given the project's tags and `tether:force-destroy` out of band was
// emptied by the next apply. Without the project's record, only the command line empties.
#[test]
fn a_bucket_tagged_force_destroy_without_the_projects_record_is_not_emptied() {
    let mut live = LiveState::default();
    foreign_bucket(
        &mut live,
        "planted",
        &[
            (TAG_PROJECT, "lab"),
            (TAG_NAME, "planted"),
            (crate::model::TAG_FORCE_DESTROY, "true"),
        ],
    );
    let (project, desired) = desired_of("project: lab\n");
    let kept = plan(&target(&project), Mode::Apply, &desired, &live).expect("plan");
    let change = kept.change(&Address::bucket("planted")).expect("delete");
    assert_eq!(change.action, Action::Delete);
    assert!(!change.empty_bucket);
    assert!(
        change.reason.as_deref().is_some_and(|r| r.contains(
            "no record of the project's shows it created the bucket, so its contents are kept"
        )),
        "{change:?}"
    );
    let told = Target {
        empty_tagged_buckets: true,
        ..target(&project)
    };
    let emptied = plan(&told, Mode::Apply, &desired, &live).expect("plan");
    let change = emptied.change(&Address::bucket("planted")).expect("delete");
    assert!(change.empty_bucket);
    assert!(change
        .reason
        .as_deref()
        .is_some_and(|r| r.contains("(--empty-tagged-buckets)")));
}

/// The bundled examples planned against an empty account, as text and as JSON: the guard
/// that a change to the planner's shape (one module per kind, say) changes no plan.
#[test]
fn the_bundled_examples_plan_the_same() {
    for (name, yaml) in [
        (
            "quickstart",
            include_str!("../../examples/quickstart/tether.yaml"),
        ),
        (
            "lab_workflow",
            include_str!("../../examples/lab-workflow/tether.yaml"),
        ),
        ("specs_lab", include_str!("../../specs/lab.yaml")),
    ] {
        let spec = spec::parse("tether.yaml", yaml).expect("a valid example");
        let desired = desired_resources(&spec, REGION, Some(std::path::Path::new("/home/ds")));
        // An empty account, but for one image that each image lookup finds.
        let mut live = LiveState::default();
        for lookup in spec.image_lookups() {
            live.images.insert(
                lookup.key(),
                vec![crate::model::ImageCandidate {
                    id: "ami-0123456789abcdef0".into(),
                    created: "2026-11-01T00:00:00.000Z".into(),
                }],
            );
        }
        let plan = plan(&target(&spec.project), Mode::Apply, &desired, &live).expect("plan");
        let text = anstream::adapter::strip_str(&render::plan_text(&plan)).to_string();
        insta::assert_snapshot!(format!("example_{name}_text"), text);
        insta::assert_json_snapshot!(format!("example_{name}_json"), plan);
    }
}

#[test]
fn the_plan_prices_its_instances_disks_and_addresses_and_what_stopping_saves() {
    let yaml = "project: lab
region: us-east-1
instances:
  worker:
    ami: ami-0123456789abcdef0
    type: m5.xlarge
    root_volume_gb: 50
    volumes: [{device: /dev/sdf, size_gb: 100, type: gp3}]
  spare:
    ami: ami-0123456789abcdef0
    type: t3.micro
    market: spot
    root_volume_gb: 8
    state: stopped
  odd:
    ami: ami-0123456789abcdef0
    type: x9z.huge
    root_volume_gb: 8
    state: stopped
elastic_ips:
  worker-ip: {instance: worker}
";
    let plan = plan_of(yaml, &LiveState::default(), Mode::Apply);
    let costs = shipped_costs(&plan).expect("instances to price");
    let by_name = |name: &str| {
        costs
            .instances
            .iter()
            .find(|i| i.name == name)
            .expect("priced")
            .clone()
    };
    let worker = by_name("worker");
    assert_eq!(worker.hourly, Some(0.192));
    assert_eq!(worker.disk_gib, 150);
    assert!((worker.disks_monthly.expect("known") - 12.0).abs() < 1e-9);
    let spare = by_name("spare");
    assert_eq!(
        spare.hourly,
        Some(0.0104),
        "a spot ceiling: the on-demand price"
    );
    assert!(spare.hourly_is_ceiling);
    assert_eq!(by_name("odd").hourly, None);
    // Running: the worker and the address; the stopped ones pay for disks only.
    assert!((costs.running_hourly.expect("known") - 0.197).abs() < 1e-9);
    assert_eq!(
        costs.stopped_saves_hourly, None,
        "one stopped type is unknown"
    );
    assert!((costs.disks_monthly.expect("known") - (150.0 + 8.0 + 8.0) * 0.08).abs() < 1e-9);
    let text = render::costs_text(&costs);
    for line in [
        "Cost while running (us-east-1, USD; prices: the table shipped with tether of 2025-01):",
        "worker  m5.xlarge  on-demand  running  $0.192/h",
        "disks 150 GiB $12.00/month",
        "spare   t3.micro   spot       stopped  at most $0.0104/h",
        "odd     x9z.huge   on-demand  stopped  price unknown",
        "1 Elastic IP: $0.005/h, running instances or not",
        "Total: $0.197/h (about $143.81 a month); disks $13.28/month.",
        "`state: stopped` saves their compute (price unknown) on odd, spare",
    ] {
        assert!(text.contains(line), "{line:?} missing from\n{text}");
    }
    // Outside the table's regions every price is unknown, never guessed.
    let mut elsewhere = plan.clone();
    elsewhere.region = "eu-west-1".into();
    let costs = shipped_costs(&elsewhere).expect("instances");
    assert!(costs
        .instances
        .iter()
        .all(|i| i.hourly.is_none() && i.disks_monthly.is_none()));
    assert_eq!(costs.running_hourly, None);
    // A destroy plan keeps nothing to price.
    assert_eq!(
        shipped_costs(&plan_of(yaml, &applied(yaml), Mode::Destroy)),
        None
    );
}

/// The plan's costs at the shipped table's prices, on a day they are fresh.
fn shipped_costs(plan: &Plan) -> Option<crate::pricing::Costs> {
    let prices = crate::pricing::Prices::shipped(&plan.region);
    crate::pricing::plan_costs(plan, &prices, time::macros::date!(2025 - 01 - 15))
}

/// The target of a spec that lists resources under `forget:`.
fn forgetting_target(spec: &spec::Spec) -> Target {
    Target {
        forget: spec
            .forget
            .iter()
            .map(|(address, location)| (address.clone(), Some(location.clone())))
            .collect(),
        ..target(&spec.project)
    }
}

#[test]
fn forgetting_takes_off_the_marks_and_deletes_nothing() {
    let before = "\
project: lab
region: us-east-1
account:
  alias: lab-alias
iam:
  users:
    alice: {}
buckets:
  lab-data:
    tags: {team: ds}
  lab-private:
    force_destroy: true
    tags: {team: ds}
";
    let live = applied(before);
    let after = "\
project: lab
region: us-east-1
buckets:
  lab-data:
    tags: {team: ds}
forget: [bucket.lab-private, iam_user.alice, account.alias, bucket.never-ours]
";
    let spec = spec::parse("tether.yaml", after).expect("valid");
    let desired = desired_resources(&spec, REGION, None);
    let target = forgetting_target(&spec);
    for mode in [Mode::Apply, Mode::Destroy] {
        let plan = plan(&target, mode, &desired, &live).expect("plan");
        let forgotten: Vec<String> = plan
            .changes
            .iter()
            .filter(|c| c.action == Action::Forget)
            .map(|c| c.address.to_string())
            .collect();
        assert_eq!(
            forgotten,
            ["bucket.lab-private", "iam_user.alice", "account.alias"],
            "{mode:?}"
        );
        // What is let go of is never deleted, not even by destroy; what never was the
        // project's is not in the plan at all.
        for change in &plan.changes {
            if target.forget.contains_key(&change.address) {
                assert_ne!(change.action, Action::Delete, "{}", change.address);
            }
        }
        assert!(plan.change(&Address::bucket("never-ours")).is_none());
        let bucket = plan
            .change(&Address::bucket("lab-private"))
            .expect("bucket");
        match bucket.after.as_ref().expect("after") {
            ResourceState::Bucket(after) => {
                assert_eq!(
                    after.tags,
                    BTreeMap::from([("team".to_string(), "ds".to_string())])
                );
                assert_eq!(after.record, None);
                assert!(after.public_access_block.is_some(), "the rest stays");
            }
            other => panic!("{other:?}"),
        }
        let user = plan
            .change(&Address::new(Kind::IamUser, "alice"))
            .expect("user");
        assert!(user.attributes.iter().any(|a| a.name == "path"
            && a.before == json!("/tether/lab/")
            && a.after == json!("/")));
        let text = anstream::adapter::strip_str(&render::plan_text(&plan)).to_string();
        assert!(text.contains("Let go (they stay in the account"), "{text}");
        assert!(text.contains("3 to forget."), "{text}");
    }
    // In apply, the bucket the spec keeps is left alone; in destroy it goes.
    let applying = plan(&target, Mode::Apply, &desired, &live).expect("plan");
    let kept = applying.change(&Address::bucket("lab-data")).expect("kept");
    assert_eq!(kept.action, Action::NoOp);
    let destroying = plan(&target, Mode::Destroy, &desired, &live).expect("plan");
    let kept = destroying
        .change(&Address::bucket("lab-data"))
        .expect("kept");
    assert_eq!(kept.action, Action::Delete);

    // Forgotten already: nothing left to do.
    let mut gone = live.clone();
    for change in applying
        .changes
        .iter()
        .filter(|c| c.action == Action::Forget)
    {
        let resource = gone.resources.get_mut(&change.address).expect("live");
        resource.state = change.after.clone().expect("after");
    }
    let again = plan(&target, Mode::Apply, &desired, &gone).expect("plan");
    assert!(!again.has_account_changes(), "{again:?}");
}

#[test]
fn what_the_spec_declares_or_tether_cannot_let_go_of_is_refused_at_the_forget_line() {
    let yaml = "\
project: lab
region: us-east-1
buckets:
  lab-data: {}
iam:
  roles:
    worker:
      assumed_by: [ec2.amazonaws.com]
forget:
  - bucket.lab-data
";
    let live = applied(yaml);
    let spec = spec::parse("tether.yaml", yaml).expect("valid");
    let desired = desired_resources(&spec, REGION, None);
    let error = plan(&forgetting_target(&spec), Mode::Apply, &desired, &live)
        .expect_err("declared and forgotten")
        .to_string();
    assert!(
        error.contains("bucket.lab-data is declared in the spec and also to be forgotten"),
        "{error}"
    );
    assert!(error.contains("tether.yaml:10:"), "{error}");

    // A role's path cannot change: it cannot be let go of.
    let role_live = applied(yaml);
    let without_role = yaml.replace(
        "iam:\n  roles:\n    worker:\n      assumed_by: [ec2.amazonaws.com]\n",
        "",
    );
    let desired = desired_of(&without_role.replace("bucket.lab-data", "bucket.other")).1;
    let target = Target {
        forget: BTreeMap::from([(Address::new(Kind::IamRole, "worker"), None)]),
        ..target("lab")
    };
    let error = plan(&target, Mode::Apply, &desired, &role_live)
        .expect_err("a role")
        .to_string();
    assert!(
        error.contains("iam_role.worker cannot be forgotten: IAM cannot change a role's path"),
        "{error}"
    );

    // Bad entries are spec errors with their line.
    let bad = "project: lab\nregion: us-east-1\nforget:\n  - bucket\n  - iam_role.worker\n  - bucket.a\n  - bucket.a\n";
    let error = spec::parse("tether.yaml", bad)
        .expect_err("bad")
        .to_string();
    assert!(error.contains("tether.yaml:4:"), "{error}");
    assert!(
        error.contains("is not an address like `bucket.name`"),
        "{error}"
    );
    assert!(error.contains("tether.yaml:5:"), "{error}");
    assert!(
        error.contains("cannot let go of `iam_role` resources"),
        "{error}"
    );
    assert!(error.contains("`bucket.a` is listed twice"), "{error}");
}

#[test]
fn an_id_to_adopt_that_the_account_does_not_show_is_refused_not_launched_anew() {
    let yaml = "\
project: lab
region: us-east-1
instances:
  worker:
    ami: ami-1e749f67
    type: t3.micro
    adopt: true
    id: i-0123456789abcdef0
elastic_ips:
  worker-ip:
    instance: worker
    adopt: true
    allocation_id: eipalloc-0123456789abcdef0
";
    let (project, desired) = desired_of(yaml);
    let error = plan(
        &target(&project),
        Mode::Apply,
        &desired,
        &LiveState::default(),
    )
    .expect_err("nothing to adopt")
    .to_string();
    assert!(
        error.contains(
            "instance.worker adopts i-0123456789abcdef0, which the account does not show"
        ),
        "{error}"
    );
    assert!(
        error.contains(
            "elastic_ip.worker-ip adopts eipalloc-0123456789abcdef0, which the account does not show"
        ),
        "{error}"
    );
}
