"""AWS's documented default quotas for the calls renderfleet makes: the table the local stack's
AWS-rules proxy enforces.

Each `Bucket` is a token bucket at AWS's *default* quota (a fresh account, no increase
requested, SSM Parameter Store on its standard throughput setting). Every row names the AWS page
that states its figure in `source`; `burst` is AWS's published bucket size where AWS publishes
one (EC2) and otherwise equals `rate`. Only figures AWS documents are here. Calls AWS gives no
number for have no bucket (the proxy lets them through) and are listed at the end of this file
with what AWS says instead; docs/AWS.md has the full table, the error formats and the rates the
farm generates at 1,000 workers.

Stdlib only: imported by faultproxy-style tools and runnable on its own (`python3 aws_quotas.py`
prints the table).
"""
from dataclasses import dataclass


@dataclass(frozen=True)
class Bucket:
    name: str      # e.g. "ssm:GetParameter*" (operations sharing a quota share a bucket)
    rate: float    # requests per second at AWS's default quota
    burst: float   # bucket size (requests); AWS's figure when published, else equal to rate
    source: str    # URL of the AWS page that states the quota
    note: str = ""


_SSM_QUOTAS = "https://docs.aws.amazon.com/general/latest/gr/ssm.html"
_DDB_QUOTAS = "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html"
_DDB_PARTITION = "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/warm-throughput-scenarios.html"
_EC2_THROTTLING = "https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html"
_CW_QUOTAS = "https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch_limits.html"
_S3_PERF = "https://docs.aws.amazon.com/AmazonS3/latest/userguide/optimizing-performance.html"

BUCKETS: list[Bucket] = [
    # --- SSM Parameter Store -------------------------------------------------------------
    Bucket(
        "ssm:GetParameter*", 40, 40, _SSM_QUOTAS,
        "Default throughput 40 TPS shared by GetParameter, GetParameters and GetParametersByPath "
        "per account and Region. With higher throughput enabled: 3,000 shared by GetParameter and "
        "GetParameters, 100 for GetParametersByPath. Throttled calls get HTTP 400 "
        "ThrottlingException 'Rate exceeded'.",
    ),
    # --- DynamoDB (on-demand) -------------------------------------------------------------
    Bucket(
        "dynamodb:partition-write", 1000, 1000, _DDB_PARTITION,
        "Approximates ONE physical partition: 'each individual partition is limited to 1,000 write "
        "units per second and 3,000 read units per second'. The proxy should keep one bucket per "
        "partition-key value (pk) and charge write request units (1 per started KB of item; a "
        "transactional write counts 2), not requests. The single-partition items this models are "
        "pk AGENTS (every agent's liveness item, the claim gate, the retiring mark) and pk SCALER "
        "(tick lease, state). Real DynamoDB may split a hot partition by sort key ('split for "
        "heat'), so this is a floor for a hot key, not an exact model. Throttles return HTTP 400 "
        "with ThrottlingReasons reason TableWriteKeyRangeThroughputExceeded.",
    ),
    Bucket(
        "dynamodb:partition-read", 3000, 3000, _DDB_PARTITION,
        "Same partition model for reads, charged in read request units: 1 per 4 KB strongly "
        "consistent, 0.5 per 4 KB eventually consistent (a Query is charged on the total size it "
        "returns, at most 1 MB a page). Reason code TableReadKeyRangeThroughputExceeded.",
    ),
    Bucket(
        "dynamodb:table-write", 40000, 40000, _DDB_QUOTAS,
        "On-demand per-table quota: 40,000 write request units per second for the table plus all "
        "its GSIs together (adjustable). A new on-demand table sustains 4,000 WRU/s at first and "
        "doubles its previous peak within 30 minutes "
        "(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/pre-warming-on-demand-capacity-mode.html). "
        "Charge every write here as well as in dynamodb:partition-write; GSI updates count too.",
    ),
    Bucket(
        "dynamodb:table-read", 40000, 40000, _DDB_QUOTAS,
        "On-demand per-table quota: 40,000 read request units per second (table plus GSIs). A new "
        "on-demand table sustains 12,000 RRU/s at first.",
    ),
    # --- EC2 API (only if the farm ever calls Describe*; the group's own launches are AWS's) ---
    Bucket(
        "ec2:non-mutating", 20, 100, _EC2_THROTTLING,
        "Describe*, List*, Search*, Get* not in another category: bucket 100 tokens, refill 20/s. "
        "Throttle: error code RequestLimitExceeded.",
    ),
    Bucket(
        "ec2:unfiltered-non-mutating", 10, 50, _EC2_THROTTLING,
        "DescribeInstances, DescribeInstanceStatus, DescribeNetworkInterfaces, "
        "DescribeSecurityGroups, DescribeSnapshots, DescribeSpotInstanceRequests, DescribeVolumes "
        "called with neither a filter nor pagination: bucket 50, refill 10/s. With a filter or "
        "pagination they use ec2:non-mutating.",
    ),
    Bucket(
        "ec2:mutating", 5, 50, _EC2_THROTTLING,
        "Mutating actions not in another category: bucket 50, refill 5/s. (RunInstances is "
        "uncategorized: bucket 5, refill 2/s; TerminateInstances: bucket 100, refill 5/s.)",
    ),
    # --- CloudWatch -------------------------------------------------------------------------
    Bucket(
        "monitoring:PutMetricData", 500, 500, _CW_QUOTAS,
        "500 TPS per Region (adjustable). Each request: at most 1,000 metrics and 1 MB "
        "(https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricData.html).",
    ),
    Bucket(
        "monitoring:GetMetricData", 50, 50, _CW_QUOTAS,
        "50 TPS per Region for requests without a Metrics Insights query (10 with one); at most "
        "500 MetricDataQuery per request.",
    ),
    # --- S3 ---------------------------------------------------------------------------------
    Bucket(
        "s3:prefix-write", 3500, 3500, _S3_PERF,
        "'At least 3,500 PUT/COPY/POST/DELETE ... requests per second per partitioned Amazon S3 "
        "prefix'. Key the bucket by bucket name + key prefix (the key up to its last '/'). S3 "
        "adds partitions as the rate grows, so sustained traffic above this gets 503 SlowDown only "
        "while S3 scales; the proxy models the un-scaled prefix.",
    ),
    Bucket(
        "s3:prefix-read", 5500, 5500, _S3_PERF,
        "'5,500 GET/HEAD requests per second per partitioned Amazon S3 prefix'. Same keying.",
    ),
]

# (SigV4 signing service as in the credential scope: "ssm", "dynamodb", "sqs", "autoscaling",
# "monitoring", "s3", "ec2", "lambda"; operation name) -> bucket name
OPERATION_BUCKET: dict[tuple[str, str], str] = {
    ("ssm", "GetParameter"): "ssm:GetParameter*",
    ("ssm", "GetParameters"): "ssm:GetParameter*",
    ("ssm", "GetParametersByPath"): "ssm:GetParameter*",
    # Writes: charge the item's partition (and dynamodb:table-write, see its note).
    ("dynamodb", "PutItem"): "dynamodb:partition-write",
    ("dynamodb", "UpdateItem"): "dynamodb:partition-write",
    ("dynamodb", "DeleteItem"): "dynamodb:partition-write",
    ("dynamodb", "BatchWriteItem"): "dynamodb:partition-write",
    ("dynamodb", "TransactWriteItems"): "dynamodb:partition-write",
    # Reads: charge the partition read (and dynamodb:table-read).
    ("dynamodb", "GetItem"): "dynamodb:partition-read",
    ("dynamodb", "BatchGetItem"): "dynamodb:partition-read",
    ("dynamodb", "Query"): "dynamodb:partition-read",
    ("ec2", "DescribeInstances"): "ec2:unfiltered-non-mutating",
    ("ec2", "DescribeInstanceStatus"): "ec2:unfiltered-non-mutating",
    ("ec2", "DescribeInstanceTypes"): "ec2:non-mutating",
    ("ec2", "DescribeImages"): "ec2:non-mutating",
    ("ec2", "DescribeLaunchTemplateVersions"): "ec2:non-mutating",
    ("monitoring", "PutMetricData"): "monitoring:PutMetricData",
    ("monitoring", "GetMetricData"): "monitoring:GetMetricData",
    ("s3", "PutObject"): "s3:prefix-write",
    ("s3", "CreateMultipartUpload"): "s3:prefix-write",
    ("s3", "UploadPart"): "s3:prefix-write",
    ("s3", "CompleteMultipartUpload"): "s3:prefix-write",
    ("s3", "AbortMultipartUpload"): "s3:prefix-write",
    ("s3", "DeleteObject"): "s3:prefix-write",
    ("s3", "CopyObject"): "s3:prefix-write",
    ("s3", "GetObject"): "s3:prefix-read",
    ("s3", "HeadObject"): "s3:prefix-read",
}

# Page-size and batch limits the proxy enforces: (service, operation, parameter) -> max value,
# with the source in a comment. Minimums AWS also enforces are noted where the farm could hit them.
MAX_PARAMETER: dict[tuple[str, str, str], int] = {
    # https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_GetParametersByPath.html
    # (MaxResults: minimum 1, maximum 10)
    ("ssm", "GetParametersByPath", "MaxResults"): 10,
    # https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DescribeParameters.html
    ("ssm", "DescribeParameters", "MaxResults"): 50,
    # https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DeleteParameters.html
    # (Names: 1 to 10 items; names that do not exist come back in InvalidParameters)
    ("ssm", "DeleteParameters", "Names"): 10,
    # https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_GetParameters.html
    ("ssm", "GetParameters", "Names"): 10,
    # https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_SendCommand.html
    # ("you can specify up to 50 IDs")
    ("ssm", "SendCommand", "InstanceIds"): 50,
    # https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ReceiveMessage.html
    ("sqs", "ReceiveMessage", "MaxNumberOfMessages"): 10,
    # https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-queues.html
    ("sqs", "ReceiveMessage", "WaitTimeSeconds"): 20,
    # https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-messages.html
    # (visibility timeout 0 to 12 h; for ChangeMessageVisibility the 12 h also caps the TOTAL
    # invisibility since the ReceiveMessage that produced the receipt handle:
    # https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-visibility-timeout.html)
    ("sqs", "ReceiveMessage", "VisibilityTimeout"): 43200,
    ("sqs", "ChangeMessageVisibility", "VisibilityTimeout"): 43200,
    # https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessage.html
    # (DelaySeconds 0 to 900)
    ("sqs", "SendMessage", "DelaySeconds"): 900,
    # https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-messages.html
    # (message size 1 byte to 262,144 bytes = 256 KiB; the value here is bytes)
    ("sqs", "SendMessage", "MessageBody"): 262144,
    # same page ("a single message batch request can include a maximum of 10 messages")
    ("sqs", "SendMessageBatch", "Entries"): 10,
    ("sqs", "DeleteMessageBatch", "Entries"): 10,
    ("sqs", "ChangeMessageVisibilityBatch", "Entries"): 10,
    # https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_DescribeAutoScalingGroups.html
    # (MaxRecords default 50, maximum 100)
    ("autoscaling", "DescribeAutoScalingGroups", "MaxRecords"): 100,
    # https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_DescribeAutoScalingInstances.html
    # (MaxRecords default 50, maximum 50; InstanceIds at most 50)
    ("autoscaling", "DescribeAutoScalingInstances", "MaxRecords"): 50,
    ("autoscaling", "DescribeAutoScalingInstances", "InstanceIds"): 50,
    # https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-quotas.html
    # (SetInstanceProtection: 50 instance IDs)
    ("autoscaling", "SetInstanceProtection", "InstanceIds"): 50,
    # https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_PutLifecycleHook.html
    # (HeartbeatTimeout 30 to 7200 s, default 3600)
    ("autoscaling", "PutLifecycleHook", "HeartbeatTimeout"): 7200,
    # https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricData.html
    ("monitoring", "PutMetricData", "MetricData"): 1000,
    # https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_GetMetricData.html
    ("monitoring", "GetMetricData", "MetricDataQueries"): 500,
    # https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html
    # (BatchWriteItem 25 requests / 16 MB, BatchGetItem 100 items / 16 MB, transactions 100
    # items / 4 MB, item size 400 KB: value in bytes)
    ("dynamodb", "BatchWriteItem", "RequestItems"): 25,
    ("dynamodb", "BatchGetItem", "RequestItems"): 100,
    ("dynamodb", "TransactWriteItems", "TransactItems"): 100,
    ("dynamodb", "PutItem", "Item"): 400 * 1024,
    # https://docs.aws.amazon.com/AmazonS3/latest/userguide/qfacts.html
    # (part numbers 1 to 10,000; part size 5 MiB to 5 GiB, the last part may be smaller)
    ("s3", "UploadPart", "partNumber"): 10000,
    ("s3", "UploadPart", "Content-Length"): 5 * 1024**3,
    # https://docs.aws.amazon.com/AmazonS3/latest/userguide/upload-objects.html
    # ("with a single PUT operation, you can upload a single object up to 5 GB in size")
    ("s3", "PutObject", "Content-Length"): 5 * 1024**3,
    # https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-parameters.html
    # (SQS standard queue: BatchSize up to 10,000; ScalingConfig.MaximumConcurrency 2 to 1000)
    ("lambda", "CreateEventSourceMapping", "BatchSize"): 10000,
    ("lambda", "CreateEventSourceMapping", "ScalingConfig.MaximumConcurrency"): 1000,
}

# Calls the farm makes for which AWS publishes NO default rate (no bucket above, on purpose):
# - ssm PutParameter, DeleteParameter(s), DescribeParameters: not in the throughput quotas AWS
#   publishes; AWS says only "Rate exceeded" (ThrottlingException) and that the higher-throughput
#   setting covers GetParameter, GetParameters and PutParameter
#   (https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-throughput.html).
#   A GitHub issue quotes AWS Support: PutParameter 3 TPS standard, 10 TPS higher throughput
#   (github-aws-runners/terraform-aws-github-runner#2944); that is not AWS documentation.
# - ssm SendCommand: no published rate (InstanceIds at most 50 per call).
# - sqs (standard queues): "nearly unlimited number of API calls per second, per API action";
#   the real limit is ~120,000 in-flight messages per queue (OverLimit on short polls).
# - autoscaling: one token bucket shared by all EC2 Auto Scaling APIs per account and Region,
#   size and refill not published ("Rate exceeded", code Throttling)
#   (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/Welcome.html).
# - lambda: the farm calls no Lambda API at run time; concurrency (1,000 per Region by default,
#   lower for new accounts) is a capacity, not a request rate.


def bucket(service: str, operation: str) -> Bucket | None:
    """The bucket an operation draws from, or None when AWS publishes no rate for it."""
    name = OPERATION_BUCKET.get((service, operation))
    if name is None:
        return None
    return next(b for b in BUCKETS if b.name == name)


def _check() -> None:
    names = {b.name for b in BUCKETS}
    assert len(names) == len(BUCKETS), "duplicate bucket names"
    missing = {v for v in OPERATION_BUCKET.values()} - names
    assert not missing, f"operations mapped to unknown buckets: {missing}"
    for b in BUCKETS:
        assert b.rate > 0 and b.burst >= b.rate, b.name
        assert b.source.startswith("https://docs.aws.amazon.com/"), b.name


_check()


if __name__ == "__main__":
    print(f"{'bucket':30} {'rate/s':>8} {'burst':>8}  source")
    for b in BUCKETS:
        print(f"{b.name:30} {b.rate:8g} {b.burst:8g}  {b.source}")
    print()
    print(f"{'service':12} {'operation':32} bucket")
    for (svc, op), name in sorted(OPERATION_BUCKET.items()):
        print(f"{svc:12} {op:32} {name}")
    print()
    print(f"{'service':12} {'operation':32} {'parameter':36} max")
    for (svc, op, param), value in sorted(MAX_PARAMETER.items()):
        print(f"{svc:12} {op:32} {param:36} {value}")
