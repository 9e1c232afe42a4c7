//! `tether import`: a spec for what an account holds that no tether project owns. Pure:
//! the account is read by `live::read_unowned` and the user's ssh config by the CLI; this
//! module chooses what to take in (`select`), names what EC2 leaves unnamed
//! (`instance_key`), finds the ssh config's entries for the instances (`ssh_hosts`), writes
//! the spec in the bundled examples' order and style (`spec_text`), and says what a first
//! apply of it would change besides taking ownership (`differences`), so that nothing is
//! written that would quietly change the lab.
//!
//! Every resource is written with `adopt: true`; a secret is never read, so none is
//! written (console access and keys are booleans, a key pair's private key stays where
//! the user keeps it).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use serde_json::Value;

use crate::kinds::{LiveState, ResourceState};
use crate::model::{Address, Kind, Market, Ownership, RunState, TAG_PREFIX};
use crate::ssh::config::{directive, host_patterns, tether_marker};

/// The families `--only` chooses among.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    Buckets,
    Iam,
    Ec2,
    Account,
    Ssh,
}

impl Family {
    pub const ALL: [Family; 5] = [
        Family::Buckets,
        Family::Iam,
        Family::Ec2,
        Family::Account,
        Family::Ssh,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Family::Buckets => "buckets",
            Family::Iam => "iam",
            Family::Ec2 => "ec2",
            Family::Account => "account",
            Family::Ssh => "ssh",
        }
    }

    pub fn parse(text: &str) -> Option<Family> {
        Family::ALL.into_iter().find(|f| f.as_str() == text)
    }

    /// The family a kind belongs to.
    pub fn of(kind: Kind) -> Option<Family> {
        match kind {
            Kind::Bucket => Some(Family::Buckets),
            Kind::IamGroup | Kind::IamUser => Some(Family::Iam),
            Kind::KeyPair | Kind::SecurityGroup | Kind::Instance | Kind::ElasticIp => {
                Some(Family::Ec2)
            }
            Kind::Account => Some(Family::Account),
            _ => None,
        }
    }
}

/// What the user asked to take in.
#[derive(Clone, Debug)]
pub struct Selection {
    pub families: BTreeSet<Family>,
    /// `--tag KEY=VALUE`: only resources carrying it (and the groups a chosen user is in).
    pub tag: Option<(String, String)>,
    /// `--name-prefix P`: only resources whose name starts with it (the same for groups).
    pub name_prefix: Option<String>,
}

impl Default for Selection {
    fn default() -> Selection {
        Selection {
            families: Family::ALL.into_iter().collect(),
            tag: None,
            name_prefix: None,
        }
    }
}

/// What the account holds that may go into the spec.
#[derive(Clone, Debug, Default)]
pub struct Inventory {
    pub project: String,
    pub region: String,
    /// What no tether project owns and the selection chose, as the account holds it.
    pub found: LiveState,
    /// What another tether project owns, left out: its address and owner.
    pub others: Vec<(Address, String)>,
    /// The user's own ssh config entries that reach an imported instance.
    pub ssh_hosts: Vec<SshHost>,
}

/// One `Host` entry of the user's ssh config that reaches an imported instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SshHost {
    pub alias: String,
    /// The instance's key in the spec.
    pub instance: String,
    pub user: Option<String>,
    pub port: Option<u16>,
    pub identity_file: Option<String>,
    /// `LocalForward` ports forwarded to the same port on the instance.
    pub forwards: Vec<u16>,
    /// The line of the config file that starts the entry.
    pub line: usize,
}

/// Splits what was read into what the selection takes in (owned by no tether project) and
/// what another project owns. What this project owns already is left out: it is managed.
pub fn select(
    mut found: LiveState,
    project: &str,
    selection: &Selection,
) -> (LiveState, Vec<(Address, String)>) {
    let mut others = Vec::new();
    found.resources.retain(|address, resource| {
        match resource.state.ownership(project) {
            Ownership::Unowned => {}
            Ownership::OtherProject(owner) => {
                others.push((address.clone(), owner));
                return false;
            }
            Ownership::Owned => return false,
        }
        Family::of(address.kind).is_some_and(|f| selection.families.contains(&f))
    });
    let chosen = |address: &Address, state: &ResourceState| {
        let named = selection
            .name_prefix
            .as_ref()
            .is_none_or(|prefix| address.name.starts_with(prefix.as_str()));
        let tagged = selection.tag.as_ref().is_none_or(|(key, value)| {
            tags_of(state).is_some_and(|tags| tags.get(key) == Some(value))
        });
        named && tagged
    };
    // Groups and account settings carry no tags: with `--tag`, a group comes along with a
    // chosen user that is in it, and the settings stay out.
    let mut chosen_addresses: BTreeSet<Address> = found
        .resources
        .iter()
        .filter(|(address, resource)| match address.kind {
            Kind::IamGroup | Kind::Account if selection.tag.is_some() => false,
            _ => chosen(address, &resource.state),
        })
        .map(|(address, _)| address.clone())
        .collect();
    let groups_of_users: Vec<Address> = found
        .resources
        .iter()
        .filter(|(address, _)| chosen_addresses.contains(*address))
        .filter_map(|(_, resource)| match &resource.state {
            ResourceState::IamUser(user) => Some(user.groups.iter()),
            _ => None,
        })
        .flatten()
        .map(|group| Address::new(Kind::IamGroup, group))
        .collect();
    chosen_addresses.extend(groups_of_users);
    found
        .resources
        .retain(|address, _| chosen_addresses.contains(address));
    others.sort();
    (found, others)
}

fn tags_of(state: &ResourceState) -> Option<&BTreeMap<String, String>> {
    match state {
        ResourceState::Bucket(s) => Some(&s.tags),
        ResourceState::IamUser(s) => Some(&s.tags),
        ResourceState::KeyPair(s) => Some(&s.tags),
        ResourceState::SecurityGroup(s) => Some(&s.tags),
        ResourceState::Instance(s) => Some(&s.tags),
        ResourceState::ElasticIp(s) => Some(&s.tags),
        _ => None,
    }
}

/// The key an instance gets in the spec: its `Name` tag where that is a valid key and not
/// taken, else its id (`i-...`, which is one). `taken` collects the keys given.
pub fn instance_key(
    tags: &BTreeMap<String, String>,
    id: &str,
    taken: &mut BTreeSet<String>,
) -> String {
    let valid = |name: &str| {
        !name.is_empty()
            && name.len() <= 128
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    let key = match tags.get("Name") {
        Some(name) if valid(name) && !taken.contains(name) => name.clone(),
        _ => id.to_string(),
    };
    taken.insert(key.clone());
    key
}

/// The `Host` entries of an OpenSSH config (`text`) that name one alias and reach one of
/// `instances` (key, then the addresses and DNS names it answers to) by `HostName`.
/// tether's own blocks are skipped, and so are patterns (`Host *`): those are defaults.
pub fn ssh_hosts(text: &str, instances: &[(String, Vec<String>)]) -> Vec<SshHost> {
    struct Entry {
        alias: Option<String>,
        line: usize,
        settings: BTreeMap<String, Vec<String>>,
    }
    let mut entries: Vec<Entry> = Vec::new();
    let mut in_tether_block = false;
    let mut current: Option<Entry> = None;
    for (index, line) in text.lines().enumerate() {
        match tether_marker(line) {
            Some(true) => in_tether_block = true,
            Some(false) => {
                in_tether_block = false;
                continue;
            }
            None => {}
        }
        let Some((keyword, rest)) = directive(line) else {
            continue;
        };
        let keyword = keyword.to_ascii_lowercase();
        if keyword == "host" || keyword == "match" {
            entries.extend(current.take());
            let patterns = host_patterns(line).unwrap_or_default();
            let alias = match patterns.as_slice() {
                [one] if !in_tether_block && !one.contains(['*', '?', '!']) => {
                    Some(one.to_string())
                }
                _ => None,
            };
            current = Some(Entry {
                alias,
                line: index + 1,
                settings: BTreeMap::new(),
            });
            continue;
        }
        if let Some(entry) = current.as_mut() {
            entry
                .settings
                .entry(keyword)
                .or_default()
                .push(rest.trim_matches('"').to_string());
        }
    }
    entries.extend(current);
    let first = |entry: &Entry, key: &str| entry.settings.get(key).and_then(|v| v.first()).cloned();
    entries
        .into_iter()
        .filter_map(|entry| {
            let alias = entry.alias.clone()?;
            let host = first(&entry, "hostname")?;
            let (instance, _) = instances
                .iter()
                .find(|(_, names)| names.iter().any(|n| n.eq_ignore_ascii_case(&host)))?;
            let forwards = entry
                .settings
                .get("localforward")
                .into_iter()
                .flatten()
                .filter_map(|forward| {
                    // `8888 localhost:8888`: only the same port on the instance itself.
                    let (local, remote) = forward.split_once(char::is_whitespace)?;
                    let local: u16 = local.rsplit(':').next()?.parse().ok()?;
                    let (host, port) = remote.trim().rsplit_once(':')?;
                    let port: u16 = port.parse().ok()?;
                    (port == local && matches!(host, "localhost" | "127.0.0.1")).then_some(port)
                })
                .collect();
            Some(SshHost {
                alias,
                instance: instance.clone(),
                user: first(&entry, "user"),
                port: first(&entry, "port").and_then(|p| p.parse().ok()),
                identity_file: first(&entry, "identityfile"),
                forwards,
                line: entry.line,
            })
        })
        .collect()
}

/// A YAML scalar: plain where it reads back as the same string, else JSON's quoting (a
/// JSON string is a YAML double-quoted scalar), which escapes every control character.
fn scalar(text: &str) -> String {
    const WORDS: [&str; 11] = [
        "true", "false", "null", "yes", "no", "on", "off", "y", "n", "~", "",
    ];
    // A letter, `~` or `/` first (or a digit, in an address range such as a CIDR block,
    // which no YAML reader takes for a number or a date); no indicator, no `: ` or ` #`.
    let first_ok = text.chars().next().is_some_and(|c| {
        c.is_ascii_alphabetic()
            || c == '~'
            || c == '/'
            || (c.is_ascii_digit() && text.contains('/'))
    });
    let plain = first_ok
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-/@:*+=~ ".contains(c))
        && !text.ends_with([':', ' '])
        && !text.contains(": ")
        && !text.contains(" #")
        && !WORDS.contains(&text.to_ascii_lowercase().as_str());
    if plain {
        text.to_string()
    } else {
        Value::String(text.to_string()).to_string()
    }
}

/// A JSON value as block YAML at `indent` spaces, after a key (`key:`) already written.
fn value_yaml(out: &mut String, indent: usize, value: &Value) {
    let pad = " ".repeat(indent);
    match value {
        Value::Object(map) if !map.is_empty() => {
            out.push('\n');
            for (key, item) in map {
                let _ = write!(out, "{pad}{}:", scalar(key));
                value_yaml(out, indent + 2, item);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            out.push('\n');
            for item in items {
                let _ = write!(out, "{pad}-");
                match item {
                    Value::Object(map) if !map.is_empty() => {
                        // The first key on the dash's line, the rest under it.
                        let mut first = true;
                        for (key, inner) in map {
                            if first {
                                let _ = write!(out, " {}:", scalar(key));
                                first = false;
                            } else {
                                let _ = write!(out, "{pad}  {}:", scalar(key));
                            }
                            value_yaml(out, indent + 4, inner);
                        }
                    }
                    other => value_yaml(out, indent + 2, other),
                }
            }
        }
        Value::Object(_) => out.push_str(" {}\n"),
        Value::Array(_) => out.push_str(" []\n"),
        Value::String(text) => {
            let _ = writeln!(out, " {}", scalar(text));
        }
        other => {
            let _ = writeln!(out, " {other}");
        }
    }
}

fn flow_list<'a>(items: impl IntoIterator<Item = &'a String>) -> String {
    let items: Vec<String> = items.into_iter().map(|i| scalar(i)).collect();
    format!("[{}]", items.join(", "))
}

fn tags_line(out: &mut String, indent: usize, tags: &BTreeMap<String, String>) {
    let user: Vec<String> = tags
        .iter()
        .filter(|(k, _)| !k.starts_with(TAG_PREFIX) && !k.starts_with("aws:"))
        .map(|(k, v)| format!("{}: {}", scalar(k), scalar(v)))
        .collect();
    if !user.is_empty() {
        let _ = writeln!(out, "{}tags: {{{}}}", " ".repeat(indent), user.join(", "));
    }
}

/// The states of one kind, by name.
fn of_kind<'a, T>(
    inventory: &'a Inventory,
    pick: impl Fn(&'a ResourceState) -> Option<&'a T>,
) -> Vec<(&'a str, &'a T)> {
    inventory
        .found
        .resources
        .iter()
        .filter_map(|(address, resource)| Some((address.name.as_str(), pick(&resource.state)?)))
        .collect()
}

/// The spec for `inventory`: the bundled examples' key order and comments, every resource
/// `adopt: true`, and the schema line for editors (`tether schema > tether.schema.json`).
pub fn spec_text(inventory: &Inventory) -> String {
    let mut out = String::new();
    out.push_str("# yaml-language-server: $schema=./tether.schema.json\n");
    out.push_str(
        "# Written by `tether import` from what the account holds that no tether project owns.\n\
         # Every resource says `adopt: true`: the first apply tags it (or moves an IAM user or\n\
         # group to the project's path, or records an account setting) and changes nothing\n\
         # else; from then on this file manages it. No secret was read or written: passwords,\n\
         # access keys and private keys stay where they are.\n",
    );
    for (address, owner) in &inventory.others {
        let _ = writeln!(
            out,
            "# Left out: {address} belongs to tether project `{}`.",
            scalar(owner).trim_matches('"')
        );
    }
    let _ = writeln!(out, "project: {}", scalar(&inventory.project));
    let _ = writeln!(out, "region: {}", scalar(&inventory.region));
    account_section(&mut out, inventory);
    iam_section(&mut out, inventory);
    buckets_section(&mut out, inventory);
    ec2_sections(&mut out, inventory);
    ssh_section(&mut out, inventory);
    out
}

fn account_section(out: &mut String, inventory: &Inventory) {
    let alias = of_kind(inventory, |s| match s {
        ResourceState::AccountAlias(a) => Some(a),
        _ => None,
    });
    let policy = of_kind(inventory, |s| match s {
        ResourceState::PasswordPolicy(p) => Some(p),
        _ => None,
    });
    if alias.is_empty() && policy.is_empty() {
        return;
    }
    out.push_str("account:\n");
    for (_, alias) in alias {
        let _ = writeln!(
            out,
            "  alias: {{name: {}, adopt: true}}   # https://{}.signin.aws.amazon.com/console",
            scalar(&alias.alias),
            alias.alias
        );
    }
    for (_, setting) in policy {
        let p = &setting.policy;
        out.push_str("  password_policy:\n");
        let _ = writeln!(out, "    minimum_length: {}", p.minimum_length);
        for (key, on) in [
            ("require_symbols", p.require_symbols),
            ("require_numbers", p.require_numbers),
            ("require_uppercase", p.require_uppercase),
            ("require_lowercase", p.require_lowercase),
        ] {
            let _ = writeln!(out, "    {key}: {on}");
        }
        if !p.allow_users_to_change_password {
            out.push_str("    allow_users_to_change_password: false\n");
        }
        if let Some(days) = p.max_age_days {
            let _ = writeln!(out, "    max_age_days: {days}");
        }
        if let Some(count) = p.reuse_prevention {
            let _ = writeln!(out, "    reuse_prevention: {count}");
        }
        if p.hard_expiry {
            out.push_str("    hard_expiry: true\n");
        }
        out.push_str("    adopt: true\n");
    }
}

fn iam_section(out: &mut String, inventory: &Inventory) {
    let groups = of_kind(inventory, |s| match s {
        ResourceState::IamGroup(g) => Some(g),
        _ => None,
    });
    let users = of_kind(inventory, |s| match s {
        ResourceState::IamUser(u) => Some(u),
        _ => None,
    });
    if groups.is_empty() && users.is_empty() {
        return;
    }
    out.push_str("iam:\n");
    if !groups.is_empty() {
        out.push_str("  groups:\n");
        for (name, group) in groups {
            let _ = writeln!(out, "    {}:", scalar(name));
            if !group.policies.is_empty() {
                let _ = writeln!(out, "      policies: {}", flow_list(&group.policies));
            }
            out.push_str("      adopt: true\n");
        }
    }
    if !users.is_empty() {
        out.push_str("  users:\n");
        for (name, user) in users {
            let _ = writeln!(out, "    {}:", scalar(name));
            if !user.groups.is_empty() {
                let _ = writeln!(out, "      groups: {}", flow_list(&user.groups));
            }
            if !user.policies.is_empty() {
                let _ = writeln!(out, "      policies: {}", flow_list(&user.policies));
            }
            if user.console_access {
                out.push_str("      console_access: true        # its password stays as it is\n");
            }
            if user.programmatic_access {
                out.push_str(
                    "      programmatic_access: true   # its access keys stay as they are\n",
                );
            }
            if !user.inline_policies.is_empty() {
                out.push_str("      inline_policies:");
                let document = Value::Object(
                    user.inline_policies
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                );
                value_yaml(out, 8, &document);
            }
            tags_line(out, 6, &user.tags);
            out.push_str("      adopt: true\n");
        }
    }
}

fn buckets_section(out: &mut String, inventory: &Inventory) {
    let buckets = of_kind(inventory, |s| match s {
        ResourceState::Bucket(b) => Some(b),
        _ => None,
    });
    if buckets.is_empty() {
        return;
    }
    out.push_str("buckets:\n");
    let partition = crate::policy::partition(&inventory.region);
    for (name, bucket) in buckets {
        let _ = writeln!(out, "  {}:", scalar(name));
        let public_read =
            crate::policy::document_of(crate::policy::public_read_statement(name, partition));
        match &bucket.policy {
            Some(policy)
                if crate::policy::normalise(policy) == crate::policy::normalise(&public_read) =>
            {
                out.push_str("    public_read: true             # anyone may read (never write)\n");
            }
            Some(policy) => {
                out.push_str("    policy:");
                value_yaml(out, 6, policy);
            }
            None => {}
        }
        tags_line(out, 4, &bucket.tags);
        out.push_str("    adopt: true\n");
    }
}

fn ec2_sections(out: &mut String, inventory: &Inventory) {
    let keys = of_kind(inventory, |s| match s {
        ResourceState::KeyPair(k) => Some(k),
        _ => None,
    });
    if !keys.is_empty() {
        out.push_str("key_pairs:\n");
        for (name, _) in keys {
            let _ = writeln!(out, "  {}:", scalar(name));
            let file = format!("~/.ssh/{name}.pem");
            let _ = writeln!(
                out,
                "    private_key_file: {}   # AWS never shows a private key again: keep your copy here",
                scalar(&file)
            );
            out.push_str("    adopt: true\n");
        }
    }
    let groups = of_kind(inventory, |s| match s {
        ResourceState::SecurityGroup(g) => Some(g),
        _ => None,
    });
    if !groups.is_empty() {
        out.push_str("security_groups:\n");
        for (name, group) in groups {
            let _ = writeln!(out, "  {}:", scalar(name));
            let _ = writeln!(out, "    description: {}", scalar(&group.description));
            if !group.ingress.is_empty() {
                out.push_str("    ingress:\n");
            }
            for rule in &group.ingress {
                let expressible = matches!(rule.protocol.as_str(), "tcp" | "udp")
                    && rule.from_port == rule.to_port
                    && rule.source.contains('/');
                if !expressible {
                    // The spec has no words for it; the check below reports the change.
                    let _ = writeln!(out, "      # not expressible in a spec: {rule}");
                    continue;
                }
                let world = matches!(rule.source.as_str(), "0.0.0.0/0" | "::/0");
                let _ = writeln!(
                    out,
                    "      - {{port: {}, cidr: {}{}{}}}",
                    rule.from_port,
                    scalar(&rule.source),
                    if rule.protocol == "udp" {
                        ", protocol: udp"
                    } else {
                        ""
                    },
                    if world { ", allow_world: true" } else { "" },
                );
            }
            out.push_str("    adopt: true\n");
        }
    }
    let instances = of_kind(inventory, |s| match s {
        ResourceState::Instance(i) => Some(i),
        _ => None,
    });
    if !instances.is_empty() {
        out.push_str("instances:\n");
        for (name, instance) in &instances {
            let _ = writeln!(out, "  {}:", scalar(name));
            let _ = writeln!(out, "    ami: {}", scalar(&instance.ami));
            let _ = writeln!(out, "    type: {}", scalar(&instance.instance_type));
            if instance.market == Market::Spot {
                out.push_str("    market: spot\n");
            }
            if let Some(key) = &instance.key_pair {
                let _ = writeln!(out, "    key_pair: {}", scalar(key));
            }
            if !instance.security_groups.is_empty() {
                let _ = writeln!(
                    out,
                    "    security_groups: {}",
                    flow_list(&instance.security_groups)
                );
            }
            if let Some(size) = instance.root_volume_gb {
                let _ = writeln!(out, "    root_volume_gb: {size}");
            }
            if !instance.volumes.is_empty() {
                out.push_str("    volumes:\n");
                for (device, volume) in &instance.volumes {
                    let _ = writeln!(
                        out,
                        "      - {{device: {}, size_gb: {}, type: {}}}",
                        scalar(device),
                        volume.size_gb,
                        scalar(&volume.volume_type)
                    );
                }
            }
            if let Some(profile) = &instance.instance_profile {
                let _ = writeln!(out, "    instance_profile: {}", scalar(profile));
            }
            let state = match instance.state {
                RunState::Running => "running",
                RunState::Stopped => "stopped",
            };
            let _ = writeln!(out, "    state: {state}");
            let mut tags = instance.tags.clone();
            if tags.get("Name").map(String::as_str) == Some(*name) {
                tags.remove("Name");
            }
            tags_line(out, 4, &tags);
            out.push_str("    adopt: true\n");
            if let Some(id) = &instance.id {
                let _ = writeln!(out, "    id: {}", scalar(id));
            }
        }
    }
    let addresses = of_kind(inventory, |s| match s {
        ResourceState::ElasticIp(a) => Some(a),
        _ => None,
    });
    if !addresses.is_empty() {
        out.push_str("elastic_ips:\n");
        for (name, address) in addresses {
            let _ = writeln!(out, "  {}:", scalar(name));
            if let Some(instance) = address
                .instance
                .as_ref()
                .filter(|i| instances.iter().any(|(n, _)| n == i))
            {
                let _ = writeln!(out, "    instance: {}", scalar(instance));
            }
            tags_line(out, 4, &address.tags);
            out.push_str("    adopt: true\n");
            if let Some(id) = &address.allocation_id {
                let ip = address.public_ip.as_deref().unwrap_or_default();
                let _ = writeln!(out, "    allocation_id: {}   # {ip}", scalar(id));
            }
        }
    }
}

fn ssh_section(out: &mut String, inventory: &Inventory) {
    if inventory.ssh_hosts.is_empty() {
        return;
    }
    out.push_str("ssh:\n  hosts:\n");
    for host in &inventory.ssh_hosts {
        let _ = writeln!(
            out,
            "    {}:                   # your own `Host` entry (line {}) moves into tether's block",
            scalar(&host.alias),
            host.line
        );
        let _ = writeln!(out, "      instance: {}", scalar(&host.instance));
        if let Some(user) = &host.user {
            let _ = writeln!(out, "      user: {}", scalar(user));
        }
        if let Some(port) = host.port {
            let _ = writeln!(out, "      port: {port}");
        }
        if let Some(file) = &host.identity_file {
            let _ = writeln!(out, "      identity_file: {}", scalar(file));
        }
        if !host.forwards.is_empty() {
            let ports: Vec<String> = host.forwards.iter().map(u16::to_string).collect();
            let _ = writeln!(out, "      forward: [{}]", ports.join(", "));
        }
        out.push_str("      adopt: true\n");
    }
}

/// What a first apply of `planned` would change beyond taking ownership: one line per
/// attribute, `address: attribute: before -> after`. Tether's tags, an IAM path and the
/// account's records are ownership; anything else means the spec does not say what the
/// account holds, and the user should know before applying.
pub fn differences(planned: &crate::plan::Plan) -> Vec<String> {
    use crate::plan::Action;
    let mut lines = Vec::new();
    for change in planned.changes.iter().chain(&planned.local_changes) {
        if change.address.kind == Kind::SshConfig {
            continue;
        }
        match change.action {
            Action::NoOp => continue,
            Action::Adopt | Action::Update => {}
            other => {
                let action = format!("{other:?}").to_lowercase();
                lines.push(format!("{}: would {action} on apply", change.address));
                continue;
            }
        }
        for attribute in &change.attributes {
            if attribute.name == "path" {
                continue;
            }
            let (before, after) = if attribute.name == "tags" {
                (
                    without_tether(&attribute.before),
                    without_tether(&attribute.after),
                )
            } else {
                (attribute.before.clone(), attribute.after.clone())
            };
            if before != after {
                lines.push(format!(
                    "{}: {}: {} -> {}",
                    change.address, attribute.name, before, after
                ));
            }
        }
    }
    lines
}

fn without_tether(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| !k.starts_with(TAG_PREFIX))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn scalars_read_back_as_the_same_string() {
        for text in [
            "dsi-lab",
            "arn:aws:iam::aws:policy/AdministratorAccess",
            "2012-10-17",
            "yes",
            "true",
            "",
            "a b",
            "line\nbreak",
            "#comment",
            "*",
            "-1",
            "x: y",
            "~/.ssh/lab.pem",
            "SSH from home",
            "203.0.113.7/32",
            "trailing ",
            "a #b",
            "~",
        ] {
            let yaml = format!("key: {}\n", scalar(text));
            let back: BTreeMap<String, String> =
                serde_saphyr::from_str(&yaml).unwrap_or_else(|e| panic!("{yaml}: {e}"));
            assert_eq!(back["key"], text, "{yaml}");
        }
    }

    #[test]
    fn a_policy_document_reads_back_as_itself() {
        let document = serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::b/*"], "Principal": "*"},
                {"Effect": "Deny", "Action": "s3:*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}, "Resource": []}
            ]
        });
        let mut out = "policy:".to_string();
        value_yaml(&mut out, 2, &document);
        let back: BTreeMap<String, Value> = serde_saphyr::from_str(&out).expect(&out);
        assert_eq!(back["policy"], document, "{out}");
    }

    #[test]
    fn ssh_hosts_are_the_single_alias_entries_that_reach_an_instance() {
        let config = "\
Host *
    ServerAliveInterval 30
Host MyNewInstance
    HostName 203.0.113.10
    User ubuntu
    IdentityFile ~/.ssh/lab.pem
    LocalForward 8888 localhost:8888
Host other
    HostName 198.51.100.1
Host a b
    HostName 203.0.113.10
# BEGIN tether lab
Host lab-worker
    HostName 203.0.113.10
# END tether lab
Host = byname
    HostName=ec2-203-0-113-10.compute-1.amazonaws.com
";
        let instances = vec![(
            "worker".to_string(),
            vec![
                "203.0.113.10".to_string(),
                "ec2-203-0-113-10.compute-1.amazonaws.com".to_string(),
            ],
        )];
        let hosts = ssh_hosts(config, &instances);
        let aliases: Vec<&str> = hosts.iter().map(|h| h.alias.as_str()).collect();
        assert_eq!(aliases, ["MyNewInstance", "byname"]);
        assert_eq!(hosts[0].user.as_deref(), Some("ubuntu"));
        assert_eq!(hosts[0].identity_file.as_deref(), Some("~/.ssh/lab.pem"));
        assert_eq!(hosts[0].forwards, [8888]);
        assert_eq!(hosts[0].line, 3);
        assert_eq!(hosts[0].instance, "worker");
    }

    fn found(resources: Vec<(Address, ResourceState)>) -> LiveState {
        LiveState {
            resources: resources
                .into_iter()
                .map(|(address, state)| {
                    let resource = crate::kinds::LiveResource {
                        address: address.clone(),
                        state,
                        depends_on: Vec::new(),
                    };
                    (address, resource)
                })
                .collect(),
            ..LiveState::default()
        }
    }

    fn bucket(tags: &[(&str, &str)]) -> ResourceState {
        ResourceState::Bucket(crate::kinds::BucketState {
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            policy: None,
            public_access_block: None,
            record: None,
        })
    }

    fn user(path: &str, groups: &[&str], tags: &[(&str, &str)]) -> ResourceState {
        ResourceState::IamUser(crate::kinds::UserState {
            path: path.into(),
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            policies: BTreeSet::new(),
            inline_policies: BTreeMap::new(),
            console_access: false,
            programmatic_access: false,
            stored_access_key: None,
        })
    }

    fn group(path: &str) -> ResourceState {
        ResourceState::IamGroup(crate::kinds::GroupState {
            path: path.into(),
            policies: BTreeSet::new(),
        })
    }

    #[test]
    fn only_what_no_project_owns_and_the_selection_chooses_is_taken_in() {
        let read = found(vec![
            (Address::bucket("lab-data"), bucket(&[("team", "ds")])),
            (Address::bucket("lab-scratch"), bucket(&[])),
            (
                Address::bucket("ours"),
                bucket(&[("tether:project", "lab")]),
            ),
            (
                Address::bucket("theirs"),
                bucket(&[("tether:project", "other")]),
            ),
            (
                Address::new(Kind::IamUser, "erich"),
                user("/", &["admins"], &[("team", "ds")]),
            ),
            (Address::new(Kind::IamUser, "ci"), user("/", &[], &[])),
            (Address::new(Kind::IamGroup, "admins"), group("/")),
            (Address::new(Kind::IamGroup, "readers"), group("/")),
            (
                Address::new(Kind::IamGroup, "managed"),
                group("/tether/other/"),
            ),
        ]);
        let names = |state: &LiveState| -> Vec<String> {
            state.resources.keys().map(ToString::to_string).collect()
        };
        let (all, others) = select(read.clone(), "lab", &Selection::default());
        assert_eq!(
            names(&all),
            [
                "bucket.lab-data",
                "bucket.lab-scratch",
                "iam_group.admins",
                "iam_group.readers",
                "iam_user.ci",
                "iam_user.erich"
            ]
        );
        assert_eq!(
            others,
            [
                (Address::bucket("theirs"), "other".to_string()),
                (Address::new(Kind::IamGroup, "managed"), "other".to_string())
            ]
        );
        // By tag: the tagged bucket and user, and the group the user is in.
        let tagged = Selection {
            tag: Some(("team".into(), "ds".into())),
            ..Selection::default()
        };
        let (chosen, _) = select(read.clone(), "lab", &tagged);
        assert_eq!(
            names(&chosen),
            ["bucket.lab-data", "iam_group.admins", "iam_user.erich"]
        );
        // By name and family.
        let prefixed = Selection {
            families: BTreeSet::from([Family::Buckets]),
            name_prefix: Some("lab-".into()),
            tag: None,
        };
        let (chosen, _) = select(read, "lab", &prefixed);
        assert_eq!(names(&chosen), ["bucket.lab-data", "bucket.lab-scratch"]);
    }

    #[test]
    fn only_what_is_more_than_ownership_is_a_difference() {
        use crate::model::AttributeFormat;
        use crate::plan::{Action, AttributeChange, Change, Mode, Plan};
        let change = |address: Address, action, attributes: Vec<(&str, Value, Value)>| Change {
            address,
            action,
            reason: None,
            attributes: attributes
                .into_iter()
                .map(|(name, before, after)| AttributeChange {
                    name: name.into(),
                    before,
                    after,
                    format: AttributeFormat::Map,
                    forces_replacement: false,
                })
                .collect(),
            before: None,
            after: None,
            depends_on: Vec::new(),
            reissue_secret: false,
            weakens: Vec::new(),
            empty_bucket: false,
        };
        let ownership_only = change(
            Address::new(Kind::IamUser, "Erich"),
            Action::Adopt,
            vec![
                ("path", json!("/"), json!("/tether/lab/")),
                (
                    "tags",
                    json!({"team": "ds"}),
                    json!({"team": "ds", "tether:project": "lab"}),
                ),
            ],
        );
        let more = change(
            Address::bucket("lab-data"),
            Action::Adopt,
            vec![(
                "public_access_block",
                json!({"block_public_acls": false}),
                json!({"block_public_acls": true}),
            )],
        );
        let created = change(
            Address::new(Kind::Instance, "Worker"),
            Action::Create,
            Vec::new(),
        );
        let plan = Plan {
            format_version: crate::plan::FORMAT_VERSION,
            project: "lab".into(),
            account_id: "123456789012".into(),
            region: "us-east-1".into(),
            mode: Mode::Apply,
            secrets: crate::spec::SecretsMode::ParameterStore,
            secrets_dir: "~/.tether/secrets".into(),
            changes: vec![ownership_only, more, created],
            local_changes: Vec::new(),
        };
        assert_eq!(
            differences(&plan),
            [
                "bucket.lab-data: public_access_block: {\"block_public_acls\":false} -> {\"block_public_acls\":true}",
                "instance.Worker: would create on apply",
            ]
        );
    }

    #[test]
    fn an_instance_is_keyed_by_its_name_tag_when_it_can_be() {
        let mut taken = BTreeSet::new();
        let named = BTreeMap::from([("Name".to_string(), "worker".to_string())]);
        assert_eq!(instance_key(&named, "i-1", &mut taken), "worker");
        assert_eq!(instance_key(&named, "i-2", &mut taken), "i-2");
        let odd = BTreeMap::from([("Name".to_string(), "my worker".to_string())]);
        assert_eq!(instance_key(&odd, "i-3", &mut taken), "i-3");
    }
}
