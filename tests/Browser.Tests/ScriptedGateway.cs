using System.Text.RegularExpressions;
using System.Text.Json.Nodes;

namespace OrleansChat.Browser.Tests;

/// <summary>
/// Stands in for a gateway's <c>/ws</c> inside one browser context: Playwright hands the page's WebSocket to
/// this object instead of the network. One room, an event log the test writes, and answers to <c>join</c>,
/// <c>history</c>, <c>send</c>, <c>edit</c>, <c>delete</c> and <c>read</c> as protocol.md says, so that a test
/// chooses exactly which events reach the page and in which order (which a real cluster does not let it do).
/// </summary>
public sealed class ScriptedGateway
{
    private readonly object _gate = new();
    private readonly List<JsonObject> _log = [];
    private readonly List<JsonObject> _received = [];
    private IWebSocketRoute? _socket;
    private string _user = "";

    private ScriptedGateway(string room) => Room = room;

    public string Room { get; }

    /// <summary>The highest read seq a page reported.</summary>
    public int ReadSeq { get; private set; }

    /// <summary>Decides how to answer an <c>edit</c> or <c>delete</c> frame: null applies it (the default); a
    /// code answers with that <c>error</c>; an empty string leaves it unanswered, as when a gateway dies.</summary>
    public Func<JsonObject, string?> Answer { get; set; } = _ => null;

    /// <summary>Routes every <c>/ws</c> of <paramref name="context"/> to a new scripted gateway.</summary>
    public static async Task<ScriptedGateway> RouteAsync(IBrowserContext context, string room)
    {
        var gateway = new ScriptedGateway(room);
        await context.RouteWebSocketAsync(new Regex("/ws"), gateway.Accept);
        return gateway;
    }

    /// <summary>The frames the page sent so far, of one type.</summary>
    public IReadOnlyList<JsonObject> Received(string type)
    {
        lock (_gate)
        {
            return [.. _received.Where(frame => (string?)frame["type"] == type)];
        }
    }

    /// <summary>Stores an event (a <c>message</c>, <c>edit</c> or <c>delete</c>) with the next seq.</summary>
    public int Store(string type, string user, string? text = null, int? target = null)
    {
        lock (_gate)
        {
            var seq = _log.Count + 1;
            var e = new JsonObject
            {
                ["type"] = type, ["room"] = Room, ["seq"] = seq, ["user"] = user,
                ["time"] = DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ss.fffZ"), ["id"] = $"{type}-{seq}",
            };
            if (text is not null)
            {
                e["text"] = text;
            }

            if (target is not null)
            {
                e["target"] = target;
            }

            _log.Add(e);
            return seq;
        }
    }

    /// <summary>Stores an event and delivers it live to the connected page.</summary>
    public int Push(string type, string user, string? text = null, int? target = null)
    {
        var seq = Store(type, user, text, target);
        Send(Event(seq));
        return seq;
    }

    /// <summary>Closes the page's connection as a gateway going away does (1001); the page reconnects.</summary>
    public Task DropAsync() => _socket!.CloseAsync(new() { Code = 1001, Reason = "restarting" });

    private void Accept(IWebSocketRoute socket)
    {
        _socket = socket;
        _user = new Uri(socket.Url).Query.Split("user=")[1];
        socket.OnMessage(frame => Handle(JsonNode.Parse(frame.Text!)!.AsObject()));
        Send(new JsonObject { ["type"] = "welcome", ["user"] = _user, ["gateway"] = "scripted", ["heartbeat"] = 15 });
    }

    private void Handle(JsonObject frame)
    {
        lock (_gate)
        {
            _received.Add(frame);
        }

        switch ((string?)frame["type"])
        {
            case "join":
                var since = (int?)frame["since"];
                Send(new JsonObject
                {
                    ["type"] = "joined", ["room"] = Room, ["seq"] = _log.Count, ["members"] = new JsonArray(_user),
                    ["history"] = Events(since is null ? _log.Count - 50 : since.Value, _log.Count), ["more"] = false, ["read"] = ReadSeq,
                });
                break;
            case "history":
                var limit = (int?)frame["limit"] ?? 50;
                var before = (int?)frame["before"];
                var after = (int?)frame["after"];
                var (from, to) = after is not null ? (after.Value, after.Value + limit) : (before!.Value - 1 - limit, before.Value - 1);
                Send(new JsonObject { ["type"] = "history", ["room"] = Room, ["messages"] = Events(from, Math.Min(to, _log.Count)) });
                break;
            case "edit" or "delete":
                Apply(frame);
                break;
            case "read":
                ReadSeq = Math.Max(ReadSeq, (int)frame["seq"]!);
                break;
        }
    }

    private void Apply(JsonObject frame)
    {
        var id = (string)frame["id"]!;
        var code = Answer(frame);
        if (code == "")
        {
            return;
        }

        if (code is not null)
        {
            Send(new JsonObject { ["type"] = "error", ["code"] = code, ["message"] = code, ["id"] = id, ["room"] = Room });
            return;
        }

        var seq = Store((string)frame["type"]!, _user, (string?)frame["text"], (int)frame["seq"]!);
        lock (_gate)
        {
            _log[seq - 1]["id"] = id;
        }

        Send(Event(seq));
    }

    /// <summary>The stored events with seq in (after, upTo], oldest first.</summary>
    private JsonArray Events(int after, int upTo)
    {
        lock (_gate)
        {
            return [.. _log.Skip(Math.Max(0, after)).Take(Math.Max(0, upTo - Math.Max(0, after))).Select(e => e.DeepClone())];
        }
    }

    private JsonNode Event(int seq)
    {
        lock (_gate)
        {
            return _log[seq - 1].DeepClone();
        }
    }

    private void Send(JsonNode e) => _socket?.Send(e.ToJsonString());
}
