"""Every mistake a user can make in the configs or on the command line, and the exact line hpotool prints.

`tests/test_errors_catalogue.py` runs each case through the real CLI; `docs/ERRORS.md` is generated from
this table (`HPOTOOL_WRITE_ERRORS_DOC=1 pytest tests/test_errors_catalogue.py` rewrites it), and a test
checks that the page matches, so the documentation cannot drift from what users see.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import yaml

from .conftest import OPTIMIZE, RUN


@dataclass(frozen=True)
class Case:
    """One bad input. `run`/`optimize` patch the tiny configs (None deletes a key); `*_text` replaces a
    file's whole text; `args` are extra command-line arguments; `message` is the exact stderr line."""

    name: str
    what: str
    message: str
    run: dict[str, Any] = field(default_factory=dict)
    optimize: dict[str, Any] = field(default_factory=dict)
    run_text: str | None = None
    optimize_text: str | None = None
    args: tuple[str, ...] = ()
    existing_study: bool = False  # create the study first, then check the storage is unchanged
    existing_optimize: dict[str, Any] = field(default_factory=dict)  # patches the config that creates it
    existing_run: dict[str, Any] = field(default_factory=dict)  # patches the run config that creates it
    existing_trials: int = 1  # with existing_study: the trials it runs (--n-trials)
    # with existing_study: then resumed with --allow-changed-config on its run config so patched, at the same
    # --n-trials (no trial runs under the changed one)
    resumed_run: dict[str, Any] = field(default_factory=dict)
    running_trials: int = 0  # with existing_study: trials left running by a live process of this machine
    plain_study: str | None = None  # a study plain Optuna code ran, its 2 trials failing: studies/<name>.db
    needs_no_cuda: bool = False
    without_configs: bool = False  # `optimize` with `args` alone, no --run-config/--optimize-config
    env: dict[str, str] = field(default_factory=dict)  # environment variables set for the command
    elsewhere: str | None = None  # a folder the configs are written to and the study created in, run from
    # there; the command, run from here, names that folder's configs in `args`. `<cwd>` in `message`: here
    elsewhere_args: tuple[str, ...] = ()  # extra arguments of the command that creates the study elsewhere
    command: tuple[str, ...] = ()  # another command than `optimize` (its whole argv; `args` unused)
    files: dict[str, str] = field(default_factory=dict)  # files written before the command, path -> text
    run_in: str | None = None  # a subfolder the command runs in (made for it)
    # another connection holds a write lock on studies/tiny.db while the command runs, as a sqlite3 shell's
    # `BEGIN EXCLUSIVE;` does (with existing_study)
    lock_held: bool = False
    read_only: str | None = None  # a folder made read-only before the command (a read-only mount as root)
    server: str | None = None  # a local server the case needs ("redis"): skipped where it does not answer
    existing_files: dict[str, str] = field(
        default_factory=dict
    )  # with existing_study: files written before it
    # is created (path -> text), which `files` may then overwrite

    def configs(self) -> tuple[dict[str, Any], dict[str, Any]]:
        run, opt = copy.deepcopy(RUN), copy.deepcopy(OPTIMIZE)
        for base, patch in ((run, self.run), (opt, self.optimize)):
            for key, value in patch.items():
                if value is None:
                    base.pop(key, None)
                else:
                    base[key] = value
        opt["storage"] = "sqlite:///studies/tiny.db"
        return run, opt


LR = "optimizer.lr"


def _rows_csv(flip: int | None = None) -> str:
    """60 rows of 3 features and a class, for a dataset reading a CSV file; `flip`: that row's class the other
    one (another version of the file)."""
    rows = []
    for i in range(60):
        label = i % 2 if i != flip else 1 - i % 2
        rows.append(f"{i / 60:.3f},{(i * 7 % 60) / 60:.3f},{label + 0.1 * (i % 3):.3f},{label}")
    return "\n".join(rows) + "\n"


ROWS_DATA = (
    "import numpy as np\n\n\ndef load(path):\n"
    "    rows = np.loadtxt(path, delimiter=',', dtype=np.float32)\n"
    "    return rows[:, :-1], rows[:, -1].astype(np.int64)\n"
)


def _optimize_text(**patch: Any) -> str:
    """The tiny optimize config's text with `patch` applied, for keys `Case.configs` sets itself (storage)."""
    return yaml.safe_dump({**OPTIMIZE, **patch}, sort_keys=False)


def _space(**spec: Any) -> dict[str, Any]:
    return {"search_space": {LR: spec}}


CASES = [
    Case(
        "missing-file",
        "a config file that does not exist",
        "error: missing.yaml: no such file; check the path (a relative one is read from the folder hpotool runs in)",
        args=("--run-config", "missing.yaml"),
    ),
    Case(
        "directory",
        "a folder where a file should be",
        "error: studies: is a folder, not a YAML file; give the path of the config file in it",
        args=("--optimize-config", "studies"),
    ),
    Case(
        "unreadable",
        "a file that is not UTF-8 text: UTF-16, as Windows PowerShell writes it",
        "error: run.yaml: is UTF-16 text (as Windows PowerShell's > and Out-File write it); save it as UTF-8 (in PowerShell: Set-Content -Encoding utf8)",
        run_text="\xff\xfe",
    ),
    Case(
        "yaml-syntax",
        "a YAML syntax error",
        "error: run.yaml: line 2, column 1: expected ',' or ']', but got the end of the file; a [ or { opened on this line or above is not closed: close it (] or }), or quote a value that holds one of , [ ] { }",
        run_text="epochs: [1, 2\n",
    ),
    Case(
        "yaml-indentation",
        "a key indented under a value (a YAML indentation mistake)",
        "error: run.yaml: line 4, column 11: mapping values are not allowed here; check the indentation of this line and the one above: the keys of one mapping start in the same column, a section's keys further right than its name, and a ': ' inside a value needs quotes",
        run_text="epochs: 2\nmodel:\n  name: mlp\n    hidden: [8]\n",
    ),
    Case(
        "scheduler-null",
        "scheduler: null, meant as no schedule (a section left null: leave it out, or name one)",
        "error: run.yaml: scheduler: expected a mapping, got null; for no schedule leave scheduler out, or write scheduler: {name: none}",
        run_text="project: tiny\ndevice: cpu\ndata: {name: digits, subset_fraction: 0.1}\nscheduler: null\nepochs: 2\n",
    ),
    Case(
        "model-null",
        "a component section left null",
        "error: run.yaml: model: expected a mapping, got null; leave model out for its default ({name: mlp}), or write model: {name: ...}",
        run_text="project: tiny\ndevice: cpu\ndata: {name: digits, subset_fraction: 0.1}\nmodel: null\nepochs: 2\n",
    ),
    Case(
        "section-keys-not-indented",
        "a section's keys written at the top level, under an empty section",
        "error: run.yaml: model: is empty, and name, hidden after it sit at its level; indent them under model: (further right than model)",
        run_text="project: tiny\ndevice: cpu\ndata: {name: digits, subset_fraction: 0.1}\nmodel:\nname: mlp\nhidden: [16]\nepochs: 2\n",
    ),
    Case(
        "param-keys-not-indented",
        "a searched parameter's keys written beside it, not under it",
        "error: optimize.yaml: search_space.optimizer.lr: is empty, and type, low, high after it sit at its level; indent them under optimizer.lr: (further right than optimizer.lr)",
        optimize_text="study_name: tiny\nstorage: sqlite:///studies/tiny.db\nmetric: val_accuracy\ndirection: maximize\nsearch_space:\n  optimizer.lr:\n  type: float\n  low: 1.0e-3\n  high: 1.0e-1\n",
    ),
    Case(
        "param-key-not-indented",
        "one key of a searched parameter written a level out, after its other keys",
        "error: optimize.yaml: search_space: log after optimizer.lr sits at the level of the parameters; indent it under optimizer.lr: (in the column of its type:)",
        optimize_text="study_name: tiny\nstorage: sqlite:///studies/tiny.db\nmetric: val_accuracy\ndirection: maximize\nsearch_space:\n  optimizer.lr:\n    type: float\n    low: 1.0e-3\n    high: 1.0e-1\n  log: true\n  model.hidden.0: {type: int, low: 8, high: 32}\n",
    ),
    Case(
        "nested-param-keys-not-indented",
        "keys of a parameter in a space nested by section written a level out, beside the parameter",
        "error: optimize.yaml: search_space: high, when after optimizer.momentum sit at the level of the parameters; indent them under optimizer.momentum: (in the column of its type:)",
        optimize_text="study_name: tiny\nstorage: sqlite:///studies/tiny.db\nmetric: val_accuracy\ndirection: maximize\nsearch_space:\n  optimizer:\n    name: {type: categorical, choices: [adam, sgd]}\n    momentum:\n      type: float\n      low: 0.5\n    high: 0.99\n    when: {optimizer.name: sgd}\n",
    ),
    Case(
        "param-empty",
        "a searched parameter with nothing after its colon",
        "error: optimize.yaml: search_space.optimizer.lr: expected a mapping, got null; give what to search on its line (optimizer.lr: {type: float, low: ..., high: ...}) or indented under it, or drop it",
        optimize_text="study_name: tiny\nstorage: sqlite:///studies/tiny.db\nmetric: val_accuracy\ndirection: maximize\nsearch_space:\n  optimizer.lr:\n  model.hidden.0: {type: int, low: 8, high: 32}\n",
    ),
    Case(
        "list-item-past-the-end",
        "a searched list item past the end of the run config's list",
        "error: optimize.yaml: search_space.model.hidden.5: no list item '5' in model.hidden (the list has 1); give model.hidden more items in the run config, or search its items in order (model.hidden.1 adds one)",
        optimize={"search_space": {"model.hidden.5": {"type": "int", "low": 8, "high": 32}}},
    ),
    Case(
        "quoted-list",
        "a list of choices written in quotes (YAML text, not a list)",
        'error: optimize.yaml: search_space.model.activation.choices: Input should be a valid list, got the text "[relu, tanh]"; drop the quotes around the list',
        optimize={"search_space": {"model.activation": {"type": "categorical", "choices": "[relu, tanh]"}}},
    ),
    Case(
        "yaml-tab",
        "a tab used to indent a YAML file",
        "error: run.yaml: line 2, column 1: found character '\\t' that cannot start any token; YAML indents with spaces only: replace the tab with spaces",
        run_text="epochs: 2\n\tbatch_size: 8\n",
    ),
    Case(
        "yaml-tag",
        "a YAML tag such as !!python/object",
        "error: run.yaml: line 1, column 9: the YAML tag !!python/object/apply:os.system is not allowed: configs are loaded safely, without tags that build Python objects; remove the tag and write the value itself",
        run_text="epochs: !!python/object/apply:os.system ['true']\n",
    ),
    Case(
        "duplicate-key",
        "a key given twice",
        "error: run.yaml: line 2, column 1: duplicate key 'epochs', given earlier in the same mapping; keep one of the two",
        run_text="epochs: 2\nepochs: 3\n",
    ),
    Case(
        "empty-file",
        "an empty config file",
        "error: run.yaml: the file is empty (or holds only comments); write the config in it, one key: value a line",
        run_text="",
    ),
    Case(
        "unknown-run-key",
        "an unknown key in the RunConfig",
        "error: run.yaml: unknown key 'epoch' (did you mean 'epochs'?); valid keys: project, seed, device, torch_threads, data, model, optimizer, scheduler, loss, epochs, batch_size, grad_clip, trainer",
        run={"epoch": 3},
    ),
    Case(
        "unknown-optimize-key",
        "an unknown key in the OptimizeConfig",
        "error: optimize.yaml: unknown key 'n_trial' (did you mean 'n_trials'?); valid keys: study_name, storage, n_trials, timeout, seed, metric, direction, metrics, directions, sampler, pruner, constraints, tracking, enqueue, search_space, final",
        optimize={"n_trial": 3},
    ),
    Case(
        "optuna-create-study-arg",
        "an argument of Optuna's create_study that hpotool always applies (load_if_exists)",
        "error: optimize.yaml: unknown key 'load_if_exists'; hpotool always resumes a study of that name (Optuna's load_if_exists=True): drop the key; for a new study give another study_name",
        optimize={"load_if_exists": True},
    ),
    Case(
        "unknown-component-arg",
        "a misspelt component argument",
        "error: run.yaml: model: model 'mlp' takes no argument 'hiden' (did you mean 'hidden'?); it takes: hidden, layers, activation, dropout, norm",
        run={"model": {"name": "mlp", "hiden": [16]}},
    ),
    Case(
        "misspelt-activation",
        "a misspelt activation",
        "error: run.yaml: model: unknown activation 'rellu' (did you mean 'relu'?); choose one of: relu, gelu, silu, tanh, leaky_relu, elu",
        run={"model": {"name": "mlp", "hidden": [16], "activation": "rellu"}},
    ),
    Case(
        "misspelt-norm",
        "a misspelt normalization",
        "error: run.yaml: model: unknown norm 'layr' (did you mean 'layer'?); choose one of: none, batch, layer",
        run={"model": {"name": "mlp", "hidden": [16], "norm": "layr"}},
    ),
    Case(
        "optimizer-maximize",
        "an optimizer told to maximize, which climbs the loss",
        "error: run.yaml: optimizer: optimizer 'adam' argument 'maximize': true makes the optimizer climb the loss, and hpotool trains by lowering it; remove maximize (to maximize a metric such as val_accuracy, set direction: maximize in the optimize config)",
        run={"optimizer": {"name": "adam", "maximize": True}},
    ),
    Case(
        "schedule-last-epoch",
        "a schedule's last_epoch, which resumes it from a checkpoint",
        "error: run.yaml: scheduler: scheduler 'torch.optim.lr_scheduler:StepLR' argument 'last_epoch' resumes a schedule part-way through, from a checkpoint's optimizer state, and hpotool starts every run's schedule at its beginning; remove last_epoch",
        run={"scheduler": {"name": "torch.optim.lr_scheduler:StepLR", "step_size": 1, "last_epoch": 1}},
    ),
    Case(
        "yaml-bool-argument",
        "an unquoted no (YAML's false) for a component's word argument",
        "error: run.yaml: model: model 'mlp' argument 'norm': Input should be a valid string, got false; YAML reads an unquoted yes, no, on, off, true or false as a boolean: put the word in quotes",
        run_text="project: tiny\ndevice: cpu\ndata: {name: digits, subset_fraction: 0.1}\nmodel: {name: mlp, hidden: [16], norm: no}\nepochs: 2\n",
    ),
    Case(
        "yaml-bool-key",
        "an unquoted yes (YAML's true) for a word of the configs",
        "error: optimize.yaml: direction: Input should be minimize or maximize, got true; YAML reads an unquoted yes, no, on, off, true or false as a boolean: put the word in quotes",
        optimize_text="study_name: tiny\nstorage: sqlite:///studies/tiny.db\nmetric: val_accuracy\ndirection: yes\nsearch_space:\n  optimizer.lr: {type: float, low: 1.0e-3, high: 1.0e-1}\n",
    ),
    Case(
        "unknown-component",
        "an unknown built-in name",
        "error: run.yaml: optimizer: unknown optimizer 'adamw2' (did you mean 'adamw'?); choose one of: adam, adamw, sgd, rmsprop, or give an import path such as package.module:Name",
        run={"optimizer": {"name": "adamw2"}},
    ),
    Case(
        "wrong-type",
        "a value of the wrong type",
        "error: run.yaml: epochs: Input should be a valid integer, got many; write a whole number",
        run={"epochs": "many"},
    ),
    Case(
        "low-above-high",
        "low > high",
        "error: optimize.yaml: search_space.optimizer.lr: low must be at most high, got low: 0.1, high: 0.001; swap them (low: 0.001, high: 0.1)",
        optimize=_space(type="float", low=0.1, high=0.001),
    ),
    Case(
        "log-low-zero",
        "log with low <= 0",
        "error: optimize.yaml: search_space.optimizer.lr: low must be above 0 with log: true (a log scale has no 0), got 0.0; give a low above 0, such as 1.0e-5, or drop log: true",
        optimize=_space(type="float", low=0.0, high=0.1, log=True),
    ),
    Case(
        "step-and-log",
        "step with log",
        "error: optimize.yaml: search_space.optimizer.lr: step and log cannot be used together; drop one of them",
        optimize=_space(type="float", low=0.001, high=0.1, log=True, step=0.001),
    ),
    Case(
        "step-misfit",
        "a step that does not divide the range",
        "error: optimize.yaml: search_space.optimizer.lr: step 0.04 does not divide the range [0.01, 0.1]; make high - low a multiple of step",
        optimize=_space(type="float", low=0.01, high=0.1, step=0.04),
    ),
    Case(
        "step-too-fine",
        "a step so fine for its range that Optuna cannot count the steps",
        "error: optimize.yaml: search_space.optimizer.lr: step 1e-05 is too fine for the range [0.0, 1e+30]: 10^28 steps or more, more than Optuna's check of a step can count; use a larger step, or leave step out",
        optimize=_space(type="float", low=0.0, high=1.0e30, step=1.0e-5),
    ),
    Case(
        "empty-choices",
        "an empty choices list",
        "error: optimize.yaml: search_space.model.activation.choices: must have at least 1 item, got []",
        optimize={"search_space": {"model.activation": {"type": "categorical", "choices": []}}},
    ),
    Case(
        "unknown-type",
        "an unknown parameter type",
        "error: optimize.yaml: search_space.optimizer.lr: unknown type 'flaot' (did you mean 'float'?); choose one of: float, int, categorical",
        optimize=_space(type="flaot", low=0.001, high=0.1),
    ),
    Case(
        "other-tool-type",
        "a parameter type as Optuna's old suggest_loguniform or hyperopt names it",
        "error: optimize.yaml: search_space.optimizer.lr: unknown type 'loguniform'; write type: float, log: true",
        optimize=_space(type="loguniform", low=0.001, high=0.1),
    ),
    Case(
        "unknown-param-key",
        "an unknown key in a parameter",
        "error: optimize.yaml: search_space.optimizer.lr: unknown key 'hihg' (did you mean 'high'?); valid keys: when, type, low, high, step, log",
        optimize=_space(type="float", low=0.001, hihg=0.1),
    ),
    Case(
        "boolean-for-a-number",
        "a number setting of the run config given yes or on, which YAML reads as true (1 epoch before)",
        "error: run.yaml: epochs: Input should be a valid integer, got true; YAML reads an unquoted yes, no, on, off, true or false as a boolean: write a number",
        run_text="project: tiny\ndevice: cpu\ndata: {name: digits, subset_fraction: 0.1}\nmodel: {name: mlp, hidden: [16]}\nepochs: yes\n",
    ),
    Case(
        "boolean-for-a-component-number",
        "a component's number argument given yes or on (torch's annotations let it through as 1 before)",
        "error: run.yaml: optimizer: optimizer 'sgd' argument 'momentum': expected a number (its default is 0), got true; YAML reads an unquoted yes, no, on, off, true or false as a boolean: write a number",
        run={"optimizer": {"name": "sgd", "lr": 0.01, "momentum": True}},
    ),
    Case(
        "boolean-among-numbers",
        "a searched number setting whose choices hold a boolean (batches of one before)",
        "error: optimize.yaml: search_space.batch_size: with batch_size=true: batch_size: Input should be a valid integer, got true; YAML reads an unquoted yes, no, on, off, true or false as a boolean: write a number",
        optimize={"search_space": {"batch_size": {"type": "categorical", "choices": [16, True]}}},
    ),
    Case(
        "section-key-at-the-top",
        "a component's argument written at the top of the run config, as in a flat hyperparameter dict",
        "error: run.yaml: unknown key 'lr'; lr goes under optimizer: (write optimizer: {..., lr: ...}, searched as optimizer.lr)",
        run={"lr": 0.01},
    ),
    Case(
        "run-key-in-the-optimize-config",
        "a run config key written in the optimize config",
        "error: optimize.yaml: unknown key 'epochs'; epochs is a run config key: set epochs in the file given as --run-config, or search it under search_space: (epochs: {type: ..., ...})",
        optimize={"epochs": 5},
    ),
    Case(
        "categorical-values",
        "a categorical's choices under another tool's name for them (W&B sweeps' values)",
        "error: optimize.yaml: search_space.model.activation: unknown key 'values' (did you mean 'choices'?); valid keys: when, type, choices",
        optimize={"search_space": {"model.activation": {"type": "categorical", "values": ["relu", "tanh"]}}},
    ),
    Case(
        "library-class-by-its-name",
        "a torch class given by its bare name, as its documentation names it, not its import path",
        "error: run.yaml: scheduler: unknown scheduler 'CosineAnnealingLR'; for that class give its import path, torch.optim.lr_scheduler:CosineAnnealingLR (built-in: none, cosine, step, onecycle, plateau)",
        run={"scheduler": {"name": "CosineAnnealingLR"}},
    ),
    Case(
        "learning-rate",
        "the optimizer's lr under the name Keras and Hugging Face give it",
        "error: run.yaml: optimizer: optimizer 'adam' takes no argument 'learning_rate' (did you mean 'lr'?); it takes: lr, betas, eps, weight_decay, amsgrad, foreach, maximize, capturable, differentiable, fused, decoupled_weight_decay",
        run={"optimizer": {"name": "adam", "learning_rate": 0.01}},
    ),
    Case(
        "searched-learning-rate",
        "the searched optimizer.lr under the name Keras and Hugging Face give it",
        "error: optimize.yaml: search_space.optimizer.learning_rate: optimizer 'adam' takes no argument 'learning_rate' (did you mean 'optimizer.lr'?); it takes: lr, betas, eps, weight_decay, amsgrad, foreach, maximize, capturable, differentiable, fused, decoupled_weight_decay",
        optimize={"search_space": {"optimizer.learning_rate": {"type": "float", "low": 0.001, "high": 0.1}}},
    ),
    Case(
        "metrics-with-direction",
        "several metrics with one direction, as a single objective spells it",
        "error: optimize.yaml: metrics and directions go together: metrics: [val_accuracy, n_params] needs directions: [...], one per metric, such as directions: [maximize, minimize], in place of direction: maximize (direction: goes with metric:, one objective)",
        optimize={"metric": None, "metrics": ["val_accuracy", "n_params"], "pruner": None},
    ),
    Case(
        "directions-swapped",
        "several metrics whose directions are each the wrong way round, as directions written for the metrics "
        "in another order",
        "error: optimize.yaml: directions: [maximize, minimize] would search for the largest n_params and the smallest val_accuracy, the worst model on each; each direction goes with the metric in the same place of metrics: [n_params, val_accuracy]: write directions: [minimize, maximize]",
        optimize={
            "metric": None,
            "direction": None,
            "metrics": ["n_params", "val_accuracy"],
            "directions": ["maximize", "minimize"],
            "pruner": None,
        },
    ),
    Case(
        "choices-on-a-range",
        "choices under type: int or float, which take low and high",
        "error: optimize.yaml: search_space.model.hidden.0: choices are for type: categorical; write {type: categorical, choices: [16, 32]}, or give low and high for an int range",
        optimize={"search_space": {"model.hidden.0": {"type": "int", "choices": [16, 32]}}},
    ),
    Case(
        "range-on-a-categorical",
        "low and high under type: categorical, which takes choices",
        "error: optimize.yaml: search_space.optimizer.lr: low and high are for a range; write {type: float, low: 0.001, high: 0.1, log: true}, or list the values to choose from as choices: [...]",
        optimize=_space(type="categorical", low=0.001, high=0.1, log=True),
    ),
    Case(
        "trials-twice",
        "the trial count given under both its spellings",
        "error: optimize.yaml: give either 'n_trials' or 'trials' (the same setting), not both",
        optimize={"trials": 5},
    ),
    Case(
        "unknown-sampler",
        "an unknown sampler name",
        "error: optimize.yaml: sampler.name: unknown sampler 'tpee' (did you mean 'tpe'?); choose one of: tpe, rung_tpe, random, grid, cmaes, gp, qmc, nsga2, nsga3, bruteforce, or give an import path such as package.module:Name",
        optimize={"sampler": {"name": "tpee"}},
    ),
    Case(
        "unknown-pruner",
        "an unknown pruner name",
        "error: optimize.yaml: pruner.name: unknown pruner 'medain' (did you mean 'median'?); choose one of: median, percentile, successive_halving, hyperband, threshold, patient, wilcoxon, nop, pfl, or give an import path such as package.module:Name",
        optimize={"pruner": {"name": "medain"}},
    ),
    Case(
        "pruner-none",
        "no pruning spelt as a schedule says it (pruner: none; scheduler: {name: none} is a name there)",
        "error: optimize.yaml: pruner.name: unknown pruner 'none'; for no pruning write pruner: null, or name: nop",
        optimize={"pruner": "none"},
    ),
    Case(
        "pruner-off",
        "pruner: off (or no), which YAML reads as false",
        "error: optimize.yaml: pruner: expected a mapping, got false; for no pruning write pruner: null, or pruner: {name: nop}",
        optimize={"pruner": False},
    ),
    Case(
        "sampler-kwargs",
        "sampler kwargs the class does not take",
        "error: optimize.yaml: sampler.kwargs: sampler 'tpe' takes no argument 'n_startup' (did you mean 'n_startup_trials'?); it takes: prior_weight, consider_magic_clip, consider_endpoints, n_startup_trials, n_ei_candidates, gamma, weights, seed, multivariate, group, warn_independent_sampling, constant_liar",
        optimize={"sampler": {"name": "tpe", "kwargs": {"n_startup": 5}}},
    ),
    Case(
        "debug-after-the-command",
        "--debug given after the command, where it is not an option of the command",
        "error: --debug is an option of hpotool itself: give it before the command (hpotool --debug optimize ...)",
        args=("--debug",),
    ),
    Case(
        "sampler-kwarg-type",
        "a sampler argument of the wrong type (1e3 is read as 1000.0 and converted to 1000, as config fields are)",
        "error: optimize.yaml: sampler.kwargs: sampler 'tpe' argument 'seed': Input should be a valid integer, got a number with a fractional part (1.5); write a whole number",
        optimize={"sampler": {"name": "tpe", "kwargs": {"seed": 1.5}}},
    ),
    Case(
        "threshold-without-bounds",
        "the threshold pruner with neither lower nor upper (Optuna's 'Either lower or upper must be specified.')",
        "error: optimize.yaml: pruner.kwargs: 'threshold' needs lower or upper (or both): a trial is pruned once its metric falls below lower or rises above upper; e.g. lower: 0.5",
        optimize={"pruner": {"name": "threshold"}},
    ),
    Case(
        "pruner-value-optuna-refuses",
        "a pruner argument's value Optuna's constructor refuses: the key, the value and Optuna's text",
        "error: optimize.yaml: pruner.kwargs.percentile: 'percentile' rejected 150.0: Percentile must be between 0 and 100 inclusive, but got percentile=150.0; give percentile a value it takes",
        optimize={"pruner": {"name": "percentile", "kwargs": {"percentile": 150}}},
    ),
    Case(
        "sampler-kwarg-optuna-ignores",
        "a sampler argument Optuna takes but ignores (CmaEs's restart_strategy, deprecated in Optuna 4.4)",
        "error: optimize.yaml: sampler.kwargs.restart_strategy: Optuna's CmaEsSampler ignores it since Optuna 4.4 (it runs no restarts whatever restart_strategy says; restarts moved to OptunaHub): drop it",
        optimize={"sampler": {"name": "cmaes", "kwargs": {"restart_strategy": "ipop"}}},
    ),
    Case(
        "fixed-param-not-searched",
        "PartialFixedSampler's fixed_params with a key the search space lacks (a typo)",
        "error: optimize.yaml: sampler.kwargs.fixed_params.model.hiden.0: not in search_space (did you mean 'model.hidden.0'?); fixed_params fixes searched parameters only: correct the key or drop it",
        optimize={
            "sampler": {
                "name": "optuna.samplers.PartialFixedSampler",
                "kwargs": {"fixed_params": {"model.hiden.0": 16}, "base_sampler": "random"},
            }
        },
    ),
    Case(
        "fixed-param-outside-range",
        "PartialFixedSampler's fixed_params with a value outside the parameter's range",
        "error: optimize.yaml: sampler.kwargs.fixed_params.model.hidden.0: 40 lies outside search_space.model.hidden.0 ([8, 32], step 8); give a value within it, or widen search_space.model.hidden.0",
        optimize={
            "sampler": {
                "name": "optuna.samplers.PartialFixedSampler",
                "kwargs": {"fixed_params": {"model.hidden.0": 40}, "base_sampler": "random"},
            }
        },
    ),
    Case(
        "trainer-key-not-in-run-config",
        "a training function's key searched that the run config's trainer section does not set",
        "error: optimize.yaml: search_space.trainer.alpha: the run config has no such key; a training function's keys are those the run config's trainer: section sets: add alpha: <its default> under trainer:",
        run={"trainer": {"function": "tests.trainers:adds_its_options"}},
        optimize={
            "metric": "val_loss",
            "direction": "minimize",
            "search_space": {"trainer.alpha": {"type": "float", "low": 0.1, "high": 1.0}},
        },
    ),
    Case(
        "sampler-function-returns-no-sampler",
        "a sampler function of the user's that returns something else than a sampler",
        "error: optimize.yaml: sampler: 'tests.helpers:not_a_sampler' returned int, not an optuna.samplers.BaseSampler; return the sampler it builds",
        optimize={"sampler": {"name": "tests.helpers:not_a_sampler"}},
    ),
    Case(
        "pruner-required-arg",
        "a pruner of the user's missing an argument it requires",
        "error: optimize.yaml: pruner.kwargs: pruner 'tests.helpers:pruner_at_level' requires 'level', which the config does not set; add level: ... under pruner.kwargs:",
        optimize={"pruner": {"name": "tests.helpers:pruner_at_level"}},
    ),
    Case(
        "sampler-raises-when-built",
        "a sampler class of the user's that raises when hpotool builds it",
        "error: optimize.yaml: sampler: building 'licensed_sampler:Sampler' failed: RuntimeError: no licence server at 10.0.0.7 (at licensed_sampler.py:6 in __init__)",
        optimize={"sampler": {"name": "licensed_sampler:Sampler"}},
        files={
            "licensed_sampler.py": "import optuna\n\n\nclass Sampler(optuna.samplers.RandomSampler):\n"
            "    def __init__(self, seed=None):\n        raise RuntimeError('no licence server at 10.0.0.7')\n"
        },
    ),
    Case(
        "sampler-raises-as-it-samples",
        "a sampler class of the user's whose sampling raises an error other than a ValueError or TypeError; "
        "before: a traceback",
        "error: optimize.yaml: sampler: 'remote_sampler:Sampler' cannot sample this study (one objective): RuntimeError: the suggestion service did not answer (at remote_sampler.py:6 in sample_independent)",
        optimize={"sampler": {"name": "remote_sampler:Sampler"}},
        files={
            "remote_sampler.py": "import optuna\n\n\nclass Sampler(optuna.samplers.RandomSampler):\n"
            "    def sample_independent(self, *args, **kwargs):\n"
            "        raise RuntimeError('the suggestion service did not answer')\n"
        },
    ),
    Case(
        "pruner-exits-when-built",
        "a pruner class of the user's that calls sys.exit() as hpotool builds it; before: hpotool ended at once, "
        "saying nothing, exit code 0",
        "error: optimize.yaml: pruner: building 'exiting_pruner:Pruner' failed: RuntimeError: sys.exit(0) was called, which would end hpotool (argparse's parse_args() does so on hpotool's command line); raise an exception instead, or read the settings from the config (at exiting_pruner.py:8 in __init__)",
        optimize={"pruner": {"name": "exiting_pruner:Pruner"}},
        files={
            "exiting_pruner.py": "import sys\n\nimport optuna\n\n\nclass Pruner(optuna.pruners.NopPruner):\n"
            "    def __init__(self):\n        sys.exit(0)\n"
        },
    ),
    Case(
        "bruteforce-continuous",
        "the brute-force sampler over a float without step",
        "error: optimize.yaml: sampler: the brute-force sampler needs a finite set of values: search_space.optimizer.lr: a float without step has infinitely many; give it a step, or use another sampler",
        optimize={"sampler": {"name": "bruteforce"}, **_space(type="float", low=0.001, high=0.1)},
    ),
    Case(
        "grid-too-large",
        "a grid search over more points than the grid sampler can list",
        "error: optimize.yaml: sampler: the grid of search_space has 10,000,000,000 points (seed: 10,000,000,000 values), and the grid sampler lists every point in memory: give a larger step or fewer choices, for at most 1,000,000 points, or use another sampler (tpe, random)",
        optimize={
            "sampler": {"name": "grid"},
            "search_space": {"seed": {"type": "int", "low": 1, "high": 10_000_000_000}},
        },
    ),
    Case(
        "bruteforce-too-many-values",
        "the brute-force sampler over a parameter with more values than it can list",
        "error: optimize.yaml: sampler: the brute-force sampler lists every value of a parameter in memory: search_space.seed has 10,000,000,000; narrow its range or give it a larger step, for at most 1,000,000 values, or use another sampler (tpe, random)",
        optimize={
            "sampler": {"name": "bruteforce"},
            "search_space": {"seed": {"type": "int", "low": 1, "high": 10_000_000_000}},
        },
    ),
    Case(
        "grid-kwargs-missing",
        "a grid in the sampler's kwargs that leaves out a searched parameter",
        "error: optimize.yaml: sampler.kwargs.search_space: optimizer.lr is searched but not in the grid; give it values too, or leave search_space out of the kwargs (the grid is then built from search_space)",
        optimize={"sampler": {"name": "grid", "kwargs": {"search_space": {"model.hidden.0": [8, 16]}}}},
    ),
    Case(
        "metric-list",
        "several objectives written under the one-objective key metric",
        "error: optimize.yaml: metric: a list is several objectives: write metrics: [...] with directions: [...], one direction per metric (or give metric one value)",
        optimize={"metric": ["val_loss", "n_params"], "direction": None},
    ),
    Case(
        "metrics-one-value",
        "one objective written under the several-objectives key metrics",
        "error: optimize.yaml: metrics: val_accuracy is one value: for one objective write metric: val_accuracy (metrics lists several objectives)",
        optimize={"metric": None, "metrics": "val_accuracy"},
    ),
    Case(
        "metric-twice",
        "one metric given twice as objectives",
        "error: optimize.yaml: metrics: val_loss is given twice; each objective needs its own metric",
        optimize={
            "metric": None,
            "direction": None,
            "pruner": None,
            "metrics": ["val_loss", "val_loss"],
            "directions": ["minimize", "minimize"],
        },
    ),
    Case(
        "sampler-multi-objective",
        "a sampler that cannot handle several objectives",
        "error: optimize.yaml: sampler: 'cmaes' cannot sample this study (2 objectives): ValueError: If the study is being used for multi-objective optimization, CmaEsSampler cannot be used; for several objectives use tpe, nsga2, nsga3, gp, random or qmc",
        optimize={
            "metric": None,
            "direction": None,
            "pruner": None,
            "metrics": ["val_loss", "n_params"],
            "directions": ["minimize", "minimize"],
            "sampler": {"name": "cmaes"},
        },
    ),
    Case(
        "grid-partial-enqueue",
        "a warm-start set that leaves out a parameter of a grid search",
        "error: optimize.yaml: enqueue.0: the grid sampler fails a queued set that leaves out a searched parameter; add model.hidden.0 to it, or drop it",
        optimize={
            "sampler": {"name": "grid"},
            "search_space": {
                "optimizer.lr": {"type": "categorical", "choices": [0.01, 0.1]},
                "model.hidden.0": {"type": "int", "low": 8, "high": 16, "step": 8},
            },
            "enqueue": [{"optimizer.lr": 0.1}],
        },
    ),
    Case(
        "sampler-constraints-func",
        "an Optuna script's constraints_func in a sampler's kwargs",
        'error: optimize.yaml: sampler.kwargs.constraints_func: each trial gives the sampler the constraints of the optimize config\'s constraints: list, with Trial.set_constraint (which Optuna 5 has in its place); drop constraints_func and write each constraint there on a measured value (constraints: ["n_params <= 20000"])',
        optimize={"sampler": {"name": "nsga2", "kwargs": {"constraints_func": "mypkg.hpo:constraints"}}},
    ),
    Case(
        "pruner-warm-up-past-the-epochs",
        "a pruner's warm-up at or past the last step it is asked at (an Optuna script's steps from 1)",
        "error: optimize.yaml: pruner.kwargs.n_warmup_steps: 1 leaves no step to prune at: trials train at most 2 epochs (steps 0 to 1), and the pruner is asked after step 0 only, the last epoch's trial completing; give n_warmup_steps at most 0, or train more epochs",
        optimize={"pruner": {"name": "median", "kwargs": {"n_warmup_steps": 1}}},
    ),
    Case(
        "pruner-first-rung-past-the-epochs",
        "successive halving's first rung past the last step the pruner is asked at",
        "error: optimize.yaml: pruner.kwargs.min_resource: 4 puts the first rung at step 4: trials train at most 5 epochs (steps 0 to 4), and the pruner is asked after steps 0 to 3, so no trial is ever pruned; give min_resource at most 3, or train more epochs",
        run={"epochs": 5},
        optimize={"pruner": {"name": "successive_halving", "kwargs": {"min_resource": 4}}},
    ),
    Case(
        "hyperband-max-resource-past-the-epochs",
        "hyperband's max_resource larger than the epochs a trial trains",
        "error: optimize.yaml: pruner.kwargs.max_resource: 30 is more than the 5 epochs a trial trains: hyperband splits the trials into 4 brackets by it, 2 of which have their first rung past the last step the pruner is asked at (3) and prune nothing (0 of 2 with max_resource: 5); give max_resource: 5, or auto (the steps of the first complete trial)",
        run={"epochs": 5},
        optimize={
            "pruner": {
                "name": "hyperband",
                "kwargs": {"min_resource": 1, "max_resource": 30, "reduction_factor": 3},
            }
        },
    ),
    Case(
        "sampler-kwarg-object-not-a-name",
        "a number for a sampler argument that takes an object (CmaEs's independent_sampler)",
        "error: optimize.yaml: sampler.kwargs.independent_sampler: sampler 'cmaes' takes a BaseSampler here (got 1); give it as {name: tpe, kwargs: {...}}, which hpotool builds",
        optimize={"sampler": {"name": "cmaes", "kwargs": {"independent_sampler": 1}}},
    ),
    Case(
        "sampler-kwarg-object-wrong-class",
        "a sampler's object argument naming a class of another kind (a sampler as NSGA-II's crossover)",
        "error: optimize.yaml: sampler.kwargs.crossover.name: 'optuna.samplers.TPESampler' built a TPESampler, not a BaseCrossover; name a BaseCrossover subclass",
        optimize={
            "sampler": {"name": "nsga2", "kwargs": {"crossover": {"name": "optuna.samplers.TPESampler"}}}
        },
    ),
    Case(
        "sampler-kwarg-function",
        "a number for a sampler argument that takes a function (TPE's gamma)",
        "error: optimize.yaml: sampler.kwargs.gamma: sampler 'tpe' takes a function here, which a YAML value cannot be (got 0.1); drop gamma, or build the sampler in your own module and give its import path (package.module:Name) as name",
        optimize={"sampler": {"name": "tpe", "kwargs": {"gamma": 0.1}}},
    ),
    Case(
        "pruner-kwargs",
        "pruner kwargs the class does not take",
        "error: optimize.yaml: pruner.kwargs: pruner 'median' takes no argument 'warmup_steps' (did you mean 'n_warmup_steps'?); it takes: n_startup_trials, n_warmup_steps, interval_steps, n_min_trials",
        optimize={"pruner": {"name": "median", "kwargs": {"warmup_steps": 2}}},
    ),
    Case(
        "missing-path",
        "a search path the RunConfig does not have",
        "error: optimize.yaml: search_space.optimiser.lr: the run config has no such key; did you mean 'optimizer.lr', 'optimizer.eps', 'optimizer.name'?",
        optimize={"search_space": {"optimiser.lr": {"type": "float", "low": 0.001, "high": 0.1}}},
    ),
    Case(
        "component-argument-typo",
        "a search path naming an argument the run config's optimizer does not take, misspelt",
        "error: optimize.yaml: search_space.optimizer.lrate: optimizer 'adam' takes no argument 'lrate' (did you mean 'optimizer.lr'?); it takes: lr, betas, eps, weight_decay, amsgrad, foreach, maximize, capturable, differentiable, fused, decoupled_weight_decay",
        optimize={"search_space": {"optimizer.lrate": {"type": "float", "low": 0.001, "high": 0.1}}},
    ),
    Case(
        "run-argument-of-another",
        "the run config's optimizer given an argument other optimizers take (adam with momentum)",
        "error: run.yaml: optimizer: optimizer 'adam' takes no argument 'momentum'; it takes: lr, betas, eps, weight_decay, amsgrad, foreach, maximize, capturable, differentiable, fused, decoupled_weight_decay; momentum is an argument of sgd and rmsprop: write name: sgd (or rmsprop), or remove momentum",
        run={"optimizer": {"name": "adam", "lr": 0.01, "momentum": 0.9}},
    ),
    Case(
        "component-argument-of-another",
        "a search path naming an argument other optimizers take (momentum) beside the run config's adam",
        "error: optimize.yaml: search_space.optimizer.momentum: optimizer 'adam' takes no argument 'momentum'; it takes: lr, betas, eps, weight_decay, amsgrad, foreach, maximize, capturable, differentiable, fused, decoupled_weight_decay; sgd, rmsprop take it: set optimizer.name in the run config, or search optimizer.name with optimizer.momentum under when: {optimizer.name: sgd}",
        optimize={"search_space": {"optimizer.momentum": {"type": "float", "low": 0.5, "high": 0.99}}},
    ),
    Case(
        "argument-of-no-searched-component",
        "a search path naming an argument none of the searched optimizers takes (momentum beside adam, adamw)",
        "error: optimize.yaml: search_space.optimizer.momentum: none of the searched optimizers (optimizer.name: adam, adamw) takes 'momentum'; sgd, rmsprop take it: add sgd to optimizer.name's choices and search optimizer.momentum under when: {optimizer.name: sgd}, or remove optimizer.momentum",
        optimize={
            "search_space": {
                "optimizer.name": {"type": "categorical", "choices": ["adam", "adamw"]},
                "optimizer.momentum": {"type": "float", "low": 0.8, "high": 0.99},
            }
        },
    ),
    Case(
        "searched-last-epoch",
        "a schedule's last_epoch searched, which hpotool leaves at its default",
        "error: optimize.yaml: search_space.scheduler.last_epoch: scheduler argument 'last_epoch' resumes a schedule part-way through, from a checkpoint's optimizer state, and hpotool starts every run's schedule at its beginning; remove it",
        run={"scheduler": {"name": "torch.optim.lr_scheduler:StepLR", "step_size": 1}},
        optimize={"search_space": {"scheduler.last_epoch": {"type": "int", "low": 0, "high": 2}}},
    ),
    Case(
        "auto-loss-argument",
        "an argument of the auto loss searched (label smoothing)",
        "error: optimize.yaml: search_space.loss.label_smoothing: loss 'auto' takes no arguments; to give it label_smoothing, name the loss it stands for: loss: {name: cross_entropy} (integer class labels) or {name: mse} (float targets) in the run config",
        optimize={"search_space": {"loss.label_smoothing": {"type": "float", "low": 0.0, "high": 0.2}}},
    ),
    Case(
        "argument-of-one-searched-component",
        "an argument that only some of the searched components take",
        "error: optimize.yaml: search_space.optimizer.momentum: with optimizer.name=adam, optimizer.momentum=0.5: optimizer: optimizer 'adam' takes no argument 'momentum'; it takes: lr, betas, eps, weight_decay, amsgrad, foreach, maximize, capturable, differentiable, fused, decoupled_weight_decay; search it only with the optimizers that take it: when: {optimizer.name: sgd}",
        optimize={
            "search_space": {
                "optimizer.name": {"type": "categorical", "choices": ["sgd", "adam"]},
                "optimizer.momentum": {"type": "float", "low": 0.5, "high": 0.9},
            }
        },
    ),
    Case(
        "invalid-value",
        "a search value that fails RunConfig validation",
        "error: optimize.yaml: search_space.epochs: with epochs=0: epochs: must be 1 or more, got 0",
        optimize={"search_space": {"epochs": {"type": "int", "low": 0, "high": 3}}},
    ),
    Case(
        "unbuildable-value",
        "a search value the component rejects",
        "error: optimize.yaml: search_space.model.dropout: with model.dropout=1.5: dropout must be from 0 up to but not including 1, got 1.5; give a value such as 0.1 (0: no dropout)",
        optimize={"search_space": {"model.dropout": {"type": "float", "low": 0.0, "high": 1.5}}},
    ),
    Case(
        "metric-not-produced",
        "a metric the trainer does not produce for the task",
        "error: optimize.yaml: metric: 'val_rmse' is not measured for this classification task; choose one of: train_loss, val_loss, val_accuracy, n_params, epoch_time",
        optimize={"metric": "val_rmse", "direction": "minimize"},
    ),
    Case(
        "metric-of-your-own",
        "a metric of the user's own (F1) with hpotool's Trainer, which does not measure it",
        "error: optimize.yaml: metric: 'val_f1' is not measured for this classification task; choose one of: train_loss, val_loss, val_accuracy, n_params, epoch_time (hpotool's Trainer measures only these; for a metric of your own such as val_f1, train with a function of yours that computes it, reports it each epoch and returns it: trainer: {function: mypkg.train:fit} in the run config)",
        optimize={"metric": "val_f1", "direction": "maximize"},
    ),
    Case(
        "metric-of-your-own-regression",
        "a metric of the user's own (F1) with hpotool's Trainer on a regression, no built-in name close to it",
        "error: optimize.yaml: metric: 'val_f1' is not measured for this regression task; choose one of: train_loss, val_loss, val_rmse, val_mae, n_params, epoch_time (hpotool's Trainer measures only these; for a metric of your own such as val_f1, train with a function of yours that computes it, reports it each epoch and returns it: trainer: {function: mypkg.train:fit} in the run config)",
        run={"data": {"name": "regression"}},
        optimize={"metric": "val_f1", "direction": "maximize"},
    ),
    Case(
        "direction-not-given",
        "a metric to maximize with no direction (the default would minimize it)",
        "error: optimize.yaml: direction: not given, so val_accuracy would be minimized (the default); add direction: maximize (or direction: minimize)",
        optimize={"direction": None},
    ),
    Case(
        "metric-misspelt-without-direction",
        "a misspelt metric with no direction (fixing the direction alone would meet the metric's error next)",
        "error: optimize.yaml: metric: 'val_acuracy' is not a metric hpotool measures (did you mean 'val_accuracy'?), and direction is not given; fix the name, or, for a metric your trainer returns, add direction: maximize or minimize",
        optimize={"metric": "val_acuracy", "direction": None},
    ),
    Case(
        "own-metric-without-direction",
        "a metric of the user's own (an F1) with no direction: no built-in name a letter or two away is offered",
        "error: optimize.yaml: direction: not given, so val_f1 would be minimized (the default); add direction: maximize or minimize",
        optimize={"metric": "val_f1", "direction": None},
    ),
    Case(
        "loss-maximized",
        "a loss or an error to maximize",
        "error: optimize.yaml: direction: maximize would search for the largest val_loss, the worst model; use minimize",
        optimize={"metric": "val_loss", "direction": "maximize"},
    ),
    Case(
        "swapped-configs",
        "the optimize config given as the run config (-r and -o the wrong way round)",
        "error: run.yaml: this is an optimize config (it has study_name, n_trials, metric, ...), not a run config; give a run config (project, data, model, ...) here, and this file as --optimize-config",
        run_text="study_name: tiny\nn_trials: 3\nmetric: val_accuracy\ndirection: maximize\nsearch_space:\n  optimizer.lr: {type: float, low: 0.001, high: 0.1}\n",
        optimize_text="project: tiny\ndata: {name: digits}\nmodel: {name: mlp}\n",
    ),
    Case(
        "bad-direction",
        "a direction that is neither minimize nor maximize",
        "error: optimize.yaml: direction: Input should be minimize or maximize, got max (did you mean 'maximize'?)",
        optimize={"direction": "max"},
    ),
    Case(
        "zero-trials",
        "n_trials <= 0",
        "error: optimize.yaml: n_trials: must be above 0, got 0",
        optimize={"n_trials": 0},
    ),
    Case(
        "endless-timeout",
        "timeout: .inf (a run that would never end)",
        "error: optimize.yaml: timeout: must be a finite number of seconds, got inf; give e.g. timeout: 3600, or timeout: null for no time limit (with n_trials set)",
        optimize={"n_trials": None, "timeout": float("inf")},
    ),
    Case(
        "zero-trials-flag",
        "--n-trials 0",
        "error: --n-trials: must be above 0, got 0",
        args=("--n-trials", "0"),
    ),
    Case(
        "zero-workers-flag",
        "--workers 0",
        "error: --workers: must be 1 or more, got 0",
        args=("--workers", "0"),
    ),
    Case(
        "seed-out-of-range",
        "a seed no sampler takes",
        "error: --seed: must be from 0 to 4294967295 (what Optuna's samplers take), got -1",
        args=("--seed=-1",),
    ),
    Case(
        "malformed-storage",
        "a storage that is not a URL",
        "error: --storage: 'studies/tiny.db' is not a storage URL; for the SQLite file studies/tiny.db, write sqlite:///studies/tiny.db",
        args=("--storage", "studies/tiny.db"),
    ),
    Case(
        "malformed-storage-no-file",
        "a storage that is not a URL nor the path of a SQLite file or journal",
        "error: --storage: 'postgres' is not a storage URL; use sqlite:///path.db, postgresql+psycopg://..., mysql+pymysql://..., redis://host:6379 or journal:path.log",
        args=("--storage", "postgres"),
    ),
    Case(
        "malformed-storage-journal-path",
        "a journal file's path given as the storage, without journal:",
        "error: --storage: 'studies/tiny.log' is not a storage URL; for the journal file studies/tiny.log, write journal:studies/tiny.log",
        args=("--storage", "studies/tiny.log"),
    ),
    Case(
        "config-storage-not-a-url",
        "an optimize config whose storage: is a file's path, not a URL (the refusal names the file and key)",
        "error: optimize.yaml: storage: 'studies/tiny.db' is not a storage URL; for the SQLite file studies/tiny.db, write sqlite:///studies/tiny.db",
        optimize_text=_optimize_text(storage="studies/tiny.db"),
    ),
    Case(
        "config-storage-is-a-folder",
        "an optimize config whose storage: names the folder the studies go in, not a file",
        "error: optimize.yaml: storage: 'sqlite:///studies': 'studies' is a folder, not a SQLite file; give a file in it, sqlite:///studies/NAME.db (NAME: the study's name)",
        optimize_text=_optimize_text(storage="sqlite:///studies"),
    ),
    Case(
        "sqlite-not-a-database",
        "a sqlite: storage naming a file that is not a SQLite database",
        "error: --storage: 'sqlite:///run.yaml': 'run.yaml' is not a SQLite database; hpotool would add Optuna's tables to it, so give a new file or one hpotool wrote (nothing was written to this one)",
        args=("--storage", "sqlite:///run.yaml"),
    ),
    Case(
        "default-storage-not-a-database",
        "an optimize config without storage:, whose default file studies/NAME.db is not a SQLite database",
        "error: the default storage studies/other.db: 'studies/other.db' is not a SQLite database; hpotool would add Optuna's tables to it, so give a new file or one hpotool wrote (nothing was written to this one)",
        optimize_text=_optimize_text(study_name="other", storage=None),
        files={"studies/other.db": "not a database\n"},
    ),
    Case(
        "journal-not-a-journal",
        "a journal: storage naming a file that is not an Optuna journal",
        "error: --storage: 'journal:run.yaml': 'run.yaml' is not an Optuna journal file (its first line is not a journal record); give the journal hpotool optimize wrote to, or a new file name (nothing was written to this one)",
        args=("--storage", "journal:run.yaml"),
    ),
    Case(
        "unknown-storage-scheme",
        "a storage URL whose database name SQLAlchemy does not know (postgres://)",
        "error: --storage: 'postgres://nobody@127.0.0.1:1/none': no database or driver 'postgres' (did you mean 'postgresql+psycopg'?); use sqlite:///path.db, postgresql+psycopg://..., mysql+pymysql://..., redis://host:6379 or journal:path.log",
        args=("--storage", "postgres://nobody@127.0.0.1:1/none"),
    ),
    Case(
        "unreachable-storage",
        "a storage server that does not answer",
        "error: --storage: 'postgresql+psycopg://nobody@127.0.0.1:1/none': cannot open it: connection failed: connection to server at \"127.0.0.1\", port 1 failed: Connection refused; is the server running on 127.0.0.1:1? check the host and port in the URL",
        args=("--storage", "postgresql+psycopg://nobody@127.0.0.1:1/none"),
    ),
    Case(
        "redis-database-name",
        "a Redis URL with a database name after the port, as a PostgreSQL URL has (Redis numbers its databases)",
        "error: optimize.yaml: storage: 'redis://127.0.0.1:1/hpo': a Redis URL's path is a database number (0, 1, ...), not a name; to keep this study's journal apart write redis://127.0.0.1:1?prefix=hpo",
        optimize_text=_optimize_text(storage="redis://127.0.0.1:1/hpo"),
    ),
    Case(
        "redis-password-without-one",
        "a password in a Redis URL for a server that has none (a URL meant for another server)",
        "error: --storage: 'redis://:***@127.0.0.1:6379': its Redis server has no password (its default user takes none), yet the URL gives one; drop the password (redis://127.0.0.1:6379), or, if the study is on a server that has one, correct the host and port",
        command=("trials", "--study-name", "tiny", "--storage", "redis://:wrongpw@127.0.0.1:6379"),
        server="redis",
    ),
    Case(
        "study-name-empty",
        "an empty study name in the optimize config",
        "error: optimize.yaml: study_name: is empty; give the study a name, e.g. mnist (its file is then studies/mnist.db)",
        optimize={"study_name": ""},
    ),
    Case(
        "run-seed-past-torch",
        "a run seed torch cannot take (past 2**64 - 1); before: the first training step failed with 'Overflow when unpacking long long; check that the loss fits this classification task'",
        "error: run.yaml: seed: must be from -9223372036854775808 to 18446744073709551615 (what torch.manual_seed takes), got 100000000000000000000",
        run={"seed": 10**20},
    ),
    Case(
        "study-name-slash",
        "a study name with /",
        "error: optimize.yaml: study_name: 'a/b' may hold only ASCII letters, digits, '_', '-' and '.', starting with a letter, digit or '_' (no '/', '..', spaces or control characters), since it names files under studies/; name it 'a_b', say",
        optimize={"study_name": "a/b"},
    ),
    Case(
        "study-name-dots",
        "a study name with ..",
        "error: optimize.yaml: study_name: 'x..y' may hold only ASCII letters, digits, '_', '-' and '.', starting with a letter, digit or '_' (no '/', '..', spaces or control characters), since it names files under studies/; name it 'x.y', say",
        optimize={"study_name": "x..y"},
    ),
    Case(
        "study-name-control",
        "a study name with a control character",
        "error: optimize.yaml: study_name: 'a\\x07b' may hold only ASCII letters, digits, '_', '-' and '.', starting with a letter, digit or '_' (no '/', '..', spaces or control characters), since it names files under studies/; name it 'a_b', say",
        optimize={"study_name": "a\x07b"},
    ),
    Case(
        "study-name-db",
        "a study name given as its file's name",
        "error: optimize.yaml: study_name: 'tiny.db' ends in .db, and its default storage adds .db (studies/tiny.db.db); name the study 'tiny' (its file is then studies/tiny.db)",
        optimize={"study_name": "tiny.db"},
    ),
    Case(
        "other-direction",
        "an existing study created with another direction",
        "error: optimize.yaml: study 'tiny' in sqlite:///studies/tiny.db was created to maximize val_accuracy, and this config says minimize val_loss; use another study_name or storage",
        optimize={"direction": "minimize", "metric": "val_loss"},
        existing_study=True,
    ),
    Case(
        "other-metrics",
        "an existing study of several objectives resumed with other metrics, or the same reordered",
        "error: optimize.yaml: study 'tiny' in sqlite:///studies/tiny.db optimizes metrics [val_loss, n_params], and this config says [n_params, val_loss]; its trials' values are those metrics in that order, so not even --allow-changed-config can change them: use another study_name or storage",
        optimize={"metric": None, "direction": None, "metrics": ["n_params", "val_loss"]}
        | {"directions": ["minimize", "minimize"], "n_trials": 4},
        args=("--allow-changed-config",),
        existing_study=True,
        existing_optimize={"metric": None, "direction": None, "metrics": ["val_loss", "n_params"]}
        | {"directions": ["minimize", "minimize"]},
    ),
    Case(
        "brute-force-range",
        "a brute-force study resumed with another range or step of a parameter its trials drew",
        "error: optimize.yaml: study 'tiny': search_space.model.hidden.0 takes other values than the study's trials drew it from (8 to 32 step 8 there, 8 to 40 step 8 here), and Optuna's brute force fails every trial of such a study, not even with --allow-changed-config: keep search_space.model.hidden.0 as it was, or use a new study_name",
        optimize={"sampler": {"name": "bruteforce"}, "n_trials": 4}
        | {"search_space": {"model.hidden.0": {"type": "int", "low": 8, "high": 40, "step": 8}}},
        args=("--allow-changed-config",),
        existing_study=True,
        existing_optimize={"sampler": {"name": "bruteforce"}}
        | {"search_space": {"model.hidden.0": {"type": "int", "low": 8, "high": 32, "step": 8}}},
    ),
    Case(
        "changed-experiment-while-running",
        "changing a study's experiment with --allow-changed-config while another process runs its trials",
        "error: study 'tiny' has 2 running trials (#1, #2): another hpotool optimize is running it with the experiment --allow-changed-config would replace, and its next trials would be exported with the new configs; stop it first (after a crash on another machine: hpotool fail-stale --all-running)",
        run={"epochs": 3},
        args=("--allow-changed-config", "--n-trials", "4", "--timeout", "3"),
        existing_study=True,
        running_trials=2,
    ),
    Case(
        "changed-experiment",
        "resuming a study whose search space changed",
        "error: study 'tiny' was created with another experiment: optimize.yaml: search_space.optimizer.lr.high: 0.1 -> 0.3. Resuming or joining it with these configs would mix two experiments: use a new study_name, or pass --allow-changed-config to go on with it anyway",
        optimize={
            "n_trials": 2,
            "search_space": {
                **OPTIMIZE["search_space"],
                LR: {"type": "float", "low": 1e-3, "high": 0.3, "log": True},
            },
        },
        existing_study=True,
    ),
    Case(
        "changed-kind",
        "resuming a study, even with --allow-changed-config, with a parameter of another kind, log scale or choices",
        "error: optimize.yaml: study 'tiny': search_space.model.hidden.0 is categorical [8, 16, 32] in this config, but the study's trials drew it as int; Optuna cannot change a parameter's kind, log scale or choices within one study (every trial would fail), not even with --allow-changed-config: keep it as it was, or use a new study_name",
        optimize={
            "n_trials": 2,
            "search_space": {
                **OPTIMIZE["search_space"],
                "model.hidden.0": {"type": "categorical", "choices": [8, 16, 32]},
            },
        },
        args=("--allow-changed-config",),
        existing_study=True,
    ),
    Case(
        "section-choice-respelt",
        "resuming a study with a whole-section choice spelt otherwise that builds the same section",
        "error: optimize.yaml: study 'tiny': search_space.optimizer.choices.1: {lr: 0.001, name: adam} builds the same optimizer as the choice {name: adam} the study's trials drew, but Optuna stores a choice as it is spelt, and every trial would fail: write it as stored, {name: adam}",
        optimize={
            "n_trials": 2,
            "search_space": {
                "optimizer": {
                    "type": "categorical",
                    "choices": [{"name": "sgd"}, {"name": "adam", "lr": 0.001}],
                }
            },
        },
        existing_study=True,
        existing_optimize={
            "search_space": {
                "optimizer": {"type": "categorical", "choices": [{"name": "sgd"}, {"name": "adam"}]}
            }
        },
    ),
    Case(
        "section-choices-reordered",
        "resuming a study with a whole section's choices in another order, one spelt otherwise",
        "error: optimize.yaml: study 'tiny': search_space.optimizer: [{lr: 0.001, name: adam}, {name: sgd}] are the choices the study's trials drew, reordered and with {lr: 0.001, name: adam} stored as {name: adam} (the same optimizer), but Optuna stores choices as they are spelt, in their order, and every trial would fail: write them as stored, choices: [{name: sgd}, {name: adam}]",
        optimize={
            "n_trials": 2,
            "search_space": {
                "optimizer": {
                    "type": "categorical",
                    "choices": [{"name": "adam", "lr": 0.001}, {"name": "sgd"}],
                }
            },
        },
        existing_study=True,
        existing_optimize={
            "search_space": {
                "optimizer": {"type": "categorical", "choices": [{"name": "sgd"}, {"name": "adam"}]}
            }
        },
    ),
    Case(
        "cuda-missing",
        "device: cuda without CUDA",
        "error: run.yaml: device: cuda was asked for but CUDA is not available here; use device: auto or cpu",
        run={"device": "cuda"},
        needs_no_cuda=True,
    ),
    Case(
        "bad-device-flag",
        "--device with an unknown device",
        "error: --device: must be auto, cpu, cuda, cuda:N or mps, got gpu",
        args=("--device", "gpu"),
    ),
    Case(
        "import-module",
        "an import path whose module does not import",
        "error: run.yaml: model: cannot import 'mypkg.nets:Net': No module named 'mypkg'; imports resolve from the current folder and PYTHONPATH: run hpotool from the folder that holds mypkg/ (or mypkg.py), add that folder to PYTHONPATH, or install your project in the Python hpotool runs in (<python> -m pip install -e YOUR_PROJECT)",
        run={"model": {"name": "mypkg.nets:Net"}},
    ),
    Case(
        "import-package-not-its-module",
        "an import path that names the package where a module of it defines the class (mypkg:Net for mypkg/nets.py)",
        "error: run.yaml: model: cannot import 'flat_pkg_nets:Net': module 'flat_pkg_nets' has no attribute 'Net'; flat_pkg_nets.nets defines Net: write flat_pkg_nets.nets:Net",
        run={"model": {"name": "flat_pkg_nets:Net"}},
        files={"flat_pkg_nets/__init__.py": "", "flat_pkg_nets/nets.py": "class Net:\n    pass\n"},
    ),
    Case(
        "import-package-in-a-subfolder",
        "an import path whose package sits in a subfolder of the one hpotool runs in (-r proj/run.yaml)",
        "error: run.yaml: model: cannot import 'subfolder_nets.nets:Net': No module named 'subfolder_nets'; imports resolve from the current folder and PYTHONPATH, and <cwd>/proj holds subfolder_nets: run hpotool from there (cd proj), add that folder to PYTHONPATH, or install your project in the Python hpotool runs in (<python> -m pip install -e YOUR_PROJECT)",
        run={"model": {"name": "subfolder_nets.nets:Net"}},
        files={"proj/subfolder_nets/__init__.py": "", "proj/subfolder_nets/nets.py": "Net = None\n"},
    ),
    Case(
        "import-module-in-a-folder-above",
        "an import path whose module sits in a folder above the one hpotool runs in (run from configs/)",
        "error: ../run.yaml: model: cannot import 'above_nets:Net': No module named 'above_nets'; imports resolve from the current folder and PYTHONPATH, and <cwd> holds above_nets: run hpotool from there (cd ..), add that folder to PYTHONPATH, or install your project in the Python hpotool runs in (<python> -m pip install -e YOUR_PROJECT)",
        run={"model": {"name": "above_nets:Net"}},
        files={"above_nets.py": "Net = None\n"},
        command=("optimize", "-r", "../run.yaml", "-o", "../optimize.yaml"),
        run_in="sub",
    ),
    Case(
        "import-exported-config-from-another-folder",
        "an exported best_run.yaml trained from a folder beside its project, whose module the folder the "
        "config sits below holds; before: 'run hpotool from the folder that holds sibling_nets/', naming none",
        "error: ../proj/studies/best/best_run.yaml: model: cannot import 'sibling_nets:Net': No module named 'sibling_nets'; imports resolve from the current folder and PYTHONPATH, and <cwd>/proj holds sibling_nets: run hpotool from there (cd ../proj), add that folder to PYTHONPATH, or install your project in the Python hpotool runs in (<python> -m pip install -e YOUR_PROJECT)",
        files={
            "proj/sibling_nets.py": "Net = None\n",
            "proj/studies/best/best_run.yaml": "model: {name: 'sibling_nets:Net'}\ndevice: cpu\n",
        },
        command=("train", "-r", "../proj/studies/best/best_run.yaml"),
        run_in="other",
    ),
    Case(
        "import-file-path",
        "a file path written where an import path goes",
        "error: run.yaml: model: cannot import 'mypkg/nets.py:Net': 'mypkg/nets.py' is a file path, not an import path; write mypkg.nets:Net (folders joined by dots, without .py), run from the folder that holds mypkg/",
        run={"model": {"name": "mypkg/nets.py:Net"}},
    ),
    Case(
        "import-relative",
        "a relative import path, as a package's own imports read",
        "error: run.yaml: model: cannot import '.mypkg.nets:Net': '.mypkg.nets' is a relative import, which has no package to start from here; write mypkg.nets:Net, the path from the folder hpotool runs in",
        run={"model": {"name": ".mypkg.nets:Net"}},
    ),
    Case(
        "import-module-alone",
        "a module of the user's named without the object in it",
        "error: run.yaml: model: cannot import 'module_alone_nets': it names the module module_alone_nets, not an object in it; write module_alone_nets:Name (it defines: Net)",
        run={"model": {"name": "module_alone_nets"}},
        files={"module_alone_nets.py": "import torch\n\n\nclass Net(torch.nn.Module):\n    pass\n"},
    ),
    Case(
        "model-object-already-built",
        "a model object built at a script's top level, named where hpotool wants its class",
        "error: run.yaml: model: model 'built_model:model' is a Net object, already built, where hpotool builds a new one for every trial; name its class, built_model:Net, and set its arguments under model:",
        run={"model": {"name": "built_model:model"}},
        files={
            "built_model.py": "from torch import nn\n\n\nclass Net(nn.Module):\n"
            "    def __init__(self, in_features, out_features):\n        super().__init__()\n"
            "        self.f = nn.Linear(in_features, out_features)\n\n\nmodel = Net(64, 10)\n"
        },
    ),
    Case(
        "model-forward-requires-a-mask",
        "a model whose forward() requires a second argument (a mask) besides the batch",
        "error: run.yaml: model: TypeError: Net.forward() missing 1 required positional argument: 'mask'; hpotool calls forward(x) with one batch tensor, and Net.forward (mask_model.py:9) also requires mask: give it a default (def forward(self, x, mask=None)), or wrap the model in a module whose forward takes x alone",
        run={"model": {"name": "mask_model:Net"}},
        files={
            "mask_model.py": "from torch import nn\n\n\nclass Net(nn.Module):\n"
            "    def __init__(self, in_features, out_features):\n        super().__init__()\n"
            "        self.f = nn.Linear(in_features, out_features)\n\n"
            "    def forward(self, x, mask):\n        return self.f(x * mask)\n"
        },
    ),
    Case(
        "model-linear-on-image-samples",
        "a model of the user's whose first layer is nn.Linear(in_features, ...) on digits' 1x8x8 images, unflattened",
        "error: run.yaml: model: RuntimeError: mat1 and mat2 shapes cannot be multiplied (64x8 and 64x10) (at flat_linear_nets.py:10 in forward); each sample of the data's x is shaped (1, 8, 8), and in_features (64) is that size flattened: flatten it first in forward() (x = x.flatten(1)), as the built-in mlp does, or ask for input_shape",
        run={"model": {"name": "flat_linear_nets:Net"}},
        files={
            "flat_linear_nets.py": "from torch import nn\n\n\nclass Net(nn.Module):\n"
            "    def __init__(self, in_features, out_features):\n        super().__init__()\n"
            "        self.f = nn.Linear(in_features, out_features)\n\n"
            "    def forward(self, x):\n        return self.f(x)\n"
        },
    ),
    Case(
        "data-object-already-built",
        "a Dataset object made on import, named where hpotool wants a function or class",
        "error: run.yaml: data: data 'built_data:train_ds' is a Samples object, not a function or class that returns the data; name its class, built_data:Samples, with its arguments under data:, or a function that returns it",
        run={"data": {"name": "built_data:train_ds"}},
        files={
            "built_data.py": "import torch\n\n\nclass Samples(torch.utils.data.Dataset):\n"
            "    def __len__(self):\n        return 4\n\n    def __getitem__(self, i):\n"
            "        return torch.zeros(3), i % 2\n\n\ntrain_ds = Samples()\n"
        },
    ),
    Case(
        "import-attribute",
        "an import path naming no such attribute",
        "error: run.yaml: model: cannot import 'tests.helpers:SlowModle': module 'tests.helpers' has no attribute 'SlowModle' (did you mean 'SlowModel'?)",
        run={"model": {"name": "tests.helpers:SlowModle"}},
    ),
    Case(
        "data-nan",
        "a dataset with NaN features",
        "error: run.yaml: data: 'tests.helpers:points_with_a_gap' returned data hpotool cannot train on: x holds NaN or infinite values in 1 sample (the first is sample 5); drop or fill them in the dataset function",
        run={"data": {"name": "tests.helpers:points_with_a_gap"}},
    ),
    Case(
        "data-argument-quoted-number",
        "a quoted number for an argument of a dataset function of the user's, which torch refuses in its code; "
        "before: the line of the user's code alone, naming no key",
        "error: run.yaml: data: loading 'moons_data:moons' failed: TypeError: rand(): argument 'size' (position 1) must be tuple of ints, not str (at moons_data.py:5 in moons); data.n_samples is the text \"600\": write 600 without quotes, a number",
        run={"data": {"name": "moons_data:moons", "n_samples": "600"}},
        files={
            "moons_data.py": "import torch\n\n\ndef moons(n_samples=600):\n"
            "    t = torch.rand(n_samples)\n"
            "    return torch.stack([t.cos(), t.sin()], dim=1), (t > 0.5).long()\n"
        },
    ),
    Case(
        "data-list-of-samples",
        "a dataset function returning a list of (x, y) samples; before: 'got a list of 40 items; return x and y alone'",
        "error: run.yaml: data: 'samples_data:samples' returned data hpotool cannot train on: a dataset function must return hpotool.datasets.Dataset, an (x, y) pair or a torch Dataset of (x, y) samples, got a list of 40 (x, y) samples; return them as one (x, y) pair: torch.stack([s[0] for s in samples]), torch.tensor([s[1] for s in samples])",
        run={"data": {"name": "samples_data:samples"}},
        files={
            "samples_data.py": "import torch\n\n\ndef samples():\n"
            "    return [(torch.full((4,), float(i)), i % 2) for i in range(40)]\n\n\n"
            "class Samples:\n    def __len__(self):\n        return 40\n\n"
            "    def __getitem__(self, i):\n        return torch.full((4,), float(i)), i % 2\n"
        },
    ),
    Case(
        "data-map-style-not-a-torch-dataset",
        "a map-style dataset class (__len__, __getitem__) that does not subclass torch's Dataset; before: 'got Samples'",
        "error: run.yaml: data: 'samples_data:Samples' returned data hpotool cannot train on: a dataset function must return hpotool.datasets.Dataset, an (x, y) pair or a torch Dataset of (x, y) samples, got Samples, which has __len__ and __getitem__ but is no torch.utils.data.Dataset: make its class a subclass of torch.utils.data.Dataset, or return an (x, y) pair",
        run={"data": {"name": "samples_data:Samples"}},
        files={
            "samples_data.py": "import torch\n\n\ndef samples():\n"
            "    return [(torch.full((4,), float(i)), i % 2) for i in range(40)]\n\n\n"
            "class Samples:\n    def __len__(self):\n        return 40\n\n"
            "    def __getitem__(self, i):\n        return torch.full((4,), float(i)), i % 2\n"
        },
    ),
    Case(
        "data-two-splits",
        "a dataset function returning its own training and validation splits",
        "error: run.yaml: data: 'split_data:load' returned data hpotool cannot train on: got two (x, y) pairs, a training and a validation split?; return all the samples as one (x, y) pair: hpotool makes the validation split itself (data.val_fraction, data.split_seed)",
        run={"data": {"name": "split_data:load"}},
        files={
            "split_data.py": "import torch\n\n\ndef load():\n    x, y = torch.randn(50, 3), torch.randint(0, 2, (50,))\n"
            "    return (x[:40], y[:40]), (x[40:], y[40:])\n"
        },
    ),
    Case(
        "data-several-labels",
        "integer targets with several labels per sample, as one class per sample",
        "error: run.yaml: data: 'tests.helpers:several_labels' returned data hpotool cannot train on: y has shape (160, 3) of 0/1 labels, with several labels (or none) for 97 of 160 samples, but a classification task takes one class per sample; for several labels per sample set loss: {name: bce_with_logits} (a multilabel task, scored by val_accuracy per label), or for one class per sample give class ids 0..K-1",
        run={"data": {"name": "tests.helpers:several_labels", "dtype": "int64"}},
    ),
    Case(
        "import-main-block",
        'a model class defined under if __name__ == "__main__":, which does not run on import',
        "error: run.yaml: model: cannot import 'tests.script_model:ScriptNet': module 'tests.script_model' defines 'ScriptNet' only under if __name__ == \"__main__\": (line 8), which does not run when hpotool imports it; move the definition to the module's top level",
        run={"model": {"name": "tests.script_model:ScriptNet"}},
    ),
    Case(
        "loss-pairwise",
        "a loss function that compares every prediction with every target ((pred.squeeze() - target) ** 2)",
        "error: run.yaml: loss: for 8 samples it compares the prediction and the targets as shapes (8,) and (8, 1), which broadcast to (8, 8): every prediction against every target, so its value is not the batch's loss (a .squeeze() or .view(-1) on one of them?); the model's output and the targets have the same shape (batch, outputs): compare them as they come, or to compare every pair on purpose write pred.reshape(-1, 1) - target.reshape(1, -1)",
        run={"data": {"name": "regression"}, "loss": {"name": "tests.helpers:squeezed_mse"}},
        optimize={"metric": "val_loss", "direction": "minimize"},
    ),
    Case(
        "loss-sum",
        "a loss function that sums over the samples instead of averaging",
        "error: run.yaml: loss: its value for 8 samples is the sum of its values for their two halves of 4, not their mean: it sums over the samples, so train_loss and val_loss would grow with the batch and the validation split's sizes; hpotool needs each batch's mean loss (it weights batches by their size): return the mean, .mean() or reduction='mean' (for larger steps, raise optimizer.lr)",
        run={"data": {"name": "regression"}, "loss": {"name": "tests.helpers:summed_mse"}},
        optimize={"metric": "val_loss", "direction": "minimize"},
    ),
    Case(
        "import-module-parses-the-command-line",
        "a training script whose module parses its command line at its top level (argparse's parse_args()), "
        "which reads hpotool's; before: argparse's usage and error lines, and exit code 2 from argparse",
        "error: run.yaml: model: cannot import 'script_nets:Net': importing 'script_nets' called sys.exit(2) at script_nets.py:5 (argparse's parse_args() at a module's top level reads hpotool's command line: unrecognized arguments), which would end hpotool; move the module's script code under if __name__ == \"__main__\":",
        run={"model": {"name": "script_nets:Net"}},
        files={
            "script_nets.py": "import argparse\n\nparser = argparse.ArgumentParser()\n"
            "parser.add_argument('--lr', type=float, default=0.01)\nargs = parser.parse_args()\n\n"
            "Net = None\n"
        },
    ),
    Case(
        "import-module-exits",
        "a module that calls sys.exit(0) as it is imported; before: hpotool ended at once, saying nothing, exit code 0",
        "error: run.yaml: model: cannot import 'exiting_nets:Net': importing 'exiting_nets' called sys.exit(0) at exiting_nets.py:3, which would end hpotool; move the module's script code under if __name__ == \"__main__\":",
        run={"model": {"name": "exiting_nets:Net"}},
        files={"exiting_nets.py": "import sys\n\nsys.exit(0)\nNet = None\n"},
    ),
    Case(
        "data-function-exits",
        "a dataset function that parses the command line (argparse's parse_args() reads hpotool's, and exits); "
        "before: argparse's usage lines, or hpotool ended at once with its exit code",
        "error: run.yaml: data: loading 'cli_data:load' failed: RuntimeError: sys.exit(2) was called, which would end hpotool (argparse's parse_args() does so on hpotool's command line); raise an exception instead, or read the settings from the config (at cli_data.py:7 in load)",
        run={"data": {"name": "cli_data:load"}},
        files={
            "cli_data.py": "import argparse\nimport sys\n\n\ndef load():\n"
            "    parser = argparse.ArgumentParser()\n    sys.exit(2)\n"
        },
    ),
    Case(
        "model-exits",
        "a model whose constructor calls sys.exit(0); before: hpotool ended at once, saying nothing, exit code 0",
        "error: run.yaml: model: RuntimeError: sys.exit(0) was called, which would end hpotool (argparse's parse_args() does so on hpotool's command line); raise an exception instead, or read the settings from the config (at exiting_model.py:8 in __init__)",
        run={"model": {"name": "exiting_model:Net"}},
        files={
            "exiting_model.py": "import sys\n\nfrom torch import nn\n\n\nclass Net(nn.Module):\n"
            "    def __init__(self, in_features, out_features):\n        sys.exit(0)\n"
        },
    ),
    Case(
        "import-module-typo",
        "a misspelt module in an import path",
        "error: run.yaml: model: cannot import 'tests.helper:SlowModel': No module named 'tests.helper' (did you mean 'tests.helpers'?)",
        run={"model": {"name": "tests.helper:SlowModel"}},
    ),
    Case(
        "required-arg",
        "a user's model missing an argument it requires",
        "error: run.yaml: model: model 'tests.helpers:DeepNet' requires 'depth', which the config does not set; add depth: ... under model:",
        run={"model": {"name": "tests.helpers:DeepNet"}},
    ),
    Case(
        "trainer-optuna-objective",
        "an Optuna objective, def objective(trial), named as the training function",
        "error: run.yaml: trainer.function: optuna_objective:objective requires 'trial', which hpotool cannot pass: it passes config, run_config, report and the trainer: keys the function names (by name); hpotool passes no Optuna trial: it samples search_space itself and hands the picked values in config (config['optimizer']['lr']) and as the trainer: keys the function names; take config and report instead, call report(epoch, {'val_accuracy': 0.5}) where it called trial.report, and drop its trial.suggest_* calls",
        run={"trainer": {"function": "optuna_objective:objective"}},
        files={
            "optuna_objective.py": "def objective(trial):\n    lr = trial.suggest_float('lr', 1e-4, 1e-1, log=True)\n"
            "    return lr\n"
        },
    ),
    Case(
        "trainer-method-of-a-class",
        "a training method named through its class, which needs an instance",
        "error: run.yaml: trainer.function: class_runner:Runner.fit is a method of the class Runner, called on an instance; make one at the module's top level (runner = Runner(...)) and name its method (class_runner:runner.fit), or name a function",
        run={"trainer": {"function": "class_runner:Runner.fit"}},
        files={
            "class_runner.py": "class Runner:\n    def fit(self, config, report):\n        return {'val_loss': 1.0}\n"
        },
    ),
    Case(
        "trainer-a-class",
        "a class named as the training function",
        "error: run.yaml: trainer.function: class_runner:Runner is a class, and calling it makes a Runner, not the dict of metrics; name the function that trains, or the method of an instance (class_runner:obj.fit for obj = Runner(...) in the module)",
        run={"trainer": {"function": "class_runner:Runner"}},
        files={
            "class_runner.py": "class Runner:\n    def fit(self, config, report):\n        return {'val_loss': 1.0}\n"
        },
    ),
    Case(
        "trainer-required-arg",
        "a training function with an argument hpotool cannot pass",
        "error: run.yaml: trainer.function: tests.trainers:needs_data_path requires 'data_path', which hpotool cannot pass: it passes config, run_config, report and the trainer: keys the function names (by name); set 'data_path' under trainer: in the run config, or give it a default",
        run={"trainer": {"function": "tests.trainers:needs_data_path"}},
    ),
    Case(
        "trainer-key-misspelt",
        "a trainer: key one or two letters off a parameter of the training function (alhpa for alpha); before: "
        "the key went unused, and every trial trained with alpha's default",
        "error: run.yaml: trainer.alhpa: own_fit:fit takes no argument 'alhpa' (did you mean 'alpha'?), so alpha would keep its default, 0.1, in every trial; write alpha",
        run={"trainer": {"function": "own_fit:fit", "alhpa": 0.3}},
        optimize={"metric": "val_loss", "direction": "minimize"},
        files={
            "own_fit.py": "def fit(config, report, alpha=0.1):\n"
            "    report(0, {'val_loss': alpha})\n    return {'val_loss': alpha}\n"
        },
    ),
    Case(
        "trainer-no-report",
        "a pruner with a training function that takes no report",
        "error: run.yaml: trainer.function: tests.trainers:never_reports takes no 'report' argument, so the pruner can never stop a trial; add a report parameter and call report(epoch, {'val_loss': 0.5}) after each epoch, or set pruner: {name: nop} in optimize.yaml",
        run={"trainer": {"function": "tests.trainers:never_reports"}},
        optimize={"pruner": {"name": "median"}, "metric": "val_loss", "direction": "minimize"},
    ),
    Case(
        "float-labels",
        "class labels stored as floats, with a classification metric",
        "error: optimize.yaml: metric: 'val_accuracy' is not measured for this regression task; choose one of: train_loss, val_loss, val_rmse, val_mae, n_params, epoch_time (the targets of 'tests.helpers:labels_read_as_floats' are floating-point numbers, which make a regression task: give class labels as integers for classification, or set loss: {name: bce_with_logits} for these 0/1 labels)",
        run={"data": {"name": "tests.helpers:labels_read_as_floats"}},
    ),
    Case(
        "layers-in-a-plain-list",
        "a user's model keeping its layers in a plain list (never trained, nor saved)",
        "error: run.yaml: model: ListedLayers keeps its Linear layers in a plain list, self.layers, which torch does not register: the optimizer would never train them, eval() would not switch them, the saved model would lack them and the device would not get them; use nn.ModuleList",
        run={"model": {"name": "tests.helpers:ListedLayers"}},
    ),
    Case(
        "model-changes-its-input",
        "a user's model whose forward() changes its input in place (the data every epoch and trial shares)",
        "error: run.yaml: model: CentersInPlace's forward() changes its input in place (as x -= 0.5 or x.mul_(2) do): hpotool keeps the data in memory for every epoch and trial, so each evaluation would change the validation samples again; compute a new tensor instead (x = x - 0.5)",
        run={"model": {"name": "tests.helpers:CentersInPlace"}},
    ),
    Case(
        "width-under-another-name",
        "a model taking its output width as num_classes (as torchvision's do), left at its default",
        "error: run.yaml: model: its output for 8 samples has shape (8, 1000); this classification task needs (8, 10): (batch, classes) logits; tests.helpers:TorchvisionStyle takes its width as num_classes (1000 by default), which hpotool does not set (it passes out_features): set num_classes: 10 under model:, or name the argument out_features",
        run={"model": {"name": "tests.helpers:TorchvisionStyle"}},
    ),
    Case(
        "random-transform",
        "a torch Dataset whose samples change each read (augmentation would apply once)",
        "error: run.yaml: data: 'tests.helpers:jittered' returned data hpotool cannot train on: Jittered[0] differs between two reads (a random transform, such as augmentation?); hpotool reads each sample once and trains on those tensors every epoch, so the transform would apply once, not per epoch: drop the random transforms, or train with your own function (trainer: {function: ...})",
        run={"data": {"name": "tests.helpers:jittered"}},
    ),
    Case(
        "integer-targets-regression-metric",
        "numbers to predict stored as integers, with a regression metric",
        "error: optimize.yaml: metric: 'val_rmse' is not measured for this classification task; choose one of: train_loss, val_loss, val_accuracy, n_params, epoch_time (the targets of 'tests.helpers:ages_as_integers' are integers, which make a classification task of 53 classes: to predict them as numbers give y as floats for regression, y.float() or y.astype('float32'))",
        run={"data": {"name": "tests.helpers:ages_as_integers"}},
        optimize={"metric": "val_rmse", "direction": "minimize"},
    ),
    Case(
        "bce-labels-regression-metric",
        "a regression metric for 0/1 float labels that bce_with_logits makes two classes",
        "error: optimize.yaml: metric: 'val_rmse' is not measured for this classification task; choose one of: train_loss, val_loss, val_accuracy, n_params, epoch_time ('bce_with_logits' reads the 0/1 float targets of 'tests.helpers:labels_read_as_floats' as two classes, a classification task, where other losses make them a regression that measures val_rmse: set loss: {name: mse} for val_rmse, or measure val_accuracy)",
        run={"data": {"name": "tests.helpers:labels_read_as_floats"}, "loss": {"name": "bce_with_logits"}},
        optimize={"metric": "val_rmse", "direction": "minimize"},
    ),
    Case(
        "batch-too-large",
        "a dataset too small for the batch size",
        "error: run.yaml: batch_size: 512 is larger than the 144 training samples; use a smaller batch_size or more data (data.subset_fraction, data.val_fraction)",
        run={"batch_size": 512},
    ),
    Case(
        "condition-typo",
        "a condition on a path that does not exist",
        "error: optimize.yaml: search_space.optimizer.weight_decay.when: 'optimizer.nam' is neither a searched parameter nor a run config key; did you mean 'optimizer.name', 'optimizer.lr', 'optimizer.amsgrad'?",
        optimize={
            "search_space": {
                "optimizer.weight_decay": {
                    "type": "float",
                    "low": 1e-5,
                    "high": 1e-3,
                    "when": {"optimizer.nam": "adam"},
                }
            }
        },
    ),
    Case(
        "condition-eq",
        "a condition written with an eq test, which conditions spell as the value alone",
        "error: optimize.yaml: search_space.optimizer.weight_decay: when.optimizer.name: {eq: adam} is the value itself: write when: {optimizer.name: adam} (the tests are in, ne, ge, gt, le, lt)",
        optimize={
            "search_space": {
                "optimizer.weight_decay": {
                    "type": "float",
                    "low": 1e-5,
                    "high": 1e-3,
                    "when": {"optimizer.name": {"eq": "adam"}},
                }
            }
        },
    ),
    Case(
        "condition-as-text",
        "a condition written as an expression, which YAML reads as text",
        'error: optimize.yaml: search_space.model.hidden.0.when: expected a mapping, got the text "model.layers >= 2"; write it as a mapping: when: {model.layers: {ge: 2}}',
        optimize={
            "search_space": {
                "model.hidden.0": {"type": "int", "low": 8, "high": 32, "when": "model.layers >= 2"},
            }
        },
    ),
    Case(
        "condition-misspelt-choice",
        "a condition on a choice its parameter does not have, one letter off",
        "error: optimize.yaml: search_space.model.dropout: the condition model.activation: rleu never holds for model.activation's values, so it would never be set (did you mean relu? its choices: [relu, tanh])",
        optimize={
            "search_space": {
                "model.activation": {"type": "categorical", "choices": ["relu", "tanh"]},
                "model.dropout": {
                    "type": "float",
                    "low": 0.0,
                    "high": 0.5,
                    "when": {"model.activation": "rleu"},
                },
            }
        },
    ),
    Case(
        "condition-in-lists-no-value",
        "a condition's in: list naming a value its parameter never takes (the rest still match, so it is no "
        "condition that never holds)",
        "error: optimize.yaml: search_space.optimizer.weight_decay.when.optimizer.name: adamw is not one of optimizer.name's values (one of sgd, adam), so no trial matches it; drop it from in:, or add it to optimizer.name's choices",
        optimize={
            "search_space": {
                "optimizer.name": {"type": "categorical", "choices": ["sgd", "adam"]},
                "optimizer.weight_decay": {
                    "type": "float",
                    "low": 1.0e-5,
                    "high": 1.0e-2,
                    "log": True,
                    "when": {"optimizer.name": {"in": ["adam", "adamw"]}},
                },
            }
        },
    ),
    Case(
        "condition-ne-no-value",
        "a condition ne: a value its parameter never takes, one letter off (it holds in every trial)",
        "error: optimize.yaml: search_space.model.dropout.when.model.activation: {ne: rleu} holds in every trial: rleu is not one of model.activation's values (one of relu, tanh); did you mean relu?",
        optimize={
            "search_space": {
                "model.activation": {"type": "categorical", "choices": ["relu", "tanh"]},
                "model.dropout": {
                    "type": "float",
                    "low": 0.0,
                    "high": 0.5,
                    "when": {"model.activation": {"ne": "rleu"}},
                },
            }
        },
    ),
    Case(
        "condition-boolean-on-numbers",
        "a condition true on a parameter whose choices are 0 and 1 (Python's True == 1; a condition's true "
        "matches only true)",
        "error: optimize.yaml: search_space.optimizer.weight_decay: the condition model.layers: true never holds for model.layers's values, so it would never be set (a boolean matches only true or false, and a number only numbers; its choices: [0, 1])",
        optimize={
            "search_space": {
                "model.layers": {"type": "categorical", "choices": [0, 1]},
                "optimizer.weight_decay": {
                    "type": "float",
                    "low": 1.0e-5,
                    "high": 1.0e-2,
                    "log": True,
                    "when": {"model.layers": True},
                },
            }
        },
    ),
    Case(
        "condition-beyond-range",
        "a condition on a searched range that none of its values meets (its top is 32, the test asks for more)",
        "error: optimize.yaml: search_space.optimizer.lr: the condition model.hidden.0: {gt: 32} never holds for model.hidden.0's values ([8, 32], step 8), so it would never be set; change or drop the condition, or widen model.hidden.0's range to meet it",
        optimize={
            "search_space": {
                "model.hidden.0": {"type": "int", "low": 8, "high": 32, "step": 8},
                "optimizer.lr": {
                    "type": "float",
                    "low": 1.0e-3,
                    "high": 1.0e-1,
                    "log": True,
                    "when": {"model.hidden.0": {"gt": 32}},
                },
            }
        },
    ),
    Case(
        "condition-list-for-in",
        "a condition written as a list of values (a list is one value; any of several is {in: [...]})",
        "error: optimize.yaml: search_space.optimizer.weight_decay: the condition optimizer.name: [adam, adamw] never holds for optimizer.name's values, so it would never be set; a list is one value (a list choice): for any of several, write {in: [adam, adamw]}",
        optimize={
            "search_space": {
                "optimizer.name": {"type": "categorical", "choices": ["sgd", "adam", "adamw"]},
                "optimizer.weight_decay": {
                    "type": "float",
                    "low": 1e-5,
                    "high": 1e-3,
                    "when": {"optimizer.name": ["adam", "adamw"]},
                },
            }
        },
    ),
    Case(
        "condition-on-fixed-value",
        "a condition on a value the run config fixes otherwise (the parameter would never be searched)",
        "error: optimize.yaml: search_space.optimizer.weight_decay: the condition optimizer.name: adamw never holds: optimizer.name is not searched and the run config sets it to adam, so optimizer.weight_decay would never be set; search optimizer.name (above optimizer.weight_decay), set it to adamw in the run config, or change or drop the condition",
        optimize={
            "search_space": {
                "optimizer.weight_decay": {
                    "type": "float",
                    "low": 1e-5,
                    "high": 1e-3,
                    "when": {"optimizer.name": "adamw"},
                }
            }
        },
    ),
    Case(
        "condition-on-fixed-component",
        "an argument of a component the run config does not use, searched on a condition that never holds (it "
        "was refused as a path the RunConfig lacks)",
        "error: optimize.yaml: search_space.scheduler.patience: the condition scheduler.name: plateau never holds: scheduler.name is not searched and the run config sets it to cosine, so scheduler.patience would never be set; search scheduler.name (above scheduler.patience), set it to plateau in the run config, or change or drop the condition",
        run={"scheduler": {"name": "cosine"}},
        optimize={
            "search_space": {
                "scheduler.patience": {
                    "type": "int",
                    "low": 1,
                    "high": 5,
                    "when": {"scheduler.name": "plateau"},
                }
            }
        },
    ),
    Case(
        "searched-dataset-task",
        "a searched dataset whose task does not measure the metric",
        "error: optimize.yaml: search_space.data.name: with data.name=regression: this regression task does not measure val_accuracy; it measures: train_loss, val_loss, val_rmse, val_mae, n_params, epoch_time; search only datasets that measure val_accuracy, or optimize a metric every task measures, such as val_loss",
        optimize={
            "search_space": {"data.name": {"type": "categorical", "choices": ["digits", "regression"]}}
        },
    ),
    Case(
        "searched-dataset-monitor",
        "a searched dataset of another task than the run config's scheduler monitor or class weights",
        "error: optimize.yaml: search_space.data.name: with data.name=regression: scheduler.monitor: 'val_accuracy' is not measured each epoch of this regression task; choose one of: train_loss, val_loss, val_rmse, val_mae (the run config's scheduler.monitor is for its classification data; search data.name over datasets of one task)",
        run={"scheduler": {"name": "plateau", "monitor": "val_accuracy", "mode": "max"}},
        optimize={
            "metric": "val_loss",
            "direction": "minimize",
            "search_space": {"data.name": {"type": "categorical", "choices": ["digits", "regression"]}},
        },
    ),
    Case(
        "searched-dataset-beside-its-argument",
        "a searched dataset beside a searched argument only another of its choices takes",
        "error: optimize.yaml: search_space.data.name: with data.noise=0.1, data.name=digits: data: data 'digits' takes no argument 'noise'; it takes no arguments; noise is an argument of regression: write name: regression, or remove noise (a trial may pair any data.noise value with any dataset: to search it only with those it fits, give data.noise a when: on data.name)",
        run={"data": {"name": "regression", "val_fraction": 0.2}},
        optimize={
            "metric": "val_loss",
            "direction": "minimize",
            "search_space": {
                "data.name": {"type": "categorical", "choices": ["regression", "digits"]},
                "data.noise": {"type": "float", "low": 0.1, "high": 0.2},
            },
        },
    ),
    Case(
        "conditional-dataset-searched-loss",
        "a searched value that does not fit a dataset a condition switches to",
        "error: optimize.yaml: search_space.loss.name: with data.name=regression (when batch_size=16), loss.name=cross_entropy: 'cross_entropy' scores classes, but y holds one floating-point number per sample (a regression task), over which it is 0 whatever the model predicts; use mse, l1, smooth_l1 or huber, or give y as integer class labels for classification (a trial may pair any loss.name value with any dataset: to search it only with those it fits, give it a when: on data.name)",
        optimize={
            "metric": "val_loss",
            "direction": "minimize",
            "search_space": {
                "batch_size": {"type": "categorical", "choices": [32, 16]},  # before data.name: sorted keys
                "data.name": {"type": "categorical", "choices": ["regression"], "when": {"batch_size": 16}},
                "loss.name": {"type": "categorical", "choices": ["auto", "cross_entropy"]},
            },
        },
    ),
    Case(
        "index-into-number",
        "a list item of a setting that is a single number",
        "error: optimize.yaml: search_space.model.hidden.0: model.hidden is 16, not a list; search model.hidden itself, or write it as a list ([16]) in the run config",
        run={"model": {"name": "mlp", "hidden": 16, "dropout": 0.0}},
    ),
    Case(
        "list-choice-refused",
        "a whole list as a choice that the run config refuses",
        "error: optimize.yaml: search_space.model.hidden: with model.hidden=[32, 0]: hidden widths must be 1 or more, got [32, 0]; give each hidden layer 1 unit or more",
        optimize={"search_space": {"model.hidden": {"type": "categorical", "choices": [[16], [32, 0]]}}},
    ),
    Case(
        "choice-not-plain",
        "a choice that is not plain data (a mapping with number keys)",
        "error: optimize.yaml: search_space.model.hidden.choices: choices must be null, booleans, numbers, strings, or lists and mappings (with string keys) of them, got {1: 2}; quote in the YAML what it reads as something else ('2024-01-01', {'1': 2})",
        optimize={"search_space": {"model.hidden": {"type": "categorical", "choices": [[16], {1: 2}]}}},
    ),
    Case(
        "list-choices-equal",
        "two list choices equal in value",
        "error: optimize.yaml: search_space.loss.weight: choices [1, 2] and [1.0, 2.0] are equal in value (1 == 1.0 == true); keep one",
        optimize={"search_space": {"loss.weight": {"type": "categorical", "choices": [[1, 2], [1.0, 2.0]]}}},
    ),
    Case(
        "list-choice-reads-alike",
        "a text choice that reads like a list choice",
        "error: optimize.yaml: search_space.model.hidden: choices [16] and '[16]' read alike ([16]), so a study could not tell them apart; keep one",
        optimize={"search_space": {"model.hidden": {"type": "categorical", "choices": [[16], "[16]"]}}},
    ),
    Case(
        "section-searched-as-number",
        "a whole section searched as a float or int",
        "error: optimize.yaml: search_space.optimizer: optimizer is a section; search one of its keys (optimizer.lr, optimizer.weight_decay, ...) or give whole sections as categorical choices ({type: categorical, choices: [{name: adam, lr: 0.01, weight_decay: 0.0}, ...]})",
        optimize={"search_space": {"optimizer": {"type": "float", "low": 0.1, "high": 0.9}}},
    ),
    Case(
        "section-choice-not-a-mapping",
        "a choice for a whole section that is not a mapping",
        "error: optimize.yaml: search_space.optimizer.choices.1: adam is not a mapping: each choice of optimizer is a whole section, such as {name: adam}; to choose only its name, search optimizer.name",
        optimize={
            "search_space": {"optimizer": {"type": "categorical", "choices": [{"name": "sgd"}, "adam"]}}
        },
    ),
    Case(
        "section-choice-bad-key",
        "a whole-section choice its component refuses",
        "error: optimize.yaml: search_space.optimizer.choices.1: optimizer 'adam' takes no argument 'momentum'; it takes: lr, betas, eps, weight_decay, amsgrad, foreach, maximize, capturable, differentiable, fused, decoupled_weight_decay; momentum is an argument of sgd and rmsprop: write name: sgd (or rmsprop), or remove momentum",
        optimize={
            "search_space": {
                "optimizer": {
                    "type": "categorical",
                    "choices": [{"name": "sgd", "momentum": 0.9}, {"name": "adam", "momentum": 0.9}],
                }
            }
        },
    ),
    Case(
        "section-choice-bad-value",
        "a whole-section choice with a value its section refuses",
        "error: optimize.yaml: search_space.optimizer.choices.0.lr: must be above 0, got -0.1",
        optimize={
            "search_space": {
                "optimizer": {
                    "type": "categorical",
                    "choices": [{"name": "sgd", "lr": -0.1}, {"name": "adam"}],
                }
            }
        },
    ),
    Case(
        "section-choices-alike",
        "two whole-section choices that differ only in a key one leaves at its default",
        "error: optimize.yaml: search_space.optimizer.choices.2: {lr: 0.001, name: adam} is the section choices.0 gives ({name: adam}), which leaves {lr: 0.001} at its default: one configuration under two labels, which a study would train as two; keep one",
        optimize={
            "search_space": {
                "optimizer": {
                    "type": "categorical",
                    "choices": [{"name": "adam"}, {"name": "sgd"}, {"name": "adam", "lr": 0.001}],
                }
            }
        },
    ),
    Case(
        "section-choices-alike-loss",
        "whole loss choices auto and the loss it stands for on the data's task",
        "error: optimize.yaml: search_space.loss.choices.1: {name: cross_entropy} is the section choices.0 gives ({name: auto}), since the loss auto is cross_entropy on this classification task: one configuration under two labels, which a study would train as two; keep one",
        optimize={
            "search_space": {
                "loss": {"type": "categorical", "choices": [{"name": "auto"}, {"name": "cross_entropy"}]}
            }
        },
    ),
    Case(
        "loss-names-alike",
        "searched loss names auto and the loss it stands for on the data's task",
        "error: optimize.yaml: search_space.loss.name: choices auto and cross_entropy are one loss on this classification task (auto is cross_entropy there): one configuration under two labels, which a study would train as two; keep one",
        optimize={
            "search_space": {"loss.name": {"type": "categorical", "choices": ["auto", "cross_entropy"]}}
        },
    ),
    Case(
        "section-choices-alike-below",
        "whole-section choices that differ only in a key searched below the section in every trial",
        "error: optimize.yaml: search_space.optimizer.choices.1: {lr: 0.1, name: sgd} is the section choices.0 gives ({lr: 0.01, name: sgd}) but for lr, which optimizer.lr, searched in every trial of both, replaces: one configuration under two labels, which a study would train as two; keep one",
        optimize={
            "search_space": {
                "optimizer": {
                    "type": "categorical",
                    "choices": [{"name": "sgd", "lr": 0.01}, {"name": "sgd", "lr": 0.1}],
                },
                "optimizer.lr": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True},
            }
        },
    ),
    Case(
        "section-condition-names-no-choice",
        "a condition on a section searched whole that lists a section none of its choices gives",
        "error: optimize.yaml: search_space.optimizer.momentum.when.optimizer: {lr: 0.01, name: sgd} is none of optimizer's choices and gives none of their sections, so no trial matches it; name one of: {lr: 0.1, name: sgd}, {name: adam}",
        optimize={
            "search_space": {
                "optimizer": {
                    "type": "categorical",
                    "choices": [{"name": "sgd", "lr": 0.1}, {"name": "adam"}],
                },
                "optimizer.momentum": {
                    "type": "float",
                    "low": 0.0,
                    "high": 0.9,
                    "when": {"optimizer": {"in": [{"name": "sgd", "lr": 0.1}, {"name": "sgd", "lr": 0.01}]}},
                },
            }
        },
    ),
    Case(
        "enqueue-sections-alike",
        "two enqueued sets whose sections build the same choice",
        "error: optimize.yaml: enqueue.1: optimizer={lr: 0.001, name: adam} is the set enqueue.0 gives (optimizer={name: adam}): its sections build the same choices (optimizer={name: adam}), so the study would train it twice; drop one",
        optimize={
            "search_space": {
                "optimizer": {"type": "categorical", "choices": [{"name": "sgd"}, {"name": "adam"}]}
            },
            "enqueue": [{"optimizer": {"name": "adam"}}, {"optimizer": {"name": "adam", "lr": 0.001}}],
        },
    ),
    Case(
        "enqueue-twice",
        "one enqueued set written twice",
        "error: optimize.yaml: enqueue.1: optimizer.lr=0.01 is enqueue.0 again, so a new study would train it twice; drop one",
        optimize={"enqueue": [{LR: 0.01}, {LR: 0.01}]},
    ),
    Case(
        "section-choice-argument-not-taken",
        "a key searched below a whole section that some of its choices do not take",
        "error: optimize.yaml: search_space.optimizer.momentum: with optimizer={name: adam}, optimizer.momentum=0.5: optimizer: optimizer 'adam' takes no argument 'momentum'; it takes: lr, betas, eps, weight_decay, amsgrad, foreach, maximize, capturable, differentiable, fused, decoupled_weight_decay; search it only with the optimizer sections that take it: when: {optimizer: {in: [{name: sgd}]}}",
        run={"optimizer": {"name": "sgd", "lr": 0.01}},
        optimize={
            "search_space": {
                "optimizer": {"type": "categorical", "choices": [{"name": "sgd"}, {"name": "adam"}]},
                "optimizer.momentum": {"type": "float", "low": 0.5, "high": 0.9},
            }
        },
    ),
    Case(
        "section-choice-pairs-a-loss",
        "a loss searched beside whole data sections of another task",
        "error: optimize.yaml: search_space.loss.name: with data={name: regression}, loss.name=cross_entropy: 'cross_entropy' scores classes, but y holds one floating-point number per sample (a regression task), over which it is 0 whatever the model predicts; use mse, l1, smooth_l1 or huber, or give y as integer class labels for classification (a trial may pair any loss.name value with any dataset: to search it only with those it fits, give it a when: on data)",
        optimize={
            "metric": "val_loss",
            "direction": "minimize",
            "search_space": {
                "data": {"type": "categorical", "choices": [{"name": "digits"}, {"name": "regression"}]},
                "loss.name": {"type": "categorical", "choices": ["cross_entropy", "mse"]},
            },
        },
    ),
    Case(
        "section-choices-split-differently",
        "whole data sections as choices that split the data differently",
        "error: optimize.yaml: search_space.data: its choices give val_fraction 0.2 and 0.3 (a choice that leaves it out has the default), so every trial would be measured on another validation split and their val_accuracy would not compare (the sampler would favour the easiest split); give every choice the same val_fraction",
        optimize={
            "search_space": {
                "data": {
                    "type": "categorical",
                    "choices": [
                        {"name": "digits", "subset_fraction": 0.1},
                        {"name": "digits", "subset_fraction": 0.1, "val_fraction": 0.3},
                    ],
                }
            }
        },
    ),
    Case(
        "trainer-choice-without-trainer",
        "whole trainer sections searched where the run config trains with hpotool's Trainer",
        "error: optimize.yaml: search_space.trainer: the run config sets no trainer, so its trials train with hpotool's Trainer; to choose among your training functions, set trainer: {function: ...} in the run config too",
        optimize={
            "search_space": {
                "trainer": {
                    "type": "categorical",
                    "choices": [{"function": "tests.trainers:adds_its_options"}],
                }
            }
        },
    ),
    Case(
        "condition-inside-chosen-section",
        "a condition on a key inside a section the search chooses whole",
        "error: optimize.yaml: search_space.optimizer.momentum.when: 'optimizer.name' is inside optimizer, which the search chooses whole, so the condition would read the run config's optimizer.name, not the chosen section's; condition on the section itself (when: {optimizer: {in: [...]}}, the choices written whole), or search optimizer.name too",
        run={"optimizer": {"name": "sgd", "lr": 0.01}},
        optimize={
            "search_space": {
                "optimizer": {"type": "categorical", "choices": [{"name": "sgd"}, {"name": "adam"}]},
                "optimizer.momentum": {
                    "type": "float",
                    "low": 0.5,
                    "high": 0.9,
                    "when": {"optimizer.name": "sgd"},
                },
            }
        },
    ),
    Case(
        "unused-width",
        "a searched MLP width beyond the layers it has",
        "error: optimize.yaml: search_space.model.hidden.2: has no effect: the run config's model.layers is 2, so the MLP uses model.hidden.0 to model.hidden.1; set model.layers to 3 or more in the run config (or search it), or drop model.hidden.2",
        run={"model": {"name": "mlp", "hidden": [16, 16], "layers": 2}},
        optimize={"search_space": {"model.hidden.2": {"type": "int", "low": 8, "high": 16}}},
    ),
    Case(
        "float-for-integer",
        "a float range for a whole-number setting",
        "error: optimize.yaml: search_space.batch_size: with batch_size=44.2: batch_size: Input should be a valid integer, got a number with a fractional part (44.2); batch_size takes whole numbers: use type: int",
        optimize={"search_space": {"batch_size": {"type": "float", "low": 32, "high": 64}}},
    ),
    Case(
        "number-for-text",
        "a number range for a setting that takes text (an activation's name)",
        "error: optimize.yaml: search_space.model.activation: with model.activation=0: model: model 'mlp' argument 'activation': Input should be a valid string, got 0; model.activation takes text: use type: categorical, with its choices",
        optimize={"search_space": {"model.activation": {"type": "int", "low": 0, "high": 2}}},
    ),
    Case(
        "searched-batch-null",
        "a searched batch size that is not a number (null), beside one written as a float",
        "error: optimize.yaml: search_space.batch_size: with batch_size=null: batch_size: Input should be a valid integer, got null; batch_size takes whole numbers, not null: write choices: [32, 128]",
        optimize={"search_space": {"batch_size": {"type": "categorical", "choices": [32, 128.0, None]}}},
    ),
    Case(
        "searched-argument-null",
        "a null among the choices of a component argument that takes numbers",
        "error: optimize.yaml: search_space.model.dropout: with model.dropout=null: model: model 'mlp' argument 'dropout': Input should be a valid number, got null; model.dropout takes numbers, not null: write choices: [0.1]",
        optimize={"search_space": {"model.dropout": {"type": "categorical", "choices": [0.1, None]}}},
    ),
    Case(
        "searched-batch-beside-argument-null",
        "a null among a component argument's choices, searched below a batch size",
        "error: optimize.yaml: search_space.model.dropout: with model.dropout=null: model: model 'mlp' argument 'dropout': Input should be a valid number, got null; model.dropout takes numbers, not null: write choices: [0.1]",
        optimize={
            "search_space": {
                "batch_size": {"type": "categorical", "choices": [32, 64]},
                "model.dropout": {"type": "categorical", "choices": [0.1, None]},
            }
        },
    ),
    Case(
        "searched-batch-too-large",
        "a searched batch size too large for the dataset",
        "error: optimize.yaml: search_space.batch_size: 512 is larger than the 144 training samples; use a smaller batch_size or more data (data.subset_fraction, data.val_fraction)",
        optimize={"search_space": {"batch_size": {"type": "categorical", "choices": [32, 512]}}},
    ),
    Case(
        "batch-norm-searched-with-batch-of-one",
        "batch norm searched beside a batch size that reaches 1",
        "error: optimize.yaml: search_space.batch_size: with model.norm=batch, batch_size=1: one step on 1 sample failed: ValueError: Expected more than 1 value per channel when training, got input size torch.Size([1, 16]); batch norm cannot train on a batch of one sample: set batch_size to 2 or more (a trial may pair any batch_size with any model.norm: search batch_size from 2, or search model.norm below batch_size with when: {batch_size: {ge: 2}})",
        optimize={
            "search_space": {
                "model.norm": {"type": "categorical", "choices": ["none", "batch"]},
                "batch_size": {"type": "int", "low": 1, "high": 32},
            }
        },
    ),
    Case(
        "nll-loss-on-soft-labels",
        "negative log-likelihood on class probabilities (soft labels)",
        "error: run.yaml: loss: 'torch.nn:NLLLoss' takes one class id per sample, but y holds each sample's class probabilities (soft labels); use cross_entropy, which takes probabilities, or give class ids (y.argmax(1))",
        run={"data": {"name": "tests.helpers:soft_labels"}, "loss": {"name": "torch.nn:NLLLoss"}},
    ),
    Case(
        "mse-loss-on-soft-labels",
        "mse on class probabilities a dataset names a classification",
        "error: run.yaml: loss: 'mse' compares numbers, but y holds each sample's class probabilities (soft labels of a classification task of 3 classes); use cross_entropy (or auto), which takes probabilities, or to fit them as numbers return hpotool.datasets.Dataset(x, y, 'regression')",
        run={"data": {"name": "soft_mse_data:probabilities"}, "loss": {"name": "mse"}},
        files={
            "soft_mse_data.py": "import numpy as np\nimport torch\nfrom hpotool.datasets import Dataset\n\n\n"
            "def probabilities():\n    x = np.random.default_rng(0).normal(size=(60, 4)).astype(np.float32)\n"
            "    p = np.exp(x[:, :3])\n"
            "    return Dataset(torch.as_tensor(x), torch.as_tensor(p / p.sum(axis=1, keepdims=True)), "
            "'classification')\n"
        },
    ),
    Case(
        "bce-loss-on-soft-labels",
        "bce_with_logits on class probabilities a dataset names a classification",
        "error: run.yaml: loss: 'bce_with_logits' scores two classes with one logit per sample, but y holds each sample's probabilities over 3 classes (soft labels); use cross_entropy (or auto), which takes probabilities, or for 3 independent targets from 0 to 1 return hpotool.datasets.Dataset(x, y, 'multilabel')",
        run={"data": {"name": "soft_bce_data:probabilities"}, "loss": {"name": "bce_with_logits"}},
        files={
            "soft_bce_data.py": "import numpy as np\nimport torch\nfrom hpotool.datasets import Dataset\n\n\n"
            "def probabilities():\n    x = np.random.default_rng(0).normal(size=(60, 4)).astype(np.float32)\n"
            "    p = np.exp(x[:, :3])\n"
            "    return Dataset(torch.as_tensor(x), torch.as_tensor(p / p.sum(axis=1, keepdims=True)), "
            "'classification')\n"
        },
    ),
    Case(
        "probability-bce-on-soft-labels",
        "binary cross-entropy on probabilities (torch's BCELoss) for class probabilities a dataset names a classification",
        "error: run.yaml: training: one step on 8 samples failed: RuntimeError: all elements of input should be between 0 and 1; 'torch.nn:BCELoss' takes probabilities (after a sigmoid), but the model outputs one logit per class, and y holds each sample's probabilities over 3 classes (soft labels); use cross_entropy (or auto), which takes the logits and probabilities, or for 3 independent targets from 0 to 1 return hpotool.datasets.Dataset(x, y, 'multilabel') with loss bce_with_logits",
        run={"data": {"name": "soft_prob_data:probabilities"}, "loss": {"name": "torch.nn:BCELoss"}},
        files={
            "soft_prob_data.py": "import numpy as np\nimport torch\nfrom hpotool.datasets import Dataset\n\n\n"
            "def probabilities():\n    x = np.random.default_rng(0).normal(size=(60, 4)).astype(np.float32)\n"
            "    p = np.exp(x[:, :3])\n"
            "    return Dataset(torch.as_tensor(x), torch.as_tensor(p / p.sum(axis=1, keepdims=True)), "
            "'classification')\n"
        },
    ),
    Case(
        "probability-bce-on-class-labels",
        "binary cross-entropy on probabilities (torch's BCELoss) for class labels",
        "error: run.yaml: training: one step on 8 samples failed: ValueError: Using a target size (torch.Size([8])) that is different to the input size (torch.Size([8, 10])) is deprecated. Please ensure they have the same size.; 'torch.nn:BCELoss' takes probabilities (after a sigmoid), but the model outputs one logit per class, and y holds class labels (10 classes); use cross_entropy (or auto), or bce_with_logits for two classes labelled 0 and 1 (one logit per sample)",
        run={"loss": {"name": "torch.nn:BCELoss"}},
    ),
    Case(
        "split-too-small",
        "a dataset too small for the validation split",
        "error: run.yaml: data: val_fraction: 0.1 of the dataset's 4 samples leaves no validation sample; raise it to at least 0.5, or give more data",
        run={"data": {"name": "regression", "n_samples": 4, "val_fraction": 0.1}},
        optimize={"metric": "val_loss", "direction": "minimize"},
    ),
    Case(
        "split-one-validation-sample",
        "a validation split of one sample",
        "error: run.yaml: data: val_fraction: 0.1 of the dataset's 10 samples leaves 1 validation sample, whose accuracy is 0 or 1 and error one prediction's: too few to compare runs; raise it to at least 0.2, or give more data",
        run={"data": {"name": "regression", "n_samples": 10, "val_fraction": 0.1}, "batch_size": 4},
        optimize={"metric": "val_loss", "direction": "minimize"},
    ),
    Case(
        "quoted-number",
        "a quoted number for a built-in component's argument",
        "error: run.yaml: model: model 'mlp' argument 'dropout': Input should be a valid number, got \"0.1\"; write 0.1 without quotes, a number",
        run={"model": {"name": "mlp", "hidden": [16], "dropout": "0.1"}},
    ),
    Case(
        "model-value",
        "a model argument the model refuses",
        "error: run.yaml: model: dropout must be from 0 up to but not including 1, got 1.5; give a value such as 0.1 (0: no dropout)",
        run={"model": {"name": "mlp", "hidden": [16], "dropout": 1.5}},
    ),
    Case(
        "loss-for-another-task",
        "a loss that does not fit the task",
        "error: run.yaml: loss: 'mse' compares numbers, but y holds class labels (a classification task of 10 classes); use cross_entropy (or auto), or give y as floating-point numbers for regression",
        run={"loss": {"name": "mse"}},
    ),
    Case(
        "searched-loss",
        "a searched loss that does not fit the task",
        "error: optimize.yaml: search_space.loss.name: with loss.name=l1: 'l1' compares numbers, but y holds class labels (a classification task of 10 classes); use cross_entropy (or auto), or give y as floating-point numbers for regression",
        optimize={"search_space": {"loss.name": {"type": "categorical", "choices": ["cross_entropy", "l1"]}}},
    ),
    Case(
        "output-shape",
        "a model whose output does not fit the targets",
        "error: run.yaml: model: its output for 8 samples has shape (8,); this regression task needs (8, 1): (batch, outputs), as the targets: hpotool gives a 1-D y to the loss as (n, 1), so return the output without .squeeze()",
        run={
            "data": {"name": "regression", "n_samples": 200},
            "model": {"name": "tests.helpers:FlatRegressor"},
        },
        optimize={"metric": "val_loss", "direction": "minimize"},
    ),
    Case(
        "output-a-tuple",
        "a model whose forward() returns (logits, features)",
        "error: run.yaml: model: its output for 8 samples is a tuple; this classification task needs (8, 10): (batch, classes) logits; forward() returns a tuple of 2: return the one tensor the loss takes (such as the tuple's [0])",
        run={"model": {"name": "tests.helpers:TupleHead"}},
    ),
    Case(
        "plateau-per-step",
        "a schedule that watches a metric, stepped per batch",
        "error: run.yaml: scheduler: 'torch.optim.lr_scheduler:ReduceLROnPlateau' watches val_loss once per epoch; drop interval: step",
        run={"scheduler": {"name": "torch.optim.lr_scheduler:ReduceLROnPlateau", "interval": "step"}},
    ),
    Case(
        "epoch-schedule-per-step",
        "a schedule told the run's length in epochs, stepped per batch",
        "error: run.yaml: scheduler: 'epoch_schedule:cosine' takes the run's length as epochs (it asks for epochs, not steps_per_epoch or num_training_steps), but interval: step steps it after every batch, so it would run its course in the first 2 batches; drop interval: step, or give it a steps_per_epoch argument and span epochs * steps_per_epoch steps",
        run={"scheduler": {"name": "epoch_schedule:cosine", "interval": "step"}},
        files={
            "epoch_schedule.py": "from torch.optim.lr_scheduler import CosineAnnealingLR\n\n\n"
            "def cosine(optimizer, epochs):\n    return CosineAnnealingLR(optimizer, T_max=epochs)\n"
        },
    ),
    Case(
        "epoch-length-schedule-with-step-warm-up",
        "a schedule told the run's length in epochs whose warm-up counts steps",
        "error: run.yaml: scheduler: 'steps_warm_schedule:warm_cosine' asks for epochs, the run's length in epochs, but counts num_warmup_steps in batches, so stepped after every batch it would run its course in the first 2 batches; ask for num_training_steps (the run's batches, which hpotool fills in) instead of epochs, or for steps_per_epoch beside it, or set interval: epoch to count num_warmup_steps in epochs too",
        run={"scheduler": {"name": "steps_warm_schedule:warm_cosine", "num_warmup_steps": 2}},
        files={
            "steps_warm_schedule.py": "from torch.optim.lr_scheduler import LambdaLR\n\n\n"
            "def warm_cosine(optimizer, epochs, num_warmup_steps):\n"
            "    return LambdaLR(optimizer, lambda step: min(1.0, step / num_warmup_steps))\n"
        },
    ),
    Case(
        "schedule-name-before-optimizer",
        "transformers' get_scheduler(name, optimizer, ...) by import path, which takes the optimizer second",
        "error: run.yaml: scheduler: scheduler 'hf_named_schedules:get_scheduler' takes 'name' before the optimizer, which hpotool passes first, and the section's name is the import path; name the schedule's own function, which takes the optimizer first (transformers' get_scheduler('linear', ...) is get_linear_schedule_with_warmup, 'cosine' get_cosine_schedule_with_warmup), or wrap it in one of your own: def schedule(optimizer, num_warmup_steps, num_training_steps): return get_scheduler('linear', optimizer, num_warmup_steps, num_training_steps)",
        run={"scheduler": {"name": "hf_named_schedules:get_scheduler", "num_warmup_steps": 2}},
        files={
            "hf_named_schedules.py": "from torch.optim.lr_scheduler import LambdaLR\n\n\n"
            "def get_scheduler(name, optimizer, num_warmup_steps=None, num_training_steps=None):\n"
            "    return LambdaLR(optimizer, lambda step: 1.0)\n"
        },
    ),
    Case(
        "epoch-counting-schedule-per-step",
        "a schedule whose step() takes the epoch (timm's), stepped per batch",
        "error: run.yaml: scheduler: 'timm_schedule:Cosine' is given the number of epochs done in step(epoch), once per epoch; drop interval: step",
        run={"scheduler": {"name": "timm_schedule:Cosine", "interval": "step"}},
        files={
            "timm_schedule.py": "class Cosine:\n    def __init__(self, optimizer):\n        self.optimizer = optimizer\n\n"
            "    def step(self, epoch, metric=None):\n        pass\n"
        },
    ),
    Case(
        "enqueue-outside",
        "a warm-start value outside the space",
        "error: optimize.yaml: enqueue.0: optimizer.lr=0.5 lies outside its search space ([0.001, 0.1], log); give a value within it, or widen search_space.optimizer.lr",
        optimize={"enqueue": [{LR: 0.5}]},
    ),
    Case(
        "enqueue-not-a-choice",
        "a warm-start value that is not one of its categorical's choices",
        "error: optimize.yaml: enqueue.0: model.activation=gelu lies outside its search space (one of relu, tanh); give one of its choices, or add it to search_space.model.activation's choices",
        optimize={
            "search_space": {"model.activation": {"type": "categorical", "choices": ["relu", "tanh"]}},
            "enqueue": [{"model.activation": "gelu"}],
        },
    ),
    Case(
        "enqueue-from-missing",
        "a warm start from a study that does not exist",
        "error: --enqueue-from: no study 'nosuch': studies/nosuch.db does not exist; studies under studies/: none (give --enqueue-from-storage URL for a study stored elsewhere)",
        args=("--enqueue-from", "nosuch"),
    ),
    Case(
        "enqueue-from-several-objectives",
        "a warm start from a study of several objectives: a Pareto front, no one ranking of best trials",
        "error: --enqueue-from: 'tiny' has 2 objectives, so no one ranking to take its best trials from; put the Pareto-optimal trials you pick in the optimize config's enqueue: list (hpotool trials --study-name tiny lists the front first, with their parameters)",
        optimize={"study_name": "warm"},
        args=("--enqueue-from", "tiny"),
        existing_study=True,
        existing_optimize={
            "metric": None,
            "direction": None,
            "metrics": ["val_loss", "n_params"],
            "directions": ["minimize", "minimize"],
        },
    ),
    Case(
        "config-without-its-pair",
        "one config file without the other",
        "error: --run-config needs --optimize-config too; or give neither, with --study-name (and --storage), to join a study with the configs stored on it",
        args=("--run-config", "run.yaml"),
        without_configs=True,
    ),
    Case(
        "run-config-empty",
        "an empty --run-config (\"$RUN\" with RUN unset); before: '.: is a directory, expected a YAML file'",
        "error: --run-config: is empty; give a YAML file, e.g. --run-config run.yaml",
        args=("--run-config", "", "--optimize-config", "optimize.yaml"),
        without_configs=True,
    ),
    Case(
        "optimize-config-empty",
        "an empty --optimize-config; before: '.: is a directory, expected a YAML file'",
        "error: --optimize-config: is empty; give a YAML file, e.g. --optimize-config optimize.yaml",
        args=("--run-config", "run.yaml", "--optimize-config", ""),
        without_configs=True,
    ),
    Case(
        "join-missing-study",
        "joining a study (no config files) that does not exist",
        "error: no study 'nosuch': studies/nosuch.db does not exist; studies under studies/: none (give --storage URL for a study stored elsewhere); to start a study, give --run-config and --optimize-config",
        args=("--study-name", "nosuch"),
        without_configs=True,
    ),
    Case(
        "join-empty-study-name",
        'joining a study (no config files) by an empty --study-name ("$NAME" with NAME unset), not waited for',
        "error: --study-name: is empty; give the study's name, e.g. --study-name mnist (hpotool studies --storage sqlite:///studies/tiny.db lists the studies)",
        args=("--study-name", "", "--storage", "sqlite:///studies/tiny.db"),
        without_configs=True,
        existing_study=True,
    ),
    Case(
        "join-wait-not-seconds",
        "joining a study with HPOTOOL_JOIN_WAIT (how long to wait for it to be created) not a number",
        "error: environment variable HPOTOOL_JOIN_WAIT='soon': give the seconds to wait for the study, e.g. 120 (0: no wait), or unset it",
        args=("--study-name", "tiny", "--storage", "sqlite:///studies/tiny.db"),
        without_configs=True,
        env={"HPOTOOL_JOIN_WAIT": "soon"},
    ),
    Case(
        "sqlite-in-memory",
        "an in-memory SQLite storage (sqlite://, sqlite:///:memory:)",
        "error: --storage: 'sqlite://' is an in-memory SQLite database: a study there ends with the command, and its heartbeat and workers could not see it; give a file, sqlite:///studies/NAME.db (or no storage: that default)",
        args=("--storage", "sqlite://"),
    ),
    Case(
        "sqlite-url-slashes",
        "a SQLite file URL with two slashes, as other URLs have (sqlite://studies/x.db)",
        "error: --storage: 'sqlite://studies/x.db' is not a SQLite file URL: write three slashes before a relative path (sqlite:///studies/x.db) or four before an absolute one (sqlite:////studies/x.db)",
        args=("--storage", "sqlite://studies/x.db"),
    ),
    Case(
        "relative-storage-elsewhere",
        "a config's relative storage (or the default studies/NAME.db) run from another folder than the study's",
        "error: study 'tiny' is in <cwd>/sub/studies/tiny.db, beside sub/optimize.yaml, but the relative storage sqlite:///studies/tiny.db is read from the folder the command runs in, where a new study would start (<cwd>/studies/tiny.db); run from <cwd>/sub, or give --storage sqlite:///<cwd>/sub/studies/tiny.db, to resume it (--storage sqlite:///studies/tiny.db starts a new one here)",
        args=("--run-config", "sub/run.yaml", "--optimize-config", "sub/optimize.yaml"),
        elsewhere="sub",
    ),
    Case(
        "relative-storage-elsewhere-dry-run",
        "--dry-run of a config's relative storage run from another folder than the study's (the run would refuse it)",
        "error: study 'tiny' is in <cwd>/sub/studies/tiny.db, beside sub/optimize.yaml, but the relative storage sqlite:///studies/tiny.db is read from the folder the command runs in, where a new study would start (<cwd>/studies/tiny.db); run from <cwd>/sub, or give --storage sqlite:///<cwd>/sub/studies/tiny.db, to resume it (--storage sqlite:///studies/tiny.db starts a new one here)",
        args=("--run-config", "sub/run.yaml", "--optimize-config", "sub/optimize.yaml", "--dry-run"),
        elsewhere="sub",
    ),
    Case(
        "journal-storage-elsewhere",
        "the default storage run from another folder than the one whose studies/NAME.log journal holds the study (--storage journal:studies/NAME.log left out)",
        "error: study 'tiny' is in journal:<cwd>/sub/studies/tiny.log, beside sub/optimize.yaml, and without --storage a new one would start in sqlite:///studies/tiny.db (<cwd>/studies/tiny.db); give --storage journal:<cwd>/sub/studies/tiny.log to resume it, or another study_name",
        args=("--run-config", "sub/run.yaml", "--optimize-config", "sub/optimize.yaml"),
        elsewhere="sub",
        elsewhere_args=("--storage", "journal:studies/tiny.log"),
        files={"sub/optimize.yaml": _optimize_text()},  # no storage: the default
    ),
    Case(
        "relative-storage-from-the-configs-folder",
        "a config's relative storage run from the configs/ folder beside the studies/ folder holding the study",
        "error: study 'tiny' is in <cwd>/studies/tiny.db, in a folder above (<cwd>), but the relative storage sqlite:///studies/tiny.db is read from the folder the command runs in, where a new study would start (<cwd>/configs/studies/tiny.db); run from <cwd>, or give --storage sqlite:///<cwd>/studies/tiny.db, to resume it (--storage sqlite:///studies/tiny.db starts a new one here)",
        command=("optimize", "--run-config", "run.yaml", "--optimize-config", "optimize.yaml"),
        files={
            "configs/run.yaml": yaml.safe_dump(RUN, sort_keys=False),
            "configs/optimize.yaml": _optimize_text(storage="sqlite:///studies/tiny.db"),
        },
        existing_study=True,
        run_in="configs",
    ),
    Case(
        "export-into-another-studys-export",
        "export-best --out a folder that holds another study's export",
        "error: exp: holds the export of study 'other' (best_run.yaml), and an export of study 'tiny' there would mix the two studies' files; give another --out, e.g. --out tiny, or move those files away",
        command=("export-best", "--study-name", "tiny", "--out", "exp"),
        existing_study=True,
        files={"exp/best_run.yaml": "# Best run of study 'other': trial 0 (val_accuracy=0.5).\n"},
    ),
    Case(
        "every-trial-failed",
        "export-best (train-from-best, audit, refine) of a study whose every trial failed",
        "error: study 'tiny' has no complete trial yet (fail 5); hpotool trials --study-name tiny --state fail shows why they failed: fix that and run hpotool optimize until one completes",
        command=("export-best", "--study-name", "tiny"),
        existing_study=True,
        existing_run={"model": {"name": "tests.helpers:ExplodingModel"}},
        existing_optimize={"search_space": {LR: OPTIMIZE["search_space"][LR]}},
    ),
    Case(
        "every-trial-diverged",
        "export-best (train-from-best, audit, refine) of a study whose every trial diverged (a NaN loss)",
        "error: study 'tiny' has no complete trial yet (pruned 1); its pruned trial diverged (trial 0: train_loss is nan in epoch 1): lower optimizer.lr (its range in the search space) or set grad_clip in the run config, and run hpotool optimize again",
        command=("export-best", "--study-name", "tiny"),
        existing_study=True,
        existing_run={
            "optimizer": {"name": "sgd", "lr": 1e5},
            "model": {"name": "mlp", "hidden": [128, 128]},
        },
        existing_optimize={"search_space": {LR: {"type": "float", "low": 1e5, "high": 1e6, "log": True}}},
    ),
    Case(
        "every-trial-pruned",
        "export-best (train-from-best, audit, refine) of a study whose pruner pruned every trial",
        "error: study 'tiny' has no complete trial yet (pruned 1); its pruner (threshold) pruned it before the last epoch (trial 0: pruned after 1 of 2 epochs (val_accuracy=0.3955)): loosen the optimize config's pruner (or pruner: {name: nop}) and run hpotool optimize again",
        command=("export-best", "--study-name", "tiny"),
        existing_study=True,
        existing_optimize={"pruner": {"name": "threshold", "kwargs": {"lower": 0.999}}},
    ),
    Case(
        "every-trial-of-a-plain-study-failed",
        "export-best of a study plain Optuna code ran, whose every trial failed",
        "error: study 'plain' has no complete trial yet (fail 2); it was not created by hpotool optimize, and Optuna keeps no reason a trial failed: the log of the Optuna code that ran them says why (\"Trial 0 failed with parameters: ... because of the following error: ...\"), and hpotool trials --study-name plain --state fail lists their parameters: fix that and run more of its trials (with the Optuna code that made it) until one completes",
        command=("export-best", "--study-name", "plain"),
        plain_study="plain",
    ),
    Case(
        "no-trial-meets-the-constraints",
        "export-best (train-from-best, its --trial too) of a study none of whose complete trials meets its "
        "constraints",
        "error: study 'tiny' has no complete trial that meets its constraints (complete 1); the nearest to "
        "n_params <= 10 measured n_params 1810 (trial 0); loosen the optimize config's constraints or narrow "
        "the search space towards them, and run hpotool optimize again",
        command=("export-best", "--study-name", "tiny"),
        existing_study=True,
        existing_optimize={"constraints": ["n_params <= 10"]},
    ),
    Case(
        "every-trial-interrupted",
        "export-best (train-from-best, audit, refine) of a study whose only trial Ctrl-C ended",
        "error: study 'tiny' has no complete trial yet (fail 1); its trial was interrupted (Ctrl-C or SIGTERM): run the same hpotool optimize command again, or hpotool optimize --study-name tiny (its stored configs), to resume it",
        command=("export-best", "--study-name", "tiny"),
        existing_study=True,
        existing_run={"model": {"name": "tests.helpers:CtrlCInTraining"}},
        existing_optimize={"search_space": {LR: OPTIMIZE["search_space"][LR]}},
    ),
    Case(
        "refine-nothing-left",
        "refine of a study whose top trials all chose one value of its one parameter: no stage left to search",
        "error: study 'tiny': refine would leave nothing to search: it fixes optimizer.name at adam; train the best trial as it is with hpotool train-from-best --study-name tiny, or keep the choices the top trials did not all make with a larger --keep-top (0.25 now; 1 keeps them all)",
        command=("refine", "--study-name", "tiny", "--out", "stage2.yaml"),
        existing_study=True,
        existing_trials=30,
        existing_optimize={
            "search_space": {"optimizer.name": {"type": "categorical", "choices": ["adam", "sgd"]}}
        },
    ),
    Case(
        "refine-out-a-device",
        "refine --out /dev/null, a device where it writes the stage's config and a .run.yaml beside it",
        "error: --out: /dev/null is a device, not a file; refine writes two files, the stage's config and its .run.yaml beside it: give a file, e.g. --out stage2.yaml",
        command=("refine", "--study-name", "tiny", "--out", "/dev/null", "--force"),
        existing_study=True,
    ),
    Case(
        "refine-out-not-yaml",
        "refine --out s.json, a suffix naming another format than the YAML refine writes",
        "error: --out s.json: refine writes YAML (the stage's config and its .run.yaml beside it), not .json; give a .yaml or .yml file, e.g. --out s.yaml",
        command=("refine", "--study-name", "tiny", "--out", "s.json"),
        existing_study=True,
    ),
    Case(
        "export-out-empty",
        "export-best --out '' (typer reads it as the current folder; every command with --out refuses it)",
        "error: --out: is empty; give a folder, e.g. --out exports/best",
        command=("export-best", "--study-name", "tiny", "--out", ""),
        existing_study=True,
    ),
    Case(
        "export-default-folder-a-file",
        "export-best where a file holds the name of its default folder, studies/<study-name>",
        "error: studies/tiny: is a file, not a folder, and export-best writes into studies/tiny/ by default; give a folder with --out PATH, e.g. --out exports/tiny, or move that file away",
        command=("export-best", "--study-name", "tiny"),
        existing_study=True,
        files={"studies/tiny": "notes\n"},
    ),
    Case(
        "report-default-folder-a-file",
        "report where a file holds the name of its default folder, studies/<study-name>",
        "error: studies/tiny: is a file, not a folder, and report writes studies/tiny/report.html by default; give another file with --out PATH, e.g. --out tiny-report.html, or move that file away",
        command=("report", "--study-name", "tiny"),
        existing_study=True,
        files={"studies/tiny": "notes\n"},
    ),
    Case(
        "train-from-best-export-folder-a-file",
        "train-from-best where a file holds the name of the folder it exports the best trial into",
        "error: studies/tiny: is a file, not a folder, and train-from-best exports the best trial into studies/tiny/ (no flag changes that folder); move or rename that file",
        command=("train-from-best", "--study-name", "tiny"),
        existing_study=True,
        files={"studies/tiny": "notes\n"},
    ),
    Case(
        "run-file-name-a-folder",
        "train-from-best --out where a run folder holds a folder named as a file a run saves (metrics.json)",
        "error: final/trial0-seed0/metrics.json: is a folder, not the file a run saves there; move it away, or choose another --out",
        command=("train-from-best", "--study-name", "tiny", "--out", "final"),
        existing_study=True,
        files={"final/trial0-seed0/metrics.json/notes.txt": "mine\n"},
    ),
    Case(
        "run-folder-read-only",
        "train-from-best --out below a folder this process cannot write (train --out too): before training",
        "error: ro/final/trial0-seed0: cannot save a run there: this process cannot write to ro; choose another --out, one you can write",
        command=("train-from-best", "--study-name", "tiny", "--out", "ro/final"),
        existing_study=True,
        read_only="ro",
    ),
    Case(
        "export-folder-read-only",
        "export-best --out below a folder this process cannot write (report and refine --out too)",
        "error: ro/exp: this process cannot write to ro; choose another --out, one you can write",
        command=("export-best", "--study-name", "tiny", "--out", "ro/exp"),
        existing_study=True,
        read_only="ro",
    ),
    Case(
        "export-file-name-a-folder",
        "export-best where its default folder holds a folder named as a file it writes (trials.json)",
        "error: studies/tiny/trials.json: is a folder, not the file export-best writes there; move it away, or give a folder with --out PATH, e.g. --out exports/tiny",
        command=("export-best", "--study-name", "tiny"),
        existing_study=True,
        files={"studies/tiny/trials.json/notes.txt": "mine\n"},
    ),
    Case(
        "export-out-file-name-a-folder",
        "export-best --out a folder that holds a folder named as a file it writes (best_params.json)",
        "error: exp/best_params.json: is a folder, not the file export-best writes there; move it away, or choose another --out",
        command=("export-best", "--study-name", "tiny", "--out", "exp"),
        existing_study=True,
        files={"exp/best_params.json/notes.txt": "mine\n"},
    ),
    Case(
        "train-from-best-export-file-name-a-folder",
        "train-from-best where the folder it exports the best trial into holds a folder named as an export file",
        "error: studies/tiny/trials.csv: is a folder, not the file train-from-best writes there when it exports the best trial (no flag changes that folder); move it away",
        command=("train-from-best", "--study-name", "tiny"),
        existing_study=True,
        files={"studies/tiny/trials.csv/notes.txt": "mine\n"},
    ),
    Case(
        "train-from-best-several-objectives",
        "train-from-best of a study of several metrics without --trial: it has a Pareto front, no one best trial",
        "error: study 'tiny' has 2 objectives, so no one best trial to train: give --trial N with the trial you pick from its Pareto front (trial 0; hpotool trials --study-name tiny lists it first)",
        command=("train-from-best", "--study-name", "tiny"),
        existing_study=True,
        existing_optimize={
            "metric": None,
            "direction": None,
            "metrics": ["val_accuracy", "n_params"],
            "directions": ["maximize", "minimize"],
            "pruner": None,
        },
    ),
    Case(
        "train-from-best-trial-missing",
        "train-from-best --trial naming a trial the study does not have",
        "error: --trial 5: study 'tiny' has no trial 5 (its only trial is 0); hpotool trials --study-name tiny --state complete lists those it can train",
        command=("train-from-best", "--study-name", "tiny", "--trial", "5"),
        existing_study=True,
    ),
    Case(
        "train-from-best-trial-not-complete",
        "train-from-best --trial naming a pruned (failed, running) trial",
        "error: --trial 0: trial 0 of study 'tiny' is pruned, not complete: only a complete trial can be trained as it ran; hpotool trials --study-name tiny --state complete lists those it can train",
        command=("train-from-best", "--study-name", "tiny", "--trial", "0"),
        existing_study=True,
        existing_optimize={"pruner": {"name": "threshold", "kwargs": {"lower": 0.99}}},
    ),
    Case(
        "train-from-best-trial-infeasible",
        "train-from-best --trial naming a trial that violates the study's constraints, where none meets them",
        "error: --trial 0: study 'tiny' has no complete trial that meets its constraints (complete 1); the nearest to n_params <= 100 measured n_params 1810 (trial 0); loosen the optimize config's constraints or narrow the search space towards them, and run hpotool optimize again",
        command=("train-from-best", "--study-name", "tiny", "--trial", "0"),
        existing_study=True,
        existing_optimize={"constraints": ["n_params <= 100"]},
    ),
    Case(
        "train-from-best-top-k-and-trial",
        "train-from-best given both --top-k and --trial",
        "error: --top-k 2 --trial 0: --trial trains the one trial it names, --top-k the K best: give one of them",
        command=("train-from-best", "--study-name", "tiny", "--top-k", "2", "--trial", "0"),
    ),
    Case(
        "export-out-a-device",
        "export-best --out /dev/null, a device where it writes several files into a folder",
        "error: --out /dev/null: is a device, not a folder; export-best writes several files into a folder: give one, e.g. --out exports/tiny",
        command=("export-best", "--study-name", "tiny", "--out", "/dev/null"),
        existing_study=True,
    ),
    Case(
        "study-name-empty-to-read",
        "a command that reads a study given an empty --study-name; before: 'studies/.db does not exist'",
        "error: --study-name: is empty; give the study's name, e.g. --study-name mnist (hpotool studies lists the studies)",
        command=("trials", "--study-name", ""),
        existing_study=True,
    ),
    Case(
        "enqueue-from-empty",
        "--enqueue-from given an empty study name",
        "error: --enqueue-from: is empty; give the study's name, e.g. --enqueue-from mnist (hpotool studies lists the studies)",
        args=("--enqueue-from", ""),
    ),
    Case(
        "study-name-too-long-to-read",
        "a command that reads a study by a name too long for its default file studies/<name>.db; before: a traceback (File name too long)",
        "error: --study-name: 'aaaaaaaaaaaaaaaaaaaaaaaa...aaaaaaaa' is 300 bytes long, too long for its default storage file studies/<name>.db (a file name holds at most 255 bytes); give the study's name, or --storage URL for a study stored elsewhere",
        command=("trials", "--study-name", "a" * 300),
        existing_study=True,
    ),
    Case(
        "storage-file-name-too-long",
        "a --storage file whose name is longer than a file name can be; before: a traceback (File name too long)",
        "error: --storage: 'journal:studies/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.log': in its path, the name 'aaaaaaaaaaaaaaaaaaaaaaaa...aaaa.log' is 304 bytes long, and a file or folder name holds at most 255; give a shorter path",
        command=("trials", "--study-name", "tiny", "--storage", "journal:studies/" + "a" * 300 + ".log"),
    ),
    Case(
        "sqlite-storage-name-too-long",
        "a SQLite storage in the optimize config whose file name is longer than a file name can be; before: a traceback",
        "error: optimize.yaml: storage: 'sqlite:///aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.db': in its path, the name 'aaaaaaaaaaaaaaaaaaaaaaaa...aaaaa.db' is 303 bytes long, and a file or folder name holds at most 255; give a shorter path",
        optimize_text=_optimize_text(storage="sqlite:///" + "a" * 300 + ".db"),
    ),
    Case(
        "export-out-name-too-long",
        "export-best --out whose folder name is longer than a file name can be; before: a traceback (File name too long)",
        "error: --out exp/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...aaaaaaaa: the name 'aaaaaaaaaaaaaaaaaaaaaaaa...aaaaaaaa' is 300 bytes long, and a file or folder name holds at most 255; give a shorter --out",
        command=("export-best", "--study-name", "tiny", "--out", "exp/" + "a" * 300),
        existing_study=True,
    ),
    Case(
        "refine-out-name-too-long",
        "refine --out whose .run.yaml beside it would be longer than a file name can be; before: a traceback",
        "error: --out aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...aaa.yaml: the name 'aaaaaaaaaaaaaaaaaaaaaaaa...run.yaml' is 257 bytes long, and a file or folder name holds at most 255; give a shorter --out",
        command=("refine", "--study-name", "tiny", "--out", "a" * 248 + ".yaml"),
        existing_study=True,
    ),
    Case(
        "export-default-folder-out-of-studies",
        "export-best without --out, of a study Optuna code named '..' (its default folder studies/../ is the current one); before: it wrote trials.csv and the rest there",
        "error: study '..': export-best writes into studies/<name>/ by default, and its name makes that the current folder; give a folder with --out, e.g. --out exports/best",
        command=("export-best", "--study-name", "..", "--storage", "sqlite:///studies/...db"),
        plain_study="..",
    ),
    Case(
        "report-default-path-out-of-studies",
        "report without --out, of a study Optuna code named '../out' (studies/../out/ is out/); before: it wrote out/report.html",
        "error: study '../out': report writes studies/<name>/report.html by default, and its name makes that out; give a file with --out, e.g. --out report.html",
        command=("report", "--study-name", "../out", "--storage", "sqlite:///out.db"),
        plain_study="../out",
    ),
    Case(
        "prune-audit-against-empty",
        "prune-audit --against given an empty study name; before: it audited without the baseline, saying nothing",
        "error: --against: is empty; give the study's name, e.g. --against mnist (hpotool studies lists the studies)",
        command=("prune-audit", "--study-name", "tiny", "--against", ""),
        existing_study=True,
    ),
    Case(
        "train-from-best-device-empty",
        "train-from-best --device '' (an unset variable); before: the line read '--device : must be ...'",
        "error: study 'tiny': --device '': must be auto, cpu, cuda, cuda:N or mps, got \"\"",
        command=("train-from-best", "--study-name", "tiny", "--device", ""),
        existing_study=True,
    ),
    Case(
        "study-in-a-folder-above",
        "a command that reads a study by its name, run from a subfolder of the folder that holds studies/",
        "error: no study 'tiny' in studies/tiny.db: studies/tiny.db is read from the folder the command runs in, and the study is in <cwd>/studies/tiny.db; run from <cwd>, or give --storage sqlite:///<cwd>/studies/tiny.db",
        command=("trials", "--study-name", "tiny"),
        existing_study=True,
        run_in="sub",
    ),
    Case(
        "storage-in-a-folder-above",
        "a command that reads a study from a relative --storage, run from a subfolder of the folder it is read from",
        "error: --storage: 'sqlite:///studies/tiny.db': no such SQLite file '<cwd>/sub/studies/tiny.db': studies/tiny.db is read from the folder the command runs in, and the study is in <cwd>/studies/tiny.db; run from <cwd>, or give --storage sqlite:///<cwd>/studies/tiny.db",
        command=("trials", "--study-name", "tiny", "--storage", "sqlite:///studies/tiny.db"),
        existing_study=True,
        run_in="sub",
    ),
    Case(
        "storage-file-missing",
        "a command that reads a study from a --storage file that is not there",
        "error: --storage: 'sqlite:///runs/tiny.db': no such SQLite file '<cwd>/runs/tiny.db'; check the path (a relative one is read from the folder hpotool runs in)",
        command=("trials", "--study-name", "tiny", "--storage", "sqlite:///runs/tiny.db"),
    ),
    Case(
        "loss-reduction",
        "a loss that sums or keeps each sample's loss",
        "error: run.yaml: loss: loss 'cross_entropy' argument 'reduction': hpotool needs each batch's mean loss (it weights batches by their size for train_loss and val_loss), got sum; drop reduction (for larger steps, raise optimizer.lr)",
        run={"loss": {"name": "cross_entropy", "reduction": "sum"}},
    ),
    Case(
        "label-smoothing-one",
        "label smoothing of 1 (every target the uniform one)",
        "error: run.yaml: loss: loss 'cross_entropy' argument 'label_smoothing': 1.0 trains every sample towards the same uniform target whatever its label, so the model learns nothing; give a value from 0 up to but not including 1, such as 0.1",
        run={"loss": {"name": "cross_entropy", "label_smoothing": 1.0}},
    ),
    Case(
        "label-smoothing-searched-to-one",
        "label smoothing searched up to 1",
        "error: optimize.yaml: search_space.loss.label_smoothing: with loss.label_smoothing=1.0: loss: loss 'cross_entropy' argument 'label_smoothing': 1.0 trains every sample towards the same uniform target whatever its label, so the model learns nothing; give a value from 0 up to but not including 1, such as 0.1",
        run={"loss": {"name": "cross_entropy"}},
        optimize={"search_space": {"loss.label_smoothing": {"type": "float", "low": 0.0, "high": 1.0}}},
    ),
    Case(
        "plateau-mode-max",
        "a plateau schedule set to mode max (it watches val_loss)",
        "error: run.yaml: scheduler: 'torch.optim.lr_scheduler:ReduceLROnPlateau' watches val_loss, which is better lower, but its mode is max, which cuts the lr while val_loss falls; drop mode or set mode: min",
        run={"scheduler": {"name": "torch.optim.lr_scheduler:ReduceLROnPlateau", "mode": "max"}},
    ),
    Case(
        "plateau-monitor-mode",
        "a plateau schedule watching val_accuracy in its default mode min",
        "error: run.yaml: scheduler: 'plateau' watches val_accuracy, which is better higher, but its mode is min, which cuts the lr while val_accuracy rises; set mode: max",
        run={"scheduler": {"name": "plateau", "monitor": "val_accuracy"}},
    ),
    Case(
        "searched-monitor-mode",
        "a searched plateau monitor whose choices need different modes, under one fixed mode",
        "error: optimize.yaml: search_space.scheduler.monitor: with scheduler.monitor=val_accuracy: 'plateau' watches val_accuracy, which is better higher, but its mode is min, which cuts the lr while val_accuracy rises; no one mode fits the choices val_loss, val_accuracy: search the mode with the monitor, adding below scheduler.monitor in search_space: scheduler.mode: {type: categorical, choices: [max], when: {scheduler.monitor: val_accuracy}} (the run config's mode, min, serves the other choices)",
        run={"scheduler": {"name": "plateau"}},
        optimize={
            "search_space": {
                "scheduler.monitor": {"type": "categorical", "choices": ["val_loss", "val_accuracy"]}
            }
        },
    ),
    Case(
        "warmup-too-long",
        "a warm-up as long as the run",
        "error: run.yaml: scheduler.warmup_epochs: 2 is not shorter than the run (epochs: 2), so the 'cosine' schedule would never start; use at most 1, or more epochs",
        run={"scheduler": {"name": "cosine", "warmup_epochs": 2}},
    ),
    Case(
        "warmup-on-a-users-schedule",
        "hpotool's warm-up set on a schedule of the user's, which has its own",
        "error: run.yaml: scheduler: scheduler 'warm_schedule:make' takes no argument 'warmup_epochs': warmup_epochs and warmup_start are hpotool's warm-up of the built-in schedules cosine, none, step only; remove warmup_epochs, and set the schedule's own warm-up, if it has one (it takes: warmup)",
        run={"scheduler": {"name": "warm_schedule:make", "warmup_epochs": 1}},
        files={
            "warm_schedule.py": "import torch\n\n\ndef make(optimizer, epochs, warmup=0):\n"
            "    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda e: min(1.0, (e + 1) / (warmup + 1)))\n"
        },
    ),
    Case(
        "final-epochs-warmup",
        "final runs as short as the base run's warm-up",
        "error: optimize.yaml: final: with epochs=1: scheduler.warmup_epochs: 1 is not shorter than the run (epochs: 1), so the 'cosine' schedule would never start; use at most 0, or more epochs",
        run={"scheduler": {"name": "cosine", "warmup_epochs": 1}},
        optimize={"final": {"epochs": 1}},
    ),
    Case(
        "scheduler-returns-other",
        "a scheduler factory that returns no schedule",
        "error: run.yaml: scheduler: scheduler 'tests.helpers:not_a_scheduler' returned int, not a learning-rate schedule (an object with a step() method, such as torch.optim.lr_scheduler.StepLR); return the schedule it builds",
        run={"scheduler": {"name": "tests.helpers:not_a_scheduler"}},
    ),
    Case(
        "loss-returns-other",
        "a loss factory that returns no loss",
        "error: run.yaml: loss: loss 'tests.helpers:not_a_loss' returned str, not a loss (a torch.nn.Module or function called with the prediction and the target); return the loss it builds",
        run={"loss": {"name": "tests.helpers:not_a_loss"}},
    ),
    Case(
        "model-all-frozen",
        "a model whose parameters are all frozen",
        "error: run.yaml: model: every one of Frozen's 2 parameters is frozen (requires_grad=False), so training would change nothing; leave the layers to train trainable (freeze a backbone, not the head)",
        run={"model": {"name": "frozen_model:Frozen"}},
        files={
            "frozen_model.py": "from torch import nn\n\n\nclass Frozen(nn.Module):\n"
            "    def __init__(self, in_features, out_features):\n        super().__init__()\n"
            "        self.fc = nn.Linear(in_features, out_features).requires_grad_(False)\n\n"
            "    def forward(self, x):\n        return self.fc(x.flatten(1))\n"
        },
    ),
    Case(
        "model-no-parameters",
        "a model without parameters",
        "error: run.yaml: model: Slice has no parameters, so there is nothing to train; build its layers as attributes in __init__ (self.fc = nn.Linear(in_features, out_features))",
        run={"model": {"name": "slice_model:Slice"}},
        files={
            "slice_model.py": "from torch import nn\n\n\nclass Slice(nn.Module):\n"
            "    def __init__(self, out_features):\n        super().__init__()\n        self.n = out_features\n\n"
            "    def forward(self, x):\n        return x.flatten(1)[:, : self.n]\n"
        },
    ),
    Case(
        "loss-requires-the-model",
        "a loss that requires the model (a weight penalty)",
        "error: run.yaml: loss: loss 'penalty_loss:penalised' requires the model ('model'), which hpotool does not give a loss (it calls it with the prediction and the target); for a penalty on the weights set optimizer.weight_decay, or train with your own function (trainer: {function: package.module:fit})",
        run={"loss": {"name": "penalty_loss:penalised"}},
        files={
            "penalty_loss.py": "import torch.nn.functional as F\n\n\ndef penalised(prediction, target, model):\n"
            "    return F.cross_entropy(prediction, target) + sum(p.pow(2).sum() for p in model.parameters())\n"
        },
    ),
    Case(
        "loss-not-a-tensor",
        "a loss function that returns a Python number",
        "error: run.yaml: loss: it returned float for 8 samples, not a tensor; hpotool calls backward() on it: compute it from the prediction with torch operations (no .item())",
        run={"loss": {"name": "tests.helpers:loss_as_a_float"}},
    ),
    Case(
        "loss-with-its-parts",
        "a loss function that returns the loss with the values it logs",
        "error: run.yaml: loss: it returned a tuple of 2 items for 8 samples, not a tensor; hpotool calls backward() on the loss alone: return the loss tensor by itself",
        run={"loss": {"name": "tests.helpers:loss_with_its_parts"}},
    ),
    Case(
        "loss-without-gradient",
        "a loss no gradient flows back from",
        "error: run.yaml: loss: its value for 8 samples does not depend on the model's parameters (no gradient reaches them): compute it from the prediction with differentiable torch operations (no .item(), .detach(), argmax or comparisons)",
        run={"loss": {"name": "tests.helpers:loss_of_wrong_answers"}},
    ),
    Case(
        "loss-nan-before-training",
        "a loss that is NaN before any step",
        "error: run.yaml: loss: it returned nan for the untrained model's finite output on 8 samples, before any step, so the loss itself computes it: guard its log, division or sqrt against 0 (torch.log(p + 1e-8), or torch.nn.functional.log_softmax in place of log(softmax))",
        run={"loss": {"name": "tests.helpers:loss_that_is_nan"}},
    ),
    Case(
        "bce-labels",
        "binary cross-entropy on two classes labelled 1 and 2",
        "error: run.yaml: loss: 'bce_with_logits' is binary cross-entropy, which needs the labels 0 and 1, but y holds the labels 1 and 2; number the two classes 0 and 1 in the dataset function: (y == 2).long() turns 2 into 1 and 1 into 0",
        run={"data": {"name": "tests.helpers:labels_one_and_two"}, "loss": {"name": "bce_with_logits"}},
    ),
    Case(
        "class-weights-count",
        "class weights for fewer classes than y holds",
        "error: run.yaml: loss: weight: [1.0, 2.0] holds 2 weights for the 10 classes of y (labels 0 to 9); give one weight per class, class 0's first",
        run={"loss": {"name": "cross_entropy", "weight": [1.0, 2.0]}},
    ),
    Case(
        "search-val-fraction",
        "the validation split searched",
        "error: optimize.yaml: search_space.data.val_fraction: every trial would be measured on another validation split, so their val_accuracy would not compare (the sampler would favour the easiest split); set data.val_fraction in the run config instead (to train trials on less data, search data.subset_fraction)",
        optimize={"search_space": {"data.val_fraction": {"type": "float", "low": 0.1, "high": 0.3}}},
    ),
    Case(
        "ce-on-regression",
        "cross-entropy on float targets (a regression task)",
        "error: run.yaml: loss: 'cross_entropy' scores classes, but y holds one floating-point number per sample (a regression task), over which it is 0 whatever the model predicts; use mse, l1, smooth_l1 or huber, or give y as integer class labels for classification",
        run={"data": {"name": "regression"}, "loss": {"name": "cross_entropy"}},
        optimize={"metric": "val_loss", "direction": "minimize"},
    ),
    Case(
        "softmax-before-cross-entropy",
        "a model whose forward() ends in a softmax, trained with the cross-entropy loss (which applies log_softmax)",
        "error: run.yaml: model: its output for 8 samples is probabilities, each row summing to 1 (a softmax at the end of forward()), and the cross-entropy loss applies log_softmax itself, so it would train on a softmax of a softmax: return the logits (drop the softmax; torch.softmax(model(x), 1) gives probabilities when you need them)",
        run={"model": {"name": "softmax_net:Net"}},
        files={
            "softmax_net.py": "from torch import nn\n\n\ndef Net(in_features, out_features):\n"
            "    return nn.Sequential(nn.Flatten(), nn.Linear(in_features, out_features), nn.Softmax(dim=1))\n"
        },
    ),
    Case(
        "conv-without-a-channel",
        "flat samples (one dimension each) given to a model that convolves them as (channels, length)",
        "error: run.yaml: model: RuntimeError: Given groups=1, weight of size [4, 1, 3], expected input[1, 8, 10] to have 1 channels, but got 8 channels instead (at conv_net.py:11 in forward); each sample of the data's x is shaped (10,), without a channel dimension, so the convolution read the batch of 8 as the channels of one sample: give the samples a channel dimension, (1, 10), in the dataset function (x.unsqueeze(1); input_shape follows), or at the start of forward() (x = x.unsqueeze(1)) where the model's channels do not come from input_shape",
        run={"data": {"name": "regression"}, "model": {"name": "conv_net:Net"}},
        optimize={"metric": "val_loss", "direction": "minimize"},
        files={
            "conv_net.py": "from torch import nn\n\n\nclass Net(nn.Module):\n"
            "    def __init__(self, out_features):\n        super().__init__()\n"
            "        self.conv = nn.Conv1d(1, 4, 3, padding=1)\n"
            "        self.head = nn.Linear(4, out_features)\n\n"
            "    def forward(self, x):\n        return self.head(self.conv(x).mean(-1))\n"
        },
    ),
    Case(
        "ragged-samples",
        "a dataset function returning x as a list of sequences of several lengths",
        "error: run.yaml: data: 'ragged_data:load' returned data hpotool cannot train on: x is a list of samples of several shapes (sample 0: (3, 5), sample 1: (3, 7)); hpotool keeps x as one tensor, so give every sample the same shape: pad or crop them to one length in the dataset function",
        run={"data": {"name": "ragged_data:load"}},
        files={
            "ragged_data.py": "import numpy as np\n\n\ndef load():\n"
            "    x = [np.zeros((3, 5 + 2 * (i % 2)), dtype='float32') for i in range(40)]\n"
            "    return x, np.arange(40) % 2\n"
        },
    ),
    Case(
        "model-count-as-float",
        "a model argument that counts (channels) written as a float, 8.0, which torch's layer refuses deep inside",
        "error: run.yaml: model: TypeError: empty(): argument 'size' (position 1) must be tuple of ints, but found element of type float at pos 0 (at conv_width_net.py:7 in __init__); model.width is 8.0, a float, where 4, its default, is an int: write 8",
        run={"model": {"name": "conv_width_net:Net", "width": 8.0, "dropout": 0.0}},
        files={
            "conv_width_net.py": "from torch import nn\n\n\nclass Net(nn.Module):\n"
            "    def __init__(self, in_features, out_features, width=4, dropout=0.1):\n"
            "        super().__init__()\n"
            "        self.f = nn.Sequential(nn.Flatten(), nn.Linear(in_features, width), nn.Dropout(dropout), nn.Linear(width, out_features))\n\n"
            "    def forward(self, x):\n        return self.f(x)\n"
        },
    ),
    Case(
        "model-count-as-text",
        "a model argument that counts written as quoted text, '8'",
        "error: run.yaml: model: TypeError: empty(): argument 'size' (position 1) must be tuple of ints, but found element of type str at pos 0 (at conv_width_text.py:7 in __init__); model.width is the text \"8\": write 8 without quotes, a number",
        run={"model": {"name": "conv_width_text:Net", "width": "8"}},
        files={
            "conv_width_text.py": "from torch import nn\n\n\nclass Net(nn.Module):\n"
            "    def __init__(self, in_features, out_features, width=4, dropout=0.1):\n"
            "        super().__init__()\n"
            "        self.f = nn.Sequential(nn.Flatten(), nn.Linear(in_features, width), nn.Dropout(dropout), nn.Linear(width, out_features))\n\n"
            "    def forward(self, x):\n        return self.f(x)\n"
        },
    ),
    Case(
        "float64-model",
        "a model built in float64 for data returned as a plain (x, y) pair, whose x is cast to float32",
        "error: run.yaml: model: RuntimeError: mat1 and mat2 must have the same dtype, but got Float and Double (at float64_net.py:10 in forward); the data's x is float32 and the model's parameters float64: a plain (x, y) pair's x is cast to float32, so return hpotool.datasets.Dataset(x.to(torch.float64), y, 'regression') from the dataset function (it keeps x's type), or build the model in float32 (no .double() or .half())",
        run={"data": {"name": "regression"}, "model": {"name": "float64_net:Net"}},
        files={
            "float64_net.py": "from torch import nn\n\n\nclass Net(nn.Module):\n"
            "    def __init__(self, in_features, out_features):\n        super().__init__()\n"
            "        self.f = nn.Linear(in_features, out_features).double()\n\n"
            "    def forward(self, x):\n        return self.f(x)\n"
        },
        optimize={"metric": "val_loss", "direction": "minimize"},
    ),
    Case(
        "float64-x",
        "a Dataset object whose x is float64 (kept as it is) for a float32 model",
        "error: run.yaml: model: RuntimeError: mat1 and mat2 must have the same dtype, but got Double and Float; the data's x is float64 and the model's parameters float32: give x as float32 in the dataset function (x.float(); a numpy array: x.astype(np.float32))",
        run={"data": {"name": "tests.helpers:float64_dataset"}},
        optimize={"metric": "val_loss", "direction": "minimize"},
    ),
    Case(
        "token-ids-as-a-pair",
        "token ids for an embedding returned as an (x, y) pair, whose x hpotool casts to float32",
        "error: run.yaml: model: RuntimeError: Expected tensor for argument #1 'indices' to have one of the following scalar types: Long, Int; but got torch.FloatTensor instead (while checking arguments for embedding_bag); the data's x is float32 (hpotool casts the x of an (x, y) pair to float32): to keep integer x, such as token ids for an embedding, return hpotool.datasets.Dataset(x, y, 'classification') from the dataset function",
        run={
            "data": {"name": "tests.helpers:token_ids_as_pair"},
            "model": {"name": "torch.nn:EmbeddingBag", "num_embeddings": 50, "embedding_dim": 2},
        },
    ),
    Case(
        "model-returns-a-tuple-in-training",
        "a model that returns (logits, aux_logits) in training mode and the logits in eval mode",
        "error: run.yaml: training: one step on 8 samples failed: TypeError: cross_entropy_loss(): argument 'input' (position 1) must be Tensor, not tuple; in training mode the model returns a tuple, not a tensor (in eval mode it returns one), and hpotool gives the loss what forward() returns: return the prediction alone in training mode too (torchvision's inception_v3 and googlenet: set aux_logits: false under model:)",
        run={"model": {"name": "tests.helpers:AuxHeadNet"}},
    ),
    Case(
        "one-cycle-too-short",
        "a one-cycle schedule whose total_steps end before the run does",
        "error: run.yaml: scheduler: scheduler 'torch.optim.lr_scheduler:OneCycleLR' has total_steps 3, but the run steps it 10 times (2 epochs x 5 batches), and it fails past its end; drop total_steps (hpotool passes epochs and steps_per_epoch)",
        run={"scheduler": {"name": "torch.optim.lr_scheduler:OneCycleLR", "max_lr": 0.1, "total_steps": 3}},
    ),
    Case(
        "schedule-length-by-another-name",
        "a schedule asking for the run's length by another name than the one hpotool fills in",
        "error: run.yaml: scheduler: scheduler 'named_schedule:cosine' requires 'max_epochs', which the config does not set; add max_epochs: ... under scheduler:, or rename max_epochs to epochs, which hpotool fills in for each run",
        run={"scheduler": {"name": "named_schedule:cosine"}},
        files={
            "named_schedule.py": "from torch.optim.lr_scheduler import CosineAnnealingLR\n\n\n"
            "def cosine(optimizer, max_epochs):\n    return CosineAnnealingLR(optimizer, T_max=max_epochs)\n"
        },
    ),
    Case(
        "timm-pair-epochs-differ",
        "a factory returning (schedule, epochs), as timm's create_scheduler_v2 does, whose epochs are not the run's",
        "error: run.yaml: scheduler: 'timm_pair:create_scheduler_v2' returned (Cosine, 3): a schedule and the epochs to train it for (as timm's create_scheduler_v2 does, adding cooldown_epochs, a warmup_prefix's warm-up and cycle_limit's cycles to num_epochs), but the run trains 2 epochs, so the schedule's last 1 epoch would never run; drop cooldown_epochs, warmup_prefix and cycle_limit, so that it spans the run (hpotool fills in num_epochs and updates_per_epoch for each run)",
        run={"scheduler": {"name": "timm_pair:create_scheduler_v2", "cooldown_epochs": 1}},
        files={
            "timm_pair.py": "class Cosine:\n"
            "    def __init__(self, optimizer):\n        self.optimizer = optimizer\n\n"
            "    def step(self, epoch, metric=None):\n        pass\n\n\n"
            "def create_scheduler_v2(optimizer, num_epochs=300, cooldown_epochs=0, updates_per_epoch=0):\n"
            "    return Cosine(optimizer), num_epochs + cooldown_epochs\n"
        },
    ),
    Case(
        "held-schedule-resumed",
        "a schedule inside a user's ChainedScheduler built with last_epoch, which resumes it part-way",
        "error: run.yaml: scheduler: 'resumed_schedule:chained' holds a LinearLR (schedule 2 of its ChainedScheduler) that starts part-way through, at its step 2 (built with last_epoch 1, which resumes a schedule from a checkpoint, or stepped before it was returned), and hpotool starts every run's schedule at its beginning; build it without last_epoch",
        run={"scheduler": {"name": "resumed_schedule:chained"}},
        files={
            "resumed_schedule.py": "from torch.optim.lr_scheduler import ChainedScheduler, LinearLR, StepLR\n\n\n"
            "def chained(optimizer):\n"
            "    decay = StepLR(optimizer, step_size=1, gamma=0.5)\n"
            "    return ChainedScheduler([decay, LinearLR(optimizer, start_factor=0.1, total_iters=3, last_epoch=1)])\n"
        },
    ),
    Case(
        "held-schedule-restarted",
        "a ChainedScheduler after the first schedule of a user's SequentialLR, which restarts it with step(0)",
        "error: run.yaml: scheduler: 'restarted_chain:warm_then_decay' holds a ChainedScheduler (schedule 2 of its SequentialLR), which the SequentialLR restarts at its milestone with step(0), and torch's ChainedScheduler cannot take that: the run would fail there, part-way through; put the schedules it holds into the outer SequentialLR (or a ChainedScheduler around it) instead",
        run={"scheduler": {"name": "restarted_chain:warm_then_decay"}},
        files={
            "restarted_chain.py": "from torch.optim.lr_scheduler import ChainedScheduler, ExponentialLR, LinearLR, SequentialLR\n\n\n"
            "def warm_then_decay(optimizer):\n"
            "    warm = LinearLR(optimizer, start_factor=0.1, total_iters=1)\n"
            "    decay = ChainedScheduler([ExponentialLR(optimizer, 0.9)])\n"
            "    return SequentialLR(optimizer, [warm, decay], milestones=[1])\n"
        },
    ),
    Case(
        "schedule-resumed",
        "a schedule a user's factory built with last_epoch, which resumes it part-way",
        "error: run.yaml: scheduler: 'resumed_step:decay' returned a StepLR that starts part-way through, at its step 3 (built with last_epoch 2, which resumes a schedule from a checkpoint, or stepped before it was returned), and hpotool starts every run's schedule at its beginning; build it without last_epoch",
        run={"scheduler": {"name": "resumed_step:decay"}},
        files={
            "resumed_step.py": "from torch.optim.lr_scheduler import StepLR\n\n\n"
            "def decay(optimizer):\n"
            "    optimizer.param_groups[0]['initial_lr'] = optimizer.param_groups[0]['lr']\n"
            "    return StepLR(optimizer, step_size=1, gamma=0.5, last_epoch=2)\n"
        },
    ),
    Case(
        "cosine-shorter-than-the-run",
        "torch's CosineAnnealingLR by path with a T_max shorter than the run, whose lr climbs back after it",
        "error: run.yaml: scheduler: 'torch.optim.lr_scheduler:CosineAnnealingLR' has T_max 1, but the run steps it 3 times (once per epoch, 3 epochs), and past T_max its cosine climbs back up towards the lr; set T_max to the run's steps, or use name: cosine (hpotool's, which spans every trial's run)",
        run={"epochs": 3, "scheduler": {"name": "torch.optim.lr_scheduler:CosineAnnealingLR", "T_max": 1}},
    ),
    Case(
        "cosine-ends-a-step-early",
        "torch's CosineAnnealingLR by path with T_max one step short of the run and eta_min 0, so the run's last "
        "step trains at lr 0",
        "error: run.yaml: scheduler: 'torch.optim.lr_scheduler:CosineAnnealingLR' has T_max 1, but the run steps it 2 times (once per epoch, 2 epochs), so its cosine ends at T_max, at eta_min 0, and the run's last epoch trains at lr 0, which moves no weight; set T_max to the run's steps, or eta_min above 0, or use name: cosine (hpotool's, which spans every trial's run)",
        run={"scheduler": {"name": "torch.optim.lr_scheduler:CosineAnnealingLR", "T_max": 1}},
    ),
    Case(
        "held-cosine-shorter-than-its-part",
        "a cosine inside a user's SequentialLR with a T_max shorter than its part of the run",
        "error: run.yaml: scheduler: 'nested_schedule:warm_cosine' holds a CosineAnnealingLR (schedule 2 of its SequentialLR) with T_max 1, but the run steps it 2 times (its part of the run's 3 steps, once per epoch, 3 epochs), so its cosine ends at T_max, at eta_min 0, and the last epoch of its part trains at lr 0, which moves no weight; build it with T_max from the arguments hpotool fills in (epochs, steps_per_epoch, num_training_steps), to span its part of the run, or with eta_min above 0",
        run={"epochs": 3, "scheduler": {"name": "nested_schedule:warm_cosine", "t_max": 1}},
        files={
            "nested_schedule.py": "from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, SequentialLR\n\n\n"
            "def warm_cosine(optimizer, t_max):\n"
            "    warm = LinearLR(optimizer, start_factor=0.1, total_iters=1)\n"
            "    return SequentialLR(optimizer, [warm, CosineAnnealingLR(optimizer, T_max=t_max)], milestones=[1])\n"
        },
    ),
    Case(
        "one-cycle-too-long",
        "a one-cycle schedule whose total_steps end after the run does",
        "error: run.yaml: scheduler: scheduler 'torch.optim.lr_scheduler:OneCycleLR' has total_steps 100, but the run steps it 10 times (2 epochs x 5 batches), so its cycle would stop 10% of the way through, before the lr anneals; drop total_steps (hpotool passes epochs and steps_per_epoch)",
        run={"scheduler": {"name": "torch.optim.lr_scheduler:OneCycleLR", "max_lr": 0.1, "total_steps": 100}},
    ),
    Case(
        "loss-per-sample",
        "a loss function that returns one value per sample",
        "error: run.yaml: loss: it returned shape (8,) for 8 samples, not one number; hpotool needs the batch's mean loss: return loss.mean()",
        run={"data": {"name": "regression"}, "loss": {"name": "tests.helpers:squared_errors"}},
        optimize={"metric": "val_loss", "direction": "minimize"},
    ),
    Case(
        "batch-norm-batch-of-one",
        "batch norm with batch_size: 1",
        "error: run.yaml: training: one step on 1 sample failed: ValueError: Expected more than 1 value per channel when training, got input size torch.Size([1, 16]); batch norm cannot train on a batch of one sample: set batch_size to 2 or more",
        run={"model": {"name": "mlp", "hidden": [16], "norm": "batch"}, "batch_size": 1},
    ),
    Case(
        "heartbeat-env",
        "a heartbeat setting in the environment that is not a whole number of seconds",
        "error: environment variable HPOTOOL_HEARTBEAT_INTERVAL='2.5': give a whole number of seconds, 1 or more (default 10), or unset it",
        env={"HPOTOOL_HEARTBEAT_INTERVAL": "2.5"},
    ),
    Case(
        "sqlite-busy-timeout-env",
        "a SQLite busy timeout in the environment that is not a whole number of seconds",
        "error: environment variable HPOTOOL_SQLITE_BUSY_TIMEOUT='soon': give a whole number of seconds, 1 or more (default 60), or unset it",
        env={"HPOTOOL_SQLITE_BUSY_TIMEOUT": "soon"},
    ),
    Case(
        "schedule-argument-fails-its-step",
        "a schedule's argument torch takes and fails on as the schedule steps (StepLR's step_size: 0); before: "
        "'check that the loss fits this classification task'",
        "error: run.yaml: training: one step on 8 samples failed: ZeroDivisionError: integer modulo by zero; the scheduler's step() raised it: check the scheduler section's arguments (step_size: 0)",
        run={"scheduler": {"name": "torch.optim.lr_scheduler:StepLR", "step_size": 0}},
    ),
    Case(
        "optimizer-argument-quoted-number",
        "a quoted number for an argument of a torch optimizer, which torch refuses deep inside, naming no key",
        "error: run.yaml: optimizer: TypeError: '<' not supported between instances of 'str' and 'float'; optimizer.momentum is the text \"0.9\": write 0.9 without quotes, a number",
        run={"optimizer": {"name": "sgd", "lr": 0.01, "momentum": "0.9"}},
    ),
    Case(
        "optimizer-argument-torch-refuses",
        "an optimizer argument of the wrong shape that torch's constructor fails on (Adam's betas as one number)",
        "error: run.yaml: optimizer: TypeError: 'float' object is not subscriptable; check the optimizer section's arguments (lr: 0.01, betas: 0.9)",
        run={"optimizer": {"name": "torch.optim:Adam", "lr": 0.01, "betas": 0.9}},
    ),
    Case(
        "optimizer-function-without-lr",
        "an optimizer function of the user's whose learning rate is not called lr",
        "error: run.yaml: optimizer: optimizer 'keras_optimizer:make' takes no argument 'lr', which hpotool gives every optimizer (optimizer.lr, 0.01 here, which a search varies): name its learning_rate argument lr",
        run={"optimizer": {"name": "keras_optimizer:make", "lr": 0.01}},
        files={
            "keras_optimizer.py": "import torch\n\n\ndef make(params, learning_rate=0.001):\n"
            "    return torch.optim.SGD(params, lr=learning_rate)\n"
        },
    ),
    Case(
        "optimizer-function-takes-the-model",
        "an optimizer function of the user's written to take the model, not its parameters",
        "error: run.yaml: optimizer: AttributeError: 'list' object has no attribute 'parameters' (at model_optimizer.py:5 in make_optimizer); hpotool calls 'model_optimizer:make_optimizer' with the model's parameters (a list); name that argument model to be given the model, or named_parameters to be given its (name, parameter) pairs",
        run={"optimizer": {"name": "model_optimizer:make_optimizer", "lr": 0.01}},
        files={
            "model_optimizer.py": "import torch\n\n\ndef make_optimizer(m, lr):\n"
            "    return torch.optim.SGD(m.parameters(), lr=lr)\n"
        },
    ),
    Case(
        "schedule-takes-a-function",
        "a schedule that takes a function (LambdaLR's lr_lambda), which no YAML value can be",
        "error: run.yaml: scheduler: scheduler 'torch.optim.lr_scheduler:LambdaLR' requires 'lr_lambda', a function, which a YAML value cannot be; build the scheduler in a function of your own module (def my_schedule(optimizer, epochs): return LambdaLR(optimizer, lambda epoch: 0.95 ** epoch)) and give its import path (package.module:Name) as name",
        run={"scheduler": {"name": "torch.optim.lr_scheduler:LambdaLR"}},
    ),
    Case(
        "schedule-lr-not-positive",
        "a schedule argument that would take the lr to 0 or below (onecycle max_lr, cosine eta_min, step gamma)",
        "error: run.yaml: scheduler: max_lr must be above 0 (the peak lr of the cycle), got 0; give the peak, or drop max_lr for a cycle that peaks at optimizer.lr",
        run={"scheduler": {"name": "onecycle", "max_lr": 0.0}},
    ),
    Case(
        "lr-under-one-cycle-max-lr",
        "a searched optimizer.lr that a onecycle schedule's max_lr overrides",
        "error: optimize.yaml: search_space.optimizer.lr: has no effect: the 'onecycle' schedule sets max_lr: 0.05, and runs every trial's lr from max_lr / div_factor up to max_lr and down whatever optimizer.lr is; search scheduler.max_lr instead, or drop max_lr from the scheduler section (the cycle then peaks at optimizer.lr)",
        run={"scheduler": {"name": "onecycle", "max_lr": 0.05}},
    ),
    Case(
        "cuda-flag-missing",
        "--device cuda without CUDA",
        "error: --device cuda: CUDA is not available here; give --device auto or cpu",
        args=("--device", "cuda"),
        needs_no_cuda=True,
    ),
    Case(
        "layer-option-without-layers",
        "a searched dropout, activation or norm of an MLP with no hidden layer",
        "error: optimize.yaml: search_space.model.dropout: has no effect: the MLP has no hidden layer (model.hidden: []), and dropout applies after each hidden layer, so every trial would train the same model; give it a hidden layer (model.hidden: [64]), or search model.hidden, or drop model.dropout",
        run={"model": {"name": "mlp", "hidden": []}},
        optimize={"search_space": {"model.dropout": {"type": "float", "low": 0.0, "high": 0.5}}},
    ),
    Case(
        "storage-is-a-folder",
        "--storage naming the folder the studies go in, not a file",
        "error: --storage: 'sqlite:///studies': 'studies' is a folder, not a SQLite file; give a file in it, sqlite:///studies/NAME.db (NAME: the study's name)",
        args=("--storage", "sqlite:///studies"),
    ),
    Case(
        "storage-is-a-folder-dry-run",
        "--dry-run with a --storage that names a folder (the run would refuse it)",
        "error: --storage: 'sqlite:///studies': 'studies' is a folder, not a SQLite file; give a file in it, sqlite:///studies/NAME.db (NAME: the study's name)",
        args=("--storage", "sqlite:///studies", "--dry-run"),
    ),
    Case(
        "journal-storage-is-a-folder",
        "a command that reads a study from a journal --storage that names a folder",
        "error: --storage: 'journal:studies': 'studies' is a folder, not a journal file; give a file in it, journal:studies/NAME.log (NAME: the study's name)",
        command=("trials", "--study-name", "tiny", "--storage", "journal:studies"),
    ),
    Case(
        "storage-file-damaged",
        "a study file that starts as a SQLite database and cannot be read as one (a copy cut short)",
        "error: --storage: 'sqlite:///studies/copy.db': 'studies/copy.db' is a damaged SQLite file (file is not a database): restore it from a backup, or copy it again whole (a copy cut short reads so); nothing was written to it",
        command=("trials", "--study-name", "tiny", "--storage", "sqlite:///studies/copy.db"),
        files={"studies/copy.db": "SQLite format 3\x00cut short by a copy that stopped here\n"},
    ),
    Case(
        "sqlite-not-a-database-dry-run",
        "--dry-run with a sqlite: storage naming a file that is not a SQLite database (the run would refuse it)",
        "error: --storage: 'sqlite:///run.yaml': 'run.yaml' is not a SQLite database; hpotool would add Optuna's tables to it, so give a new file or one hpotool wrote (nothing was written to this one)",
        args=("--storage", "sqlite:///run.yaml", "--dry-run"),
    ),
    Case(
        "malformed-storage-dry-run",
        "--dry-run with a storage that is not a URL (the run would refuse it)",
        "error: --storage: 'studies/tiny.db' is not a storage URL; for the SQLite file studies/tiny.db, write sqlite:///studies/tiny.db",
        args=("--storage", "studies/tiny.db", "--dry-run"),
    ),
    Case(
        "sqlite-locked",
        "a study whose SQLite file another process keeps locked (a sqlite3 shell or database browser inside a "
        "transaction) for longer than the busy timeout",
        "error: storage 'sqlite:///studies/tiny.db': another process kept '<cwd>/studies/tiny.db' locked for over 1 s, so this command could not write to it (database is locked). Wait for that process to finish, or end it or its open transaction (a sqlite3 shell, a database browser; fuser <cwd>/studies/tiny.db lists the processes that have the file open), then run the same command to resume: it marks any trial left RUNNING FAIL ('worker died') and runs its parameters again",
        args=("--n-trials", "2"),
        existing_study=True,
        lock_held=True,
        env={"HPOTOOL_SQLITE_BUSY_TIMEOUT": "1"},
    ),
    Case(
        "sqlite-read-only-url",
        "optimize with a SQLite URL in read-only mode (?mode=ro), which the read commands take",
        "error: --storage: 'sqlite:///studies/tiny.db?mode=ro' asks for read-only access (?mode=ro), and a study run writes its trials to it; drop ?mode=ro (commands that only read a study, such as trials, report and export-best, take it as it is)",
        args=("--storage", "sqlite:///studies/tiny.db?mode=ro"),
        existing_study=True,
    ),
    Case(
        "storage-url-port-not-a-number",
        "a server storage URL whose port is not a number (a placeholder left in)",
        "error: --storage: 'mysql+pymysql://user@host:port/db' is malformed: its port 'port' is not a number; write it as mysql+pymysql://user:password@host:3306/db",
        args=("--storage", "mysql+pymysql://user@host:port/db"),
    ),
    Case(
        "storage-url-ipv6-unclosed",
        "a server storage URL whose IPv6 address lacks its closing ]",
        "error: optimize.yaml: storage: 'postgresql+psycopg://[::1' is malformed: the IPv6 address in '[::1' lacks its closing ]; write it as postgresql+psycopg://user:password@[::1]:5432/db",
        optimize_text=_optimize_text(storage="postgresql+psycopg://[::1"),
    ),
    Case(
        "train-from-best-seeds-past-torch",
        "train-from-best --seeds taking the runs' seeds past 2**64 - 1, the largest seed torch takes",
        "error: --seeds 3: trial 0's runs would take seeds 18446744073709551614 to 18446744073709551616, past 18446744073709551615, the largest torch.manual_seed takes; give --seeds 2 at most",
        command=("train-from-best", "--study-name", "tiny", "--seeds", "3"),
        existing_study=True,
        existing_run={"seed": 18446744073709551614},
    ),
    Case(
        "unknown-tracking-key",
        "a misspelt key in a section that may be left out (tracking)",
        "error: optimize.yaml: tracking.mlflow: unknown key 'tracking_url' (did you mean 'tracking_uri'?); valid keys: tracking_uri, experiment",
        optimize={"tracking": {"mlflow": {"tracking_url": "sqlite:///mlflow.db"}}},
    ),
    Case(
        "constraint-as-a-mapping",
        "a constraint written as a mapping (- n_params: <= 20000, YAML reading the colon) instead of its text",
        "error: optimize.yaml: constraints: {n_params: \"<= 20000\"} is not a constraint; write each as the text METRIC <= NUMBER (or <, >=, >): 'n_params <= 20000'",
        optimize={"constraints": [{"n_params": "<= 20000"}]},
    ),
    Case(
        "constraints-not-a-list",
        "constraints given as one text instead of a list",
        'error: optimize.yaml: constraints: expected a list, got the text "n_params <= 20000"; write constraints: ["n_params <= 20000"], a list even of one',
        optimize={"constraints": "n_params <= 20000"},
    ),
    Case(
        "optimize-number-yaml-boolean",
        "n_trials: yes in the optimize config (YAML reads it as true, which ran one trial)",
        "error: optimize.yaml: n_trials: Input should be a valid integer, got true; YAML reads an unquoted yes, no, on, off, true or false as a boolean: write a number",
        optimize={"n_trials": True},
    ),
    Case(
        "timeout-with-a-unit",
        "timeout: 1h30m (a duration with units; the timeout is in seconds)",
        "error: optimize.yaml: timeout: '1h30m' is not a number of seconds; write timeout: 5400 (1h30m in seconds)",
        optimize={"timeout": "1h30m"},
    ),
    Case(
        "timeout-option-with-a-unit",
        "--timeout 2h (a duration with a unit; the option is in seconds)",
        "error: --timeout: '2h' is not a number of seconds; give --timeout 7200 (2h in seconds)",
        args=("--timeout", "2h"),
    ),
    Case(
        "trainer-function-misspelt",
        "trainer: {functon: ...}, whose section takes keys of the user's own, so the typo is no unknown key",
        "error: run.yaml: trainer.function: required key is missing; 'functon' is given: did you mean 'function'?",
        run={"trainer": {"functon": "mypkg.train:fit"}},
    ),
    Case(
        "control-character",
        "a control character (a NUL) in a config",
        "error: optimize.yaml: line 1, column 17: the control character #x0000, which YAML does not allow; delete it (an editor that shows invisible characters finds it)",
        optimize_text="study_name: tiny\x00\n",
    ),
    Case(
        "second-yaml-document",
        "both configs in one file, split by --- (as Kubernetes manifests are)",
        "error: optimize.yaml: line 2, column 1: a second YAML document starts here ('---'), and a config file holds one; give the run config and the optimize config as two files, or delete this line and what follows it",
        optimize_text="study_name: tiny\n---\nproject: tiny\n",
    ),
    Case(
        "enqueue-from-itself",
        "--enqueue-from naming the study the run resumes (its best trials are in it already: nothing is queued)",
        "error: --enqueue-from tiny: is the study this run runs, in the same storage: its best trials are in it already, and a warm start queues another study's; give another study's name, or drop --enqueue-from",
        args=("--enqueue-from", "tiny"),
        existing_study=True,
    ),
    Case(
        "pruner-argument-flat",
        "a pruner's argument beside its name, flat as a run config section takes its component's, not under kwargs",
        "error: optimize.yaml: pruner: unknown key 'n_startup_trials'; the pruner's own arguments go under kwargs: write pruner: {name: median, kwargs: {n_startup_trials: 2}}",
        optimize={"pruner": {"name": "median", "n_startup_trials": 2}},
    ),
    Case(
        "sampler-null",
        "sampler: null (pruner: null is no pruning; a study cannot sample without a sampler)",
        "error: optimize.yaml: sampler: expected a mapping, got null; leave sampler out for its default ({name: tpe}), or write sampler: {name: ...}",
        optimize_text=_optimize_text(sampler=None),
    ),
    Case(
        "top-without-enqueue-from",
        "--top without --enqueue-from, whose best trials it counts (it was ignored without a word)",
        "error: --top 3: counts the best trials --enqueue-from queues, and no --enqueue-from is given; give --enqueue-from STUDY with it, or drop --top",
        args=("--top", "3"),
    ),
    Case(
        "enqueue-from-storage-without-enqueue-from",
        "--enqueue-from-storage without --enqueue-from, whose study it locates (it was ignored without a word)",
        "error: --enqueue-from-storage: is where --enqueue-from's study is stored, and no --enqueue-from is given; give --enqueue-from STUDY with it, or drop --enqueue-from-storage",
        args=("--enqueue-from-storage", "sqlite:///studies/old.db"),
    ),
    Case(
        "trainer-key-without-trainer",
        "trainer.epochs searched (as Lightning names its Trainer's settings) where the run config has no trainer: section",
        "error: optimize.yaml: search_space.trainer.epochs: the run config has no such key; did you mean 'epochs'? (hpotool's Trainer takes it at the top of the run config)",
        optimize={"search_space": {"trainer.epochs": {"type": "int", "low": 1, "high": 3}}},
    ),
    Case(
        "storage-folder-is-a-file",
        "a storage URL whose folder is a file (a file named data where sqlite:///data/tiny.db needs a folder)",
        "error: --storage: 'sqlite:///data/tiny.db': cannot open it: [Errno 17] File exists: 'data'; '<cwd>/data' is a file, not a folder, so the storage's folder cannot be made there: move the file away, or give a path in another folder",
        args=("--storage", "sqlite:///data/tiny.db"),
        files={"data": "notes\n"},
    ),
    Case(
        "users-loss-raises-in-training",
        "a loss function of the user's whose own code raises in the training step; before: 'check that the loss "
        "fits this classification task', as if a built-in loss had been given outputs of the wrong shape",
        "error: run.yaml: training: one step on 8 samples failed: KeyError: 'margin' (at my_losses.py:5 in hinge); the loss my_losses:hinge raised it in its own code: check that code",
        run={"loss": {"name": "my_losses:hinge"}},
        files={
            "my_losses.py": "import torch\n\n\ndef hinge(pred, target, settings={}):\n"
            "    return torch.relu(settings['margin'] - pred).mean()\n"
        },
    ),
    Case(
        "regression-negative-noise",
        "a negative noise for the built-in regression dataset (the standard deviation of the noise on y); before: "
        "it ran, drawing the same data as the positive value",
        "error: run.yaml: data: loading 'regression' failed: noise is the standard deviation of the noise added to y, so it must be 0 or more (0: none), got -0.5; give data.noise 0 or more",
        run={"data": {"name": "regression", "noise": -0.5}},
        optimize={"metric": "val_loss", "direction": "minimize"},
    ),
    Case(
        "searched-project",
        "project in the search space: it only names the folder runs are saved under, which no trial reads; "
        "before: it ran, every trial the same run",
        "error: optimize.yaml: search_space.project: has no effect: project only names the folder train and train-from-best save runs under (runs/<project>/), which no trial reads, so every trial would train the same run; set project in the run config, and drop search_space.project",
        optimize={"search_space": {"project": {"type": "categorical", "choices": ["a", "b"]}}},
    ),
    Case(
        "wilcoxon-too-few-epochs",
        "the wilcoxon pruner on trials of too few epochs for its test ever to reach p_threshold; before: the "
        "study ran unpruned, saying nothing",
        "error: optimize.yaml: pruner: 'wilcoxon' prunes nothing here: trials train at most 4 epochs (steps 0 to 3), and the pruner is asked after steps 0 to 2, the last epoch's trial completing, so it tests 3 values at most, and its signed-rank test on 3 gives p = 0.125 at the least (each worse than the best trial's), not below p_threshold 0.1; train 5 epochs or more, or give p_threshold above 0.125, or use median",
        run={"epochs": 4},
        optimize={"pruner": {"name": "wilcoxon"}},
    ),
    Case(
        "constraint-given-twice",
        "one constraint given twice, in two spellings; before: it ran, Optuna warning at trial 0 that the second "
        "was ignored",
        "error: optimize.yaml: constraints: 'n_params <= 20000' and 'n_params<=2e4' are both 'n_params <= 20000'; give each constraint once",
        optimize={"constraints": ["n_params <= 20000", "n_params<=2e4"]},
    ),
    Case(
        "threshold-on-the-better-side",
        "the threshold pruner's upper on a maximized metric (it prunes the trials that rise above it); before: "
        "the best trials were pruned, without a word",
        "error: optimize.yaml: pruner.kwargs.upper: 0.3 prunes a trial once its val_accuracy rises above it, and the study maximizes val_accuracy: it would stop the best trials; write lower: 0.3 to stop those that stay below it",
        optimize={"pruner": {"name": "threshold", "kwargs": {"upper": 0.3}}},
    ),
    Case(
        "float-range-overflows",
        "a float range wider than a float can hold (high - low overflows); before: 'sampler: 'tpe' cannot sample "
        "this study (one objective): OverflowError: Range exceeds valid bounds', naming neither key nor fix",
        "error: optimize.yaml: search_space.optimizer.lr: the range [-1e+308, 1e+308] is wider than a float can hold (high - low overflows), so no sampler can draw from it; narrow it",
        optimize={"search_space": {"optimizer.lr": {"type": "float", "low": -1.0e308, "high": 1.0e308}}},
    ),
    Case(
        "prune-audit-against-storage-without-against",
        "prune-audit --against-storage without --against, whose study it locates (it was ignored without a word)",
        "error: --against-storage: is where --against's study is stored, and no --against is given; give --against STUDY with it, or drop --against-storage",
        command=("prune-audit", "--study-name", "tiny", "--against-storage", "sqlite:///studies/nop.db"),
        existing_study=True,
    ),
    Case(
        "prune-audit-top-k-without-against",
        "prune-audit --top-k without --against, whose missed winners it sets the bar of (it was ignored without a word)",
        "error: --top-k 3: sets the bar of the pruned trials that would have made the top-k, which only --against counts, and no --against is given; give --against STUDY with it, or drop --top-k",
        command=("prune-audit", "--study-name", "tiny", "--top-k", "3"),
        existing_study=True,
    ),
    Case(
        "report-out-trailing-slash",
        "report --out ending in / (a folder that does not exist yet); before: it wrote the report as a file named reports",
        "error: --out reports/: ends in /, which names a folder, and this command writes a file there; give a file in it, e.g. --out reports/report.html",
        command=("report", "--study-name", "tiny", "--out", "reports/"),
        existing_study=True,
    ),
    Case(
        "refine-out-trailing-slash",
        "refine --out ending in / (a folder that does not exist yet); before: it wrote the stage's config as a file named stage2, and stage2.run.yaml beside it",
        "error: --out stage2/: ends in /, which names a folder, and this command writes a file there; give a file in it, e.g. --out stage2/stage2.yaml",
        command=("refine", "--study-name", "tiny", "--out", "stage2/"),
        existing_study=True,
    ),
    Case(
        "export-best-out-file-name",
        "export-best --out with a file's suffix (best.yaml, for the best run config); before: it made a folder named best.yaml holding the four files",
        "error: --out best.yaml: ends in .yaml, as a file does, and this command writes a folder of files (best_run.yaml, best_params.json, trials.csv, trials.json); give a folder, e.g. --out best",
        command=("export-best", "--study-name", "tiny", "--out", "best.yaml"),
        existing_study=True,
    ),
    Case(
        "train-out-file-name",
        "train --out with a file's suffix (model.pt); before: it made a folder named model.pt holding model.pt and the rest",
        "error: --out model.pt: ends in .pt, as a file does, and this command writes a folder of files (model.pt, metrics.json, history.csv, config.yaml); give a folder, e.g. --out model",
        command=("train", "-r", "run.yaml", "--out", "model.pt"),
    ),
    Case(
        "storage-trailing-slash",
        "--storage whose path ends in / (a folder not made yet); before: the study went into a SQLite file named newfold",
        "error: --storage: 'sqlite:///studies/newfold/': 'studies/newfold' names a folder (it ends in /), not a SQLite file; give a file in it, sqlite:///studies/newfold/NAME.db (NAME: the study's name)",
        args=("--storage", "sqlite:///studies/newfold/"),
    ),
    Case(
        "journal-trailing-slash",
        "a journal storage whose path ends in / (a folder not made yet); before: the journal became a file named logs",
        "error: --storage: 'journal:logs/': 'logs' names a folder (it ends in /), not a journal file; give a file in it, journal:logs/NAME.log (NAME: the study's name)",
        args=("--storage", "journal:logs/"),
    ),
    Case(
        "constraint-never-met",
        "a constraint no value of its metric can meet (an accuracy above 1); before: the whole study ran, no "
        "trial feasible",
        "error: optimize.yaml: constraints: 'val_accuracy > 1' can never be met: val_accuracy lies in [0, 1], so no trial would be feasible; give a bound inside that range, or drop the constraint",
        optimize={"constraints": ["val_accuracy > 1"]},
    ),
    Case(
        "pruner-kwarg-quoted-number",
        "a quoted number for a pruner argument that takes a number or a text (successive halving's min_resource, "
        "whose text is auto); before: Optuna's \"The value of `min_resource` is 1, but must be either "
        "`min_resource` >= 1 or 'auto'\"",
        "error: optimize.yaml: pruner.kwargs: pruner 'successive_halving' argument 'min_resource' is the text \"1\": write 1 without quotes, a number",
        optimize={"pruner": {"name": "successive_halving", "kwargs": {"min_resource": "1"}}},
    ),
    Case(
        "sampler-optuna-spelling",
        "Optuna's name for a sampler (NSGAIIISampler's nsgaiii) as a short name; before: \"did you mean 'nsga2'?\", "
        "NSGA-II for NSGA-III",
        "error: optimize.yaml: sampler.name: unknown sampler 'nsgaiii'; Optuna's NSGA-III sampler is nsga3 here: write name: nsga3",
        optimize={"sampler": {"name": "nsgaiii"}},
    ),
    Case(
        "grid-log-float",
        'the grid sampler over a log-scaled float; before: told to give it a step, which log refuses ("step and '
        'log cannot be used together")',
        "error: optimize.yaml: sampler: the grid sampler needs a finite grid: search_space.optimizer.lr: a log-scaled float has no grid, and takes no step with log: true; search it as a categorical of the values to try: type: categorical, choices: [0.001, 0.01, 0.1]",
        optimize={"sampler": {"name": "grid"}},
    ),
    Case(
        "warmup-beside-fewest-epochs",
        "a searched warm-up that reaches the fewest searched epochs; before: each was tried beside the other's "
        "run config value, and every trial drawing both failed, trial 0 among them",
        "error: optimize.yaml: search_space.scheduler.warmup_epochs: reaches 1 where search_space.epochs goes down to 1: a trial drawing both would fail, its warm-up not shorter than the run; search warmup_epochs up to 0, or epochs from 2",
        run={"scheduler": {"name": "cosine", "warmup_epochs": 0}},
        optimize={
            "search_space": {
                "epochs": {"type": "int", "low": 1, "high": 2},
                "scheduler.warmup_epochs": {"type": "int", "low": 0, "high": 1},
            }
        },
    ),
    Case(
        "grid-value-twice",
        "a grid given in the sampler's kwargs that lists a value twice; before: each point holding it ran twice",
        "error: optimize.yaml: sampler.kwargs.search_space.model.hidden.0: 16 is listed twice, so the grid would train each of its points with it twice; drop one",
        optimize={
            "sampler": {
                "name": "grid",
                "kwargs": {"search_space": {"optimizer.lr": [0.001, 0.01], "model.hidden.0": [16, 32, 16]}},
            }
        },
    ),
    Case(
        "model-path-names-a-setting",
        "a model path naming a module's setting (WIDTH = 42), not a class or function; before: 'model: TypeError: "
        "'int' object is not callable' (an optimizer: \"AttributeError: 'int' object has no attribute "
        "'__module__'\")",
        "error: run.yaml: model: model 'model_settings:WIDTH' is an int (42), not a class or function that builds the model; name the class or function, such as package.module:Net, and set its arguments under model:",
        run={"model": {"name": "model_settings:WIDTH"}},
        files={"model_settings.py": "WIDTH = 42\n"},
    ),
    Case(
        "trainer-async-function",
        "an async def training function; before: it failed trial 0 with 'returned coroutine' and Python's "
        "'coroutine was never awaited' warning",
        "error: run.yaml: trainer.function: async_fit:fit is an async function (async def), whose call returns a coroutine, not the dict of metrics; make it a plain def that runs its loop with asyncio.run(...) and returns the metrics",
        run={"trainer": {"function": "async_fit:fit"}},
        files={"async_fit.py": "async def fit(config, report):\n    return {'val_loss': 1.0}\n"},
    ),
    Case(
        "import-changes-the-working-folder",
        "a module that calls os.chdir as it is imported (to read its data by relative paths); before: "
        "'optimize.yaml: no such file', hpotool's own paths moved with it",
        "error: run.yaml: model: cannot import 'moving_nets:Net': importing 'moving_nets' changed the working folder to <cwd>/sub (os.chdir at moving_nets.py:3), which moves every relative path hpotool reads and writes (the configs, studies/, runs/); remove it, or move it under if __name__ == \"__main__\":, and build the module's own paths from __file__ (Path(__file__).parent / 'data')",
        run={"model": {"name": "moving_nets:Net"}},
        files={
            "sub/keep.txt": "",
            "moving_nets.py": "import os\n\nos.chdir('sub')\n\n\nclass Net:\n    pass\n",
        },
    ),
    Case(
        "maximize-without-metric",
        "direction: maximize with the metric left out (its line deleted): the default val_loss; before: 'use "
        "minimize', which would have searched val_loss rather than the metric meant",
        "error: optimize.yaml: direction: maximize, and metric is not given, so it would search for the largest val_loss (the default metric), the worst model; name the metric to maximize (metric: val_accuracy, or your trainer's), or use minimize",
        optimize={"metric": None, "direction": "maximize"},
    ),
    Case(
        "key-read-as-boolean",
        'a key YAML reads as a boolean (yes, on), a number or null; before: "1: Keys should be strings, got '
        'true", the key shown as 1 and no fix',
        "error: run.yaml: the key true is read as a boolean (YAML reads yes, no, on, off, true and false so), where keys are names; quote it ('true': ...) or write the name",
        run_text="device: cpu\nyes: 3\n",
    ),
    Case(
        "storage-empty",
        'storage: "" (a templated ${DB_URL} left empty); before: taken as null, the study went into the local '
        "SQLite file instead of the shared server",
        "error: optimize.yaml: storage: is empty; give a storage URL (sqlite:///path.db, postgresql+psycopg://..., ...), or write storage: null (or leave it out) for sqlite:///studies/<study_name>.db",
        optimize_text=_optimize_text(storage=""),
    ),
    Case(
        "scheduler-returns-optimizer",
        "a scheduler factory that returns the optimizer it is given; before: accepted (it has a step()), and each "
        "epoch stepped the optimizer a second time",
        "error: run.yaml: scheduler: scheduler 'tests.helpers:the_optimizer_back' returned the optimizer (Adam), not a learning-rate schedule, so each epoch would step the optimizer a second time; return a schedule built on it (return torch.optim.lr_scheduler.StepLR(optimizer, step_size=10)), or set scheduler: {name: none} for a constant learning rate",
        run={"scheduler": {"name": "tests.helpers:the_optimizer_back"}},
    ),
    Case(
        "grid-several-continuous-floats",
        "the grid sampler over two floats without a finite set of values; before: only the first was named, and "
        "the user fixed and reran once per parameter",
        "error: optimize.yaml: sampler: the grid sampler needs a finite grid, and 2 searched parameters have none: search_space.model.dropout: a float without step: give it a step; search_space.optimizer.lr: a log-scaled float (it takes no step with log: true): search it as a categorical of the values to try: type: categorical, choices: [0.001, 0.01, 0.1]",
        optimize={
            "sampler": {"name": "grid"},
            "search_space": {
                LR: {"type": "float", "low": 1e-3, "high": 1e-1, "log": True},
                "model.dropout": {"type": "float", "low": 0.0, "high": 0.5},
            },
        },
    ),
    Case(
        "data-returns-dict",
        "a dataset function returning a dict of its arrays; before: 'got dict', with no way to return them",
        'error: run.yaml: data: \'dict_data:arrays\' returned data hpotool cannot train on: a dataset function must return hpotool.datasets.Dataset, an (x, y) pair or a torch Dataset of (x, y) samples, got a dict (keys "x", "y"); return its inputs and targets as an (x, y) pair: return (d["x"], d["y"])',
        run={"data": {"name": "dict_data:arrays"}},
        files={
            "dict_data.py": "import torch\n\n\ndef arrays():\n"
            '    return {"x": torch.zeros(40, 4), "y": torch.arange(40) % 2}\n'
        },
    ),
    Case(
        "misspelt-data-section-key",
        "data.val_fractio, a misspelt key of the data section; before: \"data 'digits' takes no argument "
        "'val_fractio' (did you mean 'val_fraction'?); it takes: no arguments\", as if val_fraction were an argument",
        "error: run.yaml: data: 'val_fractio' is neither an argument of data 'digits' nor one of the section's own keys (did you mean 'val_fraction'?); data 'digits' takes no arguments",
        run={"data": {"name": "digits", "val_fractio": 0.2}},
    ),
    Case(
        "condition-empty",
        "when: {}, a condition whose test was deleted; before: accepted, the parameter searched in every trial",
        "error: optimize.yaml: search_space.optimizer.lr.when: is empty ({}), which holds in every trial; give the condition (when: {optimizer.name: sgd}), or remove when: to search the parameter in every trial",
        optimize={"search_space": {"optimizer.lr": {"type": "float", "low": 0.001, "high": 0.1, "when": {}}}},
    ),
    Case(
        "log-given-a-number",
        "log: 1, a number for a boolean key; before: read as true (and log: 0 as false), where a number key "
        "refuses true and false",
        "error: optimize.yaml: search_space.optimizer.lr.log: Input should be true or false, got 1 (a number); write true, as earlier hpotool read it (a study created with it stored true, and resumes with it)",
        optimize={"search_space": {"optimizer.lr": {"type": "float", "low": 0.001, "high": 0.1, "log": 1}}},
    ),
    Case(
        "epochs-past-32-bits",
        "epochs: 1000000000000000000000000000000; before: accepted (Optuna's steps are 32-bit on PostgreSQL and MySQL)",
        "error: run.yaml: epochs: must be at most 2147483647 (2**31 - 1: Optuna stores each epoch as a 32-bit step on PostgreSQL and MySQL), got 1000000000000000000000000000000",
        run={"epochs": 10**30},
    ),
    Case(
        "sampler-count-negative",
        "a negative sampler count (tpe's n_startup_trials: -5); before: accepted, TPE took it as 0",
        "error: optimize.yaml: sampler.kwargs.n_startup_trials: is a count, so it cannot be negative, got -5; give 0 or more",
        optimize={"sampler": {"name": "tpe", "kwargs": {"n_startup_trials": -5}}},
    ),
    Case(
        "val-fraction-nan",
        "val_fraction: .nan; before: 'Input should be less than 1, got .nan', as if a smaller .nan would do",
        "error: run.yaml: data.val_fraction: got .nan, YAML's not-a-number, which is no value hpotool can use: write a number",
        run_text="device: cpu\ndata: {name: digits, val_fraction: .nan}\n",
    ),
    Case(
        "refine-no-trial-under-current-base",
        "refine of a study resumed with --allow-changed-config (epochs 2 -> 3) before any trial ran under the "
        "changed run config; before: a stage built from the earlier trials alone",
        "error: study 'tiny': no trial that ran under its current run config completed; refine builds the next stage from those alone, as the 2 trials before --allow-changed-config changed it would not reproduce their values under it: run more trials first (hpotool optimize --study-name tiny --n-trials 12, say)",
        command=("refine", "--study-name", "tiny", "--out", "stage2.yaml"),
        existing_study=True,
        existing_trials=2,
        resumed_run={"epochs": 3},
    ),
    Case(
        "saved-run-unreadable",
        "train-from-best --out again where a saved run's metrics.json was edited into another shape (a list); "
        "before: a traceback (and a YAML error in its config.yaml, a message of three lines)",
        "error: final/trial0-seed0: holds a saved run that cannot be read (metrics.json: not the object a run saves, with its metrics, epochs_run, seconds and device); move it away, or choose another --out",
        command=("train-from-best", "--study-name", "tiny", "--out", "final"),
        existing_study=True,
        files={
            "final/trial0-seed0/model.pt": "weights\n",
            "final/trial0-seed0/history.csv": "epoch\n",
            "final/trial0-seed0/metrics.json": "[]\n",
            "final/trial0-seed0/config.yaml": "epochs: 1\n",
        },
    ),
    Case(
        "saved-run-config-misspelt-key",
        "train-from-best --out again where a saved run's config.yaml has a key misspelt by hand (batchsize); "
        "before: 'already holds a saved run of another config (batch_size: null saved, 32 now)'",
        "error: final/trial0-seed0/config.yaml: unknown key 'batchsize' (did you mean 'batch_size'?); correct it, or choose another --out",
        command=("train-from-best", "--study-name", "tiny", "--out", "final"),
        existing_study=True,
        files={
            "final/trial0-seed0/model.pt": "weights\n",
            "final/trial0-seed0/history.csv": "epoch\n",
            "final/trial0-seed0/metrics.json": '{"metrics": {}, "epochs_run": 2, "seconds": 1.0, "device": "cpu"}\n',
            "final/trial0-seed0/config.yaml": "epochs: 2\nbatchsize: 32\n",
        },
    ),
    Case(
        "model-init-fails-on-the-data-shape",
        "a model of the user's whose constructor unpacks input_shape as C, H, W, given images without a channel; "
        "before: only 'not enough values to unpack (expected 3, got 2)', not the shapes hpotool passed",
        "error: run.yaml: model: ValueError: not enough values to unpack (expected 3, got 2) (at channel_net.py:7 in __init__); hpotool passed it out_features=3, input_shape=(8, 8), from the data",
        run={"data": {"name": "channel_data:load"}, "model": {"name": "channel_net:Net"}},
        files={
            "channel_data.py": "import torch\n\n\ndef load():\n"
            "    g = torch.Generator().manual_seed(0)\n"
            "    return torch.randn(60, 8, 8, generator=g), torch.arange(60) % 3\n",
            "channel_net.py": "from torch import nn\n\n\nclass Net(nn.Module):\n"
            "    def __init__(self, input_shape, out_features):\n"
            "        super().__init__()\n"
            "        c, h, w = input_shape\n"
            "        self.f = nn.Sequential(nn.Conv2d(c, 4, 3, padding=1), nn.Flatten(), nn.Linear(4 * h * w, out_features))\n\n"
            "    def forward(self, x):\n        return self.f(x)\n",
        },
    ),
    Case(
        "trainer-named-with-name",
        "a training function given as trainer: {name: ...}, as the other sections name their component; before: "
        "'required key is missing' alone",
        "error: run.yaml: trainer.function: required key is missing; the trainer section names its function with function:, not name: (write function: mypkg.train:fit)",
        run={"trainer": {"name": "mypkg.train:fit"}},
    ),
    Case(
        "pfl-max-epochs-not-the-epochs",
        "pfl's max_epochs, an Optuna script's, short of the epochs the trials train; before: pfl predicted at "
        "its step 1 and pruned nothing from there on, the study running unpruned without a word",
        "error: optimize.yaml: pruner.kwargs.max_epochs: 2 is not the 5 epochs the trials train: pfl would predict each trial's value at step 1, and prune nothing from that step on, where trials train to step 4; drop max_epochs (pfl reads the epochs from the run config), or write max_epochs: 5",
        run={"epochs": 5},
        optimize={"pruner": {"name": "pfl", "kwargs": {"n_warmup_steps": 1, "max_epochs": 2}}},
    ),
    Case(
        "condition-no-choice-meets",
        "a condition on a categorical that none of its choices meets, with no near choice to name (an order "
        "test on text); before: the line said so and named no fix",
        "error: optimize.yaml: search_space.optimizer.lr: the condition model.activation: {ge: true} never holds for model.activation's values, so it would never be set (its choices: [relu, tanh]); change or drop the condition",
        optimize={
            "search_space": {
                "model.activation": {"type": "categorical", "choices": ["relu", "tanh"]},
                "optimizer.lr": {
                    "type": "float",
                    "low": 1.0e-3,
                    "high": 1.0e-1,
                    "log": True,
                    "when": {"model.activation": {"ge": True}},
                },
            }
        },
    ),
    Case(
        "cmaes-x0-without-a-parameter",
        "CMA-ES's start point x0 without a value for a searched int parameter; before: trial 0 ran, and every "
        "later trial failed in its sample_relative ('Parameter configuration must contain all distributions')",
        "error: optimize.yaml: sampler.kwargs.x0: gives no value for model.hidden.0, which CMA-ES samples from its start point (every int and float parameter without a when:), so every trial after the first would fail; add model.hidden.0: VALUE to x0, or leave x0 out (CMA-ES then starts at the middle of each range)",
        optimize={"sampler": {"name": "cmaes", "kwargs": {"x0": {"optimizer.lr": 0.01}}}},
    ),
    Case(
        "cmaes-x0-outside-the-range",
        "CMA-ES's start point x0 outside a parameter's range (a stage refine narrowed); before: trial 0 ran, "
        "and every later trial failed in its sample_relative ('invalid bounds')",
        "error: optimize.yaml: sampler.kwargs.x0.optimizer.lr: 0.5 lies outside search_space.optimizer.lr ([0.001, 0.1], log), where CMA-ES starts; give a value within it, or widen search_space.optimizer.lr",
        optimize={
            "sampler": {"name": "cmaes", "kwargs": {"x0": {"optimizer.lr": 0.5, "model.hidden.0": 16}}}
        },
    ),
    Case(
        "model-width-fixed-in-its-code",
        "a model of the user's whose last layer has 10 outputs written in its code, asking for no out_features, "
        "on data of 3 classes; before: the shapes alone, not that hpotool passes the width to a model that asks",
        "error: run.yaml: model: its output for 8 samples has shape (8, 10); this classification task needs (8, 3): (batch, classes) logits; fixed_head:Net takes no out_features, so its output width is fixed in its code: take out_features in its constructor for its last layer, which hpotool sets to 3 from the data",
        run={"data": {"name": "three_classes:load"}, "model": {"name": "fixed_head:Net"}},
        files={
            "three_classes.py": "import torch\n\n\ndef load():\n"
            "    g = torch.Generator().manual_seed(0)\n"
            "    return torch.randn(60, 4, generator=g), torch.arange(60) % 3\n",
            "fixed_head.py": "from torch import nn\n\n\nclass Net(nn.Module):\n"
            "    def __init__(self, in_features):\n"
            "        super().__init__()\n"
            "        self.f = nn.Linear(in_features, 10)\n\n"
            "    def forward(self, x):\n        return self.f(x)\n",
        },
    ),
    Case(
        "model-list-in-quotes",
        "the mlp's hidden widths written as a list in quotes, hidden: \"[16, 8]\"; before: 'Input should be a "
        "valid integer, got [16, 8]', which read as if a list were refused",
        "error: run.yaml: model: model 'mlp' argument 'hidden': Input should be a valid integer, got [16, 8]; that is the text \"[16, 8]\": write [16, 8] without quotes, a list",
        run_text='device: cpu\nmodel: {name: mlp, hidden: "[16, 8]"}\n',
    ),
    Case(
        "trainer-requires-a-run-config-key",
        "a training function that requires epochs, a key the run config has; before: told to set epochs under "
        "trainer:, where --epochs and the final runs' epochs never reach it",
        "error: run.yaml: trainer.function: epoch_fit:fit requires 'epochs', which hpotool cannot pass: it passes config, run_config, report and the trainer: keys the function names (by name); take run_config and read run_config.epochs (the run config's epochs: key, which --epochs also sets), or give it a default",
        run={"trainer": {"function": "epoch_fit:fit"}},
        files={"epoch_fit.py": "def fit(config, report, epochs):\n    return {'val_accuracy': 0.5}\n"},
    ),
    Case(
        "search-space-all-commented-out",
        "a search space whose every parameter is commented out (YAML reads the section as null); before: "
        "'expected a mapping, got null', where search_space: {} said it was empty",
        "error: optimize.yaml: search_space: the search space is empty (nothing under search_space:, or every line commented out); add at least one parameter, such as optimizer.lr: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}",
        optimize_text="study_name: tiny\nsearch_space:\n  # optimizer.lr: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}\n",
    ),
    Case(
        "search-space-missing",
        "an optimize config without a search_space: section; before: 'required key is missing' alone",
        "error: optimize.yaml: search_space: required key is missing; add search_space: with the parameters to search under it, such as optimizer.lr: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}",
        optimize={"search_space": None},
    ),
    Case(
        "config-in-the-folder-above",
        "a relative config path run from a subfolder of the folder it was written for; before: 'no such file' "
        "alone",
        "error: run.yaml: no such file here; ../run.yaml exists: run hpotool from there (cd ..)",
        run_in="sub",
    ),
    Case(
        "config-path-from-inside-its-folder",
        "-r configs/run.yaml run from inside configs/; before: 'no such file' alone",
        "error: configs/my_run.yaml: no such file here; ../configs/my_run.yaml exists: run hpotool from there (cd ..)",
        command=(
            "optimize",
            "--run-config",
            "configs/my_run.yaml",
            "--optimize-config",
            "configs/my_opt.yaml",
        ),
        files={
            "configs/my_run.yaml": yaml.safe_dump(RUN, sort_keys=False),
            "configs/my_opt.yaml": _optimize_text(),
        },
        run_in="configs",
    ),
    Case(
        "config-in-a-subfolder",
        "-r my_run.yaml where the file is in configs/; before: 'no such file' alone",
        "error: my_run.yaml: no such file here; configs/my_run.yaml exists: give configs/my_run.yaml",
        command=("optimize", "--run-config", "my_run.yaml", "--optimize-config", "configs/my_opt.yaml"),
        files={
            "configs/my_run.yaml": yaml.safe_dump(RUN, sort_keys=False),
            "configs/my_opt.yaml": _optimize_text(),
        },
    ),
    Case(
        "choices-without-brackets",
        "categorical choices written without the brackets of a list (choices: relu, tanh); before: 'Input should "
        "be a valid list, got relu, tanh', without what to write",
        'error: optimize.yaml: search_space.model.activation.choices: expected a list, got the text "relu, tanh"; write choices: [relu, tanh]',
        optimize_text="study_name: tiny\nsearch_space:\n  model.activation:\n    type: categorical\n    choices: relu, tanh\n",
    ),
    Case(
        "choices-one-number",
        "categorical choices given as one number instead of a list; before: 'Input should be a valid list, got 64'",
        "error: optimize.yaml: search_space.batch_size.choices: expected a list, got 64; write choices: [64]",
        optimize={"search_space": {"batch_size": {"type": "categorical", "choices": 64}}},
    ),
    Case(
        "direction-british-spelling",
        "direction: minimise, the British spelling; before: 'Input should be minimize or maximize, got minimise', "
        "with no did-you-mean",
        "error: optimize.yaml: direction: Input should be minimize or maximize, got minimise (did you mean 'minimize'?)",
        optimize={"direction": "minimise"},
    ),
    Case(
        "choices-blank",
        "categorical choices left blank as a text (choices: \"\"); before: 'write choices: []', a list refused in "
        "turn (at least 1 item)",
        'error: optimize.yaml: search_space.model.activation.choices: expected a list, got the text ""; write the values to choose from as a list: [a, b]',
        optimize_text='study_name: tiny\nsearch_space:\n  model.activation:\n    type: categorical\n    choices: ""\n',
    ),
    Case(
        "top-level-list",
        "a config written as a YAML list (each line starting with '- '); before: 'expected a YAML mapping at the "
        "top level, got list', Python's word, without what to write",
        "error: run.yaml: holds a list, where a config is key: value lines (a YAML mapping); write each setting as key: value at the start of its line (epochs: 10)",
        run_text="- epochs: 2\n- batch_size: 16\n",
    ),
    Case(
        "tracking-server-not-running",
        "tracking.mlflow.tracking_uri names an MLflow server that is not running; before: MLflow's exception "
        "alone, naming neither the optimize config nor what to do",
        "error: optimize.yaml: tracking.mlflow: cannot use experiment 'tiny' at 'http://127.0.0.1:1': MlflowException: API request to http://127.0.0.1:1/api/2.0/mlflow/experiments/get-by-name failed with exception HTTPConnectionPool(host='127.0.0.1', port=1): Max retries exceeded with url: /api/2.0/mlflow/experiments/get-by-name?experiment_name=tiny (Caused by NewConnectionError(\"HTTPConnection(host='127.0.0.1', port=1): Failed to establish a new connection: [Errno 111] Connection refused\")); is an MLflow server running at 127.0.0.1:1? start one (mlflow server --host 127.0.0.1 --port 1), or correct tracking.mlflow.tracking_uri",
        optimize={"tracking": {"mlflow": {"tracking_uri": "http://127.0.0.1:1"}}},
    ),
    Case(
        "data-path-misspelt",
        "a data file misspelt in the data section (path: data/point.csv beside data/points.csv); before: only the "
        "dataset function's 'data/point.csv not found', naming neither the key nor the file meant",
        "error: run.yaml: data: loading 'tests.helpers:read_csv' failed: FileNotFoundError: data/point.csv not found. (at <repo>/tests/helpers.py:89 in read_csv); data.path: data/point.csv does not exist (did you mean data/points.csv?)",
        run={"data": {"name": "tests.helpers:read_csv", "path": "data/point.csv"}},
        files={"data/points.csv": "".join(f"{i},{i % 3},{i / 10}\n" for i in range(40))},
    ),
    Case(
        "data-path-exported-config-from-another-folder",
        "an exported best_run.yaml trained from a folder beside its project, whose data file (path: data/points.csv) "
        "the project holds; before: only the dataset function's 'data/points.csv not found'",
        "error: ../proj/studies/best/best_run.yaml: data: loading 'tests.helpers:read_csv' failed: FileNotFoundError: data/points.csv not found. (at <repo>/tests/helpers.py:89 in read_csv); data.path: a relative path is read from the folder hpotool runs in, and <cwd>/proj holds data/points.csv: run hpotool from there (cd ../proj), or write path: <cwd>/proj/data/points.csv",
        files={
            "proj/data/points.csv": "".join(f"{i},{i % 3},{i / 10}\n" for i in range(40)),
            "proj/studies/best/best_run.yaml": "data: {name: 'tests.helpers:read_csv', path: data/points.csv}\n"
            "device: cpu\nepochs: 1\n",
        },
        command=("train", "-r", "../proj/studies/best/best_run.yaml"),
        run_in="other",
    ),
    Case(
        "search-key-of-a-kwargs-model",
        "a searched argument of a user's model that takes **kwargs (passing them on), which the run config's model "
        "section does not set; before: 'the run config has no such key; did you mean 'model.name'?', without the fix",
        "error: optimize.yaml: search_space.model.depth: model 'kwargs_nets:Net' takes **kwargs, whose keys hpotool cannot read from its signature, and the run config's model: section sets no depth; add depth: <its default> under model: in the run config, and the search may set it",
        run={"model": {"name": "kwargs_nets:Net"}},
        optimize={"search_space": {"model.depth": {"type": "int", "low": 1, "high": 2}}},
        files={
            "kwargs_nets.py": "import torch\n\n\n"
            "def layers(in_features, out_features, depth=1):\n"
            "    return [torch.nn.Linear(in_features, out_features) for _ in range(depth)][-1:]\n\n\n"
            "class Net(torch.nn.Module):\n"
            "    def __init__(self, in_features, out_features, **kwargs):\n"
            "        super().__init__()\n"
            "        self.f = torch.nn.Sequential(*layers(in_features, out_features, **kwargs))\n\n"
            "    def forward(self, x):\n"
            "        return self.f(x.flatten(1))\n",
        },
    ),
    Case(
        "config-file-misspelt",
        "a config file's name misspelt on the command line (-o optimize.yml for optimize.yaml); before: 'no such "
        "file; check the path', with the file meant beside it",
        "error: optimize.yml: no such file; did you mean optimize.yaml?",
        command=("optimize", "-r", "run.yaml", "-o", "optimize.yml"),
    ),
    Case(
        "data-name-a-csv-file",
        "a CSV file given as the dataset's name (data: {name: data/train.csv}); before: 'data/train' is a file "
        "path, not an import path; write data.train:csv', as if the file were a module",
        "error: run.yaml: data: cannot import 'data/train.csv': it names a .csv file, not an import path (package.module:Name); hpotool reads a file through a function of yours: write one that loads it and returns (x, y), and give its import path with the file as its argument (name: mypkg.data:load, path: data/train.csv)",
        run={"data": {"name": "data/train.csv"}},
        files={"data/train.csv": "".join(f"{i},{i % 3}\n" for i in range(20))},
    ),
    Case(
        "model-name-a-weights-file",
        "a saved model's file given as the model's name (model: {name: model.pt}); before: 'No module named "
        "'model'; ... run hpotool from the folder that holds model/ (or model.py)'",
        "error: run.yaml: model: cannot import 'model.pt': it names a .pt file, not an import path (package.module:Name); give the class that builds the model (name: mypkg.nets:Net), which hpotool trains from its start (hpotool.saved.load_model loads a model.pt that hpotool saved)",
        run={"model": {"name": "model.pt"}},
    ),
    Case(
        "trainer-function-under-another-key",
        "a trainer section naming its function under a key of the user's choosing (fn:); before: only "
        "'trainer.function: required key is missing'",
        "error: run.yaml: trainer.function: required key is missing; the trainer section names its function with function:, not fn: (write function: mypkg.train:fit)",
        run={"trainer": {"fn": "mypkg.train:fit"}},
    ),
    Case(
        "trainer-without-function",
        "a trainer section with the function's own keys but no function:; before: only 'trainer.function: "
        "required key is missing'",
        "error: run.yaml: trainer.function: required key is missing; add function: with your training function's import path (function: mypkg.train:fit)",
        run={"trainer": {"width": 32}},
    ),
    Case(
        "unreachable-mysql-storage",
        "a MySQL storage server that does not answer; before: '(pymysql.err.OperationalError) (2003, \"Can't "
        "connect to MySQL server ...\")', the driver's class name and error tuple around the server's words",
        "error: --storage: 'mysql+pymysql://root@127.0.0.1:1/test': cannot open it: Can't connect to MySQL server on '127.0.0.1' ([Errno 111] Connection refused); is the server running on 127.0.0.1:1? check the host and port in the URL",
        args=("--storage", "mysql+pymysql://root@127.0.0.1:1/test"),
    ),
    Case(
        "study-name-a-series-suffix-changed",
        "a study name not in the storage that differs from one there in the short word telling a series apart "
        "(walkb_k9 beside walkb_fs); before: '(did you mean 'walkb_fs'?)', a guess at another study; now the "
        "studies there alone",
        "error: no study 'walkb_k9' in sqlite:///studies/walkb_fs.db; studies there: walkb_fs",
        plain_study="walkb_fs",
        command=("trials", "--study-name", "walkb_k9", "--storage", "sqlite:///studies/walkb_fs.db"),
    ),
    Case(
        "option-value-missing",
        "an option given with nothing after it (hpotool optimize --run-config); before: '(see hpotool --help)', "
        "the root command's help, which does not list the option",
        "error: Option '--run-config' requires an argument (see hpotool optimize --help)",
        command=("optimize", "--run-config"),
    ),
    Case(
        "storage-value-missing",
        "--storage given last with no URL after it (hpotool trials --study-name tiny --storage); before: '(see "
        "hpotool --help)', the root command's help",
        "error: Option '--storage' requires an argument (see hpotool trials --help)",
        command=("trials", "--study-name", "tiny", "--storage"),
    ),
    Case(
        "unreachable-redis-storage",
        "a Redis storage server that does not answer; before: redis-py's 'Error 111 connecting to 127.0.0.1:1. "
        "Connection refused.' in the line",
        "error: --storage: 'redis://127.0.0.1:1': cannot open it: connection to 127.0.0.1:1 failed: Connection refused; is the server running on 127.0.0.1:1? check the host and port in the URL",
        args=("--storage", "redis://127.0.0.1:1"),
    ),
    Case(
        "redis-socket-missing",
        "a unix:// Redis socket that is not there; before: 'Error 2 connecting to PATH. No such file or "
        "directory.' and no hint",
        "error: --storage: 'unix:///nonexistent/hpotool-redis.sock': cannot open it: connection to /nonexistent/hpotool-redis.sock failed: No such file or directory; is the Redis server running, listening on the socket /nonexistent/hpotool-redis.sock? check the socket's path in the URL (the server's unixsocket setting)",
        command=("studies", "--storage", "unix:///nonexistent/hpotool-redis.sock"),
    ),
    Case(
        "redis-db-query-name",
        "a Redis URL's ?db= naming the study, as a database name; before: redis-py's \"Invalid value for 'db' in "
        'connection URL."',
        "error: optimize.yaml: storage: 'redis://127.0.0.1:1?db=hpo': a Redis URL's ?db= is a database number (0, 1, ...), not a name; to keep this study's journal apart write redis://127.0.0.1:1?prefix=hpo",
        optimize_text=_optimize_text(storage="redis://127.0.0.1:1?db=hpo"),
    ),
    Case(
        "redis-negative-database",
        "a Redis URL's database number below 0; before: '?prefix=-1' was the advice",
        "error: --storage: 'redis://127.0.0.1:1/-1': a Redis URL's database number counts from 0 (16 databases unless the server is configured otherwise), not -1; write redis://127.0.0.1:1/0",
        args=("--storage", "redis://127.0.0.1:1/-1"),
    ),
    Case(
        "redis-query-value",
        "a Redis URL's query value redis-py cannot read; before: 'is the server running?', its name holding "
        "'timeout'",
        "error: --storage: 'redis://127.0.0.1:1?socket_timeout=abc': cannot open it: Invalid value for 'socket_timeout' in connection URL; correct or leave out ?socket_timeout= in the URL: redis-py could not read its value",
        args=("--storage", "redis://127.0.0.1:1?socket_timeout=abc"),
    ),
    Case(
        "redis-url-to-another-server",
        "a Redis URL whose port is another server's (PostgreSQL's); before: 'Connection closed by server.' "
        "alone",
        "error: --storage: 'redis://127.0.0.1:5432': cannot open it: Connection closed by server; is the server on 127.0.0.1:5432 a Redis server (its default port is 6379)? check the host and port in the URL, or, for a Redis that takes TLS connections alone, rediss://127.0.0.1:5432",
        command=("studies", "--storage", "redis://127.0.0.1:5432"),
        server="postgres",
    ),
    Case(
        "data-a-dataframe-alone",
        "a dataset function returning one pandas DataFrame, its target a column of it; before: 'got DataFrame, "
        "which has __len__ and __getitem__ but is no torch.utils.data.Dataset: make its class a subclass of "
        "torch.utils.data.Dataset', which no DataFrame can",
        'error: run.yaml: data: \'table_data:load\' returned data hpotool cannot train on: a dataset function must return hpotool.datasets.Dataset, an (x, y) pair or a torch Dataset of (x, y) samples, got a pandas DataFrame alone (columns "age", "bmi", "target"); return its inputs and its target as an (x, y) pair: return df.drop(columns=["target"]), df["target"]',
        run={"data": {"name": "table_data:load"}},
        files={
            "table_data.py": "import pandas as pd\n\n\ndef load():\n"
            "    return pd.DataFrame({'age': [float(i) for i in range(20)], 'bmi': [1.0] * 20, 'target': [0.5] * 20})\n"
        },
    ),
    Case(
        "model-input-size-fixed-in-its-code",
        "a model of the user's whose first layer takes 7 features written in its code, asking for no in_features, "
        "on data of 4 features; before: torch's 'mat1 and mat2 shapes cannot be multiplied' alone, not the data's "
        "size nor that hpotool passes it to a model that asks",
        "error: run.yaml: model: RuntimeError: mat1 and mat2 shapes cannot be multiplied (8x4 and 7x16) (at fixed_input.py:10 in forward); each sample of the data's x has 4 features, and the model's linear layer that met them takes 7: fixed_input:Net takes no in_features, so its input size is fixed in its code: take in_features as an argument for its first layer (nn.Linear(in_features, ...)), which hpotool sets to 4 from the data",
        run={"data": {"name": "four_features:load"}, "model": {"name": "fixed_input:Net"}},
        optimize={"search_space": {LR: {"type": "float", "low": 1e-3, "high": 1e-1, "log": True}}},
        files={
            "four_features.py": "import torch\n\n\ndef load():\n"
            "    g = torch.Generator().manual_seed(0)\n"
            "    return torch.randn(60, 4, generator=g), torch.arange(60) % 3\n",
            "fixed_input.py": "from torch import nn\n\n\nclass Net(nn.Module):\n"
            "    def __init__(self, out_features):\n"
            "        super().__init__()\n"
            "        self.f = nn.Sequential(nn.Linear(7, 16), nn.ReLU(), nn.Linear(16, out_features))\n\n"
            "    def forward(self, x):\n        return self.f(x)\n",
        },
    ),
    Case(
        "loss-function-of-the-prediction-alone",
        "a loss function of the user's taking the prediction alone, def penalty(pred); before: read as a "
        "factory, 'requires 'pred', which the config does not set; add pred: ... under loss:'",
        "error: run.yaml: loss: loss 'one_input_loss:penalty' takes 'pred' alone; hpotool calls a loss function with the model's output and the targets, loss(prediction, target): take both (def penalty(pred, target))",
        run={"loss": {"name": "one_input_loss:penalty"}},
        files={"one_input_loss.py": "def penalty(pred):\n    return (pred**2).mean()\n"},
    ),
    Case(
        "model-a-bare-class-name-of-the-project",
        "a model given by the bare name of a class the current folder's project defines (mylab/models.py's Net); "
        "before: 'unknown model 'Net'; choose one of: mlp, cnn, or give an import path', not which one",
        "error: run.yaml: model: unknown model 'Net'; did you mean bare_lab.models:Net? (your own code is named by its import path, package.module:Name; built-in: mlp, cnn)",
        run={"model": {"name": "Net"}},
        files={
            "bare_lab/__init__.py": "",
            "bare_lab/models.py": "from torch import nn\n\n\nclass Net(nn.Module):\n    pass\n",
        },
    ),
    Case(
        "import-distribution-name",
        "an import path that starts with the name pip installs a project by (cat-lab, as in pip install -e .), "
        "not the package Python imports (catlab); before: 'run hpotool from the folder that holds cat-lab/'",
        "error: run.yaml: model: cannot import 'cat-lab.nets:Net': No module named 'cat-lab'; cat-lab names the distribution cat-lab (pip's name for it), which Python imports as catlab: write catlab.nets:Net",
        run={"model": {"name": "cat-lab.nets:Net"}},
        files={
            "catlab/__init__.py": "",
            "catlab/nets.py": "Net = None\n",
            "cat_lab-0.1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: cat-lab\nVersion: 0.1.0\n",
            "cat_lab-0.1.0.dist-info/top_level.txt": "catlab\n",
        },
    ),
    Case(
        "import-file-path-of-a-src-layout",
        "the path of a src/ layout's module written where its import path goes; before: 'write "
        "src.srclay.nets:Net ... run from the folder that holds src/', which breaks the package's own imports",
        "error: run.yaml: model: cannot import 'src/srclay/nets.py:Net': 'src/srclay/nets.py' is a file path, not an import path; write srclay.nets:Net (the file is in a package, named from the folder above it) and run hpotool from src (or add it to PYTHONPATH, or pip install -e your project)",
        run={"model": {"name": "src/srclay/nets.py:Net"}},
        files={"src/srclay/__init__.py": "", "src/srclay/nets.py": "Net = None\n"},
    ),
    Case(
        "data-file-other-rows-than-the-study",
        "a study joined by a machine whose data section reads its copy of the data file from another path, and "
        "that copy holds other rows than the data the study was created with (at the same path as well); "
        "before: the path refused as another experiment, and at the same path it ran, mixing trials on other "
        "data into the study",
        "error: run.yaml: data (rows_csv:load, path: copy/rows.csv): the data read here (60 samples, sha256 e16b6c8d3300d7b8) is not the data study 'tiny' was created with (60 samples, sha256 7b28bda81839be01): what it reads holds other rows here (another copy or version of the file, or a dataset function drawing its data at random: seed it); copy the study's data here so every machine trains on the same, use a new study_name, or pass --allow-changed-config to go on anyway",
        existing_study=True,
        existing_run={"data": {"name": "rows_csv:load", "path": "data/rows.csv"}},
        existing_files={"rows_csv.py": ROWS_DATA, "data/rows.csv": _rows_csv()},
        run={"data": {"name": "rows_csv:load", "path": "copy/rows.csv"}},
        files={"copy/rows.csv": _rows_csv(flip=5)},
    ),
    Case(
        "categorical-numbers-in-quotes",
        "a categorical's numbers all written in quotes for a key that takes numbers; before: accepted, the study "
        'storing, showing and exporting the text "32"',
        'error: optimize.yaml: search_space.batch_size: the choice "16" is text (in quotes), which the study would store and export as text, while batch_size takes the number 16; write choices: [16, 32], without quotes',
        optimize={"search_space": {"batch_size": {"type": "categorical", "choices": ["16", "32"]}}},
    ),
    Case(
        "categorical-whole-float-for-whole-numbers",
        "a categorical choice written 32.0 for a key that takes whole numbers; before: accepted, the study "
        "storing and exporting 32.0",
        "error: optimize.yaml: search_space.batch_size: the choice 32.0 is a float, which the study would store and export as 32.0, while batch_size takes whole numbers; write choices: [16, 32]",
        optimize={"search_space": {"batch_size": {"type": "categorical", "choices": [16, 32.0]}}},
    ),
    Case(
        "enqueue-number-in-quotes",
        "an enqueued value written as a number in quotes; before: 'lies outside its search space', which "
        "holds it",
        'error: optimize.yaml: enqueue.0: optimizer.lr: "1e-2" is text (in quotes), where optimizer.lr\'s values are numbers; write 0.01 without quotes',
        # PyYAML writes the text 1e-2 without quotes, which hpotool reads as a number: the quotes by hand
        optimize_text=_optimize_text(enqueue=[{"optimizer.lr": 0.01}]).replace(
            "- optimizer.lr: 0.01\n", '- optimizer.lr: "1e-2"\n'
        ),
    ),
    Case(
        "list-item-searched-above-the-item-before-it",
        "model.hidden.2 written above model.hidden.1 past the run config's list of one; before: 'search its "
        "items in order (model.hidden.1 adds one)', where model.hidden.1 was searched",
        "error: optimize.yaml: search_space.model.hidden.2: model.hidden.1 is searched below it, but a trial sets model.hidden's items in the order written, and the run config's list has 1; move model.hidden.1 above model.hidden.2",
        # written as is: the files the catalogue writes sort their keys, which would put model.hidden.1 first
        optimize_text=_optimize_text(search_space=None).replace(
            "search_space: null\n",
            "search_space:\n  model.hidden.2: {type: int, low: 8, high: 32}\n"
            "  model.hidden.1: {type: int, low: 8, high: 32}\n",
        ),
    ),
    Case(
        "parameter-type-as-optuna-suggest-method",
        "a parameter type spelt as Optuna's method, suggest_float; before: 'choose one of: float, int, "
        "categorical', no word that it is type: float",
        "error: optimize.yaml: search_space.optimizer.lr: unknown type 'suggest_float'; write type: float (Optuna's suggest_float)",
        optimize=_space(type="suggest_float", low=1e-3, high=1e-1),
    ),
    Case(
        "fixed-param-off-the-step",
        "PartialFixedSampler's fixed_params with a value within the parameter's range but between two of its "
        "steps; before: 'lies outside search_space.model.hidden.0 ([8, 32], step 8)', which holds 8 and 16 on "
        "either side of it",
        "error: optimize.yaml: sampler.kwargs.fixed_params.model.hidden.0: 12 is not on the step 8 from 8: write 8 or 16",
        optimize={
            "sampler": {
                "name": "optuna.samplers.PartialFixedSampler",
                "kwargs": {"fixed_params": {"model.hidden.0": 12}, "base_sampler": "random"},
            }
        },
    ),
    Case(
        "categorical-float-and-quoted-for-whole-numbers",
        "choices for a whole-number key with a float and a number in quotes; before: two refusals, the quotes "
        "('write choices: [1.0, 2]'), then the float 1.0",
        'error: optimize.yaml: search_space.batch_size: choices mix numbers and the text "2", and 1.0 is a float among whole numbers; write choices: [1, 2], without quotes',
        optimize={"search_space": {"batch_size": {"type": "categorical", "choices": [1.0, "2"]}}},
    ),
    Case(
        "grid-values-not-taken",
        "a grid given in the sampler's kwargs with several values its parameter does not take; before: "
        "refused one value at a time, each 'lies outside' the range",
        "error: optimize.yaml: sampler.kwargs.search_space.model.hidden.0: 12 is not on the step 8 from 8: write 8 or 16; 40 lies outside search_space.model.hidden.0 ([8, 32], step 8); give a value within it, widen search_space.model.hidden.0, or drop it",
        optimize={
            "sampler": {
                "name": "grid",
                "kwargs": {"search_space": {"model.hidden.0": [8, 12, 40], LR: [0.01]}},
            }
        },
    ),
    Case(
        "condition-value-off-the-step",
        "a condition's in: list naming a value within a stepped range but between two of its steps; before: "
        "'is not one of model.hidden.0's values ([8, 32], step 8) ...; drop it from in:, or widen "
        "model.hidden.0's range', which holds it",
        "error: optimize.yaml: search_space.optimizer.lr.when.model.hidden.0: 12 is not on the step 8 from 8: write 8 or 16",
        optimize={
            "search_space": {
                "model.hidden.0": {"type": "int", "low": 8, "high": 32, "step": 8},
                LR: {"type": "float", "low": 1e-3, "high": 1e-1, "when": {"model.hidden.0": {"in": [8, 12]}}},
            }
        },
    ),
    Case(
        "import-misspelt-top-level-package",
        "an import path whose top-level package is misspelt (typlab), the package typolab beside the configs; "
        "before: the did-you-mean, then 'run hpotool from the folder that holds typlab/ ..., add that folder "
        "to PYTHONPATH, or install your project', which does not fix the typo",
        "error: run.yaml: model: cannot import 'typlab.nets:Net': No module named 'typlab' (did you mean 'typolab'?); typolab is in the current folder: write typolab.nets:Net",
        run={"model": {"name": "typlab.nets:Net"}},
        files={"typolab/__init__.py": "", "typolab/nets.py": "Net = None\n"},
    ),
    Case(
        "config-folder-misspelt",
        "a config path whose folder is misspelt on the command line (-o confgs/stage2.yaml for "
        "configs/stage2.yaml); before: 'no such file; check the path', the folder meant one letter away",
        "error: confgs/stage2.yaml: no such file; did you mean configs/stage2.yaml?",
        command=("optimize", "-r", "run.yaml", "-o", "confgs/stage2.yaml"),
        files={"configs/stage2.yaml": "study_name: tiny\n"},
    ),
    Case(
        "fixed-params-wrong-for-two-keys",
        "PartialFixedSampler's fixed_params wrong for two searched parameters (a whole number in quotes, a value "
        'outside its range); before: one refusal per key, a rerun each, and \'"16.0" lies outside '
        "search_space.model.hidden.0 ([8, 32], step 8)', which holds 16",
        'error: optimize.yaml: sampler.kwargs.fixed_params.model.hidden.0: "16.0" is text (in quotes), where model.hidden.0\'s values are numbers; write 16 without quotes; sampler.kwargs.fixed_params.optimizer.lr: 0.5 lies outside search_space.optimizer.lr ([0.001, 0.1], log); give a value within it, or widen search_space.optimizer.lr',
        optimize={
            "sampler": {
                "name": "optuna.samplers.PartialFixedSampler",
                "kwargs": {"fixed_params": {"model.hidden.0": "16.0", LR: 0.5}, "base_sampler": "random"},
            }
        },
    ),
    Case(
        "choices-whole-number-text-and-floats",
        "an int key's categorical choices a whole number in quotes and a whole float, no int among them "
        "(batch_size: [\"16.0\", 32.0]); before: 'write choices: [16.0, 32.0]', refused next as floats where "
        "batch_size takes whole numbers",
        'error: optimize.yaml: search_space.batch_size: choices mix numbers and the text "16.0"; write choices: [16, 32], without quotes (whole numbers: a key of whole numbers needs them, and one of floats takes them too)',
        optimize={"search_space": {"batch_size": {"type": "categorical", "choices": ["16.0", 32.0]}}},
    ),
    Case(
        "search-space-two-mistakes",
        "a search space with two keys wrong, a misspelt path and a range written high to low; before: the range "
        "alone, and the path on the next run",
        "error: optimize.yaml: search_space.optimizer.lrr: optimizer 'adam' takes no argument 'lrr' (did you mean 'optimizer.lr'?); it takes: lr, betas, eps, weight_decay, amsgrad, foreach, maximize, capturable, differentiable, fused, decoupled_weight_decay\n"
        "error: optimize.yaml: search_space.model.dropout: low must be at most high, got low: 0.5, high: 0.0; swap them (low: 0.0, high: 0.5)",
        # written as is: the files the catalogue writes sort their keys, and the lines follow the file's order
        optimize_text=_optimize_text(
            search_space={
                "optimizer.lrr": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True},
                "model.dropout": {"type": "float", "low": 0.5, "high": 0.0},
            }
        ),
    ),
    Case(
        "search-space-three-mistakes",
        "a search space with three keys wrong against the run config: a value it refuses, a misspelt path, a "
        "list item past the end of its list; before: one per run",
        "error: optimize.yaml: search_space.epochs: with epochs=0: epochs: must be 1 or more, got 0\n"
        "error: optimize.yaml: search_space.optimizer.lrr: optimizer 'adam' takes no argument 'lrr' (did you mean 'optimizer.lr'?); it takes: lr, betas, eps, weight_decay, amsgrad, foreach, maximize, capturable, differentiable, fused, decoupled_weight_decay\n"
        "error: optimize.yaml: search_space.model.hidden.2: no list item '2' in model.hidden (the list has 1); give model.hidden more items in the run config, or search its items in order (model.hidden.1 adds one)",
        optimize_text=_optimize_text(
            search_space={
                "epochs": {"type": "int", "low": 0, "high": 3},
                "optimizer.lrr": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True},
                "model.hidden.2": {"type": "int", "low": 8, "high": 32},
            }
        ),
    ),
]
