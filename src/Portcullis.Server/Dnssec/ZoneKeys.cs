using Portcullis.Protocol.Dnssec;
using Portcullis.Protocol.Names;

namespace Portcullis.Server.Dnssec;

/// <summary>What the keys do now and when to ask again.</summary>
public sealed record KeyPlan(SigningKeySet Keys, DateTimeOffset NextEvent, IReadOnlyList<string> Events);

/// <summary>TEMPORARY stub (replaced by the key-management work): the zone's keys, made when missing, never rolled.</summary>
public sealed class ZoneKeys
{
    private readonly DnsName _zone;
    private readonly string _directory;
    private readonly DnssecPolicy _policy;
    private readonly TimeProvider _time;
    private readonly List<DnssecPrivateKey> _keys = [];

    private ZoneKeys(DnsName zone, string directory, DnssecPolicy policy, TimeProvider time)
    {
        _zone = zone;
        _directory = directory;
        _policy = policy;
        _time = time;
    }

    public static ZoneKeys Open(DnsName zone, string keyDirectory, DnssecPolicy policy, TimeProvider time)
    {
        var keys = new ZoneKeys(zone, keyDirectory, policy, time);
        if (Directory.Exists(keyDirectory))
            foreach (var file in Directory.GetFiles(keyDirectory, $"K{zone.ToString().ToLowerInvariant()}+*.private").Order())
                keys._keys.Add(DnssecKeyFile.Read(file));
        return keys;
    }

    public KeyPlan Plan(TimeSpan zoneMaxTtl)
    {
        var events = new List<string>();
        if (_keys.Count == 0)
        {
            Directory.CreateDirectory(_directory);
            foreach (bool ksk in _policy.CombinedKey ? [true] : (bool[])[true, false])
            {
                var key = DnssecPrivateKey.Generate(_zone, _policy.Algorithm, ksk);
                DnssecKeyFile.Write(_directory, key, _time.GetUtcNow());
                _keys.Add(key);
                events.Add($"{(ksk ? "KSK" : "ZSK")} {key.KeyTag} created");
            }
        }
        var ksks = _keys.Where(k => k.IsKsk).ToList();
        var zsks = _keys.Where(k => !k.IsKsk).ToList();
        if (zsks.Count == 0) zsks = ksks;
        if (ksks.Count == 0) ksks = zsks;
        return new KeyPlan(new SigningKeySet(_keys, ksks, zsks) { Cds = _policy.PublishCds ? ksks : [] }, DateTimeOffset.MaxValue, events);
    }
}
