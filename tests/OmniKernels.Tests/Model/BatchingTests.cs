using NUnit.Framework;
using OmniKernels.Model;
using OmniKernels.Session;

namespace OmniKernels.Tests.Model;

/// <summary>
/// The batcher and the feature cache: concurrent mixed requests equal to sequential runs, results
/// bit-identical whatever batch they ran in, queue full / timeout / cancellation, cache hits equal to
/// misses, eviction, keys that change with the preprocessing options, flat memory over many requests.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class BatchingTests
{
    private static string RealBackend => Backends.Names.OrderBy(Backends.IsEmulator).First();

    private static OmniSession Open(OmniSessionOptions options) =>
        OmniSession.Load(ModelParityTests.ModelDir("tiny-omni"), options with { Context = Backends.Get(RealBackend) });

    private static IReadOnlyList<ModelParityTests.Case> Cases => ModelParityTests.Load("tiny-omni");

    private static void AssertSame(OmniResult expected, OmniResult actual, string what)
    {
        Assert.That(actual.TowersRun, Is.EqualTo(expected.TowersRun), what);
        foreach (var (m, e) in expected.Embeddings) Assert.That(actual.Embeddings[m], Is.EqualTo(e), $"{what}: {m} embedding bit for bit");
        Assert.That(actual.Fused, Is.EqualTo(expected.Fused), $"{what}: fused");
        Assert.That(actual.Gates, Is.EqualTo(expected.Gates), $"{what}: gates");
        Assert.That(actual.Logits, Is.EqualTo(expected.Logits), $"{what}: logits");
        Assert.That(actual.Similarities, Is.EqualTo(expected.Similarities), $"{what}: similarities");
    }

    [Test]
    public void ConcurrentMixedRequestsEqualSequentialRuns()
    {
        using var alone = Open(new OmniSessionOptions { MaxQueueDelay = TimeSpan.Zero, MaxBatch = 1, FeatureCacheBytes = 0 });
        using var batched = Open(new OmniSessionOptions { MaxQueueDelay = TimeSpan.FromMilliseconds(20), MaxBatch = 8, FeatureCacheBytes = 0 });
        var cases = Cases;
        var requests = cases.Select(ModelParityTests.Request).ToArray();
        var expected = requests.Select(alone.Run).ToArray();
        var results = new OmniResult[8, 50];
        Parallel.For(0, 8, new ParallelOptions { MaxDegreeOfParallelism = 8 }, t =>
        {
            var tasks = Enumerable.Range(0, 50).Select(i => batched.RunAsync(requests[(t * 7 + i) % requests.Length])).ToArray();
            Task.WaitAll(tasks);
            for (int i = 0; i < 50; i++) results[t, i] = tasks[i].Result;
        });
        for (int t = 0; t < 8; t++)
            for (int i = 0; i < 50; i++)
            {
                int k = (t * 7 + i) % requests.Length;
                AssertSame(expected[k], results[t, i], $"thread {t} request {i} ({cases[k].Name})");
            }
        var stats = batched.BatchStats;
        Assert.That(stats.Values.Max(s => (double)s.Items / s.Batches), Is.GreaterThan(1.0), "some tower ran batches larger than one");
        // And the batched session still matches PyTorch.
        ModelParityTests.Check(cases[^1], batched.Run(requests[^1]), ModelParityTests.Tolerance);
    }

    [Test]
    public void FullQueueRejectsAtOnceAndNothingLeaks()
    {
        var ctx = Backends.Get(RealBackend);
        ctx.Synchronize();
        long baseline = ctx.Pool.BytesInUse;
        using (var s = Open(new OmniSessionOptions { MaxQueueDelay = TimeSpan.FromMilliseconds(400), MaxBatch = 64, MaxQueueSize = 3, FeatureCacheBytes = 0 }))
        {
            var request = ModelParityTests.Request(Cases[1]);
            var queued = Enumerable.Range(0, 3).Select(_ => s.RunAsync(request)).ToArray();
            var e = Assert.Throws<QueueFullException>(() => s.RunAsync(request))!;
            Assert.That(e.Message, Does.Contain("MaxQueueSize"));
            Task.WaitAll(queued);
            Assert.That(queued.Select(q => q.Result.Embeddings[Modality.Text]), Is.All.EqualTo(queued[0].Result.Embeddings[Modality.Text]));
        }
        Assert.That(ctx.Pool.BytesInUse, Is.EqualTo(baseline), "disposing the session returns every plan and weight");
    }

    [Test]
    public void TimeoutAndCancellationDropOnlyTheirRequest()
    {
        using var s = Open(new OmniSessionOptions { MaxQueueDelay = TimeSpan.FromMilliseconds(150), MaxBatch = 64, RequestTimeout = TimeSpan.FromMilliseconds(50), FeatureCacheBytes = 0 });
        var request = ModelParityTests.Request(Cases[0]);
        var timedOut = s.RunAsync(request);
        var ex = Assert.Throws<AggregateException>(() => timedOut.Wait())!;
        Assert.That(ex.InnerException, Is.TypeOf<TimeoutException>());

        using var s2 = Open(new OmniSessionOptions { MaxQueueDelay = TimeSpan.FromMilliseconds(150), MaxBatch = 64, FeatureCacheBytes = 0 });
        using var cts = new CancellationTokenSource();
        var dropped = s2.RunAsync(request, cts.Token);
        var kept = s2.RunAsync(ModelParityTests.Request(Cases[1]));
        cts.Cancel();
        Assert.That(() => dropped.Wait(), Throws.InstanceOf<AggregateException>().With.InnerException.InstanceOf<TaskCanceledException>());
        ModelParityTests.Check(Cases[1], kept.Result, ModelParityTests.Tolerance);
    }

    [Test]
    public void CacheHitEqualsMissAndSkipsTheTower()
    {
        using var s = Open(new OmniSessionOptions { MaxQueueDelay = TimeSpan.Zero, FeatureCacheBytes = 1 << 20 });
        var c = Cases.Single(x => x.Name == "image_text_audio_video");
        var request = ModelParityTests.Request(c);
        var miss = s.Run(request);
        var hit = s.Run(request with { Profile = true });
        AssertSame(miss, hit, "hit against miss");
        ModelParityTests.Check(c, hit, ModelParityTests.Tolerance);
        Assert.That(hit.Profile!.Where(n => !n.Name.StartsWith("fusion.", StringComparison.Ordinal) && !n.Name.StartsWith("head.", StringComparison.Ordinal)), Is.Empty,
            "a fully cached request runs only the fusion and heads");
        var stats = s.CacheStats!;
        Assert.That(stats.Hits, Is.EqualTo(4));
        Assert.That(stats.Misses, Is.EqualTo(4));
        Assert.That(stats.Entries, Is.EqualTo(4));
    }

    [Test]
    public void SmallBudgetEvictsLeastRecentlyUsed()
    {
        var cache = new FeatureCache(400);
        using var s = Open(new OmniSessionOptions { MaxQueueDelay = TimeSpan.Zero, FeatureCache = cache });
        var texts = Cases.Where(c => c.Json.GetProperty("inputs").TryGetProperty("text", out _)).Select(ModelParityTests.Request)
            .Select(r => new OmniRequest { TextIds = r.TextIds }).DistinctBy(r => string.Join(',', r.TextIds!)).Take(4).ToArray();
        foreach (var r in texts) s.Run(r);
        var stats = cache.Stats;
        Assert.That(stats.Bytes, Is.LessThanOrEqualTo(400));
        Assert.That(stats.Evictions, Is.GreaterThan(0));
        s.Run(texts[^1]);
        Assert.That(cache.Stats.Hits, Is.EqualTo(1), "the most recent entry survived");
        s.Run(texts[0]);
        Assert.That(cache.Stats.Hits, Is.EqualTo(1), "the oldest was evicted");
    }

    [Test]
    public void ChangedPreprocessingOrModelMissesASharedCache()
    {
        var cache = new FeatureCache(1 << 20);
        var image = ModelParityTests.Request(Cases.Single(c => c.Name == "image_png"));
        using (var bicubic = Open(new OmniSessionOptions { FeatureCache = cache, MaxQueueDelay = TimeSpan.Zero }))
        {
            bicubic.Run(image);
            bicubic.Run(image);
        }
        Assert.That(cache.Stats.Hits, Is.EqualTo(1));
        using (var bilinear = Open(new OmniSessionOptions { FeatureCache = cache, MaxQueueDelay = TimeSpan.Zero, ImageResize = Kernels.ResizeFilter.Bilinear }))
            bilinear.Run(image);
        Assert.That(cache.Stats.Hits, Is.EqualTo(1), "another resize filter is another key");
        using (var other = OmniSession.Load(ModelParityTests.ModelDir("tiny-omni-tubelet"),
                   new OmniSessionOptions { Context = Backends.Get(RealBackend), FeatureCache = cache, MaxQueueDelay = TimeSpan.Zero }))
            other.Run(ModelParityTests.Request(ModelParityTests.Load("tiny-omni-tubelet")[0]));
        Assert.That(cache.Stats.Hits, Is.EqualTo(1), "another model is another key");
    }

    [Test]
    public void SoakKeepsManagedAndDeviceMemoryFlat()
    {
        // Which plans a window needs (batch bucket, text length, modality set) depends on timing, so
        // a rare window may first appear during the soak: device memory may grow by exactly the new
        // plans' arenas and by nothing else.
        using var s = Open(new OmniSessionOptions { MaxQueueDelay = TimeSpan.FromMilliseconds(1), MaxBatch = 2, FeatureCacheBytes = 0 });
        var requests = Cases.Select(ModelParityTests.Request).ToArray();
        void Burst(int count) => Task.WaitAll(Enumerable.Range(0, count).Select(i => s.RunAsync(requests[i % requests.Length])).ToArray());
        long PlanDevice() => s.PlanArenas.Where(a => a > 0).Sum(BufferPool.SizeClass);
        for (int i = 0; i < 4; i++) Burst(200);
        GC.Collect();
        GC.WaitForPendingFinalizers();
        long managed = GC.GetTotalMemory(true), device = s.Device.Pool.BytesInUse, allocations = s.Device.Pool.DeviceAllocations;
        long planDevice = PlanDevice();
        int plans = s.PlanArenas.Length;
        for (int round = 0; round < 8; round++) Burst(200);
        GC.Collect();
        GC.WaitForPendingFinalizers();
        int newPlans = s.PlanArenas.Length - plans;
        Assert.That(s.Device.Pool.BytesInUse - device, Is.EqualTo(PlanDevice() - planDevice), $"device bytes beyond the {newPlans} plans first built in the soak");
        Assert.That(s.Device.Pool.DeviceAllocations - allocations, Is.LessThanOrEqualTo(newPlans), "no device allocation after warm-up but new plans' arenas");
        Assert.That(GC.GetTotalMemory(true) - managed, Is.LessThan(8L << 20), "managed heap stays flat over 1,600 requests after 800 of warm-up");
    }
}
