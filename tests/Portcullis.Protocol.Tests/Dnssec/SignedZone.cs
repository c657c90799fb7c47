using System.Globalization;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.Records;
using Portcullis.Protocol.ZoneText;
using Portcullis.Testing;

namespace Portcullis.Protocol.Tests.Dnssec;

/// <summary>
/// A zone signed by a real signer in a temporary directory: keys made by <c>dnssec-keygen</c> (BIND)
/// or <c>ldns-keygen</c>, signed by <c>dnssec-signzone</c> or <c>ldns-signzone</c> with a fixed
/// validity window, then read back with the Portcullis zone reader.
/// </summary>
public sealed class SignedZone : IDisposable
{
    /// <summary>Inception and expiration of every signature made here (RRSIG time format).</summary>
    public const string Inception = "20240101000000", Expiration = "20240201000000";
    public static readonly DateTimeOffset InsideWindow = new(2024, 1, 15, 12, 0, 0, TimeSpan.Zero);
    public static readonly DateTimeOffset InceptionInstant = new(2024, 1, 1, 0, 0, 0, TimeSpan.Zero);
    public static readonly DateTimeOffset ExpirationInstant = new(2024, 2, 1, 0, 0, 0, TimeSpan.Zero);

    /// <summary>Mixed case in owners and RDATA names (lowered for signing only for the types of RFC 4034 §6.2),
    /// an RRset of several records, a wildcard, a multi-string TXT, an out-of-zone NS target.</summary>
    public const string ZoneText = """
        $ORIGIN Example.Test.
        $TTL 3600
        @ SOA NS1.Example.Test. Hostmaster.Example.Test. 1 7200 3600 1209600 300
        @ NS NS1
        @ NS ns2.Other.Test.
        @ MX 10 Mail.Example.Test.
        NS1 A 192.0.2.1
        www A 192.0.2.2
        www A 192.0.2.3
        WWW AAAA 2001:db8::1
        *.wild A 192.0.2.9
        txt TXT "hello" "World"
        _SIP._tcp SRV 0 5 5060 SIP.Example.Test.

        """;

    public static readonly DnsName Origin = DnsName.Parse("example.test.");

    private SignedZone(string directory) => Directory = directory;

    public string Directory { get; }
    /// <summary>The key files (K*.key), KSK first.</summary>
    public List<string> KeyFiles { get; } = [];
    public string SignedPath => Path.Combine(Directory, "signed.zone");
    public List<ResourceRecord> Records { get; private set; } = [];

    public List<ResourceRecord> DnsKeys => Records.Where(r => r.Type == RecordType.DNSKEY).ToList();

    /// <summary>The RRsets other than RRSIG, keyed by owner and type.</summary>
    public Dictionary<(DnsName Owner, RecordType Type), List<ResourceRecord>> RRsets() =>
        Records.Where(r => r.Type != RecordType.RRSIG).GroupBy(r => (r.Owner, r.Type)).ToDictionary(g => g.Key, g => g.ToList());

    public IEnumerable<ResourceRecord> Signatures => Records.Where(r => r.Type == RecordType.RRSIG);

    /// <summary>KSK and ZSK from dnssec-keygen, signed by dnssec-signzone (NSEC, or NSEC3 with <paramref name="nsec3"/>).</summary>
    public static SignedZone Bind(string algorithm, string zoneText = ZoneText, bool nsec3 = false,
        string inception = Inception, string expiration = Expiration)
    {
        var zone = new SignedZone(System.IO.Directory.CreateTempSubdirectory("portcullis-dnssec-").FullName);
        try
        {
            foreach (string[] role in (string[][])[["-f", "KSK"], []])
            {
                var made = ExternalProcess.Run("dnssec-keygen", ["-q", "-K", zone.Directory, "-a", algorithm, .. role, "-n", "ZONE", "example.test"],
                    workingDirectory: zone.Directory).EnsureSuccess();
                zone.KeyFiles.Add(Path.Combine(zone.Directory, made.Stdout.Trim() + ".key"));
            }
            string unsigned = Path.Combine(zone.Directory, "example.test.zone");
            File.WriteAllText(unsigned, zoneText + string.Concat(zone.KeyFiles.Select(k => $"$INCLUDE {Path.GetFileName(k)}\n")));
            // -P: no post-signing check, which judges the window against the current time.
            string[] nsec3Args = nsec3 ? ["-3", "AB12", "-H", "0"] : [];
            ExternalProcess.Run("dnssec-signzone", ["-P", "-K", zone.Directory, "-o", "example.test", "-s", inception, "-e", expiration,
                .. nsec3Args, "-f", zone.SignedPath, unsigned], workingDirectory: zone.Directory).EnsureSuccess();
            zone.Load();
            return zone;
        }
        catch
        {
            zone.Dispose();
            throw;
        }
    }

    /// <summary>KSK and ZSK from ldns-keygen, signed by ldns-signzone with NSEC3 (ldns's own implementation, not BIND's).</summary>
    public static SignedZone Ldns(string algorithm, string zoneText = ZoneText)
    {
        var zone = new SignedZone(System.IO.Directory.CreateTempSubdirectory("portcullis-dnssec-").FullName);
        try
        {
            var bases = new List<string>();
            foreach (string[] role in (string[][])[["-k"], []])
            {
                var made = ExternalProcess.Run("ldns-keygen", ["-a", algorithm, .. role, "example.test"], workingDirectory: zone.Directory).EnsureSuccess();
                bases.Add(made.Stdout.Trim());
                zone.KeyFiles.Add(Path.Combine(zone.Directory, made.Stdout.Trim() + ".key"));
            }
            string unsigned = Path.Combine(zone.Directory, "example.test.zone");
            File.WriteAllText(unsigned, zoneText);
            ExternalProcess.Run("ldns-signzone", ["-n", "-s", "AB12", "-t", "0", "-i", Inception, "-e", Expiration, "-o", "example.test",
                "-f", zone.SignedPath, unsigned, .. bases], workingDirectory: zone.Directory).EnsureSuccess();
            zone.Load();
            return zone;
        }
        catch
        {
            zone.Dispose();
            throw;
        }
    }

    private void Load()
    {
        using var reader = ZoneReader.Open(SignedPath, Origin);
        Records = reader.ReadRecords().ToList();
    }

    /// <summary>The DNSKEY record of a key file (one record, absolute owner).</summary>
    public static ResourceRecord ReadKeyFile(string path)
    {
        // Key files carry no TTL.
        using var reader = ZoneReader.Open(path, Origin, new ZoneReaderOptions { DefaultTtl = 3600 });
        return reader.ReadRecords().Single(r => r.Type == RecordType.DNSKEY);
    }

    /// <summary>The key tag BIND put in the key file's name (K&lt;zone&gt;+&lt;alg&gt;+&lt;tag&gt;.key).</summary>
    public static ushort TagFromFileName(string path) =>
        ushort.Parse(Path.GetFileNameWithoutExtension(path).Split('+')[2], CultureInfo.InvariantCulture);

    public void Dispose()
    {
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
            // Left in the temp directory; harmless.
        }
    }
}
