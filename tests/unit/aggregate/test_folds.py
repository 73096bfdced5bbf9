"""Which groups an update folds: a share of the groups it touches, kept
across updates, the fullest first, and every group at the cap."""

from __future__ import annotations

from collectbus.aggregate.parts import FOLD_AT, FOLD_SHARE, MAX_PARTS, choose_folds
from collectbus.aggregate.state import GroupState


def groups_with(parts: list[int]) -> dict[str, GroupState]:
    out = {}
    for i, n in enumerate(parts):
        group = GroupState.empty(1)
        group.parts = n
        out[f"g{i}"] = group
    return out


def test_the_share_is_kept_across_updates() -> None:
    groups = groups_with([FOLD_AT] * 20)
    folds = [len(choose_folds(groups, groups.keys(), update)) for update in range(FOLD_SHARE)]
    assert sum(folds) == 20  # 20 groups, one fold per FOLD_SHARE groups touched
    assert set(folds) == {0, 1}  # spread out, never bunched


def first_update(touched: int, *, folding: bool) -> int:
    """An update that folds one group of ``touched`` (or none)."""
    return next(
        u
        for u in range(FOLD_SHARE)
        if ((u + 1) * touched // FOLD_SHARE > u * touched // FOLD_SHARE) == folding
    )


def test_the_fullest_group_goes_first_and_every_one_at_the_cap() -> None:
    groups = groups_with([FOLD_AT - 1, FOLD_AT + 3, FOLD_AT + 9, MAX_PARTS, MAX_PARTS + 1])
    # g4 is the fullest (the share's one); g3 is at the cap.
    assert choose_folds(groups, groups.keys(), first_update(5, folding=True)) == {"g3", "g4"}
    assert choose_folds(groups, groups.keys(), first_update(5, folding=False)) == {"g3", "g4"}
    below_cap = groups_with([FOLD_AT - 1, FOLD_AT + 3, FOLD_AT + 9])
    update = first_update(3, folding=True)
    assert choose_folds(below_cap, below_cap.keys(), update) == {"g2"}
    assert choose_folds(below_cap, below_cap.keys(), first_update(3, folding=False)) == set()
    assert choose_folds(below_cap, ["g0"], update) == set()  # under FOLD_AT
