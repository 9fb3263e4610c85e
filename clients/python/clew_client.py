"""A small Python client for clew, the background-job system with qless
semantics.

It speaks clew's qless compatibility endpoint: every call is one
``POST {url}/v1/qless`` with the body ``{"command": NAME, "args": [STRING, ...]}``
and the answer is ``{"result": VALUE}`` (HTTP 200) or
``{"error": {"code": CODE, "message": TEXT}}`` with a 4xx/5xx status, which
this module raises as :class:`ClewError` (or one of its subclasses).

Only the standard library is used (``urllib.request``, ``json``, ``uuid``).

Example::

    from clew_client import Client

    client = Client("http://127.0.0.1:7400")
    jid = client.put("emails", "SendEmail", {"to": "ada@example.com"})
    for job in client.pop("emails", "worker-1"):
        job.data["sent"] = True
        client.complete(job.jid, "worker-1", job.queue, job.data)
"""

import json
import os
import socket
import urllib.error
import urllib.request
import uuid

__all__ = [
    "Client",
    "Job",
    "ClewError",
    "InvalidArgument",
    "Unauthorized",
    "NotFound",
    "Conflict",
    "Unreachable",
]

__version__ = "0.1.0"


class ClewError(Exception):
    """An error answered by the server (or the failure to reach it).

    Attributes:
        status: the HTTP status (``None`` when the server could not be reached).
        code: the machine-readable error code from the body, e.g.
            ``"invalid_argument"``, ``"not_found"``, ``"conflict"``.
        message: the human-readable message; for qless commands it carries
            qless-core's wording, e.g. ``"Heartbeat(): Job x does not exist"``.
    """

    def __init__(self, status, code, message):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def __str__(self):
        return "%s (%s %s)" % (self.message, self.status, self.code)

    def __repr__(self):
        return "%s(%r, %r, %r)" % (
            type(self).__name__,
            self.status,
            self.code,
            self.message,
        )


class InvalidArgument(ClewError):
    """HTTP 400: a malformed or missing argument."""


class Unauthorized(ClewError):
    """HTTP 401: the server wants an API token (``Client(url, token=...)``)."""


class NotFound(ClewError):
    """HTTP 404: the job (or recurring job) does not exist."""


class Conflict(ClewError):
    """HTTP 409: wrong state, or the job's lock is held by another worker."""


class Unreachable(ClewError):
    """The server could not be reached (``status`` is ``None``)."""


_BY_STATUS = {400: InvalidArgument, 401: Unauthorized, 404: NotFound, 409: Conflict}

# The status a refusal inside a ``results`` list would have had on its own.
_STATUS_BY_CODE = {"invalid_argument": 400, "not_found": 404, "conflict": 409, "internal": 500}


def _error_for(status, code, message):
    return _BY_STATUS.get(status, ClewError)(status, code, message)


def _arg(value):
    """One wire argument: strings as they are, numbers as their text,
    lists and dicts as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        raise TypeError("a bool is not a valid qless argument: %r" % (value,))
    if isinstance(value, (int, float)):
        return repr(value) if isinstance(value, float) else str(value)
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value)
    raise TypeError("cannot send %r as a qless argument" % (value,))


def _data_text(data):
    """Job data for the wire: a dict/list is JSON-encoded; a string is taken
    as JSON text already (the server checks it)."""
    if data is None:
        return "{}"
    if isinstance(data, str):
        return data
    return json.dumps(data)


def _data_value(data, name):
    """Job data for a JSON body: a dict/list/number as it is; a string is
    taken as JSON text (as :meth:`Client.put` takes it) and parsed."""
    if isinstance(data, str):
        try:
            return json.loads(data)
        except ValueError as e:
            raise ValueError("%s: not JSON text: %s" % (name, e)) from None
    return data


def default_worker_name():
    """A worker name for this process: ``HOST-PID``."""
    return "%s-%d" % (socket.gethostname(), os.getpid())


class Job:
    """A job as the server describes it (``get``, ``pop``).

    Attributes:
        jid, klass, queue, state, worker: strings (``worker`` is ``""`` when
            no worker holds the job).
        data: the payload, parsed from its JSON text (the text itself is
            ``raw["data"]``).
        tags: list of strings.
        priority, retries, remaining: integers.
        expires: when the worker's lock expires (seconds since the epoch;
            0 when not running).
        history: list of dicts, e.g. ``{"what": "put", "q": "emails", "when": ...}``.
        failure: dict (``{}`` when the job has not failed).
        dependencies, dependents: lists of jids.
        tracked: bool.
        batch: the id of the batch the job belongs to, or None.
        throttles: list of the throttle names the job must hold a slot of
            to run (its ``state`` is ``"throttled"`` while one holds it back).
        raw: the whole job document as the server sent it.
    """

    def __init__(self, raw, client=None):
        self.raw = raw
        self._client = client
        self.jid = raw.get("jid")
        self.klass = raw.get("klass")
        self.queue = raw.get("queue")
        self.state = raw.get("state")
        self.worker = raw.get("worker") or ""
        self.priority = raw.get("priority", 0)
        self.retries = raw.get("retries")
        self.remaining = raw.get("remaining")
        self.expires = raw.get("expires")
        self.tags = list(raw.get("tags") or [])
        self.history = list(raw.get("history") or [])
        failure = raw.get("failure")
        self.failure = failure if isinstance(failure, dict) else {}
        self.dependencies = list(raw.get("dependencies") or [])
        self.dependents = list(raw.get("dependents") or [])
        self.tracked = bool(raw.get("tracked", False))
        self.unique_key = raw.get("unique_key")
        self.batch = raw.get("batch")
        self.throttles = list(raw.get("throttles") or [])
        data = raw.get("data")
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except ValueError:
                pass  # keep the text as it is
        self.data = data

    def __repr__(self):
        return "<Job %s %s in %s (%s)>" % (self.jid, self.klass, self.queue, self.state)

    def heartbeat(self, data=None):
        """Renews this job's lock for the worker holding it; returns the new
        expiry. With ``data``, also replaces the payload."""
        return self._bound().heartbeat(self.jid, self.worker, data)

    def complete(self, next=None, delay=None, depends=None):
        """Completes this job with its current ``data``, as the worker holding
        it; with ``next``, moves it into that queue. Returns the new state."""
        return self._bound().complete(
            self.jid, self.worker, self.queue, self.data, next=next, delay=delay, depends=depends
        )

    def fail(self, group, message):
        """Fails this job with its current ``data``, as the worker holding it."""
        return self._bound().fail(self.jid, self.worker, group, message, self.data)

    def _bound(self):
        if self._client is None:
            raise ValueError("this Job was not made by a Client")
        return self._client


class Client:
    """A connection to a clew server.

    Args:
        url: the server's base URL, e.g. ``"http://127.0.0.1:7400"``.
        token: an API token, sent as ``Authorization: Bearer TOKEN``
            (needed when the server listens on a non-loopback address).
        timeout: seconds to wait for each answer.
        namespace: the namespace this client means (``clew --namespace``),
            sent as ``X-Clew-Namespace``; a server serving another one
            refuses every call (``Conflict``, code ``namespace_mismatch``).
            ``None`` sends nothing: the server's own namespace.
    """

    def __init__(self, url, token=None, timeout=10, namespace=None):
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.namespace = namespace

    def __repr__(self):
        return "Client(%r)" % (self.url,)

    # -- the wire -----------------------------------------------------------

    def call(self, command, *args):
        """Runs any qless-core command (``"put"``, ``"config.get"``, ...) with
        the given arguments (strings; numbers, lists and dicts are turned into
        their text) and returns the decoded ``result``."""
        body = json.dumps({"command": command, "args": [_arg(a) for a in args]})
        decoded = self._post("/v1/qless", body.encode("utf-8"))
        if "result" not in decoded:
            raise _error_for(200, "bad_response", "unexpected answer (HTTP 200): no result")
        return decoded["result"]

    def wait_for_jobs(self, queues, timeout=1.0):
        """Waits up to ``timeout`` seconds (at most 30) until one of
        ``queues`` has a job a pop would hand out; returns the queue's name,
        or None. The server answers on the commit that makes a job ready, so
        an idle worker calls this instead of sleeping between pops."""
        if isinstance(queues, str):
            queues = [queues]
        body = json.dumps({"queues": list(queues), "timeout": min(float(timeout), 30.0)})
        decoded = self._post("/v1/wait", body.encode("utf-8"), read_timeout=self.timeout + timeout)
        return decoded.get("queue") if decoded.get("ready") else None

    def _post(self, path, body, read_timeout=None):
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.token:
            headers["Authorization"] = "Bearer " + self.token
        if self.namespace:
            headers["X-Clew-Namespace"] = self.namespace
        request = urllib.request.Request(self.url + path, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=read_timeout or self.timeout) as response:
                status = response.status
                text = response.read()
        except urllib.error.HTTPError as e:
            status = e.code
            text = e.read()
            e.close()
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise Unreachable(None, "unreachable", "cannot reach %s: %s" % (self.url, reason)) from e
        try:
            decoded = json.loads(text.decode("utf-8")) if text else None
        except ValueError:
            decoded = None
        if 200 <= status < 300 and isinstance(decoded, dict):
            return decoded
        error = decoded.get("error") if isinstance(decoded, dict) else None
        if isinstance(error, dict):
            raise _error_for(status, error.get("code"), error.get("message", ""))
        snippet = text[:200].decode("utf-8", "replace").strip()
        raise _error_for(status, "bad_response", "unexpected answer (HTTP %d): %s" % (status, snippet))

    # -- jobs ---------------------------------------------------------------

    def put(
        self,
        queue,
        klass,
        data,
        jid=None,
        delay=0,
        priority=None,
        tags=None,
        retries=None,
        depends=None,
        worker=None,
        unique_key=None,
        on_conflict=None,
        batch=None,
        throttles=None,
    ):
        """Puts a job into ``queue`` and returns its jid.

        ``data`` is a dict (JSON-encoded for the wire) or JSON text. A new
        uuid4 hex jid is made when ``jid`` is None; putting an existing jid
        replaces that job. ``delay`` is in seconds; ``tags`` and ``depends``
        are lists of strings. ``worker`` is the name recorded as the putter
        (default: ``HOST-PID``). ``batch`` names an open batch the job joins
        (see :meth:`create_batch`). ``throttles`` is a list of throttle names
        the job must hold a slot of to run (see :meth:`throttle_set`).

        ``unique_key`` (e.g. ``"search:user-42"``): while a live job (neither
        failed nor complete) holds the key, the put does what ``on_conflict``
        says: ``"existing"`` (the default) returns the holder's jid and
        changes nothing, ``"replace"`` replaces the holder's data and returns
        its jid (:class:`Conflict` if it is running), ``"refuse"`` raises
        :class:`Conflict` naming the holder. A returned jid other than the
        one put is the holder's.
        """
        if jid is None:
            jid = uuid.uuid4().hex
        args = [worker or default_worker_name(), queue, jid, klass, _data_text(data), delay]
        if priority is not None:
            args += ["priority", priority]
        if tags is not None:
            args += ["tags", list(tags)]
        if retries is not None:
            args += ["retries", retries]
        if depends is not None:
            args += ["depends", list(depends)]
        if unique_key is not None:
            args += ["unique", unique_key]
        if on_conflict is not None:
            args += ["on-conflict", on_conflict]
        if batch is not None:
            args += ["batch", batch]
        if throttles is not None:
            args += ["throttles", list(throttles)]
        return self.call("put", *args)

    def pop(self, queue, worker, count=1):
        """Takes up to ``count`` jobs from ``queue`` for ``worker``; returns a
        list of :class:`Job` (empty when there is no work)."""
        return [Job(raw, self) for raw in self.call("pop", queue, worker, count) or []]

    def peek(self, queue, count=1):
        """Lists up to ``count`` jobs that would be popped next, without
        taking them."""
        return [Job(raw, self) for raw in self.call("peek", queue, count) or []]

    def heartbeat(self, jid, worker, data=None):
        """Renews ``worker``'s lock on a running job; returns the new expiry
        (seconds since the epoch). With ``data``, also replaces the payload."""
        if data is None:
            return self.call("heartbeat", jid, worker)
        return self.call("heartbeat", jid, worker, _data_text(data))

    def complete(self, jid, worker, queue, data, next=None, delay=None, depends=None):
        """Completes a running job with its final ``data``. With ``next``, the
        job moves into that queue instead (optionally after ``delay`` seconds
        or once the jids in ``depends`` are complete). Returns the job's new
        state: ``"complete"``, ``"waiting"``, ``"scheduled"`` or ``"depends"``."""
        args = [jid, worker, queue, _data_text(data)]
        if next is not None:
            args += ["next", next]
        if delay is not None:
            args += ["delay", delay]
        if depends is not None:
            args += ["depends", list(depends)]
        return self.call("complete", *args)

    def fail(self, jid, worker, group, message, data=None):
        """Marks a running job failed in failure ``group`` with ``message``
        (and, if given, new ``data``). Returns the jid."""
        if data is None:
            return self.call("fail", jid, worker, group, message)
        return self.call("fail", jid, worker, group, message, _data_text(data))

    def retry(self, jid, queue, worker, delay=0):
        """Gives a running job back to its queue (after ``delay`` seconds),
        spending one retry. Returns the retries left (negative when none were
        left and the job failed instead)."""
        return self.call("retry", jid, queue, worker, delay)


    def get(self, jid):
        """Returns the :class:`Job` with this jid, or None."""
        raw = self.call("get", jid)
        return None if raw is None else Job(raw, self)

    def unique_get(self, key):
        """Returns the live :class:`Job` (neither failed nor complete) holding
        the uniqueness key ``key``, or None."""
        raw = self.call("unique.get", key)
        return None if raw is None else Job(raw, self)

    def cancel(self, *jids):
        """Cancels jobs (a job others depend on can only be cancelled with
        them). Returns the list of cancelled jids."""
        return self.call("cancel", *jids)

    def queues(self, queue=None):
        """Counts per queue: a list of dicts (``name``, ``waiting``,
        ``running``, ``stalled``, ``scheduled``, ``depends``, ``recurring``,
        ``paused``), or one such dict when ``queue`` is given."""
        if queue is None:
            return self.call("queues")
        return self.call("queues", queue)

    # -- recurring jobs -------------------------------------------------

    def recur(
        self,
        queue,
        klass,
        data,
        interval=None,
        cron=None,
        timezone=None,
        missed=None,
        jid=None,
        offset=0,
        priority=None,
        tags=None,
        retries=None,
        backlog=None,
    ):
        """Creates (or replaces) a recurring job template; returns its jid.

        Give ``interval`` (seconds between children) or ``cron``, a 5-field
        expression (``minute hour day-of-month month day-of-week``, e.g.
        ``"*/5 * * * *"``, ``"0 9 * * MON-FRI"``, ``"@daily"``) read in the
        IANA ``timezone`` (default UTC). ``missed`` says what a cron template
        does with ticks missed during downtime: ``"catch-up"`` (default: one
        child for all of them) or ``"skip"`` (none). Children are put when
        the queue is popped or peeked, exactly one per tick.
        """
        if (interval is None) == (cron is None):
            raise ValueError("give interval or cron (exactly one)")
        if jid is None:
            jid = uuid.uuid4().hex
        if cron is not None:
            args = [queue, jid, klass, _data_text(data), "cron", cron, offset]
        else:
            args = [queue, jid, klass, _data_text(data), "interval", interval, offset]
        for name, value in (
            ("priority", priority),
            ("tags", None if tags is None else list(tags)),
            ("retries", retries),
            ("backlog", backlog),
            ("timezone", timezone),
            ("missed", missed),
        ):
            if value is not None:
                args += [name, value]
        return self.call("recur", *args)

    def recur_get(self, jid):
        """The recurring template as a dict (with ``cron``, ``timezone``,
        ``missed`` and ``next_at`` for a cron template), or None."""
        return self.call("recur.get", jid)

    def recur_update(self, jid, **changes):
        """Changes a template: any of ``priority``, ``interval``, ``retries``,
        ``data``, ``klass``, ``queue``, ``backlog``, ``cron``, ``timezone``,
        ``missed``. ``cron`` switches an interval template to cron and
        ``interval`` switches back. Returns True."""
        args = [jid]
        for name, value in changes.items():
            if value is None:
                continue
            args += [name, _data_text(value) if name == "data" else value]
        return self.call("recur.update", *args)

    def unrecur(self, jid):
        """Deletes a recurring template (its spawned jobs stay)."""
        return self.call("unrecur", jid)
    # -- throttles ----------------------------------------------------------

    def throttle_set(self, name, maximum, rate=None):
        """Defines a throttle (or changes its maximum): at most ``maximum``
        jobs naming it in their ``throttles`` run at once, across queues (0:
        unlimited). ``rate=(n, period)`` also allows at most ``n`` starts in
        any ``period`` seconds (a sliding window; jobs over it wait in the
        ``throttled`` state); without it any rate is cleared. Returns
        ``{"name", "max", "running", "pending"}``, plus ``"rate"``
        (``{"limit", "period"}``) and ``"started"`` with a rate."""
        if rate is None:
            return self.call("throttle.set", name, maximum)
        n, period = rate
        return self.call("throttle.set", name, maximum, "rate", n, period)

    def throttle_get(self, name):
        """Returns ``{"name", "max", "running", "pending"}``; raises
        :class:`NotFound` if the throttle is not defined."""
        return self.call("throttle.get", name)

    def throttles(self):
        """Every throttle with its counts, by name (a list of dicts as
        :meth:`throttle_get` returns)."""
        return self.call("throttle.list")

    def throttle_delete(self, name):
        """Forgets a throttle (its waiting jobs go back to their queues);
        raises :class:`NotFound` if it is not defined."""
        self.call("throttle.delete", name)

    # -- many jobs in one call -------------------------------------------

    def put_many(self, jobs):
        """Puts many jobs in one transaction (``POST /v1/batch/put``): all of
        them or none. Returns their jids, in order.

        ``jobs`` is a list (1 to 10,000) of dicts with the keys ``queue``,
        ``klass`` and ``data`` and, optionally, ``jid``, ``delay``,
        ``priority``, ``tags``, ``retries``, ``depends``, ``worker``,
        ``metadata``, ``unique_key`` and ``on_conflict`` (as :meth:`put`
        takes them; a job answered by its key's holder gets the holder's jid,
        and two jobs of the call with one key: the second sees the first). ``data`` is a dict or JSON
        text, as for :meth:`put`. A job without a ``jid`` gets a new uuid4 hex
        one. A refused job raises (for example :class:`InvalidArgument` whose
        message names it: ``jobs[3]: missing field `klass```) and nothing is
        put.
        """
        items = []
        for i, job in enumerate(jobs):
            item = {k: v for k, v in dict(job).items() if v is not None}
            item.setdefault("jid", uuid.uuid4().hex)
            item.setdefault("worker", default_worker_name())
            if "data" in item:
                item["data"] = _data_value(item["data"], "jobs[%d].data" % i)
            items.append(item)
        return self._post_json("/v1/batch/put", {"jobs": items})["jids"]

    def complete_many(self, worker, jobs):
        """Completes many running jobs of ``worker`` in one transaction
        (``POST /v1/batch/complete``), each on its own: a refused one does not
        stop the others.

        ``jobs`` is a list (1 to 10,000) of :class:`Job` objects (completed
        with their current ``queue`` and ``data``) or dicts with ``jid`` and,
        optionally, ``queue``, ``data``, ``next``, ``delay``, ``depends`` and
        ``metadata`` (a missing ``queue`` or ``data`` is the job's). Returns
        one entry per job, in order: its new state (as :meth:`complete`
        returns it) or, when refused, the :class:`ClewError` that
        :meth:`complete` would have raised (for example :class:`Conflict`
        when another worker holds the job). A malformed call raises.
        """
        items = []
        for i, job in enumerate(jobs):
            if isinstance(job, Job):
                item = {"jid": job.jid, "queue": job.queue, "data": job.data}
            else:
                item = {k: v for k, v in dict(job).items() if v is not None}
                if "data" in item:
                    item["data"] = _data_value(item["data"], "jobs[%d].data" % i)
            items.append(item)
        return self._results("/v1/batch/complete", worker, items, "state")

    def fail_many(self, worker, jobs):
        """Fails many running jobs of ``worker`` in one transaction
        (``POST /v1/batch/fail``), each on its own: a refused one does not stop
        the others.

        ``jobs`` is a list (1 to 10,000) of dicts with ``jid``, ``group`` and
        ``message`` and, optionally, ``data`` and ``metadata``. Returns one
        entry per job, in order: its jid (as :meth:`fail` returns it) or, when
        refused, the :class:`ClewError` that :meth:`fail` would have raised. A
        malformed call raises.
        """
        items = []
        for i, job in enumerate(jobs):
            item = {k: v for k, v in dict(job).items() if v is not None}
            if "data" in item:
                item["data"] = _data_value(item["data"], "jobs[%d].data" % i)
            items.append(item)
        return self._results("/v1/batch/fail", worker, items, "jid")

    # -- batches (jobs with progress and a callback job) ---------------------

    def create_batch(self, jobs, id=None, description=None, metadata=None, callback=None):
        """Creates a batch with its jobs in one transaction
        (``POST /v1/batches``): all of them or none. Returns
        ``{"batch": {...}, "jids": [...]}`` (the batch as :meth:`batch`
        returns it; the jobs' jids in order).

        ``jobs`` is a list (1 to 10,000) of dicts as :meth:`put_many` takes
        them. ``callback`` is a dict with ``queue`` and ``klass`` and,
        optionally, ``jid``, ``data`` (a dict), ``priority``, ``tags`` and
        ``retries``: that job is put once, when every job of the batch has
        finished (complete, failed or canceled), its data holding
        ``"batch": {"id", "total", "complete", "failed", "canceled"}``. An
        existing ``id`` raises :class:`Conflict`; a refused job raises and
        nothing is put.
        """
        items = []
        for i, job in enumerate(jobs):
            item = {k: v for k, v in dict(job).items() if v is not None}
            item.setdefault("jid", uuid.uuid4().hex)
            item.setdefault("worker", default_worker_name())
            if "data" in item:
                item["data"] = _data_value(item["data"], "jobs[%d].data" % i)
            items.append(item)
        body = {"jobs": items}
        for key, value in (("id", id), ("description", description),
                           ("metadata", metadata), ("callback", callback)):
            if value is not None:
                body[key] = value
        return self._post_json("/v1/batches", body)

    def batch(self, id):
        """A batch's progress, or None: a dict with ``id``, ``created``,
        ``description``, ``metadata``, ``total``, ``pending``, ``complete``,
        ``failed``, ``canceled``, ``finished`` (seconds, or None),
        ``callback`` (its spec, or None), ``callback_jid`` (once put) and
        ``callback_state``."""
        return self.call("batch.get", id)

    def batches(self, offset=0, count=25):
        """Batches, newest first: ``{"total": N, "batches": [...]}``."""
        return self.call("batch.list", offset, count)

    def batch_jobs(self, id, offset=0, count=25):
        """The jids of a batch's jobs that still exist, by jid:
        ``{"total": N, "jobs": [...]}``."""
        return self.call("batch.jobs", id, offset, count)

    def cancel_batch(self, id):
        """Cancels every job of the batch that is not complete; returns
        their jids."""
        return self.call("batch.cancel", id)

    def _results(self, path, worker, items, done_key):
        decoded = self._post_json(path, {"worker": worker, "jobs": items})
        out = []
        for result in decoded.get("results") or []:
            error = result.get("error")
            if isinstance(error, dict):
                code = error.get("code")
                out.append(_error_for(_STATUS_BY_CODE.get(code), code, error.get("message", "")))
            else:
                out.append(result.get(done_key))
        return out

    def _post_json(self, path, value):
        return self._post(path, json.dumps(value).encode("utf-8"))
