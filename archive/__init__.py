"""xsm.archive: day bundles, releases, the DuckDB catalog, the processing pipeline, the CLI."""
