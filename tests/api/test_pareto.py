"""The accuracy/MFLOPs Pareto front helper."""
from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from a4nn.lineage.pareto import pareto_front


def test_front_keeps_non_dominated_points_by_cost() -> None:
    points = [{"id": 1, "acc": 80, "flops": 10}, {"id": 2, "acc": 85, "flops": 30}, {"id": 3, "acc": 83, "flops": 50},
              {"id": 4, "acc": 85, "flops": 30}, {"id": 5, "acc": 90, "flops": 100}, {"id": 6, "acc": None, "flops": 1},
              {"id": 7, "acc": math.nan, "flops": 2}, {"id": 8, "acc": 80, "flops": 20}]
    assert [p["id"] for p in pareto_front(points)] == [1, 2, 4, 5]


@given(st.lists(st.tuples(st.integers(0, 20), st.integers(0, 20)), max_size=30))
def test_no_front_point_is_dominated_and_every_other_is(pairs: list[tuple[int, int]]) -> None:
    points = [{"id": i, "acc": a, "flops": f} for i, (a, f) in enumerate(pairs)]
    front = pareto_front(points)

    def dominates(p: dict, q: dict) -> bool:
        return p["acc"] >= q["acc"] and p["flops"] <= q["flops"] and (p["acc"] > q["acc"] or p["flops"] < q["flops"])

    kept = {p["id"] for p in front}
    for point in points:
        dominated = any(dominates(other, point) for other in points)
        assert (point["id"] in kept) == (not dominated)
