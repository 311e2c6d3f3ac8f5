local ____exports = {}
local countRefusal, addressResolver, connecting, notConnecting, localHostOf, s2sListensOn, compat, v6alt, S2S_PORT, metricConnections, metricRefusals, refusalCounts, globalSettings
function countRefusal(host, reason)
    metricRefusals:with_labels(host or ":unknown", reason):add(1)
    refusalCounts[reason] = (refusalCounts[reason] or 0) + 1
end
function addressResolver(hostname, address, connType)
    local used = false
    return {
        hostname = hostname,
        next = function(self, callback)
            if used then
                callback()
                return
            end
            used = true
            callback(connType, address, S2S_PORT)
        end
    }
end
function connecting(fromHost, toHost, address, connType)
    metricConnections:with_labels(fromHost or ":unknown", "connecting"):add(1)
    return addressResolver(toHost, address, connType)
end
function notConnecting(fromHost, toHost, reason, why)
    metricConnections:with_labels(fromHost or ":unknown", "refused"):add(1)
    countRefusal(fromHost, reason)
    return compat.exhausted(toHost, why)
end
function localHostOf(session)
    local ____temp_4
    if session.direction == "outgoing" then
        ____temp_4 = session.from_host
    else
        ____temp_4 = session.to_host
    end
    return ____temp_4
end
function s2sListensOn(packed)
    local ____temp_7 = module:get_option("s2s_interfaces")
    if ____temp_7 == nil then
        ____temp_7 = module:get_option("interfaces")
    end
    local ____temp_7_8 = ____temp_7
    if ____temp_7_8 == nil then
        ____temp_7_8 = {"*", "::"}
    end
    local option = ____temp_7_8
    if type(option) == "string" then
        option = {option}
    end
    if type(option) ~= "table" then
        return true
    end
    for ____, iface in ipairs(option) do
        if iface == "::" then
            return true
        end
        if type(iface) == "string" and (v6alt.parse_ip(iface)) == packed then
            return true
        end
    end
    return false
end
module:set_global()
local FILES = {
    "v6alt",
    "policy",
    "shell",
    "dns",
    "dns_listener",
    "compat"
}
local loaded = _G.package.loaded
for ____, file in ipairs(FILES) do
    loaded["mod_s2s_v6mesh." .. file] = nil
end
local function loadFile(file)
    local lib = require("mod_s2s_v6mesh." .. file)
    return lib
end
compat = loadFile("compat")
local st = compat.require_lib("util.stanza")
local netserver = compat.require_lib("net.server")
local socketlib = require("socket")
local netutil = compat.require_lib("util.net")
local jid = compat.require_lib("util.jid")
local idnaToAscii = compat.require_lib("util.encodings").idna.to_ascii
--- Any other file that does not load, or a bad option, leaves the module
-- loaded but closed: every stanza to a .v6.alt name bounces with the reason
-- and nothing goes to DNS, until it is fixed and the module reloaded.
local failure
local function loadOrFail(file)
    local ok, lib = pcall(loadFile, file)
    if ok then
        return lib
    end
    local why = string.gsub(
        tostring(lib),
        "%s+",
        " "
    )
    failure = failure or (file .. ".lua does not load: ") .. why
    return nil
end
v6alt = loadOrFail("v6alt")
local policies = loadOrFail("policy")
local shell = loadOrFail("shell")
local dns = loadOrFail("dns")
local dnsListener = loadOrFail("dns_listener")
S2S_PORT = 5269
--- Process-wide routing state (compat.ts), shared across reloads of the
-- module, so that a new instance takes over what the old one patched.
local routing = module:shared("routing")
metricConnections = module:metric(
    "counter",
    "connections",
    "",
    "Outgoing s2s connections to .v6.alt names, by outcome",
    {"host", "outcome"}
)
local metricTrusted = module:metric(
    "counter",
    "trusted",
    "",
    "Certificates of .v6.alt peers counted as valid by their address, by reason",
    {"host", "direction", "reason"}
)
metricRefusals = module:metric(
    "counter",
    "refusals",
    "",
    "Stanzas, connections and streams refused, by reason",
    {"host", "reason"}
)
local metricDns = module:metric(
    "counter",
    "dns_queries",
    "",
    "DNS queries from the in-Prosody listener, by response code",
    {"rcode"}
)
refusalCounts = {}
--- The .v6.alt name that `name` is once Prosody's DNS layer has read it
-- (IDNA, trailing dots, case), or undefined when it is none. Every check
-- point asks this, never a suffix test of its own. Without the codec (it did
-- not load) anything that might be one counts as one.
local function meshName(name)
    if name == nil then
        return nil
    end
    if v6alt ~= nil then
        return v6alt.mesh_name(name, idnaToAscii)
    end
    local lowered = string.lower(name)
    return (string.find(lowered, "v6", 1, true)) ~= nil and (string.find(lowered, "alt", 1, true)) ~= nil and name or nil
end
--- How an operator reads a name the module refused: as written, and as DNS would see it.
local function spelled(name, read)
    return name == read and name or ((name .. " (read as ") .. read) .. ")"
end
--- The last gate: no resolver of the process is ever asked a name under v6.alt.
local dnsGate = {
    refusal = function(name)
        if not (v6alt ~= nil and v6alt.reaches_v6alt(name)) and meshName(name) == nil then
            return nil
        end
        return ("mod_s2s_v6mesh: " .. name) .. " is a .v6.alt name, which is never looked up in DNS"
    end,
    log = function(where, name, why)
        module:log(
            "warn",
            "Refused the %s for %s: %s",
            where,
            name,
            why
        )
    end
}
--- Packed address of this machine -> what it is, for refusals (shared by every policy).
local ownAddresses = {}
local settingsByHost = {}
--- Changes whenever a host's settings or the own addresses change: cached
-- refusals and the delivery verdicts kept on sessions are valid for one epoch.
local epoch = {}
--- Read and validate this module's options for one host; a bad value is an error.
local function readSettings(m)
    local trust = m:get_option_boolean("s2s_v6mesh_trust_all_certs", true)
    local lax = m:get_option_boolean("s2s_v6mesh_lax_names", false)
    local ____policies_new_policy_1 = policies.new_policy
    local ____temp_0
    if trust == nil then
        ____temp_0 = m:get_option("s2s_v6mesh_trust_all_certs")
    else
        ____temp_0 = trust
    end
    local policy, err = ____policies_new_policy_1(
        ____temp_0,
        m:get_option("s2s_v6mesh_ranges", {})
    )
    if policy == nil or lax == nil then
        local why = err or "s2s_v6mesh_lax_names must be true or false, not " .. tostring(m:get_option("s2s_v6mesh_lax_names"))
        error((m.host == "*" and "" or m.host .. ": ") .. why, 0)
    end
    policy.own = ownAddresses
    local blocks = false
    for ____, range in ipairs(policy.ranges) do
        if not range.allow then
            blocks = true
        end
    end
    return {
        policy = policy,
        lax = lax,
        blocks = blocks,
        refusals = {},
        refusalCount = 0
    }
end
--- One host's settings, read and validated as at load whenever the host
-- comes (at load, activated later, or reloaded): a bad option of its own
-- closes that host's .v6.alt federation, never falls back to looser ones.
local function readHostSettings(host)
    local ok, result = pcall(
        readSettings,
        module:context(host)
    )
    if ok then
        return result
    end
    local why = "Invalid configuration for " .. tostring(result)
    module:log("error", "%s; .v6.alt federation of %s is closed until this is fixed and the module reloaded", why, host)
    return {
        closed = why,
        policy = globalSettings.policy,
        lax = false,
        blocks = false,
        refusals = {},
        refusalCount = 0
    }
end
local function readDnsSettings()
    local listen = {}
    local listenOption = module:get_option("s2s_v6mesh_dns_listen", {})
    if type(listenOption) ~= "table" then
        error(
            "s2s_v6mesh_dns_listen must be a list like { \"[::1]:5390\" }, not " .. tostring(listenOption),
            0
        )
    end
    for ____, text in ipairs(listenOption) do
        local address, port = dns.parse_listen(text)
        if address == nil then
            error("s2s_v6mesh_dns_listen: " .. port, 0)
        end
        listen[#listen + 1] = {address, port}
    end
    local allow, err = dns.new_allow_list(module:get_option("s2s_v6mesh_dns_allow", {}))
    if allow == nil then
        error("s2s_v6mesh_dns_allow: " .. err, 0)
    end
    local ttl = module:get_option("s2s_v6mesh_dns_ttl", 3600)
    if type(ttl) ~= "number" or ttl < 0 or ttl > 2147483647 or ttl % 1 ~= 0 then
        error(
            "s2s_v6mesh_dns_ttl must be a whole number of seconds, not " .. tostring(ttl),
            0
        )
    end
    return {listen = listen, allow = allow, ttl = ttl}
end
globalSettings = nil
local dnsSettings = nil
if failure == nil then
    local ok, result = pcall(readSettings, module)
    if ok then
        globalSettings = result
        for host in pairs(prosody.hosts) do
            settingsByHost[host] = readHostSettings(host)
        end
    else
        failure = "Invalid configuration: " .. tostring(result)
    end
end
if failure == nil then
    local ok, result = pcall(readDnsSettings)
    if ok then
        dnsSettings = result
    else
        failure = "Invalid configuration: " .. tostring(result)
    end
end
local function settingsFor(host)
    return host ~= nil and settingsByHost[host] or globalSettings
end
--- The policy's decision when it refuses this destination, else false; remembered per host and epoch.
local function refusalFor(settings, packed)
    local known = settings.refusals[packed]
    if known ~= nil then
        return known
    end
    local decision = policies.decide(settings.policy, packed)
    local ____temp_2
    if decision.refused == nil then
        ____temp_2 = false
    else
        ____temp_2 = decision
    end
    local refused = ____temp_2
    if settings.refusalCount >= 4096 then
        settings.refusals = {}
        settings.refusalCount = 0
    end
    settings.refusals[packed] = refused
    settings.refusalCount = settings.refusalCount + 1
    return refused
end
local function newEpoch()
    epoch = {}
    for ____, settings in pairs(settingsByHost) do
        settings.refusals = {}
        settings.refusalCount = 0
    end
    globalSettings.refusals = {}
    globalSettings.refusalCount = 0
end
local function machineAddresses()
    local found = {}
    local ok, list = pcall(netutil.local_addresses, "ipv6", true)
    if ok and list ~= nil then
        for ____, text in ipairs(list) do
            local address = string.match(text, "^([^%%]+)")
            local packed = v6alt.parse_ip(address)
            if packed ~= nil then
                found[packed] = true
            end
        end
    end
    return found
end
--- The machine's addresses (packed) as refreshOwnAddresses last read them.
local onMachine = {}
--- Recompute the own addresses; a change starts a new epoch.
local function refreshOwnAddresses()
    local fresh = {}
    onMachine = machineAddresses()
    for packed in pairs(onMachine) do
        fresh[packed] = "an address of this machine"
    end
    for host in pairs(prosody.hosts) do
        local name = meshName(host)
        if name ~= nil then
            local packed = v6alt.decode(name, true)
            if packed ~= nil and fresh[packed] ~= "the address of this server's own host " .. host then
                fresh[packed] = "the address of this server's own host " .. host
            end
        end
    end
    local changed = false
    for packed, what in pairs(fresh) do
        if ownAddresses[packed] ~= what then
            changed = true
        end
    end
    for packed in pairs(ownAddresses) do
        if fresh[packed] == nil then
            changed = true
        end
    end
    if not changed then
        return
    end
    for packed in pairs(ownAddresses) do
        ownAddresses[packed] = nil
    end
    for packed, what in pairs(fresh) do
        ownAddresses[packed] = what
    end
    newEpoch()
end
--- Destinations whose refusal has been logged at info level: repeats go to
-- debug, so that a user cannot grow the log as fast as they can send.
local refusalsLogged = {}
local refusalsLoggedCount = 0
--- `key` says what was refused: the decoded address (so that rotating the
-- subdomains of one name, or its spellings, logs once) or the reason.
local function refusalLogLevel(key)
    if refusalsLogged[key] then
        return "debug"
    end
    if refusalsLoggedCount >= 4096 then
        refusalsLogged = {}
        refusalsLoggedCount = 0
    end
    refusalsLogged[key] = true
    refusalsLoggedCount = refusalsLoggedCount + 1
    return "info"
end
--- Answer a stanza we will not route with an error, unless it is one itself.
local function bounce(event, condition, text, logKey, reason)
    local stanza = event.stanza
    countRefusal(event.from_host, reason)
    local stanzaType = stanza.attr.type
    module:log(
        refusalLogLevel(logKey),
        "Not sending %s from %s to %s: %s",
        stanza.name,
        tostring(stanza.attr.from),
        event.to_host,
        text
    )
    if stanza.name ~= "message" and stanza.name ~= "presence" and stanza.name ~= "iq" then
        return true
    end
    if stanzaType == "error" or stanzaType == "result" or stanza.attr.from == nil then
        return true
    end
    if stanza.name == "presence" and stanzaType == "unavailable" then
        return true
    end
    module:context(event.from_host):send(st.error_reply(stanza, "cancel", condition, text))
    return true
end
--- route/remote on every host: other domains cost one suffix test.
local function checkRoute(event)
    local toHost = event.to_host
    local name = meshName(toHost)
    if name == nil then
        return nil
    end
    local settings = settingsFor(event.from_host)
    if settings.closed ~= nil then
        return bounce(
            event,
            "service-unavailable",
            "mod_s2s_v6mesh: " .. settings.closed,
            "closed " .. event.from_host,
            "closed"
        )
    end
    local packed, err, code = v6alt.decode(name, settings.lax)
    if packed == nil then
        return bounce(
            event,
            "remote-server-not-found",
            v6alt.read_failure(toHost, name, err),
            "malformed " .. code,
            "malformed"
        )
    end
    local refused = refusalFor(settings, packed)
    if refused ~= false then
        return bounce(
            event,
            "policy-violation",
            ((spelled(toHost, name) .. " is ") .. tostring(refused.refused)) .. "; this server does not connect there",
            packed,
            refused.refusal_kind
        )
    end
    return nil
end
--- The address a local host's connections leave from: the one its own
-- .v6.alt name encodes (a component under a host: the host's), because
-- peers check it. Undefined for a host with a DNS name: the kernel chooses.
local function sourceOf(host)
    local name = meshName(host)
    if name == nil then
        return nil
    end
    local packed = v6alt.decode(name, true)
    return packed
end
--- Where a connection to a .v6.alt name goes. The route check has vetted the
-- name already; this is the last gate, whatever opened the connection, so it
-- decides afresh with the machine's current addresses.
local function connectTarget(fromHost, toHost)
    local name = meshName(toHost)
    if name == nil then
        return nil
    end
    local settings = settingsFor(fromHost)
    if settings.closed ~= nil then
        return notConnecting(fromHost, toHost, "closed", "mod_s2s_v6mesh: " .. settings.closed)
    end
    local packed, err = v6alt.decode(name, settings.lax)
    if packed == nil then
        return notConnecting(fromHost, toHost, "malformed", err)
    end
    refreshOwnAddresses()
    local decision = policies.decide(settings.policy, packed)
    if decision.refused ~= nil then
        module:log(
            "warn",
            "Not connecting from %s to %s: it is %s",
            tostring(fromHost),
            spelled(toHost, name),
            decision.refused
        )
        return notConnecting(
            fromHost,
            toHost,
            decision.refusal_kind,
            (spelled(toHost, name) .. " is ") .. decision.refused
        )
    end
    local source = sourceOf(fromHost)
    if source == nil then
        return connecting(fromHost, toHost, decision.address, "tcp6")
    end
    local sourceText = v6alt.format_ip(source)
    if not onMachine[source] then
        local why = ((tostring(fromHost) .. " sends from [") .. sourceText) .. "], the address its name encodes, and that is not an address of this machine"
        module:log(
            "warn",
            "Not connecting from %s to %s: %s",
            tostring(fromHost),
            toHost,
            why
        )
        return notConnecting(fromHost, toHost, "no-source-address", why)
    end
    module:log(
        "debug",
        "Connecting from %s [%s] to %s [%s]",
        tostring(fromHost),
        sourceText,
        toHost,
        decision.address
    )
    return connecting(
        fromHost,
        toHost,
        decision.address,
        compat.bound_connection_type(routing, socketlib, sourceText)
    )
end
local function meshState(session)
    local state = session.v6mesh
    if state == nil then
        state = {plaintext = false, trusted = {}}
        session.v6mesh = state
    end
    return state
end
--- Let a session that this policy sends without TLS past s2s_require_encryption.
local function markPlaintext(session, peer, decision)
    session.secure = true
    session.ssl_ctx = false
    meshState(session).plaintext = true
    session.log("info", "Federating with %s without TLS: range %s has use_tls = false", peer, decision.range.cidr.text)
end
--- Count the peer's certificate (or, without TLS, the peer) as verified.
local function trustPeer(session, peer, decision)
    session.cert_chain_status = "valid"
    session.cert_identity_status = "valid"
    if session.direction == "outgoing" then
        session.authenticated_remote = true
    end
    meshState(session).trusted[peer] = true
    local byRange = decision.range ~= nil and decision.range.trust_all_certs ~= nil
    local why = byRange and "range " .. decision.range.cidr.text or "s2s_v6mesh_trust_all_certs"
    session.log(
        "info",
        "Trusting %s: it is at [%s], the address its name encodes (%s)",
        peer,
        decision.address,
        why
    )
    metricTrusted:with_labels(
        localHostOf(session) or ":unknown",
        session.direction,
        byRange and "range" or "s2s_v6mesh_trust_all_certs"
    ):add(1)
end
--- A use_tls = false range: no TLS, and with trust the address alone authenticates the peer.
local function goWithoutTls(session, peer, decision)
    markPlaintext(session, peer, decision)
    if decision.trust_all_certs then
        trustPeer(session, peer, decision)
    end
end
local function onOutgoingCreated(event)
    local session = event.session
    local toHost = session.to_host
    local name = meshName(toHost)
    if name == nil then
        return
    end
    local settings = settingsFor(session.from_host)
    if settings.closed ~= nil then
        return
    end
    local packed = v6alt.decode(name, settings.lax)
    if packed == nil then
        return
    end
    local decision = policies.decide(settings.policy, packed)
    meshState(session).address = decision.address
    session.log(
        "debug",
        "%s is at [%s]:%d (%s)",
        toHost,
        decision.address,
        S2S_PORT,
        policies.describe(decision)
    )
    if decision.refused == nil and not decision.use_tls then
        goWithoutTls(session, toHost, decision)
    end
end
local function refuse(session, claimed, why, reason)
    countRefusal(
        localHostOf(session),
        reason
    )
    session.log(
        "warn",
        "Refusing s2s stream from [%s] claiming to be %s: %s",
        tostring(session.ip),
        claimed,
        why
    )
    session:close({condition = "not-authorized", text = (("Not accepted as " .. claimed) .. ": ") .. why}, nil, why)
    return false
end
local function peerAddress(session)
    local ip = session.ip
    if ip == nil and session.conn ~= nil then
        ip = session.conn.ip()
    end
    if ip == nil then
        return nil
    end
    local packed = v6alt.parse_ip((string.find(ip, ":", 1, true)) == nil and "::ffff:" .. ip or ip)
    return packed
end
--- Why `localHost` does not accept `peer` on this session, or false when it
-- does, or undefined when the module has nothing to say (not a .v6.alt name
-- and no blocked range). `decision` is what the policy says about the peer;
-- `reason` the kind of refusal, for the refusals metric.
local function judgePeer(session, peer, localHost)
    local settings = settingsFor(localHost)
    local ____temp_3
    if peer == nil then
        ____temp_3 = nil
    else
        ____temp_3 = meshName(peer)
    end
    local name = ____temp_3
    if name == nil then
        if not settings.blocks then
            return nil, nil, nil
        end
        local address = peerAddress(session)
        if address == nil then
            return nil, nil, nil
        end
        local decision = policies.decide(settings.policy, address)
        return decision.blocked and (("its address [" .. decision.address) .. "] is ") .. tostring(decision.refused) or false, decision, "blocked"
    end
    if settings.closed ~= nil then
        return ((("the .v6.alt federation of " .. tostring(localHost)) .. " is closed (") .. settings.closed) .. ")", nil, "closed"
    end
    local packed, err = v6alt.decode(name, settings.lax)
    if packed == nil then
        return v6alt.read_failure(peer, name, err), nil, "malformed"
    end
    local decision = policies.decide(settings.policy, packed)
    if peerAddress(session) ~= packed then
        return (("that name belongs to " .. decision.address) .. ", the connection is from ") .. tostring(session.ip), decision, "wrong-address"
    end
    if decision.refused ~= nil then
        return "its address is " .. decision.refused, decision, decision.refusal_kind
    end
    return false, decision, nil
end
--- A session is, or claims to be, `peer`. Undefined when the module has
-- nothing to say; false (session closed) when the claim does not hold; else
-- what the policy says about the peer.
local function checkPeer(session, peer, localHost)
    local why, decision, reason = judgePeer(session, peer, localHost)
    if why == nil then
        return nil
    end
    if why ~= false then
        return refuse(session, peer or "(no name)", why, reason)
    end
    if peer == nil or meshName(peer) == nil then
        return nil
    end
    return decision
end
--- After mod_s2s_auth_certs (509) has judged the certificate and before
-- mod_s2s's policy check (-1): where trust applies and Prosody's own check
-- did not pass, this module vouches for the peer and claims the event.
local function onCheckCertificate(event)
    local session = event.session
    local decision = checkPeer(
        session,
        event.host,
        localHostOf(session)
    )
    if decision == nil then
        return nil
    end
    if decision == false then
        return false
    end
    if session.cert_chain_status == "valid" and session.cert_identity_status == "valid" then
        return nil
    end
    if not decision.trust_all_certs then
        session.log(
            "debug",
            "Leaving the certificate of %s to Prosody: trust_all_certs is off for [%s]",
            tostring(event.host),
            decision.address
        )
        return nil
    end
    trustPeer(session, event.host, decision)
    return true
end
--- Incoming streams: check the claimed name against the address as soon as
-- it is known, before any feature (STARTTLS, SASL EXTERNAL) is offered.
local function onStreamFeatures(event)
    local session = event.origin
    if session.v6mesh ~= nil and session.v6mesh.address ~= nil then
        return
    end
    local peer = session.from_host
    local decision = checkPeer(session, peer, session.to_host)
    if decision == nil or decision == false then
        return
    end
    meshState(session).address = decision.address
    if not decision.use_tls and not session.secure then
        goWithoutTls(session, peer, decision)
    end
end
--- A dialback claim (db:result, or a db:verify that asks about a key) on an
-- incoming stream, before mod_dialback acts on it: a db:result would make
-- this server open a connection to the claimed name to verify it.
local function onDialbackClaim(event)
    local session = event.origin
    if session.direction ~= "incoming" or event.stanza.attr.type ~= nil then
        return nil
    end
    local claimed = event.stanza.attr.from
    if claimed == nil then
        return nil
    end
    local ____temp_5
    if checkPeer(session, claimed, event.stanza.attr.to or session.to_host) == false then
        ____temp_5 = true
    else
        ____temp_5 = nil
    end
    return ____temp_5
end
--- The last gate, whatever the mechanism (dialback, SASL EXTERNAL) and
-- whichever names a stream authenticates for.
local function onAuthenticated(event)
    local session = event.session
    local decision = checkPeer(
        session,
        event.host,
        localHostOf(session)
    )
    if decision == false then
        return false
    end
    if session.v6mesh ~= nil and session.v6mesh.plaintext and (decision == nil or decision.use_tls) then
        return refuse(session, event.host, "this stream runs without TLS, which only a .v6.alt peer in a use_tls = false range may use", "plaintext-piggyback")
    end
    return nil
end
--- Why `localHost` refuses stanzas from `remote` on this session, or false.
local function deliveryVerdict(session, remote, localHost)
    local why, decision = judgePeer(session, remote, localHost)
    if why ~= nil and why ~= false then
        return why
    end
    local state = session.v6mesh
    if state == nil then
        return false
    end
    if state.plaintext and (decision == nil or decision.use_tls) then
        return ((localHost .. " takes ") .. remote) .. " only over TLS, and this stream has none"
    end
    if state.trusted[remote] and (decision == nil or not decision.trust_all_certs) then
        return ("its certificate was accepted on the strength of another host's s2s_v6mesh settings, and " .. localHost) .. " does not trust it"
    end
    return false
end
local function checkDelivery(localHost, event)
    local session = event.origin
    local sessionType = session.type
    if sessionType ~= "s2sin" and sessionType ~= "s2sout" or session.dummy then
        return nil
    end
    local from = event.stanza.attr.from
    local ____temp_6
    if from == nil then
        ____temp_6 = session.from_host
    else
        ____temp_6 = jid.host(from)
    end
    local remote = ____temp_6
    if remote == nil then
        return nil
    end
    local state = session.v6mesh
    if state == nil and meshName(remote) == nil and not settingsFor(localHost).blocks then
        return nil
    end
    local mesh = meshState(session)
    if mesh.epoch ~= epoch or mesh.verdicts == nil then
        mesh.verdicts = {}
        mesh.epoch = epoch
    end
    local key = (localHost .. " ") .. remote
    local verdict = mesh.verdicts[key]
    if verdict == nil then
        verdict = deliveryVerdict(session, remote, localHost)
        mesh.verdicts[key] = verdict
        if verdict ~= false then
            session.log(
                "warn",
                "Not delivering stanzas from %s to %s: %s",
                remote,
                localHost,
                verdict
            )
        end
    end
    if verdict == false then
        return nil
    end
    countRefusal(localHost, "not-delivered")
    local stanza = event.stanza
    local stanzaType = stanza.attr.type
    if stanzaType ~= "error" and stanzaType ~= "result" and not (stanza.name == "presence" and stanzaType ~= nil) then
        session.send(st.error_reply(stanza, "cancel", "policy-violation", (((localHost .. " does not accept this from ") .. remote) .. ": ") .. verdict))
    end
    return true
end
local DELIVERY_EVENTS = {}
for ____, kind in ipairs({"message", "presence", "iq"}) do
    for ____, to in ipairs({"bare", "full", "host"}) do
        DELIVERY_EVENTS[#DELIVERY_EVENTS + 1] = (kind .. "/") .. to
    end
end
local covered = {}
--- Hook one host's events (once); the hooks leave with the module.
local function coverHost(host)
    local entry = prosody.hosts[host]
    if entry == nil or covered[host] then
        return
    end
    covered[host] = true
    local events = entry.events
    module:hook_object_event(events, "route/remote", checkRoute, 100)
    module:hook_object_event(events, "s2sout-created", onOutgoingCreated, 100)
    module:hook_object_event(events, "s2s-stream-features", onStreamFeatures, 1000)
    module:hook_object_event(events, "s2s-authenticated", onAuthenticated, 1000)
    module:hook_object_event(events, "stanza/jabber:server:dialback:result", onDialbackClaim, 1000)
    module:hook_object_event(events, "stanza/jabber:server:dialback:verify", onDialbackClaim, 1000)
    for ____, name in ipairs(DELIVERY_EVENTS) do
        module:hook_object_event(
            events,
            name,
            function(event) return checkDelivery(host, event) end,
            2000
        )
    end
    compat.hook_host_routing(module, events, routing)
end
--- Warn about a .v6.alt host that peers will not accept.
local function diagnoseHost(host)
    local name = meshName(host)
    if name == nil then
        return
    end
    local packed, err = v6alt.decode(name)
    if packed == nil then
        local laxPacked = v6alt.decode(name, true)
        local hint = laxPacked ~= nil and "; its canonical name is " .. tostring((v6alt.encode(laxPacked))) or ""
        module:log("warn", "%s%s. Peers running this module will refuse it.", err, hint)
        return
    end
    local address = v6alt.format_ip(packed)
    if not machineAddresses()[packed] then
        module:log("warn", "%s stands for [%s], which is not an address of this machine: peers connect there and check connections come from there, so it cannot federate until the address is added", host, address)
    elseif not s2sListensOn(packed) then
        module:log("warn", "%s stands for [%s], but s2s does not listen there (s2s_interfaces, or interfaces): peers cannot connect to it", host, address)
    else
        module:log("info", "%s is served at [%s], and its s2s connections leave from there", host, address)
    end
end
local function onHostActivated(host)
    settingsByHost[host] = readHostSettings(host)
    coverHost(host)
    refreshOwnAddresses()
    newEpoch()
    diagnoseHost(host)
end
--- Closed: every stanza to a .v6.alt name, from any host, bounces with the reason.
local function coverHostClosed(host)
    local entry = prosody.hosts[host]
    if entry == nil or covered[host] then
        return
    end
    covered[host] = true
    module:hook_object_event(
        entry.events,
        "route/remote",
        function(event)
            local ____temp_9
            if meshName(event.to_host) ~= nil then
                ____temp_9 = bounce(
                    event,
                    "service-unavailable",
                    "mod_s2s_v6mesh: " .. tostring(failure),
                    "closed",
                    "closed"
                )
            else
                ____temp_9 = nil
            end
            return ____temp_9
        end,
        100
    )
end
if failure == nil then
    for host in pairs(prosody.hosts) do
        coverHost(host)
    end
    module:hook("host-activated", onHostActivated)
    module:hook(
        "host-deactivated",
        function(host)
            settingsByHost[host] = nil
            covered[host] = nil
            refreshOwnAddresses()
        end
    )
    module:hook("s2s-check-certificate", onCheckCertificate, 500)
    compat.route_outgoing(routing, connectTarget)
    refreshOwnAddresses()
    module:add_timer(
        60,
        function()
            refreshOwnAddresses()
            return 60
        end
    )
    for host in pairs(prosody.hosts) do
        diagnoseHost(host)
    end
else
    module:log("error", "%s; .v6.alt federation is closed until this is fixed and the module reloaded", failure)
    for host in pairs(prosody.hosts) do
        coverHostClosed(host)
    end
    module:hook("host-activated", coverHostClosed)
    module:hook(
        "host-deactivated",
        function(host)
            covered[host] = nil
            return true
        end
    )
    local why = "mod_s2s_v6mesh: " .. failure
    routing.target = function(_fromHost, toHost) return meshName(toHost) ~= nil and compat.exhausted(toHost, why) or nil end
end
compat.gate_dns(routing, dnsGate)
if routing.unguard ~= nil then
    for ____, unguard in pairs(routing.unguard) do
        unguard()
    end
    routing.unguard = nil
    if failure == nil then
        module:log("info", "Reloaded: .v6.alt routing is open again")
    end
end
routing.closed = nil
module.add_host = function(hostModule)
    if failure ~= nil then
        return
    end
    settingsByHost[hostModule.host] = readHostSettings(hostModule.host)
    newEpoch()
end
--- Source address -> may it ask: parsing the address costs more than the answer.
local dnsAllowedCache = {}
local dnsAllowedCached = 0
local function dnsAllowed(ip)
    if ip == nil then
        return false
    end
    local verdict = dnsAllowedCache[ip]
    if verdict == nil then
        verdict = dns.allowed(dnsSettings.allow, ip)
        if dnsAllowedCached >= 1024 then
            dnsAllowedCache = {}
            dnsAllowedCached = 0
        end
        dnsAllowedCache[ip] = verdict
        dnsAllowedCached = dnsAllowedCached + 1
    end
    return verdict
end
--- The dns_queries counter of each response code (the low 4 bits of a reply's fourth byte).
local dnsCounters = {}
local RCODE_NAMES = {
    "noerror",
    "formerr",
    "servfail",
    "nxdomain",
    "notimp",
    "refused"
}
do
    local rcode = 0
    while rcode < #RCODE_NAMES do
        dnsCounters[rcode] = metricDns:with_labels(RCODE_NAMES[rcode + 1])
        rcode = rcode + 1
    end
end
local dnsUnanswered = metricDns:with_labels("unanswered")
--- One DNS message (UDP datagram or TCP frame) from `ip`: the reply, or undefined.
local function answerDns(message, ip)
    local ok, reply = pcall(
        dnsAllowed(ip) and dns.respond or dns.refuse,
        message,
        dnsSettings.ttl
    )
    if ok and reply ~= nil then
        local counter = dnsCounters[string.byte(reply, 4) % 16]
        if counter ~= nil then
            counter:add(1)
        end
        return reply
    end
    dnsUnanswered:add(1)
    if not ok then
        module:log(
            "error",
            "DNS query from [%s] not answered: %s",
            tostring(ip),
            tostring(reply)
        )
    end
    return nil
end
local closeDns = {}
if failure == nil and #dnsSettings.listen > 0 then
    closeDns[#closeDns + 1] = dnsListener.listen(
        {
            server = netserver,
            socket = socketlib,
            log = function(level, message, ...) return module:log(level, message, ...) end,
            timer = function(delay, callback)
                module:add_timer(delay, callback)
            end,
            allowed = dnsAllowed,
            answer = answerDns
        },
        dnsSettings.listen
    )
end
--- What `v6alt status` shows: the machine's addresses and names, where each host sends from.
local function statusReport()
    refreshOwnAddresses()
    local hostsAt = {}
    local others = {}
    local closedHosts = {}
    local hostNames = {}
    for host in pairs(prosody.hosts) do
        hostNames[#hostNames + 1] = host
    end
    table.sort(hostNames)
    for ____, host in ipairs(hostNames) do
        local closed = settingsFor(host).closed
        if closed ~= nil then
            closedHosts[#closedHosts + 1] = {host = host, why = closed}
        end
        local source = sourceOf(host)
        if source == nil then
            others[#others + 1] = {host = host}
        elseif not onMachine[source] then
            others[#others + 1] = {
                host = host,
                address = v6alt.format_ip(source)
            }
        else
            local list = hostsAt[source] or ({})
            list[#list + 1] = host
            hostsAt[source] = list
        end
    end
    local addresses = {}
    for packed in pairs(onMachine) do
        addresses[#addresses + 1] = {
            address = v6alt.format_ip(packed),
            name = (v6alt.encode(packed)),
            hosts = hostsAt[packed] or ({})
        }
    end
    table.sort(
        addresses,
        function(a, b) return a.address < b.address end
    )
    local listen = {}
    for ____, ____value in ipairs(dnsSettings.listen) do
        local address = ____value[1]
        local port = ____value[2]
        listen[#listen + 1] = (("[" .. address) .. "]:") .. tostring(port)
    end
    return {
        closed = routing.closed,
        addresses = addresses,
        others = others,
        closed_hosts = closedHosts,
        dns_listen = listen,
        refusals = refusalCounts
    }
end
--- While no instance is in charge, .v6.alt names neither route nor connect.
local function closeRouting(why)
    routing.closed = why
    local function refuseRoute(event)
        local ____temp_10
        if meshName(event.to_host) ~= nil then
            ____temp_10 = bounce(
                event,
                "service-unavailable",
                ((routing.closed or why) .. "; not sending to ") .. event.to_host,
                "reloading",
                "closed"
            )
        else
            ____temp_10 = nil
        end
        return ____temp_10
    end
    local function refuseConnect(toHost)
        return meshName(toHost) ~= nil and compat.exhausted(toHost, routing.closed or why) or nil
    end
    routing.target = function(_fromHost, toHost) return refuseConnect(toHost) end
    local unguard = {}
    for ____, entry in pairs(prosody.hosts) do
        unguard[#unguard + 1] = compat.guard_host_routing(entry.events, refuseRoute, refuseConnect)
    end
    routing.unguard = unguard
end
local removeShellCommands = failure == nil and compat.add_shell_commands(
    module,
    "v6alt",
    "Convert between IPv6 addresses and .v6.alt names",
    shell.commands({
        lax = function(host) return settingsFor(host).lax end,
        policy = function(host) return (host == nil or prosody.hosts[host] ~= nil) and settingsFor(host).policy or nil end,
        status = statusReport
    })
) or (function() return nil end)
module.unload = function()
    removeShellCommands()
    for ____, close in ipairs(closeDns) do
        close()
    end
    if module.reloading then
        closeRouting("mod_s2s_v6mesh is being reloaded (if this lasts, the reload failed: see the log)")
        return
    end
    compat.unroute_outgoing(routing)
    if routing.unguard ~= nil then
        for ____, unguard in pairs(routing.unguard) do
            unguard()
        end
        routing.unguard = nil
    end
end
return ____exports
