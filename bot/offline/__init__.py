"""Everything that runs without Slack or a provider: the Slack emulator, the local stack, the demo.

Only `bot.cli` and the tests import this package (an import-linter contract checks it)."""
