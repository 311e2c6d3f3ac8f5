#!/usr/bin/env node
// Load clients for bench/volume.sh ("Bad input at volume"); @xmpp/client 0.14
// connects, STARTTLS and authenticates. One JSON object per stdout line; times
// are epoch ms (performance.timeOrigin + performance.now()), so processes on
// one machine share a clock.
//
//   node volume.mjs spray --service URI --domain D --user U --pass P --names FILE
//                         [--seconds 60] [--linger 60]
//     FILE: one "KIND<TAB>JID" line per destination. Sends one chat to each, paced
//     evenly over --seconds (written straight to the TLS socket every 10 ms), then
//     waits until every chat has had its error reply or --linger seconds passed.
//     Prints {"event":"progress",...} every 5 s and at the end {"event":"spray",
//     start_ms, end_send_ms, last_reply_ms, sent, replies, no_reply, by_kind:{KIND:
//     {sent, conditions:{COND:n}, reply_ms:{median,p99,max}}}, texts:{COND: first text}}.
//
//   node volume.mjs latency --service URI --domain D --user U --pass P --to JID
//                           --rservice URI --rdomain D --ruser U --rpass P
//                           [--interval 1000] [--stop-file FILE] [--seconds 600]
//     Both clients in this process: the receiver (JID) goes online, then the
//     sender sends one chat every --interval ms; prints {"event":"lat","i",
//     "sent_ms","ms"} when each arrives, {"event":"late","i"} for one that took
//     over 30 s; stops when --stop-file exists (or after --seconds) and prints
//     {"event":"latency-done","sent","received","error_replies"}.

import { client, xml } from "@xmpp/client";
import "../test/integration/xmpp-test-setup.mjs";
import { once } from "node:events";
import { existsSync, readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";

const now = () => performance.timeOrigin + performance.now();
const out = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
function die(msg, code = 1) {
  out({ event: "error", message: msg });
  process.exit(code);
}
const [command, ...rest] = process.argv.slice(2);
const opts = {};
for (let i = 0; i < rest.length; i += 2) {
  if (!rest[i].startsWith("--") || i + 1 >= rest.length) die(`bad argument ${rest[i]}`);
  opts[rest[i].slice(2)] = rest[i + 1];
}
function connect(service, domain, user, pass, resource) {
  const xmpp = client({ service, domain, username: user, password: pass, resource });
  xmpp.reconnect.stop();
  xmpp.on("error", (err) => process.stderr.write(`volume.mjs ${resource}: ${err?.stack ?? err}\n`));
  return xmpp;
}
const esc = (s) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/'/g, "&apos;").replace(/"/g, "&quot;");
function stats(a) {
  if (!a.length) return null;
  const s = Float64Array.from(a).sort();
  const q = (p) => s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)];
  return { n: s.length, median: +q(0.5).toFixed(1), p99: +q(0.99).toFixed(1), max: +s[s.length - 1].toFixed(1) };
}
function errorInfo(stanza) {
  const error = stanza.getChild("error");
  let condition = "unknown";
  let text = "";
  for (const c of error?.children ?? []) {
    if (typeof c === "string") continue;
    if (c.name === "text") text = c.text();
    else if (condition === "unknown") condition = c.name;
  }
  return { condition, text };
}

async function spray() {
  const lines = readFileSync(opts.names, "utf8").split("\n").filter((l) => l.includes("\t"));
  const seconds = Number(opts.seconds ?? 60);
  const lingerMs = Number(opts.linger ?? 60) * 1000;
  const n = lines.length;
  const kinds = [];
  const kindIndex = new Map();
  const kindOf = new Uint8Array(n);
  const jids = new Array(n);
  lines.forEach((l, i) => {
    const [k, j] = l.split("\t");
    if (!kindIndex.has(k)) { kindIndex.set(k, kinds.length); kinds.push(k); }
    kindOf[i] = kindIndex.get(k);
    jids[i] = j;
  });
  const sentAt = new Float64Array(n);
  const replied = new Uint8Array(n);
  const byKind = kinds.map(() => ({ sent: 0, conditions: {}, reply: [] }));
  const texts = {};
  let replies = 0;
  let nonError = 0;
  let lastReply = 0;
  const xmpp = connect(opts.service, opts.domain, opts.user, opts.pass, `spray-${process.pid}`);
  xmpp.on("stanza", (stanza) => {
    if (stanza.name !== "message") return;
    const id = stanza.attrs.id ?? "";
    if (!id.startsWith("v")) return;
    const i = Number(id.slice(1));
    if (!(i >= 0 && i < n) || replied[i]) return;
    replied[i] = 1;
    replies++;
    const t = now();
    lastReply = t;
    const k = byKind[kindOf[i]];
    if (stanza.attrs.type !== "error") { nonError++; return; }
    const { condition, text } = errorInfo(stanza);
    k.conditions[condition] = (k.conditions[condition] ?? 0) + 1;
    k.reply.push(t - sentAt[i]);
    const key = `${kinds[kindOf[i]]}/${condition}`;
    if (!(key in texts)) texts[key] = text.slice(0, 200);
  });
  await xmpp.start();
  const socket = xmpp.socket.socket ?? xmpp.socket;
  const start = now();
  out({ event: "spray-start", start_ms: start, names: n, seconds });
  let sent = 0;
  let nextProgress = start + 5000;
  while (sent < n) {
    const due = Math.min(n, Math.floor(((now() - start) / (seconds * 1000)) * n) + 1);
    let chunk = "";
    const t = now();
    for (; sent < due; sent++) {
      chunk += `<message to='${esc(jids[sent])}' type='chat' id='v${sent}'><body>volume ${sent}</body></message>`;
      sentAt[sent] = t;
      byKind[kindOf[sent]].sent++;
    }
    if (chunk && !socket.write(chunk)) await once(socket, "drain");
    if (now() >= nextProgress) {
      out({ event: "progress", t_ms: now(), sent, replies });
      nextProgress += 5000;
    }
    await sleep(10);
  }
  const endSend = now();
  out({ event: "sent-all", end_send_ms: endSend, sent });
  while (replies < n && now() - endSend < lingerMs) {
    await sleep(200);
    if (now() >= nextProgress) {
      out({ event: "progress", t_ms: now(), sent, replies });
      nextProgress += 5000;
    }
  }
  const result = {};
  kinds.forEach((k, i) => {
    result[k] = { sent: byKind[i].sent, conditions: byKind[i].conditions, reply_ms: stats(byKind[i].reply) };
  });
  out({ event: "spray", start_ms: start, end_send_ms: endSend, last_reply_ms: lastReply, sent, replies,
    non_error_replies: nonError, no_reply: n - replies, by_kind: result, texts });
  const hard = setTimeout(() => process.exit(0), 3000);
  await xmpp.stop().catch(() => {});
  clearTimeout(hard);
  process.exit(0);
}

async function latency() {
  const interval = Number(opts.interval ?? 1000);
  const maxMs = Number(opts.seconds ?? 600) * 1000;
  const receiver = connect(opts.rservice, opts.rdomain, opts.ruser, opts.rpass, `lat-r-${process.pid}`);
  const sender = connect(opts.service, opts.domain, opts.user, opts.pass, `lat-s-${process.pid}`);
  const sentAt = new Map();
  let received = 0;
  let errors = 0;
  receiver.on("stanza", (stanza) => {
    if (stanza.name !== "message") return;
    const body = stanza.getChildText("body") ?? "";
    const m = /^lat (\d+)$/.exec(body);
    if (!m) return;
    const i = Number(m[1]);
    const t0 = sentAt.get(i);
    if (t0 === undefined) return;
    sentAt.delete(i);
    received++;
    out({ event: "lat", i, sent_ms: t0, ms: +(now() - t0).toFixed(2) });
  });
  sender.on("stanza", (stanza) => {
    if (stanza.name === "message" && stanza.attrs.type === "error") {
      errors++;
      out({ event: "lat-error", id: stanza.attrs.id, ...errorInfo(stanza) });
    }
  });
  await receiver.start();
  await receiver.send(xml("presence"));
  await receiver.iqCaller.request(xml("iq", { type: "get" }, xml("ping", { xmlns: "urn:xmpp:ping" })), 20000);
  await sender.start();
  out({ event: "latency-ready", t_ms: now() });
  const t0 = now();
  let i = 0;
  while (now() - t0 < maxMs && !(opts["stop-file"] && existsSync(opts["stop-file"]))) {
    i++;
    const t = now();
    sentAt.set(i, t);
    sender.send(xml("message", { to: opts.to, type: "chat", id: `lat${i}` }, xml("body", {}, `lat ${i}`)));
    for (const [k, ts] of sentAt) if (t - ts > 30000) { out({ event: "late", i: k }); sentAt.delete(k); }
    await sleep(Math.max(0, t + interval - now()));
  }
  await sleep(3000);
  out({ event: "latency-done", sent: i, received, error_replies: errors, pending: sentAt.size });
  const hard = setTimeout(() => process.exit(0), 3000);
  await Promise.allSettled([sender.stop(), receiver.stop()]);
  clearTimeout(hard);
  process.exit(0);
}

if (command === "spray") await spray();
else if (command === "latency") await latency();
else die(`unknown command ${command}`);
