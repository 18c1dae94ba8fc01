"""The async engine, backend-agnostic: the request gate (rate limit, in-flight cap, retries),
submission, tracking and downloads.
"""
