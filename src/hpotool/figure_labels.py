"""Categorical values on the report's figures spelt as the YAML does (`relu`, `null`, `{lr: 0.001, name:
adam}`), as every table and line spells them (`format_choice`).

Optuna writes them as Python does: the slice with `repr` (`'relu'`, `None`), the parallel coordinates and
the contour with `str` (`None`, `True`). Each figure's labels are rewritten axis by axis, from the choices
of the parameter the axis shows, so a number on another axis is never taken for a choice.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from hpotool.formatting import format_choice

if TYPE_CHECKING:
    import plotly.graph_objects as go
    from optuna.trial import FrozenTrial

Choices = Mapping[str, Sequence[Any]]


def categorical_choices(trials: Sequence[FrozenTrial]) -> dict[str, list[Any]]:
    """Each categorical parameter of `trials` with the choices its distribution gives."""
    from optuna.distributions import CategoricalDistribution

    return {
        name: list(d.choices)
        for t in trials
        for name, d in t.distributions.items()
        if isinstance(d, CategoricalDistribution)
    }


def yaml_labels(figure: go.Figure, kind: str, choices: Choices) -> go.Figure:
    """`figure` (a `kind` the report draws) with its categorical values relabelled, in place."""
    if kind == "slice":
        _relabel_axes(figure, choices, repr)
    elif kind == "contour":
        _relabel_axes(figure, choices, str)
    elif kind == "parallel":
        _relabel_parallel(figure, choices)
    return figure


def _labels(choices: Sequence[Any], spelt: Callable[[Any], str]) -> dict[str, str]:
    return {spelt(c): format_choice(c) for c in choices}


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


def _relabel_parallel(figure: go.Figure, choices: Choices) -> None:
    """The parallel coordinates: each dimension's tick labels are annotations at its index on the x axis."""
    names = dict(zip(figure.layout.xaxis.tickvals or (), figure.layout.xaxis.ticktext or (), strict=False))
    for note in figure.layout.annotations:
        name = names.get(note.x)
        if isinstance(name, str) and name in choices and isinstance(note.text, str):
            note.text = _labels(choices[name], str).get(note.text, note.text)
