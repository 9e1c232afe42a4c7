//! Hostile names: file names and S3 keys that look like shell code, placeholders, paths
//! that climb out, or bytes that are not UTF-8, run through `command` jobs locally and on
//! an instance (a real sshd on loopback). Nothing but the declared command may run (a
//! canary file is never created), every task reads its own bytes, and every output lands
//! under its prefix with the expected name; a name that would escape fails its task, naming
//! the key, and writes nothing.

mod support;

use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use serde_json::Value;
use support::{
    apply_job_lab, get_object, host, project, put_object, run_tether, Cleanup, Moto, Sshd,
};

/// Names that are hostile as file names and as S3 keys alike, and the output name each
/// should get (below the prefix).
const HOSTILE: [&str; 11] = [
    "a{output}$(touch PWNED).txt",
    "b{input}.txt",
    "c$(touch PWNED).txt",
    "d`touch PWNED`.txt",
    "e;touch PWNED;.txt",
    "f'quote\"dquote.txt",
    "g\nnewline.txt",
    "h space  tab\t.txt",
    "-leading-dash.txt",
    "i|touch PWNED&.txt",
    "j\\backslash>x.txt",
];

/// The hostile names moto's server can store as keys: its HTTP layer answers 404 to a key
/// holding a newline (AWS takes one), so that name is tried on local files only.
fn hostile_keys() -> impl Iterator<Item = &'static str> {
    HOSTILE.into_iter().filter(|name| !name.contains('\n'))
}

const BUCKET_SPEC: &str = "\
project: lab
region: us-east-1
buckets:
  lab-data: {force_destroy: true}
";

/// What each input holds: its own name, so a task that read another's bytes shows.
fn content(name: &str) -> String {
    format!("content of {name}\n")
}

fn upper(text: &str) -> Vec<u8> {
    text.to_ascii_uppercase().into_bytes()
}

/// No canary anywhere the commands could have run.
fn assert_no_canary(dirs: &[&Path]) {
    for dir in dirs {
        assert!(
            !dir.join("PWNED").exists(),
            "a name ran as code in {}",
            dir.display()
        );
    }
}

fn summary_of(run_stdout: &str) -> Value {
    let summaries: Value = serde_json::from_str(run_stdout).expect("JSON summaries");
    summaries[0].clone()
}

// Regression: a local input named `a{output}$(touch PWNED).txt` made `tether run` execute
// `touch PWNED`.
#[test]
fn hostile_local_file_names_are_data_to_a_command_job() {
    let moto = Moto::start();
    let input_dir = moto.dir.path().join("in");
    std::fs::create_dir_all(&input_dir).expect("in/");
    for name in HOSTILE {
        std::fs::write(input_dir.join(name), content(name)).expect("hostile file");
    }
    // A name that is not UTF-8 at all.
    let raw = std::ffi::OsStr::from_bytes(b"k-\xff\xfe-raw.txt");
    std::fs::write(input_dir.join(raw), "raw bytes\n").expect("non-UTF-8 file");
    let spec = "project: lab\nregion: us-east-1\njobs:\n  shout:\n    inputs: ./in/*\n    command: \"tr a-z A-Z < {input} > {output}\"\n    output: ./out/\n";
    moto.write("tether.yaml", spec);
    let run = moto.tether(&["run", "--json"]).expect_code(0);
    assert_no_canary(&[moto.dir.path(), &input_dir]);
    let summary = summary_of(&run.stdout);
    assert_eq!(
        summary["tasks"].as_array().expect("tasks").len(),
        HOSTILE.len() + 1
    );
    for name in HOSTILE {
        let written = std::fs::read(moto.dir.path().join("out").join(name))
            .unwrap_or_else(|e| panic!("output of {name:?}: {e}"));
        assert_eq!(
            written,
            upper(&content(name)),
            "{name:?} read its own bytes"
        );
    }
    // One output per input, and tether's record of what made them (for `--resume`).
    let outputs: Vec<_> = std::fs::read_dir(moto.dir.path().join("out"))
        .expect("out/")
        .map(|e| e.expect("entry").file_name())
        .filter(|name| name != ".tether-sources")
        .collect();
    assert_eq!(
        outputs.len(),
        HOSTILE.len() + 1,
        "one output per input, nothing else"
    );
    let records = std::fs::read_to_string(moto.dir.path().join("out/.tether-sources"))
        .expect("the outputs' records");
    assert_eq!(records.lines().count(), HOSTILE.len() + 1);
}

#[test]
fn hostile_s3_keys_are_data_and_outputs_stay_under_their_prefix() {
    let moto = Moto::start();
    moto.write(
        "tether.yaml",
        &format!(
            "{BUCKET_SPEC}jobs:\n  shout:\n    inputs: s3://lab-data/in/\n    command: \"tr a-z A-Z < {{input}} > {{output}}\"\n    output: s3://lab-data/ou/\n"
        ),
    );
    moto.tether(&["apply", "--auto-approve", "--no-jobs"])
        .expect_code(0);
    let s3 = moto.s3("us-east-1");
    for name in hostile_keys() {
        put_object(&s3, "lab-data", &format!("in/{name}"), &content(name));
    }
    // Keys may hold `//` and start a segment with `/`; the longest key S3 takes.
    let long = format!("in/{}", "L".repeat(1024 - "in/".len()));
    let odd = ["in//double//slash.txt", "in/./dot/x.txt", long.as_str()];
    for key in odd {
        put_object(&s3, "lab-data", key, &content(key));
    }
    let run = moto.tether(&["run", "--json"]).expect_code(0);
    assert_no_canary(&[moto.dir.path()]);
    for name in hostile_keys() {
        assert_eq!(
            get_object(&s3, "lab-data", &format!("ou/{name}")),
            Some(upper(&content(name))),
            "{name:?}"
        );
    }
    for (key, expected) in [
        ("in//double//slash.txt", "ou/double/slash.txt"),
        ("in/./dot/x.txt", "ou/dot/x.txt"),
        (
            long.as_str(),
            &format!("ou/{}", "L".repeat(1024 - "in/".len())),
        ),
    ] {
        assert_eq!(
            get_object(&s3, "lab-data", expected),
            Some(upper(&content(key))),
            "{key} -> {expected}"
        );
    }
    let summary = summary_of(&run.stdout);
    assert_eq!(
        summary["tasks"].as_array().expect("tasks").len(),
        hostile_keys().count() + odd.len()
    );
}

// A key that climbs out of the prefix fails its own task, naming the key; the others run.
#[test]
fn a_key_that_would_escape_its_prefix_fails_its_task_and_writes_nothing() {
    let moto = Moto::start();
    moto.write(
        "tether.yaml",
        &format!(
            "{BUCKET_SPEC}jobs:\n  copy:\n    inputs: s3://lab-data/in/\n    command: \"cp {{input}} {{output}}\"\n    output: ./out/\n"
        ),
    );
    moto.tether(&["apply", "--auto-approve", "--no-jobs"])
        .expect_code(0);
    let s3 = moto.s3("us-east-1");
    put_object(&s3, "lab-data", "in/../../escaped.txt", "escape\n");
    put_object(&s3, "lab-data", "in/fine.txt", "fine\n");
    let run = moto.tether(&["run", "--json"]).expect_code(1);
    let summary = summary_of(&run.stdout);
    let tasks = summary["tasks"].as_array().expect("tasks");
    let escaping = tasks
        .iter()
        .find(|t| t["input"] == "s3://lab-data/in/../../escaped.txt")
        .expect("the escaping task");
    assert_eq!(escaping["status"], "failed");
    assert!(
        escaping["error"]
            .as_str()
            .expect("error")
            .contains("`../../escaped.txt` climbs out of the output prefix"),
        "{escaping}"
    );
    assert!(!moto.dir.path().join("escaped.txt").exists());
    assert!(!moto.dir.path().join("../escaped.txt").exists());
    assert_eq!(
        std::fs::read_to_string(moto.dir.path().join("out/fine.txt")).expect("fine"),
        "fine\n"
    );
}

#[test]
fn hostile_s3_keys_are_data_on_an_instance_too() {
    let moto = Moto::start();
    let sshd = Sshd::start();
    let project = project("hostile");
    let _cleanup = Cleanup(project.clone());
    let env = apply_job_lab(
        &moto,
        &project,
        &["worker"],
        &host("box", "worker", &sshd),
        "  shout:\n    run_on: worker\n    inputs: s3://lab-data/in/\n    command: \"tr a-z A-Z < {input} > {output}\"\n    output: s3://lab-data/out/\n",
    );
    let s3 = moto.s3("us-east-1");
    for name in hostile_keys() {
        put_object(&s3, "lab-data", &format!("in/{name}"), &content(name));
    }
    let run = run_tether(moto.dir.path(), &env, &["run", "--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    let mut dirs = vec![moto.dir.path().to_path_buf()];
    if let Some(home) = &home {
        dirs.push(home.join(".tether").join(&project));
        dirs.push(home.clone());
    }
    assert_no_canary(&dirs.iter().map(|d| d.as_path()).collect::<Vec<_>>());
    for name in hostile_keys() {
        assert_eq!(
            get_object(&s3, "lab-data", &format!("out/{name}")),
            Some(upper(&content(name))),
            "{name:?}"
        );
    }
}
