using System.Collections.Concurrent;
using Microsoft.Extensions.Options;

namespace OrleansChat.Gateway.Connections;

/// <summary>
/// Open connections per user and per client address on this gateway (<c>Gateway:Limits:ConnectionsPerUser</c>,
/// <c>ConnectionsPerAddress</c>). A connection holds a slot of each from before its upgrade until it has closed.
/// </summary>
public sealed class ConnectionLimits(IOptions<GatewayOptions> options)
{
    private readonly ConcurrentDictionary<string, int> _perUser = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, int> _perAddress = new(StringComparer.Ordinal);
    private readonly LimitsOptions _limits = options.Value.Limits;

    /// <summary>A slot for one more connection of <paramref name="user"/> from <paramref name="address"/>, or null
    /// and the reason for the refusal.</summary>
    public (IDisposable? Slot, string? Refusal) TryOpen(string user, string address)
    {
        if (!TryTake(_perAddress, address, _limits.ConnectionsPerAddress))
        {
            return (null, $"too many connections from this address (at most {_limits.ConnectionsPerAddress})");
        }

        if (!TryTake(_perUser, user, _limits.ConnectionsPerUser))
        {
            Release(_perAddress, address);
            return (null, $"too many connections for this user (at most {_limits.ConnectionsPerUser})");
        }

        return (new Slot(this, user, address), null);
    }

    /// <summary>Users and addresses holding at least one slot (a leak check: zero once everyone left).</summary>
    public (int Users, int Addresses) Holders => (_perUser.Count, _perAddress.Count);

    private static bool TryTake(ConcurrentDictionary<string, int> counts, string key, int limit)
    {
        while (true)
        {
            var current = counts.GetOrAdd(key, 0);
            if (current >= limit)
            {
                return false;
            }

            if (counts.TryUpdate(key, current + 1, current))
            {
                return true;
            }
        }
    }

    private static void Release(ConcurrentDictionary<string, int> counts, string key)
    {
        while (true)
        {
            var current = counts[key];
            if (current == 1 ? counts.TryRemove(new KeyValuePair<string, int>(key, 1)) : counts.TryUpdate(key, current - 1, current))
            {
                return;
            }
        }
    }

    private sealed class Slot(ConnectionLimits limits, string user, string address) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                Release(limits._perAddress, address);
                Release(limits._perUser, user);
            }
        }
    }
}
