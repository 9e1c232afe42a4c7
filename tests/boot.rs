//! Jobs on instances as EC2 really hands them over: sshd answers a while after the
//! instance reports `running`, its host key is new, and it is verified against the
//! fingerprints cloud-init printed to the console. A loopback sshd stands in for the
//! instance (as in `tests/remote.rs`), started late, with a fresh host key, and the test
//! hook `TETHER_TEST_CONSOLE_OUTPUT` serves its fingerprints as the console output. No
//! test config turns host key checking off.

mod support;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use support::{apply_job_lab, host, project, put_object, run_tether, Cleanup, Moto, Run, Sshd};

const JOB: &str = "  count:\n    run_on: worker\n    inputs: s3://lab-data/docs/\n    builtin: word_count\n    output: s3://lab-data/results/count.json\n";

/// One test's lab: moto, an sshd standing in for instance `worker`, the job lab applied
/// with `job` and two documents in S3, and the environment that reaches the stand-in.
struct Lab {
    moto: Moto,
    sshd: Sshd,
    project: String,
    env: Vec<(String, String)>,
    _cleanup: Cleanup,
}

impl Lab {
    fn new(test: &str, sshd: Sshd, job: &str) -> Lab {
        let moto = Moto::start();
        let project = project(test);
        let cleanup = Cleanup(project.clone());
        let env = apply_job_lab(
            &moto,
            &project,
            &["worker"],
            &host("box", "worker", &sshd),
            job,
        );
        let s3 = moto.s3("us-east-1");
        put_object(&s3, "lab-data", "docs/a.txt", "one two three\n");
        put_object(&s3, "lab-data", "docs/b.txt", "four five\n");
        Lab {
            moto,
            sshd,
            project,
            env,
            _cleanup: cleanup,
        }
    }

    /// Serves `file` as the instance's console output.
    fn console(&mut self, file: &std::path::Path) {
        self.env.push((
            "TETHER_TEST_CONSOLE_OUTPUT".into(),
            format!("worker={}", file.display()),
        ));
    }

    /// Serves the console output cloud-init would print for the stand-in's own host key.
    fn true_console(&mut self) {
        let file = self.sshd.console_file();
        self.console(&file);
    }

    /// Serves a console output whose fingerprint is not the stand-in's key.
    fn unvouched_console(&mut self) {
        let console = self.moto.write(
            "console.txt",
            "ec2: -----BEGIN SSH HOST KEY FINGERPRINTS-----\nec2: 256 SHA256:+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU root@ip (ED25519)\nec2: -----END SSH HOST KEY FINGERPRINTS-----\n",
        );
        self.console(&console);
    }

    /// Runs the job and asserts it is refused for a key the console does not vouch for.
    #[track_caller]
    fn run_is_refused_as_unvouched(&self) {
        let run = self.tether(&["run"]);
        assert_eq!(run.code, 1, "{}", run.stderr);
        assert!(
            run.stderr
                .contains("that its console output does not vouch for"),
            "{}",
            run.stderr
        );
    }

    /// Declares the instance as images with cloud-init are: only its console vouches for
    /// its host key (the spec's default), never a first use.
    fn console_only(&self) {
        let spec = std::fs::read_to_string(self.moto.dir.path().join("tether.yaml")).expect("spec");
        let strict = spec.replace(", host_key: trust_on_first_use", "");
        assert_ne!(spec, strict);
        self.moto.write("tether.yaml", &strict);
    }

    /// A plain `ssh [OPTIONS] box true` through the alias block, in batch mode.
    fn plain_ssh(&self, options: &[&str]) -> std::process::Output {
        let dir = self.moto.dir.path();
        Command::new("ssh")
            .env("HOME", dir)
            .arg("-F")
            .arg(dir.join("ssh-config"))
            .args(["-o", "BatchMode=yes"])
            .args(options)
            .args(["box", "true"])
            .output()
            .expect("ssh")
    }

    /// Asserts that a plain `ssh box true` (batch mode, nothing turning checks off)
    /// verifies the host through the alias block and runs.
    #[track_caller]
    fn plain_ssh_works(&self) {
        let plain = self.plain_ssh(&[]);
        assert!(
            plain.status.success(),
            "plain ssh verifies through the block: {}",
            String::from_utf8_lossy(&plain.stderr)
        );
    }

    fn tether(&self, args: &[&str]) -> Run {
        run_tether(self.moto.dir.path(), &self.env, args)
    }

    fn known_hosts(&self) -> PathBuf {
        self.moto
            .dir
            .path()
            .join(".tether")
            .join("known_hosts")
            .join(&self.project)
    }
}

#[test]
fn a_job_waits_for_a_booting_instance_verifies_its_key_from_the_console_and_uses_one_connection() {
    // The instance's sshd comes up seconds after EC2 says `running` (apply returns then).
    let mut lab = Lab::new("boot", Sshd::start_after(Duration::from_secs(6)), JOB);
    lab.true_console();

    let run = lab.tether(&["run"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("waiting for `worker` to answer ssh"),
        "the first connections were refused, and tether waited: {}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("`worker`: host key verified against its console output"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("trusted on first use"),
        "{}",
        run.stderr
    );
    // Every ssh and scp call of the run (setup, uploads, polls) went over one connection.
    assert_eq!(lab.sshd.logins(), 1, "one login for the whole run");

    // The key is kept under the instance's id, and the alias block points ssh at it: a
    // plain `ssh box` verifies the host, with nothing turning checks off.
    let recorded = std::fs::read_to_string(lab.known_hosts()).expect("known_hosts");
    let id = recorded
        .split_whitespace()
        .next()
        .expect("a line")
        .to_string();
    assert!(id.starts_with("i-"), "{recorded}");
    // apply wrote the block before the key was known; applying again keeps it current.
    let apply = lab.tether(&["apply", "--auto-approve", "--no-jobs"]);
    assert_eq!(apply.code, 0, "{}", apply.stderr);
    let dir = lab.moto.dir.path();
    let config = std::fs::read_to_string(dir.join("ssh-config")).expect("config");
    assert!(
        config.contains(&format!("    HostKeyAlias {id}\n")),
        "{config}"
    );
    lab.plain_ssh_works();
}

#[test]
fn a_changed_host_key_for_the_same_instance_is_refused_before_anything_runs() {
    let mut lab = Lab::new("rekey", Sshd::start(), JOB);
    lab.true_console();
    let first = lab.tether(&["run"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let logins = lab.sshd.logins();

    // The instance now offers another key than the one recorded for its id.
    let other = tempfile::tempdir().expect("temp dir");
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(other.path().join("key"))
        .status()
        .expect("ssh-keygen");
    assert!(status.success());
    let other_key = std::fs::read_to_string(other.path().join("key.pub")).expect("key");
    let blob = other_key.split_whitespace().nth(1).expect("blob");
    let file = lab.known_hosts();
    let recorded = std::fs::read_to_string(&file).expect("known_hosts");
    let id = recorded.split_whitespace().next().expect("id");
    std::fs::write(&file, format!("{id} ssh-ed25519 {blob}\n")).expect("tamper");

    let second = lab.tether(&["run"]);
    assert_eq!(second.code, 1, "{}", second.stderr);
    assert!(
        second.stderr.contains("changed since tether first met it") && second.stderr.contains(id),
        "{}",
        second.stderr
    );
    assert_eq!(lab.sshd.logins(), logins, "nothing logged in");
    assert_eq!(
        std::fs::read_to_string(&file).expect("kept"),
        format!("{id} ssh-ed25519 {blob}\n"),
        "a changed key is never recorded over the old one"
    );
}

#[test]
fn a_host_key_the_console_does_not_vouch_for_is_refused() {
    let mut lab = Lab::new("mitm", Sshd::start(), JOB);
    lab.unvouched_console();
    lab.run_is_refused_as_unvouched();
    assert_eq!(lab.sshd.logins(), 0);
    assert!(!lab.known_hosts().exists(), "nothing recorded");
}

#[test]
fn an_instance_that_never_answers_fails_with_the_end_of_its_console_output() {
    let mut lab = Lab::new("silent", Sshd::start(), JOB);
    let console = lab.moto.write(
        "console.txt",
        "[    1.0] Booting\n[   30.2] EXT4-fs error (device nvme0n1p1): bad superblock\n[   30.3] Kernel panic - not syncing\n",
    );
    lab.console(&console);
    lab.sshd.stop();
    let run = lab.tether(&["run", "--ssh-timeout", "3s"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("did not answer ssh within")
            && run.stderr.contains("Kernel panic - not syncing"),
        "the error shows where the boot failed: {}",
        run.stderr
    );
}

#[test]
fn an_agent_binary_for_another_system_or_that_will_not_start_is_refused_before_anything_runs() {
    let job = "  count:\n    run_on: worker\n    setup: \"touch setup-ran\"\n    inputs: s3://lab-data/docs/\n    builtin: word_count\n    output: s3://lab-data/results/count.json\n";
    let mut lab = Lab::new("agent", Sshd::start(), job);
    lab.true_console();
    let moto = &lab.moto;
    let setup_ran = std::path::Path::new(&std::env::var("HOME").expect("HOME"))
        .join(".tether")
        .join(&lab.project)
        .join("count/worker/setup-ran");

    // A macOS build (by its first bytes), named in the spec.
    let mut mach_o = vec![0xcf, 0xfa, 0xed, 0xfe, 7, 0, 0, 1];
    mach_o.resize(4096, 0);
    std::fs::write(moto.dir.path().join("tether-macos"), &mach_o).expect("write");
    let spec = std::fs::read_to_string(moto.dir.path().join("tether.yaml")).expect("spec");
    moto.write(
        "tether.yaml",
        &format!("{spec}agent_binary: ./tether-macos\n"),
    );
    let run = lab.tether(&["run"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("is a macOS (Mach-O) binary, not a Linux executable")
            && run.stderr.contains("scripts/build-wheel.sh"),
        "the error says what is wrong and how to fix it: {}",
        run.stderr
    );

    // An ELF for this CPU that does not start (cut short), given on the command line.
    let own = std::fs::read(env!("CARGO_BIN_EXE_tether")).expect("tether");
    std::fs::write(moto.dir.path().join("tether-broken"), &own[..8192]).expect("write");
    let run = lab.tether(&["run", "--agent-binary", "tether-broken"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("does not start on `worker`")
            && run.stderr.contains("nothing was started there"),
        "{}",
        run.stderr
    );
    assert!(!setup_ran.exists(), "setup never ran");
    let binaries: Vec<String> = std::fs::read_dir(
        std::path::Path::new(&std::env::var("HOME").expect("HOME")).join(".tether/bin"),
    )
    .map(|dir| {
        dir.filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()
    })
    .unwrap_or_default();
    // Named by its content: the broken copy is the one of that hash.
    let broken = format!("tether-{}", &sha256_hex(&own[..8192])[..16]);
    assert!(
        !binaries.iter().any(|name| name.starts_with(&broken)),
        "the copy that does not start is not left behind: {binaries:?}"
    );

    // One linked against a newer glibc than the image's: this tether with its newest
    // glibc version renamed 2.99, so the loader refuses it as it would on an old image.
    let newer = {
        let needle = b"GLIBC_2.34";
        let at = own
            .windows(needle.len())
            .position(|w| w == needle)
            .expect("this tether asks for GLIBC_2.34");
        let mut newer = own.clone();
        newer[at..at + needle.len()].copy_from_slice(b"GLIBC_2.99");
        newer
    };
    let path = moto.dir.path().join("tether-newer-glibc");
    std::fs::write(&path, &newer).expect("write");
    let getconf = std::process::Command::new("getconf")
        .arg("GNU_LIBC_VERSION")
        .output()
        .expect("getconf");
    let here = String::from_utf8_lossy(&getconf.stdout)
        .split_whitespace()
        .last()
        .expect("a glibc version")
        .to_string();
    let run = lab.tether(&["run", "--agent-binary", "tether-newer-glibc"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "needs glibc 2.99, and `worker` has {here}: nothing was started there"
        )),
        "{}",
        run.stderr
    );

    // This tether itself, as before: the job runs.
    let run = lab.tether(&["run", "--agent-binary", env!("CARGO_BIN_EXE_tether")]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(setup_ran.exists());
}

#[test]
fn apply_can_wait_until_a_booting_instance_answers_ssh_so_its_alias_works_at_once() {
    let mut lab = Lab::new("await", Sshd::start_after(Duration::from_secs(8)), JOB);
    lab.true_console();

    let apply = lab.tether(&["apply", "--auto-approve", "--no-jobs", "--wait-for-ssh"]);
    assert_eq!(apply.code, 0, "{}", apply.stderr);
    assert!(
        apply.stderr.contains("waiting for `worker` to answer ssh")
            && apply
                .stderr
                .contains("`worker` answers ssh; its host key is verified and recorded"),
        "{}",
        apply.stderr
    );
    assert!(lab.known_hosts().exists(), "the key is recorded");
    // Right after apply, a plain `ssh box` verifies the host through the alias block.
    lab.plain_ssh_works();
}

#[test]
fn apply_waiting_for_ssh_refuses_a_key_the_console_does_not_vouch_for() {
    let mut lab = Lab::new("await-mitm", Sshd::start(), JOB);
    lab.unvouched_console();
    let apply = lab.tether(&["apply", "--auto-approve", "--no-jobs", "--wait-for-ssh"]);
    assert_eq!(apply.code, 1, "{}", apply.stderr);
    assert!(
        apply
            .stderr
            .contains("`worker` is applied but not reachable")
            && apply
                .stderr
                .contains("that its console output does not vouch for"),
        "{}",
        apply.stderr
    );
    assert_eq!(lab.sshd.logins(), 0);
    assert!(!lab.known_hosts().exists(), "nothing recorded");
}

// Regression: the alias block did not pin `StrictHostKeyChecking yes`, so a plain
// `ssh -o StrictHostKeyChecking=accept-new box` appended an unvouched key to tether's
// known_hosts file under the instance's id, and from then on tether trusted it as
// recorded.
#[test]
fn a_plain_ssh_that_accepts_a_new_key_cannot_add_it_to_tethers_file() {
    let mut lab = Lab::new("accept-new", Sshd::start(), JOB);
    lab.console_only();
    lab.unvouched_console();
    let dir = lab.moto.dir.path();
    let block = std::fs::read_to_string(dir.join("ssh-config")).expect("config");
    assert!(block.contains("    StrictHostKeyChecking yes\n"), "{block}");

    // A plain ssh through the alias refuses the unknown key by itself...
    assert!(
        !lab.plain_ssh(&[]).status.success(),
        "an unverified host was reached"
    );
    // ...and one told to accept it writes it nowhere tether reads.
    let _ = lab.plain_ssh(&["-o", "StrictHostKeyChecking=accept-new"]);
    assert!(
        !lab.known_hosts().exists(),
        "ssh wrote tether's file: {:?}",
        std::fs::read_to_string(lab.known_hosts())
    );
    lab.run_is_refused_as_unvouched();
}

// Regression: an empty console output (EC2's answer for minutes after launch) was taken
// as "this image prints no fingerprints", and the first key offered was trusted on first
// use; the real fingerprints, shown later, were never checked.
#[test]
fn an_empty_console_is_read_again_until_it_vouches_and_never_means_first_use() {
    let mut lab = Lab::new("silent-console", Sshd::start(), JOB);
    lab.console_only();
    let console = lab.moto.write("console.txt", "");
    lab.console(&console);

    // Silent for the whole wait: refused, with what to do, and nothing recorded.
    let run = lab.tether(&["run", "--ssh-timeout", "3s"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("showed no host key fingerprints within")
            && run.stderr.contains("host_key: trust_on_first_use"),
        "{}",
        run.stderr
    );
    assert_eq!(lab.sshd.logins(), 0, "nothing logged in");
    assert!(!lab.known_hosts().exists(), "nothing recorded");

    // The fingerprints appear a few seconds into the next run: it waits for them, then
    // verifies the key against them.
    let fingerprints = std::fs::read_to_string(lab.sshd.console_file()).expect("console");
    std::fs::write(&console, "").expect("empty again");
    let writer = {
        let console = console.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(4));
            std::fs::write(&console, fingerprints).expect("console");
        })
    };
    let run = lab.tether(&["run", "--ssh-timeout", "60s"]);
    writer.join().expect("writer");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("`worker`: host key verified against its console output")
            && !run.stderr.contains("trusted on first use"),
        "{}",
        run.stderr
    );
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The bytes of a size as progress prints it (`61.2 MiB`, `512 B`).
fn printed_bytes(text: &str) -> f64 {
    let (value, unit) = text.split_once(' ').expect("a size and its unit");
    let scale = match unit {
        "B" => 1.0,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        other => panic!("unit {other}"),
    };
    value.parse::<f64>().expect("a number") * scale
}

#[test]
fn the_agent_travels_gzipped_once_per_build_and_a_copy_that_is_not_it_is_replaced() {
    let mut lab = Lab::new("gzip", Sshd::start(), JOB);
    lab.true_console();
    // A build of this test's own: this tether with bytes after its end (it still runs), so
    // that no other test has put it on the instance.
    let mut build = std::fs::read(env!("CARGO_BIN_EXE_tether")).expect("tether");
    build.extend_from_slice(format!("\n{}-{}\n", lab.project, std::process::id()).as_bytes());
    let path = lab.moto.dir.path().join("tether-own");
    std::fs::write(&path, &build).expect("write");
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let held = std::path::Path::new(&std::env::var("HOME").expect("HOME"))
        .join(".tether/bin")
        .join(format!("tether-{}", &sha256_hex(&build)[..16]));
    let sent = |run: &Run| {
        run.stderr
            .lines()
            .find_map(|line| line.strip_prefix("count: uploading "))
            .and_then(|rest| rest.strip_suffix(" to worker"))
            .map(printed_bytes)
    };
    let args = ["run", "--agent-binary", "tether-own"];

    let first = lab.tether(&args);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let bytes = sent(&first).unwrap_or_else(|| panic!("the upload is reported: {}", first.stderr));
    assert!(
        bytes < build.len() as f64 * 0.75,
        "the build travels gzipped: {bytes} bytes sent for {}",
        build.len()
    );
    assert!(std::fs::read(&held).expect("the build on the instance") == build);

    // The instance holds this very build: nothing travels.
    let second = lab.tether(&args);
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert_eq!(sent(&second), None, "{}", second.stderr);

    // A file under the build's name that is not the build (by its content) is replaced.
    std::fs::write(&held, "#!/bin/sh\necho tether 0.0.0\n").expect("plant");
    let third = lab.tether(&args);
    assert_eq!(third.code, 0, "{}", third.stderr);
    assert!(sent(&third).is_some(), "{}", third.stderr);
    assert!(std::fs::read(&held).expect("the build on the instance") == build);
}
