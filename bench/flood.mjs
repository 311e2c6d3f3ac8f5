#!/usr/bin/env node
// Benchmark client for scripts/bench.sh (uses @xmpp/client 0.14 to connect,
// STARTTLS and authenticate; the burst itself is written to the TLS socket as
// pre-serialised stanzas, in 64 KiB writes, waiting for 'drain' whenever the
// socket says its buffer is full: as fast as the server accepts them).
//
// One JSON object per stdout line. Times are epoch milliseconds with
// sub-millisecond resolution (performance.timeOrigin + performance.now()), so
// a sender and a receiver in two processes on one machine share a clock.
//
//   node flood.mjs recv --service URI --domain D --user U --pass P --tag T --count N [--timeout S]
//     Online, presence, prints {"event":"ready"}. Counts chat messages whose body
//     is "T <i>" (1 <= i <= N); prints {"event":"done",first_ms,last_ms,received,
//     duplicates,foreign,cpu_ms} when all N distinct i arrived; exit 0. On timeout prints
//     {"event":"timeout",received,missing_first:[...]}; exit 2.
//
//   node flood.mjs send --service URI --domain D --user U --pass P --to JID --tag T --count N [--timeout S]
//     Online; prints {"event":"start",start_ms}; writes the N chats; then an iq
//     ping to its own server (everything before it has been routed); prints
//     {"event":"sent",start_ms,written_ms,acked_ms,cpu_ms,errors}; exit 0 (4 if
//     error replies came back). cpu_ms: this process's CPU time from the first
//     write to the ping reply (recv: from "ready" to the last message).
//
//   node flood.mjs setup --service URI --domain D --user U --pass P --to JID
//                        --rservice URI --rdomain D --ruser U --rpass P [--timeout S]
//     Both clients in this one process (one clock): the receiver (JID) goes
//     online, then the sender sends one chat; prints {"event":"setup","ms":...}
//     = time from handing the stanza to the socket until the receiver has it.
//     Exit 0; 2 on timeout; 4 on an error reply.
//
//   node flood.mjs bounce --service URI --domain D --user U --pass P --to JID [--count K] [--timeout S]
//     Sends K chats to JID one after the other, each once the error reply to the
//     previous one came back; prints {"event":"bounce","ms":...,"condition":...,
//     "text":...} per chat (ms = from handing the stanza to the socket until the
//     error reply is parsed). Exit 0; 2 on timeout; 5 on a non-error reply.

import { client, xml } from "@xmpp/client";
import "../test/integration/xmpp-test-setup.mjs";
import { once } from "node:events";
import { performance } from "node:perf_hooks";

const now = () => performance.timeOrigin + performance.now();
// CPU time this process used so far (user + system), in ms.
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const out = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
function die(msg, code = 1) {
  out({ event: "error", message: msg });
  process.exit(code);
}

function parseArgs(argv) {
  const opts = {};
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith("--") || i + 1 >= argv.length) die(`bad argument ${argv[i]}`);
    opts[argv[i].slice(2)] = argv[i + 1];
  }
  return opts;
}

const [command, ...rest] = process.argv.slice(2);
const opts = parseArgs(rest);
const timeoutMs = Number(opts.timeout ?? 120) * 1000;
const count = Number(opts.count ?? 1);
const tag = opts.tag ?? `t${process.pid}`;

function connect(service, domain, user, pass, resource) {
  const xmpp = client({ service, domain, username: user, password: pass, resource });
  xmpp.reconnect.stop();
  xmpp.on("error", (err) => process.stderr.write(`flood.mjs ${resource}: ${err?.stack ?? err}\n`));
  return xmpp;
}

async function stopAll(...clients) {
  const hard = setTimeout(() => process.exit(0), 2000);
  await Promise.allSettled(clients.map((c) => c.stop()));
  clearTimeout(hard);
}

const timer = setTimeout(() => {
  if (command === "recv") {
    const missing = [];
    for (let i = 1; i <= count && missing.length < 10; i++) if (!seen[i]) missing.push(i);
    out({ event: "timeout", received, duplicates, foreign, missing_first: missing });
  } else {
    out({ event: "timeout", command });
  }
  process.exit(2);
}, timeoutMs);

// ------------------------------------------------------------------ recv
let received = 0;
let duplicates = 0;
let foreign = 0;
let seen = null;
let cpuReady = 0;

async function recv() {
  seen = new Uint8Array(count + 1);
  let firstMs = 0;
  let lastMs = 0;
  const prefix = `${tag} `;
  const xmpp = connect(opts.service, opts.domain, opts.user, opts.pass, `recv-${process.pid}`);
  xmpp.on("stanza", (stanza) => {
    if (stanza.name !== "message") return;
    const body = stanza.getChildText("body");
    if (body === null || !body.startsWith(prefix)) {
      foreign++;
      return;
    }
    const i = Number(body.slice(prefix.length));
    if (!(i >= 1 && i <= count)) {
      foreign++;
      return;
    }
    const t = now();
    if (seen[i]) {
      duplicates++;
      return;
    }
    seen[i] = 1;
    if (received === 0) firstMs = t;
    lastMs = t;
    received++;
    if (received === count) {
      out({ event: "done", received, duplicates, foreign, first_ms: firstMs, last_ms: lastMs, cpu_ms: cpuMs() - cpuReady });
      clearTimeout(timer);
      stopAll(xmpp).then(() => process.exit(0));
    }
  });
  await xmpp.start();
  await xmpp.send(xml("presence"));
  // Round trip: the presence is processed before we say we are ready.
  await xmpp.iqCaller.request(xml("iq", { type: "get" }, xml("ping", { xmlns: "urn:xmpp:ping" })), 20000);
  cpuReady = cpuMs();
  out({ event: "ready" });
}

// ------------------------------------------------------------------ send
function escapeXml(s) {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/'/g, "&apos;").replace(/"/g, "&quot;");
}

async function send() {
  if (!opts.to) die("--to is required");
  let errors = 0;
  const xmpp = connect(opts.service, opts.domain, opts.user, opts.pass, `send-${process.pid}`);
  xmpp.on("stanza", (stanza) => {
    if (stanza.name === "message" && stanza.attrs.type === "error") {
      if (errors === 0) out({ event: "error-reply", xml: stanza.toString().slice(0, 400) });
      errors++;
    }
  });
  await xmpp.start();
  // Pre-serialise, so the timed part is only writing.
  const to = escapeXml(opts.to);
  const chunks = [];
  let chunk = "";
  for (let i = 1; i <= count; i++) {
    chunk += `<message to='${to}' type='chat' id='${tag}-${i}'><body>${tag} ${i}</body></message>`;
    if (chunk.length >= 65536) {
      chunks.push(chunk);
      chunk = "";
    }
  }
  if (chunk) chunks.push(chunk);
  // After STARTTLS xmpp.socket is @xmpp/tls's wrapper, whose write() returns
  // nothing and which never emits 'drain': use the TLSSocket inside it.
  const socket = xmpp.socket.socket ?? xmpp.socket;
  if (typeof socket.writableLength !== "number") die("no stream socket to write to");
  const cpuStart = cpuMs();
  const startMs = now();
  out({ event: "start", start_ms: startMs });
  for (const c of chunks) {
    if (!socket.write(c)) await once(socket, "drain");
  }
  const writtenMs = now();
  await xmpp.iqCaller.request(xml("iq", { type: "get" }, xml("ping", { xmlns: "urn:xmpp:ping" })), timeoutMs);
  const ackedMs = now();
  const cpuUsed = cpuMs() - cpuStart;
  // Error replies for the last stanzas may still be on their way.
  await new Promise((r) => setTimeout(r, 200));
  out({ event: "sent", count, start_ms: startMs, written_ms: writtenMs, acked_ms: ackedMs, cpu_ms: cpuUsed, errors });
  clearTimeout(timer);
  await stopAll(xmpp);
  process.exit(errors ? 4 : 0);
}

// ------------------------------------------------------------------ setup
async function setup() {
  if (!opts.to) die("--to is required");
  const receiver = connect(opts.rservice, opts.rdomain, opts.ruser, opts.rpass, `setup-r-${process.pid}`);
  const sender = connect(opts.service, opts.domain, opts.user, opts.pass, `setup-s-${process.pid}`);
  const body = `${tag} setup`;
  let sentMs = 0;
  const got = new Promise((resolve, reject) => {
    receiver.on("stanza", (stanza) => {
      if (stanza.name === "message" && stanza.getChildText("body") === body) resolve(now());
    });
    sender.on("stanza", (stanza) => {
      if (stanza.name === "message" && stanza.attrs.type === "error") reject(stanza);
    });
  });
  await receiver.start();
  await receiver.send(xml("presence"));
  await receiver.iqCaller.request(xml("iq", { type: "get" }, xml("ping", { xmlns: "urn:xmpp:ping" })), 20000);
  await sender.start();
  const stanza = `<message to='${escapeXml(opts.to)}' type='chat' id='${tag}-setup'><body>${body}</body></message>`;
  sentMs = now();
  sender.socket.write(stanza);
  let code = 0;
  try {
    const gotMs = await got;
    out({ event: "setup", ms: gotMs - sentMs });
  } catch (errStanza) {
    out({ event: "error-reply", ms: now() - sentMs, xml: errStanza.toString().slice(0, 400) });
    code = 4;
  }
  clearTimeout(timer);
  await stopAll(sender, receiver);
  process.exit(code);
}

// ------------------------------------------------------------------ bounce
const NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas";
function errorInfo(stanza) {
  const error = stanza.getChild("error");
  let condition = null;
  let text = null;
  for (const child of error?.children ?? []) {
    if (typeof child === "string" || child.attrs.xmlns !== NS_STANZAS) continue;
    if (child.name === "text") text = child.text();
    else condition = child.name;
  }
  return { condition, text };
}

async function bounce() {
  if (!opts.to) die("--to is required");
  const xmpp = connect(opts.service, opts.domain, opts.user, opts.pass, `bounce-${process.pid}`);
  let waiting = null;
  xmpp.on("stanza", (stanza) => {
    if (stanza.name !== "message" || !waiting) return;
    const w = waiting;
    waiting = null;
    w(stanza, now());
  });
  await xmpp.start();
  const to = escapeXml(opts.to);
  for (let i = 1; i <= count; i++) {
    const reply = new Promise((resolve) => (waiting = (stanza, t) => resolve([stanza, t])));
    const sentMs = now();
    xmpp.socket.write(`<message to='${to}' type='chat' id='${tag}-b${i}'><body>${tag} bounce ${i}</body></message>`);
    const [stanza, gotMs] = await reply;
    if (stanza.attrs.type !== "error") {
      out({ event: "unexpected-reply", xml: stanza.toString().slice(0, 400) });
      process.exit(5);
    }
    out({ event: "bounce", ms: gotMs - sentMs, ...errorInfo(stanza) });
  }
  clearTimeout(timer);
  await stopAll(xmpp);
  process.exit(0);
}

const commands = { recv, send, setup, bounce };
if (!commands[command]) die("usage: flood.mjs recv|send|setup|bounce --service URI --domain D --user U --pass P ...");
for (const required of ["service", "domain", "user", "pass"]) {
  if (!opts[required]) die(`--${required} is required`);
}
commands[command]().catch((err) => die(String(err?.stack ?? err)));
