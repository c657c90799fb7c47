namespace Portcullis.Protocol.Tests.Interop;

/// <summary>Where the interop test data (Interop/Data, copied beside the test assembly) is.</summary>
public static class InteropData
{
    public static string Directory { get; } = Path.Combine(AppContext.BaseDirectory, "Interop", "Data");

    public static string PathOf(string name) => Path.Combine(Directory, name);
}
