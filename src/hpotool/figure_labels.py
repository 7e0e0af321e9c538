"""Categorical values on the report's figures spelt as the YAML does (`relu`, `null`, `{lr: 0.001, name:
adam}`), as every table and line spells them (`format_param`): decoded by the search space the trial ran
under, so a text choice `"[1,2]"` is quoted, to read apart from the list choice [1, 2]. Each trial is
decoded by its own space: a study resumed after a text choice was made the list it spells stores both as
one text, which the figures draw apart (`labelled_trials`).

Optuna writes them as Python does: the slice with `repr` (`'relu'`, `None`), the parallel coordinates and
the contour with `str` (`None`, `True`). Each figure's labels are rewritten axis by axis, from the choices
of the parameter the axis shows, so a number on another axis is never taken for a choice. The timeline's
and the Pareto front's hover text, Optuna's JSON dump of each trial (`"optimizer": "{lr: 0.001, name:
adam}"`, `"loss.weight": null`), is written again with the parameters as the report's tables show them.
"""

from __future__ import annotations

import copy
import html
import json
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hpotool.fingerprint import config_of
from hpotool.formatting import format_choice, format_param, format_value
from hpotool.search_space import decode_params

if TYPE_CHECKING:
    import plotly.graph_objects as go
    from optuna.trial import FrozenTrial

Choices = Mapping[str, Sequence[tuple[Any, str]]]  # each choice as Optuna stores it, and as it is shown


@dataclass(frozen=True)
class Labelled:
    """The trials the figures draw, and how each categorical value they hold is shown."""

    trials: list[FrozenTrial]  # the trials, a value read two ways (below) given as its label
    choices: dict[str, list[tuple[Any, str]]]  # each categorical parameter's values, each with its label


def labelled_trials(trials: Sequence[FrozenTrial], study_attrs: Mapping[str, Any]) -> Labelled:
    """Each categorical parameter of `trials` with the choices their distributions give, each with its label
    as the tables show it (`format_param`), decoded by the search space the trial ran under (`study_attrs`:
    the study's user attrs, read once).

    A study whose search space changed may store one value that two spaces read apart: the text choice
    `"[1, 2]"` and the list choice [1, 2] are both stored as the text `[1, 2]`. Such a parameter's values
    come back as their labels, in copies of the trials, so the figures draw and label the two apart."""
    from optuna.distributions import CategoricalDistribution

    def shown(name: str, value: Any, space: Mapping[str, Any]) -> str:
        return format_param(decode_params({name: value}, space)[name], True)

    choices: dict[str, list[tuple[Any, str]]] = {}
    spaces = []  # each trial's search space
    for t in trials:
        opt = config_of(study_attrs, t.number, "optimize_config")
        space = opt.get("search_space") if opt is not None else None
        spaces.append(space if isinstance(space, dict) else {})
        for name, d in t.distributions.items():
            if isinstance(d, CategoricalDistribution):
                known = choices.setdefault(name, [])
                for c in d.choices:
                    label = shown(name, c, spaces[-1])
                    if not any(type(c) is type(k) and c == k and label == s for k, s in known):
                        known.append((c, label))
    twice = [n for n, known in choices.items() if len({(type(c), c) for c, _ in known}) < len(known)]
    if not twice:
        return Labelled(list(trials), choices)
    for name in twice:
        choices[name] = [(label, label) for label in dict.fromkeys(label for _, label in choices[name])]
    drawn = []
    for t, space in zip(trials, spaces, strict=True):
        params, dists = dict(t.params), dict(t.distributions)
        for name in twice:
            if isinstance(dists.get(name), CategoricalDistribution):
                # Optuna's slice takes the choices of the first trial with the parameter: each has all
                dists[name] = CategoricalDistribution([c for c, _ in choices[name]])
                if name in params:
                    params[name] = shown(name, params[name], space)
        drawn.append(copy.copy(t))
        drawn[-1].params, drawn[-1].distributions = params, dists
    return Labelled(drawn, choices)


def yaml_labels(
    figure: go.Figure,
    kind: str,
    choices: Choices,
    unset: Collection[str] = frozenset(),
    params: Collection[str] = frozenset(),
) -> go.Figure:
    """`figure` (a `kind` the report draws) with its categorical values relabelled, in place. For the
    parallel coordinates, `unset`: the parameters some trial it draws did not set (Optuna ticks them
    `None` there); `params`: every parameter it draws (a long name is written whole)."""
    if kind == "slice":
        _relabel_axes(figure, choices, repr)
    elif kind == "contour":
        _relabel_axes(figure, choices, str)
    elif kind == "parallel":
        _relabel_parallel(figure, choices, unset, params)
    return figure


NOT_SET = "not set"  # the parallel coordinates' tick for the trials without the parameter (Optuna: None)
_OPTUNA_MISSING = "None"  # ... which Optuna writes as a choice None is written, that choice as "None (value)"


def _labels(choices: Sequence[tuple[Any, str]], spelt: Callable[[Any], str]) -> dict[str, str]:
    return {spelt(c): shown for c, shown in choices}


def _relabel(values: Sequence[Any] | None, labels: Mapping[str, str]) -> list[Any] | None:
    if values is None:
        return None
    return [labels.get(v, v) if isinstance(v, str) else v for v in values]


def _relabel_axes(figure: go.Figure, choices: Choices, spelt: Callable[[Any], str]) -> None:
    """The slice and the contour: an axis titled with a categorical parameter, and the traces on it."""
    for key in figure.layout.to_plotly_json():
        if not key.startswith(("xaxis", "yaxis")):
            continue
        axis = figure.layout[key]
        name = axis.title.text
        if name not in choices:
            continue
        labels = _labels(choices[name], spelt)
        if axis.categoryarray is not None:
            axis.categoryarray = _relabel(axis.categoryarray, labels)
        letter, ref = key[0], key.replace("axis", "")
        for trace in figure.data:
            if (trace[f"{letter}axis"] or letter) == ref:
                trace[letter] = _relabel(trace[letter], labels)


def _relabel_parallel(
    figure: go.Figure, choices: Choices, unset: Collection[str], params: Collection[str]
) -> None:
    """The parallel coordinates: each dimension's tick labels are annotations at its index on the x axis,
    the dimension named by the parameter, shortened by Optuna to 17 characters and `...` from 20 on (two
    alike where names differ only further on: `model.hidden_size...` twice); such a name is written whole
    again, on lines broken at its dots. On the axis of a parameter some trials did not set, Optuna's
    first tick, `None`, stands for those trials (and a choice None is `None (value)`)."""
    axes = _parallel_axes(figure, {*choices, *unset, *params})
    if figure.layout.xaxis.ticktext:
        figure.layout.xaxis.ticktext = [
            _wrapped(axes[x]) if x in axes and axes[x] != label else label
            for x, label in zip(figure.layout.xaxis.tickvals, figure.layout.xaxis.ticktext, strict=False)
        ]
    marked: set[Any] = set()  # the dimensions whose missing tick has been relabelled
    for note in figure.layout.annotations:
        name = axes.get(note.x)
        if name is None or not isinstance(note.text, str):
            continue
        if name in unset and note.x not in marked and note.text == _OPTUNA_MISSING:
            marked.add(note.x)
            note.text = NOT_SET
        elif name in choices:
            note.text = _choice_tick(note.text, choices[name], name in unset)
    # Each trial's line hovers its values as `[dimension name, tick text]` pairs, the x-th of them on the
    # x-th axis: it read `True`, `None` where the axis read `true`, `not set` (and `model.hidden_size...`)
    for trace in figure.data:
        if trace.customdata is None or trace.x is None:
            continue
        pairs = []
        for x, pair in zip(trace.x, trace.customdata, strict=False):
            name = axes.get(x)
            if name is not None and len(pair) == 2 and isinstance(pair[1], str):
                text = pair[1]
                if name in unset and text == _OPTUNA_MISSING:
                    text = NOT_SET
                elif name in choices:
                    text = _choice_tick(text, choices[name], name in unset)
                pair = [name, text]
            pairs.append(pair)
        trace.customdata = pairs


def _choice_tick(text: str, choices: Sequence[tuple[Any, str]], unset: bool) -> str:
    """A parallel-coordinates tick text of a categorical parameter (Optuna's `str` of the choice; a choice
    None `None (value)` on an axis with trials that did not set it) as the tables spell the choice."""
    if unset and text == f"{_OPTUNA_MISSING} (value)":
        text = _OPTUNA_MISSING
    return _labels(choices, str).get(text, text)


def _parallel_axes(figure: go.Figure, params: Collection[str]) -> dict[Any, str]:
    """Each parallel-coordinates dimension's x position -> the parameter it shows. Optuna orders the
    parameters by name, so the k-th axis labelled alike shows the k-th of the parameters shortened so."""
    alike: dict[str, list[str]] = {}
    for name in sorted(params):
        alike.setdefault(_optuna_label(name), []).append(name)
    axes: dict[Any, str] = {}
    seen: dict[str, int] = {}
    dimensions = zip(figure.layout.xaxis.tickvals or (), figure.layout.xaxis.ticktext or (), strict=False)
    for x, label in list(dimensions)[1:]:  # the first is the objective (the report gives one target)
        names = alike.get(label, []) if isinstance(label, str) else []
        k = seen.get(label, 0)
        if k < len(names):
            axes[x], seen[label] = names[k], k + 1
    return axes


def _optuna_label(name: str) -> str:
    """The parallel coordinates' name for a dimension (`optuna.visualization._parallel_coordinate`)."""
    return name if len(name) < 20 else f"{name[:17]}..."


def _wrapped(name: str, width: int = 20) -> str:
    """A long dotted name on lines of at most `width` characters, broken after its dots where it can be
    (past three lines: the first, and `…` and the name's last characters), as plotly's text (`<br>` between lines, `<` and `&`
    escaped)."""
    lines = [""]
    for part in re.findall(r"[^.]*\.|[^.]+$", name):
        for piece in (part[i : i + width] for i in range(0, len(part), width)):
            if lines[-1] and len(lines[-1]) + len(piece) > width:
                lines.append("")
            lines[-1] += piece
    if len(lines) > 3:  # the start and the end, where dotted names that start alike differ
        lines = [lines[0], "…" + name[1 - width :]]
    return "<br>".join(html.escape(line, quote=False) for line in lines)


def yaml_hovertext(figure: go.Figure, params: Mapping[int, Mapping[str, str]]) -> go.Figure:
    """`figure` with each trial's hover text (Optuna's JSON dump of the trial) as YAML-like lines, showing
    `params[number]`, the trial's parameters as the report spells them, in place."""
    for trace in figure.data:
        if "text" in trace and isinstance(trace.text, tuple | list):
            trace.text = [_hovertext(text, params) for text in trace.text]
    return figure


def _hovertext(text: Any, params: Mapping[int, Mapping[str, str]]) -> Any:
    try:
        trial = json.loads(text.replace("<br>", "\n"))
    except (AttributeError, ValueError):  # not a trial's dump: left as it is
        return text
    if not isinstance(trial, dict) or trial.get("number") not in params:
        return text
    values = trial.get("values")
    shown = "null" if values is None else "[" + ", ".join(map(format_value, values)) + "]"
    lines = [f"number: {trial['number']}", f"values: {shown}", "params:"]
    lines += [f"  {name}: {value}" for name, value in params[trial["number"]].items()]
    if trial.get("user_attrs"):
        lines += ["user_attrs:", *(f"  {k}: {format_choice(v)}" for k, v in trial["user_attrs"].items())]
    return "<br>".join(lines)
