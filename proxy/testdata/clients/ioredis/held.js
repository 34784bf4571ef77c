#!/usr/bin/env node
// Checks that ioredis, a cluster-unaware Node client, can use the commands
// that hold a connection at --addr as on one plain redis-server: MULTI/EXEC,
// WATCH, Pub/Sub and BLPOP.
//
// proxy/clients_held_test.go runs this against slotproxy in front of a
// cluster and, to prove the checks themselves right, against a standalone
// redis-server. Each check asserts; the last line is a summary, and the exit
// status is 1 when any check failed. `npm ci` in this folder installs the
// pinned ioredis (scripts/ensure-clients.sh does it).
"use strict";

const Redis = require("ioredis");
const calculateSlot = require("cluster-key-slot");
const ioredisVersion = require("ioredis/package.json").version;

// Users whose hash tags land on each master of a cluster made by redis-cli
// --cluster create (thirds of the slot space), so that transactions are seen
// to run on every master.
const USERS = ["user:1", "user:3", "user:4"];

const WATCH_CLIENTS = 5;
const WATCH_INCREMENTS = 20;
const MESSAGES = 100;
// Bounds every wait on another connection: a lost wake-up or message fails
// the check instead of hanging the run.
const WAIT_MS = 10000;

class CheckError extends Error {}

function expect(cond, msg) {
  if (!cond) throw new CheckError(msg);
}

const show = (v) => JSON.stringify(v);
const same = (a, b) => show(a) === show(b);
const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function connect(opts) {
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
  await r.connect();
  return r;
}

// Waits until cond() resolves true, for at most WAIT_MS.
async function poll(what, cond) {
  const deadline = Date.now() + WAIT_MS;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new CheckError(`${what}: not within ${WAIT_MS / 1000}s`);
    await pause(10);
  }
}

// Resolves as promise does, or fails the check after WAIT_MS.
function within(what, promise) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new CheckError(`${what}: not within ${WAIT_MS / 1000}s`)), WAIT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function blockedClients(r) {
  const m = /^blocked_clients:(\d+)\r?$/m.exec(await r.info("clients"));
  expect(m, "INFO clients has no blocked_clients");
  return Number(m[1]);
}

const checks = {
  async transaction(r) {
    const thirds = new Set(USERS.map((u) => Math.min(Math.floor(calculateSlot(u) / 5461), 2)));
    expect(thirds.size === 3, `the users' hash tags reach thirds ${show([...thirds])} of the slot space, want all`);
    for (const u of USERS) {
      const [profile, visits, tags] = [`{${u}}:profile`, `{${u}}:visits`, `{${u}}:tags`];
      await r.del(profile, visits, tags);
      const got = await r
        .multi()
        .hset(profile, { name: u, plan: "free" })
        .incr(visits)
        .incrby(visits, 41)
        .sadd(tags, "a", "b", "a")
        .hgetall(profile)
        .get(visits)
        .smembers(tags)
        .exec();
      expect(
        got.every(([err]) => err === null),
        `MULTI/EXEC on {${u}}: ${show(got.find(([err]) => err !== null))}`,
      );
      const values = got.map(([, v]) => v);
      values[6] = [...values[6]].sort();
      const want = [2, 1, 42, 2, { name: u, plan: "free" }, "42", ["a", "b"]];
      expect(same(values, want), `MULTI/EXEC on {${u}} = ${show(values)}, want ${show(want)}`);

      // A command that fails when EXEC runs it does not stop the others,
      // and its error comes back in its place.
      const mixed = await r.multi().incr(profile).incr(visits).exec();
      expect(
        mixed.length === 2 && mixed[0][0] && /^WRONGTYPE/.test(mixed[0][0].message) && same(mixed[1], [null, 43]),
        `EXEC with INCR of a hash on {${u}} = ${show(mixed.map(([e, v]) => [e && e.message, v]))}, want [WRONGTYPE error, 43]`,
      );
    }

    // Not pipelined, each command is sent alone and answered QUEUED.
    const visitsOf = `{${USERS[1]}}:visits`;
    expect((await r.multi({ pipeline: false })) === "OK", "MULTI did not reply OK");
    const queued = [await r.incr(visitsOf), await r.get(visitsOf)];
    expect(same(queued, ["QUEUED", "QUEUED"]), `commands inside MULTI = ${show(queued)}, want QUEUED twice`);
    const ran = await r.exec();
    expect(same(ran, [[null, 44], [null, "44"]]), `EXEC of INCR and GET on ${visitsOf} = ${show(ran)}, want 44 twice`);

    // A command refused while queued dooms the transaction: nothing runs.
    const visits = `{${USERS[0]}}:visits`;
    let doomed = null;
    try {
      await r.multi().incr(visits).call("SET", visits).exec();
    } catch (err) {
      doomed = err;
    }
    expect(doomed && /^EXECABORT/.test(doomed.message), `EXEC of a doomed transaction: ${doomed && doomed.message}`);
    const left = await r.get(visits);
    expect(left === "43", `GET ${visits} after a doomed transaction = ${show(left)}, want 43`);
  },

  async "watch-conflict"(r, opts) {
    const key = "{held:ioredis}:watched";
    await r.set(key, "0");
    const other = await connect(opts);
    try {
      expect((await r.watch(key)) === "OK", `WATCH ${key} did not reply OK`);
      expect((await r.get(key)) === "0", `GET ${key} while watching`);
      await other.set(key, "changed");
      const aborted = await r.multi().set(key, "mine").exec();
      expect(aborted === null, `EXEC after another client changed the WATCHed key = ${show(aborted)}, want null`);
      expect((await r.get(key)) === "changed", `GET ${key} after the aborted EXEC`);

      // Unchanged, the same transaction runs.
      await r.watch(key);
      const ran = await r.multi().set(key, "mine").exec();
      expect(same(ran, [[null, "OK"]]), `EXEC with the WATCHed key unchanged = ${show(ran)}`);
      expect((await r.get(key)) === "mine", `GET ${key} after EXEC`);
    } finally {
      other.disconnect();
    }
  },

  async "watch-retry"(r, opts) {
    const key = "{held:ioredis}:counter";
    await r.set(key, "0");
    // Connected before any starts, so that they run at once.
    const clients = await Promise.all(Array.from({ length: WATCH_CLIENTS }, () => connect(opts)));
    let retries = 0;
    try {
      await within(
        "WATCH clients to finish",
        Promise.all(
          clients.map(async (c) => {
            for (let i = 0; i < WATCH_INCREMENTS; i++) {
              for (;;) {
                await c.watch(key);
                const n = Number(await c.get(key));
                // exec() is null when another client's SET aborted it.
                if ((await c.multi().set(key, n + 1).exec()) !== null) break;
                retries++;
              }
            }
          }),
        ),
      );
    } finally {
      for (const c of clients) c.disconnect();
    }
    const want = WATCH_CLIENTS * WATCH_INCREMENTS;
    const got = Number(await r.get(key));
    expect(got === want, `counter = ${got} after ${WATCH_CLIENTS} clients x ${WATCH_INCREMENTS} increments, want ${want}`);
    expect(!opts.wantRetries || retries > 0, `no EXEC was aborted among ${WATCH_CLIENTS} concurrent clients`);
    return `${WATCH_CLIENTS} clients x ${WATCH_INCREMENTS} increments, counter ${got}, ${retries} retries`;
  },

  async pubsub(r, opts) {
    const channel = "held:ioredis:news";
    const sub = await connect(opts);
    try {
      const got = [];
      let arrived;
      const all = new Promise((resolve) => (arrived = resolve));
      sub.on("message", (ch, msg) => {
        got.push([ch, msg]);
        if (got.length === MESSAGES) arrived();
      });
      // subscribe() resolves on the server's confirmation.
      const n = await sub.subscribe(channel);
      expect(n === 1, `SUBSCRIBE ${channel} = ${show(n)}, want 1`);
      for (let i = 0; i < MESSAGES; i++) {
        const receivers = await r.publish(channel, `m${i}`);
        expect(receivers === 1, `PUBLISH ${channel} m${i} reached ${receivers} subscribers, want 1`);
      }
      await within(`${MESSAGES} messages`, all);
      const want = Array.from({ length: MESSAGES }, (_, i) => [channel, `m${i}`]);
      expect(same(got, want), `messages = ${show(got.slice(0, 5))}..., want ${show(want.slice(0, 5))}... in order`);
      expect((await sub.unsubscribe(channel)) === 0, `UNSUBSCRIBE ${channel} did not leave 0 subscriptions`);
      expect((await r.publish(channel, "late")) === 0, "PUBLISH after UNSUBSCRIBE reached a subscriber");
      // Subscribed to nothing, the connection serves any command again.
      const key = "{held:ioredis}:after-sub";
      expect((await sub.set(key, "v")) === "OK", `SET on the unsubscribed connection did not reply OK`);
      expect((await sub.get(key)) === "v", `GET on the unsubscribed connection`);
    } finally {
      sub.disconnect();
    }
  },

  async psubscribe(r, opts) {
    const pattern = "held:ioredis:p:*";
    const sub = await connect(opts);
    try {
      const got = [];
      let arrived;
      const all = new Promise((resolve) => (arrived = resolve));
      sub.on("pmessage", (pat, ch, msg) => {
        got.push([pat, ch, msg]);
        if (got.length === MESSAGES) arrived();
      });
      const n = await sub.psubscribe(pattern);
      expect(n === 1, `PSUBSCRIBE ${pattern} = ${show(n)}, want 1`);
      const other = await r.publish("held:ioredis:other", "x");
      expect(other === 0, `PUBLISH to a channel the pattern does not match reached ${other} subscribers`);
      const want = Array.from({ length: MESSAGES }, (_, i) => [pattern, `held:ioredis:p:${i % 3}`, `m${i}`]);
      for (const [, ch, msg] of want) {
        const receivers = await r.publish(ch, msg);
        expect(receivers === 1, `PUBLISH ${ch} ${msg} reached ${receivers} subscribers, want 1`);
      }
      await within(`${MESSAGES} pmessages`, all);
      expect(same(got, want), `pmessages = ${show(got.slice(0, 5))}..., want ${show(want.slice(0, 5))}... in order`);
    } finally {
      sub.disconnect();
    }
  },

  async blpop(r, opts) {
    const key = "{held:ioredis}:queue";
    await r.del(key);
    const before = await blockedClients(r);
    expect(before === 0, `blocked_clients = ${before} before BLPOP, want 0`);
    const blocker = await connect(opts);
    let popped = null;
    try {
      const pop = blocker.blpop(key, 0).then((v) => (popped = v));
      await poll("BLPOP to block (INFO clients blocked_clients)", async () => (await blockedClients(r)) >= 1);
      expect(popped === null, `BLPOP on an empty list returned ${show(popped)} before any push`);
      expect((await r.rpush(key, "first", "second")) === 2, "RPUSH did not reply 2");
      await within("BLPOP woken by RPUSH", pop);
      expect(same(popped, [key, "first"]), `BLPOP = ${show(popped)}, want ${show([key, "first"])}`);
      const left = await r.lrange(key, 0, -1);
      expect(same(left, ["second"]), `list after BLPOP = ${show(left)}, want ["second"]`);
      await poll("blocked_clients back to 0", async () => (await blockedClients(r)) === 0);

      // A timeout that runs out gives a null reply.
      const none = await blocker.blpop("{held:ioredis}:empty", 0.2);
      expect(none === null, `BLPOP on an empty list with timeout 0.2 = ${show(none)}, want null`);
    } finally {
      blocker.disconnect();
    }
  },
};

function parseArgs(argv) {
  const usage = "usage: held.js --addr host:port [--want-retries yes|no]";
  const opts = { addr: "", wantRetries: false };
  for (let i = 0; i < argv.length; i++) {
    const [name, inline] = argv[i].split(/=(.*)/s);
    const value = inline !== undefined ? inline : argv[++i];
    if (name === "--addr") opts.addr = value;
    else if (name === "--want-retries" && (value === "yes" || value === "no")) opts.wantRetries = value === "yes";
    else throw new Error(`${usage} (bad argument ${argv[i]})`);
  }
  if (!opts.addr) throw new Error(usage);
  return opts;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const failed = [];
  let passed = 0;
  const names = Object.keys(checks);
  let r = null;
  try {
    r = await connect(opts);
  } catch (err) {
    // Without a connection no check can run: all of them count as failed.
    console.log(`FAIL connect: ${err.message}`);
    failed.push("connect");
  }
  if (r) {
    for (const name of names) {
      const began = Date.now();
      try {
        const note = await checks[name](r, opts);
        console.log(`ok   ${name} (${((Date.now() - began) / 1000).toFixed(1)}s)${note ? ": " + note : ""}`);
        passed++;
      } catch (err) {
        failed.push(name);
        // A check's own message, or the server's error text, says it all;
        // a stack is for a bug in the check or in the client.
        const plain = err instanceof CheckError || err.name === "ReplyError";
        console.log(`FAIL ${name}: ${plain ? err.message : err.stack}`);
      }
    }
    r.disconnect();
  }
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
