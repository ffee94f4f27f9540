"""xsm.schemas."""
