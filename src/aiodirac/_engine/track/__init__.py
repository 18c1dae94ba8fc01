"""Tracking: batched status polling, the event types and the event stream."""
