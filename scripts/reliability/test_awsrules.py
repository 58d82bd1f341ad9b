"""Tests of the fault proxy's AWS-rules mode (awsrules.py): crafted requests against the pure
rules, and one end-to-end run of moto_server behind `faultproxy.py --rules`.

    python3 -m unittest discover -s scripts/reliability -p 'test_*.py'
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path
from urllib.parse import urlencode

import awsrules
from awsrules import Config, Rules

HERE = Path(__file__).resolve().parent
MOTO = HERE.parent.parent / ".venv" / "bin" / "moto_server"
MOTO_NS = "http://autoscaling.amazonaws.com/doc/2011-01-01/"  # what moto 5.2.5 answers with


# --- crafting requests -----------------------------------------------------------------------

def auth(service: str, region: str = "us-east-1") -> str:
    return (f"AWS4-HMAC-SHA256 Credential=AKID/20260101/{region}/{service}/aws4_request, "
            "SignedHeaders=host, Signature=0")


def sdk_headers(service: str, app: str | None) -> dict[str, str]:
    h = {"Authorization": auth(service), "X-Amz-Date": "20260101T000000Z",
         "User-Agent": "aws-sdk-rust/1.3.9 os/linux lang/rust/1.85.0"}
    if app:
        h["x-amz-user-agent"] = f"aws-sdk-rust/1.3.9 ua/2.1 api/{service}/1.0 os/linux lang/rust/1.85.0 app/{app}"
    return h


JSON_TARGETS = {"dynamodb": ("DynamoDB_20120810", "1.0"), "sqs": ("AmazonSQS", "1.0"), "ssm": ("AmazonSSM", "1.1")}


def json_call(service: str, operation: str, body: dict, app: str | None = "scaler") -> tuple[str, str, dict, bytes]:
    prefix, version = JSON_TARGETS[service]
    h = {**sdk_headers(service, app), "X-Amz-Target": f"{prefix}.{operation}",
         "Content-Type": f"application/x-amz-json-{version}"}
    return "POST", "/", h, json.dumps(body).encode()


def query_call(service: str, action: str, params: dict, app: str | None = "scaler") -> tuple[str, str, dict, bytes]:
    version = {"autoscaling": "2011-01-01", "monitoring": "2010-08-01", "sqs": "2012-11-05"}[service]
    h = {**sdk_headers(service, app), "Content-Type": "application/x-www-form-urlencoded"}
    return "POST", "/", h, urlencode({"Action": action, "Version": version, **params}).encode()


def s3_call(method: str, path: str, app: str | None = "render-agent", host: str = "127.0.0.1:4566",
            body: bytes = b"") -> tuple[str, str, dict, bytes]:
    h = {**sdk_headers("s3", app), "Host": host, "Content-Length": str(len(body))}
    return method, path, h, body


class FakeClock:
    def __init__(self, t: float = 1_767_225_600.0):
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, secs: float) -> None:
        self.t += secs


def rules(**config) -> tuple[Rules, FakeClock]:
    clock = FakeClock()
    return Rules(Config.from_dict(config), clock=clock), clock


def before(r: Rules, call) -> awsrules.Reply | None:
    return r.before(r.parse(*call))


def dasg_xml(instances: list[tuple[str, str]], group: str = "g", min_size: int = 0, max_size: int = 3) -> str:
    members = "".join(
        f"<member><InstanceId>{i}</InstanceId><InstanceType>t3.micro</InstanceType>"
        f"<AvailabilityZone>us-east-1a</AvailabilityZone><LifecycleState>{s}</LifecycleState>"
        f"<HealthStatus>Healthy</HealthStatus><ProtectedFromScaleIn>false</ProtectedFromScaleIn></member>"
        for i, s in instances)
    return (f'<DescribeAutoScalingGroupsResponse xmlns="{MOTO_NS}"><DescribeAutoScalingGroupsResult>'
            f"<AutoScalingGroups><member><AutoScalingGroupName>{group}</AutoScalingGroupName>"
            f"<MinSize>{min_size}</MinSize><MaxSize>{max_size}</MaxSize><DesiredCapacity>{len(instances)}</DesiredCapacity>"
            f"<AvailabilityZones><member>us-east-1a</member></AvailabilityZones>"
            f"<Instances>{members}</Instances></member></AutoScalingGroups></DescribeAutoScalingGroupsResult>"
            f"<ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></DescribeAutoScalingGroupsResponse>")


def describe(r: Rules, instances: list[tuple[str, str]], app: str = "scaler", **kw) -> dict[str, str]:
    """Feeds an upstream DescribeAutoScalingGroups reply through the rules; the states shown."""
    req = r.parse(*query_call("autoscaling", "DescribeAutoScalingGroups", {"AutoScalingGroupNames.member.1": "g"}, app))
    assert r.before(req) is None
    _, _, body = r.after(req, 200, {"Content-Type": "text/xml"}, dasg_xml(instances, **kw).encode())
    return states(body)


def states(xml: bytes) -> dict[str, str]:
    root = ET.fromstring(xml)
    out = {}
    for m in root.iter():
        if m.tag.endswith("}member") and any(c.tag.endswith("}InstanceId") for c in m):
            get = {c.tag.rsplit("}", 1)[1]: c.text for c in m}
            out[get["InstanceId"]] = get["LifecycleState"]
    return out


def xml_error(body: bytes) -> tuple[str, str, str]:
    root = ET.fromstring(body)
    get = {e.tag.rsplit("}", 1)[-1]: e.text for e in root.iter()}
    return get["Type"], get["Code"], get["Message"]


def complete(r: Rules, instance: str, result: str = "CONTINUE", hook: str = "renderfleet-dev-launch",
             app: str = "scaler") -> awsrules.Reply | None:
    # (the agents complete the hook in the farm; "scaler" costs 1 token, so a long test does not
    # drain the shared Auto Scaling bucket that a weight-10 agent would)
    return before(r, query_call("autoscaling", "CompleteLifecycleAction", {
        "AutoScalingGroupName": "g", "LifecycleHookName": hook, "InstanceId": instance,
        "LifecycleActionResult": result}, app))


# --- 1. identification -----------------------------------------------------------------------

class IdentifyTest(unittest.TestCase):
    def test_json_protocols_use_the_target_header(self):
        self.assertEqual(awsrules.identify(*json_call("dynamodb", "PutItem", {"TableName": "t"}))[:2], ("dynamodb", "PutItem"))
        svc, op, params = awsrules.identify(*json_call("sqs", "SendMessage", {"QueueUrl": "q", "MessageBody": "x"}))
        self.assertEqual((svc, op, params["MessageBody"]), ("sqs", "SendMessage", "x"))
        self.assertEqual(awsrules.identify(*json_call("ssm", "PutParameter", {"Name": "/a"}))[:2], ("ssm", "PutParameter"))

    def test_query_protocol_uses_the_form_action_and_keeps_flattened_names(self):
        svc, op, params = awsrules.identify(*query_call("autoscaling", "SetInstanceProtection", {
            "InstanceIds.member.1": "i-1", "InstanceIds.member.2": "i-2", "AutoScalingGroupName": "g"}))
        self.assertEqual((svc, op), ("autoscaling", "SetInstanceProtection"))
        self.assertEqual(params["InstanceIds.member.2"], "i-2")
        self.assertEqual(awsrules.count_members(params, "InstanceIds"), 2)
        self.assertEqual(awsrules.identify(*query_call("monitoring", "PutMetricData", {"Namespace": "n"}))[:2],
                         ("monitoring", "PutMetricData"))
        self.assertEqual(awsrules.identify(*query_call("sqs", "ReceiveMessage", {"QueueUrl": "q"}))[:2],
                         ("sqs", "ReceiveMessage"))

    def test_count_members_of_json_lists_and_batches(self):
        self.assertEqual(awsrules.count_members({"Names": ["a", "b", "c"]}, "Names"), 3)
        items = {"t1": [{"PutRequest": {}}] * 3, "t2": [{"DeleteRequest": {}}] * 2}
        self.assertEqual(awsrules.count_members({"RequestItems": items}, "RequestItems"), 5)
        self.assertEqual(awsrules.count_members({"SendMessageBatchRequestEntry.1.Id": "a",
                                                 "SendMessageBatchRequestEntry.1.MessageBody": "x",
                                                 "SendMessageBatchRequestEntry.2.Id": "b"},
                                                "SendMessageBatchRequestEntry"), 2)
        self.assertEqual(awsrules.count_members({}, "Names"), 0)

    def test_s3_rest_operations_path_style(self):
        cases = [
            (("PUT", "/renders/jobs/j1/out.mp4"), "PutObject"),
            (("POST", "/renders/jobs/j1/out.mp4?uploads"), "CreateMultipartUpload"),
            (("PUT", "/renders/jobs/j1/out.mp4?partNumber=2&uploadId=U"), "UploadPart"),
            (("POST", "/renders/jobs/j1/out.mp4?uploadId=U"), "CompleteMultipartUpload"),
            (("DELETE", "/renders/jobs/j1/out.mp4?uploadId=U"), "AbortMultipartUpload"),
            (("GET", "/renders/jobs/j1/out.mp4"), "GetObject"),
            (("HEAD", "/renders/jobs/j1/out.mp4"), "HeadObject"),
            (("DELETE", "/renders/jobs/j1/out.mp4"), "DeleteObject"),
            (("GET", "/renders?list-type=2&prefix=jobs%2F"), "ListObjectsV2"),
        ]
        for (method, path), op in cases:
            svc, got, params = awsrules.identify(*s3_call(method, path))
            self.assertEqual((svc, got), ("s3", op), path)
            self.assertEqual(params["Bucket"], "renders")
        _, _, params = awsrules.identify(*s3_call("PUT", "/renders/jobs/j1/a%20b.mp4", body=b"xyz"))
        self.assertEqual((params["Key"], params["Content-Length"]), ("jobs/j1/a b.mp4", 3))

    def test_s3_virtual_host_style(self):
        svc, op, params = awsrules.identify(*s3_call("PUT", "/jobs/j1/out.mp4", host="renders.s3.us-east-1.amazonaws.com"))
        self.assertEqual((op, params["Bucket"], params["Key"]), ("PutObject", "renders", "jobs/j1/out.mp4"))
        _, op, params = awsrules.identify(*s3_call("GET", "/?list-type=2", host="renders.localhost:4566"))
        self.assertEqual((op, params["Bucket"]), ("ListObjectsV2", "renders"))

    def test_s3_object_bytes_are_not_taken_for_a_form(self):
        _, op, _ = awsrules.identify(*s3_call("PUT", "/b/k", body=b"Action=Terminate&x=1"))
        self.assertEqual(op, "PutObject")

    def test_caller_app_from_either_user_agent_header(self):
        self.assertEqual(awsrules.caller_app({"x-amz-user-agent": "aws-sdk-rust/1.3 app/render-agent"}), "render-agent")
        self.assertEqual(awsrules.caller_app({"User-Agent": "aws-sdk-rust/1.3 os/linux app/job-server md/x"}), "job-server")
        self.assertEqual(awsrules.caller_app({"User-Agent": "curl/8"}), "unknown")
        self.assertEqual(awsrules.parse_request(*json_call("ssm", "GetParameter", {}, app=None)).app, "unknown")

    def test_dynamodb_calls_are_counted_with_their_partition_class(self):
        def counted(op, body):
            return awsrules.counted_operation(awsrules.parse_request(*json_call("dynamodb", op, body)))

        key = lambda pk: {"TableName": "t", "Key": {"pk": {"S": pk}, "sk": {"S": "x"}}}  # noqa: E731
        self.assertEqual(counted("UpdateItem", key("AGENTS")), "UpdateItem AGENTS")
        self.assertEqual(counted("UpdateItem", key("JOB#job_0123")), "UpdateItem JOB")
        q = {"TableName": "t", "IndexName": "active", "KeyConditionExpression": "active_pk = :p",
             "ExpressionAttributeValues": {":p": {"S": "ACTIVE#a"}}}
        self.assertEqual(counted("Query", q), "Query active")
        self.assertEqual(awsrules.counted_operation(awsrules.parse_request(
            *json_call("sqs", "ReceiveMessage", {"QueueUrl": "q"}))), "ReceiveMessage")

    def test_sdk_retries_are_told_from_first_attempts(self):
        method, path, h, body = json_call("sqs", "ReceiveMessage", {"QueueUrl": "q"})
        self.assertEqual(awsrules.sdk_attempt(awsrules.parse_request(method, path, h, body)), 1)
        h = {**h, "amz-sdk-request": "attempt=3; max=3"}
        self.assertEqual(awsrules.sdk_attempt(awsrules.parse_request(method, path, h, body)), 3)

    def test_unsigned_requests(self):
        self.assertEqual(awsrules.identify("GET", "/health", {}, b"")[:2], ("unsigned", "unknown"))


# --- 2. quotas -------------------------------------------------------------------------------

class QuotaTest(unittest.TestCase):
    PUT = {"Name": "/renderfleet/agents/a1", "Value": "v", "Type": "String", "Overwrite": True}

    def test_modelled_buckets_are_separate_and_say_they_are_not_published(self):
        names = {b.name for b in awsrules.MODELLED}
        self.assertEqual(names, {"ssm:PutParameter", "autoscaling:shared"})
        self.assertFalse(names & {b.name for b in awsrules.aws_quotas.BUCKETS})
        for b in awsrules.MODELLED:
            self.assertIn("NOT AWS-published", b.note)
        self.assertEqual({(b.name, b.rate, b.burst) for b in awsrules.MODELLED},
                         {("ssm:PutParameter", 3, 3), ("autoscaling:shared", 20, 40)})

    def test_render_agent_costs_the_modelled_fleet(self):
        r, clock = rules(model_workers=1000, local_workers=100)
        # weight 10 against 3 tokens: the first passes on a full bucket and leaves it in debt
        self.assertIsNone(before(r, json_call("ssm", "PutParameter", self.PUT, "render-agent")))
        reply = before(r, json_call("ssm", "PutParameter", self.PUT, "render-agent"))
        self.assertEqual(reply.status, 400)
        clock.advance(3.0)  # 9 tokens back: still 1 short of a full bucket
        self.assertEqual(before(r, json_call("ssm", "PutParameter", self.PUT, "render-agent")).status, 400)
        clock.advance(0.4)
        self.assertIsNone(before(r, json_call("ssm", "PutParameter", self.PUT, "render-agent")))

    def test_other_apps_cost_one_and_the_harness_nothing(self):
        r, clock = rules()
        for _ in range(3):
            self.assertIsNone(before(r, json_call("ssm", "DeleteParameter", {"Name": "/a"}, "scaler")))
        self.assertEqual(before(r, json_call("ssm", "PutParameter", self.PUT, "job-server")).status, 400)
        for _ in range(50):  # the harness is never throttled and never drains the bucket
            self.assertIsNone(before(r, json_call("ssm", "PutParameter", self.PUT, "renderctl")))
        clock.advance(1.0)
        for _ in range(3):
            self.assertIsNone(before(r, json_call("ssm", "PutParameter", self.PUT, "scaler")))

    def test_ssm_throttle_reply(self):
        r, _ = rules()
        for _ in range(3):
            before(r, json_call("ssm", "PutParameter", self.PUT))
        reply = before(r, json_call("ssm", "PutParameter", self.PUT))
        self.assertEqual(reply.status, 400)
        self.assertEqual(json.loads(reply.body), {"__type": "ThrottlingException", "message": "Rate exceeded"})
        self.assertEqual(reply.headers["Content-Type"], "application/x-amz-json-1.1")
        self.assertIn("x-amzn-RequestId", reply.headers)

    def test_ssm_reads_use_the_documented_40_tps(self):
        r, _ = rules()
        get = json_call("ssm", "GetParameter", {"Name": "/a"})
        self.assertTrue(all(before(r, get) is None for _ in range(40)))
        self.assertEqual(before(r, get).status, 400)

    def test_all_autoscaling_calls_share_one_bucket(self):
        r, clock = rules()
        calls = [query_call("autoscaling", op, {}, "scaler") for op in
                 ("DescribeAutoScalingGroups", "DescribeAutoScalingInstances", "DescribeLifecycleHooks", "DescribeTags")]
        passed = [before(r, calls[i % 4]) is None for i in range(41)]
        self.assertEqual(passed, [True] * 40 + [False])
        reply = before(r, calls[0])
        self.assertEqual(reply.status, 400)
        self.assertEqual(xml_error(reply.body), ("Sender", "Throttling", "Rate exceeded"))
        self.assertIn('xmlns="https://autoscaling.amazonaws.com/doc/2011-01-01/"', reply.body.decode())
        clock.advance(0.5)  # 10 tokens at 20/s
        self.assertEqual(sum(before(r, calls[1]) is None for _ in range(12)), 10)

    def test_cloudwatch_throttle_reply_uses_its_namespace(self):
        r, _ = rules()
        call = query_call("monitoring", "GetMetricData", {}, "scaler")
        self.assertTrue(all(before(r, call) is None for _ in range(50)))
        reply = before(r, call)
        self.assertEqual(xml_error(reply.body), ("Sender", "Throttling", "Rate exceeded"))
        self.assertIn('xmlns="http://monitoring.amazonaws.com/doc/2010-08-01/"', reply.body.decode())

    def test_dynamodb_charges_each_partition_key_value(self):
        r, _ = rules()  # render-agent weight 10: 100 writes fill a 1,000-unit partition
        agents = json_call("dynamodb", "UpdateItem", {"TableName": "jobs", "Key": {"pk": {"S": "AGENTS"}, "sk": {"S": "a1"}}},
                           "render-agent")
        self.assertTrue(all(before(r, agents) is None for _ in range(100)))
        reply = before(r, agents)
        self.assertEqual(reply.status, 400)
        self.assertEqual(json.loads(reply.body), {
            "__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException",
            "message": "Rate of requests exceeds the allowed throughput."})
        self.assertEqual(reply.headers["Content-Type"], "application/x-amz-json-1.0")
        self.assertIn("x-amzn-RequestId", reply.headers)
        other = json_call("dynamodb", "PutItem", {"TableName": "jobs", "Item": {"pk": {"S": "JOB#1"}}}, "render-agent")
        self.assertIsNone(before(r, other))  # another partition has its own bucket

    def test_dynamodb_query_charges_the_partition_of_its_key_condition(self):
        req = awsrules.parse_request(*json_call("dynamodb", "Query", {
            "TableName": "jobs", "KeyConditionExpression": "pk = :p AND begins_with(sk, :s)",
            "ExpressionAttributeValues": {":p": {"S": "AGENTS"}, ":s": {"S": "A#"}}}))
        self.assertEqual(awsrules.dynamodb_partitions(req), {("jobs", "", "AGENTS")})
        gsi = awsrules.parse_request(*json_call("dynamodb", "Query", {
            "TableName": "jobs", "IndexName": "active", "KeyConditionExpression": "#a = :a",
            "ExpressionAttributeNames": {"#a": "active_pk"}, "ExpressionAttributeValues": {":a": {"S": "ACTIVE"}}}))
        self.assertEqual(awsrules.dynamodb_partitions(gsi), {("jobs", "active", "ACTIVE")})
        names = {(b.name, key) for b, key in awsrules.charges(gsi)}
        self.assertEqual(names, {("dynamodb:partition-read", "jobs/active/ACTIVE"), ("dynamodb:table-read", "jobs")})

    def test_dynamodb_batch_and_transaction_partitions(self):
        batch = awsrules.parse_request(*json_call("dynamodb", "BatchWriteItem", {"RequestItems": {"jobs": [
            {"PutRequest": {"Item": {"pk": {"S": "A"}}}}, {"DeleteRequest": {"Key": {"pk": {"S": "B"}}}}]}}))
        self.assertEqual(awsrules.dynamodb_partitions(batch), {("jobs", "", "A"), ("jobs", "", "B")})
        tx = awsrules.parse_request(*json_call("dynamodb", "TransactWriteItems", {"TransactItems": [
            {"Put": {"TableName": "jobs", "Item": {"pk": {"S": "JOB#1"}}}},
            {"Update": {"TableName": "keys", "Key": {"pk": {"S": "KEY#1"}}}}]}))
        self.assertEqual(awsrules.dynamodb_partitions(tx), {("jobs", "", "JOB#1"), ("keys", "", "KEY#1")})
        self.assertEqual({key for b, key in awsrules.charges(tx) if b.name == "dynamodb:table-write"}, {"jobs", "keys"})

    def test_s3_is_charged_per_prefix_and_answers_slowdown(self):
        r, _ = rules(model_workers=3500, local_workers=1)  # one agent request = 3,500: the whole prefix
        self.assertIsNone(before(r, s3_call("PUT", "/renders/jobs/j1/a.mp4")))
        reply = before(r, s3_call("PUT", "/renders/jobs/j1/b.mp4"))
        self.assertEqual(reply.status, 503)
        self.assertEqual(ET.fromstring(reply.body).find("Code").text, "SlowDown")
        self.assertIsNone(before(r, s3_call("PUT", "/renders/jobs/j2/a.mp4")))  # another prefix
        self.assertIsNone(before(r, s3_call("GET", "/renders/jobs/j1/a.mp4")))  # reads: their own bucket

    def test_random_faults_in_rules_mode_use_aws_formats(self):
        r, _ = rules()
        sqs = r.parse(*json_call("sqs", "ReceiveMessage", {"QueueUrl": "q"}))
        reply = r.fault_reply(sqs, "throttle")
        self.assertEqual((reply.status, json.loads(reply.body)), (400, {
            "__type": "com.amazonaws.sqs#ThrottlingException", "message": "Rate exceeded"}))
        self.assertEqual(reply.headers["x-amzn-query-error"], "ThrottlingException;Sender")
        self.assertEqual(r.fault_reply(sqs, "error").status, 500)
        s3 = r.parse(*s3_call("GET", "/b/k"))
        self.assertEqual(r.fault_reply(s3, "throttle").status, 503)

    def test_sqs_has_no_rate_quota(self):
        r, _ = rules()
        call = json_call("sqs", "ReceiveMessage", {"QueueUrl": "q", "MaxNumberOfMessages": 10}, "render-agent")
        self.assertTrue(all(before(r, call) is None for _ in range(500)))


# --- 3. limits -------------------------------------------------------------------------------

class LimitTest(unittest.TestCase):
    def refused(self, call, **config) -> awsrules.Reply:
        r, _ = rules(**config)
        reply = before(r, call)
        self.assertIsNotNone(reply, "expected a refusal")
        self.assertEqual(reply.status, 400)
        return reply

    def assert_passes(self, call) -> None:
        r, _ = rules()
        self.assertIsNone(before(r, call))

    def test_ssm_get_parameters_by_path_max_results(self):
        reply = self.refused(json_call("ssm", "GetParametersByPath", {"Path": "/a", "MaxResults": 11}))
        body = json.loads(reply.body)
        self.assertEqual(body["__type"], "ValidationException")
        self.assertEqual(body["message"], "1 validation error detected: Value '11' at 'maxResults' failed to satisfy "
                                          "constraint: Member must have value less than or equal to 10")
        self.assert_passes(json_call("ssm", "GetParametersByPath", {"Path": "/a", "MaxResults": 10}))
        self.refused(json_call("ssm", "GetParametersByPath", {"Path": "/a", "MaxResults": 0}))

    def test_ssm_delete_parameters_names(self):
        reply = self.refused(json_call("ssm", "DeleteParameters", {"Names": [f"/a/{i}" for i in range(11)]}))
        self.assertEqual(json.loads(reply.body)["__type"], "ValidationException")
        self.assertIn("Member must have length less than or equal to 10", json.loads(reply.body)["message"])
        self.assert_passes(json_call("ssm", "DeleteParameters", {"Names": [f"/a/{i}" for i in range(10)]}))

    def test_sqs_receive_message_max_number_of_messages(self):
        reply = self.refused(json_call("sqs", "ReceiveMessage", {"QueueUrl": "q", "MaxNumberOfMessages": 11}))
        self.assertEqual(json.loads(reply.body), {
            "__type": "com.amazonaws.sqs#InvalidParameterValue",
            "message": "Value 11 for parameter MaxNumberOfMessages is invalid. Reason: Must be between 1 and 10, if provided."})
        self.assertEqual(reply.headers["x-amzn-query-error"], "InvalidParameterValue;Sender")
        self.refused(json_call("sqs", "ReceiveMessage", {"QueueUrl": "q", "WaitTimeSeconds": 21}))

    def test_sqs_send_message_delay_seconds(self):
        reply = self.refused(json_call("sqs", "SendMessage", {"QueueUrl": "q", "MessageBody": "x", "DelaySeconds": 901}))
        self.assertEqual(json.loads(reply.body)["__type"], "com.amazonaws.sqs#InvalidParameterValue")
        self.assertIn("DelaySeconds", json.loads(reply.body)["message"])
        self.assert_passes(json_call("sqs", "SendMessage", {"QueueUrl": "q", "MessageBody": "x", "DelaySeconds": 900}))

    def test_sqs_message_body_size(self):
        reply = self.refused(json_call("sqs", "SendMessage", {"QueueUrl": "q", "MessageBody": "x" * 262145}))
        self.assertIn("shorter than 262144 bytes", json.loads(reply.body)["message"])

    def test_sqs_change_message_visibility_timeout(self):
        self.refused(json_call("sqs", "ChangeMessageVisibility", {"QueueUrl": "q", "ReceiptHandle": "h",
                                                                  "VisibilityTimeout": 43201}))
        self.assert_passes(json_call("sqs", "ChangeMessageVisibility", {"QueueUrl": "q", "ReceiptHandle": "h",
                                                                        "VisibilityTimeout": 43200}))

    def test_sqs_send_message_batch_entries(self):
        entries = [{"Id": str(i), "MessageBody": "x"} for i in range(11)]
        reply = self.refused(json_call("sqs", "SendMessageBatch", {"QueueUrl": "q", "Entries": entries}))
        self.assertEqual(json.loads(reply.body), {
            "__type": "com.amazonaws.sqs#TooManyEntriesInBatchRequest",
            "message": "Maximum number of entries per request are 10. You have sent 11."})
        self.assertEqual(reply.headers["x-amzn-query-error"], "AWS.SimpleQueueService.TooManyEntriesInBatchRequest;Sender")
        self.assert_passes(json_call("sqs", "SendMessageBatch", {"QueueUrl": "q", "Entries": entries[:10]}))

    def test_sqs_query_protocol_batch_entries(self):
        form = {f"SendMessageBatchRequestEntry.{i}.Id": str(i) for i in range(1, 12)}
        reply = self.refused(query_call("sqs", "SendMessageBatch", {"QueueUrl": "q", **form}))
        self.assertEqual(xml_error(reply.body)[1], "AWS.SimpleQueueService.TooManyEntriesInBatchRequest")

    def test_autoscaling_limits(self):
        reply = self.refused(query_call("autoscaling", "DescribeAutoScalingGroups", {"MaxRecords": "101"}))
        self.assertEqual(xml_error(reply.body)[:2], ("Sender", "ValidationError"))
        ids = {f"InstanceIds.member.{i}": f"i-{i}" for i in range(1, 52)}
        reply = self.refused(query_call("autoscaling", "SetInstanceProtection", {
            "AutoScalingGroupName": "g", "ProtectedFromScaleIn": "true", **ids}))
        self.assertIn("Member must have length less than or equal to 50", xml_error(reply.body)[2])

    def test_dynamodb_batch_write_limit(self):
        items = {"jobs": [{"PutRequest": {"Item": {"pk": {"S": str(i)}}}} for i in range(26)]}
        reply = self.refused(json_call("dynamodb", "BatchWriteItem", {"RequestItems": items}))
        self.assertEqual(json.loads(reply.body)["__type"], "com.amazon.coral.validate#ValidationException")

    def test_cloudwatch_metric_data_limit(self):
        data = {f"MetricData.member.{i}.MetricName": "m" for i in range(1, 1002)}
        reply = self.refused(query_call("monitoring", "PutMetricData", {"Namespace": "n", **data}))
        self.assertEqual(xml_error(reply.body)[1], "InvalidParameterValue")

    def test_s3_part_number(self):
        reply = self.refused(s3_call("PUT", "/b/k?partNumber=10001&uploadId=U"))
        self.assertEqual(ET.fromstring(reply.body).find("Code").text, "InvalidArgument")

    def test_sqs_total_visibility_since_receive(self):
        r, clock = rules(max_total_visibility_secs=60)
        receive = r.parse(*json_call("sqs", "ReceiveMessage", {"QueueUrl": "q"}, "render-agent"))
        self.assertIsNone(r.before(receive))
        r.after(receive, 200, {}, json.dumps({"Messages": [{"MessageId": "m", "ReceiptHandle": "RH1", "Body": "x"}]}).encode())

        def change(timeout: int):
            return before(r, json_call("sqs", "ChangeMessageVisibility", {
                "QueueUrl": "q", "ReceiptHandle": "RH1", "VisibilityTimeout": timeout}, "render-agent"))
        clock.advance(30)
        self.assertIsNone(change(30))   # exactly at the limit
        reply = change(31)
        self.assertEqual(reply.status, 400)
        self.assertEqual(json.loads(reply.body), {
            "__type": "com.amazonaws.sqs#InvalidParameterValue",
            "message": "Value 31 for parameter VisibilityTimeout is invalid. Reason: Total VisibilityTimeout "
                       "for the message is beyond the limit [60 seconds]"})
        self.assertIsNone(before(r, json_call("sqs", "ChangeMessageVisibility", {
            "QueueUrl": "q", "ReceiptHandle": "OTHER", "VisibilityTimeout": 600})))  # unknown receipt: forwarded

    def test_oversized_dynamodb_pages_are_counted_not_cut(self):
        r, _ = rules()
        q = r.parse(*json_call("dynamodb", "Query", {"TableName": "t"}))
        r.before(q)
        big = json.dumps({"Items": [{"pk": {"S": "x" * 1000}}] * 1100}).encode()
        self.assertEqual(r.after(q, 200, {}, big)[2], big)
        self.assertEqual(r.snapshot()["not_enforced_seen"]["dynamodb_pages_over_1mb"], 1)


# --- 4. Auto Scaling lifecycle ---------------------------------------------------------------

class LifecycleTest(unittest.TestCase):
    def test_new_instances_wait_until_the_launch_hook_completes(self):
        r, clock = rules(proceed_secs=2)
        self.assertEqual(describe(r, [("i-1", "InService"), ("i-2", "InService")]),
                         {"i-1": "Pending:Wait", "i-2": "Pending:Wait"})
        reply = complete(r, "i-1")
        self.assertEqual(reply.status, 200)
        root = ET.fromstring(reply.body)
        self.assertEqual(root.tag, "{https://autoscaling.amazonaws.com/doc/2011-01-01/}CompleteLifecycleActionResponse")
        self.assertEqual([c.tag.rsplit("}", 1)[1] for c in root], ["CompleteLifecycleActionResult", "ResponseMetadata"])
        self.assertEqual(describe(r, [("i-1", "InService"), ("i-2", "InService")]),
                         {"i-1": "Pending:Proceed", "i-2": "Pending:Wait"})
        clock.advance(2)
        self.assertEqual(describe(r, [("i-1", "InService"), ("i-2", "InService")]),
                         {"i-1": "InService", "i-2": "Pending:Wait"})
        history = r.snapshot()["lifecycle"]["instances"]["i-1"]["history"]
        self.assertEqual([h["state"] for h in history], ["Pending:Wait", "Pending:Proceed", "InService"])
        self.assertEqual(history[2]["at"] - history[1]["at"], 2)

    def test_rewrite_keeps_the_rest_of_the_reply_and_its_checksum(self):
        r, _ = rules()
        req = r.parse(*query_call("autoscaling", "DescribeAutoScalingGroups", {}))
        r.before(req)
        original = dasg_xml([("i-1", "InService")])
        status, headers, body = r.after(req, 200, {"x-amz-crc32": "0", "Content-Type": "text/xml"}, original.encode())
        self.assertEqual(body.decode(), original.replace("<LifecycleState>InService", "<LifecycleState>Pending:Wait"))
        self.assertEqual(headers["x-amz-crc32"], str(zlib.crc32(body)))
        self.assertIn("<DesiredCapacity>1</DesiredCapacity>", body.decode())  # pending still counts

    def test_describe_auto_scaling_instances_is_rewritten_too(self):
        r, _ = rules()
        req = r.parse(*query_call("autoscaling", "DescribeAutoScalingInstances", {"InstanceIds.member.1": "i-9"}, "render-agent"))
        r.before(req)
        xml = (f'<DescribeAutoScalingInstancesResponse xmlns="{MOTO_NS}"><DescribeAutoScalingInstancesResult>'
               "<AutoScalingInstances><member><InstanceId>i-9</InstanceId><AutoScalingGroupName>g</AutoScalingGroupName>"
               "<LifecycleState>InService</LifecycleState></member></AutoScalingInstances>"
               "</DescribeAutoScalingInstancesResult></DescribeAutoScalingInstancesResponse>")
        self.assertEqual(states(r.after(req, 200, {}, xml.encode())[2]), {"i-9": "Pending:Wait"})

    def test_abandon_terminates_upstream_and_shows_terminating(self):
        r, _ = rules()
        describe(r, [("i-1", "InService")])
        self.assertEqual(complete(r, "i-1", "ABANDON").status, 200)
        self.assertEqual(describe(r, [("i-1", "InService")]), {"i-1": "Terminating"})
        [action] = r.take_actions()
        self.assertEqual((action.instance, action.reason, action.method, action.path), ("i-1", "abandon", "POST", "/"))
        form = dict(p.split("=") for p in action.body.decode().split("&"))
        self.assertEqual(form, {"Action": "TerminateInstanceInAutoScalingGroup", "Version": "2011-01-01",
                                "InstanceId": "i-1", "ShouldDecrementDesiredCapacity": "false"})
        self.assertIn("/autoscaling/aws4_request", action.headers["Authorization"])
        r.action_done(action, 200)
        describe(r, [("i-2", "InService")])  # the emulator replaced it
        snap = r.snapshot()["lifecycle"]
        self.assertEqual([h["state"] for h in snap["instances"]["i-1"]["history"]],
                         ["Pending:Wait", "Terminating", "Terminated"])
        self.assertEqual(snap["instances"]["i-2"]["state"], "Pending:Wait")
        self.assertEqual(snap["terminations"][0]["reason"], "abandon")

    def test_launch_timeout_terminates(self):
        r, clock = rules(launch_timeout_secs=600)
        describe(r, [("i-1", "InService")])
        clock.advance(599)
        r.poll()
        self.assertEqual(r.take_actions(), [])
        clock.advance(1)
        r.poll()
        [action] = r.take_actions()
        self.assertEqual((action.instance, action.reason), ("i-1", "launch_timeout"))
        self.assertEqual(describe(r, [("i-1", "InService")]), {"i-1": "Terminating"})
        self.assertEqual(complete(r, "i-1").status, 400)  # too late

    def test_heartbeat_extends_the_timeout(self):
        r, clock = rules(launch_timeout_secs=100)
        describe(r, [("i-1", "InService")])
        clock.advance(90)
        reply = before(r, query_call("autoscaling", "RecordLifecycleActionHeartbeat", {
            "AutoScalingGroupName": "g", "LifecycleHookName": "renderfleet-dev-launch", "InstanceId": "i-1"}, "render-agent"))
        self.assertEqual(reply.status, 200)
        clock.advance(90)
        r.poll()
        self.assertEqual(r.take_actions(), [])

    def test_completing_an_instance_that_is_not_waiting_is_refused(self):
        r, _ = rules(proceed_secs=0)
        describe(r, [("i-1", "InService")])
        for call in (lambda: complete(r, "i-404"), lambda: complete(r, "i-1", hook="other-hook")):
            reply = call()
            self.assertEqual(reply.status, 400)
            self.assertEqual(xml_error(reply.body)[:2], ("Sender", "ValidationError"))
        self.assertEqual(xml_error(complete(r, "i-404").body)[2], "No active Lifecycle Action found with instance ID i-404")
        self.assertEqual(complete(r, "i-1").status, 200)
        self.assertEqual(xml_error(complete(r, "i-1").body)[2], "No active Lifecycle Action found with instance ID i-1")

    def test_set_instance_protection_only_in_service_or_standby(self):
        r, clock = rules(proceed_secs=1)
        describe(r, [("i-1", "InService")])

        def protect():
            return before(r, query_call("autoscaling", "SetInstanceProtection", {
                "AutoScalingGroupName": "g", "InstanceIds.member.1": "i-1", "ProtectedFromScaleIn": "true"}))
        reply = protect()
        self.assertEqual(reply.status, 400)
        self.assertEqual(xml_error(reply.body), ("Sender", "ValidationError",
                                                 "The instance i-1 is not in InService or EnteringStandby or Standby."))
        complete(r, "i-1")
        self.assertEqual(protect().status, 400)  # Pending:Proceed
        clock.advance(1)
        self.assertIsNone(protect())  # InService: forwarded
        describe(r, [("i-1", "Standby")])  # the emulator's own states show once in service
        self.assertIsNone(protect())
        self.assertEqual(r.snapshot()["lifecycle"]["protection_refusals"], 2)

    def test_set_desired_capacity_within_the_group_bounds(self):
        r, _ = rules()
        describe(r, [], min_size=1, max_size=5)

        def desired(n: int):
            return before(r, query_call("autoscaling", "SetDesiredCapacity", {
                "AutoScalingGroupName": "g", "DesiredCapacity": str(n), "HonorCooldown": "false"}))
        self.assertEqual(xml_error(desired(6).body)[1:],
                         ("ValidationError", "New SetDesiredCapacity value 6 is above max value 5 for the AutoScalingGroup."))
        self.assertEqual(xml_error(desired(0).body)[2], "New SetDesiredCapacity value 0 is below min value 1 for the AutoScalingGroup.")
        self.assertIsNone(desired(5))
        update = r.parse(*query_call("autoscaling", "UpdateAutoScalingGroup", {"AutoScalingGroupName": "g", "MaxSize": "8"}))
        r.before(update)
        r.after(update, 200, {}, b"<UpdateAutoScalingGroupResponse/>")
        self.assertIsNone(desired(8))

    def test_existing_instances_only_in_service_when_configured(self):
        r, _ = rules(existing_in_service=True)
        self.assertEqual(describe(r, [("i-old", "InService")]), {"i-old": "InService"})
        self.assertEqual(describe(r, [("i-old", "InService"), ("i-new", "InService")]),
                         {"i-old": "InService", "i-new": "Pending:Wait"})
        r, _ = rules()
        self.assertEqual(describe(r, [("i-old", "InService")]), {"i-old": "Pending:Wait"})

    def test_the_harness_sees_the_same_lifecycle(self):
        r, _ = rules()
        self.assertEqual(describe(r, [("i-1", "InService")], app="renderfleet-supervisor"), {"i-1": "Pending:Wait"})


# --- 5. counters and config ------------------------------------------------------------------

class CountersTest(unittest.TestCase):
    def test_snapshot_counts_per_app_service_operation_raw_and_weighted(self):
        r, clock = rules(model_workers=1000, local_workers=100)
        put = {"Name": "/a", "Value": "v", "Type": "String"}
        before(r, json_call("ssm", "PutParameter", put, "render-agent"))
        before(r, json_call("ssm", "PutParameter", put, "render-agent"))  # throttled
        clock.advance(10)
        before(r, json_call("ssm", "GetParametersByPath", {"Path": "/a", "MaxResults": 50}, "render-agent"))  # refused
        before(r, json_call("ssm", "GetParametersByPath", {"Path": "/a"}, "renderctl"))
        snap = json.loads(json.dumps(r.snapshot()))  # JSON-serialisable
        rows = {(c["app"], c["operation"]): c for c in snap["calls"]}
        put_row = rows[("render-agent", "PutParameter")]
        self.assertEqual((put_row["total"], put_row["throttled"], put_row["refused"], put_row["weight"],
                          put_row["weighted_total"]), (2, 1, 0, 10.0, 20.0))
        self.assertEqual(put_row["windows"], [{"start": 1767225600, "count": 2, "weighted": 20.0}])
        self.assertEqual(rows[("render-agent", "GetParametersByPath")]["refused"], 1)
        self.assertEqual(rows[("renderctl", "GetParametersByPath")]["weight"], 0.0)
        self.assertEqual(snap["config"]["model_workers"], 1000)
        self.assertEqual(snap["window_secs"], 10)
        bucket = next(b for b in snap["buckets"] if b["name"] == "ssm:PutParameter")
        self.assertEqual((bucket["modelled"], bucket["throttled"]), (True, 1))

    def test_windows_cover_the_last_ten_minutes(self):
        r, clock = rules()
        call = json_call("sqs", "SendMessage", {"QueueUrl": "q", "MessageBody": "x"})
        for i in range(70):
            clock.advance(10 if i else 0)
            before(r, call)
        [row] = r.snapshot()["calls"]
        self.assertEqual(row["total"], 70)
        self.assertEqual(len(row["windows"]), 60)

    def test_config_is_checked(self):
        with self.assertRaisesRegex(ValueError, "unknown rules config keys: modle_workers"):
            Config.from_dict({"modle_workers": 10})
        with self.assertRaisesRegex(ValueError, "local_workers"):
            Config.from_dict({"local_workers": "100"})
        c = Config.from_dict({"model_workers": 1000, "local_workers": 100, "launch_hook": "h",
                              "launch_timeout_secs": 600, "proceed_secs": 2,
                              "harness_apps": ["renderfleet-supervisor", "renderctl"], "seed": 0})
        self.assertEqual((c.weight("render-agent"), c.weight("scaler"), c.weight("renderctl")), (10.0, 1.0, 0.0))

    def test_request_ids_are_reproducible_from_the_seed(self):
        ids = []
        for _ in range(2):
            r, _ = rules(seed=7)
            for _ in range(4):
                reply = before(r, json_call("ssm", "PutParameter", {"Name": "/a"}))
            ids.append(reply.headers["x-amzn-RequestId"])
        self.assertEqual(ids[0], ids[1])


# --- end to end: moto_server behind faultproxy.py --rules ---------------------------------------

def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = predicate()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@unittest.skipUnless(MOTO.exists(), f"{MOTO} not installed")
class EndToEndTest(unittest.TestCase):
    PROCEED = 1
    TIMEOUT = 8

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        tmp = Path(cls.tmp.name)
        cls.procs = []
        with open(tmp / "moto.log", "wb") as log:
            cls.moto = subprocess.Popen([str(MOTO), "-H", "127.0.0.1", "-p", "0"], stdout=log,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        cls.procs.append(cls.moto)
        port = wait_for(lambda: re.search(rb"Running on http://127\.0\.0\.1:(\d+)", (tmp / "moto.log").read_bytes()),
                        60, "moto_server").group(1).decode()
        (tmp / "rules.json").write_text(json.dumps({
            "model_workers": 1000, "local_workers": 100, "launch_hook": "renderfleet-dev-launch",
            "launch_timeout_secs": cls.TIMEOUT, "proceed_secs": cls.PROCEED,
            "harness_apps": ["renderfleet-supervisor", "renderctl"], "seed": 0}))
        with open(tmp / "proxy.log", "wb") as log:
            cls.proxy = subprocess.Popen(
                [sys.executable, str(HERE / "faultproxy.py"), "--upstream", f"http://127.0.0.1:{port}", "--port", "0",
                 "--rules", str(tmp / "rules.json"), "--port-file", str(tmp / "proxy.port")],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        cls.procs.append(cls.proxy)
        cls.url = "http://127.0.0.1:" + wait_for(lambda: (tmp / "proxy.port").exists() and (tmp / "proxy.port").read_text(),
                                                 30, "the proxy")

    @classmethod
    def tearDownClass(cls):
        for p in reversed(cls.procs):
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        cls.tmp.cleanup()

    def http(self, method: str, path: str, headers: dict, body: bytes) -> tuple[int, dict, bytes]:
        req = urllib.request.Request(self.url + path, data=body or None, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def call(self, c) -> tuple[int, dict, bytes]:
        method, path, headers, body = c
        return self.http(method, path, headers, body)

    def asg(self, action: str, params: dict, app: str = "scaler") -> tuple[int, dict, bytes]:
        return self.call(query_call("autoscaling", action, params, app))

    def shown(self) -> dict[str, str]:
        status, _, body = self.asg("DescribeAutoScalingGroups", {"AutoScalingGroupNames.member.1": "farm"})
        self.assertEqual(status, 200, body)
        return states(body)

    def rules_doc(self) -> dict:
        status, _, body = self.http("GET", "/__rules", {}, b"")
        self.assertEqual(status, 200)
        return json.loads(body)

    def test_throttling_and_the_launch_lifecycle_through_real_http(self):
        # The harness builds the group (never throttled).
        status, _, body = self.asg("CreateLaunchConfiguration", {
            "LaunchConfigurationName": "lc", "ImageId": "ami-12c6146b", "InstanceType": "t3.micro"}, "renderctl")
        self.assertEqual(status, 200, body)
        status, _, body = self.asg("CreateAutoScalingGroup", {
            "AutoScalingGroupName": "farm", "LaunchConfigurationName": "lc", "MinSize": "0", "MaxSize": "3",
            "DesiredCapacity": "2", "AvailabilityZones.member.1": "us-east-1a"}, "renderctl")
        self.assertEqual(status, 200, body)

        # moto has them InService at once; the proxy shows them waiting on the launch hook.
        first = self.shown()
        self.assertEqual(sorted(first.values()), ["Pending:Wait", "Pending:Wait"])
        i1, i2 = sorted(first)

        status, _, body = self.asg("SetInstanceProtection", {
            "AutoScalingGroupName": "farm", "InstanceIds.member.1": i1, "ProtectedFromScaleIn": "true"})
        self.assertEqual(status, 400)
        self.assertEqual(xml_error(body), ("Sender", "ValidationError",
                                           f"The instance {i1} is not in InService or EnteringStandby or Standby."))
        status, _, body = self.asg("SetDesiredCapacity", {"AutoScalingGroupName": "farm", "DesiredCapacity": "4"})
        self.assertEqual((status, xml_error(body)[2]),
                         (400, "New SetDesiredCapacity value 4 is above max value 3 for the AutoScalingGroup."))

        # The agent on i1 completes the hook: Pending:Proceed, then InService.
        hook = {"AutoScalingGroupName": "farm", "LifecycleHookName": "renderfleet-dev-launch"}
        status, _, body = self.asg("CompleteLifecycleAction", {**hook, "InstanceId": i1,
                                                               "LifecycleActionResult": "CONTINUE"}, "render-agent")
        self.assertEqual(status, 200, body)
        self.assertEqual(ET.fromstring(body).tag.rsplit("}", 1)[1], "CompleteLifecycleActionResponse")
        status, _, body = self.asg("CompleteLifecycleAction", {**hook, "InstanceId": i1,
                                                               "LifecycleActionResult": "CONTINUE"}, "render-agent")
        self.assertEqual((status, xml_error(body)[2]), (400, f"No active Lifecycle Action found with instance ID {i1}"))
        self.assertEqual(self.shown()[i1], "Pending:Proceed")
        wait_for(lambda: self.shown()[i1] == "InService", 10, f"{i1} InService")
        status, _, body = self.asg("SetInstanceProtection", {
            "AutoScalingGroupName": "farm", "InstanceIds.member.1": i1, "ProtectedFromScaleIn": "true"})
        self.assertEqual(status, 200, body)  # forwarded: moto applied it
        self.assertIn("<ProtectedFromScaleIn>true</ProtectedFromScaleIn>",
                      self.asg("DescribeAutoScalingGroups", {"AutoScalingGroupNames.member.1": "farm"})[2].decode())

        # i2 abandons: the proxy terminates it upstream, moto replaces it, the new one waits.
        status, _, body = self.asg("CompleteLifecycleAction", {**hook, "InstanceId": i2,
                                                               "LifecycleActionResult": "ABANDON"}, "render-agent")
        self.assertEqual(status, 200, body)
        after = self.shown()
        self.assertNotEqual(after.get(i2), "InService")
        [i3] = [i for i in after if i not in (i1, i2)] or [None]
        self.assertIsNotNone(i3, f"moto did not replace {i2}: {after}")
        self.assertEqual(after[i3], "Pending:Wait")

        # Nobody completes i3: after launch_timeout_secs the proxy's timer terminates it.
        wait_for(lambda: self.rules_doc()["lifecycle"]["instances"][i3]["state"] in ("Terminating", "Terminated"),
                 self.TIMEOUT + 10, f"{i3} timed out")

        # A throttle: SSM PutParameter (3/s) from an agent standing for 10 (1000 / 100).
        put = {"Name": "/renderfleet/e2e", "Value": "v", "Type": "String", "Overwrite": True}
        status, _, body = self.call(json_call("ssm", "PutParameter", put, "render-agent"))
        self.assertEqual(status, 200, body)
        status, headers, body = self.call(json_call("ssm", "PutParameter", put, "render-agent"))
        self.assertEqual(status, 400)
        self.assertEqual(json.loads(body), {"__type": "ThrottlingException", "message": "Rate exceeded"})
        self.assertEqual(headers["Content-Type"], "application/x-amz-json-1.1")
        self.assertIn("x-amzn-RequestId", headers)

        doc = self.rules_doc()
        rows = {(c["app"], c["service"], c["operation"]): c for c in doc["calls"]}
        row = rows[("render-agent", "ssm", "PutParameter")]
        self.assertEqual((row["total"], row["throttled"], row["weighted_total"]), (2, 1, 20.0))
        self.assertEqual(rows[("scaler", "autoscaling", "SetInstanceProtection")]["refused"], 1)
        life = doc["lifecycle"]
        self.assertEqual(life["protection_refusals"], 1)
        self.assertEqual([h["state"] for h in life["instances"][i1]["history"]],
                         ["Pending:Wait", "Pending:Proceed", "InService"])
        self.assertEqual([h["state"] for h in life["instances"][i2]["history"]][:2], ["Pending:Wait", "Terminating"])
        self.assertEqual({(t["instance"], t["reason"], t["status"]) for t in life["terminations"]},
                         {(i2, "abandon", 200), (i3, "launch_timeout", 200)})

        # The fault control endpoint still works in rules mode.
        status, _, body = self.http("GET", "/__faults", {}, b"")
        self.assertEqual(status, 200)
        self.assertIn("counts", json.loads(body))


if __name__ == "__main__":
    unittest.main()
