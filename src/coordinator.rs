//! The coordinator: runs a graph of jobs with bounded parallelism, in dependency order.
//!
//! One coordinator owns the whole graph. It keeps, for every job, the number of unfinished
//! jobs it waits for, and a queue of jobs whose count reached zero. It starts ready jobs
//! until `parallelism` are running, then waits for any one to finish:
//!
//! - on success, each dependent's count drops by one, and those reaching zero are queued;
//! - on failure, every job that depends on the failed one, directly or not, is marked
//!   skipped and never starts. Jobs that do not depend on it carry on.
//!
//! Each job is one resource, so no two operations on one resource ever run at once. Jobs run
//! as futures polled by the coordinator's own task (they are I/O bound: waiting on AWS), and
//! their results come back to it as values, so the graph needs no locks. Jobs caught in a
//! dependency cycle never become ready; they are reported as skipped.
//!
//! The coordinator knows nothing of AWS or plans: keys and a start function are all it sees.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::future::Future;

use futures::stream::{FuturesUnordered, StreamExt};

/// How a job ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome<K, E> {
    Succeeded,
    Failed(E),
    /// Not started because a job it depends on failed (or, with no such job, because it is
    /// part of a dependency cycle).
    Skipped {
        because: Option<K>,
    },
}

/// Runs every job in `jobs` (a key and the keys it depends on) with at most `parallelism`
/// at once, calling `start` for each. Dependencies on keys that are not jobs are taken as
/// already satisfied. Returns each job's outcome.
pub async fn run<K, E, F, Fut>(
    jobs: Vec<(K, Vec<K>)>,
    parallelism: usize,
    mut start: F,
) -> BTreeMap<K, Outcome<K, E>>
where
    K: Ord + Clone,
    F: FnMut(K) -> Fut,
    Fut: Future<Output = Result<(), E>>,
{
    let keys: BTreeSet<K> = jobs.iter().map(|(key, _)| key.clone()).collect();
    let mut waiting_for: BTreeMap<K, usize> = BTreeMap::new();
    let mut dependents: BTreeMap<K, Vec<K>> = BTreeMap::new();
    for (key, deps) in &jobs {
        let deps: BTreeSet<&K> = deps
            .iter()
            .filter(|d| keys.contains(d) && *d != key)
            .collect();
        waiting_for.insert(key.clone(), deps.len());
        for dep in deps {
            dependents.entry(dep.clone()).or_default().push(key.clone());
        }
    }
    let mut ready: VecDeque<K> = waiting_for
        .iter()
        .filter(|(_, count)| **count == 0)
        .map(|(key, _)| key.clone())
        .collect();
    let mut outcomes: BTreeMap<K, Outcome<K, E>> = BTreeMap::new();
    let mut running = FuturesUnordered::new();
    let parallelism = parallelism.max(1);

    loop {
        while running.len() < parallelism {
            let Some(key) = ready.pop_front() else { break };
            let future = start(key.clone());
            running.push(async move { (key, future.await) });
        }
        let Some((key, result)) = running.next().await else {
            break;
        };
        match result {
            Ok(()) => {
                for dependent in dependents.get(&key).into_iter().flatten() {
                    if outcomes.contains_key(dependent) {
                        continue;
                    }
                    let count = waiting_for
                        .get_mut(dependent)
                        .expect("every dependent is a job");
                    *count -= 1;
                    if *count == 0 {
                        ready.push_back(dependent.clone());
                    }
                }
                outcomes.insert(key, Outcome::Succeeded);
            }
            Err(error) => {
                // Mark everything downstream skipped, breadth first.
                let mut downstream: VecDeque<K> =
                    dependents.get(&key).cloned().unwrap_or_default().into();
                while let Some(dependent) = downstream.pop_front() {
                    if outcomes.contains_key(&dependent) {
                        continue;
                    }
                    downstream.extend(dependents.get(&dependent).cloned().unwrap_or_default());
                    outcomes.insert(
                        dependent,
                        Outcome::Skipped {
                            because: Some(key.clone()),
                        },
                    );
                }
                outcomes.insert(key, Outcome::Failed(error));
            }
        }
    }
    for key in keys {
        outcomes
            .entry(key)
            .or_insert(Outcome::Skipped { because: None });
    }
    outcomes
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::time::Duration;

    use super::*;

    /// Runs a graph where each job sleeps a little, records start/finish order and the
    /// highest number of jobs running at once; jobs named in `failing` fail.
    fn simulate(
        jobs: &[(&'static str, &[&'static str])],
        parallelism: usize,
        failing: &[&'static str],
    ) -> (
        BTreeMap<&'static str, Outcome<&'static str, String>>,
        Vec<String>,
        usize,
    ) {
        let log = RefCell::new(Vec::new());
        let running = RefCell::new((0usize, 0usize));
        let graph = jobs.iter().map(|(k, deps)| (*k, deps.to_vec())).collect();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let outcomes = runtime.block_on(run(graph, parallelism, |key| {
            let log = &log;
            let running = &running;
            async move {
                log.borrow_mut().push(format!("start {key}"));
                {
                    let mut r = running.borrow_mut();
                    r.0 += 1;
                    r.1 = r.1.max(r.0);
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
                running.borrow_mut().0 -= 1;
                log.borrow_mut().push(format!("end {key}"));
                if failing.contains(&key) {
                    Err(format!("{key} broke"))
                } else {
                    Ok(())
                }
            }
        }));
        let peak = running.borrow().1;
        (outcomes, log.into_inner(), peak)
    }

    fn position(log: &[String], entry: &str) -> usize {
        log.iter()
            .position(|e| e == entry)
            .unwrap_or_else(|| panic!("{entry} not in {log:?}"))
    }

    #[test]
    fn dependencies_finish_before_dependents_start() {
        let (outcomes, log, _) = simulate(
            &[
                ("sg", &[]),
                ("key", &[]),
                ("vm", &["sg", "key"]),
                ("ip", &["vm"]),
            ],
            10,
            &[],
        );
        assert!(outcomes.values().all(|o| *o == Outcome::Succeeded));
        assert!(position(&log, "end sg") < position(&log, "start vm"));
        assert!(position(&log, "end key") < position(&log, "start vm"));
        assert!(position(&log, "end vm") < position(&log, "start ip"));
    }

    #[test]
    fn independent_jobs_run_together_up_to_the_bound() {
        let jobs: Vec<(&'static str, &[&'static str])> =
            vec![("a", &[]), ("b", &[]), ("c", &[]), ("d", &[]), ("e", &[])];
        let (_, _, peak) = simulate(&jobs, 3, &[]);
        assert_eq!(peak, 3);
        let (_, _, peak) = simulate(&jobs, 1, &[]);
        assert_eq!(peak, 1);
    }

    #[test]
    fn a_failure_skips_only_what_depends_on_it() {
        let (outcomes, _, _) = simulate(
            &[
                ("sg", &[]),
                ("vm", &["sg"]),
                ("ip", &["vm"]),
                ("bucket", &[]),
            ],
            10,
            &["sg"],
        );
        assert_eq!(outcomes["sg"], Outcome::Failed("sg broke".into()));
        assert_eq!(
            outcomes["vm"],
            Outcome::Skipped {
                because: Some("sg")
            }
        );
        assert_eq!(
            outcomes["ip"],
            Outcome::Skipped {
                because: Some("sg")
            }
        );
        assert_eq!(outcomes["bucket"], Outcome::Succeeded);
    }

    #[test]
    fn cycles_are_skipped_and_unknown_dependencies_ignored() {
        let (outcomes, log, _) = simulate(
            &[("a", &["b"]), ("b", &["a"]), ("c", &["not-a-job"])],
            10,
            &[],
        );
        assert_eq!(outcomes["a"], Outcome::Skipped { because: None });
        assert_eq!(outcomes["b"], Outcome::Skipped { because: None });
        assert_eq!(outcomes["c"], Outcome::Succeeded);
        assert_eq!(log, vec!["start c", "end c"]);
    }
}
