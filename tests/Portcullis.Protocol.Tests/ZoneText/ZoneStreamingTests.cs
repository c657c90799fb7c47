using System.Globalization;
using Portcullis.Protocol.ZoneText;
using static Portcullis.Protocol.Tests.ZoneText.ZoneTestText;

namespace Portcullis.Protocol.Tests.ZoneText;

[CollectionDefinition(nameof(ZoneStreamingTests), DisableParallelization = true)]
public class ZoneStreamingCollection;

/// <summary>A large zone streams through the reader: it is never held as text, and memory stays flat.</summary>
[Collection(nameof(ZoneStreamingTests))]
public class ZoneStreamingTests
{
    private const int RecordCount = 200_000;

    [Fact]
    public void A_200000_record_zone_streams_with_small_memory()
    {
        var text = new GeneratedZone(RecordCount);
        using var reader = new ZoneReader(text, Origin, "big.zone");
        int count = 0;
        int maxLinesAhead = 0;
        long retainedEarly = 0;
        long allocatedBefore = GC.GetAllocatedBytesForCurrentThread();
        foreach (var record in reader.ReadRecords())
        {
            count++;
            // The reader has asked the text for at most a buffer's worth of lines past this record.
            maxLinesAhead = Math.Max(maxLinesAhead, text.LinesProduced - reader.Position.Line);
            if (count == 20_000) retainedEarly = GC.GetTotalMemory(forceFullCollection: true);
        }
        long allocated = GC.GetAllocatedBytesForCurrentThread() - allocatedBefore;
        long retainedLate = GC.GetTotalMemory(forceFullCollection: true);
        GC.KeepAlive(reader);

        Assert.Equal(RecordCount + 2, count); // the SOA and NS, then the hosts
        Assert.True(maxLinesAhead < 1000, $"the reader ran {maxLinesAhead} lines ahead of the records it returned");
        Assert.True(retainedLate - retainedEarly < 8 << 20, $"memory grew by {retainedLate - retainedEarly} bytes while streaming");
        Assert.True(allocated / count < 2048, $"{allocated / count} bytes allocated per record");
    }

    /// <summary>Zone text generated line by line as the reader asks for it; counts the lines handed out.</summary>
    private sealed class GeneratedZone(int hosts) : TextReader
    {
        private string _line = "$TTL 3600\n@ SOA ns1 hostmaster ( 1 7200 3600 1209600 300 )\n NS ns1\n";
        private int _offset;
        private int _next;

        public int LinesProduced { get; private set; } = 3;

        public override int Read(char[] buffer, int index, int count)
        {
            if (_offset == _line.Length)
            {
                if (_next == hosts) return 0;
                int i = _next++;
                _line = string.Create(CultureInfo.InvariantCulture,
                    $"host{i} IN A 10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255} ; host number {i}\n");
                _offset = 0;
                LinesProduced++;
            }
            int n = Math.Min(count, _line.Length - _offset);
            _line.CopyTo(_offset, buffer, index, n);
            _offset += n;
            return n;
        }

        public override int Peek() => throw new NotSupportedException();
    }
}
