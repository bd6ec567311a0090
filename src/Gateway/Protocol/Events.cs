using System.Buffers;
using System.Collections.Immutable;
using System.Text.Json;
using OrleansChat.Grains.Interfaces;

namespace OrleansChat.Gateway.Protocol;

/// <summary>Server events as compact UTF-8 JSON. Each event is serialized once; the same bytes are queued to
/// every connection that gets it.</summary>
public static class Events
{
    // Relaxed escaping keeps non-ASCII text as UTF-8 (smaller frames); control characters, including
    // newlines, are still escaped, which is what makes splitting a frame on "\n" safe.
    private static readonly JsonWriterOptions WriterOptions = new()
    {
        Indented = false,
        SkipValidation = true,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    /// <summary>Event types, for counting; <see cref="TypeOf"/> gives an index into this list.</summary>
    public static readonly string[] Types = ["other", "welcome", "joined", "left", "message", "presence", "history", "error", "edit", "delete", "typing", "read"];

    public const int MessageType = 4;

    /// <summary>Every event starts with <c>{"type":"</c>; the first letter of its type tells them apart (the second
    /// for <c>edit</c> and <c>error</c>).</summary>
    public static int TypeOf(byte[] frame) => frame.Length > 10 ? frame[9] switch
    {
        (byte)'w' => 1,
        (byte)'j' => 2,
        (byte)'l' => 3,
        (byte)'m' => MessageType,
        (byte)'p' => 5,
        (byte)'h' => 6,
        (byte)'e' => frame[10] == (byte)'d' ? 8 : 7,
        (byte)'d' => 9,
        (byte)'t' => 10,
        (byte)'r' => 11,
        _ => 0,
    } : 0;

    public static byte[] Welcome(string user, string gateway, int heartbeatSeconds) => Write(w =>
    {
        w.WriteString("type", "welcome");
        w.WriteString("user", user);
        w.WriteString("gateway", gateway);
        w.WriteNumber("heartbeat", heartbeatSeconds);
    });

    public static byte[] Joined(string room, JoinResult result) => Write(w =>
    {
        w.WriteString("type", "joined");
        w.WriteString("room", room);
        w.WriteNumber("seq", result.Seq);
        w.WriteStartArray("members");
        foreach (var member in result.Members)
        {
            w.WriteStringValue(member);
        }

        w.WriteEndArray();
        WriteMessages(w, "history", result.History);
        w.WriteBoolean("more", result.More);
        w.WriteNumber("read", result.Read);
    });

    /// <summary><paramref name="reason"/>: <c>kicked</c> when the server API removed the user.</summary>
    public static byte[] Left(string room, string? reason = null) => Write(w =>
    {
        w.WriteString("type", "left");
        w.WriteString("room", room);
        if (reason is not null)
        {
            w.WriteString("reason", reason);
        }
    });

    /// <summary>A stored event as delivered live: a <c>message</c>, an <c>edit</c> or a <c>delete</c>.</summary>
    public static byte[] Stored(ChatMessage message) => Write(w => WriteMessageFields(w, message));

    public static byte[] Typing(string room, string user) => Write(w =>
    {
        w.WriteString("type", "typing");
        w.WriteString("room", room);
        w.WriteString("user", user);
    });

    public static byte[] Read(string room, long seq) => Write(w =>
    {
        w.WriteString("type", "read");
        w.WriteString("room", room);
        w.WriteNumber("seq", seq);
    });

    public static byte[] Presence(string room, string user, bool joined) => Write(w =>
    {
        w.WriteString("type", "presence");
        w.WriteString("room", room);
        w.WriteString("user", user);
        w.WriteString("event", joined ? "join" : "leave");
    });

    public static byte[] History(string room, ImmutableArray<ChatMessage> messages) => Write(w =>
    {
        w.WriteString("type", "history");
        w.WriteString("room", room);
        WriteMessages(w, "messages", messages);
    });

    /// <summary>The REST history answer: the same shape as the <c>history</c> event without its type.</summary>
    public static byte[] HistoryBody(string room, ImmutableArray<ChatMessage> messages) => Write(w =>
    {
        w.WriteString("room", room);
        WriteMessages(w, "messages", messages);
    });

    public static byte[] Error(string code, string message, string? id = null, string? room = null) => Write(w =>
    {
        w.WriteString("type", "error");
        w.WriteString("code", code);
        w.WriteString("message", message);
        if (id is not null)
        {
            w.WriteString("id", id);
        }

        if (room is not null)
        {
            w.WriteString("room", room);
        }
    });

    public static string FormatTime(DateTime time) => time.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", System.Globalization.CultureInfo.InvariantCulture);

    private static void WriteMessages(Utf8JsonWriter w, string name, ImmutableArray<ChatMessage> messages)
    {
        w.WriteStartArray(name);
        foreach (var message in messages)
        {
            w.WriteStartObject();
            WriteMessageFields(w, message);
            w.WriteEndObject();
        }

        w.WriteEndArray();
    }

    /// <summary>Every item of a history is the stored event exactly as it is delivered live, type included.</summary>
    private static void WriteMessageFields(Utf8JsonWriter w, ChatMessage message)
    {
        w.WriteString("type", message.Kind switch
        {
            ChatEventKind.Edit => "edit",
            ChatEventKind.Delete => "delete",
            _ => "message",
        });
        w.WriteString("room", message.Room);
        w.WriteNumber("seq", message.Seq);
        w.WriteString("user", message.User);
        if (message.Kind != ChatEventKind.Message)
        {
            w.WriteNumber("target", message.Target);
        }

        if (message.Kind != ChatEventKind.Delete)
        {
            w.WriteString("text", message.Text);
        }

        w.WriteString("time", FormatTime(message.Time));
        w.WriteString("id", message.ClientId);
    }

    private static byte[] Write(Action<Utf8JsonWriter> body)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer, WriterOptions))
        {
            writer.WriteStartObject();
            body(writer);
            writer.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }
}
