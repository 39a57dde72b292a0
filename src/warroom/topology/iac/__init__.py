"""Infrastructure code readers: Kubernetes, Compose, Terraform, CloudFormation."""
