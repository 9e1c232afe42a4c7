//! Instances that stop when idle (`idle_stop`) and notebooks reached through the alias
//! (`forward`):
//! - the watchdog tether installs at launch, run here for real against real conditions
//!   (a tmux session named as tether names job sessions, an ssh login to the loopback
//!   sshd, an open connection to a listening port, a busy loop, a busy "kernel"), its
//!   instance metadata served on loopback and its shutdown replaced through the debug
//!   build's hook;
//! - the launch through moto: the user data EC2 stores (the watchdog's part and the
//!   spec's own, taken apart as cloud-init does, with Python's `email`), the shutdown
//!   behaviour, the metadata tags and the rule's tag, changed and removed in place;
//! - a forward through a real `ssh -N` to the loopback sshd.

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use support::{block_on, env_for, host, http, project, Cleanup, Moto, Sshd, USER_SSH_CONFIG};

/// The tests here measure this machine's CPU and connections: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The watchdog, rendered as a debug build renders it, with its hooks pointed into `dir`.
struct Watchdog {
    script: PathBuf,
    state: PathBuf,
    tmux: PathBuf,
    stopped: PathBuf,
    imds: u16,
    /// The tag the metadata service answers with; `None`: 404 (no rule).
    rule: Arc<Mutex<Option<String>>>,
}

impl Watchdog {
    fn new(dir: &Path) -> Watchdog {
        let script = dir.join("tether-idle");
        std::fs::write(&script, tether::idle::watchdog_script()).expect("script");
        let rule: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
        let served = Arc::clone(&rule);
        let imds = http::serve(move |request| {
            if request.line.starts_with("PUT /latest/api/token ") {
                return http::Response::text(200, "a-token");
            }
            let path = "GET /latest/meta-data/tags/instance/tether:idle-stop ";
            match served.lock().expect("rule").clone() {
                Some(rule) if request.line.starts_with(path) => http::Response::text(200, rule),
                _ => http::Response::text(404, "Not Found"),
            }
        });
        let tmux = dir.join("tmux");
        std::fs::create_dir_all(&tmux).expect("tmux dir");
        Watchdog {
            script,
            state: dir.join("state"),
            tmux,
            stopped: dir.join("stopped"),
            imds,
            rule,
        }
    }

    fn set_rule(&self, rule: Option<&str>) {
        *self.rule.lock().expect("rule") = rule.map(str::to_string);
    }

    /// Makes the instance look idle since `minutes` ago.
    fn idle_since(&self, minutes: u64) {
        std::fs::create_dir_all(&self.state).expect("state dir");
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_secs();
        std::fs::write(
            self.state.join("last-active"),
            format!("{}\n", now - minutes * 60),
        )
        .expect("last-active");
    }

    /// One minute's check; whether it stopped the instance, and its status line.
    fn check(&self) -> (bool, String) {
        let _ = std::fs::remove_file(&self.stopped);
        let output = Command::new("sh")
            .arg(&self.script)
            .arg("check")
            .env(
                "TETHER_IDLE_IMDS",
                format!("http://127.0.0.1:{}", self.imds),
            )
            .env("TETHER_IDLE_STATE", &self.state)
            .env(
                "TETHER_IDLE_TMUX_DIRS",
                format!("{}/tmux-*/*", self.tmux.display()),
            )
            .env(
                "TETHER_IDLE_SHUTDOWN",
                format!("touch {}", self.stopped.display()),
            )
            .output()
            .expect("run the watchdog");
        assert!(
            output.status.success(),
            "the watchdog failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let status = std::fs::read_to_string(self.state.join("status")).unwrap_or_default();
        (self.stopped.exists(), status.trim().to_string())
    }
}

/// A process that burns one core until dropped; its command line names `name`.
struct Busy(Child);

impl Busy {
    fn start(name: &str) -> Busy {
        Busy(
            Command::new("sh")
                .args(["-c", "while :; do :; done", name])
                .spawn()
                .expect("busy loop"),
        )
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_watchdog_stops_an_idle_instance_and_nothing_else() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("temp dir");
    let watchdog = Watchdog::new(dir.path());
    let sshd = Sshd::start();
    let notebook = TcpListener::bind("127.0.0.1:0").expect("a notebook's port");
    let notebook_port = notebook.local_addr().expect("address").port();
    let rule = format!("after=5 ports={},{notebook_port}", sshd.port);

    // No rule (the tag is absent): nothing happens, however long idle.
    watchdog.set_rule(None);
    watchdog.idle_since(600);
    assert_eq!(watchdog.check(), (false, "no rule".to_string()));

    // Idle past the rule's time: it shuts down.
    watchdog.set_rule(Some(&rule));
    watchdog.idle_since(6);
    let (stopped, status) = watchdog.check();
    assert!(stopped, "{status}");
    assert!(status.contains("reason=stopping"), "{status}");

    // Idle for less than the rule's time: not yet, and the status says how long.
    watchdog.idle_since(3);
    let (stopped, status) = watchdog.check();
    assert!(!stopped, "{status}");
    assert!(status.contains("reason=idle"), "{status}");
    // What `tether show` makes of it.
    let read = tether::idle::IdleStatus::parse(&status).expect("a status tether reads");
    assert_eq!(read.describe(), "idle 3m; stops in about 2m");

    // A tether job's tmux session is use; another session is not.
    let tmux = |args: &[&str]| {
        let status = Command::new("tmux")
            .env("TMUX_TMPDIR", &watchdog.tmux)
            .args(args)
            .status()
            .expect("tmux");
        assert!(status.success(), "tmux {args:?}");
    };
    tmux(&["new-session", "-d", "-s", "mine", "sleep 600"]);
    watchdog.idle_since(6);
    assert!(
        watchdog.check().0,
        "a session of the user's own is not a tether job"
    );
    tmux(&["new-session", "-d", "-s", "tether-lab-train", "sleep 600"]);
    watchdog.idle_since(6);
    let (stopped, status) = watchdog.check();
    assert!(!stopped, "{status}");
    assert!(status.contains("a tether job is running"), "{status}");
    tmux(&["kill-server"]);

    // An ssh session (here `ssh -N`, as a forward holds one) is use.
    let mut login = Command::new("ssh")
        .args([
            "-N",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
        ])
        .args([
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
            "-i",
        ])
        .arg(&sshd.user_key)
        .args(["-p", &sshd.port.to_string()])
        .arg(format!("{}@127.0.0.1", sshd.user))
        .stdin(Stdio::null())
        .spawn()
        .expect("ssh");
    let deadline = Instant::now() + Duration::from_secs(20);
    while sshd.logins() == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    watchdog.idle_since(6);
    let (stopped, status) = watchdog.check();
    let _ = login.kill();
    let _ = login.wait();
    assert!(!stopped, "{status}");
    assert!(
        status.contains(&format!("a connection to port {} is open", sshd.port)),
        "{status}"
    );

    // An open connection to the notebook's port is use; once closed, it is not.
    let client = TcpStream::connect(("127.0.0.1", notebook_port)).expect("connect");
    let (accepted, _) = notebook.accept().expect("accept");
    watchdog.idle_since(6);
    let (stopped, status) = watchdog.check();
    assert!(!stopped, "{status}");
    assert!(
        status.contains(&format!("a connection to port {notebook_port} is open")),
        "{status}"
    );
    drop(client);
    drop(accepted);
    std::thread::sleep(Duration::from_millis(200));
    watchdog.idle_since(6);
    assert!(watchdog.check().0, "a closed connection is not use");

    // A busy Jupyter kernel is use (its CPU time is compared a check apart).
    let kernel = Busy::start("ipykernel_launcher");
    watchdog.idle_since(6);
    watchdog.check();
    std::thread::sleep(Duration::from_millis(2500));
    watchdog.idle_since(6);
    let (stopped, status) = watchdog.check();
    drop(kernel);
    assert!(!stopped, "{status}");
    assert!(status.contains("a Jupyter kernel is busy"), "{status}");

    // With a CPU floor, a busy machine is not idle, whatever else; a quiet one is.
    watchdog.set_rule(Some(&format!("{rule} cpu_below=20")));
    let _ = std::fs::remove_file(watchdog.state.join("cpu"));
    let _ = std::fs::remove_file(watchdog.state.join("kernels"));
    let burners: Vec<Busy> = (0..2).map(|_| Busy::start("burn")).collect();
    watchdog.idle_since(6);
    watchdog.check();
    std::thread::sleep(Duration::from_secs(3));
    watchdog.idle_since(6);
    let (stopped, status) = watchdog.check();
    drop(burners);
    assert!(!stopped, "{status}");
    assert!(status.contains("reason=cpu at"), "{status}");
    let _ = std::fs::remove_file(watchdog.state.join("cpu"));
    watchdog.idle_since(6);
    watchdog.check();
    std::thread::sleep(Duration::from_secs(3));
    watchdog.idle_since(6);
    let (stopped, status) = watchdog.check();
    assert!(stopped, "a quiet machine under the floor stops: {status}");

    // The metadata service silent: the last rule read stands (silence is no new rule).
    watchdog.set_rule(Some(&rule));
    watchdog.check();
    let silent = Watchdog {
        imds: support::closed_port(),
        rule: Arc::new(Mutex::new(None)),
        script: watchdog.script.clone(),
        state: watchdog.state.clone(),
        tmux: watchdog.tmux.clone(),
        stopped: watchdog.stopped.clone(),
    };
    silent.idle_since(6);
    assert!(silent.check().0, "the rule read before still stands");

    // The rule removed: the watchdog is inert.
    watchdog.set_rule(None);
    watchdog.idle_since(600);
    assert_eq!(watchdog.check(), (false, "no rule".to_string()));
}

/// The live instance of project `project`: its id, tags, and how EC2 describes its idle
/// settings (shutdown behaviour, metadata tags) and user data.
struct Launched {
    id: String,
    tags: std::collections::BTreeMap<String, String>,
    shutdown_behaviour: Option<String>,
    metadata_tags: Option<String>,
    user_data: Vec<u8>,
}

fn launched(moto: &Moto, project: &str) -> Launched {
    use base64::Engine;
    block_on(async {
        let ec2 = moto.ec2();
        let out = ec2
            .describe_instances()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("tag:tether:project")
                    .values(project)
                    .build(),
            )
            .send()
            .await
            .expect("instances");
        let instance = out
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .find(|i| i.state().and_then(|s| s.name()).map(|n| n.as_str()) == Some("running"))
            .expect("a running instance")
            .clone();
        let id = instance.instance_id().expect("id").to_string();
        let attribute = |name: aws_sdk_ec2::types::InstanceAttributeName| {
            ec2.describe_instance_attribute()
                .instance_id(&id)
                .attribute(name)
                .send()
        };
        let shutdown =
            attribute(aws_sdk_ec2::types::InstanceAttributeName::InstanceInitiatedShutdownBehavior)
                .await
                .expect("shutdown behaviour");
        let user_data = attribute(aws_sdk_ec2::types::InstanceAttributeName::UserData)
            .await
            .expect("user data");
        Launched {
            tags: instance
                .tags()
                .iter()
                .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
                .collect(),
            shutdown_behaviour: shutdown
                .instance_initiated_shutdown_behavior()
                .and_then(|v| v.value())
                .map(str::to_string),
            metadata_tags: instance
                .metadata_options()
                .and_then(|m| m.instance_metadata_tags())
                .map(|t| t.as_str().to_string()),
            user_data: user_data
                .user_data()
                .and_then(|v| v.value())
                .map(|v| {
                    base64::engine::general_purpose::STANDARD
                        .decode(v)
                        .expect("base64 user data")
                })
                .unwrap_or_default(),
            id,
        }
    })
}

/// The project's idle alarm of instance `worker`, as the SDK reads it back.
struct AlarmSeen {
    instance_id: Option<String>,
    namespace: String,
    metric: String,
    statistic: String,
    comparison: String,
    threshold: f64,
    period: i32,
    evaluation_periods: i32,
    actions: Vec<String>,
    tags: std::collections::BTreeMap<String, String>,
}

fn idle_alarm(cloudwatch: &support::cloudwatch::CloudWatch) -> Option<AlarmSeen> {
    block_on(async {
        let client = cloudwatch.client();
        let out = client
            .describe_alarms()
            .alarm_names("tether-idle-worker-idle")
            .send()
            .await
            .expect("describe alarms");
        let alarm = out.metric_alarms().first()?.clone();
        let tags = client
            .list_tags_for_resource()
            .resource_arn(alarm.alarm_arn().expect("arn"))
            .send()
            .await
            .expect("tags");
        Some(AlarmSeen {
            instance_id: alarm
                .dimensions()
                .iter()
                .find(|d| d.name() == Some("InstanceId"))
                .and_then(|d| d.value())
                .map(str::to_string),
            namespace: alarm.namespace().unwrap_or_default().to_string(),
            metric: alarm.metric_name().unwrap_or_default().to_string(),
            statistic: alarm
                .statistic()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            comparison: alarm
                .comparison_operator()
                .map(|c| c.as_str().to_string())
                .unwrap_or_default(),
            threshold: alarm.threshold().unwrap_or_default(),
            period: alarm.period().unwrap_or_default(),
            evaluation_periods: alarm.evaluation_periods().unwrap_or_default(),
            actions: alarm.alarm_actions().to_vec(),
            tags: tags
                .tags()
                .iter()
                .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
                .collect(),
        })
    })
}

/// The parts of a MIME archive as cloud-init takes it apart (Python's `email`, which
/// cloud-init uses): content type and decoded payload of each.
fn mime_parts(archive: &[u8]) -> Vec<(String, String)> {
    let mut python = Command::new(support::venv_python())
        .args([
            "-c",
            "import email, json, sys\n\
             message = email.message_from_bytes(sys.stdin.buffer.read())\n\
             assert message.is_multipart(), 'not an archive'\n\
             print(json.dumps([[p.get_content_type(), p.get_payload(decode=True).decode()] for p in message.walk() if not p.is_multipart()]))",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python");
    python
        .stdin
        .take()
        .expect("stdin")
        .write_all(archive)
        .expect("write archive");
    let output = python.wait_with_output().expect("python output");
    assert!(output.status.success(), "python could not read the archive");
    serde_json::from_slice(&output.stdout).expect("parts as JSON")
}

#[test]
fn an_idle_rule_launches_the_watchdog_and_changes_in_place() {
    let _serial = serial();
    let moto = Moto::start();
    let cloudwatch = support::cloudwatch::serve();
    let tether = |args: &[&str]| {
        let mut env = moto.env();
        env.push((
            "AWS_ENDPOINT_URL_CLOUDWATCH".into(),
            cloudwatch.endpoint.clone(),
        ));
        support::run_tether(moto.dir.path(), &env, args)
    };
    let boot = "#!/bin/sh\necho hello > /tmp/hello\n";
    moto.write("boot.sh", boot);
    let spec = |idle: &str| {
        format!(
            "project: idle\nregion: us-east-1\ninstances:\n  worker:\n    ami: ami-1e749f67\n    type: t3.micro\n    user_data: boot.sh\n{idle}ssh:\n  config_file: ./ssh-config\n  hosts:\n    lab:\n      instance: worker\n      port: 2222\n      forward: [8888, {{local: 16006, remote: 6006}}]\n"
        )
    };
    // Launched without a rule: no watchdog, and the spec's user data as it is.
    moto.write("tether.yaml", &spec(""));
    tether(&["apply", "--auto-approve"]).expect_code(0);
    let first = launched(&moto, "idle");
    assert_eq!(first.user_data, boot.as_bytes());
    assert!(!first.tags.contains_key("tether:idle-stop"));
    assert_eq!(cloudwatch.count(), 0);

    // A rule needs the watchdog, installed at launch only: the plan says so.
    moto.write("tether.yaml", &spec("    idle_stop: 30m\n"));
    tether(&["plan", "--detailed-exitcode"])
        .expect_code(2)
        .expect_stderr("instance.worker  (replace: idle_stop")
        .expect_stderr("the idle watchdog is installed at launch")
        .expect_stderr("worker: stops after 30m idle")
        .expect_stderr("+ idle_alarm.worker  (create)");
    tether(&["apply", "--auto-approve"])
        .expect_code(0)
        .expect_stderr("ssh_config.aliases  (update in place: an instance it reaches is replaced");
    let second = launched(&moto, "idle");
    assert_ne!(second.id, first.id);
    assert_eq!(
        second.tags.get("tether:idle-stop").map(String::as_str),
        Some("after=30 ports=2222,6006,8888")
    );
    assert_eq!(second.shutdown_behaviour.as_deref(), Some("stop"));
    assert_eq!(second.metadata_tags.as_deref(), Some("enabled"));
    // The watchdog's installer first, then the spec's own script, whole.
    let parts = mime_parts(&second.user_data);
    assert_eq!(parts.len(), 2, "{parts:?}");
    assert_eq!(parts[0].0, "text/x-shellscript");
    assert!(parts[0]
        .1
        .contains("systemctl enable --now tether-idle.timer"));
    assert!(parts[0].1.contains("tags/instance/tether:idle-stop"));
    assert_eq!(
        parts[1],
        ("text/x-shellscript".to_string(), boot.to_string())
    );
    tether(&["show"]).expect_code(0);
    let shown = tether(&["show"]);
    assert!(
        shown.stdout.contains("  idle     stops after 30m idle"),
        "{}",
        shown.stdout
    );
    // The backstop: an alarm on the new instance's CPU that stops it.
    let alarm = idle_alarm(&cloudwatch).expect("the idle alarm");
    assert_eq!(alarm.instance_id.as_deref(), Some(second.id.as_str()));
    assert_eq!(
        (alarm.namespace.as_str(), alarm.metric.as_str()),
        ("AWS/EC2", "CPUUtilization")
    );
    assert_eq!(
        (alarm.statistic.as_str(), alarm.comparison.as_str()),
        ("Average", "LessThanThreshold")
    );
    assert_eq!(
        (alarm.threshold, alarm.period, alarm.evaluation_periods),
        (2.0, 300, 24)
    );
    assert_eq!(alarm.actions, ["arn:aws:automate:us-east-1:ec2:stop"]);
    assert_eq!(
        alarm.tags.get("tether:project").map(String::as_str),
        Some("idle")
    );
    // The alias followed the new instance.
    let config = std::fs::read_to_string(moto.dir.path().join("ssh-config")).expect("config");
    assert!(
        config.contains(&format!("HostKeyAlias {}", second.id)),
        "{config}"
    );
    tether(&["plan", "--detailed-exitcode"])
        .expect_code(0)
        .expect_stderr("No changes.");

    // A changed rule is its tag, in place; so is a removed one.
    moto.write(
        "tether.yaml",
        &spec("    idle_stop: {after: 2h, cpu_below: 5}\n"),
    );
    tether(&["apply", "--auto-approve"])
        .expect_code(0)
        .expect_stderr("~ instance.worker  (update in place)");
    let third = launched(&moto, "idle");
    assert_eq!(third.id, second.id);
    let alarm = idle_alarm(&cloudwatch).expect("the idle alarm");
    assert_eq!((alarm.threshold, alarm.evaluation_periods), (5.0, 96));
    assert_eq!(
        third.tags.get("tether:idle-stop").map(String::as_str),
        Some("after=120 cpu_below=5 ports=2222,6006,8888")
    );
    moto.write("tether.yaml", &spec(""));
    tether(&["apply", "--auto-approve"]).expect_code(0);
    let fourth = launched(&moto, "idle");
    assert_eq!(fourth.id, second.id);
    assert!(!fourth.tags.contains_key("tether:idle-stop"));
    assert!(
        idle_alarm(&cloudwatch).is_none(),
        "the alarm goes with the rule"
    );
    assert_eq!(
        fourth.tags.get("tether:idle-watchdog").map(String::as_str),
        Some("1")
    );
    tether(&["plan", "--detailed-exitcode"]).expect_code(0);

    // Destroy takes the alarm with the instance.
    tether(&["apply", "--auto-approve"]).expect_code(0);
    moto.write("tether.yaml", &spec("    idle_stop: 30m\n"));
    tether(&["apply", "--auto-approve"]).expect_code(0);
    assert!(idle_alarm(&cloudwatch).is_some());
    tether(&["destroy", "--auto-approve"])
        .expect_code(0)
        .expect_stderr("- idle_alarm.worker  (delete");
    assert_eq!(cloudwatch.count(), 0);
}

/// A server on loopback that answers each connection's first line with `notebook: <line>`.
fn notebook_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buffer = [0u8; 256];
            let read = stream.read(&mut buffer).unwrap_or(0);
            let line = String::from_utf8_lossy(&buffer[..read]).trim().to_string();
            let _ = stream.write_all(format!("notebook: {line}\n").as_bytes());
        }
    });
    port
}

#[test]
fn a_forward_reaches_the_instances_port_through_ssh_alone() {
    let _serial = serial();
    let moto = Moto::start();
    let sshd = Sshd::start();
    let project = project("forward");
    let _cleanup = Cleanup(project.clone());
    moto.write("ssh-config", USER_SSH_CONFIG);
    let remote = notebook_server();
    let local = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let spec = format!(
        "project: {project}\nregion: us-east-1\ninstances:\n  worker: {{ami: ami-1e749f67, type: t3.micro, host_key: trust_on_first_use, idle_stop: 30m}}\nssh:\n  config_file: ./ssh-config\n  hosts:\n{}      forward: [{{local: {local}, remote: {remote}}}]\n",
        host("lab", "worker", &sshd)
    );
    moto.write("tether.yaml", &spec);
    let cloudwatch = support::cloudwatch::serve();
    let status = moto.write(
        "idle-status",
        "after_minutes=30 cpu_below= idle_seconds=600 reason=idle\n",
    );
    let mut env = env_for(&moto, &["worker"]);
    env.push((
        "AWS_ENDPOINT_URL_CLOUDWATCH".into(),
        cloudwatch.endpoint.clone(),
    ));
    env.push((
        "TETHER_TEST_IDLE_STATUS".into(),
        status.display().to_string(),
    ));
    support::run_tether(moto.dir.path(), &env, &["apply", "--auto-approve"]).expect_code(0);

    // `show` reads what the watchdog says, over the alias.
    let shown = support::run_tether(moto.dir.path(), &env, &["show"]).expect_code(0);
    assert!(
        shown.stdout.contains(
            "  idle     stops after 30m idle\n           now: idle 10m; stops in about 20m\n"
        ),
        "{}",
        shown.stdout
    );
    // What the instance says is its text: one line, escaped, never a forged line.
    std::fs::write(
        &status,
        "after_minutes=30 cpu_below= idle_seconds=0 reason=busy\ninstance.other  i-0 running\x1b[2J\n",
    )
    .expect("status");
    let shown = support::run_tether(moto.dir.path(), &env, &["show"]).expect_code(0);
    assert!(
        shown
            .stdout
            .contains("now: in use: busy\\ninstance.other  i-0 running\\x1b[2J\n"),
        "{}",
        shown.stdout
    );
    assert!(!shown.stdout.contains('\x1b'), "{}", shown.stdout);

    // ssh reads the forward from the alias block, bound to loopback only.
    let resolved = Command::new("ssh")
        .arg("-G")
        .arg("-F")
        .arg(moto.dir.path().join("ssh-config"))
        .arg("lab")
        .output()
        .expect("ssh -G");
    let resolved = String::from_utf8_lossy(&resolved.stdout).to_string();
    assert!(
        resolved
            .lines()
            .any(|l| l == format!("localforward [127.0.0.1]:{local} [localhost]:{remote}")),
        "{resolved}"
    );

    // `tether ssh lab --forward` verifies the host, then holds the forward until stopped.
    let mut forward = Command::new(env!("CARGO_BIN_EXE_tether"))
        .args(["ssh", "lab", "--forward"])
        .current_dir(moto.dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("tether ssh --forward");
    let deadline = Instant::now() + Duration::from_secs(60);
    let answer = loop {
        if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", local)) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            if stream.write_all(b"hello\n").is_ok() {
                let mut answer = String::new();
                let _ = stream.read_to_string(&mut answer);
                if !answer.is_empty() {
                    break answer;
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "the forward never answered: {:?}",
            forward.try_wait()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let _ = forward.kill();
    let _ = forward.wait();
    assert_eq!(answer, "notebook: hello\n");
    assert!(sshd.logins() >= 1);
}
