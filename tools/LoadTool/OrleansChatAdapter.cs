using System.Text;
using System.Text.Json;

namespace OrleansChat.LoadTool;

/// <summary>Protocol v1 (docs/protocol.md): <c>welcome</c> after the upgrade, <c>join</c>/<c>joined</c>, <c>send</c>;
/// a server frame holds one or more events separated by '\n'.</summary>
internal sealed class OrleansChatAdapter : ProtocolAdapter
{
    private enum Field
    {
        Other,
        Type,
        Id,
        Text,
        Code,
        Seq,
    }

    // Room names are [A-Za-z0-9_.-] (ours are "load-…"), so they need no JSON escaping.
    public override byte[] Join(string room) => SendTemplate.Utf8($"{{\"type\":\"join\",\"room\":\"{room}\"}}");

    public override SendTemplate Send(string room) => new(
        SendTemplate.Utf8($"{{\"type\":\"send\",\"room\":\"{room}\",\"id\":\""),
        "\",\"text\":\""u8.ToArray(),
        "\"}"u8.ToArray());

    public override int Parse(ReadOnlySpan<byte> data, LoadConnection connection)
    {
        var rest = data;
        while (!rest.IsEmpty)
        {
            var end = rest.IndexOf((byte)'\n');
            var line = end < 0 ? rest : rest[..end];
            rest = end < 0 ? default : rest[(end + 1)..];
            if (!line.IsEmpty)
            {
                try
                {
                    ParseEvent(line, connection);
                }
                catch (JsonException)
                {
                    connection.OnUnreadable();
                }
            }
        }

        return data.Length;
    }

    private static void ParseEvent(ReadOnlySpan<byte> json, LoadConnection connection)
    {
        var reader = new Utf8JsonReader(json);
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
        {
            connection.OnUnreadable();
            return;
        }

        // Fields come in any order: remember the ones we need (slices of the frame), act at the end.
        ReadOnlySpan<byte> type = default, id = default, text = default, code = default;
        long seq = 0;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var field = reader.ValueIsEscaped ? Field.Other : Classify(reader.ValueSpan);
            reader.Read();
            if (reader.TokenType is JsonTokenType.StartObject or JsonTokenType.StartArray)
            {
                // joined's members and history.
                reader.Skip();
                continue;
            }

            var isString = reader.TokenType == JsonTokenType.String;
            switch (field)
            {
                case Field.Type when isString:
                    type = reader.ValueSpan;
                    break;
                case Field.Id when isString:
                    id = reader.ValueSpan;
                    break;
                case Field.Text when isString:
                    text = reader.ValueSpan;
                    break;
                case Field.Code when isString:
                    code = reader.ValueSpan;
                    break;
                case Field.Seq when reader.TokenType == JsonTokenType.Number:
                    reader.TryGetInt64(out seq);
                    break;
            }
        }

        if (type.SequenceEqual("message"u8))
        {
            connection.OnMessage(id, text);
        }
        else if (type.SequenceEqual("error"u8))
        {
            connection.OnError(id, code.IsEmpty ? "error" : Encoding.UTF8.GetString(code));
        }
        else if (type.SequenceEqual("joined"u8))
        {
            connection.OnJoined(seq);
        }
        else if (type.SequenceEqual("welcome"u8))
        {
            connection.OnReady();
        }

        // presence, typing, read, left, history …: not measured.
    }

    private static Field Classify(ReadOnlySpan<byte> name) => name.Length switch
    {
        2 when name.SequenceEqual("id"u8) => Field.Id,
        3 when name.SequenceEqual("seq"u8) => Field.Seq,
        4 when name.SequenceEqual("type"u8) => Field.Type,
        4 when name.SequenceEqual("text"u8) => Field.Text,
        4 when name.SequenceEqual("code"u8) => Field.Code,
        _ => Field.Other,
    };
}
