//! What an adversary (or an accident) in the account, the network or a shared directory can
//! shape, replayed against moto and a loopback sshd: each test is one way tether was once
//! steered into trusting, overwriting or deleting what is not the project's, or into
//! output a terminal or a parser takes for something else. Each must end in a clear
//! refusal, or in tether leaving the foreign thing untouched.

mod support;

use serde_json::Value;
use support::{block_on, Moto};

fn tag_bucket(moto: &Moto, bucket: &str, tags: &[(&str, &str)]) {
    support::tag_bucket(&moto.s3("us-east-1"), bucket, tags);
}

const BUCKET_SPEC: &str = "project: lab\nregion: us-east-1\nbuckets:\n  lab-data: {}\n";

// Regression: a DEL in a tag value reached `plan --json` as `\x7f`, which is no JSON
// escape, and CI's parser failed; a tag key holding a newline printed a forged
// "No changes." line in the plan's text.
#[test]
fn account_text_keeps_json_parseable_and_cannot_forge_plan_lines() {
    let moto = Moto::start();
    moto.write("tether.yaml", BUCKET_SPEC);
    moto.tether(&["apply", "--auto-approve"]).expect_code(0);
    tag_bucket(
        &moto,
        "lab-data",
        &[
            ("tether:project", "lab"),
            ("tether:name", "lab-data"),
            ("note", "del\u{7f} c1\u{9b}31m"),
            ("x\nNo changes. The account matches the spec.", "y"),
        ],
    );

    let plan = moto.tether(&["plan", "--json"]).expect_code(0);
    assert!(
        !plan.stdout.contains("\\x7f"),
        "a terminal escape in JSON: {}",
        plan.stdout
    );
    let document: Value = serde_json::from_str(&plan.stdout).expect("plan --json is JSON");
    let text = document.to_string();
    assert!(
        text.contains("del\\u007f") || text.contains("del\u{7f}"),
        "the tag value reads back whole: {text}"
    );

    let plan = moto.tether(&["plan"]).expect_code(0);
    assert!(
        !plan
            .stderr
            .lines()
            .any(|line| line.trim_start().starts_with("No changes.")),
        "a tag key forged a line:\n{}",
        plan.stderr
    );
    assert!(
        plan.stderr.contains("tags.x\\nNo changes."),
        "the key is shown escaped:\n{}",
        plan.stderr
    );
}

// Regression: a command job's downloaded S3 input sat in a 0755 directory as a 0644 file,
// readable by every user of the machine.
#[test]
fn a_command_jobs_downloaded_input_and_scratch_are_private() {
    let moto = Moto::start();
    moto.write(
        "tether.yaml",
        &format!(
            "{BUCKET_SPEC}jobs:\n  modes:\n    inputs: s3://lab-data/in/\n    command: \"stat -c %a {{input}} > {{output}} && stat -c %a $(dirname {{input}}) >> {{output}}\"\n    output: ./out/\n"
        ),
    );
    moto.tether(&["apply", "--auto-approve", "--no-jobs"])
        .expect_code(0);
    support::put_object(&moto.s3("us-east-1"), "lab-data", "in/a.txt", "private\n");
    moto.tether(&["run"]).expect_code(0);
    let modes = std::fs::read_to_string(moto.dir.path().join("out/a.txt")).expect("output");
    assert_eq!(modes, "600\n700\n", "input file, then its directory");
}

// Regression: a user's own `Host box` entry above tether's block decided where `ssh box`
// went, and with what host key checking (ssh takes the first value of each setting),
// while the plan promised the alias reached the lab instance.
#[test]
fn an_alias_the_users_own_ssh_config_already_claims_is_refused() {
    let moto = Moto::start();
    let user_config = "Host *\n    ServerAliveInterval 30\nHost box\n    HostName 192.0.2.1\n    StrictHostKeyChecking no\n";
    moto.write("ssh-config", user_config);
    moto.write(
        "tether.yaml",
        "project: lab\nregion: us-east-1\ninstances:\n  worker: {ami: ami-1e749f67, type: t3.micro}\nssh:\n  config_file: ./ssh-config\n  hosts:\n    box: {instance: worker}\n",
    );
    moto.tether(&["plan"])
        .expect_code(1)
        .expect_stderr("line 3 is a `Host` entry of its own for `box`");
    moto.tether(&["apply", "--auto-approve"]).expect_code(1);
    assert_eq!(
        std::fs::read_to_string(moto.dir.path().join("ssh-config")).expect("config"),
        user_config,
        "the user's file is untouched"
    );
    assert!(
        block_on(async {
            moto.ec2()
                .describe_instances()
                .send()
                .await
                .expect("describe")
        })
        .reservations()
        .is_empty(),
        "nothing was launched"
    );
}

// Regression: run as root (as in CI containers), `secrets pull` wrote a secret into a file
// another user had created beforehand, and kept that user as its owner, who could then
// read the access key.
#[test]
fn a_secret_is_never_written_into_a_file_another_user_owns() {
    use std::os::unix::fs::MetadataExt;
    let moto = Moto::start();
    moto.write(
        "tether.yaml",
        "project: lab\nregion: us-east-1\niam:\n  users:\n    erich: {programmatic_access: true}\n",
    );
    moto.tether(&["apply", "--auto-approve"]).expect_code(0);

    let bob = moto.dir.path().join("homes/bob");
    let dir = bob.join(".tether/secrets/lab");
    std::fs::create_dir_all(&dir).expect("secrets dir");
    let planted = dir.join("erich.credentials");
    std::fs::write(&planted, "").expect("planted file");
    std::fs::set_permissions(
        &planted,
        std::os::unix::fs::PermissionsExt::from_mode(0o666),
    )
    .expect("chmod");
    // Another user (nobody) owns the file; only root can make it so.
    if std::os::unix::fs::chown(&planted, Some(65534), Some(65534)).is_err() {
        eprintln!("not root: the file cannot be given to another user, nothing to test");
        return;
    }
    let env = support::sealed_env(&bob, &moto.endpoint);
    let mut env = env;
    env.push(("AWS_REGION".into(), "us-east-1".into()));
    let pull = support::run_tether(moto.dir.path(), &env, &["secrets", "pull"]);
    assert_ne!(pull.code, 0, "{}", pull.stderr);
    assert!(
        pull.stderr.contains("belongs to another user"),
        "{}",
        pull.stderr
    );
    let after = std::fs::metadata(&planted).expect("still there");
    assert_eq!(after.uid(), 65534);
    assert_eq!(
        std::fs::read_to_string(&planted).expect("read"),
        "",
        "no secret went into it"
    );

    // A directory another user may write in is refused too: they could swap the file.
    std::fs::remove_file(&planted).expect("remove");
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777))
        .expect("chmod");
    let pull = support::run_tether(moto.dir.path(), &env, &["secrets", "pull"]);
    assert_ne!(pull.code, 0, "{}", pull.stderr);
    assert!(
        pull.stderr.contains("is writable by other users"),
        "{}",
        pull.stderr
    );
    assert!(!planted.exists());
}

// Regression: inputs `a.partial` and `a.txt` collided with the temporary name of `a.txt`'s
// output, and two file names that are not UTF-8 but read alike wrote one output; the run
// exited 0 and its summary listed both outputs.
#[test]
fn local_outputs_never_overwrite_each_other() {
    use std::os::unix::ffi::OsStrExt;
    let moto = Moto::start();
    let input_dir = moto.dir.path().join("in");
    std::fs::create_dir_all(&input_dir).expect("in/");
    for name in ["a.partial", "a.txt", "b.txt", "b.partial"] {
        std::fs::write(input_dir.join(name), format!("content of {name}\n")).expect("input");
    }
    let spec = "project: lab\njobs:\n  shout:\n    inputs: ./in/*\n    command: \"tr a-z A-Z < {input} > {output}\"\n    output: ./out/\n";
    moto.write("tether.yaml", spec);
    moto.tether(&["run"]).expect_code(0);
    for name in ["a.partial", "a.txt", "b.txt", "b.partial"] {
        assert_eq!(
            std::fs::read_to_string(moto.dir.path().join("out").join(name))
                .unwrap_or_else(|e| panic!("output of {name}: {e}")),
            format!("content of {name}\n").to_uppercase(),
        );
    }
    let names: Vec<String> = std::fs::read_dir(moto.dir.path().join("out"))
        .expect("out/")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name != ".tether-sources")
        .collect();
    assert_eq!(names.len(), 4, "nothing else left behind: {names:?}");

    // Two names that read alike once made text: refused before any task runs.
    std::fs::remove_dir_all(moto.dir.path().join("out")).expect("clean");
    for raw in [&b"k-\xff.txt"[..], &b"k-\xfe.txt"[..]] {
        std::fs::write(input_dir.join(std::ffi::OsStr::from_bytes(raw)), "x\n").expect("raw");
    }
    moto.tether(&["run"])
        .expect_code(1)
        .expect_stderr("would both write the output");
    assert!(!moto.dir.path().join("out").exists(), "no task ran");
}

/// Reads `child`'s stdout on a thread, into the returned text, as it comes.
fn follow_stdout(child: &mut std::process::Child) -> std::sync::Arc<std::sync::Mutex<String>> {
    use std::io::Read;
    let text = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let mut stdout = child.stdout.take().expect("stdout");
    let sink = text.clone();
    std::thread::spawn(move || {
        let mut buffer = [0u8; 4096];
        while let Ok(read) = stdout.read(&mut buffer) {
            if read == 0 {
                break;
            }
            sink.lock()
                .expect("stdout")
                .push_str(&String::from_utf8_lossy(&buffer[..read]));
        }
    });
    text
}

/// Waits until `text` holds `needle` (a minute at most).
#[track_caller]
fn wait_for_text(text: &std::sync::Mutex<String>, needle: &str) {
    let started = std::time::Instant::now();
    while started.elapsed() < std::time::Duration::from_secs(60) {
        if text.lock().expect("text").contains(needle) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("never saw {needle:?} in:\n{}", text.lock().expect("text"));
}

// Regression: in us-east-1, CreateBucket on a bucket this account already owns answers
// 200; a bucket another team made between the plan and the confirmation was taken for
// tether's creation, recorded as created, retagged, and `destroy` later emptied it.
#[test]
fn a_bucket_made_by_someone_else_after_the_plan_is_not_taken_over() {
    use std::io::Write;
    let moto = Moto::start();
    moto.write(
        "tether.yaml",
        "project: lab\nregion: us-east-1\nbuckets:\n  lab-data: {force_destroy: true}\n",
    );
    let mut apply = support::spawn_on_terminal(moto.dir.path(), &moto.env(), &["apply"]);
    let stdout = follow_stdout(&mut apply);
    wait_for_text(&stdout, "Enter a value:");
    // Another team makes the bucket and puts their data in it.
    let s3 = moto.s3("us-east-1");
    support::create_bucket(&s3, "lab-data");
    support::put_object(&s3, "lab-data", "theirs.csv", "their data\n");
    apply
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"yes\n")
        .expect("answer");
    let status = apply.wait().expect("apply ends");
    let output = stdout.lock().expect("stdout").clone();
    assert_eq!(status.code(), Some(1), "{output}");
    assert!(
        output.contains("refusing to take over bucket `lab-data`"),
        "{output}"
    );
    assert!(
        support::tags(&s3, "lab-data").is_empty(),
        "their bucket was not retagged"
    );
    assert_eq!(
        support::parameter(&moto.ssm(), "/tether/lab/buckets/lab-data"),
        None,
        "no record says the project made it"
    );
    moto.tether(&["destroy", "--auto-approve"]).expect_code(0);
    assert_eq!(
        support::get_object(&s3, "lab-data", "theirs.csv").as_deref(),
        Some(&b"their data\n"[..]),
        "their data is still there"
    );
}

// Regression: the records of the password policy and the alias said only `created`, not
// what tether wrote. After a security team set a strict policy (and renamed the alias) by
// hand, re-declaring a weak one showed `! WEAKENS` but went ahead, and `destroy` deleted
// their whole policy and their alias.
#[test]
fn a_setting_changed_by_hand_since_tether_wrote_it_is_not_the_projects() {
    let moto = Moto::start();
    let spec = "project: lab\nregion: us-east-1\naccount:\n  alias: lab-alias\n  password_policy:\n    minimum_length: 8\n";
    moto.write("tether.yaml", spec);
    moto.tether(&["apply", "--auto-approve"]).expect_code(0);
    moto.tether(&["plan", "--detailed-exitcode"]).expect_code(0);

    let iam = moto.iam();
    block_on(async {
        iam.update_account_password_policy()
            .minimum_password_length(20)
            .require_symbols(true)
            .send()
            .await
            .expect("the security team's policy");
        iam.delete_account_alias()
            .account_alias("lab-alias")
            .send()
            .await
            .expect("delete alias");
        iam.create_account_alias()
            .account_alias("security-alias")
            .send()
            .await
            .expect("the security team's alias");
    });
    moto.tether(&["apply", "--auto-approve"])
        .expect_code(1)
        .expect_stderr(
            "account.password_policy is already set in the account, and not by project `lab`",
        )
        .expect_stderr("account.alias is already set in the account, and not by project `lab`");
    moto.tether(&["destroy", "--auto-approve"]).expect_code(0);
    let (aliases, policy) = block_on(async {
        (
            iam.list_account_aliases().send().await.expect("aliases"),
            iam.get_account_password_policy()
                .send()
                .await
                .expect("the policy is still there"),
        )
    });
    assert_eq!(aliases.account_aliases(), ["security-alias"]);
    let policy = policy.password_policy().expect("policy");
    assert_eq!(policy.minimum_password_length(), Some(20));
    assert!(policy.require_symbols());
}

/// Launches an instance through the SDK with the project's name tags, as anyone allowed
/// to run instances may; returns its id.
fn plant_instance(moto: &Moto, project: &str, name: &str) -> String {
    let ec2 = moto.ec2();
    let tags = aws_sdk_ec2::types::TagSpecification::builder()
        .resource_type(aws_sdk_ec2::types::ResourceType::Instance)
        .tags(
            aws_sdk_ec2::types::Tag::builder()
                .key("tether:project")
                .value(project)
                .build(),
        )
        .tags(
            aws_sdk_ec2::types::Tag::builder()
                .key("tether:name")
                .value(name)
                .build(),
        )
        .build();
    block_on(async {
        ec2.run_instances()
            .image_id("ami-1e749f67")
            .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
            .min_count(1)
            .max_count(1)
            .tag_specifications(tags)
            .send()
            .await
            .expect("run instances")
    })
    .instances()[0]
        .instance_id()
        .expect("id")
        .to_string()
}

/// The state of instance `id`, read through the SDK.
fn instance_state(moto: &Moto, id: &str) -> String {
    block_on(async {
        moto.ec2()
            .describe_instances()
            .instance_ids(id)
            .send()
            .await
            .expect("describe")
    })
    .reservations()[0]
        .instances()[0]
        .state()
        .and_then(|s| s.name())
        .map(|n| n.as_str().to_string())
        .expect("state")
}

// Regression: tether managed the instance with the oldest LaunchTime among those tagged
// with the project and the name. An instance planted with those tags before the first
// apply was terminated as "replaced"; one planted later took over the name after a stop
// and start (which resets LaunchTime), so plan, show, ssh and jobs targeted it.
#[test]
fn an_instance_planted_with_the_projects_tags_is_never_taken_for_its_own() {
    let moto = Moto::start();
    let spec = "project: lab\nregion: us-east-1\ninstances:\n  worker: {ami: ami-1e749f67, type: t3.micro}\n";
    moto.write("tether.yaml", spec);

    // Planted before the first apply: refused, not replaced.
    let early = plant_instance(&moto, "lab", "worker");
    moto.tether(&["apply", "--auto-approve"])
        .expect_code(1)
        .expect_stderr("instance.worker exists but is not owned by project `lab`");
    assert_eq!(instance_state(&moto, &early), "running");
    let shown = moto.tether(&["show"]).expect_code(0).stdout;
    assert!(
        shown.contains("not launched by the project") && !shown.contains(&early),
        "show gives no ssh line to the planted instance: {shown}"
    );
    block_on(async {
        moto.ec2()
            .terminate_instances()
            .instance_ids(&early)
            .send()
            .await
            .expect("terminate")
    });

    moto.tether(&["apply", "--auto-approve"]).expect_code(0);
    let shown: Value =
        serde_json::from_str(&moto.tether(&["show", "--json"]).expect_code(0).stdout)
            .expect("show --json");
    let own = shown.to_string();
    // Planted after: named in a warning, left alone, never the one managed.
    let late = plant_instance(&moto, "lab", "worker");
    let plan = moto
        .tether(&["plan", "--detailed-exitcode"])
        .expect_code(0)
        .expect_stderr(&format!(
            "instance.worker: {late} carries this project's name tags, but the project has no record of launching it"
        ));
    assert!(plan.stderr.contains("No changes."), "{}", plan.stderr);
    // A stop and a start of the project's instance (LaunchTime resets) change nothing.
    moto.write(
        "tether.yaml",
        &spec.replace("t3.micro}", "t3.micro, state: stopped}"),
    );
    moto.tether(&["apply", "--auto-approve"]).expect_code(0);
    moto.write("tether.yaml", spec);
    moto.tether(&["apply", "--auto-approve"]).expect_code(0);
    let shown = moto.tether(&["show", "--json"]).expect_code(0).stdout;
    assert!(
        !shown.contains(&late),
        "show names the planted instance: {shown}"
    );
    assert!(own.contains("i-"), "{own}");

    moto.tether(&["destroy", "--auto-approve"]).expect_code(0);
    assert_eq!(
        instance_state(&moto, &late),
        "running",
        "the planted one is left"
    );
}

// An instance tagged with the project's name that the project has no record of (a tether
// before launch records made it, say) is the project's only once the spec adopts it.
#[test]
fn an_unrecorded_instance_is_managed_once_the_spec_adopts_it() {
    let moto = Moto::start();
    let spec = "project: lab\nregion: us-east-1\ninstances:\n  worker: {ami: ami-1e749f67, type: t3.micro, adopt: true}\n";
    moto.write("tether.yaml", spec);
    let old = plant_instance(&moto, "lab", "worker");
    moto.tether(&["apply", "--auto-approve"])
        .expect_code(0)
        .expect_stderr("instance.worker  (adopt)");
    assert_eq!(
        support::parameter(&moto.ssm(), "/tether/lab/instances/worker").map(|(_, v)| v),
        Some(format!("adopted {old}"))
    );
    moto.tether(&["plan", "--detailed-exitcode"]).expect_code(0);
    moto.tether(&["destroy", "--auto-approve"]).expect_code(0);
    assert_eq!(instance_state(&moto, &old), "terminated");
}

// Regression: any value at the lock's name that was not tether's blocked every apply, and
// `force-unlock` failed on it too, so a project was wedged until someone deleted the
// parameter by hand.
#[test]
fn a_damaged_lock_is_waited_for_and_broken_like_any_other() {
    let moto = Moto::start();
    moto.write("tether.yaml", BUCKET_SPEC);
    block_on(async {
        moto.ssm()
            .put_parameter()
            .name("/tether/lab/lock")
            .value("not a lock record")
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .send()
            .await
            .expect("damaged lock")
    });
    let refused = moto
        .tether(&["apply", "--auto-approve", "--lock-timeout", "1s"])
        .expect_code(1)
        .expect_stderr("holds a value that is no tether lock record");
    let id = refused
        .stderr
        .split("tether force-unlock ")
        .nth(1)
        .and_then(|rest| rest.split('`').next())
        .expect("the hint names the id")
        .to_string();
    assert!(id.starts_with("damaged-"), "{id}");
    moto.tether(&["force-unlock", &id])
        .expect_code(0)
        .expect_stderr("Broke the lock");
    assert_eq!(support::parameter(&moto.ssm(), "/tether/lab/lock"), None);
    moto.tether(&["apply", "--auto-approve"]).expect_code(0);
}

/// An S3 client of moto's signing with `key`/`secret` (an IAM user's, not the dummy ones).
fn s3_as(moto: &Moto, key: &str, secret: &str) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .endpoint_url(&moto.endpoint)
        .force_path_style(true)
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            key, secret, None, None, "test",
        ))
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

// Why it exists: a Batch child fetches tether's build with curl, signing the request (SigV4)
// as its job role. moto checks no signature unless IAM authentication is on, so the Batch
// test's fetch would pass whatever curl sent; here it is on (after the three setup calls),
// and only a correctly signed request with the role's key gets the build.
#[test]
fn a_batch_child_fetches_tethers_build_signed_as_its_job_role() {
    use sha2::Digest;
    let moto = Moto::start_with_env(&[("INITIAL_NO_AUTH_ACTION_COUNT", "3")]);
    let iam = moto.iam();
    let (key, secret) = block_on(async {
        iam.create_user()
            .user_name("job-role")
            .send()
            .await
            .expect("user");
        let created = iam
            .create_access_key()
            .user_name("job-role")
            .send()
            .await
            .expect("key");
        iam.attach_user_policy()
            .user_name("job-role")
            .policy_arn("arn:aws:iam::aws:policy/AdministratorAccess")
            .send()
            .await
            .expect("policy");
        let key = created.access_key().expect("key");
        (
            key.access_key_id().to_string(),
            key.secret_access_key().to_string(),
        )
    });
    // From here on, moto checks every request's signature.
    let s3 = s3_as(&moto, &key, &secret);
    let build = "#!/bin/sh\necho \"fetched and ran: $*\"\n";
    let sha256: String = sha2::Sha256::digest(build.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    block_on(async {
        s3.create_bucket()
            .bucket("lab-data")
            .send()
            .await
            .expect("bucket");
        s3.put_object()
            .bucket("lab-data")
            .key(".tether/lab/bin/tether-0123456789abcdef")
            .body(build.as_bytes().to_vec().into())
            .send()
            .await
            .expect("the build");
        // The build as tether stages it: gzipped, served with `Content-Encoding: gzip`.
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut gzip, build.as_bytes()).expect("gzip");
        s3.put_object()
            .bucket("lab-data")
            .key(".tether/lab/bin/tether-0123456789abcdef.gz")
            .content_encoding("gzip")
            .body(gzip.finish().expect("gzip").into())
            .send()
            .await
            .expect("the gzipped build")
    });
    let child = |secret: &str, object: &str| {
        let answer = serde_json::json!({
            "AccessKeyId": key,
            "SecretAccessKey": secret,
            "Token": "",
            "Expiration": "2099-01-01T00:00:00Z",
        });
        let credentials =
            support::http::serve(move |_| support::http::Response::json(200, &answer));
        std::process::Command::new("sh")
            .args(["-c", tether::jobs::batch::FETCH_AND_RUN])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env(
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                format!("http://127.0.0.1:{credentials}/v2/credentials/job"),
            )
            .env("AWS_ENDPOINT_URL", &moto.endpoint)
            .env("TETHER_BINARY_OBJECT", object)
            .env("TETHER_BINARY_REGION", "us-east-1")
            .env("TETHER_BINARY_SHA256", &sha256)
            .env(
                "TETHER_STAGE",
                "s3://lab-data/.tether/lab/count/0123456789abcdef/",
            )
            .output()
            .expect("the child's command")
    };
    for object in [
        "lab-data/.tether/lab/bin/tether-0123456789abcdef",
        "lab-data/.tether/lab/bin/tether-0123456789abcdef.gz",
    ] {
        let ran = child(&secret, object);
        assert!(
            ran.status.success(),
            "{object}: {}",
            String::from_utf8_lossy(&ran.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&ran.stdout),
            "fetched and ran: agent --batch s3://lab-data/.tether/lab/count/0123456789abcdef/\n"
        );
    }
    // Signed with a wrong secret, the same request is refused, and nothing runs.
    let refused = child(
        "not-the-secret",
        "lab-data/.tether/lab/bin/tether-0123456789abcdef.gz",
    );
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("403"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(refused.stdout.is_empty());
}
