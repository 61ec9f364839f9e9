"""The use cases people start from Slack: asking for, deciding on and reviewing rewards."""
