#!/usr/bin/env node
// Summarises the raw samples of scripts/bench.sh (one JSON object per line)
// into bench-results/bench.json and prints the table.
//
//   node bench/report.mjs RAW.jsonl OUT.json
import { readFileSync, writeFileSync } from "node:fs";

const [rawFile, outFile] = process.argv.slice(2);
const rows = readFileSync(rawFile, "utf8")
  .split("\n")
  .filter((l) => l.trim())
  .map((l) => JSON.parse(l));
const of = (kind) => rows.filter((r) => r.kind === kind);

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return null;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
function stats(xs) {
  if (xs.length === 0) return null;
  return { median: Number(median(xs).toFixed(3)), min: Math.min(...xs), max: Math.max(...xs), n: xs.length, samples: xs };
}
const round = (x, d = 0) => (x === null || x === undefined ? null : Number(x.toFixed(d)));

const result = { machine: of("machine")[0] ?? null, end: of("end")[0] ?? null, targets: {} };
delete result.machine?.kind;

// ------------------------------------------------------------ codec
result.codec = {};
for (const c of of("codec")) {
  result.codec[c.interpreter] = { date: c.date, load_before: c.load_before, rerun_after_full_run: c.rerun === true, ...c.data };
}
const lua54 = result.codec["lua5.4"];
if (lua54) {
  result.targets.codec_decode_lua54 = {
    target: ">= 1,000,000 decodes/s on Lua 5.4, no TypeScriptToLua helpers",
    value: lua54.results.decode.median_ops_per_s,
    ts_helpers: lua54.ts_helpers_in_v6alt_lua,
    met: lua54.results.decode.median_ops_per_s >= 1e6 && lua54.ts_helpers_in_v6alt_lua === 0,
  };
}

// ------------------------------------------------------------ stanza path
const pairs = ["v6alt", "classic", "classic_nomod"];
const bursts = of("burst").filter((b) => b.round > 0);
result.stanza_path = { pairs: {}, ratios: {} };
const rate = (b) => b.count / ((b.recv.last_ms - b.send.start_ms) / 1000);
const acceptRate = (b) => b.count / ((b.send.acked_ms - b.send.start_ms) / 1000);
let lossTotal = 0;
let failed = 0;
for (const pair of pairs) {
  const mine = bursts.filter((b) => b.pair === pair);
  const ok = mine.filter((b) => b.ok);
  failed += mine.length - ok.length;
  for (const b of ok) lossTotal += b.count - b.recv.received + (b.send.errors ?? 0);
  result.stanza_path.pairs[pair] = {
    messages_per_burst: mine[0]?.count ?? null,
    bursts: mine.length,
    bursts_complete: ok.length,
    // null when a burst did not complete (its receiver's count is in raw.jsonl)
    lost: mine.length === ok.length ? ok.reduce((n, b) => n + (b.count - b.recv.received), 0) : null,
    error_replies: ok.reduce((n, b) => n + (b.send.errors ?? 0), 0),
    duplicates: ok.reduce((n, b) => n + (b.recv.duplicates ?? 0), 0),
    msgs_per_s: stats(ok.map(rate).map((x) => round(x))),
    accepted_by_sender_server_msgs_per_s: stats(ok.map(acceptRate).map((x) => round(x))),
    load_during: ok.map((b) => b.load),
    // CPU time per chat (microseconds), from /proc/PID/task/*/schedstat of the
    // servers and process.cpuUsage() of the clients: unlike msg/s, hardly
    // affected by other load on the machine.
    cpu_us_per_msg: {
      sender_server: stats(ok.map((b) => round(b.sender_server_cpu_ns / 1000 / b.count, 2))),
      receiver_server: stats(ok.map((b) => round(b.receiver_server_cpu_ns / 1000 / b.count, 2))),
      both_servers: stats(ok.map((b) => round((b.sender_server_cpu_ns + b.receiver_server_cpu_ns) / 1000 / b.count, 2))),
      sender_client: stats(ok.map((b) => round((b.send.cpu_ms * 1000) / b.count, 2))),
      receiver_client: stats(ok.map((b) => round((b.recv.cpu_ms * 1000) / b.count, 2))),
    },
  };
}
for (const base of ["classic", "classic_nomod"]) {
  const perRound = [];
  for (const r of [...new Set(bursts.map((b) => b.round))]) {
    const a = bursts.find((b) => b.round === r && b.pair === "v6alt" && b.ok);
    const c = bursts.find((b) => b.round === r && b.pair === base && b.ok);
    if (a && c) perRound.push(round(rate(a) / rate(c), 4));
  }
  const ma = result.stanza_path.pairs.v6alt.msgs_per_s?.median;
  const mb = result.stanza_path.pairs[base].msgs_per_s?.median;
  const cpuA = result.stanza_path.pairs.v6alt.cpu_us_per_msg.sender_server?.median;
  const cpuB = result.stanza_path.pairs[base].cpu_us_per_msg.sender_server?.median;
  const cpuA2 = result.stanza_path.pairs.v6alt.cpu_us_per_msg.both_servers?.median;
  const cpuB2 = result.stanza_path.pairs[base].cpu_us_per_msg.both_servers?.median;
  result.stanza_path.ratios[`v6alt_over_${base}`] = {
    // sender-server CPU per chat of the base pair / of the v6alt pair: the
    // throughput ratio a CPU-bound sending server would show.
    cpu_sender_server: cpuA && cpuB ? round(cpuB / cpuA, 4) : null,
    cpu_both_servers: cpuA2 && cpuB2 ? round(cpuB2 / cpuA2, 4) : null,
    per_round: perRound,
    median_of_round_ratios: round(median(perRound), 4),
    ratio_of_medians: ma && mb ? round(ma / mb, 4) : null,
  };
}
const mainRatio = result.stanza_path.ratios.v6alt_over_classic.median_of_round_ratios;
result.targets.stanza_ratio = {
  target: "(a) v6alt / (b) classic DNS >= 0.98, no message lost",
  value: mainRatio,
  lost: failed ? `${failed} bursts incomplete` : lossTotal,
  met: mainRatio !== null && mainRatio >= 0.98 && failed === 0 && lossTotal === 0,
};

// Attribution: the v6alt pair with the real policy.decide and with it stubbed
// on the sender, alternating, same processes.
{
  const attr = of("burst").filter((b) => b.ok && b.pair.startsWith("attr_"));
  const cpu = (b) => b.sender_server_cpu_ns / 1000 / b.count;
  const real = attr.filter((b) => b.pair === "attr_v6alt").map(cpu);
  const stub = attr.filter((b) => b.pair === "attr_v6alt_nodecide").map(cpu);
  if (real.length && stub.length) {
    result.attribution = {
      what: "sender-server CPU per chat (us), v6alt pair, policy.decide real vs stubbed via the admin shell",
      real_decide: stats(real.map((x) => round(x, 2))),
      stubbed_decide: stats(stub.map((x) => round(x, 2))),
      policy_decide_us_per_stanza: round(median(real) - median(stub), 2),
      classic_sender_us_per_stanza: result.stanza_path.pairs.classic.cpu_us_per_msg.sender_server?.median ?? null,
    };
  }
}

// ------------------------------------------------------------ connection set-up
result.setup = {};
for (const mode of ["default", "nagle_off"]) {
  const rowsOfMode = of("setup").filter((s) => (s.mode ?? "default") === mode);
  if (!rowsOfMode.length) continue;
  const m = (result.setup[mode] = {});
  for (const pair of pairs) {
    const mine = rowsOfMode.filter((s) => s.pair === pair);
    m[pair] = { ms: stats(mine.map((s) => round(s.ms, 2))) };
    if (mode === "default") m[pair].first_ever_ms = round(mine.find((s) => s.round === 1)?.ms ?? null, 2);
  }
  // Paired: v6alt minus classic within each round.
  const diffs = [];
  for (const r of [...new Set(rowsOfMode.map((s) => s.round))]) {
    const a = rowsOfMode.find((s) => s.round === r && s.pair === "v6alt");
    const c = rowsOfMode.find((s) => s.round === r && s.pair === "classic");
    if (a && c) diffs.push(round(a.ms - c.ms, 2));
  }
  m.v6alt_minus_classic_ms = stats(diffs);
}
{
  const pick = result.setup.nagle_off ?? result.setup.default;
  const sv = pick?.v6alt.ms?.median;
  const sc = pick?.classic.ms?.median;
  result.targets.setup = {
    target: "v6alt no slower than classic DNS (median; judged with nagle = false, where the ~40 ms delayed-ACK stall common to both is gone)",
    mode: result.setup.nagle_off ? "nagle_off" : "default",
    v6alt_ms: sv,
    classic_ms: sc,
    ratio_v6alt_over_classic: sv && sc ? round(sv / sc, 3) : null,
    default_settings: result.setup.default
      ? { v6alt_ms: result.setup.default.v6alt.ms?.median, classic_ms: result.setup.default.classic.ms?.median }
      : null,
    met: sv !== undefined && sc !== undefined && sv <= sc,
  };
}

// ------------------------------------------------------------ failure
result.failure = {};
for (const b of of("bounce")) {
  const f = (result.failure[b.case] ??= { to: b.to, samples: [], condition: b.sample.condition, text: b.sample.text });
  f.samples.push(round(b.sample.ms, 2));
}
for (const f of Object.values(result.failure)) {
  Object.assign(f, stats(f.samples));
}
const mal = result.failure.v6alt_malformed;
result.targets.failure_malformed = {
  target: "malformed .v6.alt name: error reply in under 50 ms",
  value_ms: mal?.median ?? null,
  max_ms: mal?.max ?? null,
  met: mal ? mal.max < 50 : false,
};

// ------------------------------------------------------------ memory
result.memory = {};
for (const m of of("memory")) {
  (result.memory[m.phase] ??= {})[m.server] = {
    pair: m.pair, role: m.role, module: m.module === 1,
    vmrss_kb: m.vmrss_kb, vmhwm_kb: m.vmhwm_kb,
    lua_heap_after_full_gc_kb: m.lua_heap_after_full_gc_kb === null ? null : round(m.lua_heap_after_full_gc_kb),
  };
}
const after = result.memory.after_burst;
if (after) {
  const diff = (x, y) => ({
    vmrss_kb: after[x].vmrss_kb - after[y].vmrss_kb,
    lua_heap_after_full_gc_kb: round(after[x].lua_heap_after_full_gc_kb - after[y].lua_heap_after_full_gc_kb),
  });
  result.memory.module_cost_after_burst = {
    "classic sender (ca, module) - classic_nomod sender (na)": diff("ca", "na"),
    "classic receiver (cb, module) - classic_nomod receiver (nb)": diff("cb", "nb"),
    "v6alt sender (va) - classic_nomod sender (na)": diff("va", "na"),
    "v6alt receiver (vb) - classic_nomod receiver (nb)": diff("vb", "nb"),
  };
}
result.dns = of("dns").map(({ kind, ...d }) => d);
result.s2s_auth = of("auth").map(({ kind, ...d }) => d);
result.route_check_in_prosody = of("inprocess").map(({ kind, ...d }) => d)[0] ?? null;

writeFileSync(outFile, JSON.stringify(result, null, 2) + "\n");

// ------------------------------------------------------------ table
const lines = [];
const fmt = (x, d = 0) => (x === null || x === undefined ? "-" : Number(x).toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d }));
const row = (...cells) => lines.push(`| ${cells.join(" | ")} |`);
const m = result.machine;
if (m) {
  lines.push(`code: git ${m.git_head ?? "?"}, dist/ sha256 ${m.dist_sha256_16 ?? "?"}`);
  lines.push(`machine: ${m.nproc} CPU (${m.cpu}), ${m.lua}, ${m.luajit}, Prosody ${m.prosody}, node ${m.node}, ${m.date}, load at start ${m.load_at_start}`);
}
for (const [lua, c] of Object.entries(result.codec)) {
  lines.push(`codec on ${c.lua}: ${c.date}, load average before it ${c.load_before}${c.rerun_after_full_run ? " (re-run of the codec part after the full run)" : ""}`);
}
lines.push("");
row("figure", "median", "min", "max", "target", "met");
row("---", "---:", "---:", "---:", "---", "---");
for (const [lua, c] of Object.entries(result.codec)) {
  for (const op of ["encode", "decode", "decode_sub", "route_check"]) {
    const r = c.results[op];
    const target = lua === "lua5.4" && op === "decode" ? ">= 1,000,000/s" : "";
    const met = target ? (result.targets.codec_decode_lua54.met ? "yes" : "NO") : "";
    row(`codec ${lua} ${op} (ops/s)`, fmt(r.median_ops_per_s), fmt(r.min_ops_per_s), fmt(r.max_ops_per_s), target, met);
  }
}
if (lua54) row("`__TS__` helpers in v6alt.lua", fmt(lua54.ts_helpers_in_v6alt_lua), "", "", "0", lua54.ts_helpers_in_v6alt_lua === 0 ? "yes" : "NO");
for (const pair of pairs) {
  const p = result.stanza_path.pairs[pair];
  if (!p.msgs_per_s) continue;
  row(`stanza path ${pair} (msg/s, ${fmt(p.messages_per_burst)} chats x ${p.bursts}, lost ${p.lost ?? "?"})`,
    fmt(p.msgs_per_s.median), fmt(p.msgs_per_s.min), fmt(p.msgs_per_s.max), "no loss", p.lost === 0 && p.error_replies === 0 ? "yes" : "NO");
}
for (const pair of pairs) {
  const c = result.stanza_path.pairs[pair].cpu_us_per_msg;
  if (!c.sender_server) continue;
  row(`CPU per chat ${pair}: sender server / receiver server (us)`, `${fmt(c.sender_server.median, 1)} / ${fmt(c.receiver_server.median, 1)}`,
    `${fmt(c.sender_server.min, 1)} / ${fmt(c.receiver_server.min, 1)}`, `${fmt(c.sender_server.max, 1)} / ${fmt(c.receiver_server.max, 1)}`, "", "");
}
if (result.attribution) {
  const a = result.attribution;
  row("sender CPU per chat, v6alt: real policy.decide / stubbed (us)", `${fmt(a.real_decide.median, 1)} / ${fmt(a.stubbed_decide.median, 1)}`,
    `${fmt(a.real_decide.min, 1)} / ${fmt(a.stubbed_decide.min, 1)}`, `${fmt(a.real_decide.max, 1)} / ${fmt(a.stubbed_decide.max, 1)}`,
    `policy.decide: ${fmt(a.policy_decide_us_per_stanza, 1)} us/stanza`, "");
}
for (const [name, r] of Object.entries(result.stanza_path.ratios)) {
  if (!r.per_round.length) continue;
  const target = name === "v6alt_over_classic" ? ">= 0.98" : "";
  row(`throughput ratio ${name.replace(/_/g, " ")} (per round)`, fmt(r.median_of_round_ratios, 3), fmt(Math.min(...r.per_round), 3), fmt(Math.max(...r.per_round), 3),
    target, target ? (result.targets.stanza_ratio.met ? "yes" : "NO") : "");
  row(`CPU ratio ${name.replace(/_/g, " ")}: sender server, both servers`, `${fmt(r.cpu_sender_server, 3)}, ${fmt(r.cpu_both_servers, 3)}`, "", "", "", "");
}
for (const [mode, m] of Object.entries(result.setup)) {
  for (const pair of pairs) {
    const s = m[pair];
    if (!s?.ms) continue;
    const judged = mode === result.targets.setup.mode && pair === "v6alt";
    row(`connection set-up ${pair}, ${mode === "default" ? "default settings" : "nagle = false"} (ms${s.first_ever_ms ? `; first ever ${fmt(s.first_ever_ms, 1)}` : ""})`,
      fmt(s.ms.median, 1), fmt(s.ms.min, 1), fmt(s.ms.max, 1), judged ? "<= classic" : "", judged ? (result.targets.setup.met ? "yes" : "NO") : "");
  }
  if (m.v6alt_minus_classic_ms) {
    const d = m.v6alt_minus_classic_ms;
    row(`connection set-up v6alt - classic, same round, ${mode === "default" ? "default settings" : "nagle = false"} (ms)`, fmt(d.median, 2), fmt(d.min, 2), fmt(d.max, 2), "", "");
  }
}
for (const [name, f] of Object.entries(result.failure)) {
  row(`error reply ${name.replace(/_/g, " ")} (ms, n=${f.n}, ${f.condition})`, fmt(f.median, 1), fmt(f.min, 1), fmt(f.max, 1),
    name === "v6alt_malformed" ? "< 50 ms" : "", name === "v6alt_malformed" ? (result.targets.failure_malformed.met ? "yes" : "NO") : "");
}
if (after) {
  for (const s of Object.keys(after)) {
    const x = after[s];
    row(`VmRSS after bursts ${s} (${x.pair} ${x.role}${x.module ? ", module" : ", no module"}) (KiB)`, fmt(x.vmrss_kb), "", "", `Lua heap after GC ${fmt(x.lua_heap_after_full_gc_kb)} KiB`, "");
  }
  for (const [what, d] of Object.entries(result.memory.module_cost_after_burst)) {
    row(`memory ${what} (KiB)`, `${d.vmrss_kb >= 0 ? "+" : ""}${fmt(d.vmrss_kb)} RSS`, "", "", `Lua heap ${d.lua_heap_after_full_gc_kb >= 0 ? "+" : ""}${fmt(d.lua_heap_after_full_gc_kb)} KiB`, "");
  }
}
const ip = result.route_check_in_prosody;
if (ip) row(`route check in Prosody (${ip.server}): decode / decode+policy.decide (us per stanza)`, `${fmt(ip.decode_us, 2)} / ${fmt(ip.route_check_us, 2)}`, "", "", "", "");
for (const d of result.dns) {
  row(`DNS queries answered by dnsmasq (${d.phase === "setup" ? "after the set-up rounds" : "whole run"}); for .v6.alt names`, `${fmt(d.queries)}; ${fmt(d.v6alt_queries)}`, "", "", "", "");
}
console.log(lines.join("\n"));
