//! Command jobs: one child process per input, run through `sh -c` with bounded
//! parallelism: the machine's cores for `mode: cpu`, four times as many (at most 256) for
//! `mode: io`. The paths reach the shell as data only: the script (the template with its
//! placeholders made variable references, at spec load) reads them from `TETHER_INPUT`
//! and `TETHER_OUTPUT`, so no file name or S3 key is ever pasted into shell code.
//!
//! S3 inputs are downloaded to a temporary file first; `{output}` is a fresh temporary path,
//! uploaded (one PutObject, so complete or absent) when the task succeeds. Each task runs
//! in its own process group, killed whole when the run is dropped (Ctrl-C), so nothing a
//! task started outlives tether.

use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use futures::stream::{self, StreamExt};

use super::logs::TaskLogs;
use super::{millis, tail, Event, Input, OnEvent, Options, RunError, Source, Status, TaskSummary};
use crate::aws::Cloud;
use crate::spec::{
    JobSpec, Mode, Output, INPUT_VARIABLE, IO_TASKS_PER_CORE, MAX_IO_TASKS, OUTPUT_VARIABLE,
};

/// Lines of stderr kept for a failed task's report.
const STDERR_LINES: usize = 20;
const STDERR_BYTES: usize = 4096;

pub struct Settings<'a> {
    /// Shell code that reads its paths from `TETHER_INPUT` and `TETHER_OUTPUT`.
    pub script: &'a str,
    /// The command writes `{output}`, to be collected.
    pub writes_output: bool,
    pub mode: Mode,
    pub parallelism: Option<usize>,
}

/// Tasks at once for `mode` on `cores` cores, unless the spec says.
pub fn parallelism(mode: Mode, cores: usize, declared: Option<usize>) -> usize {
    declared.unwrap_or(match mode {
        Mode::Cpu => cores,
        Mode::Io => (cores * IO_TASKS_PER_CORE).min(MAX_IO_TASKS),
    })
}

/// A task's process group, killed whole if the task is dropped before it ends (Ctrl-C):
/// killing only the shell would leave what it started running.
struct ProcessGroup(Option<u32>);

impl ProcessGroup {
    /// The task ended by itself: nothing to kill.
    fn finished(mut self) {
        self.0 = None;
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        if let Some(id) = self.0.and_then(|id| libc::pid_t::try_from(id).ok()) {
            // SAFETY: a plain signal to the group this task's shell leads.
            #[allow(unsafe_code)]
            unsafe {
                libc::kill(-id, libc::SIGKILL);
            }
        }
    }
}

/// Where a run's tasks keep their files: downloads and outputs, logs, and the records of
/// a local output directory.
#[derive(Clone, Copy)]
struct Place<'a> {
    workdir: &'a Path,
    logs: &'a TaskLogs,
    records: &'a LocalRecords,
}

/// Runs a task per input (one task when the job has no inputs).
pub async fn run(
    cloud: &Cloud,
    job: &JobSpec,
    settings: Settings<'_>,
    inputs: Vec<Input>,
    options: &Options,
    on_event: OnEvent<'_>,
) -> Result<Vec<TaskSummary>, RunError> {
    let workdir = crate::secrets::private_temp_dir(&format!("tether-{}-", job.name))
        .map_err(RunError::WorkDir)?;
    let names: Vec<String> = if job.inputs.is_none() {
        vec![job.name.clone()]
    } else {
        inputs.iter().map(|i| i.name.clone()).collect()
    };
    // Tasks' stderr goes to the job's log directory when the run keeps logs, else to the
    // working directory, gone with it.
    let logs_dir = options.logs.as_ref().map_or_else(
        || workdir.path().to_path_buf(),
        |root| super::logs::job_dir(root, &job.name),
    );
    let logs = super::logs::TaskLogs::start(&logs_dir, &names).map_err(RunError::Logs)?;
    let at_once = parallelism(settings.mode, options.cores, settings.parallelism);
    let stop = AtomicBool::new(false);
    let inputs: Vec<Option<Input>> = if job.inputs.is_none() {
        vec![None]
    } else {
        inputs.into_iter().map(Some).collect()
    };
    // `--resume` over a local output directory reads its records once.
    let records = match (&job.output, options.resume) {
        (Some(Output::Local(directory)), true) => {
            LocalRecords::read(&options.base_dir.join(directory))
        }
        _ => LocalRecords::default(),
    };
    let place = Place {
        workdir: workdir.path(),
        logs: &logs,
        records: &records,
    };
    let (settings, stop, place) = (&settings, &stop, &place);
    let mut tasks: Vec<TaskSummary> = stream::iter(inputs.into_iter().enumerate())
        .map(|(index, input)| async move {
            let task = if stop.load(Ordering::Relaxed) {
                skipped(input.as_ref())
            } else {
                let task =
                    run_task(cloud, job, settings, input.as_ref(), index, place, options).await;
                if task.status == Status::Failed && options.fail_fast {
                    stop.store(true, Ordering::Relaxed);
                }
                task
            };
            on_event(Event::TaskFinished {
                job: &job.name,
                status: task.status,
                bytes: task.bytes,
            });
            task
        })
        .buffer_unordered(at_once)
        .collect()
        .await;
    tasks.sort_by(|a, b| a.input.cmp(&b.input));
    Ok(tasks)
}

fn input_name(input: Option<&Input>) -> String {
    input.map(|i| i.name.clone()).unwrap_or_default()
}

fn skipped(input: Option<&Input>) -> TaskSummary {
    TaskSummary {
        input: input_name(input),
        status: Status::Skipped,
        duration_ms: 0,
        bytes: 0,
        count: None,
        exit_code: None,
        attempts: 0,
        output: None,
        error: Some("not started: an earlier task failed and --fail-fast is set".into()),
        resumed: false,
    }
}

/// The longest part of an input's name kept in its working file's name: keys run to 1,024
/// bytes, file names to 255.
const FLAT_NAME_BYTES: usize = 96;

/// A file name for `relative` inside the working directory: the task's index (which makes
/// it unique) and the end of its base name (which keeps its extension, for programs that
/// look at it).
fn flat_name(index: usize, relative: &str) -> String {
    let base = Path::new(relative)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".into());
    let mut start = base.len().saturating_sub(FLAT_NAME_BYTES);
    while !base.is_char_boundary(start) {
        start += 1;
    }
    format!("{index}-{}", &base[start..])
}

async fn run_task(
    cloud: &Cloud,
    job: &JobSpec,
    settings: &Settings<'_>,
    input: Option<&Input>,
    index: usize,
    place: &Place<'_>,
    options: &Options,
) -> TaskSummary {
    let Place {
        workdir,
        logs,
        records,
    } = *place;
    let started = Instant::now();
    let mut summary = TaskSummary {
        input: input_name(input),
        status: Status::Failed,
        duration_ms: 0,
        bytes: input.map_or(0, |i| i.size),
        count: None,
        exit_code: None,
        attempts: 0,
        output: None,
        error: None,
        resumed: false,
    };
    let relative = input.map_or("output", |i| i.relative.as_str());
    let record = source_record(settings.script, input);
    if options.resume {
        let local = (options.base_dir.as_path(), records);
        if let Some(place) = resumable(cloud, job, relative, record.as_deref(), local).await {
            summary.status = Status::Succeeded;
            summary.resumed = true;
            summary.output = Some(place);
            summary.bytes = 0;
            return summary;
        }
    }
    // The input as a local file.
    let input_path: Option<PathBuf> = match input.map(|i| &i.source) {
        None => None,
        Some(Source::Local(path)) => Some(path.clone()),
        Some(Source::S3 { bucket, key }) => {
            let path = workdir.join(format!("in-{}", flat_name(index, relative)));
            if let Err(error) = cloud.download(bucket, key, &path).await {
                summary.error = Some(error.to_string());
                summary.duration_ms = millis(started.elapsed());
                return summary;
            }
            Some(path)
        }
    };
    let output_path = workdir.join(format!("out-{}", flat_name(index, relative)));
    // Stderr goes to the task's log file, read only when the task fails: cheaper than a
    // pipe the runtime must drain for every task.
    let mut attempt_start = 0;
    for attempt in 1..=options.retries + 1 {
        summary.attempts = attempt;
        if attempt > 1 {
            // A failed attempt's output must not pass for the next one's.
            let _ = std::fs::remove_file(&output_path);
        }
        let outcome = async {
            let (stderr, start) = logs.open(index, attempt)?;
            attempt_start = start;
            let mut command = tokio::process::Command::new("sh");
            command
                .arg("-c")
                .arg(settings.script)
                .env(OUTPUT_VARIABLE, &output_path);
            if let Some(path) = &input_path {
                command.env(INPUT_VARIABLE, path);
            }
            let mut child = command
                .current_dir(&options.base_dir)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(stderr)
                // Its own process group, so that everything the task starts can be
                // stopped together.
                .process_group(0)
                .kill_on_drop(true)
                .spawn()?;
            let group = ProcessGroup(child.id());
            let status = child.wait().await;
            group.finished();
            status
        }
        .await;
        match outcome {
            Err(error) => {
                summary.error = Some(format!("cannot run `sh`: {error}"));
            }
            Ok(status) => {
                summary.exit_code = status.code();
                if status.success() {
                    summary.error = None;
                    summary.status = Status::Succeeded;
                    break;
                }
                let stderr = logs.read_since(index, attempt_start);
                let how = match status.code() {
                    Some(code) => format!("exit code {code}"),
                    None => "killed by a signal".to_string(),
                };
                let stderr = tail(&stderr, STDERR_LINES, STDERR_BYTES);
                summary.error = Some(if stderr.is_empty() {
                    how
                } else {
                    format!("{how}: {stderr}")
                });
            }
        }
    }
    if summary.status == Status::Succeeded && settings.writes_output {
        match collect(
            cloud,
            job,
            &output_path,
            relative,
            options,
            record.as_deref(),
        )
        .await
        {
            Ok(place) => summary.output = Some(place),
            Err(error) => {
                summary.status = Status::Failed;
                summary.error = Some(error.to_string());
            }
        }
    }
    let _ = std::fs::remove_file(&output_path);
    if summary.status == Status::Succeeded {
        logs.discard(index);
    } else if options.echo_failed {
        // Where the agent's own output is the log people read (a Batch child's, in
        // CloudWatch Logs), a failed task's log is written there too, whole.
        let prefix = super::logs::echo_prefix(&summary.input);
        for line in logs.read_since(index, 0).lines() {
            eprintln!("{prefix}{}", crate::render::one_line(line));
        }
    }
    if matches!(input.map(|i| &i.source), Some(Source::S3 { .. })) {
        if let Some(path) = &input_path {
            let _ = std::fs::remove_file(path);
        }
    }
    summary.duration_ms = millis(started.elapsed());
    summary
}

/// Why a task's output could not be put where the job's `output` says.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// The command succeeded without writing its output file.
    #[error("the command succeeded but wrote nothing to {{output}}")]
    NothingWritten,
    /// The input's name would put the output outside the job's output prefix.
    #[error("the input's name `{0}` climbs out of the output prefix (`..`); nothing was written")]
    ClimbsOut(String),
    /// The input's name has nothing left to name the output by.
    #[error("the input's name `{0}` leaves no name for its output; nothing was written")]
    NoName(String),
    /// The upload to S3 failed.
    #[error(transparent)]
    Upload(#[from] crate::aws::AwsError),
    /// Writing the local output file failed.
    #[error("cannot write `{path}`: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The job's output names one file, not a place for one output per input.
    #[error("the job's output is not a prefix")]
    NotAPrefix,
}

/// The name a task's output takes below the job's output prefix or directory: the input's
/// relative name with empty and `.` segments dropped (keys may hold `//` or start with
/// `/`). A name with a `..` segment would put the output outside, whatever the store makes
/// of it, so it is refused; so is a name with nothing left.
pub fn output_name(relative: &str) -> Result<String, OutputError> {
    let mut segments = Vec::new();
    for segment in relative.split('/') {
        match segment {
            "" | "." => {}
            ".." => return Err(OutputError::ClimbsOut(relative.to_string())),
            _ => segments.push(segment),
        }
    }
    if segments.is_empty() {
        return Err(OutputError::NoName(relative.to_string()));
    }
    Ok(segments.join("/"))
}

/// The user metadata an output object carries: what made it (`source_record`).
pub const SOURCE_METADATA: &str = "tether-source";

/// What makes a task's output what it is: the job's command and the input's identity
/// (name, size, version), as one SHA-256. `None` when the input's version is unknown, or
/// there is no input: such a task is never taken as done.
fn source_record(script: &str, input: Option<&Input>) -> Option<String> {
    let input = input?;
    let version = input.version.as_deref()?;
    let identity = serde_json::json!({
        "command": script,
        "input": input.name,
        "size": input.size,
        "version": version,
    });
    Some(crate::hash::sha256_hex(identity.to_string().as_bytes()))
}

/// Where the task's output already is, when `--resume` may take the task as done: the
/// object exists and says this job's command made it from this version of the input.
/// Anything else (no object, another record, no record, an error reading it) runs the
/// task: a name alone is no evidence.
async fn resumable(
    cloud: &Cloud,
    job: &JobSpec,
    relative: &str,
    record: Option<&str>,
    (base_dir, local): (&Path, &LocalRecords),
) -> Option<String> {
    let record = record?;
    let name = output_name(relative).ok()?;
    match &job.output {
        Some(Output::S3Prefix { bucket, prefix }) => {
            let key = format!("{prefix}{name}");
            let metadata = cloud.object_metadata(bucket, &key).await.ok()??;
            (metadata.get(SOURCE_METADATA).map(String::as_str) == Some(record))
                .then(|| format!("s3://{bucket}/{key}"))
        }
        Some(Output::Local(directory)) => {
            let target = base_dir.join(directory).join(&name);
            local
                .made(&name, &target, record)
                .then(|| target.display().to_string())
        }
        _ => None,
    }
}

/// The file in a job's local output directory where each output's record is kept: one
/// JSON line per output written, appended when it is in place.
pub(crate) const LOCAL_RECORDS: &str = ".tether-sources";

/// One line of `LOCAL_RECORDS`: an output, what made it, and the file as it was written
/// (size and modification time), so that a file changed since is not taken as made.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct LocalRecord {
    output: String,
    source: String,
    size: u64,
    version: String,
}

/// The records of a local output directory, read once per run (`--resume`); the last line
/// of an output wins, and a line that does not parse is no record.
#[derive(Debug, Default)]
struct LocalRecords(std::collections::HashMap<String, LocalRecord>);

impl LocalRecords {
    fn read(directory: &Path) -> LocalRecords {
        let text = std::fs::read_to_string(directory.join(LOCAL_RECORDS)).unwrap_or_default();
        LocalRecords(
            text.lines()
                .filter_map(|line| serde_json::from_str::<LocalRecord>(line).ok())
                .map(|record| (record.output.clone(), record))
                .collect(),
        )
    }

    /// Whether `target` is the output named `name` as this run's `record` made it: a
    /// regular file (not a link) of the recorded size and modification time.
    fn made(&self, name: &str, target: &Path, record: &str) -> bool {
        let Some(kept) = self.0.get(name) else {
            return false;
        };
        let Ok(metadata) = std::fs::symlink_metadata(target) else {
            return false;
        };
        kept.source == record
            && metadata.is_file()
            && metadata.len() == kept.size
            && super::file_version(&metadata).as_deref() == Some(kept.version.as_str())
    }

    /// Notes that `target` (output `name`) was made by `record`.
    fn append(directory: &Path, name: &str, target: &Path, record: &str) -> std::io::Result<()> {
        use std::io::Write;
        let metadata = std::fs::symlink_metadata(target)?;
        let line = LocalRecord {
            output: name.to_string(),
            source: record.to_string(),
            size: metadata.len(),
            version: super::file_version(&metadata).unwrap_or_default(),
        };
        let mut text = serde_json::to_string(&line).expect("a record serialises");
        text.push('\n');
        // One write of one line, appended: lines of tasks ending together do not mix.
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(directory.join(LOCAL_RECORDS))?
            .write_all(text.as_bytes())
    }
}

/// Puts a task's output where the job's `output` says, named after its input.
async fn collect(
    cloud: &Cloud,
    job: &JobSpec,
    output_path: &Path,
    relative: &str,
    options: &Options,
    record: Option<&str>,
) -> Result<String, OutputError> {
    if !output_path.is_file() {
        return Err(OutputError::NothingWritten);
    }
    let relative = output_name(relative)?;
    match &job.output {
        Some(Output::S3Prefix { bucket, prefix }) => {
            let key = format!("{prefix}{relative}");
            // The record goes with the object, in one call: an output is never taken for
            // done without the evidence of what made it.
            let metadata = record.map(|record| (SOURCE_METADATA, record));
            cloud
                .upload_with(
                    bucket,
                    &key,
                    output_path,
                    crate::aws::Headers {
                        metadata,
                        content_encoding: None,
                    },
                )
                .await?;
            Ok(format!("s3://{bucket}/{key}"))
        }
        Some(Output::Local(directory)) => {
            let target = options.base_dir.join(directory).join(&relative);
            let write_error = |source| OutputError::Write {
                path: target.display().to_string(),
                source,
            };
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(write_error)?;
            }
            // Copy to a temporary file, then rename: the output appears complete or not at
            // all. Its name is new and random (`.tether-` and six characters, made with
            // O_EXCL), so it is no other task's output and replaces nothing.
            let parent = target.parent().unwrap_or(Path::new("."));
            let mut partial = tempfile::Builder::new()
                .prefix(".tether-")
                .suffix(".partial")
                .tempfile_in(parent)
                .map_err(write_error)?;
            let mut source = std::fs::File::open(output_path).map_err(write_error)?;
            std::io::copy(&mut source, partial.as_file_mut()).map_err(write_error)?;
            // The mode the task gave its output, as a copy would keep it.
            let permissions = source.metadata().map_err(write_error)?.permissions();
            partial
                .as_file()
                .set_permissions(permissions)
                .map_err(write_error)?;
            partial
                .persist(&target)
                .map_err(|error| write_error(error.error))?;
            if let Some(record) = record {
                let root = options.base_dir.join(directory);
                LocalRecords::append(&root, &relative, &target, record).map_err(write_error)?;
            }
            Ok(target.display().to_string())
        }
        _ => Err(OutputError::NotAPrefix),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Regression: a 1,024-byte key made a working file name longer than the file system
    // takes, and its task failed.
    #[test]
    fn working_file_names_are_short_unique_and_keep_the_extension() {
        let long = format!("dir/{}é.csv", "L".repeat(1020));
        let name = flat_name(7, &long);
        assert!(name.len() <= 4 + FLAT_NAME_BYTES, "{}", name.len());
        assert!(name.starts_with("7-") && name.ends_with("é.csv"));
        assert_eq!(flat_name(0, "a/b.txt"), "0-b.txt");
        assert_eq!(flat_name(1, ".."), "1-output");
    }

    #[test]
    fn output_names_stay_below_their_prefix() {
        for (relative, expected) in [
            ("a/b.txt", Ok("a/b.txt")),
            ("//a//./b.txt", Ok("a/b.txt")),
            ("/etc/passwd", Ok("etc/passwd")),
            ("a b/$(x)`y`;'\"", Ok("a b/$(x)`y`;'\"")),
            ("../b.txt", Err("climbs out")),
            ("a/../../b", Err("climbs out")),
            ("./", Err("leaves no name")),
        ] {
            match (output_name(relative), expected) {
                (Ok(name), Ok(want)) => assert_eq!(name, want, "{relative}"),
                (Err(error), Err(want)) => {
                    let error = error.to_string();
                    assert!(error.contains(want), "{relative}: {error}");
                }
                (got, want) => panic!("{relative}: {got:?}, expected {want:?}"),
            }
        }
    }

    #[test]
    fn io_runs_more_tasks_than_cpu_and_is_capped() {
        assert_eq!(parallelism(Mode::Cpu, 2, None), 2);
        assert_eq!(parallelism(Mode::Io, 2, None), 8);
        assert_eq!(parallelism(Mode::Io, 128, None), MAX_IO_TASKS);
        assert_eq!(parallelism(Mode::Io, 2, Some(3)), 3);
    }
}
