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
        return fail(v6alt.read_failure(name, read, err))
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
        if packed == nil then
            err = v6alt.read_failure(text, read, err)
        end
    end
    if packed == nil then
        return fail(err)
    end
    local decision = decide(policy, packed)
    return true, (("[" .. decision.address) .. "] ") .. describe(decision)
end
--- `v6alt status`: one line per item, then the count of lines as the result.
function ____exports.status(report, ____print)
    local lines = {}
    lines[#lines + 1] = report.closed == nil and ".v6.alt federation: open" or ".v6.alt federation: closed: " .. report.closed
    for ____, entry in ipairs(report.closed_hosts) do
        lines[#lines + 1] = (("host " .. entry.host) .. ": .v6.alt federation closed: ") .. entry.why
    end
    for ____, entry in ipairs(report.addresses) do
        local served = #entry.hosts == 0 and "no host" or (((#entry.hosts == 1 and "host" or "hosts") .. " ") .. table.concat(entry.hosts, ", ")) .. ", sending from this address"
        lines[#lines + 1] = (((("address [" .. entry.address) .. "] = ") .. entry.name) .. ": ") .. served
    end
    for ____, other in ipairs(report.others) do
        lines[#lines + 1] = other.address == nil and ("host " .. other.host) .. ": not a .v6.alt name; it sends from the address the kernel picks" or ((("host " .. other.host) .. ": its address [") .. other.address) .. "] is not on this machine; it cannot federate"
    end
    lines[#lines + 1] = #report.dns_listen == 0 and "DNS listener: off" or "DNS listener: " .. table.concat(report.dns_listen, ", ")
    local reasons = {}
    for reason in pairs(report.refusals) do
        reasons[#reasons + 1] = reason
    end
    table.sort(reasons)
    if #reasons == 0 then
        lines[#lines + 1] = "refused: nothing since the module loaded"
    end
    for ____, reason in ipairs(reasons) do
        lines[#lines + 1] = (("refused (" .. reason) .. "): ") .. tostring(report.refusals[reason])
    end
    for ____, line in ipairs(lines) do
        ____print(line)
    end
    return true, tostring(#lines) .. " lines"
end
function ____exports.commands(ctx)
    return {
        {
            name = "get_domain",
            desc = "Show the .v6.alt name of an IPv6 address",
            args = {"ip"},
            handler = function(_print, ip) return ____exports.get_domain(ip) end
        },
        {
            name = "get_ip",
            desc = "Show the IPv6 address a .v6.alt name stands for",
            args = {"domain"},
            handler = function(_print, name) return ____exports.get_ip(
                name,
                ctx.lax(nil)
            ) end
        },
        {
            name = "range",
            desc = "Show which s2s_v6mesh_ranges entry applies to an address or name",
            args = {"ip_or_domain"},
            handler = function(_print, target, host) return ____exports.range(ctx, target, host) end
        },
        {
            name = "status",
            desc = "Show this server's .v6.alt names and addresses, whether federation is open, the DNS listener and the refusals",
            args = {},
            handler = function(____print) return ____exports.status(
                ctx.status(),
                ____print
            ) end
        }
    }
end
return ____exports
