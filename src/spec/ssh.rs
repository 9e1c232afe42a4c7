//! The `ssh:` section: the SSH aliases tether keeps in the user's OpenSSH config, one per
//! declared host, each reaching a declared instance.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{Checker, InstanceSpec, KeyPairSpec};
use crate::diagnostic::Location;
use crate::ssh::config::{unsafe_value, Forward, ValueKind};

/// The config file when the spec names none.
pub const DEFAULT_SSH_CONFIG: &str = "~/.ssh/config";

/// The `ssh:` section.
#[derive(Clone, Debug, PartialEq)]
pub struct SshSpec {
    /// As written (`~` not expanded).
    pub config_file: String,
    pub hosts: BTreeMap<String, HostSpec>,
    pub location: Location,
}

/// One alias.
#[derive(Clone, Debug, PartialEq)]
pub struct HostSpec {
    pub alias: String,
    pub instance: String,
    pub user: String,
    pub port: u16,
    /// As written, or the instance's generated key file; `None` leaves it to ssh.
    pub identity_file: Option<String>,
    /// Ports forwarded through the alias's connections (`LocalForward`).
    pub forwards: Vec<Forward>,
    /// Take over the user's own `Host <alias>` entry: apply removes it from the config
    /// file and tether's block holds the alias from then on.
    pub adopt: bool,
    pub location: Location,
}

/// SSH aliases, kept in a marked block of an ssh config file (nothing outside it is
/// touched); each follows its instance's current address and verified host key.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Ssh")]
pub(super) struct RawSsh {
    /// The ssh config file; default `~/.ssh/config`.
    #[serde(default)]
    config_file: Option<String>,
    /// Aliases by name: `ssh <alias>` reaches the instance.
    #[serde(default)]
    hosts: BTreeMap<String, RawHost>,
}

/// One alias.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Host")]
struct RawHost {
    /// The declared instance it reaches.
    instance: String,
    /// The login user; default `ec2-user`.
    #[serde(default)]
    #[schemars(example = &"ec2-user")]
    user: Option<String>,
    /// sshd's port; default 22.
    #[serde(default)]
    #[schemars(range(min = 1, max = 65535))]
    port: Option<i64>,
    /// The private key; default the instance's key pair's `private_key_file`.
    #[serde(default)]
    identity_file: Option<String>,
    /// Ports to forward from this machine's loopback to the instance's, through ssh
    /// (`LocalForward`): `[8888]` makes a notebook listening on the instance's port 8888
    /// reachable at `localhost:8888` while `ssh <alias>` (or `ssh -N <alias>`, or
    /// `tether ssh <alias> --forward`) runs, with no ingress rule and no token in plain
    /// HTTP on the internet.
    #[serde(default)]
    forward: Vec<RawForward>,
    /// Take over your own `Host <alias>` entry of the config file (one naming this alias
    /// alone): apply removes its lines, and tether's block holds the alias from then on.
    /// Without it such an entry is refused, since ssh would follow it instead.
    #[serde(default)]
    adopt: bool,
}

/// A forwarded port: the same number at both ends, or `{local, remote}`.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
#[schemars(rename = "Forward")]
enum RawForward {
    /// The port, the same here and on the instance.
    Port(#[schemars(range(min = 1, max = 65535))] i64),
    /// Different ports at the two ends.
    Ports {
        /// The port on this machine's loopback address.
        #[schemars(range(min = 1, max = 65535))]
        local: i64,
        /// The port on the instance (reached as its `localhost`).
        #[schemars(range(min = 1, max = 65535))]
        remote: i64,
    },
}

/// Why `alias` cannot be an alias, if it cannot. Every teammate's ssh config gets it, so it
/// must not be able to mean a real host: a `.` makes a DNS name (`github.com`), digits
/// alone an address (`ssh 2130706433` is 127.0.0.1), and `localhost` is this machine.
fn alias_problem(alias: &str) -> Option<&'static str> {
    if alias.is_empty() {
        return Some("it is empty");
    }
    if !alias
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Some("it holds a character ssh would take for a pattern or a separator");
    }
    if alias.contains('.') {
        return Some("with a `.` it is a DNS name, and every `ssh` to that host would reach the lab instance instead");
    }
    if alias
        .chars()
        .all(|c| c.is_ascii_digit() || c == '-' || c == '_')
    {
        return Some("without a letter it can be read as an address");
    }
    if alias.eq_ignore_ascii_case("localhost") {
        return Some("it names this machine");
    }
    None
}

impl Checker<'_> {
    pub(super) fn check_ssh(
        &mut self,
        raw: Option<RawSsh>,
        instances: &BTreeMap<String, InstanceSpec>,
        key_pairs: &BTreeMap<String, KeyPairSpec>,
    ) -> Option<SshSpec> {
        let raw = raw?;
        let mut hosts = BTreeMap::new();
        for (alias, host) in raw.hosts {
            let location = self.key_location(&["ssh", "hosts", alias.as_str()]);
            if let Some(problem) = alias_problem(&alias) {
                self.error(
                    location.clone(),
                    format!("invalid SSH alias `{alias}`: {problem}"),
                    Some(
                        "aliases are letters, digits, `-` and `_`, with a letter among them, and no `.`: a name that cannot mean a real host, such as `lab-worker`"
                            .into(),
                    ),
                );
            }
            let instance = instances.get(&host.instance);
            if instance.is_none() {
                let at = self.value_location(&["ssh", "hosts", alias.as_str(), "instance"]);
                self.error(
                    at,
                    format!(
                        "alias `{alias}` names instance `{}`, which is not declared",
                        host.instance
                    ),
                    Some(format!(
                        "declare `{}` under `instances`, or fix the name",
                        host.instance
                    )),
                );
            }
            let port = match host.port {
                None => 22,
                Some(port) => match u16::try_from(port) {
                    Ok(port) if port > 0 => port,
                    _ => {
                        let at = self.value_location(&["ssh", "hosts", alias.as_str(), "port"]);
                        self.error(at, format!("port {port} is outside 1-65535"), None);
                        22
                    }
                },
            };
            // Values go into the user's ssh config: nothing in them may start a directive
            // or an option of its own.
            let checks = [
                ("user", host.user.as_deref(), ValueKind::Word),
                (
                    "identity_file",
                    host.identity_file.as_deref(),
                    ValueKind::Path,
                ),
            ];
            for (field, value, kind) in checks {
                let Some(problem) = value.and_then(|v| unsafe_value(v, kind)) else {
                    continue;
                };
                let at = self.value_location(&["ssh", "hosts", alias.as_str(), field]);
                self.error(
                    at,
                    format!("`{field}` of alias `{alias}` cannot go into an ssh config: {problem}"),
                    Some("give a plain value: one word for `user`, a path without `\"` or `%` for `identity_file`".into()),
                );
            }
            let forwards = self.check_forwards(&alias, host.forward);
            // The instance's key pair file, when tether generated it.
            let identity_file = host.identity_file.or_else(|| {
                let key = key_pairs.get(instance?.key_pair.as_ref()?)?;
                key.private_key_file().map(str::to_string)
            });
            hosts.insert(
                alias.clone(),
                HostSpec {
                    alias,
                    instance: host.instance,
                    user: host.user.unwrap_or_else(|| "ec2-user".to_string()),
                    port,
                    identity_file,
                    forwards,
                    adopt: host.adopt,
                    location,
                },
            );
        }
        Some(SshSpec {
            config_file: raw
                .config_file
                .unwrap_or_else(|| DEFAULT_SSH_CONFIG.to_string()),
            hosts,
            location: self.key_location(&["ssh"]),
        })
    }

    /// `forward:` of one alias: ports in range, a local port only once, none that only
    /// root may bind here.
    fn check_forwards(&mut self, alias: &str, raw: Vec<RawForward>) -> Vec<Forward> {
        let mut forwards: Vec<Forward> = Vec::new();
        for (index, forward) in raw.into_iter().enumerate() {
            let index = index.to_string();
            let at = self.value_location(&["ssh", "hosts", alias, "forward", &index]);
            let (local, remote) = match forward {
                RawForward::Port(port) => (port, port),
                RawForward::Ports { local, remote } => (local, remote),
            };
            let (Ok(local), Ok(remote)) = (u16::try_from(local), u16::try_from(remote)) else {
                self.error(at, "a forwarded port is outside 1-65535".into(), None);
                continue;
            };
            if local == 0 || remote == 0 {
                self.error(at, "a forwarded port is outside 1-65535".into(), None);
                continue;
            }
            if local < 1024 {
                self.error(
                    at,
                    format!("alias `{alias}` forwards local port {local}, which only root may listen on"),
                    Some(format!("forward a port from 1024 up: `{{local: 8{local:03}, remote: {remote}}}`")),
                );
                continue;
            }
            if forwards.iter().any(|f| f.local == local) {
                self.error(
                    at,
                    format!("alias `{alias}` forwards local port {local} twice"),
                    Some(
                        "each local port can carry one forward: give the second another `local`"
                            .into(),
                    ),
                );
                continue;
            }
            forwards.push(Forward { local, remote });
        }
        forwards
    }
}
