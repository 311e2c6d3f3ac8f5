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
-- connects and offers no event to replace it, so that constructor is wrapped
-- once per process and asks `state.target`.
function ____exports.route_outgoing(state, target)
    state.target = target
    if ____exports.has_prefixed_libraries then
        return
    end
    local service = ____exports.require_lib("net.resolvers.service")
    if state.wrapper ~= nil and service.new == state.wrapper then
        return
    end
    local original = service.new
    local function wrapper(hostname, serviceName, connType, extra)
        local pending = state.pending
        state.pending = nil
        local ____temp_1
        if pending ~= nil and pending.to_host == hostname then
            ____temp_1 = pending.from_host
        else
            ____temp_1 = nil
        end
        local fromHost = ____temp_1
        local route = state.target
        local ____temp_2
        if route == nil then
            ____temp_2 = nil
        else
            ____temp_2 = route(fromHost, hostname)
        end
        local resolver = ____temp_2
        if resolver == nil then
            return original(hostname, serviceName, connType, extra)
        end
        return serviceName == "xmpp-server" and resolver or ____exports.exhausted(hostname)
    end
    service.new = wrapper
    state.service = service
    state.original = original
    state.wrapper = wrapper
end
--- Undo route_outgoing: Prosody's own resolver again, as before the module.
function ____exports.unroute_outgoing(state)
    if state.service ~= nil and state.original ~= nil and state.service.new == state.wrapper then
        state.service.new = state.original
    end
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
                local ____temp_3
                if route == nil then
                    ____temp_3 = nil
                else
                    ____temp_3 = route(session.from_host, session.to_host)
                end
                local resolver = ____temp_3
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
                    handler = function(_self, ...) return handler(...) end
                }
            )
        end
        return function() return nil end
    end
    local env = globalModule:shared("/*/admin_shell/env")
    local ____table = {}
    for ____, command in ipairs(commands) do
        local handler = command.handler
        ____table[command.name] = function(_self, ...) return handler(...) end
    end
    env[section] = ____table
    return function()
        if env[section] == ____table then
            env[section] = nil
        end
    end
end
return ____exports
