"""End-to-end pipelines (library functions) that the CLI and recipes call."""
