output "url" {
  description = "Base URL of the API (point a DNS name with the certificate's host at alb_dns_name)."
  value       = "https://${aws_lb.this.dns_name}"
}

output "alb_dns_name" {
  description = "DNS name of the load balancer."
  value       = aws_lb.this.dns_name
}

output "alb_arn_suffix" {
  description = "The load balancer's CloudWatch dimension value (LoadBalancer)."
  value       = aws_lb.this.arn_suffix
}

output "target_group_arn_suffix" {
  description = "The target group's CloudWatch dimension value (TargetGroup)."
  value       = aws_lb_target_group.this.arn_suffix
}

output "ecr_repository_url" {
  description = "Where to push the job-server image."
  value       = aws_ecr_repository.this.repository_url
}

output "cluster_name" {
  description = "ECS cluster name."
  value       = aws_ecs_cluster.this.name
}

output "service_name" {
  description = "ECS service name."
  value       = aws_ecs_service.this.name
}

output "log_group_name" {
  description = "The job server's log group."
  value       = aws_cloudwatch_log_group.this.name
}

output "task_role_arn" {
  description = "The task role (the server's AWS identity)."
  value       = aws_iam_role.task.arn
}
