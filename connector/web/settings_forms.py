"""How every settings section edits a shop's configuration document.

A form field is named by its path in the document (``regions[0].promise_days``), so
the problems ``validate_shop`` returns (each with its path) land beside the field that
caused them, and one mechanism serves every section:

- ``load(shop_id)`` reads the document and its version (secrets read as "(unchanged)");
- ``apply_form(document, form, fields)`` writes the posted values into a copy, typed per
  field, collecting what cannot even be read ("must be a whole number");
- ``save(shop_id, document, expected_version, actor)`` saves through the shop
  configuration service: validated there as on every other way in, refused whole when
  anything is wrong, refused when someone saved since the form was loaded (a stale form
  is never merged), audited with a diff.

A view in the ``blog.update`` shape: load, on POST apply + save, redirect on success,
otherwise render the form again with the errors and the creator's own input.
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from flask import current_app

from connector.config import InvalidShop
from connector.shop_store import StaleVersion
from connector.web import current_store

_STEP = re.compile(r"([A-Za-z_][\w-]*)|\[(\d+)\]")


def path_steps(path: str) -> list[str | int]:
    """``nodes[2].lanes[0].region`` -> ["nodes", 2, "lanes", 0, "region"]."""
    steps: list[str | int] = []
    position = 0
    for match in _STEP.finditer(path):
        between = path[position:match.start()]
        # A key follows a "." (none before the first); an index follows directly.
        wanted = "" if match.group(1) is None or not steps else "."
        if between != wanted:
            raise ValueError(f"bad path {path!r}")
        steps.append(match.group(1) if match.group(1) is not None else int(match.group(2)))
        position = match.end()
    if position != len(path) or not steps:
        raise ValueError(f"bad path {path!r}")
    return steps


def get_path(document: Any, path: str, default: Any = None) -> Any:
    value = document
    for step in path_steps(path):
        try:
            value = value[step]
        except (KeyError, IndexError, TypeError):
            return default
    return value


def set_path(document: dict, path: str, value: Any) -> None:
    """Set ``path`` in ``document``, making the tables on the way; ``None`` removes a key
    (the document then takes the default, as a TOML file that leaves the key out)."""
    steps = path_steps(path)
    target: Any = document
    for step, following in zip(steps, steps[1:]):
        if isinstance(step, int):
            target = target[step]
        else:
            if target.get(step) is None:
                target[step] = [] if isinstance(following, int) else {}
            target = target[step]
    last = steps[-1]
    if isinstance(last, int):
        target[last] = value
    elif value is None:
        target.pop(last, None)
    else:
        target[last] = value


@dataclass(frozen=True)
class Field:
    """One input of a section. ``kind``: text, int, float, bool, choice, lines (one list item
    per line or comma), time (HH:MM), datetime (a local ISO date-time, as the TOML takes)."""

    path: str
    label: str
    kind: str = "text"
    choices: Sequence[tuple[str, str]] = ()  # (value, label)
    help: str = ""
    optional: bool = True  # an empty input removes the key (its default applies)
    secret: bool = False  # write-only: shown empty, "(unchanged)" unless a new value is typed


@dataclass
class FormResult:
    document: dict
    errors: dict[str, str] = field(default_factory=dict)  # path -> message
    raw: dict[str, str] = field(default_factory=dict)  # what was typed, shown back on errors


def apply_form(document: Mapping, form: Mapping[str, str], fields: Iterable[Field]) -> FormResult:
    result = FormResult(copy.deepcopy(dict(document)))
    for spec in fields:
        if spec.kind == "bool":
            set_path(result.document, spec.path, spec.path in form)
            continue
        text = (form.get(spec.path) or "").strip()
        result.raw[spec.path] = "" if spec.secret else text
        if spec.secret:
            if text:
                set_path(result.document, spec.path, text)
            continue  # nothing typed: the stored secret stays ("(unchanged)" in the document)
        if text == "":
            if spec.optional:
                set_path(result.document, spec.path, None)
            else:
                result.errors[spec.path] = "required"
            continue
        try:
            set_path(result.document, spec.path, _typed(spec, text))
        except ValueError as exc:
            result.errors[spec.path] = str(exc)
    return result


def _typed(spec: Field, text: str) -> Any:
    if spec.kind == "int":
        if not re.fullmatch(r"-?\d+", text):
            raise ValueError("must be a whole number")
        return int(text)
    if spec.kind == "float":
        try:
            return float(text)
        except ValueError:
            raise ValueError("must be a number") from None
    if spec.kind == "choice":
        if text not in {value for value, _ in spec.choices}:
            raise ValueError("pick one of the choices")
        return text
    if spec.kind == "lines":
        return [item.strip() for item in re.split(r"[\n,]", text) if item.strip()]
    return text


@dataclass
class SaveOutcome:
    version: int | None = None  # the new version when saved
    errors: dict[str, str] = field(default_factory=dict)  # path -> message (every problem)
    stale: str | None = None  # someone saved since the form was loaded

    @property
    def saved(self) -> bool:
        return self.version is not None


def load(shop_id: str) -> tuple[dict, int]:
    container = current_app.extensions["connector"]
    return container.shop_config.document(current_store(), shop_id)


def save(shop_id: str, document: Mapping, expected_version: int | str | None, actor: str,
         *, reason: str | None = None) -> SaveOutcome:
    container = current_app.extensions["connector"]
    try:
        expected = int(expected_version)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return SaveOutcome(stale="The form was missing its version; reload the page and make the change again.")
    try:
        version = container.shop_config.update(current_store(), shop_id, document, expected, actor, reason=reason)
    except StaleVersion:
        return SaveOutcome(stale="Someone saved this shop's settings after you opened this page. Nothing was "
                                 "saved: reload the page to see their change, then make yours again.")
    except InvalidShop as exc:
        errors: dict[str, str] = {}
        for problem in exc.problems:
            errors.setdefault(problem.path or "", problem.message)
        return SaveOutcome(errors=errors)
    return SaveOutcome(version=version)


def field_value(document: Mapping, spec: Field, raw: Mapping[str, str] | None = None) -> str:
    """The text an input shows: what the creator typed (after an error), else the document's."""
    if spec.secret:
        return ""
    if raw is not None and spec.path in raw:
        return raw[spec.path]
    value = get_path(document, spec.path)
    if value is None:
        return ""
    if spec.kind == "lines":
        return ", ".join(str(v) for v in value)
    if isinstance(value, bool):
        return "on" if value else ""
    return str(value)


def unplaced(errors: Mapping[str, str], fields: Iterable[Field]) -> list[tuple[str, str]]:
    """Problems no field of the form shows (about another part of the document, or the
    section as a whole): listed at the top of the form so none is hidden."""
    shown = {spec.path for spec in fields}
    return [(path, message) for path, message in errors.items() if path not in shown]
