//! Retry behaviour of the real SDK stack, against a scripted HTTP server on loopback:
//! throttling and 5xx answers are retried with backoff; errors that cannot succeed on retry
//! fail at once, with AWS's error code.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use support::http::{self, Response};
use support::{run_tether, sealed_env, Run};

const EMPTY_LISTING: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListAllMyBucketsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Owner><ID>test</ID></Owner><Buckets></Buckets></ListAllMyBucketsResult>"#;

/// How IAM and EC2 refuse credentials without the permission (their error formats differ).
const IAM_DENIED: &str = "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>not allowed</Message></Error></ErrorResponse>";
const EC2_DENIED: &str = "<Response><Errors><Error><Code>UnauthorizedOperation</Code><Message>not allowed</Message></Error></Errors><RequestID>1</RequestID></Response>";

/// An empty, successful answer to the IAM or EC2 listing a plan makes besides S3's.
fn empty_listing(form: &str) -> String {
    let action = form
        .split('&')
        .find_map(|pair| pair.strip_prefix("Action="))
        .unwrap_or_default();
    match action {
        "ListUsers" | "ListGroups" | "ListRoles" | "ListInstanceProfiles" => {
            let list = &action["List".len()..];
            format!("<{action}Response><{action}Result><{list}/><IsTruncated>false</IsTruncated></{action}Result></{action}Response>")
        }
        // EC2 (query protocol, EC2 flavour): no key pairs, no default VPC.
        "DescribeKeyPairs" => {
            "<DescribeKeyPairsResponse><keySet/></DescribeKeyPairsResponse>".to_string()
        }
        "DescribeVpcs" => "<DescribeVpcsResponse><vpcSet/></DescribeVpcsResponse>".to_string(),
        "DescribeInstances" => {
            "<DescribeInstancesResponse><reservationSet/></DescribeInstancesResponse>".to_string()
        }
        "DescribeAddresses" => {
            "<DescribeAddressesResponse><addressesSet/></DescribeAddressesResponse>".to_string()
        }
        // STS: who the credentials are (which AWS answers whatever the policies say).
        "GetCallerIdentity" => "<GetCallerIdentityResponse><GetCallerIdentityResult><Account>123456789012</Account><Arn>arn:aws:iam::123456789012:user/tester</Arn><UserId>AIDEXAMPLE</UserId></GetCallerIdentityResult></GetCallerIdentityResponse>".to_string(),
        other => panic!("the scripted server does not know {other}"),
    }
}

/// Batch's answer to credentials that may not describe it.
const BATCH_DENIED: &str = r#"{"__type":"AccessDeniedException","message":"User is not authorized to perform batch:DescribeComputeEnvironments"}"#;

/// An empty Batch listing for the `POST /v1/describe...` request line.
fn batch_listing(request_line: &str) -> String {
    let list = if request_line.contains("describecomputeenvironments") {
        "computeEnvironments"
    } else if request_line.contains("describejobqueues") {
        "jobQueues"
    } else if request_line.contains("describejobdefinitions") {
        "jobDefinitions"
    } else {
        panic!("the scripted server does not know {request_line}")
    };
    format!("{{\"{list}\":[]}}")
}

/// Serves each S3 request (a GET) with the next scripted `(status, body)`, the last one
/// forever after, and counts them. IAM, EC2, Batch and tag index requests (POSTs: the plan
/// also lists users, groups, roles, instance profiles, key pairs and security groups, and
/// asks the index for the project's buckets) get an empty, successful listing and are not
/// counted.
fn scripted_server(script: Vec<(u16, &'static str)>) -> (u16, Arc<AtomicUsize>) {
    serve(script, false)
}

/// `scripted_server`, where IAM and EC2 requests are denied when `deny_others` is set.
fn serve(script: Vec<(u16, &'static str)>, deny_others: bool) -> (u16, Arc<AtomicUsize>) {
    let count = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&count);
    let port = http::serve(move |request| {
        if request.target() == "GetResources" {
            // The tag index (JSON protocol): nothing indexed, or denied.
            return if deny_others {
                Response::json(
                    400,
                    &serde_json::json!({"__type": "AccessDeniedException", "message": "not authorized to perform: tag:GetResources"}),
                )
            } else {
                Response::json(200, &serde_json::json!({"ResourceTagMappingList": []}))
            };
        }
        if request.target() == "GetParameter" {
            // Parameter Store (JSON protocol): the project keeps no record there.
            return Response::json(
                400,
                &serde_json::json!({"__type": "ParameterNotFound", "message": "not found"}),
            );
        }
        if request.line.starts_with("POST /v1/") {
            // AWS Batch (REST-JSON): nothing there, or denied.
            return if deny_others {
                Response::xml(403, BATCH_DENIED)
            } else {
                Response::xml(200, batch_listing(&request.line))
            };
        }
        if request.line.starts_with("POST") {
            let form = request.text();
            return if form.contains("Action=GetCallerIdentity") {
                Response::xml(200, empty_listing(&form))
            } else if deny_others && form.contains("Action=Describe") {
                Response::xml(403, EC2_DENIED)
            } else if deny_others {
                Response::xml(403, IAM_DENIED)
            } else {
                Response::xml(200, empty_listing(&form))
            };
        }
        let index = seen.fetch_add(1, Ordering::SeqCst);
        let (status, body) = script[index.min(script.len() - 1)];
        Response::xml(status, body)
    });
    (port, count)
}

fn plan_against(port: u16) -> Run {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("tether.yaml"),
        "project: lab\nregion: us-east-1\n",
    )
    .expect("spec");
    let endpoint = format!("http://127.0.0.1:{port}");
    run_tether(
        dir.path(),
        &sealed_env(dir.path(), &endpoint),
        &["plan", "--detailed-exitcode"],
    )
}

#[test]
fn throttling_and_server_errors_are_retried_until_they_pass() {
    let slow_down = r#"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"#;
    let internal = r#"<Error><Code>InternalError</Code><Message>We encountered an internal error.</Message></Error>"#;
    let (port, requests) = scripted_server(vec![
        (503, slow_down),
        (500, internal),
        (200, EMPTY_LISTING),
    ]);
    plan_against(port)
        .expect_code(0)
        .expect_stderr("No changes.");
    assert_eq!(
        requests.load(Ordering::SeqCst),
        3,
        "two failures, then the answer"
    );
}

#[test]
fn errors_that_cannot_pass_on_retry_fail_at_once_with_their_code() {
    let denied = r#"<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"#;
    let (port, requests) = scripted_server(vec![(403, denied)]);
    plan_against(port)
        .expect_code(1)
        .expect_stderr("ListBuckets failed: AccessDenied: Access Denied")
        .expect_stderr("hint: the credentials in use are not allowed to call ListBuckets");
    assert_eq!(
        requests.load(Ordering::SeqCst),
        1,
        "no retry of a permission error"
    );
}

#[test]
fn persistent_throttling_gives_up_after_five_attempts() {
    let slow_down = r#"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"#;
    let (port, requests) = scripted_server(vec![(503, slow_down)]);
    plan_against(port)
        .expect_code(1)
        .expect_stderr("SlowDown")
        .expect_stderr("hint: AWS is throttling requests");
    assert_eq!(requests.load(Ordering::SeqCst), 5);
}

#[test]
fn credentials_that_may_only_use_s3_still_plan_a_spec_of_buckets_with_warnings() {
    let (port, _) = serve(vec![(200, EMPTY_LISTING)], true);
    plan_against(port)
        .expect_code(0)
        .expect_stderr("warning: skipped IAM users and groups: they cannot be listed")
        .expect_stderr("warning: skipped key pairs and security groups: they cannot be listed")
        .expect_stderr("warning: skipped AWS Batch resources: they cannot be listed")
        .expect_stderr("No changes.");
}

// Latency, not the endpoint, limits reads from afar: a plan through a proxy that holds
// each answer back 40 ms keeps more requests in flight than one on loopback, and an
// operator's cap holds.
#[test]
fn reads_from_a_distant_endpoint_keep_more_requests_in_flight_within_the_operators_cap() {
    let moto = support::Moto::start();
    let buckets: String = (0..40).map(|i| format!("  far-{i:02}: {{}}\n")).collect();
    moto.write(
        "tether.yaml",
        &format!("project: far\nregion: us-east-1\nbuckets:\n{buckets}"),
    );
    moto.tether(&["apply", "--auto-approve"]).expect_code(0);
    let peak = |delay_ms: u64, cap: Option<&str>| {
        let proxy =
            support::faults::start_with(moto.port, 0, std::time::Duration::from_millis(delay_ms));
        let mut env = proxy.env_through(&moto);
        if let Some(cap) = cap {
            env.push(("TETHER_MAX_IN_FLIGHT".into(), cap.into()));
        }
        let plan = run_tether(moto.dir.path(), &env, &["plan", "--detailed-exitcode"]);
        assert_eq!(plan.code, 0, "no changes: {}", plan.stderr);
        proxy.counts.peak_in_flight.load(Ordering::SeqCst)
    };
    // The gate judges distance by the first call's round trip: on a loaded machine one
    // near plan may take its endpoint for far, so near is the lower of two.
    let near = peak(0, None).min(peak(0, None));
    let far = peak(40, None);
    let capped = peak(40, Some("4"));
    // Far, several times as many buckets at once as near (each bucket with two reads in
    // flight after its tags, beside the other families' first listings); capped, 4 at once.
    assert!(
        far >= 40 && far > near,
        "far: {far} in flight (near: {near})"
    );
    assert!(capped <= 16, "capped at 4: {capped} in flight");
}
