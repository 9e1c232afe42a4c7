//! The `jobs:` section of the spec: the team's data jobs, what they read, what they run and
//! where their results go, checked before anything runs: S3 URLs, the `{input}` and
//! `{output}` placeholders, `after` names and cycles.
//!
//! Whether an input glob matches anything, and whether a bucket the spec does not declare
//! exists, are for the job runner to say before it starts any job.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use super::{check_bucket_name, Checker};
use crate::diagnostic::Location;

/// Tasks of `mode: io` run this many times the number of cores at once, by default.
pub const IO_TASKS_PER_CORE: usize = 4;
/// ... and never more than this many, whatever the machine.
pub const MAX_IO_TASKS: usize = 256;

/// One entry of `jobs`.
#[derive(Clone, Debug, PartialEq)]
pub struct JobSpec {
    pub name: String,
    /// `None`: the command runs once, with no `{input}`.
    pub inputs: Option<Inputs>,
    pub work: Work,
    pub output: Option<Output>,
    /// Jobs that must succeed before this one starts.
    pub after: Vec<String>,
    /// A glob or prefix that matches nothing is not an error.
    pub allow_empty: bool,
    pub location: Location,
    /// Where `inputs` is written, for errors found when it is resolved.
    pub inputs_location: Location,
    /// Where it runs, decided once when the spec is read.
    pub placement: Placement,
}

/// Where a job runs: decided at spec load from `run_on`, and matched once where the job
/// starts, so no later code asks again or trusts an `Option` to be set.
#[derive(Clone, Debug, PartialEq)]
pub enum Placement {
    /// On this machine.
    Here,
    /// On declared instances, the inputs shared out among them.
    Instances(Remote),
    /// As one AWS Batch array job.
    Batch(BatchRun),
}

/// How a job runs on AWS Batch: one array child per share of the inputs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchRun {
    /// A declared job queue.
    pub queue: String,
    /// A declared job definition (its active revision).
    pub definition: String,
    pub shares: Shares,
    /// The definition's image has `tether` on its PATH; otherwise each child fetches this
    /// machine's build (or `agent_binary`) from the project's bucket with `curl`.
    pub tether_in_image: bool,
}

/// How a Batch job's inputs are shared out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shares {
    /// This many children (fewer when there are fewer inputs).
    Count(u32),
    /// Children of about this many bytes of input each.
    Size(u64),
}

/// Batch's largest array job.
pub const MAX_ARRAY_SIZE: u32 = 10_000;

/// How a job runs on instances.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Remote {
    /// Declared instances; inputs are shared out among them.
    pub run_on: Vec<String>,
    /// Local files (relative to the spec) copied to the job's remote directory.
    pub upload: Vec<String>,
    /// Run once per instance, in the job's directory, before any task.
    pub setup: Option<String>,
    /// Stop the instances when their jobs have ended.
    pub then_stop: bool,
}

impl JobSpec {
    /// Whether running the job calls AWS: S3 inputs or outputs, instances, or Batch.
    pub fn needs_aws(&self) -> bool {
        self.placement != Placement::Here
            || matches!(self.inputs, Some(Inputs::S3 { .. }))
            || self.output.as_ref().and_then(Output::bucket).is_some()
    }
}

/// Where a job's inputs come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Inputs {
    /// Every object under a prefix (listed with pagination).
    S3 { bucket: String, prefix: String },
    /// A local glob, relative to the spec file's directory (`**` crosses directories).
    Glob(String),
}

/// Where a job's results go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// One object: the job's JSON summary.
    S3Object { bucket: String, key: String },
    /// A prefix (ends with `/`): each task's `{output}` file is uploaded under it, named
    /// after its input.
    S3Prefix { bucket: String, prefix: String },
    /// A local file (the summary) or directory (ends with `/`: each task's output).
    Local(String),
}

impl Output {
    /// Whether task outputs (not just a summary) go here.
    pub fn is_collection(&self) -> bool {
        match self {
            Output::S3Prefix { .. } => true,
            Output::S3Object { .. } => false,
            Output::Local(path) => path.ends_with('/'),
        }
    }

    /// The bucket it names, if any.
    pub fn bucket(&self) -> Option<&str> {
        match self {
            Output::S3Object { bucket, .. } | Output::S3Prefix { bucket, .. } => Some(bucket),
            Output::Local(_) => None,
        }
    }
}

/// What a job does with each input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Work {
    /// Runs in-process, across all cores.
    Builtin(Builtin),
    /// A program, one task per input. `template` is the command as written; `script` is
    /// the shell code that runs, where `{input}` and `{output}` became references to the
    /// environment variables `TETHER_INPUT` and `TETHER_OUTPUT`: paths reach the shell as
    /// data, never as code, whatever their names.
    Command {
        template: String,
        script: String,
        /// Whether the command writes `{output}`.
        writes_output: bool,
        mode: Mode,
        /// Tasks at once; `None` is the mode's default.
        parallelism: Option<usize>,
    },
}

/// The built-in kernels.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Builtin {
    /// Words: maximal runs of bytes that are not ASCII whitespace, as `wc -w` counts them
    /// in the C locale.
    WordCount,
    /// Newline characters, as `wc -l`.
    LineCount,
    /// Bytes, as `wc -c`.
    ByteCount,
}

impl Builtin {
    pub fn as_str(self) -> &'static str {
        match self {
            Builtin::WordCount => "word_count",
            Builtin::LineCount => "line_count",
            Builtin::ByteCount => "byte_count",
        }
    }
}

/// How a command's tasks use the machine.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// CPU-bound: one task per core.
    Cpu,
    /// I/O-bound: many at once.
    Io,
}

/// A job: a builtin or a shell command over many input files, run in parallel on this
/// machine, on declared instances (over SSH, in tmux), or as an AWS Batch array job.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Job")]
pub(super) struct RawJob {
    /// The input files: a local glob relative to the spec (`./data/*.txt`), or an S3
    /// prefix (`s3://bucket/prefix/`).
    #[serde(default)]
    #[schemars(example = &"s3://lab-data/docs/")]
    inputs: Option<String>,
    /// A built-in task, run on every core (or give `command`).
    #[serde(default)]
    builtin: Option<Builtin>,
    /// A command run once per input: `{input}` stands for the input's local path and
    /// `{output}` for where it writes its result (passed as data, never pasted as code).
    #[serde(default)]
    command: Option<String>,
    /// `cpu` (one task per core, in processes) or `io` (many tasks at once).
    #[serde(default)]
    mode: Option<Mode>,
    /// How many tasks run at once: `auto` or 1 to 4096.
    #[serde(default)]
    parallelism: Option<RawParallelism>,
    /// Where the results go: a local path or an S3 URL (a file for builtins, a prefix for
    /// commands).
    #[serde(default)]
    output: Option<String>,
    /// Jobs that must succeed first.
    #[serde(default)]
    after: Vec<String>,
    /// Succeed when `inputs` matches nothing (an error otherwise).
    #[serde(default)]
    allow_empty: bool,
    /// Where it runs: a declared instance, a list of them, or `{batch: QUEUE, ...}`;
    /// unset: this machine.
    #[serde(default)]
    run_on: Option<RawRunOn>,
    /// Local files (relative to the spec) copied to each instance before it runs.
    #[serde(default)]
    upload: Vec<String>,
    /// A shell command run once on each instance before the job (installing packages,
    /// say).
    #[serde(default)]
    setup: Option<String>,
    /// `stop`: stop the job's instances when it ends.
    #[serde(default)]
    then: Option<Then>,
}

/// A declared instance, several, or an AWS Batch queue.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
#[schemars(rename = "RunOn")]
enum RawRunOn {
    /// One declared instance.
    One(String),
    /// Declared instances; the inputs are shared out among them.
    Many(Vec<String>),
    Batch(RawBatchRun),
}

/// A job run as one AWS Batch array job, one child per share of the inputs.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "BatchRun")]
struct RawBatchRun {
    /// A declared job queue.
    batch: String,
    /// A declared job definition.
    definition: String,
    /// How many children (1 to 10000; never more than inputs).
    #[serde(default)]
    #[schemars(range(min = 1, max = 10000))]
    shares: Option<i64>,
    /// Or: children of about this many bytes of input each.
    #[serde(default)]
    #[schemars(range(min = 1))]
    share_size: Option<i64>,
    /// The image has `tether` on its PATH; otherwise each child fetches tether's own build
    /// from the input bucket.
    #[serde(default)]
    tether_in_image: bool,
}

/// What to do with the instances after a remote job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Then {
    /// Stop them (their disks and Elastic IPs stay).
    Stop,
}

/// `auto` or a number of tasks.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
#[schemars(rename = "Parallelism")]
enum RawParallelism {
    Count(#[schemars(range(min = 1, max = 4096))] i64),
    /// `auto`: from the cores and the mode.
    #[schemars(extend("const" = "auto"))]
    Word(String),
}

/// Splits `s3://bucket/rest` into the bucket and the rest.
pub fn parse_s3_url(url: &str) -> Result<(String, String), String> {
    let rest = url
        .strip_prefix("s3://")
        .ok_or_else(|| format!("`{url}` is not an S3 URL"))?;
    let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
    check_bucket_name(bucket)
        .map_err(|problem| format!("bucket `{bucket}` in `{url}`: {problem}"))?;
    Ok((bucket.to_string(), key.to_string()))
}

impl Checker<'_> {
    pub(super) fn check_jobs(
        &mut self,
        raw: BTreeMap<String, RawJob>,
        instances: &BTreeMap<String, crate::spec::InstanceSpec>,
    ) -> BTreeMap<String, JobSpec> {
        let names: BTreeSet<String> = raw.keys().cloned().collect();
        let mut jobs = BTreeMap::new();
        for (name, job) in raw {
            let location = self.key_location(&["jobs", name.as_str()]);
            let at = |checker: &Self, field: &str| {
                checker.value_location(&["jobs", name.as_str(), field])
            };
            if name.is_empty()
                || name.len() > 64
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                self.error(
                    location.clone(),
                    format!("invalid job name `{name}`"),
                    Some("job names are 1-64 letters, digits, `-` and `_`".into()),
                );
            }
            let inputs_location = at(self, "inputs");
            let inputs_given = job.inputs.is_some();
            let inputs = match job.inputs {
                None => None,
                Some(text) if text.starts_with("s3://") => match parse_s3_url(&text) {
                    Ok((bucket, prefix)) => Some(Inputs::S3 { bucket, prefix }),
                    Err(problem) => {
                        self.error(inputs_location.clone(), problem, Some("write inputs as `s3://bucket/prefix/` or a local glob like `./data/**/*.txt`".into()));
                        None
                    }
                },
                Some(text) if text.contains("://") || text.starts_with("s3:") => {
                    self.error(
                        inputs_location.clone(),
                        format!("`{text}` is neither an S3 URL nor a local glob"),
                        Some("write inputs as `s3://bucket/prefix/` or a local glob like `./data/**/*.txt`".into()),
                    );
                    None
                }
                Some(text) if text.is_empty() => {
                    self.error(inputs_location.clone(), "`inputs` is empty".into(), None);
                    None
                }
                Some(text) => Some(Inputs::Glob(text)),
            };
            let output = match job.output {
                None => None,
                Some(text) if text.starts_with("s3://") => match parse_s3_url(&text) {
                    Ok((bucket, key)) if key.is_empty() || key.ends_with('/') => {
                        Some(Output::S3Prefix {
                            bucket,
                            prefix: key,
                        })
                    }
                    Ok((bucket, key)) => Some(Output::S3Object { bucket, key }),
                    Err(problem) => {
                        let location = at(self, "output");
                        self.error(location, problem, Some("write output as `s3://bucket/results.json` (the summary) or `s3://bucket/prefix/` (each task's output)".into()));
                        None
                    }
                },
                Some(text) if text.contains("://") || text.starts_with("s3:") => {
                    let location = at(self, "output");
                    self.error(
                        location,
                        format!("`{text}` is neither an S3 URL nor a local path"),
                        Some("write output as `s3://bucket/results.json` (the summary) or `s3://bucket/prefix/` (each task's output)".into()),
                    );
                    None
                }
                Some(text) => Some(Output::Local(text)),
            };
            let work = match (job.builtin, job.command) {
                (Some(builtin), None) => {
                    if job.mode.is_some() || job.parallelism.is_some() {
                        let location = at(self, "builtin");
                        self.error(
                            location,
                            "a builtin runs on every core; `mode` and `parallelism` apply to commands".to_string(),
                            Some("remove `mode` and `parallelism`".into()),
                        );
                    }
                    if !inputs_given {
                        let location = at(self, "builtin");
                        self.error(
                            location,
                            format!("builtin `{}` needs `inputs`", builtin.as_str()),
                            None,
                        );
                    }
                    if output.as_ref().is_some_and(Output::is_collection) {
                        let location = at(self, "output");
                        self.error(
                            location,
                            format!("builtin `{}` writes one summary: give `output` a file name (`results.json`), not a prefix", builtin.as_str()),
                            None,
                        );
                    }
                    Work::Builtin(builtin)
                }
                (None, Some(template)) => {
                    let command_location = at(self, "command");
                    if template.trim().is_empty() {
                        self.error(
                            command_location.clone(),
                            "the command is empty".into(),
                            None,
                        );
                    }
                    if inputs_given && !template.contains("{input}") {
                        self.error(
                            command_location.clone(),
                            "the command does not use `{input}`, so every task would do the same".into(),
                            Some("put `{input}` where the input file's path goes, e.g. `python3 clean.py {input} {output}`".into()),
                        );
                    }
                    if !inputs_given && template.contains("{input}") {
                        self.error(
                            command_location.clone(),
                            "the command uses `{input}` but the job has no `inputs`".into(),
                            None,
                        );
                    }
                    if template.contains("{output}")
                        && !output.as_ref().is_some_and(Output::is_collection)
                    {
                        self.error(
                            command_location,
                            "the command writes `{output}`, but the job's `output` is not a prefix to collect it in".into(),
                            Some("set `output: s3://bucket/prefix/` (or a local directory ending in `/`)".into()),
                        );
                    }
                    let parallelism = match job.parallelism {
                        None => None,
                        Some(RawParallelism::Word(word)) if word == "auto" => None,
                        Some(RawParallelism::Count(n)) if (1..=4096).contains(&n) => {
                            usize::try_from(n).ok()
                        }
                        Some(_) => {
                            let location = at(self, "parallelism");
                            self.error(
                                location,
                                "`parallelism` is `auto` or a number from 1 to 4096".into(),
                                None,
                            );
                            None
                        }
                    };
                    let script = match command_script(&template) {
                        Ok(script) => script,
                        Err(problem) => {
                            self.error(
                                at(self, "command"),
                                problem,
                                Some("write `{input}` and `{output}` bare (or inside double quotes): tether passes each path as one word".into()),
                            );
                            String::new()
                        }
                    };
                    Work::Command {
                        writes_output: template.contains("{output}"),
                        template,
                        script,
                        mode: job.mode.unwrap_or(Mode::Cpu),
                        parallelism,
                    }
                }
                (builtin, _) => {
                    self.error(
                        location.clone(),
                        if builtin.is_some() {
                            format!("job `{name}` has both `builtin` and `command`")
                        } else {
                            format!("job `{name}` has neither `builtin` nor `command`")
                        },
                        Some("give one: `builtin: word_count`, or `command: \"python3 clean.py {input} {output}\"`".into()),
                    );
                    Work::Builtin(Builtin::WordCount)
                }
            };
            let placement = self.check_placement(
                &name,
                RawPlacement {
                    run_on: job.run_on,
                    upload: job.upload,
                    setup: job.setup,
                    then: job.then,
                },
                (&inputs, &inputs_location, &output),
                instances,
            );
            for (index, after) in job.after.iter().enumerate() {
                if !names.contains(after) || *after == name {
                    let location =
                        self.value_location(&["jobs", name.as_str(), "after", &index.to_string()]);
                    self.error(
                        location,
                        if *after == name {
                            format!("job `{name}` cannot run after itself")
                        } else {
                            format!("job `{name}` runs after `{after}`, which is not a job")
                        },
                        Some(format!(
                            "jobs are: {}",
                            names.iter().cloned().collect::<Vec<_>>().join(", ")
                        )),
                    );
                }
            }
            jobs.insert(
                name.clone(),
                JobSpec {
                    name,
                    inputs,
                    work,
                    output,
                    after: job.after,
                    allow_empty: job.allow_empty,
                    location,
                    inputs_location,
                    placement,
                },
            );
        }
        if let Some(cycle) = find_cycle(&jobs) {
            let location = jobs[&cycle[0]].location.clone();
            self.error(
                location,
                format!(
                    "the jobs' `after` lists form a cycle: {}",
                    cycle.join(" -> ")
                ),
                Some("a job can only run after jobs that do not, in turn, wait for it".into()),
            );
        }
        jobs
    }
}

/// The fields of a job that say where it runs, taken out of `RawJob` for
/// `check_placement`.
struct RawPlacement {
    run_on: Option<RawRunOn>,
    upload: Vec<String>,
    setup: Option<String>,
    then: Option<Then>,
}

/// A cycle among the jobs' `after` lists, as the names along it (the first repeated at the
/// end), if there is one.
fn find_cycle(jobs: &BTreeMap<String, JobSpec>) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Visiting,
        Done,
    }
    fn visit(
        name: &str,
        jobs: &BTreeMap<String, JobSpec>,
        marks: &mut BTreeMap<String, Mark>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match marks.get(name) {
            Some(Mark::Done) => return None,
            Some(Mark::Visiting) => {
                let start = path.iter().position(|n| n == name).unwrap_or(0);
                let mut cycle = path[start..].to_vec();
                cycle.push(name.to_string());
                return Some(cycle);
            }
            None => {}
        }
        marks.insert(name.to_string(), Mark::Visiting);
        path.push(name.to_string());
        for after in jobs
            .get(name)
            .map(|j| j.after.as_slice())
            .unwrap_or_default()
        {
            if after != name && jobs.contains_key(after) {
                if let Some(cycle) = visit(after, jobs, marks, path) {
                    return Some(cycle);
                }
            }
        }
        path.pop();
        marks.insert(name.to_string(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for name in jobs.keys() {
        if let Some(cycle) = visit(name, jobs, &mut marks, &mut Vec::new()) {
            return Some(cycle);
        }
    }
    None
}

/// The environment variable a task's input path is passed in.
pub const INPUT_VARIABLE: &str = "TETHER_INPUT";
/// The environment variable a task's output path is passed in.
pub const OUTPUT_VARIABLE: &str = "TETHER_OUTPUT";

/// A command template as shell code: each `{input}` and `{output}` becomes a reference to
/// `TETHER_INPUT` or `TETHER_OUTPUT`, quoted as one word (`"${TETHER_INPUT}"`, or bare
/// `${TETHER_INPUT}` inside double quotes). The template is scanned once, left to right,
/// so no path or replacement is ever scanned again. A placeholder inside single quotes,
/// where the shell would not expand it, is an error.
pub fn command_script(template: &str) -> Result<String, String> {
    #[derive(PartialEq)]
    enum Quote {
        None,
        Single,
        Double,
    }
    let mut script = String::with_capacity(template.len() + 32);
    let mut quote = Quote::None;
    let mut rest = template;
    while let Some(c) = rest.chars().next() {
        let placeholder = [("{input}", INPUT_VARIABLE), ("{output}", OUTPUT_VARIABLE)]
            .into_iter()
            .find(|(name, _)| rest.starts_with(name));
        if let Some((name, variable)) = placeholder {
            match quote {
                Quote::Single => {
                    return Err(format!(
                        "`{name}` is inside single quotes, where the shell would not replace it"
                    ))
                }
                Quote::Double => script.push_str(&format!("${{{variable}}}")),
                Quote::None => script.push_str(&format!("\"${{{variable}}}\"")),
            }
            rest = &rest[name.len()..];
            continue;
        }
        match (c, &quote) {
            ('\\', Quote::None | Quote::Double) => {
                // An escaped character is taken as it is, whatever it is.
                let escaped: String = rest.chars().take(2).collect();
                script.push_str(&escaped);
                rest = &rest[escaped.len()..];
                continue;
            }
            ('\'', Quote::None) => quote = Quote::Single,
            ('\'', Quote::Single) => quote = Quote::None,
            ('"', Quote::None) => quote = Quote::Double,
            ('"', Quote::Double) => quote = Quote::None,
            _ => {}
        }
        script.push(c);
        rest = &rest[c.len_utf8()..];
    }
    if quote != Quote::None {
        return Err("the command has an unclosed quote".into());
    }
    Ok(script)
}

impl Checker<'_> {
    /// Where job `name` runs (`run_on`, and what goes with it: `upload`, `setup`, `then`),
    /// with the checks each placement makes of the job's inputs and output.
    fn check_placement(
        &mut self,
        name: &str,
        fields: RawPlacement,
        (inputs, inputs_location, output): (&Option<Inputs>, &Location, &Option<Output>),
        instances: &BTreeMap<String, crate::spec::InstanceSpec>,
    ) -> Placement {
        let at = |checker: &Self, field: &str| checker.value_location(&["jobs", name, field]);
        // The fields that only jobs on instances take, and whether the job gives each.
        let instance_fields = [
            ("upload", !fields.upload.is_empty()),
            ("setup", fields.setup.is_some()),
            ("then", fields.then.is_some()),
        ];
        let (run_on, batch) = match fields.run_on {
            Some(RawRunOn::Batch(raw)) => {
                let batch = self.check_batch_run(name, raw);
                self.refuse_instance_fields(
                    name,
                    &instance_fields,
                    ", not to Batch",
                    "a Batch job's image carries what it needs",
                );
                if !matches!(inputs, Some(Inputs::S3 { .. })) {
                    let location = inputs_location.clone();
                    self.error(
                        location,
                        "a Batch job reads its inputs from S3".into(),
                        Some(
                            "push the files to S3 first, and use `inputs: s3://bucket/prefix/`"
                                .into(),
                        ),
                    );
                }
                if output
                    .as_ref()
                    .is_some_and(|o| matches!(o, Output::Local(_)) && o.is_collection())
                {
                    let location = at(self, "output");
                    self.error(
                        location,
                        "a Batch job's tasks write their outputs to S3: a local directory is on this machine".into(),
                        Some("use `s3://bucket/prefix/`".into()),
                    );
                }
                (None, Some(batch))
            }
            other => (other, None),
        };
        let remote = match run_on {
            // A Batch job's fields were refused above, with Batch's reason.
            None if batch.is_some() => None,
            None => {
                self.refuse_instance_fields(
                    name,
                    &instance_fields,
                    "",
                    "add `run_on: <instance>`, or remove it",
                );
                None
            }
            Some(run_on) => {
                let run_on = match run_on {
                    RawRunOn::One(one) => vec![one],
                    RawRunOn::Many(many) => many,
                    RawRunOn::Batch(_) => Vec::new(),
                };
                for (index, instance) in run_on.iter().enumerate() {
                    let Some(declared) = instances.get(instance) else {
                        let index = index.to_string();
                        let location = if run_on.len() == 1 {
                            self.value_location(&["jobs", name, "run_on"])
                        } else {
                            self.value_location(&["jobs", name, "run_on", &index])
                        };
                        self.error(
                            location,
                            format!("job `{name}` runs on `{instance}`, which is not a declared instance"),
                            Some(format!("declare `{instance}` under `instances`, or fix the name")),
                        );
                        continue;
                    };
                    if declared.state == crate::model::RunState::Stopped && fields.then.is_none() {
                        let location = self.value_location(&["jobs", name, "run_on"]);
                        self.error(
                            location,
                            format!("job `{name}` runs on `{instance}`, which the spec keeps stopped"),
                            Some("declare it `state: running` (and add `then: stop` to stop it after the job)".into()),
                        );
                    }
                }
                if run_on.is_empty() {
                    let location = self.key_location(&["jobs", name, "run_on"]);
                    self.error(location, "`run_on` names no instance".into(), None);
                }
                if matches!(output, Some(Output::Local(_))) {
                    let location = at(self, "output");
                    self.error(
                        location,
                        "a job on instances writes its results to S3: a local `output` is on this machine".into(),
                        Some("use `s3://bucket/prefix/` or `s3://bucket/results.json`".into()),
                    );
                }
                if matches!(inputs, Some(Inputs::Glob(_))) {
                    let location = inputs_location.clone();
                    self.error(
                        location,
                        "a job on instances reads its inputs from S3: a local glob is on this machine".into(),
                        Some("push the files to S3 first, and use `inputs: s3://bucket/prefix/`".into()),
                    );
                }
                // Uploads land on the instance under their file name, through scp's
                // remote path: a name that a shell there could read as code is refused.
                for (index, file) in fields.upload.iter().enumerate() {
                    let plain = std::path::Path::new(file)
                        .file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| {
                            !n.starts_with('-')
                                && n.bytes()
                                    .all(|b| b.is_ascii_alphanumeric() || b"._+-".contains(&b))
                        });
                    if !plain {
                        let location =
                            self.value_location(&["jobs", name, "upload", &index.to_string()]);
                        self.error(
                            location,
                            format!("upload `{file}` needs a plain file name to be copied to an instance"),
                            Some("name the file with letters, digits and `._+-` (not starting with `-`)".into()),
                        );
                    }
                }
                Some(Remote {
                    run_on,
                    upload: fields.upload,
                    setup: fields.setup,
                    then_stop: fields.then == Some(Then::Stop),
                })
            }
        };
        // `run_on` is one of the two, or neither (checked above).
        match (remote, batch) {
            (Some(remote), _) => Placement::Instances(remote),
            (None, Some(batch)) => Placement::Batch(batch),
            (None, None) => Placement::Here,
        }
    }

    /// Refuses each of `upload`, `setup` and `then` that job `name` gives (`given`), since
    /// it does not run on instances (`where_` ends the message with where it runs instead).
    fn refuse_instance_fields(
        &mut self,
        name: &str,
        given: &[(&str, bool)],
        where_: &str,
        hint: &str,
    ) {
        for &(field, given) in given {
            if given {
                let location = self.key_location(&["jobs", name, field]);
                self.error(
                    location,
                    format!("`{field}` applies only to jobs that `run_on` instances{where_}"),
                    Some(hint.into()),
                );
            }
        }
    }

    /// A job's `run_on: {batch: ...}`: how many children, and how they get tether. The queue
    /// and definition are checked against the `batch:` section once it is read.
    fn check_batch_run(&mut self, name: &str, raw: RawBatchRun) -> BatchRun {
        let at = |field: &'static str| ["jobs", name, "run_on", field];
        let shares = match (raw.shares, raw.share_size) {
            (Some(_), Some(_)) => {
                let location = self.key_location(&at("share_size"));
                self.error(
                    location,
                    "give `shares` or `share_size`, not both".into(),
                    None,
                );
                Shares::Count(1)
            }
            (Some(count), None) => match u32::try_from(count) {
                Ok(count) if (1..=MAX_ARRAY_SIZE).contains(&count) => Shares::Count(count),
                _ => {
                    let location = self.value_location(&at("shares"));
                    self.error(
                        location,
                        format!("`shares` is 1 to {MAX_ARRAY_SIZE} (Batch's largest array job), not {count}"),
                        None,
                    );
                    Shares::Count(1)
                }
            },
            (None, Some(size)) => match u64::try_from(size) {
                Ok(size) if size > 0 => Shares::Size(size),
                _ => {
                    let location = self.value_location(&at("share_size"));
                    self.error(
                        location,
                        format!("`share_size` is a positive number of bytes, not {size}"),
                        None,
                    );
                    Shares::Count(1)
                }
            },
            (None, None) => Shares::Count(1),
        };
        BatchRun {
            queue: raw.batch,
            definition: raw.definition,
            shares,
            tether_in_image: raw.tether_in_image,
        }
    }
}
