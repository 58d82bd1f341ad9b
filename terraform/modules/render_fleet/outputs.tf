output "asg_name" {
  description = "renderfleet-{env}-workers"
  value       = aws_autoscaling_group.workers.name
}

output "asg_arn" {
  description = "ARN of the group."
  value       = aws_autoscaling_group.workers.arn
}

output "min_workers" {
  description = "The group's min_size."
  value       = aws_autoscaling_group.workers.min_size
}

output "max_workers" {
  description = "The group's max_size."
  value       = aws_autoscaling_group.workers.max_size
}

output "launch_hook_name" {
  description = "The launch lifecycle hook."
  value       = local.launch_hook
}

output "termination_hook_name" {
  description = "The termination lifecycle hook the agent completes after draining."
  value       = local.termination_hook
}

output "launch_template_id" {
  description = "The workers' launch template."
  value       = aws_launch_template.worker.id
}

output "instance_role_arn" {
  description = "The workers' role (the agent's AWS identity)."
  value       = aws_iam_role.worker.arn
}
