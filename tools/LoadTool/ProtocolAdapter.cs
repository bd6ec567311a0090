using System.Buffers.Text;
using System.Text;

namespace OrleansChat.LoadTool;

/// <summary>What differs between the protocols: the handshake, the join, the bytes around a send's id and text,
/// and how server frames are read. Everything else (sockets, buffers, bookkeeping) is shared, so the client
/// side costs the same for both.</summary>
internal abstract class ProtocolAdapter
{
    public static ProtocolAdapter For(LoadProtocol protocol) => protocol switch
    {
        LoadProtocol.OrleansChat => new OrleansChatAdapter(),
        LoadProtocol.SignalR => new SignalRAdapter(),
        _ => throw new ArgumentOutOfRangeException(nameof(protocol), protocol, null),
    };

    public static Uri ConnectUri(string url, int client) => new($"{url}{(url.Contains('?', StringComparison.Ordinal) ? '&' : '?')}user=u{client}");

    /// <summary>Sent right after the upgrade; the connection is ready when <see cref="LoadConnection.OnReady"/> is called.</summary>
    public virtual byte[]? Handshake => null;

    /// <summary>Sent on every connection every <see cref="PingInterval"/> (protocols whose server expects it).</summary>
    public virtual byte[]? Ping => null;

    public virtual TimeSpan PingInterval => TimeSpan.FromSeconds(15);

    public abstract byte[] Join(string room);

    public abstract SendTemplate Send(string room);

    /// <summary>Reads one received WebSocket message (plus any unfinished record kept from before) and calls
    /// the connection back for every event. Returns how many bytes it used; the rest is kept for the next
    /// message.</summary>
    public abstract int Parse(ReadOnlySpan<byte> data, LoadConnection connection);
}

/// <summary>A send frame is <c>prefix · id · infix · text · suffix</c>; the adapter gives the constant parts,
/// <see cref="Write"/> fills in the id ("{sender}-{counter}") and the text (the send timestamp, '|', then 'x'
/// up to the size).</summary>
internal sealed class SendTemplate(byte[] prefix, byte[] infix, byte[] suffix)
{
    public const byte StampSeparator = (byte)'|';

    public int MaxLength(int size) => prefix.Length + 41 + infix.Length + Math.Max(size, 21) + suffix.Length;

    public int Write(Span<byte> frame, long sender, long counter, long stamp, int size)
    {
        prefix.CopyTo(frame);
        var n = prefix.Length;
        Utf8Formatter.TryFormat(sender, frame[n..], out var written);
        n += written;
        frame[n++] = (byte)'-';
        Utf8Formatter.TryFormat(counter, frame[n..], out written);
        n += written;
        infix.CopyTo(frame[n..]);
        n += infix.Length;
        Utf8Formatter.TryFormat(stamp, frame[n..], out written);
        n += written;
        frame[n++] = StampSeparator;
        var padding = size - written - 1;
        if (padding > 0)
        {
            frame.Slice(n, padding).Fill((byte)'x');
            n += padding;
        }

        suffix.CopyTo(frame[n..]);
        return n + suffix.Length;
    }

    public static byte[] Utf8(string text) => Encoding.UTF8.GetBytes(text);
}
