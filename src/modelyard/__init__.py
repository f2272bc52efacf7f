"""modelyard: a self-hosted OCI registry for versioning AI model containers and artifacts."""

__version__ = "0.1.0"
