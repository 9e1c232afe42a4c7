//! The project's block of SSH aliases in an OpenSSH config file: rendering it from the
//! declared hosts and their live addresses, and putting it into a file's text without
//! touching a byte outside it. Pure: text in, text out.
//!
//! The block is delimited by marker lines, one block per project and file:
//!
//! ```text
//! # BEGIN tether <project>
//! Host MyNewInstance
//!     HostName 203.0.113.10
//!     ...
//! # END tether <project>
//! ```

use serde::{Deserialize, Serialize};

/// One declared alias.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostEntry {
    pub alias: String,
    /// The spec name of the instance it reaches.
    pub instance: String,
    pub user: String,
    pub port: u16,
    /// Absolute path, when there is one.
    pub identity_file: Option<String>,
    /// Ports forwarded from this machine's loopback to the instance's (`LocalForward`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub forwards: Vec<Forward>,
    /// The spec adopts the user's own `Host <alias>` entry: the write removes it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub adopt: bool,
}

/// One port forward: `localhost:<local>` here reaches `localhost:<remote>` on the instance,
/// through the ssh connection (no ingress rule needed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Forward {
    pub local: u16,
    pub remote: u16,
}

/// What is known of an instance's address when the block is rendered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostAddress {
    /// The Elastic IP, or the public address of a running instance.
    Known(String),
    /// Not known until apply has run (the instance or its address is being made).
    AfterApply,
    /// The instance is stopped and has no Elastic IP: it has no address.
    None,
}

/// The placeholder a plan shows for an address only apply can know.
pub const KNOWN_AFTER_APPLY: &str = "(known after apply)";

const BEGIN: &str = "# BEGIN tether ";
const END: &str = "# END tether ";

fn begin_marker(project: &str) -> String {
    format!("{BEGIN}{project}")
}

fn end_marker(project: &str) -> String {
    format!("{END}{project}")
}

/// Whether `line` opens (`Some(true)`) or closes (`Some(false)`) any project's block.
pub fn tether_marker(line: &str) -> Option<bool> {
    let line = line.trim();
    if line.starts_with(BEGIN) {
        Some(true)
    } else if line.starts_with(END) {
        Some(false)
    } else {
        None
    }
}

/// One line of an OpenSSH config as ssh reads it: its keyword and the rest, a `#`
/// comment cut off, the two parted by whitespace or `=` (`Host a b`, `Host=a`, any case);
/// `None` for a blank or comment line.
pub fn directive(line: &str) -> Option<(&str, &str)> {
    let content = line.trim().split('#').next().unwrap_or_default();
    let (keyword, rest) = content.split_once(|c: char| c.is_whitespace() || c == '=')?;
    let rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == '=');
    Some((keyword, rest.trim()))
}

/// The patterns of a `Host` line, quotes taken off; `None` for any other line.
pub fn host_patterns(line: &str) -> Option<Vec<&str>> {
    let (keyword, rest) = directive(line)?;
    keyword.eq_ignore_ascii_case("host").then(|| {
        rest.split_whitespace()
            .map(|p| p.trim_matches('"'))
            .collect()
    })
}

/// Where tether keeps the instances' verified host keys (`hostkeys`), for the block to
/// point ssh at, so that a plain `ssh <alias>` verifies as tether does: the file, and each
/// instance's id (its `HostKeyAlias`), when it has one yet.
pub struct HostKeys<'a> {
    pub file: &'a str,
    pub instance_id: &'a dyn Fn(&str) -> Option<String>,
}

/// Whether `text` is an EC2 instance id (`i-` and hex): the only thing the block takes as a
/// `HostKeyAlias`, since it comes from the account.
fn is_instance_id(text: &str) -> bool {
    text.strip_prefix("i-")
        .is_some_and(|hex| !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit()))
}

/// The block's text, markers included, ending with a newline. `address` gives each
/// host's instance address; `host_keys`, where its verified host keys are.
pub fn render(
    project: &str,
    hosts: &[HostEntry],
    address: impl Fn(&str) -> HostAddress,
    host_keys: Option<&HostKeys<'_>>,
) -> String {
    let mut text = format!(
        "{}\n# Managed by tether from the spec of project `{project}`; edits here are overwritten.\n",
        begin_marker(project)
    );
    for host in hosts {
        let hostname = match address(&host.instance) {
            // The address comes from the account: only an IP address goes into the file.
            HostAddress::Known(ip) if ip.parse::<std::net::IpAddr>().is_ok() => ip,
            HostAddress::Known(ip) => {
                text.push_str(&format!(
                    "# {}: instance `{}` reports `{}`, which is no IP address\n",
                    host.alias,
                    host.instance,
                    ip.escape_debug()
                ));
                continue;
            }
            HostAddress::AfterApply => KNOWN_AFTER_APPLY.to_string(),
            HostAddress::None => {
                text.push_str(&format!(
                    "# {}: instance `{}` is stopped and has no Elastic IP, so no address\n",
                    host.alias, host.instance
                ));
                continue;
            }
        };
        text.push_str(&format!("Host {}\n", host.alias));
        text.push_str(&format!("    HostName {hostname}\n"));
        text.push_str(&format!("    User {}\n", host.user));
        text.push_str(&format!("    Port {}\n", host.port));
        if let Some(identity) = &host.identity_file {
            text.push_str(&format!("    IdentityFile \"{identity}\"\n"));
            text.push_str("    IdentitiesOnly yes\n");
        }
        // Bound to the loopback address only, whatever the user's `GatewayPorts`: a
        // forward must not open the notebook to this machine's network.
        for forward in &host.forwards {
            text.push_str(&format!(
                "    LocalForward 127.0.0.1:{} localhost:{}\n",
                forward.local, forward.remote
            ));
        }
        if let Some(keys) = host_keys {
            let alias = if hostname == KNOWN_AFTER_APPLY {
                Some(KNOWN_AFTER_APPLY.to_string())
            } else {
                (keys.instance_id)(&host.instance).filter(|id| is_instance_id(id))
            };
            if let Some(alias) = alias {
                // ssh adds a key it accepts (`-o StrictHostKeyChecking=accept-new`, a
                // user's `Host *` line, a "yes" typed at its question) to the first file
                // listed: /dev/null, so nothing but tether ever writes the file of keys
                // it verified, and a plain ssh refuses what that file does not hold.
                text.push_str(&format!("    HostKeyAlias {alias}\n"));
                text.push_str(&format!(
                    "    UserKnownHostsFile /dev/null \"{}\"\n",
                    keys.file
                ));
                text.push_str("    StrictHostKeyChecking yes\n");
            }
        }
    }
    text.push_str(&end_marker(project));
    text.push('\n');
    text
}

/// Checks that `file_text` holds the project's markers in a pair, or not at all: a `BEGIN`
/// whose `END` was deleted by hand (or one twice) would make a write take the user's own
/// lines for the block. The error names the lines.
pub fn check_markers(file_text: &str, project: &str) -> Result<(), String> {
    let (begin, end) = (begin_marker(project), end_marker(project));
    let mut begins = Vec::new();
    let mut ends = Vec::new();
    for (index, line) in file_text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line == begin {
            begins.push(index + 1);
        } else if line == end {
            ends.push(index + 1);
        }
    }
    let list = |lines: &[usize]| {
        lines
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    match (begins.as_slice(), ends.as_slice()) {
        ([], []) => Ok(()),
        ([b], [e]) if b < e => Ok(()),
        ([b], [e]) => Err(format!(
            "`{end}` (line {e}) comes before `{begin}` (line {b})"
        )),
        (b, e) if b.len() > 1 || e.len() > 1 => Err(format!(
            "project `{project}`'s block is marked more than once (`{begin}` at line(s) {}, `{end}` at line(s) {})",
            list(b),
            list(e)
        )),
        ([b], []) => Err(format!("`{begin}` at line {b} has no `{end}`")),
        (_, e) => Err(format!("`{end}` at line {} has no `{begin}`", list(e))),
    }
}

/// The user's own `Host` lines (outside the project's block) that name one of `aliases`
/// literally: ssh takes the first value it finds for each setting, so such a line would
/// decide where the alias goes, and with what host key checking, instead of the block.
/// Patterns (`Host *`, `Host lab-*`) are the user's defaults, not a claim on the name.
/// Returns each clash as its line number and the alias. Call after `check_markers`.
pub fn clashing_hosts(file_text: &str, project: &str, aliases: &[&str]) -> Vec<(usize, String)> {
    let (begin, end) = (begin_marker(project), end_marker(project));
    let mut inside = false;
    let mut clashes = Vec::new();
    for (index, line) in file_text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed == begin {
            inside = true;
            continue;
        }
        if trimmed == end {
            inside = false;
            continue;
        }
        if inside {
            continue;
        }
        for pattern in host_patterns(line).unwrap_or_default() {
            if let Some(alias) = aliases.iter().find(|alias| **alias == pattern) {
                clashes.push((index + 1, (*alias).to_string()));
            }
        }
    }
    clashes
}

/// The project's block in `file_text` (markers included, with its final newline), and
/// where it starts. Callers check the markers first (`check_markers`).
pub fn find(file_text: &str, project: &str) -> Option<(usize, String)> {
    let begin = begin_marker(project);
    let end = end_marker(project);
    let mut offset = 0;
    let mut start = None;
    for line in file_text.split_inclusive('\n') {
        let trimmed = line.trim_end_matches(['\n', '\r']);
        if start.is_none() && trimmed == begin {
            start = Some(offset);
        } else if let (Some(from), true) = (start, trimmed == end) {
            let to = offset + line.len();
            let mut block = file_text[from..to].to_string();
            if !block.ends_with('\n') {
                block.push('\n');
            }
            return Some((from, block));
        }
        offset += line.len();
    }
    None
}

/// `file_text` with the project's block replaced by `block` (or removed, with `None`).
/// A new block goes at the end. Every byte outside the block stays as it was; when the file
/// does not end with a newline, one is added before a new block. Unbalanced or repeated
/// markers are refused (`check_markers`), so nothing of the user's is ever taken for the
/// block.
pub fn replace(file_text: &str, project: &str, block: Option<&str>) -> Result<String, String> {
    check_markers(file_text, project)?;
    Ok(match find(file_text, project) {
        Some((start, old)) => {
            let end = (start + old.len()).min(file_text.len());
            format!(
                "{}{}{}",
                &file_text[..start],
                block.unwrap_or_default(),
                &file_text[end..]
            )
        }
        None => match block {
            None => file_text.to_string(),
            Some(block) => {
                let separator = if file_text.is_empty() || file_text.ends_with('\n') {
                    ""
                } else {
                    "\n"
                };
                format!("{file_text}{separator}{block}")
            }
        },
    })
}

/// `file_text` without the user's own entries for `aliases` that the spec adopts: each
/// from a `Host` line (outside any tether block) that names that alias alone, up to the
/// next `Host` or `Match` line, tether block or the end. Entries naming several patterns
/// are left as they are (and stay refused as clashes).
pub fn without_host_entries(file_text: &str, aliases: &[&str]) -> String {
    let mut out = String::with_capacity(file_text.len());
    let mut in_tether_block = false;
    let mut skipping = false;
    for line in file_text.split_inclusive('\n') {
        match tether_marker(line) {
            Some(true) => {
                in_tether_block = true;
                skipping = false;
            }
            Some(false) => in_tether_block = false,
            None if in_tether_block => {}
            None => {
                // A `Host` or `Match` line ends the entry before it.
                let is_match =
                    directive(line).is_some_and(|(k, _)| k.eq_ignore_ascii_case("match"));
                if let Some(patterns) = host_patterns(line) {
                    skipping = matches!(patterns.as_slice(), [one] if aliases.contains(one));
                } else if is_match {
                    skipping = false;
                }
            }
        }
        if !skipping || in_tether_block {
            out.push_str(line);
        }
    }
    out
}

/// Why a value cannot go into an ssh config line, if it cannot: control characters (a
/// newline would start a directive of its own), a leading `-` (an option to ssh), and, for
/// `Word` values, whitespace, quotes and `#` (where ssh splits or comments), or for `Path`
/// values (written in double quotes) a `"`, and `%` (ssh's tokens).
pub fn unsafe_value(value: &str, kind: ValueKind) -> Option<&'static str> {
    if value.is_empty() {
        return Some("it is empty");
    }
    if value.chars().any(char::is_control) {
        return Some("it holds a control character (a newline would start a directive of its own)");
    }
    if value.starts_with('-') {
        return Some("it starts with `-`, which ssh would take for an option");
    }
    match kind {
        ValueKind::Word
            if value
                .chars()
                .any(|c| c.is_whitespace() || "\"'#\\".contains(c)) =>
        {
            Some("it holds whitespace, a quote, `\\` or `#`, where ssh would split it or comment")
        }
        ValueKind::Path if value.contains('"') => {
            Some("it holds `\"`, which would end the quoted path")
        }
        ValueKind::Path if value.contains('%') => {
            Some("it holds `%`, which ssh expands as a token")
        }
        _ => None,
    }
}

/// How a value is written into the block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueKind {
    /// Bare: a host alias, a user name.
    Word,
    /// In double quotes: a file path.
    Path,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts() -> Vec<HostEntry> {
        vec![HostEntry {
            alias: "MyNewInstance".into(),
            instance: "worker".into(),
            user: "ubuntu".into(),
            port: 22,
            identity_file: Some("/home/ds/.ssh/lab-key.pem".into()),
            forwards: Vec::new(),
            adopt: false,
        }]
    }

    #[test]
    fn an_adopted_entry_is_taken_out_and_nothing_else() {
        let text = "\
Host github.com
    User git

Host MyNewInstance
    HostName 203.0.113.10
    User ubuntu
# BEGIN tether other
Host MyNewInstance
    HostName 198.51.100.1
# END tether other
Host MyNewInstance other
    HostName 203.0.113.10
Match host x
    User y
";
        let expected = "\
Host github.com
    User git

# BEGIN tether other
Host MyNewInstance
    HostName 198.51.100.1
# END tether other
Host MyNewInstance other
    HostName 203.0.113.10
Match host x
    User y
";
        assert_eq!(without_host_entries(text, &["MyNewInstance"]), expected);
        assert_eq!(without_host_entries(text, &[]), text);
    }

    #[test]
    fn a_block_goes_in_and_out_leaving_everything_else_byte_for_byte() {
        let user_config =
            "Host github.com\n    User git\n\n# my notes\nHost *\n  ServerAliveInterval 60";
        let block = render(
            "lab",
            &hosts(),
            |_| HostAddress::Known("203.0.113.10".into()),
            None,
        );
        let with = replace(user_config, "lab", Some(&block)).expect("balanced");
        assert!(with.starts_with(user_config));
        assert_eq!(find(&with, "lab").map(|(_, b)| b), Some(block.clone()));
        // Replacing keeps the rest; a second project's block is another block.
        let other = render("other", &hosts(), |_| HostAddress::AfterApply, None);
        let both = replace(&with, "other", Some(&other)).expect("balanced");
        let moved = render(
            "lab",
            &hosts(),
            |_| HostAddress::Known("198.51.100.2".into()),
            None,
        );
        let updated = replace(&both, "lab", Some(&moved)).expect("balanced");
        assert_eq!(find(&updated, "other").map(|(_, b)| b), Some(other.clone()));
        assert!(updated.contains("HostName 198.51.100.2"));
        let removed = replace(
            &replace(&updated, "lab", None).expect("balanced"),
            "other",
            None,
        )
        .expect("balanced");
        assert_eq!(removed, format!("{user_config}\n"));
    }

    #[test]
    fn the_block_points_ssh_at_the_verified_host_keys_of_each_instance() {
        let id = |_: &str| Some("i-0123456789abcdef0".to_string());
        let keys = HostKeys {
            file: "/home/ds/.tether/known_hosts/lab",
            instance_id: &id,
        };
        let block = render(
            "lab",
            &hosts(),
            |_| HostAddress::Known("203.0.113.10".into()),
            Some(&keys),
        );
        assert!(block.contains(
            "    HostKeyAlias i-0123456789abcdef0\n    UserKnownHostsFile /dev/null \"/home/ds/.tether/known_hosts/lab\"\n    StrictHostKeyChecking yes\n"
        ));
        // Text from the account that is no instance id or no address stays out.
        let hostile = |_: &str| Some("i-1\n    ProxyCommand evil".to_string());
        let keys = HostKeys {
            file: "/k",
            instance_id: &hostile,
        };
        let block = render(
            "lab",
            &hosts(),
            |_| HostAddress::Known("1.2.3.4\nProxyCommand evil".into()),
            Some(&keys),
        );
        assert!(!block.contains("ProxyCommand evil\n"), "{block}");
        assert!(!block.contains("Host MyNewInstance"));
    }

    #[test]
    fn a_stopped_instance_without_an_address_is_left_out_with_a_comment() {
        let block = render("lab", &hosts(), |_| HostAddress::None, None);
        assert!(!block.contains("Host MyNewInstance"));
        assert!(block.contains("# MyNewInstance: instance `worker` is stopped"));
    }

    // Regression: a `# BEGIN` whose `# END` was deleted by hand made the next write delete
    // the user's own lines between the orphaned marker and the new block.
    #[test]
    fn unbalanced_or_repeated_markers_are_refused_naming_the_lines() {
        let block = render("lab", &hosts(), |_| HostAddress::AfterApply, None);
        for (text, expected) in [
            (
                "Host a\n# BEGIN tether lab\nHost mine\n    User me\n",
                "`# BEGIN tether lab` at line 2 has no `# END tether lab`",
            ),
            (
                "Host mine\n# END tether lab\n",
                "`# END tether lab` at line 2 has no `# BEGIN tether lab`",
            ),
            (
                "# END tether lab\nHost mine\n# BEGIN tether lab\n",
                "`# END tether lab` (line 1) comes before `# BEGIN tether lab` (line 3)",
            ),
            (
                "# BEGIN tether lab\n# END tether lab\n# BEGIN tether lab\n# END tether lab\n",
                "marked more than once (`# BEGIN tether lab` at line(s) 1, 3",
            ),
        ] {
            let error = replace(text, "lab", Some(&block)).expect_err(text);
            assert!(error.contains(expected), "{text:?}: {error}");
        }
        // Another project's markers are not this project's business.
        assert!(replace("# BEGIN tether other\n", "lab", Some(&block)).is_ok());
    }

    #[test]
    fn values_that_would_inject_directives_are_named() {
        for (value, kind, unsafe_) in [
            ("ubuntu", ValueKind::Word, false),
            ("ubuntu\nProxyCommand touch PWNED", ValueKind::Word, true),
            ("-oProxyCommand=x", ValueKind::Word, true),
            ("a b", ValueKind::Word, true),
            ("~/.ssh/my key.pem", ValueKind::Path, false),
            ("~/.ssh/k.pem\"\n    ProxyCommand x", ValueKind::Path, true),
            ("~/.ssh/%u.pem", ValueKind::Path, true),
            ("", ValueKind::Path, true),
        ] {
            assert_eq!(unsafe_value(value, kind).is_some(), unsafe_, "{value:?}");
        }
    }

    // Regression: a user's own `Host box` line above the block decided where `ssh box`
    // went (ssh takes the first value of each setting), whatever the block said.
    #[test]
    fn the_users_own_host_lines_that_name_an_alias_are_found() {
        let text = "Host *\n    LogLevel ERROR\nHost other box\n    HostName 10.0.0.1\nhost=gpu # mine\nHost lab-*\n# BEGIN tether lab\nHost box\n# END tether lab\nHost   \"box\"\n";
        assert_eq!(
            clashing_hosts(text, "lab", &["box", "gpu", "lab-worker"]),
            vec![
                (3, "box".to_string()),
                (5, "gpu".to_string()),
                (10, "box".to_string())
            ]
        );
        assert!(clashing_hosts("Host *\n", "lab", &["box"]).is_empty());
    }
}
