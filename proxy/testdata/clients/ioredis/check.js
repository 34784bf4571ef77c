#!/usr/bin/env node
// Checks that ioredis, a cluster-unaware Node client, sees one plain
// redis-server at --addr.
//
// proxy/clients_test.go runs this against slotproxy in front of a cluster
// and, to prove the checks themselves right, against a standalone
// redis-server. Each check asserts; the last line is a summary, and the exit
// status is 1 when any check failed. `npm ci` in this folder installs the
// pinned ioredis (scripts/ensure-clients.sh does it).
"use strict";

const Redis = require("ioredis");
const calculateSlot = require("cluster-key-slot");
const ioredisVersion = require("ioredis/package.json").version;

const SCAN_KEYS = 10000;
const SCRIPT_KEYS = 48;

// The slot ranges redis-cli --cluster create gives three masters. The script
// keys must reach every one of them, so that EVALSHA is seen to work on every
// master and not only on the one where SCRIPT LOAD happened to go.
const MASTER_RANGES = [
  [0, 5460],
  [5461, 10922],
  [10923, 16383],
];

class CheckError extends Error {}

function expect(cond, msg) {
  if (!cond) throw new CheckError(msg);
}

const show = (v) => JSON.stringify(v);

function range(n, prefix) {
  return Array.from({ length: n }, (_, i) => prefix + i);
}

const scanKeys = () => range(SCAN_KEYS, "scan:");

function scriptKeys() {
  const keys = range(SCRIPT_KEYS, "script:");
  for (const [lo, hi] of MASTER_RANGES) {
    expect(
      keys.some((k) => lo <= calculateSlot(k) && calculateSlot(k) <= hi),
      `no script key in slots ${lo}-${hi}`,
    );
  }
  return keys;
}

// Only * and literal characters: all the patterns below need.
function matches(pattern, key) {
  const re = new RegExp(
    "^" + pattern.split("*").map((s) => s.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(".*") + "$",
  );
  return re.test(key);
}

function sameSet(what, got, want) {
  const g = new Set(got);
  const w = new Set(want);
  const missing = [...w].filter((k) => !g.has(k));
  const extra = [...g].filter((k) => !w.has(k));
  expect(
    missing.length === 0 && extra.length === 0,
    `${what}: missing ${missing.length} ${show(missing.slice(0, 5))}, unexpected ${extra.length} ${show(extra.slice(0, 5))}`,
  );
}

// ioredis's own INFO parsing: the routine its ready check runs, which waits
// while the server reports loading:1. It keeps every "field:value" line.
function parsedInfo(r) {
  return new Promise((resolve, reject) => {
    r._readyCheck((err, info) => (err ? reject(err) : resolve(info)));
  });
}

function parseInfoLine(value) {
  // "keys=10,expires=0,avg_ttl=0" as a map.
  return Object.fromEntries(value.split(",").map((kv) => kv.split("=")));
}

function parseClientLine(line) {
  return Object.fromEntries(
    line
      .trim()
      .split(" ")
      .map((kv) => {
        const i = kv.indexOf("=");
        return [kv.slice(0, i), kv.slice(i + 1)];
      }),
  );
}

const checks = {
  async "ready-check"(r) {
    // connect() resolves once the ready check has seen loading:0.
    expect(r.status === "ready", `status = ${r.status}, want ready`);
    const info = await parsedInfo(r);
    expect(info.loading === "0", `INFO loading = ${show(info.loading)}, want "0"`);
  },

  async "flushall-first"(r) {
    expect((await r.flushall()) === "OK", "FLUSHALL did not reply OK");
    const n = await r.dbsize();
    expect(n === 0, `DBSIZE after FLUSHALL = ${n}, want 0`);
  },

  async "client-setinfo"(r, opts) {
    // ioredis sends CLIENT SETINFO lib-name/lib-ver itself when it connects
    // and ignores an error, so the check reads what the server kept.
    if (!opts.setinfo) {
      // A redis-server before 7.2 has no CLIENT SETINFO: the reference run
      // only checks that the server says so.
      let failed = false;
      await r.client("SETINFO", "lib-name", "ioredis").catch(() => {
        failed = true;
      });
      expect(failed, "CLIENT SETINFO succeeded, but --setinfo=no said the server lacks it");
      return;
    }
    const info = parseClientLine(await r.client("INFO"));
    expect(info["lib-name"] === "ioredis", `CLIENT INFO lib-name = ${show(info["lib-name"])}, want ioredis (${show(info)})`);
    expect(info["lib-ver"] === ioredisVersion, `CLIENT INFO lib-ver = ${show(info["lib-ver"])}, want ${ioredisVersion}`);
    const list = (await r.client("LIST")).split("\n").filter((l) => l.trim() !== "").map(parseClientLine);
    const mine = list.filter((c) => c.id === info.id);
    expect(mine.length === 1, `CLIENT LIST has ${mine.length} entries with id=${info.id}, want 1: ${show(list)}`);
    expect(mine[0]["lib-name"] === "ioredis", `CLIENT LIST lib-name = ${show(mine[0]["lib-name"])}, want ioredis`);
  },

  async "write-10000"(r) {
    const keys = scanKeys();
    const p = r.pipeline();
    for (const k of keys) p.set(k, k);
    const replies = await p.exec();
    expect(
      replies.every(([err, v]) => !err && v === "OK"),
      `a SET in the pipeline failed: ${show(replies.find(([err, v]) => err || v !== "OK"))}`,
    );
    const last = keys[keys.length - 1];
    expect((await r.get(last)) === last, `GET ${last} after the pipeline`);
  },

  async info(r) {
    const info = await parsedInfo(r);
    expect(info.redis_version, "INFO has no redis_version");
    expect(info.redis_mode === "standalone", `INFO redis_mode = ${show(info.redis_mode)}, want standalone`);
    expect(info.cluster_enabled === "0", `INFO cluster_enabled = ${show(info.cluster_enabled)}, want "0"`);
    expect(info.db0, `INFO has no db0 line`);
    const db0 = parseInfoLine(info.db0);
    expect(db0.keys === String(SCAN_KEYS), `INFO db0 keys = ${show(db0.keys)}, want ${SCAN_KEYS}`);
    // The sections one by one, as an application asks for them.
    const cluster = await r.info("cluster");
    expect(/^cluster_enabled:0\r?$/m.test(cluster), `INFO cluster = ${show(cluster)}, want cluster_enabled:0`);
    const keyspace = await r.info("keyspace");
    expect(
      new RegExp(`^db0:keys=${SCAN_KEYS},`, "m").test(keyspace),
      `INFO keyspace = ${show(keyspace)}, want db0:keys=${SCAN_KEYS}`,
    );
  },

  async dbsize(r) {
    const n = await r.dbsize();
    expect(n === SCAN_KEYS, `DBSIZE = ${n}, want ${SCAN_KEYS}`);
  },

  async keys(r) {
    const all = scanKeys();
    for (const pattern of ["scan:*", "scan:2*", "nosuchprefix:*"]) {
      const got = await r.keys(pattern);
      expect(got.length === new Set(got).size, `KEYS ${pattern} returned ${got.length} keys, ${new Set(got).size} distinct`);
      sameSet(
        `KEYS ${pattern}`,
        got,
        all.filter((k) => matches(pattern, k)),
      );
    }
  },

  async scan(r) {
    const all = scanKeys();
    for (const opt of [{}, { match: "scan:1*", count: 100 }, { match: "scan:1*", count: 5000 }]) {
      const got = [];
      for await (const batch of r.scanStream(opt)) got.push(...batch);
      sameSet(
        `scanStream(${show(opt)})`,
        got,
        all.filter((k) => !opt.match || matches(opt.match, k)),
      );
    }
  },

  async scripts(r) {
    const keys = scriptKeys();
    const sha = await r.script("LOAD", "redis.call('SET', KEYS[1], ARGV[1]) return redis.call('GET', KEYS[1])");
    expect(typeof sha === "string" && sha.length === 40, `SCRIPT LOAD returned ${show(sha)}`);
    for (const k of keys) {
      const got = await r.evalsha(sha, 1, k, "v-" + k);
      expect(got === "v-" + k, `EVALSHA on ${k} (slot ${calculateSlot(k)}) = ${show(got)}`);
      expect((await r.get(k)) === "v-" + k, `GET ${k} after EVALSHA`);
    }

    // defineCommand tries EVALSHA and falls back to EVAL on NOSCRIPT.
    r.defineCommand("incrByScript", {
      numberOfKeys: 1,
      lua: "return redis.call('INCRBY', KEYS[1], ARGV[1])",
    });
    for (const k of keys) {
      const got = await r.incrByScript("n" + k, 3);
      expect(got === 3, `defineCommand on n${k} (slot ${calculateSlot("n" + k)}) = ${show(got)}, want 3`);
    }
    const p = r.pipeline();
    for (const k of keys) p.incrByScript("n" + k, 4);
    const replies = await p.exec();
    expect(
      replies.every(([err, v]) => !err && v === 7),
      `defineCommand in a pipeline: ${show(replies.find(([err, v]) => err || v !== 7))}, want all 7`,
    );
  },

  async flushall(r) {
    expect((await r.flushall()) === "OK", "FLUSHALL did not reply OK");
    const n = await r.dbsize();
    expect(n === 0, `DBSIZE after FLUSHALL = ${n}, want 0`);
    const keyspace = await r.info("keyspace");
    expect(!/^db0:/m.test(keyspace), `INFO keyspace after FLUSHALL still has db0: ${show(keyspace)}`);
  },
};

function parseArgs(argv) {
  const opts = { addr: "", setinfo: true };
  for (let i = 0; i < argv.length; i++) {
    const [name, inline] = argv[i].split(/=(.*)/s);
    const value = inline !== undefined ? inline : argv[++i];
    if (name === "--addr") opts.addr = value;
    else if (name === "--setinfo" && (value === "yes" || value === "no")) opts.setinfo = value === "yes";
    else throw new Error(`usage: check.js --addr host:port [--setinfo yes|no] (bad argument ${argv[i]})`);
  }
  if (!opts.addr) throw new Error("usage: check.js --addr host:port [--setinfo yes|no]");
  return opts;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const i = opts.addr.lastIndexOf(":");
  const r = new Redis({
    host: opts.addr.slice(0, i),
    port: Number(opts.addr.slice(i + 1)),
    lazyConnect: true,
    // A broken connection is a failed check, not something to hide.
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
    commandTimeout: 30000,
  });
  r.on("error", (err) => console.log(`connection error: ${err.message}`));

  const failed = [];
  let passed = 0;
  const names = Object.keys(checks);
  try {
    await r.connect();
  } catch (err) {
    // Without a connection no check can run: all of them count as failed.
    console.log(`FAIL connect: ${err.message}`);
    failed.push("connect");
  }
  if (failed.length === 0) {
    for (const name of names) {
      try {
        await checks[name](r, opts);
        console.log(`ok   ${name}`);
        passed++;
      } catch (err) {
        failed.push(name);
        // A check's own message, or the server's error text, says it all;
        // a stack is for a bug in the check or in the client.
        const plain = err instanceof CheckError || err.name === "ReplyError";
        console.log(`FAIL ${name}: ${plain ? err.message : err.stack}`);
      }
    }
  }
  r.disconnect();
  console.log(
    `ioredis ${ioredisVersion} against ${opts.addr}: ${passed}/${names.length} checks passed` +
      (failed.length ? `; failed: ${failed.join(" ")}` : ""),
  );
  process.exitCode = failed.length ? 1 : 0;
}

main().catch((err) => {
  console.log(`FAIL: ${err.stack}`);
  process.exitCode = 1;
});
