"""The staged pipeline engine: options, types, stage contract, runner, events, settings."""
