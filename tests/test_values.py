"""Hand-made versions of standard functions, checked against the standard ones."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from opencdp.core.values import new_ref, uuid5


def test_new_refs_are_random_uuid4_in_canonical_text():
    refs = {new_ref() for _ in range(2000)}
    assert len(refs) == 2000
    for ref in refs:
        parsed = uuid.UUID(ref)
        assert str(parsed) == ref and parsed.version == 4 and parsed.variant == uuid.RFC_4122


@given(st.uuids(), st.text())
def test_uuid5_is_the_standard_one(namespace, name):
    assert uuid5(str(namespace), name) == str(uuid.uuid5(namespace, name))
