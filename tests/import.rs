//! End-to-end tests of `tether import`: a lab built through the SDK the way the seed builds
//! it by hand in the console, imported into a spec, checked against the committed schema,
//! planned (adoptions only), applied, and planned clean, with nothing of it lost.

mod support;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};

use aws_sdk_ec2::types::{
    BlockDeviceMapping, EbsBlockDevice, IpPermission, IpRange, ResourceType, Tag, TagSpecification,
};
use support::{block_on, Moto};

const ADMIN: &str = "arn:aws:iam::aws:policy/AdministratorAccess";
const AMI: &str = "ami-1e749f67";

/// What the seed's lab is, as found before the import (ids the test checks survive).
struct Seed {
    instance_id: String,
    allocation_id: String,
    public_ip: String,
    access_key_id: String,
}

/// Builds the seed's lab as its walkthrough does in the console: an admin user (not root)
/// in a group with AdministratorAccess, with a password and an access key; an account alias
/// and a password policy; a key pair; a security group admitting SSH and Jupyter from one
/// address; an instance with a 50 GB disk and an Elastic IP; a public-read data bucket and
/// a private results bucket; and, beside them, another tether project's bucket.
fn build_seed_lab(moto: &Moto) -> Seed {
    let (iam, ec2, s3) = (moto.iam(), moto.ec2(), moto.s3("us-east-1"));
    let seed = block_on(async {
        iam.create_group()
            .group_name("admins")
            .send()
            .await
            .expect("group");
        iam.attach_group_policy()
            .group_name("admins")
            .policy_arn(ADMIN)
            .send()
            .await
            .expect("attach");
        iam.create_user()
            .user_name("erich")
            .tags(
                aws_sdk_iam::types::Tag::builder()
                    .key("team")
                    .value("ds")
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .expect("user");
        iam.add_user_to_group()
            .group_name("admins")
            .user_name("erich")
            .send()
            .await
            .expect("member");
        iam.create_login_profile()
            .user_name("erich")
            .password("Seed-Console-Passw0rd!")
            .send()
            .await
            .expect("console access");
        let key = iam
            .create_access_key()
            .user_name("erich")
            .send()
            .await
            .expect("access key");
        let access_key_id = key.access_key().unwrap().access_key_id().to_string();
        iam.create_account_alias()
            .account_alias("seed-lab")
            .send()
            .await
            .expect("alias");
        iam.update_account_password_policy()
            .minimum_password_length(14)
            .require_symbols(true)
            .require_numbers(true)
            .require_uppercase_characters(true)
            .require_lowercase_characters(true)
            .allow_users_to_change_password(true)
            .max_password_age(90)
            .password_reuse_prevention(5)
            .send()
            .await
            .expect("password policy");

        ec2.create_key_pair()
            .key_name("seed-key")
            .send()
            .await
            .expect("key pair");
        let group = ec2
            .create_security_group()
            .group_name("ssh-from-home")
            .description("SSH and Jupyter from home")
            .send()
            .await
            .expect("security group");
        let home = |port| {
            IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(port)
                .to_port(port)
                .ip_ranges(IpRange::builder().cidr_ip("203.0.113.7/32").build())
                .build()
        };
        ec2.authorize_security_group_ingress()
            .group_id(group.group_id().unwrap())
            .ip_permissions(home(22))
            .ip_permissions(home(8888))
            .send()
            .await
            .expect("ingress");
        let launched = ec2
            .run_instances()
            .image_id(AMI)
            .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
            .key_name("seed-key")
            .security_groups("ssh-from-home")
            .block_device_mappings(
                BlockDeviceMapping::builder()
                    .device_name("/dev/sda1")
                    .ebs(
                        EbsBlockDevice::builder()
                            .volume_size(50)
                            .volume_type("gp3".into())
                            .build(),
                    )
                    .build(),
            )
            .min_count(1)
            .max_count(1)
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::Instance)
                    .tags(Tag::builder().key("Name").value("worker").build())
                    .tags(Tag::builder().key("team").value("ds").build())
                    .build(),
            )
            .send()
            .await
            .expect("launch");
        let instance_id = launched.instances()[0].instance_id().unwrap().to_string();
        let address = ec2
            .allocate_address()
            .domain(aws_sdk_ec2::types::DomainType::Vpc)
            .send()
            .await
            .expect("allocate");
        let allocation_id = address.allocation_id().unwrap().to_string();
        let public_ip = address.public_ip().unwrap().to_string();
        ec2.associate_address()
            .allocation_id(&allocation_id)
            .instance_id(&instance_id)
            .send()
            .await
            .expect("associate");

        for bucket in ["seed-lab-data", "seed-lab-results", "other-team-data"] {
            s3.create_bucket()
                .bucket(bucket)
                .send()
                .await
                .expect("bucket");
        }
        // The console's default for a new bucket is to block all public access; the
        // data bucket's is turned off to let its policy make it public.
        let block = |on: bool| {
            aws_sdk_s3::types::PublicAccessBlockConfiguration::builder()
                .block_public_acls(on)
                .ignore_public_acls(on)
                .block_public_policy(on)
                .restrict_public_buckets(on)
                .build()
        };
        for (bucket, on) in [("seed-lab-data", false), ("seed-lab-results", true)] {
            s3.put_public_access_block()
                .bucket(bucket)
                .public_access_block_configuration(block(on))
                .send()
                .await
                .expect("public access block");
        }
        let policy = serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Sid": "PublicReadGetObject",
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": "arn:aws:s3:::seed-lab-data/*"
            }]
        });
        s3.put_bucket_policy()
            .bucket("seed-lab-data")
            .policy(policy.to_string())
            .send()
            .await
            .expect("policy");
        Seed {
            instance_id,
            allocation_id,
            public_ip,
            access_key_id,
        }
    });
    support::tag_bucket(&s3, "seed-lab-data", &[("team", "ds")]);
    support::tag_bucket(
        &s3,
        "other-team-data",
        &[
            ("tether:project", "other"),
            ("tether:name", "other-team-data"),
        ],
    );
    support::put_object(&s3, "seed-lab-results", "run-1/out.csv", "a,b\n1,2\n");
    seed
}

/// moto moves an IAM group to a new path only while renaming it; AWS moves it with
/// `NewPath` alone, the call tether makes when it adopts a group. This stand-in passes IAM
/// on to moto and carries out such a call there as two renames (away and back, both with
/// the new path), so the group ends where AWS would put it.
fn iam_moving_groups(moto: &Moto) -> u16 {
    use support::http::{self, Request};
    let upstream = moto.port;
    http::serve(move |request: &Request| {
        let body = request.text();
        let field = |name: &str| {
            body.split('&')
                .find_map(|pair| pair.strip_prefix(&format!("{name}=")))
                .map(str::to_string)
        };
        let moving = body.contains("Action=UpdateGroup")
            && field("NewPath").is_some()
            && field("NewGroupName").is_none();
        let Some(group) = field("GroupName").filter(|_| moving) else {
            return request.forward(upstream);
        };
        let with_body = |body: String| Request {
            line: request.line.clone(),
            headers: request
                .headers
                .iter()
                .map(
                    |h| match h.to_ascii_lowercase().starts_with("content-length:") {
                        true => format!("Content-Length: {}\r\n", body.len()),
                        false => h.clone(),
                    },
                )
                .collect(),
            body: body.into_bytes(),
        };
        let away = format!("{group}-moving");
        with_body(format!("{body}&NewGroupName={away}")).forward(upstream);
        let back = body.replace(&format!("GroupName={group}"), &format!("GroupName={away}"));
        with_body(format!("{back}&NewGroupName={group}")).forward(upstream)
    })
}

/// The committed schema's verdict on `text` (Python's jsonschema), empty when it passes.
fn schema_errors(text: &str) -> String {
    const SCRIPT: &str = r#"
import json, sys, yaml, jsonschema
schema = json.load(open(sys.argv[1]))
validator = jsonschema.Draft202012Validator(schema)
document = yaml.safe_load(sys.stdin.read())
print("\n".join("/".join(map(str, e.path)) + ": " + e.message for e in validator.iter_errors(document)))
"#;
    let mut child = Command::new(support::venv_python())
        .args(["-c", SCRIPT])
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/schema/tether.schema.json"
        ))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run Python's jsonschema");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().expect("validator");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

#[test]
fn a_console_built_lab_becomes_a_spec_and_a_clean_plan_after_one_apply() {
    let moto = Moto::start();
    let seed = build_seed_lab(&moto);
    let ssh_dir = moto.dir.path().join(".ssh");
    std::fs::create_dir_all(&ssh_dir).unwrap();
    let own_config = format!(
        "Host github.com\n    User git\n\nHost MyNewInstance\n    HostName {}\n    User ubuntu\n    IdentityFile ~/.ssh/seed-key.pem\n    LocalForward 8888 localhost:8888\n",
        seed.public_ip
    );
    std::fs::write(ssh_dir.join("config"), &own_config).unwrap();
    let lab = moto.dir.path().join("seed");
    std::fs::create_dir_all(&lab).unwrap();
    let spec = lab.join("tether.yaml");
    let spec_arg = spec.to_str().unwrap();

    let import = moto
        .tether(&["import", "-o", spec_arg])
        .expect_code(0)
        .expect_stderr("for project `seed`")
        .expect_stderr("left out 1 that other tether projects own");
    let text = std::fs::read_to_string(&spec).expect("the spec was written");
    assert!(
        text.starts_with("# yaml-language-server: $schema=./tether.schema.json\n"),
        "{text}"
    );
    assert!(lab.join("tether.schema.json").exists());
    assert_eq!(schema_errors(&text), "", "{text}");
    assert!(
        !text.contains("other-team-data:"),
        "another project's bucket: {text}"
    );
    assert!(
        text.contains("# Left out: bucket.other-team-data belongs to tether project `other`"),
        "{text}"
    );
    for expected in [
        "  alias: {name: seed-lab, adopt: true}",
        "    minimum_length: 14",
        "      policies: [arn:aws:iam::aws:policy/AdministratorAccess]",
        "      groups: [admins]",
        "      console_access: true",
        "      programmatic_access: true",
        "  seed-lab-results:",
        "      - {port: 22, cidr: 203.0.113.7/32}",
        "      - {port: 8888, cidr: 203.0.113.7/32}",
        "    private_key_file: ~/.ssh/seed-key.pem",
        "  worker:",
        &format!("    ami: {AMI}"),
        "    type: t3.micro",
        "    root_volume_gb: 50",
        &format!("    id: {}", seed.instance_id),
        "  worker-ip:",
        "    instance: worker",
        &format!("    allocation_id: {}", seed.allocation_id),
        "    MyNewInstance:",
        "      user: ubuntu",
        "      forward: [8888]",
    ] {
        assert!(text.contains(expected), "lacks {expected:?}:\n{text}");
    }
    // No secret is read, so none is written.
    assert!(!text.contains("Seed-Console-Passw0rd"));
    // The console's public access block differs from tether's for a public bucket (which
    // keeps ACLs blocked): import says so rather than hiding the change.
    assert!(
        import
            .stderr
            .contains("bucket.seed-lab-data: public_access_block"),
        "{}",
        import.stderr
    );

    moto.tether(&["validate", "-f", spec_arg]).expect_code(0);
    let plan = moto
        .tether(&["plan", "-f", spec_arg, "--json"])
        .expect_code(0);
    let plan: serde_json::Value = serde_json::from_str(&plan.stdout).expect("plan JSON");
    let actions: BTreeMap<String, String> = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["address"].as_str().unwrap().to_string(),
                c["action"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for (address, action) in &actions {
        assert!(
            action == "adopt" || action == "no-op",
            "{address} would be {action}: {actions:?}"
        );
    }
    assert_eq!(plan["summary"]["adopt"], 10, "{actions:?}");

    let mut env = moto.env();
    env.push((
        "AWS_ENDPOINT_URL_IAM".into(),
        format!("http://127.0.0.1:{}", iam_moving_groups(&moto)),
    ));
    let tether = |args: &[&str]| support::run_tether(moto.dir.path(), &env, args);
    // As CI would: a saved plan, checked fresh (what it adopts by id is read by id), then
    // applied; then this machine's ssh alias, which no shared plan holds.
    let saved = moto.dir.path().join("adopt.tplan");
    let saved = saved.to_str().unwrap();
    tether(&["plan", "-f", spec_arg, "--out", saved]).expect_code(0);
    tether(&["apply", saved]).expect_code(0);
    tether(&["apply", "-f", spec_arg, "--auto-approve"])
        .expect_code(0)
        .expect_stderr("No changes to the account.");
    tether(&["plan", "-f", spec_arg, "--detailed-exitcode"])
        .expect_code(0)
        .expect_stderr("No changes.");

    // Nothing was lost: the same instance, address, access key and data; the user's ssh
    // entry now lives in tether's block, the rest of the file as it was.
    let (ec2, iam, s3) = (moto.ec2(), moto.iam(), moto.s3("us-east-1"));
    block_on(async {
        let described = ec2
            .describe_instances()
            .instance_ids(&seed.instance_id)
            .send()
            .await
            .unwrap();
        let instance = &described.reservations()[0].instances()[0];
        assert_eq!(
            instance.state().unwrap().name().unwrap().as_str(),
            "running"
        );
        let tags: BTreeMap<&str, &str> = instance
            .tags()
            .iter()
            .map(|t| (t.key().unwrap(), t.value().unwrap()))
            .collect();
        assert_eq!(tags.get("tether:project"), Some(&"seed"));
        assert_eq!(tags.get("team"), Some(&"ds"));
        let addresses = ec2.describe_addresses().send().await.unwrap();
        let address = addresses
            .addresses()
            .iter()
            .find(|a| a.allocation_id() == Some(seed.allocation_id.as_str()))
            .expect("the address stays");
        assert_eq!(address.instance_id(), Some(seed.instance_id.as_str()));
        let keys = iam
            .list_access_keys()
            .user_name("erich")
            .send()
            .await
            .unwrap();
        let ids: Vec<&str> = keys
            .access_key_metadata()
            .iter()
            .filter_map(|k| k.access_key_id())
            .collect();
        assert_eq!(
            ids,
            [seed.access_key_id.as_str()],
            "the user's own key, and no other"
        );
        iam.get_login_profile()
            .user_name("erich")
            .send()
            .await
            .expect("the password stays");
        let aliases = iam.list_account_aliases().send().await.unwrap();
        assert_eq!(aliases.account_aliases(), ["seed-lab"]);
        let _ = s3;
    });
    assert_eq!(
        support::get_object(&moto.s3("us-east-1"), "seed-lab-results", "run-1/out.csv").as_deref(),
        Some(&b"a,b\n1,2\n"[..])
    );
    assert_eq!(
        support::tags(&moto.s3("us-east-1"), "other-team-data").get("tether:project"),
        Some(&"other".to_string()),
        "another project's bucket is not touched"
    );
    let config = std::fs::read_to_string(ssh_dir.join("config")).unwrap();
    assert!(
        config.starts_with("Host github.com\n    User git\n\n"),
        "{config}"
    );
    assert_eq!(config.matches("Host MyNewInstance").count(), 1, "{config}");
    assert!(config.contains("# BEGIN tether seed"), "{config}");

    // A second import finds nothing left to take in but the other project's bucket.
    let again = moto.dir.path().join("again.yaml");
    moto.tether(&["import", "-o", again.to_str().unwrap(), "--project", "seed"])
        .expect_code(0)
        .expect_stderr("0 resource(s) to adopt");
}
