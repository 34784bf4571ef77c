#!/usr/bin/python3
"""Checks that redis-py, a cluster-unaware Python client, sees one plain
redis-server at --addr.

proxy/clients_test.go runs this against slotproxy in front of a cluster and,
to prove the checks themselves right, against a standalone redis-server. Each
check asserts; the last line is a summary, and the exit status is 1 when any
check failed. Run it with Debian's /usr/bin/python3, which sees the
python3-redis package (scripts/ensure-clients.sh installs it).
"""

import argparse
import fnmatch
import sys
import traceback

import redis
from redis.crc import key_slot

SCAN_KEYS = 10000
SCRIPT_KEYS = 48

# The slot ranges redis-cli --cluster create gives three masters. The script
# keys must reach every one of them, so that EVALSHA is seen to work on every
# master and not only on the one where SCRIPT LOAD happened to go.
MASTER_RANGES = [(0, 5460), (5461, 10922), (10923, 16383)]


class CheckError(Exception):
    pass


def expect(cond, fmt, *args):
    if not cond:
        raise CheckError(fmt % args)


def scan_keys():
    return ["scan:%d" % i for i in range(SCAN_KEYS)]


def script_keys():
    keys = ["script:%d" % i for i in range(SCRIPT_KEYS)]
    for lo, hi in MASTER_RANGES:
        expect(
            any(lo <= key_slot(k.encode()) <= hi for k in keys),
            "no script key in slots %d-%d",
            lo,
            hi,
        )
    return keys


def diff(got, want):
    missing = sorted(want - got)
    extra = sorted(got - want)
    return "missing %d %s, unexpected %d %s" % (
        len(missing),
        missing[:5],
        len(extra),
        extra[:5],
    )


def check_flushall_empty(r, opts):
    expect(r.flushall() is True, "FLUSHALL did not reply OK")
    n = r.dbsize()
    expect(n == 0, "DBSIZE after FLUSHALL = %r, want 0", n)


def check_client_setinfo(r, opts):
    # redis-py 4.x sends no CLIENT SETINFO of its own, so set it explicitly.
    if not opts.setinfo:
        # A redis-server before 7.2 has no CLIENT SETINFO: the reference run
        # only checks that the server says so.
        try:
            r.execute_command("CLIENT SETINFO", "lib-name", "redis-py")
        except redis.ResponseError:
            return
        raise CheckError("CLIENT SETINFO succeeded, but --setinfo=no said the server lacks it")
    got = r.execute_command("CLIENT SETINFO", "lib-name", "redis-py")
    expect(got == "OK", "CLIENT SETINFO lib-name = %r, want OK", got)
    got = r.execute_command("CLIENT SETINFO", "lib-ver", redis.__version__)
    expect(got == "OK", "CLIENT SETINFO lib-ver = %r, want OK", got)
    # redis-server ends CLIENT INFO with a newline, which redis-py 4.x
    # leaves on the last field (lib-ver from 7.2 on).
    info = {k: v.strip() if isinstance(v, str) else v for k, v in r.client_info().items()}
    expect(info.get("lib-name") == "redis-py", "CLIENT INFO lib-name = %r, want redis-py (%r)", info.get("lib-name"), info)
    expect(info.get("lib-ver") == redis.__version__, "CLIENT INFO lib-ver = %r, want %s", info.get("lib-ver"), redis.__version__)
    clients = r.client_list()
    mine = [c for c in clients if c.get("id") == str(info["id"])]
    expect(len(mine) == 1, "CLIENT LIST has %d entries with id=%s, want 1: %r", len(mine), info["id"], clients)
    expect(mine[0].get("lib-name") == "redis-py", "CLIENT LIST lib-name = %r, want redis-py", mine[0].get("lib-name"))


def check_write_keys(r, opts):
    keys = scan_keys()
    pipe = r.pipeline(transaction=False)
    for k in keys:
        pipe.set(k, k)
    replies = pipe.execute()
    expect(all(x is True for x in replies), "a SET in the pipeline did not reply OK")
    expect(r.get(keys[-1]) == keys[-1], "GET %s after the pipeline", keys[-1])


def check_info(r, opts):
    info = r.info()
    expect(info.get("redis_version"), "INFO has no redis_version")
    expect(info.get("redis_mode") == "standalone", "INFO redis_mode = %r, want standalone", info.get("redis_mode"))
    cluster = r.info("cluster")
    expect(cluster.get("cluster_enabled") == 0, "INFO cluster: cluster_enabled = %r, want 0", cluster.get("cluster_enabled"))
    keyspace = r.info("keyspace")
    db0 = keyspace.get("db0")
    expect(isinstance(db0, dict), "INFO keyspace has no db0: %r", keyspace)
    expect(db0.get("keys") == SCAN_KEYS, "INFO keyspace db0 keys = %r, want %d", db0.get("keys"), SCAN_KEYS)


def check_dbsize(r, opts):
    n = r.dbsize()
    expect(n == SCAN_KEYS, "DBSIZE = %r, want %d", n, SCAN_KEYS)


def check_keys(r, opts):
    want = set(scan_keys())
    got = r.keys("scan:*")
    expect(len(got) == len(set(got)), "KEYS scan:* returned %d keys, %d distinct", len(got), len(set(got)))
    expect(set(got) == want, "KEYS scan:*: %s", diff(set(got), want))
    want = set(fnmatch.filter(want, "scan:2*"))
    got = r.keys("scan:2*")
    expect(len(got) == len(set(got)), "KEYS scan:2* returned %d keys, %d distinct", len(got), len(set(got)))
    expect(set(got) == want, "KEYS scan:2*: %s", diff(set(got), want))
    got = r.keys("nosuchprefix:*")
    expect(got == [], "KEYS nosuchprefix:* = %r, want []", got[:5])


def check_scan(r, opts):
    want = set(scan_keys())
    got = set(r.scan_iter())
    expect(got == want, "scan_iter(): %s", diff(got, want))
    want = set(fnmatch.filter(want, "scan:1*"))
    got = set(r.scan_iter(match="scan:1*", count=100))
    expect(got == want, "scan_iter(match='scan:1*', count=100): %s", diff(got, want))
    got = set(r.scan_iter(match="scan:1*", count=5000))
    expect(got == want, "scan_iter(match='scan:1*', count=5000): %s", diff(got, want))


def check_scripts(r, opts):
    keys = script_keys()
    body = "redis.call('SET', KEYS[1], ARGV[1]) return redis.call('GET', KEYS[1])"
    sha = r.script_load(body)
    expect(len(sha) == 40, "SCRIPT LOAD returned %r", sha)
    for k in keys:
        got = r.evalsha(sha, 1, k, "v-" + k)
        expect(got == "v-" + k, "EVALSHA on %s (slot %d) = %r", k, key_slot(k.encode()), got)
        expect(r.get(k) == "v-" + k, "GET %s after EVALSHA", k)

    incr = r.register_script("return redis.call('INCRBY', KEYS[1], ARGV[1])")
    for k in keys:
        got = incr(keys=["n" + k], args=[3])
        expect(got == 3, "register_script on n%s (slot %d) = %r, want 3", k, key_slot(("n" + k).encode()), got)
    # A pipeline asks SCRIPT EXISTS and loads what is missing before the
    # EVALSHAs, which then run on whatever master owns each key.
    pipe = r.pipeline(transaction=False)
    for k in keys:
        incr(keys=["n" + k], args=[4], client=pipe)
    got = pipe.execute()
    expect(got == [7] * len(keys), "register_script in a pipeline = %r, want all 7", got)


def check_flushall(r, opts):
    expect(r.flushall() is True, "FLUSHALL did not reply OK")
    n = r.dbsize()
    expect(n == 0, "DBSIZE after FLUSHALL = %r, want 0", n)
    keyspace = r.info("keyspace")
    expect("db0" not in keyspace, "INFO keyspace after FLUSHALL still has db0: %r", keyspace)


CHECKS = [
    ("flushall-first", check_flushall_empty),
    ("client-setinfo", check_client_setinfo),
    ("write-10000", check_write_keys),
    ("info", check_info),
    ("dbsize", check_dbsize),
    ("keys", check_keys),
    ("scan", check_scan),
    ("scripts", check_scripts),
    ("flushall", check_flushall),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--addr", required=True, help="host:port of the server")
    ap.add_argument(
        "--setinfo",
        choices=["yes", "no"],
        default="yes",
        help="whether the server has CLIENT SETINFO (redis-server 7.2+, slotproxy)",
    )
    opts = ap.parse_args()
    opts.setinfo = opts.setinfo == "yes"
    host, port = opts.addr.rsplit(":", 1)
    r = redis.Redis(host=host, port=int(port), decode_responses=True, socket_timeout=30)

    failed = []
    for name, check in CHECKS:
        try:
            check(r, opts)
            print("ok   %s" % name)
        except CheckError as e:
            failed.append(name)
            print("FAIL %s: %s" % (name, e))
        except redis.RedisError as e:
            # The server's error text says it all; a traceback would only
            # show redis-py's internals.
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
