"""Reusable layers: norms, conv blocks, generators, discriminators, weight init."""
