//! SSH host keys: what an instance printed about its keys at first boot, the keys its sshd
//! offers, and the project's `known_hosts` file that keeps them under the instance's id.
//!
//! cloud-init writes the host keys' fingerprints (and often the public keys) to the
//! instance's console between `-----BEGIN SSH HOST KEY FINGERPRINTS-----` and
//! `-----END SSH HOST KEY FINGERPRINTS-----` (and `... KEYS-----`), which EC2 keeps as the
//! console output: a channel the network cannot tamper with. A key the sshd offers is
//! trusted when its fingerprint is there. The file is keyed by `HostKeyAlias`, the
//! instance id, so a new address after a stop and start still verifies, and a key that
//! changes for the same instance is refused.
//!
//! Parsing and fingerprints are pure; `known` and `record` read and write the file.

use std::path::{Path, PathBuf};

use base64::Engine;

/// One host key: its type (`ssh-ed25519`, `ecdsa-sha2-nistp256`, ...) and its base64 blob.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct HostKey {
    pub kind: String,
    pub blob: String,
}

impl HostKey {
    /// OpenSSH's fingerprint: `SHA256:` and the unpadded base64 of the blob's digest;
    /// `None` for a blob that is not base64.
    pub fn fingerprint(&self) -> Option<String> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&self.blob)
            .ok()?;
        let digest = crate::hash::sha256(&bytes);
        Some(format!(
            "SHA256:{}",
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(digest)
        ))
    }

    /// A key from `<type> <base64> [comment]`, if the line holds one.
    fn from_fields<'a>(mut fields: impl Iterator<Item = &'a str>) -> Option<HostKey> {
        let kind = fields.next()?;
        let blob = fields.next()?;
        let plausible =
            (kind.starts_with("ssh-") || kind.starts_with("ecdsa-") || kind.starts_with("sk-"))
                && !blob.is_empty()
                && blob
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+/=".contains(c));
        plausible.then(|| HostKey {
            kind: kind.to_string(),
            blob: blob.to_string(),
        })
    }
}

/// What the console says about the host keys: fingerprints, and the keys themselves where
/// cloud-init printed them. Empty when the image printed nothing (no cloud-init).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConsoleKeys {
    pub fingerprints: Vec<String>,
    pub keys: Vec<HostKey>,
}

impl ConsoleKeys {
    /// Whether the console vouches for nothing.
    pub fn is_empty(&self) -> bool {
        self.fingerprints.is_empty() && self.keys.is_empty()
    }

    /// Whether the console vouches for `key`: its fingerprint or the key itself is there.
    pub fn vouches_for(&self, key: &HostKey) -> bool {
        self.keys.contains(key)
            || key
                .fingerprint()
                .is_some_and(|fingerprint| self.fingerprints.contains(&fingerprint))
    }
}

/// The fingerprints and keys between cloud-init's markers in a console output. Lines may
/// carry a prefix (`ec2: `); a section without its end marker counts up to the end.
pub fn parse_console(console: &str) -> ConsoleKeys {
    #[derive(PartialEq)]
    enum Section {
        None,
        Fingerprints,
        Keys,
    }
    let mut found = ConsoleKeys::default();
    let mut section = Section::None;
    for line in console.lines() {
        if line.contains("-----BEGIN SSH HOST KEY FINGERPRINTS-----") {
            section = Section::Fingerprints;
            continue;
        }
        if line.contains("-----BEGIN SSH HOST KEY KEYS-----") {
            section = Section::Keys;
            continue;
        }
        if line.contains("-----END SSH HOST KEY") {
            section = Section::None;
            continue;
        }
        match section {
            Section::None => {}
            Section::Fingerprints => found.fingerprints.extend(
                line.split_whitespace()
                    .filter(|word| word.starts_with("SHA256:") && word.len() > "SHA256:".len())
                    .map(str::to_string),
            ),
            Section::Keys => {
                // Skip a prefix such as `ec2:` before the key type.
                let words: Vec<&str> = line.split_whitespace().collect();
                if let Some(start) = words.iter().position(|w| {
                    w.starts_with("ssh-") || w.starts_with("ecdsa-") || w.starts_with("sk-")
                }) {
                    found
                        .keys
                        .extend(HostKey::from_fields(words[start..].iter().copied()));
                }
            }
        }
    }
    found
}

/// The keys in `ssh-keyscan` output (`host type base64` lines; `#` comments skipped).
pub fn parse_keyscan(output: &str) -> Vec<HostKey> {
    let mut keys: Vec<HostKey> = output
        .lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .filter_map(|line| HostKey::from_fields(line.split_whitespace().skip(1)))
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// The project's known_hosts file under tether's directory in `home`.
pub fn known_hosts_file(home: &Path, project: &str) -> PathBuf {
    home.join(".tether").join("known_hosts").join(project)
}

/// The keys the file holds for `alias` (an instance id); none when the file is absent.
pub fn known(file: &Path, alias: &str) -> std::io::Result<Vec<HostKey>> {
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(error),
    };
    Ok(keys_for(&text, alias))
}

fn keys_for(text: &str, alias: &str) -> Vec<HostKey> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let hosts = fields.next()?;
            hosts
                .split(',')
                .any(|host| host == alias)
                .then(|| HostKey::from_fields(fields))
                .flatten()
        })
        .collect()
}

/// Records `keys` for `alias`, replacing nothing: lines of other aliases stay as they are.
/// Written atomically (0600, in a 0700 directory).
pub fn record(file: &Path, alias: &str, keys: &[HostKey]) -> std::io::Result<()> {
    let mut text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(error) => return Err(error),
    };
    let present = keys_for(&text, alias);
    for key in keys.iter().filter(|key| !present.contains(key)) {
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&format!("{alias} {} {}\n", key.kind, key.blob));
    }
    crate::secrets::write(file, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    // A public key made by `ssh-keygen -t ed25519`.
    const KEY: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";

    fn key() -> HostKey {
        HostKey {
            kind: "ssh-ed25519".into(),
            blob: KEY.into(),
        }
    }

    #[test]
    fn fingerprints_are_openssh_s() {
        // As `ssh-keygen -lf` prints it for this key.
        assert_eq!(
            key().fingerprint().as_deref(),
            Some("SHA256:+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU")
        );
    }

    #[test]
    fn the_console_sections_of_cloud_init_are_read_with_or_without_a_prefix() {
        let fingerprint = key().fingerprint().expect("base64");
        let console = format!(
            "[   12.3] cloud-init[812]: boot\n\
             ec2: -----BEGIN SSH HOST KEY FINGERPRINTS-----\n\
             ec2: 256 {fingerprint} root@ip-10-0-0-1 (ED25519)\n\
             ec2: 3072 SHA256:AAAA root@ip-10-0-0-1 (RSA)\n\
             ec2: -----END SSH HOST KEY FINGERPRINTS-----\n\
             -----BEGIN SSH HOST KEY KEYS-----\n\
             ssh-ed25519 {KEY} root@ip-10-0-0-1\n\
             -----END SSH HOST KEY KEYS-----\n\
             SHA256:outside-is-ignored\n"
        );
        let found = parse_console(&console);
        assert_eq!(found.fingerprints, [fingerprint, "SHA256:AAAA".to_string()]);
        assert_eq!(found.keys, [key()]);
        assert!(found.vouches_for(&key()));
        let other = HostKey {
            kind: "ssh-ed25519".into(),
            blob: "AAAAC3NzaC1lZDI1NTE5AAAAIBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB".into(),
        };
        assert!(!found.vouches_for(&other));
        assert!(parse_console("no cloud-init here\n").is_empty());
    }

    #[test]
    fn keyscan_output_gives_its_keys() {
        let output = format!("# 127.0.0.1:2222 SSH-2.0-OpenSSH_9.2\n[127.0.0.1]:2222 ssh-ed25519 {KEY}\n[127.0.0.1]:2222 ssh-ed25519 {KEY}\n");
        assert_eq!(parse_keyscan(&output), [key()]);
    }

    #[test]
    fn the_file_keeps_keys_by_alias_and_other_lines_as_they_are() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("known_hosts").join("lab");
        assert_eq!(known(&file, "i-1").expect("absent is empty"), []);
        record(&file, "i-1", &[key()]).expect("record");
        record(&file, "i-2", &[key()]).expect("record");
        record(&file, "i-1", &[key()]).expect("again: nothing added");
        let text = std::fs::read_to_string(&file).expect("read");
        assert_eq!(text.lines().count(), 2, "{text}");
        assert_eq!(known(&file, "i-1").expect("read"), [key()]);
        assert_eq!(known(&file, "i-3").expect("read"), []);
    }
}
