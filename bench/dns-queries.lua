-- bench/dns-queries.lua — the query file of the DNS benchmark (scripts/bench.sh,
-- BENCHMARKS.md), and the same records for dnsmasq.
--
--   lua5.4 bench/dns-queries.lua DIST_DIR COUNT OUT_DIR
--
-- COUNT distinct names, one per address, from a fixed-seed Park-Miller
-- generator (the same list on every run), encoded with the shipped
-- dist/mod_s2s_v6mesh/v6alt.lua (ip_to_name):
--   50%  AAAA  NAME                          (canonical name)
--   30%  AAAA  muc.|upload.|groups.|pubsub.NAME  (a subdomain)
--   20%  SRV   _xmpp-client._tcp.NAME / _xmpp-server._tcp.NAME (half each)
-- Addresses: 55% Yggdrasil nodes (0200::/8), 15% Yggdrasil subnet hosts
-- (0300::/8), 15% ULA (fdxx::/8, sparse hosts), 15% global unicast
-- (2a0x::/16 .. with ::1-style hosts); none special-purpose (SPEC §3).
-- Writes OUT_DIR/queries.txt (dnsperf: "NAME TYPE" per line),
-- OUT_DIR/hosts (dnsmasq addn-hosts: the AAAA names, "ADDRESS NAME") and
-- OUT_DIR/srv.conf (dnsmasq srv-host lines, the answers v6alt-dnsd gives:
-- 0 0 5222|5269 NAME). The target of an SRV answer is not in the hosts file,
-- so dnsmasq, like v6alt-dnsd, puts nothing in the additional section.
-- Prints one line: the counts per kind and a digest of queries.txt.
local dist, count, out = arg[1], tonumber(arg[2]), arg[3]
assert(dist and count and out, "usage: dns-queries.lua DIST_DIR COUNT OUT_DIR")
package.path = dist .. "/?.lua;" .. package.path
local v6alt = require("mod_s2s_v6mesh.v6alt")

local state = 20261130
local function rnd() -- 1 .. 2^31-2
  state = (state * 16807) % 2147483647
  return state
end
local function below(n) return math.floor(rnd() / 2147483647 * n) end
local function hex16() return string.format("%x", below(65536)) end

local function address()
  local k = below(20) -- 11 / 3 / 3 / 3 of 20
  if k < 11 then -- Yggdrasil node: 02xx + 7 random groups
    local g = { string.format("2%02x", 1 + below(60)) }
    for _ = 2, 8 do g[#g + 1] = hex16() end
    return table.concat(g, ":")
  elseif k < 14 then -- Yggdrasil subnet host
    return string.format("3%02x:%s:%s:%s::%x", 1 + below(60), hex16(), hex16(), hex16(), 1 + below(16))
  elseif k < 17 then -- ULA, sparse host
    return string.format("fd%02x:%s:%s:%s::%x", below(256), hex16(), hex16(), hex16(), 1 + below(300))
  else -- global unicast, ::1-style host
    return string.format("2a0%x:%s:%s::%x", below(16), hex16(), hex16(), 1 + below(8))
  end
end

local subs = { "muc", "upload", "groups", "pubsub" }
local q, hosts, srv = {}, {}, {}
local seen = {}
local n = { aaaa = 0, aaaa_sub = 0, srv = 0 }
while #q < count do
  local addr = address()
  local name = v6alt.ip_to_name(addr)
  assert(type(name) == "string", "cannot encode " .. addr)
  if not seen[name] then
    seen[name] = true
    local k = #q % 10
    if k < 5 then
      q[#q + 1] = name .. " AAAA"
      hosts[#hosts + 1] = addr .. " " .. name
      n.aaaa = n.aaaa + 1
    elseif k < 8 then
      local fq = subs[1 + (#q % 4)] .. "." .. name
      q[#q + 1] = fq .. " AAAA"
      hosts[#hosts + 1] = addr .. " " .. fq
      n.aaaa_sub = n.aaaa_sub + 1
    else
      local service, port = "_xmpp-client", 5222
      if #q % 20 >= 10 then service, port = "_xmpp-server", 5269 end
      q[#q + 1] = service .. "._tcp." .. name .. " SRV"
      srv[#srv + 1] = string.format("srv-host=%s._tcp.%s,%s,%d,0,0", service, name, name, port)
      n.srv = n.srv + 1
    end
  end
end

local function write(file, lines)
  local f = assert(io.open(out .. "/" .. file, "w"))
  f:write(table.concat(lines, "\n"), "\n")
  f:close()
end
write("queries.txt", q)
write("hosts", hosts)
write("srv.conf", srv)
print(string.format("%d queries: %d AAAA canonical, %d AAAA subdomain, %d SRV", #q, n.aaaa, n.aaaa_sub, n.srv))
