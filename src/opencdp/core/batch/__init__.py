"""The Batch API's domain: allocation, signed links, upload checks, processing, records."""
