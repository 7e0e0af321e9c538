"""What the config models share: the frozen base model, the validation context keys, number fields that
refuse a YAML boolean, and a float one NaN too (`no_boolean_or_nan`: `Integer`, `Number`, `Seed`), the
boolean setting that refuses a number or a text (`Boolean`), and lists and mappings that take null as empty
(`empty_if_null`)."""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, TypeAdapter, ValidationError

from hpotool.formatting import format_choice


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


CHECK_COMPONENTS = "check_components"  # validation context key: resolve and check each component
BUDGET_GIVEN = (
    "budget_given"  # validation context key: --n-trials or --timeout sets the budget the file leaves null
)


def no_boolean_or_nan(kind: type[int | float], hint: str = "") -> BeforeValidator:
    """A number setting given true or false, which pydantic would take as 1 or 0 (`epochs: yes` trained one
    epoch, `batch_size: on` batches of one): refused before the field's own validation, as a component's
    number argument is. Used as `Annotated[int, no_boolean_or_nan(int)]`. A float setting (`kind` float) refuses
    YAML's `.nan` too, which no setting can use: `val_fraction: .nan` was told "Input should be less than 1,
    got .nan"."""
    word = "integer" if kind is int else "number"

    def refuse(value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError(
                f"Input should be a valid {word}, got {format_choice(value)}; YAML reads an unquoted yes, no, "
                f"on, off, true or false as a boolean: write a number{hint}"
            )
        if kind is float and isinstance(value, float) and math.isnan(value):
            raise ValueError(
                f"got .nan, YAML's not-a-number, which is no value hpotool can use: write a number{hint}"
            )
        return value

    return BeforeValidator(refuse)


# Number settings that refuse a YAML boolean (and a float one .nan);
# `Annotated[int | None, no_boolean_or_nan(int)]` where null is taken.
Integer = Annotated[int, no_boolean_or_nan(int)]
Number = Annotated[float, no_boolean_or_nan(float)]

# The largest 32-bit integer. Optuna's intermediate values are keyed by step (hpotool's epoch), a 32-bit
# integer column on PostgreSQL and MySQL: `epochs: 1000000000000000000000000000000` passed the config, where
# nothing so long can be meant; torch.set_num_threads takes a C int.
INT32_MAX = 2**31 - 1


def _at_most_int32(why: str) -> AfterValidator:
    """A count nothing sensible can exceed (epochs, seeds): refused above `INT32_MAX`, saying `why`."""

    def check(value: int | None) -> int | None:
        if value is not None and value > INT32_MAX:
            raise ValueError(f"must be at most {INT32_MAX} (2**31 - 1: {why}), got {value}")
        return value

    return AfterValidator(check)


EPOCHS_WHY = "Optuna stores each epoch as a 32-bit step on PostgreSQL and MySQL"
Epochs = Annotated[int, no_boolean_or_nan(int), _at_most_int32(EPOCHS_WHY)]
OptionalEpochs = Annotated[int | None, no_boolean_or_nan(int), _at_most_int32(EPOCHS_WHY)]
# final.seeds: one training run each, seed, seed+1, ...
OptionalSeedCount = Annotated[
    int | None, no_boolean_or_nan(int), _at_most_int32("each seed is a whole training run")
]


def _only_boolean(value: Any) -> Any:
    """A boolean setting given a number or a text, which pydantic would read as one (`log: 1` as true,
    `log: 0` and `log: "no"` as false): refused, as hpotool's components refuse it for a boolean argument
    and its number settings refuse a boolean. Where earlier hpotool read it as true or false, the refusal
    names that one to write: a study created with `log: 1` stored `log: true` (`fingerprint.experiment` stores
    the validated config) and resumes with exactly that, where "write true or false" left the choice open and
    `log: false` would be refused as another experiment."""
    if not isinstance(value, bool):
        kind = (
            "a number"
            if isinstance(value, int | float)
            else "a text"
            if isinstance(value, str)
            else "not one"
        )
        try:
            was = _LAX_BOOL.validate_python(value)
        except ValidationError:
            fix = "write true or false"
        else:
            word = "true" if was else "false"
            fix = (
                f"write {word}, as earlier hpotool read it (a study created with it stored {word}, and resumes "
                f"with it)"
            )
        raise ValueError(f"Input should be true or false, got {format_choice(value)} ({kind}); {fix}")
    return value


_LAX_BOOL = TypeAdapter(bool)  # how pydantic, and so earlier hpotool, read a number or a text as a boolean


Boolean = Annotated[bool, BeforeValidator(_only_boolean)]

TORCH_SEEDS = (-(2**63), 2**64 - 1)  # what torch.manual_seed and torch.Generator.manual_seed take


def _torch_seed(value: int) -> int:
    """A seed torch can take: one outside its range passed the config and failed at the first training step
    as 'Overflow when unpacking long long; check that the loss fits this classification task'."""
    low, high = TORCH_SEEDS
    if not low <= value <= high:
        raise ValueError(f"must be from {low} to {high} (what torch.manual_seed takes), got {value}")
    return value


Seed = Annotated[int, no_boolean_or_nan(int), AfterValidator(_torch_seed)]


def empty_if_null(empty: type[list[Any] | dict[str, Any]]) -> BeforeValidator:
    """A list or mapping that can only mean none when null: a template's `constraints:` (or `enqueue:`,
    `final:`, `kwargs:`) with every entry commented out is null in YAML, and was refused as "Input should
    be a valid list, got null". Used as `Annotated[list[str], empty_if_null(list)]`; a section model takes
    `empty_if_null(dict)`, its defaults."""

    def empty_for_null(value: Any) -> Any:
        return empty() if value is None else value

    return BeforeValidator(empty_for_null)
