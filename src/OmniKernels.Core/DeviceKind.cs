namespace OmniKernels;

/// <summary>What a user asks for with <c>--device</c> or <c>OMNI_DEVICE</c>.</summary>
public enum DeviceKind
{
    /// <summary>CUDA &gt; OpenCL GPU &gt; OpenCL CPU (PoCL) &gt; ILGPU CPU emulator.</summary>
    Auto,
    /// <summary>An NVIDIA GPU through ILGPU's CUDA backend.</summary>
    Cuda,
    /// <summary>An OpenCL device (a GPU first, else a CPU device such as PoCL).</summary>
    OpenCL,
    /// <summary>ILGPU's CPU accelerator: an emulator, for small shapes only.</summary>
    Cpu,
    /// <summary>The float64 CPU reference implementation (no accelerator).</summary>
    Reference,
}

/// <summary>Parses device names.</summary>
public static class DeviceKinds
{
    /// <summary>Environment variable that overrides <c>auto</c>.</summary>
    public const string EnvironmentVariable = "OMNI_DEVICE";

    /// <summary>
    /// Environment variable naming a kind that must be present, optionally with a device name after a colon
    /// (CI sets <c>opencl:pocl</c>: an OpenCL device, and it must be PoCL's CPU device).
    /// </summary>
    public const string RequireVariable = "OMNI_REQUIRE_DEVICE";

    /// <summary>Parses auto, cuda, opencl, cpu or reference (case-insensitive).</summary>
    public static DeviceKind Parse(string name) => name.Trim().ToLowerInvariant() switch
    {
        "auto" or "" => DeviceKind.Auto,
        "cuda" => DeviceKind.Cuda,
        "opencl" => DeviceKind.OpenCL,
        "cpu" => DeviceKind.Cpu,
        "reference" => DeviceKind.Reference,
        _ => throw new ArgumentException($"unknown device '{name}': use auto, cuda, opencl, cpu or reference"),
    };

    /// <summary>
    /// The kind to use: an explicit request wins, else <c>OMNI_DEVICE</c>, else <see cref="DeviceKind.Auto"/>.
    /// </summary>
    public static DeviceKind Resolve(string? requested)
    {
        if (!string.IsNullOrWhiteSpace(requested)) return Parse(requested);
        var env = Environment.GetEnvironmentVariable(EnvironmentVariable);
        return string.IsNullOrWhiteSpace(env) ? DeviceKind.Auto : Parse(env);
    }

    /// <summary>The kind named by <c>OMNI_REQUIRE_DEVICE</c> (its part before any colon), or null when unset.</summary>
    public static DeviceKind? Required()
    {
        var env = Environment.GetEnvironmentVariable(RequireVariable);
        return string.IsNullOrWhiteSpace(env) ? null : Parse(env.Split(':', 2)[0]);
    }

    /// <summary>
    /// The device name <c>OMNI_REQUIRE_DEVICE</c> requires after its colon (<c>pocl</c> in <c>opencl:pocl</c>),
    /// or null when it names a kind only; matched by <see cref="DeviceEntry.Matches"/>.
    /// </summary>
    public static string? RequiredName()
    {
        var parts = Environment.GetEnvironmentVariable(RequireVariable)?.Split(':', 2);
        return parts is [_, var name] && !string.IsNullOrWhiteSpace(name) ? name.Trim() : null;
    }

    /// <summary>The requirement as written back in messages: <c>opencl</c> or <c>opencl:pocl</c>.</summary>
    public static string RequirementText() => Environment.GetEnvironmentVariable(RequireVariable)?.Trim() ?? "";

    /// <summary>Lower-case name as accepted by <see cref="Parse"/>.</summary>
    public static string Name(this DeviceKind kind) => kind.ToString().ToLowerInvariant();
}
