"""Schemathesis hooks for scripts/http-fuzz.

The custom check `no_state_change_on_rejection`: before each request the
hook takes a fingerprint of the whole store (every row of every table of
the server's SQLite file, read through Python's sqlite3 in a read-only
transaction); after a 4xx answer the fingerprint must be the same.

The store file is named by CLEW_FUZZ_DB (set by scripts/http-fuzz).
With CLEW_FUZZ_SELFTEST=1 every answer is treated as a refusal, so the
check must fail on the first request that changes something: that shows
the fingerprint sees changes and the check runs (`http-fuzz --selftest`).
"""

import hashlib
import os
import sqlite3

import schemathesis

DB = os.environ["CLEW_FUZZ_DB"]
SELFTEST = os.environ.get("CLEW_FUZZ_SELFTEST") == "1"
_before = {}


def fingerprint():
    """A hash of every row of every table of the store."""
    con = sqlite3.connect(f"file:{DB}?mode=ro", uri=True, timeout=30)
    try:
        h = hashlib.sha256()
        con.execute("BEGIN")
        tables = [
            r[0]
            for r in con.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' "
                "AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]
        for t in tables:
            h.update(t.encode())
            # The table names come from the schema, not from a request.
            for row in con.execute(f'SELECT * FROM "{t}" ORDER BY 1'):
                h.update(repr(row).encode())
        con.rollback()
        return h.hexdigest()
    finally:
        con.close()


@schemathesis.hook
def before_call(context, case, kwargs):
    _before[id(case)] = fingerprint()


@schemathesis.check
def no_state_change_on_rejection(ctx, response, case):
    """A request answered 4xx changes nothing in the store."""
    before = _before.pop(id(case), None)
    refused = 400 <= response.status_code < 500 or SELFTEST
    if before is None or not refused:
        return None
    after = fingerprint()
    if after != before:
        raise AssertionError(
            f"{case.method} {case.formatted_path} was refused with "
            f"{response.status_code} but changed the store"
        )
    return None
