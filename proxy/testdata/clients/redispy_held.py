#!/usr/bin/python3
"""Checks that redis-py, a cluster-unaware Python client, can use the
commands that hold a connection at --addr as on one plain redis-server:
MULTI/EXEC, WATCH, Pub/Sub and BLPOP.

proxy/clients_held_test.go runs this against slotproxy in front of a cluster
and, to prove the checks themselves right, against a standalone
redis-server. Each check asserts; the last line is a summary, and the exit
status is 1 when any check failed. Run it with Debian's /usr/bin/python3,
which sees the python3-redis package (scripts/ensure-clients.sh installs it).
"""

import argparse
import sys
import threading
import time
import traceback

import redis
from redis.crc import key_slot

# Users whose hash tags land on each master of a cluster made by redis-cli
# --cluster create (thirds of the slot space), so that transactions are seen
# to run on every master.
USERS = ["user:1", "user:3", "user:4"]
MASTER_RANGES = [(0, 5460), (5461, 10922), (10923, 16383)]

WATCH_CLIENTS = 5
WATCH_INCREMENTS = 20
MESSAGES = 100
# Bounds every wait on another connection: a lost wake-up or message fails
# the check instead of hanging the run.
WAIT = 10.0


class CheckError(Exception):
    pass


def expect(cond, fmt, *args):
    if not cond:
        raise CheckError(fmt % args)


def connect(opts, **kw):
    host, port = opts.addr.rsplit(":", 1)
    kw.setdefault("socket_timeout", 30)
    return redis.Redis(host=host, port=int(port), decode_responses=True, **kw)


def poll(what, cond):
    """Waits until cond() is true, for at most WAIT seconds."""
    deadline = time.monotonic() + WAIT
    while not cond():
        if time.monotonic() > deadline:
            raise CheckError("%s: not within %.0fs" % (what, WAIT))
        time.sleep(0.01)


def check_transaction(r, opts):
    thirds = {min(key_slot(u.encode()) // 5461, 2) for u in USERS}
    expect(thirds == {0, 1, 2}, "the users' hash tags reach thirds %r of the slot space, want all", thirds)
    for u in USERS:
        profile, visits, tags = "{%s}:profile" % u, "{%s}:visits" % u, "{%s}:tags" % u
        r.delete(profile, visits, tags)
        pipe = r.pipeline(transaction=True)
        pipe.hset(profile, mapping={"name": u, "plan": "free"})
        pipe.incr(visits)
        pipe.incrby(visits, 41)
        pipe.sadd(tags, "a", "b", "a")
        pipe.hgetall(profile)
        pipe.get(visits)
        pipe.smembers(tags)
        got = pipe.execute()
        want = [2, 1, 42, 2, {"name": u, "plan": "free"}, "42", {"a", "b"}]
        expect(got == want, "MULTI/EXEC on {%s} = %r, want %r", u, got, want)

        # A command that fails when EXEC runs it does not stop the others,
        # and its error comes back in its place.
        pipe = r.pipeline(transaction=True)
        pipe.incr(profile)
        pipe.incr(visits)
        got = pipe.execute(raise_on_error=False)
        expect(
            len(got) == 2 and isinstance(got[0], redis.ResponseError) and str(got[0]).startswith("WRONGTYPE") and got[1] == 43,
            "EXEC with INCR of a hash on {%s} = %r, want [WRONGTYPE error, 43]",
            u,
            got,
        )

    # A command refused while queued dooms the transaction: nothing runs.
    visits = "{%s}:visits" % USERS[0]
    pipe = r.pipeline(transaction=True)
    pipe.incr(visits)
    pipe.execute_command("SET", visits)
    try:
        pipe.execute()
        raise CheckError("EXEC after a queued SET with too few arguments succeeded")
    except redis.ResponseError as e:
        expect("EXECABORT" in str(e) or "wrong number of arguments" in str(e), "EXEC of a doomed transaction: %s", e)
    expect(r.get(visits) == "43", "GET %s after a doomed transaction = %r, want 43", visits, r.get(visits))


def check_watch_conflict(r, opts):
    key = "{held:py}:watched"
    r.set(key, "0")
    other = connect(opts)
    try:
        with r.pipeline(transaction=True) as pipe:
            pipe.watch(key)
            expect(pipe.get(key) == "0", "GET %s while watching", key)
            other.set(key, "changed")
            pipe.multi()
            pipe.set(key, "mine")
            try:
                pipe.execute()
                raise CheckError("EXEC succeeded after another client changed the WATCHed key")
            except redis.WatchError:
                pass
        expect(r.get(key) == "changed", "GET %s after the aborted EXEC = %r, want changed", key, r.get(key))

        # Unchanged, the same transaction runs.
        with r.pipeline(transaction=True) as pipe:
            pipe.watch(key)
            pipe.multi()
            pipe.set(key, "mine")
            expect(pipe.execute() == [True], "EXEC with the WATCHed key unchanged did not run")
        expect(r.get(key) == "mine", "GET %s after EXEC = %r, want mine", key, r.get(key))
    finally:
        other.close()


def check_watch_retry(r, opts):
    key = "{held:py}:counter"
    r.set(key, "0")
    start = threading.Barrier(WATCH_CLIENTS)
    calls = [0] * WATCH_CLIENTS
    errors = []

    def worker(i):
        c = connect(opts)
        try:
            start.wait(timeout=WAIT)

            def incr(pipe):
                calls[i] += 1
                n = int(pipe.get(key))
                pipe.multi()
                pipe.set(key, n + 1)

            for _ in range(WATCH_INCREMENTS):
                # transaction() WATCHes, calls incr and runs EXEC again
                # for as long as EXEC is aborted by another client's SET.
                c.transaction(incr, key)
        except Exception as e:  # reported by the main thread
            errors.append("client %d: %s: %s" % (i, type(e).__name__, e))
        finally:
            c.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(WATCH_CLIENTS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=60)
    expect(not any(th.is_alive() for th in threads), "a WATCH client did not finish within 60s")
    expect(not errors, "WATCH clients failed: %s", "; ".join(errors))
    want = WATCH_CLIENTS * WATCH_INCREMENTS
    got = int(r.get(key))
    expect(got == want, "counter = %d after %d clients x %d increments, want %d", got, WATCH_CLIENTS, WATCH_INCREMENTS, want)
    retries = sum(calls) - want
    expect(not opts.want_retries or retries > 0, "no EXEC was aborted among %d concurrent clients", WATCH_CLIENTS)
    return "%d clients x %d increments, counter %d, %d retries" % (WATCH_CLIENTS, WATCH_INCREMENTS, got, retries)


def next_message(p, what):
    """Reads the next Pub/Sub message of any kind, for at most WAIT seconds."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        m = p.get_message(timeout=max(0.0, deadline - time.monotonic()))
        if m is not None:
            return m
    raise CheckError("%s: no message within %.0fs" % (what, WAIT))


def check_pubsub(r, opts):
    channel = "held:py:news"
    p = r.pubsub()
    try:
        p.subscribe(channel)
        m = next_message(p, "SUBSCRIBE confirmation")
        expect(m == {"type": "subscribe", "pattern": None, "channel": channel, "data": 1}, "SUBSCRIBE reply = %r", m)
        # PING in subscribed mode is answered as a message; redis-py's
        # health check sends it.
        p.ping("hc")
        m = next_message(p, "PING reply")
        expect(m == {"type": "pong", "pattern": None, "channel": None, "data": "hc"}, "PING hc while subscribed = %r", m)
        for i in range(MESSAGES):
            n = r.publish(channel, "m%d" % i)
            expect(n == 1, "PUBLISH %s m%d reached %r subscribers, want 1", channel, i, n)
        for i in range(MESSAGES):
            m = next_message(p, "message %d of %d" % (i, MESSAGES))
            want = {"type": "message", "pattern": None, "channel": channel, "data": "m%d" % i}
            expect(m == want, "message %d = %r, want %r", i, m, want)
        p.unsubscribe(channel)
        m = next_message(p, "UNSUBSCRIBE confirmation")
        expect(m == {"type": "unsubscribe", "pattern": None, "channel": channel, "data": 0}, "UNSUBSCRIBE reply = %r", m)
        expect(r.publish(channel, "late") == 0, "PUBLISH after UNSUBSCRIBE reached a subscriber")
    finally:
        p.close()


def check_psubscribe(r, opts):
    pattern = "held:py:p:*"
    p = r.pubsub()
    try:
        p.psubscribe(pattern)
        m = next_message(p, "PSUBSCRIBE confirmation")
        expect(m == {"type": "psubscribe", "pattern": None, "channel": pattern, "data": 1}, "PSUBSCRIBE reply = %r", m)
        expect(r.publish("held:py:other", "x") == 0, "PUBLISH to a channel the pattern does not match reached a subscriber")
        channels = ["held:py:p:%d" % (i % 3) for i in range(MESSAGES)]
        for i, ch in enumerate(channels):
            n = r.publish(ch, "m%d" % i)
            expect(n == 1, "PUBLISH %s m%d reached %r subscribers, want 1", ch, i, n)
        for i, ch in enumerate(channels):
            m = next_message(p, "pmessage %d of %d" % (i, MESSAGES))
            want = {"type": "pmessage", "pattern": pattern, "channel": ch, "data": "m%d" % i}
            expect(m == want, "pmessage %d = %r, want %r", i, m, want)
    finally:
        p.close()


def blocked_clients(r):
    return r.info("clients")["blocked_clients"]


def check_blpop(r, opts):
    key = "{held:py}:queue"
    r.delete(key)
    expect(blocked_clients(r) == 0, "blocked_clients = %d before BLPOP, want 0", blocked_clients(r))
    result = []
    blocker = connect(opts, socket_timeout=WAIT * 3)

    def pop():
        try:
            result.append(blocker.blpop(key, timeout=0))
        except Exception as e:  # reported by the main thread
            result.append(e)

    th = threading.Thread(target=pop)
    th.start()
    try:
        poll("BLPOP to block (INFO clients blocked_clients)", lambda: blocked_clients(r) >= 1)
        expect(not result, "BLPOP on an empty list returned %r before any push", result)
        n = r.rpush(key, "first", "second")
        expect(n == 2, "RPUSH = %r, want 2", n)
        th.join(timeout=WAIT)
        expect(not th.is_alive(), "BLPOP not woken within %.0fs of the RPUSH", WAIT)
        expect(result == [(key, "first")], "BLPOP = %r, want (%s, first)", result, key)
        expect(r.lrange(key, 0, -1) == ["second"], "list after BLPOP = %r, want [second]", r.lrange(key, 0, -1))
        poll("blocked_clients back to 0", lambda: blocked_clients(r) == 0)

        # A timeout that runs out gives a null reply.
        got = blocker.blpop("{held:py}:empty", timeout=0.2)
        expect(got is None, "BLPOP on an empty list with timeout 0.2 = %r, want None", got)
    finally:
        # Unblock the thread if a check failed while it waited.
        if th.is_alive():
            r.rpush(key, "unblock")
            th.join(timeout=WAIT)
        blocker.close()


CHECKS = [
    ("transaction", check_transaction),
    ("watch-conflict", check_watch_conflict),
    ("watch-retry", check_watch_retry),
    ("pubsub", check_pubsub),
    ("psubscribe", check_psubscribe),
    ("blpop", check_blpop),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--addr", required=True, help="host:port of the server")
    ap.add_argument(
        "--want-retries",
        choices=["yes", "no"],
        default="no",
        help="whether concurrent WATCH clients must see at least one aborted EXEC",
    )
    opts = ap.parse_args()
    opts.want_retries = opts.want_retries == "yes"
    r = connect(opts)

    failed = []
    for name, check in CHECKS:
        began = time.monotonic()
        try:
            note = check(r, opts)
            print("ok   %s (%.1fs)%s" % (name, time.monotonic() - began, ": " + note if note else ""))
        except CheckError as e:
            failed.append(name)
            print("FAIL %s: %s" % (name, e))
        except redis.RedisError as e:
            failed.append(name)
            print("FAIL %s: %s: %s" % (name, type(e).__name__, e))
        except Exception as e:  # a bug in the check or in the client
            failed.append(name)
            print("FAIL %s: %s: %s" % (name, type(e).__name__, e))
            traceback.print_exc(limit=3, file=sys.stdout)
        sys.stdout.flush()

    print(
        "redis-py %s against %s: %d/%d checks passed%s"
        % (
            redis.__version__,
            opts.addr,
            len(CHECKS) - len(failed),
            len(CHECKS),
            "; failed: " + " ".join(failed) if failed else "",
        )
    )
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
