//! The only module that speaks to AWS: client configuration from the standard chain, one
//! function per API call in tether's own types, and the translation of SDK errors into
//! `AwsError`s a user can act on.
//!
//! It decides nothing: which calls to make, in what order, belongs to `live` and `apply`.
//! Every `aws_sdk_*` import in the crate is in this module.

mod batch;
mod budgets;
mod cloudwatch;
mod cost;
mod ec2;
mod iam;
mod instances;
mod logs;
mod objects;
mod pace;
mod prices;
mod roles;
mod s3;
mod ssm;
mod tagging;

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;

/// Attempts per API call, the first included. The SDK's standard retry mode backs off
/// exponentially with jitter on throttling, 5xx and transient network errors.
const MAX_ATTEMPTS: u32 = 5;

/// Clients for the account and region a spec manages.
#[derive(Clone, Debug)]
pub struct Cloud {
    s3: aws_sdk_s3::Client,
    iam: aws_sdk_iam::Client,
    ec2: aws_sdk_ec2::Client,
    ssm: aws_sdk_ssm::Client,
    sts: aws_sdk_sts::Client,
    batch: aws_sdk_batch::Client,
    cloudwatch: aws_sdk_cloudwatch::Client,
    logs: aws_sdk_cloudwatchlogs::Client,
    tagging: aws_sdk_resourcegroupstagging::Client,
    ce: aws_sdk_costexplorer::Client,
    pricing: aws_sdk_pricing::Client,
    budgets: aws_sdk_budgets::Client,
    region: String,
    /// What the calls so far have shown of the endpoint's distance (`pace`).
    pace: std::sync::Arc<pace::Pace>,
    /// The credentials' account, once asked (`account_id`).
    account: std::sync::Arc<tokio::sync::OnceCell<String>>,
}

impl Cloud {
    /// Loads credentials and settings from the standard AWS chain (`AWS_PROFILE`, `AWS_REGION`,
    /// environment keys, config files, `AWS_ENDPOINT_URL` and `AWS_ENDPOINT_URL_S3`).
    /// `region`, when given (the spec's), wins over the chain's.
    pub async fn connect(region: Option<&str>) -> Result<Cloud, AwsError> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .read_timeout(Duration::from_secs(60))
                    .build(),
            );
        if let Some(region) = region {
            loader = loader.region(Region::new(region.to_string()));
        }
        let config = loader.load().await;
        let region = config
            .region()
            .map(|r| r.to_string())
            .ok_or_else(|| AwsError {
                operation: "configure",
                resource: String::new(),
                code: None,
                message: "no AWS region is set".into(),
                kind: AwsErrorKind::Configuration,
            })?;
        let endpoint = endpoint_override().or_else(|| config.endpoint_url().map(str::to_string));
        // A custom endpoint (a local test server, an S3-compatible store) rarely resolves
        // `<bucket>.<host>` names, so buckets go in the path there.
        let pace = std::sync::Arc::new(pace::Pace::default());
        let meter = pace::Meter(std::sync::Arc::clone(&pace));
        let s3_config = aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(endpoint.is_some())
            .interceptor(meter.clone())
            .build();
        // Every client feeds the same pace.
        macro_rules! client {
            ($sdk:ident) => {
                $sdk::Client::from_conf(
                    $sdk::config::Builder::from(&config)
                        .interceptor(meter.clone())
                        .build(),
                )
            };
        }
        Ok(Cloud {
            s3: aws_sdk_s3::Client::from_conf(s3_config),
            iam: client!(aws_sdk_iam),
            ec2: client!(aws_sdk_ec2),
            ssm: client!(aws_sdk_ssm),
            sts: client!(aws_sdk_sts),
            batch: client!(aws_sdk_batch),
            cloudwatch: client!(aws_sdk_cloudwatch),
            logs: client!(aws_sdk_cloudwatchlogs),
            tagging: client!(aws_sdk_resourcegroupstagging),
            ce: client!(aws_sdk_costexplorer),
            budgets: client!(aws_sdk_budgets),
            // The Price List API answers in us-east-1 (and two other regions) for every region.
            pricing: aws_sdk_pricing::Client::from_conf(
                aws_sdk_pricing::config::Builder::from(&config)
                    .region(Region::new("us-east-1"))
                    .interceptor(meter.clone())
                    .build(),
            ),
            region,
            pace,
            account: std::sync::Arc::default(),
        })
    }

    /// A gate that admits as many pieces of work (each one request or a few in a row) as
    /// `in_flight(base, most)` allows at the moment each enters.
    pub fn gate(&self, base: usize, most: usize) -> Gate {
        Gate::new(std::sync::Arc::clone(&self.pace), base, most)
    }

    /// Caps the requests in flight at `most` (`TETHER_MAX_IN_FLIGHT`).
    pub fn limit_in_flight(&self, most: u32) {
        self.pace.limit(most);
    }

    /// The region this client talks to.
    pub fn region(&self) -> &str {
        &self.region
    }
}

/// The endpoint the environment points S3 at, if not AWS's own.
fn endpoint_override() -> Option<String> {
    ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]
        .iter()
        .filter_map(|name| std::env::var(name).ok())
        .find(|url| !url.is_empty())
}

/// What kind of failure an `AwsError` is, for hints and exit decisions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AwsErrorKind {
    /// Settings are missing (no region).
    Configuration,
    /// The endpoint could not be reached, or did not answer in time.
    Unreachable,
    /// No credentials, or credentials AWS does not accept.
    Credentials,
    /// The credentials work but lack a permission.
    AccessDenied,
    /// Still throttled after all retries.
    Throttled,
    /// Any other error AWS returned.
    Service,
}

/// A failed AWS call: which call, on which resource, AWS's error code and message.
#[derive(Debug, thiserror::Error)]
pub struct AwsError {
    /// The API operation, e.g. `CreateBucket`; empty for errors before any call.
    pub operation: &'static str,
    /// The resource it was about (`bucket.lab-data`), empty for account-wide calls.
    pub resource: String,
    /// AWS's error code, e.g. `BucketAlreadyExists`.
    pub code: Option<String>,
    /// A one-line description: AWS's message, or the root cause of a network failure.
    pub message: String,
    pub kind: AwsErrorKind,
}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.operation.is_empty() {
            write!(f, "{}", self.operation)?;
            if !self.resource.is_empty() {
                write!(f, " {}", self.resource)?;
            }
            write!(f, " failed: ")?;
        }
        if let Some(code) = &self.code {
            write!(f, "{code}: ")?;
        }
        write!(f, "{}", self.message)
    }
}

impl AwsError {
    /// What the user can do about it.
    pub fn hint(&self) -> Option<String> {
        match self.kind {
            AwsErrorKind::Configuration => {
                Some("set `region:` in the spec, or AWS_REGION / a profile's region".into())
            }
            AwsErrorKind::Unreachable => Some(match endpoint_override() {
                Some(url) => format!("is the endpoint {url} up? it comes from AWS_ENDPOINT_URL"),
                None => "check the network connection to AWS".into(),
            }),
            AwsErrorKind::Credentials => Some(
                "check the credentials tether finds: AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, ~/.aws/credentials"
                    .into(),
            ),
            AwsErrorKind::AccessDenied => Some(format!(
                "the credentials in use are not allowed to call {}; grant it to the user or role",
                self.operation
            )),
            AwsErrorKind::Throttled => Some("AWS is throttling requests; retry later or lower --parallelism".into()),
            AwsErrorKind::Service => None,
        }
    }

    /// The error AWS returned had this code.
    pub fn is_code(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }
}

/// Turns an SDK error into an `AwsError` for `operation` on `resource`.
fn classify<E>(
    operation: &'static str,
    resource: &str,
    error: SdkError<E, HttpResponse>,
) -> AwsError
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
{
    let mut aws_error = AwsError {
        operation,
        resource: resource.to_string(),
        code: None,
        message: root_cause(&error),
        kind: AwsErrorKind::Service,
    };
    match &error {
        SdkError::DispatchFailure(failure) if failure.is_io() || failure.is_timeout() => {
            aws_error.kind = AwsErrorKind::Unreachable;
        }
        SdkError::TimeoutError(_) => aws_error.kind = AwsErrorKind::Unreachable,
        SdkError::ServiceError(service) => {
            let err = service.err();
            aws_error.code = err.code().map(str::to_string);
            // A bare 5xx carries no message; the HTTP status is the useful part then.
            aws_error.message = err.message().map(str::to_string).unwrap_or_else(|| {
                format!(
                    "the endpoint answered HTTP {} without saying why",
                    service.raw().status().as_u16()
                )
            });
            aws_error.kind = match err.code().unwrap_or_default() {
                "AccessDenied"
                | "AccessDeniedException"
                | "AllAccessDisabled"
                | "UnauthorizedOperation" => AwsErrorKind::AccessDenied,
                "InvalidAccessKeyId"
                | "SignatureDoesNotMatch"
                | "ExpiredToken"
                | "InvalidToken"
                | "InvalidClientTokenId"
                | "UnrecognizedClientException" => AwsErrorKind::Credentials,
                "SlowDown" | "Throttling" | "ThrottlingException" | "RequestLimitExceeded" => {
                    AwsErrorKind::Throttled
                }
                _ => AwsErrorKind::Service,
            };
        }
        _ => {
            // Credential resolution fails before any request is sent; its errors are only
            // recognisable by their text (the root cause may be an IMDS answer).
            let context = aws_smithy_types::error::display::DisplayErrorContext(&error).to_string();
            if context.to_ascii_lowercase().contains("credential") {
                aws_error.kind = AwsErrorKind::Credentials;
                aws_error.message = format!("no usable AWS credentials ({})", aws_error.message);
            }
        }
    }
    aws_error
}

/// The innermost message of an error chain: the one line that says what really happened
/// ("Connection refused (os error 111)"), without the SDK's layers around it.
fn root_cause(error: &(dyn StdError + 'static)) -> String {
    let mut current = error;
    while let Some(next) = current.source() {
        current = next;
    }
    let text = current.to_string();
    if text.is_empty() {
        aws_smithy_types::error::display::DisplayErrorContext(error).to_string()
    } else {
        text
    }
}

pub use batch::{
    arn_name, ChildStream, ComputeEnvironmentInfo, ComputeEnvironmentRequest, FailedChild,
    JobDefinitionInfo, JobDefinitionRequest, JobQueueInfo, JobStatusInfo, RetriedChild,
    SubmitRequest,
};
pub use budgets::BudgetInfo;
pub use cloudwatch::{AlarmInfo, CpuAlarmRequest};
pub use cost::{Amount, PeriodCost, TagStatus};
pub use ec2::{CreatedKeyPair, KeyPairInfo, PrivateKey, SecurityGroupInfo};
pub use iam::{AccessKeyInfo, IamEntity, NewAccessKey};
pub use instances::{AddressInfo, InstanceInfo, LaunchRequest, OnWait, VolumeInfo, WAIT_TIMEOUT};
pub use logs::{LogEvent, BATCH_LOG_GROUP};
pub use objects::{Headers, ObjectBody, ObjectInfo};
pub use pace::{Gate, Pass};
pub use prices::SpotPrice;
pub use roles::{ProfileInfo, RoleInfo};
pub use s3::{BucketCreated, ObjectsDeleted};
pub use ssm::{Parameter, ParameterKind};

/// Success when the call failed only with `code`, which means its work was already done
/// ("already exists" on a create, "not found" on a delete).
fn done_if<T>(result: Result<T, AwsError>, code: &str) -> Result<(), AwsError> {
    none_if(result, code).map(|_| ())
}

/// Turns the AWS error `code`, which means "there is none", into `Ok(None)`.
fn none_if<T>(result: Result<T, AwsError>, code: &str) -> Result<Option<T>, AwsError> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(error) if error.is_code(code) => Ok(None),
        Err(error) => Err(error),
    }
}
