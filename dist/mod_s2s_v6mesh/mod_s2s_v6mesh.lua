local ____exports = {}
local v6alt = require("mod_s2s_v6mesh.v6alt")
local policies = require("mod_s2s_v6mesh.policy")
local ____compat = require("mod_s2s_v6mesh.compat")
local add_shell_commands = ____compat.add_shell_commands
local exhausted = ____compat.exhausted
local require_lib = ____compat.require_lib
local route_outgoing = ____compat.route_outgoing
local unroute_outgoing = ____compat.unroute_outgoing
module:set_global()
local st = require_lib("util.stanza")
local netutil = require_lib("util.net")
local S2S_PORT = 5269
local SUFFIX = v6alt.suffix
local string_sub = string.sub
--- Packed address -> the local host whose .v6.alt name encodes it.
local ownAddresses = {}
local hostSettings = {}
local REFUSAL_CACHE_LIMIT = 4096
local function clearRefusalCaches()
    for ____, settings in pairs(hostSettings) do
        settings.refusals.entries = {}
        settings.refusals.size = 0
    end
end
--- Why the policy refuses this destination, or false; remembered per host.
local function refusalFor(cache, policy, packed)
    local known = cache.entries[packed]
    if known ~= nil then
        return known
    end
    local refused = policies.decide(policy, packed).refused or false
    if cache.size >= REFUSAL_CACHE_LIMIT then
        cache.entries = {}
        cache.size = 0
    end
    cache.entries[packed] = refused
    cache.size = cache.size + 1
    return refused
end
--- Read and validate this module's options; a bad value stops the load.
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
        m:log("error", "Invalid configuration, not loading: %s", why)
        error("mod_s2s_v6mesh: " .. why, 0)
    end
    policy.own = ownAddresses
    return {policy = policy, lax = lax, refusals = {entries = {}, size = 0}}
end
local globalSettings = readSettings(module)
local function settingsFor(host)
    return host ~= nil and hostSettings[host] or globalSettings
end
local function noteOwnHost(host)
    if string_sub(host, -7) ~= SUFFIX then
        return
    end
    local packed = v6alt.decode(host, true)
    if packed ~= nil and ownAddresses[packed] == nil then
        ownAddresses[packed] = host
        clearRefusalCaches()
    end
end
local function forgetOwnHost(host)
    for packed, owner in pairs(ownAddresses) do
        if owner == host then
            ownAddresses[packed] = nil
        end
    end
    for other in pairs(prosody.hosts) do
        noteOwnHost(other)
    end
    clearRefusalCaches()
end
for host in pairs(prosody.hosts) do
    noteOwnHost(host)
end
module:hook(
    "host-activated",
    function(host) return noteOwnHost(host) end
)
module:hook(
    "host-deactivated",
    function(host) return forgetOwnHost(host) end
)
--- Answer a stanza we will not route with an error, unless it is one itself.
local function bounce(hostModule, event, condition, text)
    local stanza = event.stanza
    local stanzaType = stanza.attr.type
    hostModule:log(
        "info",
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
    hostModule:send(st.error_reply(stanza, "cancel", condition, text))
    return true
end
--- One connection target: the address itself, port 5269.
local function addressResolver(hostname, address)
    local used = false
    return {
        hostname = hostname,
        next = function(self, callback)
            if used then
                callback()
                return
            end
            used = true
            callback("tcp6", address, S2S_PORT)
        end
    }
end
--- Where outgoing connections to a .v6.alt name go. The route check has already vetted the name.
local function resolverFor(toHost)
    if string_sub(toHost, -7) ~= SUFFIX then
        return nil
    end
    local packed, err = v6alt.decode(toHost, true)
    if packed == nil then
        return exhausted(toHost, err)
    end
    return addressResolver(
        toHost,
        v6alt.format_ip(packed)
    )
end
--- Let a session that this policy sends without TLS past s2s_require_encryption.
local function markPlaintext(session, peer, decision)
    session.secure = true
    session.ssl_ctx = false
    session.v6mesh.plaintext = true
    session.log("info", "Federating with %s without TLS: range %s has use_tls = false", peer, decision.range.cidr.text)
end
--- Count the peer's certificate (or, without TLS, the peer) as verified.
local function trustPeer(session, peer, decision)
    session.cert_chain_status = "valid"
    session.cert_identity_status = "valid"
    if session.direction == "outgoing" then
        session.authenticated_remote = true
    end
    local why = decision.range ~= nil and decision.range.trust_all_certs ~= nil and "range " .. decision.range.cidr.text or "s2s_v6mesh_trust_all_certs"
    session.log(
        "info",
        "Trusting %s: it is at [%s], the address its name encodes (%s)",
        peer,
        decision.address,
        why
    )
end
--- A use_tls = false range: no TLS, and with trust the address alone authenticates the peer.
local function goWithoutTls(session, peer, decision)
    markPlaintext(session, peer, decision)
    if decision.trust_all_certs then
        trustPeer(session, peer, decision)
    end
end
local function refuse(session, claimed, why)
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
--- A session is, or claims to be, `peer`. Undefined when that is not a
-- .v6.alt name; false (session closed) when the claim does not hold; else
-- what the policy says about the peer.
local function checkPeer(session, peer, localHost)
    if peer == nil or string_sub(peer, -7) ~= SUFFIX then
        return nil
    end
    local settings = settingsFor(localHost)
    local packed, err = v6alt.decode(peer, settings.lax)
    if packed == nil then
        return refuse(session, peer, err)
    end
    local ip = session.ip
    local peerPacked = v6alt.parse_ip(ip)
    local decision = policies.decide(settings.policy, packed)
    if peerPacked ~= packed then
        return refuse(
            session,
            peer,
            (("that name belongs to " .. decision.address) .. ", the connection is from ") .. tostring(ip)
        )
    end
    if decision.refused ~= nil then
        return refuse(session, peer, "its address is " .. decision.refused)
    end
    return decision
end
local function localHostOf(session)
    local ____temp_2
    if session.direction == "outgoing" then
        ____temp_2 = session.from_host
    else
        ____temp_2 = session.to_host
    end
    return ____temp_2
end
module:hook(
    "s2s-check-certificate",
    function(event)
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
    end,
    600
)
local function localAddresses()
    local found = {}
    local ok, list = pcall(netutil.local_addresses, "ipv6", true)
    if ok and list ~= nil then
        for ____, text in ipairs(list) do
            local packed = v6alt.parse_ip(text)
            if packed ~= nil then
                found[packed] = true
            end
        end
    end
    return found
end
--- Warn about a .v6.alt host that peers will not accept.
local function diagnoseHost(hostModule)
    local host = hostModule.host
    if string_sub(host, -7) ~= SUFFIX then
        return
    end
    local packed, err = v6alt.decode(host)
    if packed == nil then
        local laxPacked = v6alt.decode(host, true)
        local hint = laxPacked ~= nil and "; its canonical name is " .. tostring((v6alt.encode(laxPacked))) or ""
        hostModule:log("warn", "%s%s. Peers running this module will refuse it.", err, hint)
        return
    end
    local address = v6alt.format_ip(packed)
    if not localAddresses()[packed] then
        hostModule:log("warn", "%s stands for [%s], which is not an address of this machine: peers connect there and check connections come from there", host, address)
    else
        hostModule:log("info", "%s is served at [%s]", host, address)
    end
end
module.add_host = function(hostModule)
    local settings = readSettings(hostModule)
    hostSettings[hostModule.host] = settings
    noteOwnHost(hostModule.host)
    diagnoseHost(hostModule)
    hostModule:hook(
        "route/remote",
        function(event)
            local toHost = event.to_host
            if string_sub(toHost, -7) ~= SUFFIX then
                return nil
            end
            local packed, err = v6alt.decode(toHost, settings.lax)
            if packed == nil then
                return bounce(hostModule, event, "remote-server-not-found", err)
            end
            local refused = refusalFor(settings.refusals, settings.policy, packed)
            if refused ~= false then
                return bounce(hostModule, event, "policy-violation", ((toHost .. " is ") .. refused) .. "; this server does not connect there")
            end
            return nil
        end,
        100
    )
    hostModule:hook(
        "s2sout-created",
        function(event)
            local session = event.session
            local toHost = session.to_host
            if string_sub(toHost, -7) ~= SUFFIX then
                return
            end
            local packed = v6alt.decode(toHost, true)
            if packed == nil then
                return
            end
            local decision = policies.decide(settings.policy, packed)
            session.v6mesh = {address = decision.address, plaintext = false}
            session.log(
                "debug",
                "%s is at [%s]:%d (%s)",
                toHost,
                decision.address,
                S2S_PORT,
                policies.describe(decision)
            )
            if not decision.use_tls then
                goWithoutTls(session, toHost, decision)
            end
        end,
        100
    )
    route_outgoing(hostModule, resolverFor)
    hostModule:hook(
        "s2s-stream-features",
        function(event)
            local session = event.origin
            if session.v6mesh ~= nil then
                return
            end
            local peer = session.from_host
            local decision = checkPeer(session, peer, hostModule.host)
            if decision == nil or decision == false then
                return
            end
            session.v6mesh = {address = decision.address, plaintext = false}
            if not decision.use_tls and not session.secure then
                goWithoutTls(session, peer, decision)
            end
        end,
        1000
    )
    hostModule:hook(
        "s2s-authenticated",
        function(event)
            if checkPeer(event.session, event.host, hostModule.host) == false then
                return false
            end
            return nil
        end,
        1000
    )
end
local function shellGetDomain(ip)
    local name, err = v6alt.ip_to_name(ip)
    if name == nil then
        return nil, err
    end
    return true, "Encoded hostname: " .. name
end
local function shellGetIp(name)
    local ip, err = v6alt.name_to_ip(name, globalSettings.lax)
    if ip == nil then
        return nil, err
    end
    return true, "IP address: " .. ip
end
local function shellRange(target, host)
    if host ~= nil and hostSettings[host] == nil then
        return nil, ("'" .. host) .. "' is not a host of this server with mod_s2s_v6mesh loaded"
    end
    local packed
    local err
    if type(target) == "string" and (string.find(target, ":", 1, true)) ~= nil then
        packed, err = v6alt.parse_ip(target)
    else
        packed, err = v6alt.decode(
            target,
            settingsFor(host).lax
        )
    end
    if packed == nil then
        return nil, err
    end
    local decision = policies.decide(
        settingsFor(host).policy,
        packed
    )
    return true, (("[" .. decision.address) .. "] ") .. policies.describe(decision)
end
local removeShellCommands = add_shell_commands(module, "v6alt", "Convert between IPv6 addresses and .v6.alt names", {{name = "get_domain", desc = "Show the .v6.alt name of an IPv6 address", args = {"ip"}, handler = shellGetDomain}, {name = "get_ip", desc = "Show the IPv6 address a .v6.alt name stands for", args = {"domain"}, handler = shellGetIp}, {name = "range", desc = "Show which s2s_v6mesh_ranges entry applies to an address or name", args = {"ip_or_domain"}, handler = shellRange}})
module.unload = function()
    unroute_outgoing()
    removeShellCommands()
end
return ____exports
