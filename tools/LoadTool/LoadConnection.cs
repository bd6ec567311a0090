using System.Buffers.Text;
using System.Diagnostics;
using System.Globalization;
using System.Net.WebSockets;

namespace OrleansChat.LoadTool;

/// <summary>One client: a raw ClientWebSocket, one receive loop and, for a sender, one send loop. What it measures
/// lives in plain fields written only by its own loops (no locks on the hot path); the runner reads them after
/// the loops have ended, or as a progress hint while they run.</summary>
internal sealed class LoadConnection
{
    private static readonly TimeSpan OpenTimeout = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan CloseTimeout = TimeSpan.FromSeconds(5);
    private const int InitialBuffer = 4096;
    private const int MaxBuffer = 64 << 20;

    private readonly ProtocolAdapter _protocol;
    private readonly RunClock _clock;
    private readonly LoadSettings _settings;
    private readonly Uri _uri;
    private readonly ClientWebSocket _socket = new();
    private readonly SemaphoreSlim _sendLock = new(1, 1);
    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _joined = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly SemaphoreSlim? _window;
    private readonly SeenCounters[] _seen;
    private readonly long _firstSender;

    private byte[] _buffer = new byte[InitialBuffer];
    private Task? _receiving;
    private volatile bool _closing;
    private string? _closingNote;

    // Per received frame: when it arrived, whether that is inside the measured window, how many deliveries it held.
    private long _frameTime;
    private bool _frameInWindow;
    private int _frameDeliveries;

    private long _received;
    private long _sent;
    private long _refused;
    private LatencyHistogram? _latency;
    private Dictionary<string, long>? _errorCodes;

    public LoadConnection(int index, int room, string roomName, long senderIndex, long firstSender, LoadSettings settings, ProtocolAdapter protocol, RunClock clock)
    {
        Index = index;
        Room = room;
        RoomName = roomName;
        SenderIndex = senderIndex;
        _firstSender = firstSender;
        _settings = settings;
        _protocol = protocol;
        _clock = clock;
        _uri = ProtocolAdapter.ConnectUri(settings.Urls[index % settings.Urls.Count], index);
        _seen = new SeenCounters[settings.SendersPerRoom];
        _window = senderIndex >= 0 ? new SemaphoreSlim(settings.Window, int.MaxValue) : null;

        // Replies to the server's pings are automatic; the client sends no keep-alives of its own.
        _socket.Options.KeepAliveInterval = TimeSpan.Zero;
    }

    public int Index { get; }

    public int Room { get; }

    public string RoomName { get; }

    /// <summary>Global sender index, -1 for a receiver only.</summary>
    public long SenderIndex { get; }

    public bool IsReady => _ready.Task.IsCompletedSuccessfully;

    /// <summary>Connected, ready and joined: a member of its room.</summary>
    public bool Joined { get; private set; }

    public bool IsOpen => _receiving is { IsCompleted: false };

    /// <summary>From the start of the connect until welcome (or SignalR's handshake answer).</summary>
    public double? ConnectMs { get; private set; }

    /// <summary>Why it never joined.</summary>
    public string? Failure { get; private set; }

    /// <summary>Why the connection ended before the run closed it.</summary>
    public string? CloseReason { get; private set; }

    /// <summary>Distinct messages received (in or out of order).</summary>
    public long Received => Volatile.Read(ref _received);

    public long Duplicates { get; private set; }

    public long OutOfOrder { get; private set; }

    /// <summary>Messages whose id is not one of this run's senders in this room.</summary>
    public long Foreign { get; private set; }

    public long Errors { get; private set; }

    public long Unreadable { get; private set; }

    public long WindowDeliveries { get; private set; }

    public long WindowFrames { get; private set; }

    /// <summary>Sends written to the socket.</summary>
    public long Sent => Volatile.Read(ref _sent);

    public long WindowSent { get; private set; }

    /// <summary>This sender's messages answered with an error: not stored, so expected nowhere.</summary>
    public long Refused => Volatile.Read(ref _refused);

    public LatencyHistogram? Latency => _latency;

    public IReadOnlyDictionary<string, long>? ErrorCodes => _errorCodes;

    /// <summary>Distinct messages received from the room's sender number <paramref name="localSender"/>. Read by
    /// the runner while the receive loop writes it: a 64-bit aligned read, good enough for a progress check.</summary>
    public long ReceivedFrom(int localSender) => _seen[localSender].Unique;

    public async Task OpenAsync(CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(OpenTimeout);
        var waitingFor = "the WebSocket upgrade";
        try
        {
            await _socket.ConnectAsync(_uri, timeout.Token);
            _receiving = ReceiveLoopAsync();
            waitingFor = _protocol.Handshake is null ? "welcome" : "the handshake answer";
            if (_protocol.Handshake is { } handshake)
            {
                await SendAsync(handshake);
            }

            await _ready.Task.WaitAsync(timeout.Token);
            ConnectMs = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
            waitingFor = "the join answer";
            await SendAsync(_protocol.Join(RoomName));
            await _joined.Task.WaitAsync(timeout.Token);
            Joined = true;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            Failure = string.Create(CultureInfo.InvariantCulture, $"no {waitingFor} within {OpenTimeout.TotalSeconds:0} s");
            _socket.Abort();
        }
        catch (Exception ex)
        {
            Failure = Failures.Describe(ex);
            _socket.Abort();
        }
    }

    /// <summary>One sender: at <see cref="LoadSettings.Rate"/> (starting <paramref name="phase"/> of an interval
    /// late, so senders do not fire together) or closed-loop, never more than the window unacknowledged.</summary>
    public async Task SendLoopAsync(double phase, CancellationToken stop)
    {
        var template = _protocol.Send(RoomName);
        var frame = new byte[template.MaxLength(_settings.Size)];
        var interval = _settings.Rate > 0 ? (long)(Stopwatch.Frequency / _settings.Rate) : 0;
        var next = Stopwatch.GetTimestamp() + (long)(interval * phase);
        try
        {
            for (long counter = 0; !stop.IsCancellationRequested; counter++)
            {
                if (interval > 0)
                {
                    var now = Stopwatch.GetTimestamp();
                    if (next > now)
                    {
                        await Task.Delay(Stopwatch.GetElapsedTime(now, next), stop);
                    }
                    else if (now - next > Stopwatch.Frequency)
                    {
                        // More than a second behind (the window was full): carry on from now, no catch-up burst.
                        next = now;
                    }

                    next += interval;
                }

                await _window!.WaitAsync(stop);
                var stamp = Stopwatch.GetTimestamp();
                var length = template.Write(frame, SenderIndex, counter, stamp, _settings.Size);
                await SendAsync(frame.AsMemory(0, length));
                Volatile.Write(ref _sent, counter + 1);
                if (_clock.InWindow(stamp))
                {
                    WindowSent++;
                }
            }
        }
        catch (OperationCanceledException)
        {
            // Stopped.
        }
        catch (Exception ex) when (ex is WebSocketException or ObjectDisposedException or IOException)
        {
            // The connection is gone; its receive loop records why.
        }
    }

    public async Task PingAsync(byte[] ping)
    {
        if (_closing || _socket.State != WebSocketState.Open)
        {
            return;
        }

        try
        {
            await SendAsync(ping);
        }
        catch (Exception ex) when (ex is WebSocketException or ObjectDisposedException or IOException)
        {
            // The receive loop records why.
        }
    }

    public async Task CloseAsync()
    {
        _closing = true;
        if (_receiving is not null)
        {
            try
            {
                using var timeout = new CancellationTokenSource(CloseTimeout);
                if (_socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
                {
                    // Output only: the receive loop is still reading and sees the server's close.
                    await _socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "done", timeout.Token);
                }

                await _receiving.WaitAsync(timeout.Token);
            }
            catch (Exception)
            {
                _socket.Abort();
            }

            // The loop catches everything itself; after this its counters are final.
            await _receiving;
        }

        _socket.Dispose();
        _window?.Dispose();
    }

    private async ValueTask SendAsync(ReadOnlyMemory<byte> frame)
    {
        // Only SignalR's shared ping timer ever contends with the connection's own sends.
        await _sendLock.WaitAsync();
        try
        {
            await _socket.SendAsync(frame, WebSocketMessageType.Text, endOfMessage: true, CancellationToken.None);
        }
        finally
        {
            _sendLock.Release();
        }
    }

    private async Task ReceiveLoopAsync()
    {
        var count = 0;
        string? reason = null;
        try
        {
            while (true)
            {
                if (count == _buffer.Length)
                {
                    if (_buffer.Length >= MaxBuffer)
                    {
                        throw new InvalidDataException($"a server frame over {MaxBuffer >> 20} MB");
                    }

                    Array.Resize(ref _buffer, _buffer.Length * 2);
                }

                var result = await _socket.ReceiveAsync(_buffer.AsMemory(count), CancellationToken.None);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    reason = $"closed by the server: {(int?)_socket.CloseStatus} {_socket.CloseStatusDescription}".TrimEnd()
                             + (_closingNote is null ? "" : $" ({_closingNote})");
                    break;
                }

                count += result.Count;
                if (!result.EndOfMessage)
                {
                    continue;
                }

                _frameTime = Stopwatch.GetTimestamp();
                _frameInWindow = _clock.InWindow(_frameTime);
                _frameDeliveries = 0;
                var consumed = _protocol.Parse(_buffer.AsSpan(0, count), this);
                if (_frameDeliveries > 0)
                {
                    WindowFrames++;
                }

                count -= consumed;
                if (count > 0)
                {
                    _buffer.AsSpan(consumed, count).CopyTo(_buffer);
                }
            }
        }
        catch (Exception ex)
        {
            reason = Failures.Describe(ex);
        }
        finally
        {
            if (!_closing)
            {
                CloseReason = reason ?? "closed";
            }

            var ended = new IOException(CloseReason ?? reason ?? "closed");
            _ready.TrySetException(ended);
            _joined.TrySetException(ended);
        }
    }

    // ---- called by the protocol adapter, on the receive loop ----

    internal void OnReady() => _ready.TrySetResult();

    internal void OnJoined(long seq) => _joined.TrySetResult();

    internal void OnRefused(string reason)
    {
        var refused = new IOException(reason);
        _ready.TrySetException(refused);
        _joined.TrySetException(refused);
    }

    internal void OnServerClosing(string note) => _closingNote = note;

    internal void OnUnreadable() => Unreadable++;

    internal void OnError(ReadOnlySpan<byte> id, string code)
    {
        Errors++;
        _errorCodes ??= new Dictionary<string, long>(StringComparer.Ordinal);
        _errorCodes[code] = _errorCodes.GetValueOrDefault(code) + 1;
        if (TryParseId(id, out var sender, out _) && sender == SenderIndex)
        {
            // Not stored (an "unavailable" send may have been: then a receiver that gets it anyway makes up
            // for one message it lacks from this sender; rare enough to accept).
            Volatile.Write(ref _refused, _refused + 1);
            _window?.Release();
        }
        else if (!_joined.Task.IsCompleted && id.IsEmpty)
        {
            _joined.TrySetException(new IOException($"join refused: {code}"));
        }
    }

    internal void OnMessage(ReadOnlySpan<byte> id, ReadOnlySpan<byte> text)
    {
        if (!TryParseId(id, out var sender, out var counter) || (ulong)(sender - _firstSender) >= (ulong)_seen.Length)
        {
            Foreign++;
            return;
        }

        switch (_seen[sender - _firstSender].Add(counter))
        {
            case Arrival.Duplicate:
                Duplicates++;
                return;
            case Arrival.Implausible:
                Foreign++;
                return;
            case Arrival.OutOfOrder:
                OutOfOrder++;
                break;
        }

        Volatile.Write(ref _received, _received + 1);
        if (sender == SenderIndex)
        {
            // Our own copy is the acknowledgement.
            _window!.Release();
        }

        if (_frameInWindow)
        {
            WindowDeliveries++;
            _frameDeliveries++;
            if (Utf8Parser.TryParse(text, out long stamp, out var digits) && digits < text.Length && text[digits] == SendTemplate.StampSeparator)
            {
                (_latency ??= new LatencyHistogram()).Record((long)((_frameTime - stamp) * RunClock.MicrosPerTick));
            }
        }
    }

    private static bool TryParseId(ReadOnlySpan<byte> id, out long sender, out long counter)
    {
        counter = 0;
        var dash = id.IndexOf((byte)'-');
        sender = -1;
        return dash > 0
               && Utf8Parser.TryParse(id[..dash], out sender, out var a) && a == dash && sender >= 0
               && Utf8Parser.TryParse(id[(dash + 1)..], out counter, out var b) && b == id.Length - dash - 1 && counter >= 0;
    }
}
