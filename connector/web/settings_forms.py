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
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Iterable, Mapping, Sequence
from zoneinfo import ZoneInfo

from flask import current_app

from connector.config import InvalidShop
from connector.shop_store import StaleVersion
from connector.web import current_store

# A key may start with a digit (ids like "3pl-east" are keys of ``providers``).
_STEP = re.compile(r"([A-Za-z0-9_][\w-]*)|\[(\d+)\]")


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
    """One input of a section. ``kind``: text, int, float, bool, choice, multi (a checkbox per
    choice: a list), lines (one list item per line or comma), time (HH:MM), datetime (a local
    date-time in the shop's zone, as the TOML takes)."""

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
    rows_changed: bool = False  # a row was added or removed: show the form again, save nothing


@dataclass(frozen=True)
class Rows:
    """A list of tables edited as rows of one form (a node's lanes). ``columns`` are the
    row's fields, their paths relative to a row (``region``). The form carries the number of
    rows it shows; its "add" button appends an empty row and a row's "remove" button drops
    that row, both without saving (a page without script); on save a row left wholly empty
    is dropped."""

    path: str  # the list, e.g. "nodes[2].lanes"
    label: str
    columns: Sequence[Field]
    add_label: str = "Add a row"

    @property
    def count_name(self) -> str:
        return f"rows:{self.path}"

    @property
    def add_name(self) -> str:
        return f"add:{self.path}"

    @property
    def remove_name(self) -> str:
        return f"remove:{self.path}"

    def row(self, index: int) -> list[Field]:
        return [replace(column, path=f"{self.path}[{index}].{column.path}") for column in self.columns]

    def count(self, document: Mapping) -> int:
        items = get_path(document, self.path)
        return len(items) if isinstance(items, list) else 0


MAX_ROWS = 200  # a form never makes more rows than this, whatever its count says


def apply_form(document: Mapping, form: Mapping[str, str], fields: Iterable[Field | Rows]) -> FormResult:
    result = FormResult(copy.deepcopy(dict(document)))
    for spec in fields:
        if isinstance(spec, Rows):
            _apply_rows(result, form, spec)
        else:
            _apply_field(result, form, spec, spec.path)
    return result


def _apply_field(result: FormResult, form: Mapping[str, str], spec: Field, name: str) -> None:
    """Write the input called ``name`` (``spec.path`` unless its row moved up) at ``spec.path``."""
    if spec.kind == "bool":
        set_path(result.document, spec.path, name in form)
        return
    if spec.kind == "multi":
        offered = [value for value, _ in spec.choices]
        picked = set(form.getlist(name)) if hasattr(form, "getlist") else set(form.get(name) or ())
        unknown = picked - set(offered)
        if unknown:
            result.errors[spec.path] = "pick among the choices"
            return
        # Those already chosen keep their order (backups are tried in it), new ones follow.
        before = [v for v in (get_path(result.document, spec.path) or []) if v in picked]
        set_path(result.document, spec.path, before + [v for v in offered if v in picked and v not in before])
        return
    text = (form.get(name) or "").strip()
    result.raw[spec.path] = "" if spec.secret else text
    if spec.secret:
        if text:
            set_path(result.document, spec.path, text)
        return  # nothing typed: the stored secret stays ("(unchanged)" in the document)
    if text == "":
        if spec.optional:
            set_path(result.document, spec.path, None)
        else:
            result.errors[spec.path] = "required"
        return
    try:
        set_path(result.document, spec.path, _typed(spec, text))
    except ValueError as exc:
        result.errors[spec.path] = str(exc)


def _apply_rows(result: FormResult, form: Mapping[str, str], rows: Rows) -> None:
    existing = get_path(result.document, rows.path)
    existing = existing if isinstance(existing, list) else []
    try:
        count = min(max(int(form.get(rows.count_name, len(existing))), 0), MAX_ROWS)
    except (TypeError, ValueError):
        count = len(existing)
    removed, adding = form.get(rows.remove_name), rows.add_name in form
    result.rows_changed = result.rows_changed or adding or removed is not None
    kept: list[tuple[int, dict]] = []  # (the row's index in the form, its table)
    for index in range(count):
        if removed == str(index):
            continue
        names = [f"{rows.path}[{index}].{column.path}" for column in rows.columns]
        if not result.rows_changed and not any((form.get(name) or "").strip() for name in names):
            continue  # left empty: no row
        item = existing[index] if index < len(existing) and isinstance(existing[index], dict) else {}
        kept.append((index, copy.deepcopy(item)))
    set_path(result.document, rows.path, [item for _, item in kept] + ([{}] if adding else []))
    for position, (index, _) in enumerate(kept):
        for column, spec in zip(rows.columns, rows.row(position)):
            _apply_field(result, form, spec, f"{rows.path}[{index}].{column.path}")


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
    if spec.kind == "time" and not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", text):
        raise ValueError("must be a time of day like 14:30")
    if spec.kind == "datetime":
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError("must be a date and time like 2026-11-27 09:00") from None
        return moment.isoformat()
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
    if spec.kind == "datetime":
        return _local_input(value, document.get("timezone") or "UTC")
    if spec.kind == "lines":
        return ", ".join(str(v) for v in value)
    if isinstance(value, bool):
        return "on" if value else ""
    return str(value)


def _local_input(value: Any, timezone: str) -> str:
    """A stored date-time as a datetime-local input shows it: in the shop's zone, to the minute."""
    try:
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
        if moment.tzinfo is not None:
            moment = moment.astimezone(ZoneInfo(timezone))
    except (ValueError, KeyError):
        return str(value)
    return moment.strftime("%Y-%m-%dT%H:%M")


def chosen(document: Mapping, spec: Field) -> list[str]:
    """The values a ``multi`` field has ticked."""
    value = get_path(document, spec.path)
    return [str(v) for v in value] if isinstance(value, list) else []


def placed(errors: Mapping[str, str], fields: Iterable[Field | Rows], document: Mapping) -> dict[str, str]:
    """``errors`` re-keyed so each lands on a field the form shows: a problem inside a value
    (``regions[0].countries[1]``, ``nodes[0].shipping_methods.x``) goes to the nearest field
    above it; one that no field holds keeps its path (listed at the top of the form). A format
    message from the shape check becomes the field's own help, which says what is expected."""
    specs: dict[str, Field] = {}
    for spec in fields:
        if isinstance(spec, Rows):
            specs[spec.path] = Field(spec.path, spec.label)
            for index in range(spec.count(document)):
                specs.update((row.path, row) for row in spec.row(index))
        else:
            specs[spec.path] = spec
    out: dict[str, str] = {}
    for path, message in errors.items():
        target = path
        while target not in specs and re.search(r"(\.[^.\[]+|\[\d+\])$", target):
            target = re.sub(r"(\.[^.\[]+|\[\d+\])$", "", target)
        if target not in specs:
            target = path
        elif message.startswith("String should match pattern") and specs[target].help:
            message = f"not in the expected form: {specs[target].help}"
        out[target] = f"{out[target]}; {message}" if target in out and message not in out[target] else message
    return out


def unplaced(errors: Mapping[str, str], fields: Iterable[Field]) -> list[tuple[str, str]]:
    """Problems no field of the form shows (about another part of the document, or the
    section as a whole): listed at the top of the form so none is hidden."""
    shown = {spec.path for spec in fields}
    rows = [spec.path for spec in fields if isinstance(spec, Rows)]
    return [(path, message) for path, message in errors.items()
            if path not in shown and not any(path.startswith(f"{prefix}[") for prefix in rows)]
