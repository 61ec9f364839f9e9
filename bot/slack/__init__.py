"""Slack's side: the Web API gateway, request signatures, and the Block Kit views."""
