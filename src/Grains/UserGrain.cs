using OrleansChat.Grains.Interfaces;

namespace OrleansChat.Grains;

/// <summary>
/// One user's read state across rooms and devices. Loaded once per activation (one query for all the user's
/// rooms); a rise is stored before it is answered, so a connection told about it can rely on it surviving a
/// restart. Not reentrant: two tabs reading at once are applied one after the other, so the answers rise too.
/// </summary>
public sealed class UserGrain(IReadStateStore store) : Grain, IUserGrain
{
    private Dictionary<string, long> _reads = new(StringComparer.Ordinal);

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
        => _reads = new Dictionary<string, long>(await store.LoadAsync(this.GetPrimaryKeyString(), cancellationToken), StringComparer.Ordinal);

    public Task<long> GetRead(string room) => Task.FromResult(_reads.GetValueOrDefault(room));

    public async Task<long> MarkRead(string room, long seq)
    {
        if (seq <= _reads.GetValueOrDefault(room))
        {
            return 0;
        }

        await store.RaiseAsync(this.GetPrimaryKeyString(), room, seq);
        _reads[room] = seq;
        return seq;
    }
}
