using System.Globalization;
using NUnit.Framework;
using OmniKernels.Cli;

namespace OmniKernels.Tests;

/// <summary><c>omni op … --schedule gpu|cpu</c>: the schedule that ran is printed and its result matches NumPy's float64.</summary>
[TestFixture]
public sealed class CliScheduleTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp()
    {
        _dir = Path.Combine(Path.GetTempPath(), "omni-schedule-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
    }

    [TearDown]
    public void TearDown()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    [TestCase("gpu")]
    [TestCase("cpu")]
    public void MatMulOnTheForcedSchedule_MatchesNumpy(string schedule)
    {
        NumPy.Run("""
            d = sys.argv[1]
            np.save(d + '/a.npy', np.random.default_rng(7).standard_normal((140, 37)).astype(np.float32))
            np.save(d + '/b.npy', np.random.default_rng(8).standard_normal((37, 150)).astype(np.float32))
            """, _dir);
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = Program.Run(["op", "matmul", "--in", $"a={_dir}/a.npy", "--in", $"b={_dir}/b.npy", "--out", $"{_dir}/c.npy", "--schedule", schedule], stdout, stderr);
        Assert.That(code, Is.EqualTo(0), $"stderr: {stderr}");
        Assert.That(stdout.ToString(), Does.Contain($"({schedule} schedule)"));
        var err = NumPy.Run("""
            d = sys.argv[1]
            ref = np.load(d + '/a.npy').astype(np.float64) @ np.load(d + '/b.npy').astype(np.float64)
            c = np.load(d + '/c.npy').astype(np.float64)
            print(repr(float(np.linalg.norm(c - ref) / np.linalg.norm(ref))) if c.shape == ref.shape and np.isfinite(c).all() else '1e308')
            """, _dir);
        Assert.That(double.Parse(err.Trim(), CultureInfo.InvariantCulture), Is.LessThan(1e-5));
    }

    [Test]
    public void UnknownSchedule_IsBadInput()
    {
        var stderr = new StringWriter();
        int code = Program.Run(["op", "add", "--in", "a=x.npy", "--in", "b=x.npy", "--out", $"{_dir}/y.npy", "--schedule", "tpu"], new StringWriter(), stderr);
        Assert.That(code, Is.EqualTo(2));
        Assert.That(stderr.ToString(), Does.Contain("tpu"));
    }
}
