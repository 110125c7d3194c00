using NUnit.Framework;

namespace OmniKernels.Tests;

/// <summary>How OMNI_REQUIRE_DEVICE is read (kind, optional device name) and how a name picks a device.</summary>
[TestFixture]
[NonParallelizable]
public sealed class DeviceRequirementTests
{
    [TestCase("opencl:pocl", DeviceKind.OpenCL, "pocl")]
    [TestCase("opencl", DeviceKind.OpenCL, null)]
    [TestCase(" CUDA:H200 ", DeviceKind.Cuda, "H200")]
    [TestCase("cpu:", DeviceKind.Cpu, null)]
    public void ParsesKindAndName(string value, DeviceKind kind, string? name)
    {
        var saved = Environment.GetEnvironmentVariable(DeviceKinds.RequireVariable);
        try
        {
            Environment.SetEnvironmentVariable(DeviceKinds.RequireVariable, value);
            Assert.That(DeviceKinds.Required(), Is.EqualTo(kind));
            Assert.That(DeviceKinds.RequiredName(), Is.EqualTo(name));
            Environment.SetEnvironmentVariable(DeviceKinds.RequireVariable, "tpu:pocl");
            Assert.Throws<ArgumentException>(() => DeviceKinds.Required());
        }
        finally
        {
            Environment.SetEnvironmentVariable(DeviceKinds.RequireVariable, saved);
        }
    }

    [Test]
    public void PoclIsNamedByItsPlatformAndOthersByTheirName()
    {
        foreach (var entry in Backends.All.Select(c => c.Entry))
        {
            Assert.That(entry.Matches("pocl"), Is.EqualTo(entry.IsPocl), $"{entry}");
            Assert.That(entry.Matches(entry.Name.ToUpperInvariant()), Is.True, $"{entry}: its own name");
            Assert.That(entry.Matches("no-such-device"), Is.False, $"{entry}");
        }
    }
}
