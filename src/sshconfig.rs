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

fn begin_marker(project: &str) -> String {
    format!("# BEGIN tether {project}")
}

fn end_marker(project: &str) -> String {
    format!("# END tether {project}")
}

/// The block's text, markers included, ending with a newline. `address` gives each
/// host's instance address.
pub fn render(project: &str, hosts: &[HostEntry], address: impl Fn(&str) -> HostAddress) -> String {
    let mut text = format!(
        "{}\n# Managed by tether from the spec of project `{project}`; edits here are overwritten.\n",
        begin_marker(project)
    );
    for host in hosts {
        let hostname = match address(&host.instance) {
            HostAddress::Known(ip) => ip,
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
    }
    text.push_str(&end_marker(project));
    text.push('\n');
    text
}

/// The project's block in `file_text` (markers included, with its final newline), and
/// where it starts.
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
/// does not end with a newline, one is added before a new block.
pub fn replace(file_text: &str, project: &str, block: Option<&str>) -> String {
    match find(file_text, project) {
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
    }
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
        }]
    }

    #[test]
    fn a_block_goes_in_and_out_leaving_everything_else_byte_for_byte() {
        let user_config =
            "Host github.com\n    User git\n\n# my notes\nHost *\n  ServerAliveInterval 60";
        let block = render("lab", &hosts(), |_| {
            HostAddress::Known("203.0.113.10".into())
        });
        let with = replace(user_config, "lab", Some(&block));
        assert!(with.starts_with(user_config));
        assert_eq!(find(&with, "lab").map(|(_, b)| b), Some(block.clone()));
        // Replacing keeps the rest; a second project's block is another block.
        let other = render("other", &hosts(), |_| HostAddress::AfterApply);
        let both = replace(&with, "other", Some(&other));
        let moved = render("lab", &hosts(), |_| {
            HostAddress::Known("198.51.100.2".into())
        });
        let updated = replace(&both, "lab", Some(&moved));
        assert_eq!(find(&updated, "other").map(|(_, b)| b), Some(other.clone()));
        assert!(updated.contains("HostName 198.51.100.2"));
        let removed = replace(&replace(&updated, "lab", None), "other", None);
        assert_eq!(removed, format!("{user_config}\n"));
    }

    #[test]
    fn a_stopped_instance_without_an_address_is_left_out_with_a_comment() {
        let block = render("lab", &hosts(), |_| HostAddress::None);
        assert!(!block.contains("Host MyNewInstance"));
        assert!(block.contains("# MyNewInstance: instance `worker` is stopped"));
    }
}
