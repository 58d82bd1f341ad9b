output "vpc_id" {
  description = "The VPC everything runs in."
  value       = local.create ? aws_vpc.this[0].id : var.vpc_id
}

output "public_subnet_ids" {
  description = "Subnets for the load balancer."
  value       = local.create ? aws_subnet.public[*].id : var.public_subnet_ids
}

output "private_subnet_ids" {
  description = "Subnets for the job server's tasks and the workers."
  value       = local.create ? aws_subnet.private[*].id : var.private_subnet_ids
}
