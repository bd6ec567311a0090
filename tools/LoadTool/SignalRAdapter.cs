using System.Text;
using System.Text.Json;

namespace OrleansChat.LoadTool;

/// <summary>ASP.NET Core SignalR's JSON hub protocol straight over a WebSocket (no negotiate): the handshake
/// <c>{"protocol":"json","version":1}</c>, then records each terminated by 0x1E. The hub has
/// <c>Join(room)</c> and <c>Send(room, id, text)</c> and broadcasts <c>message(room, user, id, text)</c>.</summary>
internal sealed class SignalRAdapter : ProtocolAdapter
{
    private const byte RecordSeparator = 0x1E;
    private const int Invocation = 1;
    private const int Completion = 3;
    private const int Close = 7;

    private static readonly byte[] HandshakeRecord = "{\"protocol\":\"json\",\"version\":1}\u001e"u8.ToArray();
    private static readonly byte[] PingRecord = "{\"type\":6}\u001e"u8.ToArray();

    private enum Field
    {
        Other,
        Type,
        Target,
        InvocationId,
        Error,
        Arguments,
    }

    public override byte[] Handshake => HandshakeRecord;

    // The server pings every 15 s and drops a client it has not heard from for 30 s.
    public override byte[] Ping => PingRecord;

    public override byte[] Join(string room)
        => SendTemplate.Utf8($"{{\"type\":1,\"invocationId\":\"1\",\"target\":\"Join\",\"arguments\":[\"{room}\"]}}\u001e");

    // No invocationId: fire and forget, as chat clients send; the sender's own broadcast copy is its acknowledgement.
    public override SendTemplate Send(string room) => new(
        SendTemplate.Utf8($"{{\"type\":1,\"target\":\"Send\",\"arguments\":[\"{room}\",\""),
        "\",\""u8.ToArray(),
        "\"]}\u001e"u8.ToArray());

    public override int Parse(ReadOnlySpan<byte> data, LoadConnection connection)
    {
        var consumed = 0;
        while (true)
        {
            var end = data[consumed..].IndexOf(RecordSeparator);
            if (end < 0)
            {
                // An unfinished record stays in the buffer for the next WebSocket message.
                return consumed;
            }

            var record = data.Slice(consumed, end);
            consumed += end + 1;
            try
            {
                if (connection.IsReady)
                {
                    ParseRecord(record, connection);
                }
                else
                {
                    ParseHandshakeAnswer(record, connection);
                }
            }
            catch (JsonException)
            {
                connection.OnUnreadable();
            }
        }
    }

    private static void ParseHandshakeAnswer(ReadOnlySpan<byte> json, LoadConnection connection)
    {
        var reader = new Utf8JsonReader(json);
        reader.Read();
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var isError = reader.ValueTextEquals("error"u8);
            reader.Read();
            if (isError && reader.TokenType == JsonTokenType.String)
            {
                connection.OnRefused($"handshake refused: {reader.GetString()}");
                return;
            }

            reader.Skip();
        }

        connection.OnReady();
    }

    private static void ParseRecord(ReadOnlySpan<byte> json, LoadConnection connection)
    {
        var reader = new Utf8JsonReader(json);
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
        {
            connection.OnUnreadable();
            return;
        }

        var type = -1;
        ReadOnlySpan<byte> target = default, invocationId = default, error = default, id = default, text = default;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var field = reader.ValueIsEscaped ? Field.Other : Classify(reader.ValueSpan);
            reader.Read();
            var isString = reader.TokenType == JsonTokenType.String;
            switch (field)
            {
                case Field.Type when reader.TokenType == JsonTokenType.Number:
                    reader.TryGetInt32(out type);
                    break;
                case Field.Target when isString:
                    target = reader.ValueSpan;
                    break;
                case Field.InvocationId when isString:
                    invocationId = reader.ValueSpan;
                    break;
                case Field.Error when isString:
                    error = reader.ValueSpan;
                    break;
                case Field.Arguments when reader.TokenType == JsonTokenType.StartArray:
                    // message(room, user, id, text): keep the third and fourth.
                    for (var index = 0; reader.Read() && reader.TokenType != JsonTokenType.EndArray; index++)
                    {
                        if (reader.TokenType is JsonTokenType.StartObject or JsonTokenType.StartArray)
                        {
                            reader.Skip();
                        }
                        else if (reader.TokenType == JsonTokenType.String && index == 2)
                        {
                            id = reader.ValueSpan;
                        }
                        else if (reader.TokenType == JsonTokenType.String && index == 3)
                        {
                            text = reader.ValueSpan;
                        }
                    }

                    break;
                default:
                    if (reader.TokenType is JsonTokenType.StartObject or JsonTokenType.StartArray)
                    {
                        reader.Skip();
                    }

                    break;
            }
        }

        switch (type)
        {
            case Invocation when target.SequenceEqual("message"u8):
                connection.OnMessage(id, text);
                break;
            case Completion when invocationId.SequenceEqual("1"u8):
                if (error.IsEmpty)
                {
                    connection.OnJoined(0);
                }
                else
                {
                    connection.OnRefused($"Join failed: {Encoding.UTF8.GetString(error)}");
                }

                break;
            case Completion when !error.IsEmpty:
                connection.OnError(default, Encoding.UTF8.GetString(error));
                break;
            case Close:
                connection.OnServerClosing(error.IsEmpty ? "close" : $"close: {Encoding.UTF8.GetString(error)}");
                break;

                // Pings (6) and anything else: not measured.
        }
    }

    private static Field Classify(ReadOnlySpan<byte> name) => name.Length switch
    {
        4 when name.SequenceEqual("type"u8) => Field.Type,
        5 when name.SequenceEqual("error"u8) => Field.Error,
        6 when name.SequenceEqual("target"u8) => Field.Target,
        9 when name.SequenceEqual("arguments"u8) => Field.Arguments,
        12 when name.SequenceEqual("invocationId"u8) => Field.InvocationId,
        _ => Field.Other,
    };
}
