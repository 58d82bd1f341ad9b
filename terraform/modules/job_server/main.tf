# The job server (job-server/) on ECS Fargate behind an ALB. Its settings are the variables
# job-server/src/config.rs reads; its task role may use the jobs table, send to the jobs queue,
# and sign links to the bucket's assets/ and outputs/ prefixes, nothing else.

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}

locals {
  name          = "renderfleet-${var.environment}-job-server"
  port          = 8080
  log_group     = "/renderfleet/${var.environment}/job-server"
  ecr_repo_name = "renderfleet-${var.environment}-job-server"

  # What job-server/src/config.rs reads (RENDERFLEET_LOG is read by main.rs).
  environment = {
    RENDERFLEET_ENV                  = var.environment
    RENDERFLEET_BUCKET               = var.bucket_name
    RENDERFLEET_LISTEN               = "0.0.0.0:${local.port}"
    RENDERFLEET_REQUEST_TIMEOUT_SECS = var.request_timeout_secs
    RENDERFLEET_DRAIN_SECS           = var.drain_secs
    RENDERFLEET_OUTPUT_URL_TTL_SECS  = var.output_url_ttl_secs
    RENDERFLEET_LOG                  = var.log_filter
  }
}

# ---------------------------------------------------------------------------------------------
# Image repository and logs

resource "aws_ecr_repository" "this" {
  name                 = local.ecr_repo_name
  image_tag_mutability = "IMMUTABLE"
  force_delete         = false

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = var.kms_key_arn
  }
}

resource "aws_ecr_lifecycle_policy" "this" {
  repository = aws_ecr_repository.this.name
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "Keep the last 30 images"
      selection    = { tagStatus = "any", countType = "imageCountMoreThan", countNumber = 30 }
      action       = { type = "expire" }
    }]
  })
}

resource "aws_cloudwatch_log_group" "this" {
  #checkov:skip=CKV_AWS_338:Retention is the log_retention_days variable; prod sets a year, dev keeps a month on purpose.
  name              = local.log_group
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

# ---------------------------------------------------------------------------------------------
# IAM: the execution role pulls the image and writes logs; the task role is the server's own.

data "aws_iam_policy_document" "ecs_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_iam_role" "execution" {
  name               = "${local.name}-execution"
  assume_role_policy = data.aws_iam_policy_document.ecs_assume.json
}

data "aws_iam_policy_document" "execution" {
  # GetAuthorizationToken has no resource-level permissions: AWS requires "*".
  statement {
    sid       = "EcrLoginRequiresStar"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  statement {
    sid       = "PullOwnImage"
    actions   = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
    resources = [aws_ecr_repository.this.arn]
  }

  statement {
    sid       = "WriteOwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this.arn}:*"]
  }

  statement {
    sid       = "DecryptImageLayers"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]
  }
}

resource "aws_iam_role_policy" "execution" {
  name   = "pull-image-write-logs"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

resource "aws_iam_role" "task" {
  name               = "${local.name}-task"
  assume_role_policy = data.aws_iam_policy_document.ecs_assume.json
}

# Exactly the calls core/src/aws makes for the job server: DynamoStore (ping, JobStore, ApiKeys,
# AssetStore, ActiveWork for the sweeper), SqsQueue (connect, send, send_batch, counters; the
# sweeper drains the dead-letter queue), S3Media (presign_get, presign_put, head).
data "aws_iam_policy_document" "task" {
  statement {
    sid       = "JobsTableReadiness"
    actions   = ["dynamodb:DescribeTable"]
    resources = [var.table_arn]
  }

  # Job, idempotency, key and asset items only: never the scaler's state or the agents' items.
  # The Null check keeps a request without a key (a Scan) from passing ForAllValues vacuously.
  statement {
    sid       = "JobsTable"
    actions   = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"]
    resources = [var.table_arn]

    condition {
      test     = "ForAllValues:StringLike"
      variable = "dynamodb:LeadingKeys"
      values   = ["JOB#*", "IDEM#*", "KEY#*", "ASSET#*"]
    }
    condition {
      test     = "Null"
      variable = "dynamodb:LeadingKeys"
      values   = ["false"]
    }
  }

  statement {
    sid       = "JobsTableIndexes"
    actions   = ["dynamodb:Query"]
    resources = ["${var.table_arn}/index/by-tenant", "${var.table_arn}/index/active"]
  }

  statement {
    sid       = "SendJobs"
    actions   = ["sqs:GetQueueUrl", "sqs:GetQueueAttributes", "sqs:SendMessage"]
    resources = [var.queue_arn]
  }

  # The sweeper settles dead letters: redriven to the jobs queue, or their job failed.
  statement {
    sid       = "DrainDeadLetters"
    actions   = ["sqs:GetQueueUrl", "sqs:ReceiveMessage", "sqs:DeleteMessage"]
    resources = [var.dlq_arn]
  }

  # Presigned links act with the signer's rights: GET of outputs, PUT of assets; HEAD of assets to
  # check an upload landed.
  statement {
    sid       = "ReadOutputsAndAssets"
    actions   = ["s3:GetObject"]
    resources = ["${var.bucket_arn}/outputs/*", "${var.bucket_arn}/assets/*"]
  }

  statement {
    sid       = "UploadAssets"
    actions   = ["s3:PutObject"]
    resources = ["${var.bucket_arn}/assets/*"]
  }

  # Without ListBucket a HEAD of a missing asset answers 403 instead of 404.
  statement {
    sid       = "ListAssetsSoMissingIs404"
    actions   = ["s3:ListBucket"]
    resources = [var.bucket_arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["assets/*"]
    }
  }

  statement {
    sid       = "UseEnvironmentKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.kms_key_arn]
  }
}

resource "aws_iam_role_policy" "task" {
  name   = "job-server"
  role   = aws_iam_role.task.id
  policy = data.aws_iam_policy_document.task.json
}

# ---------------------------------------------------------------------------------------------
# Load balancer

resource "aws_security_group" "alb" {
  name        = "${local.name}-alb"
  description = "renderfleet ${var.environment} job server load balancer"
  vpc_id      = var.vpc_id

  tags = { Name = "${local.name}-alb" }
}

resource "aws_vpc_security_group_ingress_rule" "alb" {
  #checkov:skip=CKV_AWS_260:Port 80 only answers with a redirect to HTTPS; clients typing http:// must reach it.
  for_each          = { for pair in setproduct([80, 443], var.ingress_cidrs) : "${pair[0]}-${pair[1]}" => pair }
  security_group_id = aws_security_group.alb.id
  description       = "API clients (port ${each.value[0]})"
  ip_protocol       = "tcp"
  from_port         = each.value[0]
  to_port           = each.value[0]
  cidr_ipv4         = each.value[1]
}

resource "aws_vpc_security_group_egress_rule" "alb_to_tasks" {
  security_group_id            = aws_security_group.alb.id
  description                  = "To the job server tasks"
  ip_protocol                  = "tcp"
  from_port                    = local.port
  to_port                      = local.port
  referenced_security_group_id = aws_security_group.task.id
}

resource "aws_lb" "this" {
  #checkov:skip=CKV2_AWS_28:A WAF web ACL is organisation-specific; pass waf_acl_arn to associate one (aws_wafv2_web_acl_association below).
  #checkov:skip=CKV2_AWS_76:Same as CKV2_AWS_28: the Log4j rule belongs to the WAF web ACL given in waf_acl_arn.
  #checkov:skip=CKV_AWS_150:Deletion protection is the deletion_protection variable: on in prod, off in dev so that an environment can be torn down.
  #checkov:skip=CKV_AWS_91:Access logs need an SSE-S3 bucket with the ELB log-delivery policy, owned by the organisation; set access_logs_bucket to enable them.
  name                       = "rf-${var.environment}-api"
  load_balancer_type         = "application"
  internal                   = var.internal
  security_groups            = [aws_security_group.alb.id]
  subnets                    = var.public_subnet_ids
  drop_invalid_header_fields = true
  enable_deletion_protection = var.deletion_protection
  idle_timeout               = 60

  dynamic "access_logs" {
    for_each = var.access_logs_bucket == null ? [] : [var.access_logs_bucket]
    content {
      bucket  = access_logs.value
      prefix  = "alb/${local.name}"
      enabled = true
    }
  }
}

resource "aws_wafv2_web_acl_association" "this" {
  count        = var.waf_acl_arn == null ? 0 : 1
  resource_arn = aws_lb.this.arn
  web_acl_arn  = var.waf_acl_arn
}

resource "aws_lb_target_group" "this" {
  name                 = "rf-${var.environment}-api"
  port                 = local.port
  protocol             = "HTTP"
  target_type          = "ip"
  vpc_id               = var.vpc_id
  deregistration_delay = var.drain_secs + 5

  health_check {
    path                = "/healthz"
    matcher             = "200"
    interval            = 15
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }
}

resource "aws_lb_listener" "https" {
  load_balancer_arn = aws_lb.this.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = var.certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.this.arn
  }
}

resource "aws_lb_listener" "http_redirect" {
  #checkov:skip=CKV_AWS_2:This listener only redirects to HTTPS; it serves nothing over HTTP.
  #checkov:skip=CKV_AWS_103:Same: a redirect-only HTTP listener has no TLS policy.
  load_balancer_arn = aws_lb.this.arn
  port              = 80
  protocol          = "HTTP"

  default_action {
    type = "redirect"

    redirect {
      port        = "443"
      protocol    = "HTTPS"
      status_code = "HTTP_301"
    }
  }
}

# ---------------------------------------------------------------------------------------------
# ECS

resource "aws_ecs_cluster" "this" {
  name = "renderfleet-${var.environment}"

  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

resource "aws_security_group" "task" {
  name        = "${local.name}-task"
  description = "renderfleet ${var.environment} job server tasks"
  vpc_id      = var.vpc_id

  tags = { Name = "${local.name}-task" }
}

resource "aws_vpc_security_group_ingress_rule" "task_from_alb" {
  security_group_id            = aws_security_group.task.id
  description                  = "From the load balancer"
  ip_protocol                  = "tcp"
  from_port                    = local.port
  to_port                      = local.port
  referenced_security_group_id = aws_security_group.alb.id
}

# The server speaks only to AWS APIs, over HTTPS.
resource "aws_vpc_security_group_egress_rule" "task_https" {
  security_group_id = aws_security_group.task.id
  description       = "AWS APIs over HTTPS"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_ecs_task_definition" "this" {
  family                   = local.name
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.cpu
  memory                   = var.memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  container_definitions = jsonencode([{
    name                   = "job-server"
    image                  = "${aws_ecr_repository.this.repository_url}:${var.image_tag}"
    essential              = true
    readonlyRootFilesystem = true
    user                   = "10001:10001"
    portMappings           = [{ containerPort = local.port, protocol = "tcp" }]
    environment = concat(
      [for k, v in local.environment : { name = k, value = tostring(v) }],
      [{ name = "AWS_REGION", value = data.aws_region.current.name }],
    )
    # SIGTERM, then RENDERFLEET_DRAIN_SECS of draining, then SIGKILL.
    stopTimeout = var.drain_secs + 10
    linuxParameters = {
      initProcessEnabled = true
      capabilities       = { drop = ["ALL"] }
    }
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.this.name
        awslogs-region        = data.aws_region.current.name
        awslogs-stream-prefix = "job-server"
      }
    }
  }])
}

resource "aws_ecs_service" "this" {
  name                               = "job-server"
  cluster                            = aws_ecs_cluster.this.id
  task_definition                    = aws_ecs_task_definition.this.arn
  desired_count                      = var.min_tasks
  launch_type                        = "FARGATE"
  platform_version                   = "LATEST"
  health_check_grace_period_seconds  = 30
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  propagate_tags                     = "SERVICE"

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.task.id]
    assign_public_ip = false
  }

  load_balancer {
    target_group_arn = aws_lb_target_group.this.arn
    container_name   = "job-server"
    container_port   = local.port
  }

  # Service autoscaling owns the task count after creation.
  lifecycle {
    ignore_changes = [desired_count]
  }

  depends_on = [aws_lb_listener.https]
}

resource "aws_appautoscaling_target" "this" {
  service_namespace  = "ecs"
  resource_id        = "service/${aws_ecs_cluster.this.name}/${aws_ecs_service.this.name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = var.min_tasks
  max_capacity       = var.max_tasks
}

resource "aws_appautoscaling_policy" "cpu" {
  name               = "${local.name}-cpu"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.this.service_namespace
  resource_id        = aws_appautoscaling_target.this.resource_id
  scalable_dimension = aws_appautoscaling_target.this.scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = var.cpu_target_percent
    scale_in_cooldown  = 120
    scale_out_cooldown = 30

    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
  }
}

resource "aws_appautoscaling_policy" "requests" {
  name               = "${local.name}-requests"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.this.service_namespace
  resource_id        = aws_appautoscaling_target.this.resource_id
  scalable_dimension = aws_appautoscaling_target.this.scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = var.requests_per_task_target
    scale_in_cooldown  = 120
    scale_out_cooldown = 30

    predefined_metric_specification {
      predefined_metric_type = "ALBRequestCountPerTarget"
      resource_label         = "${aws_lb.this.arn_suffix}/${aws_lb_target_group.this.arn_suffix}"
    }
  }
}
