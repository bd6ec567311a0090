namespace OrleansChat.Grains.Interfaces;

/// <summary>One user, keyed by user name: their read seq per room, the same on every device, stored durably.</summary>
[Alias("OrleansChat.IUserGrain")]
public interface IUserGrain : IGrainWithStringKey
{
    /// <summary>The stored read seq in <paramref name="room"/> (0 if none).</summary>
    [Alias("GetRead")]
    Task<long> GetRead(string room);

    /// <summary>Raises the read seq in <paramref name="room"/> to <paramref name="seq"/>: the new stored value once
    /// it is stored, or 0 when <paramref name="seq"/> is not above the stored one (nothing changes).</summary>
    [Alias("MarkRead")]
    Task<long> MarkRead(string room, long seq);
}
