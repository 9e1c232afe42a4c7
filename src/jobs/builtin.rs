//! The builtins: counting words, lines or bytes of every input, in-process.
//!
//! Local files are read in cache-sized blocks into a per-thread buffer and counted on a
//! rayon pool, one file per task, so all cores work. S3 objects are counted as their bodies stream in,
//! many at once on tokio: no object is ever held whole, so one larger than memory works.

use std::time::Instant;

use futures::stream::{self, StreamExt};
use rayon::prelude::*;

use super::count::{lines, WordCounter};
use super::{millis, Event, Input, OnEvent, Options, RunError, Source, Status, TaskSummary};
use crate::aws::Cloud;
use crate::spec::{Builtin, JobSpec};

/// Counts every input; a task fails only if its input cannot be read.
pub async fn run(
    cloud: &Cloud,
    job: &JobSpec,
    builtin: Builtin,
    inputs: Vec<Input>,
    options: &Options,
    on_event: OnEvent<'_>,
) -> Result<Vec<TaskSummary>, RunError> {
    let (local, remote): (Vec<Input>, Vec<Input>) = inputs
        .into_iter()
        .partition(|i| matches!(i.source, Source::Local(_)));
    let mut tasks = Vec::new();
    if !local.is_empty() {
        let cores = options.cores;
        let name = job.name.clone();
        // The pool is scoped to the job, sized to the cores asked for; the async runtime
        // is not blocked while it works.
        let counted = tokio::task::block_in_place(|| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(cores)
                .build()
                .map_err(RunError::Threads)?;
            Ok::<_, RunError>(pool.install(|| {
                local
                    .par_iter()
                    .map(|input| {
                        let task = count_file(builtin, input);
                        on_event(Event::TaskFinished {
                            job: &name,
                            status: task.status,
                            bytes: task.bytes,
                        });
                        task
                    })
                    .collect::<Vec<_>>()
            }))
        })?;
        tasks.extend(counted);
    }
    if !remote.is_empty() {
        // Enough objects in flight to hide the round trip: the cores' share near the
        // endpoint, more the farther it is, fewer after throttled answers (`aws::pace`).
        let near = (options.cores * crate::spec::IO_TASKS_PER_CORE).clamp(4, 64);
        let gate = &cloud.gate(near, crate::spec::MAX_IO_TASKS);
        let counted: Vec<TaskSummary> = stream::iter(remote)
            .map(|input| async move {
                let pass = gate.enter().await;
                let task = count_object(cloud, builtin, &input).await;
                drop(pass);
                on_event(Event::TaskFinished {
                    job: &job.name,
                    status: task.status,
                    bytes: task.bytes,
                });
                task
            })
            .buffered(crate::spec::MAX_IO_TASKS)
            .collect()
            .await;
        tasks.extend(counted);
    }
    Ok(tasks)
}

/// The running count of one input, fed chunk by chunk.
struct Tally {
    builtin: Builtin,
    words: WordCounter,
    lines: u64,
    bytes: u64,
}

impl Tally {
    fn new(builtin: Builtin) -> Tally {
        Tally {
            builtin,
            words: WordCounter::default(),
            lines: 0,
            bytes: 0,
        }
    }

    fn feed(&mut self, chunk: &[u8]) {
        self.bytes += chunk.len() as u64;
        match self.builtin {
            Builtin::WordCount => self.words.feed(chunk),
            Builtin::LineCount => self.lines += lines(chunk),
            Builtin::ByteCount => {}
        }
    }

    fn count(&self) -> u64 {
        match self.builtin {
            Builtin::WordCount => self.words.words,
            Builtin::LineCount => self.lines,
            Builtin::ByteCount => self.bytes,
        }
    }
}

fn task(input: &Input, started: Instant, result: Result<Tally, String>) -> TaskSummary {
    let (status, bytes, count, error) = match result {
        Ok(tally) => (Status::Succeeded, tally.bytes, Some(tally.count()), None),
        Err(error) => (Status::Failed, 0, None, Some(error)),
    };
    TaskSummary {
        input: input.name.clone(),
        status,
        duration_ms: millis(started.elapsed()),
        bytes,
        count,
        exit_code: None,
        attempts: 1,
        output: None,
        error,
        resumed: false,
    }
}

/// Bytes read from a file at a time, per counting thread.
const READ_BLOCK: usize = 256 * 1024;

thread_local! {
    static BUFFER: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0; READ_BLOCK]);
}

fn count_file(builtin: Builtin, input: &Input) -> TaskSummary {
    let started = Instant::now();
    let Source::Local(path) = &input.source else {
        unreachable!("local inputs only")
    };
    let result = (|| {
        let mut tally = Tally::new(builtin);
        let file = std::fs::File::open(path).map_err(|e| format!("cannot open: {e}"))?;
        let length = file
            .metadata()
            .map_err(|e| format!("cannot read: {e}"))?
            .len();
        if length == 0 {
            return Ok(tally);
        }
        if builtin == Builtin::ByteCount {
            tally.bytes = length;
            return Ok(tally);
        }
        // Read in blocks that stay in the core's cache, into a buffer reused by the
        // thread: measured faster than memory-mapping, whose page-table setup cost more
        // than the copy (bench/RESULTS.md).
        BUFFER.with_borrow_mut(|buffer| {
            let mut file = file;
            loop {
                let read = std::io::Read::read(&mut file, buffer)
                    .map_err(|e| format!("cannot read: {e}"))?;
                if read == 0 {
                    return Ok(tally);
                }
                tally.feed(&buffer[..read]);
            }
        })
    })();
    task(input, started, result)
}

async fn count_object(cloud: &Cloud, builtin: Builtin, input: &Input) -> TaskSummary {
    let started = Instant::now();
    let Source::S3 { bucket, key } = &input.source else {
        unreachable!("S3 inputs only")
    };
    let result = async {
        let mut tally = Tally::new(builtin);
        let mut body = cloud
            .object_body(bucket, key)
            .await
            .map_err(|e| e.to_string())?;
        while let Some(chunk) = body.next_chunk().await.map_err(|e| e.to_string())? {
            tally.feed(&chunk);
        }
        Ok(tally)
    }
    .await;
    task(input, started, result)
}
