"""A cohort's summary: per scenario and policy (mean +- sd), paired differences between
policies on the same seeds, and how many inner optimizations one policy needs to reach
another's final score."""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Iterable, Sequence

from agent.cohort.models import CaseResult
from rtplan_common.models import FrozenModel

#: A best-so-far score within this of a target counts as reaching it.
REACH_TOLERANCE = 1e-6


class Stat(FrozenModel):
    """Mean and sample standard deviation (``sd`` 0 for one value) of ``n`` values."""

    n: int
    mean: float | None
    sd: float | None

    @classmethod
    def of(cls, values: Iterable[float | None]) -> Stat:
        """The statistics of the values that are not ``None``."""
        vals = [float(v) for v in values if v is not None]
        if not vals:
            return cls(n=0, mean=None, sd=None)
        sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
        return cls(n=len(vals), mean=statistics.fmean(vals), sd=sd)

    def text(self, digits: int = 2) -> str:
        """``mean +- sd`` (``-`` without values)."""
        if self.mean is None or self.sd is None:
            return "-"
        return f"{self.mean:.{digits}f} +- {self.sd:.{digits}f}"


class PolicySummary(FrozenModel):
    """One policy on one scenario."""

    scenario: str
    policy: str
    cases: int
    errors: int
    final_score: Stat
    max_reached_fraction: float
    iterations_to_best: Stat
    inner_optimizations_to_best: Stat
    inner_optimizations: Stat
    wall_s: Stat


class PairedDifference(FrozenModel):
    """``policy_a`` minus ``policy_b`` on the seeds where both planned (final score)."""

    scenario: str
    policy_a: str
    policy_b: str
    seeds: list[int]
    final_score: Stat
    inner_optimizations_to_best: Stat


class ReachRatio(FrozenModel):
    """How many inner optimizations ``slow`` needs to reach ``fast``'s final score, as a
    ratio to ``fast``'s (paired seeds). ``never_reached`` lists seeds where ``slow``'s
    best-so-far curve never got there: no ratio is computed for them."""

    scenario: str
    slow: str
    fast: str
    ratio: Stat
    median_ratio: float | None
    reached_seeds: list[int]
    never_reached: list[int]


def _ok(results: Iterable[CaseResult]) -> list[CaseResult]:
    return [r for r in results if r.error is None]


def summarize(results: Sequence[CaseResult]) -> list[PolicySummary]:
    """Per (scenario, policy), in the order they first appear."""
    out: list[PolicySummary] = []
    keys = dict.fromkeys((r.scenario, r.policy) for r in results)
    for scenario, policy in keys:
        rows = [r for r in results if r.scenario == scenario and r.policy == policy]
        ok = _ok(rows)
        out.append(
            PolicySummary(
                scenario=scenario,
                policy=policy,
                cases=len(rows),
                errors=len(rows) - len(ok),
                final_score=Stat.of(r.final_score for r in ok),
                max_reached_fraction=sum(r.max_reached for r in ok) / len(rows),
                iterations_to_best=Stat.of(r.iterations_to_best for r in ok),
                inner_optimizations_to_best=Stat.of(r.inner_optimizations_to_best for r in ok),
                inner_optimizations=Stat.of(r.inner_optimizations for r in ok),
                wall_s=Stat.of(r.wall_s for r in ok),
            )
        )
    return out


def _by_seed(results: Sequence[CaseResult], scenario: str, policy: str) -> dict[int, CaseResult]:
    return {r.seed: r for r in _ok(results) if r.scenario == scenario and r.policy == policy}


def paired_differences(results: Sequence[CaseResult]) -> list[PairedDifference]:
    """Every pair of policies on every scenario, on the seeds both planned without error."""
    out: list[PairedDifference] = []
    scenarios = dict.fromkeys(r.scenario for r in results)
    policies = list(dict.fromkeys(r.policy for r in results))
    for scenario in scenarios:
        for a, b in itertools.combinations(policies, 2):
            ra, rb = _by_seed(results, scenario, a), _by_seed(results, scenario, b)
            seeds = sorted(set(ra) & set(rb))
            if not seeds:
                continue
            out.append(
                PairedDifference(
                    scenario=scenario,
                    policy_a=a,
                    policy_b=b,
                    seeds=seeds,
                    final_score=Stat.of(
                        _minus(ra[s].final_score, rb[s].final_score) for s in seeds
                    ),
                    inner_optimizations_to_best=Stat.of(
                        _minus(ra[s].inner_optimizations_to_best, rb[s].inner_optimizations_to_best)
                        for s in seeds
                    ),
                )
            )
    return out


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def optimizations_to_reach(result: CaseResult, score: float) -> int | None:
    """The first inner optimization at which ``result``'s best-so-far score reaches ``score``."""
    for point in result.curve:
        if point.best_score >= score - REACH_TOLERANCE:
            return point.inner_optimizations
    return None


def reach_ratios(results: Sequence[CaseResult], slow: str, fast: str) -> list[ReachRatio]:
    """Per scenario: ``slow``'s inner optimizations to reach ``fast``'s final score, divided by
    ``fast``'s inner optimizations to its best plan (paired seeds)."""
    out: list[ReachRatio] = []
    for scenario in dict.fromkeys(r.scenario for r in results):
        rs, rf = _by_seed(results, scenario, slow), _by_seed(results, scenario, fast)
        seeds = sorted(set(rs) & set(rf))
        if not seeds:
            continue
        ratios: list[float] = []
        reached: list[int] = []
        never: list[int] = []
        for seed in seeds:
            target, spent = rf[seed].final_score, rf[seed].inner_optimizations_to_best
            if target is None:  # a template without a score: nothing to reach
                continue
            needed = optimizations_to_reach(rs[seed], target)
            if needed is None or not spent:
                never.append(seed)
                continue
            reached.append(seed)
            ratios.append(needed / spent)
        out.append(
            ReachRatio(
                scenario=scenario,
                slow=slow,
                fast=fast,
                ratio=Stat.of(ratios),
                median_ratio=statistics.median(ratios) if ratios else None,
                reached_seeds=reached,
                never_reached=never,
            )
        )
    return out
