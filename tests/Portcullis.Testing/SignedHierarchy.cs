using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;

namespace Portcullis.Testing;

/// <summary>
/// A DNSSEC-signed DNS hierarchy for validation tests (issue 11), built offline by each test in its
/// own temporary directory: keys made with <c>dnssec-keygen</c>, zones signed with <c>dnssec-signzone</c>
/// (and <c>ldns-signzone</c> where BIND refuses: NSEC3 above 150 iterations, the KeyTrap zone), some
/// zones broken on purpose after signing, served by NSD on port 53 of 127.55.N.0/24 (N from a
/// process-wide counter; 127.53/16 is <see cref="DnsHierarchy"/>, 127.54/16 the resolver tests).
/// Nothing is cached between runs. Dispose stops every NSD and removes the directory.
/// </summary>
/// <remarks>
/// <para>Servers (x = host part of 127.55.N.x):</para>
/// <list type="bullet">
/// <item>.1 "." (KSK + ZSK, NSEC): its KSK is the trust anchor (<see cref="TrustAnchorFile"/>, a DS;
/// <see cref="TrustAnchorKeyFile"/>, the DNSKEY); root hints ns.root-servers.test. A .1 (<see cref="RootHintsFile"/>).</item>
/// <item>.2 "test." (one key, NSEC): delegations with DS to every signed second-level zone, without DS to
/// insecure.test.</item>
/// <item>.3 every second-level zone (<see cref="ZoneAddresses"/>; docs/validation-testbed.md), .4 the grandchildren sub.secure-nsec.test.
/// (signed, DS in secure-nsec.test.) and unsigned.optout.test. (no DS, under the opt-out zone).</item>
/// <item>.200 is left for the resolver under test (<see cref="ResolverAddress"/>).</item>
/// </list>
/// <para>Keys: one ECDSAP256SHA256 key signs most second-level zones (a key may sign several zones
/// without changing any scenario); ed.test has ED25519, rsa.test RSASHA256, and the KeyTrap zone has
/// that RSA key as its KSK and its modulus in the colliding keys. Answers are 192.0.2.x so that <see cref="Scenarios"/> need not know N.</para>
/// </remarks>
public sealed class SignedHierarchy : LoopbackHierarchy
{
    /// <summary>KeyTrap zone: DNSKEYs sharing one key tag (besides the zone's real KSK, which has another).</summary>
    public const int KeyTrapKeys = 100;

    /// <summary>KeyTrap zone: forged RRSIGs over www.keytrap.test A, all claiming that key tag.</summary>
    public const int KeyTrapSignatures = 100;

    /// <summary>NSEC3 iterations of iter.test (RFC 9276 §3.1 asks for 0; Unbound 1.17 treats more than 150 as insecure).</summary>
    public const int ManyIterations = 500;

    private static int _lastSubnet;
    private readonly Dictionary<string, IPAddress> _zoneAddresses = [];

    public SignedHierarchy() : base(55, ref _lastSubnet, "portcullis-signed-") => Start(() =>
    {
        var clock = Stopwatch.StartNew();
        var signed = Build();
        BuildTime = clock.Elapsed;
        clock.Restart();
        Serve(signed);
        StartTime = clock.Elapsed;
    });

    /// <summary>For looking at the zones after a run: PORTCULLIS_KEEP_SIGNED_HIERARCHY=1 keeps the directory.</summary>
    protected override bool KeepDirectory => Environment.GetEnvironmentVariable("PORTCULLIS_KEEP_SIGNED_HIERARCHY") == "1";


    /// <summary>The root KSK's DS in zone-file syntax (Unbound's <c>trust-anchor-file</c>, BIND's <c>trust-anchors</c> as initial-ds).</summary>
    public string TrustAnchorFile => Path.Combine(Directory, "root.ds");

    /// <summary>The root KSK's DNSKEY in zone-file syntax.</summary>
    public string TrustAnchorKeyFile => Path.Combine(Directory, "root.key");

    /// <summary>". 300 IN DS tag 13 2 hex": the same anchor as text.</summary>
    public string TrustAnchorDs { get; private set; } = "";

    public string TrustAnchorDnskey { get; private set; } = "";

    /// <summary>The address (port 53) that serves each zone, by origin ("." , "test.", "secure-nsec.test.", ...).</summary>
    public IReadOnlyDictionary<string, IPAddress> ZoneAddresses => _zoneAddresses;

    /// <summary>The zone text NSD serves for <paramref name="origin"/> (signed, and edited where the zone is broken on purpose).</summary>
    public string ServedZoneFile(string origin) => Path.Combine(Directory, (origin == "." ? "root" : origin.TrimEnd('.')) + ".served");

    /// <summary>Key generation and signing (no servers).</summary>
    public TimeSpan BuildTime { get; private set; }

    /// <summary>The key most second-level zones are signed with (secure-nsec.test, bad-sig.test, ...): tests forge with it.</summary>
    public SignedKey SecondLevelKey { get; private set; } = null!;

    /// <summary>The part of <see cref="BuildTime"/> spent making keys.</summary>
    public TimeSpan KeygenTime { get; private set; }

    /// <summary>Starting the NSDs until every zone answers.</summary>
    public TimeSpan StartTime { get; private set; }


    // ---- Zones ----

    /// <summary>How a zone is signed.</summary>
    private enum Signing { None, Nsec, Nsec3, Nsec3OptOut, Nsec3ManyIterations, KeyTrap }

    /// <summary>One zone: where it is served, how it is signed, its records (relative to nothing: absolute names) and an edit after signing.</summary>
    private sealed record ZoneSpec(string Origin, int Host, Signing Signing, string Records)
    {
        public SignedKey? Key { get; init; }
        public (DateTime Inception, DateTime Expiration)? Window { get; init; }
        public Func<string, string>? Edit { get; init; }
    }

    private sealed record Keys(SignedKey RootKsk, SignedKey RootZsk, SignedKey Tld, SignedKey Sld, SignedKey Stray, SignedKey Ed, SignedKey Rsa, SignedKey Sha1);

    private Keys MakeKeys()
    {
        string dir = System.IO.Directory.CreateDirectory(Path.Combine(Directory, "keygen")).FullName;
        // Independent processes: run them side by side (RSA takes the longest).
        var rsa = Task.Run(() => SignedKey.Generate(dir, "RSASHA256", ksk: true, bits: 2048));
        var ed = Task.Run(() => SignedKey.Generate(dir, "ED25519", ksk: true));
        var sha1 = Task.Run(() => SignedKey.Generate(dir, "RSASHA1", ksk: true, bits: 2048));
        var ecdsa = Enumerable.Range(0, 5).Select(i => Task.Run(() => SignedKey.Generate(dir, "ECDSAP256SHA256", ksk: i != 1))).ToArray();
        Task.WaitAll([rsa, ed, sha1, .. ecdsa], TimeSpan.FromSeconds(60));
        return new Keys(ecdsa[0].Result, ecdsa[1].Result, ecdsa[2].Result, ecdsa[3].Result, ecdsa[4].Result, ed.Result, rsa.Result, sha1.Result);
    }

    private static string Soa(string origin) =>
        $"$TTL 300\n{origin} 300 IN SOA ns.{(origin == "." ? "root-servers.test." : origin)} hostmaster.{(origin == "." ? "root-servers.test." : origin)} 1 3600 600 86400 300\n";

    private Dictionary<string, ZoneSpec> Specs(Keys k, DateTime now)
    {
        string a(int host) => Address(host).ToString();
        // A plain second-level zone: SOA, NS ns.<origin> (glue in the parent), www A.
        string Sld(string origin, int host, string www, string more = "") =>
            Soa(origin) + $"{origin} NS ns.{origin}\nns.{origin} A {a(host)}\nwww.{origin} A {www}\n{more}";
        var specs = new List<ZoneSpec>
        {
            new("secure-nsec.test.", 3, Signing.Nsec, Sld("secure-nsec.test.", 3, "192.0.2.1",
                $"sub.secure-nsec.test. NS ns.sub.secure-nsec.test.\nns.sub.secure-nsec.test. A {a(4)}\n{k.Sld.DsLine("sub.secure-nsec.test.")}\n"
                + "alias.secure-nsec.test. CNAME www.secure-nsec3.test.\nout.secure-nsec.test. CNAME www.insecure.test.\n"
                + "dname.secure-nsec.test. DNAME secure-nsec3.test.\n"
                + $"plain.secure-nsec.test. NS ns.plain.secure-nsec.test.\nns.plain.secure-nsec.test. A {a(3)}\n")),
            // An unsigned child served by the same server as its signed parent (co-hosted).
            new("plain.secure-nsec.test.", 3, Signing.None, Sld("plain.secure-nsec.test.", 3, "192.0.2.25")),
            new("secure-nsec3.test.", 3, Signing.Nsec3, Sld("secure-nsec3.test.", 3, "192.0.2.2")),
            new("optout.test.", 3, Signing.Nsec3OptOut, Sld("optout.test.", 3, "192.0.2.3",
                $"unsigned.optout.test. NS ns.unsigned.optout.test.\nns.unsigned.optout.test. A {a(4)}\n")),
            new("unsigned.optout.test.", 4, Signing.None, Sld("unsigned.optout.test.", 4, "192.0.2.4")),
            new("wild.test.", 3, Signing.Nsec, Sld("wild.test.", 3, "192.0.2.5", "*.wild.test. A 192.0.2.50\n")),
            new("ed.test.", 3, Signing.Nsec, Sld("ed.test.", 3, "192.0.2.6")) { Key = k.Ed },
            new("rsa.test.", 3, Signing.Nsec, Sld("rsa.test.", 3, "192.0.2.7")) { Key = k.Rsa },
            new("sha1.test.", 3, Signing.Nsec, Sld("sha1.test.", 3, "192.0.2.24")) { Key = k.Sha1 },
            new("sub.secure-nsec.test.", 4, Signing.Nsec, Sld("sub.secure-nsec.test.", 4, "192.0.2.8")),
            new("insecure.test.", 3, Signing.None, Sld("insecure.test.", 3, "192.0.2.9")),
            new("iter.test.", 3, Signing.Nsec3ManyIterations, Sld("iter.test.", 3, "192.0.2.21")),
            new("expired.test.", 3, Signing.Nsec, Sld("expired.test.", 3, "192.0.2.10"))
                { Window = (now.AddDays(-40), now.AddDays(-5)) },
            new("notyet.test.", 3, Signing.Nsec, Sld("notyet.test.", 3, "192.0.2.11"))
                { Window = (now.AddDays(5), now.AddDays(40)) },
            new("wrong-ds.test.", 3, Signing.Nsec, Sld("wrong-ds.test.", 3, "192.0.2.12")),
            new("no-dnskey.test.", 3, Signing.Nsec, Sld("no-dnskey.test.", 3, "192.0.2.13")),
            new("dnskey-absent.test.", 3, Signing.Nsec, Sld("dnskey-absent.test.", 3, "192.0.2.22"))
            {
                // The DS names a key, but the zone serves no DNSKEY RRset at all.
                Edit = z => SignedZoneEdits.Remove(z, (_, type, covered) => type == "DNSKEY" || covered == "DNSKEY"),
            },
            new("bad-sig.test.", 3, Signing.Nsec, Sld("bad-sig.test.", 3, "192.0.2.14"))
            {
                // The data changed after signing: the RRSIG no longer matches.
                Edit = z => SignedZoneEdits.ReplaceRdata(z, "www.bad-sig.test.", "A", "192.0.2.114"),
            },
            new("rrsig-missing.test.", 3, Signing.Nsec, Sld("rrsig-missing.test.", 3, "192.0.2.15"))
            {
                Edit = z => SignedZoneEdits.Remove(z, (owner, _, covered) => owner == "www.rrsig-missing.test." && covered == "A"),
            },
            new("bad-nsec3.test.", 3, Signing.Nsec3, Sld("bad-nsec3.test.", 3, "192.0.2.16", "www.bad-nsec3.test. TXT \"removed after signing\"\n"))
            {
                // www TXT removed after signing, its NSEC3 kept: the NODATA for TXT comes with a validly signed
                // NSEC3 whose type bitmap says TXT exists, so the denial fails. (Deleting the NSEC3 instead, or
                // keeping the NSEC3 of a removed name, makes NSD omit the proof or answer SERVFAIL itself.)
                Edit = z => SignedZoneEdits.Remove(z, (owner, type, covered) => owner == "www.bad-nsec3.test." && (type == "TXT" || covered == "TXT")),
            },
            new("nsec3-missing.test.", 3, Signing.Nsec3, Sld("nsec3-missing.test.", 3, "192.0.2.23"))
            {
                // The NSEC3 that covers H(nx.nsec3-missing.test) is deleted: NSD's NXDOMAIN then lacks the next-closer proof.
                Edit = z => SignedZoneEdits.DeleteCoveringNsec3(z, "nx.nsec3-missing.test.", "nsec3-missing.test.").Zone,
            },
            new("bad-nsec.test.", 3, Signing.Nsec, Sld("bad-nsec.test.", 3, "192.0.2.17"))
            {
                // Every NSEC gone: negative answers come with SOA and its RRSIG only.
                Edit = z => SignedZoneEdits.Remove(z, (_, type, covered) => type == "NSEC" || covered == "NSEC"),
            },
            new("unsupported-alg.test.", 3, Signing.None,
                Sld("unsupported-alg.test.", 3, "192.0.2.18", UnsupportedAlgorithmKey.DnskeyLine("unsupported-alg.test.") + "\n")),
            new("unsupported-digest.test.", 3, Signing.Nsec, Sld("unsupported-digest.test.", 3, "192.0.2.19")),
            new("keytrap.test.", 3, Signing.KeyTrap, Sld("keytrap.test.", 3, "192.0.2.20")) { Key = k.Rsa },
        };
        return specs.ToDictionary(s => s.Origin);
    }

    /// <summary>
    /// A DNSKEY of algorithm 253 (PRIVATEDNS, RFC 4034 Appendix A.1.1: the key begins with the wire name of
    /// the private algorithm): no resolver implements it, so a zone whose DS RRset names only it is insecure
    /// (RFC 4035 §5.2, RFC 6840 §5.2).
    /// </summary>
    private static readonly SignedKey UnsupportedAlgorithmKey =
        new(257, 253, [.. HierarchyWire.Name("alg.portcullis.test."), .. Enumerable.Range(1, 32).Select(i => (byte)(i * 37))], "");

    /// <summary>Makes keys, writes every zone and signs it; returns the zone texts to serve, by origin.</summary>
    private Dictionary<string, string> Build()
    {
        var clock = Stopwatch.StartNew();
        var keys = MakeKeys();
        SecondLevelKey = keys.Sld;
        KeygenTime = clock.Elapsed;
        var now = DateTime.UtcNow;
        var specs = Specs(keys, now);
        SignedKey KeyOf(ZoneSpec s) => s.Key ?? keys.Sld;

        // Parent-side records: DS from the child's key, computed here (no need to sign the child first).
        string Ds(string child) => child switch
        {
            "insecure.test." or "unsigned.optout.test." => "",
            "wrong-ds.test." => WrongDigest(KeyOf(specs[child]).DsLine(child)),
            "no-dnskey.test." => keys.Stray.DsLine(child),                  // a key the zone never publishes
            "unsupported-alg.test." => UnsupportedAlgorithmKey.DsLine(child),
            "unsupported-digest.test." => UnsupportedDigest(KeyOf(specs[child]).DsLine(child)),
            _ => KeyOf(specs[child]).DsLine(child),
        };
        string a(int host) => Address(host).ToString();
        var test = new StringBuilder(Soa("test.") + $"test. NS ns.nic.test.\nns.nic.test. A {a(2)}\nns.root-servers.test. A {a(1)}\n");
        foreach (var s in specs.Values.Where(s => s.Origin.Count(c => c == '.') == 2))
            test.Append($"{s.Origin} NS ns.{s.Origin}\nns.{s.Origin} A {a(s.Host)}\n{Ds(s.Origin)}\n");
        string root = Soa(".") + $". NS ns.root-servers.test.\nns.root-servers.test. A {a(1)}\ntest. NS ns.nic.test.\nns.nic.test. A {a(2)}\n"
            + keys.Tld.DsLine("test.") + "\n";

        TrustAnchorDs = keys.RootKsk.DsLine(".");
        TrustAnchorDnskey = keys.RootKsk.DnskeyLine(".");
        File.WriteAllText(TrustAnchorFile, TrustAnchorDs + "\n");
        File.WriteAllText(TrustAnchorKeyFile, TrustAnchorDnskey + "\n");
        File.WriteAllText(RootHintsFile, $". 3600000 NS ns.root-servers.test.\nns.root-servers.test. 3600000 A {a(1)}\n");

        var jobs = new List<(string Origin, int Host, Func<string> Sign)>
        {
            (".", 1, () => SignWithBind(".", root, [keys.RootKsk, keys.RootZsk], Signing.Nsec, null, verify: true)),
            ("test.", 2, () => SignWithBind("test.", test.ToString(), [keys.Tld], Signing.Nsec, null, verify: true)),
        };
        foreach (var s in specs.Values) jobs.Add((s.Origin, s.Host, () => Sign(s, KeyOf(s))));
        // Two cores: a few signers at a time keep both busy while others wait on process start-up.
        var results = new string[jobs.Count];
        Parallel.For(0, jobs.Count, new ParallelOptions { MaxDegreeOfParallelism = 4 }, i => results[i] = jobs[i].Sign());
        var texts = new Dictionary<string, string>();
        for (int i = 0; i < jobs.Count; i++)
        {
            texts[jobs[i].Origin] = results[i];
            _zoneAddresses[jobs[i].Origin] = Address(jobs[i].Host);
            File.WriteAllText(ServedZoneFile(jobs[i].Origin), results[i]);
        }
        return texts;
    }

    /// <summary>The DS with its digest's last octet changed: right key tag and algorithm, matches no key.</summary>
    private static string WrongDigest(string ds)
    {
        char last = ds[^1];
        return ds[..^1] + (last == '0' ? '1' : '0');
    }

    /// <summary>The DS with digest type 200 (unassigned, RFC 4509 §3: a DS RRset with only unknown digest types makes the zone insecure).</summary>
    private static string UnsupportedDigest(string ds)
    {
        var f = ds.Split(' ');
        f[6] = "200";
        return string.Join(' ', f);
    }

    private string Sign(ZoneSpec s, SignedKey key)
    {
        string signed = s.Signing switch
        {
            Signing.None => s.Records,
            Signing.Nsec3ManyIterations or Signing.KeyTrap => SignWithLdns(s, key),
            _ => SignWithBind(s.Origin, s.Records, [key], s.Signing, s.Window, verify: s.Edit is null && s.Window is null),
        };
        return s.Edit is { } edit ? edit(signed) : signed;
    }

    private string WorkDirectory(string origin) =>
        System.IO.Directory.CreateDirectory(Path.Combine(Directory, "sign", origin == "." ? "root" : origin.TrimEnd('.'))).FullName;

    /// <summary>
    /// <c>dnssec-signzone</c>: the zone file holds the DNSKEYs, the private keys are in its directory.
    /// One key signs everything (<c>-z</c>) unless the zone has a KSK and a ZSK. NSEC3 per RFC 9276:
    /// no salt, no extra iterations. <c>-P</c> skips BIND's own check where the zone is broken on purpose.
    /// </summary>
    private string SignWithBind(string origin, string records, SignedKey[] keys, Signing signing, (DateTime, DateTime)? window, bool verify)
    {
        string dir = WorkDirectory(origin);
        string file = Path.Combine(dir, "zone"), output = Path.Combine(dir, "zone.signed");
        File.WriteAllText(file, records + string.Join("", keys.Select(k => k.DnskeyLine(origin) + "\n")));
        foreach (var k in keys) k.PlaceFor(origin, dir);
        List<string> args = ["-q", "-O", "full", "-K", dir, "-d", dir, "-o", origin, "-f", output];
        if (keys.Length == 1) args.Add("-z");
        if (!verify) args.Add("-P");
        if (signing is Signing.Nsec3 or Signing.Nsec3OptOut) args.AddRange(["-3", "-", "-H", "0"]);
        if (signing is Signing.Nsec3OptOut) args.Add("-A");
        if (window is var (inception, expiration)) args.AddRange(["-s", Stamp(inception), "-e", Stamp(expiration)]);
        args.Add(file);
        ExternalProcess.Run("dnssec-signzone", args, workingDirectory: dir).EnsureSuccess();
        return File.ReadAllText(output);
    }

    private static string Stamp(DateTime t) => t.ToString("yyyyMMddHHmmss", CultureInfo.InvariantCulture);

    /// <summary>
    /// <c>ldns-signzone</c> (NSEC3 with <see cref="ManyIterations"/>, which dnssec-signzone 9.18 refuses
    /// above 150; and the KeyTrap zone, whose colliding key tags would make dnssec-signzone look for
    /// private keys it has not got: ldns signs with exactly the key it is given).
    /// </summary>
    private string SignWithLdns(ZoneSpec s, SignedKey key)
    {
        string dir = WorkDirectory(s.Origin);
        string file = Path.Combine(dir, "zone"), output = Path.Combine(dir, "zone.signed");
        var text = new StringBuilder(s.Records).Append(key.DnskeyLine(s.Origin)).Append('\n');
        // KeyTrap: the DS-matched KSK signs the DNSKEY RRset honestly; the trap is www A, whose forged RRSIGs
        // name a tag that many other keys share (keys x signatures verifications for a validator without limits).
        int trapTag = KeyTrapTag(key);
        if (s.Signing == Signing.KeyTrap)
            foreach (var colliding in DnssecMath.CollidingRsaKeys(key, KeyTrapKeys, trapTag))
                text.Append($"{s.Origin} 300 IN DNSKEY 256 3 {key.Algorithm} {Convert.ToBase64String(colliding)}\n");
        File.WriteAllText(file, text.ToString());
        string basename = key.PlaceFor(s.Origin, dir);
        List<string> args = ["-f", output, "-o", s.Origin];
        if (s.Signing == Signing.Nsec3ManyIterations) args.AddRange(["-n", "-t", ManyIterations.ToString(CultureInfo.InvariantCulture)]);
        args.AddRange([file, basename]);
        ExternalProcess.Run("ldns-signzone", args, workingDirectory: dir).EnsureSuccess();
        string signed = File.ReadAllText(output);
        if (s.Signing == Signing.KeyTrap)
            signed = SignedZoneEdits.ForgeSignatures(signed, "www." + s.Origin, "A", KeyTrapSignatures, trapTag, DnssecMath.RsaModulus(key.PublicKey));
        return signed;
    }

    /// <summary>The key tag the KeyTrap keys share: not the KSK's, so that the DNSKEY RRset itself validates.</summary>
    private static int KeyTrapTag(SignedKey ksk) => (ksk.KeyTag + 0x5555) & 0xFFFF;

    private void Serve(Dictionary<string, string> texts)
    {
        var byHost = texts.GroupBy(t => _zoneAddresses[t.Key]).ToList();
        var starting = byHost.Select(g => Task.Run(() =>
            new HierarchyNsd($"signed-{g.Key.GetAddressBytes()[3]}", g.Key, [.. g.Select(t => (t.Key, t.Value))]))).ToArray();
        try
        {
            // Every HierarchyNsd bounds its own waits; waiting for all lets Dispose stop every NSD that started.
            Task.WaitAll(starting);
        }
        catch (AggregateException)
        {
            // Reported below, after the ones that started are owned.
        }
        foreach (var t in starting)
            if (t.IsCompletedSuccessfully) Owned.Add(t.Result);
        if (starting.FirstOrDefault(t => !t.IsCompletedSuccessfully) is { } failed)
            throw failed.Exception!.InnerException!;
    }

    // ---- Scenarios ----

    /// <summary>
    /// The scenario table. Each row asks a name in a different zone, so rows are independent of order and
    /// of each other's cache entries. ExpectedEde is the RFC 8914 code a validator should attach to the
    /// SERVFAIL of a bogus row; for insecure rows it is the code RFC 8914 offers for an answer served
    /// insecure, which a resolver may or may not send (null: none).
    /// </summary>
    public static IReadOnlyList<ValidationScenario> Scenarios { get; } =
    [
        new("root", ".", "SOA", ValidationOutcome.Secure, null, "the trust anchor's own zone"),
        new("tld", "test.", "SOA", ValidationOutcome.Secure, null, "DS in the root, one key for test."),
        new("nsec-answer", "www.secure-nsec.test.", "A", ValidationOutcome.Secure, null, "ECDSAP256SHA256, NSEC") { Data = "192.0.2.1" },
        new("nsec-nxdomain", "nx.secure-nsec.test.", "A", ValidationOutcome.Secure, null, "NSEC proves the name and the wildcard absent")
            { Rcode = "NXDOMAIN" },
        new("nsec-nodata", "www.secure-nsec.test.", "TXT", ValidationOutcome.Secure, null, "NSEC at the name lacks TXT"),
        new("nsec3-answer", "www.secure-nsec3.test.", "A", ValidationOutcome.Secure, null, "NSEC3, no salt, 0 iterations") { Data = "192.0.2.2" },
        new("nsec3-nxdomain", "nx.secure-nsec3.test.", "A", ValidationOutcome.Secure, null, "closest encloser, next closer and wildcard proofs (RFC 5155 §8.4)")
            { Rcode = "NXDOMAIN" },
        new("nsec3-nodata", "www.secure-nsec3.test.", "TXT", ValidationOutcome.Secure, null, "matching NSEC3 lacks TXT (RFC 5155 §8.5)"),
        new("deep-chain", "www.sub.secure-nsec.test.", "A", ValidationOutcome.Secure, null, "root → test. → secure-nsec.test. → sub.secure-nsec.test.")
            { Data = "192.0.2.8" },
        new("cname-secure", "alias.secure-nsec.test.", "A", ValidationOutcome.Secure, null,
            "a signed CNAME into another signed zone: each link validated on its own zone's keys") { Data = "192.0.2.2" },
        new("cname-to-insecure", "out.secure-nsec.test.", "A", ValidationOutcome.Insecure, null,
            "a signed CNAME into an insecure delegation: the chain is only as secure as its weakest link") { Data = "192.0.2.9" },
        new("cohosted-insecure", "www.plain.secure-nsec.test.", "A", ValidationOutcome.Insecure, null,
            "an unsigned child (no DS, NSEC with NS) on the same server as its signed parent") { Data = "192.0.2.25" },
        new("dname", "www.dname.secure-nsec.test.", "A", ValidationOutcome.Secure, null,
            "a signed DNAME: the CNAME synthesised from it (RFC 6672), then the target's signed data") { Data = "192.0.2.2" },
        new("wildcard", "anything.wild.test.", "A", ValidationOutcome.Secure, null, "*.wild.test expanded: RRSIG labels 2 < 3, NSEC covers the next closer")
            { Data = "192.0.2.50" },
        new("wildcard-nodata", "anything.wild.test.", "AAAA", ValidationOutcome.Secure, null, "NSEC of *.wild.test lacks AAAA, another covers anything.wild.test"),
        new("ed25519", "www.ed.test.", "A", ValidationOutcome.Secure, null, "algorithm 15") { Data = "192.0.2.6" },
        new("rsasha256", "www.rsa.test.", "A", ValidationOutcome.Secure, null, "algorithm 8, 2048 bits") { Data = "192.0.2.7" },
        new("rsasha1", "www.sha1.test.", "A", ValidationOutcome.Secure, null, "algorithm 5 (RSASHA1, an old zone): secure unless the operator turns SHA-1 off")
            { Data = "192.0.2.24" },
        new("optout-signed", "www.optout.test.", "A", ValidationOutcome.Secure, null, "signed data in an NSEC3 opt-out zone") { Data = "192.0.2.3" },
        new("optout-delegation", "www.unsigned.optout.test.", "A", ValidationOutcome.Insecure, null,
            "unsigned delegation with no NSEC3 of its own: the opt-out NSEC3 covering it proves it insecure (RFC 5155 §8.9)") { Data = "192.0.2.4" },
        new("optout-nxdomain", "nx.optout.test.", "A", ValidationOutcome.Insecure, null,
            "the next closer is covered by an opt-out NSEC3: the name may exist below an unsigned delegation, not provably absent (RFC 5155 §9.2)")
            { Rcode = "NXDOMAIN" },
        new("insecure-delegation", "www.insecure.test.", "A", ValidationOutcome.Insecure, null, "test. proves with NSEC that insecure.test has no DS")
            { Data = "192.0.2.9" },
        new("nsec3-iterations", "nx.iter.test.", "A", ValidationOutcome.Insecure, 27,
            $"NSEC3 with {ManyIterations} iterations: RFC 9276 §3.2 lets a validator treat it as insecure (EDE 27) rather than hash that much")
            { Rcode = "NXDOMAIN" },
        new("unsupported-algorithm", "www.unsupported-alg.test.", "A", ValidationOutcome.Insecure, 1,
            "the only DS names algorithm 253 (PRIVATEDNS): insecure (RFC 4035 §5.2); EDE 1 optional") { Data = "192.0.2.18" },
        new("unsupported-digest", "www.unsupported-digest.test.", "A", ValidationOutcome.Insecure, 2,
            "the only DS has digest type 200: insecure (RFC 4509 §3, RFC 6840 §5.2); EDE 2 optional") { Data = "192.0.2.19" },
        new("expired", "www.expired.test.", "A", ValidationOutcome.Bogus, 7, "every RRSIG expired 5 days ago (beyond 1 day of clock-skew allowance)"),
        new("not-yet-valid", "www.notyet.test.", "A", ValidationOutcome.Bogus, 8, "every RRSIG's inception is 5 days ahead"),
        new("wrong-ds", "www.wrong-ds.test.", "A", ValidationOutcome.Bogus, 9, "DS with the right key tag and algorithm, wrong digest: no DNSKEY matches"),
        new("no-dnskey", "www.no-dnskey.test.", "A", ValidationOutcome.Bogus, 9, "DS for a key the zone does not publish; the zone is signed with another"),
        new("dnskey-absent", "www.dnskey-absent.test.", "A", ValidationOutcome.Bogus, 9, "DS present, the zone serves no DNSKEY RRset at all"),
        new("bad-signature", "www.bad-sig.test.", "A", ValidationOutcome.Bogus, 6, "www A changed after signing: the RRSIG does not verify"),
        new("rrsig-missing", "www.rrsig-missing.test.", "A", ValidationOutcome.Bogus, 10, "www A served without its RRSIG in a signed zone"),
        new("bad-nsec3-proof", "www.bad-nsec3.test.", "TXT", ValidationOutcome.Bogus, 6,
            "NODATA whose signed NSEC3 lists TXT in its type bitmap (the TXT was removed after signing): the denial fails"),
        new("nsec3-missing", "nx.nsec3-missing.test.", "A", ValidationOutcome.Bogus, 6,
            "the NSEC3 covering nx was deleted: NXDOMAIN with the closest encloser's NSEC3 but nothing covering the next closer name"),
        new("nsec-missing", "nx.bad-nsec.test.", "A", ValidationOutcome.Bogus, 12, "NXDOMAIN with SOA but no NSEC at all"),
        new("keytrap", "www.keytrap.test.", "A", ValidationOutcome.Bogus, 6,
            $"{KeyTrapKeys + 1} DNSKEYs with one key tag, {KeyTrapSignatures} forged RRSIGs claiming it (CVE-2023-50387): SERVFAIL, in bounded time")
            { WaitSeconds = 120 },
        new("keytrap-dnskey", "keytrap.test.", "DNSKEY", ValidationOutcome.Secure, null,
            "the trap is www A alone: the DNSKEY RRset (the KSK and the colliding keys) is honestly signed by the KSK the DS names"),
    ];

    /// <summary>Asks <paramref name="resolver"/> with dig (RD, DO, one try) and parses RCODE, AD, EDE and the answer.</summary>
    public static ValidationResult Run(IPEndPoint resolver, ValidationScenario s, params string[] digOptions)
    {
        int wait = (int)Math.Ceiling(s.WaitSeconds);
        var clock = Stopwatch.StartNew();
        var r = ExternalProcess.Run("dig", [$"@{resolver.Address}", "-p", resolver.Port.ToString(CultureInfo.InvariantCulture),
            "+dnssec", "+tries=1", $"+time={wait}", "+nottlid", "+noclass", .. digOptions, s.QName, s.QType],
            timeout: TimeSpan.FromSeconds(wait + 10));
        return ValidationResult.ParseDig(s.Name, r.Stdout, clock.Elapsed);
    }

    /// <summary>Null when the RCODE, AD bit and data are what the scenario expects (EDE aside), else why not.</summary>
    public static string? Check(ValidationScenario s, ValidationResult r)
    {
        if (r.Rcode != s.ExpectedRcode) return $"{s.Name}: rcode {r.Rcode}, expected {s.ExpectedRcode} ({s.Expected})";
        bool ad = s.Expected == ValidationOutcome.Secure;
        if (s.Expected != ValidationOutcome.Bogus && r.Ad != ad) return $"{s.Name}: AD {(r.Ad ? "set" : "clear")}, expected {(ad ? "set" : "clear")} ({s.Expected})";
        if (s.Data is { } data && !r.Answer.Any(l => l.EndsWith(" " + data, StringComparison.Ordinal)))
            return $"{s.Name}: answer [{string.Join(" | ", r.Answer)}] lacks {data}";
        if (s.Expected == ValidationOutcome.Bogus && r.Answer.Count != 0) return $"{s.Name}: bogus data served: {string.Join(" | ", r.Answer)}";
        return null;
    }

    /// <summary>The table as text: scenario, expected, RCODE, AD, EDE (code and text), time.</summary>
    public static string FormatTable(IEnumerable<ValidationResult> results)
    {
        var expected = Scenarios.ToDictionary(s => s.Name);
        var text = new StringBuilder($"{"scenario",-22} {"expected",-9} {"rcode",-9} {"AD",-3} {"EDE",-4} {"ms",7}  EDE text\n");
        foreach (var r in results)
        {
            var s = expected[r.Scenario];
            text.Append(CultureInfo.InvariantCulture,
                $"{r.Scenario,-22} {s.Expected,-9} {r.Rcode,-9} {(r.Ad ? "ad" : "-"),-3} {(r.Ede is { } e ? e.ToString(CultureInfo.InvariantCulture) : "-"),-4} {r.Elapsed.TotalMilliseconds,7:0}  {r.EdeText}\n");
        }
        return text.ToString();
    }

}

public enum ValidationOutcome { Secure, Insecure, Bogus }

/// <summary>One row of the validation table: a question and what a validating resolver must answer.</summary>
/// <param name="Expected">Secure: the answer with AD; Insecure: the answer without AD; Bogus: SERVFAIL, no data.</param>
/// <param name="ExpectedEde">The RFC 8914 code for the row (see <see cref="SignedHierarchy.Scenarios"/>), or null.</param>
public sealed record ValidationScenario(string Name, string QName, string QType, ValidationOutcome Expected, int? ExpectedEde, string Note)
{
    /// <summary>NOERROR or NXDOMAIN for secure and insecure rows.</summary>
    public string Rcode { get; init; } = "NOERROR";

    public string ExpectedRcode => Expected == ValidationOutcome.Bogus ? "SERVFAIL" : Rcode;

    /// <summary>An address the answer section must hold (rows with data), or null.</summary>
    public string? Data { get; init; }

    /// <summary>How long dig waits for the answer.</summary>
    public double WaitSeconds { get; init; } = 15;

    public override string ToString() => Name;
}

/// <summary>What a resolver answered to one validation scenario.</summary>
/// <param name="Rcode">NOERROR, NXDOMAIN, SERVFAIL, ... or TIMEOUT.</param>
/// <param name="Ede">The first Extended DNS Error code in the OPT record, or null.</param>
/// <param name="EdeText">dig's EDE line after the code ("(DNSSEC Bogus): (text)"), or "".</param>
/// <param name="Answer">Answer section lines without RRSIGs: "owner TYPE rdata", owner lower case.</param>
public sealed partial record ValidationResult(string Scenario, string Rcode, bool Ad, int? Ede, string EdeText, IReadOnlyList<string> Answer, TimeSpan Elapsed, string Text)
{
    [GeneratedRegex(@"^; EDE: (\d+)(.*)$")]
    private static partial Regex EdeLine();

    /// <summary>Parses dig's output printed with +nottlid +noclass.</summary>
    public static ValidationResult ParseDig(string scenario, string stdout, TimeSpan elapsed)
    {
        string rcode = "TIMEOUT", flags = "", edeText = "";
        int? ede = null;
        var answer = new List<string>();
        bool inAnswer = false;
        foreach (var raw in stdout.Split('\n'))
        {
            string line = raw.TrimEnd('\r');
            int at = line.IndexOf("status: ", StringComparison.Ordinal);
            if (at >= 0) rcode = line[(at + 8)..].Split(',')[0].Trim();
            at = line.IndexOf(";; flags: ", StringComparison.Ordinal);
            if (at >= 0 && flags == "") flags = line[(at + 10)..].Split(';')[0];
            if (EdeLine().Match(line) is { Success: true } m && ede is null)
            {
                ede = int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
                edeText = m.Groups[2].Value.Trim();
            }
            if (line.StartsWith(";; ANSWER SECTION:", StringComparison.Ordinal)) { inAnswer = true; continue; }
            if (inAnswer && (line.Length == 0 || line.StartsWith(';'))) inAnswer = false;
            else if (inAnswer)
            {
                var n = ScenarioResult.NormalizeLine(line);
                if (!n.Split(' ')[1].Equals("RRSIG", StringComparison.Ordinal)) answer.Add(n);
            }
        }
        bool ad = flags.Split(' ', StringSplitOptions.RemoveEmptyEntries).Contains("ad");
        return new ValidationResult(scenario, rcode, ad, ede, edeText, answer, elapsed, stdout);
    }
}
