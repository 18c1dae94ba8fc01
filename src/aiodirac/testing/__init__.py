"""Test helpers for aiodirac users and its own suite: an in-memory backend and a fault-injecting proxy."""
