//! The secrets tether makes — console passwords, access keys, private keys — where they are
//! kept in the team's store (Parameter Store names), and the only local files they go to.
//!
//! Passwords are drawn from the operating system's CSPRNG. Secret files are written with
//! mode 0600 (0400 for private keys) in directories of mode 0700, through a temporary file
//! renamed into place, so a reader never sees half a secret; a symlinked file is written
//! through its link, which stays. Nothing here prints, logs or returns a secret in an error:
//! callers hold the value only long enough to hand it to AWS, the store and `write`.
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

/// The Parameter Store name of a generated key pair's private key: where AWS itself keeps
/// those that CloudFormation makes.
pub fn key_pair_parameter(key_pair_id: &str) -> String {
    format!("/ec2/keypair/{key_pair_id}")
}

/// The Parameter Store name of a user's access key (a JSON document with `AccessKeyId` and
/// `SecretAccessKey`).
pub fn access_key_parameter(project: &str, user: &str) -> String {
    format!("/tether/{project}/users/{user}/access-key")
}

/// The Parameter Store name of a user's console password.
pub fn password_parameter(project: &str, user: &str) -> String {
    format!("/tether/{project}/users/{user}/console-password")
}

/// The secrets a user can have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserSecret {
    AccessKey,
    ConsolePassword,
}

impl UserSecret {
    /// Its Parameter Store name.
    pub fn parameter(self, project: &str, user: &str) -> String {
        match self {
            UserSecret::AccessKey => access_key_parameter(project, user),
            UserSecret::ConsolePassword => password_parameter(project, user),
        }
    }

    /// Its local file under `secrets_dir`.
    pub fn file(self, secrets_dir: &Path, project: &str, user: &str) -> PathBuf {
        match self {
            UserSecret::AccessKey => credentials_file(secrets_dir, project, user),
            UserSecret::ConsolePassword => password_file(secrets_dir, project, user),
        }
    }
}

/// Whether `name` can be one segment of a Parameter Store path (letters, digits, `_.-`).
pub fn is_parameter_segment(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// An access key as stored in Parameter Store.
pub fn access_key_document(access_key_id: &str, secret_access_key: &str) -> String {
    serde_json::json!({
        "AccessKeyId": access_key_id,
        "SecretAccessKey": secret_access_key,
    })
    .to_string()
}

/// The id and secret of a stored access key document, if it is one.
pub fn parse_access_key_document(text: &str) -> Option<(String, String)> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    Some((
        value.get("AccessKeyId")?.as_str()?.to_string(),
        value.get("SecretAccessKey")?.as_str()?.to_string(),
    ))
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

/// A new temporary directory of mode 0700 (its name starts with `prefix`), removed when
/// dropped: job scratch space (downloaded inputs, outputs on their way to S3) and ssh's
/// control sockets, which no other user may read, list or put files in. `tempfile` makes
/// directories with the umask's mode (usually 0755) unless told otherwise.
pub fn private_temp_dir(prefix: &str) -> io::Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix(prefix)
        .permissions(fs::Permissions::from_mode(0o700))
        .tempdir()
}

/// Writes `contents` to `path` with mode 0600, creating missing directories with mode 0700.
/// The file appears whole or not at all: the text goes to a temporary file beside it, which
/// is renamed over `path`.
pub fn write(path: &Path, contents: &str) -> io::Result<()> {
    write_with_mode(path, contents, 0o600)
}

/// `write` with another file mode (0400 for private keys, as ssh expects). A secret is
/// never written into a file another user owns, nor into a directory another user owns
/// or may write in (but for a sticky one such as `/tmp`, where nobody may replace another's
/// file): that user could read it, or replace it later. The new file is always this
/// process's own, even when it runs as root and the old one was someone else's.
pub fn write_with_mode(path: &Path, contents: &str, mode: u32) -> io::Result<()> {
    write_file(path, contents, mode, Owner::Ours)
}

/// Writes a user's own file that tether edits a part of (an ssh config): as
/// `write_with_mode`, but the file being replaced keeps its owner (a config file that root
/// edits for a user stays the user's).
pub fn write_config(path: &Path, contents: &str, mode: u32) -> io::Result<()> {
    write_file(path, contents, mode, Owner::Kept)
}

/// Whose a written file is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Owner {
    /// This process's (a secret), in a place no other user controls.
    Ours,
    /// The replaced file's owner's.
    Kept,
}

fn write_file(path: &Path, contents: &str, mode: u32, owner: Owner) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    // A dotfile manager's symlink stays a symlink: the file it points to is replaced.
    let target = resolve_symlinks(path)?;
    let path = target.as_path();
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
    let previous_owner = fs::metadata(path).ok().map(|m| (m.uid(), m.gid()));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&temporary)?;
        match owner {
            Owner::Ours => {
                // What this process creates is its own: that is who "we" are.
                let me = file.metadata()?.uid();
                check_private_place(dir, path, me)?;
            }
            Owner::Kept => {
                if let Some((uid, gid)) = previous_owner {
                    match std::os::unix::fs::fchown(&file, Some(uid), Some(gid)) {
                        // Only root may give a file away; anyone else writes their own file.
                        Err(error) if error.kind() == io::ErrorKind::PermissionDenied => {}
                        other => other?,
                    }
                }
            }
        }
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

/// Refuses to put a file of user `me` at `target` in `dir` when another user owns the file
/// there, owns the directory (root's are fine), or may write in it without the sticky bit.
fn check_private_place(dir: &Path, target: &Path, me: u32) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let refuse = |message: String| Err(io::Error::new(io::ErrorKind::PermissionDenied, message));
    let directory = fs::metadata(dir)?;
    if directory.uid() != me && directory.uid() != 0 {
        return refuse(format!(
            "the directory `{}` belongs to another user (uid {}), who could read or replace a secret written there",
            dir.display(),
            directory.uid()
        ));
    }
    let sticky = directory.mode() & 0o1000 != 0;
    if directory.mode() & 0o022 != 0 && !sticky {
        return refuse(format!(
            "the directory `{}` is writable by other users (mode {:o}), who could replace a secret written there",
            dir.display(),
            directory.mode() & 0o777
        ));
    }
    match fs::symlink_metadata(target) {
        Ok(existing) if existing.uid() != me => refuse(format!(
            "`{}` belongs to another user (uid {}): a secret is never written into a file another user owns",
            target.display(),
            existing.uid()
        )),
        _ => Ok(()),
    }
}

/// `path` with every symlink on its last component followed (relative links resolved
/// against their directory), so a write replaces the file the link points to.
fn resolve_symlinks(path: &Path) -> io::Result<PathBuf> {
    let mut current = path.to_path_buf();
    for _ in 0..40 {
        match fs::symlink_metadata(&current) {
            Ok(metadata) if metadata.file_type().is_symlink() => {
                let link = fs::read_link(&current)?;
                current = match current.parent() {
                    Some(dir) if link.is_relative() => dir.join(link),
                    _ => link,
                };
            }
            _ => return Ok(current),
        }
    }
    Err(io::Error::other(format!(
        "too many levels of symbolic links at `{}`",
        path.display()
    )))
}

/// The file where tether notes which files it wrote secrets to (path and SHA-256 of what it
/// wrote), so that it replaces its own stale copies but never a file someone else wrote.
/// It lives in the secrets directory and holds no secret.
fn ledger_file(secrets_dir: &Path) -> PathBuf {
    secrets_dir.join("written-files")
}

fn ledger_line(path: &Path, contents: &str) -> String {
    format!(
        "{} {}",
        crate::hash::sha256_hex(contents.as_bytes()),
        path.display()
    )
}

/// What `write_owned` found at the path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Written {
    /// The file is new, or was tether's own older copy and now holds `contents`.
    Written,
    /// The file already held exactly `contents`.
    Unchanged,
}

/// Why `write_owned` did not write.
#[derive(Debug, thiserror::Error)]
pub enum OwnedWriteError {
    /// A different file is there that tether did not write: it is never overwritten.
    #[error("refusing to overwrite `{path}`, which tether did not write")]
    NotOurs { path: String },
    /// Reading or writing failed.
    #[error("cannot write `{path}`: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
}

/// Writes a secret to `path` with `mode`, as `write_with_mode` does, unless a file tether
/// did not write is there: a stale copy tether wrote (for a key pair since destroyed, say)
/// is replaced, anyone else's file is refused. `secrets_dir` holds the record of what
/// tether wrote.
pub fn write_owned(
    path: &Path,
    contents: &str,
    mode: u32,
    secrets_dir: &Path,
) -> Result<Written, OwnedWriteError> {
    let io_error = |source| OwnedWriteError::Io {
        path: path.display().to_string(),
        source,
    };
    let target = resolve_symlinks(path).map_err(io_error)?;
    let existing = existing_file(path, &target)?;
    if existing.as_deref() == Some(contents) {
        return Ok(Written::Unchanged);
    }
    refuse_unless_ours(path, &target, existing.as_deref(), secrets_dir)?;
    // The record goes first: a crash after it leaves a file tether may replace next time,
    // never one it would refuse.
    let ledger = ledger_file(secrets_dir);
    let mut recorded = fs::read_to_string(&ledger).unwrap_or_default();
    let line = ledger_line(&target, contents);
    if !recorded.lines().any(|l| l == line) {
        recorded.push_str(&line);
        recorded.push('\n');
        write(&ledger, &recorded).map_err(io_error)?;
    }
    write_with_mode(&target, contents, mode).map_err(io_error)?;
    Ok(Written::Written)
}

/// Whether tether may write a secret to `path`: nothing is there, or what is there is a
/// copy tether wrote (recorded in `secrets_dir`), not anyone else's file.
pub fn check_writable(path: &Path, secrets_dir: &Path) -> Result<(), OwnedWriteError> {
    let target = resolve_symlinks(path).map_err(|source| OwnedWriteError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let existing = existing_file(path, &target)?;
    refuse_unless_ours(path, &target, existing.as_deref(), secrets_dir)
}

/// The text at `target` (the resolved `path`), `None` when there is no file. One that
/// cannot be read is not tether's to replace.
fn existing_file(path: &Path, target: &Path) -> Result<Option<String>, OwnedWriteError> {
    match fs::read_to_string(target) {
        Ok(existing) => Ok(Some(existing)),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(_) => Err(OwnedWriteError::NotOurs {
            path: path.display().to_string(),
        }),
    }
}

/// Refuses when a file is at `target` that tether's ledger does not record writing.
fn refuse_unless_ours(
    path: &Path,
    target: &Path,
    existing: Option<&str>,
    secrets_dir: &Path,
) -> Result<(), OwnedWriteError> {
    let Some(existing) = existing else {
        return Ok(());
    };
    let recorded = fs::read_to_string(ledger_file(secrets_dir)).unwrap_or_default();
    let ours = ledger_line(target, existing);
    if recorded.lines().any(|line| line == ours) {
        Ok(())
    } else {
        Err(OwnedWriteError::NotOurs {
            path: path.display().to_string(),
        })
    }
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
    fn a_secret_written_through_a_symlink_keeps_the_link() {
        let dir = tempfile::tempdir().expect("temp dir");
        let target = dir.path().join("dotfiles/ssh/lab-key.pem");
        fs::create_dir_all(target.parent().unwrap()).expect("dotfiles");
        let link = dir.path().join("lab-key.pem");
        std::os::unix::fs::symlink("dotfiles/ssh/lab-key.pem", &link).expect("relative link");
        write_with_mode(&link, "key", 0o400).expect("write");
        assert!(fs::symlink_metadata(&link)
            .expect("link")
            .file_type()
            .is_symlink());
        assert_eq!(fs::read_to_string(&target).expect("target"), "key");
        let mode = fs::metadata(&target).expect("target").permissions().mode() & 0o777;
        assert_eq!(mode, 0o400);
    }

    #[test]
    fn only_files_tether_wrote_are_replaced() {
        let dir = tempfile::tempdir().expect("temp dir");
        let secrets_dir = dir.path().join("secrets");
        let key = dir.path().join(".ssh/lab-key.pem");
        assert_eq!(
            write_owned(&key, "first key", 0o400, &secrets_dir).expect("new file"),
            Written::Written
        );
        assert_eq!(
            write_owned(&key, "first key", 0o400, &secrets_dir).expect("same"),
            Written::Unchanged
        );
        // tether's own copy of an earlier key pair is replaced.
        assert_eq!(
            write_owned(&key, "second key", 0o400, &secrets_dir).expect("replace ours"),
            Written::Written
        );
        assert_eq!(fs::read_to_string(&key).unwrap(), "second key");
        // Someone else's file is not.
        fs::remove_file(&key).unwrap();
        fs::write(&key, "my own key").unwrap();
        assert!(matches!(
            write_owned(&key, "third key", 0o400, &secrets_dir),
            Err(OwnedWriteError::NotOurs { .. })
        ));
        assert_eq!(fs::read_to_string(&key).unwrap(), "my own key");
        assert!(check_writable(&key, &secrets_dir).is_err());
    }

    #[test]
    fn access_key_documents_round_trip_and_parameter_names_are_checked() {
        let document = access_key_document("AKIDEXAMPLE", "not-a-real-secret");
        assert_eq!(
            parse_access_key_document(&document),
            Some(("AKIDEXAMPLE".into(), "not-a-real-secret".into()))
        );
        assert_eq!(parse_access_key_document("{}"), None);
        assert!(is_parameter_segment("erich.b-2_x"));
        for bad in ["", "ana+ops", "a=b", "a,b", "a@b", "a/b"] {
            assert!(!is_parameter_segment(bad), "{bad}");
        }
        assert_eq!(
            UserSecret::AccessKey.parameter("lab", "erich"),
            "/tether/lab/users/erich/access-key"
        );
        assert_eq!(
            crate::parameters::setting_record_parameter("lab", "password_policy"),
            "/tether/lab/account/password-policy"
        );
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
