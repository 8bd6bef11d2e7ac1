using System.CommandLine;
using System.Globalization;
using Samplers.Imaging;

namespace Samplers.Cli;

/// <summary><c>samplers show [dataset] --out grid.png</c>: one batch (and its augmented views) as a labelled PNG grid (<see cref="BatchGrid"/>).</summary>
internal static class ShowCommand
{
    public static Command Build(CliShared s)
    {
        var dataset = CliShared.DatasetArgument();
        var batch = new Option<int>("--batch", "-b") { Description = "The batch id to show.", DefaultValueFactory = _ => 0 };
        var epoch = new Option<int>("--epoch") { Description = "The epoch of the batch.", DefaultValueFactory = _ => 0 };
        var augment = new Option<string?>("--augment") { Description = "Also show augmented views: simclr (TensorFlow Similarity's SimCLR augmenter)." };
        var views = new Option<int>("--views") { Description = "Augmented views per example.", DefaultValueFactory = _ => 2 };
        var viewSize = new Option<int>("--view-size") { Description = "Side of the augmented views, in pixels.", DefaultValueFactory = _ => 96 };
        var output = new Option<string>("--out", "-o") { Description = "The PNG file to write.", Required = true };
        return s.Define("show",
            "Renders one batch as a PNG grid: a row per class, each example followed by its augmented views, labelled with the class name and the example's index.\n\n" +
            "Examples:\n  samplers show --batch 3 --out grid.png\n  samplers show synthetic_photos --data-dir data --resize 128x128 -c 4 -e 3 --augment simclr --out grid.png",
            [dataset, batch, epoch, augment, views, viewSize, s.Options.Resize, output], s.Options.SamplerOptions, async (r, c, ct) =>
        {
            int e = r.GetValue(epoch);
            if (e < 0) throw new UsageException($"--epoch must be 0 or more, but was {e}.");
            string? aug = r.GetValue(augment);
            if (aug is not null && !aug.Equals("simclr", StringComparison.OrdinalIgnoreCase))
                throw new UsageException($"--augment: '{aug}' is not an augmenter; use simclr.");
            int k = r.GetValue(views), side = r.GetValue(viewSize);
            if (k < 1 || k > ImageAugmenter.MaxViews) throw new UsageException($"--views must be in [1, {ImageAugmenter.MaxViews}], but was {k}.");
            if (side < 8 || side > 4096) throw new UsageException($"--view-size must be in [8, 4096], but was {side}.");
            // The grid's least size follows from the options alone: one too large is refused before loading (and drawn
            // exactly after, see BatchGrid.Render).
            int classesPerBatch = r.GetValue(s.Options.ClassesPerBatch), examplesPerClass = r.GetValue(s.Options.ExamplesPerClass);
            var (leastW, leastH) = BatchGrid.LeastSize(classesPerBatch, examplesPerClass, aug is null ? 0 : k, side);
            if (classesPerBatch > 0 && examplesPerClass > 0 && !BatchGrid.Fits(leastW, leastH))
            {
                string wide = aug is null ? "--examples-per-class" : "--examples-per-class, --views or --view-size";
                string tall = aug is null ? "--classes-per-batch" : "--classes-per-batch or --view-size";
                string lower = leastW > BatchGrid.MaxSide ? wide : leastH > BatchGrid.MaxSide ? tall : $"{wide}, or {tall}";
                throw new UsageException(
                    $"--classes-per-batch {classesPerBatch} and --examples-per-class {examplesPerClass}" + (aug is null ? "" : $" with --views {k} of --view-size {side}") +
                    $" make a grid of at least {leastW}x{leastH} px, over the limit of {BatchGrid.MaxSide} px a side and {BatchGrid.MaxPixels} px in all; lower {lower}.");
            }
            // The output rule (Export.OutputTarget): a directory, block device or socket is refused before loading.
            string path = r.GetValue(output)!;
            try { _ = OutputTarget.Resolve(path); }
            catch (ArgumentException a) { throw new UsageException($"--out {path}: {ErrorPolicy.WithoutParameterTail(a)}."); }
            // --resize is a loading setting (Load.Preprocess): the loader resizes while decoding and caches the result.
            var options = s.Settings(r, r.GetValue(dataset));
            var data = await s.LoadAsync(c, options, ct).ConfigureAwait(false);
            if (data.Table.IsRagged)
                throw new UsageException($"{data.Dir.FullName} has images of varying sizes; pass --resize HEIGHTxWIDTH (e.g. --resize 128x128).");
            var sampler = CliShared.Sampler(data, options);
            int id = r.GetValue(batch);
            if (id < 0 || id >= sampler.Count) throw new UsageException($"--batch must be in [0, {sampler.Count}) for this sampler, but was {id}.");
            using Batch b = sampler.GenerateBatchAt(e, id);
            ct.ThrowIfCancellationRequested();
            BatchGridImage grid = aug is null
                ? BatchGrid.Render(b, sampler.ClassNames)
                : BatchGrid.RenderWithViews(b, ImageAugmenter.SimClr(side, side), k, sampler.ClassNames);
            ct.ThrowIfCancellationRequested(); // rendering a large grid takes a moment; nothing is written yet
            BatchGrid.WritePng(path, grid);
            int classes = grid.Cells.Select(x => x.GridRow).Distinct().Count();
            if (c.Json)
                c.WriteJson(new
                {
                    output = Path.GetFullPath(path), width = grid.Width, height = grid.Height, classes, examples = b.Count, views = aug is null ? 0 : k, epoch = e, batch = id,
                    labels = grid.Labels.Select(l => new { text = l.Text, lines = l.Lines, x = l.X, y = l.Y, width = l.Width, height = l.Height }),
                });
            else
            {
                string extra = aug is null ? "" : string.Create(CultureInfo.InvariantCulture, $", {k} {aug} views each ({side}x{side})");
                c.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"wrote {path}: {grid.Width}x{grid.Height} px, {classes} classes, {b.Count} examples{extra}"));
            }
            return Program.ExitOk;
        });
    }
}
