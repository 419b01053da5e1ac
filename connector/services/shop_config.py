"""Shop configuration as data: the directory every service reads shops through, and
the one way to change them.

``StoredShopDirectory`` resolves the documents in ``shop_configs`` to ``ShopSettings``,
cached per (shop, version). Each lookup first asks SQLite whether anything was
committed since it last looked (``PRAGMA data_version``, no table read) and only then
reads the versions' fingerprint (at most every RECHECK_SECONDS; at once after a save in
this process), so a change made by any process (a page, the CLI) is followed by every
other one at its next request or batch, without a restart.

``ShopConfiguration`` validates every change once, with ``config.check_shop_document``
(the diff and the resolved settings reuse what it parsed; nothing is saved when it finds a
problem), refuses a change made on a stale version, encrypts the
secrets, keeps the shops/regions/nodes tables in step and audits each save (a history
row with the diff and an event), all in one transaction.
"""
from __future__ import annotations

import copy
import json
import logging
import re
import sqlite3
import threading
from time import monotonic
import tomllib
from dataclasses import dataclass
from datetime import date, datetime, time
from collections.abc import Mapping  # not typing's alias: its isinstance is several times slower
from typing import Any, Callable, Iterable

from connector.config import (
    CheckedShop,
    InvalidShop,
    Settings,
    ShopConfig,
    ShopSettings,
    resolve_shop,
    secret_keys,
    store_key,
    check_shop_document,
)
from connector.domain.shop_rules import Problem
from connector.secrets import SecretBox, SecretUnreadable, map_secrets
from connector.shop_store import ShopConfigStore, ShopExists, StaleVersion
from connector.store import Store

log = logging.getLogger("connector.shops")

# The value of a secret key that means "keep the stored secret": what `shops export`
# writes in place of every secret that is set, and what a form sends for a secret left blank.
KEEP_SECRET = "(unchanged)"
SHOP_ID = re.compile(r"^[a-z0-9][a-z0-9_-]*$")

# Saves made by any ShopConfiguration in this process: a directory that sees this change
# re-reads at once; changes from other processes it notices within RECHECK_SECONDS.
_local_saves = 0
RECHECK_SECONDS = 0.05


def _saved_here() -> None:
    global _local_saves
    _local_saves += 1


__all__ = ["KEEP_SECRET", "ShopConfiguration", "StoredShopDirectory", "StaticShopDirectory", "StaleVersion",
           "ShopExists", "InvalidShop", "sync_network", "resolver"]


def resolver(settings: Settings) -> Callable[[str, Mapping, int], ShopSettings]:
    """resolve(shop_id, plaintext document, version) -> ShopSettings with this deployment's
    environment secrets and Shopify app secret."""
    def resolve(shop_id: str, document: Mapping, version: int) -> ShopSettings:
        return resolve_shop(shop_id, document, app=settings.shopify, env=settings.env, base_dir=settings.base_dir,
                            version=version)
    return resolve


class StaticShopDirectory:
    """A fixed set of shops (benchmarks and pure tests without a database)."""

    def __init__(self, shops: Mapping[str, ShopSettings] | Iterable[ShopSettings]):
        values = shops.values() if isinstance(shops, Mapping) else shops
        self._shops = {shop.id: shop for shop in values}
        self._by_domain = {shop.shop_domain or shop.store_url or "": shop for shop in self._shops.values()}

    def get(self, shop_id: str, *, including_inactive: bool = False) -> ShopSettings | None:
        return self._shops.get(shop_id)

    def require(self, shop_id: str) -> ShopSettings:
        shop = self._shops.get(shop_id)
        if shop is None:
            raise KeyError(f"unknown shop {shop_id!r}")
        return shop

    def by_domain(self, domain: str, *, including_inactive: bool = False) -> ShopSettings | None:
        return self._by_domain.get(domain)

    def ids(self) -> list[str]:
        return sorted(self._shops)

    def version(self, shop_id: str) -> int:
        shop = self._shops.get(shop_id)
        return shop.version if shop else 0

    def refresh(self) -> None:
        pass


class StoredShopDirectory:
    """The active shops in the database, resolved once per version. Thread-safe: one own
    read connection, used under a lock for the change check and reloads."""

    def __init__(self, open_store: Callable[[], Store], resolve: Callable[[str, Mapping, int], ShopSettings],
                 box: SecretBox):
        self._open_store = open_store
        self._resolve = resolve
        self._box = box
        self._lock = threading.Lock()
        self._store: Store | None = None
        self._data_version: int | None = None
        self._fingerprint: tuple[int, int] | None = None
        self._shops: dict[str, ShopSettings] = {}
        self._inactive: dict[str, ShopSettings] = {}  # uninstalled shops: their compliance webhooks still come
        self._versions: dict[str, int] = {}
        self._by_domain: dict[str, ShopSettings] = {}
        self._broken: dict[tuple[str, int], str] = {}
        self._seen_local_saves = -1
        self._fingerprint_read_at = float("-inf")

    # the port
    def get(self, shop_id: str, *, including_inactive: bool = False) -> ShopSettings | None:
        self._follow()
        shop = self._shops.get(shop_id)
        return shop if shop is not None or not including_inactive else self._inactive.get(shop_id)

    def require(self, shop_id: str) -> ShopSettings:
        shop = self.get(shop_id)
        if shop is None:
            raise KeyError(f"unknown shop {shop_id!r}")
        return shop

    def by_domain(self, domain: str, *, including_inactive: bool = False) -> ShopSettings | None:
        self._follow()
        shop = self._by_domain.get(domain)
        if shop is None and including_inactive:
            shop = next((s for s in self._inactive.values() if (s.shop_domain or s.store_url) == domain), None)
        return shop

    def ids(self) -> list[str]:
        self._follow()
        return sorted(self._shops)

    def version(self, shop_id: str) -> int:
        self._follow()
        return self._versions.get(shop_id, 0)

    def refresh(self) -> None:
        """Re-read whatever changed now (after a save in this process)."""
        _saved_here()
        with self._lock:
            self._data_version = None
            self._check()

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None

    # following changes
    def _follow(self) -> None:
        with self._lock:
            self._check()

    def _check(self) -> None:
        if self._store is None:
            self._store = self._open_store()
        conn = self._store.conn
        data_version = conn.execute("PRAGMA data_version").fetchone()[0]
        local_saves = _local_saves
        if local_saves == self._seen_local_saves:
            if data_version == self._data_version:
                return
            # Something was committed elsewhere (under load: nearly every request). Reading the
            # fingerprint then costs a new WAL snapshot (~30 us), so at most one read per
            # RECHECK_SECONDS; data_version is not noted, so a later call looks again.
            if monotonic() - self._fingerprint_read_at < RECHECK_SECONDS:
                return
        self._fingerprint_read_at = monotonic()
        self._seen_local_saves = local_saves
        configs = ShopConfigStore(self._store)
        try:
            fingerprint = configs.fingerprint()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return  # not migrated yet: no shops; looked at again next time
            raise
        self._data_version = data_version
        if fingerprint == self._fingerprint:
            return
        versions = configs.versions()
        shops, inactive = {}, {}
        for shop_id, (version, active) in versions.items():
            into = shops if active else inactive
            cached = self._shops.get(shop_id) or self._inactive.get(shop_id)
            if cached is not None and cached.version == version:
                into[shop_id] = cached
                continue
            shop = self._load(configs, shop_id, version)
            if shop is not None:
                into[shop_id] = shop
        self._shops, self._inactive = shops, inactive
        self._versions = {shop_id: version for shop_id, (version, _) in versions.items()}
        self._by_domain = {shop.shop_domain or shop.store_url or "": shop for shop in shops.values()}
        self._fingerprint = fingerprint

    def _load(self, configs: ShopConfigStore, shop_id: str, version: int) -> ShopSettings | None:
        row = configs.get(shop_id)
        if row is None:
            return None
        try:
            document = map_secrets(row["document"], secret_keys(), self._box.decrypt)
            return self._resolve(shop_id, document, row["version"])
        except (InvalidShop, SecretUnreadable) as exc:
            # Saved valid, so only this process's environment can make it so (a secret the
            # document leaves to a variable this process lacks, a key removed): say it once.
            if (shop_id, version) not in self._broken:
                self._broken[(shop_id, version)] = str(exc)
                log.error("shop %s (version %s) is not served by this process: %s", shop_id, version,
                          str(exc).replace("\n", "; "))
            return None


@dataclass(frozen=True)
class ImportResult:
    shop_id: str
    outcome: str  # "created" | "replaced" | "unchanged" | "kept" (in the database, differs, not replaced)
    version: int


class ShopConfiguration:
    """Every change to a shop's configuration. Stores are passed per call; each method
    takes the write lock itself."""

    def __init__(self, settings: Settings, box: SecretBox, directory, clock: Callable[[], datetime]):
        self.settings = settings
        self.box = box
        self.directory = directory
        self.clock = clock
        # (store, shop id, what changed), once a change is committed and followed: exception
        # lines the new configuration may route are routed again (ExceptionActions.network_changed).
        self.after_change: Callable[[Store, str, str], object] | None = None

    # ------------------------------------------------------------ reading

    def document(self, store: Store, shop_id: str, *, reveal: bool = False) -> tuple[dict, int]:
        """(document, version). Secrets that are set read as KEEP_SECRET unless ``reveal``."""
        row = ShopConfigStore(store).get(shop_id)
        if row is None:
            raise KeyError(f"unknown shop {shop_id!r}")
        change = self.box.decrypt if reveal else (lambda value: KEEP_SECRET)
        return map_secrets(row["document"], secret_keys(), change), row["version"]

    def list(self, store: Store) -> list[dict]:
        return [{"shop_id": row["shop_id"], "version": row["version"], "active": row["active"],
                 "platform": row["document"].get("platform"), "store": store_key(row["document"]),
                 "mode": (row["document"].get("routing") or {}).get("mode", "normal"),
                 "updated_at": row["updated_at"], "updated_by": row["updated_by"]}
                for row in ShopConfigStore(store).all()]

    def history(self, store: Store, shop_id: str) -> list[dict]:
        return ShopConfigStore(store).history(shop_id)

    # ------------------------------------------------------------ changing

    def create(self, store: Store, shop_id: str, document: Mapping[str, Any], actor: str) -> int:
        with store.write():
            configs = ShopConfigStore(store)
            if configs.get(shop_id) is not None:
                raise ShopExists(f"shop {shop_id!r} already exists")
            if KEEP_SECRET in _secret_values(document):
                raise InvalidShop(shop_id, [Problem(path, f"{KEEP_SECRET!r} keeps a stored secret, and shop {shop_id} "
                                                          "has none yet: give the value")
                                            for path in _paths_of(document, KEEP_SECRET)])
            plain, checked = self._checked(store, shop_id, document)
            version = configs.create(shop_id, self._sealed(plain), actor, _diff({}, plain), self.clock())
            self._after_save(store, shop_id, checked, version, actor, "shop.config_created")
        self._followed(store)
        return version

    def update(self, store: Store, shop_id: str, document: Mapping[str, Any], expected_version: int,
               actor: str, *, reason: str | None = None, what: str | None = None) -> int:
        """Replace the document if nobody saved since ``expected_version`` (else StaleVersion,
        nothing merged). A secret given as KEEP_SECRET keeps its stored value. ``what``:
        the change in a few words, for the exception lines it routes ("the switch to peak mode")."""
        with store.write():
            configs = ShopConfigStore(store)
            row = configs.get(shop_id)
            if row is None:
                raise KeyError(f"unknown shop {shop_id!r}")
            if row["version"] != expected_version:
                raise StaleVersion(f"shop {shop_id}: the configuration changed since version {expected_version} "
                                   f"(now {row['version']}); reload it and make the change again")
            old = map_secrets(row["document"], secret_keys(), self.box.decrypt)
            plain, checked = self._checked(store, shop_id, _kept_secrets(document, old))
            diff = _diff(_with_defaults(old), checked.with_defaults(), reason)
            version = configs.save(shop_id, self._sealed(plain), expected_version, actor, diff, self.clock(),
                                   row["active"])
            self._after_save(store, shop_id, checked, version, actor, "shop.config_saved", diff)
        self._followed(store)
        if self.after_change is not None and not store.conn.in_transaction:
            self.after_change(store, shop_id, what or f"configuration version {version} was saved")
        return version

    def set_mode(self, store: Store, shop_id: str, mode: str, restrict: list[dict] | None, actor: str,
                 expected_version: int | None = None) -> int:
        """Switch the routing mode; ``restrict`` (list of {regions, nodes}) replaces that mode's
        restrictions when given ([] clears them). ``expected_version``: the version the person
        saw (a web form): refused as stale when someone saved since."""
        document, version = self.document(store, shop_id)
        version = version if expected_version is None else expected_version
        routing = document.setdefault("routing", {})
        routing["mode"] = mode
        if restrict is not None:
            routing.setdefault("modes", {}).setdefault(mode, {})["restrict"] = restrict
        return self.update(store, shop_id, document, version, actor, what=f"the switch to {mode} mode")

    def set_node_status(self, store: Store, shop_id: str, node_id: str, status: str, reason: str, actor: str,
                        expected_version: int | None = None) -> int:
        """``expected_version`` (a page's form): refused as stale when someone saved since."""
        document, version = self.document(store, shop_id)
        version = version if expected_version is None else expected_version
        nodes = [n for n in document.get("nodes", []) if isinstance(n, dict) and n.get("id") == node_id]
        if not nodes:
            raise InvalidShop(shop_id, [Problem("nodes", f"node {node_id!r} is not defined")])
        if not reason.strip():
            raise InvalidShop(shop_id, [Problem(f"nodes.{node_id}.status", "give a reason (it is audited)")])
        nodes[0]["status"] = status
        return self.update(store, shop_id, document, version, actor, reason=reason,
                           what=f"{node_id} was set {status}")

    def deactivate(self, store: Store, shop_id: str, actor: str) -> int:
        return self._set_active(store, shop_id, False, actor)

    def activate(self, store: Store, shop_id: str, actor: str) -> int:
        return self._set_active(store, shop_id, True, actor)

    def _set_active(self, store: Store, shop_id: str, active: bool, actor: str) -> int:
        with store.write():
            configs = ShopConfigStore(store)
            row = configs.get(shop_id)
            if row is None:
                raise KeyError(f"unknown shop {shop_id!r}")
            diff = {"active": {"old": row["active"], "new": active}}
            version = configs.save(shop_id, row["document"], row["version"], actor, diff, self.clock(), active)
            store.event(shop_id, "shop.config_saved", shop_id, {"version": version, "actor": actor, "diff": diff},
                        self.clock())
        self._followed(store)
        return version

    def rotate_secrets(self, store: Store) -> int:
        """Re-encrypt every stored secret with the first key; the number of shops rewritten."""
        with store.write():
            configs = ShopConfigStore(store)
            rows = configs.all()
            for row in rows:
                configs.rewrite_secrets(row["shop_id"], map_secrets(row["document"], secret_keys(), self.box.rotate))
            store.event(None, "secrets.rotated", None, {"shops": len(rows)}, self.clock())
        return len(rows)

    # ------------------------------------------------------------ import / export

    def import_documents(self, store: Store, documents: Mapping[str, Mapping], actor: str, *,
                         replace: bool) -> list[ImportResult]:
        """Create the shops the database lacks; with ``replace``, overwrite those that differ.
        Every document is validated first: one with a problem stops the import, nothing saved."""
        with store.write():  # all of it or nothing
            results = self._import(store, documents, actor, replace)
        self._followed(store)
        return results

    def _import(self, store: Store, documents: Mapping[str, Mapping], actor: str, replace: bool) -> list[ImportResult]:
        problems = []
        for shop_id, document in documents.items():
            stored = ShopConfigStore(store).get(shop_id)
            plain = _kept_secrets(document, map_secrets(stored["document"], secret_keys(), self.box.decrypt)
                                  if stored else {})
            try:
                self._checked(store, shop_id, plain, others_only_outside=set(documents))
            except InvalidShop as exc:
                problems += [p.under(f"shops.{shop_id}") for p in exc.problems]
        if problems:
            raise ImportRefused(problems)
        results = []
        for shop_id, document in documents.items():
            row = ShopConfigStore(store).get(shop_id)
            if row is None:
                results.append(ImportResult(shop_id, "created", self.create(store, shop_id, document, actor)))
                continue
            old = map_secrets(row["document"], secret_keys(), self.box.decrypt)
            if _plain(_kept_secrets(document, old)) == _plain(old):
                results.append(ImportResult(shop_id, "unchanged", row["version"]))
            elif replace:
                results.append(ImportResult(shop_id, "replaced",
                                            self.update(store, shop_id, document, row["version"], actor)))
            else:
                results.append(ImportResult(shop_id, "kept", row["version"]))
        return results

    def import_toml(self, store: Store, text: str, actor: str, *, replace: bool) -> list[ImportResult]:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ImportRefused([Problem("(file)", f"not valid TOML: {exc}")]) from None
        shops = data.get("shops")
        if not isinstance(shops, dict) or not shops or not all(isinstance(v, dict) for v in shops.values()):
            raise ImportRefused([Problem("shops", "no [shops.<id>] tables in the file")])
        return self.import_documents(store, shops, actor, replace=replace)

    def export_toml(self, store: Store, shop_id: str) -> str:
        """The shop as a ``[shops.<id>]`` TOML table; every secret that is set reads
        KEEP_SECRET (importing the file back keeps the stored secrets)."""
        from connector.toml_writer import dumps

        document, version = self.document(store, shop_id)
        header = (f"# shop {shop_id}, configuration version {version}. Secrets are not exported: each one that\n"
                  f"# is set reads {KEEP_SECRET!r}, which `connector shops import --replace` keeps as stored.\n")
        return header + dumps({"shops": {shop_id: document}})

    # ------------------------------------------------------------ internals

    def _checked(self, store: Store, shop_id: str, document: Mapping, *,
                 others_only_outside: set[str] = frozenset()) -> tuple[dict, CheckedShop]:
        """``document`` as plain JSON data, parsed, if valid; else InvalidShop with every problem."""
        problems = [] if SHOP_ID.fullmatch(shop_id) and len(shop_id) <= 64 else [
            Problem("id", f"{shop_id!r}: lower-case letters, digits, - and _ (up to 64)")]
        plain = _plain(document)
        checked, found = check_shop_document(shop_id, plain, app=self.settings.shopify, env=self.settings.env,
                                    base_dir=self.settings.base_dir)
        problems += found
        if not problems:
            key = store_key(plain)
            for row in ShopConfigStore(store).all():
                if row["shop_id"] != shop_id and row["shop_id"] not in others_only_outside and row["active"] \
                        and store_key(row["document"]) == key:
                    problems.append(Problem("shop_domain" if plain.get("shop_domain") else "store_url",
                                            f"same store as shops.{row['shop_id']} ({key})"))
        if problems or checked is None:
            raise InvalidShop(shop_id, problems)
        return plain, checked

    def _followed(self, store: Store) -> None:
        """This process's directories re-read now, once the change is committed (inside an
        outer transaction, its end does this)."""
        if not store.conn.in_transaction:
            self.directory.refresh()

    def _sealed(self, plain: Mapping) -> dict:
        return map_secrets(plain, secret_keys(), self.box.encrypt)

    def _after_save(self, store: Store, shop_id: str, checked: CheckedShop, version: int, actor: str, kind: str,
                    diff: dict | None = None) -> None:
        sync_network(store, [checked.resolve(version)], self.clock())
        store.event(shop_id, kind, shop_id, {"version": version, "actor": actor,
                                             "diff": diff if diff is not None else {"created": True}}, self.clock())


class ImportRefused(Exception):
    """An import with problems (every one listed); nothing was saved."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def sync_network(store: Store, shops: Iterable[ShopSettings], now: datetime) -> None:
    """Keep the shops, regions and nodes tables (which reports and joins read) in step with
    the shops' configuration."""
    shop_rows, regions, nodes = [], [], []
    for shop in shops:
        network = shop.network
        shop_rows.append({"id": shop.id, "platform": shop.platform, "domain": shop.shop_domain or shop.store_url,
                          "timezone": shop.timezone})
        for region in network.regions.values():
            regions.append({
                "shop_id": shop.id, "id": region.id, "name": region.name, "promise_days": region.promise_days,
                "fallback": region.fallback,
                "spec": json.dumps({"countries": sorted(region.countries), "provinces": sorted(region.provinces),
                                    "postal_prefixes": sorted(region.postal_prefixes)}),
            })
        for node in network.nodes.values():
            nodes.append({
                "shop_id": shop.id, "id": node.id, "name": node.name, "kind": node.kind, "role": node.role,
                "status": node.status.value, "priority": node.priority,
                "spec": json.dumps({
                    "lanes": {r: {"transit_days": l.transit_days, "cost_per_order": l.cost_per_order}
                              for r, l in node.lanes.items()},
                    "capabilities": sorted(node.capabilities),
                    "cutoff": node.cutoff.isoformat() if node.cutoff else None,
                    "daily_capacity": node.daily_capacity,
                    "active_from": node.active_from, "active_until": node.active_until,
                    "backups": list(node.backups),
                }, default=str),
            })
    if shop_rows:
        store.sync_shops(shop_rows, regions, nodes, now)


def _with_defaults(document: Mapping) -> dict:
    """A valid document with every default filled in, so a diff shows what a change really
    did (a node without ``status`` is active)."""
    return _plain(ShopConfig.model_validate(document).model_dump())


def _plain(value: Any) -> Any:
    """JSON data: dates and times as ISO text (as stored), tuples as lists, a deep copy."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if hasattr(value, "value") and isinstance(getattr(value, "value"), str):  # an enum
        return value.value
    return copy.copy(value)


def _secret_values(document: Any) -> list[str]:
    found: list[str] = []
    map_secrets(document, secret_keys(), lambda v: found.append(v) or v)
    return found


def _paths_of(document: Any, value: str, path: str = "") -> list[str]:
    if isinstance(document, Mapping):
        return [p for k, v in document.items() for p in _paths_of(v, value, f"{path}.{k}" if path else str(k))]
    if isinstance(document, list):
        return [p for i, v in enumerate(document) for p in _paths_of(v, value, f"{path}[{i}]")]
    return [path] if document == value else []


def _kept_secrets(document: Any, old: Any) -> Any:
    """``document`` with each KEEP_SECRET replaced by the secret at the same place in ``old``
    (nodes, regions and other lists of tables matched by id, else by position)."""
    keys = secret_keys()
    if isinstance(document, Mapping):
        old = old if isinstance(old, Mapping) else {}
        out = {}
        for key, value in document.items():
            if key in keys and value == KEEP_SECRET:
                out[key] = old.get(key, "") if isinstance(old.get(key), str) else ""
            else:
                out[key] = _kept_secrets(value, old.get(key))
        return out
    if isinstance(document, list):
        old = old if isinstance(old, list) else []
        by_id = {item.get("id"): item for item in old if isinstance(item, Mapping) and "id" in item}
        return [_kept_secrets(item, by_id.get(item.get("id")) if isinstance(item, Mapping) and "id" in item
                              else (old[i] if i < len(old) else None))
                for i, item in enumerate(document)]
    return document


def _flatten(value: Any, path: str = "") -> dict[str, Any]:
    """Leaf paths -> values; tables in lists are named by their id (``nodes.popup-soho.status``)."""
    if isinstance(value, Mapping):
        if not value and path:
            return {path: {}}
        out: dict[str, Any] = {}
        for key, inner in value.items():
            out.update(_flatten(inner, f"{path}.{key}" if path else str(key)))
        return out
    if isinstance(value, list) and value and all(isinstance(v, Mapping) and "id" in v for v in value):
        out = {}
        for item in value:
            out.update(_flatten(item, f"{path}.{item['id']}"))
        return out
    if isinstance(value, list) and any(isinstance(v, Mapping) for v in value):
        out = {}
        for i, item in enumerate(value):
            out.update(_flatten(item, f"{path}[{i}]"))
        return out
    return {path: value}


def _diff(old: Any, new: Any, reason: str | None = None) -> dict:
    """{path: {"old", "new"}} for every leaf that changed; a secret's entry is "(changed)"
    (never its values). ``reason`` goes with each change (node status)."""
    keys = secret_keys()
    before, after = _flatten(_plain(old)), _flatten(_plain(new))
    diff: dict[str, Any] = {}
    for path in sorted(set(before) | set(after)):
        if before.get(path) == after.get(path):
            continue
        if path.rsplit(".", 1)[-1] in keys:
            diff[path] = "(changed)"
        else:
            diff[path] = {"old": before.get(path), "new": after.get(path)}
            if reason:
                diff[path]["reason"] = reason
    return diff
