using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using OmniKernels.Model;
using OmniKernels.Search;
using OmniKernels.Session;

namespace OmniKernels.Cli;

/// <summary>
/// <c>omni index</c> (embed a folder of images into an index folder) and <c>omni search</c> (the
/// nearest indexed images to a text, speech or image query, scored on the device); docs/cli.md.
/// </summary>
internal static class SearchCommands
{
    public static IEnumerable<Command> Create(Option<string?> device, TextWriter o, TextWriter err) => [Index(device, o, err), Search(device, o, err)];

    private static Option<string> ModelOption() => new("--model") { Description = "model folder (config.json, safetensors, tokenizer)", Required = true };

    private static Command Index(Option<string?> device, TextWriter o, TextWriter err)
    {
        var model = ModelOption();
        var images = new Option<string>("--images") { Description = "folder of images (PNG, JPEG, GIF, BMP, .npy [3, H, W]; subfolders too)", Required = true };
        var output = new Option<string>("--out") { Description = "index folder to write (embeddings.npy, files.txt); an older index there is replaced", Required = true };
        var int8 = new Option<bool>("--int8") { Description = "quantize Linear weights to INT8 at load" };
        var command = new Command("index", "Embed every image of a folder into a search index") { model, images, output, int8, device };
        command.SetAction(r => WithSession("index", r.GetValue(model)!, r.GetValue(int8), r.GetValue(device), err, session =>
        {
            var progress = new Inline(p => err.WriteLine($"omni index: {p.Done}/{p.Total} images"));
            var index = Retrieval.IndexImagesAsync(session, r.GetValue(images)!, progress).GetAwaiter().GetResult();
            index.Save(r.GetValue(output)!);
            o.WriteLine($"indexed {index.Count} images ({index.Dimension}-d, model {session.ModelName}) into {r.GetValue(output)}");
            return 0;
        }));
        return command;
    }

    private static Command Search(Option<string?> device, TextWriter o, TextWriter err)
    {
        var model = ModelOption();
        var indexPath = new Option<string>("--index") { Description = "index folder written by omni index", Required = true };
        var text = new Option<string?>("--text") { Description = "text query" };
        var audio = new Option<string?>("--audio") { Description = "spoken query: WAV, or a .npy log-mel" };
        var image = new Option<string?>("--image") { Description = "image query" };
        var top = new Option<int>("--top") { Description = "how many results", DefaultValueFactory = _ => 10 };
        var int8 = new Option<bool>("--int8") { Description = "quantize Linear weights to INT8 at load" };
        var json = new Option<bool>("--json") { Description = "print {\"query\", \"hits\": [{rank, score, file}]}" };
        var command = new Command("search", "The indexed images nearest a text, speech or image query, by cosine on the device") { indexPath, model, text, audio, image, top, int8, json, device };
        command.SetAction(r =>
        {
            EmbeddingIndex index;
            OmniRequest query;
            string kind;
            try
            {
                var given = new[] { ("text", r.GetValue(text)), ("audio", r.GetValue(audio)), ("image", r.GetValue(image)) }.Where(g => g.Item2 is not null).ToArray();
                if (given.Length != 1) throw new ArgumentException("give exactly one of --text, --audio, --image");
                (kind, var value) = given[0];
                query = kind switch
                {
                    "text" => new OmniRequest { Text = value },
                    "audio" => new OmniRequest { Audio = RequestFiles.Audio(value!) },
                    _ => new OmniRequest { Image = RequestFiles.Image(value!) },
                };
                if (r.GetValue(top) < 1) throw new ArgumentException($"--top {r.GetValue(top)} must be at least 1");
                index = EmbeddingIndex.Load(r.GetValue(indexPath)!);
                if (r.GetValue(top) > index.Count) throw new ArgumentException($"--top {r.GetValue(top)} exceeds the index's {index.Count} items");
            }
            catch (Exception e) when (e is ArgumentException or IndexFormatException)
            {
                err.WriteLine($"omni search: {e.Message}");
                return 2;
            }
            return WithSession("search", r.GetValue(model)!, r.GetValue(int8), r.GetValue(device), err, session =>
            {
                var hits = Retrieval.SearchAsync(session, index, query, r.GetValue(top)).GetAwaiter().GetResult();
                if (r.GetValue(json))
                {
                    o.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object>
                    {
                        ["query"] = kind,
                        ["hits"] = hits.Select(h => new Dictionary<string, object> { ["rank"] = h.Rank, ["score"] = h.Score, ["file"] = h.File }).ToArray(),
                    }));
                }
                else
                {
                    foreach (var h in hits) o.WriteLine(string.Format(CultureInfo.InvariantCulture, "{0,4}  {1,8:F4}  {2}", h.Rank, h.Score, h.File));
                }
                return 0;
            });
        });
        return command;
    }

    /// <summary>Loads the session and runs <paramref name="work"/>: bad input exits 2, a failed device 3, each with one line on stderr.</summary>
    private static int WithSession(string name, string modelDir, bool int8, string? device, TextWriter err, Func<OmniSession, int> work)
    {
        OmniSession session;
        try
        {
            var kind = DeviceKinds.Resolve(device);
            if (kind == DeviceKind.Reference) throw new ArgumentException($"{name} has no float64 reference device");
            session = OmniSession.Load(modelDir, new OmniSessionOptions { Device = kind, Int8 = int8 });
        }
        catch (Exception e) when (e is ArgumentException or ModelFormatException)
        {
            err.WriteLine($"omni {name}: {e.Message}");
            return 2;
        }
        catch (Exception e) when (e is DeviceUnavailableException or InvalidOperationException)
        {
            err.WriteLine($"omni {name}: the device failed: {e.Message}");
            return 3;
        }
        using (session)
        {
            try
            {
                return work(session);
            }
            catch (Exception e) when (e is ArgumentException or IOException)
            {
                err.WriteLine($"omni {name}: {e.Message}");
                return 2;
            }
        }
    }

    /// <summary>Reports synchronously on the caller's thread (<see cref="Progress{T}"/> would post to the thread pool, out of order).</summary>
    private sealed class Inline(Action<(int Done, int Total)> report) : IProgress<(int Done, int Total)>
    {
        public void Report((int Done, int Total) value) => report(value);
    }
}
