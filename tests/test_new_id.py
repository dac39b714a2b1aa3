"""``backend.db.new_id``: the ids of the rows the hot paths write, drawn from a pool of random
bytes, are what ``uuid.uuid4()`` gives, and never shared with a forked process."""

from __future__ import annotations

import os
import uuid

from backend.db import new_id


def test_new_ids_are_random_version_4_uuids_like_uuid4():
    ids = [new_id() for _ in range(2000)]  # several refills of the pool

    assert len(set(ids)) == len(ids)
    for made in ids[:300]:
        assert made.version == 4 and made.variant == uuid.RFC_4122
        again = uuid.UUID(str(made))
        assert again == made and hash(again) == hash(made) and again.bytes == made.bytes


def test_a_forked_child_does_not_hand_out_its_parents_next_ids():
    new_id()  # the parent's pool holds ids not yet handed out
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child process
        os.write(write, new_id().bytes)
        os._exit(0)
    os.close(write)
    childs = uuid.UUID(bytes=os.read(read, 16))
    os.close(read)
    os.waitpid(child, 0)

    assert childs != new_id()
