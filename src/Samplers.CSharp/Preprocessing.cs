using System.Buffers;
using System.Globalization;
using System.Runtime.InteropServices;

namespace Samplers;

/// <summary>
/// Transforms every example once, after loading (the reference's <c>preprocess_fn(x, y) -> (x, y)</c>). It may change
/// the dtype and the shape (e.g. resize, or scale to float), and the label. Every output has the same fixed shape, which
/// is how a ragged table (examples of different sizes) becomes batchable.
/// </summary>
/// <remarks>Called from many threads at once (one call per example, in parallel): it must be thread-safe.</remarks>
public interface IExamplePreprocessor
{
    /// <summary>The dtype of the output, given the table's dtype.</summary>
    DType OutputDType(DType input);

    /// <summary>The fixed shape of every output example, given the table's declared shape (-1 where ragged).</summary>
    int[] OutputShape(ReadOnlySpan<int> declaredInputShape);

    /// <summary>Writes the transform of one example into <paramref name="output"/> (exactly one output example of bytes).</summary>
    /// <param name="x">The example's bytes (elements of <paramref name="dtype"/>).</param>
    /// <param name="shape">The example's own shape.</param>
    /// <param name="dtype">The table's dtype.</param>
    /// <param name="output">Where the output example goes.</param>
    /// <param name="label">The label; may be changed.</param>
    void Process(ReadOnlySpan<byte> x, ReadOnlySpan<int> shape, DType dtype, Span<byte> output, ref long label);

    /// <summary>
    /// A stable name of what this preprocess computes, or null (the default) when it has none. When declared, the loader
    /// caches the preprocessed table under a key that includes it, so a later load reads the small table instead of
    /// decoding again; so two preprocesses with the same identity must produce the same bytes for the same input.
    /// </summary>
    /// <remarks>The built-in preprocesses (<see cref="Imaging.ImagePreprocessing.Resize"/>, <see cref="Imaging.ImagePreprocessing.CenterCrop"/>,
    /// <see cref="Imaging.ImagePreprocessing.ResizeWithPad"/>, <see cref="Preprocessing.Normalize"/>, <see cref="Preprocessing.ToFloat32"/>,
    /// <see cref="Preprocessing.ResizeNearest"/> and <see cref="Preprocessing.Then"/> of two of them) declare theirs; user
    /// code (delegates, <see cref="Preprocessing.Create{TIn, TOut}"/>) does not, and its output is never cached.</remarks>
    PreprocessIdentity? Identity => null;
}

/// <summary>The stable identity of a preprocess (<see cref="IExamplePreprocessor.Identity"/>): a name that spells out every
/// parameter, e.g. <c>resize(224,224,bilinear,antialias=false,float32)</c>, and the version of the code behind it.</summary>
/// <remarks>Bump <see cref="Version"/> whenever the same parameters start producing different bytes (a fixed rounding, a
/// changed formula): caches keyed on the old version are then rebuilt.</remarks>
public sealed record PreprocessIdentity
{
    /// <summary>Creates an identity.</summary>
    /// <param name="name">Every parameter that changes the output, spelled out; not empty, no control characters.</param>
    /// <param name="version">The version of the implementation, 1 or more.</param>
    /// <exception cref="ArgumentException"><paramref name="name"/> is empty or holds a control character.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="version"/> is less than 1.</exception>
    public PreprocessIdentity(string name, int version)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (name.Any(char.IsControl))
            throw new ArgumentException($"A preprocess identity must not hold control characters, but '{name.Replace('\u001f', '?')}' does.", nameof(name));
        ArgumentOutOfRangeException.ThrowIfLessThan(version, 1);
        Name = name;
        Version = version;
    }

    /// <summary>The parameters, e.g. <c>resize(224,224,bilinear,antialias=false,float32)</c>.</summary>
    public string Name { get; }

    /// <summary>The version of the code that computes it.</summary>
    public int Version { get; }

    /// <summary><c>name#vVersion</c>, e.g. <c>resize(224,224,bilinear,antialias=false,float32)#v1</c>: the form the cache key holds.</summary>
    public override string ToString() => string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{Name}#v{Version}");
}

/// <summary>A typed per-example transform for <see cref="Preprocessing.Create{TIn, TOut}"/>.</summary>
/// <param name="x">The example's elements.</param>
/// <param name="shape">The example's shape.</param>
/// <param name="output">The output example's elements (the declared output shape).</param>
/// <param name="label">The label; may be changed.</param>
public delegate void PreprocessAction<TIn, TOut>(ReadOnlySpan<TIn> x, ReadOnlySpan<int> shape, Span<TOut> output, ref long label)
    where TIn : unmanaged where TOut : unmanaged;

/// <summary>Builds and applies <see cref="IExamplePreprocessor"/>s.</summary>
public static partial class Preprocessing
{
    /// <summary>Applies <paramref name="preprocess"/> to every example of <paramref name="table"/> in parallel and returns the new table
    /// (ids and class names carried over).</summary>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">The preprocessor declares a negative output dimension.</exception>
    /// <exception cref="InvalidOperationException">The preprocessor threw on an example (the message names the example; the inner exception is the original).</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public static ExampleTable Apply(ExampleTable table, IExamplePreprocessor preprocess, long chunkBytes = ExampleTable.DefaultChunkBytes, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(table);
        ArgumentNullException.ThrowIfNull(preprocess);
        DType outType = preprocess.OutputDType(table.DType);
        int[] outShape = preprocess.OutputShape(table.ExampleShape) ?? throw new ArgumentException("The preprocessor returned no output shape.", nameof(preprocess));
        foreach (int d in outShape)
            if (d < 0) throw new ArgumentException($"The preprocessor's output shape [{string.Join(", ", outShape)}] has a negative dimension; every output example needs one fixed shape.", nameof(preprocess));
        var b = ExampleTableBuilder.Fixed(outType, outShape, table.Count, chunkBytes);
        b.ClassNames = table.ClassNames;
        var po = new ParallelOptions { CancellationToken = cancellationToken };
        try
        {
            Parallel.For(0, table.Count, po, i =>
            {
                long label = table.Labels[i];
                try
                {
                    preprocess.Process(table.GetExample(i), table.GetShape(i), table.DType, b.Slot(i), ref label);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    throw new InvalidOperationException(
                        $"The preprocess failed on example {i} (label {table.Labels[i]}, shape [{string.Join(", ", table.GetShape(i).ToArray())}]): {e.Message}", e);
                }
                b.SetLabel(i, label);
                string? id = table.GetId(i);
                if (id is not null) b.SetId(i, id);
            });
        }
        catch (AggregateException ae) when (ae.InnerExceptions.Count > 0)
        {
            // Parallel.For wraps; callers want the first real failure, as a sequential loop would give.
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(ae.InnerExceptions[0]).Throw();
            throw;
        }
        return b.Build();
    }

    /// <summary>A preprocessor from a typed delegate producing examples of <paramref name="outputShape"/>.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="action"/> is null.</exception>
    /// <exception cref="ArgumentException"><typeparamref name="TOut"/> is not a supported element type, or a dimension is negative.</exception>
    public static IExamplePreprocessor Create<TIn, TOut>(ReadOnlySpan<int> outputShape, PreprocessAction<TIn, TOut> action)
        where TIn : unmanaged where TOut : unmanaged
    {
        ArgumentNullException.ThrowIfNull(action);
        foreach (int d in outputShape)
            if (d < 0) throw new ArgumentException($"outputShape must be fixed, but was [{string.Join(", ", outputShape.ToArray())}].", nameof(outputShape));
        return new Typed<TIn, TOut>(outputShape.ToArray(), ExampleTable.DTypeOf<TOut>(), action);
    }

    /// <summary>uint8 → float32, multiplying by <paramref name="scale"/> (default 1/255); keeps the shape, which must be fixed.</summary>
    public static IExamplePreprocessor ToFloat32(float scale = 1f / 255f) => new Scale(scale);

    /// <summary>Nearest-neighbour resize of [H, W] or [H, W, C] examples of any dtype to <paramref name="height"/> x <paramref name="width"/>;
    /// the way to make a ragged image table batchable.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A size is less than 1.</exception>
    public static IExamplePreprocessor ResizeNearest(int height, int width)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(height, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        return new NearestCopy(height, width);
    }

    /// <summary>
    /// Per-channel normalisation of uint8 or float32 [.., C] examples to float32: <c>(x * scale - mean[c]) / std[c]</c>
    /// (e.g. ImageNet's <c>mean = {0.485, 0.456, 0.406}</c>, <c>std = {0.229, 0.224, 0.225}</c> with <c>scale = 1/255</c>).
    /// The last dimension must equal the number of means (a single mean and std apply to every element).
    /// </summary>
    /// <exception cref="ArgumentException">mean and std differ in length, are empty, or a std is not positive.</exception>
    public static IExamplePreprocessor Normalize(float[] mean, float[] std, float scale = 1f)
    {
        ArgumentNullException.ThrowIfNull(mean);
        ArgumentNullException.ThrowIfNull(std);
        if (mean.Length == 0 || mean.Length != std.Length)
            throw new ArgumentException($"mean ({mean.Length} values) and std ({std.Length} values) must have the same, non-zero length (one per channel).", nameof(std));
        foreach (float s in std)
            if (!(s > 0)) throw new ArgumentException($"Every std must be positive, but one was {s.ToString(CultureInfo.InvariantCulture)}.", nameof(std));
        return new NormalizeChannels((float[])mean.Clone(), (float[])std.Clone(), scale);
    }

    /// <summary>Applies <paramref name="first"/>, then <paramref name="second"/> to its output (e.g. <c>Resize</c> then <c>Normalize</c>).</summary>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    public static IExamplePreprocessor Then(this IExamplePreprocessor first, IExamplePreprocessor second)
    {
        ArgumentNullException.ThrowIfNull(first);
        ArgumentNullException.ThrowIfNull(second);
        return new Chain(first, second);
    }

    private sealed class Typed<TIn, TOut>(int[] shape, DType outType, PreprocessAction<TIn, TOut> action) : IExamplePreprocessor
        where TIn : unmanaged where TOut : unmanaged
    {
        public DType OutputDType(DType input)
        {
            Batch.CheckType<TIn>(input);
            return outType;
        }

        public int[] OutputShape(ReadOnlySpan<int> declaredInputShape) => (int[])shape.Clone();

        public void Process(ReadOnlySpan<byte> x, ReadOnlySpan<int> shape_, DType dtype, Span<byte> output, ref long label) =>
            action(MemoryMarshal.Cast<byte, TIn>(x), shape_, MemoryMarshal.Cast<byte, TOut>(output), ref label);
    }

    private sealed class Scale(float scale) : IExamplePreprocessor
    {
        public PreprocessIdentity Identity => new(ToString(), 1);

        public override string ToString() => $"to_float32(scale={scale.ToString("R", System.Globalization.CultureInfo.InvariantCulture)})";

        public DType OutputDType(DType input)
        {
            if (input != DType.UInt8) throw new ArgumentException($"ToFloat32 converts uint8 data, but the data is {DTypes.Name(input)}.", "preprocess");
            return DType.Float32;
        }

        public int[] OutputShape(ReadOnlySpan<int> declaredInputShape)
        {
            foreach (int d in declaredInputShape)
                if (d < 0) throw new ArgumentException($"ToFloat32 keeps the shape, but the data is ragged ([{string.Join(", ", declaredInputShape.ToArray())}]); resize first (Preprocessing.ResizeNearest) or write a preprocess that does both.", "preprocess");
            return declaredInputShape.ToArray();
        }

        public void Process(ReadOnlySpan<byte> x, ReadOnlySpan<int> shape, DType dtype, Span<byte> output, ref long label)
        {
            Span<float> o = MemoryMarshal.Cast<byte, float>(output);
            for (int i = 0; i < x.Length; i++) o[i] = x[i] * scale;
        }
    }

    private sealed class NearestCopy(int height, int width) : IExamplePreprocessor
    {
        public PreprocessIdentity Identity => new(ToString(), 1);

        public override string ToString() => $"resize_nearest_copy({height},{width})";

        public DType OutputDType(DType input) => input;

        public int[] OutputShape(ReadOnlySpan<int> s)
        {
            if (s.Length == 2) return [height, width];
            if (s.Length == 3 && s[2] >= 0) return [height, width, s[2]];
            throw new ArgumentException($"ResizeNearest takes [H, W] or [H, W, C] examples with a fixed C, but the declared shape is [{string.Join(", ", s.ToArray())}].", "preprocess");
        }

        public void Process(ReadOnlySpan<byte> x, ReadOnlySpan<int> shape, DType dtype, Span<byte> output, ref long label)
        {
            int h = shape[0], w = shape[1];
            int pixel = (shape.Length == 3 ? shape[2] : 1) * DTypes.SizeOf(dtype);
            for (int r = 0; r < height; r++)
            {
                int sr = (int)((long)r * h / height);
                for (int c = 0; c < width; c++)
                {
                    int sc = (int)((long)c * w / width);
                    x.Slice((sr * w + sc) * pixel, pixel).CopyTo(output.Slice((r * width + c) * pixel, pixel));
                }
            }
        }
    }

    private sealed class NormalizeChannels(float[] mean, float[] std, float scale) : IExamplePreprocessor
    {
        public DType OutputDType(DType input)
        {
            if (input != DType.UInt8 && input != DType.Float32)
                throw new ArgumentException($"Normalize takes uint8 or float32 data, but the data is {DTypes.Name(input)}.", "preprocess");
            return DType.Float32;
        }

        public int[] OutputShape(ReadOnlySpan<int> declared)
        {
            foreach (int d in declared)
                if (d < 0) throw new ArgumentException($"Normalize keeps the shape, but the data is ragged ([{string.Join(", ", declared.ToArray())}]); resize first.", "preprocess");
            if (mean.Length > 1 && (declared.Length == 0 || declared[^1] != mean.Length))
                throw new ArgumentException($"Normalize has {mean.Length} channel means, but the examples' last dimension is {(declared.Length == 0 ? "missing" : declared[^1].ToString(CultureInfo.InvariantCulture))}.", "preprocess");
            return declared.ToArray();
        }

        public void Process(ReadOnlySpan<byte> x, ReadOnlySpan<int> shape, DType dtype, Span<byte> output, ref long label)
        {
            Span<float> o = MemoryMarshal.Cast<byte, float>(output);
            int c = mean.Length;
            if (dtype == DType.UInt8) System.Numerics.Tensors.TensorPrimitives.ConvertTruncating(x, o.Slice(0, x.Length));
            else MemoryMarshal.Cast<byte, float>(x).CopyTo(o);
            int n = dtype == DType.UInt8 ? x.Length : x.Length / 4;
            for (int i = 0; i < n; i++)
            {
                int k = i % c;
                o[i] = (o[i] * scale - mean[k]) / std[k];
            }
        }

        public PreprocessIdentity Identity => new(ToString(), 1);

        public override string ToString() =>
            $"normalize(mean=[{string.Join(",", mean.Select(m => m.ToString("R", CultureInfo.InvariantCulture)))}],std=[{string.Join(",", std.Select(m => m.ToString("R", CultureInfo.InvariantCulture)))}],scale={scale.ToString("R", CultureInfo.InvariantCulture)})";
    }

    private sealed class Chain(IExamplePreprocessor first, IExamplePreprocessor second) : IExamplePreprocessor, IResizeTarget
    {
        public (int Height, int Width)? ResizeTarget => first is IResizeTarget r ? r.ResizeTarget : null;

        public DType OutputDType(DType input) => second.OutputDType(first.OutputDType(input));

        public int[] OutputShape(ReadOnlySpan<int> declared) => second.OutputShape(first.OutputShape(declared));

        public void Process(ReadOnlySpan<byte> x, ReadOnlySpan<int> shape, DType dtype, Span<byte> output, ref long label)
        {
            DType mid = first.OutputDType(dtype);
            int[] midShape = first.OutputShape(shape);
            long bytes = DTypes.SizeOf(mid);
            foreach (int d in midShape) bytes *= d;
            byte[] tmp = ArrayPool<byte>.Shared.Rent((int)bytes);
            try
            {
                Span<byte> t = tmp.AsSpan(0, (int)bytes);
                first.Process(x, shape, dtype, t, ref label);
                second.Process(t, midShape, mid, output, ref label);
            }
            finally { ArrayPool<byte>.Shared.Return(tmp); }
        }

        /// <summary>Declared only when both parts declare theirs: <c>then(first#vN,second#vM)</c>, version 1 (of the chaining).</summary>
        public PreprocessIdentity? Identity =>
            first.Identity is { } a && second.Identity is { } b ? new PreprocessIdentity($"then({a},{b})", 1) : null;

        public override string ToString() => $"{first}|{second}";
    }
}

/// <summary>A preprocess that starts by resizing to a fixed size (so a smaller input that is still larger than that size
/// is acceptable: the loader may decode a JPEG at a reduced size that still covers it).</summary>
internal interface IResizeTarget
{
    /// <summary>The size the input is first resized to, or null.</summary>
    (int Height, int Width)? ResizeTarget { get; }
}
