local ____exports = {}
local v6alt = require("mod_s2s_v6mesh.v6alt")
local ____policy = require("mod_s2s_v6mesh.policy")
local decide = ____policy.decide
local describe = ____policy.describe
local function fail(message)
    return nil, message
end
--- A one-line error when an argument is missing or not a string.
local function badArgument(command, what, value, example)
    if type(value) == "string" and value ~= "" then
        return nil
    end
    local got = value == nil and "nothing" or (type(value) == "string" and "an empty string" or ((tostring(value) .. " (a ") .. type(value)) .. ")")
    return (((((("v6alt " .. command) .. " needs ") .. what) .. " as a string, got ") .. got) .. "; e.g. ") .. example
end
function ____exports.get_domain(ip)
    local bad = badArgument("get_domain", "an IPv6 address", ip, "v6alt:get_domain(\"2a00:1098:3a0::1\")")
    if bad ~= nil then
        return fail(bad)
    end
    local name, err = v6alt.ip_to_name(ip)
    if name == nil then
        return fail(err)
    end
    return true, "Encoded hostname: " .. name
end
function ____exports.get_ip(name, lax)
    local bad = badArgument("get_ip", "a .v6.alt name", name, "v6alt:get_ip(\"fiabbgadu-e.v6.alt\")")
    if bad ~= nil then
        return fail(bad)
    end
    local read = v6alt.mesh_name(name) or name
    local ip, err = v6alt.name_to_ip(read, lax)
    if ip == nil then
        return fail(read == name and err or (((tostring(name) .. " is read as ") .. read) .. ": ") .. err)
    end
    return true, read == name and "IP address: " .. ip or ((((("IP address: " .. ip) .. " (") .. tostring(name)) .. " is read as ") .. read) .. ")"
end
function ____exports.range(ctx, target, host)
    local bad = badArgument("range", "an IPv6 address or a .v6.alt name", target, "v6alt:range(\"200::1\")")
    if bad ~= nil then
        return fail(bad)
    end
    if host ~= nil then
        local badHost = badArgument("range", "a host of this server (optional second argument)", host, "v6alt:range(\"200::1\", \"example.v6.alt\")")
        if badHost ~= nil then
            return fail(badHost)
        end
    end
    local hostName = host
    local policy = ctx.policy(hostName)
    if policy == nil then
        return fail(("'" .. tostring(hostName)) .. "' is not a host of this server")
    end
    local text = target
    local packed
    local err
    if (string.find(text, ":", 1, true)) ~= nil then
        packed, err = v6alt.parse_ip(text)
    else
        local read = v6alt.mesh_name(text) or text
        packed, err = v6alt.decode(
            read,
            ctx.lax(hostName)
        )
        if packed == nil and read ~= text then
            err = (((text .. " is read as ") .. read) .. ": ") .. tostring(err)
        end
    end
    if packed == nil then
        return fail(err)
    end
    local decision = decide(policy, packed)
    return true, (("[" .. decision.address) .. "] ") .. describe(decision)
end
function ____exports.commands(ctx)
    return {
        {
            name = "get_domain",
            desc = "Show the .v6.alt name of an IPv6 address",
            args = {"ip"},
            handler = function(ip) return ____exports.get_domain(ip) end
        },
        {
            name = "get_ip",
            desc = "Show the IPv6 address a .v6.alt name stands for",
            args = {"domain"},
            handler = function(name) return ____exports.get_ip(
                name,
                ctx.lax(nil)
            ) end
        },
        {
            name = "range",
            desc = "Show which s2s_v6mesh_ranges entry applies to an address or name",
            args = {"ip_or_domain"},
            handler = function(target, host) return ____exports.range(ctx, target, host) end
        }
    }
end
return ____exports
