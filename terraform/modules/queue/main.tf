# The jobs queue and its dead-letter queue. A message is a pointer to a job (core/src/message.rs);
# the agent extends its visibility every third of the timeout while rendering, so the timeout here
# must be the one the agent is told (RENDERFLEET_VISIBILITY_SECS, set from the same variable by
# modules/farm). The agent fails a job for good after core::message::MAX_ATTEMPTS attempts
# (counted by the job, not by SQS); the DLQ takes only messages received more often than that
# without being settled (receives that were not attempts), and the job server's sweeper settles
# them.

locals {
  queue_name = "renderfleet-${var.environment}-jobs"
  dlq_name   = "renderfleet-${var.environment}-jobs-dlq"

  # Must equal core::message::MAX_RECEIVE_COUNT (twice the attempts, so a throttled or handed-back
  # receive never costs a job its attempts). Not a variable: the agent has no setting for it.
  max_receive_count = 10
}

resource "aws_sqs_queue" "dlq" {
  name                              = local.dlq_name
  message_retention_seconds         = 1209600 # 14 days, the most SQS keeps: time to investigate.
  kms_master_key_id                 = var.kms_key_arn
  kms_data_key_reuse_period_seconds = 300
}

resource "aws_sqs_queue" "jobs" {
  name                              = local.queue_name
  visibility_timeout_seconds        = var.visibility_timeout_secs
  message_retention_seconds         = var.message_retention_secs
  receive_wait_time_seconds         = 0 # The agent asks for its own long-poll wait.
  kms_master_key_id                 = var.kms_key_arn
  kms_data_key_reuse_period_seconds = 300

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dlq.arn
    maxReceiveCount     = local.max_receive_count
  })
}

resource "aws_sqs_queue_redrive_allow_policy" "dlq" {
  queue_url = aws_sqs_queue.dlq.id

  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.jobs.arn]
  })
}

data "aws_iam_policy_document" "tls_only" {
  for_each = {
    jobs = aws_sqs_queue.jobs.arn
    dlq  = aws_sqs_queue.dlq.arn
  }

  statement {
    sid       = "DenyWithoutTls"
    effect    = "Deny"
    actions   = ["sqs:*"]
    resources = [each.value]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_sqs_queue_policy" "tls_only" {
  for_each  = { jobs = aws_sqs_queue.jobs.id, dlq = aws_sqs_queue.dlq.id }
  queue_url = each.value
  policy    = data.aws_iam_policy_document.tls_only[each.key].json
}
