"""Who is in the cell: the people the tracker holds, each with the skeleton that bounds them.

A person the tracker knows (a person track not deleted) is in the cell until the tracker
lets them go, whether or not this frame has a skeleton of them:

- seen in this frame's SkeletonArray: that skeleton;
- not in it, but seen before: their last valid skeleton (one with at least
  ``min_person_joints`` known joints: a later one with fewer does not replace it), with its
  own (older) stamp:
  :func:`~hrc_perception.safety.monitor.assess` grows it by how far a person moves since;
- never seen with a valid skeleton, or seen in this frame with an invalid one: no bound
  at all (the verdict is UNKNOWN).

A skeleton whose id no track holds still counts (people are never dropped for a wrong
id). When the tracker's array drops a track or lists it as deleted, the person stays in the
cell for ``hold_s`` after they were last seen (a track updated in an array, or a skeleton of
them), then their last skeleton is forgotten: a tracker deletes a tentative track after one
missed frame, which is no evidence that the person left (found in the two-people scenario:
people re-identified every frame, all missed in one, judged OK while the truth stopped).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hrc_perception.safety.monitor import PersonState


@dataclass(frozen=True)
class PersonTrack:
    """One person track of the tracker's newest array: id, deleted (listed as DELETED),
    updated (matched to a detection in that array's frame)."""
    id: int
    deleted: bool = False
    updated: bool = True


class PeopleInCell:
    """The last valid skeleton of every person (by track id) and the people of a verdict.
    hold_s: how long after they were last seen a person the tracker dropped stays."""

    def __init__(self, hold_s: float = 1.0):
        if not (math.isfinite(hold_s) and hold_s >= 0):
            raise ValueError(f"hold_s must be a finite number >= 0, got {hold_s}")
        self.hold_s = float(hold_s)
        self.last_seen: dict[int, list[PersonState]] = {}   # id -> the skeletons of its newest frame
        self.seen_at_s: dict[int, float] = {}               # id -> the newest stamp they were seen at

    def clear(self) -> None:
        self.last_seen.clear()
        self.seen_at_s.clear()

    def _seen(self, person_id: int, stamp_s: float) -> None:
        if math.isfinite(stamp_s) and stamp_s > self.seen_at_s.get(person_id, -math.inf):
            self.seen_at_s[person_id] = float(stamp_s)

    def observe(self, people: list[PersonState], min_joints: int = 0) -> None:
        """The valid skeletons of a new frame (ids = track ids); each with at least
        min_joints known joints replaces those of an older frame (one with fewer marks the
        person seen, and leaves their last skeleton that bounds them). Two skeletons of one
        id in one frame (a duplicated id) are both kept: either may be where the person is."""
        for p in people:
            self._seen(p.id, float(p.stamp_s))
            if int(np.isfinite(np.asarray(p.positions_m, dtype=np.float64)).all(axis=1).sum()) < min_joints:
                continue
            old = self.last_seen.get(p.id)
            if old is None or p.stamp_s > old[0].stamp_s:
                self.last_seen[p.id] = [p]
            elif p.stamp_s == old[0].stamp_s and not any(q is p for q in old):
                old.append(p)

    def in_cell(self, people: list[PersonState], tracks: list[PersonTrack] | None,
                invalid_ids: tuple[int, ...] = (), tracks_stamp_s: float | None = None
                ) -> tuple[list[PersonState], tuple[int, ...]]:
        """(people to judge, ids without any bound) for this frame's valid skeletons
        ``people``, the tracker's newest person tracks (None: no tracker, only the frame's
        skeletons count) of stamp tracks_stamp_s (None: people dropped by the tracker are
        not held) and the ids of this frame's invalid skeletons (a person seen with a
        skeleton that cannot be used has no bound: an older skeleton of them is not
        evidence of where they are now)."""
        have = {p.id for p in people}
        unbound = set(invalid_ids)
        out = list(people)
        if tracks is not None:
            held = {t.id for t in tracks if not t.deleted}
            if tracks_stamp_s is not None and math.isfinite(tracks_stamp_s):
                for t in tracks:
                    if t.updated and not t.deleted:
                        self._seen(t.id, tracks_stamp_s)
                recent = {i for i, at in self.seen_at_s.items() if tracks_stamp_s - at <= self.hold_s}
                for i in set(self.seen_at_s) - recent - held:
                    del self.seen_at_s[i]
                held |= recent
            for gone in set(self.last_seen) - held - have:
                del self.last_seen[gone]
            for i in sorted(held - have - unbound):
                last = self.last_seen.get(i)
                if last is None:
                    unbound.add(i)
                else:
                    out.extend(last)
        return out, tuple(sorted(unbound))
