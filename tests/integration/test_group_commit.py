"""Group commit of webhook deliveries: many requests share one fsync'd commit, and
none is acknowledged (200) before the commit holding its row returned.

Requests go through the Flask test client from several threads, marked
``wsgi.multithread`` as gunicorn's gthread worker marks them; without that mark
(sync workers, the plain test client) each delivery is a group of one committed
in the request thread. The crash tests run the app in other processes and kill
them."""
from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

import pytest

from connector import sandbox
from connector.secrets import KEYS_ENV
from connector.services.group_commit import GroupCommit
from connector.store import Store
from tests.conftest import START, TEST_ENCRYPTION_KEY, shopify_headers, to_toml

REPO = Path(__file__).resolve().parents[2]


def delivery(n: int, webhook_id: str | None = None) -> tuple[bytes, dict]:
    payload = sandbox.shopify_order(random.Random(n), 7_000_000 + n, 3_000 + n, START, lines=2)
    body = json.dumps(payload).encode()
    return body, shopify_headers(body, webhook_id=webhook_id or f"wh-{n}")


def stored_ids(store: Store) -> dict[str, int]:
    """webhook_id -> number of inbox rows carrying it."""
    return dict(store._all("SELECT webhook_id, COUNT(*) FROM webhook_inbox GROUP BY webhook_id"))


def wait_until(condition, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.005)


class GatedStore:
    """The group commit's store, whose ``insert_webhooks`` waits until ``release``
    is set (or ``let_one_through`` lets that one group pass): while a leader is
    held there, the test lines up exactly the next group. Records every group;
    reconnects when the group commit closed it after a failed commit."""

    def __init__(self, open_store):
        self.open_store = open_store
        self.store: Store | None = None
        self.entered = threading.Event()
        self.release = threading.Event()
        self._passes = threading.Semaphore(0)
        self.groups: list[list[str]] = []

    def let_one_through(self):
        self._passes.release()

    def insert_webhooks(self, rows):
        self.groups.append([r["webhook_id"] for r in rows])
        self.entered.set()
        deadline = time.monotonic() + 30
        while not self.release.is_set() and not self._passes.acquire(timeout=0.01):
            assert time.monotonic() < deadline, "the test never let this group through"
        if self.store is None:
            self.store = self.open_store()
        return self.store.insert_webhooks(rows)

    def close(self):
        if self.store is not None:
            self.store.close()
            self.store = None


@pytest.fixture
def gated(container):
    return GatedStore(container.open_store)


@pytest.fixture
def group_commit(app, gated):
    """The app's group commit, replaced by one whose writer uses ``gated``."""
    writer = GroupCommit(lambda: gated, max_rows=64, max_wait_seconds=0, queue_size=64, answer_timeout_seconds=30)
    app.extensions["connector_group_commit"] = writer
    yield writer
    gated.release.set()
    writer.stop()


@pytest.fixture
def stop_app_writer(app):
    yield
    app.extensions["connector_group_commit"].stop()


def post(app, body: bytes, headers: dict, threaded: bool = True):
    return app.test_client().post("/webhooks/shopify", data=body, headers=headers, multithread=threaded)


def post_in_threads(app, deliveries, responses: list, offset: int = 0) -> list[threading.Thread]:
    """One thread per delivery; ``responses[offset + i]`` is filled in when it is answered."""

    def send(i, body, headers):
        responses[offset + i] = post(app, body, headers)

    threads = [threading.Thread(target=send, args=(i, b, h)) for i, (b, h) in enumerate(deliveries)]
    for t in threads:
        t.start()
    return threads


def line_up_group(app, writer: GroupCommit, gated: GatedStore, first, rest):
    """``first`` leads a group of one, held in its commit; ``rest`` waits in the
    queue: the next group."""
    responses: list = [None] * (1 + len(rest))
    threads = post_in_threads(app, [first], responses)
    assert gated.entered.wait(30)
    threads += post_in_threads(app, rest, responses, offset=1)
    wait_until(lambda: len(writer._queue) == len(rest), "the requests to queue up")
    return threads, responses


# ---------------------------------------------------------------- grouping


def test_many_concurrent_posts_each_acknowledged_delivery_is_stored_once(app, store, stop_app_writer):
    deliveries = [delivery(n) for n in range(120)]
    sent = deliveries + deliveries  # every delivery twice, from different threads
    random.Random(5).shuffle(sent)
    answers: list = []
    lock = threading.Lock()

    def send(chunk):
        for body, headers in chunk:
            response = post(app, body, headers)
            with lock:
                answers.append((headers["X-Shopify-Webhook-Id"], response.status_code, response.get_json()))

    threads = [threading.Thread(target=send, args=(sent[i::16],)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)

    assert len(answers) == len(sent) and {status for _, status, _ in answers} == {200}
    by_delivery: dict[str, list[dict]] = {}
    for webhook_id, _, body in answers:
        by_delivery.setdefault(webhook_id, []).append(body)
    for webhook_id, bodies in by_delivery.items():
        assert len({b["id"] for b in bodies}) == 1, webhook_id  # both answers name the same row
        assert sorted(b["duplicate"] for b in bodies) == [False, True], webhook_id
    assert stored_ids(store) == {f"wh-{n}": 1 for n in range(120)}
    assert store.count_webhooks() == 120


def test_requests_arriving_during_a_commit_share_the_next_one(app, group_commit, gated, store):
    threads, responses = line_up_group(app, group_commit, gated, delivery(0), [delivery(n) for n in range(1, 6)])
    gated.release.set()
    for t in threads:
        t.join(30)

    assert [len(g) for g in gated.groups] == [1, 5]
    assert [r.status_code for r in responses] == [200] * 6
    assert stored_ids(store) == {f"wh-{n}": 1 for n in range(6)}


def test_duplicates_inside_one_group_are_stored_once(app, group_commit, gated, store):
    a, b = delivery(1), delivery(2)
    threads, responses = line_up_group(app, group_commit, gated, delivery(0), [a, b, a, b, a])
    gated.release.set()
    for t in threads:
        t.join(30)

    assert [len(g) for g in gated.groups] == [1, 5]
    assert [r.status_code for r in responses] == [200] * 6
    answers = [r.get_json() for r in responses[1:]]
    for webhook_id in ("wh-1", "wh-2"):
        mine = [ans for (_, h), ans in zip([a, b, a, b, a], answers) if h["X-Shopify-Webhook-Id"] == webhook_id]
        assert len({ans["id"] for ans in mine}) == 1
        assert [ans["duplicate"] for ans in mine].count(False) == 1
    assert stored_ids(store) == {"wh-0": 1, "wh-1": 1, "wh-2": 1}


# ---------------------------------------------------------------- failures


def fail_every_commit(store: Store) -> None:
    """A deferred foreign key that every inbox insert violates: SQLite accepts each
    row, then refuses the COMMIT itself."""
    store.conn.executescript(
        """
        CREATE TABLE t_parent (id INTEGER PRIMARY KEY);
        CREATE TABLE t_child (parent INTEGER REFERENCES t_parent (id) DEFERRABLE INITIALLY DEFERRED);
        CREATE TRIGGER t_fail_commit AFTER INSERT ON webhook_inbox BEGIN INSERT INTO t_child VALUES (-1); END;
        """
    )


def test_a_failing_commit_answers_every_request_of_its_group_503(app, group_commit, gated, store):
    fail_every_commit(store)
    threads, responses = line_up_group(app, group_commit, gated, delivery(0), [delivery(n) for n in range(1, 5)])
    gated.release.set()
    for t in threads:
        t.join(30)

    assert [len(g) for g in gated.groups] == [1, 4]
    assert [r.status_code for r in responses] == [503] * 5
    assert {r.headers["Retry-After"] for r in responses} == {"1"}
    assert {r.get_json()["error"] for r in responses} == {"unavailable"}
    assert store.count_webhooks() == 0 and store._one("SELECT COUNT(*) FROM t_child") == (0,)

    store.conn.execute("DROP TRIGGER t_fail_commit")  # the next group goes on, on a new connection
    assert post(app, *delivery(9)).status_code == 200
    assert stored_ids(store) == {"wh-9": 1}
    assert [len(g) for g in gated.groups] == [1, 4, 1]


def test_one_bad_row_is_answered_503_and_the_rest_of_its_group_is_stored(app, group_commit, gated, store):
    store.conn.execute("CREATE TRIGGER t_bad_row BEFORE INSERT ON webhook_inbox WHEN NEW.webhook_id = 'wh-2' "
                       "BEGIN SELECT RAISE(ABORT, 'bad row'); END")
    threads, responses = line_up_group(app, group_commit, gated, delivery(0), [delivery(n) for n in range(1, 4)])
    gated.release.set()
    for t in threads:
        t.join(30)

    assert [len(g) for g in gated.groups] == [1, 3]
    assert [r.status_code for r in responses] == [200, 200, 503, 200]
    assert stored_ids(store) == {"wh-0": 1, "wh-1": 1, "wh-3": 1}


def test_a_full_queue_answers_503_at_once(app, gated, store):
    writer = GroupCommit(lambda: gated, max_rows=64, max_wait_seconds=0, queue_size=2, answer_timeout_seconds=30)
    app.extensions["connector_group_commit"] = writer
    try:
        threads, responses = line_up_group(app, writer, gated, delivery(0), [delivery(1), delivery(2)])
        refused = post(app, *delivery(3))
        assert refused.status_code == 503 and refused.headers["Retry-After"] == "1"
        gated.release.set()
        for t in threads:
            t.join(30)
    finally:
        gated.release.set()
        writer.stop()

    assert [r.status_code for r in responses] == [200] * 3
    assert stored_ids(store) == {"wh-0": 1, "wh-1": 1, "wh-2": 1}


def test_a_follower_no_leader_took_in_time_is_503_and_withdrawn(app, gated, store):
    writer = GroupCommit(lambda: gated, max_rows=64, max_wait_seconds=0, queue_size=64, answer_timeout_seconds=0.2)
    app.extensions["connector_group_commit"] = writer
    responses: list = [None]
    try:
        threads = post_in_threads(app, [delivery(0)], responses)  # leads; held in its commit
        assert gated.entered.wait(30)
        gave_up = post(app, *delivery(1))  # queued behind it, and never taken
    finally:
        gated.release.set()
        for t in threads:
            t.join(30)
        writer.stop()

    assert gave_up.status_code == 503 and gave_up.headers["Retry-After"] == "1"
    assert responses[0].status_code == 200
    assert stored_ids(store) == {"wh-0": 1} and not writer._queue  # withdrawn: never stored
    again = post(app, *delivery(1), threaded=False)
    assert again.status_code == 200 and again.get_json()["duplicate"] is False


def test_a_follower_that_gives_up_inside_a_commit_is_503_and_its_redelivery_a_duplicate(app, gated, store):
    writer = GroupCommit(lambda: gated, max_rows=64, max_wait_seconds=0, queue_size=64, answer_timeout_seconds=2)
    app.extensions["connector_group_commit"] = writer
    try:
        threads, responses = line_up_group(app, writer, gated, delivery(0), [delivery(1), delivery(2)])
        gated.entered.clear()
        gated.let_one_through()  # wh-0 commits; the first in the queue leads the other, and is held
        assert gated.entered.wait(30)
        wait_until(lambda: any(r is not None for r in responses[1:]), "the follower inside the held commit to give up")
    finally:
        gated.release.set()
        for t in threads:
            t.join(30)
        writer.stop()

    assert gated.groups[0] == ["wh-0"] and sorted(gated.groups[1]) == ["wh-1", "wh-2"]
    assert responses[0].status_code == 200
    assert sorted(r.status_code for r in responses[1:]) == [200, 503]
    gave_up = next(h for (_, h), r in zip([delivery(1), delivery(2)], responses[1:]) if r.status_code == 503)
    assert stored_ids(store) == {"wh-0": 1, "wh-1": 1, "wh-2": 1}  # committed after all, never acknowledged
    again = post(app, *delivery(int(gave_up["X-Shopify-Webhook-Id"][3:])), threaded=False)
    assert again.status_code == 200 and again.get_json()["duplicate"] is True
    assert store.count_webhooks() == 3


def test_stop_stores_what_is_queued_and_then_refuses(app, group_commit, gated, store):
    threads, responses = line_up_group(app, group_commit, gated, delivery(0), [delivery(1)])
    stopping = threading.Thread(target=group_commit.stop)
    stopping.start()
    gated.release.set()
    stopping.join(30)
    for t in threads:
        t.join(30)

    assert [r.status_code for r in responses] == [200, 200]
    assert stored_ids(store) == {"wh-0": 1, "wh-1": 1}
    late = post(app, *delivery(2))
    assert late.status_code == 503 and store.count_webhooks() == 2


# ---------------------------------------------------------------- one request at a time per process


def test_without_concurrent_requests_each_delivery_commits_alone_in_its_thread(app, client, store):
    response = client.post("/webhooks/shopify", data=delivery(0)[0], headers=delivery(0)[1])

    assert response.status_code == 200 and response.get_json()["duplicate"] is False
    assert stored_ids(store) == {"wh-0": 1}
    assert app.extensions["connector_group_commit"]._store is None  # the group commit was not used


def test_a_failing_commit_alone_is_503_not_500(client, store):
    fail_every_commit(store)
    response = client.post("/webhooks/shopify", data=delivery(0)[0], headers=delivery(0)[1])

    assert response.status_code == 503 and response.headers["Retry-After"] == "1"
    assert store.count_webhooks() == 0


def test_group_commit_off_commits_each_delivery_in_its_request_thread(config_dict, clock, store):
    from connector.bootstrap import build
    from connector.config import settings_from_dict
    from connector.web import create_app

    config_dict["web"] |= {"process_inbox": False, "group_commit": False}
    app = create_app(build(settings_from_dict(config_dict), clock=clock))
    assert "connector_group_commit" not in app.extensions
    assert post(app, *delivery(0)).status_code == 200
    assert stored_ids(store) == {"wh-0": 1}


# ---------------------------------------------------------------- killed processes

_DIE_BEFORE_COMMIT = textwrap.dedent(
    """
    import json, os, sys, threading
    from connector.bootstrap import build
    from connector.config import load_settings
    from connector.services.group_commit import GroupCommit
    from connector.store import Store

    container = build(load_settings(sys.argv[1]))
    deliveries = [(b.encode(), h) for b, h in json.loads(sys.stdin.read())]
    # Groups of exactly three: the leader waits for the third row.
    writer = GroupCommit(container.open_store, max_rows=3, max_wait_seconds=60, queue_size=64,
                         answer_timeout_seconds=60)
    inserted = 0
    original = Store._insert_webhook_row  # one row, inside the group's transaction

    def die_in_second_group(self, **row):
        global inserted
        result = original(self, **row)
        inserted += 1
        if inserted == 6:
            os._exit(9)  # all three rows of the second group written, COMMIT not reached
        return result

    Store._insert_webhook_row = die_in_second_group

    def send(body, headers):
        outcome = container.inbox.ingest(writer, "shopify", body, headers)
        sys.stdout.write(f"{headers['X-Shopify-Webhook-Id']} {outcome.status}\\n")  # one write: no interleaving
        sys.stdout.flush()

    def group(part):
        threads = [threading.Thread(target=send, args=d) for d in part]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    group(deliveries[:3])
    group(deliveries[3:])
    """
)


def test_killed_before_the_commit_of_a_group_no_row_of_it_was_acknowledged(tmp_path, config_file, store):
    deliveries = [delivery(n) for n in range(6)]
    script = tmp_path / "die_before_commit.py"
    script.write_text(_DIE_BEFORE_COMMIT)
    result = subprocess.run([sys.executable, str(script), str(config_file)], cwd=str(REPO), capture_output=True,
                            text=True, timeout=120, env=_env(),
                            input=json.dumps([(b.decode(), h) for b, h in deliveries]))

    assert result.returncode == 9, result.stderr
    acknowledged = sorted(line.split()[0] for line in result.stdout.splitlines() if line.endswith(" 200"))
    assert acknowledged == ["wh-0", "wh-1", "wh-2"]
    assert stored_ids(store) == {"wh-0": 1, "wh-1": 1, "wh-2": 1}


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONNECTOR_")}
    env["PYTHONPATH"] = str(REPO)
    env[KEYS_ENV] = TEST_ENCRYPTION_KEY  # the key the test database's secrets were stored with
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _http_post(port: int, body: bytes, headers: dict) -> int:
    head = ["POST /webhooks/shopify HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close",
            f"Content-Length: {len(body)}", *(f"{k}: {v}" for k, v in headers.items())]
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        response = b""
        while chunk := sock.recv(65536):
            response += chunk
    return int(response[9:12]) if response.startswith(b"HTTP/1.") else 0


@pytest.mark.parametrize("worker_args", [["-k", "gthread", "--threads", "8"], []], ids=["gthread", "sync"])
def test_gunicorn_killed_under_load_loses_no_acknowledged_webhook(tmp_path, config_dict, container, store,
                                                                  worker_args):
    config_dict["web"] |= {"process_inbox": False}
    config = tmp_path / "killed.toml"
    config.write_text(to_toml(config_dict), encoding="utf-8")
    port = _free_port()
    env = {**_env(), "CONNECTOR_CONFIG": str(config)}
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("gunicorn")), "-w", "2", *worker_args, "-b", f"127.0.0.1:{port}",
         "connector.web:create_app()"],
        cwd=str(REPO), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deliveries = [delivery(n, webhook_id=str(uuid.uuid4())) for n in range(1500)]
    acknowledged: list[str] = []
    next_index = iter(range(len(deliveries)))
    lock = threading.Lock()

    def load():
        while True:
            with lock:
                i = next(next_index, None)
            if i is None:
                return
            body, headers = deliveries[i]
            try:
                status = _http_post(port, body, headers)
            except OSError:
                return  # the server is gone
            if status == 200:
                with lock:
                    acknowledged.append(headers["X-Shopify-Webhook-Id"])

    clients = [threading.Thread(target=load) for _ in range(8)]
    try:
        wait_until(lambda: _healthy(port) or server.poll() is not None, "gunicorn to answer", timeout=60)
        assert server.poll() is None, server.stderr.read().decode(errors="replace")
        for t in clients:
            t.start()
        wait_until(lambda: len(acknowledged) >= 200, "some deliveries to be acknowledged", timeout=120)
    finally:
        os.killpg(server.pid, signal.SIGKILL)  # master and workers, mid-load
        server.wait(30)
    for t in clients:
        if t.ident is not None:
            t.join(60)

    with lock:
        acked = list(acknowledged)
    assert len(acked) < len(deliveries), "the load ended before the kill"
    counts = stored_ids(store)
    assert [k for k in acked if counts.get(k) != 1] == []  # every acknowledged one, exactly once
    assert max(counts.values()) == 1

    # Everything redelivered, as the platform would: each delivery ends up stored once.
    from connector.web import create_app

    app = create_app(container, start_worker=False)
    answers = {headers["X-Shopify-Webhook-Id"]: app.test_client().post("/webhooks/shopify", data=body,
                                                                         headers=headers).get_json()
               for body, headers in deliveries}
    assert all(answers[k]["duplicate"] for k in acked)
    assert stored_ids(store) == {headers["X-Shopify-Webhook-Id"]: 1 for _, headers in deliveries}


def _healthy(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return sock.recv(12).startswith(b"HTTP/1.1 200")
    except OSError:
        return False
