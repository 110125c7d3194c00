using System.Diagnostics;
using OmniKernels.Model;

namespace OmniKernels.Session;

/// <summary>The session's queue is full: the request was rejected at once, not queued.</summary>
public sealed class QueueFullException(string message) : Exception(message);

/// <summary>A queued request: its prepared inputs and the task its caller awaits.</summary>
internal sealed class PendingRequest(OmniRequest request, Dictionary<Modality, TowerInput> inputs, CancellationToken cancel, long deadline)
{
    public OmniRequest Request { get; } = request;

    public Dictionary<Modality, TowerInput> Inputs { get; } = inputs;

    public CancellationToken Cancel { get; } = cancel;

    /// <summary>Stopwatch timestamp after which the request times out (long.MaxValue: never).</summary>
    public long Deadline { get; } = deadline;

    public long Enqueued { get; } = Stopwatch.GetTimestamp();

    public TaskCompletionSource<OmniResult> Result { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public CancellationTokenRegistration Registration { get; set; }
}

/// <summary>
/// Triton-style dynamic batching on one device stream: a single scheduler thread owns every launch;
/// it takes the first queued request, waits up to <c>MaxQueueDelay</c> for others (or until
/// <c>MaxBatch</c> are queued), and hands the window to the session, which runs each tower once over
/// the window's requests that carry its modality and the fusion once per modality set. A full queue
/// rejects at once; a request cancelled or timed out while queued leaves without touching the others.
/// </summary>
internal sealed class Batcher : IDisposable
{
    private readonly Queue<PendingRequest> _queue = new();
    private readonly Lock _lock = new();
    private readonly SemaphoreSlim _signal = new(0);
    private readonly Action<List<PendingRequest>> _process;
    private readonly OmniSessionOptions _options;
    private readonly Thread _thread;
    private readonly CancellationTokenSource _stop = new();

    public Batcher(OmniSessionOptions options, Action<List<PendingRequest>> process)
    {
        _options = options;
        _process = process;
        _thread = new Thread(Loop) { IsBackground = true, Name = "omni-batcher" };
        _thread.Start();
    }

    public Task<OmniResult> Enqueue(PendingRequest p)
    {
        lock (_lock)
        {
            if (_stop.IsCancellationRequested) throw new ObjectDisposedException(nameof(OmniSession));
            if (_queue.Count >= _options.MaxQueueSize)
                throw new QueueFullException($"the session's queue holds {_queue.Count} requests, its limit (MaxQueueSize); try again later");
            _queue.Enqueue(p);
        }
        if (p.Cancel.CanBeCanceled)
            p.Registration = p.Cancel.Register(() => p.Result.TrySetCanceled(p.Cancel));
        _signal.Release();
        return p.Result.Task;
    }

    private void Loop()
    {
        var window = new List<PendingRequest>();
        while (true)
        {
            try
            {
                _signal.Wait(_stop.Token);
            }
            catch (OperationCanceledException)
            {
                break;
            }
            // Wait for more requests until the first one has waited MaxQueueDelay or a batch is full.
            long first;
            lock (_lock)
            {
                if (_queue.Count == 0) continue;
                first = _queue.Peek().Enqueued;
            }
            long delay = (long)(_options.MaxQueueDelay.TotalSeconds * Stopwatch.Frequency);
            while (true)
            {
                int count;
                lock (_lock) count = _queue.Count;
                long left = first + delay - Stopwatch.GetTimestamp();
                if (count >= _options.MaxBatch || left <= 0) break;
                Thread.Sleep(TimeSpan.FromSeconds(Math.Min(left, Stopwatch.Frequency / 2000) / (double)Stopwatch.Frequency));
            }
            window.Clear();
            lock (_lock)
            {
                while (_queue.Count > 0 && window.Count < _options.MaxBatch * 4) window.Add(_queue.Dequeue());
            }
            // Each dequeued request used one release: consume the others' signals.
            for (int i = 1; i < window.Count; i++) _signal.Wait(0);
            long now = Stopwatch.GetTimestamp();
            window.RemoveAll(p =>
            {
                if (p.Result.Task.IsCompleted) return true;
                if (now <= p.Deadline) return false;
                p.Result.TrySetException(new TimeoutException($"the request waited {(now - p.Enqueued) * 1000.0 / Stopwatch.Frequency:F0} ms in the queue, past its timeout"));
                return true;
            });
            if (window.Count == 0) continue;
            try
            {
                _process(window);
            }
            catch (Exception e)
            {
                foreach (var p in window) p.Result.TrySetException(e);
            }
            foreach (var p in window) p.Registration.Dispose();
        }
        lock (_lock)
            while (_queue.Count > 0) _queue.Dequeue().Result.TrySetException(new ObjectDisposedException(nameof(OmniSession)));
    }

    /// <summary>Stops the scheduler after the window it is running; queued requests fail with ObjectDisposedException.</summary>
    public void Dispose()
    {
        lock (_lock) _stop.Cancel();
        _thread.Join();
        _signal.Dispose();
        _stop.Dispose();
    }
}
