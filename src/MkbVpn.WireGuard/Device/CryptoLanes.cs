namespace MkbVpn.WireGuard.Device;

/// <summary>
/// Spreads one batch's AEAD work over the cores, as wireguard-go's per-core encryption and decryption workers
/// do: the owning loop's thread is lane 0 and one helper thread per further core takes the other lanes; each
/// works through a contiguous share of the batch, then the owner continues (in order: sends, replay windows,
/// TUN writes stay sequential). Small batches stay on the owner's thread. Each lane has its own AEAD objects
/// in a keypair (<c>Keypair.SealOnLane</c>), so no AEAD object is shared between threads. Used by one owner thread.
/// </summary>
internal sealed class CryptoLanes : IDisposable
{
    /// <summary>Below this many packets a batch is not worth waking helpers for.</summary>
    public const int MinParallel = 8;

    private readonly Helper[] _helpers;
    private readonly CancellationToken _stopped;
    private Action<int, int, int>? _work; // (lane, from, to)
    private int _count;
    private int _pending;
    private Exception? _failure;
    private readonly ManualResetEventSlim _done = new(false);

    private sealed class Helper
    {
        public readonly SemaphoreSlim Go = new(0);
        public Thread? Thread;
    }

    /// <param name="onStart">Called by each helper thread first, with its name (the device sets its scheduling policy).</param>
    public CryptoLanes(int lanes, string name, CancellationToken stopped, Action<string>? onStart = null)
    {
        Lanes = Math.Clamp(lanes, 1, Protocol.Keypair.MaxLanes);
        _stopped = stopped;
        _helpers = new Helper[Lanes - 1];
        for (int i = 0; i < _helpers.Length; i++)
        {
            int lane = i + 1;
            var helper = new Helper();
            string threadName = $"{name}-{lane}";
            helper.Thread = new Thread(() =>
            {
                onStart?.Invoke(threadName);
                HelperLoop(helper, lane);
            }) { Name = threadName, IsBackground = true };
            _helpers[i] = helper;
            helper.Thread.Start();
        }
    }

    /// <summary>Batches that were split over the lanes so far.</summary>
    public long ParallelRuns => Interlocked.Read(ref _parallelRuns);

    private long _parallelRuns;

    /// <summary>How many lanes (threads) share a batch.</summary>
    public int Lanes { get; }

    /// <summary>Runs <paramref name="work"/>(lane, from, to) over [0, count), split over the lanes; returns when all are done.</summary>
    public void Run(int count, Action<int, int, int> work)
    {
        if (count < MinParallel || Lanes == 1)
        {
            work(0, 0, count);
            return;
        }
        Interlocked.Increment(ref _parallelRuns);
        _work = work;
        _count = count;
        _done.Reset();
        Volatile.Write(ref _pending, _helpers.Length);
        foreach (Helper h in _helpers)
            h.Go.Release();
        (int from, int to) = Share(0);
        work(0, from, to);
        // The helpers' shares are as large as ours: a few spins often see them finish; then block (never burn a core).
        var spin = new SpinWait();
        while (Volatile.Read(ref _pending) != 0 && !spin.NextSpinWillYield)
            spin.SpinOnce();
        if (Volatile.Read(ref _pending) != 0)
            _done.Wait(_stopped);
        _work = null;
        if (Interlocked.Exchange(ref _failure, null) is { } failure)
            throw new InvalidOperationException("a crypto lane failed", failure);
    }

    private (int From, int To) Share(int lane)
    {
        int per = (_count + Lanes - 1) / Lanes;
        int from = Math.Min(_count, lane * per);
        return (from, Math.Min(_count, from + per));
    }

    private void HelperLoop(Helper helper, int lane)
    {
        try
        {
            while (true)
            {
                helper.Go.Wait(_stopped);
                try
                {
                    (int from, int to) = Share(lane);
                    if (from < to)
                        _work!(lane, from, to);
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    _failure = e; // a bug: the owner rethrows it (and its loop stops the device)
                }
                finally
                {
                    if (Interlocked.Decrement(ref _pending) == 0)
                        _done.Set();
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (ObjectDisposedException)
        {
        }
    }

    public void Dispose()
    {
        foreach (Helper h in _helpers)
            h.Thread?.Join(TimeSpan.FromSeconds(5));
        _done.Dispose();
    }
}
