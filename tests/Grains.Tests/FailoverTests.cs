using System.Collections.Concurrent;
using Orleans.TestingHost;
using Xunit.Abstractions;

namespace OrleansChat.Grains.Tests;

/// <summary>
/// The silo hosting a room goes away while several callers keep posting. Callers treat Unavailable and
/// exceptions as "retry with the same client id"; the gateway re-subscribes (its renewal timer) and fetches
/// from its last seq. In the end the store, the acknowledgements and the gateway agree on every message,
/// each once, with seqs 1..N.
/// </summary>
[Collection(FailoverCollection.Name)]
public sealed class FailoverTests(FailoverClusterFixture fixture, ITestOutputHelper output)
{
    private const int Callers = 4;
    private const int PostsEach = 40;

    [Fact]
    public Task Room_continues_on_another_silo_when_its_silo_stops_gracefully()
        => PostThroughFailureAsync(silo => fixture.Cluster.StopSiloAsync(silo));

    [Fact]
    public Task Room_continues_on_another_silo_when_its_silo_is_killed()
        => PostThroughFailureAsync(silo => fixture.Cluster.KillSiloAsync(silo));

    private async Task PostThroughFailureAsync(Func<InProcessSiloHandle, Task> takeDown)
    {
        var roomName = Rooms.Unique("failover");
        var room = fixture.Room(roomName);
        var gateway = new FollowingGateway(fixture.Client);
        await gateway.RenewAsync(room);
        var firstHost = await room.GetRuntimeIdentity();
        var silo = fixture.Cluster.Silos.Single(s => s.SiloAddress.ToString() == firstHost);

        var acked = new ConcurrentDictionary<string, ChatMessage>();
        var retries = 0;
        var posting = Rooms.Concurrently(Callers, async caller =>
        {
            for (var i = 0; i < PostsEach; i++)
            {
                var request = Rooms.Post($"user{caller}", $"{caller}-{i}");
                while (true)
                {
                    try
                    {
                        var result = await room.Post(request);
                        if (result.Error == RoomError.None)
                        {
                            Assert.True(acked.TryAdd(request.ClientId, result.Message!), $"{request.ClientId} acknowledged twice");
                            break;
                        }

                        Assert.Equal(RoomError.Unavailable, result.Error);
                    }
                    catch (Exception ex) when (ex is not Xunit.Sdk.XunitException)
                    {
                        // Silo gone mid-call: the post may or may not be stored; resending is safe.
                    }

                    Interlocked.Increment(ref retries);
                    await Task.Delay(20);
                }

                await Task.Delay(5);
            }
        });

        await Eventually.WaitAsync(() => acked.Count >= Callers * PostsEach / 4, "posts before the failure");
        await takeDown(silo);
        try
        {
            // The gateway's renewal timer: keep re-subscribing until the room answers from another silo.
            await Eventually.WaitAsync(() => TryRenewAsync(gateway, room), "the gateway to re-subscribe");
            await posting;
            await gateway.CatchUpAsync(room);
            output.WriteLine($"{retries} resends, {gateway.Fetched} messages fetched after missing them live; room moved from {firstHost} to {await room.GetRuntimeIdentity()}");

            const int total = Callers * PostsEach;
            var stored = await fixture.Store.AllAsync(roomName);
            Assert.Equal(Rooms.Range(1, total), stored.Seqs());
            Assert.Equal(total, stored.Select(m => m.ClientId).Distinct().Count());
            Assert.Equal(stored, acked.Values.OrderBy(m => m.Seq));
            Assert.Equal(stored, gateway.Delivered);
            Assert.NotEqual(firstHost, await room.GetRuntimeIdentity());
        }
        finally
        {
            // Leave the collection's cluster as we found it, even when an assertion failed.
            await fixture.Cluster.StartAdditionalSiloAsync();
        }

        Assert.Equal(ChatClusterFixture.SiloCount, fixture.Cluster.Silos.Count);
    }

    private static async Task<bool> TryRenewAsync(FollowingGateway gateway, IRoomGrain room)
    {
        try
        {
            await gateway.RenewAsync(room);
            return true;
        }
        catch (Exception)
        {
            return false;
        }
    }
}
