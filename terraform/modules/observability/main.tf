# One dashboard an operator reads at a glance, and the alarms that page. renderfleet's own metrics
# are in the RenderFleet namespace with an Environment dimension (core/src/names.rs); the scaler
# publishes the queue, wait, backlog and fleet numbers every tick (lambdas/scaler/src/tick.rs), the
# agents publish per-job numbers (render-agent/src/worker.rs). The contract test checks every
# metric named here against those sources.

locals {
  namespace     = "RenderFleet"
  env_dimension = "Environment"
  name          = "renderfleet-${var.environment}"
  period        = 60

  # [namespace, metric, dimension, value, options]: one line of a dashboard graph.
  rf = {
    queue_visible = [local.namespace, "QueueVisible", local.env_dimension, var.environment, { stat = "Maximum", label = "queued (visible)" }]
    in_flight     = [local.namespace, "InFlight", local.env_dimension, var.environment, { stat = "Maximum", label = "in flight" }]
    oldest_wait   = [local.namespace, "OldestWaitSeconds", local.env_dimension, var.environment, { stat = "Maximum", label = "oldest wait (s)" }]
    backlog       = [local.namespace, "BacklogSeconds", local.env_dimension, var.environment, { stat = "Maximum", label = "backlog (render s)", yAxis = "right" }]
    desired       = [local.namespace, "DesiredCapacity", local.env_dimension, var.environment, { stat = "Maximum", label = "desired" }]
    in_service    = [local.namespace, "InServiceWorkers", local.env_dimension, var.environment, { stat = "Maximum", label = "in service" }]
    booting       = [local.namespace, "BootingWorkers", local.env_dimension, var.environment, { stat = "Maximum", label = "booting" }]
    busy          = [local.namespace, "BusyWorkers", local.env_dimension, var.environment, { stat = "Maximum", label = "busy" }]
    boot_secs     = [local.namespace, "BootSeconds", local.env_dimension, var.environment, { stat = "Average", label = "boot time (s)" }]
    succeeded     = [local.namespace, "JobsSucceeded", local.env_dimension, var.environment, { stat = "Sum", label = "succeeded" }]
    failed        = [local.namespace, "JobsFailed", local.env_dimension, var.environment, { stat = "Sum", label = "failed" }]
    render_p50    = [local.namespace, "RenderSeconds", local.env_dimension, var.environment, { stat = "p50", label = "render p50 (s)" }]
    render_p90    = [local.namespace, "RenderSeconds", local.env_dimension, var.environment, { stat = "p90", label = "render p90 (s)" }]
    wait_p90      = [local.namespace, "WaitSeconds", local.env_dimension, var.environment, { stat = "p90", label = "wait p90 (s)" }]
    realtime      = [local.namespace, "RealtimeFactor", local.env_dimension, var.environment, { stat = "Average", label = "render s per output s", yAxis = "right" }]
  }

  # ScalingDecision carries a Reason dimension (scale_out, hold, scale_in, to_zero, bounds).
  decisions_search = "SEARCH('{${local.namespace},${local.env_dimension},Reason} MetricName=\"ScalingDecision\" ${local.env_dimension}=\"${var.environment}\"', 'Sum', ${local.period})"

  graph = { view = "timeSeries", region = var.region, period = local.period, stacked = false }
}

# ---------------------------------------------------------------------------------------------
# Alarms and where they go

resource "aws_sns_topic" "alarms" {
  name              = "${local.name}-alarms"
  kms_master_key_id = var.kms_key_arn
}

resource "aws_sns_topic_subscription" "email" {
  for_each  = toset(var.alarm_emails)
  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = each.value
}

resource "aws_cloudwatch_metric_alarm" "dlq_not_empty" {
  alarm_name          = "${local.name}-dlq-not-empty"
  alarm_description   = "A job exhausted its deliveries and its message is in ${var.dlq_name}: read the job's error, then redrive or delete the message."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = var.dlq_name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

resource "aws_cloudwatch_metric_alarm" "oldest_wait_over_slo" {
  alarm_name          = "${local.name}-oldest-wait-over-slo"
  alarm_description   = "The oldest waiting job has waited longer than the ${var.target_wait_secs} s SLO for ${var.slo_breach_minutes} minutes: the fleet is at max_workers, workers fail to boot, or the scaler is stuck."
  namespace           = local.namespace
  metric_name         = "OldestWaitSeconds"
  dimensions          = { (local.env_dimension) = var.environment }
  statistic           = "Maximum"
  period              = local.period
  evaluation_periods  = var.slo_breach_minutes
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.target_wait_secs
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

resource "aws_cloudwatch_metric_alarm" "scaler_errors" {
  alarm_name          = "${local.name}-scaler-errors"
  alarm_description   = "The scaler Lambda failed invocations (its log group has the error): the fleet is not being sized."
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = var.scaler_function_name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

# Every tick publishes DesiredCapacity; none for three minutes means no tick ran (schedule
# disabled, function throttled or failing before it publishes).
resource "aws_cloudwatch_metric_alarm" "scaler_missing_ticks" {
  alarm_name          = "${local.name}-scaler-missing-ticks"
  alarm_description   = "No scaler tick published metrics for 3 minutes: check the EventBridge schedule and the scaler's logs."
  namespace           = local.namespace
  metric_name         = "DesiredCapacity"
  dimensions          = { (local.env_dimension) = var.environment }
  statistic           = "SampleCount"
  period              = local.period
  evaluation_periods  = 3
  comparison_operator = "LessThanThreshold"
  threshold           = 1
  treat_missing_data  = "breaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

# BootingWorkers counts instances that have not (or no longer) reported a fresh heartbeat. Some
# are normal while a worker boots; never falling to zero for this long means agents are silent:
# stale heartbeats, a crashing agent, or workers that cannot reach SSM.
resource "aws_cloudwatch_metric_alarm" "agents_not_reporting" {
  alarm_name          = "${local.name}-agents-not-reporting"
  alarm_description   = "Workers without a fresh agent heartbeat for ${var.agents_silent_minutes} minutes: check /var/log/renderfleet-bootstrap.log and journalctl -u renderfleet-agent on one (the scaler replaces silent workers after RENDERFLEET_BOOT_TIMEOUT_SECS)."
  namespace           = local.namespace
  metric_name         = "BootingWorkers"
  dimensions          = { (local.env_dimension) = var.environment }
  statistic           = "Minimum"
  period              = local.period
  evaluation_periods  = var.agents_silent_minutes
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

resource "aws_cloudwatch_metric_alarm" "job_server_5xx" {
  alarm_name          = "${local.name}-job-server-5xx"
  alarm_description   = "The API answered more than ${var.job_server_5xx_threshold} server errors in 5 minutes (from the tasks or from the load balancer itself)."
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.job_server_5xx_threshold
  evaluation_periods  = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]

  metric_query {
    id          = "errors"
    expression  = "FILL(target, 0) + FILL(elb, 0)"
    label       = "5xx"
    return_data = true
  }

  metric_query {
    id = "target"

    metric {
      namespace   = "AWS/ApplicationELB"
      metric_name = "HTTPCode_Target_5XX_Count"
      dimensions  = { LoadBalancer = var.alb_arn_suffix }
      stat        = "Sum"
      period      = 300
    }
  }

  metric_query {
    id = "elb"

    metric {
      namespace   = "AWS/ApplicationELB"
      metric_name = "HTTPCode_ELB_5XX_Count"
      dimensions  = { LoadBalancer = var.alb_arn_suffix }
      stat        = "Sum"
      period      = 300
    }
  }
}

# ---------------------------------------------------------------------------------------------
# Dashboard

resource "aws_cloudwatch_dashboard" "this" {
  dashboard_name = local.name
  dashboard_body = jsonencode({
    widgets = [
      {
        type = "alarm", x = 0, y = 0, width = 24, height = 3
        properties = {
          title  = "Alarms"
          alarms = [for a in [aws_cloudwatch_metric_alarm.oldest_wait_over_slo, aws_cloudwatch_metric_alarm.dlq_not_empty, aws_cloudwatch_metric_alarm.scaler_errors, aws_cloudwatch_metric_alarm.scaler_missing_ticks, aws_cloudwatch_metric_alarm.agents_not_reporting, aws_cloudwatch_metric_alarm.job_server_5xx] : a.arn]
        }
      },
      {
        type = "metric", x = 0, y = 3, width = 12, height = 6
        properties = merge(local.graph, {
          title   = "Oldest wait against the SLO"
          metrics = [local.rf.oldest_wait, local.rf.wait_p90]
          annotations = {
            horizontal = [{ label = "SLO (target wait)", value = var.target_wait_secs, color = "#d62728" }]
          }
          yAxis = { left = { min = 0 } }
        })
      },
      {
        type = "metric", x = 12, y = 3, width = 12, height = 6
        properties = merge(local.graph, {
          title   = "Queue depth and backlog"
          metrics = [local.rf.queue_visible, local.rf.in_flight, local.rf.backlog, ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", var.dlq_name, { stat = "Maximum", label = "dead letters" }]]
          yAxis   = { left = { min = 0 }, right = { min = 0 } }
        })
      },
      {
        type = "metric", x = 0, y = 9, width = 12, height = 6
        properties = merge(local.graph, {
          title   = "Workers: desired, in service, booting, busy"
          metrics = [local.rf.desired, local.rf.in_service, local.rf.booting, local.rf.busy]
          yAxis   = { left = { min = 0 } }
        })
      },
      {
        type = "metric", x = 12, y = 9, width = 12, height = 6
        properties = merge(local.graph, {
          title   = "Jobs succeeded and failed"
          metrics = [local.rf.succeeded, local.rf.failed]
          yAxis   = { left = { min = 0 } }
        })
      },
      {
        type = "metric", x = 0, y = 15, width = 12, height = 6
        properties = merge(local.graph, {
          title   = "Render time and boot time"
          metrics = [local.rf.render_p50, local.rf.render_p90, local.rf.boot_secs, local.rf.realtime]
          yAxis   = { left = { min = 0 }, right = { min = 0 } }
        })
      },
      {
        type = "metric", x = 12, y = 15, width = 12, height = 6
        properties = merge(local.graph, {
          title = "Scaler decisions (by reason) and errors"
          metrics = [
            [{ expression = local.decisions_search, id = "decisions", label = "" }],
            ["AWS/Lambda", "Errors", "FunctionName", var.scaler_function_name, { stat = "Sum", label = "scaler errors", yAxis = "right" }],
            ["AWS/Lambda", "Throttles", "FunctionName", var.scaler_function_name, { stat = "Sum", label = "scaler throttles", yAxis = "right" }],
          ]
          yAxis = { left = { min = 0 }, right = { min = 0 } }
        })
      },
      {
        type = "metric", x = 0, y = 21, width = 24, height = 6
        properties = merge(local.graph, {
          title = "Job server: requests, 5xx, latency"
          metrics = [
            ["AWS/ApplicationELB", "RequestCount", "LoadBalancer", var.alb_arn_suffix, { stat = "Sum", label = "requests" }],
            ["AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", "LoadBalancer", var.alb_arn_suffix, { stat = "Sum", label = "5xx (tasks)" }],
            ["AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count", "LoadBalancer", var.alb_arn_suffix, { stat = "Sum", label = "5xx (load balancer)" }],
            ["AWS/ApplicationELB", "TargetResponseTime", "LoadBalancer", var.alb_arn_suffix, { stat = "p90", label = "p90 latency (s)", yAxis = "right" }],
          ]
        })
      },
    ]
  })
}
