using System.Buffers.Binary;
using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using Portcullis.Protocol.Names;

namespace Portcullis.Server.Security;

/// <summary>The client's IP address as 4 (IPv4) or 16 (IPv6) bytes, from the socket address a transport gives.</summary>
public static class ClientAddress
{
    /// <summary>Writes the address into <paramref name="destination"/> (16 bytes) and returns 4 or 16, or 0 for another family.
    /// An IPv4-mapped IPv6 address (a dual-stack socket) comes back as IPv4, so IPv4 rules match it.</summary>
    public static int Get(SocketAddress address, Span<byte> destination)
    {
        var b = address.Buffer.Span;
        switch (address.Family)
        {
            case AddressFamily.InterNetwork when address.Size >= 8:
                b.Slice(4, 4).CopyTo(destination);
                return 4;
            case AddressFamily.InterNetworkV6 when address.Size >= 24:
                var v6 = b.Slice(8, 16);
                if (IsV4Mapped(v6))
                {
                    v6[12..].CopyTo(destination);
                    return 4;
                }
                v6.CopyTo(destination);
                return 16;
            default:
                return 0;
        }
    }

    public static int Get(IPAddress address, Span<byte> destination)
    {
        if (address.IsIPv4MappedToIPv6) address = address.MapToIPv4();
        address.TryWriteBytes(destination, out int written);
        return written;
    }

    private static bool IsV4Mapped(ReadOnlySpan<byte> a) =>
        BinaryPrimitives.ReadUInt64LittleEndian(a) == 0 && BinaryPrimitives.ReadUInt16LittleEndian(a[8..]) == 0 && a[10] == 0xFF && a[11] == 0xFF;
}

/// <summary>
/// An access control list, compiled: rules tried in order, the first that matches decides (allow, or
/// deny when the element was negated with "!"), and no match denies — BIND's address-match-list
/// semantics. Elements are addresses, prefixes, "key NAME" (a TSIG key the request was signed with),
/// the built-in lists any, none, localhost (this machine's addresses), localnets (the networks
/// attached to it) and loopback, and other named lists (flattened at compile time). Matching
/// allocates nothing; the list is immutable and replaced whole on reload.
/// </summary>
public sealed class AccessList
{
    internal enum RuleKind : byte { Any, V4, V6, Key }

    internal readonly record struct Rule(RuleKind Kind, bool Allow, int PrefixLength, ulong High, ulong Low, byte[]? Key);

    private readonly Rule[] _rules;

    internal AccessList(string description, Rule[] rules)
    {
        Description = description;
        _rules = rules;
    }

    public static readonly AccessList Anyone = new("any", [new Rule(RuleKind.Any, true, 0, 0, 0, null)]);
    public static readonly AccessList Nobody = new("none", []);

    /// <summary>The list as the operator wrote it, for messages.</summary>
    public string Description { get; }

    public bool IsNobody => _rules.Length == 0 || Array.TrueForAll(_rules, r => !r.Allow);

    /// <summary>
    /// Whether the list admits a client with this address (4 or 16 bytes; empty matches only "any")
    /// and, when the request carried a verified TSIG signature, that key's name (wire form; empty when none).
    /// </summary>
    public bool Allows(ReadOnlySpan<byte> address, ReadOnlySpan<byte> keyName = default)
    {
        ulong high = 0, low = 0;
        bool v4 = address.Length == 4, v6 = address.Length == 16;
        if (v4) low = BinaryPrimitives.ReadUInt32BigEndian(address);
        else if (v6)
        {
            high = BinaryPrimitives.ReadUInt64BigEndian(address);
            low = BinaryPrimitives.ReadUInt64BigEndian(address[8..]);
        }
        foreach (ref readonly var r in _rules.AsSpan())
        {
            bool match = r.Kind switch
            {
                RuleKind.Any => true,
                RuleKind.V4 => v4 && PrefixMatch(0, low, r),
                RuleKind.V6 => v6 && PrefixMatch(high, low, r),
                RuleKind.Key => !keyName.IsEmpty && DnsName.EqualsIgnoreCase(keyName, r.Key),
                _ => false,
            };
            if (match) return r.Allow;
        }
        return false;
    }

    public bool Allows(IPAddress address, ReadOnlySpan<byte> keyName = default)
    {
        Span<byte> bytes = stackalloc byte[16];
        return Allows(bytes[..ClientAddress.Get(address, bytes)], keyName);
    }

    private static bool PrefixMatch(ulong high, ulong low, in Rule r)
    {
        int bits = r.PrefixLength;
        if (r.Kind == RuleKind.V4)
            return bits == 0 || (low ^ r.Low) >> (32 - bits) == 0;
        if (bits == 0) return true;
        if (bits <= 64) return (high ^ r.High) >> (64 - bits) == 0;
        return high == r.High && (bits == 128 ? low == r.Low : (low ^ r.Low) >> (128 - bits) == 0);
    }

    public override string ToString() => Description;
}

/// <summary>This machine's addresses and attached networks, for "localhost" and "localnets".</summary>
public sealed record LocalNetworks(IReadOnlyList<(IPAddress Address, int PrefixLength)> Interfaces)
{
    /// <summary>Read from the system's interfaces; loopback is always included.</summary>
    public static LocalNetworks FromSystem()
    {
        var list = new List<(IPAddress, int)> { (IPAddress.Loopback, 8), (IPAddress.IPv6Loopback, 128) };
        try
        {
            foreach (var nic in NetworkInterface.GetAllNetworkInterfaces())
            {
                if (nic.OperationalStatus == OperationalStatus.Down) continue;
                foreach (var u in nic.GetIPProperties().UnicastAddresses)
                    list.Add((u.Address, u.PrefixLength));
            }
        }
        catch (NetworkInformationException)
        {
            // Without the interface list, localhost and localnets are loopback only: narrower, never wider.
        }
        return new LocalNetworks(list);
    }
}

/// <summary>
/// Turns ACL text from the configuration into <see cref="AccessList"/>s: each element is a string,
/// "!" in front negates it. Unknown names, bad prefixes and loops between named lists are errors
/// that name the offending element.
/// </summary>
public sealed class AccessListCompiler(IReadOnlyDictionary<string, List<string>> named, LocalNetworks local, ISet<DnsName>? knownKeys = null)
{
    private static readonly string[] BuiltIn = ["any", "none", "localhost", "localnets", "loopback"];

    public static bool IsBuiltIn(string name) => Array.IndexOf(BuiltIn, name) >= 0;

    /// <summary>Compiles a list; <paramref name="what"/> names it in errors ("allow-query").</summary>
    public AccessList Compile(IReadOnlyList<string> elements, string what)
    {
        var rules = new List<AccessList.Rule>();
        Add(rules, elements, invert: false, what, []);
        return new AccessList(string.Join(", ", elements), rules.ToArray());
    }

    private void Add(List<AccessList.Rule> rules, IReadOnlyList<string> elements, bool invert, string what, HashSet<string> visiting)
    {
        foreach (var raw in elements)
        {
            string text = raw.Trim();
            bool negate = invert;
            while (text.StartsWith('!'))
            {
                negate = !negate;
                text = text[1..].TrimStart();
            }
            bool allow = !negate;
            switch (text)
            {
                case "any":
                    rules.Add(new AccessList.Rule(AccessList.RuleKind.Any, allow, 0, 0, 0, null));
                    continue;
                case "none":
                    // "none" matches nothing; "!none" matches everything (as in BIND).
                    if (negate) rules.Add(new AccessList.Rule(AccessList.RuleKind.Any, true, 0, 0, 0, null));
                    continue;
                case "localhost":
                    foreach (var (address, _) in local.Interfaces) rules.Add(Prefix(address, address.AddressFamily == AddressFamily.InterNetwork ? 32 : 128, allow));
                    continue;
                case "localnets":
                    foreach (var (address, length) in local.Interfaces) rules.Add(Prefix(address, length, allow));
                    continue;
                case "loopback":
                    rules.Add(Prefix(IPAddress.Loopback, 8, allow));
                    rules.Add(Prefix(IPAddress.IPv6Loopback, 128, allow));
                    continue;
            }
            if (text.StartsWith("key ", StringComparison.Ordinal))
            {
                string keyName = text[4..].Trim();
                if (!DnsName.TryParse(keyName, DnsName.Root, out var key, out string? error))
                    throw new Configuration.ConfigException($"{what}: '{raw}': bad key name: {error}", raw);
                // A misspelt key name would silently match nothing: refuse it, as BIND does.
                if (knownKeys is not null && !knownKeys.Contains(key!.ToLowerInvariant()))
                    throw new Configuration.ConfigException($"{what}: '{raw}': no key named {key} under keys", raw);
                rules.Add(new AccessList.Rule(AccessList.RuleKind.Key, allow, 0, 0, 0, key!.Wire.ToArray()));
                continue;
            }
            if (TryParsePrefix(text, out var prefixAddress, out int prefixLength, out string? prefixError))
            {
                rules.Add(Prefix(prefixAddress!, prefixLength, allow));
                continue;
            }
            if (prefixError is not null)
                throw new Configuration.ConfigException($"{what}: '{raw}': {prefixError}", raw);
            if (named.TryGetValue(text, out var nested))
            {
                if (!visiting.Add(text))
                    throw new Configuration.ConfigException($"{what}: '{raw}': the named ACL '{text}' refers to itself", raw);
                Add(rules, nested, negate, $"acls: {text}", visiting);
                visiting.Remove(text);
                continue;
            }
            throw new Configuration.ConfigException(
                $"{what}: '{raw}' is not an address, a prefix, 'key NAME', any, none, localhost, localnets, loopback or a list under acls", raw);
        }
    }

    private static AccessList.Rule Prefix(IPAddress address, int length, bool allow)
    {
        if (address.IsIPv4MappedToIPv6) { address = address.MapToIPv4(); length = Math.Max(0, length - 96); }
        Span<byte> b = stackalloc byte[16];
        address.TryWriteBytes(b, out int n);
        if (n == 4)
        {
            ulong v = BinaryPrimitives.ReadUInt32BigEndian(b);
            return new AccessList.Rule(AccessList.RuleKind.V4, allow, length, 0, v, null);
        }
        return new AccessList.Rule(AccessList.RuleKind.V6, allow, length,
            BinaryPrimitives.ReadUInt64BigEndian(b), BinaryPrimitives.ReadUInt64BigEndian(b[8..]), null);
    }

    /// <summary>"192.0.2.1", "192.0.2.0/24", "2001:db8::/32". Error set when it looks like an address but is wrong.</summary>
    private static bool TryParsePrefix(string text, out IPAddress? address, out int length, out string? error)
    {
        error = null;
        length = 0;
        int slash = text.IndexOf('/');
        string addressText = slash < 0 ? text : text[..slash];
        if (!IPAddress.TryParse(addressText, out address))
        {
            if (slash >= 0 || addressText.Contains(':') || (addressText.Length > 0 && char.IsAsciiDigit(addressText[0])))
                error = $"'{addressText}' is not an IP address";
            return false;
        }
        int max = address.AddressFamily == AddressFamily.InterNetwork ? 32 : 128;
        length = max;
        if (slash >= 0 && (!int.TryParse(text[(slash + 1)..], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out length) || length > max))
        {
            error = $"the prefix length must be 0 to {max}";
            return false;
        }
        return true;
    }
}
