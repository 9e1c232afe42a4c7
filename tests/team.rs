//! One spec, many operators: alice, bob and a CI runner (each with a HOME of their own)
//! apply one git-tracked spec to one account (moto). What one operator holds on disk never
//! decides a change; secrets go to the account's Parameter Store; one run at a time holds
//! the project lock; account settings someone else set are adopted, never taken over; a
//! saved plan is applied only to its own account.

mod support;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use support::{block_on, run_tether, sealed_env, Moto, Run};

const SPEC: &str = "\
project: team-lab
region: us-east-1
account:
  alias: team-lab-alias
  password_policy:
    minimum_length: 14
buckets:
  team-lab-data: {}
iam:
  users:
    erich:
      programmatic_access: true
key_pairs:
  lab-key:
    private_key_file: ~/.ssh/lab-key.pem
";

/// An operator: a HOME of their own, the team's checkout (the test's directory) as the
/// working directory.
struct Operator<'a> {
    moto: &'a Moto,
    home: PathBuf,
    /// The operator's checkout of the team's repository: the working directory.
    checkout: PathBuf,
}

impl<'a> Operator<'a> {
    fn new(moto: &'a Moto, name: &str) -> Operator<'a> {
        let home = moto.dir.path().join("homes").join(name);
        std::fs::create_dir_all(&home).expect("home");
        Operator {
            moto,
            home,
            checkout: moto.dir.path().to_path_buf(),
        }
    }

    /// An operator with a checkout of their own: a copy of `files` of the shared one.
    fn with_own_checkout(moto: &'a Moto, name: &str, files: &[&str]) -> Operator<'a> {
        let mut operator = Operator::new(moto, name);
        operator.checkout = moto.dir.path().join("checkouts").join(name);
        std::fs::create_dir_all(&operator.checkout).expect("checkout");
        for file in files {
            std::fs::copy(moto.dir.path().join(file), operator.checkout.join(file))
                .expect("copy the checkout");
        }
        operator
    }

    fn env(&self) -> Vec<(String, String)> {
        let mut env = sealed_env(&self.home, &self.moto.endpoint);
        env.push(("AWS_REGION".into(), "us-east-1".into()));
        env
    }

    fn tether(&self, args: &[&str]) -> Run {
        run_tether(&self.checkout, &self.env(), args)
    }

    /// `tether ARGS` on a pseudo-terminal, its input left open for the test to answer.
    fn tether_waiting_at_prompt(&self, args: &[&str]) -> std::process::Child {
        support::spawn_on_terminal(&self.checkout, &self.env(), args)
    }

    fn file(&self, relative: &str) -> PathBuf {
        self.home.join(relative)
    }
}

const LOCK: &str = "/tether/team-lab/lock";

/// The project's lock record, read through the SDK, once it exists (waits up to a minute).
fn wait_for_lock(moto: &Moto) -> serde_json::Value {
    let ssm = moto.ssm();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Some((_, value)) = support::parameter(&ssm, LOCK) {
            return serde_json::from_str(&value).expect("a lock record");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("no run took the lock");
}

fn key_pair(moto: &Moto) -> (String, String) {
    block_on(async {
        let out = moto
            .ec2()
            .describe_key_pairs()
            .send()
            .await
            .expect("key pairs");
        let key = &out.key_pairs()[0];
        assert_eq!(out.key_pairs().len(), 1, "one key pair");
        (
            key.key_pair_id().expect("id").to_string(),
            key.key_fingerprint().expect("fingerprint").to_string(),
        )
    })
}

/// The SHA-1 of a private key's public half (DER), as moto fingerprints keys it generates.
fn fingerprint_of(private_key: &Path) -> String {
    let output = Command::new("sh")
        .arg("-c")
        .arg("openssl pkey -in \"$1\" -pubout -outform DER | openssl dgst -sha1 -hex")
        .arg("sh")
        .arg(private_key)
        .output()
        .expect("openssl");
    assert!(output.status.success(), "openssl reads the private key");
    let text = String::from_utf8(output.stdout).expect("utf-8");
    text.trim().rsplit(' ').next().expect("digest").to_string()
}

// Regression: a CI runner (another HOME) planned to revoke the team's access key and to
// replace its key pair, because it lacked alice's local files.
#[test]
fn alice_applies_ci_plans_no_changes_and_bob_pulls_working_secrets() {
    let moto = Moto::start();
    moto.write("tether.yaml", SPEC);
    let (alice, bob, ci) = (
        Operator::new(&moto, "alice"),
        Operator::new(&moto, "bob"),
        Operator::new(&moto, "ci"),
    );
    let mut outputs = Vec::new();
    let applied = alice
        .tether(&["apply", "--auto-approve"])
        .expect_code(0)
        .expect_stderr("note: no local copy of the private key of lab-key");
    outputs.push(applied.stdout + &applied.stderr);

    let plan = ci
        .tether(&["plan", "--detailed-exitcode"])
        .expect_code(0)
        .expect_stderr("No changes.");
    outputs.push(plan.stdout + &plan.stderr);
    let json = ci.tether(&["plan", "--json"]).expect_code(0);
    let alice_json = alice.tether(&["plan", "--json"]).expect_code(0);
    assert_eq!(
        json.stdout, alice_json.stdout,
        "both operators see one plan"
    );
    outputs.push(json.stdout);
    let again = ci
        .tether(&["apply", "--auto-approve"])
        .expect_code(0)
        .expect_stderr("Nothing to apply.");
    outputs.push(again.stdout + &again.stderr);

    let pulled = bob
        .tether(&["secrets", "pull"])
        .expect_code(0)
        .expect_stderr("key_pair.lab-key: private key wrote")
        .expect_stderr("iam_user.erich: access key wrote");
    outputs.push(pulled.stdout + &pulled.stderr);
    let pem = bob.file(".ssh/lab-key.pem");
    let mode = std::fs::metadata(&pem).expect("pem").permissions().mode() & 0o777;
    assert_eq!(mode, 0o400);
    let (id, fingerprint) = key_pair(&moto);
    assert_eq!(fingerprint.replace(':', ""), fingerprint_of(&pem));
    let (kind, stored) =
        support::parameter(&moto.ssm(), &format!("/ec2/keypair/{id}")).expect("stored key");
    assert_eq!(kind, "SecureString");
    let private_key = std::fs::read_to_string(&pem).expect("pem");
    assert_eq!(stored, private_key);

    let credentials =
        std::fs::read_to_string(bob.file(".tether/secrets/team-lab/erich.credentials"))
            .expect("credentials");
    let field = |name: &str| {
        credentials
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} = ")))
            .expect("field")
            .to_string()
    };
    assert_eq!(
        support::access_key_ids(&moto.iam(), "erich"),
        [field("aws_access_key_id")]
    );
    // Pulling again changes nothing.
    bob.tether(&["secrets", "pull", "lab-key"])
        .expect_code(0)
        .expect_stderr("private key up to date");
    let secret = field("aws_secret_access_key");
    let key_body = private_key
        .lines()
        .nth(1)
        .expect("a line of the key")
        .to_string();
    for output in &outputs {
        assert!(!output.contains(&secret), "the secret key leaked");
        assert!(!output.contains(&key_body), "the private key leaked");
    }
}

// Regression: two applies at once both issued an access key for the same user.
#[test]
fn a_second_apply_waits_for_the_first_and_one_of_everything_is_made() {
    let moto = Moto::start();
    moto.write("tether.yaml", SPEC);
    let (alice, ci) = (Operator::new(&moto, "alice"), Operator::new(&moto, "ci"));
    // alice's run stops at its prompt, holding the lock.
    let mut first = alice.tether_waiting_at_prompt(&["apply"]);
    let held = wait_for_lock(&moto);
    assert_eq!(held["command"], "apply");
    let second = std::thread::scope(|scope| {
        let second =
            scope.spawn(|| ci.tether(&["apply", "--auto-approve", "--lock-timeout", "2m"]));
        // Long enough for the second run to find the lock taken.
        std::thread::sleep(Duration::from_secs(4));
        first
            .stdin
            .take()
            .expect("stdin")
            .write_all(b"yes\n")
            .expect("answer");
        second.join().expect("second run")
    });
    let first = Run::from(first.wait_with_output().expect("first run"));
    assert_eq!(first.code, 0, "{first:?}");
    let second = second
        .expect_code(0)
        .expect_stderr("waiting for the project lock")
        .expect_stderr(&format!(
            "lock {} held by",
            held["id"].as_str().expect("id")
        ))
        .expect_stderr("Nothing to apply.");
    assert!(second.stderr.contains("for `tether apply`"), "{second:?}");
    assert_eq!(support::access_key_ids(&moto.iam(), "erich").len(), 1);
    key_pair(&moto);
    assert_eq!(
        support::parameter(&moto.ssm(), LOCK),
        None,
        "the lock is released"
    );
}

/// Writes a lock record as a run on `host` would, its heartbeat `age` seconds old.
fn plant_lock(moto: &Moto, id: &str, host: &str, age: u64) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let record = serde_json::json!({
        "id": id, "who": "carol", "host": host, "pid": 4242, "command": "apply",
        "since": now - age, "heartbeat": now - age,
    });
    support::block_on(async {
        moto.ssm()
            .put_parameter()
            .name(LOCK)
            .value(record.to_string())
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .overwrite(true)
            .send()
            .await
            .expect("plant the lock");
    });
}

#[test]
fn a_lock_no_live_run_holds_is_taken_over_and_a_live_one_is_waited_for() {
    let moto = Moto::start();
    moto.write("tether.yaml", SPEC);
    let (alice, bob) = (Operator::new(&moto, "alice"), Operator::new(&moto, "bob"));
    let mut first = alice.tether_waiting_at_prompt(&["apply"]);
    let held = wait_for_lock(&moto);
    let id = held["id"].as_str().expect("id").to_string();
    let pid = held["pid"].as_u64().expect("pid").to_string();
    assert!(held["heartbeat"].as_u64().is_some(), "{held}");

    // A live holder is waited for, however long.
    bob.tether(&["apply", "--auto-approve", "--lock-timeout", "0"])
        .expect_code(1)
        .expect_stderr(&format!("project `team-lab` is locked: lock {id} held by"));

    // Killed (as CI's runner kills a job): the next run takes over, with no human step.
    let status = Command::new("kill")
        .args(["-9", &pid])
        .status()
        .expect("kill");
    assert!(status.success());
    let _ = first.kill();
    let _ = first.wait();
    bob.tether(&["apply", "--auto-approve", "--lock-timeout", "0"])
        .expect_code(0)
        .expect_stderr(&format!(
            "note: took over the project lock from a run that is gone: lock {id} held by"
        ))
        .expect_stderr(&format!("its process {pid} on this host"));
    assert_eq!(support::parameter(&moto.ssm(), LOCK), None, "released");

    // A run elsewhere that fell silent two minutes ago is gone too.
    plant_lock(&moto, "00000000000000aa", "ci-runner-7", 150);
    bob.tether(&["apply", "--auto-approve", "--lock-timeout", "0"])
        .expect_code(0)
        .expect_stderr("took over the project lock from a run that is gone: lock 00000000000000aa")
        .expect_stderr("it has not said it is alive for 15");
    assert_eq!(support::parameter(&moto.ssm(), LOCK), None, "released");
}

#[test]
fn a_holder_beats_while_it_waits_and_stops_when_its_lock_is_taken_over() {
    let moto = Moto::start();
    moto.write("tether.yaml", SPEC);
    let alice = Operator::new(&moto, "alice");
    let mut env = alice.env();
    env.push(("TETHER_TEST_LOCK_HEARTBEAT".into(), "1".into()));
    let mut first = support::spawn_on_terminal(&alice.checkout, &env, &["apply"]);
    // Held open: the run waits at its prompt (an EOF would cancel it).
    let _answer = first.stdin.take();
    let held = wait_for_lock(&moto);
    let beat = held["heartbeat"].as_u64().expect("heartbeat");
    // While it waits at its prompt, its heartbeat moves on.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = wait_for_lock(&moto);
        if now["heartbeat"].as_u64().expect("heartbeat") > beat {
            assert_eq!(now["id"], held["id"], "the same lock");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the heartbeat never moved: {now}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Another run takes the lock over (as it would after this one fell silent): this one
    // stops, and leaves the other's lock alone.
    plant_lock(&moto, "00000000000000cc", "ci-runner-9", 0);
    let output = first.wait_with_output().expect("the first run ends");
    let first = Run::from(output);
    assert_eq!(first.code, 1, "{first:?}");
    assert!(
        first.stdout.contains("is no longer this run's")
            || first.stderr.contains("is no longer this run's"),
        "{first:?}"
    );
    let left = wait_for_lock(&moto);
    assert_eq!(left["id"], "00000000000000cc");
    assert!(
        support::buckets(&moto.s3("us-east-1")).is_empty(),
        "the stopped run changed nothing"
    );
}

#[test]
fn a_lock_of_a_live_run_elsewhere_is_broken_only_by_force_unlock() {
    let moto = Moto::start();
    moto.write("tether.yaml", SPEC);
    let bob = Operator::new(&moto, "bob");
    let id = "00000000000000bb";
    plant_lock(&moto, id, "ci-runner-8", 5);
    bob.tether(&["apply", "--auto-approve", "--lock-timeout", "0"])
        .expect_code(1)
        .expect_stderr(&format!(
            "project `team-lab` is locked: lock {id} held by carol on ci-runner-8"
        ))
        .expect_stderr(&format!("tether force-unlock {id}"));
    assert!(
        support::buckets(&moto.s3("us-east-1")).is_empty(),
        "nothing was changed"
    );
    bob.tether(&["force-unlock", "0000000000000000"])
        .expect_code(1)
        .expect_stderr("lock 0000000000000000 is not project `team-lab`'s lock");
    moto.write("other.yaml", "project: other-lab\nregion: us-east-1\n");
    bob.tether(&["force-unlock", id, "-f", "other.yaml"])
        .expect_code(1)
        .expect_stderr("project `other-lab` holds no lock");
    bob.tether(&["force-unlock", id])
        .expect_code(0)
        .expect_stderr(&format!("Broke the lock {id}"));
    bob.tether(&["apply", "--auto-approve", "--lock-timeout", "0"])
        .expect_code(0);
    assert_eq!(support::parameter(&moto.ssm(), LOCK), None);
}

// Regression: a declared password policy silently weakened the one a security team had
// set, and destroy deleted it.
#[test]
fn settings_someone_else_set_are_refused_until_adopted_and_survive_destroy() {
    let moto = Moto::start();
    let iam = moto.iam();
    block_on(async {
        iam.update_account_password_policy()
            .minimum_password_length(20)
            .require_symbols(true)
            .send()
            .await
            .expect("the security team's policy");
        iam.create_account_alias()
            .account_alias("team-lab-alias")
            .send()
            .await
            .expect("the security team's alias");
    });
    moto.write("tether.yaml", SPEC);
    let alice = Operator::new(&moto, "alice");
    alice
        .tether(&["apply", "--auto-approve"])
        .expect_code(1)
        .expect_stderr("account.alias is already set in the account, and not by project `team-lab`")
        .expect_stderr("--> tether.yaml:4:3")
        .expect_stderr("--> tether.yaml:5:3");
    assert!(support::buckets(&moto.s3("us-east-1")).is_empty());

    let adopting = SPEC
        .replace(
            "alias: team-lab-alias",
            "alias: {name: team-lab-alias, adopt: true}",
        )
        .replace("minimum_length: 14", "minimum_length: 14\n    adopt: true");
    moto.write("tether.yaml", &adopting);
    let plan = alice.tether(&["plan", "--json"]).expect_code(0);
    let json: serde_json::Value = serde_json::from_str(&plan.stdout).expect("json");
    let policy = json["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .find(|c| c["address"] == "account.password_policy")
        .expect("policy change");
    assert_eq!(policy["action"], "adopt");
    assert_eq!(
        policy["weakens"],
        serde_json::json!(["minimum_length 20 -> 14", "require_symbols true -> false"])
    );
    alice
        .tether(&["apply", "--auto-approve"])
        .expect_code(0)
        .expect_stderr("! WEAKENS minimum_length 20 -> 14");
    alice
        .tether(&["destroy", "--auto-approve"])
        .expect_code(0)
        .expect_stderr("Left as they are:")
        .expect_stderr(
            "account.alias  (adopted, not created by project `team-lab`: left as it is)",
        );
    let (aliases, policy) = block_on(async {
        (
            iam.list_account_aliases().send().await.expect("aliases"),
            iam.get_account_password_policy().send().await,
        )
    });
    assert_eq!(aliases.account_aliases(), ["team-lab-alias"]);
    assert!(policy.is_ok(), "the adopted policy is left as it is");
}

#[test]
fn a_saved_plan_is_refused_in_another_account_with_nothing_changed() {
    let moto = Moto::start();
    moto.write("tether.yaml", SPEC);
    let alice = Operator::new(&moto, "alice");
    alice
        .tether(&["plan", "--out", "team.tplan"])
        .expect_code(0);
    let plan = moto.dir.path().join("team.tplan");
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&plan).expect("plan")).expect("json");
    assert_eq!(saved["account_id"], "123456789012");

    let other = Moto::start_with_env(&[("MOTO_ACCOUNT_ID", "111122223333")]);
    let env = {
        let mut env = sealed_env(&alice.home, &other.endpoint);
        env.push(("AWS_REGION".into(), "us-east-1".into()));
        env
    };
    run_tether(moto.dir.path(), &env, &["apply", plan.to_str().expect("path")])
        .expect_code(1)
        .expect_stderr("the plan was made for account 123456789012, but the credentials in use belong to account 111122223333; nothing was applied");
    assert!(support::buckets(&other.s3("us-east-1")).is_empty());
    assert_eq!(
        support::parameter(&other.ssm(), LOCK),
        None,
        "the refused run left no lock behind"
    );
}

// Regression: after `destroy`, the daily loop's next apply failed on the private key file
// tether itself had written for the destroyed key pair.
#[test]
fn destroy_then_apply_needs_no_hand_cleanup() {
    let moto = Moto::start();
    moto.write("tether.yaml", SPEC);
    let bob = Operator::new(&moto, "bob");
    bob.tether(&["apply", "--auto-approve"]).expect_code(0);
    bob.tether(&["secrets", "pull"]).expect_code(0);
    let pem = bob.file(".ssh/lab-key.pem");
    let first = std::fs::read_to_string(&pem).expect("first key");
    bob.tether(&["destroy", "--auto-approve"]).expect_code(0);
    bob.tether(&["apply", "--auto-approve"]).expect_code(0);
    bob.tether(&["secrets", "pull"]).expect_code(0);
    let second = std::fs::read_to_string(&pem).expect("second key");
    assert_ne!(first, second);
    assert_eq!(key_pair(&moto).1.replace(':', ""), fingerprint_of(&pem));
    // A file there that tether did not write is never overwritten.
    std::fs::remove_file(&pem).expect("remove");
    std::fs::write(&pem, "bob's own key").expect("write");
    bob.tether(&["secrets", "pull", "lab-key"])
        .expect_code(1)
        .expect_stderr("refusing to overwrite");
    assert_eq!(
        std::fs::read_to_string(&pem).expect("kept"),
        "bob's own key"
    );
}

#[test]
fn bad_input_gets_a_clear_error_and_changes_nothing() {
    let moto = Moto::start();
    moto.write("tether.yaml", "project: team-lab\nsecrets: vault\n");
    let alice = Operator::new(&moto, "alice");
    alice
        .tether(&["validate"])
        .expect_code(1)
        .expect_stderr("tether.yaml:2:")
        .expect_stderr("unknown variant `vault`, expected `parameter-store` or `local`");
    moto.write("tether.yaml", SPEC);
    alice
        .tether(&["force-unlock", "0123456789abcdef"])
        .expect_code(1)
        .expect_stderr(
            "project `team-lab` holds no lock, so there is no lock 0123456789abcdef to break",
        );
    moto.write(
        "tether.yaml",
        "project: team-lab\niam:\n  users:\n    ana+ops:\n      console_access: true\nregion: us-east-1\n",
    );
    alice
        .tether(&["validate"])
        .expect_code(1)
        .expect_stderr("user `ana+ops` has a secret, and Parameter Store names cannot hold `+=,@`")
        .expect_stderr("tether.yaml:4:5");
}

/// The commands of `examples/ci/github-actions.yml`, in its order; the test below checks
/// that the workflow still runs exactly these.
const WORKFLOW_PULL_REQUEST: [&str; 2] = [
    "tether plan --detailed-exitcode --json > plan.json",
    "tether plan --out plan.tplan",
];
const WORKFLOW_MAIN: [&str; 2] = [
    "tether plan --out plan.tplan",
    "tether apply plan.tplan --lock-timeout 10m",
];

#[test]
fn the_ci_workflow_sequence_plans_on_pull_requests_and_applies_the_saved_plan_on_main() {
    let workflow = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/ci/github-actions.yml"),
    )
    .expect("the example workflow");
    for command in WORKFLOW_PULL_REQUEST.iter().chain(&WORKFLOW_MAIN) {
        assert!(workflow.contains(command), "the workflow runs `{command}`");
    }
    let moto = Moto::start();
    moto.write("tether.yaml", SPEC);
    let ci = Operator::new(&moto, "ci");
    let words = |command: &str| -> Vec<String> {
        command
            .trim_start_matches("tether ")
            .split(" > ")
            .next()
            .expect("command")
            .split(' ')
            .map(str::to_string)
            .collect()
    };
    let run = |command: &str| {
        let args = words(command);
        ci.tether(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    // A pull request: changes are exit 2 with the JSON plan alone on stdout.
    let planned = run(WORKFLOW_PULL_REQUEST[0]).expect_code(2);
    let json: serde_json::Value = serde_json::from_str(&planned.stdout).expect("the JSON plan");
    assert_eq!(json["summary"]["create"], 5);
    run(WORKFLOW_PULL_REQUEST[1]).expect_code(0);
    // The main branch: the saved plan, applied exactly.
    run(WORKFLOW_MAIN[0]).expect_code(0);
    run(WORKFLOW_MAIN[1])
        .expect_code(0)
        .expect_stderr("Apply complete: 5 resource(s) changed.");
    // The next pull request sees no changes.
    run(WORKFLOW_PULL_REQUEST[0]).expect_code(0);
    assert_eq!(support::parameter(&moto.ssm(), LOCK), None);
}

// Regression: Ctrl-C at apply's prompt (while the run holds the lock) must not leave the
// project locked; nor may SIGTERM (CI cancelling a job, `timeout`, `docker stop`) or SIGHUP
// (a dropped ssh session), which once left the lock behind.
#[test]
fn ctrl_c_sigterm_or_sighup_at_the_prompt_releases_the_lock() {
    let moto = Moto::start();
    moto.write("tether.yaml", SPEC);
    let alice = Operator::new(&moto, "alice");
    for (signal, code, name) in [
        ("-INT", 130, "Ctrl-C"),
        ("-TERM", 143, "SIGTERM"),
        ("-HUP", 129, "SIGHUP"),
    ] {
        let first = alice.tether_waiting_at_prompt(&["apply"]);
        let held = wait_for_lock(&moto);
        let pid = held["pid"].as_u64().expect("pid").to_string();
        let status = Command::new("kill")
            .args([signal, &pid])
            .status()
            .expect("kill");
        assert!(status.success());
        let run = Run::from(first.wait_with_output().expect("the run ends"));
        assert_eq!(run.code, code, "{signal}: {run:?}");
        assert!(
            run.stdout.contains(&format!("interrupted ({name})")),
            "{run:?}"
        );
        assert_eq!(
            support::parameter(&moto.ssm(), LOCK),
            None,
            "{signal}: the lock is released"
        );
    }
    assert!(
        support::buckets(&moto.s3("us-east-1")).is_empty(),
        "nothing was applied"
    );
}

// Regression: a spec with SSH aliases gave a CI runner (no alias block in its HOME) a plan
// with changes forever, and a JSON plan that differed from alice's.
#[test]
fn ssh_aliases_are_each_operators_own_and_stay_out_of_the_shared_plan() {
    let moto = Moto::start();
    let spec = format!(
        "{SPEC}instances:\n  worker:\n    ami: ami-1e749f67\n    type: t3.micro\n    key_pair: lab-key\n    user_data: boot.sh\nssh:\n  hosts:\n    lab-worker:\n      instance: worker\n      user: ubuntu\n"
    );
    moto.write("tether.yaml", &spec);
    moto.write("boot.sh", "#!/bin/sh\necho hello > /tmp/boot\n");
    // The CI runner checks the repository out somewhere else than alice does.
    let alice = Operator::new(&moto, "alice");
    let ci = Operator::with_own_checkout(&moto, "ci", &["tether.yaml", "boot.sh"]);
    alice.tether(&["apply", "--auto-approve"]).expect_code(0);
    let alias_block = std::fs::read_to_string(alice.file(".ssh/config")).expect("alice's config");
    assert!(alias_block.contains("Host lab-worker"));

    ci.tether(&["plan", "--detailed-exitcode"])
        .expect_code(0)
        .expect_stderr("+ ssh_config.aliases  (create)")
        .expect_stderr("No changes to the account. This machine's SSH aliases change too");
    let ci_json = ci.tether(&["plan", "--json"]).expect_code(0);
    let alice_json = alice.tether(&["plan", "--json"]).expect_code(0);
    assert_eq!(ci_json.stdout, alice_json.stdout, "one shared plan");
    assert!(!ci_json.stdout.contains("ssh_config"), "{}", ci_json.stdout);
    ci.tether(&["plan", "--out", "ci.tplan"])
        .expect_code(0)
        .expect_stderr("The saved plan holds the account's changes only");
    assert!(
        !std::fs::read_to_string(ci.checkout.join("ci.tplan"))
            .expect("saved plan")
            .contains(moto.dir.path().to_str().expect("path")),
        "no path of this machine's in the saved plan"
    );
    ci.tether(&["apply", "ci.tplan"])
        .expect_code(0)
        .expect_stderr("Nothing to apply.");
    assert!(
        !ci.file(".ssh/config").exists(),
        "a saved plan writes nothing on the machine that applies it"
    );
}
