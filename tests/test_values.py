"""Hand-made versions of standard functions, checked against the standard ones."""

from __future__ import annotations

import time
import uuid

from hypothesis import given
from hypothesis import strategies as st

from opencdp.core.values import new_ref, uuid5


def test_new_refs_are_time_ordered_uuid7_in_canonical_text():
    before = time.time_ns() // 1_000_000
    refs = [new_ref() for _ in range(2000)]
    after = time.time_ns() // 1_000_000
    assert len(set(refs)) == 2000
    for ref in refs:
        parsed = uuid.UUID(ref)
        assert str(parsed) == ref and parsed.version == 7 and parsed.variant == uuid.RFC_4122
        assert before <= parsed.int >> 80 <= after  # the first 48 bits are the Unix milliseconds
    assert refs == sorted(refs)  # in the order they were minted, as text too, within a millisecond as well


@given(st.uuids(), st.text())
def test_uuid5_is_the_standard_one(namespace, name):
    assert uuid5(str(namespace), name) == str(uuid.uuid5(namespace, name))
