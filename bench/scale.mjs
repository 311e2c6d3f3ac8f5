#!/usr/bin/env node
// Client side of bench/scale.sh: ONE process drives every user of every server
// (2 per server), so all times come from one clock.
//
//   node scale.mjs --servers FILE --tag T [--timeout S] [--users alice,bob]
//
// FILE: JSON array of { "ip": "fd..::1", "domain": "..." }. Each user U (password
// "pw-U") logs in on every server (STARTTLS, SASL), sends presence and pings its
// own server (so it is online before anything is sent). Then, in one tick,
// every user U on server i writes one chat to U@<server j> for every j != i
// (N * users * (N - 1) chats; body "T <i> <U>"), pre-serialised, straight to
// its TLS socket. Receivers note the arrival time of each expected chat.
//
// One JSON object per stdout line:
//   {"event":"online","clients":C,"login_ms":...}
//   {"event":"done","expected":E,"delivered":D,"duplicates":..,"foreign":..,
//    "errors":..,"first_send_ms":..,"last_arrival_ms":..,"elapsed_ms":..,
//    "p50_ms":..,"p90_ms":..,"first_error":...}           (exit 0 when D == E)
// On timeout the same "done" line with "timeout":true and "missing_first".
// Exit 0 all delivered; 2 timeout / missing; 1 connection failure.

import { client, xml } from "@xmpp/client";
import "../test/integration/xmpp-test-setup.mjs";
import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";

const now = () => performance.timeOrigin + performance.now();
const out = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");

const opts = {};
{
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i += 2) opts[argv[i].replace(/^--/, "")] = argv[i + 1];
}
if (!opts.servers || !opts.tag) {
  out({ event: "error", message: "usage: scale.mjs --servers FILE --tag T [--timeout S]" });
  process.exit(1);
}
const servers = JSON.parse(readFileSync(opts.servers, "utf8"));
const users = (opts.users ?? "alice,bob").split(",");
const tag = opts.tag;
const timeoutMs = Number(opts.timeout ?? 180) * 1000;
const n = servers.length;

const expected = n * users.length * (n - 1);
// arrival[recvServer][user][fromServer] = ms (0: not yet)
const arrival = servers.map(() => Object.fromEntries(users.map((u) => [u, new Float64Array(n)])));
let delivered = 0;
let duplicates = 0;
let foreign = 0;
let errors = 0;
let firstError = null;
let firstSend = 0;
let lastArrival = 0;
let finished = false;
const clients = [];

function summary(extra = {}) {
  const times = [];
  for (const per of arrival) for (const u of users) for (const t of per[u]) if (t > 0) times.push(t - firstSend);
  times.sort((a, b) => a - b);
  const pick = (q) => (times.length ? Math.round(times[Math.min(times.length - 1, Math.floor(q * times.length))] * 10) / 10 : null);
  return {
    event: "done",
    servers: n,
    expected,
    delivered,
    duplicates,
    foreign,
    errors,
    first_send_ms: firstSend,
    last_arrival_ms: lastArrival,
    elapsed_ms: lastArrival ? Math.round((lastArrival - firstSend) * 10) / 10 : null,
    p50_ms: pick(0.5),
    p90_ms: pick(0.9),
    first_error: firstError,
    ...extra,
  };
}

async function finish(code, extra) {
  if (finished) return;
  finished = true;
  out(summary(extra));
  const hard = setTimeout(() => process.exit(code), 3000);
  await Promise.allSettled(clients.map((c) => c.xmpp.stop()));
  clearTimeout(hard);
  process.exit(code);
}

const timer = setTimeout(() => {
  const missing = [];
  for (let j = 0; j < n && missing.length < 10; j++)
    for (const u of users)
      for (let i = 0; i < n && missing.length < 10; i++)
        if (i !== j && !(arrival[j][u][i] > 0)) missing.push(`${u}: ${servers[i].domain} -> ${servers[j].domain}`);
  finish(2, { timeout: true, missing_first: missing });
}, timeoutMs);

const bodyRe = new RegExp(`^${tag.replace(/[^A-Za-z0-9]/g, "\\$&")} (\\d+) ([a-z]+)$`);

function connect(j, user) {
  const s = servers[j];
  const xmpp = client({
    service: `xmpp://[${s.ip}]:5222`,
    domain: s.domain,
    username: user,
    password: `pw-${user}`,
    resource: `scale-${process.pid}`,
  });
  xmpp.reconnect.stop();
  // The default 2 s for each stream step is too short for many logins at once
  // on a busy machine (logins are not timed).
  xmpp.timeout = 60000;
  xmpp.on("error", (err) => process.stderr.write(`scale.mjs ${user}@${s.domain}: ${err?.stack ?? err}\n`));
  xmpp.on("stanza", (stanza) => {
    if (stanza.name !== "message") return;
    if (stanza.attrs.type === "error") {
      errors++;
      if (!firstError) firstError = stanza.toString().slice(0, 400);
      return;
    }
    const m = bodyRe.exec(stanza.getChildText("body") ?? "");
    if (!m || m[2] !== user) {
      foreign++;
      return;
    }
    const i = Number(m[1]);
    if (!(i >= 0 && i < n) || i === j) {
      foreign++;
      return;
    }
    const t = now();
    const per = arrival[j][user];
    if (per[i] > 0) {
      duplicates++;
      return;
    }
    per[i] = t;
    delivered++;
    if (t > lastArrival) lastArrival = t;
    if (delivered === expected) {
      clearTimeout(timer);
      finish(0);
    }
  });
  return { xmpp, j, user };
}

async function main() {
  const t0 = now();
  const ping = () => xml("iq", { type: "get" }, xml("ping", { xmlns: "urn:xmpp:ping" }));
  const logins = [];
  for (let j = 0; j < n; j++) for (const u of users) logins.push([j, u]);
  // A few logins at a time (STARTTLS + SCRAM each), each retried twice.
  let next = 0;
  let failed = null;
  const worker = async () => {
    while (next < logins.length && !failed) {
      const [j, u] = logins[next++];
      for (let attempt = 1; ; attempt++) {
        const c = connect(j, u);
        try {
          await c.xmpp.start();
          await c.xmpp.send(xml("presence"));
          await c.xmpp.iqCaller.request(ping(), 60000);
          clients.push(c);
          break;
        } catch (err) {
          c.xmpp.stop().catch(() => {});
          if (attempt >= 3) {
            failed = `${u}@${servers[j].domain}: ${err}`;
            break;
          }
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(Number(opts.parallel ?? 8), logins.length) }, worker));
  if (failed) {
    out({ event: "error", message: "a client failed to log in (3 attempts)", first: failed });
    process.exit(1);
  }
  out({ event: "online", clients: clients.length, login_ms: Math.round(now() - t0) });
  // Pre-serialise everything, then write it all in one tick.
  const payload = clients.map((c) => {
    let s = "";
    for (let i = 0; i < n; i++) {
      if (i === c.j) continue;
      s += `<message to='${c.user}@${servers[i].domain}' type='chat' id='${tag}-${c.j}-${i}'><body>${tag} ${c.j} ${c.user}</body></message>`;
    }
    // After STARTTLS xmpp.socket is @xmpp/tls's wrapper: write to the TLSSocket inside it.
    return [c.xmpp.socket.socket ?? c.xmpp.socket, s];
  });
  firstSend = now();
  for (const [socket, s] of payload) socket.write(s);
}

main().catch((err) => {
  out({ event: "error", message: String(err?.stack ?? err) });
  process.exit(1);
});
