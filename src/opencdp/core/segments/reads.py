"""What the API and the console read about segments: pages of segments and builds, the latest build of
each, the exports that use a segment, the segments holding a guest, and guest summaries for samples.

These are the store's queries, named here so that every surface reaches the store through the core
(the import contract in `make test` holds it): a read that grows a rule grows it here, once.
"""

from __future__ import annotations

from opencdp.store import segments as _store

page_segments = _store.page_segments
page_builds = _store.page_builds
latest_builds = _store.latest_builds
used_by = _store.used_by
guest_summaries = _store.guest_summaries
segments_holding = _store.segments_holding
