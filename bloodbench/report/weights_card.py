"""The "Weights" section of a model card: the published file (sha256, run, recipe, how to load it),
or, for a model without published weights, the command that trains it."""

from __future__ import annotations

from bloodbench.formatting import fmt, md_table
from bloodbench.models.weights import MAX_PUBLISHED_BYTES, PUBLISHED_DIR, published_entry
from bloodbench.store.schema import is_finished

REPO_PATH = "bloodbench/models/published"


def _published(e: dict) -> list[str]:
    rows = [["file", f"`{REPO_PATH}/{e['file']}`"], ["sha256", f"`{e['sha256']}`"],
            ["size", f"{e['bytes'] / 1e6:.2f} MB (safetensors, the model's state_dict only)"],
            ["run", f"`{e['run_id']}`: seed {e['seed']}, the best of its recipe's seeds on **validation** accuracy "
                    f"({fmt(e.get('val_acc'), '.2f', 100)} %); test accuracy {fmt(e.get('test_acc'), '.2f', 100)} %"],
            ["recipe", f"`{e['train_command']}`"],
            ["preprocessing", f"{e['size']}×{e['size']} px, /255, then mean {e['normalizer']['mean']} and "
                              f"std {e['normalizer']['std']} (the training normaliser)"],
            ["recorded predictions", f"{e['precision']} autocast{', channels_last' if e.get('channels_last') else ''}, "
                                     f"eval batch {e['eval_batch_size']}; reloaded, the weights reproduce them "
                                     f"(largest difference {e.get('reproduced_max_abs_diff', 0):.0e})"]]
    return [md_table(rows, ["", ""]), "",
            "Load them (the sha256 is checked on load):", "", "```python",
            "from bloodbench.models import get_model", "",
            f'model = get_model("{e["model"]}", weights="published")  # eval mode, fp32 parameters', "```", "",
            f"or `bloodbench predict {e['model']} --weights published IMAGE.png`, "
            f"`bloodbench export {e['model']} --weights published --format onnx --out {e['model']}.onnx`.", ""]


def _not_published(name: str, train_recs: list[dict]) -> list[str]:
    from bloodbench.report.publish import best_on_val, recipe_command

    from bloodbench.leaderboard.frames import train_frame

    done = [r for r in train_recs if is_finished(r) and not r.get("learned_nothing")]
    ids = set(train_frame(done)["run_id"]) if done else set()
    shown = [r for r in done if r["run_id"] in ids] or done  # the recipe the leaderboard averages
    cmd = f"`{recipe_command(best_on_val(shown)) if shown else f'bloodbench train {name}'}`"
    return [f"No published weights: only the models on the MACs Pareto front whose weights fit in "
            f"{MAX_PUBLISHED_BYTES / 1e6:g} MB are in the repository. Train them with {cmd} (its results store keeps "
            f'`best.pt`), then use them with `--seed S` or `get_model("{name}", weights="…/best.pt")`.', ""]


def weights_section(name: str, train_recs: list[dict], dataset: str = "bloodmnist", size: int = 28) -> list[str]:
    """The card's "Weights" lines for ``name`` (on ``dataset`` at ``size``)."""
    entry = published_entry(name, dataset, size, PUBLISHED_DIR)
    mine = [r for r in train_recs if r.get("dataset") == dataset and int(r.get("size") or 0) == size]
    return ["## Weights", ""] + (_published(entry) if entry else _not_published(name, mine))
