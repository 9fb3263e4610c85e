#!/usr/bin/env python3
"""An example clew worker: one stage of a pipeline.

It pops jobs from ``--queue`` as ``--worker``, heartbeats each once, marks its
data with ``"py": true`` (and the worker's name under ``"py_worker"``), and
completes it -- into ``--next`` when given, which hands the job to the next
stage. A job whose data has ``"fail": true`` is failed instead (group
``stage-worker``), to show the failure path. A job the worker lost (409/404:
its lock expired, or it was cancelled) is reported on stderr and skipped.

It stops after ``--count`` jobs (0: run until interrupted) and gives up with
exit status 1 when ``--timeout`` seconds pass first.

    python3 clients/python/examples/stage_worker.py \\
        --url http://127.0.0.1:7400 --queue stage1 --worker py-1 --next stage2 --count 20
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from clew_client import Client, ClewError, Conflict, NotFound  # noqa: E402


def work(job, worker):
    """The stage's work: returns the job's new data."""
    data = job.data if isinstance(job.data, dict) else {"value": job.data}
    if data.get("fail"):
        raise ValueError("asked to fail")
    data["py"] = True
    data["py_worker"] = worker
    return data


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=os.environ.get("CLEW_URL", "http://127.0.0.1:7400"))
    parser.add_argument("--token", default=os.environ.get("CLEW_TOKEN"))
    parser.add_argument("--queue", required=True, help="queue to work")
    parser.add_argument("--worker", required=True, help="this worker's name")
    parser.add_argument("--next", default=None, help="queue to move completed jobs into")
    parser.add_argument("--count", type=int, default=0, help="stop after this many jobs (0: never)")
    parser.add_argument("--batch", type=int, default=5, help="jobs popped at once")
    parser.add_argument("--timeout", type=float, default=30.0, help="give up after this many seconds")
    parser.add_argument("--poll", type=float, default=0.02, help="seconds between empty pops")
    args = parser.parse_args(argv)

    client = Client(args.url, token=args.token)
    deadline = time.monotonic() + args.timeout
    done = 0
    while args.count == 0 or done < args.count:
        if time.monotonic() > deadline:
            print("stage_worker: timed out after %d of %d jobs" % (done, args.count), file=sys.stderr)
            return 1
        want = args.batch if args.count == 0 else min(args.batch, args.count - done)
        try:
            jobs = client.pop(args.queue, args.worker, want)
        except ClewError as e:
            print("stage_worker: pop failed: %s" % e, file=sys.stderr)
            return 1
        if not jobs:
            # Answered as soon as a job is ready (no polling interval).
            try:
                client.wait_for_jobs([args.queue], args.poll)
            except ClewError as e:
                print("stage_worker: wait failed: %s" % e, file=sys.stderr)
                time.sleep(args.poll)
            continue
        for job in jobs:
            try:
                client.heartbeat(job.jid, args.worker)
                try:
                    data = work(job, args.worker)
                except Exception as e:  # the job's failure, not the worker's
                    client.fail(job.jid, args.worker, "stage-worker", str(e))
                    print("failed %s: %s" % (job.jid, e), flush=True)
                else:
                    state = client.complete(job.jid, args.worker, job.queue, data, next=args.next)
                    print("completed %s -> %s" % (job.jid, args.next or state), flush=True)
            except (Conflict, NotFound) as e:
                # The lock expired and the job moved on, or it was cancelled:
                # not this worker's job any more.
                print("lost %s: %s" % (job.jid, e.message), file=sys.stderr, flush=True)
                continue
            done += 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
