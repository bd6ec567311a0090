using System.Collections.Immutable;
using OrleansChat.Grains.Interfaces;

namespace OrleansChat.Grains;

/// <summary>Who is in a room: connections per user per gateway. A user is present while any of their
/// connections, on any gateway, is in the room.</summary>
internal sealed class Presence
{
    /// <summary>Per gateway, per user: each connection with the gateway's join version (<see cref="GatewayMembers.Version"/>).</summary>
    private readonly Dictionary<string, Dictionary<string, Dictionary<string, long>>> _byGateway = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _connectionsPerUser = new(StringComparer.Ordinal);

    /// <summary>Adds a connection; true when it is the user's first in the room.</summary>
    public bool Add(string gatewayId, string user, string connectionId, long version = 0)
    {
        if (!_byGateway.TryGetValue(gatewayId, out var users))
        {
            _byGateway[gatewayId] = users = new Dictionary<string, Dictionary<string, long>>(StringComparer.Ordinal);
        }

        if (!users.TryGetValue(user, out var connections))
        {
            users[user] = connections = new Dictionary<string, long>(StringComparer.Ordinal);
        }

        if (!connections.TryAdd(connectionId, version))
        {
            connections[connectionId] = Math.Max(version, connections[connectionId]);
            return false;
        }

        var count = _connectionsPerUser.GetValueOrDefault(user) + 1;
        _connectionsPerUser[user] = count;
        return count == 1;
    }

    /// <summary>Removes a connection; true when it was the user's last in the room.</summary>
    public bool Remove(string gatewayId, string user, string connectionId)
    {
        if (!_byGateway.TryGetValue(gatewayId, out var users)
            || !users.TryGetValue(user, out var connections)
            || !connections.Remove(connectionId))
        {
            return false;
        }

        if (connections.Count == 0)
        {
            users.Remove(user);
            if (users.Count == 0)
            {
                _byGateway.Remove(gatewayId);
            }
        }

        var count = _connectionsPerUser[user] - 1;
        if (count > 0)
        {
            _connectionsPerUser[user] = count;
            return false;
        }

        _connectionsPerUser.Remove(user);
        return true;
    }

    /// <summary>Replaces everything one gateway holds; returns the users who came or went as a result.</summary>
    public ImmutableArray<PresenceChange> ReplaceGateway(string gatewayId, GatewayMembers members)
    {
        var affected = new HashSet<string>(members.ConnectionsByUser.Keys, StringComparer.Ordinal);
        if (_byGateway.TryGetValue(gatewayId, out var old))
        {
            affected.UnionWith(old.Keys);
        }

        var before = affected.Where(_connectionsPerUser.ContainsKey).ToHashSet(StringComparer.Ordinal);
        if (old is not null)
        {
            foreach (var (user, connections) in old.ToArray())
            {
                foreach (var connection in connections.Keys.ToArray())
                {
                    Remove(gatewayId, user, connection);
                }
            }
        }

        foreach (var (user, connections) in members.ConnectionsByUser)
        {
            foreach (var connection in connections)
            {
                Add(gatewayId, user, connection, members.Version);
            }
        }

        var changes = ImmutableArray.CreateBuilder<PresenceChange>();
        foreach (var user in affected)
        {
            var now = _connectionsPerUser.ContainsKey(user);
            if (now != before.Contains(user))
            {
                changes.Add(new PresenceChange(user, now, null));
            }
        }

        return changes.ToImmutable();
    }

    /// <summary>Removes the connections one gateway no longer reports (a leave whose call was lost); adds
    /// nothing, because a joiner can be in the report before its join reached the room. A connection that joined
    /// after the report was taken (its join version is above the report's) is not in it and stays.</summary>
    public ImmutableArray<PresenceChange> RemoveMissing(string gatewayId, GatewayMembers members)
    {
        if (!_byGateway.TryGetValue(gatewayId, out var users))
        {
            return [];
        }

        var changes = ImmutableArray.CreateBuilder<PresenceChange>();
        foreach (var (user, connections) in users.ToArray())
        {
            var reported = members.ConnectionsByUser.GetValueOrDefault(user);
            foreach (var (connection, version) in connections.ToArray())
            {
                if (version <= members.Version && (reported.IsDefault || !reported.Contains(connection)) && Remove(gatewayId, user, connection))
                {
                    changes.Add(new PresenceChange(user, false, null));
                }
            }
        }

        return changes.ToImmutable();
    }

    public ImmutableArray<string> Users() => [.. _connectionsPerUser.Keys];

    /// <summary>Removes every connection of <paramref name="user"/>; how many there were, and on which gateways.</summary>
    public (int Connections, List<string> Gateways) RemoveUser(string user)
    {
        var connections = 0;
        var gateways = new List<string>();
        foreach (var (gatewayId, users) in _byGateway.ToArray())
        {
            if (users.Remove(user, out var held))
            {
                connections += held.Count;
                gateways.Add(gatewayId);
                if (users.Count == 0)
                {
                    _byGateway.Remove(gatewayId);
                }
            }
        }

        _connectionsPerUser.Remove(user);
        return (connections, gateways);
    }

    /// <summary>The gateways holding a connection of <paramref name="user"/> in the room.</summary>
    public IEnumerable<string> GatewaysOf(string user)
    {
        foreach (var (gatewayId, users) in _byGateway)
        {
            if (users.ContainsKey(user))
            {
                yield return gatewayId;
            }
        }
    }
}
