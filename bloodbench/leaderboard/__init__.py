"""Join training and profiling records into one accuracy-vs-cost table with Pareto fronts.

One row per (model, dataset, size): test metrics aggregated over seeds (mean, sample std,
count) next to the cost of that model on one machine. Cost comes from profile records and
from pytest-benchmark JSON files (``pytest benchmarks/ --benchmark-json out.json``), which
are turned into the same shape so either source can feed the table.

Gaps are kept, not hidden: a model trained but not profiled (or the reverse) keeps its
row with empty cells, and a footnote names what is missing.

Every cost cell of a table comes from one machine (``machines``): a device name with its thread count,
one precision; the other machines measured are tables of their own.

Modules: ``columns`` (the row layout), ``frames`` (records -> frames, recipes, Pareto), ``machines`` (which
machine a table shows),
``ingest`` (pytest-benchmark JSON), ``train_source`` (the train img/s column: quiet benchmark, else records), ``notes`` (every footnote, numbered in one place), ``table``
(rendering), ``join`` (the build: select -> merge -> annotate), ``ensemble`` (ensemble and TTA rows).
"""

from bloodbench.leaderboard.columns import (
    COLUMNS,
    COST_COLUMNS,
    COST_KEYS,
    FORMATS,
    FRONTS,
    INT_COLUMNS,
    KEYS,
    METRICS,
    PREFERRED_PRECISION,
)
from bloodbench.leaderboard.frames import (
    aggregate_training,
    cost_conflicts,
    cost_frame,
    finished_runs_frame,
    learned_nothing_runs,
    other_recipe_runs,
    pareto_front,
    pick_recipe,
    profile_frame,
    select_costs,
    train_frame,
    unfinished_runs,
)
from bloodbench.leaderboard.ingest import benchmark_frame, read_benchmark_json
from bloodbench.leaderboard.join import assemble_leaderboard, build_leaderboard, load_leaderboard
from bloodbench.leaderboard.machines import Machine, choose_machine, other_machines
from bloodbench.leaderboard.table import Leaderboard
from bloodbench.store.results import check_records, read_results, store_records

__all__ = [
    "COLUMNS", "COST_COLUMNS", "COST_KEYS", "FORMATS", "FRONTS", "INT_COLUMNS", "KEYS", "METRICS", "PREFERRED_PRECISION",
    "Leaderboard", "Machine", "other_machines", "aggregate_training", "assemble_leaderboard", "benchmark_frame", "build_leaderboard", "check_records", "choose_machine",
    "cost_conflicts", "cost_frame", "finished_runs_frame", "learned_nothing_runs", "load_leaderboard", "other_recipe_runs", "pareto_front", "pick_recipe",
    "profile_frame", "read_benchmark_json", "read_results", "select_costs", "store_records", "train_frame",
    "unfinished_runs",
]
