//! Resolving a job's `inputs` into the list of things it processes: the files a local glob
//! matches, or the objects under an S3 prefix.

use std::path::{Path, PathBuf};

use crate::aws::{AwsError, Cloud};
use crate::diagnostic::Diagnostic;
use crate::spec::{Inputs, JobSpec};

/// One input of a job.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Input {
    /// How it is named in summaries: the path as the glob found it, or `s3://bucket/key`.
    pub name: String,
    /// Its name below the glob's fixed directory or the prefix: task outputs are named
    /// after it, so inputs in different directories do not collide.
    pub relative: String,
    pub source: Source,
    pub size: u64,
    /// Which version of it this is: an object's ETag, a file's modification time (in
    /// nanoseconds); what `--resume` compares, with the size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Source {
    Local(PathBuf),
    S3 { bucket: String, key: String },
}

pub enum ResolveError {
    /// Nothing matched and the job does not allow that, or two inputs would write one
    /// output: the job cannot start.
    Refused(Diagnostic),
    Aws(AwsError),
}

/// The job's inputs; a job without `inputs` has none (its command runs once).
pub async fn resolve(
    cloud: &Cloud,
    job: &JobSpec,
    base_dir: &Path,
) -> Result<Vec<Input>, ResolveError> {
    let found = match &job.inputs {
        None => return Ok(Vec::new()),
        Some(Inputs::Glob(pattern)) => local(pattern, base_dir).map_err(|message| {
            ResolveError::Refused(
                Diagnostic::new(message, Some(job.inputs_location.clone()))
                    .with_hint("`**` matches any directories; paths are relative to the spec file"),
            )
        })?,
        Some(Inputs::S3 { bucket, prefix }) => {
            let base = match prefix.rfind('/') {
                Some(slash) => &prefix[..=slash],
                None => "",
            };
            cloud
                .list_objects(bucket, prefix)
                .await
                .map_err(ResolveError::Aws)?
                .into_iter()
                .map(|object| Input {
                    name: format!("s3://{bucket}/{}", object.key),
                    relative: object.key[base.len()..].to_string(),
                    source: Source::S3 {
                        bucket: bucket.clone(),
                        key: object.key,
                    },
                    size: object.size,
                    version: object.etag,
                })
                .collect()
        }
    };
    if found.is_empty() && !job.allow_empty {
        let what = match &job.inputs {
            Some(Inputs::Glob(pattern)) => format!("`{pattern}` matches no file"),
            Some(Inputs::S3 { bucket, prefix }) => {
                format!("s3://{bucket}/{prefix} holds no object")
            }
            None => unreachable!("jobs without inputs returned above"),
        };
        return Err(ResolveError::Refused(
            Diagnostic::new(
                format!("job `{}`: {what}", job.name),
                Some(job.inputs_location.clone()),
            )
            .with_hint("check the path, or set `allow_empty: true` if nothing to do is fine"),
        ));
    }
    if job
        .output
        .as_ref()
        .is_some_and(crate::spec::Output::is_collection)
    {
        if let Some((first, second, output)) = clashing_outputs(&found) {
            return Err(ResolveError::Refused(
                Diagnostic::new(
                    format!("job `{}`: inputs `{}` and `{}` would both write the output `{output}`", job.name, first.escape_debug(), second.escape_debug()),
                    Some(job.inputs_location.clone()),
                )
                .with_hint("rename one of them, or narrow `inputs`: one output would silently replace the other"),
            ));
        }
    }
    Ok(found)
}

/// The first two inputs whose outputs would have one name (`command::output_name`), and
/// that name: keys `a//b` and `a/b`, or two file names that are not UTF-8 and read alike.
/// Names an output cannot take at all are left to fail their own task.
fn clashing_outputs(inputs: &[Input]) -> Option<(&str, &str, String)> {
    let mut seen: std::collections::HashMap<String, &str> = std::collections::HashMap::new();
    for input in inputs {
        let Ok(output) = super::command::output_name(&input.relative) else {
            continue;
        };
        if let Some(first) = seen.get(&output) {
            return Some((first, &input.name, output));
        }
        seen.insert(output, &input.name);
    }
    None
}

/// The regular files `pattern` matches below `base_dir`, sorted.
fn local(pattern: &str, base_dir: &Path) -> Result<Vec<Input>, String> {
    let pattern_path = Path::new(pattern);
    let full = if pattern_path.is_absolute() {
        pattern_path.to_path_buf()
    } else {
        base_dir.join(pattern_path)
    };
    // The directory before the first wildcard: outputs are named relative to it.
    let fixed: PathBuf = full
        .components()
        .filter(|c| *c != std::path::Component::CurDir)
        .take_while(|c| !c.as_os_str().to_string_lossy().contains(['*', '?', '[']))
        .collect();
    let fixed = if fixed == full {
        fixed.parent().map(Path::to_path_buf).unwrap_or_default()
    } else {
        fixed
    };
    // The part after the fixed directory is matched against each file's path below it,
    // read lossily, so a name that is not UTF-8 is matched (and processed) too: a glob
    // library that skips such names would drop inputs without a word.
    let rest = full.strip_prefix(&fixed).unwrap_or(&full);
    let matcher = glob::Pattern::new(&rest.to_string_lossy())
        .map_err(|error| format!("`{pattern}` is not a valid glob: {error}"))?;
    let options = glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: true,
        require_literal_leading_dot: false,
    };
    let depth = if rest.to_string_lossy().contains("**") {
        usize::MAX
    } else {
        rest.components().count()
    };
    let mut files = Vec::new();
    walk(&fixed, depth, &mut files)?;
    let mut found = Vec::new();
    for (path, size) in files {
        // tether's record of a local output directory is no one's input.
        if path.file_name() == Some(std::ffi::OsStr::new(super::command::LOCAL_RECORDS)) {
            continue;
        }
        let relative_path = path.strip_prefix(&fixed).unwrap_or(&path);
        if !matcher.matches_path_with(relative_path, options)
            && !matcher.matches_with(&relative_path.to_string_lossy(), options)
        {
            continue;
        }
        let relative = relative_path.to_string_lossy().into_owned();
        let name = path
            .strip_prefix(base_dir)
            .unwrap_or(&path)
            .to_string_lossy()
            .into_owned();
        let version = std::fs::metadata(&path)
            .ok()
            .and_then(|m| super::file_version(&m));
        found.push(Input {
            name,
            relative,
            source: Source::Local(path),
            size,
            version,
        });
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

/// The regular files (symlinks followed) below `dir`, at most `depth` levels down, with
/// their sizes. Symlinked directories are not entered, so a link loop ends the walk.
fn walk(dir: &Path, depth: usize, files: &mut Vec<(PathBuf, u64)>) -> Result<(), String> {
    if depth == 0 {
        return Ok(());
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(format!("cannot read {}: {error}", dir.display())),
    };
    for entry in entries {
        let entry = entry.map_err(|error| format!("cannot read {}: {error}", dir.display()))?;
        let path = entry.path();
        let kind = entry
            .file_type()
            .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
        if kind.is_dir() {
            walk(&path, depth - 1, files)?;
        } else if let Ok(metadata) = std::fs::metadata(&path) {
            if metadata.is_file() {
                files.push((path, metadata.len()));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::local;

    #[test]
    fn a_glob_finds_files_named_relative_to_its_fixed_directory() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("data/a")).expect("dirs");
        std::fs::create_dir_all(dir.path().join("data/b")).expect("dirs");
        std::fs::write(dir.path().join("data/a/x.txt"), "x").expect("file");
        std::fs::write(dir.path().join("data/b/x.txt"), "xx").expect("file");
        std::fs::write(dir.path().join("data/b/y.csv"), "y").expect("file");
        let found = local("./data/**/*.txt", dir.path()).expect("glob");
        let relative: Vec<&str> = found.iter().map(|i| i.relative.as_str()).collect();
        assert_eq!(relative, ["a/x.txt", "b/x.txt"]);
        assert_eq!(found[1].size, 2);
        assert!(local("./nothing/*.txt", dir.path())
            .expect("glob")
            .is_empty());
        // One level only without `**`; a literal path names one file.
        let top: Vec<String> = local("./data/*", dir.path())
            .expect("glob")
            .into_iter()
            .map(|i| i.relative)
            .collect();
        assert!(top.is_empty(), "{top:?}");
        let one = local("./data/b/y.csv", dir.path()).expect("literal");
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].relative, "y.csv");
    }

    // Regression: a file whose name is not UTF-8 was skipped without a word.
    #[test]
    fn names_that_are_not_utf8_are_inputs_too() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("in")).expect("dir");
        let raw = std::ffi::OsStr::from_bytes(b"x-\xff.txt");
        std::fs::write(dir.path().join("in").join(raw), "raw").expect("file");
        std::fs::write(dir.path().join("in/plain.txt"), "plain").expect("file");
        let found = local("./in/*", dir.path()).expect("glob");
        assert_eq!(found.len(), 2);
        assert!(found
            .iter()
            .any(|i| matches!(&i.source, super::Source::Local(p) if p.file_name() == Some(raw))));
    }
}
