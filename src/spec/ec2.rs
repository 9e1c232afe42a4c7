//! The `key_pairs:` and `security_groups:` sections of the spec, and what EC2 would reject
//! in them, checked before any call: names, CIDRs, ports, and SSH or Jupyter open to the
//! world.

use std::collections::BTreeMap;

use ipnet::IpNet;
use serde::Deserialize;

use super::Checker;
use crate::diagnostic::Location;

/// Ports that must not be open to the whole internet without `allow_world: true`.
const SENSITIVE_PORTS: [(u16, &str); 2] = [(22, "SSH"), (8888, "Jupyter")];

/// One entry of `key_pairs`: AWS generates the key (tether writes the private half to
/// `private_key_file` once), or an existing public key is imported.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyPairSpec {
    pub name: String,
    pub source: KeySource,
    pub adopt: bool,
    pub location: Location,
}

impl KeyPairSpec {
    /// Where tether writes the private key (as written, `~` unexpanded), when AWS
    /// generates the pair; an imported key's private half is the user's own business.
    pub fn private_key_file(&self) -> Option<&str> {
        match &self.source {
            KeySource::Generate { private_key_file } => Some(private_key_file),
            KeySource::Import { .. } => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySource {
    /// AWS generates the pair; the private key is written here (as written, `~` unexpanded).
    Generate { private_key_file: String },
    /// The public key in this file is imported.
    Import { public_key_file: String },
}

/// One entry of `security_groups`.
#[derive(Clone, Debug, PartialEq)]
pub struct SecurityGroupSpec {
    pub name: String,
    pub description: String,
    pub ingress: Vec<IngressSpec>,
    pub adopt: bool,
    pub location: Location,
}

/// One ingress rule: one port, one protocol, one CIDR.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IngressSpec {
    pub protocol: Protocol,
    pub port: u16,
    /// Normalised (`203.0.113.7/32`).
    pub cidr: String,
}

#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Deserialize,
    serde::Serialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

/// An EC2 key pair. Unless `public_key_file` imports one, EC2 makes it and tether keeps
/// its private key as a secret.
#[derive(Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "KeyPair")]
pub(super) struct RawKeyPair {
    /// Where this machine keeps a copy of the private key (mode 0400), e.g.
    /// `~/.ssh/lab.pem`.
    #[serde(default)]
    #[schemars(example = &"~/.ssh/lab.pem")]
    private_key_file: Option<String>,
    /// Import this OpenSSH public key instead of letting EC2 make a key pair.
    #[serde(default)]
    public_key_file: Option<String>,
    /// Take over an existing key pair of this name that tether did not make.
    #[serde(default)]
    adopt: bool,
}

/// A security group in the default VPC: inbound rules only (all outbound is allowed).
#[derive(Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "SecurityGroup")]
pub(super) struct RawSecurityGroup {
    /// EC2's description of the group (it cannot change after creation).
    #[serde(default)]
    description: Option<String>,
    /// Inbound rules.
    #[serde(default)]
    ingress: Vec<RawIngress>,
    /// Take over an existing group of this name that tether did not make.
    #[serde(default)]
    adopt: bool,
}

/// One inbound rule: a port open to an address range.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Ingress")]
struct RawIngress {
    /// The port (22 for SSH, 8888 for Jupyter).
    #[schemars(range(min = 0, max = 65535), example = 22)]
    port: i64,
    /// Who may connect, as a CIDR block: your own address is `203.0.113.7/32`.
    #[schemars(pattern(super::schema::CIDR), example = &"203.0.113.7/32")]
    cidr: String,
    /// `tcp` (the default) or `udp`.
    #[serde(default = "tcp")]
    protocol: Protocol,
    /// Allow `0.0.0.0/0` (or `::/0`) on SSH, RDP and Jupyter ports, which is refused
    /// otherwise.
    #[serde(default)]
    allow_world: bool,
}

fn tcp() -> Protocol {
    Protocol::Tcp
}

/// `path` as written with empty and `.` components dropped (`~/.ssh//./k.pem` is
/// `~/.ssh/k.pem`), so that two spellings of one file compare equal.
fn normalise_path(path: &str) -> String {
    let absolute = path.starts_with('/');
    let parts: Vec<&str> = path
        .split('/')
        .filter(|part| !part.is_empty() && *part != ".")
        .collect();
    format!("{}{}", if absolute { "/" } else { "" }, parts.join("/"))
}

impl Checker<'_> {
    pub(super) fn check_key_pairs(
        &mut self,
        raw: BTreeMap<String, Option<RawKeyPair>>,
    ) -> BTreeMap<String, KeyPairSpec> {
        let mut key_pairs = BTreeMap::new();
        // Each generated key's file, as written (normalised), and the pair that names it
        // first: two pairs writing one file would lose one private key for good.
        let mut key_files: BTreeMap<String, String> = BTreeMap::new();
        for (name, key) in raw {
            let key = key.unwrap_or_default();
            let path = ["key_pairs", name.as_str()];
            if let Some(file) = key.private_key_file.as_deref() {
                let normalised = normalise_path(file);
                if let Some(first) = key_files.get(&normalised) {
                    let location =
                        self.value_location(&["key_pairs", name.as_str(), "private_key_file"]);
                    self.error(
                        location,
                        format!("key pairs `{first}` and `{name}` both keep their private key in `{file}`"),
                        Some("give each key pair a file of its own: the second key would overwrite the first, which AWS cannot give again".into()),
                    );
                } else {
                    key_files.insert(normalised, name.clone());
                }
            }
            if name.is_empty() || name.len() > 255 || !name.is_ascii() {
                let location = self.key_location(&path);
                self.error(
                    location,
                    format!("invalid key pair name `{name}`"),
                    Some("key pair names are 1-255 ASCII characters".into()),
                );
            }
            // A generated key's file becomes its aliases' `IdentityFile`.
            if let Some(problem) = key.private_key_file.as_deref().and_then(|file| {
                crate::ssh::config::unsafe_value(file, crate::ssh::config::ValueKind::Path)
            }) {
                let location =
                    self.value_location(&["key_pairs", name.as_str(), "private_key_file"]);
                self.error(
                    location,
                    format!("`private_key_file` of key pair `{name}` cannot be an ssh identity file: {problem}"),
                    Some("give a plain path, without `\"` or `%`".into()),
                );
            }
            let source = match (key.private_key_file, key.public_key_file) {
                (Some(private_key_file), None) => KeySource::Generate { private_key_file },
                (None, Some(public_key_file)) => KeySource::Import { public_key_file },
                (both_or_neither_private, _) => {
                    let location = self.key_location(&path);
                    let message = if both_or_neither_private.is_some() {
                        format!("key pair `{name}` names both a private and a public key file")
                    } else {
                        format!("key pair `{name}` names no key file")
                    };
                    self.error(
                        location,
                        message,
                        Some("give `private_key_file` (AWS generates the key) or `public_key_file` (import yours), not both".into()),
                    );
                    KeySource::Generate {
                        private_key_file: String::new(),
                    }
                }
            };
            let location = self.key_location(&path);
            key_pairs.insert(
                name.clone(),
                KeyPairSpec {
                    name,
                    source,
                    adopt: key.adopt,
                    location,
                },
            );
        }
        key_pairs
    }

    pub(super) fn check_security_groups(
        &mut self,
        raw: BTreeMap<String, Option<RawSecurityGroup>>,
    ) -> BTreeMap<String, SecurityGroupSpec> {
        let mut groups = BTreeMap::new();
        for (name, group) in raw {
            let group = group.unwrap_or_default();
            let path = ["security_groups", name.as_str()];
            if name.is_empty()
                || name.len() > 255
                || name.to_ascii_lowercase().starts_with("sg-")
                || !name.is_ascii()
            {
                let location = self.key_location(&path);
                self.error(
                    location,
                    format!("invalid security group name `{name}`"),
                    Some("security group names are 1-255 ASCII characters and do not start with `sg-`".into()),
                );
            }
            let description = group
                .description
                .unwrap_or_else(|| format!("{name}, managed by tether"));
            if description.len() > 255 || !description.chars().all(is_description_char) {
                let location =
                    self.value_location(&["security_groups", name.as_str(), "description"]);
                self.error(
                    location,
                    format!("invalid description for security group `{name}`"),
                    Some("up to 255 of: letters, digits, spaces and ._-:/()#,@[]+=&;{}!$*".into()),
                );
            }
            let mut ingress: Vec<(IngressSpec, IpNet, usize)> = Vec::new();
            for (index, rule) in group.ingress.into_iter().enumerate() {
                let index_text = index.to_string();
                let rule_path = [
                    "security_groups",
                    name.as_str(),
                    "ingress",
                    index_text.as_str(),
                ];
                let Some(port) = u16::try_from(rule.port).ok() else {
                    let location = self.value_location(&[rule_path.as_slice(), &["port"]].concat());
                    self.error(
                        location,
                        format!("port {} is outside 0-65535", rule.port),
                        None,
                    );
                    continue;
                };
                let cidr_location =
                    self.value_location(&[rule_path.as_slice(), &["cidr"]].concat());
                let net: IpNet = match rule.cidr.parse() {
                    Ok(net) => net,
                    Err(_) => {
                        self.error(
                            cidr_location,
                            format!("`{}` is not a CIDR block", rule.cidr),
                            Some(
                                "write an address and a prefix length, e.g. `203.0.113.7/32`"
                                    .into(),
                            ),
                        );
                        continue;
                    }
                };
                if net.trunc() != net {
                    self.error(
                        cidr_location.clone(),
                        format!("`{net}` has host bits set"),
                        Some(format!(
                            "the block is `{}`; for one address use `/{}`",
                            net.trunc(),
                            net.max_prefix_len()
                        )),
                    );
                }
                if net.prefix_len() == 0 && !rule.allow_world {
                    if let Some((_, service)) = SENSITIVE_PORTS.iter().find(|(p, _)| *p == port) {
                        self.error(
                            cidr_location.clone(),
                            format!("this rule opens {service} (port {port}) to the whole internet"),
                            Some("admit only your own address (`curl https://checkip.amazonaws.com`), or say `allow_world: true`".into()),
                        );
                    }
                }
                let spec = IngressSpec {
                    protocol: rule.protocol,
                    port,
                    cidr: net.trunc().to_string(),
                };
                if let Some((_, other, other_index)) = ingress.iter().find(|(r, n, _)| {
                    r.protocol == spec.protocol
                        && r.port == spec.port
                        && (n.contains(&net.trunc()) || net.trunc().contains(n))
                }) {
                    self.error(
                        cidr_location,
                        format!(
                            "this rule overlaps rule {other_index} (`{other}`) for {} port {port}",
                            spec.protocol.as_str()
                        ),
                        Some("keep the wider block, or split them so they do not overlap".into()),
                    );
                    continue;
                }
                ingress.push((spec, net.trunc(), index));
            }
            let location = self.key_location(&path);
            groups.insert(
                name.clone(),
                SecurityGroupSpec {
                    name,
                    description,
                    ingress: ingress.into_iter().map(|(spec, _, _)| spec).collect(),
                    adopt: group.adopt,
                    location,
                },
            );
        }
        groups
    }
}

/// The characters EC2 accepts in a security group description.
fn is_description_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || " ._-:/()#,@[]+=&;{}!$*".contains(c)
}
