"""Segments: a definition language over guests and what they did, compiled to SQL and built into member sets."""
