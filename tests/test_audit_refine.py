"""audit and refine on a synthetic objective whose truth is known, and on a real digits study."""

from __future__ import annotations

import json
import math
import re
import shlex
import sys
import zlib
from dataclasses import replace
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from hpotool.audit import audit_study
from hpotool.cli import app
from hpotool.config import OptimizeConfig, RunConfig
from hpotool.config_files import load_optimize_config, load_run_config
from hpotool.errors import HpoError
from hpotool.formatting import format_param
from hpotool.param_values import contains
from hpotool.refine import next_study_name, refine_study
from hpotool.search_space import CategoricalParam, FloatParam
from hpotool.stage_files import write_refinement
from hpotool.storage import study_options
from hpotool.suggestion import suggest

from .conftest import write_yaml
from .test_search_space import conditional_spaces

# The truth: optimizer.lr's optimum (3e-2) lies beyond the upper bound 1e-2; model.dropout's optimum (0.2)
# is inside [0, 0.5]; optimizer.weight_decay does not matter at all.
SPACE = {
    "optimizer.lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
    "model.dropout": {"type": "float", "low": 0.0, "high": 0.5},
    "optimizer.weight_decay": {"type": "float", "low": 1e-6, "high": 1e-2, "log": True},
}


def loss(params: dict[str, Any]) -> float:
    lr_term = (math.log10(params["optimizer.lr"]) - math.log10(3e-2)) ** 2
    return lr_term + 40 * (params["model.dropout"] - 0.2) ** 2


def stored_study(
    name: str,
    space: dict[str, Any],
    sampler: optuna.samplers.BaseSampler | None = None,
    run: dict[str, Any] | None = None,
    storage: str | None = None,
    **settings: Any,
) -> tuple[OptimizeConfig, optuna.Study]:
    """A study stored the way `hpotool optimize` stores one, before its first trial: its run config (the
    default one unless `run`) and its optimize config (metric val_loss, `space`, `settings`), sampled by
    `sampler` (random, seed 0, unless given)."""
    opt = OptimizeConfig.model_validate(
        {"study_name": name, "metric": "val_loss", "search_space": space, **settings}
    )
    sampler = sampler or optuna.samplers.RandomSampler(seed=0)
    study = optuna.create_study(study_name=name, storage=storage, sampler=sampler)
    study.set_user_attr("run_config", run or RunConfig().model_dump(mode="json"))
    study.set_user_attr("optimize_config", opt.model_dump(mode="json"))
    return opt, study


def synthetic_study(
    name: str,
    space: dict[str, Any],
    n_trials: int,
    seed: int,
    run: dict[str, Any] | None = None,
    storage: str | None = None,
) -> optuna.Study:
    """A study stored the way `hpotool optimize` stores one, over a plain function of the params."""
    opt, study = stored_study(name, space, optuna.samplers.TPESampler(seed=seed), run, storage, seed=seed)
    for params in opt.enqueue:
        study.enqueue_trial(params)
    study.optimize(lambda t: loss({**(run_fixed(run)), **suggest(t, opt.search_space)}), n_trials=n_trials)
    return study


def run_fixed(run: dict[str, Any] | None) -> dict[str, Any]:
    """The values a stage's RunConfig fixes, for the synthetic loss."""
    cfg = RunConfig.model_validate(run) if run else RunConfig()
    return {"optimizer.lr": cfg.optimizer.lr, "model.dropout": cfg.model.kwargs.get("dropout", 0.0)}


def test_audit_flags_exactly_the_known_problems() -> None:
    report = audit_study(synthetic_study("synth", SPACE, 40, seed=0))
    by_name = {p.name: p for p in report.params}
    assert by_name["optimizer.lr"].edge == "high"
    assert "the top of [0.0001, 0.01, log]: widen the range" in by_name["optimizer.lr"].advice
    assert by_name["optimizer.weight_decay"].negligible and by_name["optimizer.weight_decay"].edge is None
    assert "fix optimizer.weight_decay at" in by_name["optimizer.weight_decay"].advice
    interior = by_name["model.dropout"]
    assert interior.edge is None and not interior.negligible and interior.advice == ""
    assert report.complete == 40 and report.improving is not None


def _bullets(lines: list[str]) -> list[str]:
    """The "- " items of printed lines, each joined back from its hanging-indented continuation lines."""
    items: list[str] = []
    for line in lines:
        if line.startswith("- "):
            items.append(line[2:])
        elif line.startswith("  ") and items:
            items[-1] += " " + line.strip()
    return items


def test_audit_at_80_columns_keeps_names_and_ranges_whole_and_lists_the_findings_under_the_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    import hpotool.cli.terminal

    url = f"sqlite:///{tmp_path / 'synth.db'}"
    synthetic_study("synth", SPACE, 40, seed=0, storage=url)
    args = ["audit", "--study-name", "synth", "--storage", url]
    findings = json.loads(CliRunner().invoke(app, [*args, "--json"], catch_exceptions=False).stdout)[
        "findings"
    ]
    assert any(f.startswith("optimizer.lr best at ") for f in findings)  # a parameter's finding, and
    assert any(f.startswith("only ") or "improving" in f for f in findings)  # the study's

    monkeypatch.setattr(hpotool.cli.terminal.out_console(), "width", 80)
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    end = next(i for i, line in enumerate(lines) if line.startswith("└"))
    table, below = lines[: end + 1], lines[end + 1 :]
    text = result.stdout
    assert max(len(line) for line in lines) <= 80, text
    assert lines[0].startswith("audit of study synth (val_loss, minimize)"), text
    # One line per parameter, every cell whole: no "optimizer.we" / "ight_decay", no "[0.0001," / "0.01, log]"
    rows = [line for line in table if line.startswith("│")]
    assert len(rows) == len(SPACE), text
    cells = {cell.strip() for line in rows for cell in line.split("│")[1:-1]}
    assert set(SPACE) <= cells and {"[0.0001, 0.01, log]", "[1e-06, 0.01, log]", "[0, 0.5]"} <= cells, text
    assert re.search(r"│ optimizer\.lr +│ \d\.\d\d +│ 0\.00\d+ \(\d+%\) +│", text), text  # best (position)
    # Under the table: the importance evaluator, then every finding as a sentence, wrapped at spaces
    assert below[0].startswith("importance: PED-ANOVA"), text
    assert _bullets(below) == findings, text


WIDE_SPACE = {
    **SPACE,
    "model.kwargs.hidden_width": {"type": "int", "low": 4, "high": 64, "step": 4},
    "optimizer.weight_decay": {"type": "categorical", "choices": [0.0, 1e-5, 1e-4, 1e-3, 3e-3]},
}


@pytest.mark.parametrize(("space", "width"), [(SPACE, 66), (SPACE, 50), (WIDE_SPACE, 80), (WIDE_SPACE, 60)])
def test_audit_too_narrow_for_a_parameter_a_row_prints_a_section_per_parameter_every_value_whole(
    space: dict[str, Any], width: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At 80 columns a range wrapped mid-value (`[4, 64, step` over `4]`) beside a long categorical's
    choices, though the table keeps each parameter on one line: with no room for that, each parameter gets
    a section of lines, each value whole beside its key, as `hpotool studies` does."""
    import hpotool.cli.terminal

    url = f"sqlite:///{tmp_path / 'synth.db'}"
    opt, study = stored_study("synth", space, storage=url)
    for _ in range(20):
        trial = study.ask()
        study.tell(trial, loss({**suggest(trial, opt.search_space), "model.dropout": 0.2}))
    monkeypatch.setattr(hpotool.cli.terminal.out_console(), "width", width)
    result = CliRunner().invoke(
        app, ["audit", "--study-name", "synth", "--storage", url], catch_exceptions=False
    )
    report = audit_study(optuna.load_study(study_name="synth", storage=url))
    text, lines = result.stdout, result.stdout.splitlines()
    assert max(len(line) for line in lines) <= width and "…" not in text, text
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in lines if line.startswith("│")]
    for p in report.params:
        best = next(c for c in rows if c[0] == "best (position)" and rows[rows.index(c) - 2][1] == p.name)
        assert ["parameter", p.name] in rows and ["range", p.bounds] in rows, text
        assert best[1].startswith(format_param(p.best, p.kind == "categorical")), text
    assert len(rows) == 4 * len(report.params), text  # each value on one line
    assert _bullets(lines) == report.findings, text


def test_audit_on_a_wide_terminal_prints_each_finding_on_one_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'synth.db'}"
    synthetic_study("synth", SPACE, 20, seed=0, storage=url)
    result = CliRunner().invoke(
        app, ["audit", "--study-name", "synth", "--storage", url], catch_exceptions=False
    )
    report = audit_study(optuna.load_study(study_name="synth", storage=url))
    lines = result.stdout.splitlines()
    assert [line for line in lines if line.startswith("- ")] == [f"- {f}" for f in report.findings]
    assert "finding" not in lines[1] + lines[2]  # no column of folded sentences


def test_refined_stage_beats_more_trials_in_the_original_space(tmp_path: Path) -> None:
    stage1 = synthetic_study("synth", SPACE, 40, seed=0)
    ref = refine_study(stage1)
    assert ref.study_name == "synth_stage2"
    space2 = ref.optimize["search_space"]
    assert "optimizer.weight_decay" not in space2  # fixed in the stage's RunConfig instead
    assert space2["optimizer.lr"]["high"] > 1e-2  # widened past the old edge
    assert space2["model.dropout"]["low"] > 0.0 or space2["model.dropout"]["high"] < 0.5  # narrowed
    assert ref.optimize["enqueue"] and all(set(e) <= set(space2) for e in ref.optimize["enqueue"])
    # The same budget twice: 30 more trials in the original space, or 30 trials of stage 2.
    more = synthetic_study("synth", SPACE, 70, seed=0)
    stage2 = synthetic_study("synth_stage2", space2, 30, seed=0, run=ref.run)
    first, extra, refined = stage1.best_value, more.best_value, stage2.best_value
    print(
        f"\nbest loss: stage 1 (40 trials) {first:.4g}; +30 in the original space {extra:.4g}; stage 2 (30) {refined:.4g}"
    )
    assert refined < extra, f"stage 2 {refined:.4g} should beat {extra:.4g} (stage 1 alone: {first:.4g})"


def test_refine_shows_a_fixed_value_rounded_as_the_ranges_and_writes_it_exact(tmp_path: Path) -> None:
    ref = refine_study(synthetic_study("synth", SPACE, 40, seed=0))
    exact = ref.run["optimizer"]["weight_decay"]  # the best trial's value: many more digits than 4
    assert exact != float(f"{exact:.4g}")
    line = next(c for c in ref.changes if c.startswith("optimizer.weight_decay: "))
    assert line.endswith(f"; removed from the search, fixed at {exact:.4g}"), line
    _, run_path = write_refinement(ref, tmp_path / "stage2.yaml", "synth")
    assert load_run_config(run_path).optimizer.weight_decay == exact
    assert f"fixed at {exact:.4g}\n" in (tmp_path / "stage2.yaml").read_text()  # the header's line


def test_refine_writes_its_two_files_as_one_set(tmp_path: Path) -> None:
    """write_refinement wrote the OptimizeConfig, then the RunConfig: when the second could not be written,
    the first was already replaced, a new stage beside the old stage's run config. Now neither is."""
    ref = refine_study(synthetic_study("synth", SPACE, 12, seed=0))
    out = tmp_path / "stage2.yaml"
    out.write_text("# the stage written before\n")
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    (tmp_path / "stage2.run.yaml").symlink_to(blocker / "run.yaml")  # its folder cannot be made
    with pytest.raises(HpoError, match="blocker is a file, not a folder"):
        write_refinement(ref, out, "synth")
    assert out.read_text() == "# the stage written before\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker", "stage2.run.yaml", "stage2.yaml"]


def test_stage_names() -> None:
    assert next_study_name("digits") == "digits_stage2"
    assert next_study_name("digits_stage2") == "digits_stage3"
    assert next_study_name("digits_stage2b") == "digits_stage3"


def test_refine_output_runs_with_optimize_unchanged(
    configs: tuple[Path, Path], opt_dict: dict, tmp_path: Path
) -> None:
    run_path, opt_path = configs
    opt_dict["n_trials"] = 6
    opt_dict["search_space"]["batch_size"] = {"type": "categorical", "choices": [16, 32]}
    write_yaml(opt_path, opt_dict)
    runner = CliRunner()
    assert (
        runner.invoke(
            app, ["optimize", "-r", str(run_path), "-o", str(opt_path), "-q"], catch_exceptions=False
        ).exit_code
        == 0
    )
    storage = opt_dict["storage"]
    audit = runner.invoke(
        app, ["audit", "--study-name", "tiny", "--storage", storage, "--json"], catch_exceptions=False
    )
    assert audit.exit_code == 0 and '"findings"' in audit.stdout
    out = tmp_path / "configs" / "stage2.yaml"
    result = runner.invoke(
        app,
        ["refine", "--study-name", "tiny", "--storage", storage, "--out", str(out)],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert out.read_text().startswith("# Stage refined from study 'tiny'")
    stage_run = out.with_name("stage2.run.yaml")
    assert load_optimize_config(out).study_name == "tiny_stage2"
    load_run_config(stage_run)
    again = runner.invoke(
        app,
        [
            "optimize",
            "-r",
            str(stage_run),
            "-o",
            str(out),
            "--n-trials",
            "2",
            "-q",
            "--storage",
            f"sqlite:///{tmp_path / 's2.db'}",
        ],
        catch_exceptions=False,
    )
    assert again.exit_code == 0, again.output


def test_refine_again_after_more_trials_names_a_stage_its_storage_does_not_hold_already(
    configs: tuple[Path, Path], opt_dict: dict, tmp_path: Path
) -> None:
    """A study refined, its stage run, then refined again after more trials (under another run config) got its
    first stage's name:
    refine said to run the new configs, and optimize refused them as another experiment in that study.
    The same configs keep the name, so their optimize resumes the stage."""
    run_path, opt_path = configs
    storage = opt_dict["storage"]
    runner = CliRunner()

    def run(*args: str) -> Any:
        result = runner.invoke(app, list(args), catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result

    def refine(out: Path, study: str = "tiny") -> tuple[str, Path]:
        result = run("refine", "--study-name", study, "--storage", storage, "--out", str(out), "--force")
        stage_run = out.with_name(out.stem + ".run.yaml")
        run("optimize", "-r", str(stage_run), "-o", str(out), "--n-trials", "1", "-q")
        return load_optimize_config(out).study_name, result

    run("optimize", "-r", str(run_path), "-o", str(opt_path), "-q")
    first = tmp_path / "stage2.yaml"
    assert refine(first)[0] == "tiny_stage2"
    assert refine(first)[0] == "tiny_stage2"  # the same configs: optimize resumed the stage
    run_dict = yaml.safe_load(run_path.read_text())
    write_yaml(run_path, {**run_dict, "epochs": run_dict["epochs"] + 1})  # the stage trains with it
    run(
        "optimize",
        "-r",
        str(run_path),
        "-o",
        str(opt_path),
        "-q",
        "--n-trials",
        "6",
        "--allow-changed-config",
    )
    name, result = refine(tmp_path / "again.yaml")
    assert name == "tiny_stage2b"
    assert (
        "study_name: tiny_stage2b, as its storage holds tiny_stage2, a stage with other configs"
        in " ".join(result.stdout.split())
    )
    names = {s.study_name for s in optuna.get_all_study_summaries(storage)}
    assert names == {"tiny", "tiny_stage2", "tiny_stage2b"}
    assert refine(tmp_path / "stage3.yaml", "tiny_stage2b")[0] == "tiny_stage3"


def test_audit_of_a_study_without_hpotool_attrs_is_one_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'plain.db'}"
    optuna.create_study(study_name="plain", storage=url).optimize(
        lambda t: t.suggest_float("x", 0, 1), n_trials=2
    )
    result = CliRunner().invoke(app, ["audit", "--study-name", "plain", "--storage", url])
    assert result.exit_code == 2
    assert result.stderr == (
        "error: study 'plain' has no stored search space (user attr 'optimize_config'): it was not created by "
        f"hpotool optimize, which stores the ranges audit, refine and prune-audit --against read; hpotool report "
        f"--study-name plain --storage {url} draws its importances and figures, and prune-audit (without "
        "--against) reads its pruned trials\n"
    )
    # the commands the message points to run on such a study as written (the storage was left out: they
    # looked for studies/plain.db)
    pointed = shlex.split(result.stderr.split("; hpotool ")[1].split(" draws")[0])
    assert pointed[0] == "report"
    report = CliRunner().invoke(app, [*pointed, "--out", str(tmp_path / "r.json")])
    assert report.exit_code == 0, report.output
    (said,) = json.loads((tmp_path / "r.json").read_text())["audit"]  # the report's audit says it alike
    assert said == "no audit: " + result.stderr.removeprefix("error: ").rstrip("\n")
    pruned = CliRunner().invoke(app, ["prune-audit", *pointed[1:]])
    assert pruned.exit_code == 0, pruned.output


def test_refine_that_would_fix_every_parameter_says_what_it_fixes_and_what_to_do(tmp_path: Path) -> None:
    # It said only "every parameter would be fixed; nothing is left to search": not what it fixed, nor that
    # the study is ready to train (the audit had just said to refine it), nor that a larger --keep-top
    # keeps the choices the top trials did not all make.
    url = f"sqlite:///{tmp_path / 's.db'}"
    space = {"model.activation": {"type": "categorical", "choices": ["relu", "gelu", "tanh"]}}
    opt, study = stored_study("settled", space, storage=url)
    value = {"relu": 1.0, "gelu": 2.0, "tanh": 3.0}
    study.optimize(lambda t: value[suggest(t, opt.search_space)["model.activation"]], n_trials=32)
    out = tmp_path / "stage2.yaml"
    result = CliRunner().invoke(
        app, ["refine", "--study-name", "settled", "--storage", url, "--out", str(out)]
    )
    assert result.exit_code == 2
    assert result.stderr == (
        "error: study 'settled': refine would leave nothing to search: it fixes model.activation at relu; "
        f"train the best trial as it is with hpotool train-from-best --study-name settled --storage {url}, "
        "or keep the choices the top trials did not all make with a larger --keep-top (0.25 now; 1 keeps "
        "them all)\n"
    )
    assert not out.exists() and not (tmp_path / "stage2.run.yaml").exists()
    # the audit said "refine the space (hpotool refine) rather than add trials." of this study
    audit = CliRunner().invoke(app, ["audit", "--study-name", "settled", "--storage", url, "--json"])
    assert audit.exit_code == 0, audit.output
    assert json.loads(audit.stdout)["improvement"] == (
        "no longer improving: the best of the last third of trials (1) did not beat 1; refine would leave "
        "nothing to search: it fixes model.activation at relu; train the best trial as it is with "
        f"hpotool train-from-best --study-name settled --storage {url}, or keep the choices the top trials did "
        "not all make with a larger hpotool refine --keep-top (0.25 now; 1 keeps them all)."
    )
    kept = CliRunner().invoke(
        app, ["refine", "--study-name", "settled", "--storage", url, "--out", str(out), "--keep-top", "1"]
    )
    assert kept.exit_code == 0, kept.output  # as the line says
    assert "model.activation" in yaml.safe_load(out.read_text())["search_space"]


@pytest.mark.parametrize("keep_top", [0.0, 1.5])
def test_keep_top_is_checked(keep_top: float) -> None:
    from hpotool.errors import HpoError

    with pytest.raises(HpoError, match="--keep-top must be in"):
        refine_study(synthetic_study("synth", SPACE, 6, seed=1), keep_top)


def test_audit_reads_a_chosen_null_as_a_value_and_counts_every_complete_trial() -> None:
    space = {
        "grad_clip": {"type": "categorical", "choices": [None, 1000.0]},
        "optimizer.lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
    }
    opt, study = stored_study("gc", space)
    study.enqueue_trial({"grad_clip": None, "optimizer.lr": 1e-3})
    for i in range(8):
        trial = study.ask()
        params = suggest(trial, opt.search_space)
        trial.set_constraint("n_params <= 10", 1.0 if i % 2 else -1.0)  # odd trials infeasible
        study.tell(trial, 0.0 if i == 0 else 1.0 + abs(math.log10(params["optimizer.lr"]) + 3))
    report = audit_study(study)
    grad_clip = next(p for p in report.params if p.name == "grad_clip")
    assert grad_clip.best is None and "not set in the best trial" not in grad_clip.advice
    assert report.complete == 8  # infeasible trials are complete too; only the best must be feasible


def test_audit_shows_a_conditional_parameter_the_best_trial_did_not_set_as_not_set(tmp_path: Path) -> None:
    """The audit table showed momentum, which the best trial (adam) did not set, as `None`, which reads as a
    value (and is no spelling hpotool uses: a chosen null is `null`)."""
    space = {
        "optimizer.name": {"type": "categorical", "choices": ["adam", "sgd"]},
        "optimizer.momentum": {"type": "float", "low": 0.5, "high": 0.9, "when": {"optimizer.name": "sgd"}},
    }
    storage = f"sqlite:///{tmp_path / 'cond.db'}"
    opt, study = stored_study("cond", space, storage=storage)
    study.enqueue_trial({"optimizer.name": "adam"})
    for i in range(6):
        trial = study.ask()
        suggest(trial, opt.search_space)
        study.tell(trial, float(i))
    result = CliRunner().invoke(
        app, ["audit", "--study-name", "cond", "--storage", storage], terminal_width=200
    )
    assert result.exit_code == 0, result.output
    row = next(line for line in result.stdout.splitlines() if "optimizer.momentum" in line and "│" in line)
    assert "not set" in row and "None" not in row
    shown = CliRunner().invoke(app, ["audit", "--study-name", "cond", "--storage", storage, "--json"])
    momentum = next(p for p in json.loads(shown.stdout)["params"] if p["name"] == "optimizer.momentum")
    assert momentum["best"] is None and momentum["set_in_best"] is False


def test_audit_of_a_study_without_a_complete_trial_says_what_it_has_and_what_to_do() -> None:
    study = synthetic_study("pruned", SPACE, 0, seed=0)
    for _ in range(2):
        trial = study.ask()
        suggest(trial, OptimizeConfig.model_validate({"study_name": "p", "search_space": SPACE}).search_space)
        trial.report(1.0, step=0)
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    with pytest.raises(HpoError) as err:
        audit_study(study)
    assert str(err.value) == (
        "study 'pruned' has no complete trial yet (pruned 2); its pruner (median) pruned them all before the "
        "last epoch: loosen the optimize config's pruner (or pruner: {name: nop}) and run hpotool optimize again"
    )


def test_audit_counts_the_epochs_pruned_trials_ran() -> None:
    study = synthetic_study("pruned", SPACE, 6, seed=0)
    for _ in range(2):
        trial = study.ask()
        suggest(trial, OptimizeConfig.model_validate({"study_name": "p", "search_space": SPACE}).search_space)
        trial.report(1.0, step=0)
        trial.report(0.9, step=1)  # Optuna's step counts from 0: two epochs run
        trial.set_user_attr("epochs_run", 2)
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    epochs = RunConfig().epochs
    assert (
        f"2 of 8 finished trials were pruned, after a median of 2 of {epochs} epochs."
        in audit_study(study).findings
    )


def test_refine_drops_a_conditional_parameter_whose_condition_the_stage_fixes_away() -> None:
    space = {
        "optimizer.name": {"type": "categorical", "choices": ["adam", "sgd"]},
        "optimizer.lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
        "optimizer.momentum": {"type": "float", "low": 0.5, "high": 0.99, "when": {"optimizer.name": "sgd"}},
    }
    opt, study = stored_study("cond", space, optuna.samplers.TPESampler(seed=0))

    def adam_wins(trial: optuna.Trial) -> float:
        p = suggest(trial, opt.search_space)
        sgd = 5.0 + p["optimizer.momentum"] if p["optimizer.name"] == "sgd" else 0.0
        return sgd + (math.log10(p["optimizer.lr"]) + 2) ** 2

    study.optimize(adam_wins, n_trials=40)
    ref = refine_study(study)
    assert ref.run["optimizer"]["name"] == "adam"
    assert list(ref.optimize["search_space"]) == ["optimizer.lr"]
    assert (
        "optimizer.momentum: its condition can no longer hold (optimizer.name is fixed at adam); "
        "removed from the search" in ref.changes
    )
    assert [c for c in ref.changes if c.startswith("optimizer.momentum")] == [
        "optimizer.momentum: its condition can no longer hold (optimizer.name is fixed at adam); "
        "removed from the search"
    ]


def _section_space() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """A space searching the optimizer section whole (sgd or adam), with sgd's momentum under a `when:` on it;
    the two sections and the space, fresh for each test."""
    sgd, adam = {"name": "sgd", "lr": 0.01}, {"name": "adam", "lr": 0.001}
    space = {
        "optimizer": {"type": "categorical", "choices": [sgd, adam]},
        "model.dropout": {"type": "float", "low": 0.0, "high": 0.5},
        "optimizer.momentum": {
            "type": "float",
            "low": 0.5,
            "high": 0.99,
            "when": {"optimizer": {"in": [sgd]}},
        },
    }
    return sgd, adam, space


@pytest.mark.parametrize("winner", ["sgd", "adam"])
def test_refine_fixing_a_whole_section_settles_the_conditions_on_it(winner: str) -> None:
    """A stage that fixes a section searched whole (`optimizer: {choices: [{name: sgd, ...}, ...]}`) writes it
    into its run config, where a condition cannot read it: a condition on it that holds is dropped (the
    stage searched optimizer.momentum under a `when:` on a section no longer searched, which optimize
    refuses), one that fails removes its parameter, naming the fixed section."""
    sgd, adam, space = _section_space()
    opt, study = stored_study("sec", space, optuna.samplers.TPESampler(seed=0))

    def objective(trial: optuna.Trial) -> float:
        p = suggest(trial, opt.search_space)
        return (0.0 if p["optimizer"]["name"] == winner else 5.0) + (p["model.dropout"] - 0.2) ** 2

    study.optimize(objective, n_trials=40)
    ref = refine_study(study)
    chosen = sgd if winner == "sgd" else adam
    assert {k: ref.run["optimizer"][k] for k in chosen} == chosen and "optimizer" not in ref.optimize[
        "search_space"
    ]
    momentum = ref.optimize["search_space"].get("optimizer.momentum")
    if winner == "sgd":
        assert momentum is not None and momentum["when"] is None
    else:
        assert momentum is None and (
            "optimizer.momentum: its condition can no longer hold (optimizer is fixed at {lr: 0.001, name: adam}); "
            "removed from the search" in ref.changes
        )
    # the chosen section as every other place shows it, its keys sorted, not in the YAML's order
    shown = "{lr: 0.01, name: sgd}" if winner == "sgd" else "{lr: 0.001, name: adam}"
    assert any(shown in line for line in ref.changes) and not any("{name: " in line for line in ref.changes)


@pytest.mark.parametrize("whole", [True, False])
def test_refine_removes_a_parameter_whose_condition_no_kept_choice_meets(whole: bool) -> None:
    """A stage that narrows optimizer (searched whole, or optimizer.name) to adam and rmsprop removes
    optimizer.momentum, searched under a condition on the sgd choice it dropped: it kept it, and optimize
    refused the stage it wrote (with the whole section: 'search_space.optimizer.momentum: the RunConfig has
    no such path'; with optimizer.name: its condition never holds)."""
    sgd, adam, rmsprop = ({"name": n} for n in ("sgd", "adam", "rmsprop"))
    key = "optimizer" if whole else "optimizer.name"
    choices = [sgd, adam, rmsprop] if whole else ["sgd", "adam", "rmsprop"]
    space = {
        key: {"type": "categorical", "choices": choices},
        "model.dropout": {"type": "float", "low": 0.0, "high": 0.5},
        "optimizer.momentum": {"type": "float", "low": 0.5, "high": 0.99, "when": {key: {"in": choices[:1]}}},
    }
    opt, study = stored_study("sec", space)

    def objective(trial: optuna.Trial) -> float:
        p = suggest(trial, opt.search_space)
        name = p[key]["name"] if whole else p[key]
        return {"sgd": 5.0, "adam": 0.0, "rmsprop": 0.01}[name] + (p["model.dropout"] - 0.2) ** 2

    study.optimize(objective, n_trials=40)
    ref = refine_study(study)
    assert ref.optimize["search_space"].get(key, {}).get("choices") == choices[1:], ref.changes
    assert "optimizer.momentum" not in ref.optimize["search_space"]
    kept = "{name: adam}, {name: rmsprop}" if whole else "adam, rmsprop"
    assert (
        f"optimizer.momentum: its condition can no longer hold ({key} is searched only over {kept}); "
        "removed from the search" in ref.changes
    )


def test_refine_drops_the_sections_it_no_longer_chooses_from_conditions_on_them() -> None:
    """A stage that narrows optimizer (searched whole) to sgd and adam keeps optimizer.momentum, searched
    when: {optimizer: {in: [rmsprop, sgd]}}, as when: {in: [sgd]}: optimize refuses a condition naming a
    section that is no choice, as the rmsprop left in it was."""
    sgd, adam, rmsprop = {"name": "sgd"}, {"name": "adam"}, {"name": "rmsprop", "lr": 0.01}
    space = {
        "optimizer": {"type": "categorical", "choices": [rmsprop, sgd, adam]},
        "model.dropout": {"type": "float", "low": 0.0, "high": 0.5},
        "optimizer.momentum": {
            "type": "float",
            "low": 0.0,
            "high": 0.9,
            "when": {"optimizer": {"in": [rmsprop, sgd]}},
        },
    }
    opt, study = stored_study("sec", space)

    def objective(trial: optuna.Trial) -> float:
        p = suggest(trial, opt.search_space)
        return {"sgd": 0.01, "adam": 0.0, "rmsprop": 5.0}[p["optimizer"]["name"]] + (
            p["model.dropout"] - 0.2
        ) ** 2

    study.optimize(objective, n_trials=40)
    ref = refine_study(study)
    assert ref.optimize["search_space"]["optimizer"]["choices"] == [sgd, adam], ref.changes
    assert ref.optimize["search_space"]["optimizer.momentum"]["when"] == {"optimizer": {"in": [sgd]}}


def test_refine_drops_the_choices_it_no_longer_keeps_from_conditions_on_a_plain_parameter() -> None:
    """As with a section: a stage that narrows optimizer.name to sgd and adam keeps optimizer.momentum,
    searched when: {optimizer.name: {in: [rmsprop, sgd]}}, as when: {in: [sgd]}: optimize refuses a condition
    naming a value its parameter never takes, as the rmsprop left in it was."""
    space = {
        "optimizer.name": {"type": "categorical", "choices": ["rmsprop", "sgd", "adam"]},
        "model.dropout": {"type": "float", "low": 0.0, "high": 0.5},
        "optimizer.momentum": {
            "type": "float",
            "low": 0.0,
            "high": 0.9,
            "when": {"optimizer.name": {"in": ["rmsprop", "sgd"]}},
        },
    }
    opt, study = stored_study("plain", space)

    def objective(trial: optuna.Trial) -> float:
        p = suggest(trial, opt.search_space)
        return {"sgd": 0.01, "adam": 0.0, "rmsprop": 5.0}[p["optimizer.name"]] + (
            p["model.dropout"] - 0.2
        ) ** 2

    study.optimize(objective, n_trials=40)
    ref = refine_study(study)
    assert ref.optimize["search_space"]["optimizer.name"]["choices"] == ["sgd", "adam"], ref.changes
    assert ref.optimize["search_space"]["optimizer.momentum"]["when"] == {"optimizer.name": {"in": ["sgd"]}}


def test_refine_fixing_a_key_below_a_section_still_searched_whole_keeps_it_in_every_trial() -> None:
    """optimizer.lr fixed (negligible) while optimizer is still searched whole: each stage trial's choice
    replaces the section, so the lr refine wrote into the stage's run config never trained (the trials ran at
    adam's and rmsprop's default 0.001). It now stays in the stage as its one value, set after the choice."""
    from hpotool.overrides import apply_overrides

    space = {
        "optimizer": {
            "type": "categorical",
            "choices": [{"name": "sgd"}, {"name": "adam"}, {"name": "rmsprop"}],
        },
        "optimizer.lr": {"type": "float", "low": 0.001, "high": 0.1, "log": True},
        "model.dropout": {"type": "float", "low": 0.0, "high": 0.5},
    }
    opt, study = stored_study("sec", space)

    def objective(trial: optuna.Trial) -> float:
        p = suggest(trial, opt.search_space)
        return {"sgd": 5.0, "adam": 0.0, "rmsprop": 0.1}[p["optimizer"]["name"]] + 10 * (
            p["model.dropout"] - 0.2
        ) ** 2

    study.optimize(objective, n_trials=120)
    ref = refine_study(study)
    fixed = next(c for c in ref.changes if c.startswith("optimizer.lr: importance"))
    lr = study.best_trial.params["optimizer.lr"]  # fixed at the best trial's value
    stage = OptimizeConfig.model_validate(ref.optimize)
    assert [c["name"] for c in stage.search_space["optimizer"].choices] == ["adam", "rmsprop"]
    trial = optuna.create_study().ask()
    trained = apply_overrides(RunConfig.model_validate(ref.run), suggest(trial, stage.search_space))
    assert trained.optimizer.lr == lr, (fixed, trained.optimizer)


def test_audit_reads_each_pruned_trials_epochs_from_the_config_it_ran_under() -> None:
    study = synthetic_study("changed", SPACE, 4, seed=0, run={"epochs": 3})
    space = OptimizeConfig.model_validate({"study_name": "p", "search_space": SPACE}).search_space

    def prune(epochs_run: int) -> None:
        trial = study.ask()
        suggest(trial, space)
        trial.report(1.0, step=0)
        trial.set_user_attr("epochs_run", epochs_run)
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)

    prune(1)
    # `--allow-changed-config` with 30 epochs from trial 5 on, as fingerprint.check records it
    study.set_user_attr(
        "config_changes",
        [{"changes": ["run_config.epochs: 3 -> 30"], "from_trial": 5, "previous": dict(study.user_attrs)}],
    )
    study.set_user_attr("run_config", RunConfig(epochs=30).model_dump(mode="json"))
    prune(1)
    report = audit_study(study)
    assert report.planned_epochs is None  # 3 and 30: no single number
    assert "2 of 6 finished trials were pruned, after a median of 1 epochs." in report.findings
    study.set_user_attr("run_config", RunConfig(epochs=3).model_dump(mode="json"))
    study.set_user_attr("config_changes", [])
    assert (
        "2 of 6 finished trials were pruned, after a median of 1 of 3 epochs." in audit_study(study).findings
    )


def test_audit_says_a_best_value_outside_the_changed_range_is_outside_it_not_on_its_edge() -> None:
    study = synthetic_study("moved", SPACE, 20, seed=0)
    best = study.best_trial
    narrowed = dict(SPACE) | {
        "optimizer.lr": {"type": "float", "low": best.params["optimizer.lr"] * 2, "high": 1e-1, "log": True}
    }
    opt = OptimizeConfig.model_validate(
        {"study_name": "moved", "metric": "val_loss", "search_space": narrowed}
    )
    study.set_user_attr("optimize_config", opt.model_dump(mode="json"))  # as --allow-changed-config stores it
    lr = next(p for p in audit_study(study).params if p.name == "optimizer.lr")
    assert lr.advice.startswith("optimizer.lr best at ")
    assert (
        f"outside its current range {lr.bounds}: the search space was changed after the best trial "
        f"(#{best.number}) ran; put " in lr.advice
    )
    assert "bottom" not in lr.advice
    change = next(c for c in refine_study(study).changes if c.startswith("optimizer.lr"))
    assert change.startswith("optimizer.lr: best below the current range; range widened"), change


def test_audit_says_a_parameter_added_after_the_best_trial_is_new_not_conditional() -> None:
    study = synthetic_study("grown", SPACE, 6, seed=0)
    best = study.best_trial
    grown = dict(SPACE) | {"model.hidden.0": {"type": "int", "low": 8, "high": 64}}
    opt = OptimizeConfig.model_validate({"study_name": "grown", "metric": "val_loss", "search_space": grown})
    study.set_user_attr("optimize_config", opt.model_dump(mode="json"))  # as --allow-changed-config stores it
    hidden = next(p for p in audit_study(study).params if p.name == "model.hidden.0")
    assert hidden.advice == (
        f"model.hidden.0 is not set in the best trial: the search space was changed after the best trial "
        f"(#{best.number}) ran, adding model.hidden.0."
    )


def test_refine_of_a_multi_objective_study_names_refine_and_what_to_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'mo.db'}"
    optuna.create_study(study_name="mo", storage=url, directions=["minimize", "minimize"])
    for command in (["audit"], ["refine", "--out", str(tmp_path / "stage2.yaml")]):
        result = CliRunner().invoke(app, [*command, "--study-name", "mo", "--storage", url])
        assert result.exit_code == 2
        assert result.stderr == (
            "error: study 'mo' has 2 objectives; audit and refine work on single-objective studies (hpotool "
            f"report --study-name mo --storage {url} shows each objective's importances and the Pareto front)\n"
        )
    # a study in the default storage is named without it
    default = tmp_path / "studies" / "mo.db"
    default.parent.mkdir()
    default.write_bytes((tmp_path / "mo.db").read_bytes())
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["audit", "--study-name", "mo"])
    assert "(hpotool report --study-name mo shows each" in result.stderr, result.stderr


def test_audit_says_how_few_trials_meet_the_constraints() -> None:
    opt, study = stored_study("few", SPACE)
    for i in range(8):
        trial = study.ask()
        params = suggest(trial, opt.search_space)
        trial.set_constraint("n_params <= 10", -1.0 if i < 3 else 1.0)
        study.tell(trial, loss(params))
    report = audit_study(study)
    assert (report.complete, report.feasible) == (8, 3)
    assert (
        "only 3 complete trials meet the constraints: too few to tell whether the study still improves."
        in report.findings
    )


def test_refine_warm_starts_only_with_trials_that_meet_the_constraints() -> None:
    opt, study = stored_study("ws", SPACE, optuna.samplers.TPESampler(seed=0))
    for _ in range(30):
        trial = study.ask()
        params = suggest(trial, opt.search_space)
        trial.set_constraint("n_params <= 10", 1.0 if trial.number % 2 else -1.0)  # odd ones break it
        study.tell(trial, loss(params))
    ref = refine_study(study)
    feasible = {t.number: t.params for t in study.trials if t.number % 2 == 0}
    assert ref.optimize["enqueue"]
    for params in ref.optimize["enqueue"]:
        assert any(all(p[k] == v for k, v in params.items()) for p in feasible.values()), params


def test_refine_names_a_user_module_that_fails_to_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "broken_models_for_refine.py").write_text("import no_such_dependency_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    study = synthetic_study("user", SPACE, 12, seed=0)
    run = RunConfig().model_dump(mode="json") | {"model": {"name": "broken_models_for_refine:Net"}}
    study.set_user_attr("run_config", run)
    with pytest.raises(HpoError) as exc:
        refine_study(study)
    assert str(exc.value) == (
        "study 'user': run_config: model: cannot import 'broken_models_for_refine:Net': importing "
        "'broken_models_for_refine' raised ModuleNotFoundError: No module named 'no_such_dependency_xyz' "
        "at broken_models_for_refine.py:1; no_such_dependency_xyz is not installed in the Python hpotool runs "
        f"in: install it there ({sys.executable} -m pip install no_such_dependency_xyz)"
    )


def test_refine_prints_and_writes_a_next_command_that_the_shell_reads_back(tmp_path: Path) -> None:
    import shlex

    url = f"sqlite:///{tmp_path / 's.db'}"
    source = synthetic_study("quoted", SPACE, 12, seed=0)
    optuna.copy_study(from_study_name="quoted", from_storage=source._storage, to_storage=url)
    out = tmp_path / "next stage" / "it's.yaml"
    result = CliRunner().invoke(
        app, ["refine", "--study-name", "quoted", "--storage", url, "--out", str(out)], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    run_path = str(out.with_name("it's.run.yaml"))
    expected = ["hpotool", "optimize", "--run-config", run_path, "--optimize-config", str(out)]
    printed = result.stdout.splitlines()[-1]
    assert shlex.split(printed) == expected
    header = next(line for line in out.read_text().splitlines() if line.startswith("# Run it: "))
    assert shlex.split(header.removeprefix("# Run it: ")) == expected


def test_refine_names_a_ranges_step_in_its_changes_as_the_audit_does() -> None:
    """On the templates' study, refine wrote 'model.hidden.0: kept [32, 256]' for the range the audit's table
    shows as [32, 256, step 32] (and the stage keeps): a step other than 1 is part of the range."""
    space = {**SPACE, "model.dropout": {"type": "float", "low": 0.0, "high": 0.5, "step": 0.05}}
    ref = refine_study(synthetic_study("stepped", space, 12, seed=0))
    assert (
        "model.dropout: kept [0, 0.5] step 0.05; 12 trials to rank, too few to narrow by (30 needed)"
        in ref.changes
    )
    assert ref.optimize["search_space"]["model.dropout"]["step"] == 0.05


def test_refine_lists_its_changes_wrapped_at_spaces_as_audit_lists_its_findings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # At 80 columns a long change went on at the start of the next line, mid-range
    # ("range widened [0.0001, 0.03] log -> " / "[0.0001, 0.3] log"), unlike the audit's findings.
    import hpotool.cli.terminal

    url = f"sqlite:///{tmp_path / 's.db'}"
    synthetic_study("wrapped", SPACE, 12, seed=0, storage=url)
    monkeypatch.setattr(hpotool.cli.terminal.out_console(), "width", 80)
    out = tmp_path / "stage2.yaml"
    result = CliRunner().invoke(
        app,
        ["refine", "--study-name", "wrapped", "--storage", url, "--out", str(out)],
        catch_exceptions=False,
    )
    lines = result.stdout.splitlines()
    changes = lines[: next(i for i, line in enumerate(lines) if line.startswith("wrote "))]
    text = "\n".join(changes)
    assert max(len(line) for line in changes) <= 80, text
    assert all(line.startswith(("- ", "  ")) for line in changes), text
    header = [
        line.removeprefix("#   - ") for line in out.read_text().splitlines() if line.startswith("#   - ")
    ]
    assert _bullets(changes) == header, text


def test_refine_out_a_folder_is_refused_before_the_study_is_read(tmp_path: Path) -> None:
    (tmp_path / "stages").mkdir()
    for force in ([], ["--force"]):
        result = CliRunner().invoke(
            app, ["refine", "--study-name", "nope", "--out", str(tmp_path / "stages"), *force]
        )
        assert result.exit_code == 2
        assert result.stderr == (
            f"error: --out: {tmp_path / 'stages'} is a folder; give a file, e.g. --out "
            f"{tmp_path / 'stages' / 'stage2.yaml'}\n"
        )


@pytest.mark.parametrize("name", ["s.json", "s.txt"])
def test_refine_out_with_a_suffix_it_does_not_write_is_refused(tmp_path: Path, name: str) -> None:
    # it wrote YAML with comments into s.json and named the partner s.run.yaml
    url = f"sqlite:///{tmp_path / 's.db'}"
    source = synthetic_study("again", SPACE, 12, seed=0)
    optuna.copy_study(from_study_name="again", from_storage=source._storage, to_storage=url)
    out = tmp_path / name
    result = CliRunner().invoke(app, ["refine", "--study-name", "again", "--storage", url, "--out", str(out)])
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: --out {out}: refine writes YAML (the stage's config and its .run.yaml beside it), not "
        f"{out.suffix}; give a .yaml or .yml file, e.g. --out {tmp_path / 's.yaml'}\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.db"]


def test_refine_never_overwrites_a_stage_without_force(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    source = synthetic_study("again", SPACE, 12, seed=0)
    optuna.copy_study(from_study_name="again", from_storage=source._storage, to_storage=url)
    out = tmp_path / "stage2.yaml"
    run_path = tmp_path / "stage2.run.yaml"
    args = ["refine", "--study-name", "again", "--storage", url, "--out", str(out)]
    runner = CliRunner()
    assert runner.invoke(app, args, catch_exceptions=False).exit_code == 0
    out.write_text("# edited by hand\n")
    run_path.write_text("# edited by hand too\n")
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.stderr == (
        f"error: --out: {out} and {run_path} already exist; choose another --out, or pass --force to overwrite\n"
    )
    out.unlink()  # the RunConfig beside it is refused alone too
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: --out: {run_path} already exists; choose another --out, or pass --force to overwrite\n"
    )
    assert not out.exists() and run_path.read_text() == "# edited by hand too\n"
    nope = runner.invoke(app, ["refine", "--study-name", "nope", "--storage", url, "--out", str(run_path)])
    assert nope.exit_code == 2 and "already exists" in nope.stderr  # checked before the study is read
    out.write_text("# edited by hand\n")
    result = runner.invoke(app, [*args, "--force"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert out.read_text().startswith("# Stage refined from study 'again'")
    assert run_path.read_text().startswith("# RunConfig for study 'again_stage2'")


def pruned_synthetic_study(
    n_trials: int, complete: int, enqueue: tuple[dict[str, float], ...] = ()
) -> optuna.Study:
    """A study of the synthetic loss whose trials report 10 epochs (the loss shrinking towards its final
    value) and, but for the first `complete`, stop after 2 epochs, or after 5 for every third trial;
    its first trials take the `enqueue`d values."""
    opt, study = stored_study("pruned", SPACE)
    for params in enqueue:
        study.enqueue_trial(params)
    for i in range(n_trials):
        trial = study.ask()
        final = loss({**run_fixed(None), **suggest(trial, opt.search_space)})
        epochs = 10 if i < complete else 5 if i % 3 == 0 else 2
        for epoch in range(epochs):
            trial.report(final + 1.0 / (epoch + 1), step=epoch)
        trial.set_user_attr("epochs_run", epochs)
        if i < complete:
            study.tell(trial, final)
        else:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    return study


def test_a_pruned_study_ranks_every_finished_trial_as_successive_halving_does() -> None:
    from hpotool.importance import basis

    study = pruned_synthetic_study(24, complete=2)  # 3 parameters: 4 trials make a rung
    on = basis(study)
    # Epochs 1-2: all 24 trials; 3-5: the 2 complete and the 7 pruned ones of every third trial.
    assert on.step == 4 and on.complete == 2 and len(on.trials) == 24
    deep = [t for t in study.trials if 4 in t.intermediate_values]
    shallow = [t for t in study.trials if 4 not in t.intermediate_values]
    assert len(deep) == 9  # ranked first, by what they reported after 5 epochs; then the rest by epoch 2
    assert [t.number for t in on.trials] == [
        *(t.number for t in sorted(deep, key=lambda t: t.intermediate_values[4])),
        *(t.number for t in sorted(shallow, key=lambda t: t.intermediate_values[1])),
    ]
    assert [on.target(t) for t in on.trials] == list(range(24))  # type: ignore[misc]
    assert on.describe("val_loss") == (
        "24 finished trials ranked as successive halving ranks them: first those that got furthest, compared "
        "by val_loss after 5 epochs, the deepest 4 or more trials reached (2 complete)"
    )
    one = replace(on, step=0)  # read "after 1 epochs"
    assert "compared by val_loss after 1 epoch, the deepest 4 or more trials reached" in one.describe(
        "val_loss"
    )
    enough = basis(pruned_synthetic_study(24, complete=4))  # complete trials first as soon as a rung's worth
    assert enough.step is None and {t.number for t in enough.trials[:4]} == {0, 1, 2, 3}


def test_a_trial_that_diverged_ranks_last_in_a_pruned_study() -> None:
    """A trial pruned as diverged (a NaN final metric after finite epochs, or a NaN loss in its last epoch)
    ranked by the finite values it reported before: it got furthest, so among the best, and refine
    narrowed towards the learning rate that diverged."""
    from hpotool.importance import basis

    study = pruned_synthetic_study(24, complete=2)
    trial = study.ask()
    space = OptimizeConfig.model_validate({"study_name": "s", "metric": "val_loss", "search_space": SPACE})
    suggest(trial, space.search_space)
    for epoch in range(10):
        trial.report(-1.0, step=epoch)  # better than every other trial at every epoch
    trial.set_user_attr("diverged_at", {"epoch": 9, "metric": "val_loss", "value": "nan"})
    study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    on = basis(study)
    assert len(on.trials) == 25 and on.trials[-1].number == trial.number, [t.number for t in on.trials]


def test_a_pruned_study_with_one_complete_trial_that_meets_the_constraints_says_meets() -> None:
    from hpotool.importance import basis

    study = pruned_synthetic_study(24, complete=1)
    trial = study.ask()
    space = OptimizeConfig.model_validate({"study_name": "s", "metric": "val_loss", "search_space": SPACE})
    suggest(trial, space.search_space)
    trial.report(1.0, step=0)
    trial.set_constraint("n_params <= 10", 1.0)  # complete, but breaks the constraint
    study.tell(trial, 1.0)
    one = basis(study)
    assert one.complete == 1 and one.describe("val_loss").endswith("(1 complete that meets the constraints)")


def test_importances_of_a_pruned_study_see_what_took_trials_furthest() -> None:
    from hpotool.importance import param_importances

    space = {"x": {"type": "float", "low": 0.0, "high": 1.0}, "y": {"type": "float", "low": 0.0, "high": 1.0}}
    opt = OptimizeConfig.model_validate({"study_name": "s", "metric": "val_loss", "search_space": space})
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for i in range(40):  # the higher x the lower the loss, y changes nothing; two trials complete
        trial = study.ask()
        x = suggest(trial, opt.search_space)["x"]
        epochs = 10 if i < 2 else 5 if x > 0.5 else 2
        for epoch in range(epochs):
            trial.report(1.0 - 0.05 * epoch - 0.1 * x, step=epoch)
        study.tell(trial, 0.5) if i < 2 else study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    imp = param_importances(study)
    assert list(imp) == ["x", "y"] and imp["x"] > 0.8


def test_audit_and_refine_fix_and_narrow_nothing_on_too_few_trials() -> None:
    at_the_edge = {"optimizer.lr": 1e-2, "model.dropout": 0.2, "optimizer.weight_decay": 1e-4}  # the best
    study = pruned_synthetic_study(24, complete=2, enqueue=(at_the_edge,))
    report = audit_study(study)
    assert report.basis_trials == 24 and not any(p.negligible for p in report.params)
    assert not any("barely matters" in f for f in report.findings)
    assert (
        "the importances and top trials rest on 24 trials, too few to fix or narrow parameters by (refine "
        "needs 30); run more trials first." in report.findings
    )
    ref = refine_study(study, report=report)
    space = ref.optimize["search_space"]
    assert set(space) == set(SPACE)  # nothing fixed
    for name in ("model.dropout", "optimizer.weight_decay"):
        assert {k: space[name][k] for k in ("low", "high")} == {k: SPACE[name][k] for k in ("low", "high")}
    assert "model.dropout: kept [0, 0.5]; 24 trials to rank, too few to narrow by (30 needed)" in ref.changes
    assert space["optimizer.lr"]["high"] > 1e-2  # an edge is still widened: that reads the best trial alone


def test_refine_narrows_a_pruned_study_of_thirty_trials_around_those_that_got_furthest() -> None:
    study = pruned_synthetic_study(40, complete=2)
    report = audit_study(study)
    assert report.basis_trials == 40 and not any("too few to fix" in f for f in report.findings)
    ref = refine_study(study, report=report)
    assert any(" narrowed " in c for c in ref.changes), ref.changes


def test_refine_fixes_and_narrows_on_thirty_trials() -> None:
    report = audit_study(synthetic_study("synth", SPACE, 30, seed=0))
    assert report.basis_trials == 30
    assert not any("too few to fix" in f for f in report.findings)


def test_refine_widens_a_negligible_parameter_whose_best_is_on_an_edge_as_the_audit_advises() -> None:
    study = synthetic_study("synth", SPACE, 40, seed=0)
    opt = OptimizeConfig.model_validate({"study_name": "synth", "search_space": SPACE})
    # The best the space holds (lr at its top, dropout at its optimum), with weight decay at its top too.
    study.enqueue_trial({"optimizer.lr": 1e-2, "model.dropout": 0.2, "optimizer.weight_decay": 1e-2})
    study.optimize(lambda t: loss({**run_fixed(None), **suggest(t, opt.search_space)}), n_trials=1)
    report = audit_study(study)
    wd = next(p for p in report.params if p.name == "optimizer.weight_decay")
    assert wd.negligible and wd.edge == "high" and wd.advice.endswith(": widen the range.")
    space = refine_study(study, report=report).optimize["search_space"]
    assert space["optimizer.weight_decay"]["high"] > 1e-2  # widened, not fixed at the edge


def test_widening_a_count_below_its_range_stops_at_one() -> None:
    from hpotool.search_space import IntParam
    from hpotool.stage_ranges import widen_range

    run = RunConfig()
    widened, change = widen_range(IntParam(type="int", low=32, high=256), "low", run, "model.hidden.0")
    assert (widened.low, widened.high) == (1, 256), change  # it went to 0: an MLP layer of no units
    stepped, change = widen_range(
        IntParam(type="int", low=32, high=256, step=32), "low", run, "model.hidden.0"
    )
    assert (stepped.low, stepped.high) == (32, 256) and "no wider range is valid" in change


@pytest.mark.parametrize(
    ("low", "high", "step", "edge", "widened"),
    [
        (0.1, 0.7, 0.3, "low", None),  # went to -0.2: nn.Dropout refused it, and optimize the stage
        (0.3, 0.9, 0.3, "low", (0.0, 0.9)),
        (0.45, 0.65, 0.2, "low", (0.25, 0.65)),
        (0.1, 0.7, 0.3, "high", None),  # went to 1.0
        (0.0, 0.9, 0.3, "high", None),  # went to 1.2
        (0.1, 0.5, 0.4, "high", (0.1, 0.9)),
    ],
)
def test_widening_a_stepped_share_keeps_to_its_steps_inside_zero_to_one(
    low: float, high: float, step: float, edge: str, widened: tuple[float, float] | None
) -> None:
    # The step rounding ran after the rules that keep a share in [0, 1): dropout [0.1, 0.7] step 0.3 best at
    # 0.1 was widened to [-0.2, 0.7], a stage whose every trial drawing -0.2 fails (optimize refused it).
    from hpotool.search_space import FloatParam
    from hpotool.stage_ranges import widen_range

    p = FloatParam(type="float", low=low, high=high, step=step)
    out, change = widen_range(p, edge, RunConfig(), "model.dropout")
    if widened is None:
        assert out == p and "no wider range is valid" in change, change
    else:
        assert (out.low, out.high) == widened, change


@pytest.mark.parametrize(("low", "high", "step", "optimum"), [(0.1, 0.4, 0.1, 0.32), (0.2, 0.8, 0.2, 0.62)])
def test_narrowing_a_stepped_range_stays_inside_it(
    low: float, high: float, step: float, optimum: float
) -> None:
    # The top trials reached the range's top, and (high - low) / step came out a hair above its whole
    # number of steps (3.0000000000000004): the ceiling added a step, so dropout [0.1, 0.4] step 0.1 was
    # "narrowed" to [0.2, 0.5], and [0.2, 0.8] step 0.2 to [0.4, 1.0], a dropout that zeroes every unit.
    space = {
        "optimizer.lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
        "model.dropout": {"type": "float", "low": low, "high": high, "step": step},
    }
    opt, study = stored_study("stepped", space)

    def objective(trial: optuna.Trial) -> float:
        p = suggest(trial, opt.search_space)
        return (math.log10(p["optimizer.lr"]) + 2.5) ** 2 + 40 * (p["model.dropout"] - optimum) ** 2

    study.optimize(objective, n_trials=40)
    ref = refine_study(study, report=audit_study(study))
    dropout = ref.optimize["search_space"]["model.dropout"]
    assert any(c.startswith("model.dropout: narrowed") for c in ref.changes), ref.changes
    assert low <= dropout["low"] < dropout["high"] <= high, ref.changes
    OptimizeConfig.model_validate(ref.optimize)


def test_refined_bounds_are_the_four_digit_decimals_the_changes_show() -> None:
    # A narrowed bound was 1198 * 1e-05: the stage's YAML said low: 0.011980000000000001 where its change
    # line said 0.01198.
    from hpotool.stage_ranges import _round_out

    assert _round_out(0.0119812, down=True) == 0.01198 and repr(_round_out(0.0119812, down=True)) == "0.01198"
    assert repr(_round_out(0.0918433, down=False)) == "0.09185"
    assert _round_out(123456.7, down=True) == 123400.0 and _round_out(123456.7, down=False) == 123500.0
    assert _round_out(0.99996, down=False) == 1.0 and _round_out(-0.0119812, down=True) == -0.01199
    study = synthetic_study("synth", SPACE, 40, seed=0)
    space = refine_study(study, report=audit_study(study)).optimize["search_space"]
    for spec in space.values():
        for key in ("low", "high"):
            value = spec.get(key)
            if isinstance(value, float) and value:
                assert len(repr(abs(value)).replace("0.", "").lstrip("0").replace(".", "").split("e")[0]) <= 4


def test_refining_a_grid_given_as_values_keeps_the_values_inside_the_new_ranges() -> None:
    # The stage kept the study's grid (sampler.kwargs.search_space) whole, and optimize refused it:
    # "sampler.kwargs.search_space.optimizer.lr: 0.0001 lies outside search_space.optimizer.lr (...)".
    from hpotool.factories import make_sampler

    study = synthetic_study("synth", SPACE, 40, seed=0)
    grid = {
        "optimizer.lr": [1e-4, 1e-3, 1e-2],
        "model.dropout": [0.0, 0.1, 0.2, 0.3, 0.4, 0.5],
        "optimizer.weight_decay": [1e-6, 1e-4, 1e-2],
    }
    stored = study.user_attrs["optimize_config"]
    study.set_user_attr(
        "optimize_config", {**stored, "sampler": {"name": "grid", "kwargs": {"search_space": grid}}}
    )
    ref = refine_study(study)
    opt = OptimizeConfig.model_validate(ref.optimize)
    stage_grid = opt.sampler.kwargs["search_space"]
    assert set(stage_grid) == set(opt.search_space)  # fixed parameters leave the grid too
    for name, values in stage_grid.items():
        assert values and all(contains(opt.search_space[name], v) for v in values), (name, values)
    make_sampler(
        opt.sampler.name, opt.sampler.kwargs, seed=opt.seed, space=opt.search_space
    )  # optimize takes it
    assert any(c.startswith("sampler.kwargs.search_space: ") for c in ref.changes)


def test_refining_a_partial_fixed_sampler_drops_the_fixed_params_the_stage_no_longer_searches() -> None:
    # A parameter the stage fixed in its run config stayed in PartialFixedSampler's fixed_params, and optimize
    # refused the stage: "sampler.kwargs.fixed_params.optimizer.weight_decay: not in search_space".
    from hpotool.factories import make_sampler

    study = synthetic_study("synth", SPACE, 40, seed=0)
    stored = study.user_attrs["optimize_config"]
    fixed = {"optimizer.weight_decay": 1e-4, "model.dropout": 0.2}
    sampler = {
        "name": "optuna.samplers.PartialFixedSampler",
        "kwargs": {"fixed_params": fixed, "base_sampler": "tpe"},
    }
    study.set_user_attr("optimize_config", {**stored, "sampler": sampler})
    ref = refine_study(study)
    opt = OptimizeConfig.model_validate(ref.optimize)
    assert "optimizer.weight_decay" not in opt.search_space  # it does not matter: fixed
    assert opt.sampler.kwargs["fixed_params"] == {"model.dropout": 0.2}
    make_sampler(
        opt.sampler.name, opt.sampler.kwargs, seed=opt.seed, space=opt.search_space
    )  # optimize takes it
    assert "sampler.kwargs.fixed_params: dropped optimizer.weight_decay, no longer searched" in " ".join(
        ref.changes
    )


def test_refining_a_partial_fixed_sampler_reaches_a_fixed_value_the_narrowed_range_left_out() -> None:
    # The range of a parameter fixed_params fixes narrowed around top trials that ran other values (trials
    # before fixed_params was set, or enqueued ones), and optimize refused the stage: "sampler.kwargs.
    # fixed_params.model.dropout: 0.5 lies outside search_space.model.dropout ([0.1, 0.3])".
    from hpotool.factories import make_sampler

    study = synthetic_study("synth", SPACE, 40, seed=0)
    stored = study.user_attrs["optimize_config"]
    sampler = {
        "name": "optuna.samplers.PartialFixedSampler",
        "kwargs": {"fixed_params": {"model.dropout": 0.5}, "base_sampler": "tpe"},
    }
    study.set_user_attr("optimize_config", {**stored, "sampler": sampler})
    ref = refine_study(study)
    opt = OptimizeConfig.model_validate(ref.optimize)
    assert opt.sampler.kwargs["fixed_params"] == {"model.dropout": 0.5}  # the user's value, kept
    dropout = opt.search_space["model.dropout"]
    assert dropout.high == 0.5 and dropout.low > 0.0  # narrowed from below, reaching 0.5 above
    make_sampler(
        opt.sampler.name, opt.sampler.kwargs, seed=opt.seed, space=opt.search_space
    )  # optimize takes it
    said = next(c for c in ref.changes if "fixed_params fixes" in c)
    assert (
        said.startswith(f"model.dropout: [{dropout.low:g}, ")
        and f"-> [{dropout.low:g}, 0.5], to reach 0.5" in said
    )


def test_refining_a_partial_fixed_sampler_adds_back_a_fixed_choice_the_narrowed_choices_left_out() -> None:
    # As a range's: the choices narrowed to those the top trials made left out the one fixed_params fixes.
    from hpotool.factories import make_sampler

    space = {**SPACE, "batch_size": {"type": "categorical", "choices": [16, 32, 64, 128, 256]}}
    opt1, study = stored_study("cat", space, seed=0)
    for size, dropout in ((32, 0.2), (64, 0.21), (32, 0.19)):  # the top trials, the best inside the choices
        study.enqueue_trial({"optimizer.lr": 1e-2, "model.dropout": dropout, "batch_size": size})
    study.optimize(
        lambda t: loss(suggest(t, opt1.search_space)) + (t.params["batch_size"] not in (32, 64)), 40
    )
    sampler = {
        "name": "optuna.samplers.PartialFixedSampler",
        "kwargs": {"fixed_params": {"batch_size": 128}, "base_sampler": "tpe"},
    }
    study.set_user_attr("optimize_config", {**study.user_attrs["optimize_config"], "sampler": sampler})
    imp = {"optimizer.lr": 0.3, "model.dropout": 0.3, "optimizer.weight_decay": 0.1, "batch_size": 0.3}
    ref = refine_study(study, keep_top=0.05, report=audit_study(study, importances=imp))  # none negligible
    opt = OptimizeConfig.model_validate(ref.optimize)
    assert opt.search_space["batch_size"].choices == [32, 64, 128]
    make_sampler(opt.sampler.name, opt.sampler.kwargs, seed=opt.seed, space=opt.search_space)
    assert "batch_size: [32, 64] -> [32, 64, 128], to reach 128, which sampler.kwargs.fixed_params" in (
        " ".join(ref.changes)
    )


def test_refining_a_cmaes_study_keeps_its_start_point_inside_the_new_ranges() -> None:
    # x0 kept whole: a value outside a narrowed range failed every CMA-ES trial after the first
    # ('invalid bounds'), and a parameter the stage fixed stayed in it.
    from hpotool.factories import make_sampler

    study = synthetic_study("synth", SPACE, 40, seed=0)
    stored = study.user_attrs["optimize_config"]
    x0 = {"optimizer.lr": 1e-3, "model.dropout": 0.5, "optimizer.weight_decay": 1e-4}
    study.set_user_attr("optimize_config", {**stored, "sampler": {"name": "cmaes", "kwargs": {"x0": x0}}})
    ref = refine_study(study)
    opt = OptimizeConfig.model_validate(ref.optimize)
    stage_x0 = opt.sampler.kwargs["x0"]
    assert set(stage_x0) == set(opt.search_space) == {"optimizer.lr", "model.dropout"}
    assert stage_x0["optimizer.lr"] == 1e-3  # inside the widened range: kept
    assert stage_x0["model.dropout"] == opt.search_space["model.dropout"].high < 0.5  # the nearer end
    make_sampler(
        opt.sampler.name, opt.sampler.kwargs, seed=opt.seed, space=opt.search_space
    )  # optimize takes it
    said = next(c for c in ref.changes if c.startswith("sampler.kwargs.x0 (CMA-ES's start point): "))
    assert "dropped optimizer.weight_decay, no longer searched" in said and "model.dropout 0.5 -> " in said


def test_refining_a_cmaes_study_starts_a_parameter_its_stage_searches_unconditionally() -> None:
    """optimizer.momentum, searched under a `when:` on the optimizer section, which x0 leaves to CMA-ES's
    independent sampler: the stage fixes the section at sgd and drops the condition, so CMA-ES samples it,
    and optimize refused the stage ("sampler.kwargs.x0: gives no value for optimizer.momentum"). It starts at
    the middle of its new range, as CMA-ES starts a parameter without x0."""
    from hpotool.factories import make_sampler

    *_, space = _section_space()
    opt1, study = stored_study("cmx", space, optuna.samplers.TPESampler(seed=0))

    def objective(trial: optuna.Trial) -> float:
        p = suggest(trial, opt1.search_space)
        return (0.0 if p["optimizer"]["name"] == "sgd" else 5.0) + (p["model.dropout"] - 0.2) ** 2

    study.optimize(objective, n_trials=40)
    cmaes = {"name": "cmaes", "kwargs": {"x0": {"model.dropout": 0.2}}}
    study.set_user_attr("optimize_config", {**study.user_attrs["optimize_config"], "sampler": cmaes})
    ref = refine_study(study)
    opt = OptimizeConfig.model_validate(ref.optimize)
    momentum = opt.search_space["optimizer.momentum"]
    assert momentum.when is None and ref.run["optimizer"]["name"] == "sgd"
    middle = (momentum.low + momentum.high) / 2
    assert opt.sampler.kwargs["x0"] == {"model.dropout": 0.2, "optimizer.momentum": middle}
    make_sampler(
        opt.sampler.name, opt.sampler.kwargs, seed=opt.seed, space=opt.search_space
    )  # optimize takes it
    said = next(c for c in ref.changes if c.startswith("sampler.kwargs.x0 (CMA-ES's start point): "))
    assert f"added optimizer.momentum: {middle:g}, the middle of its range, which CMA-ES now samples" in said


def test_refine_names_the_run_config_with_the_suffix_of_out(tmp_path: Path) -> None:
    # `--out stage2.yml` wrote its RunConfig as stage2.run.yaml, so a stage2.yaml stage blocked it.
    url = f"sqlite:///{tmp_path / 's.db'}"
    source = synthetic_study("yml", SPACE, 12, seed=0)
    optuna.copy_study(from_study_name="yml", from_storage=source._storage, to_storage=url)
    (tmp_path / "stage2.run.yaml").write_text("# another stage's\n")
    out = tmp_path / "stage2.yml"
    result = CliRunner().invoke(app, ["refine", "--study-name", "yml", "--storage", url, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "stage2.run.yml").read_text().startswith("# RunConfig for study 'yml_stage2'")
    assert (tmp_path / "stage2.run.yaml").read_text() == "# another stage's\n"


def test_trials_and_audit_show_a_choice_as_the_yaml_spells_it(tmp_path: Path) -> None:
    # grad_clip: {choices: [null, 5.0]}: the tables showed 5.0 as 5 and null as None
    url = f"sqlite:///{tmp_path / 'gc.db'}"
    space = {
        "grad_clip": {"type": "categorical", "choices": [None, 5.0]},
        "optimizer.lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
    }
    opt, study = stored_study("gc", space, storage=url)
    study.enqueue_trial({"grad_clip": 5.0, "optimizer.lr": 1e-3})
    study.enqueue_trial({"grad_clip": None, "optimizer.lr": 2e-3})
    for i in range(2):
        trial = study.ask()
        suggest(trial, opt.search_space)
        study.tell(trial, float(i))
    table = CliRunner().invoke(
        app, ["trials", "--study-name", "gc", "--storage", url], catch_exceptions=False
    )
    assert table.exit_code == 0, table.output
    rows = [line.split("│") for line in table.stdout.splitlines() if line.startswith("│")]
    cells = {row[1].strip(): [c.strip() for c in row] for row in rows if row[1].strip().isdigit()}
    assert "5.0" in cells["0"] and "0.001" in cells["0"]
    assert "null" in cells["1"] and "None" not in cells["1"]
    audit = CliRunner().invoke(app, ["audit", "--study-name", "gc", "--storage", url], catch_exceptions=False)
    assert audit.exit_code == 0, audit.output
    line = next(x for x in audit.stdout.splitlines() if "grad_clip" in x and "│" in x)
    assert [c.strip() for c in line.split("│")][3:5] == ["5.0", "{null, 5.0}"]


@pytest.mark.parametrize("n_trials", [40, 12])
def test_audit_and_refine_read_a_list_choice_as_the_list(n_trials: int) -> None:
    # Optuna stores a list choice as its label ("[32, 16]"): the audit's best value, a value the next stage
    # fixes (40 trials: model.hidden does not matter) and its warm start (12 trials: too few to narrow by,
    # the space is kept) are the list itself, so the stage's configs validate and train it.
    widths = [[16], [32, 16], [64, 32, 16]]
    space = {**SPACE, "model.hidden": {"type": "categorical", "choices": widths}}
    study = synthetic_study("lists", space, n_trials, seed=0)
    report = audit_study(study)
    finding = next(p for p in report.params if p.name == "model.hidden")
    assert finding.best in widths and "outside its current range" not in finding.advice
    refinement = refine_study(study, report=report)
    stage_space = refinement.optimize["search_space"]
    if n_trials == 40:
        assert (
            f"model.hidden: importance 0.00; removed from the search, fixed at {finding.best}"
            in refinement.changes
        )
        assert "model.hidden" not in stage_space and refinement.run["model"]["hidden"] == finding.best
    else:
        assert stage_space["model.hidden"]["choices"] == widths
        queued = [p["model.hidden"] for p in refinement.optimize["enqueue"]]
        assert queued[0] == finding.best and all(q in widths for q in queued)
    assert OptimizeConfig.model_validate(refinement.optimize).enqueue == refinement.optimize["enqueue"]


def test_narrowing_or_widening_a_conditional_categorical_keeps_its_condition() -> None:
    # The next stage searched optimizer.momentum for adam too: its `when: {optimizer.name: sgd}` was lost.
    from hpotool.search_space import CategoricalParam
    from hpotool.stage_ranges import _extend_choices, narrow_range

    p = CategoricalParam(type="categorical", choices=[0.5, 0.7, 0.9], when={"optimizer.name": "sgd"})
    narrowed, _, change = narrow_range(p, "optimizer.momentum", [0.7, 0.9, 0.9])
    assert change == "optimizer.momentum: choices [0.5, 0.7, 0.9] -> [0.7, 0.9]"
    assert narrowed is not None and narrowed.when == {"optimizer.name": "sgd"}
    sizes = CategoricalParam(type="categorical", choices=[16, 32], when={"model.layers": {"ge": 2}})
    widened, change = _extend_choices(sizes, "high", RunConfig(), "model.hidden.1")
    assert change == "model.hidden.1: best at the high edge; added choice 64"
    assert widened.when == {"model.layers": {"ge": 2}}


def test_refine_change_lines_spell_choices_as_the_yaml_does() -> None:
    # They read as Python: choices ['relu', 'gelu', 'tanh'] -> ['relu', 'gelu'], fixed at 'relu'.
    from hpotool.search_space import CategoricalParam
    from hpotool.stage_ranges import narrow_range

    p = CategoricalParam(type="categorical", choices=["relu", "gelu", "tanh"])
    _, _, change = narrow_range(p, "model.activation", ["relu", "gelu"])
    assert change == "model.activation: choices [relu, gelu, tanh] -> [relu, gelu]"
    _, fixed, change = narrow_range(p, "model.activation", ["gelu", "gelu"])
    assert fixed == "gelu" and change == "model.activation: every top trial chose gelu; fixed at gelu"
    widths = CategoricalParam(type="categorical", choices=[[16], [32, 16], None])
    _, _, change = narrow_range(widths, "model.hidden", [[32, 16], None])
    assert change == "model.hidden: choices [[16], [32, 16], null] -> [[32, 16], null]"


def test_the_audit_counts_one_complete_trial_in_the_singular() -> None:
    """It said "only 1 complete trials: too few to tell whether the study still improves."."""
    report = audit_study(synthetic_study("one", SPACE, 1, seed=0))
    assert report.improvement == "only 1 complete trial: too few to tell whether the study still improves."
    # and said "over 1 complete trials", "rest on 1 trials", "1 trials to rank"
    assert report.basis == "1 complete trial"
    assert "the importances and top trials rest on 1 trial, too few" in " ".join(report.findings)
    changes = refine_study(synthetic_study("one", SPACE, 1, seed=0), report=report).changes
    assert (
        "optimizer.lr: kept [0.0001, 0.01] log; 1 trial to rank, too few to narrow by (30 needed)" in changes
    )
    assert audit_study(synthetic_study("two", SPACE, 2, seed=0)).improvement.startswith(
        "only 2 complete trials:"
    )


def test_refine_removes_a_final_override_no_component_of_the_stage_takes() -> None:
    """A study of optimizer.name over sgd and adam with final.overrides.optimizer.momentum (sgd takes it): a
    stage that fixes adam kept the override, and optimize refused the stage refine wrote ('final.overrides.
    optimizer.momentum: the run config has no such key')."""
    from hpotool.final_rules import check_final

    space = {
        "optimizer.name": {"type": "categorical", "choices": ["sgd", "adam"]},
        "optimizer.lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
    }
    final = {"overrides": {"optimizer.momentum": 0.5, "epochs": 3}}
    opt, study = stored_study("fin", space, optuna.samplers.TPESampler(seed=0), final=final)

    def adam_wins(trial: optuna.Trial) -> float:
        p = suggest(trial, opt.search_space)
        return (5.0 if p["optimizer.name"] == "sgd" else 0.0) + (math.log10(p["optimizer.lr"]) + 2) ** 2

    study.optimize(adam_wins, n_trials=40)
    ref = refine_study(study)
    assert ref.run["optimizer"]["name"] == "adam"
    assert ref.optimize["final"]["overrides"] == {"epochs": 3}
    assert (
        "final.overrides.optimizer.momentum: removed; the stage fixes optimizer at adam, which takes no momentum"
        in ref.changes
    )
    check_final(RunConfig.model_validate(ref.run), OptimizeConfig.model_validate(ref.optimize), "stage2.yaml")


@pytest.mark.parametrize("where", ["seed", "sampler.kwargs.seed"])
def test_a_refined_stage_draws_new_points_not_the_first_stages_again(
    tmp_path: Path, run_dict: dict, opt_dict: dict, where: str
) -> None:
    from .tiny_study import run_tiny_study

    # 6 trials: the ranges are kept (too few to narrow by), as they are by a stage of a small study
    opt_dict["n_trials"] = 6
    if where == "sampler.kwargs.seed":
        opt_dict["sampler"] = {"name": "random", "kwargs": {"seed": 7}}
    study = run_tiny_study(tmp_path, run_dict, opt_dict)
    ref = refine_study(study)
    first = {tuple(sorted(t.params.items())) for t in study.trials}
    out = tmp_path / "stage2.yaml"
    stage_opt_path, stage_run_path = write_refinement(ref, out, "tiny")
    stage = write_yaml(out, {**load_optimize_config(stage_opt_path).model_dump(mode="json"), "n_trials": 6})
    result = CliRunner().invoke(
        app, ["optimize", "-r", str(stage_run_path), "-o", str(stage), "-q"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    stage_study = optuna.load_study(study_name="tiny_stage2", storage=opt_dict["storage"])
    again = [t.number for t in stage_study.trials if tuple(sorted(t.params.items())) in first]
    # only the warm start: the best trials it enqueued, trials 0..2
    assert again == list(range(len(ref.optimize["enqueue"])))
    assert any(c.startswith(f"{where}: ") for c in ref.changes)


def test_audit_advises_widening_only_a_range_that_refine_can_widen() -> None:
    # dropout best at 0 and a layer count best at 1: nothing lies below either, and refine keeps both
    # ranges ("no wider range is valid"); the audit said "widen the range" for each, stage after stage.
    space = {
        "model.dropout": {"type": "float", "low": 0.0, "high": 0.5},
        "model.layers": {"type": "int", "low": 1, "high": 3},
        "optimizer.lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
    }
    opt, study = stored_study("floor", space)
    study.enqueue_trial({"model.dropout": 0.0, "model.layers": 1, "optimizer.lr": 1e-2})

    def objective(t: optuna.Trial) -> float:
        p = suggest(t, opt.search_space)
        return p["model.dropout"] + p["model.layers"] - math.log10(p["optimizer.lr"]) / 10

    study.optimize(objective, n_trials=8)
    advice = {p.name: p.advice for p in audit_study(study).params}
    assert advice["model.dropout"] == (
        "model.dropout best at 0, the bottom of [0, 0.5], as low as it can go: nothing to widen."
    )
    assert advice["model.layers"].endswith(", as low as it can go: nothing to widen.")
    assert advice["optimizer.lr"].endswith(": widen the range.")  # 1e-2 is not the highest lr there is
    space_out = refine_study(study).optimize["search_space"]
    assert space_out["model.dropout"]["low"] == 0.0 and space_out["model.layers"]["low"] == 1
    assert space_out["optimizer.lr"]["high"] > 1e-2


def test_the_stage_file_writes_each_parameter_as_the_templates_do(tmp_path: Path) -> None:
    # Every range read {when: null, type: float, low: ..., high: ..., step: null, log: false}
    space = {
        **SPACE,
        "model.hidden.0": {"type": "int", "low": 8, "high": 64, "step": 8},
        "model.layers": {"type": "int", "low": 1, "high": 3},
        "model.hidden.2": {"type": "int", "low": 8, "high": 32, "when": {"model.layers": {"ge": 3}}},
        "model.activation": {"type": "categorical", "choices": ["relu", "gelu"]},
    }
    study = synthetic_study("synth", space, 8, seed=0)
    ref = refine_study(study)
    out, _ = write_refinement(ref, tmp_path / "stage2.yaml", "synth")
    lines = out.read_text().split("search_space:\n", 1)[1].splitlines()[: len(space)]
    assert [line.split(":", 1)[0].strip() for line in lines] == list(space)
    form = {
        "optimizer.lr": r"\{type: float, low: [\d.e-]+, high: [\d.e-]+, log: true\}",
        "model.dropout": r"\{type: float, low: [\d.e-]+, high: [\d.e-]+\}",
        "optimizer.weight_decay": r"\{type: float, low: [\d.e-]+, high: [\d.e-]+, log: true\}",
        "model.hidden.0": r"\{type: int, low: \d+, high: \d+, step: 8\}",
        "model.layers": r"\{type: int, low: 1, high: 3\}",
        "model.hidden.2": r"\{type: int, low: 8, high: 32, when: \{model.layers: \{ge: 3\}\}\}",
        "model.activation": r"\{type: categorical, choices: \[relu, gelu\]\}",
    }
    for line, (name, pattern) in zip(lines, form.items(), strict=True):
        assert re.fullmatch(f"  {re.escape(name)}: {pattern}", line), line
    assert load_optimize_config(out).search_space == OptimizeConfig.model_validate(ref.optimize).search_space


@pytest.mark.parametrize(
    ("name", "choices", "edge", "added"),
    [
        ("model.dropout", [0.1, 0.2, 0.3], "high", 0.4),  # was 0.39999999999999997
        ("model.dropout", [0.0, 0.1, 0.2], "high", 0.3),  # was 0.30000000000000004
        ("model.dropout", [0.3, 0.6, 0.9], "high", 0.95),  # was 1.2: nn.Dropout refuses p > 1
        ("model.dropout", [0.05, 0.2, 0.35], "low", 0.0),  # was -0.1
        ("optimizer.weight_decay", [0.01, 0.02, 0.03], "low", 0.0),  # was 0.0 already, now by the rule too
        ("model.layers", [2, 3, 4], "low", 1),
        ("batch_size", [16, 32, 64], "low", 8),
    ],
)
def test_an_added_choice_is_the_decimal_its_neighbours_spell_and_stays_in_their_domain(
    name: str, choices: list[Any], edge: str, added: Any
) -> None:
    from hpotool.search_space import CategoricalParam
    from hpotool.stage_ranges import _extend_choices

    p = CategoricalParam(type="categorical", choices=choices)
    widened, change = _extend_choices(p, edge, RunConfig(), name)
    assert isinstance(widened, CategoricalParam)
    new = widened.choices[-1] if edge == "high" else widened.choices[0]
    assert new == added and repr(new) == repr(added), change
    assert change == f"{name}: best at the {edge} edge; added choice {added}"


def test_audit_shows_each_range_with_its_step_as_the_config_spells_it(
    tmp_path: Path, run_dict: dict, opt_dict: dict
) -> None:
    from .tiny_study import run_tiny_study

    opt_dict["n_trials"] = 2
    opt_dict["search_space"]["model.dropout"] = {"type": "float", "low": 0.0, "high": 0.5, "step": 0.05}
    run_tiny_study(tmp_path, run_dict, opt_dict)
    runner = CliRunner()
    result = runner.invoke(app, ["audit", "--study-name", "tiny", "--storage", opt_dict["storage"], "--json"])
    assert result.exit_code == 0, result.output
    import json

    ranges = {p["name"]: p["bounds"] for p in json.loads(result.stdout)["params"]}
    assert ranges == {
        "optimizer.lr": "[0.001, 0.1, log]",
        "model.hidden.0": "[8, 32, step 8]",  # an int range's step 1 is left out, as configs leave it out
        "model.dropout": "[0, 0.5, step 0.05]",
    }
    table = runner.invoke(app, ["audit", "--study-name", "tiny", "--storage", opt_dict["storage"]])
    assert "[0, 0.5, step 0.05]" in table.stdout and "[8, 32, step 8]" in table.stdout


def test_a_key_below_a_searched_section_widens_as_the_drawn_section_takes_it() -> None:
    # optimizer.momentum searched beside whole sgd choices, over a run config whose optimizer is adam: the
    # audit said "as high as it can go: nothing to widen" and refine kept [0.5, 0.8] ("no wider range is
    # valid"), both checking the wider momentum on adam, which takes none; the trials train sgd.
    space = {
        "optimizer": {
            "type": "categorical",
            "choices": [{"name": "sgd", "lr": 0.05}, {"name": "sgd", "lr": 0.1}],
        },
        "optimizer.momentum": {"type": "float", "low": 0.5, "high": 0.8},
    }
    run = RunConfig.model_validate({"optimizer": {"name": "adam"}})
    opt, study = stored_study("mom", space, run=run.model_dump(mode="json"))
    study.enqueue_trial({"optimizer": "{lr: 0.1, name: sgd}", "optimizer.momentum": 0.8})

    def objective(t: optuna.Trial) -> float:
        return 1 - suggest(t, opt.search_space)["optimizer.momentum"]

    study.optimize(objective, n_trials=8)
    advice = {p.name: p.advice for p in audit_study(study).params}
    assert (
        advice["optimizer.momentum"]
        == "optimizer.momentum best at 0.8, the top of [0.5, 0.8]: widen the range."
    )
    ref = refine_study(study)
    assert "optimizer.momentum: best at the high edge; range widened [0.5, 0.8] -> [0.5, 0.95]" in ref.changes
    assert ref.optimize["search_space"]["optimizer.momentum"]["high"] == 0.95
    assert ref.run["optimizer"]["name"] == "adam"  # the base stays; each trial's choice replaces it


def test_audit_says_a_choice_key_a_key_searched_below_the_section_replaced_never_trained() -> None:
    # optimizer.lr searched beside the choice {name: sgd, lr: 0.1, momentum: 0.9}: the audit's range showed
    # lr: 0.1 with no hint that every trial trained the searched optimizer.lr instead.
    space = {
        "optimizer": {
            "type": "categorical",
            "choices": [{"name": "sgd", "lr": 0.1, "momentum": 0.9}, {"name": "adam"}],
        },
        "optimizer.lr": {"type": "float", "low": 1e-4, "high": 0.3, "log": True},
        "optimizer.momentum": {  # under a condition: left to it, not flagged
            "type": "float",
            "low": 0.5,
            "high": 0.9,
            "when": {"optimizer": {"in": [{"name": "sgd", "lr": 0.1, "momentum": 0.9}]}},
        },
    }
    opt, study = stored_study("both", space)
    study.optimize(lambda t: math.log10(suggest(t, opt.search_space)["optimizer.lr"]), n_trials=6)
    findings = audit_study(study).findings
    assert (
        "optimizer.lr is searched below optimizer and applies after the chosen section: the lr that {name: sgd, "
        "lr: 0.1, momentum: 0.9} sets never trained; every trial trained its optimizer.lr."
    ) in findings
    assert not any(f.startswith("optimizer.momentum is searched below") for f in findings)


def test_the_improvement_finding_shows_values_that_differ() -> None:
    """A study whose late best (0.5011) beat its earlier best (0.5012) by little was said to have "found
    0.501, better than 0.501 before it": both rounded to three digits."""
    from hpotool.audit import _improvement

    values = [0.5012, 0.5013, 0.5014, 0.5015, 0.5011, 0.5016]
    trials = [optuna.trial.create_trial(value=v, params={}, distributions={}) for v in values]
    for number, t in enumerate(trials):
        t.number = number
    improving, text = _improvement(trials, "minimize")
    assert improving is True
    assert text.startswith(
        "still improving: the last third of trials found 0.5011, better than 0.5012 before"
    )
    for t, v in zip(trials, [0.50152, 0.3, 0.3, 0.3, 0.50151, 0.3], strict=True):
        t.value = v
    improving, text = _improvement(trials, "maximize")
    assert improving is False and "(0.50151) did not beat 0.50152;" in text


def test_refine_seeds_the_next_stage_one_past_a_seed_written_1e3() -> None:
    """`sampler.kwargs.seed: 1e3` (read as 1000.0) seeds the sampler as 1000; refine left it as it was, and the
    stage's sampler drew the study's trials again wherever a range was kept."""
    from hpotool.stage_settings import _next_seed

    opt: dict[str, Any] = {"seed": 42, "sampler": {"name": "random", "kwargs": {"seed": 1000.0}}}
    changes: list[str] = []
    _next_seed(opt, changes)
    assert (opt["seed"], opt["sampler"]["kwargs"]["seed"]) == (43, 1001)
    assert (
        changes[1]
        == "sampler.kwargs.seed: 1000 -> 1001, so the sampler does not draw the study's trials again"
    )


def test_refine_at_80_columns_names_the_files_it_wrote_each_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `wrote PATH and PATH; next:` with a path longer than the line (a log file, a narrow terminal): rich broke
    # it mid-name over two lines ("...with_a_rathe" / "r_long_name/stage2.yaml"), and it pasted as two. Now
    # the line is one, as the command under it, for the terminal to wrap.
    import hpotool.cli.terminal

    url = f"sqlite:///{tmp_path / 's.db'}"
    synthetic_study("long", SPACE, 12, seed=0, storage=url)
    monkeypatch.setattr(hpotool.cli.terminal.out_console(), "width", 80)
    out = tmp_path / ("stages_of_the_study_with_a_rather_long_folder_name_" + "x" * 40) / "stage2.yaml"
    out.parent.mkdir()
    result = CliRunner().invoke(
        app, ["refine", "--study-name", "long", "--storage", url, "--out", str(out)], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    wrote = f"wrote {out} and {out.with_name('stage2.run.yaml')}; next:"
    assert wrote in result.stdout.splitlines(), result.stdout


def test_refine_does_not_fix_a_negligible_parameter_whose_condition_reads_one_still_searched() -> None:
    """optimizer.momentum under `when: {optimizer.name: sgd}`, negligible, set in the best trial (sgd), beside
    optimizer.name still searched over adam and sgd: fixed into the stage's run config, it would reach the adam
    trials its condition keeps it from; refine failed ("with optimizer.momentum=0.8046...: optimizer 'adam'
    takes no argument 'momentum'"). It stays searched, under its condition."""
    space = {
        "optimizer.name": {"type": "categorical", "choices": ["adam", "sgd"]},
        "optimizer.lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
        "optimizer.momentum": {"type": "float", "low": 0.5, "high": 0.99, "when": {"optimizer.name": "sgd"}},
    }
    opt, study = stored_study("cond", space, optuna.samplers.RandomSampler(seed=1))

    def sgd_a_little_better(trial: optuna.Trial) -> float:
        p = suggest(trial, opt.search_space)
        return (0.0 if p["optimizer.name"] == "sgd" else 0.02) + (math.log10(p["optimizer.lr"]) + 2) ** 2

    study.optimize(sgd_a_little_better, n_trials=60)
    assert study.best_params["optimizer.name"] == "sgd"
    ref = refine_study(study)
    assert ref.optimize["search_space"]["optimizer.name"]["choices"] == ["adam", "sgd"]
    assert ref.optimize["search_space"]["optimizer.momentum"]["when"] == {"optimizer.name": "sgd"}
    assert "momentum" not in ref.run["optimizer"]
    (line,) = [c for c in ref.changes if c.startswith("optimizer.momentum: ")]
    assert line.endswith(
        "(importance 0.01, not fixed: its condition on optimizer.name, still searched, may fail in a trial of the "
        "stage, which a value fixed in the run config would reach)"
    ), line


def test_refine_does_not_fix_a_conditional_parameter_where_the_stage_fixes_its_condition_false() -> None:
    """optimizer.momentum under `{in: [sgd, rmsprop]}`, every top trial that set it choosing 0.9, beside
    optimizer.name fixed at adam: momentum was fixed too, and refine failed ("with optimizer.name=adam,
    optimizer.momentum=0.9: ... 'adam' takes no argument 'momentum'"). Its condition can no longer hold: it is
    removed, saying so."""
    space = {
        "optimizer.name": {"type": "categorical", "choices": ["adam", "sgd", "rmsprop"]},
        "optimizer.lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
        "optimizer.momentum": {
            "type": "categorical",
            "choices": [0.5, 0.9],
            "when": {"optimizer.name": {"in": ["sgd", "rmsprop"]}},
        },
    }
    opt, study = stored_study("cond", space, optuna.samplers.RandomSampler(seed=3))

    def rmsprop_and_half_momentum_lose(trial: optuna.Trial) -> float:
        p = suggest(trial, opt.search_space)
        bad = p["optimizer.name"] == "rmsprop" or p.get("optimizer.momentum") == 0.5
        return (3.0 if bad else 0.0) + (math.log10(p["optimizer.lr"]) + 2) ** 2

    study.optimize(rmsprop_and_half_momentum_lose, n_trials=60)
    ref = refine_study(study)
    assert ref.run["optimizer"] == {"name": "adam", "lr": 0.001, "weight_decay": 0.0}
    assert list(ref.optimize["search_space"]) == ["optimizer.lr"]
    assert [c for c in ref.changes if c.startswith("optimizer.momentum")] == [
        "optimizer.momentum: its condition can no longer hold (optimizer.name is fixed at adam); "
        "removed from the search"
    ]


def test_refine_keeps_a_conditional_parameter_every_top_trial_chose_alike_as_its_one_choice_under_its_condition() -> (
    None
):
    """model.activation under `when: {model.layers: {ge: 2}}`, every top trial choosing relu, beside
    model.layers still searched: fixed in the run config, relu would reach the trials of one layer, which
    the condition kept it from; it stays, as its one choice, under its condition."""
    space = {
        "model.layers": {"type": "int", "low": 1, "high": 3},
        "optimizer.lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
        "model.activation": {
            "type": "categorical",
            "choices": ["relu", "tanh", "gelu"],
            "when": {"model.layers": {"ge": 2}},
        },
    }
    opt, study = stored_study("cond", space, optuna.samplers.RandomSampler(seed=0))

    def relu_wins(trial: optuna.Trial) -> float:
        p = suggest(trial, opt.search_space)
        worse = 3.0 if p.get("model.activation", "relu") != "relu" else 0.0
        return worse + 0.01 * (p["model.layers"] - 2) ** 2 + (math.log10(p["optimizer.lr"]) + 2) ** 2

    study.optimize(relu_wins, n_trials=60)
    ref = refine_study(study)
    assert "activation" not in ref.run["model"]
    assert ref.optimize["search_space"]["model.activation"] == {
        "when": {"model.layers": {"ge": 2}},
        "type": "categorical",
        "choices": ["relu"],
    }
    assert (
        "model.activation: every top trial chose relu; kept as its one choice (not fixed: its condition on "
        "model.layers, still searched, may fail in a trial of the stage, which a value fixed in the run config "
        "would reach)" in ref.changes
    )


def _in_trainer(space: dict[str, Any]) -> dict[str, Any]:
    """A generated space (`p0`, `p1`, ...) as keys of a user's `trainer:` section, its conditions too."""
    return {
        f"trainer.{name}": p.model_dump(mode="json")
        | {"when": {f"trainer.{on}": c for on, c in p.when.items()} if p.when else None}
        for name, p in space.items()
    }


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(space=conditional_spaces(), seed=st.integers(0, 2**16))
# Found by the search: p4 (when p1 is 0) was fixed at 0 in the run config, as p1's one choice 0 meets its
# condition; but p1 itself is searched only where p0 is not 0, and the stage's trials with p0 0 got p4 set,
# where the study never set it
@example(
    space={
        "p0": CategoricalParam(type="categorical", choices=[0, 193358]),
        "p1": CategoricalParam(type="categorical", choices=[0], when={"p0": {"ne": 0}}),
        "p2": FloatParam(type="float", low=0.0, high=0.0),
        "p3": FloatParam(type="float", low=0.5, high=0.5, log=True),
        "p4": FloatParam(type="float", low=0.0, high=0.0, when={"p1": 0}),
    },
    seed=0,
)
def test_refine_fixes_a_conditional_parameter_only_where_its_condition_holds_in_every_trial_of_the_stage(
    space: dict[str, Any], seed: int
) -> None:
    """Over generated conditional spaces (the keys of a user's trainer), refined after 40 trials of a loss
    of the unconditional parameters: each parameter the stage fixes in its run config has its condition hold in every trial
    the stage samples, as the study applied it only there; the stage's space keeps every condition it had."""
    from hpotool.conditions import all_hold
    from hpotool.overrides import leaf_values

    run = RunConfig.model_validate({"trainer": {"function": "tests.trainers:takes_any_options"}})
    opt, study = stored_study(
        "gen", _in_trainer(space), optuna.samplers.RandomSampler(seed=seed), run.model_dump(mode="json")
    )

    # The loss reads the parameters without a condition alone (which stay searched, as a loss of their hash
    # sets the top trials apart), so the conditional ones are negligible: the stage fixes those its best set.
    def loss(trial: optuna.Trial) -> float:
        values = suggest(trial, opt.search_space)
        read = [values[k] for k, p in opt.search_space.items() if p.when is None]
        return float(zlib.crc32(repr(read).encode()) % 1000)

    study.optimize(loss, n_trials=40)
    try:
        ref = refine_study(study)
    except HpoError as exc:  # a stage that would fix every parameter
        assert "fix" in str(exc)
        return
    stage_run = RunConfig.model_validate(ref.run)
    stage = OptimizeConfig.model_validate(ref.optimize)
    fixed = {k: p for k, p in opt.search_space.items() if k not in stage.search_space and p.when}
    base = leaf_values(stage_run)
    probe = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    for _ in range(20):
        trial = probe.ask()
        values = {**base, **suggest(trial, stage.search_space, base)}
        for name, p in fixed.items():
            if name.removeprefix("trainer.") in ref.run["trainer"]:  # fixed, not removed
                assert all_hold(p.when, values), (name, p.when, values, ref.changes)
        probe.tell(trial, 0.0)
    for name, p in stage.search_space.items():
        assert p.when is None or set(p.when) <= set(opt.search_space[name].when or {}), (name, p.when)


def test_refine_fixes_a_negligible_parameter_whose_condition_holds_over_the_whole_range_it_reads() -> None:
    """model.dropout under `when: {model.layers: {ge: 2}}` beside model.layers searched over [2, 4]: the
    condition holds in every trial of the stage, so the negligible dropout is fixed, as without a condition."""
    space = {
        "model.layers": {"type": "int", "low": 2, "high": 4},
        "optimizer.lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
        "model.dropout": {"type": "float", "low": 0.0, "high": 0.5, "when": {"model.layers": {"ge": 2}}},
    }
    opt, study = stored_study("cond", space, optuna.samplers.RandomSampler(seed=0))

    def dropout_does_not_matter(trial: optuna.Trial) -> float:
        p = suggest(trial, opt.search_space)
        return 0.1 * (p["model.layers"] - 3) ** 2 + (math.log10(p["optimizer.lr"]) + 2) ** 2

    study.optimize(dropout_does_not_matter, n_trials=60)
    ref = refine_study(study)
    assert list(ref.optimize["search_space"]) == ["model.layers", "optimizer.lr"]
    assert ref.run["model"]["dropout"] == study.best_params["model.dropout"]


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(space=conditional_spaces(), seed=st.integers(0, 2**16))
def test_optimize_accepts_the_stage_refine_writes_from_a_study_it_accepted(
    space: dict[str, Any], seed: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Over generated conditional spaces (a user trainer's keys) that `optimize` accepts, refined after 40
    trials: `optimize` accepts the stage's two files as refine writes them. Before: a range narrowed away from
    the only values a condition on it names (`trainer.p0: 100` beside p0 narrowed to [140, 172] step 8) left
    that condition never holding, and optimize refused the stage."""
    from hpotool.plan import prepare_study

    tmp = tmp_path_factory.mktemp("stage")
    base = {name: p.choices[0] if isinstance(p, CategoricalParam) else p.low for name, p in space.items()}
    run = {"trainer": {"function": "tests.trainers:takes_any_options", **base}}
    searched = _in_trainer(space)
    try:
        prepare_study(
            write_yaml(tmp / "run.yaml", run),
            write_yaml(
                tmp / "opt.yaml", {"study_name": "gen", "metric": "val_loss", "search_space": searched}
            ),
        )
    except HpoError:
        assume(False)  # a condition that never holds, a choice the run config cannot take: refused already
    opt, study = stored_study(
        "gen",
        searched,
        optuna.samplers.RandomSampler(seed=seed),
        RunConfig.model_validate(run).model_dump(mode="json"),
    )

    def loss(trial: optuna.Trial) -> float:
        values = suggest(trial, opt.search_space)
        read = [values[k] for k, p in opt.search_space.items() if p.when is None]
        return float(zlib.crc32(repr(read).encode()) % 1000)

    study.optimize(loss, n_trials=40)
    try:
        ref = refine_study(study)
    except HpoError as exc:  # a stage that would fix every parameter
        assert "fix" in str(exc)
        return
    prepare_study(*reversed(write_refinement(ref, tmp / "stage.yaml", "gen")))


def test_refine_removes_a_parameter_whose_condition_a_narrowed_range_no_longer_meets() -> None:
    """trainer.p1 under `when: {trainer.p0: 100}`, p0 narrowed to [140, 172] step 8 around the top trials:
    p1's condition can no longer hold, so it is removed, saying so (before: kept, and optimize refused the
    stage: "the condition trainer.p0: 100 never holds for trainer.p0's values")."""
    space = {
        "trainer.p0": {"type": "int", "low": 100, "high": 172, "step": 8},
        "trainer.p1": {"type": "float", "low": 0.0, "high": 1.0, "when": {"trainer.p0": 100}},
    }
    run = {"trainer": {"function": "tests.trainers:takes_any_options", "p0": 100, "p1": 0.0}}
    opt, study = stored_study(
        "cond",
        space,
        optuna.samplers.RandomSampler(seed=0),
        RunConfig.model_validate(run).model_dump(mode="json"),
    )
    study.optimize(lambda t: abs(suggest(t, opt.search_space)["trainer.p0"] - 156), n_trials=60)
    ref = refine_study(study)
    assert ref.optimize["search_space"]["trainer.p0"]["low"] > 100
    assert "trainer.p1" not in ref.optimize["search_space"]
    assert (
        f"trainer.p1: its condition can no longer hold (trainer.p0 is searched only over "
        f"[{ref.optimize['search_space']['trainer.p0']['low']}, 172] step 8); removed from the search"
    ) in ref.changes


def test_refine_warm_starts_only_with_trials_that_ran_under_the_base_the_stage_trains_with() -> None:
    study = synthetic_study("rebased", SPACE, 20, seed=0, run={"epochs": 3})
    old_best = sorted(study.trials, key=lambda t: float(t.value))[:2]
    # `--allow-changed-config` with 30 epochs from trial 20 on, as fingerprint.check records it
    study.set_user_attr(
        "config_changes",
        [{"changes": ["run_config.epochs: 3 -> 30"], "from_trial": 20, "previous": dict(study.user_attrs)}],
    )
    study.set_user_attr("run_config", RunConfig(epochs=30).model_dump(mode="json"))
    space = OptimizeConfig.model_validate({"study_name": "r", "search_space": SPACE}).search_space
    for _ in range(10):
        trial = study.ask()
        params = suggest(trial, space)
        # two of the old trials stay the best; the rest of the top three ran under the new base
        study.tell(trial, loss(params) + 100 if trial.number != 25 else float(old_best[1].value) + 1e-9)
    ranked = sorted(study.trials, key=lambda t: float(t.value))
    assert [t.number for t in ranked[:2]] == [t.number for t in old_best]
    ref = refine_study(study)
    new_base = {t.number: t.params for t in study.trials if t.number >= 20}
    assert ref.optimize["enqueue"]
    for params in ref.optimize["enqueue"]:
        assert any(all(p[k] == v for k, v in params.items()) for p in new_base.values()), params
    shown = ", ".join(f"#{t.number}" for t in old_best)
    assert (
        f"left out of the warm start 2 trials ({shown}) that ran under an earlier run config, before "
        "--allow-changed-config changed it: under the one the stage trains with they would not reproduce "
        "their values" in ref.changes
    ), ref.changes
    assert ref.run["epochs"] == 30
    # the device alone changed: every trial still reproduces, none is left out
    previous = {"run_config": {**study.user_attrs["run_config"], "device": "cuda"}}
    study.set_user_attr("config_changes", [{"changes": [], "from_trial": 20, "previous": previous}])
    assert not any(c.startswith("left out of the warm start") for c in refine_study(study).changes)


def test_refine_narrows_ranges_only_around_trials_that_ran_under_the_base_the_stage_trains_with() -> None:
    """A study resumed with --allow-changed-config: the 40 trials under the old base (3 epochs) are all
    better than those under the new one and best near dropout 0.2; under the new base the best dropout is
    near 0.45. The stage trains with the new base, so its dropout range narrows around 0.45 (before: around
    the old trials' 0.2, which the warm start already left out)."""
    study = synthetic_study("rebased_ranges", SPACE, 40, seed=0, run={"epochs": 3})
    study.set_user_attr(
        "config_changes",
        [{"changes": ["run_config.epochs: 3 -> 30"], "from_trial": 40, "previous": dict(study.user_attrs)}],
    )
    study.set_user_attr("run_config", RunConfig(epochs=30).model_dump(mode="json"))
    space = OptimizeConfig.model_validate({"study_name": "r", "search_space": SPACE}).search_space
    study.sampler = optuna.samplers.RandomSampler(seed=1)  # TPE would draw near the old trials' best
    for _ in range(40):
        trial = study.ask()
        params = suggest(trial, space)
        study.tell(trial, loss({**params, "model.dropout": params["model.dropout"] - 0.25}) + 100)
    ref = refine_study(study)
    dropout = ref.optimize["search_space"]["model.dropout"]
    assert dropout["low"] > 0.25, (dropout, ref.changes)
    assert (
        "narrowed the ranges around the top of the 40 trials that ran under the current run config, leaving out "
        "the 40 that ran under an earlier one, before --allow-changed-config changed it" in ref.changes
    ), ref.changes
    # too few trials under the current base to narrow by: the ranges are kept, saying why
    study.set_user_attr(
        "config_changes",
        [
            {
                "changes": ["run_config.epochs: 3 -> 30"],
                "from_trial": 60,
                "previous": {"run_config": {"epochs": 3}},
            }
        ],
    )
    kept = refine_study(study)
    kept_dropout = kept.optimize["search_space"]["model.dropout"]
    assert (kept_dropout["low"], kept_dropout["high"]) == (0.0, 0.5), kept.changes
    assert any(
        c.startswith("model.dropout: kept ")
        and "20 trials to rank ran under the current run config, too few to narrow by (30 needed): the 60 "
        "that ran under an earlier one"
        in c
        for c in kept.changes
    ), kept.changes


def _rebased_study(name: str, old: int, new: int) -> optuna.Study:
    """A study resumed with --allow-changed-config after `old` trials (3 epochs -> 30) with `new` more: under
    the old base the best lr lies above the range (the synthetic loss's 3e-2), under the new one inside it
    (1e-3), every new trial worse than the old ones."""
    study = synthetic_study(name, SPACE, old, seed=0, run={"epochs": 3})
    study.set_user_attr(
        "config_changes",
        [{"changes": ["run_config.epochs: 3 -> 30"], "from_trial": old, "previous": dict(study.user_attrs)}],
    )
    study.set_user_attr("run_config", RunConfig(epochs=30).model_dump(mode="json"))
    space = OptimizeConfig.model_validate({"study_name": "r", "search_space": SPACE}).search_space
    study.sampler = optuna.samplers.RandomSampler(seed=1)
    for _ in range(new):
        trial = study.ask()
        params = suggest(trial, space)
        lr_term = (math.log10(params["optimizer.lr"]) + 3) ** 2
        study.tell(trial, lr_term + 40 * (params["model.dropout"] - 0.2) ** 2 + 100)
    return study


def test_refine_widens_and_fixes_only_by_trials_that_ran_under_the_base_the_stage_trains_with() -> None:
    """The old base's best lr sat on the range's top edge, the new base's inside it. Refine's stage trains
    with the new base, so it narrows lr rather than widening it, and fixes the negligible weight_decay at the
    best new trial's value (before: the audit of every trial widened lr above 1e-2 and fixed weight_decay
    at the old best trial's value, which the narrowed ranges and the warm start already left out)."""
    study = _rebased_study("rebased_edges", 40, 40)
    audit = audit_study(study, next_stage=False)
    assert audit.params[0].edge == "high"  # every trial's audit: the old edge, saying it mixes bases
    assert (
        "40 of the 80 trials these findings rest on ran under an earlier run config, before "
        "--allow-changed-config changed it, and would not reproduce their values under the current one; refine "
        "builds the next stage from the 40 that ran under the current one alone." in audit.findings
    ), audit.findings
    bare = audit_study(study, next_stage=False, notes=False)  # refine's: it reads the parameters' findings
    assert bare.mixed_bases is None and bare.repeats is None and bare.params == audit.params
    assert not any(
        "ran under an earlier run config" in f
        for f in audit_study(synthetic_study("one_base", SPACE, 10, seed=0)).findings
    )
    ref = refine_study(study)
    lr = ref.optimize["search_space"]["optimizer.lr"]
    assert lr["high"] < 1e-2 and lr["low"] < 1e-3 < lr["high"], (lr, ref.changes)
    assert not any("optimizer.lr: widened" in c for c in ref.changes), ref.changes
    new_best = min((t for t in study.trials if t.number >= 40), key=lambda t: float(t.value))
    assert "optimizer.weight_decay" not in ref.optimize["search_space"], ref.changes
    assert ref.run["optimizer"]["weight_decay"] == new_best.params["optimizer.weight_decay"], ref.changes


def test_refine_refuses_a_study_with_no_complete_trial_under_its_current_base() -> None:
    study = _rebased_study("rebased_none", 40, 0)
    with pytest.raises(HpoError) as err:
        refine_study(study)
    assert str(err.value) == (
        "study 'rebased_none': no trial that ran under its current run config completed; refine builds the next "
        "stage from those alone, as the 40 trials before --allow-changed-config changed it would not reproduce "
        f"their values under it: run more trials first (hpotool optimize {study_options(study)} --n-trials 50, say)"
    )


def test_refine_of_a_study_of_as_few_trials_as_it_warm_starts_leaves_room_for_new_ones() -> None:
    """A study of 2 trials (n_trials: 2) was refined into a stage queuing both as its warm start with
    n_trials: 2: the stage ran only those configurations again. Its n_trials now covers them and 2 more."""
    opt, study = stored_study("tiny", SPACE, n_trials=2)
    study.optimize(lambda t: loss(suggest(t, opt.search_space)), n_trials=2)
    ref = refine_study(study)
    assert len(ref.optimize["enqueue"]) == 2, ref.optimize["enqueue"]
    assert ref.optimize["n_trials"] == 4
    assert (
        "n_trials: 2 -> 4, as the 2 warm starts would take all 2 trials of the stage and run only "
        "configurations already run: it runs 2 new trials after them"
    ) in ref.changes, ref.changes


def test_refine_keeps_an_n_trials_that_leaves_room_after_the_warm_start() -> None:
    study = synthetic_study("roomy", SPACE, 12, seed=0)
    assert study.user_attrs["optimize_config"]["n_trials"] > 3
    ref = refine_study(study)
    assert ref.optimize["n_trials"] == study.user_attrs["optimize_config"]["n_trials"]
    assert not any(c.startswith("n_trials:") for c in ref.changes), ref.changes
