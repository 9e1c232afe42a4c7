//! A fault-injecting proxy on loopback in front of moto: every request is forwarded whole
//! (with `Connection: close`, one request per connection), and a fixed share of them,
//! chosen by a seeded sequence, fail the way S3 fails in the field:
//! - throttled: answered `503 SlowDown` without reaching moto;
//! - a server error: answered `500 InternalError` without reaching moto;
//! - dropped: a GetObject's answer is cut in the middle of its body; any other request
//!   reaches moto, and its connection closes before an answer (the SDK must try again,
//!   and S3's calls are idempotent).
//!
//! Counts of each are kept, so a test can see the faults happened, and every request's line
//! (with its `X-Amz-Target`, which names the call in JSON protocols), so a test can see which
//! calls were made. The proxy can also stand
//! for distance: each answer is held back a fixed time (requests stay concurrent), and the
//! most requests it held at once is kept.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Default)]
pub struct Counts {
    pub requests: AtomicU64,
    pub throttled: AtomicU64,
    pub server_errors: AtomicU64,
    pub dropped: AtomicU64,
    /// Requests being served now, and the most ever at once.
    pub in_flight: AtomicU64,
    pub peak_in_flight: AtomicU64,
    /// `GET /bucket/?tagging HTTP/1.1`, or `POST / HTTP/1.1 ResourceGroupsTaggingAPI_20170126.GetResources`.
    pub calls: std::sync::Mutex<Vec<String>>,
}

impl Counts {
    /// How many calls so far had a line containing `needle`.
    pub fn calls_with(&self, needle: &str) -> usize {
        let calls = self.calls.lock().expect("calls");
        calls.iter().filter(|line| line.contains(needle)).count()
    }
}

pub struct FaultProxy {
    pub endpoint: String,
    pub counts: Arc<Counts>,
}

/// The request's head (lines up to the blank one) and its body, read whole.
fn read_request(reader: &mut BufReader<TcpStream>) -> Option<(Vec<String>, Vec<u8>)> {
    let mut head = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if line == "\r\n" {
            break;
        }
        head.push(line.trim_end().to_string());
    }
    let header = |name: &str| {
        head.iter().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name)
                .then(|| value.trim().to_string())
        })
    };
    let mut body = Vec::new();
    if let Some(length) = header("content-length").and_then(|l| l.parse::<usize>().ok()) {
        body.resize(length, 0);
        reader.read_exact(&mut body).ok()?;
    } else if header("transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked")) {
        // Kept chunked as sent: read to the last chunk and its trailers.
        loop {
            let mut size_line = String::new();
            reader.read_line(&mut size_line).ok()?;
            body.extend_from_slice(size_line.as_bytes());
            let size = usize::from_str_radix(size_line.trim().split(';').next()?, 16).ok()?;
            if size == 0 {
                loop {
                    let mut trailer = String::new();
                    reader.read_line(&mut trailer).ok()?;
                    body.extend_from_slice(trailer.as_bytes());
                    if trailer == "\r\n" || trailer.is_empty() {
                        break;
                    }
                }
                break;
            }
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).ok()?;
            body.extend_from_slice(&chunk);
        }
    }
    Some((head, body))
}

fn error_answer(status: &str, code: &str) -> Vec<u8> {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>injected by the test's fault proxy</Message><RequestId>fault</RequestId></Error>"
    );
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Which fault request `n` gets: a fixed pseudo-random sequence, `percent` of them faulty.
fn fault_for(n: u64, percent: u64) -> Option<u64> {
    let mut x = n
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(0x2545_F491_4F6C_DD1D);
    x ^= x >> 31;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 29;
    (x % 100 < percent).then_some(x % 3)
}

fn serve_one(client: TcpStream, upstream: u16, faults: (u64, Duration), counts: &Counts) {
    let mut reader = BufReader::new(client.try_clone().expect("clone"));
    let Some((head, body)) = read_request(&mut reader) else {
        return;
    };
    let now = counts.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    counts.peak_in_flight.fetch_max(now, Ordering::SeqCst);
    let (percent, delay) = faults;
    // The distance: the answer comes this much later, whatever it is.
    std::thread::sleep(delay);
    answer(client, (head, body), upstream, percent, counts);
    counts.in_flight.fetch_sub(1, Ordering::SeqCst);
}

fn answer(
    mut client: TcpStream,
    (head, body): (Vec<String>, Vec<u8>),
    upstream: u16,
    percent: u64,
    counts: &Counts,
) {
    let n = counts.requests.fetch_add(1, Ordering::Relaxed);
    let target = head.iter().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.eq_ignore_ascii_case("x-amz-target")
            .then(|| value.trim().to_string())
    });
    let call = [head.first().cloned(), target].into_iter().flatten();
    counts
        .calls
        .lock()
        .expect("calls")
        .push(call.collect::<Vec<_>>().join(" "));
    let is_get_object = head.first().is_some_and(|line| {
        line.starts_with("GET ") && !line.contains("list-type") && !line.contains("?location")
    });
    let fault = fault_for(n, percent);
    match fault {
        Some(0) => {
            counts.throttled.fetch_add(1, Ordering::Relaxed);
            let _ = client.write_all(&error_answer("503 Slow Down", "SlowDown"));
            return;
        }
        Some(1) => {
            counts.server_errors.fetch_add(1, Ordering::Relaxed);
            let _ = client.write_all(&error_answer("500 Internal Server Error", "InternalError"));
            return;
        }
        _ => {}
    }
    let Ok(mut moto) = TcpStream::connect(("127.0.0.1", upstream)) else {
        return;
    };
    let mut request = String::new();
    for line in &head {
        if line.to_ascii_lowercase().starts_with("connection:") {
            continue;
        }
        request.push_str(line);
        request.push_str("\r\n");
    }
    request.push_str("Connection: close\r\n\r\n");
    if moto.write_all(request.as_bytes()).is_err() || moto.write_all(&body).is_err() {
        return;
    }
    let mut answer = Vec::new();
    let _ = moto.read_to_end(&mut answer);
    if fault == Some(2) && !is_get_object {
        counts.dropped.fetch_add(1, Ordering::Relaxed);
        let _ = client.shutdown(std::net::Shutdown::Both);
        return;
    }
    if fault == Some(2) {
        // The head and part of the body, then the connection is gone.
        let body_start = answer
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(answer.len(), |at| at + 4);
        let body_length = answer.len() - body_start;
        if body_length > 16 {
            counts.dropped.fetch_add(1, Ordering::Relaxed);
            let _ = client.write_all(&answer[..body_start + body_length / 2]);
            let _ = client.shutdown(std::net::Shutdown::Both);
            return;
        }
    }
    let _ = client.write_all(&answer);
}

/// Starts the proxy in front of the server on `upstream`; `percent` of requests fail.
pub fn start(upstream: u16, percent: u64) -> FaultProxy {
    start_with(upstream, percent, Duration::ZERO)
}

/// Starts the proxy with each answer held back `delay`, as from an endpoint that far away.
pub fn start_with(upstream: u16, percent: u64, delay: Duration) -> FaultProxy {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let port = listener.local_addr().expect("address").port();
    let counts = Arc::new(Counts::default());
    let shared = Arc::clone(&counts);
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { continue };
            let counts = Arc::clone(&shared);
            std::thread::spawn(move || serve_one(client, upstream, (percent, delay), &counts));
        }
    });
    FaultProxy {
        endpoint: format!("http://127.0.0.1:{port}"),
        counts,
    }
}

impl FaultProxy {
    /// `moto`'s environment with every AWS request sent through this proxy.
    pub fn env_through(&self, moto: &super::Moto) -> Vec<(String, String)> {
        moto.env()
            .into_iter()
            .map(|(key, value)| match key.as_str() {
                "AWS_ENDPOINT_URL" => (key, self.endpoint.clone()),
                _ => (key, value),
            })
            .collect()
    }
}
