using System.Collections.Frozen;
using System.Net;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Tsig;
using Portcullis.Server.Authoritative;
using Portcullis.Server.Configuration;

namespace Portcullis.Server.Security;

/// <summary>The access lists of one zone (each either the zone's own or the server-wide one).</summary>
public sealed record ZoneAccess(AccessList Query, AccessList Transfer, AccessList Update, AccessList Notify);

/// <summary>
/// The compiled access lists, immutable, swapped whole on reload. Defaults are safe with no
/// configuration: queries for authoritative data from anyone, recursion only from this machine
/// and its attached networks, transfers, updates and NOTIFY from nobody.
/// </summary>
public sealed class SecurityPolicy
{
    private readonly FrozenDictionary<DnsName, ZoneAccess> _zones;

    private SecurityPolicy(ZoneAccess defaults, AccessList recursion, FrozenDictionary<DnsName, ZoneAccess> zones,
        AccessList rrlExempt, AccessList clientLimitExempt, TsigKeyRing keys)
    {
        Keys = keys;
        Defaults = defaults;
        Recursion = recursion;
        _zones = zones;
        RrlExempt = rrlExempt;
        ClientLimitExempt = clientLimitExempt;
    }

    public static readonly SecurityPolicy Default = From(new ServerConfig(), new LocalNetworks([(IPAddress.Loopback, 8), (IPAddress.IPv6Loopback, 128)]));

    public ZoneAccess Defaults { get; }
    public AccessList Recursion { get; }
    public AccessList RrlExempt { get; }
    public AccessList ClientLimitExempt { get; }
    /// <summary>The TSIG keys requests may be signed with.</summary>
    public TsigKeyRing Keys { get; }

    /// <summary>The lists that apply to <paramref name="zone"/>.</summary>
    public ZoneAccess For(Zone zone) => _zones.Count != 0 && _zones.TryGetValue(zone.Origin, out var z) ? z : Defaults;

    /// <summary>Compiles the configuration's lists; errors name the list and the element.</summary>
    public static SecurityPolicy From(ServerConfig config, LocalNetworks local)
    {
        foreach (var name in config.Acls.Keys)
            if (AccessListCompiler.IsBuiltIn(name))
                throw new ConfigException($"acls: '{name}' is a built-in list and cannot be redefined", name);
        var keys = new List<TsigKey>();
        foreach (var k in config.Keys)
        {
            if (!TsigKey.TryCreate(k.Name, k.Algorithm, k.Secret, out var key, out string? error))
                throw new ConfigException($"keys: {error}",
                    error!.StartsWith("secret", StringComparison.Ordinal) ? k.Secret : error.StartsWith("algorithm", StringComparison.Ordinal) ? k.Algorithm : k.Name.Length > 0 ? k.Name : "keys");
            if (keys.Exists(other => other.Name == key!.Name))
                throw new ConfigException($"keys: '{k.Name}' is defined twice", k.Name);
            keys.Add(key!);
        }
        var compiler = new AccessListCompiler(config.Acls, local, keys.Select(k => k.Name).ToHashSet());
        // Every named list compiles on its own too, so a broken one is reported even when unused.
        foreach (var (name, elements) in config.Acls) compiler.Compile(elements, $"acls: {name}");
        var defaults = new ZoneAccess(
            compiler.Compile(config.AllowQuery, "allow-query"),
            compiler.Compile(config.AllowTransfer, "allow-transfer"),
            compiler.Compile(config.AllowUpdate, "allow-update"),
            compiler.Compile(config.AllowNotify, "allow-notify"));
        var zones = new Dictionary<DnsName, ZoneAccess>();
        foreach (var z in config.Zones)
        {
            if (z.AllowQuery is null && z.AllowTransfer is null && z.AllowUpdate is null && z.AllowNotify is null) continue;
            string where = $"zones: {z.Name}";
            zones[DnsName.Parse(z.Name)] = new ZoneAccess(
                z.AllowQuery is null ? defaults.Query : compiler.Compile(z.AllowQuery, $"{where}: allow-query"),
                z.AllowTransfer is null ? defaults.Transfer : compiler.Compile(z.AllowTransfer, $"{where}: allow-transfer"),
                z.AllowUpdate is null ? defaults.Update : compiler.Compile(z.AllowUpdate, $"{where}: allow-update"),
                z.AllowNotify is null ? defaults.Notify : compiler.Compile(z.AllowNotify, $"{where}: allow-notify"));
        }
        return new SecurityPolicy(defaults, compiler.Compile(config.AllowRecursion, "allow-recursion"), zones.ToFrozenDictionary(),
            compiler.Compile(config.RateLimit.ExemptClients, "rate-limit: exempt-clients"),
            compiler.Compile(config.ClientLimit.ExemptClients, "client-limit: exempt-clients"), new TsigKeyRing(keys));
    }

    /// <summary>
    /// Addresses outside any private, loopback or documentation range that allow-recursion admits:
    /// if there are any, recursion is open to the Internet and the server can be used as a reflector.
    /// </summary>
    public IReadOnlyList<IPAddress> OpenRecursionSamples()
    {
        IPAddress[] samples =
        [
            IPAddress.Parse("8.8.8.8"), IPAddress.Parse("1.1.1.1"), IPAddress.Parse("45.33.32.156"), IPAddress.Parse("151.101.1.69"),
            IPAddress.Parse("2001:4860:4860::8888"), IPAddress.Parse("2606:4700:4700::1111"), IPAddress.Parse("2a00:1450:4001:80b::200e"),
        ];
        return samples.Where(a => Recursion.Allows(a)).ToArray();
    }
}
