using System.Diagnostics;

namespace OrleansChat.Grains.Tests;

/// <summary>
/// A notification to a gateway that is lost, or whose answer is lost, costs that gateway about one
/// notification timeout (1 s), not a renewal interval or a response timeout, and does not hold back the
/// room's later events. The gateway here never renews, so nothing but the room's own delivery can help it.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class LostNotificationTests(ChatClusterFixture fixture)
{
    /// <summary>Well above the 1 s timeout plus scheduling noise on a busy 2-core machine, and far below the
    /// 5 s renewal and 30 s response timeout that used to bound it.</summary>
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(2.5);

    [Theory]
    [InlineData(NotificationLoss.Fault.Lose)]
    [InlineData(NotificationLoss.Fault.Unanswered)]
    public async Task The_last_message_of_a_lost_notification_still_arrives_within_about_a_second(NotificationLoss.Fault fault)
    {
        var room = fixture.Room(Rooms.Unique("lost-last"));
        var gateway = new FollowingGateway(fixture.Client);
        await gateway.RenewAsync(room);

        NotificationLoss.Next(gateway.Reference, fault);
        var clock = Stopwatch.StartNew();
        Assert.Equal(RoomError.None, (await room.Post(Rooms.Post("alice", "only"))).Error);

        await Eventually.WaitAsync(() => gateway.LastSeq == 1, "message 1 at the gateway");
        var delay = clock.Elapsed;
        Assert.True(delay < Bound, $"delivered after {delay.TotalMilliseconds:F0} ms");
        Assert.Equal(0, gateway.Fetched);
    }

    [Theory]
    [InlineData(NotificationLoss.Fault.Lose)]
    [InlineData(NotificationLoss.Fault.Unanswered)]
    public async Task A_lost_notification_does_not_hold_back_later_messages(NotificationLoss.Fault fault)
    {
        const int later = 50;
        var room = fixture.Room(Rooms.Unique("lost-later"));
        var gateway = new FollowingGateway(fixture.Client);
        await gateway.RenewAsync(room);

        NotificationLoss.Next(gateway.Reference, fault);
        Assert.Equal(RoomError.None, (await room.Post(Rooms.Post("alice", "first"))).Error);
        for (var i = 0; i < later; i++)
        {
            Assert.Equal(RoomError.None, (await room.Post(Rooms.Post("bob", $"b{i}"))).Error);
        }

        var clock = Stopwatch.StartNew();
        await Eventually.WaitAsync(() => gateway.LastSeq == later + 1, $"{later + 1} messages at the gateway");
        var delay = clock.Elapsed;
        Assert.True(delay < Bound, $"caught up {delay.TotalMilliseconds:F0} ms after the last post");
        Assert.Equal(Rooms.Range(1, later + 1), gateway.Delivered.Seqs());
    }
}
