"""Tests of clew_client (standard library unittest only).

Two groups:

* ``WireTest`` runs everywhere: it points the client at a tiny stub HTTP
  server in this process to check what goes on the wire (body, token) and how
  answers and errors are decoded.
* ``ServerTest`` drives a real clew server named by the ``CLEW_URL``
  environment variable and is skipped without it. The Rust test
  ``crates/clew/tests/pipeline.rs`` starts a server and runs this file with
  ``CLEW_URL`` set:

      CLEW_URL=http://127.0.0.1:7400 python3 -m unittest -v test_clew_client
"""

import http.server
import json
import os
import socket
import sys
import threading
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import clew_client  # noqa: E402
from clew_client import (  # noqa: E402
    Client,
    ClewError,
    Conflict,
    InvalidArgument,
    Job,
    NotFound,
    Unauthorized,
    Unreachable,
)

CLEW_URL = os.environ.get("CLEW_URL")


class _Stub(http.server.BaseHTTPRequestHandler):
    """Answers every POST with the server's ``reply`` (status, content type,
    body) and records the request."""

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        self.server.requests.append((self.path, dict(self.headers), body))
        status, ctype, text = self.server.reply
        data = text.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


class WireTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = http.server.HTTPServer(("127.0.0.1", 0), _Stub)
        cls.server.requests = []
        cls.server.reply = (200, "application/json", '{"result": null}')
        cls.thread = threading.Thread(target=cls.server.serve_forever, daemon=True)
        cls.thread.start()
        cls.url = "http://127.0.0.1:%d/" % cls.server.server_address[1]

    @classmethod
    def tearDownClass(cls):
        cls.server.shutdown()
        cls.server.server_close()

    def setUp(self):
        self.server.requests.clear()

    def reply(self, status, body, ctype="application/json"):
        self.server.reply = (status, ctype, body if isinstance(body, str) else json.dumps(body))

    def sent(self):
        self.assertEqual(len(self.server.requests), 1)
        path, headers, body = self.server.requests[0]
        self.assertEqual(path, "/v1/qless")
        return headers, json.loads(body)

    def test_put_sends_the_qless_argument_order_and_json_data(self):
        self.reply(200, {"result": "j1"})
        jid = Client(self.url).put(
            "q", "K", {"a": [1, 2]}, jid="j1", delay=2.5, priority=3, tags=["x", "y"],
            retries=1, depends=["d1"], worker="w",
        )
        self.assertEqual(jid, "j1")
        headers, body = self.sent()
        self.assertEqual(headers.get("Content-Type"), "application/json")
        self.assertNotIn("Authorization", headers)
        self.assertEqual(body["command"], "put")
        self.assertEqual(
            body["args"],
            ["w", "q", "j1", "K", '{"a": [1, 2]}', "2.5", "priority", "3",
             "tags", '["x", "y"]', "retries", "1", "depends", '["d1"]'],
        )
        self.assertTrue(all(isinstance(a, str) for a in body["args"]))

    def test_put_sends_unique_key_and_on_conflict_as_pairs(self):
        self.reply(200, {"result": "holder"})
        jid = Client(self.url).put(
            "q", "K", {}, jid="j1", worker="w", unique_key="search:user-42", on_conflict="refuse",
        )
        self.assertEqual(jid, "holder")
        _, body = self.sent()
        self.assertEqual(
            body["args"],
            ["w", "q", "j1", "K", "{}", "0", "unique", "search:user-42", "on-conflict", "refuse"],
        )
    def test_put_throttles_and_throttle_commands_on_the_wire(self):
        self.reply(200, {"result": "j1"})
        Client(self.url).put("q", "K", {}, jid="j1", worker="w", throttles=["cust-1", "api"])
        _, body = self.sent()
        self.assertEqual(body["args"][-2:], ["throttles", '["cust-1", "api"]'])
        self.server.requests.clear()
        self.reply(200, {"result": {"name": "t", "max": 3, "running": 0, "pending": 0}})
        self.assertEqual(Client(self.url).throttle_set("t", 3)["max"], 3)
        _, body = self.sent()
        self.assertEqual((body["command"], body["args"]), ("throttle.set", ["t", "3"]))
        self.server.requests.clear()
        self.reply(200, {"result": {"name": "t", "max": 0, "running": 0, "pending": 0,
                                    "rate": {"limit": 10, "period": 60}, "started": 0}})
        Client(self.url).throttle_set("t", 0, rate=(10, 60))
        _, body = self.sent()
        self.assertEqual(body["args"], ["t", "0", "rate", "10", "60"])

    def test_namespace_goes_in_a_header_and_a_mismatch_is_a_conflict(self):
        self.reply(200, {"result": "j1"})
        Client(self.url, namespace="proj-a").put("q", "K", {}, jid="j1", worker="w")
        headers, _ = self.sent()
        self.assertEqual(headers.get("X-Clew-Namespace"), "proj-a")
        self.server.requests.clear()
        Client(self.url).put("q", "K", {}, jid="j1", worker="w")
        headers, _ = self.sent()
        self.assertNotIn("X-Clew-Namespace", headers)
        self.server.requests.clear()
        self.reply(409, {"error": {"code": "namespace_mismatch", "message": "serves a"}})
        with self.assertRaises(Conflict) as cm:
            Client(self.url, namespace="b").put("q", "K", {}, jid="j1", worker="w")
        self.assertEqual(cm.exception.code, "namespace_mismatch")

    def test_put_makes_a_uuid4_hex_jid(self):
        self.reply(200, {"result": "whatever"})
        Client(self.url).put("q", "K", {})
        _, body = self.sent()
        jid = body["args"][2]
        self.assertEqual(len(jid), 32)
        self.assertEqual(uuid.UUID(hex=jid).version, 4)

    def test_token_is_sent_as_bearer(self):
        self.reply(200, {"result": []})
        self.assertEqual(Client(self.url, token="s3cret").queues(), [])
        headers, body = self.sent()
        self.assertEqual(headers.get("Authorization"), "Bearer s3cret")
        self.assertEqual(body, {"command": "queues", "args": []})

    def test_complete_options_are_name_value_pairs(self):
        self.reply(200, {"result": "scheduled"})
        state = Client(self.url).complete("j", "w", "q", {"k": 1}, next="q2", delay=5, depends=[])
        self.assertEqual(state, "scheduled")
        _, body = self.sent()
        self.assertEqual(body["args"], ["j", "w", "q", '{"k": 1}', "next", "q2", "delay", "5", "depends", "[]"])

    def test_error_statuses_map_to_subclasses(self):
        cases = [(400, InvalidArgument), (401, Unauthorized), (404, NotFound), (409, Conflict), (500, ClewError)]
        for status, cls in cases:
            with self.subTest(status=status):
                self.reply(status, {"error": {"code": "c%d" % status, "message": "m%d" % status}})
                with self.assertRaises(cls) as ctx:
                    Client(self.url).call("get", "j")
                self.assertIsInstance(ctx.exception, ClewError)
                self.assertEqual(ctx.exception.status, status)
                self.assertEqual(ctx.exception.code, "c%d" % status)
                self.assertEqual(ctx.exception.message, "m%d" % status)
                self.assertIn("m%d" % status, str(ctx.exception))

    def test_a_non_json_error_body_still_raises_with_its_text(self):
        self.reply(502, "<html>bad gateway</html>", ctype="text/html")
        with self.assertRaises(ClewError) as ctx:
            Client(self.url).call("queues")
        self.assertEqual(ctx.exception.status, 502)
        self.assertEqual(ctx.exception.code, "bad_response")
        self.assertIn("bad gateway", ctx.exception.message)

    def test_a_200_without_result_is_an_error(self):
        self.reply(200, {"something": 1})
        with self.assertRaises(ClewError) as ctx:
            Client(self.url).call("queues")
        self.assertEqual(ctx.exception.code, "bad_response")

    def test_unreachable_server(self):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        sock.close()  # nothing listens there now
        with self.assertRaises(Unreachable) as ctx:
            Client("http://127.0.0.1:%d" % port, timeout=2).call("queues")
        self.assertIsNone(ctx.exception.status)
        self.assertIn("cannot reach", ctx.exception.message)

    def test_unsupported_argument_types_are_refused_before_sending(self):
        with self.assertRaises(TypeError):
            Client(self.url).call("get", object())
        with self.assertRaises(TypeError):
            Client(self.url).call("get", True)
        self.assertEqual(self.server.requests, [])

    def sent_json(self, path):
        self.assertEqual(len(self.server.requests), 1)
        sent_path, headers, body = self.server.requests[0]
        self.assertEqual(sent_path, path)
        self.assertEqual(headers.get("Content-Type"), "application/json")
        return json.loads(body)

    def test_put_many_posts_the_jobs_with_jids_and_json_data(self):
        self.reply(201, {"jids": ["given", "made"]})
        jids = Client(self.url).put_many([
            {"queue": "q", "klass": "K", "data": {"a": 1}, "jid": "given", "priority": 3, "worker": "w"},
            {"queue": "q2", "klass": "K2", "data": '{"b": [2]}', "tags": ["t"], "delay": None},
        ])
        self.assertEqual(jids, ["given", "made"])
        body = self.sent_json("/v1/batch/put")
        first, second = body["jobs"]
        self.assertEqual(first, {"queue": "q", "klass": "K", "data": {"a": 1}, "jid": "given", "priority": 3, "worker": "w"})
        self.assertEqual(second["data"], {"b": [2]})  # JSON text sent as its value
        self.assertEqual(uuid.UUID(hex=second["jid"]).version, 4)
        self.assertEqual(second["worker"], clew_client.default_worker_name())
        self.assertNotIn("delay", second)  # None is left out

    def test_put_sends_the_batch_pair(self):
        self.reply(200, {"result": "j"})
        Client(self.url).put("q", "K", {}, jid="j", batch="b1", worker="w")
        _, body = self.sent()
        self.assertEqual(body["args"], ["w", "q", "j", "K", "{}", "0", "batch", "b1"])

    def test_create_batch_posts_jobs_and_callback(self):
        self.reply(201, {"batch": {"id": "b1", "total": 1}, "jids": ["a"]})
        out = Client(self.url).create_batch(
            [{"queue": "q", "klass": "K", "data": '{"n": 1}', "jid": "a"}],
            id="b1", description="nightly",
            callback={"queue": "cb", "klass": "Done", "data": {"x": 1}},
        )
        self.assertEqual(out["jids"], ["a"])
        body = self.sent_json("/v1/batches")
        self.assertEqual(body["id"], "b1")
        self.assertEqual(body["description"], "nightly")
        self.assertNotIn("metadata", body)
        self.assertEqual(body["callback"], {"queue": "cb", "klass": "Done", "data": {"x": 1}})
        self.assertEqual(body["jobs"][0]["data"], {"n": 1})

    def test_batch_reads_go_through_the_qless_endpoint(self):
        self.reply(200, {"result": {"id": "b1", "pending": 0}})
        self.assertEqual(Client(self.url).batch("b1")["pending"], 0)
        _, body = self.sent()
        self.assertEqual((body["command"], body["args"]), ("batch.get", ["b1"]))

    def test_put_many_refuses_data_that_is_not_json_before_sending(self):
        with self.assertRaises(ValueError) as ctx:
            Client(self.url).put_many([{"queue": "q", "klass": "K", "data": "{nope"}])
        self.assertIn("jobs[0].data", str(ctx.exception))
        self.assertEqual(self.server.requests, [])

    def test_put_many_raises_the_refusal(self):
        self.reply(400, {"error": {"code": "invalid_argument", "message": "jobs[1].queue: missing"}})
        with self.assertRaises(InvalidArgument) as ctx:
            Client(self.url).put_many([{"queue": "q", "klass": "K"}, {"klass": "K"}])
        self.assertEqual(ctx.exception.message, "jobs[1].queue: missing")

    def test_complete_many_returns_states_and_refusals_in_order(self):
        self.reply(200, {"results": [
            {"jid": "a", "state": "complete"},
            {"jid": "b", "error": {"code": "conflict", "message": "held by w2"}},
            {"jid": "c", "error": {"code": "not_found", "message": "job c does not exist"}},
            {"jid": "d", "state": "waiting"},
        ]})
        job = Job({"jid": "a", "queue": "q", "data": '{"n": 1}', "worker": "w"})
        results = Client(self.url).complete_many("w", [job, {"jid": "b"}, {"jid": "c"}, {"jid": "d", "next": "q2", "data": "[1]"}])
        body = self.sent_json("/v1/batch/complete")
        self.assertEqual(body, {"worker": "w", "jobs": [
            {"jid": "a", "queue": "q", "data": {"n": 1}},
            {"jid": "b"},
            {"jid": "c"},
            {"jid": "d", "next": "q2", "data": [1]},
        ]})
        self.assertEqual(results[0], "complete")
        self.assertIsInstance(results[1], Conflict)
        self.assertEqual((results[1].status, results[1].message), (409, "held by w2"))
        self.assertIsInstance(results[2], NotFound)
        self.assertEqual(results[3], "waiting")

    def test_fail_many_returns_jids_and_refusals_in_order(self):
        self.reply(200, {"results": [
            {"jid": "a", "state": "failed"},
            {"jid": "b", "error": {"code": "conflict", "message": "not running"}},
        ]})
        results = Client(self.url).fail_many("w", [
            {"jid": "a", "group": "g", "message": "m", "data": {"x": 1}},
            {"jid": "b", "group": "g", "message": "m"},
        ])
        body = self.sent_json("/v1/batch/fail")
        self.assertEqual(body["worker"], "w")
        self.assertEqual(body["jobs"][0], {"jid": "a", "group": "g", "message": "m", "data": {"x": 1}})
        self.assertEqual(results[0], "a")
        self.assertIsInstance(results[1], Conflict)

    def test_job_parses_data_and_exposes_fields(self):
        raw = {
            "jid": "j", "klass": "K", "queue": "q", "state": "running", "worker": "w",
            "priority": 2, "retries": 5, "remaining": 4, "expires": 123.5,
            "data": '{"n": 1}', "tags": ["t"], "history": [{"what": "put", "q": "q", "when": 1}],
            "failure": {}, "tracked": False, "dependencies": [], "dependents": ["d"],
        }
        job = Job(raw)
        self.assertEqual((job.jid, job.klass, job.queue, job.state, job.worker), ("j", "K", "q", "running", "w"))
        self.assertEqual(job.data, {"n": 1})
        self.assertEqual((job.priority, job.retries, job.remaining, job.expires), (2, 5, 4, 123.5))
        self.assertEqual(job.tags, ["t"])
        self.assertEqual(job.history[0]["what"], "put")
        self.assertEqual(job.dependents, ["d"])
        self.assertIs(job.raw, raw)
        self.assertIn("j", repr(job))
        with self.assertRaises(ValueError):
            job.complete()  # not bound to a client


class RecurWireTest(unittest.TestCase):
    """What the recurring-job methods send (WireTest's stub server)."""

    setUpClass = WireTest.__dict__["setUpClass"]
    tearDownClass = WireTest.__dict__["tearDownClass"]
    setUp = WireTest.setUp
    reply = WireTest.reply
    sent = WireTest.sent

    def test_recur_cron_sends_the_qless_cron_form(self):
        self.reply(200, {"result": "r1"})
        jid = Client(self.url).recur(
            "q", "K", {"a": 1}, cron="*/5 * * * *", timezone="Europe/Paris", missed="skip",
            jid="r1", priority=2,
        )
        self.assertEqual(jid, "r1")
        _, body = self.sent()
        self.assertEqual(body["command"], "recur")
        self.assertEqual(
            body["args"],
            ["q", "r1", "K", '{"a": 1}', "cron", "*/5 * * * *", "0", "priority", "2",
             "timezone", "Europe/Paris", "missed", "skip"],
        )

    def test_recur_interval_and_update(self):
        self.reply(200, {"result": True})
        Client(self.url).recur("q", "K", "{}", interval=60, jid="r2")
        _, body = self.sent()
        self.assertEqual(body["args"], ["q", "r2", "K", "{}", "interval", "60", "0"])
        self.server.requests.clear()
        Client(self.url).recur_update("r2", cron="0 * * * *", missed="catch-up", data={"b": 2})
        _, body = self.sent()
        self.assertEqual(body["command"], "recur.update")
        self.assertEqual(
            body["args"], ["r2", "cron", "0 * * * *", "missed", "catch-up", "data", '{"b": 2}']
        )

    def test_recur_needs_exactly_one_schedule(self):
        with self.assertRaises(ValueError):
            Client(self.url).recur("q", "K", {}, interval=5, cron="* * * * *")
        with self.assertRaises(ValueError):
            Client(self.url).recur("q", "K", {})
        self.assertEqual(self.server.requests, [])


@unittest.skipUnless(CLEW_URL, "set CLEW_URL to run against a real clew server")
class ServerTest(unittest.TestCase):
    """Against a real server; every test uses its own queue names."""

    def setUp(self):
        self.client = Client(CLEW_URL)
        self.q = "py-" + uuid.uuid4().hex[:10]
        self.worker = "pyw-" + uuid.uuid4().hex[:6]

    def put_and_pop(self, data=None, **kw):
        jid = self.client.put(self.q, "Klass", data or {"n": 1}, **kw)
        jobs = self.client.pop(self.q, self.worker)
        self.assertEqual([j.jid for j in jobs], [jid])
        return jobs[0]

    def test_a_server_refuses_another_namespace(self):
        with self.assertRaises(Conflict) as cm:
            Client(CLEW_URL, namespace="py-other-ns").put(self.q, "Klass", {})
        self.assertEqual(cm.exception.code, "namespace_mismatch")
        self.assertIn("py-other-ns", cm.exception.message)
        jid = Client(CLEW_URL, namespace="default").put(self.q, "Klass", {})
        self.assertEqual(self.client.get(jid).jid, jid)

    def test_put_then_get(self):
        jid = self.client.put(self.q, "Klass", {"n": 1, "s": "é"}, priority=7, tags=["a", "b"], retries=2)
        self.assertEqual(len(jid), 32)
        job = self.client.get(jid)
        self.assertEqual(job.jid, jid)
        self.assertEqual(job.klass, "Klass")
        self.assertEqual(job.queue, self.q)
        self.assertEqual(job.state, "waiting")
        self.assertEqual(job.data, {"n": 1, "s": "é"})
        self.assertEqual(job.priority, 7)
        self.assertEqual(sorted(job.tags), ["a", "b"])
        self.assertEqual((job.retries, job.remaining), (2, 2))
        self.assertEqual(job.worker, "")
        self.assertEqual(job.history[0]["what"], "put")
        self.assertEqual(job.history[0]["q"], self.q)

    def test_put_with_an_explicit_jid_and_data_text(self):
        jid = "py-" + uuid.uuid4().hex
        self.assertEqual(self.client.put(self.q, "K", '{"raw": true}', jid=jid), jid)
        self.assertEqual(self.client.get(jid).data, {"raw": True})

    def test_recur_cron_template(self):
        jid = "py-" + uuid.uuid4().hex
        self.assertEqual(
            self.client.recur(self.q, "Report", {"n": 1}, cron="*/5 * * * *",
                              timezone="Europe/Paris", missed="skip", jid=jid),
            jid,
        )
        t = self.client.recur_get(jid)
        self.assertEqual((t["cron"], t["timezone"], t["missed"]),
                         ("*/5 * * * *", "Europe/Paris", "skip"))
        self.assertGreater(t["next_at"], time.time())
        self.assertTrue(self.client.recur_update(jid, cron="@hourly", missed="catch-up"))
        self.assertEqual(self.client.recur_get(jid)["cron"], "@hourly")
        with self.assertRaises(InvalidArgument) as e:
            self.client.recur(self.q, "K", {}, cron="* * *", jid=jid)
        self.assertIn("5 fields", str(e.exception))
        with self.assertRaises(InvalidArgument):
            self.client.recur_update(jid, timezone="Nowhere/Else")
        self.assertEqual(self.client.recur_get(jid)["cron"], "@hourly")
        self.assertTrue(self.client.unrecur(jid))
        self.assertIsNone(self.client.recur_get(jid))

    def test_get_missing_is_none(self):
        self.assertIsNone(self.client.get("no-such-" + uuid.uuid4().hex))

    def test_pop_empty_and_count(self):
        self.assertEqual(self.client.pop(self.q, self.worker), [])
        jids = [self.client.put(self.q, "K", {"i": i}) for i in range(3)]
        jobs = self.client.pop(self.q, self.worker, count=2)
        self.assertEqual([j.jid for j in jobs], jids[:2])
        for job in jobs:
            self.assertEqual(job.state, "running")
            self.assertEqual(job.worker, self.worker)
            self.assertGreater(job.expires, time.time() - 5)
        self.assertEqual([j.jid for j in self.client.pop(self.q, self.worker, count=5)], jids[2:])

    def test_heartbeat_renews_and_can_replace_data(self):
        job = self.put_and_pop()
        expiry = self.client.heartbeat(job.jid, self.worker)
        self.assertGreaterEqual(expiry, int(job.expires))
        self.client.heartbeat(job.jid, self.worker, {"progress": 50})
        self.assertEqual(self.client.get(job.jid).data, {"progress": 50})
        self.assertGreaterEqual(job.heartbeat(), expiry)  # the bound form

    def test_heartbeat_errors(self):
        job = self.put_and_pop()
        with self.assertRaises(Conflict) as ctx:
            self.client.heartbeat(job.jid, "someone-else")
        self.assertEqual(ctx.exception.status, 409)
        self.assertEqual(ctx.exception.code, "conflict")
        self.assertIn("given out to another worker", ctx.exception.message)
        with self.assertRaises(NotFound) as ctx:
            self.client.heartbeat("no-such-job", self.worker)
        self.assertEqual(ctx.exception.message, "Heartbeat(): Job no-such-job does not exist")

    def test_complete_finishes_a_job(self):
        job = self.put_and_pop()
        self.assertEqual(self.client.complete(job.jid, self.worker, self.q, {"done": 1}), "complete")
        done = self.client.get(job.jid)
        self.assertEqual(done.state, "complete")
        self.assertEqual(done.data, {"done": 1})
        self.assertEqual([h["what"] for h in done.history], ["put", "popped", "done"])
        with self.assertRaises(Conflict):
            self.client.complete(job.jid, self.worker, self.q, {})

    def test_complete_with_next_moves_the_job(self):
        job = self.put_and_pop()
        q2 = self.q + "-next"
        self.assertEqual(self.client.complete(job.jid, self.worker, self.q, {"a": 1}, next=q2), "waiting")
        moved = self.client.get(job.jid)
        self.assertEqual((moved.queue, moved.state), (q2, "waiting"))
        self.assertEqual([j.jid for j in self.client.pop(q2, self.worker)], [job.jid])

    def test_complete_with_next_and_delay_schedules(self):
        job = self.put_and_pop()
        state = self.client.complete(job.jid, self.worker, self.q, {}, next=self.q + "-later", delay=3600)
        self.assertEqual(state, "scheduled")
        self.assertEqual(self.client.queues(self.q + "-later")["scheduled"], 1)

    def test_complete_delay_without_next_is_invalid(self):
        job = self.put_and_pop()
        with self.assertRaises(InvalidArgument) as ctx:
            self.client.complete(job.jid, self.worker, self.q, {}, delay=5)
        self.assertIn('"delay" and "depends" can only be used with "next"', ctx.exception.message)
        self.assertEqual(self.client.get(job.jid).state, "running")  # no state change

    def test_fail_records_the_failure(self):
        job = self.put_and_pop()
        self.assertEqual(self.client.fail(job.jid, self.worker, "py-group", "boom", {"why": "x"}), job.jid)
        failed = self.client.get(job.jid)
        self.assertEqual(failed.state, "failed")
        self.assertEqual(failed.failure["group"], "py-group")
        self.assertEqual(failed.failure["message"], "boom")
        self.assertEqual(failed.data, {"why": "x"})

    def test_retry_requeues_and_spends_a_retry(self):
        job = self.put_and_pop(retries=3)
        left = self.client.retry(job.jid, self.q, self.worker)
        self.assertEqual(left, 2)
        again = self.client.get(job.jid)
        self.assertEqual((again.state, again.remaining), ("waiting", 2))

    def test_cancel(self):
        a = self.client.put(self.q, "K", {})
        b = self.client.put(self.q, "K", {})
        self.assertEqual(sorted(self.client.cancel(a, b)), sorted([a, b]))
        self.assertIsNone(self.client.get(a))
        self.assertIsNone(self.client.get(b))

    def test_depends_holds_a_job(self):
        first = self.client.put(self.q, "K", {})
        second = self.client.put(self.q, "K", {}, depends=[first])
        self.assertEqual(self.client.get(second).state, "depends")
        self.assertEqual(self.client.get(second).dependencies, [first])

    def test_queues_counts(self):
        self.client.put(self.q, "K", {})
        self.client.put(self.q, "K", {})
        self.client.pop(self.q, self.worker)
        counts = self.client.queues(self.q)
        self.assertEqual(counts["name"], self.q)
        self.assertEqual((counts["waiting"], counts["running"]), (1, 1))
        self.assertIn(self.q, [q["name"] for q in self.client.queues()])

    def test_throttles_hold_jobs_back_until_a_slot_frees(self):
        name = "py-throttle-" + uuid.uuid4().hex[:8]
        self.assertEqual(
            self.client.throttle_set(name, 1),
            {"name": name, "max": 1, "running": 0, "pending": 0},
        )
        a = self.client.put(self.q, "K", {}, throttles=[name])
        b = self.client.put(self.q, "K", {}, throttles=[name])
        self.assertEqual(self.client.get(a).throttles, [name])
        jobs = self.client.pop(self.q, self.worker, 5)
        self.assertEqual([j.jid for j in jobs], [a])
        self.assertEqual(self.client.get(b).state, "throttled")
        self.assertEqual(self.client.queues(self.q)["throttled"], 1)
        got = self.client.throttle_get(name)
        self.assertEqual((got["running"], got["pending"]), (1, 1))
        self.assertIn(name, [t["name"] for t in self.client.throttles()])
        jobs[0].complete()
        self.assertEqual(self.client.get(b).state, "waiting")
        self.assertEqual([j.jid for j in self.client.pop(self.q, self.worker, 5)], [b])
        self.client.throttle_delete(name)
        with self.assertRaises(NotFound):
            self.client.throttle_get(name)
        with self.assertRaises(InvalidArgument):
            self.client.throttle_set(name, -1)

    def test_a_throttle_rate_holds_jobs_back(self):
        name = "py-rate-" + uuid.uuid4().hex[:8]
        got = self.client.throttle_set(name, 0, rate=(1, 3600))
        self.assertEqual((got["rate"], got["started"]), ({"limit": 1, "period": 3600}, 0))
        a = self.client.put(self.q, "K", {}, throttles=[name])
        b = self.client.put(self.q, "K", {}, throttles=[name])
        self.assertEqual([j.jid for j in self.client.pop(self.q, self.worker, 5)], [a])
        self.assertEqual(self.client.get(b).state, "throttled")
        self.assertEqual(self.client.throttle_get(name)["started"], 1)
        with self.assertRaises(InvalidArgument):
            self.client.throttle_set(name, 0, rate=(0, 60))
        self.assertNotIn("rate", self.client.throttle_set(name, 0))
        self.assertEqual(self.client.get(b).state, "waiting")
        self.client.throttle_delete(name)

    def test_bad_arguments_are_invalid_and_name_the_field(self):
        with self.assertRaises(InvalidArgument) as ctx:
            self.client.put(self.q, "K", {}, priority="high")
        self.assertEqual(ctx.exception.status, 400)
        self.assertEqual(ctx.exception.code, "invalid_argument")
        self.assertIn('"priority"', ctx.exception.message)
        with self.assertRaises(InvalidArgument) as ctx:
            self.client.put(self.q, "K", "{not json")
        self.assertIn('"data" not JSON', ctx.exception.message)
        self.assertEqual(self.client.queues(self.q)["waiting"], 0)  # nothing was put

    def test_put_many_puts_all_in_order(self):
        jobs = [{"queue": self.q, "klass": "K%d" % i, "data": {"i": i}, "priority": i} for i in range(5)]
        jobs[2]["jid"] = "py-" + uuid.uuid4().hex
        jobs[4]["tags"] = ["many"]
        jids = self.client.put_many(jobs)
        self.assertEqual(len(jids), 5)
        self.assertEqual(jids[2], jobs[2]["jid"])
        for i, jid in enumerate(jids):
            job = self.client.get(jid)
            self.assertEqual((job.queue, job.klass, job.data, job.priority), (self.q, "K%d" % i, {"i": i}, i))
        self.assertEqual(self.client.get(jids[4]).tags, ["many"])
        self.assertEqual(self.client.queues(self.q)["waiting"], 5)

    def test_unique_key_policies(self):
        key = "py-key-" + uuid.uuid4().hex
        a = self.client.put(self.q, "K", {"n": 1}, unique_key=key)
        self.assertEqual(self.client.get(a).unique_key, key)
        # existing (default): the holder's jid, nothing changes.
        self.assertEqual(self.client.put(self.q, "K", {"n": 2}, unique_key=key), a)
        self.assertEqual(self.client.get(a).data, {"n": 1})
        # replace: the holder's data.
        self.assertEqual(self.client.put(self.q, "K", {"n": 3}, unique_key=key, on_conflict="replace"), a)
        self.assertEqual(self.client.get(a).data, {"n": 3})
        # refuse: Conflict naming the holder.
        with self.assertRaises(Conflict) as ctx:
            self.client.put(self.q, "K", {}, unique_key=key, on_conflict="refuse")
        self.assertIn(a, ctx.exception.message)
        # A bad policy is the caller's error.
        with self.assertRaises(InvalidArgument) as ctx:
            self.client.put(self.q, "K", {}, unique_key=key, on_conflict="merge")
        self.assertIn("on-conflict", ctx.exception.message)
        # Running holder: replace is refused; once complete, the key is free.
        job = self.client.pop(self.q, self.worker)[0]
        self.assertEqual(job.jid, a)
        with self.assertRaises(Conflict):
            self.client.put(self.q, "K", {}, unique_key=key, on_conflict="replace")
        job.complete()
        b = self.client.put(self.q, "K", {}, unique_key=key, on_conflict="refuse")
        self.assertNotEqual(b, a)
        self.assertEqual(self.client.get(b).unique_key, key)
        self.assertEqual(self.client.unique_get(key).jid, b)
        self.assertIsNone(self.client.unique_get(key + "-free"))
        self.assertIsNone(self.client.get(self.client.put(self.q, "K", {})).unique_key)

    def test_put_many_with_one_key_twice(self):
        key = "py-key-" + uuid.uuid4().hex
        jids = self.client.put_many([
            {"queue": self.q, "klass": "K", "data": {}, "unique_key": key},
            {"queue": self.q, "klass": "K", "data": {}, "unique_key": key},
        ])
        self.assertEqual(jids[0], jids[1])
        self.assertEqual(self.client.queues(self.q)["waiting"], 1)
    def test_a_batch_puts_its_callback_when_every_job_finished(self):
        bid = "py-" + uuid.uuid4().hex
        cbq = self.q + "-cb"
        out = self.client.create_batch(
            [{"queue": self.q, "klass": "K", "data": {"i": i}} for i in range(3)],
            id=bid, description="py", metadata={"who": "py"},
            callback={"queue": cbq, "klass": "Done", "data": {"x": 1}},
        )
        self.assertEqual(out["batch"]["id"], bid)
        self.assertEqual(out["batch"]["pending"], 3)
        jids = out["jids"]
        self.assertEqual(self.client.get(jids[0]).batch, bid)
        self.assertEqual(self.client.batch_jobs(bid)["total"], 3)
        extra = self.client.put(self.q, "K", {}, batch=bid)
        self.assertEqual(self.client.batch(bid)["total"], 4)
        jobs = self.client.pop(self.q, self.worker, 10)
        self.assertEqual(len(jobs), 4)
        for job in jobs[:2]:
            job.complete()
        jobs[2].fail("G", "boom")
        self.assertIsNone(self.client.batch(bid)["callback_jid"])
        self.client.cancel(extra)
        b = self.client.batch(bid)
        self.assertEqual((b["pending"], b["complete"], b["failed"], b["canceled"]), (0, 2, 1, 1))
        self.assertEqual(b["callback_state"], "waiting")
        (cb,) = self.client.pop(cbq, self.worker)
        self.assertEqual(cb.jid, b["callback_jid"])
        self.assertEqual(cb.data["x"], 1)
        self.assertEqual(cb.data["batch"], {"id": bid, "total": 4, "complete": 2, "failed": 1, "canceled": 1})
        self.assertIn(bid, [x["id"] for x in self.client.batches(0, 100)["batches"]])
        with self.assertRaises(Conflict):
            self.client.create_batch([{"queue": self.q, "klass": "K"}], id=bid)
        with self.assertRaises(Conflict):
            self.client.put(self.q, "K", {}, batch=bid)
        self.assertIsNone(self.client.batch("py-missing-" + uuid.uuid4().hex))
        with self.assertRaises(NotFound):
            self.client.cancel_batch("py-missing-" + uuid.uuid4().hex)

    def test_put_many_is_all_or_nothing(self):
        with self.assertRaises(InvalidArgument) as ctx:
            self.client.put_many([
                {"queue": self.q, "klass": "K", "data": {}},
                {"queue": self.q, "klass": "K", "data": {}, "retries": -1},
                {"queue": self.q, "klass": "K", "data": {}},
            ])
        self.assertIn("jobs[1]", ctx.exception.message)
        self.assertIn("retries", ctx.exception.message)
        with self.assertRaises(InvalidArgument) as ctx:
            self.client.put_many([])
        self.assertIn("jobs", ctx.exception.message)
        self.assertEqual(self.client.queues(self.q)["waiting"], 0)  # nothing was put

    def test_complete_many_completes_each_on_its_own(self):
        jids = self.client.put_many([{"queue": self.q, "klass": "K", "data": {"i": i}} for i in range(3)])
        mine = self.client.pop(self.q, self.worker, count=2)
        other = self.client.pop(self.q, "someone-else")
        self.assertEqual([j.jid for j in mine + other], jids)
        mine[0].data["done"] = True
        results = self.client.complete_many(self.worker, [mine[0], {"jid": jids[1], "next": self.q + "-next"}, other[0]])
        self.assertEqual(results[:2], ["complete", "waiting"])
        self.assertIsInstance(results[2], Conflict)
        self.assertEqual(results[2].code, "conflict")
        self.assertEqual(self.client.get(jids[0]).data, {"i": 0, "done": True})
        self.assertEqual(self.client.get(jids[1]).queue, self.q + "-next")
        self.assertEqual(self.client.get(jids[2]).state, "running")

    def test_fail_many_fails_each_on_its_own(self):
        jids = self.client.put_many([{"queue": self.q, "klass": "K", "data": {}} for _ in range(2)])
        popped = self.client.pop(self.q, self.worker)
        self.assertEqual([j.jid for j in popped], jids[:1])
        group = "py-many-" + uuid.uuid4().hex[:6]
        results = self.client.fail_many(self.worker, [
            {"jid": jids[0], "group": group, "message": "boom"},
            {"jid": jids[1], "group": group, "message": "not running"},
        ])
        self.assertEqual(results[0], jids[0])
        self.assertIsInstance(results[1], Conflict)
        self.assertEqual(self.client.get(jids[0]).failure["group"], group)
        self.assertEqual(self.client.get(jids[1]).state, "waiting")

    def test_wait_for_jobs_answers_when_a_job_is_ready(self):
        queue = "wait-" + uuid.uuid4().hex[:8]
        started = time.monotonic()
        self.assertIsNone(self.client.wait_for_jobs([queue], 0.2))
        self.assertGreaterEqual(time.monotonic() - started, 0.2)
        self.client.put(queue, "Klass", {})
        self.assertEqual(self.client.wait_for_jobs(queue, 5), queue)
        with self.assertRaises(InvalidArgument):
            self.client.wait_for_jobs([], 1)

    def test_generic_call(self):
        with self.assertRaises(InvalidArgument) as ctx:
            self.client.call("frobnicate")
        self.assertEqual(ctx.exception.message, "Unknown command frobnicate")
        self.assertIsInstance(self.client.call("config.get"), dict)


if __name__ == "__main__":
    unittest.main()
