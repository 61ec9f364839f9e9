"""Durable background work: the runner, and one module per job kind."""
