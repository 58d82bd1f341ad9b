output "alarm_topic_arn" {
  description = "SNS topic every alarm notifies; subscribe a pager to it."
  value       = aws_sns_topic.alarms.arn
}

output "dashboard_name" {
  description = "renderfleet-{env}"
  value       = aws_cloudwatch_dashboard.this.dashboard_name
}

output "alarm_names" {
  description = "Names of the alarms."
  value = [
    aws_cloudwatch_metric_alarm.dlq_not_empty.alarm_name,
    aws_cloudwatch_metric_alarm.oldest_wait_over_slo.alarm_name,
    aws_cloudwatch_metric_alarm.scaler_errors.alarm_name,
    aws_cloudwatch_metric_alarm.scaler_missing_ticks.alarm_name,
    aws_cloudwatch_metric_alarm.agents_not_reporting.alarm_name,
    aws_cloudwatch_metric_alarm.job_server_5xx.alarm_name,
  ]
}
