"""Reports: per-label metrics, before/after threshold tables and their Markdown."""
