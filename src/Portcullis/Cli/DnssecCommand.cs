using System.CommandLine;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Portcullis.Protocol.Dnssec;
using Portcullis.Protocol.Names;
using Portcullis.Protocol.ZoneText;
using Portcullis.Server.Dnssec;

namespace Portcullis.Cli;

/// <summary>
/// `portcullis dnssec keygen|sign|ds`: offline DNSSEC as dnssec-keygen, dnssec-signzone and
/// dnssec-dsfromkey do it, with key files in BIND's K&lt;zone&gt;+&lt;alg&gt;+&lt;tag&gt; format so
/// that either side's tools read the other's keys. `ds-seen`, `ds-withdrawn` and `keys` work on
/// the key states of automatic key management (<see cref="ZoneKeys"/>), as `knotc zone-ksk-submitted`
/// and `keymgr list` do; the running server reads the states again on reload.
/// </summary>
public static class DnssecCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var keygenZone = new Argument<string>("ZONE") { Description = "The zone the key is for, e.g. example.com." };
        var algorithm = new Option<string>("--algorithm", "-a")
        {
            Description = "ecdsap256sha256 (default), ecdsap384sha384, ed25519 or rsasha256.",
            DefaultValueFactory = _ => "ecdsap256sha256",
        };
        var ksk = new Option<bool>("--ksk") { Description = "A key-signing key (flags 257, the SEP bit)." };
        var keygenDir = new Option<string>("-K") { Description = "Directory for the key files (default: current).", DefaultValueFactory = _ => "." };
        var keygen = new Command("keygen", "Make a DNSSEC key pair; prints its base name.") { keygenZone, algorithm, ksk, keygenDir };
        keygen.SetAction(r => Keygen(r.GetValue(keygenZone)!, r.GetValue(algorithm)!, r.GetValue(ksk), r.GetValue(keygenDir)!, stdout, stderr));

        var zoneFile = new Argument<string>("ZONEFILE") { Description = "The unsigned zone file." };
        var origin = new Option<string>("--origin", "-o") { Description = "The zone's name.", Required = true };
        var signDir = new Option<string>("-K") { Description = "Directory holding the zone's keys (default: current).", DefaultValueFactory = _ => "." };
        var nsec3 = new Option<bool>("--nsec3") { Description = "NSEC3 (RFC 5155) with RFC 9276 parameters instead of NSEC." };
        var days = new Option<int>("-e") { Description = "Signature validity in days (default 14).", DefaultValueFactory = _ => 14 };
        var output = new Option<string?>("-f") { Description = "Output file (default: ZONEFILE.signed)." };
        var zonemd = new Option<bool>("--zonemd") { Description = "Add a SHA-384 ZONEMD zone digest (RFC 8976) at the apex." };
        var sign = new Command("sign", "Sign a zone file with every key for the zone; prints the DS of each KSK.") { zoneFile, origin, signDir, nsec3, days, output, zonemd };
        sign.SetAction(r => Sign(r.GetValue(zoneFile)!, r.GetValue(origin)!, r.GetValue(signDir)!, r.GetValue(nsec3), r.GetValue(days),
            r.GetValue(output), stdout, stderr, r.GetValue(zonemd)));

        var keyFile = new Argument<string>("KEYFILE") { Description = "A .key file (or its base name)." };
        var ds = new Command("ds", "Print the DS (SHA-256) of a key for the parent zone.") { keyFile };
        ds.SetAction(r => Ds(r.GetValue(keyFile)!, stdout, stderr));

        var seenZone = new Argument<string>("ZONE") { Description = "The zone, e.g. example.com." };
        var seenTag = new Argument<string>("KEYTAG") { Description = "The key tag of the KSK (or CSK) whose DS the parent now publishes." };
        var seenDir = new Option<string>("-K") { Description = "The zone's key directory (default: current).", DefaultValueFactory = _ => "." };
        var dsSeen = new Command("ds-seen", "The parent now publishes this key's DS: a KSK rollover waiting for it moves on.") { seenZone, seenTag, seenDir };
        dsSeen.SetAction(r => DsChange(r.GetValue(seenZone)!, r.GetValue(seenTag)!, r.GetValue(seenDir)!, withdrawn: false, stdout, stderr));

        var goneZone = new Argument<string>("ZONE") { Description = "The zone, e.g. example.com." };
        var goneTag = new Argument<string>("KEYTAG") { Description = "The key tag of the old KSK (or CSK) whose DS the parent no longer publishes." };
        var goneDir = new Option<string>("-K") { Description = "The zone's key directory (default: current).", DefaultValueFactory = _ => "." };
        var dsWithdrawn = new Command("ds-withdrawn", "The parent no longer publishes this key's DS: the old key of a KSK rollover is removed.") { goneZone, goneTag, goneDir };
        dsWithdrawn.SetAction(r => DsChange(r.GetValue(goneZone)!, r.GetValue(goneTag)!, r.GetValue(goneDir)!, withdrawn: true, stdout, stderr));

        var keysZone = new Argument<string>("ZONE") { Description = "The zone, e.g. example.com." };
        var keysDir = new Option<string>("-K") { Description = "The zone's key directory (default: current).", DefaultValueFactory = _ => "." };
        var keys = new Command("keys", "List the zone's keys: role, state, DS at the parent, what each does, the next step.") { keysZone, keysDir };
        keys.SetAction(r => Keys(r.GetValue(keysZone)!, r.GetValue(keysDir)!, stdout, stderr));

        return new Command("dnssec", "DNSSEC keys, offline signing and key states.") { keygen, sign, ds, dsSeen, dsWithdrawn, keys };
    }

    public static int Keygen(string zoneText, string algorithmText, bool ksk, string directory, TextWriter stdout, TextWriter stderr)
    {
        if (!TryZone(zoneText, out var zone, stderr)) return CommandLine.UsageError;
        DnssecAlgorithm? algorithm = algorithmText.ToLowerInvariant() switch
        {
            "ecdsap256sha256" or "13" => DnssecAlgorithm.EcdsaP256Sha256,
            "ecdsap384sha384" or "14" => DnssecAlgorithm.EcdsaP384Sha384,
            "ed25519" or "15" => DnssecAlgorithm.Ed25519,
            "rsasha256" or "8" => DnssecAlgorithm.RsaSha256,
            _ => null,
        };
        if (algorithm is null)
            return Fail(stderr, $"-a {algorithmText}: not one of ecdsap256sha256, ecdsap384sha384, ed25519, rsasha256", CommandLine.UsageError);
        if (!Directory.Exists(directory)) return Fail(stderr, $"-K {directory}: no such directory", CommandLine.UsageError);
        using var key = DnssecPrivateKey.Generate(zone!, algorithm.Value, ksk);
        try
        {
            string basePath = DnssecKeyFile.Write(directory, key, DateTimeOffset.UtcNow);
            stdout.WriteLine(Path.GetFileName(basePath));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return Fail(stderr, $"cannot write the key files: {e.Message}", CommandLine.Problems);
        }
        return CommandLine.Success;
    }

    public static int Sign(string path, string originText, string directory, bool nsec3, int days, string? outPath, TextWriter stdout, TextWriter stderr,
        bool zonemd = false)
    {
        if (!TryZone(originText, out var zone, stderr)) return CommandLine.UsageError;
        if (days <= 0) return Fail(stderr, $"-e {days}: the validity must be at least one day", CommandLine.UsageError);
        if (!File.Exists(path)) return Fail(stderr, $"{path}: no such file", CommandLine.Problems);
        if (!Directory.Exists(directory)) return Fail(stderr, $"-K {directory}: no such directory", CommandLine.Problems);
        var keys = new List<DnssecPrivateKey>();
        try
        {
            foreach (string basePath in DnssecKeyFile.Find(directory, zone!)) keys.Add(DnssecKeyFile.Read(basePath));
            if (keys.Count == 0) return Fail(stderr, $"no keys for {zone} in {directory}", CommandLine.Problems);

            var result = ZoneChecker.Check(path, zone!);
            if (!result.Ok)
            {
                var first = result.Errors[0];
                return Fail(stderr, $"{path}: the zone has {result.Errors.Count} error(s), first: {(first.Line > 0 ? first.Message : first.Problem)}",
                    CommandLine.Problems);
            }
            var signed = ZoneSigner.Sign(zone!, result.Records, keys, DateTimeOffset.UtcNow,
                new ZoneSigningOptions { Nsec3 = nsec3, Validity = TimeSpan.FromDays(days), ZonemdHashAlgorithm = zonemd ? Zonemd.Sha384 : (byte)0 });
            string target = outPath ?? path + ".signed";
            using (var writer = new StreamWriter(target, false, new System.Text.UTF8Encoding(false)))
                ZoneWriter.Write(writer, signed);
            foreach (var key in keys)
                if (key.IsKsk) stdout.WriteLine(DnssecSigner.DsText(key.Zone, key.DnskeyRdata));
            return CommandLine.Success;
        }
        catch (Exception e) when (e is FormatException or IOException or UnauthorizedAccessException or CryptographicException or ArgumentException)
        {
            return Fail(stderr, e.Message, CommandLine.Problems);
        }
        finally
        {
            foreach (var key in keys) key.Dispose();
        }
    }

    public static int Ds(string path, TextWriter stdout, TextWriter stderr)
    {
        try
        {
            var (owner, rdata) = DnssecKeyFile.ReadPublic(path);
            if (!DnsKey.IsWellFormed(rdata)) return Fail(stderr, $"{path}: not a DNSKEY", CommandLine.Problems);
            stdout.WriteLine(DnssecSigner.DsText(owner, rdata));
            return CommandLine.Success;
        }
        catch (Exception e) when (e is FormatException or IOException or UnauthorizedAccessException or ArgumentException)
        {
            return Fail(stderr, e.Message, CommandLine.Problems);
        }
    }

    /// <summary>`ds-seen` (<paramref name="withdrawn"/> false) and `ds-withdrawn`: record what the parent holds, print the key's line.</summary>
    public static int DsChange(string zoneText, string tagText, string directory, bool withdrawn, TextWriter stdout, TextWriter stderr)
    {
        if (!TryZone(zoneText, out var zone, stderr)) return CommandLine.UsageError;
        if (!ushort.TryParse(tagText, NumberStyles.None, CultureInfo.InvariantCulture, out ushort tag))
            return Fail(stderr, $"'{tagText}': not a key tag (0 to 65535)", CommandLine.UsageError);
        if (!Directory.Exists(directory)) return Fail(stderr, $"-K {directory}: no such directory", CommandLine.Problems);
        try
        {
            using var zoneKeys = ZoneKeys.OpenForTools(zone!, directory, TimeProvider.System);
            if (withdrawn) zoneKeys.DsWithdrawn(tag); else zoneKeys.DsSeen(tag);
            foreach (var status in zoneKeys.Status)
                if (status.KeyTag == tag) stdout.WriteLine(Describe(status));
            return CommandLine.Success;
        }
        catch (Exception e) when (e is ArgumentException or FormatException or IOException or UnauthorizedAccessException or CryptographicException)
        {
            return Fail(stderr, e.Message, CommandLine.Problems);
        }
    }

    /// <summary>`keys`: one line per key, live keys first.</summary>
    public static int Keys(string zoneText, string directory, TextWriter stdout, TextWriter stderr)
    {
        if (!TryZone(zoneText, out var zone, stderr)) return CommandLine.UsageError;
        if (!Directory.Exists(directory)) return Fail(stderr, $"-K {directory}: no such directory", CommandLine.Problems);
        try
        {
            using var zoneKeys = ZoneKeys.OpenForTools(zone!, directory, TimeProvider.System);
            var status = zoneKeys.Status;
            if (status.Count == 0) return Fail(stderr, $"no keys for {zone} in {directory}", CommandLine.Problems);
            stdout.WriteLine($"{"TAG",-6} {"ROLE",-4} {"ALGORITHM",-16} {"STATE",-19} {"DS",-19} {"DNSKEY",-6} {"SIGNS",-5} {"CDS",-3} {"NEXT STEP",-20} WAITING FOR");
            foreach (var s in status)
            {
                string signs = s.SignsKeys && s.SignsZone ? "all" : s.SignsKeys ? "keys" : s.SignsZone ? "zone" : "-";
                stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{s.KeyTag,-6} {KeyStates.ToText(s.Role),-4} {DnssecAlgorithms.ToText(s.Algorithm),-16} {KeyStates.ToText(s.State),-19} {KeyStates.ToText(s.Ds),-19} {(s.Published ? "yes" : "no"),-6} {signs,-5} {(s.InCds ? "yes" : "no"),-3} {Time(s.NextTransition),-20} {s.Waiting}").TrimEnd());
            }
            return CommandLine.Success;
        }
        catch (Exception e) when (e is FormatException or IOException or UnauthorizedAccessException or CryptographicException)
        {
            return Fail(stderr, e.Message, CommandLine.Problems);
        }
    }

    private static string Describe(KeyStatus s)
    {
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"{KeyStates.ToText(s.Role)} {s.KeyTag}: {KeyStates.ToText(s.State)}, DS {KeyStates.ToText(s.Ds)}");
        if (s.NextTransition is { } next) sb.Append(CultureInfo.InvariantCulture, $", next step at {Time(next)}");
        if (s.Waiting.Length > 0) sb.Append(", waiting for ").Append(s.Waiting);
        return sb.ToString();
    }

    private static string Time(DateTimeOffset? t) =>
        t is { } v ? v.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture) : "-";

    private static bool TryZone(string text, out DnsName? zone, TextWriter stderr)
    {
        if (DnsName.TryParse(text.EndsWith('.') ? text : text + ".", null, out zone, out string? error)) return true;
        stderr.WriteLine($"portcullis: '{text}': not a zone name{(error is null ? "" : ": " + error)}");
        return false;
    }

    private static int Fail(TextWriter stderr, string message, int code)
    {
        stderr.WriteLine($"portcullis: {message}");
        return code;
    }
}
