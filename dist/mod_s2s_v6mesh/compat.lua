local ____exports = {}
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
    if lib ~= nil then
        return lib
    end
    return require(name)
end
____exports.has_prefixed_libraries = tryRequire("prosody.util.stanza") ~= nil
local patchedService
local originalServiceNew
--- Make outgoing connections to names the factory knows go where it says,
-- never through DNS. Call once per host.
function ____exports.route_outgoing(hostModule, factory)
    if ____exports.has_prefixed_libraries then
        hostModule:hook(
            "s2sout-pre-connect",
            function(event)
                local resolver = factory(event.session.to_host)
                if resolver ~= nil then
                    event.resolver = resolver
                end
            end,
            100
        )
        return
    end
    if patchedService ~= nil then
        return
    end
    local service = ____exports.require_lib("net.resolvers.service")
    local original = service.new
    service.new = function(hostname, serviceName, connType, extra)
        local resolver = factory(hostname)
        if resolver == nil then
            return original(hostname, serviceName, connType, extra)
        end
        return serviceName == "xmpp-server" and resolver or ____exports.exhausted(hostname)
    end
    patchedService = service
    originalServiceNew = original
end
--- Undo route_outgoing's 0.12 patch (13's hooks go away with the module).
function ____exports.unroute_outgoing()
    if patchedService ~= nil and originalServiceNew ~= nil then
        patchedService.new = originalServiceNew
    end
    patchedService = nil
    originalServiceNew = nil
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
