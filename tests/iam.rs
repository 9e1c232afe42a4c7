//! End-to-end tests of IAM groups and users, the account alias and the password policy: the
//! real `tether` binary against moto, the account checked through the SDK.

mod support;

use std::collections::BTreeSet;

use support::{block_on, Moto};

const LAB_SPEC: &str = include_str!("../specs/lab.yaml");
const ADMIN: &str = "arn:aws:iam::aws:policy/AdministratorAccess";

fn group_policies(iam: &aws_sdk_iam::Client, group: &str) -> BTreeSet<String> {
    block_on(async {
        let out = iam
            .list_attached_group_policies()
            .group_name(group)
            .send()
            .await
            .expect("list");
        out.attached_policies()
            .iter()
            .filter_map(|p| p.policy_arn().map(str::to_string))
            .collect()
    })
}

fn user_groups(iam: &aws_sdk_iam::Client, user: &str) -> BTreeSet<String> {
    block_on(async {
        let out = iam
            .list_groups_for_user()
            .user_name(user)
            .send()
            .await
            .expect("list");
        out.groups()
            .iter()
            .map(|g| g.group_name().to_string())
            .collect()
    })
}

fn user_names(iam: &aws_sdk_iam::Client) -> BTreeSet<String> {
    block_on(async {
        let out = iam.list_users().send().await.expect("list users");
        out.users()
            .iter()
            .map(|u| u.user_name().to_string())
            .collect()
    })
}

fn group_names(iam: &aws_sdk_iam::Client) -> BTreeSet<String> {
    block_on(async {
        let out = iam.list_groups().send().await.expect("list groups");
        out.groups()
            .iter()
            .map(|g| g.group_name().to_string())
            .collect()
    })
}

#[test]
fn the_seed_admin_user_end_to_end_and_a_plan_after_apply_is_clean() {
    let moto = Moto::start();
    moto.write("tether.yaml", LAB_SPEC);
    moto.tether(&["apply", "--auto-approve"]).expect_code(0);
    let iam = moto.iam();

    let group = block_on(async {
        iam.get_group()
            .group_name("admins")
            .send()
            .await
            .expect("group")
    });
    assert_eq!(
        group.group().expect("group").path(),
        "/tether/dsi-lab/",
        "the path records ownership"
    );
    assert_eq!(
        group_policies(&iam, "admins"),
        BTreeSet::from([ADMIN.to_string()])
    );

    let user = block_on(async {
        iam.get_user()
            .user_name("erich")
            .send()
            .await
            .expect("user")
    });
    let user = user.user().expect("user");
    assert_eq!(user.path(), "/tether/dsi-lab/");
    assert_eq!(
        user_groups(&iam, "erich"),
        BTreeSet::from(["admins".to_string()])
    );
    let tags = block_on(async {
        iam.list_user_tags()
            .user_name("erich")
            .send()
            .await
            .expect("tags")
    });
    let tags: Vec<(String, String)> = tags
        .tags()
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect();
    assert!(tags.contains(&("team".into(), "ds".into())));
    assert!(tags.contains(&("tether:project".into(), "dsi-lab".into())));
    let inline = block_on(async {
        iam.get_user_policy()
            .user_name("erich")
            .policy_name("read-lab-data")
            .send()
            .await
            .expect("inline policy")
    });
    let document = percent_decode(inline.policy_document());
    assert!(document.contains("s3:GetObject"), "{document}");

    let aliases = block_on(async { iam.list_account_aliases().send().await.expect("aliases") });
    assert_eq!(aliases.account_aliases(), ["dsi-lab"]);
    let policy = block_on(async {
        iam.get_account_password_policy()
            .send()
            .await
            .expect("password policy")
    });
    let policy = policy.password_policy().expect("policy");
    assert_eq!(policy.minimum_password_length(), Some(14));
    assert!(policy.require_symbols() && policy.require_numbers());
    assert!(policy.require_uppercase_characters() && policy.require_lowercase_characters());
    assert_eq!(policy.max_password_age(), Some(90));
    assert_eq!(policy.password_reuse_prevention(), Some(5));

    moto.tether(&["plan", "--detailed-exitcode"])
        .expect_code(0)
        .expect_stderr("No changes.");
}

fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

#[test]
fn a_policy_detached_out_of_band_shows_as_drift_and_is_reattached() {
    let moto = Moto::start();
    moto.write("tether.yaml", LAB_SPEC);
    moto.tether(&["apply", "--auto-approve"]).expect_code(0);
    let iam = moto.iam();
    block_on(async {
        iam.detach_group_policy()
            .group_name("admins")
            .policy_arn(ADMIN)
            .send()
            .await
            .expect("detach");
        iam.remove_user_from_group()
            .group_name("admins")
            .user_name("erich")
            .send()
            .await
            .expect("leave group");
    });
    moto.tether(&["plan", "--detailed-exitcode"])
        .expect_code(2)
        .expect_stderr("~ iam_group.admins  (update in place)")
        .expect_stderr("~ iam_user.erich  (update in place)")
        .expect_stderr("Plan: 0 to create, 2 to update, 0 to replace, 0 to delete.");
    moto.tether(&["apply", "--auto-approve"]).expect_code(0);
    assert_eq!(
        group_policies(&iam, "admins"),
        BTreeSet::from([ADMIN.to_string()])
    );
    assert_eq!(
        user_groups(&iam, "erich"),
        BTreeSet::from(["admins".to_string()])
    );
    moto.tether(&["plan", "--detailed-exitcode"]).expect_code(0);
}

#[test]
fn removing_a_user_and_its_group_deletes_them_in_the_order_iam_requires() {
    let moto = Moto::start();
    moto.write("tether.yaml", LAB_SPEC);
    moto.tether(&["apply", "--auto-approve"]).expect_code(0);
    let iam = moto.iam();
    // Things IAM refuses to delete a user with: tether's login profile and key, plus a second
    // key and a directly attached policy made behind tether's back.
    block_on(async {
        iam.create_access_key()
            .user_name("erich")
            .send()
            .await
            .expect("access key");
        iam.attach_user_policy()
            .user_name("erich")
            .policy_arn("arn:aws:iam::aws:policy/ReadOnlyAccess")
            .send()
            .await
            .expect("attach");
    });
    let without_iam = LAB_SPEC
        .split("\niam:\n")
        .next()
        .expect("spec head")
        .to_string()
        + "\nbuckets:\n"
        + LAB_SPEC.split("\nbuckets:\n").nth(1).expect("buckets");
    moto.write("tether.yaml", &without_iam);
    moto.tether(&["apply", "--auto-approve"])
        .expect_code(0)
        .expect_stderr("- iam_user.erich  (delete: no longer in the spec)")
        .expect_stderr("- iam_group.admins  (delete: no longer in the spec)");
    assert!(user_names(&iam).is_empty());
    assert!(group_names(&iam).is_empty());
    // The singletons stay: removing a section never deletes them.
    let aliases = block_on(async { iam.list_account_aliases().send().await.expect("aliases") });
    assert_eq!(aliases.account_aliases(), ["dsi-lab"]);
    moto.tether(&["plan", "--detailed-exitcode"]).expect_code(0);
}

#[test]
fn an_unowned_user_is_refused_until_adopted() {
    let moto = Moto::start();
    let iam = moto.iam();
    block_on(async {
        iam.create_user()
            .user_name("erich")
            .send()
            .await
            .expect("user")
    });
    let spec =
        "project: lab\niam:\n  users:\n    erich:\n      tags: {team: ds}\nregion: us-east-1\n";
    moto.write("tether.yaml", spec);
    moto.tether(&["plan"])
        .expect_code(1)
        .expect_stderr("iam_user.erich exists but is not owned by project `lab`")
        .expect_stderr("--> tether.yaml:4:5");
    moto.write(
        "tether.yaml",
        &spec.replace("erich:\n", "erich:\n      adopt: true\n"),
    );
    moto.tether(&["apply", "--auto-approve"])
        .expect_code(0)
        .expect_stderr("& iam_user.erich  (adopt)");
    let user = block_on(async {
        iam.get_user()
            .user_name("erich")
            .send()
            .await
            .expect("user")
    });
    assert_eq!(user.user().expect("user").path(), "/tether/lab/");
    moto.tether(&["plan", "--detailed-exitcode"]).expect_code(0);
}

#[test]
fn an_unknown_managed_policy_is_a_plan_error_pointing_at_the_spec() {
    let moto = Moto::start();
    moto.write(
        "tether.yaml",
        "project: lab\niam:\n  groups:\n    admins:\n      policies: [arn:aws:iam::aws:policy/AdministratorAccesss]\nregion: us-east-1\n",
    );
    moto.tether(&["apply", "--auto-approve"])
        .expect_code(1)
        .expect_stderr("iam_group.admins attaches `arn:aws:iam::aws:policy/AdministratorAccesss`, which does not exist")
        .expect_stderr("--> tether.yaml:4:5");
    assert!(group_names(&moto.iam()).is_empty(), "nothing is created");
}

#[test]
fn destroy_removes_owned_iam_and_the_declared_singletons() {
    let moto = Moto::start();
    moto.write("tether.yaml", LAB_SPEC);
    moto.tether(&["apply", "--auto-approve"]).expect_code(0);
    moto.tether(&["destroy", "--auto-approve"])
        .expect_code(0)
        .expect_stderr("- account.alias  (delete: destroy)")
        .expect_stderr("- account.password_policy  (delete: destroy)");
    let iam = moto.iam();
    assert!(user_names(&iam).is_empty());
    assert!(group_names(&iam).is_empty());
    let aliases = block_on(async { iam.list_account_aliases().send().await.expect("aliases") });
    assert!(aliases.account_aliases().is_empty());
    let policy = block_on(async { iam.get_account_password_policy().send().await });
    assert!(policy.is_err(), "no password policy is left");
}

/// Every secret file of `user`, with its mode.
fn secret_files(moto: &Moto, user: &str) -> (String, u32, String, u32) {
    use std::os::unix::fs::PermissionsExt;
    let dir = moto.dir.path().join(".tether/secrets/dsi-lab");
    let read = |name: &str| {
        let path = dir.join(name);
        let mode = std::fs::metadata(&path)
            .expect("secret file")
            .permissions()
            .mode()
            & 0o777;
        (std::fs::read_to_string(&path).expect("secret file"), mode)
    };
    let (password, password_mode) = read(&format!("{user}.password"));
    let (credentials, credentials_mode) = read(&format!("{user}.credentials"));
    (password, password_mode, credentials, credentials_mode)
}

fn field<'a>(credentials: &'a str, name: &str) -> &'a str {
    credentials
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(" = "))
        .unwrap_or_else(|| panic!("{name} in the credentials file"))
}

fn key_ids(iam: &aws_sdk_iam::Client, user: &str) -> Vec<String> {
    support::access_key_ids(iam, user)
}

#[test]
fn secrets_go_only_to_the_store_and_pulled_files_and_never_into_any_output() {
    let moto = Moto::start();
    moto.write("tether.yaml", LAB_SPEC);
    let mut outputs = Vec::new();
    let plan = moto
        .tether(&["plan", "--out", "lab.tplan"])
        .expect_code(0)
        .expect_stderr("+ console_access = true  (secret stored in Parameter Store at /tether/dsi-lab/users/erich/console-password)")
        .expect_stderr("(secret stored in Parameter Store at /tether/dsi-lab/users/erich/access-key)");
    outputs.push(plan.stdout + &plan.stderr);
    let json = moto.tether(&["plan", "--json"]).expect_code(0);
    outputs.push(json.stdout + &json.stderr);
    let apply = moto.tether(&["apply", "lab.tplan"]).expect_code(0);
    outputs.push(apply.stdout + &apply.stderr);
    outputs.push(std::fs::read_to_string(moto.dir.path().join("lab.tplan")).expect("saved plan"));
    assert!(
        !moto.dir.path().join(".tether/secrets/dsi-lab").exists(),
        "apply writes no local copy: the store is where secrets go"
    );

    // Both secrets are SecureStrings in the store.
    let ssm = moto.ssm();
    let (kind, document) =
        support::parameter(&ssm, "/tether/dsi-lab/users/erich/access-key").expect("access key");
    assert_eq!(kind, "SecureString");
    let stored: serde_json::Value = serde_json::from_str(&document).expect("a JSON document");
    let (kind, _) =
        support::parameter(&ssm, "/tether/dsi-lab/users/erich/console-password").expect("password");
    assert_eq!(kind, "SecureString");

    let pull = moto.tether(&["secrets", "pull"]).expect_code(0);
    outputs.push(pull.stdout + &pull.stderr);
    let (password, password_mode, credentials, credentials_mode) = secret_files(&moto, "erich");
    assert_eq!((password_mode, credentials_mode), (0o600, 0o600));
    let password = password.trim().to_string();
    assert!(password.len() >= 24, "a strong password");
    assert!(credentials.starts_with("[dsi-lab-erich]\n"));
    let secret = field(&credentials, "aws_secret_access_key").to_string();
    assert_eq!(stored["SecretAccessKey"], secret.as_str());
    let iam = moto.iam();
    assert_eq!(
        key_ids(&iam, "erich"),
        [field(&credentials, "aws_access_key_id")],
        "one key, the one stored"
    );
    // The login profile exists. (Whether a reset is required cannot be checked here: moto
    // ignores PasswordResetRequired on CreateLoginProfile and always answers false.)
    assert!(block_on(async { iam.get_login_profile().user_name("erich").send().await }).is_ok());

    let later = moto.tether(&["plan", "--detailed-exitcode"]).expect_code(0);
    outputs.push(later.stdout + &later.stderr);
    for output in &outputs {
        assert!(!output.contains(&password), "the password leaked");
        assert!(!output.contains(&secret), "the secret key leaked");
    }

    // Destroying the user deletes its stored secrets too.
    moto.tether(&["destroy", "--auto-approve"]).expect_code(0);
    assert_eq!(
        support::parameter(&ssm, "/tether/dsi-lab/users/erich/access-key"),
        None
    );
    assert_eq!(
        support::parameter(&ssm, "/tether/dsi-lab/users/erich/console-password"),
        None
    );
}

#[test]
fn turning_access_off_deletes_the_key_and_the_login_profile() {
    let moto = Moto::start();
    moto.write("tether.yaml", LAB_SPEC);
    moto.tether(&["apply", "--auto-approve"]).expect_code(0);
    moto.write(
        "tether.yaml",
        &LAB_SPEC
            .replace("console_access: true", "console_access: false")
            .replace("programmatic_access: true", "programmatic_access: false"),
    );
    moto.tether(&["apply", "--auto-approve"])
        .expect_code(0)
        .expect_stderr("~ console_access = true -> false")
        .expect_stderr("~ programmatic_access = true -> false");
    let iam = moto.iam();
    assert!(key_ids(&iam, "erich").is_empty());
    assert!(block_on(async { iam.get_login_profile().user_name("erich").send().await }).is_err());
    moto.tether(&["plan", "--detailed-exitcode"]).expect_code(0);
}

#[test]
fn an_unwritable_secrets_dir_leaves_no_secret_behind() {
    let moto = Moto::start();
    let blocked = moto.write("not-a-dir", "a file where a directory should be");
    let spec = format!(
        "project: lab\nsecrets: local\nsecrets_dir: {}\niam:\n  users:\n    ana:\n      programmatic_access: true\n      console_access: true\nregion: us-east-1\n",
        blocked.display()
    );
    moto.write("tether.yaml", &spec);
    moto.tether(&["apply", "--auto-approve"])
        .expect_code(1)
        .expect_stderr("cannot write the secret file")
        .expect_stderr("hint: make `");
    let iam = moto.iam();
    assert!(
        key_ids(&iam, "ana").is_empty(),
        "the key nobody holds was deleted again"
    );
    assert!(
        block_on(async { iam.get_login_profile().user_name("ana").send().await }).is_err(),
        "no console password that nobody holds"
    );
}

#[test]
fn rotate_key_writes_a_new_key_then_deletes_the_old_one() {
    let moto = Moto::start();
    moto.write("tether.yaml", LAB_SPEC);
    moto.tether(&["apply", "--auto-approve"]).expect_code(0);
    moto.tether(&["secrets", "pull"]).expect_code(0);
    let (_, _, before, _) = secret_files(&moto, "erich");
    let run = moto
        .tether(&["rotate-key", "erich"])
        .expect_code(0)
        .expect_stderr("Rotated the access key of iam_user.erich");
    moto.tether(&["secrets", "pull", "erich"]).expect_code(0);
    let (_, _, after, mode) = secret_files(&moto, "erich");
    assert_eq!(mode, 0o600);
    assert_ne!(before, after);
    let iam = moto.iam();
    assert_eq!(key_ids(&iam, "erich"), [field(&after, "aws_access_key_id")]);
    let secret = field(&after, "aws_secret_access_key");
    assert!(!run.stderr.contains(secret) && !run.stdout.contains(secret));
    moto.tether(&["plan", "--detailed-exitcode"]).expect_code(0);

    moto.tether(&["rotate-key", "nobody"])
        .expect_code(1)
        .expect_stderr("the spec gives no user `nobody` programmatic access");
}

fn audit(moto: &Moto) -> (i32, serde_json::Value) {
    let run = moto.tether(&["audit", "--json"]);
    let report = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {run:?}"));
    (run.code, report)
}

/// The ids of the failing checks, with their details.
fn failing(report: &serde_json::Value) -> Vec<String> {
    report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["passed"] == false)
        .map(|c| format!("{}: {}", c["id"].as_str().unwrap_or_default(), c["details"]))
        .collect()
}

#[test]
fn audit_of_the_seed_lab_fails_only_what_moto_cannot_fix() {
    let moto = Moto::start();
    moto.write("tether.yaml", LAB_SPEC);
    moto.tether(&["apply", "--auto-approve"]).expect_code(0);
    // The console user registers an MFA device, as the audit asks.
    let iam = moto.iam();
    block_on(async {
        let device = iam
            .create_virtual_mfa_device()
            .virtual_mfa_device_name("erich")
            .send()
            .await
            .expect("mfa device");
        let serial = device
            .virtual_mfa_device()
            .expect("device")
            .serial_number()
            .to_string();
        iam.enable_mfa_device()
            .user_name("erich")
            .serial_number(serial)
            .authentication_code1("123456")
            .authentication_code2("654321")
            .send()
            .await
            .expect("enable mfa");
    });
    let (code, report) = audit(&moto);
    // moto cannot give the root user MFA (its account summary always says 0), so that one
    // check fails on any moto account; everything the seed lab controls passes.
    assert_eq!(
        failing(&report),
        [r#"root-mfa: ["the root user has no MFA device"]"#]
    );
    assert_eq!(code, 3);
    assert_eq!(report["format_version"], 1);
    assert_eq!(report["checks"].as_array().map(Vec::len), Some(9));
}

#[test]
fn audit_of_a_weak_account_names_each_weakness() {
    let moto = Moto::start();
    let iam = moto.iam();
    let s3 = moto.s3("us-east-1");
    block_on(async {
        iam.create_user()
            .user_name("intern")
            .send()
            .await
            .expect("user");
        iam.attach_user_policy()
            .user_name("intern")
            .policy_arn(ADMIN)
            .send()
            .await
            .expect("attach");
        iam.create_login_profile()
            .user_name("intern")
            .password("Weak-but-valid-1")
            .send()
            .await
            .expect("console");
        iam.update_account_password_policy()
            .minimum_password_length(8)
            .send()
            .await
            .expect("weak policy");
        s3.create_bucket()
            .bucket("drop-box")
            .send()
            .await
            .expect("bucket");
        let policy = r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::drop-box/*"}]}"#;
        s3.put_bucket_policy()
            .bucket("drop-box")
            .policy(policy)
            .send()
            .await
            .expect("policy");
    });
    moto.write("tether.yaml", "project: lab\nregion: us-east-1\n");
    let run = moto.tether(&["audit"]).expect_code(3);
    assert!(
        run.stderr
            .contains("FAIL  no bucket policy lets anyone write or delete"),
        "{}",
        run.stderr
    );
    let (code, report) = audit(&moto);
    assert_eq!(code, 3);
    let failures = failing(&report).join("\n");
    for expected in [
        "permissions-through-groups: [\"user `intern` has 1 policy directly attached: arn:aws:iam::aws:policy/AdministratorAccess\"]",
        "console-mfa: [\"user `intern` signs in to the console without MFA\"]",
        "bucket-public-write: [\"bucket `drop-box` lets anyone `s3:PutObject`\"]",
        "minimum length 8 is below 14",
    ] {
        assert!(failures.contains(expected), "missing {expected}\n{failures}");
    }
}

#[test]
fn a_generated_password_meets_an_account_policy_the_spec_does_not_declare() {
    let moto = Moto::start();
    let iam = moto.iam();
    block_on(async {
        iam.update_account_password_policy()
            .minimum_password_length(40)
            .send()
            .await
            .expect("strict policy")
    });
    moto.write(
        "tether.yaml",
        "project: dsi-lab\nsecrets: local\niam:\n  users:\n    ana:\n      console_access: true\nregion: us-east-1\n",
    );
    moto.tether(&["apply", "--auto-approve"]).expect_code(0);
    let password =
        std::fs::read_to_string(moto.dir.path().join(".tether/secrets/dsi-lab/ana.password"))
            .expect("password file");
    assert!(
        password.trim().len() >= 40,
        "the account's policy asks for 40 characters"
    );
}

// Regression for the crash window between CreateAccessKey and storing it: a user that a
// dead run left `pending` gets a key somebody holds. A credentials file merely missing on
// this machine changes nothing: the key is in the store, and others use it.
#[test]
fn a_key_left_pending_is_issued_anew_and_a_missing_local_file_is_not() {
    let moto = Moto::start();
    moto.write("tether.yaml", LAB_SPEC);
    moto.tether(&["apply", "--auto-approve"]).expect_code(0);
    moto.tether(&["secrets", "pull", "erich"]).expect_code(0);
    let file = moto
        .dir
        .path()
        .join(".tether/secrets/dsi-lab/erich.credentials");
    std::fs::remove_file(&file).expect("lose the credentials file");
    moto.tether(&["plan", "--detailed-exitcode"]).expect_code(0);

    let iam = moto.iam();
    block_on(async {
        iam.tag_user()
            .user_name("erich")
            .tags(
                aws_sdk_iam::types::Tag::builder()
                    .key("tether:access-key-id")
                    .value("pending")
                    .build()
                    .expect("tag"),
            )
            .send()
            .await
            .expect("tag as a dead run leaves it")
    });
    moto.tether(&["plan", "--detailed-exitcode"])
        .expect_code(2)
        .expect_stderr("~ iam_user.erich  (update in place: a run that issued its access key died before storing it, so nobody holds it)");
    moto.tether(&["apply", "--auto-approve"]).expect_code(0);
    let (_, document) =
        support::parameter(&moto.ssm(), "/tether/dsi-lab/users/erich/access-key").expect("key");
    let stored: serde_json::Value = serde_json::from_str(&document).expect("json");
    assert_eq!(
        key_ids(&iam, "erich"),
        [stored["AccessKeyId"].as_str().expect("id")],
        "only the stored key is left"
    );
    moto.tether(&["plan", "--detailed-exitcode"]).expect_code(0);
}
