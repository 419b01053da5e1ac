"""How every settings section edits a shop's configuration document.

A form field is named by its path in the document (``regions[0].promise_days``), so
the problems ``validate_shop`` returns (each with its path) land beside the field that
caused them, and one mechanism serves every section:

- ``load(shop_id)`` reads the document and its version (secrets read as "(unchanged)");
- ``apply_form(document, form, fields)`` writes the posted values into a copy, typed per
  field, collecting what cannot even be read ("must be a whole number"); a list of tables
  among the fields is a ``Rows`` (each stored row with a "remove" box, one empty row that
  adds an item when filled: one save does it all, no script, every control a keyboard's);
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
from typing import Any, Callable, Iterable, Mapping, Sequence
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
            if step == len(target):  # the row a form adds at the end of a list
                target.append([] if isinstance(following, int) else {})
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
    """One input of a section. ``kind``: text, int, float, bool, choice, multi (a list of
    choices, one checkbox each), lines (one list item per line or comma), time (HH:MM),
    datetime (a local date-time in the shop's zone, as the TOML takes)."""

    path: str
    label: str
    kind: str = "text"
    choices: Sequence[tuple[str, str]] = ()  # (value, label)
    help: str = ""
    optional: bool = True  # an empty input removes the key (its default applies)
    secret: bool = False  # write-only: shown empty, "(unchanged)" unless a new value is typed
    placeholder: str = ""  # shown in an empty input, e.g. the default an empty input leaves in force


@dataclass
class FormResult:
    document: dict
    errors: dict[str, str] = field(default_factory=dict)  # path -> message
    raw: dict[str, str] = field(default_factory=dict)  # what was typed, shown back on errors
    # Rows renumbered by removals: saved path prefix -> the prefix of the row's inputs as shown.
    shown_as: dict[str, str] = field(default_factory=dict)

    def as_shown(self, errors: Mapping[str, str]) -> dict[str, str]:
        """``errors`` from saving this document, each path back on the row the creator sees
        (a row after a removed one is one place further down on the page than in the list)."""
        renamed: dict[str, str] = {}
        for path, message in errors.items():
            for saved, shown in self.shown_as.items():
                if path == saved or path.startswith((saved + ".", saved + "[")):
                    path = shown + path[len(saved):]
                    break
            renamed[path] = message
        return renamed


def apply_form(document: Mapping, form: Mapping[str, str], fields: Iterable[Field | Rows]) -> FormResult:
    """The posted ``fields`` written into a copy of ``document``; a ``Rows`` among them as
    ``apply_rows`` does (its errors and typed text under the rows' indices as shown)."""
    result = FormResult(copy.deepcopy(dict(document)))
    for spec in fields:
        if isinstance(spec, Rows):
            part = apply_rows(result.document, form, spec)
            result.document = part.document
            result.errors.update(part.errors)
            result.raw.update(part.raw)
            result.shown_as.update(part.shown_as)
        else:
            _apply_field(result, form, spec)
    return result


def _apply_field(result: FormResult, form: Mapping[str, str], spec: Field) -> None:
    if spec.kind == "bool":
        set_path(result.document, spec.path, spec.path in form)
        result.raw[spec.path] = "on" if spec.path in form else ""
        return
    if spec.kind == "multi":
        offered = [value for value, _ in spec.choices]
        picked = [v for v in (form.getlist(spec.path) if hasattr(form, "getlist") else [form.get(spec.path)]) if v]
        if set(picked) - set(offered):
            result.errors[spec.path] = "pick among the choices"
            return
        # Those already chosen keep their order (backups are tried in it), new ones follow.
        before = [v for v in (get_path(result.document, spec.path) or []) if v in picked]
        ticked = before + [v for v in offered if v in picked and v not in before]
        result.raw[spec.path] = ",".join(ticked)
        set_path(result.document, spec.path, ticked or None)  # none ticked: the key goes (its default, [])
        return
    text = (form.get(spec.path) or "").strip()
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
        # As typed (a datetime-local input sends minutes), with a "T" between date and time.
        return moment.isoformat(timespec="minutes" if not (moment.second or moment.microsecond) else "auto")
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
    return _saving(expected_version, lambda expected: container.shop_config.update(
        current_store(), shop_id, document, expected, actor, reason=reason))


def set_mode(shop_id: str, mode: str, restrict: list[dict] | None, expected_version: int | str | None,
             actor: str) -> SaveOutcome:
    """Switch the routing mode as ``connector mode set`` does (same service call, same audit),
    refused like any form when someone saved since the page was loaded."""
    container = current_app.extensions["connector"]
    return _saving(expected_version, lambda expected: container.shop_config.set_mode(
        current_store(), shop_id, mode, restrict, actor, expected_version=expected))


def _saving(expected_version: int | str | None, attempt: Callable[[int], int]) -> SaveOutcome:
    try:
        expected = int(expected_version)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return SaveOutcome(stale="The form was missing its version; reload the page and make the change again.")
    try:
        version = attempt(expected)
    except StaleVersion:
        return SaveOutcome(stale="Someone saved this shop's settings after you opened this page. Nothing was "
                                 "saved: reload the page to see their change, then make yours again.")
    except InvalidShop as exc:
        errors: dict[str, str] = {}
        for problem in exc.problems:
            errors.setdefault(problem.path or "", problem.message)
        return SaveOutcome(errors=errors)
    return SaveOutcome(version=version)


def moved(items: Sequence[Any], index: int, step: int) -> list[Any]:
    """``items`` with the one at ``index`` moved ``step`` places (-1: up, 1: down); at an
    end it stays. Reordering by buttons, so a keyboard does it as well as a mouse."""
    items = list(items)
    target = index + step
    if not (0 <= index < len(items)) or not (0 <= target < len(items)):
        return items
    items[index], items[target] = items[target], items[index]
    return items


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
    if spec.kind in ("lines", "multi"):
        return ("," if spec.kind == "multi" else ", ").join(str(v) for v in value)
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


def placed(errors: Mapping[str, str], fields: Iterable[Field | Rows]) -> dict[str, str]:
    """``errors`` re-keyed so each lands on a field the form shows: a problem inside a value
    (``regions[0].countries[1]``, ``nodes[0].shipping_methods.x``) goes to the nearest field
    above it; one that no field holds keeps its path (listed at the top of the form). A format
    message from the shape check becomes the field's own help, which says what is expected."""
    specs: dict[str, Field] = {}
    for spec in fields:
        if isinstance(spec, Rows):
            specs[spec.path] = Field(spec.path, spec.path)  # a problem with the list as a whole
            specs.update((row.path, row) for row in spec.fields())
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


def unplaced(errors: Mapping[str, str], fields: Iterable[Field | Rows]) -> list[tuple[str, str]]:
    """Problems no field of the form shows (about another part of the document, or the
    section as a whole): listed at the top of the form so none is hidden. A list edited as
    rows shows its own problems and its rows' above them."""
    fields = list(fields)
    shown = {spec.path for spec in fields}
    rows = [spec.path for spec in fields if isinstance(spec, Rows)]
    return [(path, message) for path, message in errors.items()
            if path not in shown and not any(path.startswith(f"{prefix}[") for prefix in rows)]


@dataclass(frozen=True)
class Rows:
    """A list of tables in the document edited as rows (``path``: the list, ``item``: the
    fields of one row, their paths relative to it, ``count``: the rows stored). The form
    shows each row with a "remove" box, and one empty row that adds an item when filled."""

    path: str
    item: Sequence[Field]
    count: int

    def row(self, index: int) -> list[Field]:
        return [replace(spec, path=f"{self.path}[{index}].{spec.path}") for spec in self.item]

    def fields(self) -> list[Field]:
        return [spec for index in range(self.count + 1) for spec in self.row(index)]

    def shown(self, index: int) -> list[Field]:
        """The inputs the page shows for row ``index``: the empty row's may all stay empty
        (a list starts at "—"), so leaving it alone adds nothing; typed into, it is checked
        as any row (``apply_rows`` reads it with ``row``)."""
        specs = self.row(index)
        return [replace(spec, optional=True) for spec in specs] if index == self.count else specs

    def remove_name(self, index: int) -> str:
        return f"remove:{self.path}[{index}]"


def apply_rows(document: Mapping, form: Mapping[str, str], rows: Rows) -> FormResult:
    """The rows written into a copy of ``document``: those ticked "remove" dropped, the empty
    row added when something was typed into it. Errors and typed text keep the rows' indices
    as shown, so they land beside the row's inputs."""
    def blank(index: int) -> bool:
        return all(not (form.get(spec.path) or "").strip() for spec in rows.row(index) if spec.kind != "bool")

    kept = [i for i in range(rows.count + 1)
            if rows.remove_name(i) not in form and not (i == rows.count and blank(i))]
    result = apply_form(document, form, [spec for i in kept for spec in rows.row(i)])
    for i in range(rows.count + 1):
        if i not in kept:
            for spec in rows.row(i):
                result.raw.pop(spec.path, None)
    items = get_path(result.document, rows.path) or []
    set_path(result.document, rows.path, [items[i] for i in kept if i < len(items)] or None)
    result.shown_as.update({f"{rows.path}[{new}]": f"{rows.path}[{old}]" for new, old in enumerate(kept) if new != old})
    return result
