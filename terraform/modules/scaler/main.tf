# The scaler Lambda (lambdas/scaler). Each invocation runs one tick and returns
# (lambdas/scaler/src/schedule.rs): a scheduled tick asks the tick queue for the next slot as a
# delayed message (every RENDERFLEET_TICK_SECS), which invokes it again through an event source
# mapping; EventBridge's one-minute schedule enters the same chain (a slot that already ran is
# dropped), so a lost message costs at most a minute. An Auto Scaling lifecycle action invokes it
# for one extra tick at once. A lease item in the jobs table keeps ticks from overlapping, so no
# reserved concurrency is needed (young accounts cannot reserve any: the unreserved pool must keep
# 100, or 10 on new accounts).

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  account   = data.aws_caller_identity.current.account_id
  region    = data.aws_region.current.name
  partition = data.aws_partition.current.partition

  function_name   = "renderfleet-${var.environment}-scaler"
  tick_queue_name = "renderfleet-${var.environment}-scaler-ticks"
  asg_name        = "renderfleet-${var.environment}-workers"
  ssm_prefix      = "/renderfleet/${var.environment}"
  # One tick is a few seconds; the lease outlasts the invocation, so a tick that dies holding it
  # delays the next by at most this.
  timeout_secs = 30
  asg_arn      = "arn:${local.partition}:autoscaling:${local.region}:${local.account}:autoScalingGroup:*:autoScalingGroupName/${local.asg_name}"

  # What lambdas/scaler/src/config.rs reads (RENDERFLEET_LOG is read by main.rs).
  environment = merge(
    {
      RENDERFLEET_ENV                  = var.environment
      RENDERFLEET_MIN_WORKERS          = var.min_workers
      RENDERFLEET_MAX_WORKERS          = var.max_workers
      RENDERFLEET_SLOTS_PER_WORKER     = var.slots_per_worker
      RENDERFLEET_TARGET_WAIT_SECS     = var.target_wait_secs
      RENDERFLEET_BOOT_SECS            = var.boot_secs
      RENDERFLEET_TICK_SECS            = var.tick_secs
      RENDERFLEET_SCALE_IN_WINDOW_SECS = var.scale_in_window_secs
      RENDERFLEET_IDLE_TO_ZERO_SECS    = var.idle_to_zero_secs
      RENDERFLEET_MIN_BILLED_SECS      = var.min_billed_secs
      RENDERFLEET_MAX_STEP_UP          = var.max_step_up
      RENDERFLEET_MAX_STEP_DOWN        = var.max_step_down
      RENDERFLEET_DRY_RUN              = var.dry_run
      RENDERFLEET_SECONDS_PER_UNIT     = var.seconds_per_unit
      RENDERFLEET_HEARTBEAT_STALE_SECS = var.heartbeat_stale_secs
      RENDERFLEET_BOOT_TIMEOUT_SECS    = var.boot_timeout_secs
      RENDERFLEET_UNHEALTHY_GRACE_SECS = var.unhealthy_grace_secs
      RENDERFLEET_DECISION_TTL_HOURS   = var.decision_ttl_hours
      RENDERFLEET_TICK_LEASE_SECS      = local.timeout_secs
      RENDERFLEET_LOG                  = var.log_filter
    },
    var.worker_idle_secs == null ? {} : { RENDERFLEET_WORKER_IDLE_SECS = var.worker_idle_secs },
  )

  # The jobs table's items the scaler may read or write, by leading key, and nothing else in it.
  table_items = {
    # Its own state, decision history and tick lease.
    ScalerMemory = { actions = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"], test = "ForAllValues:StringEquals", keys = ["SCALER", "SCALER#DECISIONS"] }
    # The agents' liveness items: one Query a tick (AgentDirectory) and the retirement mark.
    AgentLiveness = { actions = ["dynamodb:Query", "dynamodb:UpdateItem"], test = "ForAllValues:StringEquals", keys = ["AGENTS"] }
    # JobLedger::release: a replaced worker's running jobs go back to queued (job items only).
    RequeueJobsOfReplacedWorkers = { actions = ["dynamodb:GetItem", "dynamodb:UpdateItem"], test = "ForAllValues:StringLike", keys = ["JOB#*"] }
  }
}

resource "aws_cloudwatch_log_group" "this" {
  #checkov:skip=CKV_AWS_338:Retention is the log_retention_days variable; the decisions are also kept in the jobs table for decision_ttl_hours.
  name              = "/aws/lambda/${local.function_name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account]
    }
  }
}

resource "aws_iam_role" "this" {
  name               = local.function_name
  assume_role_policy = data.aws_iam_policy_document.assume.json
}

# Exactly what lambdas/scaler/src/main.rs builds: DynamoStore (ActiveWork, ScalerMemory,
# JobLedger::release, AgentDirectory, Retirement, TickLease), SqsQueue (connect, counters; the
# tick queue), AsgFleet (describe, set_desired, terminate), SsmParameters (AgentLauncher,
# StatusCleanup), CloudWatchMetrics. Every dynamodb:LeadingKeys condition is paired with a Null
# check: a request without a key (a Scan) would otherwise pass ForAllValues vacuously.
data "aws_iam_policy_document" "this" {
  statement {
    sid       = "WriteOwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this.arn}:*"]
  }

  statement {
    sid       = "ActiveJobs"
    actions   = ["dynamodb:Query"]
    resources = ["${var.table_arn}/index/active"]
  }

  # The table's items by leading key (local.table_items), each condition paired with the Null
  # check.
  dynamic "statement" {
    for_each = local.table_items
    content {
      sid       = statement.key
      actions   = statement.value.actions
      resources = [var.table_arn]

      condition {
        test     = statement.value.test
        variable = "dynamodb:LeadingKeys"
        values   = statement.value.keys
      }
      condition {
        test     = "Null"
        variable = "dynamodb:LeadingKeys"
        values   = ["false"]
      }
    }
  }

  statement {
    sid       = "QueueDepth"
    actions   = ["sqs:GetQueueUrl", "sqs:GetQueueAttributes"]
    resources = [var.queue_arn]
  }

  # The tick chain: send the next slot; the event source mapping receives and deletes.
  statement {
    sid       = "TickQueue"
    actions   = ["sqs:GetQueueUrl", "sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"]
    resources = [aws_sqs_queue.ticks.arn]
  }

  # Describe* calls have no resource-level permissions in Auto Scaling: AWS requires "*".
  statement {
    sid       = "DescribeGroupsRequiresStar"
    actions   = ["autoscaling:DescribeAutoScalingGroups"]
    resources = ["*"]
  }

  statement {
    sid       = "SizeOwnGroup"
    actions   = ["autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"]
    resources = [local.asg_arn]
  }

  # AgentLauncher: AWS-RunShellScript on this environment's workers only (tagged by the group).
  statement {
    sid       = "StartAgentDocument"
    actions   = ["ssm:SendCommand"]
    resources = ["arn:${local.partition}:ssm:${local.region}::document/AWS-RunShellScript"]
  }

  statement {
    sid       = "StartAgentOnOwnWorkers"
    actions   = ["ssm:SendCommand"]
    resources = ["arn:${local.partition}:ec2:${local.region}:${local.account}:instance/*"]

    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/renderfleet:environment"
      values   = [var.environment]
    }
  }

  # StatusCleanup: one page a tick of the sweep, and the status of workers that left.
  statement {
    sid       = "SweepAgentStatus"
    actions   = ["ssm:GetParametersByPath"]
    resources = ["arn:${local.partition}:ssm:${local.region}:${local.account}:parameter${local.ssm_prefix}/agents"]
  }

  statement {
    sid       = "DeleteDepartedAgentStatus"
    actions   = ["ssm:DeleteParameters"]
    resources = ["arn:${local.partition}:ssm:${local.region}:${local.account}:parameter${local.ssm_prefix}/agents/*"]
  }

  # PutMetricData has no resource-level permissions: AWS requires "*"; the condition keeps it to
  # renderfleet's namespace.
  statement {
    sid       = "MetricsInOwnNamespace"
    actions   = ["cloudwatch:PutMetricData"]
    resources = ["*"]

    condition {
      test     = "StringEquals"
      variable = "cloudwatch:namespace"
      values   = ["RenderFleet"]
    }
  }

  # X-Ray's write calls have no resource-level permissions: AWS requires "*".
  statement {
    sid       = "TracingRequiresStar"
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"]
  }

  statement {
    sid       = "DecryptEnvironment"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]
  }
}

resource "aws_iam_role_policy" "this" {
  name   = "scaler"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.this.json
}

resource "aws_lambda_function" "this" {
  #checkov:skip=CKV_AWS_117:The scaler calls only public AWS APIs; a VPC would add a NAT dependency to the one component that must keep scaling.
  #checkov:skip=CKV_AWS_272:Code signing needs a signing profile the organisation owns; the zip is built by scripts/build-lambda from the reviewed source.
  #checkov:skip=CKV_AWS_115:Reserved concurrency is refused on young accounts (the unreserved pool must keep its minimum); the tick lease in the jobs table keeps ticks from overlapping instead.
  #checkov:skip=CKV_AWS_116:A failed tick is superseded by the next one (at most a minute later); a dead-letter queue would only collect stale ticks. Retries are off (below).
  function_name    = local.function_name
  role             = aws_iam_role.this.arn
  filename         = var.lambda_zip_path
  source_code_hash = filebase64sha256(var.lambda_zip_path)
  handler          = "bootstrap"
  runtime          = "provided.al2023"
  architectures    = ["x86_64"]
  memory_size      = var.memory_mb
  timeout          = local.timeout_secs
  kms_key_arn      = var.kms_key_arn

  environment {
    variables = { for k, v in local.environment : k => tostring(v) }
  }

  tracing_config {
    mode = "Active"
  }

  logging_config {
    log_format = "Text" # The binary already writes one JSON object per line.
    log_group  = aws_cloudwatch_log_group.this.name
  }

  depends_on = [aws_iam_role_policy.this]
}

# The tick chain's queue: one small message per slot, delayed to the slot's start.
resource "aws_sqs_queue" "ticks" {
  name                       = local.tick_queue_name
  message_retention_seconds  = 3600
  visibility_timeout_seconds = local.timeout_secs * 6 # AWS: at least six times the function timeout
  kms_master_key_id          = var.kms_key_arn
}

# One message an invocation; two at most at once (the lease serialises them anyway; a second
# poller keeps the chain moving while the first is busy with a lifecycle tick).
resource "aws_lambda_event_source_mapping" "ticks" {
  event_source_arn = aws_sqs_queue.ticks.arn
  function_name    = aws_lambda_function.this.arn
  batch_size       = 1
  enabled          = var.enabled

  scaling_config {
    maximum_concurrency = 2
  }
}

# A late tick is worthless: the next one comes within a minute.
resource "aws_lambda_function_event_invoke_config" "this" {
  function_name                = aws_lambda_function.this.function_name
  maximum_retry_attempts       = 0
  maximum_event_age_in_seconds = 60
}

# ---------------------------------------------------------------------------------------------
# Triggers

resource "aws_cloudwatch_event_rule" "tick" {
  name                = "${local.function_name}-tick"
  description         = "renderfleet ${var.environment}: restarts the scaler's tick chain (each tick schedules the next RENDERFLEET_TICK_SECS later)"
  schedule_expression = "rate(1 minute)"
  state               = var.enabled ? "ENABLED" : "DISABLED"
}

resource "aws_cloudwatch_event_target" "tick" {
  rule = aws_cloudwatch_event_rule.tick.name
  arn  = aws_lambda_function.this.arn

  retry_policy {
    maximum_retry_attempts       = 0
    maximum_event_age_in_seconds = 60
  }
}

resource "aws_cloudwatch_event_rule" "lifecycle" {
  name        = "${local.function_name}-lifecycle"
  description = "renderfleet ${var.environment}: a worker launching or terminating re-plans the fleet at once"
  state       = var.enabled ? "ENABLED" : "DISABLED"

  # lambdas/scaler/src/event.rs: source aws.autoscaling, detail-type ending in "Lifecycle Action".
  event_pattern = jsonencode({
    source      = ["aws.autoscaling"]
    detail-type = ["EC2 Instance-launch Lifecycle Action", "EC2 Instance-terminate Lifecycle Action"]
    detail      = { AutoScalingGroupName = [local.asg_name] }
  })
}

resource "aws_cloudwatch_event_target" "lifecycle" {
  rule = aws_cloudwatch_event_rule.lifecycle.name
  arn  = aws_lambda_function.this.arn

  retry_policy {
    maximum_retry_attempts       = 2
    maximum_event_age_in_seconds = 120
  }
}

resource "aws_lambda_permission" "events" {
  for_each      = { tick = aws_cloudwatch_event_rule.tick.arn, lifecycle = aws_cloudwatch_event_rule.lifecycle.arn }
  statement_id  = "AllowEventBridge-${each.key}"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this.function_name
  principal     = "events.amazonaws.com"
  source_arn    = each.value
}
