using System.Reflection;
using ILGPU.Runtime.OpenCL;

namespace OmniKernels;

/// <summary>
/// The one place that lets ILGPU 1.5.3 use PoCL's CPU device. ILGPU refuses OpenCL devices that do
/// not report generic-address-space support; PoCL 3.1's CPU device does not report it although
/// its flat address space runs ILGPU's generated code. The capability has no public setter, so it
/// is set through its backing field, for that device only, and every accelerator created this way
/// must pass <see cref="SelfTest"/> before it is used.
/// </summary>
internal static class PoclSupport
{
    private const string BackingField = "<GenericAddressSpace>k__BackingField";

    /// <summary>True for PoCL's CPU device.</summary>
    public static bool IsPoclCpu(CLDevice device) =>
        device.DeviceType == CLDeviceType.CL_DEVICE_TYPE_CPU &&
        device.PlatformName.Contains("Portable Computing Language", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// The field the enablement writes. Throws, naming the ILGPU version, if an upgrade moved it:
    /// a test calls this so that such an upgrade fails loudly.
    /// </summary>
    public static FieldInfo GenericAddressSpaceField()
    {
        var field = typeof(CLCapabilityContext).GetField(BackingField, BindingFlags.Instance | BindingFlags.NonPublic);
        if (field is null || field.FieldType != typeof(bool))
            throw new InvalidOperationException(
                $"ILGPU {typeof(CLDevice).Assembly.GetName().Version} no longer has {nameof(CLCapabilityContext)}.{BackingField}: " +
                "the PoCL enablement in PoclSupport must be redone for this ILGPU version");
        return field;
    }

    /// <summary>Marks a PoCL CPU device as supporting the generic address space. No-op for other devices.</summary>
    public static bool Enable(CLDevice device)
    {
        if (!IsPoclCpu(device) || device.Capabilities.GenericAddressSpace) return false;
        GenericAddressSpaceField().SetValue(device.Capabilities, true);
        if (!device.Capabilities.GenericAddressSpace)
            throw new InvalidOperationException("setting GenericAddressSpace on the PoCL device had no effect");
        return true;
    }
}
