"""Placeholder: the lead's open-kinds module replaces this on merge (do not edit)."""
