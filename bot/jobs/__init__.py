"""Durable background work: the runner, which handler runs each kind of job
(:mod:`bot.jobs.kinds`, the place to start when adding one), and a module or package per kind."""
