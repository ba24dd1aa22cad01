"""The composition root: the `flare` CLI and the processes it starts (web, worker, connectors, demo)."""
