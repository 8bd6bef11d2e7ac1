using Samplers.Core;

namespace Samplers.Imaging;

/// <summary>
/// A reproducible image augmenter: runs a pipeline of <see cref="ImageAugmentation"/> steps on every example of a batch,
/// <c>numAugmentationsPerExample</c> times, and returns a float32 batch [views * rows, height, width, 3] with levels in
/// [0, 1], grouped view by view as TensorFlow Similarity's augmenters return their list of views: rows
/// <c>v * n .. v * n + n - 1</c> are view v of input rows 0 .. n - 1 (labels, indices and class ordinals repeat).
/// </summary>
/// <remarks>
/// Every random choice of view v of row r comes from the Philox stream (seed, <see cref="Purpose.Augmentation"/>, lane r,
/// stream <c>epoch &lt;&lt; 40 | v &lt;&lt; 32 | globalBatchId</c>), where the seed is the augmenter's own or else the batch's
/// (<see cref="Batch.Key"/>), so an augmented batch is the same on every call, thread count and machine. Views are
/// computed in parallel. Input: uint8 (levels / 255) or float32 (taken as [0, 1]) examples of shape [H, W] or
/// [H, W, C] with C = 1 (replicated), 3 or 4 (alpha dropped).
/// </remarks>
public sealed class ImageAugmenter : IAugmenter
{
    private readonly ImageAugmentation[] _steps;
    private readonly ImageAugmentation[]? _warmup;
    private readonly ulong? _seed;
    private readonly int _parallelism;

    /// <summary>An augmenter producing <paramref name="height"/> x <paramref name="width"/> RGB views.</summary>
    /// <param name="height">Output height.</param>
    /// <param name="width">Output width.</param>
    /// <param name="steps">The pipeline. When its output is not height x width (e.g. no crop step), a bilinear resize ends it.</param>
    /// <param name="warmupSteps">The pipeline for batches made in warmup (<c>is_warmup</c>); null uses <paramref name="steps"/> (the reference's augmenters ignore warmup).</param>
    /// <param name="seed">The Philox key; null uses the batch's seed.</param>
    /// <param name="maxDegreeOfParallelism">Threads for the views of one batch (-1: all cores).</param>
    /// <exception cref="ArgumentOutOfRangeException">A size is less than 1.</exception>
    /// <exception cref="ArgumentNullException"><paramref name="steps"/> or one of its steps is null.</exception>
    public ImageAugmenter(int height, int width, IEnumerable<ImageAugmentation> steps, IEnumerable<ImageAugmentation>? warmupSteps = null,
        ulong? seed = null, int maxDegreeOfParallelism = -1)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(height, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        ArgumentNullException.ThrowIfNull(steps);
        _steps = steps.ToArray();
        foreach (var s in _steps) ArgumentNullException.ThrowIfNull(s, nameof(steps));
        _warmup = warmupSteps?.ToArray();
        if (_warmup is not null) foreach (var s in _warmup) ArgumentNullException.ThrowIfNull(s, nameof(warmupSteps));
        Height = height;
        Width = width;
        _seed = seed;
        _parallelism = maxDegreeOfParallelism;
    }

    /// <summary>Output height.</summary>
    public int Height { get; }

    /// <summary>Output width.</summary>
    public int Width { get; }

    /// <summary>The pipeline.</summary>
    public IReadOnlyList<ImageAugmentation> Steps => _steps;

    /// <summary>The warmup pipeline, or null when warmup batches use <see cref="Steps"/>.</summary>
    public IReadOnlyList<ImageAugmentation>? WarmupSteps => _warmup;

    /// <summary>The largest <c>numAugmentationsPerExample</c> (8 bits of the stream number).</summary>
    public const int MaxViews = 256;

    /// <summary>
    /// TensorFlow Similarity's <c>SimCLRAugmenter</c> with its defaults: training = random resized crop (area 0.08-1,
    /// aspect 3/4-4/3, bicubic), left-right flip (p 0.5), then colour distortion (jitter p 0.8 with strengths 0.8, 0.8,
    /// 0.8, 0.2 times <paramref name="jitterStrength"/>, random order; then greyscale p 0.2), clip to [0, 1]. v2 uses
    /// multiplicative brightness, v1 additive. Evaluation (<paramref name="isTraining"/> false) = central crop of
    /// <paramref name="evalCropProportion"/> resized bicubic. No blur or solarise: the reference's SimCLR augmenter has none.
    /// </summary>
    /// <param name="height">Output height.</param>
    /// <param name="width">Output width.</param>
    /// <param name="isTraining">Training or evaluation pipeline.</param>
    /// <param name="colorDistort">Whether to distort colours.</param>
    /// <param name="jitterStrength">Multiplies the four jitter strengths.</param>
    /// <param name="crop">Whether to crop (else the image is resized).</param>
    /// <param name="evalCropProportion">Central crop proportion for evaluation (ImageNet's 0.875).</param>
    /// <param name="flip">Whether to flip.</param>
    /// <param name="version">"v2" (multiplicative brightness) or "v1" (additive).</param>
    /// <param name="evalDuringWarmup">Use the evaluation pipeline for warmup batches (the reference ignores warmup: false).</param>
    /// <param name="seed">The Philox key; null uses the batch's seed.</param>
    /// <exception cref="ArgumentException"><paramref name="version"/> is neither "v1" nor "v2".</exception>
    public static ImageAugmenter SimClr(int height, int width, bool isTraining = true, bool colorDistort = true, double jitterStrength = 1.0,
        bool crop = true, double evalCropProportion = 0.875, bool flip = true, string version = "v2", bool evalDuringWarmup = false, ulong? seed = null)
    {
        if (version != "v1" && version != "v2") throw new ArgumentException($"version must be \"v1\" or \"v2\", but was \"{version}\".", nameof(version));
        var train = new List<ImageAugmentation>();
        if (crop) train.Add(ImageAugmentation.RandomResizedCrop(height, width));
        if (flip) train.Add(ImageAugmentation.HorizontalFlip(0.5));
        if (colorDistort)
        {
            double s = jitterStrength;
            train.Add(ImageAugmentation.ColorJitter(0.8 * s, 0.8 * s, 0.8 * s, 0.2 * s, p: 0.8, randomOrder: true, multiplicativeBrightness: version == "v2"));
            train.Add(ImageAugmentation.RandomGreyscale(0.2));
        }
        var eval = new List<ImageAugmentation>();
        if (crop) eval.Add(ImageAugmentation.CenterCropResize(height, width, evalCropProportion));
        return isTraining
            ? new ImageAugmenter(height, width, train, evalDuringWarmup ? eval : null, seed)
            : new ImageAugmenter(height, width, eval, null, seed);
    }

    /// <inheritdoc/>
    /// <remarks>0 views (the sampler's default <see cref="SamplerOptions.NumAugmentationsPerExample"/>) makes one view.</remarks>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="numAugmentationsPerExample"/> is outside [0, 256], or the batch's epoch is 2^24 or more.</exception>
    /// <exception cref="ArgumentException">The batch does not hold uint8 or float32 images of shape [H, W] or [H, W, C] with C in {1, 3, 4}.</exception>
    public Batch Augment(Batch batch, int numAugmentationsPerExample, bool isWarmup)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(numAugmentationsPerExample);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(numAugmentationsPerExample, MaxViews);
        DType dtype = batch.DType;
        if (dtype != DType.UInt8 && dtype != DType.Float32)
            throw new ArgumentException($"ImageAugmenter takes uint8 or float32 images, but the batch is {DTypes.Name(dtype)}.", nameof(batch));
        ReadOnlySpan<int> es = batch.ExampleShape;
        int h, w, c;
        if (es.Length == 2) (h, w, c) = (es[0], es[1], 1);
        else if (es.Length == 3 && es[2] is 1 or 3 or 4) (h, w, c) = (es[0], es[1], es[2]);
        else throw new ArgumentException($"ImageAugmenter takes [H, W] or [H, W, C] images with C = 1, 3 or 4, but the batch's example shape is [{string.Join(", ", es.ToArray())}].", nameof(batch));
        if (h < 1 || w < 1) throw new ArgumentException($"The batch's images are empty ({h}x{w}).", nameof(batch));
        PlanKey key = batch.Key;
        if ((uint)key.Epoch >= 1u << 24) throw new ArgumentOutOfRangeException(nameof(batch), key.Epoch, "ImageAugmenter keys views by epochs below 2^24.");
        // 0 is the sampler's default (the reference's base-class default); the reference's SimCLR augmenter would then return
        // an empty list of views, which no caller wants: we make one view.
        int rows = batch.Count, views = Math.Max(1, numAugmentationsPerExample);
        var steps = isWarmup && _warmup is not null ? _warmup : _steps;
        Batch output = BatchPool.Shared.Rent(DType.Float32, [Height, Width, 3], rows * views);
        try
        {
            BatchStorage o = output.Storage, s = batch.Storage;
            o.Key = key; o.GlobalBatchId = s.GlobalBatchId; o.PlanVersion = s.PlanVersion; o.IsWarmup = s.IsWarmup;
            for (int v = 0; v < views; v++)
            {
                batch.Y.CopyTo(output.Y.Slice(v * rows, rows));
                batch.Indices.CopyTo(output.Indices.Slice(v * rows, rows));
                batch.ClassOrdinals.CopyTo(output.ClassOrdinals.Slice(v * rows, rows));
            }
            ulong seed = _seed ?? key.Seed;
            uint batchNo = (uint)(s.GlobalBatchId >= 0 ? s.GlobalBatchId : key.BatchId);
            byte[] xs = s.X, xo = o.X;
            int inBytes = h * w * c * DTypes.SizeOf(dtype), outFloats = Height * Width * 3;
            var po = new ParallelOptions { MaxDegreeOfParallelism = _parallelism };
            Parallel.For(0, rows * views, po, ImageWork.Rent, (i, _, work) =>
            {
                int v = i / rows, r = i % rows;
                var rng = ViewStream(seed, key.Epoch, v, batchNo, r);
                work.Load(xs, r * inBytes, dtype, h, w, c);
                Run(steps, work, ref rng);
                var dst = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(xo.AsSpan(i * outFloats * 4, outFloats * 4));
                Finish(work, dst);
                return work;
            }, ImageWork.Return);
        }
        catch
        {
            output.Dispose();
            throw;
        }
        batch.Dispose();
        return output;
    }

    /// <summary>Runs the pipeline on one image (for tools and tests): the view <paramref name="view"/> of row <paramref name="row"/>
    /// of the batch (seed, epoch, batchId), written to <paramref name="destination"/> as Height x Width x 3 float32 levels.</summary>
    /// <exception cref="ArgumentException">The image is not uint8 [H, W, C] with C in {1, 3, 4}, or the destination is not one output image.</exception>
    public void AugmentImage(ReadOnlySpan<byte> image, int height, int width, int channels, Span<float> destination,
        ulong seed, int epoch, int batchId, int row, int view, bool isWarmup = false)
    {
        if (channels is not (1 or 3 or 4) || height < 1 || width < 1 || image.Length != height * width * channels)
            throw new ArgumentException($"image must be uint8 HxWxC with C = 1, 3 or 4 and {height}x{width}x{channels} bytes, but held {image.Length}.", nameof(image));
        if (destination.Length != Height * Width * 3)
            throw new ArgumentException($"destination must hold {Height * Width * 3} floats, but held {destination.Length}.", nameof(destination));
        if ((uint)epoch >= 1u << 24) throw new ArgumentOutOfRangeException(nameof(epoch), epoch, "ImageAugmenter keys views by epochs in [0, 2^24).");
        ArgumentOutOfRangeException.ThrowIfNegative(batchId);
        if ((uint)view >= MaxViews) throw new ArgumentOutOfRangeException(nameof(view), view, $"view must be in [0, {MaxViews}).");
        var work = ImageWork.Rent();
        try
        {
            var rng = ViewStream(_seed ?? seed, epoch, view, (uint)batchId, row);
            work.Load(image, DType.UInt8, height, width, channels);
            Run(isWarmup && _warmup is not null ? _warmup : _steps, work, ref rng);
            Finish(work, destination);
        }
        finally
        {
            ImageWork.Return(work);
        }
    }

    /// <summary>The stream of view <paramref name="view"/> of row <paramref name="row"/> (docs/DETERMINISM.md, purpose 9).</summary>
    private static PhiloxStream ViewStream(ulong seed, int epoch, int view, uint batchNo, int row) =>
        new(seed, Purpose.Augmentation, row, ((ulong)(uint)epoch << 40) | ((ulong)(uint)view << 32) | batchNo);

    private static void Run(ImageAugmentation[] steps, ImageWork work, ref PhiloxStream rng)
    {
        foreach (var step in steps) step.Run(work, ref rng);
    }

    private void Finish(ImageWork work, Span<float> dst)
    {
        if (work.H == Height && work.W == Width) work.Pixels.CopyTo(dst);
        else ImageResize.Resize<float>(work.Pixels, work.H, work.W, 3, dst, Height, Width, ResizeMethod.Bilinear);
        ImageOps.Clip01(dst);
    }

    /// <inheritdoc/>
    public override string ToString() =>
        $"image_augmenter({Height},{Width},[{string.Join(";", _steps.Select(s => s.ToString()))}]" +
        (_warmup is null ? "" : $",warmup=[{string.Join(";", _warmup.Select(s => s.ToString()))}]") + ")";
}
