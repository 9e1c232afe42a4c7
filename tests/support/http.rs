//! A scripted HTTP server on loopback that stands in for an AWS service where moto cannot
//! show a behaviour (throttling, a job stuck in `RUNNABLE`, a spot reclaim): each request is
//! read whole and answered by the test's handler, one connection per request.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;

/// One request as the server read it.
pub struct Request {
    /// `POST /v1/describejobs HTTP/1.1`
    pub line: String,
    /// The header lines as sent (`X-Amz-Target: AWSInsightsIndexService.GetCostForecast`).
    pub headers: Vec<String>,
    pub body: Vec<u8>,
}

impl Request {
    /// The call a JSON-protocol request makes: its `X-Amz-Target` after the last dot
    /// (`GetCostForecast`); empty when it has none.
    pub fn target(&self) -> &str {
        self.headers
            .iter()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("x-amz-target")
                    .then(|| value.trim().rsplit('.').next().unwrap_or_default())
            })
            .unwrap_or_default()
    }

    /// Sends this request on to the server on `port` (moto) as it came, and its answer back.
    pub fn forward(&self, port: u16) -> Response {
        use std::net::TcpStream;
        let mut upstream = TcpStream::connect(("127.0.0.1", port)).expect("connect upstream");
        let mut head = self.line.clone();
        for header in &self.headers {
            if !header.to_ascii_lowercase().starts_with("connection:") {
                head.push_str(header);
            }
        }
        head.push_str("Connection: close\r\n\r\n");
        upstream.write_all(head.as_bytes()).expect("send head");
        upstream.write_all(&self.body).expect("send body");
        let mut answer = Vec::new();
        upstream.read_to_end(&mut answer).expect("read answer");
        let split = answer
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("an answer's head");
        let head = String::from_utf8_lossy(&answer[..split]).into_owned();
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("a status");
        Response {
            status,
            content_type: "application/x-amz-json-1.1",
            body: String::new(),
            bytes: Some(answer[split + 4..].to_vec()),
            headers: Vec::new(),
        }
    }

    /// The body as JSON (Batch's REST-JSON requests); `null` when it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The body as text (the query protocol's form of IAM, EC2 and STS).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// An answer: status, content type, extra headers and body.
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
    /// A body that is not text (CBOR); sent instead of `body` when set.
    pub bytes: Option<Vec<u8>>,
    pub headers: Vec<(&'static str, String)>,
}

impl Response {
    pub fn xml(status: u16, body: impl Into<String>) -> Response {
        Response {
            status,
            content_type: "text/xml",
            body: body.into(),
            bytes: None,
            headers: Vec::new(),
        }
    }

    #[allow(dead_code)]
    pub fn text(status: u16, body: impl Into<String>) -> Response {
        Response {
            status,
            content_type: "text/plain",
            body: body.into(),
            bytes: None,
            headers: Vec::new(),
        }
    }

    pub fn json(status: u16, body: &serde_json::Value) -> Response {
        Response {
            status,
            content_type: "application/json",
            body: body.to_string(),
            bytes: None,
            headers: Vec::new(),
        }
    }
}

/// Serves every request with `handler` on a fresh loopback port, which it returns. The
/// server thread lives as long as the test process.
pub fn serve(handler: impl Fn(&Request) -> Response + Send + 'static) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let port = listener.local_addr().expect("address").port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let mut content_length = 0;
            let mut headers = Vec::new();
            let mut header = String::new();
            while reader
                .read_line(&mut header)
                .map(|n| n > 0)
                .unwrap_or(false)
                && header != "\r\n"
            {
                if let Some(value) = header.to_ascii_lowercase().strip_prefix("content-length:") {
                    content_length = value.trim().parse().unwrap_or(0);
                }
                headers.push(std::mem::take(&mut header));
            }
            let mut body = vec![0; content_length];
            let _ = reader.read_exact(&mut body);
            let answer = handler(&Request {
                line,
                headers,
                body,
            });
            let body = answer
                .bytes
                .clone()
                .unwrap_or_else(|| answer.body.clone().into_bytes());
            let headers: String = answer
                .headers
                .iter()
                .map(|(name, value)| format!("{name}: {value}\r\n"))
                .collect();
            let head = format!(
                "HTTP/1.1 {} X\r\nContent-Type: {}\r\nContent-Length: {}\r\n{headers}Connection: close\r\n\r\n",
                answer.status,
                answer.content_type,
                body.len(),
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body);
        }
    });
    port
}
