"""What outlives a task: the stack's volumes (EFS on AWS)."""
