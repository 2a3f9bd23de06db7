"""Adapters to the things recluster talks to."""
