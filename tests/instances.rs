//! End-to-end tests of instances and Elastic IPs: the real `tether` binary against moto,
//! the account checked through the SDK.
//!
//! moto changes instance states at once and ignores ClientToken, so these tests show the
//! order and the end state of operations, and the tag lookup that keeps a launch from
//! repeating; they cannot show waiting on slow state changes.

mod support;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;

use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification};
use support::{block_on, Moto};

const LAB: &str = "\
project: lab
region: us-east-1
secrets: local
key_pairs:
  lab-key:
    private_key_file: ~/.ssh/lab-key.pem
security_groups:
  ssh-from-home:
    description: SSH and Jupyter from home
    ingress:
      - {port: 22, cidr: 203.0.113.7/32}
      - {port: 8888, cidr: 203.0.113.7/32}
instances:
  worker:
    ami: {name: \"ubuntu/images/hvm-ssd/ubuntu-trusty-*\", owner: \"099720109477\"}
    type: m5.xlarge
    key_pair: lab-key
    security_groups: [ssh-from-home]
    root_volume_gb: 50
    volumes: [{device: /dev/sdf, size_gb: 100, type: gp3}]
    user_data: ./bootstrap.sh
    tags: {team: ds}
elastic_ips:
  worker-ip: {instance: worker}
";

/// The image the lookup in `LAB` finds among moto's images.
const TRUSTY: &str = "ami-1e749f67";
const XENIAL: &str = "ami-785db401";

/// An instance as the SDK describes it.
#[derive(Debug)]
struct Seen {
    id: String,
    state: String,
    instance_type: String,
    ami: String,
    spot: bool,
    key_name: Option<String>,
    groups: Vec<String>,
    tags: BTreeMap<String, String>,
    /// Volume sizes by device.
    volumes: BTreeMap<String, i32>,
}

/// Every instance tagged with project `lab`, terminated ones included, oldest first.
fn instances(ec2: &aws_sdk_ec2::Client) -> Vec<Seen> {
    block_on(async {
        let out = ec2
            .describe_instances()
            .filters(
                Filter::builder()
                    .name("tag:tether:project")
                    .values("lab")
                    .build(),
            )
            .send()
            .await
            .expect("instances");
        let mut seen = Vec::new();
        for instance in out.reservations().iter().flat_map(|r| r.instances()) {
            let volume_ids: Vec<String> = instance
                .block_device_mappings()
                .iter()
                .filter_map(|m| m.ebs()?.volume_id().map(str::to_string))
                .collect();
            let mut volumes = BTreeMap::new();
            if !volume_ids.is_empty() {
                let described = ec2
                    .describe_volumes()
                    .set_volume_ids(Some(volume_ids))
                    .send()
                    .await
                    .expect("volumes");
                for volume in described.volumes() {
                    let device = volume.attachments()[0].device().unwrap_or_default();
                    volumes.insert(device.to_string(), volume.size().unwrap_or_default());
                }
            }
            seen.push(Seen {
                id: instance.instance_id().unwrap_or_default().to_string(),
                state: instance
                    .state()
                    .and_then(|s| s.name())
                    .map(|n| n.as_str().to_string())
                    .unwrap_or_default(),
                instance_type: instance
                    .instance_type()
                    .map(|t| t.as_str().to_string())
                    .unwrap_or_default(),
                ami: instance.image_id().unwrap_or_default().to_string(),
                spot: instance.instance_lifecycle().map(|l| l.as_str()) == Some("spot"),
                key_name: instance.key_name().map(str::to_string),
                groups: instance
                    .security_groups()
                    .iter()
                    .filter_map(|g| g.group_name().map(str::to_string))
                    .collect(),
                tags: instance
                    .tags()
                    .iter()
                    .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
                    .collect(),
                volumes,
            });
        }
        seen
    })
}

fn live_instances(ec2: &aws_sdk_ec2::Client) -> Vec<Seen> {
    instances(ec2)
        .into_iter()
        .filter(|i| i.state != "terminated" && i.state != "shutting-down")
        .collect()
}

/// Every Elastic IP: (public ip, associated instance id).
fn addresses(ec2: &aws_sdk_ec2::Client) -> Vec<(String, Option<String>)> {
    block_on(async {
        let out = ec2.describe_addresses().send().await.expect("addresses");
        out.addresses()
            .iter()
            .map(|a| {
                (
                    a.public_ip().unwrap_or_default().to_string(),
                    a.instance_id().map(str::to_string),
                )
            })
            .collect()
    })
}

fn lab(moto: &Moto) {
    moto.write("bootstrap.sh", "#!/bin/sh\napt-get install -y tmux\n");
    moto.write("tether.yaml", LAB);
}

#[test]
fn the_seed_lab_from_nothing_then_no_changes_and_show_gives_a_ready_ssh_line() {
    let moto = Moto::start();
    lab(&moto);
    let apply = moto.tether(&["apply", "--auto-approve"]).expect_code(0);
    let ec2 = moto.ec2();

    let running = live_instances(&ec2);
    assert_eq!(running.len(), 1, "{running:?}");
    let worker = &running[0];
    assert_eq!(worker.state, "running");
    assert_eq!(worker.ami, TRUSTY, "the image lookup's match");
    assert_eq!(worker.instance_type, "m5.xlarge");
    assert_eq!(worker.key_name.as_deref(), Some("lab-key"));
    assert_eq!(worker.groups, ["ssh-from-home"]);
    assert_eq!(worker.tags.get("Name").map(String::as_str), Some("worker"));
    assert_eq!(worker.tags.get("team").map(String::as_str), Some("ds"));
    assert_eq!(
        worker.volumes,
        BTreeMap::from([("/dev/sda1".to_string(), 50), ("/dev/sdf".to_string(), 100)])
    );
    let eips = addresses(&ec2);
    assert_eq!(eips.len(), 1);
    assert_eq!(eips[0].1.as_deref(), Some(worker.id.as_str()));

    let pem = moto.dir.path().join(".ssh/lab-key.pem");
    let mode = std::fs::metadata(&pem).expect("pem").permissions().mode() & 0o777;
    assert_eq!(mode, 0o400);
    let key = std::fs::read_to_string(&pem).expect("pem");
    let body: String = key.lines().filter(|l| !l.starts_with("-----")).collect();

    let plan = moto
        .tether(&["plan", "--detailed-exitcode"])
        .expect_code(0)
        .expect_stderr("No changes.");

    let show = moto.tether(&["show", "--json"]).expect_code(0);
    let report: serde_json::Value = serde_json::from_str(&show.stdout).expect("show --json");
    let shown = &report["instances"][0];
    assert_eq!(shown["id"], worker.id.as_str());
    assert_eq!(shown["state"], "running");
    assert_eq!(shown["address"], eips[0].0.as_str(), "the Elastic IP");
    assert_eq!(
        shown["ssh"],
        format!("ssh -i {} ubuntu@{}", pem.display(), eips[0].0).as_str()
    );
    let text = moto.tether(&["show"]).expect_code(0);
    assert!(
        text.stdout.contains(&format!("ubuntu@{}", eips[0].0)),
        "{}",
        text.stdout
    );

    for output in [&apply.stdout, &apply.stderr, &plan.stderr, &show.stdout] {
        assert!(
            !output.contains(&body[..40]),
            "the private key never appears"
        );
    }
}

#[test]
fn stop_and_start_keep_the_elastic_ip_associated() {
    let moto = Moto::start();
    lab(&moto);
    moto.tether(&["apply", "--auto-approve"]).expect_code(0);
    let ec2 = moto.ec2();
    let id = live_instances(&ec2)[0].id.clone();
    let address = addresses(&ec2)[0].0.clone();

    let stopped = LAB.replace(
        "    tags: {team: ds}\n",
        "    tags: {team: ds}\n    state: stopped\n",
    );
    moto.write("tether.yaml", &stopped);
    // The plan prices the lab, and says what stopping saves: the compute, not the disks
    // (the root volume's size is the live instance's) nor the address.
    moto.tether(&["plan"])
        .expect_code(0)
        .expect_stderr("~ instance.worker  (update in place: stops the instance")
        .expect_stderr("worker  m5.xlarge  on-demand  stopped  $0.192/h")
        .expect_stderr("disks 150 GiB $12.00/month")
        .expect_stderr("Total: $0.005/h (about $3.65 a month); disks $12.00/month.")
        .expect_stderr("`state: stopped` saves $0.192/h on worker");
    let json = moto.tether(&["plan", "--json"]).expect_code(0);
    let plan: serde_json::Value = serde_json::from_str(&json.stdout).expect("plan JSON");
    assert_eq!(plan["costs"]["instances"][0]["hourly"], 0.192);
    assert_eq!(plan["costs"]["instances"][0]["state"], "stopped");
    assert_eq!(plan["costs"]["stopped_saves_hourly"], 0.192);
    assert_eq!(plan["costs"]["prices_as_of"], "2025-01", "the table's date");
    moto.tether(&["apply", "--auto-approve"]).expect_code(0);
    assert_eq!(live_instances(&ec2)[0].state, "stopped");
    assert_eq!(addresses(&ec2), [(address.clone(), Some(id.clone()))]);
    moto.tether(&["plan", "--detailed-exitcode"]).expect_code(0);

    moto.write("tether.yaml", LAB);
    moto.tether(&["apply", "--auto-approve"]).expect_code(0);
    let after = live_instances(&ec2);
    assert_eq!(
        (after[0].id.as_str(), after[0].state.as_str()),
        (id.as_str(), "running")
    );
    assert_eq!(addresses(&ec2), [(address, Some(id))]);
    moto.tether(&["plan", "--detailed-exitcode"]).expect_code(0);
}

#[test]
fn a_type_change_is_in_place_and_an_image_change_is_a_replacement_with_its_reason() {
    let moto = Moto::start();
    lab(&moto);
    moto.tether(&["apply", "--auto-approve"]).expect_code(0);
    let ec2 = moto.ec2();
    let first = live_instances(&ec2)[0].id.clone();

    moto.write("tether.yaml", &LAB.replace("m5.xlarge", "m5.2xlarge"));
    moto.tether(&["plan"]).expect_code(0).expect_stderr(
        "~ instance.worker  (update in place: changing instance_type stops the instance, changes it, and starts it again)",
    );
    moto.tether(&["apply", "--auto-approve"]).expect_code(0);
    let now = live_instances(&ec2);
    assert_eq!(now.len(), 1);
    assert_eq!(now[0].id, first, "the same instance");
    assert_eq!(now[0].instance_type, "m5.2xlarge");
    assert_eq!(now[0].state, "running");

    // Growing a volume is in place too.
    let grown = LAB
        .replace("m5.xlarge", "m5.2xlarge")
        .replace("size_gb: 100", "size_gb: 150");
    moto.write("tether.yaml", &grown);
    moto.tether(&["apply", "--auto-approve"]).expect_code(0);
    let now = live_instances(&ec2);
    assert_eq!(now[0].id, first);
    assert_eq!(now[0].volumes.get("/dev/sdf"), Some(&150));

    let replaced = grown.replace(
        "{name: \"ubuntu/images/hvm-ssd/ubuntu-trusty-*\", owner: \"099720109477\"}",
        XENIAL,
    );
    moto.write("tether.yaml", &replaced);
    moto.tether(&["plan"])
        .expect_code(0)
        .expect_stderr("-/+ instance.worker  (replace: ami cannot change in place")
        .expect_stderr("~ elastic_ip.worker-ip  (update in place: its instance is replaced");
    moto.tether(&["apply", "--auto-approve"]).expect_code(0);
    let now = live_instances(&ec2);
    assert_eq!(now.len(), 1, "{now:?}");
    assert_ne!(now[0].id, first, "a new instance");
    assert_eq!(now[0].ami, XENIAL);
    assert_eq!(
        now[0].tags.get("tether:generation").map(String::as_str),
        Some("2")
    );
    assert!(instances(&ec2)
        .iter()
        .any(|i| i.id == first && i.state == "terminated"));
    assert_eq!(addresses(&ec2)[0].1.as_deref(), Some(now[0].id.as_str()));
    moto.tether(&["plan", "--detailed-exitcode"]).expect_code(0);
}

/// Launching is tagged in the RunInstances call itself, so a crash right after it leaves an
/// owned, tagged instance; the next run must find it rather than launch a second one.
#[test]
fn an_instance_launched_before_a_crash_is_found_and_not_launched_again() {
    let moto = Moto::start();
    let spec = "\
project: lab
region: us-east-1
instances:
  worker:
    ami: ami-1e749f67
    type: m5.xlarge
elastic_ips:
  worker-ip: {instance: worker}
";
    moto.write("tether.yaml", spec);
    let ec2 = moto.ec2();
    moto.tether(&["plan", "--out", "plan.json"]).expect_code(0);
    // What a launch that crashed right after RunInstances leaves behind: the project's
    // record of the launch's client token (written before the call), and the instance as
    // tether launched it, with that token and its tags (they are part of the launch call).
    block_on(async {
        moto.ssm()
            .put_parameter()
            .name("/tether/lab/instances/worker")
            .value("launched tether-0123456789abcdef0123456789abcdef")
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .send()
            .await
            .expect("record")
    });
    let orphan = block_on(async {
        let tags = [
            ("tether:project", "lab"),
            ("tether:name", "worker"),
            ("tether:generation", "1"),
            ("Name", "worker"),
        ]
        .map(|(k, v)| Tag::builder().key(k).value(v).build());
        let out = ec2
            .run_instances()
            .image_id(TRUSTY)
            .instance_type(aws_sdk_ec2::types::InstanceType::M5Xlarge)
            .min_count(1)
            .max_count(1)
            .client_token("tether-0123456789abcdef0123456789abcdef")
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::Instance)
                    .set_tags(Some(tags.to_vec()))
                    .build(),
            )
            .send()
            .await
            .expect("launch");
        out.instances()[0].instance_id().expect("id").to_string()
    });

    // The saved plan expected to create it: applying that plan is refused, nothing launched.
    moto.tether(&["apply", "plan.json"])
        .expect_code(1)
        .expect_stderr("instance.worker: now exists; the plan expected to create it");
    assert_eq!(live_instances(&ec2).len(), 1);

    // A fresh apply finds the instance and goes on from there instead of launching.
    let apply = moto.tether(&["apply", "--auto-approve"]).expect_code(0);
    assert!(
        !apply.stderr.contains("instance.worker  (create)"),
        "{}",
        apply.stderr
    );
    let now = live_instances(&ec2);
    assert_eq!(now.len(), 1, "no second instance: {now:?}");
    assert_eq!(now[0].id, orphan);
    assert_eq!(addresses(&ec2)[0].1.as_deref(), Some(orphan.as_str()));
    moto.tether(&["plan", "--detailed-exitcode"]).expect_code(0);
}

#[test]
fn a_spot_instance_launches_through_market_options_and_leaves_no_request_behind() {
    let moto = Moto::start();
    let spec = "\
project: lab
region: us-east-1
instances:
  cheap:
    ami: ami-1e749f67
    type: c5.large
    market: spot
    max_price: \"0.05\"
";
    moto.write("tether.yaml", spec);
    moto.tether(&["apply", "--auto-approve"]).expect_code(0);
    let ec2 = moto.ec2();
    let running = live_instances(&ec2);
    assert_eq!(running.len(), 1);
    assert!(running[0].spot, "a spot instance");
    assert_eq!(
        running[0].tags.get("tether:name").map(String::as_str),
        Some("cheap"),
        "tags land on the instance itself"
    );
    moto.tether(&["plan", "--detailed-exitcode"]).expect_code(0);

    // A new price cannot be set on a running spot instance: that is a replacement.
    moto.write("tether.yaml", &spec.replace("0.05", "0.07"));
    moto.tether(&["plan"])
        .expect_code(0)
        .expect_stderr("-/+ instance.cheap  (replace: max_price cannot change in place");

    moto.tether(&["destroy", "--auto-approve"]).expect_code(0);
    assert!(live_instances(&ec2).is_empty());
    let open_requests = block_on(async {
        let out = ec2
            .describe_spot_instance_requests()
            .send()
            .await
            .expect("spot requests");
        out.spot_instance_requests()
            .iter()
            .filter(|r| matches!(r.state().map(|s| s.as_str()), Some("open" | "active")))
            .count()
    });
    assert_eq!(open_requests, 0);
}

#[test]
fn destroy_releases_the_address_then_terminates_then_deletes_group_and_key() {
    let moto = Moto::start();
    lab(&moto);
    moto.tether(&["apply", "--auto-approve"]).expect_code(0);
    let destroy = moto.tether(&["destroy", "--auto-approve"]).expect_code(0);
    let position = |needle: &str| {
        destroy
            .stderr
            .find(needle)
            .unwrap_or_else(|| panic!("{needle:?} missing\n{}", destroy.stderr))
    };
    let released = position("elastic_ip.worker-ip: deleted");
    let terminating = position("instance.worker: terminating instance");
    let terminated = position("instance.worker: deleted");
    assert!(released < terminating, "the address goes first");
    assert!(terminated < position("security_group.ssh-from-home: deleting"));
    assert!(terminated < position("key_pair.lab-key: deleting"));
    let ec2 = moto.ec2();
    assert!(live_instances(&ec2).is_empty());
    assert!(addresses(&ec2).is_empty());
    assert!(moto.dir.path().join(".ssh/lab-key.pem").exists());
    moto.tether(&["plan", "--detailed-exitcode"]).expect_code(2);
}

#[test]
fn a_reference_to_a_group_that_is_nowhere_is_an_error_at_the_spec_line() {
    let moto = Moto::start();
    moto.write(
        "tether.yaml",
        "project: lab\nregion: us-east-1\ninstances:\n  worker:\n    ami: ami-1e749f67\n    type: t3.micro\n    security_groups: [ssh-from-hom]\n",
    );
    moto.tether(&["plan"])
        .expect_code(1)
        .expect_stderr("instance.worker refers to security_group.ssh-from-hom, which is neither in the spec nor in the account")
        .expect_stderr("tether.yaml:4:3");
    assert!(live_instances(&moto.ec2()).is_empty());
}

/// An address moved to another instance outside tether is never moved back silently: the
/// plan shows the move, naming the instance it is on now.
#[test]
fn an_address_moved_out_of_band_shows_in_the_plan_before_it_is_moved_back() {
    let moto = Moto::start();
    lab(&moto);
    moto.tether(&["apply", "--auto-approve"]).expect_code(0);
    let ec2 = moto.ec2();
    let worker = live_instances(&ec2)[0].id.clone();
    let other = block_on(async {
        let out = ec2
            .run_instances()
            .image_id(TRUSTY)
            .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
            .min_count(1)
            .max_count(1)
            .send()
            .await
            .expect("someone else's instance");
        let other = out.instances()[0].instance_id().expect("id").to_string();
        let allocation = ec2
            .describe_addresses()
            .send()
            .await
            .expect("addresses")
            .addresses()[0]
            .allocation_id()
            .expect("allocation")
            .to_string();
        ec2.associate_address()
            .allocation_id(allocation)
            .instance_id(&other)
            .allow_reassociation(true)
            .send()
            .await
            .expect("moved by hand");
        other
    });
    moto.tether(&["plan", "--detailed-exitcode"])
        .expect_code(2)
        .expect_stderr("~ elastic_ip.worker-ip  (update in place)")
        .expect_stderr(&format!("~ instance = \"{other}\" -> \"worker\""));
    moto.tether(&["apply", "--auto-approve"]).expect_code(0);
    assert_eq!(addresses(&ec2)[0].1.as_deref(), Some(worker.as_str()));
    moto.tether(&["plan", "--detailed-exitcode"]).expect_code(0);
}

/// The role a job's programs use on the instance comes from its instance profile: set at
/// launch, and changed in place.
#[test]
fn an_instance_profile_is_given_at_launch_and_changed_in_place() {
    let moto = Moto::start();
    let iam = moto.iam();
    block_on(async {
        for profile in ["lab-reader", "lab-writer"] {
            iam.create_instance_profile()
                .instance_profile_name(profile)
                .send()
                .await
                .expect("instance profile");
        }
    });
    let spec = "project: lab\nregion: us-east-1\ninstances:\n  worker:\n    ami: ami-1e749f67\n    type: t3.micro\n    instance_profile: lab-reader\n";
    moto.write("tether.yaml", spec);
    moto.tether(&["apply", "--auto-approve"]).expect_code(0);
    let ec2 = moto.ec2();
    // The associations are the record (moto's instance description keeps the profile given
    // at launch after an association is replaced; AWS's follows it).
    let profile_of = |ec2: &aws_sdk_ec2::Client| {
        block_on(async {
            let out = ec2
                .describe_iam_instance_profile_associations()
                .send()
                .await
                .expect("associations");
            out.iam_instance_profile_associations()
                .iter()
                .find(|a| a.state().map(|s| s.as_str()) == Some("associated"))
                .map(|a| {
                    (
                        a.instance_id().unwrap_or_default().to_string(),
                        a.iam_instance_profile()
                            .and_then(|p| p.arn())
                            .unwrap_or_default()
                            .to_string(),
                    )
                })
                .expect("an association")
        })
    };
    let (id, arn) = profile_of(&ec2);
    assert!(arn.ends_with("/lab-reader"), "{arn}");
    moto.tether(&["plan", "--detailed-exitcode"]).expect_code(0);

    moto.write("tether.yaml", &spec.replace("lab-reader", "lab-writer"));
    moto.tether(&["plan"])
        .expect_code(0)
        .expect_stderr("~ instance.worker  (update in place)")
        .expect_stderr("~ instance_profile = \"lab-reader\" -> \"lab-writer\"");
    moto.tether(&["apply", "--auto-approve"]).expect_code(0);
    let (same, arn) = profile_of(&ec2);
    assert_eq!(same, id, "the same instance");
    assert!(arn.ends_with("/lab-writer"), "{arn}");
    moto.tether(&["plan", "--detailed-exitcode"]).expect_code(0);
}
