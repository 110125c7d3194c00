namespace OmniKernels;

/// <summary>
/// Which shape of tiling a kernel family's launcher uses (docs/architecture.md, "two shapes of
/// tiling"): CPU-shaped (a work-item owns a register tile; PoCL vectorizes it) or GPU-shaped
/// (work-groups stage tiles through shared memory and reduce together).
/// </summary>
public enum KernelSchedule
{
    /// <summary>Work-group size 1, a register tile per work-item.</summary>
    Cpu,
    /// <summary>Work-groups sharing tiles through shared memory, group reductions.</summary>
    Gpu,
}

/// <summary>Parses and resolves schedule names.</summary>
public static class KernelSchedules
{
    /// <summary>Environment variable that forces a schedule on every device (<c>cpu</c> or <c>gpu</c>).</summary>
    public const string EnvironmentVariable = "OMNI_SCHEDULE";

    /// <summary>cpu or gpu (case-insensitive); auto or empty gives null (the device decides).</summary>
    public static KernelSchedule? Parse(string? name) => (name ?? "").Trim().ToLowerInvariant() switch
    {
        "" or "auto" => null,
        "cpu" => KernelSchedule.Cpu,
        "gpu" => KernelSchedule.Gpu,
        _ => throw new ArgumentException($"unknown schedule '{name}': use auto, cpu or gpu"),
    };

    /// <summary>
    /// The schedule to use: an explicit request wins, else <c>OMNI_SCHEDULE</c>, else the device's own
    /// shape (CPU-shaped on CPU devices, GPU-shaped on GPUs).
    /// </summary>
    public static KernelSchedule Resolve(KernelSchedule? requested, bool cpuLike) =>
        requested ?? Parse(Environment.GetEnvironmentVariable(EnvironmentVariable)) ?? (cpuLike ? KernelSchedule.Cpu : KernelSchedule.Gpu);

    /// <summary>Lower-case name as accepted by <see cref="Parse"/>.</summary>
    public static string Name(this KernelSchedule schedule) => schedule == KernelSchedule.Cpu ? "cpu" : "gpu";
}
