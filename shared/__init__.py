"""oss-direct-upload: the package both Function Compute handlers import."""
