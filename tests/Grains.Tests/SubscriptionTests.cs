using System.Collections.Immutable;
using System.Diagnostics;

namespace OrleansChat.Grains.Tests;

[Collection(ClusterCollection.Name)]
public sealed class SubscriptionTests(ChatClusterFixture fixture)
{
    [Fact]
    public async Task Unrenewed_subscription_expires_and_its_members_leave_while_a_renewed_one_keeps_receiving()
    {
        var room = fixture.Room(Rooms.Unique("expiry"));
        var stale = new TestGateway(fixture.Client);
        var renewed = new TestGateway(fixture.Client);
        var staleLifetime = TimeSpan.FromSeconds(1);
        // Renewed every 200 ms: the margin absorbs scheduling stalls on a loaded 2-core machine.
        var renewedLifetime = TimeSpan.FromSeconds(2);
        var renewedMembers = new GatewayMembers(ImmutableDictionary<string, ImmutableArray<string>>.Empty.Add("rita", ["r1"]));

        // The renewed gateway subscribes first, so it is there whenever the stale one expires (a stall of
        // the machine between the two subscriptions must not make it miss sam's leave).
        await renewed.SubscribeAsync(room, renewedLifetime, renewedMembers);
        var clock = Stopwatch.StartNew();

        // The gateway's renewal timer: well inside the lifetime, carrying its members each time.
        using var stop = new CancellationTokenSource();
        var renewals = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                await renewed.SubscribeAsync(room, renewedLifetime, renewedMembers);
                await Task.Delay(200);
            }
        });

        var staleSubscribed = clock.Elapsed;
        await stale.SubscribeAsync(room, staleLifetime);
        await room.Join(Rooms.Join("sam", stale, "s1"));

        await renewed.WaitUntilAsync(g => g.PresenceChanges.Contains(new PresenceChange("sam", false, null)), "sam to leave with the stale gateway");
        Assert.True(clock.Elapsed - staleSubscribed >= staleLifetime - TimeSpan.FromMilliseconds(20), $"expired after {(clock.Elapsed - staleSubscribed).TotalMilliseconds} ms");

        // Outlive the renewed gateway's first lifetime before checking it still receives.
        while (clock.Elapsed < renewedLifetime + TimeSpan.FromMilliseconds(500))
        {
            await Task.Delay(100);
        }

        var stalePost = await room.Post(Rooms.Post("rita", "after-expiry", gatewayId: stale.Id));
        var renewedPost = await room.Post(Rooms.Post("rita", "after-expiry-2", gatewayId: renewed.Id));
        Assert.False(stalePost.GatewaySubscribed);
        Assert.True(renewedPost.GatewaySubscribed, "the renewed subscription lapsed");
        // The stale gateway's post reaches the renewed one; its own post it delivers from the answer (the
        // room does not echo a gateway's own messages when nothing else is pending for it).
        await renewed.WaitUntilAsync(g => g.Messages.Contains(stalePost.Message!), "the other gateway's post at the renewed gateway");
        var join = await room.Join(Rooms.Join("tom", renewed, "t1"));
        await stop.CancelAsync();
        await renewals;
        await Task.Delay(100);

        Assert.True(join.GatewaySubscribed);
        Assert.Equal(["rita", "tom"], join.Members.Order());
        Assert.Empty(stale.Messages);
        Assert.DoesNotContain(stale.PresenceChanges, change => change.User == "tom");
    }

    [Fact]
    public async Task Unsubscribed_gateway_gets_nothing_more_and_its_members_leave()
    {
        var room = fixture.Room(Rooms.Unique("unsub"));
        var leaving = new TestGateway(fixture.Client);
        var staying = new TestGateway(fixture.Client);
        await leaving.SubscribeAsync(room);
        await staying.SubscribeAsync(room);
        await room.Join(Rooms.Join("ann", leaving, "a1"));

        await room.Unsubscribe(leaving.Id);
        await room.Post(Rooms.Post("bea", "1"));

        await staying.WaitUntilAsync(g => g.Messages.Length == 1, "the post");
        await Task.Delay(100);
        Assert.Equal([new PresenceChange("ann", true, "a1"), new PresenceChange("ann", false, null)], staying.PresenceChanges);
        Assert.Empty(leaving.Messages);
    }
}
