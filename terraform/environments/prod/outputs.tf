# One object with everything the farm exports: `terraform output farm` shows it, and
# `terraform output -json farm | jq -r .api_url` reads one value.
output "farm" {
  description = "The farm module's outputs: api_url, api_dns_name, ecr_repository_url, media_bucket, jobs_table, jobs_queue_url, workers_group, scaler_function, dashboard, alarm_topic_arn."
  value       = module.farm
}
