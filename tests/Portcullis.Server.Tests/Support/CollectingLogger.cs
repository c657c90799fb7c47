using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace Portcullis.Server.Tests.Support;

/// <summary>A logger factory that keeps every formatted line, for tests that assert on what an operator would read.</summary>
public sealed class CollectingLoggerFactory : ILoggerFactory, ILoggerProvider
{
    private readonly ConcurrentQueue<string> _lines = new();

    public IReadOnlyList<string> Lines => _lines.ToArray();

    /// <summary>Waits (bounded) for a line containing <paramref name="text"/>; the logger writes from a background task.</summary>
    public bool WaitFor(string text, TimeSpan timeout)
    {
        return SpinWait.SpinUntil(() => _lines.Any(l => l.Contains(text, StringComparison.Ordinal)), timeout);
    }

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);
    public void AddProvider(ILoggerProvider provider) { }
    public void Dispose() { }

    private sealed class Logger(CollectingLoggerFactory owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            owner._lines.Enqueue($"{logLevel}: {category}: {formatter(state, exception)}");
    }
}
