"""Heavy jobs, launchers, the embedded cloud and the `tide` CLI."""
