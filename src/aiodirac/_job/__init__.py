"""The job description, pure: Job and its setters, JDL, workflow, parametric expansion, chunks,
statuses, and the value types that travel to backends. Imports nothing above it.
"""
