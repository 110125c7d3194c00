using System.Globalization;
using System.Text;

namespace OmniKernels.IO;

/// <summary>What every file reader shares: opening a path so that each failure is one line naming the file.</summary>
internal static class InputFile
{
    /// <summary>
    /// Opens <paramref name="path"/> and hands the stream to <paramref name="read"/>; a missing file, an open
    /// failure or an I/O error becomes the exception <paramref name="error"/> makes from a one-line message.
    /// </summary>
    public static T Read<T>(string path, Func<Stream, T> read, Func<string, Exception> error)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path))
            throw error($"{path}: file not found");
        FileStream stream;
        try
        {
            stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1 << 16);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw error(ex is FileNotFoundException or DirectoryNotFoundException
                ? $"{path}: file not found"
                : $"{path}: cannot open: {OneLine(ex.Message)}");
        }
        using (stream)
        {
            try
            {
                return read(stream);
            }
            catch (IOException ex)
            {
                throw error($"{path}: read failed: {OneLine(ex.Message)}");
            }
        }
    }

    /// <summary>Text made safe for a one-line message: line breaks and control characters escaped.</summary>
    public static string OneLine(string text)
    {
        var sb = new StringBuilder(text.Length);
        foreach (char c in text)
        {
            if (c == '\n') sb.Append("\\n");
            else if (c == '\r') sb.Append("\\r");
            else if (char.IsControl(c)) sb.Append(CultureInfo.InvariantCulture, $"\\x{(int)c:x2}");
            else sb.Append(c);
        }
        return sb.ToString();
    }
}
