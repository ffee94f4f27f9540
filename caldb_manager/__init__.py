"""xsm.caldb_manager."""
