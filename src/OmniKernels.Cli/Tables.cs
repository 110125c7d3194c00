using Spectre.Console;

namespace OmniKernels.Cli;

/// <summary>
/// Tables for people: Spectre.Console's when the writer is a terminal, aligned plain text otherwise
/// (pipes, files and tests get no escape codes or box characters).
/// </summary>
internal static class Tables
{
    /// <summary>Whether <paramref name="o"/> is the process's console and that console is a terminal.</summary>
    public static bool IsTerminal(TextWriter o) => ReferenceEquals(o, Console.Out) && !Console.IsOutputRedirected;

    public static void Print(TextWriter o, string title, string[] headers, IEnumerable<string[]> rows)
    {
        var data = rows.ToArray();
        if (IsTerminal(o))
        {
            var table = new Table { Title = new TableTitle(title), Border = TableBorder.Rounded };
            foreach (var h in headers) table.AddColumn(new TableColumn(Markup.Escape(h)));
            foreach (var r in data) table.AddRow(r.Select(Markup.Escape).ToArray());
            AnsiConsole.Write(table);
            return;
        }
        o.WriteLine(title);
        var widths = headers.Select((h, i) => data.Select(r => r[i].Length).Append(h.Length).Max()).ToArray();
        string Line(string[] cells) => "  " + string.Join("  ", cells.Select((c, i) => c.PadRight(widths[i]))).TrimEnd();
        o.WriteLine(Line(headers));
        o.WriteLine(Line(widths.Select(w => new string('-', w)).ToArray()));
        foreach (var r in data) o.WriteLine(Line(r));
        o.WriteLine();
    }

    /// <summary>
    /// Runs <paramref name="work"/> with a progress callback (done, total): a Spectre.Console bar on a
    /// terminal, a line per tenth on <paramref name="err"/> otherwise.
    /// </summary>
    public static async Task WithProgress(TextWriter o, TextWriter err, string what, Func<Action<long, long>, Task> work)
    {
        if (IsTerminal(o))
        {
            await AnsiConsole.Progress().StartAsync(async p =>
            {
                var task = p.AddTask(Markup.Escape(what));
                await work((done, total) =>
                {
                    task.MaxValue = total;
                    task.Value = done;
                });
            });
            return;
        }
        long shown = -1;
        await work((done, total) =>
        {
            long tenth = total == 0 ? 10 : done * 10 / total;
            if (Interlocked.Exchange(ref shown, tenth) != tenth) err.WriteLine($"{what}: {done}/{total}");
        });
    }
}
