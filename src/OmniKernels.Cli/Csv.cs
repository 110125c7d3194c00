using System.Text;

namespace OmniKernels.Cli;

/// <summary>RFC 4180 CSV: a header row, fields optionally double-quoted ("" inside quotes is one quote).</summary>
internal static class Csv
{
    public sealed record Table(string[] Header, List<string[]> Rows);

    /// <exception cref="ArgumentException">An unterminated quote, or a row whose field count differs from the header's (named by line).</exception>
    public static Table Read(string path)
    {
        var text = File.ReadAllText(path);
        var rows = new List<(int Line, string[] Fields)>();
        var fields = new List<string>();
        var field = new StringBuilder();
        bool quoted = false, any = false;
        int line = 1, rowLine = 1;
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (quoted)
            {
                if (c == '"' && i + 1 < text.Length && text[i + 1] == '"') { field.Append('"'); i++; }
                else if (c == '"') quoted = false;
                else { field.Append(c); if (c == '\n') line++; }
                continue;
            }
            switch (c)
            {
                case '"' when field.Length == 0: quoted = true; any = true; break;
                case ',': fields.Add(field.ToString()); field.Clear(); any = true; break;
                case '\r': break;
                case '\n':
                    if (any || field.Length > 0) { fields.Add(field.ToString()); rows.Add((rowLine, fields.ToArray())); }
                    fields.Clear(); field.Clear(); any = false; rowLine = ++line;
                    break;
                default: field.Append(c); any = true; break;
            }
        }
        if (quoted) throw new ArgumentException($"{path}: line {rowLine}: a quoted field is never closed");
        if (any || field.Length > 0) { fields.Add(field.ToString()); rows.Add((rowLine, fields.ToArray())); }
        if (rows.Count == 0) throw new ArgumentException($"{path}: empty, expected a header row");
        var header = rows[0].Fields.Select(h => h.Trim()).ToArray();
        foreach (var (l, f) in rows.Skip(1))
            if (f.Length != header.Length) throw new ArgumentException($"{path}: line {l} has {f.Length} fields, the header {header.Length}");
        return new Table(header, rows.Skip(1).Select(r => r.Fields).ToList());
    }
}
