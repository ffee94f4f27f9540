"""xsm.labels."""
