//! End-to-end tests of S3 buckets: the real `tether` binary against a real moto server, with
//! the account checked afterwards through the SDK, not through tether's own reading.

mod support;

use serde_json::{json, Value};
use support::{block_on, buckets, create_bucket, policy, put_object, tags, Moto};

const LAB_SPEC: &str = include_str!("../specs/lab.yaml");

#[test]
fn lab_spec_applies_converges_and_a_second_apply_is_a_no_op() {
    let moto = Moto::start();
    moto.write("tether.yaml", LAB_SPEC);
    moto.tether(&["apply", "--auto-approve"])
        .expect_code(0)
        .expect_stderr("Plan: 10 to create, 0 to update, 0 to replace, 0 to delete. This machine's SSH aliases change too")
        .expect_stderr("Apply complete");

    let s3 = moto.s3("us-east-1");
    assert_eq!(buckets(&s3), ["dsi-lab-data", "dsi-lab-results"]);
    let data_tags = tags(&s3, "dsi-lab-data");
    assert_eq!(
        data_tags.get("tether:project").map(String::as_str),
        Some("dsi-lab")
    );
    assert_eq!(
        data_tags.get("tether:name").map(String::as_str),
        Some("dsi-lab-data")
    );
    assert_eq!(data_tags.get("team").map(String::as_str), Some("ds"));
    assert_eq!(
        tags(&s3, "dsi-lab-results")
            .get("tether:force-destroy")
            .map(String::as_str),
        Some("true")
    );
    let statement = &policy(&s3, "dsi-lab-data").expect("public read policy")["Statement"][0];
    assert_eq!(statement["Principal"], "*");
    assert_eq!(statement["Action"], "s3:GetObject");
    assert_eq!(statement["Resource"], "arn:aws:s3:::dsi-lab-data/*");
    assert_eq!(policy(&s3, "dsi-lab-results"), None);
    let block = block_on(async {
        s3.get_public_access_block()
            .bucket("dsi-lab-data")
            .send()
            .await
            .expect("public access block")
    });
    let block = block
        .public_access_block_configuration()
        .expect("configuration");
    assert_eq!(
        block.block_public_policy(),
        Some(false),
        "the public-read policy must be able to take effect"
    );
    assert_eq!(block.block_public_acls(), Some(true));

    moto.tether(&["plan", "--detailed-exitcode"])
        .expect_code(0)
        .expect_stderr("No changes.");
    moto.tether(&["apply", "--auto-approve"])
        .expect_code(0)
        .expect_stderr("Nothing to apply.");
}

#[test]
fn policy_update_shows_a_diff_applies_and_converges() {
    let moto = Moto::start();
    let spec = "project: lab\nbuckets:\n  lab-share:\n    policy:\n      Version: \"2012-10-17\"\n      Statement:\n        - Sid: Partner\n          Effect: Allow\n          Principal: {AWS: arn:aws:iam::111122223333:root}\n          Action: s3:GetObject\n          Resource: arn:aws:s3:::lab-share/*\nregion: us-east-1\n";
    moto.write("tether.yaml", spec);
    moto.tether(&["apply", "--auto-approve"]).expect_code(0);

    moto.write(
        "tether.yaml",
        &spec
            .replace(
                "Action: s3:GetObject",
                "Action: [s3:ListBucket, s3:GetObject]",
            )
            .replace(
                "Resource: arn:aws:s3:::lab-share/*",
                "Resource: [arn:aws:s3:::lab-share, arn:aws:s3:::lab-share/*]",
            ),
    );
    let run = moto
        .tether(&["plan", "--detailed-exitcode"])
        .expect_code(2)
        .expect_stderr("~ bucket.lab-share  (update in place)")
        .expect_stderr("+        \"s3:ListBucket\"")
        .expect_stderr("Plan: 0 to create, 1 to update, 0 to replace, 0 to delete.");
    assert!(
        run.stdout.is_empty(),
        "human plans go to stderr: {}",
        run.stdout
    );
    moto.tether(&["apply", "--auto-approve"]).expect_code(0);

    let s3 = moto.s3("us-east-1");
    let actions = &policy(&s3, "lab-share").expect("policy")["Statement"][0]["Action"];
    let mut actions: Vec<&str> = actions
        .as_array()
        .expect("list")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    actions.sort();
    assert_eq!(actions, ["s3:GetObject", "s3:ListBucket"]);
    moto.tether(&["plan", "--detailed-exitcode"])
        .expect_code(0)
        .expect_stderr("No changes.");
}

#[test]
fn out_of_band_drift_shows_in_the_next_plan_and_apply_repairs_it() {
    let moto = Moto::start();
    moto.write("tether.yaml", LAB_SPEC);
    moto.tether(&["apply", "--auto-approve"]).expect_code(0);
    let s3 = moto.s3("us-east-1");

    // Someone edits the policy, drops a tag, and deletes a bucket in the console.
    block_on(async {
        let edited = json!({"Version": "2012-10-17", "Statement": [{"Sid": "AllowPublicRead", "Effect": "Allow", "Principal": "*", "Action": ["s3:GetObject", "s3:ListBucket"], "Resource": ["arn:aws:s3:::dsi-lab-data/*", "arn:aws:s3:::dsi-lab-data"]}]});
        s3.put_bucket_policy()
            .bucket("dsi-lab-data")
            .policy(edited.to_string())
            .send()
            .await
            .expect("put policy");
        let tagging = aws_sdk_s3::types::Tagging::builder()
            .tag_set(
                aws_sdk_s3::types::Tag::builder()
                    .key("tether:project")
                    .value("dsi-lab")
                    .build()
                    .unwrap(),
            )
            .tag_set(
                aws_sdk_s3::types::Tag::builder()
                    .key("tether:name")
                    .value("dsi-lab-data")
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        s3.put_bucket_tagging()
            .bucket("dsi-lab-data")
            .tagging(tagging)
            .send()
            .await
            .expect("put tags");
        s3.delete_bucket()
            .bucket("dsi-lab-results")
            .send()
            .await
            .expect("delete bucket");
    });

    moto.tether(&["plan", "--detailed-exitcode"])
        .expect_code(2)
        .expect_stderr("+ tags.team = \"ds\"")
        .expect_stderr("-        \"s3:ListBucket\"")
        .expect_stderr("+ bucket.dsi-lab-results  (create)")
        .expect_stderr("Plan: 1 to create, 1 to update, 0 to replace, 0 to delete.");
    moto.tether(&["apply", "--auto-approve"]).expect_code(0);
    assert_eq!(
        tags(&s3, "dsi-lab-data").get("team").map(String::as_str),
        Some("ds")
    );
    assert_eq!(
        policy(&s3, "dsi-lab-data").expect("policy")["Statement"][0]["Action"],
        "s3:GetObject"
    );
    moto.tether(&["plan", "--detailed-exitcode"]).expect_code(0);
}

#[test]
fn an_unowned_bucket_is_refused_until_adopted_then_managed() {
    let moto = Moto::start();
    let s3 = moto.s3("us-east-1");
    create_bucket(&s3, "legacy-data");
    put_object(&s3, "legacy-data", "keep.txt", "precious");
    moto.write(
        "tether.yaml",
        "project: lab\nbuckets:\n  legacy-data:\n    tags: {team: ds}\nregion: us-east-1\n",
    );

    let refused = moto
        .tether(&["plan"])
        .expect_code(1)
        .expect_stderr("bucket.legacy-data exists but is not owned by project `lab`")
        .expect_stderr("--> tether.yaml:3:3")
        .expect_stderr("hint: tether never touches what it does not own");
    assert!(refused.stdout.is_empty());
    assert!(
        tags(&s3, "legacy-data").is_empty(),
        "a refused plan touches nothing"
    );

    moto.write(
        "tether.yaml",
        "project: lab\nbuckets:\n  legacy-data:\n    adopt: true\n    tags: {team: ds}\nregion: us-east-1\n",
    );
    moto.tether(&["apply", "--auto-approve"])
        .expect_code(0)
        .expect_stderr("& bucket.legacy-data  (adopt)")
        .expect_stderr("Plan: 1 to adopt, 0 to create");
    let adopted = tags(&s3, "legacy-data");
    assert_eq!(
        adopted.get("tether:project").map(String::as_str),
        Some("lab")
    );
    assert_eq!(adopted.get("team").map(String::as_str), Some("ds"));
    moto.tether(&["plan", "--detailed-exitcode"]).expect_code(0);

    // Now owned: removing it from the spec plans its deletion, which S3 refuses while it
    // holds objects and force_destroy was never set. The object survives.
    moto.write("tether.yaml", "project: lab\n");
    moto.tether(&["apply", "--auto-approve"])
        .expect_code(1)
        .expect_stderr("BucketNotEmpty")
        .expect_stderr("tagged `force_destroy` and the project's record shows it created it");
    assert_eq!(buckets(&s3), ["legacy-data"]);
}

#[test]
fn another_projects_bucket_is_never_touched_even_with_adopt() {
    let moto = Moto::start();
    moto.write(
        "other.yaml",
        "project: other\nbuckets:\n  shared-name: {tags: {team: ml}}\nregion: us-east-1\n",
    );
    moto.tether(&["apply", "-f", "other.yaml", "--auto-approve"])
        .expect_code(0);
    moto.write(
        "tether.yaml",
        "project: lab\nbuckets:\n  shared-name: {adopt: true}\nregion: us-east-1\n",
    );
    moto.tether(&["apply", "--auto-approve"])
        .expect_code(1)
        .expect_stderr("bucket.shared-name belongs to tether project `other`, not `lab`");
    let s3 = moto.s3("us-east-1");
    assert_eq!(
        tags(&s3, "shared-name")
            .get("tether:project")
            .map(String::as_str),
        Some("other")
    );
    // And `lab`'s destroy leaves it alone.
    moto.write("tether.yaml", "project: lab\n");
    moto.tether(&["destroy", "--auto-approve"])
        .expect_code(0)
        .expect_stderr("No changes.");
    assert_eq!(buckets(&s3), ["shared-name"]);
}

#[test]
fn a_saved_plan_applies_exactly_and_a_stale_one_is_refused_without_changes() {
    let moto = Moto::start();
    let s3 = moto.s3("us-east-1");
    moto.write(
        "tether.yaml",
        "project: lab\nbuckets:\n  lab-one: {}\nregion: us-east-1\n",
    );
    moto.tether(&["plan", "--out", "one.tplan"])
        .expect_code(0)
        .expect_stderr("Saved the plan to one.tplan");

    // The spec changes after the plan was saved: applying the plan must not pick that up.
    moto.write(
        "tether.yaml",
        "project: lab\nbuckets:\n  lab-one: {}\n  lab-two: {}\nregion: us-east-1\n",
    );
    moto.tether(&["apply", "one.tplan"]).expect_code(0);
    assert_eq!(buckets(&s3), ["lab-one"]);

    // Applying the same plan again: its bucket now exists, so the plan is stale.
    moto.tether(&["apply", "one.tplan"])
        .expect_code(1)
        .expect_stderr("stale plan")
        .expect_stderr("bucket.lab-one: now exists");

    // A plan to change a policy goes stale when the bucket's tags change meanwhile.
    moto.write(
        "tether.yaml",
        "project: lab\nbuckets:\n  lab-one: {public_read: true}\nregion: us-east-1\n",
    );
    moto.tether(&["plan", "--out", "public.tplan"])
        .expect_code(0);
    block_on(async {
        let tagging = aws_sdk_s3::types::Tagging::builder()
            .tag_set(
                aws_sdk_s3::types::Tag::builder()
                    .key("tether:project")
                    .value("lab")
                    .build()
                    .unwrap(),
            )
            .tag_set(
                aws_sdk_s3::types::Tag::builder()
                    .key("tether:name")
                    .value("lab-one")
                    .build()
                    .unwrap(),
            )
            .tag_set(
                aws_sdk_s3::types::Tag::builder()
                    .key("owner")
                    .value("mallory")
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        s3.put_bucket_tagging()
            .bucket("lab-one")
            .tagging(tagging)
            .send()
            .await
            .expect("put tags");
    });
    moto.tether(&["apply", "public.tplan"])
        .expect_code(1)
        .expect_stderr("bucket.lab-one: changed since the plan was made");
    assert_eq!(policy(&s3, "lab-one"), None, "a stale plan changes nothing");

    // A spec is not a plan, and says so.
    moto.tether(&["apply", "tether.yaml"])
        .expect_code(1)
        .expect_stderr("is not a saved plan")
        .expect_stderr("tether apply -f tether.yaml");
}

#[test]
fn removing_a_bucket_deletes_it_and_force_destroy_empties_every_version_first() {
    let moto = Moto::start();
    let s3 = moto.s3("us-east-1");
    moto.write("tether.yaml", "project: lab\nbuckets:\n  lab-keep: {}\n  lab-scratch: {force_destroy: true}\n  lab-empty: {}\nregion: us-east-1\n");
    moto.tether(&["apply", "--auto-approve"]).expect_code(0);
    block_on(async {
        let versioning = aws_sdk_s3::types::VersioningConfiguration::builder()
            .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
            .build();
        s3.put_bucket_versioning()
            .bucket("lab-scratch")
            .versioning_configuration(versioning)
            .send()
            .await
            .expect("versioning");
    });
    for body in ["v1", "v2", "v3"] {
        put_object(&s3, "lab-scratch", "data.csv", body);
    }
    put_object(&s3, "lab-scratch", "other.csv", "x");
    block_on(async {
        s3.delete_object()
            .bucket("lab-scratch")
            .key("other.csv")
            .send()
            .await
            .expect("delete marker")
    });

    // Removing lab-scratch and lab-empty from the spec deletes both; lab-keep stays.
    moto.write(
        "tether.yaml",
        "project: lab\nbuckets:\n  lab-keep: {}\nregion: us-east-1\n",
    );
    moto.tether(&["apply", "--auto-approve"])
        .expect_code(0)
        .expect_stderr("- bucket.lab-scratch  (delete: no longer in the spec; force_destroy: its contents are deleted too (the project's record shows it created the bucket))")
        .expect_stderr("- bucket.lab-empty  (delete: no longer in the spec)");
    assert_eq!(buckets(&s3), ["lab-keep"]);
}

#[test]
fn destroy_deletes_only_what_the_project_owns() {
    let moto = Moto::start();
    let s3 = moto.s3("us-east-1");
    create_bucket(&s3, "not-ours");
    moto.write("tether.yaml", LAB_SPEC);
    moto.tether(&["apply", "--auto-approve"]).expect_code(0);
    put_object(&s3, "dsi-lab-results", "result.json", "{}");

    moto.tether(&["destroy"])
        .expect_code(1)
        .expect_stderr("refusing to ask for confirmation")
        .expect_stderr("hint: pass --auto-approve");
    assert_eq!(buckets(&s3).len(), 3, "a refused prompt changes nothing");

    moto.tether(&["destroy", "--auto-approve"])
        .expect_code(0)
        .expect_stderr("Plan: 0 to create, 0 to update, 0 to replace, 10 to delete. This machine's SSH aliases change too");
    assert_eq!(buckets(&s3), ["not-ours"]);
}

#[test]
fn apply_asks_on_a_terminal_and_only_yes_proceeds() {
    let moto = Moto::start();
    let s3 = moto.s3("us-east-1");
    moto.write(
        "tether.yaml",
        "project: lab\nbuckets:\n  lab-asked: {}\nregion: us-east-1\n",
    );
    // On a terminal the combined output arrives on stdout, as a user would see it.
    let declined = moto.tether_on_terminal(&["apply"], "no\n").expect_code(1);
    assert!(
        declined.stdout.contains("Only 'yes' is accepted."),
        "{}",
        declined.stdout
    );
    assert!(
        declined
            .stdout
            .contains("Apply cancelled: nothing was changed."),
        "{}",
        declined.stdout
    );
    assert!(buckets(&s3).is_empty());

    let accepted = moto.tether_on_terminal(&["apply"], "yes\n").expect_code(0);
    assert!(
        accepted.stdout.contains("Apply complete"),
        "{}",
        accepted.stdout
    );
    assert_eq!(buckets(&s3), ["lab-asked"]);

    // Off a terminal, apply refuses to prompt rather than wait.
    moto.write("tether.yaml", "project: lab\n");
    moto.tether(&["apply"])
        .expect_code(1)
        .expect_stderr("standard input is not a terminal")
        .expect_stderr("hint: pass --auto-approve");
    assert_eq!(buckets(&s3), ["lab-asked"]);
}

#[test]
fn plan_json_is_versioned_machine_readable_and_alone_on_stdout() {
    let moto = Moto::start();
    moto.write("tether.yaml", LAB_SPEC);
    let run = moto
        .tether(&["plan", "--json", "--detailed-exitcode"])
        .expect_code(2);
    let plan: Value =
        serde_json::from_str(&run.stdout).expect("stdout is exactly one JSON document");
    assert_eq!(plan["format_version"], 2);
    assert_eq!(plan["project"], "dsi-lab");
    assert_eq!(
        plan["account_id"], "123456789012",
        "bound to the account it read"
    );
    // The account's ten; the SSH alias block is this machine's, not the shared plan's.
    assert_eq!(plan["summary"]["create"], 10);
    let changes = plan["changes"].as_array().expect("changes");
    assert_eq!(changes.len(), 10);
    assert!(changes.iter().all(|c| c["address"] != "ssh_config.aliases"));
    assert_eq!(changes[0]["address"], "bucket.dsi-lab-data");
    assert_eq!(changes[0]["action"], "create");
    assert_eq!(changes[0]["after"]["kind"], "bucket");
    assert_eq!(changes[0]["after"]["tags"]["team"], "ds");
    assert!(changes[0]["before"].is_null());

    moto.tether(&["apply", "--auto-approve"]).expect_code(0);
    let run = moto
        .tether(&["plan", "--json", "--detailed-exitcode"])
        .expect_code(0);
    let plan: Value = serde_json::from_str(&run.stdout).expect("JSON");
    assert!(plan["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .all(|c| c["action"] == "no-op"));
}

#[test]
fn a_failing_bucket_does_not_stop_the_others_and_the_run_exits_1() {
    let moto = Moto::start();
    let s3 = moto.s3("us-east-1");
    moto.write(
        "tether.yaml",
        "project: lab\nbuckets:\n  lab-full: {}\nregion: us-east-1\n",
    );
    moto.tether(&["apply", "--auto-approve"]).expect_code(0);
    put_object(&s3, "lab-full", "data.csv", "a,b");

    // One deletion fails (not empty, no force_destroy) while two creations go ahead.
    moto.write(
        "tether.yaml",
        "project: lab\nbuckets:\n  lab-new-a: {}\n  lab-new-b: {}\nregion: us-east-1\n",
    );
    moto.tether(&["apply", "--auto-approve", "--parallelism", "2"])
        .expect_code(1)
        .expect_stderr("FAILED   bucket.lab-full")
        .expect_stderr("ok       bucket.lab-new-a  created")
        .expect_stderr("ok       bucket.lab-new-b  created");
    assert_eq!(buckets(&s3), ["lab-full", "lab-new-a", "lab-new-b"]);

    // Re-running converges the rest without duplicates once the cause is fixed.
    block_on(async {
        s3.delete_object()
            .bucket("lab-full")
            .key("data.csv")
            .send()
            .await
            .expect("delete")
    });
    moto.tether(&["apply", "--auto-approve"])
        .expect_code(0)
        .expect_stderr("Plan: 0 to create, 0 to update, 0 to replace, 1 to delete.");
    assert_eq!(buckets(&s3), ["lab-new-a", "lab-new-b"]);
}

#[test]
fn buckets_are_created_in_the_spec_region_which_wins_over_the_environment() {
    let moto = Moto::start();
    moto.write(
        "tether.yaml",
        "project: lab\nregion: eu-west-1\nbuckets:\n  lab-eu: {}\n",
    );
    // AWS_REGION says us-east-1; the spec's region wins.
    moto.tether(&["apply", "--auto-approve"])
        .expect_code(0)
        .expect_stderr("in eu-west-1");
    let s3 = moto.s3("eu-west-1");
    let location = block_on(async {
        s3.get_bucket_location()
            .bucket("lab-eu")
            .send()
            .await
            .expect("location")
    });
    assert_eq!(
        location.location_constraint().map(|c| c.as_str()),
        Some("eu-west-1")
    );
    moto.tether(&["plan", "--detailed-exitcode"]).expect_code(0);
}

#[test]
fn a_bucket_of_the_same_name_in_another_region_is_an_error_not_a_takeover() {
    let moto = Moto::start();
    let eu = moto.s3("eu-west-1");
    block_on(async {
        let configuration = aws_sdk_s3::types::CreateBucketConfiguration::builder()
            .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest1)
            .build();
        eu.create_bucket()
            .bucket("lab-elsewhere")
            .create_bucket_configuration(configuration)
            .send()
            .await
            .expect("create in eu-west-1")
    });
    moto.write(
        "tether.yaml",
        "project: lab\nregion: us-east-1\nbuckets:\n  lab-elsewhere: {}\n",
    );
    moto.tether(&["apply", "--auto-approve"])
        .expect_code(1)
        .expect_stderr(
        "already has a bucket named `lab-elsewhere`, in eu-west-1; the spec's region is us-east-1",
    );
    assert!(
        tags(&eu, "lab-elsewhere").is_empty(),
        "the other region's bucket is untouched"
    );
}

// Regression: anyone allowed to tag a bucket could give it the project's tags and
// `tether:force-destroy`, and the next apply emptied and deleted it.
#[test]
fn a_bucket_given_the_projects_tags_out_of_band_is_not_emptied() {
    let moto = Moto::start();
    let s3 = moto.s3("us-east-1");
    create_bucket(&s3, "planted");
    support::put_object(&s3, "planted", "precious.csv", "someone's data\n");
    support::block_on(async {
        let tag = |k: &str, v: &str| {
            aws_sdk_s3::types::Tag::builder()
                .key(k)
                .value(v)
                .build()
                .expect("tag")
        };
        s3.put_bucket_tagging()
            .bucket("planted")
            .tagging(
                aws_sdk_s3::types::Tagging::builder()
                    .tag_set(tag("tether:project", "lab"))
                    .tag_set(tag("tether:name", "planted"))
                    .tag_set(tag("tether:force-destroy", "true"))
                    .build()
                    .expect("tagging"),
            )
            .send()
            .await
            .expect("plant the tags")
    });
    moto.write("tether.yaml", "project: lab\nregion: us-east-1\n");
    moto.tether(&["plan"]).expect_code(0).expect_stderr(
        "no record of the project's shows it created the bucket, so its contents are kept",
    );
    moto.tether(&["apply", "--auto-approve"])
        .expect_code(1)
        .expect_stderr("BucketNotEmpty")
        .expect_stderr("--empty-tagged-buckets");
    assert_eq!(
        support::get_object(&s3, "planted", "precious.csv").as_deref(),
        Some(&b"someone's data\n"[..]),
        "nothing was emptied"
    );
    assert!(buckets(&s3).contains(&"planted".to_string()));
}

const INDEXED_SPEC: &str = "project: idx\nregion: us-east-1\nbuckets:\n  idx-a: {tags: {team: ds}}\n  idx-b: {public_read: true}\n  idx-c: {force_destroy: true}\n";

/// Applies `INDEXED_SPEC` and adds two buckets that are not the project's: one untagged,
/// one another project's.
fn indexed_lab() -> Moto {
    let moto = Moto::start();
    moto.write("tether.yaml", INDEXED_SPEC);
    moto.tether(&["apply", "--auto-approve"]).expect_code(0);
    let s3 = moto.s3("us-east-1");
    create_bucket(&s3, "not-ours");
    create_bucket(&s3, "other-lab");
    support::tag_bucket(&s3, "other-lab", &[("tether:project", "other")]);
    moto
}

/// `tether plan` of the test's spec with S3 calls through a proxy that records them, and the
/// tag index (Resource Groups Tagging API) at `tagging` when given, else moto's.
fn plan_through(moto: &Moto, tagging: Option<u16>) -> (support::Run, support::faults::FaultProxy) {
    let proxy = support::faults::start(moto.port, 0);
    let mut env = proxy.env_through(moto);
    if let Some(port) = tagging {
        env.push((
            "AWS_ENDPOINT_URL_RESOURCE_GROUPS_TAGGING_API".into(),
            format!("http://127.0.0.1:{port}"),
        ));
    }
    let plan = support::run_tether(moto.dir.path(), &env, &["plan", "--detailed-exitcode"]);
    (plan, proxy)
}

/// The GetBucketTagging calls the proxy saw, as the buckets they asked about.
fn tag_reads(proxy: &support::faults::FaultProxy) -> Vec<String> {
    let calls = proxy.counts.calls.lock().expect("calls");
    let mut buckets: Vec<String> = calls
        .iter()
        .filter(|line| line.starts_with("GET ") && line.contains("?tagging"))
        .filter_map(|line| line.split('/').nth(1).map(str::to_string))
        .collect();
    buckets.sort();
    buckets
}

#[test]
fn a_plan_takes_the_projects_bucket_tags_from_the_tag_index_and_checks_each_change_itself() {
    let moto = indexed_lab();
    let (plan, proxy) = plan_through(&moto, None);
    assert_eq!(plan.code, 0, "no changes: {}", plan.stderr);
    assert!(
        proxy.counts.calls_with("GetResources") >= 1,
        "the index is asked"
    );
    assert_eq!(
        tag_reads(&proxy),
        Vec::<String>::new(),
        "neither the project's buckets the index shows as the spec wants them, nor buckets it does not show, are asked for their tags"
    );

    // A tag changed by hand, and a bucket dropped from the spec: the index shows both, and
    // each is read from the bucket itself before the plan changes or deletes anything.
    support::tag_bucket(
        &moto.s3("us-east-1"),
        "idx-a",
        &[
            ("tether:project", "idx"),
            ("tether:name", "idx-a"),
            ("team", "ml"),
        ],
    );
    moto.write(
        "tether.yaml",
        &INDEXED_SPEC.replace("  idx-c: {force_destroy: true}\n", ""),
    );
    let (plan, proxy) = plan_through(&moto, None);
    assert_eq!(plan.code, 2, "changes: {}", plan.stderr);
    assert!(plan.stderr.contains("~ bucket.idx-a"), "{}", plan.stderr);
    assert!(plan.stderr.contains("- bucket.idx-c"), "{}", plan.stderr);
    assert_eq!(tag_reads(&proxy), ["idx-a", "idx-c"]);
}

/// One bucket in the tag index, with its tags there.
type Indexed = (&'static str, Vec<(&'static str, &'static str)>);

/// A scripted tag index answering with `pages` of buckets, one page per call.
fn scripted_index(pages: Vec<Vec<Indexed>>) -> u16 {
    support::http::serve(move |request| {
        let page = request.json()["PaginationToken"]
            .as_str()
            .and_then(|token| token.strip_prefix("page-"))
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or(0);
        let mappings: Vec<Value> = pages[page]
            .iter()
            .map(|(bucket, tags)| {
                let tags: Vec<Value> = tags
                    .iter()
                    .map(|(key, value)| json!({"Key": key, "Value": value}))
                    .collect();
                json!({"ResourceARN": format!("arn:aws:s3:::{bucket}"), "Tags": tags})
            })
            .collect();
        let token = if page + 1 < pages.len() {
            format!("page-{}", page + 1)
        } else {
            String::new()
        };
        support::http::Response::json(
            200,
            &json!({"ResourceTagMappingList": mappings, "PaginationToken": token}),
        )
    })
}

#[test]
fn a_lagging_tag_index_neither_shows_a_change_that_is_not_there_nor_deletes_what_left_the_project()
{
    let moto = indexed_lab();
    // Once the project's, since handed on: untagged now, but the index has not caught up.
    let s3 = moto.s3("us-east-1");
    create_bucket(&s3, "handed-on");
    let project = |name: &'static str| vec![("tether:project", "idx"), ("tether:name", name)];
    let index = scripted_index(vec![
        // idx-a with the tags it had before the last apply; idx-b and idx-c not indexed yet.
        vec![("idx-a", [project("idx-a"), vec![("team", "old")]].concat())],
        vec![("handed-on", project("handed-on"))],
    ]);
    let (plan, proxy) = plan_through(&moto, Some(index));
    assert_eq!(plan.code, 0, "no changes: {}", plan.stderr);
    assert_eq!(
        tag_reads(&proxy),
        ["handed-on", "idx-a", "idx-b", "idx-c"],
        "what the index shows otherwise than the spec wants, or does not show, is read from the bucket"
    );
    assert!(buckets(&s3).contains(&"handed-on".to_string()));
}

#[test]
fn an_empty_or_refused_tag_index_falls_back_to_reading_every_buckets_tags() {
    let moto = indexed_lab();
    moto.write(
        "tether.yaml",
        &INDEXED_SPEC.replace("  idx-c: {force_destroy: true}\n", ""),
    );
    let empty = scripted_index(vec![vec![]]);
    let refused = support::http::serve(|_| {
        support::http::Response::json(
            400,
            &json!({"__type": "AccessDeniedException", "message": "not authorized to perform: tag:GetResources"}),
        )
    });
    for index in [empty, refused] {
        let (plan, proxy) = plan_through(&moto, Some(index));
        assert_eq!(plan.code, 2, "changes: {}", plan.stderr);
        assert!(
            plan.stderr.contains("- bucket.idx-c"),
            "the project's bucket no longer in the spec is found without the index: {}",
            plan.stderr
        );
        assert!(!plan.stderr.contains("other-lab"), "{}", plan.stderr);
        assert_eq!(
            tag_reads(&proxy),
            ["idx-a", "idx-b", "idx-c", "not-ours", "other-lab"]
        );
    }
}
