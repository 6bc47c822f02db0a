"""Deployment tooling: per-function packages, template checks and the post-deploy smoke test."""
