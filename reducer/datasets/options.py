"""The options a dataset accepts in a job's [dataset] table: declared, checked, filled in, listed.

A dataset declares each option as a `reducer.Option` (type, default, required, choices or range,
a one-line description), or in the older short form, a type or a tuple of types (``int``,
``(int, float)``), which stays valid: it is an Option with that type and nothing else. One
place reads the declarations (`specs`), checks a declaration at registration
(`declaration_problem`), checks a job's values (`checked`), fills in the defaults
(`with_defaults`) and words an option for `reducer datasets` (`described`).
"""

import math
import numbers
import types
from typing import Any, Mapping, Optional, Tuple

from reducer.datasets.dataset import BLOCK_OPTIONS, COMMON_OPTIONS, Option
from reducer.errors import JobError

TYPE_WORDS = {int: "an integer", float: "a number", str: "a string", list: "a list", bool: "true/false",
              dict: "a table"}
SHORT_NAMES = {int: "int", float: "float", str: "str", list: "list", bool: "bool", dict: "table"}


def _as_option(spec: Any) -> Option:
    return spec if isinstance(spec, Option) else Option(type=spec)


def accepted_types(option: Option) -> Tuple[type, ...]:
    return option.type if isinstance(option.type, tuple) else (option.type,)


def specs(dataset: Any) -> "dict[str, Option]":
    """Every option a job may give this dataset: the common ones, the block ones when it offers
    `read_blocks`, and its own (which win over a common one of the same name)."""
    found = {**COMMON_OPTIONS, **own_specs(dataset)}
    if dataset.read_blocks is not None:
        found.update({name: option for name, option in BLOCK_OPTIONS.items() if name not in found})
    return found


def own_specs(dataset: Any) -> "dict[str, Option]":
    """The options the dataset itself declares, as Options."""
    return {name: _as_option(spec) for name, spec in dataset.options.items()}


def _is_type(value: Any) -> bool:
    # list[str] and friends are not types isinstance() can check against
    return isinstance(value, type) and not isinstance(value, types.GenericAlias)


def _fits(value: Any, accepted: Tuple[type, ...]) -> bool:
    if isinstance(value, bool):
        return bool in accepted
    if isinstance(value, accepted):
        return True
    # a whole number where a number is declared: `2` for a float option
    return float in accepted and isinstance(value, numbers.Integral)


def _type_words(accepted: Tuple[type, ...]) -> str:
    return " or ".join(dict.fromkeys(TYPE_WORDS.get(t, t.__name__) for t in accepted))


def as_written(value: Any) -> str:
    """A job file's value in an error message: true / false as TOML writes them (Python's True
    would puzzle the file's author), anything else as Python's repr, quotes and all."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


def value_problem(option: Option, value: Any) -> Optional[str]:
    """Why `value` is not acceptable for `option`, as the end of a sentence, or None."""
    accepted = accepted_types(option)
    if not _fits(value, accepted):
        return f"must be {_type_words(accepted)}, got {as_written(value)}"
    if isinstance(value, float) and not math.isfinite(value):
        return f"must be a finite number, got {as_written(value)}"
    if option.choices is not None and value not in option.choices:
        return f"must be one of {', '.join(map(str, option.choices))}, got {as_written(value)}"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if option.min is not None and value < option.min:
            return f"must be {_range_words(option)}, got {as_written(value)}"
        if option.max is not None and value > option.max:
            return f"must be {_range_words(option)}, got {as_written(value)}"
    return None


def _range_words(option: Option) -> str:
    if option.min is not None and option.max is not None:
        return f"from {option.min} to {option.max}"
    return f"{option.min} or more" if option.min is not None else f"{option.max} or less"


def declaration_problem(name: Any, spec: Any) -> Optional[str]:
    """What is wrong with one declared option, in one line, or None (registry.malformed)."""
    if not isinstance(name, str):
        return f"options: names must be strings, got {name!r}"
    option = _as_option(spec)
    accepted = option.type if isinstance(option.type, tuple) else (option.type,)
    if not accepted or not all(_is_type(t) for t in accepted):
        return (f"options[{name!r}] must be a type such as int, str, bool, float or list (or a tuple of "
                f"types), or a reducer.Option of one, got {spec!r}")
    if not isinstance(option.description, str) or "\n" in option.description:
        return f"options[{name!r}]: description must be one line of text, got {option.description!r}"
    if not isinstance(option.required, bool):
        return f"options[{name!r}]: required must be true or false, got {option.required!r}"
    for bound in ("min", "max"):
        value = getattr(option, bound)
        if value is not None and (not isinstance(value, numbers.Real) or isinstance(value, bool)):
            return f"options[{name!r}]: {bound} must be a number or None, got {value!r}"
    if option.choices is not None and (isinstance(option.choices, (str, bytes, Mapping))
                                       or not hasattr(option.choices, "__iter__") or not list(option.choices)):
        return f"options[{name!r}]: choices must be a non-empty list of values, got {option.choices!r}"
    if option.required and option.default is not None:
        return f"options[{name!r}]: an option with a default cannot be required"
    if option.default is not None:
        problem = value_problem(option, option.default)
        if problem:
            return f"options[{name!r}]: the default {problem.replace(', got', '; it is')}"
    return None


def checked(job_path: Any, dataset: Any, options: Mapping[str, Any]) -> "dict[str, Any]":
    """The job's [dataset] options with the dataset's defaults filled in, numbers declared as
    floats given as floats; a JobError naming the job file and the option for a value the
    declaration refuses or a required option left out. Unknown keys are config.py's to refuse."""
    declared = specs(dataset)
    for name, option in declared.items():
        if option.required and name not in options:
            words = f" ({option.description})" if option.description else ""
            raise JobError(f"{job_path}: [dataset] needs {name} for dataset {dataset.name!r}{words}; "
                           f"expected {_type_words(accepted_types(option))}")
    for name, value in options.items():
        if name in declared:
            problem = value_problem(declared[name], value)
            if problem:
                raise JobError(f"{job_path}: dataset.{name} {problem}")
    return with_defaults(options, dataset)


def with_defaults(options: Mapping[str, Any], dataset: Any) -> "dict[str, Any]":
    """`options` with every declared default the job left out, as the plugin receives them."""
    filled = dict(options)
    for name, option in own_specs(dataset).items():
        if name not in filled and option.default is not None:
            filled[name] = option.default
        value = filled.get(name)
        if accepted_types(option) == (float,) and isinstance(value, numbers.Integral) \
                and not isinstance(value, bool):
            filled[name] = float(value)
    return filled


def described(name: str, option: Option) -> "tuple[str, str, str]":
    """(name, what it takes, what it is for) for `reducer datasets`: ("rows", "int, default
    200, 2 or more", "how many rows to make")."""
    accepted = accepted_types(option)
    parts = ["|".join(SHORT_NAMES.get(t, t.__name__) for t in accepted)]
    if option.required:
        parts.append("required")
    elif option.default is not None:
        parts.append(f"default {_toml_text(option.default)}")
    if option.choices is not None:
        parts.append("one of " + ", ".join(_toml_text(c) for c in option.choices))
    if option.min is not None or option.max is not None:
        parts.append(_range_words(option))
    return name, ", ".join(parts), option.description


def _toml_text(value: Any) -> str:
    """A value as a job file writes it: true, 2.5, "text", ["a", "b"]."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(map(_toml_text, value)) + "]"
    return str(value)
