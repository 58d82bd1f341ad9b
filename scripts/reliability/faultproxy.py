"""A seeded, configurable fault-injecting HTTP proxy between our services and the AWS emulator.

Every service of the local stack reaches AWS through `AWS_ENDPOINT_URL`; pointing it here puts
this proxy in the path. It forwards each request to the emulator unchanged, except that, for the
services named in its configuration (told apart by the SigV4 credential scope of the request's
`Authorization` header: `sqs`, `dynamodb`, `s3`, ...), it may, at seeded random:

- `throttle`: answer at once with the service's own throttling error (DynamoDB and SQS
  `ThrottlingException` / `RequestThrottled` as JSON, S3 `503 SlowDown` as XML), the request
  never reaching the emulator;
- `error`: answer at once with a 500 `InternalError` in the service's format;
- `lost`: forward the request, let the emulator apply it, then answer 500 instead of its reply
  (the nasty case: the write happened, the caller believes it failed and retries);
- `latency`: wait a random time in `latency_ms` before forwarding.

Configuration, a JSON object (also `PUT /__faults` at run time; `GET /__faults` returns the
counters):
    {"seed": 7, "services": {"sqs": {"throttle": 0.05, "error": 0.03, "lost": 0.01,
     "latency": 0.2, "latency_ms": [50, 400]}, "dynamodb": {...}, "s3": {...}}}

AWS-rules mode (`--rules FILE`, see awsrules.py): the proxy also enforces what AWS enforces and
the emulator does not: documented quotas scaled to a modelled fleet (throttled requests get the
service's own reply and never reach the emulator), page and batch limits, SQS's 12-hour
visibility total, and the Auto Scaling launch lifecycle (Pending:Wait until the launch hook is
completed). `GET /__rules` returns its counters. The random faults above still apply on top,
answered in AWS's exact formats. Rules file, a JSON object:
    {"model_workers": 1000, "local_workers": 100, "launch_hook": "renderfleet-dev-launch",
     "launch_timeout_secs": 600, "proceed_secs": 2,
     "harness_apps": ["renderfleet-supervisor", "renderctl"], "seed": 0}
(optional: "max_total_visibility_secs": 43200, "existing_in_service": false). Without --rules
the proxy behaves exactly as without this mode.

Listens on 127.0.0.1 only. Usage: faultproxy.py --upstream http://127.0.0.1:PORT --port PORT
[--config FILE] [--rules FILE] [--port-file FILE]
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import re
import sys
import threading
import time
import traceback
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

SCOPE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")
HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade"}


class Faults:
    def __init__(self, config: dict):
        self.lock = threading.Lock()
        self.counts: Counter = Counter()
        self.set(config)

    def set(self, config: dict) -> None:
        with self.lock:
            self.config = config
            self.rng = random.Random(config.get("seed", 0))

    def decide(self, service: str) -> tuple[str | None, float]:
        """Returns (fault kind or None, latency seconds) for one request."""
        with self.lock:
            self.counts[(service, "requests")] += 1
            c = self.config.get("services", {}).get(service)
            if not c:
                return None, 0.0
            delay = 0.0
            if self.rng.random() < c.get("latency", 0.0):
                lo, hi = c.get("latency_ms", [50, 300])
                delay = self.rng.uniform(lo, hi) / 1000.0
                self.counts[(service, "latency")] += 1
            r = self.rng.random()
            kind = None
            for k in ("throttle", "error", "lost"):
                p = c.get(k, 0.0)
                if r < p:
                    kind = k
                    break
                r -= p
            if kind:
                self.counts[(service, kind)] += 1
            return kind, delay

    def snapshot(self) -> dict:
        with self.lock:
            out: dict = {}
            for (svc, kind), n in self.counts.items():
                out.setdefault(svc, {})[kind] = n
            return out


def error_reply(service: str, kind: str) -> tuple[int, dict[str, str], bytes]:
    rid = str(uuid.uuid4())
    throttle = kind == "throttle"
    if service == "s3":
        code, status = ("SlowDown", 503) if throttle else ("InternalError", 500)
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
                f"<Message>injected by the fault proxy</Message><RequestId>{rid}</RequestId></Error>")
        return status, {"Content-Type": "application/xml", "x-amz-request-id": rid}, body.encode()
    if service == "dynamodb":
        code = "ThrottlingException" if throttle else "InternalServerError"
        body = {"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": "injected by the fault proxy"}
        return (400 if throttle else 500), {"Content-Type": "application/x-amz-json-1.0",
                                            "x-amzn-RequestId": rid}, json.dumps(body).encode()
    if service == "sqs":
        code = "RequestThrottled" if throttle else "InternalError"
        body = {"__type": f"com.amazonaws.sqs#{code}", "message": "injected by the fault proxy"}
        return (400 if throttle else 500), {"Content-Type": "application/x-amz-json-1.0",
                                            "x-amzn-RequestId": rid,
                                            "x-amzn-query-error": f"{code};{'Sender' if throttle else 'Receiver'}"}, json.dumps(body).encode()
    code = "Throttling" if throttle else "InternalFailure"
    body = {"__type": code, "message": "injected by the fault proxy"}
    return (400 if throttle else 500), {"Content-Type": "application/x-amz-json-1.1",
                                        "x-amzn-RequestId": rid}, json.dumps(body).encode()


def make_handler(upstream: str, faults: Faults, rules=None):
    """The request handler; `rules` (an awsrules.Rules) turns on AWS-rules mode."""
    up = urlsplit(upstream)
    local = threading.local()

    def connection() -> http.client.HTTPConnection:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = http.client.HTTPConnection(up.hostname, up.port, timeout=60)
            local.conn = conn
        return conn

    def send_upstream(method: str, path: str, headers: dict[str, str], body: bytes):
        """(status, headers, body) of the emulator's reply, or None when it is unreachable."""
        for _attempt in (1, 2):
            conn = connection()
            try:
                conn.request(method, path, body=body, headers=headers)
                resp = conn.getresponse()
                return resp.status, dict(resp.getheaders()), resp.read()
            except (http.client.HTTPException, OSError):
                conn.close()
                local.conn = None
        return None

    def run_actions() -> None:
        """The calls AWS itself would make (terminating an abandoned or timed-out launch)."""
        for action in rules.take_actions():
            headers = {**action.headers, "Host": up.netloc, "Content-Length": str(len(action.body))}
            got = send_upstream(action.method, action.path, headers, action.body)
            rules.action_done(action, got[0] if got else 502)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # quiet
            pass

        def read_body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while True:
                    size = int(self.rfile.readline().strip().split(b";")[0], 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        break
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                return b"".join(chunks)
            n = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(n) if n else b""

        def reply(self, status: int, headers: dict[str, str], body: bytes) -> None:
            self.send_response_only(status)
            for k, v in headers.items():
                if k.lower() not in HOP and k.lower() != "content-length":
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def control(self, body: bytes) -> None:
            if self.command == "PUT":
                faults.set(json.loads(body or b"{}"))
            self.reply(200, {"Content-Type": "application/json"},
                       json.dumps({"config": faults.config, "counts": faults.snapshot()}).encode())

        def handle_any(self) -> None:
            body = self.read_body()
            if self.path.startswith("/__faults"):
                return self.control(body)
            if rules is not None:
                try:
                    return self.handle_rules(body)
                except Exception:  # a bug in the rules: say so loudly, never hang the caller
                    traceback.print_exc()
                    return self.reply(500, {"Content-Type": "text/plain"}, b"fault proxy: awsrules failed")
            m = SCOPE.search(self.headers.get("Authorization", ""))
            service = m.group(1) if m else "unsigned"
            kind, delay = faults.decide(service)
            if delay:
                time.sleep(delay)
            if kind in ("throttle", "error"):
                return self.reply(*error_reply(service, kind))
            got = send_upstream(self.command, self.path, self.forward_headers(body), body)
            if got is None:
                return self.reply(502, {"Content-Type": "text/plain"}, b"upstream unreachable")
            if kind == "lost":
                return self.reply(*error_reply(service, "error"))
            self.reply(*got)

        def forward_headers(self, body: bytes) -> dict[str, str]:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
            headers["Content-Length"] = str(len(body))
            return headers

        def handle_rules(self, body: bytes) -> None:
            """AWS-rules mode: the rules answer first, then the random faults, then the emulator."""
            if self.path.startswith("/__rules"):
                return self.reply(200, {"Content-Type": "application/json"}, json.dumps(rules.snapshot()).encode())
            req = rules.parse(self.command, self.path, dict(self.headers.items()), body)
            answer = rules.before(req)
            run_actions()
            if answer is not None:
                return self.reply(*answer)
            kind, delay = faults.decide(req.service)
            if delay:
                time.sleep(delay)
            if kind in ("throttle", "error"):
                return self.reply(*rules.fault_reply(req, kind))
            got = send_upstream(self.command, self.path, self.forward_headers(body), body)
            if got is None:
                return self.reply(502, {"Content-Type": "text/plain"}, b"upstream unreachable")
            status, resp_headers, data = rules.after(req, *got)
            run_actions()
            if kind == "lost":
                return self.reply(*rules.fault_reply(req, "error"))
            self.reply(status, resp_headers, data)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = handle_any

    Handler.run_actions = staticmethod(run_actions)  # for main's timer thread (rules mode)

    return Handler


def tick(rules, run_actions) -> None:
    """Rules mode: lifecycle timers run even while no request arrives."""
    while True:
        time.sleep(1.0)
        try:
            rules.poll()
            run_actions()
        except Exception as e:  # a bug here must not stop the timers
            print(f"rules tick failed: {e!r}", file=sys.stderr, flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--config", help="a JSON file; default: no faults")
    ap.add_argument("--rules", help="a JSON file: enforce AWS's rules (awsrules.py); default: off")
    ap.add_argument("--port-file", help="write the port here once listening")
    a = ap.parse_args()
    config = json.load(open(a.config)) if a.config else {"seed": 0, "services": {}}
    faults = Faults(config)
    rules = None
    if a.rules:
        import awsrules
        rules = awsrules.Rules(awsrules.Config.from_dict(json.load(open(a.rules))))
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.request_queue_size = 256
    handler = make_handler(a.upstream, faults, rules)
    server = ThreadingHTTPServer(("127.0.0.1", a.port), handler)
    if rules is not None:
        threading.Thread(target=tick, args=(rules, handler.run_actions), daemon=True).start()
    if a.port_file:
        with open(a.port_file + ".tmp", "w") as f:
            f.write(str(server.server_address[1]))
        import os
        os.replace(a.port_file + ".tmp", a.port_file)
    mode = " (AWS-rules mode)" if rules is not None else ""
    print(f"fault proxy on 127.0.0.1:{server.server_address[1]} -> {a.upstream}{mode}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()
