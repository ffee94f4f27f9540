"""xsm.templates."""
