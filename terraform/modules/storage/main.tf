# The media bucket (assets/{tenant}/..., outputs/{tenant}/{job}/..., releases/ for the agent
# binary) and the jobs table (core/src/aws/dynamo.rs: pk/sk, the by-tenant and active indexes,
# TTL on expires_at_s).

data "aws_caller_identity" "current" {}

locals {
  # S3 bucket names are global across all accounts: the default carries the account id, so a
  # second adopter's apply does not collide with the first. The binaries get it as
  # RENDERFLEET_BUCKET.
  default_bucket_name = "renderfleet-${var.environment}-media-${data.aws_caller_identity.current.account_id}"
  bucket_name         = coalesce(var.bucket_name, local.default_bucket_name)
  table_name          = "renderfleet-${var.environment}-jobs"

  # core::names::ACTIVE_INDEX_ATTRIBUTES: what the scaler and the sweeper read from the index.
  active_index_attributes = ["id", "state", "created_at", "started_at", "est_work", "instance_id", "enqueued", "enqueued_at", "lease_until", "attempts", "priority"]
}

resource "aws_s3_bucket" "media" {
  #checkov:skip=CKV_AWS_144:Cross-region replication of renders is a business-continuity choice, not a default; outputs can be re-rendered from their jobs.
  #checkov:skip=CKV2_AWS_62:Nothing consumes object events: the agent reports completion through the jobs table.
  #checkov:skip=CKV_AWS_18:Server access logs go to a separate bucket the organisation owns; set access_log_bucket to enable them (see aws_s3_bucket_logging below).
  bucket        = local.bucket_name
  force_destroy = var.force_destroy
}

resource "aws_s3_bucket_logging" "media" {
  count         = var.access_log_bucket == null ? 0 : 1
  bucket        = aws_s3_bucket.media.id
  target_bucket = var.access_log_bucket
  target_prefix = "s3/${local.bucket_name}/"
}

resource "aws_s3_bucket_public_access_block" "media" {
  bucket                  = aws_s3_bucket.media.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "media" {
  bucket = aws_s3_bucket.media.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "media" {
  bucket = aws_s3_bucket.media.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = var.kms_key_arn
    }
    bucket_key_enabled = true
  }
}

# Versioning protects agent releases and assets from an accidental overwrite; the lifecycle below
# expires noncurrent versions so repeated renders of a job do not pile up.
resource "aws_s3_bucket_versioning" "media" {
  bucket = aws_s3_bucket.media.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "media" {
  bucket     = aws_s3_bucket.media.id
  depends_on = [aws_s3_bucket_versioning.media]

  rule {
    id     = "expire-outputs"
    status = "Enabled"

    filter {
      prefix = "outputs/"
    }

    expiration {
      days = var.output_expiry_days
    }

    noncurrent_version_expiration {
      noncurrent_days = 1
    }
  }

  rule {
    id     = "expire-assets"
    status = var.asset_expiry_days == null ? "Disabled" : "Enabled"

    filter {
      prefix = "assets/"
    }

    expiration {
      days = coalesce(var.asset_expiry_days, 3650)
    }

    noncurrent_version_expiration {
      noncurrent_days = 7
    }
  }

  rule {
    id     = "tidy"
    status = "Enabled"

    filter {}

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }

    noncurrent_version_expiration {
      noncurrent_days = 30
    }
  }
}

data "aws_iam_policy_document" "media" {
  statement {
    sid       = "DenyWithoutTls"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.media.arn, "${aws_s3_bucket.media.arn}/*"]

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

resource "aws_s3_bucket_policy" "media" {
  bucket     = aws_s3_bucket.media.id
  policy     = data.aws_iam_policy_document.media.json
  depends_on = [aws_s3_bucket_public_access_block.media]
}

resource "aws_dynamodb_table" "jobs" {
  name                        = local.table_name
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "pk"
  range_key                   = "sk"
  deletion_protection_enabled = var.deletion_protection

  attribute {
    name = "pk"
    type = "S"
  }

  attribute {
    name = "sk"
    type = "S"
  }

  attribute {
    name = "tenant_pk"
    type = "S"
  }

  attribute {
    name = "tenant_sk"
    type = "S"
  }

  attribute {
    name = "active_pk"
    type = "S"
  }

  attribute {
    name = "active_sk"
    type = "S"
  }

  # A tenant's jobs, newest first (GET /v1/jobs).
  global_secondary_index {
    name            = "by-tenant"
    hash_key        = "tenant_pk"
    range_key       = "tenant_sk"
    projection_type = "ALL"
  }

  # Sparse: only queued and running jobs carry its key (the scaler and the sweeper).
  global_secondary_index {
    name               = "active"
    hash_key           = "active_pk"
    range_key          = "active_sk"
    projection_type    = "INCLUDE"
    non_key_attributes = local.active_index_attributes
  }

  ttl {
    attribute_name = "expires_at_s"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = var.kms_key_arn
  }
}
