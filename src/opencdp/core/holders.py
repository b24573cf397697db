"""Who holds an identifier: the one answer every surface's identity resolution is built on.

A key (provider, normalised id) is held by the live guests whose identifiers or addresses carry it. Two
questions are asked of those holdings, and each is answered here only:

- **which guest a key resolves to**: the earliest-created live guest holding it unexpired (ties by ref);
- **whether a key is taken**: held by any live guest besides the one being written, expired or not, so an
  identifier is never handed to a second guest.

The holdings come from the database for one record (`stored`) or from a batch's working set
(`core.batch.identities.IdentityBook`); the rules do not know which.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

from sqlalchemy import Connection

from opencdp.store import guests as guest_store
from opencdp.store.guests import Holding

# The holdings of one (provider, normalised id) key.
Holdings = Callable[[str, str], Sequence[Holding]]
# Whether a (provider, normalised id) key is held by a live guest other than the one being written.
Held = Callable[[str, str], bool]


def stored(conn: Connection, tenant_id: int) -> Holdings:
    """The holdings as the database has them, read per key in the caller's transaction."""
    return lambda provider, key: guest_store.holdings(conn, tenant_id, provider, key)


def by_age(holdings: Iterable[Holding]) -> list[str]:
    """The holders, earliest-created first: the order in which identity resolution prefers them."""
    return [ref for ref, _created, _expiry in sorted(holdings, key=lambda holding: (holding[1], holding[0]))]


def earliest_live(holdings: Iterable[Holding], now: datetime, *, besides: str | None = None) -> str | None:
    """The guest a key resolves to: the earliest-created holder (other than `besides`) whose key has not
    expired, or None."""
    first: tuple[datetime, str] | None = None
    for ref, created, expiry in holdings:
        if ref != besides and (expiry is None or expiry > now) and (first is None or (created, ref) < first):
            first = (created, ref)
    return first[1] if first else None


def taken(holdings: Iterable[Holding], guest_ref: str | None) -> bool:
    """Whether a key is held by a guest other than `guest_ref` (None: by any guest), expired or not."""
    return any(ref != guest_ref for ref, _created, _expiry in holdings)


def held_besides(holdings: Holdings, guest_ref: str | None) -> Held:
    """`taken`, asked of each key as the holdings answer it."""
    return lambda provider, key: taken(holdings(provider, key), guest_ref)
