//! End-to-end tests of EC2 key pairs and security groups: the real `tether` binary against
//! moto, the account checked through the SDK.

mod support;

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;

use aws_sdk_ec2::types::Filter;
use support::{block_on, Moto};

const SPEC: &str = "\
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
";

fn key_names(ec2: &aws_sdk_ec2::Client) -> BTreeSet<String> {
    block_on(async {
        let out = ec2.describe_key_pairs().send().await.expect("key pairs");
        out.key_pairs()
            .iter()
            .filter_map(|k| k.key_name().map(str::to_string))
            .collect()
    })
}

/// The group's ingress as `protocol/port cidr` strings, or `None` when there is no group.
fn ingress(ec2: &aws_sdk_ec2::Client, name: &str) -> Option<BTreeSet<String>> {
    block_on(async {
        let out = ec2
            .describe_security_groups()
            .filters(Filter::builder().name("group-name").values(name).build())
            .send()
            .await
            .expect("security groups");
        out.security_groups().first().map(|group| {
            group
                .ip_permissions()
                .iter()
                .flat_map(|p| {
                    p.ip_ranges().iter().map(move |r| {
                        format!(
                            "{}/{} {}",
                            p.ip_protocol().unwrap_or_default(),
                            p.from_port().unwrap_or_default(),
                            r.cidr_ip().unwrap_or_default()
                        )
                    })
                })
                .collect()
        })
    })
}

/// The rules as `ingress` reports them for a group that exists.
#[allow(clippy::unnecessary_wraps)]
fn rules(items: &[&str]) -> Option<BTreeSet<String>> {
    Some(items.iter().map(|s| s.to_string()).collect())
}

#[test]
fn key_pair_and_ssh_only_group_from_nothing_then_no_changes() {
    let moto = Moto::start();
    moto.write("tether.yaml", SPEC);
    let apply = moto.tether(&["apply", "--auto-approve"]).expect_code(0);
    let ec2 = moto.ec2();
    assert_eq!(key_names(&ec2), BTreeSet::from(["lab-key".to_string()]));
    assert_eq!(
        ingress(&ec2, "ssh-from-home"),
        rules(&["tcp/22 203.0.113.7/32", "tcp/8888 203.0.113.7/32"])
    );

    let pem = moto.dir.path().join(".ssh/lab-key.pem");
    let mode = std::fs::metadata(&pem)
        .expect("private key file")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o400, "ssh refuses keys others can read");
    let key = std::fs::read_to_string(&pem).expect("private key");
    assert!(key.contains("PRIVATE KEY"), "a PEM private key");
    let body: String = key.lines().filter(|l| !l.starts_with("-----")).collect();
    assert!(
        !apply.stderr.contains(&body[..40]) && !apply.stdout.contains(&body[..40]),
        "the private key never appears in output"
    );

    moto.tether(&["plan", "--detailed-exitcode"])
        .expect_code(0)
        .expect_stderr("No changes.");
}

#[test]
fn an_ingress_rule_added_out_of_band_is_drift_and_is_revoked() {
    let moto = Moto::start();
    moto.write("tether.yaml", SPEC);
    moto.tether(&["apply", "--auto-approve"]).expect_code(0);
    let ec2 = moto.ec2();
    block_on(async {
        let group = ec2
            .describe_security_groups()
            .filters(
                Filter::builder()
                    .name("group-name")
                    .values("ssh-from-home")
                    .build(),
            )
            .send()
            .await
            .expect("group");
        let id = group.security_groups()[0]
            .group_id()
            .expect("id")
            .to_string();
        ec2.authorize_security_group_ingress()
            .group_id(id)
            .ip_protocol("tcp")
            .from_port(22)
            .to_port(22)
            .cidr_ip("0.0.0.0/0")
            .send()
            .await
            .expect("open ssh to the world");
    });
    moto.tether(&["plan", "--detailed-exitcode"])
        .expect_code(2)
        .expect_stderr("~ security_group.ssh-from-home  (update in place)")
        .expect_stderr("tcp/22 from 0.0.0.0/0");
    moto.tether(&["apply", "--auto-approve"]).expect_code(0);
    assert_eq!(
        ingress(&ec2, "ssh-from-home"),
        rules(&["tcp/22 203.0.113.7/32", "tcp/8888 203.0.113.7/32"])
    );
    moto.tether(&["plan", "--detailed-exitcode"]).expect_code(0);
}

#[test]
fn an_existing_private_key_file_is_never_overwritten() {
    let moto = Moto::start();
    std::fs::create_dir_all(moto.dir.path().join(".ssh")).expect("~/.ssh");
    moto.write(".ssh/lab-key.pem", "someone else's key");
    moto.write("tether.yaml", SPEC);
    moto.tether(&["apply", "--auto-approve"])
        .expect_code(1)
        .expect_stderr("refusing to overwrite")
        .expect_stderr("hint: move the file away");
    assert_eq!(
        std::fs::read_to_string(moto.dir.path().join(".ssh/lab-key.pem")).expect("file"),
        "someone else's key"
    );
    assert!(
        key_names(&moto.ec2()).is_empty(),
        "no key pair whose private key nobody has"
    );
}

#[test]
fn an_imported_public_key_and_deletion_that_leaves_the_local_file() {
    let moto = Moto::start();
    std::fs::create_dir_all(moto.dir.path().join(".ssh")).expect("~/.ssh");
    // A well-formed OpenSSH public key (moto, like AWS, checks the format on import).
    moto.write(
        ".ssh/id_ed25519.pub",
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHuXJbHn8Ys3jM0dlr8kfUv2cJbVfNc1W9XnGq8r6Tb4 ds@laptop\n",
    );
    let spec = SPEC.replace(
        "key_pairs:\n",
        "key_pairs:\n  my-laptop:\n    public_key_file: ~/.ssh/id_ed25519.pub\n",
    );
    moto.write("tether.yaml", &spec);
    moto.tether(&["apply", "--auto-approve"]).expect_code(0);
    let ec2 = moto.ec2();
    assert_eq!(
        key_names(&ec2),
        BTreeSet::from(["lab-key".to_string(), "my-laptop".to_string()])
    );
    moto.tether(&["plan", "--detailed-exitcode"]).expect_code(0);

    // Removing the section deletes what tether made, in AWS; the private key file stays.
    moto.write("tether.yaml", "project: lab\nregion: us-east-1\n");
    moto.tether(&["apply", "--auto-approve"])
        .expect_code(0)
        .expect_stderr("- key_pair.lab-key  (delete: no longer in the spec)")
        .expect_stderr("- security_group.ssh-from-home  (delete: no longer in the spec)");
    assert!(key_names(&ec2).is_empty());
    assert_eq!(ingress(&ec2, "ssh-from-home"), None);
    assert!(
        moto.dir.path().join(".ssh/lab-key.pem").exists(),
        "the local private key file stays"
    );
}

// Regression for the crash window between CreateKeyPair and storing the private key: a key
// pair that a dead run left `pending` is replaced, since AWS never shows a key twice. A
// private key file that is merely missing on this machine changes nothing: another
// operator may hold the key.
#[test]
fn a_key_pair_left_pending_is_replaced_and_a_missing_local_file_is_not() {
    let moto = Moto::start();
    moto.write("tether.yaml", SPEC);
    moto.tether(&["apply", "--auto-approve"]).expect_code(0);
    let pem = moto.dir.path().join(".ssh/lab-key.pem");
    std::fs::remove_file(&pem).expect("lose the private key");
    moto.tether(&["plan", "--detailed-exitcode"]).expect_code(0);

    let ec2 = moto.ec2();
    block_on(async {
        let keys = ec2.describe_key_pairs().send().await.expect("key pairs");
        let id = keys.key_pairs()[0].key_pair_id().expect("id").to_string();
        ec2.create_tags()
            .resources(id)
            .tags(
                aws_sdk_ec2::types::Tag::builder()
                    .key("tether:private-key")
                    .value("pending")
                    .build(),
            )
            .send()
            .await
            .expect("tag as a dead run leaves it")
    });
    moto.tether(&["plan", "--detailed-exitcode"])
        .expect_code(2)
        .expect_stderr("-/+ key_pair.lab-key  (replace: a run that created it died before storing its private key");
    moto.tether(&["apply", "--auto-approve"]).expect_code(0);
    let mode = std::fs::metadata(&pem)
        .expect("a new private key")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o400);
    assert_eq!(key_names(&ec2), BTreeSet::from(["lab-key".to_string()]));
    moto.tether(&["plan", "--detailed-exitcode"]).expect_code(0);
}

// Regression: after `destroy`, the next apply refused to overwrite the private key file
// that tether itself had written for the destroyed key pair.
#[test]
fn destroy_then_apply_replaces_tethers_own_stale_private_key_file() {
    let moto = Moto::start();
    moto.write("tether.yaml", SPEC);
    moto.tether(&["apply", "--auto-approve"]).expect_code(0);
    let pem = moto.dir.path().join(".ssh/lab-key.pem");
    let first = std::fs::read_to_string(&pem).expect("first key");
    moto.tether(&["destroy", "--auto-approve"]).expect_code(0);
    moto.tether(&["apply", "--auto-approve"]).expect_code(0);
    let second = std::fs::read_to_string(&pem).expect("second key");
    assert_ne!(first, second, "the new key pair's key replaced the old one");
}
