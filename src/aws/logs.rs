//! CloudWatch Logs: what a Batch job's containers wrote. Batch's `awslogs` driver puts every
//! container's output in one group, a stream per container; tether reads many streams in
//! one FilterLogEvents call (up to 100 at a time) rather than one GetLogEvents per stream.

use aws_sdk_cloudwatchlogs::operation::filter_log_events::FilterLogEventsError;

use super::{classify, AwsError, Cloud};

/// The log group Batch writes containers' output to when the job definition names none.
pub const BATCH_LOG_GROUP: &str = "/aws/batch/job";

/// FilterLogEvents takes at most this many stream names per call.
pub const STREAMS_PER_CALL: usize = 100;

/// One line a container wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEvent {
    pub stream: String,
    /// Milliseconds since the epoch, as the driver stamped it.
    pub timestamp: i64,
    pub message: String,
    /// CloudWatch's id of the event: the same event read twice has the same id.
    pub id: String,
}

impl Cloud {
    /// The events of `streams` in `group` stamped at or after `since` (ms since the epoch),
    /// in time order. One FilterLogEvents call per page for each hundred streams; a group
    /// that does not exist (nothing has logged yet) holds no events.
    pub async fn log_events(
        &self,
        group: &str,
        streams: &[String],
        since: Option<i64>,
    ) -> Result<Vec<LogEvent>, AwsError> {
        let mut events = Vec::new();
        for chunk in streams.chunks(STREAMS_PER_CALL) {
            let mut token: Option<String> = None;
            loop {
                let result = self
                    .logs
                    .filter_log_events()
                    .log_group_name(group)
                    .set_log_stream_names(Some(chunk.to_vec()))
                    .set_start_time(since)
                    .set_next_token(token.take())
                    .send()
                    .await;
                let page = match result {
                    Ok(page) => page,
                    Err(error)
                        if error
                            .as_service_error()
                            .is_some_and(FilterLogEventsError::is_resource_not_found_exception) =>
                    {
                        break
                    }
                    Err(error) => {
                        return Err(classify(
                            "FilterLogEvents",
                            &format!("log group {group}"),
                            error,
                        ))
                    }
                };
                events.extend(page.events().iter().map(|event| LogEvent {
                    stream: event.log_stream_name().unwrap_or_default().to_string(),
                    timestamp: event.timestamp().unwrap_or(0),
                    message: event.message().unwrap_or_default().to_string(),
                    id: event.event_id().unwrap_or_default().to_string(),
                }));
                // A page may be empty and still name a next one: the search goes on.
                match page.next_token() {
                    Some(next) if !next.is_empty() => token = Some(next.to_string()),
                    _ => break,
                }
            }
        }
        events.sort_by(|a, b| (a.timestamp, &a.id).cmp(&(b.timestamp, &b.id)));
        Ok(events)
    }
}
