"""What the API and the console read about audience exports: pages of definitions and of runs, a run,
the latest run of each definition and the latest successful one.

These are the store's queries, named here so that every surface reaches the store through the core
(the import contract in `make test` holds it): a read that grows a rule grows it here, once.
"""

from __future__ import annotations

from opencdp.store import exports as _store

page_definitions = _store.page_definitions
page_executions = _store.page_executions
get_execution = _store.get_execution
latest_executions = _store.latest_executions
latest_success = _store.latest_success
