"""AWS-rules mode of the fault proxy: the rules AWS enforces and the emulator does not.

The local stack's emulator (moto) is permissive: it never throttles, puts every Auto Scaling
instance InService at once, accepts SetInstanceProtection in any state and enforces no page or
batch sizes. Code that is wrong for AWS passes against it. `faultproxy.py --rules FILE` puts this
module in the path so that such code fails the local tests instead of production.

The model
- Each request is identified (`identify`): the signing service from the SigV4 credential scope,
  the operation from `X-Amz-Target` (JSON protocols), `Action=` (query protocol) or the REST
  method and path (S3), and the calling program from `app/<name>` in the SDK's user agent.
- Quotas: token buckets at AWS's documented default rates (`aws_quotas.BUCKETS`) plus the two the
  farm needs that AWS does not publish (`MODELLED`, below). The local stack runs `local_workers`
  agents to stand for `model_workers`, so a request from `render-agent` costs
  `model_workers / local_workers` tokens; other programs cost 1; the test harness
  (`harness_apps`) is never throttled and never charged. A request may take a bucket into debt
  when it costs more than the bucket holds at most (`cost > burst`, e.g. a weight-10 agent
  against SSM's 3-token PutParameter bucket): it is let through when the bucket is full, which
  keeps the long-run admitted rate at the bucket's rate instead of refusing forever.
  A throttled request never reaches the emulator and gets the service's own throttling reply.
- Limits: page and batch sizes of `aws_quotas.MAX_PARAMETER` (and the few minimums in
  `MIN_PARAMETER`), and SQS's 12-hour cap on a message's total invisibility since the
  ReceiveMessage that produced its receipt handle. Refused requests get the service's own
  validation error and are not forwarded.
- Auto Scaling lifecycle: the proxy keeps its own view of each instance. An instance first seen
  InService upstream is shown `Pending:Wait` until `CompleteLifecycleAction` (the configured
  launch hook, CONTINUE) arrives, then `Pending:Proceed` for `proceed_secs`, then InService
  (from then on the emulator's state is shown). ABANDON, or no completion within
  `launch_timeout_secs` (heartbeats extend it), makes the proxy terminate the instance upstream
  (`TerminateInstanceInAutoScalingGroup`, desired capacity kept) and show it `Terminating`.
  SetInstanceProtection and SetDesiredCapacity are checked against that view and the group's
  bounds as AWS checks them.
- Counters (`Rules.snapshot`, served as `GET /__rules`): per (program, service, operation) the
  requests, SDK retries, throttles and refusals; first attempts (the calls the farm makes) in
  10-second windows over the last 10 minutes, raw and
  weighted by the program's weight; the lifecycle history of every instance.

Not enforced (known gaps, on purpose)
- Request-unit accounting: DynamoDB is charged one token per request per partition-key value
  (times the caller's weight), not write/read units by item size; transactions are not doubled.
- DynamoDB's 1 MB page: a Query/Scan reply larger than 1 MB is NOT cut (a correct
  LastEvaluatedKey needs the table's and the index's key schema, which the request does not
  carry); such replies are counted in the snapshot (`not_enforced_seen`).
- S3 scales a hot prefix within minutes; the proxy models the un-scaled prefix. Part sizes
  (5 MiB minimum but the last) are left to the emulator, which checks them.
- SQS: no request-rate quota (AWS: "nearly unlimited"); the in-flight message cap (~120,000) is
  not modelled; the 12-hour total applies to ChangeMessageVisibility, not to its batch form
  (whose per-entry failures would need a partial reply).
- Auto Scaling: termination lifecycle hooks, warm pools, scaling activities and the instances
  AWS would launch or replace itself are left to the emulator; lifecycle actions are matched by
  instance id (tokens are never issued, so a token-only completion is refused).
- EC2, Lambda and other calls: only what aws_quotas maps; Lambda's REST API is not parsed.

Pure logic: no I/O besides reading the clock; the proxy does the sending (`take_actions`).
Threads: every public method of `Rules` takes its lock.
"""

from __future__ import annotations

import gzip
import html
import json
import random
import re
import threading
import time
import uuid
import xml.etree.ElementTree as ET
import zlib
from collections import OrderedDict
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Mapping
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

import aws_quotas
from aws_quotas import Bucket

# --- Buckets AWS does not publish --------------------------------------------------------------

_SSM_THROUGHPUT = "https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-throughput.html"
_ASG_API = "https://docs.aws.amazon.com/autoscaling/ec2/APIReference/Welcome.html"

# NOT AWS-published figures: the farm needs a bucket for these calls and AWS gives no number.
# `source` names the AWS page that says a quota exists (or the nearest one), not the figure.
MODELLED: list[Bucket] = [
    Bucket(
        "ssm:PutParameter", 3, 3, _SSM_THROUGHPUT,
        "NOT AWS-published: 3 TPS is AWS Support's figure for PutParameter on standard throughput "
        "as quoted in github-aws-runners/terraform-aws-github-runner#2944 (see aws_quotas.py's "
        "trailing comment). Shared with DeleteParameter and DeleteParameters.",
    ),
    Bucket(
        "autoscaling:shared", 20, 40, _ASG_API,
        "NOT AWS-published: AWS documents one token bucket shared by all EC2 Auto Scaling APIs per "
        "account and Region but publishes neither its size nor its refill rate; 20/s with a "
        "burst of 40 is an assumption of this proxy.",
    ),
]

MODELLED_OPERATION_BUCKET: dict[tuple[str, str], str] = {
    ("ssm", "PutParameter"): "ssm:PutParameter",
    ("ssm", "DeleteParameter"): "ssm:PutParameter",
    ("ssm", "DeleteParameters"): "ssm:PutParameter",
}
AUTOSCALING_BUCKET = "autoscaling:shared"  # every autoscaling operation

ALL_BUCKETS: dict[str, Bucket] = {b.name: b for b in aws_quotas.BUCKETS + MODELLED}

# Minimums AWS enforces that the farm could hit (same source pages as MAX_PARAMETER's rows).
MIN_PARAMETER: dict[tuple[str, str, str], int] = {
    ("ssm", "GetParametersByPath", "MaxResults"): 1,
    ("sqs", "ReceiveMessage", "MaxNumberOfMessages"): 1,
    ("sqs", "ReceiveMessage", "WaitTimeSeconds"): 0,
    ("sqs", "ReceiveMessage", "VisibilityTimeout"): 0,
    ("sqs", "ChangeMessageVisibility", "VisibilityTimeout"): 0,
    ("sqs", "SendMessage", "DelaySeconds"): 0,
    ("autoscaling", "PutLifecycleHook", "HeartbeatTimeout"): 30,
    ("s3", "UploadPart", "partNumber"): 1,
}

# Parameters of MAX_PARAMETER that are lists (their limit is a member count) or sizes in bytes.
LIST_PARAMETERS = {"Names", "InstanceIds", "Entries", "RequestItems", "TransactItems",
                   "MetricData", "MetricDataQueries"}
# SQS's query protocol names batch entries after the operation, not "Entries".
SQS_QUERY_ENTRIES = {
    "SendMessageBatch": "SendMessageBatchRequestEntry",
    "DeleteMessageBatch": "DeleteMessageBatchRequestEntry",
    "ChangeMessageVisibilityBatch": "ChangeMessageVisibilityBatchRequestEntry",
}

WINDOW_SECS = 10
WINDOWS_KEPT = 60  # 10 minutes
DYNAMODB_PAGE_BYTES = 1024 * 1024  # https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Query.Pagination.html
RECEIPTS_KEPT = 200_000

ASG_NS = "https://autoscaling.amazonaws.com/doc/2011-01-01/"  # AWS API reference examples
CW_NS = "http://monitoring.amazonaws.com/doc/2010-08-01/"
SQS_NS = "http://queue.amazonaws.com/doc/2012-11-05/"
QUERY_NS = {"autoscaling": ASG_NS, "monitoring": CW_NS, "sqs": SQS_NS}

# https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_SetInstanceProtection.html
# (AWS's ValidationError outside these states: "The instance i-... is not in InService or
# EnteringStandby or Standby.")
PROTECTABLE = ("InService", "EnteringStandby", "Standby")
# https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-lifecycle.html
PENDING_WAIT, PENDING_PROCEED, IN_SERVICE = "Pending:Wait", "Pending:Proceed", "InService"
TERMINATING, TERMINATED = "Terminating", "Terminated"


# --- Configuration -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Config:
    """The `--rules` JSON file. Unknown keys are refused, so a typo fails at start."""
    model_workers: int = 1000          # workers the test stands for
    local_workers: int = 100           # render-agent processes the local stack actually runs
    launch_hook: str = "renderfleet-dev-launch"  # the group's launch lifecycle hook
    launch_timeout_secs: float = 600   # Pending:Wait without completion -> terminated
    proceed_secs: float = 2            # time shown in Pending:Proceed after CONTINUE
    harness_apps: tuple[str, ...] = ("renderfleet-supervisor", "renderctl")  # never throttled
    seed: int = 0                      # seeds the request ids the proxy makes up
    max_total_visibility_secs: float = 43200  # SQS: 12 h total invisibility per receipt
    existing_in_service: bool = False  # instances in a group when first seen count as InService

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Config":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown rules config keys: {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        for f in fields(cls):
            if f.name in d and not _type_ok(d[f.name], f.default):
                raise ValueError(f"rules config {f.name}: expected {type(f.default).__name__}, got {d[f.name]!r}")
        c = cls(**{**d, "harness_apps": tuple(d.get("harness_apps", cls.harness_apps))})
        if c.model_workers <= 0 or c.local_workers <= 0:
            raise ValueError("model_workers and local_workers must be positive")
        if c.launch_timeout_secs <= 0 or c.proceed_secs < 0 or c.max_total_visibility_secs <= 0:
            raise ValueError("launch_timeout_secs and max_total_visibility_secs must be positive, proceed_secs >= 0")
        return c

    def to_dict(self) -> dict:
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v) for f in fields(self)}

    def weight(self, app: str) -> float:
        """Tokens one request of `app` costs: the agents stand for the modelled fleet."""
        if app in self.harness_apps:
            return 0.0
        if app == "render-agent":
            return self.model_workers / self.local_workers
        return 1.0


def _type_ok(value: Any, default: Any) -> bool:
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, (int, float)):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, tuple):
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    return isinstance(value, type(default))


# --- Identifying a request ---------------------------------------------------------------------

SCOPE = re.compile(r"Credential=[^/]+/\d{8}/([^/]+)/([^/]+)/aws4_request")
APP = re.compile(r"(?:^|\s)app/([^\s]+)")
RPCV2 = re.compile(r"^/service/([^/]+)/operation/([^/?]+)")
TARGET_SERVICE = {"DynamoDB": "dynamodb", "AmazonSQS": "sqs", "AmazonSSM": "ssm",
                  "GraniteServiceVersion20100801": "monitoring"}


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]      # lower-case names
    body: bytes
    service: str                 # SigV4 signing service, or "unsigned"
    operation: str               # e.g. "PutItem", "SendMessage", "PutObject", or "unknown"
    params: dict                 # JSON body, form fields, or S3 Bucket/Key/query
    protocol: str                # "json", "query", "rest-xml", "rpcv2", "unknown"
    app: str = "unknown"         # `app/<name>` of the SDK user agent
    region: str = ""


def caller_app(headers: Mapping[str, str]) -> str:
    """The SDK app name (`app/<name>` in x-amz-user-agent or User-Agent), else "unknown"."""
    h = _lower(headers)
    for name in ("x-amz-user-agent", "user-agent"):
        m = APP.search(h.get(name, ""))
        if m:
            return m.group(1)
    return "unknown"


def identify(method: str, path: str, headers: Mapping[str, str], body: bytes) -> tuple[str, str, dict]:
    """(service, operation, params) of one request."""
    r = parse_request(method, path, headers, body)
    return r.service, r.operation, r.params


def parse_request(method: str, path: str, headers: Mapping[str, str], body: bytes) -> Request:
    h = _lower(headers)
    url = urlsplit(path)
    query = dict(parse_qsl(url.query, keep_blank_values=True))
    service, region = _scope(h, query)
    target = h.get("x-amz-target", "")
    r = Request(method, path, h, body, service, "unknown", {}, "unknown", caller_app(h), region)
    if target:
        prefix, _, r.operation = target.rpartition(".")
        if r.service == "unsigned":
            r.service = TARGET_SERVICE.get(prefix.split("_")[0], "unsigned")
        r.protocol, r.params = "json", _json(_body_text(h, body))
    elif m := RPCV2.match(url.path):
        r.protocol, r.operation = "rpcv2", m.group(2)  # CBOR body: not decoded
    elif r.service == "s3":  # before the form check: an object's bytes are not a form
        r.protocol = "rest-xml"
        r.operation, r.params = _s3(method, url.path, query, h)
    elif "Action" in query or _is_form(h, body):
        form = {**query, **dict(parse_qsl(_body_text(h, body), keep_blank_values=True))}
        r.protocol, r.operation, r.params = "query", form.get("Action", "unknown"), form
    return r


def count_members(params: Mapping, name: str) -> int:
    """How many members list parameter `name` has: a JSON list (or, for DynamoDB's RequestItems,
    the items of every table), or flattened form fields `Name.member.N...` / `Name.N...`."""
    if name in params and not isinstance(params[name], str):
        return _count(params[name])
    pattern = re.compile(rf"^{re.escape(name)}\.(?:member\.)?(\d+)(?:\.|$)")
    return len({m.group(1) for k in params if (m := pattern.match(k))})


def _count(value: Any) -> int:
    if isinstance(value, list):
        return len(value)
    if isinstance(value, dict):  # RequestItems: {table: [requests]} or {table: {"Keys": [...]}}
        return sum(len(v) if isinstance(v, list) else len(v.get("Keys", [])) if isinstance(v, dict) else 1
                   for v in value.values())
    return 1


def _is_form(h: dict[str, str], body: bytes) -> bool:
    text = _body_text(h, body[:65536]) if "gzip" not in h.get("content-encoding", "") else _body_text(h, body)
    return text.startswith("Action=") or "&Action=" in text


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def _scope(h: dict[str, str], query: dict[str, str]) -> tuple[str, str]:
    # Header-signed requests carry the scope in Authorization, presigned URLs in X-Amz-Credential.
    cred = h.get("authorization", "") or ("Credential=" + query.get("X-Amz-Credential", ""))
    m = SCOPE.search(cred)
    return (m.group(2), m.group(1)) if m else ("unsigned", "")


def _body_text(h: dict[str, str], body: bytes) -> str:
    if "gzip" in h.get("content-encoding", ""):  # CloudWatch PutMetricData request compression
        try:
            body = gzip.decompress(body)
        except (OSError, EOFError):
            return ""
    return body.decode("utf-8", "replace")


def _json(text: str) -> dict:
    try:
        v = json.loads(text or "{}")
    except ValueError:
        return {}
    return v if isinstance(v, dict) else {}


def _s3_bucket_from_host(host: str) -> str | None:
    """The bucket of a virtual-host style request, or None for path style."""
    if host.startswith("["):  # IPv6 literal
        return None
    name = host.rsplit(":", 1)[0]
    if re.fullmatch(r"[\d.]+|localhost|[^.]+", name):
        return None
    m = re.match(r"^(.+)\.s3[.-]", name)
    if m:
        return m.group(1)
    if name.endswith(".localhost"):
        return name[: -len(".localhost")]
    return None


def _s3(method: str, path: str, query: dict[str, str], h: dict[str, str]) -> tuple[str, dict]:
    bucket = _s3_bucket_from_host(h.get("host", ""))
    if bucket is None:
        bucket, _, key = path.lstrip("/").partition("/")
    else:
        key = path.lstrip("/")
    key = unquote(key)
    params = {**query, "Bucket": unquote(bucket), "Key": key}
    length = h.get("x-amz-decoded-content-length") or h.get("content-length")
    if length and length.isdigit():
        params["Content-Length"] = int(length)
    return _s3_operation(method, bucket, key, query, h), params


def _s3_operation(method: str, bucket: str, key: str, q: dict[str, str], h: dict[str, str]) -> str:
    if not bucket:
        return "ListBuckets" if method == "GET" else "unknown"
    if not key:
        if method == "GET":
            if q.get("list-type") == "2":
                return "ListObjectsV2"
            if "uploads" in q:
                return "ListMultipartUploads"
            return "ListObjects" if not q or set(q) <= {"prefix", "delimiter", "marker", "max-keys"} else "unknown"
        return {"PUT": "CreateBucket", "DELETE": "DeleteBucket", "HEAD": "HeadBucket"}.get(method) or \
            ("DeleteObjects" if method == "POST" and "delete" in q else "unknown")
    copy = "x-amz-copy-source" in h
    if method == "PUT":
        if "uploadId" in q and "partNumber" in q:
            return "UploadPartCopy" if copy else "UploadPart"
        return "CopyObject" if copy else "PutObjectTagging" if "tagging" in q else "PutObject"
    if method == "POST":
        return "CreateMultipartUpload" if "uploads" in q else "CompleteMultipartUpload" if "uploadId" in q else "unknown"
    if method == "DELETE":
        return "AbortMultipartUpload" if "uploadId" in q else "DeleteObject"
    if method == "GET":
        return "ListParts" if "uploadId" in q else "GetObjectTagging" if "tagging" in q else "GetObject"
    return "HeadObject" if method == "HEAD" else "unknown"


# --- Replies in each service's own error format ---------------------------------------------------

@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def __iter__(self):  # so a proxy can `reply(*r)`
        return iter((self.status, self.headers, self.body))


JSON_VERSION = {"dynamodb": "1.0", "sqs": "1.0", "monitoring": "1.0"}  # others: awsJson1_1
JSON_TYPE_PREFIX = {"dynamodb": "com.amazonaws.dynamodb.v20120810#", "sqs": "com.amazonaws.sqs#"}


def error_reply(req: Request, code: str, message: str, rid: str, status: int = 400,
                sender: bool = True, query_code: str | None = None, json_type: str | None = None) -> Reply:
    """An error in the request's protocol and service's format.

    JSON: `{"__type", "message"}` plus `x-amzn-RequestId`; SQS's JSON protocol also sends
    `x-amzn-query-error: <query code>;Sender|Receiver`
    (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-json-api-responses.html).
    Query: `<ErrorResponse><Error><Type/><Code/><Message/></Error><RequestId/></ErrorResponse>`
    (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/CommonErrors.html lists the codes).
    EC2 query: `<Response><Errors><Error>...</Errors><RequestID/>` and S3: `<Error>` with
    `<RequestId>` (https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html).
    """
    svc = req.service
    if svc == "s3":
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{_x(message)}</Message>'
                f"<RequestId>{rid}</RequestId><HostId>{rid}</HostId></Error>")
        return Reply(status, {"Content-Type": "application/xml", "x-amz-request-id": rid}, body.encode())
    if req.protocol == "json" or (req.protocol != "query" and svc in ("dynamodb", "ssm")):
        typ = json_type or JSON_TYPE_PREFIX.get(svc, "") + code
        headers = {"Content-Type": f"application/x-amz-json-{JSON_VERSION.get(svc, '1.1')}", "x-amzn-RequestId": rid}
        if svc == "sqs":
            headers["x-amzn-query-error"] = f"{query_code or code};{'Sender' if sender else 'Receiver'}"
        return Reply(status, headers, json.dumps({"__type": typ, "message": message}).encode())
    if svc == "ec2":
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>{code}</Code>'
                f"<Message>{_x(message)}</Message></Error></Errors><RequestID>{rid}</RequestID></Response>")
        return Reply(status, {"Content-Type": "text/xml;charset=UTF-8"}, body.encode())
    ns = QUERY_NS.get(svc, ASG_NS)
    body = (f'<ErrorResponse xmlns="{ns}"><Error><Type>{"Sender" if sender else "Receiver"}</Type>'
            f"<Code>{query_code or code}</Code><Message>{_x(message)}</Message></Error>"
            f"<RequestId>{rid}</RequestId></ErrorResponse>")
    return Reply(status, {"Content-Type": "text/xml", "x-amzn-RequestId": rid}, body.encode())


def throttle_reply(req: Request, rid: str) -> Reply:
    """AWS's throttling reply for the request's service."""
    svc = req.service
    if svc == "dynamodb":
        # https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Programming.Errors.html
        return error_reply(req, "ThrottlingException", "Rate of requests exceeds the allowed throughput.", rid)
    if svc == "s3":
        # https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html (SlowDown, 503)
        return error_reply(req, "SlowDown", "Please reduce your request rate.", rid, status=503)
    if svc == "ec2":
        # https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html
        return error_reply(req, "RequestLimitExceeded", "Request limit exceeded.", rid, status=503)
    if svc == "sqs":
        # JSON protocol: com.amazonaws.sqs#ThrottlingException, x-amzn-query-error ThrottlingException;Sender
        return error_reply(req, "ThrottlingException", "Rate exceeded", rid)
    if req.protocol == "query":  # Auto Scaling, CloudWatch: code Throttling, "Rate exceeded"
        return error_reply(req, "Throttling", "Rate exceeded", rid)
    return error_reply(req, "ThrottlingException", "Rate exceeded", rid)  # SSM and other JSON services


def internal_error_reply(req: Request, rid: str, message: str) -> Reply:
    code = {"dynamodb": "InternalServerError", "s3": "InternalError"}.get(req.service, "InternalFailure")
    return error_reply(req, code, message, rid, status=500, sender=False)


def validation_reply(req: Request, message: str, rid: str, code: str | None = None,
                     query_code: str | None = None, status: int = 400) -> Reply:
    """The service's validation error: SSM ValidationException, DynamoDB ValidationException,
    Auto Scaling ValidationError, SQS InvalidParameterValue, CloudWatch InvalidParameterValue."""
    svc = req.service
    if code is None:
        code = {"ssm": "ValidationException", "dynamodb": "ValidationException",
                "sqs": "InvalidParameterValue", "monitoring": "InvalidParameterValue",
                "s3": "InvalidArgument"}.get(svc, "ValidationError")
    json_type = "com.amazon.coral.validate#ValidationException" if svc == "dynamodb" and code == "ValidationException" else None
    return error_reply(req, code, message, rid, status=status, query_code=query_code, json_type=json_type)


def query_success(operation: str, rid: str) -> Reply:
    """An Auto Scaling query-protocol success without output (e.g. CompleteLifecycleAction)."""
    body = (f'<{operation}Response xmlns="{ASG_NS}"><{operation}Result/>'
            f"<ResponseMetadata><RequestId>{rid}</RequestId></ResponseMetadata></{operation}Response>")
    return Reply(200, {"Content-Type": "text/xml", "x-amzn-RequestId": rid}, body.encode())


def _x(s: str) -> str:
    return html.escape(s, quote=False)


# --- Quotas ----------------------------------------------------------------------------------

class TokenBucket:
    def __init__(self, spec: Bucket, now: float):
        self.spec, self.tokens, self.stamp = spec, float(spec.burst), now

    def refill(self, now: float) -> None:
        self.tokens = min(self.spec.burst, self.tokens + max(0.0, now - self.stamp) * self.spec.rate)
        self.stamp = now

    def admits(self, cost: float) -> bool:
        # A request dearer than the whole bucket passes when the bucket is full (then owes the
        # rest), so the admitted rate over time is still the bucket's rate.
        return self.tokens >= min(cost, self.spec.burst) - 1e-9


def charges(req: Request) -> list[tuple[Bucket, str]]:
    """The buckets (with the key of their instance: region, table, partition, prefix) a request
    draws one charge from. Empty when AWS publishes no rate for the call."""
    svc, op = req.service, req.operation
    if svc == "autoscaling":
        return [(ALL_BUCKETS[AUTOSCALING_BUCKET], req.region)]
    if svc == "dynamodb":
        return _dynamodb_charges(req)
    name = MODELLED_OPERATION_BUCKET.get((svc, op)) or aws_quotas.OPERATION_BUCKET.get((svc, op))
    if name is None:
        return []
    if svc == "ec2" and name == "ec2:unfiltered-non-mutating" and any(
            k.startswith("Filter.") or k in ("MaxResults", "NextToken") for k in req.params):
        name = "ec2:non-mutating"  # filtered or paginated Describe* draw from the general bucket
    if svc == "s3":
        return [(ALL_BUCKETS[name], s3_prefix(req.params))]
    return [(ALL_BUCKETS[name], req.region)]


def s3_prefix(params: Mapping) -> str:
    """bucket/key-up-to-its-last-slash: S3's rate is per partitioned prefix."""
    key = params.get("Key", "")
    return f"{params.get('Bucket', '')}/{key.rpartition('/')[0]}"


def _dynamodb_charges(req: Request) -> list[tuple[Bucket, str]]:
    """One charge per partition-key value touched (keyed table/index/value) and one per table
    (its quota covers the table and its GSIs). Scan draws from the table's read quota only."""
    op = req.operation
    table = req.params.get("TableName")
    partition = aws_quotas.OPERATION_BUCKET.get(("dynamodb", op))
    if partition is None:
        return [(ALL_BUCKETS["dynamodb:table-read"], table)] if op == "Scan" and isinstance(table, str) else []
    table_bucket = ALL_BUCKETS[partition.replace("partition", "table")]
    keys = dynamodb_partitions(req)
    tables = {t for t, _, _ in keys} | ({table} if isinstance(table, str) else set())
    out = [(ALL_BUCKETS[partition], f"{t}/{index}/{pk}") for t, index, pk in sorted(keys)]
    return out + [(table_bucket, t) for t in sorted(tables)]


PARTITION_KEY = "pk"  # the farm's tables' partition key attribute


def dynamodb_partitions(req: Request) -> set[tuple[str, str, str]]:
    """(table, index or "", partition-key value) triples a request touches: Key.pk, Item.pk, a
    Query's `pk = :v` (or a GSI's `active_pk = :v`), the items of batch and transactional calls."""
    p = req.params
    found: set[tuple[str, str, str]] = set()

    def add(table: Any, item: Any) -> None:
        v = item.get(PARTITION_KEY) if isinstance(item, dict) else None
        if isinstance(table, str) and isinstance(v, dict) and v:
            found.add((table, "", str(next(iter(v.values())))))

    table = p.get("TableName")
    if req.operation == "Query":
        value = _query_partition(p)
        if value is not None and isinstance(table, str):
            found.add((table, str(p.get("IndexName") or ""), value))
    else:
        add(table, p.get("Key"))
        add(table, p.get("Item"))
    for t, v in (p.get("RequestItems") or {}).items():
        for r in (v if isinstance(v, list) else v.get("Keys", []) if isinstance(v, dict) else []):
            add(t, r.get("PutRequest", {}).get("Item") or r.get("DeleteRequest", {}).get("Key") or r)
    for t in p.get("TransactItems") or []:
        for body in t.values() if isinstance(t, dict) else []:
            if isinstance(body, dict):
                add(body.get("TableName"), body.get("Item") or body.get("Key"))
    return found


def partition_class(req: Request) -> str | None:
    """For DynamoDB, what a request's partition key says about its partition: the value up to its
    first `#` (`JOB`, `ASSET`, ...: one partition per item), or the whole value when it has none
    (`AGENTS`, `SCALER`: one partition for the fleet); a Query of an index is named by the index."""
    if req.service != "dynamodb":
        return None
    keys = sorted(dynamodb_partitions(req))
    if not keys:
        return None
    _, index, pk = keys[0]
    return index or pk.split("#", 1)[0]


def sdk_attempt(req: Request) -> int:
    """Which attempt of one call a request is, from the SDK's `amz-sdk-request: attempt=N; max=M`
    header (1 when absent)."""
    m = re.search(r"attempt=(\d+)", req.headers.get("amz-sdk-request", ""))
    return int(m.group(1)) if m else 1


def counted_operation(req: Request) -> str:
    """The operation as the counters name it: DynamoDB's with its partition class
    (`UpdateItem AGENTS`, `UpdateItem JOB`), so a hot partition shows apart from spread items."""
    cls = partition_class(req)
    return f"{req.operation} {cls}" if cls else req.operation


def _query_partition(p: Mapping) -> str | None:
    """The partition-key value of a Query: the `attr = :v` of its KeyConditionExpression whose
    attribute is (or ends in) pk, else its first equality."""
    expr = p.get("KeyConditionExpression") or ""
    names = p.get("ExpressionAttributeNames") or {}
    values = p.get("ExpressionAttributeValues") or {}
    pairs = [(names.get(a, a), v) for a, v in re.findall(r"([#\w.]+)\s*=\s*(:\w+)", expr) if v in values]
    if not pairs:
        return None
    _, v = next((pv for pv in pairs if pv[0].endswith(PARTITION_KEY)), pairs[0])
    val = values[v]
    return str(next(iter(val.values()))) if isinstance(val, dict) and val else None


# --- Limits ----------------------------------------------------------------------------------

def dynamodb_item_size(item: Mapping) -> int:
    """Approximate item size in bytes as DynamoDB counts it: attribute names plus values
    (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html)."""
    return sum(len(k.encode()) + _value_size(v) for k, v in item.items())


def _value_size(v: Any) -> int:
    if not isinstance(v, dict) or not v:
        return 0
    kind, x = next(iter(v.items()))
    if kind == "S":
        return len(str(x).encode())
    if kind == "N":
        return (len(str(x).lstrip("-").replace(".", "")) + 1) // 2 + 1
    if kind == "B":
        return len(str(x)) * 3 // 4
    if kind in ("BOOL", "NULL"):
        return 1
    if kind in ("SS", "NS", "BS"):
        return sum(_value_size({kind[0]: e}) for e in x)
    if kind == "L":
        return 3 + sum(1 + _value_size(e) for e in x)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + _value_size(e) for k, e in x.items())
    return 0


def parameter_value(req: Request, name: str) -> int | None:
    """The value a MAX_PARAMETER row limits: a number, a member count or a size in bytes."""
    p = req.params
    if name == "MessageBody":
        return len(str(p["MessageBody"]).encode()) if "MessageBody" in p else None
    if name == "Item":
        return dynamodb_item_size(p["Item"]) if isinstance(p.get("Item"), dict) else None
    if name in ("Content-Length", "partNumber"):
        v = p.get(name)
        return int(v) if str(v).isdigit() else None
    if name in LIST_PARAMETERS:
        field_name = SQS_QUERY_ENTRIES.get(req.operation, name) if req.protocol == "query" and name == "Entries" else name
        n = count_members(p, field_name)
        return n if n or field_name in p else None
    v = p.get(name)
    try:
        return int(float(v)) if v is not None and v != "" else None
    except (TypeError, ValueError):
        return None


def check_limits(req: Request, rid: str) -> Reply | None:
    """AWS's validation error for the first parameter outside its documented bounds, or None."""
    for (svc, op, param), limit in aws_quotas.MAX_PARAMETER.items():
        if svc != req.service or op != req.operation:
            continue
        value = parameter_value(req, param)
        if value is None:
            continue
        low = MIN_PARAMETER.get((svc, op, param))
        if value > limit or (low is not None and value < low):
            return limit_reply(req, param, value, low, limit, rid)
    return None


def limit_reply(req: Request, param: str, value: int, low: int | None, high: int, rid: str) -> Reply:
    svc, op = req.service, req.operation
    over = value > high
    is_list = param in LIST_PARAMETERS
    if svc == "sqs":
        # https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessageBatch.html
        # (TooManyEntriesInBatchRequest; query code AWS.SimpleQueueService.TooManyEntriesInBatchRequest)
        if param == "Entries":
            return validation_reply(req, f"Maximum number of entries per request are {high}. You have sent {value}.",
                                    rid, code="TooManyEntriesInBatchRequest",
                                    query_code="AWS.SimpleQueueService.TooManyEntriesInBatchRequest")
        if param == "MessageBody":
            return validation_reply(req, f"One or more parameters are invalid. Reason: Message must be shorter than {high} bytes.", rid)
        return validation_reply(req, f"Value {value} for parameter {param} is invalid. Reason: Must be between "
                                     f"{low if low is not None else 0} and {high}, if provided.", rid)
    if svc == "monitoring" and is_list:
        return validation_reply(req, f"The collection {param} must not have a size greater than {high}.", rid)
    if svc == "dynamodb" and param == "RequestItems":
        return validation_reply(req, f"Too many items requested for the {op} call", rid)
    if svc == "dynamodb" and param == "Item":
        return validation_reply(req, "Item size has exceeded the maximum allowed size", rid)
    if svc == "s3" and param == "partNumber":
        return validation_reply(req, f"Part number must be an integer between {low or 1} and {high}, inclusive", rid)
    if svc == "s3":
        return validation_reply(req, "Your proposed upload exceeds the maximum allowed size", rid, code="EntityTooLarge")
    # Smithy/Coral validation message (SSM, Auto Scaling, DynamoDB), e.g. GetParametersByPath
    # MaxResults 11: "1 validation error detected: Value '11' at 'maxResults' failed to satisfy
    # constraint: Member must have value less than or equal to 10".
    bound = high if over else low
    what = "length" if is_list else "value"
    shown = f"[{value} items]" if is_list else str(value)
    return validation_reply(req, f"1 validation error detected: Value '{shown}' at '{param[0].lower() + param[1:]}' "
                                 f"failed to satisfy constraint: Member must have {what} "
                                 f"{'less' if over else 'greater'} than or equal to {bound}", rid)


# --- Auto Scaling lifecycle --------------------------------------------------------------------

@dataclass
class Instance:
    id: str
    group: str
    state: str                   # the state the proxy shows
    upstream: str                # the emulator's last reported state
    emulated: bool               # False once the launch lifecycle is over (or never applied)
    deadline: float = 0.0        # Pending:Wait times out at
    proceed_until: float = 0.0   # Pending:Proceed ends at
    auth: dict[str, str] = field(default_factory=dict)  # headers to sign our own calls with
    history: list[tuple[str, float]] = field(default_factory=list)

    def move(self, state: str, at: float) -> None:
        if state != self.state:
            self.state = state
            self.history.append((state, at))


@dataclass
class Group:
    min_size: int | None = None
    max_size: int | None = None


@dataclass
class Action:
    """A call the proxy makes upstream by itself (AWS would, not the product)."""
    instance: str
    reason: str
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


def parse_groups(xml: str) -> list[tuple[str, int | None, int | None, list[tuple[str, str]]]]:
    """(name, MinSize, MaxSize, [(instance id, LifecycleState)]) of a DescribeAutoScalingGroups reply."""
    out = []
    for groups in _elements(xml, "AutoScalingGroups"):
        for g in _children(groups, "member"):
            instances = [(_text(m, "InstanceId"), _text(m, "LifecycleState"))
                         for i in _children(g, "Instances") for m in _children(i, "member")]
            out.append((_text(g, "AutoScalingGroupName"), _int(_text(g, "MinSize")),
                        _int(_text(g, "MaxSize")), instances))
    return out


def parse_asg_instances(xml: str) -> list[tuple[str, str, str]]:
    """(instance id, group, LifecycleState) of a DescribeAutoScalingInstances reply."""
    return [(_text(m, "InstanceId"), _text(m, "AutoScalingGroupName"), _text(m, "LifecycleState"))
            for lst in _elements(xml, "AutoScalingInstances") for m in _children(lst, "member")]


_MEMBER = re.compile(r"<member>((?:(?!</?member>).)*)</member>", re.S)
_INSTANCE_ID = re.compile(r"<InstanceId>([^<]+)</InstanceId>")
_LIFECYCLE = re.compile(r"<LifecycleState>[^<]*</LifecycleState>")


def rewrite_states(xml: str, shown: Mapping[str, str]) -> str:
    """The reply with each listed instance's <LifecycleState> replaced; all else byte for byte."""
    def one(m: re.Match) -> str:
        inner = m.group(1)
        i = _INSTANCE_ID.search(inner)
        if not i or i.group(1) not in shown:
            return m.group(0)
        return "<member>" + _LIFECYCLE.sub(f"<LifecycleState>{shown[i.group(1)]}</LifecycleState>", inner, count=1) + "</member>"
    return _MEMBER.sub(one, xml)


def _elements(xml: str, name: str) -> list[ET.Element]:
    try:
        root = ET.fromstring(xml)
    except ET.ParseError:
        return []
    return [e for e in root.iter() if _local(e.tag) == name]


def _children(e: ET.Element, name: str) -> list[ET.Element]:
    return [c for c in e if _local(c.tag) == name]


def _text(e: ET.Element, name: str) -> str:
    c = _children(e, name)
    return (c[0].text or "").strip() if c else ""


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _int(s: str) -> int | None:
    return int(s) if s.lstrip("-").isdigit() else None


# --- Counters --------------------------------------------------------------------------------

@dataclass
class CallStats:
    total: int = 0
    throttled: int = 0
    refused: int = 0
    retries: int = 0  # SDK retry attempts (`amz-sdk-request: attempt=N`, N > 1), counted in total
    windows: dict[int, int] = field(default_factory=dict)  # window index -> first attempts


# --- The rules -------------------------------------------------------------------------------

class Rules:
    """All state of rules mode. `before` may answer a request itself; `after` sees the
    emulator's reply and may rewrite it; `take_actions` hands over the calls to make upstream."""

    def __init__(self, config: Config, clock: Callable[[], float] = time.time):
        self.config = config
        self.clock = clock
        self.lock = threading.RLock()
        self.rng = random.Random(config.seed)
        self.buckets: dict[tuple[str, str], TokenBucket] = {}
        self.bucket_throttles: dict[str, int] = {}
        self.calls: dict[tuple[str, str, str], CallStats] = {}
        self.receipts: OrderedDict[str, float] = OrderedDict()
        self.groups: dict[str, Group] = {}
        self.instances: dict[str, Instance] = {}
        self.actions: list[Action] = []
        self.terminations: list[dict] = []
        self.protection_refusals = 0
        self.oversized_pages = 0

    # -- the proxy's entry points ----------------------------------------------------------
    def parse(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> Request:
        return parse_request(method, path, headers, body)

    def before(self, req: Request) -> Reply | None:
        """A reply to send instead of forwarding (throttle, refusal, emulated call), or None."""
        with self.lock:
            now = self.clock()
            self._poll(now)
            stats = self._stats(req, now)
            rid = self._rid()
            if not self._admit(req, now):
                stats.throttled += 1
                return throttle_reply(req, rid)
            answer = check_limits(req, rid) or self._sqs_visibility(req, now, rid) or self._autoscaling(req, now, rid)
            if answer is not None and answer.status >= 400:
                stats.refused += 1
            return answer

    def after(self, req: Request, status: int, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        """The emulator's reply, learnt from and possibly rewritten."""
        with self.lock:
            now = self.clock()
            self._poll(now)
            if status != 200:
                return status, headers, body
            if req.service == "autoscaling":
                body = self._after_autoscaling(req, body, now)
                headers = _fix_crc32(headers, body)
            elif req.service == "sqs" and req.operation == "ReceiveMessage":
                self._remember_receipts(body, now)
            elif req.service == "dynamodb" and req.operation in ("Query", "Scan") and len(body) > DYNAMODB_PAGE_BYTES:
                self.oversized_pages += 1
            return status, headers, body

    def fault_reply(self, req: Request, kind: str) -> Reply:
        """A random fault (faultproxy's `throttle`/`error`/`lost`) in AWS's exact format."""
        with self.lock:
            rid = self._rid()
        if kind == "throttle":
            return throttle_reply(req, rid)
        return internal_error_reply(req, rid, "injected by the fault proxy")

    def poll(self) -> None:
        """Advance timers (Pending:Proceed ending, launch timeouts); the proxy calls it every second."""
        with self.lock:
            self._poll(self.clock())

    def take_actions(self) -> list[Action]:
        with self.lock:
            out, self.actions = self.actions, []
            return out

    def action_done(self, action: Action, status: int) -> None:
        with self.lock:
            self.terminations.append({"instance": action.instance, "reason": action.reason,
                                      "status": status, "at": self.clock()})

    # -- quotas -------------------------------------------------------------------------------
    def _admit(self, req: Request, now: float) -> bool:
        cost = self.config.weight(req.app)
        if cost == 0:
            return True  # the harness: never throttled, never charged
        drawn = []
        for spec, key in charges(req):
            b = self.buckets.get((spec.name, key))
            if b is None:
                b = self.buckets[(spec.name, key)] = TokenBucket(spec, now)
            b.refill(now)
            if not b.admits(cost):
                self.bucket_throttles[spec.name] = self.bucket_throttles.get(spec.name, 0) + 1
                return False
            drawn.append(b)
        for b in drawn:
            b.tokens -= cost
        return True

    # -- SQS ------------------------------------------------------------------------------------
    def _sqs_visibility(self, req: Request, now: float, rid: str) -> Reply | None:
        """SQS: a receipt's total invisibility may not pass 12 h from its ReceiveMessage
        (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-visibility-timeout.html)."""
        if req.service != "sqs" or req.operation != "ChangeMessageVisibility":
            return None
        received = self.receipts.get(str(req.params.get("ReceiptHandle", "")))
        timeout = parameter_value(req, "VisibilityTimeout")
        limit = self.config.max_total_visibility_secs
        if received is None or timeout is None or now + timeout <= received + limit:
            return None
        return validation_reply(req, f"Value {timeout} for parameter VisibilityTimeout is invalid. Reason: Total "
                                     f"VisibilityTimeout for the message is beyond the limit [{limit:g} seconds]",
                                rid)

    def _remember_receipts(self, body: bytes, now: float) -> None:
        text = body.decode("utf-8", "replace")
        if text.lstrip().startswith("<"):
            handles = [html.unescape(h) for h in re.findall(r"<ReceiptHandle>([^<]*)</ReceiptHandle>", text)]
        else:
            handles = [m.get("ReceiptHandle") for m in _json(text).get("Messages") or [] if isinstance(m, dict)]
        for h in filter(None, handles):
            self.receipts[h] = now
            self.receipts.move_to_end(h)
        while len(self.receipts) > RECEIPTS_KEPT:
            self.receipts.popitem(last=False)

    # -- Auto Scaling -----------------------------------------------------------------------------
    def _autoscaling(self, req: Request, now: float, rid: str) -> Reply | None:
        if req.service != "autoscaling":
            return None
        handler = {
            "CompleteLifecycleAction": self._complete_lifecycle_action,
            "RecordLifecycleActionHeartbeat": self._heartbeat,
            "SetInstanceProtection": self._set_instance_protection,
            "SetDesiredCapacity": self._set_desired_capacity,
        }.get(req.operation)
        return handler(req, now, rid) if handler else None

    def _waiting(self, req: Request) -> Instance | None:
        p = req.params
        inst = self.instances.get(p.get("InstanceId", ""))
        if inst is None or inst.state != PENDING_WAIT or p.get("LifecycleHookName") != self.config.launch_hook:
            return None
        if p.get("AutoScalingGroupName") and p["AutoScalingGroupName"] != inst.group:
            return None
        return inst

    def _no_action(self, req: Request, rid: str) -> Reply:
        # AWS's ValidationError when no instance of that id waits on that hook.
        p = req.params
        what = f"instance ID {p['InstanceId']}" if p.get("InstanceId") else f"token {p.get('LifecycleActionToken', '')}"
        return validation_reply(req, f"No active Lifecycle Action found with {what}", rid)

    def _complete_lifecycle_action(self, req: Request, now: float, rid: str) -> Reply:
        """https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_CompleteLifecycleAction.html"""
        inst = self._waiting(req)
        if inst is None:
            return self._no_action(req, rid)
        result = req.params.get("LifecycleActionResult", "")
        if result == "CONTINUE":
            inst.proceed_until = now + self.config.proceed_secs
            inst.move(PENDING_PROCEED, now)
            self._poll(now)
        elif result == "ABANDON":
            self._terminate(inst, "abandon", now)
        else:
            return validation_reply(req, f"1 validation error detected: Value '{result}' at 'lifecycleActionResult' "
                                         "failed to satisfy constraint: Member must be CONTINUE or ABANDON", rid)
        return query_success("CompleteLifecycleAction", rid)

    def _heartbeat(self, req: Request, now: float, rid: str) -> Reply:
        """https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_RecordLifecycleActionHeartbeat.html
        (restarts the timeout; the emulator answers 500 to this call)."""
        inst = self._waiting(req)
        if inst is None:
            return self._no_action(req, rid)
        inst.deadline = now + self.config.launch_timeout_secs
        return query_success("RecordLifecycleActionHeartbeat", rid)

    def _set_instance_protection(self, req: Request, now: float, rid: str) -> Reply | None:
        """https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_SetInstanceProtection.html"""
        ids = [v for k, v in sorted(req.params.items(), key=lambda kv: _member_index(kv[0]))
               if re.match(r"^InstanceIds\.member\.\d+$", k)]
        for i in ids:
            inst = self.instances.get(i)
            if inst is not None and inst.state not in PROTECTABLE:
                self.protection_refusals += 1
                return validation_reply(req, f"The instance {i} is not in InService or EnteringStandby or Standby.",
                                        rid)
        return None

    def _set_desired_capacity(self, req: Request, now: float, rid: str) -> Reply | None:
        """https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_SetDesiredCapacity.html"""
        group = self.groups.get(req.params.get("AutoScalingGroupName", ""))
        desired = _int(str(req.params.get("DesiredCapacity", "")))
        if group is None or desired is None:
            return None
        if group.max_size is not None and desired > group.max_size:
            return validation_reply(req, f"New SetDesiredCapacity value {desired} is above max value "
                                         f"{group.max_size} for the AutoScalingGroup.", rid)
        if group.min_size is not None and desired < group.min_size:
            return validation_reply(req, f"New SetDesiredCapacity value {desired} is below min value "
                                         f"{group.min_size} for the AutoScalingGroup.", rid)
        return None

    def _after_autoscaling(self, req: Request, body: bytes, now: float) -> bytes:
        op, p = req.operation, req.params
        if op in ("CreateAutoScalingGroup", "UpdateAutoScalingGroup"):
            g = self.groups.setdefault(p.get("AutoScalingGroupName", ""), Group())
            g.min_size = _int(str(p.get("MinSize", ""))) if "MinSize" in p else g.min_size
            g.max_size = _int(str(p.get("MaxSize", ""))) if "MaxSize" in p else g.max_size
        elif op == "TerminateInstanceInAutoScalingGroup":
            inst = self.instances.get(p.get("InstanceId", ""))
            if inst is not None:
                inst.emulated = True
                inst.move(TERMINATING, now)
        elif op in ("DescribeAutoScalingGroups", "DescribeAutoScalingInstances"):
            text = body.decode("utf-8", "replace")
            shown = self._observe(req, text, now)
            return rewrite_states(text, shown).encode() if shown else body
        return body

    def _observe(self, req: Request, xml: str, now: float) -> dict[str, str]:
        """Learn groups and instances from a describe reply; the states to show instead."""
        seen: list[tuple[str, str, str, bool]] = []  # id, group, upstream state, group new here
        if req.operation == "DescribeAutoScalingGroups":
            for name, lo, hi, instances in parse_groups(xml):
                new = name not in self.groups
                g = self.groups.setdefault(name, Group())
                g.min_size, g.max_size = lo if lo is not None else g.min_size, hi if hi is not None else g.max_size
                present = {i for i, _ in instances}
                for inst in self.instances.values():
                    if inst.group == name and inst.id not in present and inst.state != TERMINATED:
                        inst.emulated = True
                        inst.move(TERMINATED, now)
                seen += [(i, name, s, new) for i, s in instances]
        else:
            for i, name, s in parse_asg_instances(xml):
                new = name not in self.groups
                self.groups.setdefault(name, Group())
                seen.append((i, name, s, new))
        shown = {}
        for iid, group, upstream, group_new in seen:
            inst = self.instances.get(iid) or self._track(iid, group, upstream, group_new, req, now)
            inst.upstream = upstream
            if not inst.emulated:
                inst.move(upstream, now)
            shown[iid] = inst.state
        return shown

    def _track(self, iid: str, group: str, upstream: str, group_new: bool, req: Request, now: float) -> Instance:
        auth = {k: v for k, v in req.headers.items() if k in ("authorization", "x-amz-date", "x-amz-security-token")}
        emulate = upstream == IN_SERVICE and not (group_new and self.config.existing_in_service)
        state = PENDING_WAIT if emulate else upstream
        inst = Instance(iid, group, state, upstream, emulate, deadline=now + self.config.launch_timeout_secs,
                        auth=auth, history=[(state, now)])
        self.instances[iid] = inst
        return inst

    def _terminate(self, inst: Instance, reason: str, at: float) -> None:
        inst.move(TERMINATING, at)
        body = urlencode({"Action": "TerminateInstanceInAutoScalingGroup", "Version": "2011-01-01",
                          "InstanceId": inst.id, "ShouldDecrementDesiredCapacity": "false"}).encode()
        headers = {**{k.title(): v for k, v in inst.auth.items()},
                   "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
                   "User-Agent": "renderfleet-faultproxy-awsrules"}
        self.actions.append(Action(inst.id, reason, "POST", "/", headers, body))

    def _poll(self, now: float) -> None:
        for inst in self.instances.values():
            if inst.state == PENDING_PROCEED and now >= inst.proceed_until:
                inst.emulated = False
                inst.move(IN_SERVICE, inst.proceed_until)
                if inst.upstream != IN_SERVICE:
                    inst.move(inst.upstream, now)
            elif inst.state == PENDING_WAIT and now >= inst.deadline:
                self._terminate(inst, "launch_timeout", inst.deadline)

    # -- counters ---------------------------------------------------------------------------------
    def _stats(self, req: Request, now: float) -> CallStats:
        s = self.calls.setdefault((req.app, req.service, counted_operation(req)), CallStats())
        s.total += 1
        if sdk_attempt(req) > 1:
            # A retry is the quota's answer coming back, not demand: the windows count calls.
            s.retries += 1
            return s
        w = int(now // WINDOW_SECS)
        s.windows[w] = s.windows.get(w, 0) + 1
        for old in [k for k in s.windows if k <= w - WINDOWS_KEPT]:
            del s.windows[old]
        return s

    def _rid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def snapshot(self) -> dict:
        """The `GET /__rules` document (see the module docstring)."""
        with self.lock:
            now = self.clock()
            self._poll(now)
            current = int(now // WINDOW_SECS)
            calls = []
            for (app, svc, op), s in sorted(self.calls.items()):
                weight = self.config.weight(app)
                windows = [{"start": k * WINDOW_SECS, "count": n, "weighted": n * weight}
                           for k, n in sorted(s.windows.items()) if k > current - WINDOWS_KEPT]
                calls.append({"app": app, "service": svc, "operation": op, "weight": weight,
                              "total": s.total, "throttled": s.throttled, "refused": s.refused,
                              "retries": s.retries,
                              "weighted_total": s.total * weight, "windows": windows})
            buckets = [{"name": b.name, "rate": b.rate, "burst": b.burst, "modelled": b in MODELLED,
                        "source": b.source, "throttled": self.bucket_throttles.get(b.name, 0)}
                       for b in ALL_BUCKETS.values()]
            instances = {i.id: {"group": i.group, "state": i.state, "upstream": i.upstream,
                                "history": [{"state": s, "at": t} for s, t in i.history]}
                         for i in self.instances.values()}
            groups = {n: {"min_size": g.min_size, "max_size": g.max_size} for n, g in self.groups.items()}
            return {
                "config": self.config.to_dict(), "now": now, "window_secs": WINDOW_SECS, "calls": calls,
                "buckets": buckets,
                "lifecycle": {"groups": groups, "instances": instances, "terminations": list(self.terminations),
                              "protection_refusals": self.protection_refusals},
                "not_enforced_seen": {"dynamodb_pages_over_1mb": self.oversized_pages},
            }


def _member_index(key: str) -> int:
    m = re.search(r"\.(\d+)$", key)
    return int(m.group(1)) if m else 0


def _fix_crc32(headers: dict[str, str], body: bytes) -> dict[str, str]:
    """moto signs its replies with x-amz-crc32 of the body; keep it true after a rewrite."""
    return {k: (str(zlib.crc32(body)) if k.lower() == "x-amz-crc32" else v) for k, v in headers.items()}
