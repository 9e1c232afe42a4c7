//! The CLI's behaviour on bad input and broken surroundings: exit codes, messages that point
//! at `file:line:column`, and no AWS call made. These need no moto: the endpoint is a closed
//! loopback port, so any call tether made would show up as an "unreachable" error instead.

mod support;

use support::{run_tether, sealed_env, Run};

/// Runs tether in `dir` against a loopback port where nothing listens.
fn tether(dir: &std::path::Path, args: &[&str]) -> Run {
    run_tether(dir, &sealed_env(dir, "http://127.0.0.1:9"), args)
}

/// The run as a snapshot: exit code and both streams, temp paths filtered out.
fn snapshot(run: &Run, dir: &std::path::Path) -> String {
    let text = format!(
        "exit code: {}\n--- stdout\n{}--- stderr\n{}",
        run.code, run.stdout, run.stderr
    );
    text.replace(&dir.display().to_string(), "[TEMP]")
}

#[test]
fn bad_specs_fail_with_file_line_column_and_make_no_call() {
    let cases = [
        ("missing_default_spec", None, vec!["plan"]),
        ("malformed_yaml", Some("project: lab\nbuckets: [\nregion: us-east-1\n"), vec!["plan"]),
        ("unknown_key", Some("project: lab\nbuckets:\n  lab-data:\n    publicread: true\nregion: us-east-1\n"), vec!["apply", "--auto-approve"]),
        ("invalid_bucket_name", Some("project: lab\nbuckets:\n  Lab_Data: {}\nregion: us-east-1\n"), vec!["destroy", "--auto-approve"]),
        ("public_write_refused", Some("project: lab\nbuckets:\n  lab-data:\n    policy:\n      Version: \"2012-10-17\"\n      Statement:\n        - Effect: Allow\n          Principal: \"*\"\n          Action: s3:DeleteObject\n          Resource: arn:aws:s3:::lab-data/*\nregion: us-east-1\n"), vec!["plan", "--json"]),
    ];
    for (name, spec, args) in cases {
        let dir = tempfile::tempdir().expect("temp dir");
        if let Some(spec) = spec {
            std::fs::write(dir.path().join("tether.yaml"), spec).expect("write spec");
        }
        let run = tether(dir.path(), &args);
        assert_eq!(run.code, 1, "{name}: {run:?}");
        assert!(
            !run.stderr.contains("Connection refused"),
            "{name}: no AWS call may be made for a bad spec"
        );
        insta::assert_snapshot!(name, snapshot(&run, dir.path()));
    }
}

#[test]
fn validate_needs_no_endpoint() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("lab.yaml"),
        include_str!("../specs/lab.yaml"),
    )
    .expect("write spec");
    let run = tether(dir.path(), &["validate", "-f", "lab.yaml"]);
    insta::assert_snapshot!(snapshot(&run, dir.path()));
}

/// The example specs the README walks through stay valid.
#[test]
fn the_examples_are_valid_specs() {
    for example in ["examples/quickstart", "examples/lab-workflow"] {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(example);
        let run = tether(&dir, &["validate"]);
        assert_eq!(run.code, 0, "{example}: {}", run.stderr);
    }
}

#[test]
fn unreachable_endpoint_is_one_clear_error_with_a_hint() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("tether.yaml"),
        "project: lab\nregion: us-east-1\n",
    )
    .expect("write spec");
    let run = tether(dir.path(), &["plan"]);
    insta::assert_snapshot!(snapshot(&run, dir.path()));
}

#[test]
fn missing_region_asks_for_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("tether.yaml"), "project: lab\n").expect("write spec");
    tether(dir.path(), &["plan"])
        .expect_code(1)
        .expect_stderr("no AWS region is set")
        .expect_stderr("hint: set `region:` in the spec");
}

#[test]
fn completions_and_the_man_page_come_from_the_same_arguments_the_parser_takes() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (shell, marker) in [
        ("bash", "_tether()"),
        ("zsh", "#compdef tether"),
        ("fish", "complete -c tether"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let run = tether(dir.path(), &["completions", shell]);
        assert_eq!(run.code, 0, "{shell}: {}", run.stderr);
        assert!(run.stdout.contains(marker), "{shell}: {}", run.stdout);
        // Every command completes, the new ones included.
        assert!(run.stdout.contains("rotate-key") && run.stdout.contains("force-unlock"));
    }
    let unknown = tether(dir.path(), &["completions", "cmd.exe"]);
    assert_eq!(unknown.code, 2, "clap's usage error: {}", unknown.stderr);
    let man = tether(dir.path(), &["man"]);
    assert_eq!(man.code, 0, "{}", man.stderr);
    assert!(man.stdout.contains(".TH tether 1"), "{}", man.stdout);
    assert!(man.stdout.contains("validate") && man.stdout.contains("secrets"));
}
