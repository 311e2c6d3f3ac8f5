local ____exports = {}
local function tryRequire(name)
    local ok, lib = pcall(require, name)
    local ____ok_0
    if ok then
        ____ok_0 = lib
    else
        ____ok_0 = nil
    end
    return ____ok_0
end
--- Load a Prosody library by its 13 name, falling back to the 0.12 one.
function ____exports.require_lib(name)
    local lib = tryRequire("prosody." .. name)
    if lib == nil then
        lib = require(name)
    end
    return lib
end
____exports.has_prefixed_libraries = tryRequire("prosody.util.stanza") ~= nil
--- A resolver with no targets.
function ____exports.exhausted(hostname, why)
    return {
        hostname = hostname,
        last_error = why,
        next = function(self, callback)
            callback()
        end
    }
end
--- Outgoing connections to names the target knows go where it says, never
-- through DNS. On 13 that is a hook on each host (see hook_host_routing); on
-- 0.12 mod_s2s builds its resolver with service.new() right before it
-- connects and offers no event to replace it, so the service.new wrapper of
-- gate_dns asks `state.target` there.
function ____exports.route_outgoing(state, target)
    state.target = target
end
--- A resolver without targets for a name the gate refuses: its use is logged.
local function refusedResolver(state, where, hostname, why)
    return {
        hostname = hostname,
        last_error = why,
        next = function(self, callback)
            if state.gate ~= nil then
                state.gate.log(where, hostname, why)
            end
            callback()
        end
    }
end
local function refusalOf(state, name)
    if type(name) ~= "string" or state.gate == nil then
        return nil
    end
    return state.gate.refusal(name)
end
--- Replace lib[key] with wrapper, once per process; remembered for unroute_outgoing.
local function patch(state, lib, key, wrapper)
    local ____table = lib
    if type(____table) ~= "table" or ____table[key] == nil then
        return
    end
    local patches = state.patches or ({})
    state.patches = patches
    patches[#patches + 1] = {lib = ____table, key = key, original = ____table[key], wrapper = wrapper}
    ____table[key] = wrapper
end
--- A lookup that answers refused names with an error (and sends nothing), and passes the rest to `ask`.
local function gatedLookup(state, ask)
    return function(handler, qname, qtype, qclass)
        local why = refusalOf(state, qname)
        if why == nil then
            return ask(handler, qname, qtype, qclass)
        end
        local ____opt_1 = state.gate
        if ____opt_1 ~= nil then
            ____opt_1.log("DNS lookup", qname, why)
        end
        handler(nil, why)
        return nil
    end
end
--- A DNS resolver object that answers refused names with an error and asks DNS for the rest.
local function gatedDnsResolver(state, inner, promiseLib)
    local lookup = gatedLookup(
        state,
        function(handler, qname, qtype, qclass) return inner:lookup(handler, qname, qtype, qclass) end
    )
    local gated = {
        lookup = function(self, handler, qname, qtype, qclass)
            return lookup(handler, qname, qtype, qclass)
        end,
        lookup_promise = function(self, qname, qtype, qclass)
            local why = refusalOf(state, qname)
            if why == nil and inner.lookup_promise ~= nil then
                return inner:lookup_promise(qname, qtype, qclass)
            end
            local ____opt_3 = state.gate
            if ____opt_3 ~= nil then
                ____opt_3.log("DNS lookup", qname, why)
            end
            return promiseLib.reject(why)
        end
    }
    return setmetatable(gated, {__index = inner})
end
--- The last gate (SPEC 3.2), on every build: whatever path leads there, no
-- DNS-based resolver of the process is asked a name that `gate.refusal`
-- refuses. Prosody's resolvers (net.resolvers.service and .basic) hand out,
-- for such a name, a resolver without targets whose use is logged; the DNS
-- API under them (net.adns, or net.unbound in its place) answers it with an
-- error and sends nothing. The libraries are patched once per process and
-- ask `state.gate` (and on 0.12 `state.target`), which a reload swaps.
function ____exports.gate_dns(state, gate)
    state.gate = gate
    if state.patches ~= nil then
        return
    end
    local service = ____exports.require_lib("net.resolvers.service")
    if state.wrapper ~= nil and service.new == state.wrapper and state.original ~= nil then
        service.new = state.original
    end
    state.service = nil
    state.original = nil
    state.wrapper = nil
    local originalService = service.new
    local function serviceWrapper(hostname, serviceName, connType, extra)
        if not ____exports.has_prefixed_libraries then
            local pending = state.pending
            state.pending = nil
            local ____temp_5
            if pending ~= nil and pending.to_host == hostname then
                ____temp_5 = pending.from_host
            else
                ____temp_5 = nil
            end
            local fromHost = ____temp_5
            local route = state.target
            local ____temp_6
            if route == nil then
                ____temp_6 = nil
            else
                ____temp_6 = route(fromHost, hostname)
            end
            local resolver = ____temp_6
            if resolver ~= nil then
                return serviceName == "xmpp-server" and resolver or ____exports.exhausted(hostname)
            end
        end
        local why = refusalOf(state, hostname)
        if why ~= nil then
            return refusedResolver(state, serviceName .. " resolver", hostname, why)
        end
        return originalService(hostname, serviceName, connType, extra)
    end
    patch(state, service, "new", serviceWrapper)
    local basic = ____exports.require_lib("net.resolvers.basic")
    local originalBasic = basic.new
    local function basicWrapper(hostname, port, connType, extra)
        local why = refusalOf(state, hostname)
        if why ~= nil then
            return refusedResolver(state, "address resolver", hostname, why)
        end
        return originalBasic(hostname, port, connType, extra)
    end
    patch(state, basic, "new", basicWrapper)
    local adns = ____exports.require_lib("net.adns")
    local promiseLib = ____exports.require_lib("util.promise")
    local originalResolver = adns.resolver
    patch(
        state,
        adns,
        "resolver",
        function() return gatedDnsResolver(
            state,
            originalResolver(),
            promiseLib
        ) end
    )
    if adns.lookup ~= nil then
        patch(
            state,
            adns,
            "lookup",
            gatedLookup(state, adns.lookup)
        )
    end
end
--- The connection type that makes an outgoing connection leave from
-- `address`. Prosody has no bind option; but a resolver hands net.connect a
-- connection type ("tcp6"), and server.addclient creates the socket with
-- socket[type]() on every backend (epoll, select, event) of 0.12, 13 and
-- trunk. So the type is a constructor of our own in LuaSocket's table: a tcp6
-- socket bound to `address`, which keeps its bind through the non-blocking
-- connect. A bind that fails fails that attempt; no other source is tried.
function ____exports.bound_connection_type(state, socket, address)
    local key = ("tcp6 from [" .. address) .. "]"
    local types = socket
    local bound = state.bound or ({})
    state.bound = bound
    if types[key] == nil then
        types[key] = function()
            local sock, err = socket.tcp6()
            if sock == nil then
                return nil, err
            end
            local ok, bindErr = sock:bind(address, 0)
            if ok == nil then
                sock:close()
                return nil, (("cannot send from [" .. address) .. "]: ") .. bindErr
            end
            return sock
        end
        bound[key] = types
    end
    return key
end
--- Undo route_outgoing and gate_dns: Prosody's own resolvers again, as before the module.
function ____exports.unroute_outgoing(state)
    if state.patches ~= nil then
        for ____, p in pairs(state.patches) do
            if p.lib[p.key] == p.wrapper then
                p.lib[p.key] = p.original
            end
        end
    end
    state.patches = nil
    if state.bound ~= nil then
        for key, socket in pairs(state.bound) do
            socket[key] = nil
        end
    end
    state.bound = nil
    state.gate = nil
    state.target = nil
    state.service = nil
    state.original = nil
    state.wrapper = nil
    state.pending = nil
end
--- Hook what routing needs on one host's events.
function ____exports.hook_host_routing(globalModule, events, state)
    if ____exports.has_prefixed_libraries then
        globalModule:hook_object_event(
            events,
            "s2sout-pre-connect",
            function(event)
                local route = state.target
                local session = event.session
                local ____temp_7
                if route == nil then
                    ____temp_7 = nil
                else
                    ____temp_7 = route(session.from_host, session.to_host)
                end
                local resolver = ____temp_7
                if resolver ~= nil then
                    event.resolver = resolver
                end
            end,
            100
        )
        return
    end
    globalModule:hook_object_event(
        events,
        "s2sout-created",
        function(event)
            state.pending = event.session
        end,
        -1000
    )
end
--- Raw handlers on a host's events that outlive the module: they keep .v6.alt
-- routing closed while a reload is under way, or after one failed. `route`
-- answers route/remote; `connect` gives the resolver for a connection that
-- was already being set up (13; on 0.12 the service.new wrapper stays and
-- asks `state.target`, which the caller sets to the same closed answer).
-- Returns a function that removes them.
function ____exports.guard_host_routing(events, route, connect)
    local function routeHandler(event)
        return route(event)
    end
    events.add_handler("route/remote", routeHandler, 100)
    if not ____exports.has_prefixed_libraries then
        return function() return events.remove_handler("route/remote", routeHandler) end
    end
    local function connectHandler(event)
        local resolver = connect(event.session.to_host)
        if resolver ~= nil then
            event.resolver = resolver
        end
    end
    events.add_handler("s2sout-pre-connect", connectHandler, 100)
    return function()
        events.remove_handler("route/remote", routeHandler)
        events.remove_handler("s2sout-pre-connect", connectHandler)
    end
end
local function shellPrint(____self)
    local ____temp_8
    if type(____self) == "table" then
        ____temp_8 = ____self.session
    else
        ____temp_8 = nil
    end
    local session = ____temp_8
    return function(line)
        if session ~= nil then
            session.print(line)
        end
    end
end
--- Add `prosodyctl shell SECTION NAME ARGS` commands: shell-command items on
-- 13, entries in mod_admin_shell's shared command table on 0.12. Returns a
-- function that removes what it added.
function ____exports.add_shell_commands(globalModule, section, sectionDesc, commands)
    if ____exports.has_prefixed_libraries then
        for ____, command in ipairs(commands) do
            local args = {}
            for ____, arg in ipairs(command.args) do
                args[#args + 1] = {name = arg, type = "string"}
            end
            local handler = command.handler
            globalModule:add_item(
                "shell-command",
                {
                    section = section,
                    section_desc = sectionDesc,
                    name = command.name,
                    desc = command.desc,
                    args = args,
                    handler = function(____self, ...) return handler(
                        shellPrint(____self),
                        ...
                    ) end
                }
            )
        end
        return function() return nil end
    end
    local env = globalModule:shared("/*/admin_shell/env")
    local ____table = {}
    for ____, command in ipairs(commands) do
        local handler = command.handler
        ____table[command.name] = function(____self, ...) return handler(
            shellPrint(____self),
            ...
        ) end
    end
    env[section] = ____table
    return function()
        if env[section] == ____table then
            env[section] = nil
        end
    end
end
return ____exports
