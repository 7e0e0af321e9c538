"""A resumed study's search space against what its trials drew: Optuna's storage refuses a parameter whose
kind, log scale or choices changed, and its brute force one whose values changed, so every new trial would
fail; each such change is refused before trial 0, naming what to write instead."""

from __future__ import annotations

from shlex import quote
from typing import TYPE_CHECKING, Any

from hpotool.errors import HpoError

if TYPE_CHECKING:
    import optuna

    from hpotool.config import OptimizeConfig


def check_brute_force_space(study: optuna.Study, opt: OptimizeConfig, source: str | None = None) -> None:
    """Refuse another range or step for a parameter of a brute-force study whose trials drew it: Optuna's
    brute force builds its tree from every trial, and fails each new trial whose parameter's values differ
    from theirs ("search_space mismatch"), so the study stopped after `--max-failures` failed trials."""
    import optuna

    from hpotool.factories import sampler_class

    if not issubclass(sampler_class(opt.sampler.name), optuna.samplers.BruteForceSampler):
        return
    drawn = _drawn(study)
    for name, p in opt.search_space.items():
        if name in drawn and _distribution(p) != drawn[name]:
            raise HpoError(
                f"{_where(study, source)}search_space.{name} takes other values than the study's trials drew "
                f"it from ({_values(drawn[name])} there, {_values(_distribution(p))} here), and Optuna's brute "
                f"force fails every trial of such a study, not even with --allow-changed-config: keep "
                f"search_space.{name} as it was, or use a new study_name"
            )


def _where(study: optuna.Study, source: str | None) -> str:
    """What a line leads with: the optimize config to edit (where one was given) and the study."""
    return f"{source}: study {study.study_name!r}: " if source else f"study {study.study_name!r}: "


def _drawn(study: optuna.Study) -> dict[str, Any]:
    """Each parameter's distribution as the study's first trial to draw it stored it."""
    drawn: dict[str, Any] = {}
    for t in study.get_trials(deepcopy=False):
        for name, d in t.distributions.items():
            drawn.setdefault(name, d)
    return drawn


def _values(d: Any) -> str:
    """An int or float distribution's values in words: `8 to 32 step 8`."""
    step = getattr(d, "step", None)
    return f"{d.low:g} to {d.high:g}" + (f" step {step:g}" if step not in (None, 1) else "")


def _shown(d: Any) -> str:
    """An Optuna distribution in the words of the search space: `int`, `float log`, `categorical [a, b]`, each
    choice as the YAML spells it (null, 5.0, [128, 64])."""
    from optuna.distributions import CategoricalDistribution, IntDistribution

    from hpotool.formatting import format_choice

    if isinstance(d, CategoricalDistribution):
        return f"categorical [{', '.join(map(format_choice, d.choices))}]"
    return ("int" if isinstance(d, IntDistribution) else "float") + (" log" if d.log else "")


def _distribution(p: Any) -> Any:
    """The Optuna distribution `suggest` draws the parameter `p` from."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    from hpotool.search_space import CategoricalParam, FloatParam

    if isinstance(p, CategoricalParam):
        return CategoricalDistribution(p.labels)
    if isinstance(p, FloatParam):
        return FloatDistribution(p.low, p.high, log=p.log, step=p.step)
    return IntDistribution(p.low, p.high, log=p.log, step=p.step)


def check_distributions(
    study: optuna.Study, opt: OptimizeConfig, *, recorded: bool = False, source: str | None = None
) -> None:
    """Refuse a search space whose parameter changes its kind, log scale or choices from what the study's
    trials drew: Optuna's storage refuses such a suggestion, so every trial would fail. `recorded`: the
    study's stored configs are this space already (an older hpotool's --allow-changed-config recorded it)."""
    from optuna.distributions import check_distribution_compatibility

    drawn = _drawn(study)
    for name, p in opt.search_space.items():
        if name not in drawn:
            continue
        new = _distribution(p)
        try:
            check_distribution_compatibility(drawn[name], new)
        except ValueError:
            respelt = _respelt_section(name, p, drawn[name])
            if respelt is not None:
                raise HpoError(f"{_where(study, source)}{respelt}") from None
            if recorded:
                raise HpoError(
                    f"{_where(study, source)}search_space.{name} is {_shown(new)} in this config and in the "
                    f"study's stored configs, but its trials drew it as {_shown(drawn[name])}: an --allow-changed-"
                    f"config of an older hpotool recorded a change Optuna cannot make, and every trial would "
                    f"fail; put search_space.{name} back to {_shown(drawn[name])} (the configs before that change) "
                    f"and run again, which undoes it while no trial has finished under it, or use a new "
                    f"study_name (--enqueue-from {quote(study.study_name)} starts it from this study's best trials)"
                ) from None
            raise HpoError(
                f"{_where(study, source)}search_space.{name} is {_shown(new)} in this config, but the "
                f"study's trials drew it as {_shown(drawn[name])}; Optuna cannot change a parameter's kind, log "
                f"scale or choices within one study (every trial would fail), not even with "
                f"--allow-changed-config: keep it as it was, or use a new study_name"
            ) from None


def _respelt_section(name: str, p: Any, drawn: Any) -> str | None:
    """Where `name` is a section searched whole and its choices are the ones the study's trials drew but
    for spelling or order: a choice spelt otherwise that builds the same section as one they drew (`{name:
    adam, lr: 0.001}` and the stored `{name: adam}`), or the stored choices in another order. Optuna stores a
    choice by its spelling and compares the choices in order, so what to write is the stored list."""
    from optuna.distributions import CategoricalDistribution

    from hpotool.search_space import CategoricalParam, choice_label
    from hpotool.sections import SECTIONS, choice_named

    if name not in SECTIONS or not isinstance(drawn, CategoricalDistribution):
        return None
    stored = [c for c in map(_read_label, drawn.choices) if isinstance(c, dict)]
    if not stored:
        return None
    stored_param = CategoricalParam(type="categorical", choices=stored)
    as_stored = [choice_named(name, stored_param, c) for c in p.choices]
    respelt = [
        (i, c, twin)
        for i, (c, twin) in enumerate(zip(p.choices, as_stored, strict=True))
        if choice_label(c) not in drawn.choices and twin is not c and isinstance(twin, dict)
    ]
    labels = [choice_label(c) for c in as_stored]
    if sorted(map(str, labels)) != sorted(map(str, drawn.choices)) or len(set(map(str, labels))) != len(
        labels
    ):
        if not respelt:  # other choices too: Optuna's own line names both lists
            return None
        return _respelt_choice(name, respelt[:1], drawn.choices, as_stored)
    if labels == list(drawn.choices):
        return _respelt_choice(name, respelt, drawn.choices, as_stored)
    return _reordered(name, p.choices, respelt, drawn.choices, as_stored)


def _respelt_choice(name: str, respelt: list[Any], stored_labels: Any, as_stored: list[Any]) -> str:
    """The refusal of choices of the section `name` spelt otherwise than the stored ones they build
    (`respelt`: index, choice, stored twin), naming the first; with more than one, the stored list."""
    from hpotool.formatting import format_choice

    i, choice, twin = respelt[0]
    others = "" if len(respelt) == 1 else " (and " + ", ".join(f"choices.{j}" for j, *_ in respelt[1:]) + ")"
    return (
        f"search_space.{name}.choices.{i}: {format_choice(choice)} builds the same {name} as the choice "
        f"{format_choice(twin)} the study's trials drew{others}, but Optuna stores a choice as it is spelt, "
        f"and every trial would fail: write it as stored, {format_choice(twin)}"
        + ("" if len(respelt) == 1 else f"; the choices as stored: {_stored_list(stored_labels, as_stored)}")
    )


def _reordered(
    name: str, choices: list[Any], respelt: list[Any], stored_labels: Any, as_stored: list[Any]
) -> str:
    """The refusal of the stored choices of the section `name` in another order (and some spelt otherwise,
    `respelt`), with the stored list to write."""
    from hpotool.formatting import format_choice

    how = "reordered" + (
        " and with "
        + ", ".join(f"{format_choice(c)} stored as {format_choice(t)}" for _, c, t in respelt)
        + f" (the same {name})"
        if respelt
        else ""
    )
    return (
        f"search_space.{name}: {format_choice(list(choices))} are the choices the study's trials drew, "
        f"{how}, but Optuna stores choices as they are spelt, in their order, and every trial would fail: "
        f"write them as stored, choices: {_stored_list(stored_labels, as_stored)}"
    )


def _stored_list(stored_labels: Any, as_stored: list[Any]) -> str:
    """The stored choices in the stored order, each as this config spells it where that is the stored label
    (a mapping's keys in the config's order), else as stored."""
    from hpotool.formatting import format_choice
    from hpotool.search_space import choice_label

    mine = {str(choice_label(c)): c for c in as_stored}
    return "[" + ", ".join(format_choice(mine.get(str(s), _read_label(s))) for s in stored_labels) + "]"


def _read_label(label: Any) -> Any:
    """A stored choice label as the value it spells (`{lr: 0.1, name: sgd}` as a mapping)."""
    import yaml

    if not isinstance(label, str):
        return label
    try:
        return yaml.safe_load(label)
    except yaml.YAMLError:
        return label
