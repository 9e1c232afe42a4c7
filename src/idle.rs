//! Stopping an idle instance (`instances.<name>.idle_stop`): the rule as the instance's
//! tag, and the watchdog tether installs at launch through cloud-init, merged with the
//! spec's own user data (a MIME multi-part archive, which cloud-init takes apart), never
//! in its place. Pure: the watchdog's text is rendered, not run.
//!
//! The watchdog (`idle_watchdog.sh`) reads the rule from the instance metadata every
//! minute, so a changed or removed rule takes effect in place; an instance launched
//! without the watchdog gets it only by a new launch.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// The instance tag holding the rule, read by the watchdog from the instance metadata.
pub const TAG_IDLE_STOP: &str = "tether:idle-stop";

/// The instance tag saying the watchdog was installed at launch (its version).
pub const TAG_IDLE_WATCHDOG: &str = "tether:idle-watchdog";

/// The watchdog's version: a new one is installed by new launches only.
pub const WATCHDOG_VERSION: &str = "1";

/// Jupyter's port: a connection to it counts as use, forwarded or not.
pub const JUPYTER_PORT: u16 = 8888;

/// When an instance counts as idle, and for how long before it stops.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdleRule {
    /// Idle this many minutes, then stop.
    pub after_minutes: u32,
    /// Idle also needs the average CPU over those minutes below this percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_below: Option<u8>,
    /// Ports whose established connections are use: sshd's (every ssh session and
    /// forward) and Jupyter's.
    pub ports: BTreeSet<u16>,
}

impl IdleRule {
    /// The rule as its tag holds it: `after=30 cpu_below=5 ports=22,8888`.
    pub fn tag_value(&self) -> String {
        let mut words = vec![format!("after={}", self.after_minutes)];
        if let Some(cpu) = self.cpu_below {
            words.push(format!("cpu_below={cpu}"));
        }
        let ports: Vec<String> = self.ports.iter().map(u16::to_string).collect();
        words.push(format!("ports={}", ports.join(",")));
        words.join(" ")
    }

    /// The rule a tag holds; `None` for a value tether did not write.
    pub fn parse(value: &str) -> Option<IdleRule> {
        let mut after_minutes = None;
        let mut cpu_below = None;
        let mut ports = BTreeSet::new();
        for word in value.split_whitespace() {
            let (key, value) = word.split_once('=')?;
            match key {
                "after" => after_minutes = Some(value.parse().ok()?),
                "cpu_below" => cpu_below = Some(value.parse().ok()?),
                "ports" => {
                    for port in value.split(',').filter(|p| !p.is_empty()) {
                        ports.insert(port.parse().ok()?);
                    }
                }
                _ => return None,
            }
        }
        Some(IdleRule {
            after_minutes: after_minutes?,
            cpu_below,
            ports,
        })
    }

    /// The rule in words, for plans and `tether show`.
    pub fn describe(&self) -> String {
        let after = minutes_text(self.after_minutes);
        match self.cpu_below {
            Some(cpu) => format!("stops after {after} idle (and CPU below {cpu}%)"),
            None => format!("stops after {after} idle"),
        }
    }
}

/// Where the watchdog writes its status line on the instance (readable by the login user).
pub const STATUS_FILE: &str = "/var/lib/tether-idle/status";

/// The watchdog's last status, as `tether show` reads it over ssh.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IdleStatus {
    /// How long nobody has used the instance.
    pub idle_seconds: u64,
    /// The rule's time.
    pub after_minutes: u32,
    /// `idle`, `stopping`, or what uses it (`a tether job is running`, ...).
    pub reason: String,
}

impl IdleStatus {
    /// Parses the watchdog's status line; `None` for anything else (`no rule`, no status
    /// yet, a file someone else wrote).
    pub fn parse(line: &str) -> Option<IdleStatus> {
        let line = line.trim();
        let (fields, reason) = line.split_once(" reason=")?;
        let mut after_minutes = None;
        let mut idle_seconds = None;
        for word in fields.split_whitespace() {
            match word.split_once('=')? {
                ("after_minutes", value) => after_minutes = Some(value.parse().ok()?),
                ("idle_seconds", value) => idle_seconds = Some(value.parse().ok()?),
                ("cpu_below", _) => {}
                _ => return None,
            }
        }
        Some(IdleStatus {
            idle_seconds: idle_seconds?,
            after_minutes: after_minutes?,
            reason: reason.to_string(),
        })
    }

    /// In words: `idle 6m; stops in 24m`, or `in use: a tether job is running`.
    pub fn describe(&self) -> String {
        let idle_minutes = u32::try_from(self.idle_seconds / 60).unwrap_or(u32::MAX);
        match self.reason.as_str() {
            "idle" => format!(
                "idle {}; stops in about {}",
                minutes_text(idle_minutes),
                minutes_text(self.after_minutes.saturating_sub(idle_minutes).max(1))
            ),
            "stopping" => format!("idle {}; stopping", minutes_text(idle_minutes)),
            reason => format!("in use: {reason}"),
        }
    }
}

/// Minutes as a person writes them: `30m`, `2h`, `1h30m`.
pub fn minutes_text(minutes: u32) -> String {
    match (minutes / 60, minutes % 60) {
        (0, m) => format!("{m}m"),
        (h, 0) => format!("{h}h"),
        (h, m) => format!("{h}h{m}m"),
    }
}

/// What the watchdog's paths and shutdown are: fixed in a release build; in a debug build
/// each may be replaced through the environment, so the tests run the real script against
/// real conditions without stopping the machine they run on.
fn hooks() -> [(&'static str, &'static str); 4] {
    if cfg!(debug_assertions) {
        [
            ("@IMDS@", "${TETHER_IDLE_IMDS:-http://169.254.169.254}"),
            ("@STATE@", "${TETHER_IDLE_STATE:-/var/lib/tether-idle}"),
            ("@TMUX_DIRS@", "${TETHER_IDLE_TMUX_DIRS:-/tmp/tmux-*/*}"),
            ("@SHUTDOWN@", "${TETHER_IDLE_SHUTDOWN:-shutdown -h now}"),
        ]
    } else {
        [
            ("@IMDS@", "http://169.254.169.254"),
            ("@STATE@", "/var/lib/tether-idle"),
            ("@TMUX_DIRS@", "/tmp/tmux-*/*"),
            ("@SHUTDOWN@", "shutdown -h now"),
        ]
    }
}

/// The watchdog script, `/usr/local/sbin/tether-idle` on the instance.
pub fn watchdog_script() -> String {
    let mut script = include_str!("idle_watchdog.sh").to_string();
    for (placeholder, value) in hooks() {
        script = script.replace(placeholder, value);
    }
    script
}

/// The part cloud-init runs once, at the instance's first boot: installs the watchdog and
/// a systemd timer that runs it every minute, from boot on (so it survives reboots and
/// stops).
pub fn install_script() -> String {
    let script = watchdog_script();
    format!(
        "#!/bin/sh\n\
         # tether: installs the idle watchdog (instances.<name>.idle_stop).\n\
         set -eu\n\
         mkdir -p /usr/local/sbin\n\
         cat > /usr/local/sbin/tether-idle <<'TETHER_IDLE_SCRIPT'\n\
         {script}TETHER_IDLE_SCRIPT\n\
         chmod 755 /usr/local/sbin/tether-idle\n\
         cat > /etc/systemd/system/tether-idle.service <<'TETHER_IDLE_UNIT'\n\
         [Unit]\n\
         Description=tether idle watchdog: stops this instance when nobody uses it\n\
         [Service]\n\
         Type=oneshot\n\
         ExecStart=/usr/local/sbin/tether-idle check\n\
         TETHER_IDLE_UNIT\n\
         cat > /etc/systemd/system/tether-idle.timer <<'TETHER_IDLE_UNIT'\n\
         [Unit]\n\
         Description=tether idle watchdog, every minute\n\
         [Timer]\n\
         OnBootSec=1min\n\
         OnUnitActiveSec=1min\n\
         AccuracySec=5s\n\
         [Install]\n\
         WantedBy=timers.target\n\
         TETHER_IDLE_UNIT\n\
         systemctl daemon-reload\n\
         systemctl enable --now tether-idle.timer\n"
    )
}

/// The MIME type cloud-init gives user data that starts as `content` does; `None` for
/// content that cannot sit in an archive beside tether's part (an archive of its own, or
/// compressed data, which cloud-init takes apart only at the top).
pub fn part_type(content: &[u8]) -> Option<&'static str> {
    const STARTS: [(&str, &str); 7] = [
        ("#cloud-config", "text/cloud-config"),
        ("#!", "text/x-shellscript"),
        ("#include", "text/x-include-url"),
        ("#cloud-boothook", "text/cloud-boothook"),
        ("#part-handler", "text/part-handler"),
        ("## template: jinja", "text/jinja2"),
        ("#upstart-job", "text/upstart-job"),
    ];
    if content.starts_with(&[0x1f, 0x8b]) {
        return None;
    }
    let head = String::from_utf8_lossy(&content[..content.len().min(64)]).to_ascii_lowercase();
    if head.starts_with("content-type:") || head.starts_with("mime-version:") {
        return None;
    }
    let found = STARTS
        .iter()
        .find(|(start, _)| content.starts_with(start.as_bytes()));
    // Anything else is data for the user's own software: cloud-init leaves it alone.
    Some(found.map_or("text/plain", |(_, kind)| kind))
}

/// The user data of an instance with the watchdog: a MIME multi-part archive of tether's
/// install script and, after it, the spec's own user data as it is (base64 in its part, so
/// any bytes pass). The same input gives the same bytes, so every operator plans alike.
/// `own` must have a `part_type`; the spec refuses others.
pub fn user_data(own: Option<&[u8]>) -> Vec<u8> {
    use base64::Engine;
    let install = install_script();
    let mut boundary = format!(
        "==tether-{}==",
        &crate::hash::sha256_hex(own.unwrap_or_default())[..16]
    );
    // Only tether's own part is in the clear: the boundary must not be in it.
    while install.contains(&boundary) {
        boundary.insert(2, 'x');
    }
    let mut text = format!(
        "Content-Type: multipart/mixed; boundary=\"{boundary}\"\nMIME-Version: 1.0\n\n\
         --{boundary}\nContent-Type: text/x-shellscript; charset=\"us-ascii\"\n\
         MIME-Version: 1.0\nContent-Disposition: attachment; filename=\"tether-idle-install.sh\"\n\n\
         {install}"
    );
    if let Some(own) = own {
        let kind = part_type(own).unwrap_or("text/plain");
        let encoded = base64::engine::general_purpose::STANDARD.encode(own);
        let lines: Vec<&str> = encoded
            .as_bytes()
            .chunks(76)
            .map(|line| std::str::from_utf8(line).expect("base64 is ASCII"))
            .collect();
        text.push_str(&format!(
            "\n--{boundary}\nContent-Type: {kind}; charset=\"utf-8\"\nMIME-Version: 1.0\n\
             Content-Transfer-Encoding: base64\nContent-Disposition: attachment; filename=\"user-data\"\n\n{}\n",
            lines.join("\n")
        ));
    }
    text.push_str(&format!("\n--{boundary}--\n"));
    text.into_bytes()
}

/// The most user data EC2 takes (before base64).
pub const USER_DATA_LIMIT: usize = 16 * 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rule_survives_its_tag() {
        let rule = IdleRule {
            after_minutes: 30,
            cpu_below: Some(5),
            ports: [22, 8888].into(),
        };
        assert_eq!(rule.tag_value(), "after=30 cpu_below=5 ports=22,8888");
        assert_eq!(IdleRule::parse(&rule.tag_value()), Some(rule));
        assert_eq!(IdleRule::parse("after=30 mine=1"), None);
        assert_eq!(IdleRule::parse("cpu_below=5"), None);
    }

    #[test]
    fn the_watchdogs_status_reads_as_words() {
        let idle = IdleStatus::parse("after_minutes=30 cpu_below= idle_seconds=360 reason=idle\n")
            .expect("a status");
        assert_eq!(idle.describe(), "idle 6m; stops in about 24m");
        let busy = IdleStatus::parse(
            "after_minutes=30 cpu_below=5 idle_seconds=0 reason=a tether job is running",
        )
        .expect("a status");
        assert_eq!(busy.describe(), "in use: a tether job is running");
        assert_eq!(IdleStatus::parse("no rule"), None);
        assert_eq!(
            IdleStatus::parse("after_minutes=x idle_seconds=1 reason=idle"),
            None
        );
    }

    #[test]
    fn the_users_data_rides_along_whole_and_typed() {
        let own = b"#cloud-config\npackages: [tmux]\n";
        let merged = String::from_utf8(user_data(Some(own))).expect("text");
        assert!(merged.starts_with("Content-Type: multipart/mixed; boundary=\"==tether-"));
        assert!(merged.contains("Content-Type: text/x-shellscript"));
        assert!(merged.contains("Content-Type: text/cloud-config; charset=\"utf-8\""));
        assert!(merged.contains("systemctl enable --now tether-idle.timer"));
        // The same input, the same bytes: two operators plan the same launch.
        assert_eq!(user_data(Some(own)), merged.as_bytes());
        assert!(user_data(None).len() < USER_DATA_LIMIT);
        assert_eq!(
            part_type(b"#!/bin/bash\necho hi"),
            Some("text/x-shellscript")
        );
        assert_eq!(part_type(b"plain words"), Some("text/plain"));
        assert_eq!(part_type(&[0x1f, 0x8b, 8, 0]), None);
        assert_eq!(
            part_type(b"Content-Type: multipart/mixed; boundary=x"),
            None
        );
    }
}
