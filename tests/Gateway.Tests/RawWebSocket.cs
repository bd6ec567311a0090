using System.Buffers.Binary;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;

namespace OrleansChat.Gateway.Tests;

/// <summary>A WebSocket client written on a bare TCP socket, for peers that misbehave on purpose: it never
/// answers pings and reads only when told to (with a tiny receive buffer, so the server's writes back up).</summary>
public sealed class RawWebSocket : IDisposable
{
    private readonly TcpClient _tcp;
    private readonly NetworkStream _stream;

    private RawWebSocket(TcpClient tcp)
    {
        _tcp = tcp;
        _stream = tcp.GetStream();
    }

    public static async Task<RawWebSocket> ConnectAsync(GatewayFactory gateway, string user)
    {
        var tcp = new TcpClient { ReceiveBufferSize = 4096 };
        await tcp.ConnectAsync(gateway.HttpAddress.Host, gateway.HttpAddress.Port);
        var socket = new RawWebSocket(tcp);
        var key = Convert.ToBase64String(RandomNumberGenerator.GetBytes(16));
        var request = $"GET /ws?user={user} HTTP/1.1\r\nHost: {gateway.HttpAddress.Authority}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
                      $"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n";
        await socket._stream.WriteAsync(Encoding.ASCII.GetBytes(request));
        var headers = new StringBuilder();
        while (!headers.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal))
        {
            var b = socket._stream.ReadByte();
            if (b < 0)
            {
                throw new IOException("closed during the handshake");
            }

            headers.Append((char)b);
        }

        Assert.StartsWith("HTTP/1.1 101", headers.ToString());
        return socket;
    }

    /// <summary>Sends one masked text frame (clients must mask).</summary>
    public async Task SendTextAsync(string text)
    {
        var payload = Encoding.UTF8.GetBytes(text);
        var frame = new List<byte> { 0x81 };
        if (payload.Length < 126)
        {
            frame.Add((byte)(0x80 | payload.Length));
        }
        else
        {
            frame.Add(0x80 | 126);
            frame.Add((byte)(payload.Length >> 8));
            frame.Add((byte)payload.Length);
        }

        var mask = RandomNumberGenerator.GetBytes(4);
        frame.AddRange(mask);
        frame.AddRange(payload.Select((b, i) => (byte)(b ^ mask[i % 4])));
        await _stream.WriteAsync(frame.ToArray());
    }

    /// <summary>Reads frames until the server's Close frame (its status) or the end of the stream (null).
    /// Counts the pings seen on the way.</summary>
    public async Task<(int? CloseStatus, int Pings, int DataFrames)> ReadUntilClosedAsync(TimeSpan timeout)
    {
        using var cancel = new CancellationTokenSource(timeout);
        var pings = 0;
        var data = 0;
        try
        {
            while (await ReadFrameAsync(cancel.Token) is { } frame)
            {
                var (opcode, payload) = frame;
                switch (opcode)
                {
                    case 0x8:
                        return (CloseStatusOf(payload), pings, data);
                    case 0x9:
                        pings++;
                        break;
                    default:
                        data++;
                        break;
                }
            }

            return (null, pings, data);
        }
        catch (IOException)
        {
            return (null, pings, data);
        }
    }

    /// <summary>Reads events (a frame may pack several, separated by '\n') no faster than
    /// <paramref name="bytesPerSecond"/>, handing each to <paramref name="onEvent"/>, until it returns false or
    /// the server closes (its status; null when the stream ended without a Close frame).</summary>
    public async Task<int?> ReadEventsPacedAsync(int bytesPerSecond, Func<string, bool> onEvent, TimeSpan timeout)
    {
        using var cancel = new CancellationTokenSource(timeout);
        var started = System.Diagnostics.Stopwatch.StartNew();
        long bytes = 0;
        while (await ReadFrameAsync(cancel.Token) is { } frame)
        {
            var (opcode, payload) = frame;
            if (opcode == 0x8)
            {
                return CloseStatusOf(payload);
            }

            if (opcode != 0x1)
            {
                continue;
            }

            foreach (var text in Encoding.UTF8.GetString(payload).Split('\n'))
            {
                if (!onEvent(text))
                {
                    return null;
                }
            }

            bytes += payload.Length;
            var due = TimeSpan.FromSeconds((double)bytes / bytesPerSecond) - started.Elapsed;
            if (due > TimeSpan.FromMilliseconds(5))
            {
                await Task.Delay(due, cancel.Token);
            }
        }

        return null;
    }

    private static int? CloseStatusOf(byte[] payload) => payload is { Length: >= 2 } ? BinaryPrimitives.ReadUInt16BigEndian(payload) : null;

    /// <summary>The next frame (opcode, unmasked payload), or null at the end of the stream.</summary>
    private async Task<(int Opcode, byte[] Payload)?> ReadFrameAsync(CancellationToken cancellationToken)
    {
        var header = await ReadExactlyAsync(2, cancellationToken);
        if (header is null)
        {
            return null;
        }

        long length = header[1] & 0x7F;
        if (length == 126)
        {
            length = BinaryPrimitives.ReadUInt16BigEndian(await ReadExactlyAsync(2, cancellationToken));
        }
        else if (length == 127)
        {
            length = (long)BinaryPrimitives.ReadUInt64BigEndian(await ReadExactlyAsync(8, cancellationToken));
        }

        var payload = length == 0 ? [] : await ReadExactlyAsync((int)length, cancellationToken) ?? throw new IOException("truncated frame");
        return (header[0] & 0x0F, payload);
    }

    private async Task<byte[]?> ReadExactlyAsync(int count, CancellationToken cancellationToken)
    {
        var buffer = new byte[count];
        var read = 0;
        while (read < count)
        {
            var n = await _stream.ReadAsync(buffer.AsMemory(read), cancellationToken);
            if (n == 0)
            {
                return read == 0 ? null : throw new IOException("truncated frame");
            }

            read += n;
        }

        return buffer;
    }

    public void Dispose() => _tcp.Dispose();
}
