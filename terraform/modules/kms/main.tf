# One customer-managed key per environment encrypts the queue, the table, the bucket, the log
# groups, the alarm topic, the image repository and the scaler's environment. Each role is granted
# this key alone, next to the resources it uses.

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  account   = data.aws_caller_identity.current.account_id
  region    = data.aws_region.current.name
  partition = data.aws_partition.current.partition
}

data "aws_iam_policy_document" "key" {
  #checkov:skip=CKV_AWS_111:This is a key policy: "*" as resource means this key alone, and write access is limited to the account root (administration through IAM) and to conditioned service principals.
  #checkov:skip=CKV_AWS_356:Key policy: the resource "*" is this key; a key policy cannot name the key ARN before the key exists.
  #checkov:skip=CKV_AWS_109:Key policy: kms:* for the account root is what lets IAM policies grant the key at all (the AWS default key policy); it is not a grant to anyone else.
  # The account administers the key through IAM; without this statement no IAM policy could grant it.
  statement {
    sid       = "AccountAdministersTheKeyThroughIam"
    actions   = ["kms:*"]
    resources = ["*"] # In a key policy "*" means this key.

    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account}:root"]
    }
  }

  # CloudWatch Logs encrypts this environment's log groups, and no others.
  statement {
    sid       = "CloudWatchLogsEncryptsThisEnvironmentsLogGroups"
    actions   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["logs.${local.region}.amazonaws.com"]
    }

    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values = [
        "arn:${local.partition}:logs:${local.region}:${local.account}:log-group:/renderfleet/${var.environment}/*",
        "arn:${local.partition}:logs:${local.region}:${local.account}:log-group:/aws/lambda/renderfleet-${var.environment}-*",
      ]
    }
  }

  # CloudWatch alarms publish to the encrypted alarm topic.
  statement {
    sid       = "CloudWatchAlarmsPublishToTheEncryptedTopic"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey*"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account]
    }
  }
}

resource "aws_kms_key" "this" {
  description             = "renderfleet ${var.environment}: queue, table, bucket, logs, alarms"
  enable_key_rotation     = true
  deletion_window_in_days = var.deletion_window_days
  policy                  = data.aws_iam_policy_document.key.json
}

resource "aws_kms_alias" "this" {
  name          = "alias/renderfleet-${var.environment}"
  target_key_id = aws_kms_key.this.key_id
}
