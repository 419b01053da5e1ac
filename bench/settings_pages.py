"""Settings pages: server time of every page's render and of every form's save, for a
big shop (25 nodes, 12 regions, 200 SKU rules, 20,000 SKUs with stock). Target: p95 < 150 ms.

    .venv/bin/python bench/settings_pages.py                  # the defaults, about a minute
    .venv/bin/python bench/settings_pages.py --requests 50 --nodes 40 --regions 20 --rules 400 --skus 50000

The shop goes in the way every shop does (``shop_config.import_documents``: validated,
secrets encrypted); its stock is written with ``store.set_stock``. A user of the shop
signs in through the login form with Flask's test client, so every figure is the app's
own time for a request (routing, view, SQL, template, session, CSRF), with no network:
wall-clock p50/p95/max, and the p95 of this process's CPU time per request, which a
machine busy with other work does not inflate.

Pages: every GET route under /settings in the app's url_map, its arguments filled with
ids of the shop (a node, a region, a provider, a mode, ...), so pages added later are
measured by re-running this script. Each page: one warm-up, then --requests timed GETs.

Saves: every <form method="post"> on those pages whose action is under /settings, found
with the stdlib html.parser and sent back unchanged (its CSRF token, its hidden version
field, the values the page shows): before each timed POST the page is read again (not
timed) so the version is current. A redirect (303/302, the pattern after a save) counts
as saved; anything else is reported as REFUSED with its status and message, never as a
time. Last: ``shop_config.update`` alone, for the big document (one field changed each time).
"""
from __future__ import annotations

import argparse
import random
import re
import sys
import tempfile
import time
from datetime import datetime, timezone
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from _host import cpu_idle_percent, load_average, machine  # bench/ is on sys.path when a script runs

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from connector import sandbox  # noqa: E402
from connector.bootstrap import build  # noqa: E402
from connector.config import settings_from_dict  # noqa: E402
from connector.web import create_app  # noqa: E402
from tests.web import url_arguments  # noqa: E402  (the same ids the page tests use)
from werkzeug.datastructures import MultiDict  # noqa: E402

SHOP = "bench-big-shop"
EMAIL = "owner@bench-big-shop.example"
PASSWORD = "bench password, long enough"
TARGET_P95_MS = 150.0
KINDS = ["central_warehouse", "regional_hub", "micro_warehouse", "3pl", "cold_storage", "event_storage",
         "dropship", "local_partner", "garage"]
ROLES = ["evergreen", "regional_replenishment", "backup", "event_support"]
HANDLING = [[], ["fragile"], ["cold_chain"], ["oversized", "fragile"]]
CAPABILITIES = [["fragile"], ["fragile", "oversized"], ["cold_chain"], ["fragile", "cold_chain", "oversized"]]


# ---------------------------------------------------------------- the big shop


def big_shop(nodes: int, regions: int, rules: int, seed: int) -> dict:
    """A Shopify shop's configuration document (the shape of a [shops.<id>] table)."""
    rng = random.Random(seed)
    region_ids = [f"region-{i:02d}" for i in range(regions)]
    rest = region_ids[-1]
    region_docs = [{"id": r, "name": f"Region {i}", "promise_days": 1 + i % 5,
                    "postal_prefixes": [f"US:{100 + i * 7 + k}" for k in range(3)], "fallback": rest}
                   for i, r in enumerate(region_ids[:-1])]
    region_docs.append({"id": rest, "name": "Everywhere else", "promise_days": 7, "countries": ["US", "CA"]})
    node_ids = [f"node-{i:02d}" for i in range(nodes)]
    node_docs = []
    for i, node in enumerate(node_ids):
        served = sorted({rest, *rng.sample(region_ids, min(4, regions))})
        node_docs.append({
            "id": node, "name": f"Node {i} ({KINDS[i % len(KINDS)].replace('_', ' ')})", "kind": KINDS[i % len(KINDS)],
            "role": ROLES[i % len(ROLES)] if i else "evergreen", "capabilities": CAPABILITIES[i % len(CAPABILITIES)],
            "cutoff": f"{12 + i % 5}:00", "daily_capacity": 100 + 50 * (i % 20), "priority": 10 + i,
            "backups": [node_ids[0]] if i else [],
            "lanes": [{"region": r, "transit_days": 1 + rng.randrange(5), "cost_per_order": round(rng.uniform(4, 15), 2)}
                      for r in served],
            **({"stock_source": "shipbob-main", "provider_location": str(1000 + i)} if i % 8 == 3 else {}),
        })
    sku_rules = [{"pattern": f"BENCH-{i:03d}-*", "handling": HANDLING[i % len(HANDLING)], "tier": "ABC"[i % 3],
                  "unit_value": round(rng.uniform(5, 80), 2), "category": f"category-{i % 12}"}
                 for i in range(rules)]
    return {
        "platform": "shopify", "shop_domain": f"{SHOP}.myshopify.com", "webhook_secret": "bench-webhook-secret",
        "timezone": "America/New_York", "default_region": rest,
        "regions": region_docs, "nodes": node_docs, "skus": sku_rules,
        "providers": {"shipbob-main": {"type": "shipbob", "token": "bench-token", "channel_id": "100102",
                                       "base_url": "https://sandbox-api.shipbob.com"}},
        "planning": {"hub": node_ids[0], "lead_time_days": 7, "safety_days": 2, "horizon_weeks": 2},
        "rebalance": {"min_transfer_units": 6, "approval_units_over": 300,
                      "lanes": [{"from_node": node_ids[0], "to_node": n, "cost_per_unit": 0.5, "lead_days": 2}
                                for n in node_ids[1:6]]},
        "routing": {"mode": "normal", "modes": {
            "normal": {"rules": ["single_shipment", "fastest", "priority", "cheapest", "most_stock"]},
            "peak": {"rules": ["fastest", "single_shipment", "most_stock", "cheapest"]},
            "disruption": {"rules": ["single_shipment", "cheapest"],
                           "restrict": [{"regions": region_ids[:2], "nodes": node_ids[:1]}]}}},
    }


def build_shop(workdir: Path, args):
    config = sandbox.demo_config(datetime.now(timezone.utc), str(workdir / "bench.db"), "unused", "unused")
    del config["shops"]  # only the big shop, put in through the import every shop takes
    config["web"] |= {"process_inbox": False}
    container = build(settings_from_dict(config, source="bench"))
    container.init_database()
    document = big_shop(args.nodes, args.regions, args.rules, args.seed)
    store = container.open_store()
    try:
        started = time.perf_counter()
        container.shop_config.import_documents(store, {SHOP: document}, "bench", replace=False)
        imported = time.perf_counter() - started
        rng, now = random.Random(args.seed), container.clock()
        node_ids = [n["id"] for n in document["nodes"]]
        with store.write():
            for i in range(args.skus):
                sku = f"BENCH-{i % args.rules:03d}-{i // args.rules:05d}"
                for node in rng.sample(node_ids, 2):
                    units = rng.randrange(0, 60)
                    store.set_stock(SHOP, node, sku, on_hand=units, committed=0, available=units, source="bench",
                                    now=now)
        container.users.add(store, EMAIL, PASSWORD, SHOP)
    finally:
        store.close()
    return container, document, imported


# ---------------------------------------------------------------- forms, read as a browser reads them


class Forms(HTMLParser):
    """Every <form method="post"> with the values a browser would send unchanged."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.forms: list[dict] = []
        self._form: dict | None = None
        self._select: str | None = None
        self._select_first: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag, attrs):
        a = {k: (v if v is not None else "") for k, v in attrs}
        if tag == "form":
            if a.get("method", "get").lower() == "post":
                self._form = {"action": a.get("action", ""), "fields": [], "submit": None}
            return
        form = self._form
        if form is None:
            return
        name = a.get("name")
        if tag == "input" and name and "disabled" not in a:
            kind = a.get("type", "text").lower()
            if kind in ("checkbox", "radio"):
                if "checked" in a:
                    form["fields"].append((name, a.get("value", "on")))
            elif kind in ("submit", "image", "button"):
                form["submit"] = form["submit"] or (name, a.get("value", ""))
            elif kind != "file":
                form["fields"].append((name, a.get("value", "")))
        elif tag == "button" and name and a.get("type", "submit").lower() == "submit":
            form["submit"] = form["submit"] or (name, a.get("value", ""))
        elif tag == "select" and name:
            self._select, self._select_first = name, None
        elif tag == "option" and self._select:
            value = a.get("value")
            if self._select_first is None:
                self._select_first = value
            if "selected" in a:
                form["fields"].append((self._select, value or ""))
                self._select = None  # one chosen (a multiple select would send more; none here yet)
        elif tag == "textarea" and name:
            self._textarea = name
            form["fields"].append((name, ""))

    def handle_data(self, data):
        if self._textarea and self._form:
            name, text = self._form["fields"][-1]
            self._form["fields"][-1] = (name, text + data)

    def handle_endtag(self, tag):
        if tag == "select" and self._select and self._form is not None:
            self._form["fields"].append((self._select, self._select_first or ""))  # nothing selected: the first
            self._select = None
        elif tag == "textarea":
            self._textarea = None
        elif tag == "form" and self._form is not None:
            self.forms.append(self._form)
            self._form = None


def post_forms(page_url: str, html: str) -> list[dict]:
    parser = Forms()
    parser.feed(html)
    out = []
    for form in parser.forms:
        action = urlsplit(urljoin("http://bench" + page_url, form["action"]))
        # Not timed: a removal changes the shop under measurement, a connection test calls the 3PL.
        if action.path.startswith("/settings") and not action.path.endswith(("/remove", "/test")):
            fields = form["fields"] + ([form["submit"]] if form["submit"] else [])
            out.append({"page": page_url, "action": action.path + (f"?{action.query}" if action.query else ""),
                        "fields": fields})
    return out


def form_key(form: dict) -> tuple:
    """One form, wherever it shows: where it posts and the fields it sends."""
    return form["action"], tuple(name for name, _ in form["fields"])


def problem_text(html: str) -> str:
    """What a refused form says: its error messages, or the page's heading."""
    found = re.findall(r'<(?:small|p|div|li|span)[^>]*(?:class="[^"]*error[^"]*"|role="alert"|id="[^"]*-error")[^>]*>'
                       r"(.*?)</", html, re.S)
    text = found or re.findall(r"<h1[^>]*>(.*?)</h1>", html, re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", " / ".join(text[:3]))).strip()[:140]


# ---------------------------------------------------------------- the routes and their arguments


def settings_get_urls(app, values: dict[str, str]) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """([(endpoint, url)], [(endpoint, why not measured)]) for every GET route under /settings."""
    from flask import url_for

    urls, skipped = [], []
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if not rule.rule.startswith("/settings") or "GET" not in rule.methods:
            continue
        missing = sorted(arg for arg in rule.arguments if arg not in values)
        if missing:
            skipped.append((rule.endpoint, f"no value for {', '.join(missing)} (teach tests/web.py url_arguments)"))
            continue
        with app.test_request_context():
            urls.append((rule.endpoint, url_for(rule.endpoint, **{arg: values[arg] for arg in rule.arguments})))
    return urls, skipped


# ---------------------------------------------------------------- measuring


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


class Times(list):
    """Wall times of timed calls, and this process's CPU time for each: on a busy machine
    the wall time includes waiting for a core, the CPU time does not."""

    def __init__(self):
        super().__init__()
        self.cpu: list[float] = []

    def timed(self, call):
        wall, cpu = time.perf_counter(), time.process_time()
        result = call()
        self.append(time.perf_counter() - wall)
        self.cpu.append(time.process_time() - cpu)
        return result


def summary(times: Times) -> str:
    ms = [t * 1000 for t in times]
    return (f"{percentile(ms, 0.5):8.1f} {percentile(ms, 0.95):8.1f} {max(ms):8.1f} "
            f"{percentile([t * 1000 for t in times.cpu], 0.95):8.1f}")


def sign_in(client) -> None:
    page = client.get("/login").get_data(as_text=True)
    token = dict(form_fields(page)).get("csrf_token")
    answer = client.post("/login", data={"csrf_token": token, "email": EMAIL, "password": PASSWORD})
    if answer.status_code != 302:
        raise SystemExit(f"signing in failed: {answer.status_code}")


def form_fields(html: str) -> list[tuple[str, str]]:
    parser = Forms()
    parser.feed(html)
    return [field for form in parser.forms for field in form["fields"]]


def measure_get(client, url: str, n: int) -> tuple[Times, int, str]:
    first = client.get(url)  # warm-up: templates compiled, caches filled
    if first.status_code != 200:
        return Times(), first.status_code, first.get_data(as_text=True)
    times = Times()
    for _ in range(n):
        response = times.timed(lambda: client.get(url))
        if response.status_code != 200:
            return Times(), response.status_code, response.get_data(as_text=True)
    return times, 200, first.get_data(as_text=True)


def measure_save(client, form: dict, n: int) -> tuple[Times, str | None]:
    """Times of n unchanged resubmissions, or the reason the app refused one."""
    times = Times()
    for _ in range(n):
        fresh = [f for f in post_forms(form["page"], client.get(form["page"]).get_data(as_text=True))
                 if form_key(f) == form_key(form)]
        if not fresh:
            return times, "the form is gone from its page after a save"
        response = times.timed(lambda: client.post(form["action"], data=MultiDict(fresh[0]["fields"])))
        if response.status_code not in (302, 303) or urlsplit(response.headers["Location"]).path == "/login":
            return times[:-1], f"{response.status_code}: {problem_text(response.get_data(as_text=True))}"
    return times, None


def measure_update(container, n: int) -> Times:
    store = container.open_store()
    try:
        times = Times()
        for i in range(n):
            document, version = container.shop_config.document(store, SHOP)
            document["nodes"][0]["daily_capacity"] = 1000 + i % 2  # a real change: a new version each time
            times.timed(lambda: container.shop_config.update(store, SHOP, document, version, "bench"))
        return times
    finally:
        store.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=25)
    parser.add_argument("--regions", type=int, default=12)
    parser.add_argument("--rules", type=int, default=200, help="SKU rules")
    parser.add_argument("--skus", type=int, default=20_000, help="SKUs with stock (each at two nodes)")
    parser.add_argument("--requests", type=int, default=30, help="timed requests per page and per form")
    parser.add_argument("--seed", type=int, default=16)
    args = parser.parse_args(argv)
    if min(args.nodes, args.regions, args.rules, args.requests) < 2 or args.skus < 0:
        parser.error("nodes, regions, rules and requests must be at least 2")

    print(f"machine: {machine()}; load {load_average()}; CPU idle {cpu_idle_percent():.0f}%")
    with tempfile.TemporaryDirectory(prefix="bench-settings-") as tmp:
        started = time.perf_counter()
        container, document, imported = build_shop(Path(tmp), args)
        print(f"shop {SHOP}: {args.nodes} nodes, {args.regions} regions, {args.rules} SKU rules, "
              f"{args.skus} SKUs with stock at 2 nodes each; import {imported * 1000:.0f} ms, "
              f"built in {time.perf_counter() - started:.1f} s")
        app = create_app(container, start_worker=False)
        client = app.test_client()
        sign_in(client)
        urls, skipped = settings_get_urls(app, {name: ids[0] for name, ids in url_arguments(document).items() if ids})

        ok = True
        print(f"\n{'render (GET), ms':<60} {'p50':>8} {'p95':>8} {'max':>8} {'cpu p95':>8}  n={args.requests}")
        forms: list[dict] = []
        for endpoint, url in urls:
            times, status, html = measure_get(client, url, args.requests)
            if status != 200:
                ok = False
                print(f"{url:<60} FAILED: {status} {problem_text(html)}")
                continue
            late = percentile(times, 0.95) * 1000 >= TARGET_P95_MS
            ok &= not late
            print(f"{url:<60} {summary(times)}" + ("  over target" if late else ""))
            forms += [f for f in post_forms(url, html) if form_key(f) not in {form_key(g) for g in forms}]
        for endpoint, why in skipped:
            ok = False
            print(f"{endpoint:<60} NOT MEASURED: {why}")

        print(f"\n{'save (POST, the form unchanged), ms':<60} {'p50':>8} {'p95':>8} {'max':>8} {'cpu p95':>8}")
        if not forms:
            print("(no <form method=post> with an action under /settings on these pages yet)")
        for form in forms:
            label = f"{form['action']} (on {form['page']})"
            times, refused = measure_save(client, form, args.requests)
            if refused:
                ok = False
                print(f"{label:<60} REFUSED after {len(times)} saves: {refused}")
                continue
            late = percentile(times, 0.95) * 1000 >= TARGET_P95_MS
            ok &= not late
            print(f"{label:<60} {summary(times)}" + ("  over target" if late else ""))

        update = measure_update(container, args.requests)
        late = percentile(update, 0.95) * 1000 >= TARGET_P95_MS  # every page's save pays it
        ok &= not late
        print(f"\n{'shop_config.update alone (big document)':<60} {summary(update)}"
              + ("  over target" if late else ""))
        print(f"\ntarget: p95 < {TARGET_P95_MS:.0f} ms for every page and save: {'met' if ok else 'NOT met'}")
        print(f"load after: {load_average()}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
