//! The secrets tether makes — console passwords and access keys — and the only files they
//! ever go to.
//!
//! Passwords are drawn from the operating system's CSPRNG. Secret files are written with
//! mode 0600 in directories of mode 0700, through a temporary file renamed into place, so a
//! reader never sees half a secret. Nothing here prints, logs or returns a secret in an
//! error: callers hold the value only long enough to hand it to AWS and to `write`.
//! This module does file I/O; it does not talk to AWS.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

const UPPER: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
const LOWER: &[u8] = b"abcdefghijkmnopqrstuvwxyz";
const DIGITS: &[u8] = b"23456789";
/// The symbols IAM counts as such.
const SYMBOLS: &[u8] = b"!@#$%^&*()_+-=[]{}|'";

/// Generated passwords are at least this long, whatever the policy's minimum.
pub const GENERATED_PASSWORD_LENGTH: usize = 24;

/// A password with upper- and lower-case letters, digits and symbols (so it meets any IAM
/// password policy's character rules) and at least `minimum_length` characters.
pub fn generate_password(minimum_length: u16) -> io::Result<String> {
    generate_password_with(minimum_length, &mut |bound| random_below(bound))
}

/// `generate_password` with the randomness supplied: `random(n)` returns an index below `n`.
pub fn generate_password_with(
    minimum_length: u16,
    random: &mut dyn FnMut(usize) -> io::Result<usize>,
) -> io::Result<String> {
    let length = GENERATED_PASSWORD_LENGTH.max(minimum_length.into());
    let classes = [UPPER, LOWER, DIGITS, SYMBOLS];
    let all: Vec<u8> = classes.concat();
    // One of each class, then any; then shuffle so the classes are not in fixed places.
    let mut chars: Vec<u8> = Vec::with_capacity(length);
    for class in classes {
        chars.push(class[random(class.len())?]);
    }
    while chars.len() < length {
        chars.push(all[random(all.len())?]);
    }
    for i in (1..chars.len()).rev() {
        chars.swap(i, random(i + 1)?);
    }
    Ok(String::from_utf8(chars).expect("ASCII"))
}

/// A uniformly random number below `bound`, by rejection sampling of OS randomness.
fn random_below(bound: usize) -> io::Result<usize> {
    let bound = u32::try_from(bound).map_err(|_| io::Error::other("bound too large"))?;
    let zone = u32::MAX - (u32::MAX % bound);
    loop {
        let value = getrandom::u32().map_err(|e| io::Error::other(e.to_string()))?;
        if value < zone {
            return Ok((value % bound) as usize);
        }
    }
}

/// Where a user's console password is written.
pub fn password_file(secrets_dir: &Path, project: &str, user: &str) -> PathBuf {
    secrets_dir.join(project).join(format!("{user}.password"))
}

/// Where a user's access key is written.
pub fn credentials_file(secrets_dir: &Path, project: &str, user: &str) -> PathBuf {
    secrets_dir
        .join(project)
        .join(format!("{user}.credentials"))
}

/// The profile name of a user's access key in its credentials file.
pub fn profile_name(project: &str, user: &str) -> String {
    format!("{project}-{user}")
}

/// An access key in the AWS shared-credentials format.
pub fn credentials_text(profile: &str, access_key_id: &str, secret_access_key: &str) -> String {
    format!("[{profile}]\naws_access_key_id = {access_key_id}\naws_secret_access_key = {secret_access_key}\n")
}

/// The access key id in a credentials file tether wrote, if the file is there and has one.
/// Only the id is read back; the secret stays in the file.
pub fn held_access_key_id(path: &Path) -> Option<String> {
    let text = fs::read_to_string(path).ok()?;
    text.lines().find_map(|line| {
        let (key, value) = line.split_once('=')?;
        (key.trim() == "aws_access_key_id").then(|| value.trim().to_string())
    })
}

/// Writes `contents` to `path` with mode 0600, creating missing directories with mode 0700.
/// The file appears whole or not at all: the text goes to a temporary file beside it, which
/// is renamed over `path`.
pub fn write(path: &Path, contents: &str) -> io::Result<()> {
    write_with_mode(path, contents, 0o600)
}

/// `write` with another file mode (0400 for private keys, as ssh expects).
pub fn write_with_mode(path: &Path, contents: &str, mode: u32) -> io::Result<()> {
    let dir = path.parent().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "a secret file needs a directory",
        )
    })?;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("secret");
    let temporary = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&temporary)?;
        file.write_all(contents.as_bytes())?;
        // Exactly `mode`, whatever the umask.
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        file.sync_all()?;
        fs::rename(&temporary, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    result
}

/// Why ssh would not use `path` as a private key, if it would not: the file cannot be
/// read, or others may read it (ssh refuses such keys). `subject` names the file in the
/// message ("the identity file `...`"). Returns the message and the fix.
pub fn private_key_problem(path: &Path, subject: &str) -> Option<(String, String)> {
    match fs::metadata(path) {
        Err(error) => Some((
            format!("{subject} cannot be read: {error}"),
            "apply the spec to create the key pair, or fix `identity_file`".to_string(),
        )),
        Ok(metadata) if metadata.permissions().mode() & 0o077 != 0 => Some((
            format!(
                "{subject} has mode {:o}: ssh refuses private keys that others can read",
                metadata.permissions().mode() & 0o777
            ),
            format!("chmod 400 '{}'", path.display()),
        )),
        Ok(_) => None,
    }
}

/// `~/...` made absolute with `home`; other paths are returned as they are.
pub fn expand_home(path: &str, home: Option<&Path>) -> PathBuf {
    match (path.strip_prefix("~/"), home) {
        (Some(rest), Some(home)) => home.join(rest),
        _ if path == "~" => home
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from(path)),
        _ => PathBuf::from(path),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn has_every_class(password: &str) -> bool {
        [UPPER, LOWER, DIGITS, SYMBOLS]
            .iter()
            .all(|class| password.bytes().any(|b| class.contains(&b)))
    }

    #[test]
    fn generated_passwords_meet_any_policy() {
        for minimum in [6, 8, 14, 24, 64, 128] {
            let password = generate_password(minimum).expect("randomness");
            assert!(
                password.len() >= usize::from(minimum).max(GENERATED_PASSWORD_LENGTH),
                "{minimum}"
            );
            assert!(has_every_class(&password), "every class present");
        }
        assert_ne!(
            generate_password(14).unwrap(),
            generate_password(14).unwrap()
        );
    }

    #[test]
    fn every_class_is_present_even_with_the_least_random_source() {
        let password = generate_password_with(14, &mut |_| Ok(0)).expect("password");
        assert_eq!(password.len(), GENERATED_PASSWORD_LENGTH);
        assert!(has_every_class(&password), "{password}");
    }

    #[test]
    fn secret_files_are_private_and_whole() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = credentials_file(&dir.path().join("secrets"), "lab", "erich");
        write(
            &path,
            &credentials_text("lab-erich", "AKIDEXAMPLE", "not-a-real-secret"),
        )
        .expect("write");
        let mode = fs::metadata(&path).expect("file").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dir_mode = fs::metadata(path.parent().unwrap())
            .expect("dir")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dir_mode, 0o700);
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "[lab-erich]\naws_access_key_id = AKIDEXAMPLE\naws_secret_access_key = not-a-real-secret\n"
        );
        let leftovers: Vec<_> = fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file left behind");
    }

    #[test]
    fn the_key_id_is_read_back_from_a_credentials_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("erich.credentials");
        assert_eq!(held_access_key_id(&path), None);
        write(
            &path,
            &credentials_text("lab-erich", "AKIDEXAMPLE", "not-a-real-secret"),
        )
        .expect("write");
        assert_eq!(held_access_key_id(&path).as_deref(), Some("AKIDEXAMPLE"));
    }

    #[test]
    fn home_expansion() {
        let home = Path::new("/home/ds");
        assert_eq!(
            expand_home("~/.tether/secrets", Some(home)),
            PathBuf::from("/home/ds/.tether/secrets")
        );
        assert_eq!(
            expand_home("/srv/secrets", Some(home)),
            PathBuf::from("/srv/secrets")
        );
        assert_eq!(expand_home("~/x", None), PathBuf::from("~/x"));
    }
}
