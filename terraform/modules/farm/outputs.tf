output "api_url" {
  description = "Base URL of the job server (point your DNS name at api_dns_name)."
  value       = module.job_server.url
}

output "api_dns_name" {
  description = "DNS name of the job server's load balancer."
  value       = module.job_server.alb_dns_name
}

output "ecr_repository_url" {
  description = "Push the job-server image here."
  value       = module.job_server.ecr_repository_url
}

output "media_bucket" {
  description = "The media bucket; upload the render-agent binary to releases/render-agent/render-agent."
  value       = module.storage.bucket_name
}

output "jobs_table" {
  description = "The jobs table (renderctl keys create writes API keys here)."
  value       = module.storage.table_name
}

output "jobs_queue_url" {
  description = "The jobs queue."
  value       = module.queue.queue_url
}

output "workers_group" {
  description = "The render workers' Auto Scaling group."
  value       = module.render_fleet.asg_name
}

output "scaler_function" {
  description = "The scaler Lambda."
  value       = module.scaler.function_name
}

output "dashboard" {
  description = "The CloudWatch dashboard."
  value       = module.observability.dashboard_name
}

output "alarm_topic_arn" {
  description = "The alarm topic."
  value       = module.observability.alarm_topic_arn
}
