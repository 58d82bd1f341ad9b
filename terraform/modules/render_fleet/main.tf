# The workers: a launch template that installs and starts the render agent, and the Auto Scaling
# group the scaler sizes. The scaler owns desired_capacity; busy agents protect their own instance
# from scale-in; the termination hook gives a draining agent time to finish.

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

data "aws_ssm_parameter" "ami" {
  count = var.ami_id == null ? 1 : 0
  name  = var.ami_ssm_parameter
}

locals {
  account   = data.aws_caller_identity.current.account_id
  region    = data.aws_region.current.name
  partition = data.aws_partition.current.partition

  asg_name         = "renderfleet-${var.environment}-workers"
  ssm_prefix       = "/renderfleet/${var.environment}"
  launch_hook      = "renderfleet-${var.environment}-launch"
  termination_hook = "renderfleet-${var.environment}-terminate"
  role_name        = "renderfleet-${var.environment}-worker"
  ami_id           = var.ami_id == null ? data.aws_ssm_parameter.ami[0].value : var.ami_id

  # The group's ARN by name, so the instance role need not wait for the group to exist.
  asg_arn = "arn:${local.partition}:autoscaling:${local.region}:${local.account}:autoScalingGroup:*:autoScalingGroupName/${local.asg_name}"

  # What render-agent/src/config.rs reads, besides RENDERFLEET_ENV and RENDERFLEET_WORK_DIR that
  # install.sh writes itself.
  agent_environment = {
    RENDERFLEET_SLOTS            = var.slots_per_worker
    RENDERFLEET_VISIBILITY_SECS  = var.visibility_timeout_secs
    RENDERFLEET_HEARTBEAT_SECS   = var.heartbeat_secs
    RENDERFLEET_DRAIN_GRACE_SECS = var.drain_grace_secs
    RENDERFLEET_TERMINATION_HOOK = local.termination_hook
    RENDERFLEET_LAUNCH_HOOK      = local.launch_hook
    RENDERFLEET_LOG              = var.log_filter
    RENDERFLEET_BUCKET           = var.bucket_name
    # The first health state after boot lands within this spread, so a fleet launched at once
    # stays under Parameter Store's write rate (docs/AWS.md).
    RENDERFLEET_STATUS_SPREAD_SECS = max(60, var.max_workers)
    AWS_REGION                     = local.region
  }
  agent_env_args = join(" ", [for k, v in local.agent_environment : "'${k}=${v}'"])

  user_data = templatefile("${path.module}/user_data.sh.tftpl", {
    install_sh_b64 = filebase64("${path.module}/../../../render-agent/deploy/install.sh")
    unit_b64       = filebase64("${path.module}/../../../render-agent/deploy/renderfleet-agent.service")
    environment    = var.environment
    region         = local.region
    bucket         = var.bucket_name
    artifact_key   = var.agent_artifact_key
    role_name      = local.role_name
    agent_env_args = local.agent_env_args
  })

  spot = var.spot != null

  # The jobs table's items the agent may read or write, by leading key, and nothing else in it.
  table_items = {
    # JobLedger (claim, heartbeat, finish, release: conditional updates; get after a lost claim)
    # and AssetStore::get_asset.
    OwnJobsAndAssets = { actions = ["dynamodb:GetItem", "dynamodb:UpdateItem"], test = "ForAllValues:StringLike", keys = ["JOB#*", "ASSET#*"] }
    # HealthReporter and WorkGate: its liveness item under AGENTS (heartbeat, engage, withdraw).
    OwnLiveness = { actions = ["dynamodb:UpdateItem", "dynamodb:DeleteItem"], test = "ForAllValues:StringEquals", keys = ["AGENTS"] }
  }
}

# ---------------------------------------------------------------------------------------------
# Instance role: exactly what core/src/aws does for the agent.

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "worker" {
  name               = local.role_name
  assume_role_policy = data.aws_iam_policy_document.assume.json
}

data "aws_iam_policy_document" "worker" {
  #checkov:skip=CKV_AWS_111:The SSM agent's ssmmessages and ec2messages calls have no resource-level permissions: AWS requires "*" for them .
  #checkov:skip=CKV_AWS_356:Same statements: those actions cannot be restricted to a resource; everything restrictable is.
  # SqsQueue: connect, receive, delete, set_visibility, and send (a message received many times
  # without an attempt is replaced by a fresh copy before SQS would dead-letter it).
  statement {
    sid       = "TakeJobs"
    actions   = ["sqs:GetQueueUrl", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:SendMessage"]
    resources = [var.queue_arn]
  }

  # The table's items by leading key (local.table_items), each condition paired with a Null
  # check: a request without a key (a Scan) would otherwise pass ForAllValues vacuously.
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

  # A missing asset must read as 404, not 403: S3 says which only to a caller that may list.
  statement {
    sid       = "ListAssets"
    actions   = ["s3:ListBucket"]
    resources = [var.bucket_arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["assets/*"]
    }
  }

  statement {
    sid       = "ReadAssetsAndTheAgentRelease"
    actions   = ["s3:GetObject"]
    resources = ["${var.bucket_arn}/assets/*", "${var.bucket_arn}/${var.agent_artifact_key}"]
  }

  statement {
    sid       = "WriteOutputs"
    actions   = ["s3:PutObject", "s3:AbortMultipartUpload"]
    resources = ["${var.bucket_arn}/outputs/*"]
  }

  # StatusBoard: its health state, written only when it changes.
  statement {
    sid       = "HealthState"
    actions   = ["ssm:PutParameter"]
    resources = ["arn:${local.partition}:ssm:${local.region}:${local.account}:parameter${local.ssm_prefix}/agents/*"]
  }

  # The lifecycle hooks (launch, termination), on its own group only.
  statement {
    sid       = "OwnGroup"
    actions   = ["autoscaling:CompleteLifecycleAction"]
    resources = [local.asg_arn]
  }

  # The SSM agent, exactly what Run Command and Session Manager use (instead of the broader
  # AmazonSSMManagedInstanceCore): register, take commands, reply, open sessions.
  statement {
    sid       = "SsmAgentRegisters"
    actions   = ["ssm:UpdateInstanceInformation"]
    resources = ["arn:${local.partition}:ec2:${local.region}:${local.account}:instance/*"]
  }

  statement {
    sid       = "SsmAgentSessions"
    actions   = ["ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel", "ssmmessages:OpenControlChannel", "ssmmessages:OpenDataChannel"]
    resources = ["*"]
  }

  statement {
    sid       = "SsmAgentCommands"
    actions   = ["ec2messages:AcknowledgeMessage", "ec2messages:DeleteMessage", "ec2messages:FailMessage", "ec2messages:GetEndpoint", "ec2messages:GetMessages", "ec2messages:SendReply"]
    resources = ["*"]
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

  statement {
    sid       = "UseEnvironmentKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.kms_key_arn]
  }
}

resource "aws_iam_role_policy" "worker" {
  name   = "render-agent"
  role   = aws_iam_role.worker.id
  policy = data.aws_iam_policy_document.worker.json
}

resource "aws_iam_instance_profile" "worker" {
  name = local.role_name
  role = aws_iam_role.worker.name
}

# ---------------------------------------------------------------------------------------------
# Network: nothing comes in; out go HTTPS (AWS APIs) and HTTP (Debian mirrors for ffmpeg).

resource "aws_security_group" "worker" {
  name        = "${local.role_name}s"
  description = "renderfleet ${var.environment} render workers: no inbound"
  vpc_id      = var.vpc_id

  tags = { Name = "${local.role_name}s" }
}

resource "aws_vpc_security_group_egress_rule" "worker" {
  for_each          = toset(["80", "443"])
  security_group_id = aws_security_group.worker.id
  description       = each.key == "443" ? "AWS APIs and the agent binary over HTTPS" : "Debian package mirrors"
  ip_protocol       = "tcp"
  from_port         = tonumber(each.key)
  to_port           = tonumber(each.key)
  cidr_ipv4         = "0.0.0.0/0"
}

# ---------------------------------------------------------------------------------------------
# Launch template and group

resource "aws_launch_template" "worker" {
  name     = local.role_name
  image_id = local.ami_id
  # Set only for a warm pool (one type, no mixed instances policy); otherwise the overrides pick.
  instance_type          = var.warm_pool == null ? null : var.instance_types[0]
  update_default_version = true
  user_data              = base64encode(local.user_data)
  ebs_optimized          = true

  iam_instance_profile {
    arn = aws_iam_instance_profile.worker.arn
  }

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required" # IMDSv2 only
    http_put_response_hop_limit = 1
    instance_metadata_tags      = "disabled"
  }

  monitoring {
    enabled = true
  }

  network_interfaces {
    associate_public_ip_address = false
    security_groups             = [aws_security_group.worker.id]
    delete_on_termination       = true
  }

  block_device_mappings {
    device_name = var.root_device_name

    ebs {
      volume_size           = var.root_volume_gb
      volume_type           = "gp3"
      encrypted             = true
      delete_on_termination = true
    }
  }

  tag_specifications {
    resource_type = "instance"
    tags          = { Name = "${local.role_name}" }
  }

  tag_specifications {
    resource_type = "volume"
    tags          = { Name = "${local.role_name}" }
  }
}

resource "aws_autoscaling_group" "workers" {
  name                = local.asg_name
  min_size            = var.min_workers
  max_size            = var.max_workers
  vpc_zone_identifier = var.private_subnet_ids
  health_check_type   = "EC2"
  capacity_rebalance  = local.spot
  # The scaler picks which idle worker goes; AZ rebalancing would pick for it.
  suspended_processes = ["AZRebalance"]
  # New instances are protected from scale-in: the group never picks a victim itself (it would
  # not know which workers are busy), and agents need no per-job SetInstanceProtection calls,
  # which share Auto Scaling's one API rate across the fleet. The scaler retires idle workers by
  # name through the agents' work gate (TerminateInstanceInAutoScalingGroup ignores protection).
  protect_from_scale_in = true
  # Terraform must not wait for workers: they enter service only once their agent's self-check
  # completes the launch hook, and how many run is the scaler's decision.
  wait_for_capacity_timeout = "0"
  enabled_metrics           = ["GroupDesiredCapacity", "GroupInServiceInstances", "GroupPendingInstances", "GroupTerminatingInstances", "GroupTotalInstances"]

  # AWS refuses a warm pool on a group with a mixed instances policy (or spot): with a warm pool
  # the group launches the template's one instance type on demand; without one it mixes the
  # types and, when asked, spot. The variables' validation refuses asking for both.
  dynamic "launch_template" {
    for_each = var.warm_pool == null ? [] : [1]
    content {
      id      = aws_launch_template.worker.id
      version = "$Latest"
    }
  }

  dynamic "mixed_instances_policy" {
    for_each = var.warm_pool == null ? [1] : []
    content {
      instances_distribution {
        on_demand_base_capacity                  = local.spot ? var.spot.on_demand_base_capacity : 0
        on_demand_percentage_above_base_capacity = local.spot ? var.spot.on_demand_percentage_above_base : 100
        spot_allocation_strategy                 = "price-capacity-optimized"
      }

      launch_template {
        launch_template_specification {
          launch_template_id = aws_launch_template.worker.id
          version            = "$Latest"
        }

        dynamic "override" {
          for_each = var.instance_types
          content {
            instance_type = override.value
          }
        }
      }
    }
  }

  dynamic "warm_pool" {
    for_each = var.warm_pool == null ? [] : [var.warm_pool]
    content {
      pool_state                  = "Stopped"
      min_size                    = warm_pool.value.min_size
      max_group_prepared_capacity = warm_pool.value.max_prepared

      instance_reuse_policy {
        reuse_on_scale_in = false
      }
    }
  }

  # The agent completes the launch hook (RENDERFLEET_LAUNCH_HOOK) once its self-check passes, so
  # a worker enters service only when it can render; one that never gets there is abandoned and
  # replaced. Its event also makes the scaler start the agent and re-plan. A warm-pool instance
  # being prepared runs the same self-check and completes the hook before it parks, so the hook
  # abandons on timeout with or without a warm pool.
  initial_lifecycle_hook {
    name                 = local.launch_hook
    lifecycle_transition = "autoscaling:EC2_INSTANCE_LAUNCHING"
    heartbeat_timeout    = var.launch_hook_timeout_secs
    default_result       = "ABANDON"
  }

  # The agent completes this hook once it has drained (RENDERFLEET_TERMINATION_HOOK).
  initial_lifecycle_hook {
    name                 = local.termination_hook
    lifecycle_transition = "autoscaling:EC2_INSTANCE_TERMINATING"
    heartbeat_timeout    = var.termination_hook_timeout_secs
    default_result       = "CONTINUE"
  }

  tag {
    key                 = "Name"
    value               = local.role_name
    propagate_at_launch = true
  }

  tag {
    key                 = "renderfleet:environment"
    value               = var.environment
    propagate_at_launch = true
  }

  lifecycle {
    # The scaler owns the desired capacity.
    ignore_changes = [desired_capacity]
  }
}
