"""A counting relay on loopback: forwards each HTTP request to an upstream port and counts
it by the API call it makes, which it names from the request itself:
- JSON protocols (the tagging API, CloudWatch Logs, SSM): the `X-Amz-Target` header;
- query protocols (IAM, EC2, STS): the form body's `Action`;
- S3: the method and the sub-resource in the query (`GET ?tagging`), or ListBuckets;
- REST-JSON (Batch): the method and the path.
On SIGTERM it writes the counts to OUT as `count<TAB>call` lines, most first. Used by
bench/distance.sh to tell where a plan's calls go.

    python3 bench/call_census.py LISTEN_PORT UPSTREAM_PORT OUT
"""

import collections
import http.client
import http.server
import signal
import sys
import threading
import urllib.parse

counts = collections.Counter()
lock = threading.Lock()


def call_name(method, path, headers, body):
    target = headers.get("X-Amz-Target")
    if target:
        return target.split(".")[-1]
    url = urllib.parse.urlsplit(path)
    if method == "POST" and url.path == "/" and body:
        action = urllib.parse.parse_qs(body.decode("utf-8", "replace")).get("Action")
        if action:
            return action[0]
    if url.path.startswith("/v1/"):
        return f"{method} {url.path}"
    query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
    if "x-id" in query:
        return f"S3 {query['x-id'][0]}"
    sub = sorted(k for k in query if not k.startswith("x-"))
    bucket = url.path.strip("/").split("/")[0]
    return f"S3 {method} {'?' + sub[0] if sub else ('bucket' if bucket else '/')}"


class Relay(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def relay(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        with lock:
            counts[call_name(self.command, self.path, self.headers, body)] += 1
        upstream = http.client.HTTPConnection("127.0.0.1", self.server.upstream)
        headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
        upstream.request(self.command, self.path, body=body, headers=headers)
        answer = upstream.getresponse()
        data = answer.read()
        self.send_response(answer.status, answer.reason)
        head = self.command == "HEAD"
        for key, value in answer.getheaders():
            if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(key, value)
        self.send_header("Content-Length", answer.getheader("Content-Length", "0") if head else str(len(data)))
        self.end_headers()
        if not head:
            self.wfile.write(data)
        upstream.close()

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = relay

    def log_message(self, *args):
        pass


def main():
    listen, upstream, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", listen), Relay)
    server.upstream = upstream

    def finish(*_):
        with lock, open(out, "w") as f:
            for call, n in counts.most_common():
                f.write(f"{n}\t{call}\n")
        sys.exit(0)

    signal.signal(signal.SIGTERM, finish)
    server.serve_forever()


if __name__ == "__main__":
    main()
