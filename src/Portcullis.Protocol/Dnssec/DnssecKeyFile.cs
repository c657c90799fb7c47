using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Portcullis.Protocol.Names;

namespace Portcullis.Protocol.Dnssec;

/// <summary>
/// BIND's key file pair, as dnssec-keygen writes it and dnssec-signzone, ldns-signzone and
/// dnssec-dsfromkey read it: <c>K&lt;zone&gt;+&lt;alg&gt;+&lt;tag&gt;.key</c> holds the DNSKEY record in
/// presentation form (after ';' comments), <c>.private</c> the secret in "Private-key-format: v1.3"
/// (one "Field: base64" per line).
/// </summary>
public static class DnssecKeyFile
{
    /// <summary>"Kexample.test.+013+12345": the zone with its trailing dot, the algorithm in 3 digits, the tag in 5.</summary>
    public static string BaseName(DnsName zone, DnssecAlgorithm algorithm, ushort keyTag) =>
        string.Create(CultureInfo.InvariantCulture, $"K{zone.ToString().ToLowerInvariant()}+{(byte)algorithm:D3}+{keyTag:D5}");

    /// <summary>Writes the pair into <paramref name="directory"/>; returns the base path (without .key/.private).</summary>
    public static string Write(string directory, DnssecPrivateKey key, DateTimeOffset created)
    {
        string basePath = Path.Combine(directory, BaseName(key.Zone, key.Algorithm, key.KeyTag));
        string stamp = created.UtcDateTime.ToString("yyyyMMddHHmmss", CultureInfo.InvariantCulture);
        string alg = DnssecAlgorithms.ToText(key.Algorithm);
        var pub = new StringBuilder();
        pub.Append(CultureInfo.InvariantCulture, $"; This is a {(key.IsKsk ? "key-signing" : "zone-signing")} key, keyid {key.KeyTag}, for {key.Zone}\n");
        pub.Append(CultureInfo.InvariantCulture, $"; Created: {stamp}\n; Publish: {stamp}\n; Activate: {stamp}\n");
        pub.Append(CultureInfo.InvariantCulture,
            $"{key.Zone} IN DNSKEY {key.Flags} {DnsKey.Protocol} {(byte)key.Algorithm} {Convert.ToBase64String(DnsKey.PublicKey(key.DnskeyRdata))}\n");
        var priv = new StringBuilder();
        priv.Append("Private-key-format: v1.3\n");
        priv.Append(CultureInfo.InvariantCulture, $"Algorithm: {(byte)key.Algorithm} ({alg})\n");
        foreach (var (name, value) in key.ExportPrivateFields())
            priv.Append(name).Append(": ").Append(Convert.ToBase64String(value)).Append('\n');
        priv.Append(CultureInfo.InvariantCulture, $"Created: {stamp}\nPublish: {stamp}\nActivate: {stamp}\n");
        File.WriteAllText(basePath + ".key", pub.ToString());
        // The secret is readable by its owner only, as dnssec-keygen leaves it.
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        using (var stream = new FileStream(basePath + ".private", options))
        using (var writer = new StreamWriter(stream, new UTF8Encoding(false)))
            writer.Write(priv.ToString());
        return basePath;
    }

    /// <summary>
    /// Reads the DNSKEY of a .key file (path with or without ".key"): owner and RDATA. Throws
    /// <see cref="FormatException"/> with a one-line reason when it is not a key file.
    /// </summary>
    public static (DnsName Owner, byte[] Rdata) ReadPublic(string path)
    {
        string file = StripExtension(path) + ".key";
        foreach (string raw in File.ReadAllLines(file))
        {
            string line = raw;
            int semicolon = line.IndexOf(';', StringComparison.Ordinal);
            if (semicolon >= 0) line = line[..semicolon];
            var tokens = line.Split((char[])[' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
            int type = Array.FindIndex(tokens, t => t.Equals("DNSKEY", StringComparison.OrdinalIgnoreCase));
            if (type < 1) continue;
            if (tokens.Length < type + 5) throw new FormatException($"{file}: DNSKEY record too short");
            var owner = DnsName.Parse(tokens[0]);
            if (!ushort.TryParse(tokens[type + 1], CultureInfo.InvariantCulture, out ushort flags)
                || !byte.TryParse(tokens[type + 2], CultureInfo.InvariantCulture, out byte protocol)
                || !byte.TryParse(tokens[type + 3], CultureInfo.InvariantCulture, out byte algorithm))
                throw new FormatException($"{file}: bad DNSKEY flags, protocol or algorithm");
            byte[] publicKey;
            try { publicKey = Convert.FromBase64String(string.Concat(tokens[(type + 4)..])); }
            catch (FormatException) { throw new FormatException($"{file}: the public key is not base64"); }
            byte[] rdata = [(byte)(flags >> 8), (byte)flags, protocol, algorithm, .. publicKey];
            return (owner, rdata);
        }
        throw new FormatException($"{file}: no DNSKEY record");
    }

    /// <summary>Reads a key pair (path with or without ".key"/".private"); <see cref="FormatException"/> on a bad file.</summary>
    public static DnssecPrivateKey Read(string path)
    {
        string basePath = StripExtension(path);
        var (owner, rdata) = ReadPublic(basePath);
        string file = basePath + ".private";
        var fields = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (string line in File.ReadAllLines(file))
        {
            int colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon > 0) fields[line[..colon].Trim()] = line[(colon + 1)..].Trim();
        }
        if (!fields.TryGetValue("Private-key-format", out string? format) || !format.StartsWith("v1.", StringComparison.Ordinal))
            throw new FormatException($"{file}: not a Private-key-format v1.x file");
        if (!fields.TryGetValue("Algorithm", out string? algText)
            || !byte.TryParse(algText.Split(' ')[0], CultureInfo.InvariantCulture, out byte algNumber))
            throw new FormatException($"{file}: no Algorithm line");
        var algorithm = (DnssecAlgorithm)algNumber;
        if (algorithm != DnsKey.Algorithm(rdata)) throw new FormatException($"{file}: algorithm differs from the .key file");
        if (!DnssecPrivateKey.CanSign(algorithm))
            throw new FormatException($"{file}: algorithm {DnssecAlgorithms.ToText(algorithm)} is not supported for signing");
        byte[] Field(string name)
        {
            if (!fields.TryGetValue(name, out string? value)) throw new FormatException($"{file}: no {name} field");
            try { return Convert.FromBase64String(value); }
            catch (FormatException) { throw new FormatException($"{file}: {name} is not base64"); }
        }
        ushort flags = DnsKey.Flags(rdata);
        DnssecPrivateKey key;
        try
        {
            key = algorithm switch
            {
                DnssecAlgorithm.Ed25519 => DnssecPrivateKey.FromEd25519(owner, flags, Field("PrivateKey")),
                DnssecAlgorithm.RsaSha256 => DnssecPrivateKey.FromRsa(owner, flags, new RSAParameters
                {
                    Modulus = DnssecPrivateKey.TrimZeros(Field("Modulus")), Exponent = DnssecPrivateKey.TrimZeros(Field("PublicExponent")),
                    D = Field("PrivateExponent"), P = Field("Prime1"), Q = Field("Prime2"),
                    DP = Field("Exponent1"), DQ = Field("Exponent2"), InverseQ = Field("Coefficient"),
                }),
                _ => DnssecPrivateKey.FromEcdsa(owner, algorithm, flags, Field("PrivateKey")),
            };
        }
        catch (CryptographicException e)
        {
            throw new FormatException($"{file}: the private key is not usable: {e.Message}");
        }
        if (!key.DnskeyRdata.AsSpan().SequenceEqual(rdata))
        {
            key.Dispose();
            throw new FormatException($"{file}: the private key does not match the public key in the .key file");
        }
        return key;
    }

    /// <summary>The base paths of every key pair for <paramref name="zone"/> in <paramref name="directory"/>, sorted.</summary>
    public static List<string> Find(string directory, DnsName zone)
    {
        string prefix = "K" + zone.ToString().ToLowerInvariant() + "+";
        var result = new List<string>();
        foreach (string file in Directory.EnumerateFiles(directory, "K*.key"))
        {
            string name = Path.GetFileName(file);
            if (!name.StartsWith(prefix, StringComparison.OrdinalIgnoreCase)) continue;
            string basePath = file[..^4];
            if (File.Exists(basePath + ".private")) result.Add(basePath);
        }
        result.Sort(StringComparer.Ordinal);
        return result;
    }

    private static string StripExtension(string path) =>
        path.EndsWith(".key", StringComparison.Ordinal) ? path[..^4]
        : path.EndsWith(".private", StringComparison.Ordinal) ? path[..^8] : path;
}
