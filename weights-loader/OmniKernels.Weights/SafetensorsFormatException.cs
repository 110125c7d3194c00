namespace OmniKernels.Weights;

/// <summary>
/// A safetensors file, a shard index or a requested tensor is missing, malformed or not what the
/// caller expected. The message is one line naming the file, the tensor where there is one, and
/// what is wrong.
/// </summary>
public sealed class SafetensorsFormatException : Exception
{
    /// <summary>Creates the exception; <paramref name="message"/> should already name the file and tensor.</summary>
    public SafetensorsFormatException(string message, string? filePath = null, string? tensorName = null, Exception? inner = null)
        : base(message, inner)
    {
        FilePath = filePath;
        TensorName = tensorName;
    }

    /// <summary>The file at fault (a shard or the index), when one is known.</summary>
    public string? FilePath { get; }

    /// <summary>The tensor at fault, when there is one.</summary>
    public string? TensorName { get; }
}
