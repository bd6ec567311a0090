using System.Collections.Concurrent;
using System.Net;

namespace OrleansChat.Browser.Tests;

/// <summary>One span as an OTLP export carried it.</summary>
public sealed record ExportedSpan(string Service, string TraceId, string SpanId, string ParentSpanId, string Name, IReadOnlyDictionary<string, string> Attributes);

/// <summary>
/// A minimal OpenTelemetry collector for tests: accepts OTLP over HTTP/protobuf (<c>POST /v1/traces</c>; metrics
/// and logs are accepted and ignored) on 127.0.0.1 and decodes the spans: service name, ids and span name. Only the
/// fields it needs are read from the protobuf (ExportTraceServiceRequest → ResourceSpans → Resource / ScopeSpans →
/// Span); everything else is skipped by wire type.
/// </summary>
public sealed class OtlpReceiver : IDisposable
{
    private readonly HttpListener _listener = new();
    private readonly ConcurrentQueue<ExportedSpan> _spans = new();
    private readonly Task _loop;

    public OtlpReceiver(int port)
    {
        Endpoint = $"http://127.0.0.1:{port}";
        _listener.Prefixes.Add($"{Endpoint}/");
        _listener.Start();
        _loop = Task.Run(ServeAsync);
    }

    public string Endpoint { get; }

    public IReadOnlyList<ExportedSpan> Spans => [.. _spans];

    public void Dispose()
    {
        _listener.Stop();
        _listener.Close();
        _loop.Wait(TimeSpan.FromSeconds(5));
    }

    private async Task ServeAsync()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync();
            }
            catch (Exception ex) when (ex is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
                return;
            }

            using var body = new MemoryStream();
            await context.Request.InputStream.CopyToAsync(body);
            if (context.Request.Url?.AbsolutePath == "/v1/traces")
            {
                foreach (var span in ReadTraces(body.ToArray()))
                {
                    _spans.Enqueue(span);
                }
            }

            context.Response.StatusCode = 200;
            context.Response.ContentType = "application/x-protobuf";
            context.Response.Close();
        }
    }

    private static IEnumerable<ExportedSpan> ReadTraces(byte[] request)
    {
        foreach (var resourceSpans in Fields(request, 1))
        {
            var service = Fields(resourceSpans, 1).Select(resource => StringAttributes(resource)).FirstOrDefault()?.GetValueOrDefault("service.name") ?? "";

            foreach (var scopeSpans in Fields(resourceSpans, 2))
            {
                foreach (var span in Fields(scopeSpans, 2))
                {
                    yield return new ExportedSpan(service, Hex(Fields(span, 1).FirstOrDefault()), Hex(Fields(span, 2).FirstOrDefault()),
                        Hex(Fields(span, 4).FirstOrDefault()), Text(Fields(span, 5).FirstOrDefault()), StringAttributes(span, 9));
                }
            }
        }
    }

    /// <summary>The string-valued attributes (KeyValue: key 1, value 2 = AnyValue, string_value 1) in field
    /// <paramref name="number"/> of a message (Resource: 1; Span: 9).</summary>
    private static Dictionary<string, string> StringAttributes(byte[] message, int number = 1)
    {
        var attributes = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var attribute in Fields(message, number))
        {
            if (Fields(attribute, 2).FirstOrDefault() is { } value && Fields(value, 1).FirstOrDefault() is { } text)
            {
                attributes[Text(Fields(attribute, 1).FirstOrDefault())] = Text(text);
            }
        }

        return attributes;
    }

    /// <summary>The length-delimited fields numbered <paramref name="number"/> of a protobuf message.</summary>
    private static IEnumerable<byte[]> Fields(byte[] message, int number)
    {
        var position = 0;
        while (position < message.Length)
        {
            var key = Varint(message, ref position);
            var wireType = (int)(key & 7);
            var field = (int)(key >> 3);
            switch (wireType)
            {
                case 0:
                    Varint(message, ref position);
                    break;
                case 1:
                    position += 8;
                    break;
                case 5:
                    position += 4;
                    break;
                case 2:
                    var length = (int)Varint(message, ref position);
                    if (field == number)
                    {
                        yield return message[position..(position + length)];
                    }

                    position += length;
                    break;
                default:
                    throw new FormatException($"protobuf wire type {wireType} at {position}");
            }
        }
    }

    private static ulong Varint(byte[] message, ref int position)
    {
        ulong value = 0;
        for (var shift = 0; ; shift += 7)
        {
            var b = message[position++];
            value |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80)
            {
                return value;
            }
        }
    }

    private static string Text(byte[]? bytes) => bytes is null ? "" : System.Text.Encoding.UTF8.GetString(bytes);

    private static string Hex(byte[]? bytes) => bytes is null ? "" : Convert.ToHexString(bytes);
}
