"""Small helpers shared across voxa."""
