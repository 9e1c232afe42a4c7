//! The spec's JSON Schema: the committed copy is what `tether schema` prints, every bundled
//! spec names it and passes it, and an independent validator (Python's jsonschema, from
//! moto's virtual environment) agrees with `tether validate` on what is wrong.

mod support;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use support::run_tether;

const SCHEMA: &str = "schema/tether.schema.json";

/// The bundled specs, which editors open first.
const BUNDLED: [&str; 4] = [
    "specs/lab.yaml",
    "examples/quickstart/tether.yaml",
    "examples/lab-workflow/tether.yaml",
    "examples/batch/tether.yaml",
];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Validates each YAML text against the committed schema with Python's jsonschema (draft
/// 2020-12, after checking the schema itself against the meta-schema); returns each one's
/// errors, empty when it passes.
fn python_verdicts(texts: &[String]) -> Vec<Vec<String>> {
    const SCRIPT: &str = r#"
import json, sys, yaml, jsonschema
schema = json.load(open(sys.argv[1]))
jsonschema.Draft202012Validator.check_schema(schema)
validator = jsonschema.Draft202012Validator(schema)
verdicts = []
for text in json.load(sys.stdin):
    document = yaml.safe_load(text)
    verdicts.append(["/".join(map(str, e.path)) + ": " + e.message for e in validator.iter_errors(document)])
json.dump(verdicts, sys.stdout)
"#;
    let mut child = Command::new(support::venv_python())
        .args(["-c", SCRIPT])
        .arg(root().join(SCHEMA))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run Python's jsonschema");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(serde_json::to_string(texts).expect("JSON").as_bytes())
        .expect("write the specs");
    let output = child.wait_with_output().expect("wait for Python");
    assert!(
        output.status.success(),
        "the validator failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("verdicts")
}

#[test]
fn the_committed_schema_is_what_tether_schema_prints() {
    let dir = tempfile::tempdir().expect("temp dir");
    let run = run_tether(dir.path(), &[], &["schema"]).expect_code(0);
    let committed = std::fs::read_to_string(root().join(SCHEMA)).expect("the committed schema");
    assert!(
        run.stdout == committed,
        "{SCHEMA} is stale: run `cargo run -- schema > {SCHEMA}` and commit it"
    );
    let schema: serde_json::Value = serde_json::from_str(&committed).expect("JSON");
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    // Unknown keys are errors in tether, so in the schema too: every object closes itself.
    assert_eq!(schema["additionalProperties"], false);
    for (name, definition) in schema["$defs"].as_object().expect("definitions") {
        if definition["type"] == "object" {
            assert_eq!(
                definition["additionalProperties"], false,
                "{name} accepts unknown keys"
            );
        }
    }
    // Descriptions come from the doc comments.
    assert!(schema["properties"]["project"]["description"]
        .as_str()
        .is_some_and(|d| d.contains("tagged")));
}

#[test]
fn every_bundled_spec_names_the_schema_and_passes_it() {
    let mut texts = Vec::new();
    for spec in BUNDLED {
        let path = root().join(spec);
        let text = std::fs::read_to_string(&path).expect("a bundled spec");
        let first = text.lines().next().unwrap_or_default();
        let named = first
            .strip_prefix("# yaml-language-server: $schema=")
            .unwrap_or_else(|| panic!("{spec} does not start with the schema line: {first}"));
        let target = path.parent().expect("directory").join(named);
        assert_eq!(
            target.canonicalize().expect("the named schema exists"),
            root().join(SCHEMA).canonicalize().expect("schema"),
            "{spec} names another schema"
        );
        texts.push(text);
    }
    for (spec, errors) in BUNDLED.iter().zip(python_verdicts(&texts)) {
        assert!(errors.is_empty(), "{spec}: {errors:?}");
    }
}

/// A spec with one change; `true` where the spec is good.
fn case(body: &str) -> String {
    format!("project: lab\nregion: us-east-1\n{body}")
}

#[test]
fn the_schema_and_tether_validate_agree_on_what_is_wrong() {
    let instance = |kind: &str| {
        format!("instances:\n  worker:\n    ami: ami-0123456789abcdef0\n    type: {kind}\n")
    };
    let ingress = |port: &str, cidr: &str| {
        format!("security_groups:\n  ssh:\n    description: ssh\n    ingress:\n      - {{port: {port}, cidr: \"{cidr}\"}}\n")
    };
    let cases: Vec<(String, bool)> = vec![
        (case("buckets:\n  lab-data-2026: {}\n"), true),
        (case("buckets:\n  Lab_Data: {}\n"), false),
        (case("buckets:\n  xn--lab: {}\n"), false),
        (case("buckets:\n  192.168.5.4: {}\n"), false),
        (case("buckets:\n  ab: {}\n"), false),
        (case("bukets:\n  lab-data: {}\n"), false),
        (case(&ingress("22", "203.0.113.7/32")), true),
        (case(&ingress("22", "2001:db8::/32")), true),
        (case(&ingress("70000", "203.0.113.7/32")), false),
        (case(&ingress("22", "203.0.113.7")), false),
        (case(&ingress("22", "300.0.113.7/32")), false),
        (case(&ingress("22", "203.0.113.7/33")), false),
        (case(&instance("t3.micro")), true),
        (case(&instance("u-6tb1.metal")), true),
        (case(&instance("T3.micro")), false),
        (case(&instance("t3")), false),
        (case(&instance("t3-.micro")), false),
        (case("instances:\n  worker:\n    ami: ami-123\n    type: t3.micro\n"), false),
        (case("instances:\n  worker:\n    ami: ami-0123456789abcdef0\n    type: t3.micro\n    market: reserved\n"), false),
        (case("account:\n  alias: my-lab\n"), true),
        (case("account:\n  alias: my--lab\n"), false),
        (case("account:\n  alias: '123456789012'\n"), false),
        (case("jobs:\n  count:\n    inputs: ./data/*.txt\n    command: wc -w {input}\n    parallelism: many\n"), false),
        (case("jobs:\n  count:\n    inputs: ./data/*.txt\n    command: wc -w {input}\n    parallelism: auto\n"), true),
        (case("buckets:\n  lab-data: {tags: {team: ds}}\n"), true),
        (case("buckets:\n  lab-data: {tags: {'tether:project': x}}\n"), false),
        (case("buckets:\n  lab-data: {tags: {'AWS:thing': x}}\n"), false),
        (case(&format!("buckets:\n  lab-data: {{tags: {{team: {}}}}}\n", "x".repeat(257))), false),
        (
            case(&format!(
                "buckets:\n  lab-data:\n    tags:\n{}",
                (0..48).map(|i| format!("      k{i}: v\n")).collect::<String>()
            )),
            false,
        ),
        ("region: us-east-1\n".to_string(), false),
    ];
    let texts: Vec<String> = cases.iter().map(|(text, _)| text.clone()).collect();
    let verdicts = python_verdicts(&texts);
    let dir = tempfile::tempdir().expect("temp dir");
    for ((text, good), errors) in cases.iter().zip(verdicts) {
        assert_eq!(
            errors.is_empty(),
            *good,
            "the schema {} this spec: {errors:?}\n{text}",
            if *good { "refuses" } else { "accepts" }
        );
        std::fs::write(dir.path().join("tether.yaml"), text).expect("spec");
        let run = run_tether(dir.path(), &[], &["validate"]);
        assert_eq!(
            run.code == 0,
            *good,
            "tether validate disagrees with the schema on this spec:\n{text}\n{}",
            run.stderr
        );
    }
}
