//! Table-driven tests of spec parsing: every bad input gives a rendered error that points at
//! `file:line:column`. The renderings are insta snapshots under `snapshots/`.

use super::*;

fn error_text(yaml: &str) -> String {
    match parse("tether.yaml", yaml) {
        Ok(spec) => panic!("expected an error, got {spec:?}"),
        Err(error) => error.to_string(),
    }
}

#[test]
fn bad_input_is_reported_with_its_position() {
    let cases = [
        ("empty_file", "\n"),
        ("malformed_yaml", "project: lab\nbuckets:\n  data: {public_read: true\n"),
        ("unknown_top_level_key", "project: lab\nbukets:\n  data: {}\n"),
        (
            "ssh_alias_for_undeclared_instance_and_bad_port",
            "project: lab\nssh:\n  hosts:\n    box:\n      instance: wroker\n      port: 70000\n",
        ),
        ("unknown_bucket_key", "project: lab\nbuckets:\n  data:\n    public-read: true\nregion: us-east-1\n"),
        ("wrong_type", "project: lab\nbuckets:\n  data:\n    force_destroy: maybe\nregion: us-east-1\n"),
        // YAML 1.1's `yes` is no boolean in YAML 1.2: it must not silently mean `true`.
        ("yaml_1_1_boolean", "project: lab\nbuckets:\n  data:\n    public_read: yes\nregion: us-east-1\n"),
        // A key given twice would silently drop one of its values.
        ("duplicate_key", "project: lab\nbuckets:\n  data: {}\n  data: {force_destroy: true}\nregion: us-east-1\n"),
        ("missing_project", "region: us-east-1\n"),
        (
            "budget_bad_limit_alerts_and_address",
            "project: lab\nregion: us-east-1\nbudget:\n  monthly_usd: 0\n  alert_at: [80, 2000, 80]\n  notify: [alice@example.com, \"bob at example\"]\n",
        ),
        (
            "budget_alerts_nobody",
            "project: lab\nregion: us-east-1\nbudget:\n  monthly_usd: 100\n  alert_at: [80]\n",
        ),
        // An id is for adopting, and has EC2's shape; an address has no name to adopt by.
        (
            "adopt_ids",
            "project: lab\nregion: us-east-1\ninstances:\n  worker:\n    ami: ami-1e749f67\n    type: t3.micro\n    id: i-0123456789abcdef0\n  other:\n    ami: ami-1e749f67\n    type: t3.micro\n    adopt: true\n    id: i-xyz\nelastic_ips:\n  ip: {adopt: true}\n",
        ),
        ("bad_project_name", "project: \"my lab\"\n"),
        ("bad_region", "project: lab\nregion: Frankfurt\n"),
        // Regression: with no `region:`, an operator in us-east-1 and CI in us-west-2 applied
        // at once, each under a lock of its own region, and left a user with two access
        // keys.
        ("resources_without_a_region", "project: lab\niam:\n  users:\n    erich: {programmatic_access: true}\nbuckets:\n  lab-data: {}\n"),
        ("bucket_name_with_underscore", "project: lab\nbuckets:\n  lab_data: {}\nregion: us-east-1\n"),
        ("bucket_name_upper_case", "project: lab\nbuckets:\n  LabData: {}\nregion: us-east-1\n"),
        ("bucket_name_ip_address", "project: lab\nbuckets:\n  192.168.10.1: {}\nregion: us-east-1\n"),
        ("bucket_name_too_short", "project: lab\nbuckets:\n  ab: {}\nregion: us-east-1\n"),
        ("bucket_name_double_dot", "project: lab\nbuckets:\n  lab..data: {}\nregion: us-east-1\n"),
        ("reserved_tag", "project: lab\nbuckets:\n  lab-data:\n    tags: {\"tether:project\": other}\nregion: us-east-1\n"),
        (
            "policy_bad_effect",
            "project: lab\nbuckets:\n  lab-data:\n    policy:\n      Version: \"2012-10-17\"\n      Statement:\n        - Effect: Permit\n          Principal: \"*\"\n          Action: s3:GetObject\n          Resource: arn:aws:s3:::lab-data/*\nregion: us-east-1\n",
        ),
        (
            "policy_missing_version",
            "project: lab\nbuckets:\n  lab-data:\n    policy:\n      Statement: []\nregion: us-east-1\n",
        ),
        (
            "policy_json_string_invalid",
            "project: lab\nbuckets:\n  lab-data:\n    policy: '{\"Version\": \"2012-10-17\", \"Statement\": ['\nregion: us-east-1\n",
        ),
        (
            "policy_json_string_public_write",
            "project: lab\nbuckets:\n  lab-data:\n    policy: '{\"Version\": \"2012-10-17\", \"Statement\": [{\"Effect\": \"Allow\", \"Principal\": \"*\", \"Action\": \"s3:PutObject\", \"Resource\": \"arn:aws:s3:::lab-data/*\"}]}'\nregion: us-east-1\n",
        ),
        (
            "policy_public_write",
            "project: lab\nbuckets:\n  lab-data:\n    policy:\n      Version: \"2012-10-17\"\n      Statement:\n        - Effect: Allow\n          Principal: {AWS: \"*\"}\n          Action: [s3:GetObject, \"s3:*\"]\n          Resource: arn:aws:s3:::lab-data/*\nregion: us-east-1\n",
        ),
        (
            "public_read_sid_clash",
            "project: lab\nbuckets:\n  lab-data:\n    public_read: true\n    policy:\n      Version: \"2012-10-17\"\n      Statement:\n        - Sid: AllowPublicRead\n          Effect: Allow\n          Principal: \"*\"\n          Action: s3:GetObject\n          Resource: arn:aws:s3:::lab-data/*\nregion: us-east-1\n",
        ),
        (
            "iam_user_in_undeclared_group",
            "project: lab\niam:\n  groups:\n    admins: {}\n  users:\n    erich:\n      groups: [admins, analysts]\nregion: us-east-1\n",
        ),
        ("iam_bad_user_name", "project: lab\niam:\n  users:\n    \"erich smith\": {}\nregion: us-east-1\n"),
        (
            "iam_bad_policy_arn",
            "project: lab\niam:\n  groups:\n    admins:\n      policies: [AdministratorAccess]\nregion: us-east-1\n",
        ),
        (
            "iam_inline_policy_with_principal",
            "project: lab\niam:\n  users:\n    erich:\n      inline_policies:\n        read-lab:\n          Version: \"2012-10-17\"\n          Statement:\n            - Effect: Allow\n              Principal: \"*\"\n              Action: s3:GetObject\n              Resource: \"*\"\nregion: us-east-1\n",
        ),
        (
            "password_policy_out_of_range",
            "project: lab\naccount:\n  password_policy:\n    minimum_length: 4\n    reuse_prevention: 30\nregion: us-east-1\n",
        ),
        ("bad_account_alias", "project: lab\naccount:\n  alias: DSI--Lab\nregion: us-east-1\n"),
        (
            "iam_user_unknown_field",
            "project: lab\niam:\n  users:\n    erich:\n      console_acess: true\nregion: us-east-1\n",
        ),
        (
            "key_pair_without_a_file",
            "project: lab\nkey_pairs:\n  lab-key: {}\nregion: us-east-1\n",
        ),
        // Regression: `validate` accepted it, and with `secrets: local` one private key was
        // lost for good while the plan said "No changes".
        (
            "key_pairs_sharing_a_private_key_file",
            "project: lab\nkey_pairs:\n  one: {private_key_file: ~/.ssh/lab.pem}\n  two: {private_key_file: ~/.ssh/./lab.pem}\nregion: us-east-1\n",
        ),
        // Regression: `github.com` was accepted as an alias, so every teammate's `git` over
        // ssh to GitHub went to the lab instance.
        (
            "ssh_alias_that_is_a_host_name",
            "project: lab\ninstances:\n  helper: {ami: ami-0abcdef1234567890, type: t3.micro}\nssh:\n  hosts:\n    github.com: {instance: helper, user: git}\n    \"2130706433\": {instance: helper}\nregion: us-east-1\n",
        ),
        (
            "ssh_open_to_the_world",
            "project: lab\nsecurity_groups:\n  ssh:\n    ingress:\n      - {port: 22, cidr: 0.0.0.0/0}\nregion: us-east-1\n",
        ),
        (
            "bad_cidr_and_port",
            "project: lab\nsecurity_groups:\n  ssh:\n    ingress:\n      - {port: 22, cidr: 203.0.113.7}\n      - {port: 70000, cidr: 203.0.113.7/32}\n      - {port: 8888, cidr: 203.0.113.7/24}\nregion: us-east-1\n",
        ),
        (
            "overlapping_cidrs",
            "project: lab\nsecurity_groups:\n  ssh:\n    ingress:\n      - {port: 22, cidr: 203.0.113.0/24}\n      - {port: 22, cidr: 203.0.113.7/32}\nregion: us-east-1\n",
        ),
        (
            "security_group_name_like_an_id",
            "project: lab\nsecurity_groups:\n  sg-home: {}\nregion: us-east-1\n",
        ),
        (
            "instance_bad_ami_and_type",
            "project: lab\ninstances:\n  worker:\n    ami: ubuntu-22.04\n    type: M5 Large\nregion: us-east-1\n",
        ),
        (
            "instance_max_price_without_spot",
            "project: lab\ninstances:\n  worker:\n    ami: ami-0abcdef1234567890\n    type: t3.micro\n    max_price: \"0.10\"\nregion: us-east-1\n",
        ),
        (
            "instance_bad_volumes",
            "project: lab\ninstances:\n  worker:\n    ami: ami-0abcdef1234567890\n    type: t3.micro\n    root_volume_gb: 0\n    volumes:\n      - {device: /dev/nvme1n1, size_gb: 100}\n      - {device: /dev/sdg, size_gb: 20000, type: gp9}\nregion: us-east-1\n",
        ),
        (
            "instance_bad_image_lookup_owner",
            "project: lab\ninstances:\n  worker:\n    ami: {name: \"DSI-Template*\", owner: me}\n    type: t3.micro\nregion: us-east-1\n",
        ),
        (
            "instance_without_ami",
            "project: lab\ninstances:\n  worker:\n    type: t3.micro\nregion: us-east-1\n",
        ),
        (
            "elastic_ip_for_undeclared_instance",
            "project: lab\nelastic_ips:\n  worker-ip: {instance: wroker}\nregion: us-east-1\n",
        ),
        (
            "job_after_unknown_and_cycle",
            "project: lab\njobs:\n  a:\n    inputs: ./x/*.txt\n    builtin: word_count\n    after: [b]\n  b:\n    inputs: ./x/*.txt\n    builtin: word_count\n    after: [a, c]\n",
        ),
        (
            "job_command_without_input",
            "project: lab\njobs:\n  clean:\n    inputs: ./raw/*.csv\n    command: \"python3 clean.py\"\n",
        ),
        (
            "job_bad_s3_urls",
            "project: lab\njobs:\n  count:\n    inputs: s3://Lab_Data/docs/\n    builtin: word_count\n    output: https://example.com/x.json\n  fetch:\n    inputs: s3:/lab-data\n    command: \"cat {input} > {output}\"\n    output: s3://lab-data/results.json\n",
        ),
        // `upload`, `setup` and `then` go with jobs on instances only.
        (
            "instance_fields_on_jobs_elsewhere",
            "project: lab\nregion: us-east-1\njobs:\n  here:\n    inputs: ./x/*.txt\n    builtin: word_count\n    then: stop\n  queued:\n    run_on: {batch: q, definition: d}\n    inputs: s3://lab-data/x/\n    builtin: word_count\n    setup: \"make\"\n",
        ),
        (
            "job_builtin_and_command",
            "project: lab\njobs:\n  both:\n    inputs: ./x/*.txt\n    builtin: word_count\n    command: \"wc -w {input}\"\n",
        ),
        // An idle rule: a duration in range, a CPU floor in percent.
        (
            "idle_stop_out_of_range",
            "project: lab\nregion: us-east-1\ninstances:\n  quick: {ami: ami-1e749f67, type: t3.micro, idle_stop: 1m}\n  forever: {ami: ami-1e749f67, type: t3.micro, idle_stop: 3d}\n  floor:\n    ami: ami-1e749f67\n    type: t3.micro\n    idle_stop: {after: 30m, cpu_below: 100}\n  tagged:\n    ami: ami-1e749f67\n    type: t3.micro\n    idle_stop: 30m\n    tags: {\"cost center\": ds, team/sub: x, ok-key: y}\n",
        ),
        // A forward: a port only root may bind here, a local port twice.
        (
            "ssh_forward_bad_ports",
            "project: lab\nregion: us-east-1\ninstances:\n  worker: {ami: ami-1e749f67, type: t3.micro}\nssh:\n  hosts:\n    lab:\n      instance: worker\n      forward: [80, 8888, {local: 8888, remote: 8889}, 70000]\n",
        ),
        (
            "several_errors_at_once",
            "project: lab\nregion: nowhere\nbuckets:\n  Bad_One: {}\n  good-one: {}\n  also..bad: {}\n",
        ),
    ];
    for (name, yaml) in cases {
        insta::assert_snapshot!(name, error_text(yaml), yaml);
    }
}

#[test]
fn a_full_bucket_parses_into_the_model() {
    let yaml = "\
project: dsi-lab
region: eu-west-1
buckets:
  dsi-lab-data:
    public_read: true
    tags: {team: ds}
    force_destroy: true
  dsi-lab-private:
  dsi-lab-json:
    adopt: true
    policy: '{\"Version\": \"2012-10-17\", \"Statement\": {\"Effect\": \"Deny\", \"Principal\": \"*\", \"Action\": \"s3:*\", \"Resource\": \"arn:aws:s3:::dsi-lab-json/*\", \"Condition\": {\"Bool\": {\"aws:SecureTransport\": \"false\"}}}}'
";
    let spec = parse("tether.yaml", yaml).expect("valid spec");
    assert_eq!(spec.project, "dsi-lab");
    assert_eq!(spec.region.as_deref(), Some("eu-west-1"));
    assert_eq!(
        spec.buckets.keys().collect::<Vec<_>>(),
        ["dsi-lab-data", "dsi-lab-json", "dsi-lab-private"]
    );
    let data = &spec.buckets["dsi-lab-data"];
    assert!(data.public_read && data.force_destroy && !data.adopt);
    assert_eq!(data.tags.get("team").map(String::as_str), Some("ds"));
    assert_eq!((data.location.line, data.location.column), (4, 3));
    let private = &spec.buckets["dsi-lab-private"];
    assert!(!private.public_read && private.policy.is_none() && private.tags.is_empty());
    let json = &spec.buckets["dsi-lab-json"];
    assert!(json.adopt);
    assert_eq!(
        json.policy.as_ref().and_then(|p| p.get("Version")),
        Some(&Value::from("2012-10-17"))
    );
}

#[test]
fn bucket_name_rules_accept_what_aws_accepts() {
    for name in [
        "abc",
        "lab-data",
        "my.bucket.01",
        "0-numbers-first",
        &"a".repeat(63),
    ] {
        assert_eq!(check_bucket_name(name), Ok(()), "{name}");
    }
    for name in [
        "ab",
        "-lab",
        "lab-",
        "Lab",
        "lab_data",
        "1.2.3.4",
        "xn--lab",
        "lab-s3alias",
        "a b c",
        &"a".repeat(64),
    ] {
        assert!(check_bucket_name(name).is_err(), "{name}");
    }
}

#[test]
fn region_names() {
    for region in [
        "us-east-1",
        "eu-central-2",
        "us-gov-west-1",
        "ap-southeast-3",
    ] {
        assert!(is_region_name(region), "{region}");
    }
    for region in ["us-east", "useast1", "US-EAST-1", "us-east-x", "u-east-1"] {
        assert!(!is_region_name(region), "{region}");
    }
}

#[test]
fn the_seed_admin_user_parses() {
    let yaml = "\
project: dsi-lab
account:
  alias: dsi-lab
  password_policy:
    minimum_length: 14
    require_symbols: true
    require_numbers: true
    require_uppercase: true
    require_lowercase: true
    max_age_days: 90
    reuse_prevention: 5
iam:
  groups:
    admins:
      policies: [arn:aws:iam::aws:policy/AdministratorAccess]
  users:
    erich:
      groups: [admins]
      inline_policies:
        read-lab-data: {Version: \"2012-10-17\", Statement: [{Effect: Allow, Action: s3:GetObject, Resource: \"arn:aws:s3:::dsi-lab-data/*\"}]}
      tags: {team: ds}
region: us-east-1
";
    let spec = parse("tether.yaml", yaml).expect("valid spec");
    assert_eq!(
        spec.account.alias.as_ref().map(|a| a.name.as_str()),
        Some("dsi-lab")
    );
    let policy = spec
        .account
        .password_policy
        .as_ref()
        .expect("password policy");
    let policy = &policy.policy;
    assert_eq!(
        (
            policy.minimum_length,
            policy.max_age_days,
            policy.reuse_prevention
        ),
        (14, Some(90), Some(5))
    );
    assert!(policy.allow_users_to_change_password, "IAM's default");
    assert!(spec.groups["admins"]
        .policies
        .contains("arn:aws:iam::aws:policy/AdministratorAccess"));
    let erich = &spec.users["erich"];
    assert!(erich.groups.contains("admins"));
    assert!(erich.inline_policies.contains_key("read-lab-data"));
    assert_eq!(erich.tags.get("team").map(String::as_str), Some("ds"));
}

#[test]
fn iam_name_and_arn_rules() {
    for name in [
        "erich",
        "e.smith@lab",
        "a+b=c,d",
        "under_score",
        &"x".repeat(64),
    ] {
        assert!(is_iam_name(name, 64), "{name}");
    }
    for name in ["", "with space", "slash/no", "ünïcode", &"x".repeat(65)] {
        assert!(!is_iam_name(name, 64), "{name}");
    }
    for arn in [
        "arn:aws:iam::aws:policy/AdministratorAccess",
        "arn:aws:iam::123456789012:policy/team/read-lab",
        "arn:aws-cn:iam::aws:policy/ReadOnlyAccess",
        "arn:aws:iam::aws:policy/service-role/AmazonEC2RoleforSSM",
    ] {
        assert!(is_managed_policy_arn(arn), "{arn}");
    }
    for arn in [
        "AdministratorAccess",
        "arn:aws:iam::aws:role/Admin",
        "arn:aws:iam::12345:policy/x",
        "arn:aws:iam:us-east-1:aws:policy/x",
        "arn:aws:s3:::bucket",
    ] {
        assert!(!is_managed_policy_arn(arn), "{arn}");
    }
    assert_eq!(check_account_alias("dsi-lab"), Ok(()));
    for alias in ["ab", "-lab", "lab-", "dsi--lab", "DSI", "123456789012"] {
        assert!(check_account_alias(alias).is_err(), "{alias}");
    }
}

#[test]
fn key_pairs_and_security_groups_parse() {
    let yaml = "\
project: lab
key_pairs:
  lab-key:
    private_key_file: ~/.ssh/lab-key.pem
  my-laptop:
    public_key_file: ~/.ssh/id_ed25519.pub
security_groups:
  ssh-from-home:
    description: SSH and Jupyter from home
    ingress:
      - {port: 22, cidr: 203.0.113.7/32}
      - {port: 8888, cidr: 203.0.113.7/32, protocol: tcp}
      - {port: 22, cidr: 0.0.0.0/0, allow_world: true, protocol: udp}
region: us-east-1
";
    let spec = parse("tether.yaml", yaml).expect("valid spec");
    assert_eq!(
        spec.key_pairs["lab-key"].source,
        KeySource::Generate {
            private_key_file: "~/.ssh/lab-key.pem".into()
        }
    );
    assert_eq!(
        spec.key_pairs["my-laptop"].source,
        KeySource::Import {
            public_key_file: "~/.ssh/id_ed25519.pub".into()
        }
    );
    let group = &spec.security_groups["ssh-from-home"];
    assert_eq!(group.description, "SSH and Jupyter from home");
    assert_eq!(
        group.ingress,
        [
            IngressSpec {
                protocol: Protocol::Tcp,
                port: 22,
                cidr: "203.0.113.7/32".into()
            },
            IngressSpec {
                protocol: Protocol::Tcp,
                port: 8888,
                cidr: "203.0.113.7/32".into()
            },
            IngressSpec {
                protocol: Protocol::Udp,
                port: 22,
                cidr: "0.0.0.0/0".into()
            },
        ]
    );
}

// Regression: an input named `a{output}$(touch PWNED).txt` ran `touch PWNED`, because paths
// were pasted into the command's shell code, and `{output}` inside a pasted path was
// replaced again.
#[test]
fn command_placeholders_become_variable_references_once() {
    use crate::spec::command_script;
    for (template, expected) in [
        (
            "tr a-z A-Z < {input} > {output}",
            r#"tr a-z A-Z < "${TETHER_INPUT}" > "${TETHER_OUTPUT}""#,
        ),
        (
            r#"echo "file: {input}" > {output}"#,
            r#"echo "file: ${TETHER_INPUT}" > "${TETHER_OUTPUT}""#,
        ),
        (r"echo \'{input}", r#"echo \'"${TETHER_INPUT}""#),
        (
            "python3 x.py {input}{output}",
            r#"python3 x.py "${TETHER_INPUT}""${TETHER_OUTPUT}""#,
        ),
        ("echo {inputs} {in put}", "echo {inputs} {in put}"),
    ] {
        assert_eq!(
            command_script(template).as_deref(),
            Ok(expected),
            "{template}"
        );
    }
    assert!(command_script("cat '{input}'")
        .unwrap_err()
        .contains("inside single quotes"));
    assert!(command_script("cat \"{input}")
        .unwrap_err()
        .contains("unclosed quote"));
}

// Uploads reach the instance through scp's remote path: a file name a shell could read as
// code is refused at its line.
#[test]
fn uploads_need_plain_file_names() {
    let spec = |file: &str| {
        format!(
            "project: lab\ninstances:\n  worker: {{ami: ami-0abcdef1234567890, type: t3.micro}}\nssh:\n  hosts:\n    box: {{instance: worker}}\njobs:\n  shout:\n    run_on: worker\n    upload: [\"{file}\"]\n    command: \"sh shout.sh\"\nregion: us-east-1\n"
        )
    };
    let text = error_text(&spec("./x;touch PWNED.sh"));
    assert!(
        text.contains("upload `./x;touch PWNED.sh` needs a plain file name"),
        "{text}"
    );
    assert!(text.contains("tether.yaml:10:14"), "{text}");
    assert!(crate::spec::parse("tether.yaml", &spec("./scripts/shout-v1.2.sh")).is_ok());
}

#[test]
fn user_data_beside_the_idle_watchdog_must_be_a_part_cloud_init_can_hold() {
    let yaml = "project: lab\nregion: us-east-1\ninstances:\n  worker:\n    ami: ami-1e749f67\n    type: t3.micro\n    user_data: boot.txt\n    idle_stop: 30m\n";
    let read_with = |content: &'static [u8]| {
        let mut spec = parse("tether.yaml", yaml).expect("the spec parses");
        spec.read_files(std::path::Path::new("."), |_| Ok(content.to_vec()))
            .map(|()| spec)
    };
    let archive = read_with(b"Content-Type: multipart/mixed; boundary=\"x\"\n\n--x--\n")
        .expect_err("an archive of its own is refused")
        .to_string();
    assert!(archive.contains("tether.yaml:7:16"), "{archive}");
    assert!(
        archive.contains("cannot go beside the idle watchdog"),
        "{archive}"
    );
    let large = read_with(&[b'#'; 15_000])
        .expect_err("too large with the watchdog")
        .to_string();
    assert!(
        large.contains("with the idle watchdog of `idle_stop` is"),
        "{large}"
    );
    let spec = read_with(b"#cloud-config\npackages: [tmux]\n").expect("a cloud-config fits");
    assert_eq!(
        spec.instances["worker"].idle_stop,
        Some(IdleStopSpec {
            after_minutes: 30,
            cpu_below: None
        })
    );
}
