namespace OrleansChat.Gateway.Tests;

/// <summary>Polls a condition that becomes true asynchronously (a connection released, a count settled).</summary>
internal static class Eventually
{
    /// <summary>Waits until <paramref name="condition"/> holds or 10 s passed; whether it holds.</summary>
    public static async Task<bool> HoldsAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                return false;
            }

            await Task.Delay(50);
        }

        return true;
    }
}
