using System.Globalization;
using Portcullis.Protocol.Dnssec;

namespace Portcullis.Server.Dnssec;

/// <summary>What a key is for: key-signing (signs DNSKEY, CDS, CDNSKEY; has a DS at the parent), zone-signing, or both (combined).</summary>
public enum KeyRole { Ksk, Zsk, Csk }

/// <summary>
/// Where a key is in its life. What the key does (in the DNSKEY RRset, signing) follows from the
/// state and its role; see <see cref="KeyStates"/>. The words in parentheses are those of the .state files.
/// </summary>
public enum KeyState
{
    /// <summary>(active) Published and signing: the steady state.</summary>
    Active,
    /// <summary>(prepublished) A new ZSK or CSK in the DNSKEY RRset, not yet signing (RFC 6781 §4.1.1.1, step "new DNSKEY").</summary>
    Prepublished,
    /// <summary>(ds-pending) A new KSK of a double-DS rollover: its DS is asked for through CDS/CDNSKEY; neither published nor signing (RFC 6781 §4.1.2).</summary>
    DsPending,
    /// <summary>(ds-propagating) The parent has the new DS; waiting until no cache holds the old DS RRset.</summary>
    DsPropagating,
    /// <summary>(signing-hidden) A new key of an algorithm rollover: signs, not yet published (RFC 6781 §4.1.4, "new RRSIGs").</summary>
    SigningHidden,
    /// <summary>(published-new) New keys of an algorithm rollover, published and signing, before their DS is asked for.</summary>
    PublishedNew,
    /// <summary>(retired) An old ZSK or CSK: published, no longer signing, until its signatures have left the caches.</summary>
    Retired,
    /// <summary>(unpublished) The old KSK after the DNSKEY swap of a double-DS rollover: out of the DNSKEY RRset, its DS still asked for.</summary>
    Unpublished,
    /// <summary>(unpublished-signing) Old keys of an algorithm rollover: out of the DNSKEY RRset, still signing (RFC 6781 §4.1.4, "DNSKEY removal").</summary>
    UnpublishedSigning,
    /// <summary>(ds-withdrawing) An old KSK or CSK no longer used: CDS/CDNSKEY no longer list it; waiting for the parent to drop its DS.</summary>
    DsWithdrawing,
    /// <summary>(removed) Gone from the zone; its files are kept (as BIND keeps them) for the record.</summary>
    Removed,
}

/// <summary>What the parent holds of a KSK's (or CSK's) DS, as far as the operator or a check told us.</summary>
public enum DsState
{
    /// <summary>(none) No DS is wanted (a ZSK).</summary>
    None,
    /// <summary>(submitted) CDS/CDNSKEY ask for it; the parent has not been seen to publish it.</summary>
    Submitted,
    /// <summary>(seen) The parent publishes it (`portcullis dnssec ds-seen`).</summary>
    Seen,
    /// <summary>(withdrawn-submitted) CDS/CDNSKEY no longer list it; the parent may still publish it.</summary>
    WithdrawnSubmitted,
    /// <summary>(withdrawn) The parent no longer publishes it (`portcullis dnssec ds-withdrawn`).</summary>
    Withdrawn,
}

/// <summary>Which rollover a key took part in (as the new key or the old one).</summary>
public enum RolloverKind { None, Zsk, Ksk, Csk, Algorithm }

/// <summary>One line of `portcullis dnssec keys`.</summary>
public sealed record KeyStatus(ushort KeyTag, KeyRole Role, DnssecAlgorithm Algorithm, KeyState State, DsState Ds,
    bool Published, bool SignsKeys, bool SignsZone, bool InCds, DateTimeOffset? NextTransition, string Waiting);

/// <summary>The words of the .state files and the attributes each state implies.</summary>
public static class KeyStates
{
    public static string ToText(KeyState state) => state switch
    {
        KeyState.Active => "active",
        KeyState.Prepublished => "prepublished",
        KeyState.DsPending => "ds-pending",
        KeyState.DsPropagating => "ds-propagating",
        KeyState.SigningHidden => "signing-hidden",
        KeyState.PublishedNew => "published-new",
        KeyState.Retired => "retired",
        KeyState.Unpublished => "unpublished",
        KeyState.UnpublishedSigning => "unpublished-signing",
        KeyState.DsWithdrawing => "ds-withdrawing",
        _ => "removed",
    };

    public static string ToText(DsState state) => state switch
    {
        DsState.None => "none",
        DsState.Submitted => "submitted",
        DsState.Seen => "seen",
        DsState.WithdrawnSubmitted => "withdrawn-submitted",
        _ => "withdrawn",
    };

    public static string ToText(KeyRole role) => role switch { KeyRole.Ksk => "KSK", KeyRole.Zsk => "ZSK", _ => "CSK" };

    public static string ToText(RolloverKind kind) => kind switch
    {
        RolloverKind.Zsk => "zsk",
        RolloverKind.Ksk => "ksk",
        RolloverKind.Csk => "csk",
        RolloverKind.Algorithm => "algorithm",
        _ => "-",
    };

    public static bool TryParseState(string text, out KeyState state)
    {
        foreach (var s in Enum.GetValues<KeyState>())
            if (ToText(s) == text) { state = s; return true; }
        state = default;
        return false;
    }

    public static bool TryParseDs(string text, out DsState state)
    {
        foreach (var s in Enum.GetValues<DsState>())
            if (ToText(s) == text) { state = s; return true; }
        state = default;
        return false;
    }

    public static bool TryParseRole(string text, out KeyRole role)
    {
        foreach (var r in Enum.GetValues<KeyRole>())
            if (ToText(r).Equals(text, StringComparison.OrdinalIgnoreCase)) { role = r; return true; }
        role = default;
        return false;
    }

    public static bool TryParseRollover(string text, out RolloverKind kind)
    {
        foreach (var k in Enum.GetValues<RolloverKind>())
            if (ToText(k) == text) { kind = k; return true; }
        kind = default;
        return false;
    }

    /// <summary>In the DNSKEY RRset.</summary>
    public static bool IsPublished(KeyState state) =>
        state is KeyState.Active or KeyState.Prepublished or KeyState.PublishedNew or KeyState.Retired;

    /// <summary>Making signatures (which ones depends on the role).</summary>
    public static bool IsSigning(KeyState state) =>
        state is KeyState.Active or KeyState.SigningHidden or KeyState.PublishedNew or KeyState.UnpublishedSigning;

    internal static string Time(DateTimeOffset? t) =>
        t is { } v ? v.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture) : "-";
}
