"""Audience exports: definitions, runs that write gzipped files, listings, webhooks."""
