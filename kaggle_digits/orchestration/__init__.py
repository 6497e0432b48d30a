"""Orchestration beside training: executors, sweeps, searches, tracking, progress, docs."""
