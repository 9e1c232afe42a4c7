//! Test support: a real moto server on a free loopback port, the real `tether` binary run
//! against it, and an SDK client to check the account independently of tether's own reading.
//!
//! Each test starts its own server, so tests share nothing and can run in parallel. The
//! server is killed when the `Moto` value drops. Nothing here talks to anything but
//! loopback: AWS's instance metadata service is disabled and the user's AWS config files are
//! hidden from every process started.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};

pub mod cloudwatch;
pub mod faults;
pub mod http;

/// The moto_server executable: `TETHER_MOTO_SERVER`, else installed by
/// `tests/support/install-moto.sh` (once per machine).
fn moto_server_path() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        if let Ok(path) = std::env::var("TETHER_MOTO_SERVER") {
            return PathBuf::from(path);
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/install-moto.sh");
        let output = Command::new("bash")
            .arg(&script)
            .stderr(Stdio::inherit())
            .output()
            .expect("run install-moto.sh");
        assert!(output.status.success(), "installing moto failed");
        PathBuf::from(String::from_utf8(output.stdout).expect("utf-8 path").trim())
    })
    .clone()
}

/// The Python of moto's virtual environment, which also has jsonschema and PyYAML.
pub fn venv_python() -> PathBuf {
    moto_server_path().with_file_name("python")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A loopback port nothing listens on: a connection to it is refused (a service that does
/// not answer).
pub fn closed_port() -> u16 {
    free_port()
}

/// A free loopback port below the kernel's ephemeral range (32768 and up), for a server
/// that binds it only seconds later: no outgoing connection of the tests (which take
/// ephemeral ports) can take it in the meantime.
fn quiet_port() -> u16 {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos())
        ^ std::process::id();
    (0..1000u32)
        .map(|i| {
            20_000 + u16::try_from((seed.wrapping_add(i.wrapping_mul(7919))) % 10_000).unwrap_or(0)
        })
        .find(|port| TcpListener::bind(("127.0.0.1", *port)).is_ok())
        .expect("a free port below the ephemeral range")
}

/// A running moto server.
pub struct Moto {
    child: Child,
    pub endpoint: String,
    pub port: u16,
    /// A private HOME and working directory for the test.
    pub dir: tempfile::TempDir,
}

impl Moto {
    pub fn start() -> Moto {
        Moto::start_with_env(&[])
    }

    /// A server with extra environment (`MOTO_ACCOUNT_ID` for another account).
    pub fn start_with_env(extra: &[(&str, &str)]) -> Moto {
        let server = moto_server_path();
        let mut dir = tempfile::tempdir().expect("temp dir");
        for attempt in 0..5 {
            let port = free_port();
            let log = std::fs::File::create(dir.path().join(format!("moto-{attempt}.log")))
                .expect("log file");
            let child = Command::new(&server)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .env("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
                .envs(extra.iter().copied())
                .stdout(log.try_clone().expect("log"))
                .stderr(log)
                .spawn()
                .expect("start moto_server");
            let mut moto = Moto {
                child,
                endpoint: format!("http://127.0.0.1:{port}"),
                port,
                dir,
            };
            if moto.wait_ready(Duration::from_secs(60)) {
                return moto;
            }
            // Lost the port to another process between probe and bind: try another.
            let _ = moto.child.kill();
            let _ = moto.child.wait();
            dir = std::mem::replace(&mut moto.dir, tempfile::tempdir().expect("temp dir"));
        }
        panic!("moto_server did not start");
    }

    fn wait_ready(&mut self, limit: Duration) -> bool {
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// The environment every process of the test gets: `sealed_env` for moto's endpoint,
    /// with a default region.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env = sealed_env(self.dir.path(), &self.endpoint);
        env.push(("AWS_REGION".into(), "us-east-1".into()));
        env
    }

    /// Writes `text` as `name` in the test's directory and returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).expect("write test file");
        path
    }

    /// Runs `tether ARGS` in the test's directory, stdin closed.
    pub fn tether(&self, args: &[&str]) -> Run {
        run_tether(self.dir.path(), &self.env(), args)
    }

    /// Runs `tether ARGS` on a pseudo-terminal (through util-linux `script`), typing `input`.
    pub fn tether_on_terminal(&self, args: &[&str], input: &str) -> Run {
        use std::io::Write;
        let mut child = spawn_on_terminal(self.dir.path(), &self.env(), args);
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("type the answer");
        Run::from(child.wait_with_output().expect("wait for tether"))
    }

    /// An IAM client talking to moto directly, to check the account without tether.
    pub fn iam(&self) -> aws_sdk_iam::Client {
        let config = aws_sdk_iam::Config::builder()
            .behavior_version(aws_sdk_iam::config::BehaviorVersion::latest())
            .region(aws_sdk_iam::config::Region::new("us-east-1"))
            .endpoint_url(&self.endpoint)
            .credentials_provider(aws_sdk_iam::config::Credentials::new(
                "testing", "testing", None, None, "tests",
            ))
            .build();
        aws_sdk_iam::Client::from_conf(config)
    }

    /// An EC2 client talking to moto directly, to check the account without tether.
    pub fn ec2(&self) -> aws_sdk_ec2::Client {
        let config = aws_sdk_ec2::Config::builder()
            .behavior_version(aws_sdk_ec2::config::BehaviorVersion::latest())
            .region(aws_sdk_ec2::config::Region::new("us-east-1"))
            .endpoint_url(&self.endpoint)
            .credentials_provider(aws_sdk_ec2::config::Credentials::new(
                "testing", "testing", None, None, "tests",
            ))
            .build();
        aws_sdk_ec2::Client::from_conf(config)
    }

    /// A CloudWatch Logs client talking to moto directly (where tests play Batch's log
    /// driver).
    pub fn logs(&self) -> aws_sdk_cloudwatchlogs::Client {
        let config = aws_sdk_cloudwatchlogs::Config::builder()
            .behavior_version(aws_sdk_cloudwatchlogs::config::BehaviorVersion::latest())
            .region(aws_sdk_cloudwatchlogs::config::Region::new("us-east-1"))
            .endpoint_url(&self.endpoint)
            .credentials_provider(aws_sdk_cloudwatchlogs::config::Credentials::new(
                "testing", "testing", None, None, "tests",
            ))
            .build();
        aws_sdk_cloudwatchlogs::Client::from_conf(config)
    }

    /// An AWS Batch client talking to moto directly, to check the account without tether.
    pub fn batch(&self) -> aws_sdk_batch::Client {
        let config = aws_sdk_batch::Config::builder()
            .behavior_version(aws_sdk_batch::config::BehaviorVersion::latest())
            .region(aws_sdk_batch::config::Region::new("us-east-1"))
            .endpoint_url(&self.endpoint)
            .credentials_provider(aws_sdk_batch::config::Credentials::new(
                "testing", "testing", None, None, "tests",
            ))
            .build();
        aws_sdk_batch::Client::from_conf(config)
    }

    /// A Parameter Store client talking to moto directly, to check the account without tether.
    pub fn ssm(&self) -> aws_sdk_ssm::Client {
        let config = aws_sdk_ssm::Config::builder()
            .behavior_version(aws_sdk_ssm::config::BehaviorVersion::latest())
            .region(aws_sdk_ssm::config::Region::new("us-east-1"))
            .endpoint_url(&self.endpoint)
            .credentials_provider(aws_sdk_ssm::config::Credentials::new(
                "testing", "testing", None, None, "tests",
            ))
            .build();
        aws_sdk_ssm::Client::from_conf(config)
    }

    /// An S3 client talking to moto directly, to check the account without tether.
    pub fn s3(&self, region: &str) -> aws_sdk_s3::Client {
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region.to_string()))
            .endpoint_url(&self.endpoint)
            .credentials_provider(Credentials::new("testing", "testing", None, None, "tests"))
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }
}

/// An environment that reaches only `endpoint`: dummy credentials, AWS's instance metadata
/// service disabled, the user's AWS files hidden, HOME in the test's directory, no colour.
pub fn sealed_env(home: &Path, endpoint: &str) -> Vec<(String, String)> {
    [
        ("AWS_ENDPOINT_URL", endpoint),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_CONFIG_FILE", "/nonexistent/aws-config"),
        (
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/aws-credentials",
        ),
        ("HOME", &home.to_string_lossy()),
        ("NO_COLOR", "1"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    // `TETHER_AGENT_BINARY=PATH cargo test` runs every job on an instance with that agent
    // (the wheel's binary, say) instead of this tether.
    .chain(
        std::env::var("TETHER_AGENT_BINARY")
            .ok()
            .map(|path| ("TETHER_AGENT_BINARY".to_string(), path)),
    )
    .collect()
}

/// Starts the real `tether ARGS` in `dir` with exactly `env` (and PATH) on a
/// pseudo-terminal (through util-linux `script`), its input a pipe left to the caller.
pub fn spawn_on_terminal(dir: &Path, env: &[(String, String)], args: &[&str]) -> Child {
    let command = std::iter::once(env!("CARGO_BIN_EXE_tether"))
        .chain(args.iter().copied())
        .map(|word| format!("'{word}'"))
        .collect::<Vec<_>>()
        .join(" ");
    Command::new("script")
        .args(["-q", "-e", "-c", &command, "/dev/null"])
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().cloned())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run tether under `script` (util-linux)")
}

/// The real `tether ARGS` in `dir` with exactly `env` (and PATH), stdin closed.
fn tether_command(dir: &Path, env: &[(String, String)], args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tether"));
    command
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().cloned())
        .stdin(Stdio::null());
    command
}

/// Runs the real `tether ARGS` in `dir` with exactly `env` (and PATH), stdin closed.
pub fn run_tether(dir: &Path, env: &[(String, String)], args: &[&str]) -> Run {
    Run::from(tether_command(dir, env, args).output().expect("run tether"))
}

/// Starts the real `tether ARGS` as `run_tether` does, without waiting for it; its
/// stdout and stderr are pipes.
pub fn spawn_tether(dir: &Path, env: &[(String, String)], args: &[&str]) -> std::process::Child {
    tether_command(dir, env, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run tether")
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The outcome of one `tether` run.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(output: Output) -> Run {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl Run {
    /// Asserts the exit code, showing the output when it is wrong.
    #[track_caller]
    pub fn expect_code(self, code: i32) -> Run {
        assert_eq!(
            self.code, code,
            "unexpected exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }

    #[track_caller]
    pub fn expect_stderr(self, needle: &str) -> Run {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}\n--- stderr\n{}",
            self.stderr
        );
        self
    }

    /// Asserts stdout contains `needle`.
    pub fn expect_stdout(self, needle: &str) -> Run {
        assert!(
            self.stdout.contains(needle),
            "stdout lacks {needle:?}\n--- stdout\n{}",
            self.stdout
        );
        self
    }
}

/// A blocking runtime for SDK checks inside synchronous tests.
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(future)
}

/// The bucket's tags, read through the SDK.
pub fn tags(s3: &aws_sdk_s3::Client, bucket: &str) -> BTreeMap<String, String> {
    block_on(async {
        match s3.get_bucket_tagging().bucket(bucket).send().await {
            Ok(out) => out
                .tag_set()
                .iter()
                .map(|t| (t.key().to_string(), t.value().to_string()))
                .collect(),
            Err(_) => BTreeMap::new(),
        }
    })
}

/// Tags `bucket` with `tags` (replacing its tags) through the SDK, as anyone in the
/// account may.
pub fn tag_bucket(s3: &aws_sdk_s3::Client, bucket: &str, tags: &[(&str, &str)]) {
    let tagging = aws_sdk_s3::types::Tagging::builder()
        .set_tag_set(Some(
            tags.iter()
                .map(|(key, value)| {
                    aws_sdk_s3::types::Tag::builder()
                        .key(*key)
                        .value(*value)
                        .build()
                        .expect("tag")
                })
                .collect(),
        ))
        .build()
        .expect("tagging");
    block_on(async {
        s3.put_bucket_tagging()
            .bucket(bucket)
            .tagging(tagging)
            .send()
            .await
            .expect("put tags")
    });
}

/// The bucket's policy as JSON, read through the SDK.
pub fn policy(s3: &aws_sdk_s3::Client, bucket: &str) -> Option<serde_json::Value> {
    block_on(async {
        s3.get_bucket_policy()
            .bucket(bucket)
            .send()
            .await
            .ok()
            .and_then(|out| {
                out.policy()
                    .map(|p| serde_json::from_str(p).expect("policy JSON"))
            })
    })
}

/// The names of all buckets, read through the SDK.
pub fn buckets(s3: &aws_sdk_s3::Client) -> Vec<String> {
    block_on(async {
        let out = s3.list_buckets().send().await.expect("ListBuckets");
        let mut names: Vec<String> = out
            .buckets()
            .iter()
            .filter_map(|b| b.name().map(str::to_string))
            .collect();
        names.sort();
        names
    })
}

/// A parameter's type and decrypted value, read through the SDK; `None` when it is absent.
pub fn parameter(ssm: &aws_sdk_ssm::Client, name: &str) -> Option<(String, String)> {
    block_on(async {
        let out = ssm
            .get_parameter()
            .name(name)
            .with_decryption(true)
            .send()
            .await
            .ok()?;
        let parameter = out.parameter()?;
        Some((
            parameter.r#type()?.as_str().to_string(),
            parameter.value()?.to_string(),
        ))
    })
}

/// The active access key ids of `user`, read through the SDK.
pub fn access_key_ids(iam: &aws_sdk_iam::Client, user: &str) -> Vec<String> {
    block_on(async {
        let keys = iam
            .list_access_keys()
            .user_name(user)
            .send()
            .await
            .expect("keys");
        keys.access_key_metadata()
            .iter()
            .filter_map(|k| k.access_key_id().map(str::to_string))
            .collect()
    })
}

/// Creates a bucket behind tether's back.
pub fn create_bucket(s3: &aws_sdk_s3::Client, bucket: &str) {
    block_on(async {
        s3.create_bucket()
            .bucket(bucket)
            .send()
            .await
            .expect("CreateBucket")
    });
}

/// An object's body, read behind tether's back; `None` when there is no such object.
pub fn get_object(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Option<Vec<u8>> {
    block_on(async {
        let out = s3.get_object().bucket(bucket).key(key).send().await.ok()?;
        Some(
            out.body
                .collect()
                .await
                .expect("body")
                .into_bytes()
                .to_vec(),
        )
    })
}

/// The independent word count: whitespace-separated words, as `wc -w` counts ASCII text.
pub fn words(text: &str) -> u64 {
    text.split_ascii_whitespace().count() as u64
}

/// Puts an object behind tether's back.
pub fn put_object(s3: &aws_sdk_s3::Client, bucket: &str, key: &str, body: &str) {
    block_on(async {
        s3.put_object()
            .bucket(bucket)
            .key(key)
            .body(body.as_bytes().to_vec().into())
            .send()
            .await
            .expect("PutObject")
    });
}

/// A real OpenSSH server on a free loopback port, standing in for an instance: a fresh
/// host key, a fresh user key authorized for the current user, and in its sessions the
/// environment an instance would have (its own dummy credentials, the metadata service
/// off, its own tmux server). Killed when dropped.
pub struct Sshd {
    child: Child,
    pub port: u16,
    /// The private key that logs in.
    pub user_key: PathBuf,
    pub user: String,
    pub dir: tempfile::TempDir,
}

impl Sshd {
    pub fn start() -> Sshd {
        Sshd::launch(None)
    }

    /// An sshd that starts listening only `delay` after this returns, as an instance's does
    /// a while after EC2 reports it running: connections before then are refused.
    pub fn start_after(delay: Duration) -> Sshd {
        Sshd::launch(Some(delay))
    }

    fn launch(delay: Option<Duration>) -> Sshd {
        let sshd = Path::new("/usr/sbin/sshd");
        // Installs sshd and tmux when either is missing; quick when both are there.
        {
            let script =
                Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/install-sshd.sh");
            let status = Command::new("bash")
                .arg(&script)
                .status()
                .expect("run install-sshd.sh");
            assert!(
                status.success() && sshd.exists(),
                "these tests need OpenSSH's server and tmux: apt-get install openssh-server tmux"
            );
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let keygen = |name: &str| {
            let status = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(dir.path().join(name))
                .status()
                .expect("ssh-keygen");
            assert!(status.success());
        };
        keygen("host_key");
        keygen("user_key");
        std::fs::copy(
            dir.path().join("user_key.pub"),
            dir.path().join("authorized_keys"),
        )
        .expect("authorized_keys");
        let _ = std::fs::create_dir_all("/run/sshd");
        let tmux = dir.path().join("tmux");
        std::fs::create_dir_all(&tmux).expect("tmux dir");
        let user = String::from_utf8(
            Command::new("id")
                .arg("-un")
                .output()
                .expect("id -un")
                .stdout,
        )
        .expect("user name")
        .trim()
        .to_string();
        for attempt in 0..5 {
            let port = if delay.is_some() {
                quiet_port()
            } else {
                free_port()
            };
            let config = dir.path().join("sshd_config");
            std::fs::write(
                &config,
                format!(
                    "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\n\
                     AuthorizedKeysFile {d}/authorized_keys\nStrictModes no\nUsePAM no\n\
                     PasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                     PermitRootLogin prohibit-password\nSubsystem sftp internal-sftp\n\
                     SetEnv AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \
                     AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/nonexistent \
                     AWS_SHARED_CREDENTIALS_FILE=/nonexistent TMUX_TMPDIR={tmux}\n",
                    d = dir.path().display(),
                    tmux = tmux.display(),
                ),
            )
            .expect("sshd_config");
            // sshd logs to stderr (`-e`), kept in `sshd.log` so tests can count connections.
            let log = std::fs::File::create(dir.path().join("sshd.log")).expect("sshd.log");
            let mut command = match delay {
                None => Command::new(sshd),
                Some(delay) => {
                    // The shell becomes sshd after the delay (same pid, so it is killed).
                    let mut command = Command::new("sh");
                    command.args([
                        "-c",
                        &format!("sleep {}; exec \"$0\" \"$@\"", delay.as_secs_f64()),
                    ]);
                    command.arg(sshd);
                    command
                }
            };
            let mut child = command
                .args(["-D", "-e", "-f"])
                .arg(&config)
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("start sshd");
            if delay.is_some() {
                return Sshd {
                    child,
                    port,
                    user_key: dir.path().join("user_key"),
                    user,
                    dir,
                };
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Sshd {
                        child,
                        port,
                        user_key: dir.path().join("user_key"),
                        user,
                        dir,
                    };
                }
                if child.try_wait().ok().flatten().is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
            eprintln!("sshd did not come up on port {port} (attempt {attempt})");
        }
        panic!("could not start sshd");
    }
}

impl Sshd {
    /// A console output as cloud-init prints it at an instance's first boot, with this
    /// server's host key fingerprint, in a file for `TETHER_TEST_CONSOLE_OUTPUT`.
    pub fn console_file(&self) -> PathBuf {
        let output = Command::new("ssh-keygen")
            .arg("-lf")
            .arg(self.dir.path().join("host_key.pub"))
            .output()
            .expect("ssh-keygen -lf");
        let fingerprint = String::from_utf8(output.stdout).expect("fingerprint");
        let file = self.dir.path().join("console.txt");
        std::fs::write(
            &file,
            format!(
                "[    4.1] cloud-init[600]: Cloud-init v. 23.1 running 'init'\n                 ec2: -----BEGIN SSH HOST KEY FINGERPRINTS-----\n                 ec2: {}\n                 ec2: -----END SSH HOST KEY FINGERPRINTS-----\n                 [   9.8] cloud-init[700]: Cloud-init finished\n",
                fingerprint.trim()
            ),
        )
        .expect("console file");
        file
    }

    /// How many ssh connections logged in (sshd's `Accepted publickey` lines).
    pub fn logins(&self) -> usize {
        std::fs::read_to_string(self.dir.path().join("sshd.log"))
            .unwrap_or_default()
            .lines()
            .filter(|line| line.contains("Accepted publickey"))
            .count()
    }

    /// Stops the server (an instance that cannot be reached), keeping its files.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        // The tmux server of this sshd's sessions goes with it.
        let _ = Command::new("tmux")
            .env("TMUX_TMPDIR", self.dir.path().join("tmux"))
            .args(["kill-server"])
            .output();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// Jobs on instances: what the remote-job tests share.

/// The user's own part of the config file, outside tether's block. Host keys are checked:
/// tether verifies them itself (console output, else first use) and keeps them in the
/// project's known_hosts file.
pub const USER_SSH_CONFIG: &str = "Host *\n    LogLevel ERROR\n";

/// A project name of this test run's own: the servers log in as the current user, whose
/// home holds the jobs' directories, `~/.tether/<project>`.
pub fn project(test: &str) -> String {
    format!("t{}-{test}", std::process::id())
}

pub struct Cleanup(pub String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(home) = std::env::var_os("HOME") {
            let _ =
                std::fs::remove_dir_all(std::path::Path::new(&home).join(".tether").join(&self.0));
        }
    }
}

pub fn host(alias: &str, instance: &str, sshd: &Sshd) -> String {
    format!(
        "    {alias}:\n      instance: {instance}\n      user: {}\n      port: {}\n      identity_file: {}\n",
        sshd.user,
        sshd.port,
        sshd.user_key.display()
    )
}

/// A spec with one remote job over `docs/`, on the instances and aliases given. moto
/// shows no console output, so unless a test serves one (`TETHER_TEST_CONSOLE_OUTPUT`)
/// the stand-ins are declared as an image without cloud-init would be:
/// `host_key: trust_on_first_use`.
pub fn job_spec(project: &str, instances: &[&str], hosts: &str, job: &str) -> String {
    let declared: String = instances
        .iter()
        .map(|i| {
            format!("  {i}: {{ami: ami-1e749f67, type: t3.micro, host_key: trust_on_first_use}}\n")
        })
        .collect();
    format!(
        "project: {project}\nregion: us-east-1\nbuckets:\n  lab-data: {{force_destroy: true}}\ninstances:\n{declared}ssh:\n  config_file: ./ssh-config\n  hosts:\n{hosts}jobs:\n{job}"
    )
}

pub fn env_for(moto: &Moto, instances: &[&str]) -> Vec<(String, String)> {
    let mut env = moto.env();
    let ips: Vec<String> = instances.iter().map(|i| format!("{i}=127.0.0.1")).collect();
    env.push(("TETHER_TEST_PUBLIC_IPS".into(), ips.join(",")));
    env
}

/// Writes the spec of one remote job (`job_spec`) with the user's ssh config beside it,
/// applies it without running the job, and returns the environment that reaches the
/// instances through their loopback stand-ins.
#[track_caller]
pub fn apply_job_lab(
    moto: &Moto,
    project: &str,
    instances: &[&str],
    hosts: &str,
    job: &str,
) -> Vec<(String, String)> {
    moto.write("ssh-config", USER_SSH_CONFIG);
    moto.write("tether.yaml", &job_spec(project, instances, hosts, job));
    let env = env_for(moto, instances);
    let apply = run_tether(
        moto.dir.path(),
        &env,
        &["apply", "--auto-approve", "--no-jobs"],
    );
    assert_eq!(apply.code, 0, "{}", apply.stderr);
    env
}
