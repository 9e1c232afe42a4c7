//! Task logs: what each task of a job wrote to stderr, kept where the task ran, and what
//! `tether logs` reads back.
//!
//! A run of a command job keeps its tasks' stderr in the job's log directory: `run.json`
//! (the run's pid and its tasks' names, by index) and `<index>.log` per task. A task that
//! succeeds takes its log with it; a failed task's stays until the job runs again, every
//! attempt in it. Locally the directory is under `~/.tether/logs/<project>/<job>/`; on an
//! instance, under the job's directory, next to the agent's own `agent.log`. A Batch
//! child's agent also writes a failed task's log to its own stderr, which Batch sends to
//! CloudWatch Logs.
//!
//! Readers keep a [`Cursor`]: how far each file was read, so that following a log reads
//! only what was added (and starts again at a file that was cut short: a new run).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::remote::{self, Context, JobPlace, RemoteError};
use crate::aws::{AwsError, AwsErrorKind, Cloud};
use crate::spec::{BatchRun, JobSpec};

/// The run a job's log directory holds.
pub const RUN_FILE: &str = "run.json";
/// The agent's own log on an instance, beside its share.
pub const AGENT_LOG: &str = "agent.log";
/// How long a Batch job is followed after it ended: CloudWatch Logs may still be taking
/// in its last lines.
const BATCH_TAIL_POLLS: u32 = 2;
/// How far before the newest line seen a follower reads a Batch job's streams again
/// (ms): a line may reach CloudWatch Logs after a later line of another stream.
const LATE_MS: i64 = 30_000;
/// The longest wait between polls of a throttled follower.
const MAX_POLL: Duration = Duration::from_secs(60);

/// What `run.json` records.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    /// The process that ran the tasks.
    pub pid: u32,
    /// The tasks' names (their inputs), by index.
    pub tasks: Vec<String>,
}

/// Where this machine keeps the logs of `project`'s local jobs: under tether's directory in
/// `home`, beside its known_hosts files.
pub fn local_root(home: &Path, project: &str) -> PathBuf {
    home.join(".tether").join("logs").join(project)
}

/// The log directory of `job` under `root`.
pub fn job_dir(root: &Path, job: &str) -> PathBuf {
    root.join(job)
}

/// A task log's file name.
fn task_file(index: usize) -> String {
    format!("{index}.log")
}

/// The task index a log file is named after (`12.log`), if it is a task log.
fn task_index(name: &str) -> Option<usize> {
    let digits = name.strip_suffix(".log")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Opens `path` for writing without following a symbolic link planted in its place.
fn open_new(path: &Path, append: bool) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW);
    if append {
        options.append(true);
    } else {
        options.write(true).truncate(true);
    }
    options.open(path)
}

/// One run's task logs, as the runner writes them.
#[derive(Debug)]
pub struct TaskLogs {
    dir: PathBuf,
}

impl TaskLogs {
    /// Starts a run's logs in `dir` (made private if new): the previous run's logs are
    /// removed and the run's tasks are listed.
    pub fn start(dir: &Path, tasks: &[String]) -> io::Result<TaskLogs> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name == RUN_FILE || task_index(&name).is_some() {
                fs::remove_file(entry.path())?;
            }
        }
        let record = RunRecord {
            pid: std::process::id(),
            tasks: tasks.to_vec(),
        };
        let text = serde_json::to_vec(&record).expect("a run record serialises");
        open_new(&dir.join(RUN_FILE), false)?.write_all(&text)?;
        Ok(TaskLogs {
            dir: dir.to_path_buf(),
        })
    }

    /// Task `index`'s log file.
    pub fn path(&self, index: usize) -> PathBuf {
        self.dir.join(task_file(index))
    }

    /// Opens task `index`'s log for `attempt`: a new file for the first, the same one after a
    /// line that says so for the next. Returns the file and where this attempt's text starts.
    pub fn open(&self, index: usize, attempt: u32) -> io::Result<(File, u64)> {
        let path = self.path(index);
        if attempt <= 1 {
            return Ok((open_new(&path, false)?, 0));
        }
        let mut file = open_new(&path, true)?;
        writeln!(file, "tether: attempt {attempt}")?;
        let start = file.seek(SeekFrom::End(0))?;
        Ok((file, start))
    }

    /// What task `index` wrote since `from` (its last attempt).
    pub fn read_since(&self, index: usize, from: u64) -> String {
        let mut bytes = Vec::new();
        if let Ok(mut file) = File::open(self.path(index)) {
            if file.seek(SeekFrom::Start(from)).is_ok() {
                let _ = file.read_to_end(&mut bytes);
            }
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// The task succeeded: its log goes.
    pub fn discard(&self, index: usize) {
        let _ = fs::remove_file(self.path(index));
    }
}

/// One line of a log and where it came from: a task's name, `agent`, a Batch child.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    pub source: String,
    pub text: String,
}

/// A piece of a log file as read: the file, the offset the piece starts at, its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Piece {
    pub name: String,
    pub offset: u64,
    pub bytes: Vec<u8>,
}

/// Whether the lines of file `name`, the log of `source`, are asked for: all are without
/// `only`; with it, only that task's log (never the agent's).
fn wanted(name: &str, source: &str, only: Option<&str>) -> bool {
    only.is_none_or(|task| task_index(name).is_some() && source == task)
}

/// How far each log file of one place was read, and the names of its run's tasks.
#[derive(Debug, Default)]
pub struct Cursor {
    offsets: BTreeMap<String, u64>,
    /// The start of a line whose end has not been read yet, by file.
    partial: BTreeMap<String, Vec<u8>>,
    run: RunRecord,
}

impl Cursor {
    /// How far `name` was read.
    pub fn offset(&self, name: &str) -> u64 {
        self.offsets.get(name).copied().unwrap_or(0)
    }

    /// The files read so far, with their offsets.
    pub fn offsets(&self) -> impl Iterator<Item = (&str, u64)> {
        self.offsets
            .iter()
            .map(|(name, offset)| (name.as_str(), *offset))
    }

    /// What a log file is the log of: `agent`, or a task's name.
    fn source(&self, name: &str) -> String {
        match task_index(name) {
            Some(index) => self
                .run
                .tasks
                .get(index)
                .cloned()
                .unwrap_or_else(|| format!("task {index}")),
            None => "agent".to_string(),
        }
    }

    /// Takes a piece read from a file; returns its complete lines, labelled, for the task
    /// named `only` when one is.
    pub fn take(&mut self, piece: Piece, only: Option<&str>) -> Vec<Line> {
        let Piece {
            name,
            offset,
            bytes,
        } = piece;
        if offset < self.offset(&name) || offset == 0 {
            // The file is new, or was cut short by a new run: what was pending is void.
            self.partial.remove(&name);
        }
        self.offsets
            .insert(name.clone(), offset + bytes.len() as u64);
        if name == RUN_FILE {
            if let Ok(run) = serde_json::from_slice(&bytes) {
                self.run = run;
            }
            return Vec::new();
        }
        let source = self.source(&name);
        let wanted = wanted(&name, &source, only);
        let pending = self.partial.entry(name).or_default();
        pending.extend_from_slice(&bytes);
        let mut lines = Vec::new();
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            if wanted {
                lines.push(Line {
                    source: source.clone(),
                    text: String::from_utf8_lossy(&line[..end]).into_owned(),
                });
            }
        }
        lines
    }

    /// The last lines of every file that did not end with a newline.
    pub fn flush(&mut self, only: Option<&str>) -> Vec<Line> {
        let pending = std::mem::take(&mut self.partial);
        pending
            .into_iter()
            .filter(|(_, bytes)| !bytes.is_empty())
            .filter_map(|(name, bytes)| {
                let source = self.source(&name);
                wanted(&name, &source, only).then(|| Line {
                    source,
                    text: String::from_utf8_lossy(&bytes).into_owned(),
                })
            })
            .collect()
    }
}

/// The files of a log directory worth reading, the run's record first, then the tasks'
/// logs by index.
fn log_files(dir: &Path) -> io::Result<Vec<String>> {
    let mut tasks: Vec<(usize, String)> = Vec::new();
    let mut run = false;
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name == RUN_FILE {
            run = true;
        } else if let Some(index) = task_index(&name) {
            tasks.push((index, name));
        }
    }
    tasks.sort();
    let mut files: Vec<String> = run.then(|| RUN_FILE.to_string()).into_iter().collect();
    files.extend(tasks.into_iter().map(|(_, name)| name));
    Ok(files)
}

/// What was added to the log files of `dir` since `cursor` read them. The run's record is
/// read whole whenever it changed.
pub fn read_dir(dir: &Path, cursor: &Cursor) -> io::Result<Vec<Piece>> {
    let mut pieces = Vec::new();
    for name in log_files(dir)? {
        let mut file = match OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(dir.join(&name))
        {
            Ok(file) => file,
            // Gone since it was listed: a task that succeeded took its log with it.
            Err(error) if error.kind() == io::ErrorKind::NotFound => continue,
            Err(error) => return Err(error),
        };
        let size = file.metadata()?.len();
        let known = cursor.offset(&name);
        let offset = if name == RUN_FILE {
            if size == known {
                continue;
            }
            0
        } else if size < known {
            0
        } else {
            known
        };
        if size == offset {
            continue;
        }
        file.seek(SeekFrom::Start(offset))?;
        let mut bytes = Vec::new();
        file.take(size - offset).read_to_end(&mut bytes)?;
        pieces.push(Piece {
            name,
            offset,
            bytes,
        });
    }
    Ok(pieces)
}

/// Whether the run that wrote `dir`'s logs is still going: its process is alive.
pub fn run_alive(dir: &Path) -> bool {
    let Ok(bytes) = fs::read(dir.join(RUN_FILE)) else {
        return false;
    };
    let Ok(run) = serde_json::from_slice::<RunRecord>(&bytes) else {
        return false;
    };
    let Ok(pid) = libc::pid_t::try_from(run.pid) else {
        return false;
    };
    // SAFETY: signal 0 sends nothing; it only asks whether the process exists.
    #[allow(unsafe_code)]
    let answer = unsafe { libc::kill(pid, 0) };
    answer == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Shell code that prints what was added to the logs of a job's directory on an instance
/// since `cursor` read them, then whether its session is alive. Each file is a header line
/// `<name> <offset> <length>` and that many bytes; the last line is `:alive` or `:gone`.
/// Only tether's own file names are written into the code.
fn remote_script(place: &JobPlace, cursor: &Cursor) -> String {
    let JobPlace {
        dir,
        logs: job_logs,
        session: session_target,
    } = place;
    let known: String = cursor
        .offsets()
        .filter(|(_, offset)| *offset > 0)
        .map(|(name, offset)| format!("{name}) echo {offset};; "))
        .collect();
    // Whether the session lives is asked first: what it wrote before it ended is read.
    format!(
        "cd {dir} 2>/dev/null || {{ echo :gone; exit 0; }}; \
if tmux has-session -t {session_target} 2>/dev/null; then l=:alive; else l=:gone; fi; \
at() {{ case \"$1\" in {known}*) echo 0;; esac; }}; \
for f in {AGENT_LOG} {job_logs}/{RUN_FILE} {job_logs}/*.log; do \
[ -f \"$f\" ] && [ ! -L \"$f\" ] || continue; \
s=$(wc -c < \"$f\"); s=$((s)); o=$(at \"${{f##*/}}\"); \
case \"$f\" in *.json) [ \"$s\" -eq \"$o\" ] && continue; o=0;; esac; \
[ \"$s\" -ge \"$o\" ] || o=0; n=$((s-o)); [ \"$n\" -gt 0 ] || continue; \
printf '%s %s %s\\n' \"${{f##*/}}\" \"$o\" \"$n\"; tail -c +$((o+1)) \"$f\" | head -c \"$n\"; done; \
echo $l"
    )
}

/// The pieces `remote_script` printed, and whether the session is alive. A piece whose
/// header does not parse, or that was cut short, ends the reading: what follows it cannot
/// be framed (the next poll reads it again).
fn parse_remote(output: &[u8]) -> (Vec<Piece>, bool) {
    let mut pieces = Vec::new();
    let mut rest = output;
    let mut alive = false;
    while let Some(end) = rest.iter().position(|b| *b == b'\n') {
        let header = String::from_utf8_lossy(&rest[..end]).into_owned();
        rest = &rest[end + 1..];
        match header.as_str() {
            ":alive" => {
                alive = true;
                break;
            }
            ":gone" => break,
            _ => {}
        }
        let mut fields = header.split(' ');
        let (Some(name), Some(offset), Some(length), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            break;
        };
        let (Ok(offset), Ok(length)) = (offset.parse::<u64>(), length.parse::<usize>()) else {
            break;
        };
        let known = name == AGENT_LOG || name == RUN_FILE || task_index(name).is_some();
        if !known || rest.len() < length {
            break;
        }
        pieces.push(Piece {
            name: name.to_string(),
            offset,
            bytes: rest[..length].to_vec(),
        });
        rest = &rest[length..];
    }
    (pieces, alive)
}

/// How `tether logs` reads.
#[derive(Clone, Copy, Debug)]
pub struct Follow {
    /// Keep reading until the job ends.
    pub follow: bool,
    /// How long to wait between reads.
    pub every: Duration,
}

/// A local job's logs: the failed tasks' of its last run (and the running ones', while it
/// runs). Returns whether the job has a log directory here.
pub async fn local(
    dir: &Path,
    only: Option<&str>,
    how: Follow,
    sink: &mut dyn FnMut(Line),
) -> io::Result<bool> {
    if !dir.join(RUN_FILE).exists() {
        return Ok(false);
    }
    let mut cursor = Cursor::default();
    loop {
        // Whether it runs is asked before reading, so that nothing written before it ended
        // is missed.
        let alive = how.follow && run_alive(dir);
        for piece in read_dir(dir, &cursor)? {
            for line in cursor.take(piece, only) {
                sink(line);
            }
        }
        if !alive {
            break;
        }
        tokio::time::sleep(how.every).await;
    }
    for line in cursor.flush(only) {
        sink(line);
    }
    Ok(true)
}

/// How long an instance may keep failing to answer before `instances` stops following it.
const LOST_AFTER: Duration = Duration::from_secs(300);

/// A job's logs on its instances, over the run's ssh connections: each instance's agent log
/// and its tasks' logs, labelled with the instance. Following reads each instance every
/// `how.every` until its session ends; an instance that does not answer is read again
/// until it has been silent for five minutes. Returns the instances that could not be read.
pub async fn instances(
    context: &Context<'_>,
    job: &JobSpec,
    instances: &[String],
    only: Option<&str>,
    how: Follow,
    sink: &mut dyn FnMut(Line),
) -> Vec<(String, RemoteError)> {
    struct Place<'i> {
        instance: &'i str,
        cursor: Cursor,
        failing_since: Option<std::time::Instant>,
        done: bool,
    }
    let mut places: Vec<Place<'_>> = instances
        .iter()
        .map(|instance| Place {
            instance,
            cursor: Cursor::default(),
            failing_since: None,
            done: false,
        })
        .collect();
    let mut failed = Vec::new();
    loop {
        for place in places.iter_mut().filter(|p| !p.done) {
            let cursor = &place.cursor;
            let answer = remote::call_in_job(context, job, place.instance, |job_place| {
                remote_script(job_place, cursor)
            })
            .await;
            let label = |line: Line| Line {
                source: format!("{} {}", place.instance, line.source),
                text: line.text,
            };
            match answer {
                Ok(output) => {
                    place.failing_since = None;
                    let (pieces, alive) = parse_remote(&output);
                    for piece in pieces {
                        for line in place.cursor.take(piece, only) {
                            sink(label(line));
                        }
                    }
                    if !how.follow || !alive {
                        for line in place.cursor.flush(only) {
                            sink(label(line));
                        }
                        place.done = true;
                    }
                }
                Err(error) => {
                    let since = *place
                        .failing_since
                        .get_or_insert_with(std::time::Instant::now);
                    if !how.follow || since.elapsed() > LOST_AFTER {
                        failed.push((place.instance.to_string(), error));
                        place.done = true;
                    }
                }
            }
        }
        if places.iter().all(|p| p.done) {
            return failed;
        }
        tokio::time::sleep(how.every).await;
    }
}

/// What starts each line of a failed task's log that a Batch child writes to its stderr.
pub fn echo_prefix(task: &str) -> String {
    format!("task {}: ", crate::render::one_line(task))
}

/// The label of a Batch child's stream.
fn child_label(stream: &crate::aws::ChildStream) -> String {
    let child = stream
        .index
        .map_or_else(|| "job".to_string(), |index| format!("child {index}"));
    if stream.attempt > 1 {
        format!("{child}, attempt {}", stream.attempt)
    } else {
        child
    }
}

/// Whether a Batch job's status is final.
fn ended(status: &str) -> bool {
    matches!(status, "SUCCEEDED" | "FAILED")
}

/// A Batch job's logs: every child's CloudWatch Logs stream (or child `child`'s), in time
/// order, labelled by child; with `only`, just the lines of that task's log. Following reads all streams of the job in one FilterLogEvents
/// call per hundred streams per poll, waiting longer while AWS throttles. Returns the id
/// of the job read, or `None` when the job was never submitted.
pub async fn batch(
    cloud: &Cloud,
    project: &str,
    job: &JobSpec,
    run: &BatchRun,
    (child, only): (Option<i32>, Option<&str>),
    how: Follow,
    sink: &mut dyn FnMut(Line),
) -> Result<Option<String>, AwsError> {
    let name = super::batch::job_name(project, &job.name);
    let Some(id) = cloud
        .jobs_named(&run.queue, &name)
        .await?
        .into_iter()
        .next()
    else {
        return Ok(None);
    };
    let task_prefix = only.map(echo_prefix).unwrap_or_default();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut since: Option<i64> = None;
    let mut newest = i64::MIN;
    let mut every = how.every;
    let mut after_end = 0;
    loop {
        let read = async {
            // One DescribeJobs of the job gives its status and its children's streams.
            let (status, streams) = cloud.log_streams(&id).await?;
            let streams: Vec<crate::aws::ChildStream> = streams
                .into_iter()
                .filter(|s| child.is_none() || s.index == child)
                .collect();
            let names: Vec<String> = streams.iter().map(|s| s.stream.clone()).collect();
            let events = if names.is_empty() {
                Vec::new()
            } else {
                cloud
                    .log_events(crate::aws::BATCH_LOG_GROUP, &names, since)
                    .await?
            };
            Ok::<_, AwsError>((status, streams, events))
        }
        .await;
        match read {
            Ok((status, streams, events)) => {
                let labels: BTreeMap<&str, String> = streams
                    .iter()
                    .map(|s| (s.stream.as_str(), child_label(s)))
                    .collect();
                for event in events {
                    // Streams are read again from before the newest line: an event seen
                    // before is not shown twice.
                    if !seen.insert(event.id.clone()) {
                        continue;
                    }
                    newest = newest.max(event.timestamp);
                    // Lines reach CloudWatch late and out of order across streams: each
                    // read goes back a while before the newest seen.
                    since = Some(newest - LATE_MS);
                    let source = labels
                        .get(event.stream.as_str())
                        .cloned()
                        .unwrap_or_else(|| event.stream.clone());
                    for text in event.message.lines() {
                        match only {
                            None => sink(Line {
                                source: source.clone(),
                                text: text.to_string(),
                            }),
                            // A child writes a failed task's log as `task <name>: <line>`.
                            Some(task) => {
                                if let Some(text) = text.strip_prefix(&task_prefix) {
                                    sink(Line {
                                        source: format!("{source} {task}"),
                                        text: text.to_string(),
                                    });
                                }
                            }
                        }
                    }
                }
                every = (every / 2).max(how.every);
                if !how.follow {
                    break;
                }
                if status.as_deref().is_none_or(ended) {
                    after_end += 1;
                    if after_end > BATCH_TAIL_POLLS {
                        break;
                    }
                }
            }
            Err(error) if error.kind == AwsErrorKind::Throttled && how.follow => {
                every = (every * 2).min(MAX_POLL);
            }
            Err(error) => return Err(error),
        }
        tokio::time::sleep(every).await;
    }
    Ok(Some(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn piece(name: &str, offset: u64, bytes: &str) -> Piece {
        Piece {
            name: name.into(),
            offset,
            bytes: bytes.as_bytes().to_vec(),
        }
    }

    fn texts(lines: &[Line]) -> Vec<String> {
        lines
            .iter()
            .map(|l| format!("{}|{}", l.source, l.text))
            .collect()
    }

    #[test]
    fn a_cursor_labels_lines_by_task_and_keeps_a_line_until_it_ends() {
        let mut cursor = Cursor::default();
        let run = serde_json::to_string(&RunRecord {
            pid: 1,
            tasks: vec!["a.txt".into(), "b.txt".into()],
        })
        .unwrap();
        assert!(cursor.take(piece(RUN_FILE, 0, &run), None).is_empty());
        let lines = cursor.take(piece("1.log", 0, "one\ntw"), None);
        assert_eq!(texts(&lines), ["b.txt|one"]);
        let lines = cursor.take(piece("1.log", 6, "o\n"), None);
        assert_eq!(texts(&lines), ["b.txt|two"]);
        assert_eq!(cursor.offset("1.log"), 8);
        let lines = cursor.take(piece(AGENT_LOG, 0, "started\nhalf"), None);
        assert_eq!(texts(&lines), ["agent|started"]);
        assert_eq!(texts(&cursor.flush(None)), ["agent|half"]);
        // A file read again from its start (a new run) drops what was pending of it.
        let lines = cursor.take(piece("0.log", 0, "x\n"), Some("a.txt"));
        assert_eq!(texts(&lines), ["a.txt|x"]);
        let lines = cursor.take(piece("1.log", 8, "not this one\n"), Some("a.txt"));
        assert!(lines.is_empty());
    }

    #[test]
    fn task_logs_keep_every_attempt_and_read_back_the_last() {
        let dir = tempfile::tempdir().unwrap();
        let logs_dir = dir.path().join("job");
        std::fs::create_dir_all(&logs_dir).unwrap();
        std::fs::write(logs_dir.join("7.log"), "old run").unwrap();
        std::fs::write(logs_dir.join("notes.txt"), "not ours").unwrap();
        let logs = TaskLogs::start(&logs_dir, &["a".into()]).unwrap();
        assert!(!logs_dir.join("7.log").exists(), "the last run's logs go");
        assert!(logs_dir.join("notes.txt").exists(), "other files stay");
        let (mut file, from) = logs.open(0, 1).unwrap();
        writeln!(file, "first").unwrap();
        assert_eq!(logs.read_since(0, from), "first\n");
        let (mut file, from) = logs.open(0, 2).unwrap();
        writeln!(file, "second").unwrap();
        assert_eq!(logs.read_since(0, from), "second\n");
        let mut cursor = Cursor::default();
        let mut lines = Vec::new();
        for piece in read_dir(&logs_dir, &cursor).unwrap() {
            lines.extend(cursor.take(piece, None));
        }
        assert_eq!(
            texts(&lines),
            ["a|first", "a|tether: attempt 2", "a|second"]
        );
        assert!(read_dir(&logs_dir, &cursor).unwrap().is_empty());
        assert!(run_alive(&logs_dir), "this process wrote the record");
    }

    #[test]
    fn a_planted_link_is_not_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("elsewhere");
        std::fs::write(&target, "keep").unwrap();
        let logs = TaskLogs::start(dir.path(), &["a".into()]).unwrap();
        std::os::unix::fs::symlink(&target, logs.path(0)).unwrap();
        assert!(logs.open(0, 1).is_err());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
    }

    #[test]
    fn remote_output_is_framed_by_lengths_and_ends_at_what_does_not_parse() {
        let output = b"agent.log 0 6\nhello\n3.log 4 3\na\nb:alive\n";
        let (pieces, alive) = parse_remote(output);
        assert!(alive);
        assert_eq!(pieces.len(), 2);
        assert_eq!(pieces[1].bytes, b"a\nb");
        assert_eq!(pieces[1].offset, 4);
        // A name tether never writes, or a piece cut short, stops the reading there.
        let (pieces, alive) = parse_remote(b"../x 0 1\nz\n:alive\n");
        assert!(pieces.is_empty() && !alive);
        let (pieces, _) = parse_remote(b"0.log 0 10\nshort");
        assert!(pieces.is_empty());
    }

    #[test]
    fn task_log_names_are_only_digits() {
        assert_eq!(task_index("12.log"), Some(12));
        assert_eq!(task_index("+1.log"), None);
        assert_eq!(task_index(".log"), None);
        assert_eq!(task_index("agent.log"), None);
    }
}
