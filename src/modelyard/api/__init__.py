"""HTTP: routing, request parsing, response headers and error bodies -- nothing else."""
