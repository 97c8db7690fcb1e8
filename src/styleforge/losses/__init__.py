"""Losses kept apart from networks: adversarial and reconstruction terms."""
