//! End-to-end tests of SSH aliases: the block tether keeps in an OpenSSH config file,
//! checked byte for byte, following the instances' live addresses in moto; and
//! `tether ssh`, whose `ssh` is replaced by a recorder on PATH (no sshd needed to see the
//! arguments it gets).

mod support;

use std::os::unix::fs::PermissionsExt;

use support::{run_tether, Moto};

const LAB: &str = "\
project: lab
region: us-east-1
key_pairs:
  lab-key:
    private_key_file: ~/.ssh/lab-key.pem
instances:
  worker:
    ami: ami-1e749f67
    type: t3.micro
    key_pair: lab-key
ssh:
  config_file: ~/ssh-config
  hosts:
    MyNewInstance:
      instance: worker
      user: ubuntu
";

const USER_CONFIG: &str =
    "# my own settings\nHost github.com\n    User git\n\nHost *\n    ServerAliveInterval 60";

fn config(moto: &Moto) -> String {
    std::fs::read_to_string(moto.dir.path().join("ssh-config")).expect("config file")
}

fn block_of(text: &str) -> &str {
    let start = text.find("# BEGIN tether lab\n").expect("block start");
    &text[start..]
}

fn public_ip(moto: &Moto) -> String {
    live_instance(moto).0
}

/// The public address and id of the instance that is not terminated.
fn live_instance(moto: &Moto) -> (String, String) {
    support::block_on(async {
        let out = moto
            .ec2()
            .describe_instances()
            .send()
            .await
            .expect("instances");
        out.reservations()
            .iter()
            .flat_map(|r| r.instances())
            .find(|i| i.state().and_then(|s| s.name()).map(|n| n.as_str()) != Some("terminated"))
            .map(|i| {
                (
                    i.public_ip_address().unwrap_or_default().to_string(),
                    i.instance_id().unwrap_or_default().to_string(),
                )
            })
            .unwrap_or_default()
    })
}

#[test]
fn the_alias_block_follows_the_address_and_never_touches_the_users_lines() {
    let moto = Moto::start();
    let path = moto.write("ssh-config", USER_CONFIG);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    moto.write("tether.yaml", LAB);
    moto.tether(&["plan"])
        .expect_code(0)
        .expect_stderr("+ ssh_config.aliases  (create)")
        .expect_stderr("HostName (known after apply)");
    moto.tether(&["apply", "--auto-approve"]).expect_code(0);

    let (ip, id) = live_instance(&moto);
    let text = config(&moto);
    let key = moto.dir.path().join(".ssh/lab-key.pem");
    let known_hosts = moto.dir.path().join(".tether/known_hosts/lab");
    assert_eq!(
        text,
        format!(
            "{USER_CONFIG}\n# BEGIN tether lab\n# Managed by tether from the spec of project `lab`; edits here are overwritten.\nHost MyNewInstance\n    HostName {ip}\n    User ubuntu\n    Port 22\n    IdentityFile \"{}\"\n    IdentitiesOnly yes\n    HostKeyAlias {id}\n    UserKnownHostsFile /dev/null \"{}\"\n    StrictHostKeyChecking yes\n# END tether lab\n",
            key.display(),
            known_hosts.display()
        )
    );
    let mode = std::fs::metadata(&path)
        .expect("config")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o644, "the file's mode is kept");
    moto.tether(&["plan", "--detailed-exitcode"]).expect_code(0);

    // Stopped without an Elastic IP, the instance has no address: the plan says the block
    // changes, and apply comments the host out.
    moto.write(
        "tether.yaml",
        &LAB.replace(
            "    key_pair: lab-key\n",
            "    key_pair: lab-key\n    state: stopped\n",
        ),
    );
    moto.tether(&["plan"])
        .expect_code(0)
        .expect_stderr("~ ssh_config.aliases  (update in place)")
        .expect_stderr("-Host MyNewInstance");
    moto.tether(&["apply", "--auto-approve"]).expect_code(0);
    assert!(block_of(&config(&moto)).contains("# MyNewInstance: instance `worker` is stopped"));
    assert!(config(&moto).starts_with(USER_CONFIG));

    // Started again, it has a new address, and the alias follows it.
    moto.write("tether.yaml", LAB);
    moto.tether(&["apply", "--auto-approve"]).expect_code(0);
    let new_ip = public_ip(&moto);
    assert!(block_of(&config(&moto)).contains(&format!("HostName {new_ip}\n")));
    moto.tether(&["plan", "--detailed-exitcode"]).expect_code(0);

    // Destroying takes the block out, and the user's bytes are as they were.
    moto.tether(&["destroy", "--auto-approve"]).expect_code(0);
    assert_eq!(config(&moto), format!("{USER_CONFIG}\n"));
}

#[test]
fn a_new_config_file_is_private_and_edits_inside_the_block_are_drift() {
    let moto = Moto::start();
    moto.write("tether.yaml", LAB);
    moto.tether(&["apply", "--auto-approve"]).expect_code(0);
    let path = moto.dir.path().join("ssh-config");
    let mode = std::fs::metadata(&path)
        .expect("config")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let edited = config(&moto).replace("    Port 22\n", "    Port 2222\n");
    std::fs::write(&path, edited).expect("edit by hand");
    // The block is this operator's file: its drift is shown and mended, but it is no
    // change to the account.
    moto.tether(&["plan", "--detailed-exitcode"])
        .expect_code(0)
        .expect_stderr("-    Port 2222")
        .expect_stderr("+    Port 22")
        .expect_stderr("No changes to the account. This machine's SSH aliases change too");
    moto.tether(&["apply", "--auto-approve"]).expect_code(0);
    assert!(config(&moto).contains("    Port 22\n"));
}

/// A stand-in for `ssh` on PATH that records its arguments.
fn fake_ssh(moto: &Moto) -> Vec<(String, String)> {
    let bin = moto.dir.path().join("bin");
    std::fs::create_dir_all(&bin).expect("bin");
    let script = bin.join("ssh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" > '{}'\n",
            moto.dir.path().join("ssh-args").display()
        ),
    )
    .expect("fake ssh");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let mut env = moto.env();
    env.push((
        "PATH".into(),
        format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        ),
    ));
    env
}

#[test]
fn tether_ssh_waits_verifies_the_host_key_then_runs_ssh_through_the_alias() {
    let moto = Moto::start();
    // A loopback sshd stands in for the instance (its address through the test hook), so
    // that tether can wait for it and verify its key before handing over to ssh.
    let sshd = support::Sshd::start();
    let spec = format!("{LAB}      port: {}\n", sshd.port);
    moto.write("tether.yaml", &spec);
    let mut env = fake_ssh(&moto);
    env.push(("TETHER_TEST_PUBLIC_IPS".into(), "worker=127.0.0.1".into()));
    env.push((
        "TETHER_TEST_CONSOLE_OUTPUT".into(),
        format!("worker={}", sshd.console_file().display()),
    ));
    let apply = run_tether(moto.dir.path(), &env, &["apply", "--auto-approve"]);
    assert_eq!(apply.code, 0, "{}", apply.stderr);
    let run = run_tether(moto.dir.path(), &env, &["ssh", "worker", "--", "nproc"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let args = std::fs::read_to_string(moto.dir.path().join("ssh-args")).expect("ssh ran");
    let config = moto.dir.path().join("ssh-config");
    let id = live_instance(&moto).1;
    let known_hosts = moto.dir.path().join(".tether/known_hosts/lab");
    assert_eq!(
        args,
        format!(
            "-F\n{}\n-o\nHostName=127.0.0.1\n-o\nPort={}\n-o\nHostKeyAlias={id}\n-o\nUserKnownHostsFile={}\n-o\nStrictHostKeyChecking=yes\n-o\nClearAllForwardings=yes\nMyNewInstance\n--\nnproc\n",
            config.display(),
            sshd.port,
            known_hosts.display()
        )
    );
    assert!(std::fs::read_to_string(&known_hosts)
        .expect("the verified key is recorded")
        .starts_with(&format!("{id} ssh-ed25519 ")),);

    let key = moto.dir.path().join(".ssh/lab-key.pem");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("loosen");
    let run = run_tether(moto.dir.path(), &env, &["ssh", "MyNewInstance"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains("ssh refuses private keys that others can read"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains(&format!("hint: chmod 400 '{}'", key.display())),
        "{}",
        run.stderr
    );

    // Without an alias, tether reaches the instance at its address on port 22: nothing
    // answers there, so it waits, then says why, and never runs ssh unverified.
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o400)).expect("tighten");
    std::fs::remove_file(moto.dir.path().join("ssh-args")).expect("reset");
    let no_alias = &LAB[..LAB.find("ssh:").expect("ssh section")];
    moto.write("no-alias.yaml", no_alias);
    let run = run_tether(
        moto.dir.path(),
        &env,
        &[
            "ssh",
            "worker",
            "-f",
            "no-alias.yaml",
            "--ssh-timeout",
            "2s",
            "--",
            "nproc",
        ],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("(127.0.0.1:22) did not answer ssh within"),
        "{}",
        run.stderr
    );
    assert!(!moto.dir.path().join("ssh-args").exists(), "ssh never ran");

    let run = run_tether(moto.dir.path(), &env, &["ssh", "nobody"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains("`nobody` is neither an SSH alias nor an instance"),
        "{}",
        run.stderr
    );
}

// Regression: a symlinked `~/.ssh/config` (a dotfile manager's) was replaced by a plain
// file.
#[test]
fn a_symlinked_config_stays_a_symlink_and_its_target_keeps_its_mode() {
    let moto = Moto::start();
    std::fs::create_dir_all(moto.dir.path().join("dotfiles")).expect("dotfiles");
    let target = moto.write("dotfiles/ssh-config", USER_CONFIG);
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    std::os::unix::fs::symlink("dotfiles/ssh-config", moto.dir.path().join("ssh-config"))
        .expect("link");
    moto.write("tether.yaml", LAB);
    moto.tether(&["apply", "--auto-approve"]).expect_code(0);
    let link = moto.dir.path().join("ssh-config");
    assert!(std::fs::symlink_metadata(&link)
        .expect("link")
        .file_type()
        .is_symlink());
    let written = std::fs::read_to_string(&target).expect("target");
    assert!(written.starts_with(USER_CONFIG));
    assert!(written.contains("Host MyNewInstance\n"));
    let mode = std::fs::metadata(&target)
        .expect("target")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o640);
    moto.tether(&["destroy", "--auto-approve"]).expect_code(0);
    assert!(std::fs::symlink_metadata(&link)
        .expect("link")
        .file_type()
        .is_symlink());
    assert_eq!(
        std::fs::read_to_string(&target).expect("target"),
        format!("{USER_CONFIG}\n")
    );
}

// Regression: a `# BEGIN tether` line whose `# END` was deleted by hand made the next write
// delete the user's own lines below it.
#[test]
fn unbalanced_markers_are_refused_naming_the_line_and_the_file_is_untouched() {
    let moto = Moto::start();
    let broken = format!("{USER_CONFIG}\n# BEGIN tether lab\nHost mine\n    User me\n");
    moto.write("ssh-config", &broken);
    moto.write("tether.yaml", LAB);
    moto.tether(&["plan"])
        .expect_code(1)
        .expect_stderr("`# BEGIN tether lab` at line 7 has no `# END tether lab`");
    moto.tether(&["apply", "--auto-approve"]).expect_code(1);
    assert_eq!(config(&moto), broken, "the user's bytes are unchanged");
}

// Regression: a newline in `user` or `identity_file` injected any directive
// (`ProxyCommand ...`) into the config of everyone who applied the spec.
#[test]
fn values_that_would_inject_ssh_directives_are_refused_at_the_spec_line() {
    let moto = Moto::start();
    let spec = LAB
        .replace(
            "      user: ubuntu\n",
            "      user: \"ubuntu\\nProxyCommand touch PWNED\"\n      identity_file: \"-oProxyCommand=x\"\n",
        );
    moto.write("tether.yaml", &spec);
    let run = moto
        .tether(&["validate"])
        .expect_code(1)
        .expect_stderr("`user` of alias `MyNewInstance` cannot go into an ssh config: it holds a control character")
        .expect_stderr("`identity_file` of alias `MyNewInstance` cannot go into an ssh config: it starts with `-`");
    assert!(run.stderr.contains("tether.yaml:16:13"), "{}", run.stderr);
    assert!(run.stderr.contains("tether.yaml:17:22"), "{}", run.stderr);
    assert!(!moto.dir.path().join("PWNED").exists());
    assert!(
        !moto.dir.path().join("ssh-config").exists(),
        "nothing was written"
    );
}
