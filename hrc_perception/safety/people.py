"""Who is in the cell: the people the tracker holds, each with the skeleton that bounds them.

A person the tracker knows (a person track not deleted) is in the cell until the tracker
lets them go, whether or not this frame has a skeleton of them:

- seen in this frame's SkeletonArray: that skeleton;
- not in it, but seen before: their last valid skeleton, with its own (older) stamp:
  :func:`~hrc_perception.safety.monitor.assess` grows it by how far a person moves since;
- never seen with a valid skeleton, or seen in this frame with an invalid one: no bound
  at all (the verdict is UNKNOWN).

A skeleton whose id no track holds still counts (people are never dropped for a wrong
id). When the tracker's array drops a track or lists it as deleted, its last skeleton is
forgotten.
"""
from __future__ import annotations

from dataclasses import dataclass

from hrc_perception.safety.monitor import PersonState


@dataclass(frozen=True)
class PersonTrack:
    """One person track of the tracker's newest array: id, deleted (listed as DELETED)."""
    id: int
    deleted: bool = False


class PeopleInCell:
    """The last valid skeleton of every person (by track id) and the people of a verdict."""

    def __init__(self):
        self.last_seen: dict[int, list[PersonState]] = {}   # id -> the skeletons of its newest frame

    def clear(self) -> None:
        self.last_seen.clear()

    def observe(self, people: list[PersonState]) -> None:
        """The valid skeletons of a new frame (ids = track ids); each replaces those of an
        older frame. Two skeletons of one id in one frame (a duplicated id) are both kept:
        either may be where the person is."""
        for p in people:
            old = self.last_seen.get(p.id)
            if old is None or p.stamp_s > old[0].stamp_s:
                self.last_seen[p.id] = [p]
            elif p.stamp_s == old[0].stamp_s and not any(q is p for q in old):
                old.append(p)

    def in_cell(self, people: list[PersonState], tracks: list[PersonTrack] | None,
                invalid_ids: tuple[int, ...] = ()) -> tuple[list[PersonState], tuple[int, ...]]:
        """(people to judge, ids without any bound) for this frame's valid skeletons
        ``people``, the tracker's newest person tracks (None: no tracker, only the frame's
        skeletons count) and the ids of this frame's invalid skeletons (a person seen with
        a skeleton that cannot be used has no bound: an older skeleton of them is not
        evidence of where they are now)."""
        have = {p.id for p in people}
        unbound = set(invalid_ids)
        out = list(people)
        if tracks is not None:
            held = {t.id for t in tracks if not t.deleted}
            for gone in set(self.last_seen) - held - have:
                del self.last_seen[gone]
            for i in sorted(held - have - unbound):
                last = self.last_seen.get(i)
                if last is None:
                    unbound.add(i)
                else:
                    out.extend(last)
        return out, tuple(sorted(unbound))
