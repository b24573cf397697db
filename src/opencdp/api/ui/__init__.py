"""The web console under `/ui/` (segments-exports.md §5): server-rendered pages over the same core."""
