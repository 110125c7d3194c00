using System.IO.Hashing;
using System.Runtime.InteropServices;
using System.Text;

namespace OmniKernels.Session;

/// <summary>Counters of a <see cref="FeatureCache"/>.</summary>
public sealed record FeatureCacheStats(long Hits, long Misses, long Evictions, int Entries, long Bytes, long Budget);

/// <summary>
/// Per-modality tower outputs (the projected embedding, and the token states where the fusion reads
/// them) kept under an XxHash128 key of the model's identity (a hash of its files, taken at load),
/// the modality, the preprocessing options and the input's bytes, so that a hit returns exactly
/// what a miss computes. Least recently used entries go first when the byte budget is exceeded;
/// entries are immutable and handed out by reference to the session only (results get copies), so
/// an entry in use is never changed by an eviction. Thread-safe; may be shared by several sessions.
/// </summary>
public sealed class FeatureCache
{
    private readonly LinkedList<(UInt128 Key, TowerOutput Value)> _lru = new();
    private readonly Dictionary<UInt128, LinkedListNode<(UInt128 Key, TowerOutput Value)>> _map = [];
    private readonly Lock _lock = new();
    private long _hits, _misses, _evictions, _bytes;

    /// <summary>A cache holding at most <paramref name="budgetBytes"/> bytes of outputs (0 keeps nothing).</summary>
    public FeatureCache(long budgetBytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(budgetBytes);
        Budget = budgetBytes;
    }

    /// <summary>The byte budget.</summary>
    public long Budget { get; }

    /// <summary>A snapshot of the counters.</summary>
    public FeatureCacheStats Stats
    {
        get
        {
            lock (_lock) return new FeatureCacheStats(_hits, _misses, _evictions, _map.Count, _bytes, Budget);
        }
    }

    internal bool TryGet(UInt128 key, out TowerOutput value)
    {
        lock (_lock)
        {
            if (_map.TryGetValue(key, out var node))
            {
                _lru.Remove(node);
                _lru.AddFirst(node);
                _hits++;
                value = node.Value.Value;
                return true;
            }
            _misses++;
            value = null!;
            return false;
        }
    }

    internal void Add(UInt128 key, TowerOutput value)
    {
        long size = value.Bytes;
        if (size > Budget) return;
        lock (_lock)
        {
            if (_map.ContainsKey(key)) return;
            _map[key] = _lru.AddFirst((key, value));
            _bytes += size;
            while (_bytes > Budget)
            {
                var last = _lru.Last!;
                _lru.RemoveLast();
                _map.Remove(last.Value.Key);
                _bytes -= last.Value.Value.Bytes;
                _evictions++;
            }
        }
    }

    /// <summary>The key of one input: the parts are hashed in order, each prefixed by its length.</summary>
    internal static UInt128 Key(UInt128 model, string modality, string options, params ReadOnlySpan<ReadOnlyMemory<byte>> input)
    {
        var h = new XxHash128();
        Span<byte> u = stackalloc byte[16];
        MemoryMarshal.Write(u, in model);
        h.Append(u);
        Part(h, Encoding.UTF8.GetBytes(modality));
        Part(h, Encoding.UTF8.GetBytes(options));
        foreach (var part in input) Part(h, part.Span);
        return h.GetCurrentHashAsUInt128();
    }

    private static void Part(XxHash128 h, ReadOnlySpan<byte> bytes)
    {
        Span<byte> n = stackalloc byte[8];
        MemoryMarshal.Write(n, (long)bytes.Length);
        h.Append(n);
        h.Append(bytes);
    }

    /// <summary>XxHash128 of every file of a model folder (names and contents, in name order): the model's identity.</summary>
    internal static UInt128 ModelIdentity(string dir)
    {
        var h = new XxHash128();
        var buffer = new byte[1 << 20];
        foreach (var file in Directory.GetFiles(dir).Order(StringComparer.Ordinal))
        {
            Part(h, Encoding.UTF8.GetBytes(Path.GetFileName(file)));
            using var s = File.OpenRead(file);
            int n;
            while ((n = s.Read(buffer)) > 0) h.Append(buffer.AsSpan(0, n));
        }
        return h.GetCurrentHashAsUInt128();
    }
}
