"""Deployment tooling: per-function packages, template checks and the post-deploy smoke test."""


class BuildError(Exception):
    """A package cannot be built as asked (deploy/build.py, deploy/vendor.py); the message says
    what to fix."""
