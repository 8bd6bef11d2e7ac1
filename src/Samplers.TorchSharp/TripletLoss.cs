using TorchSharp;
using static TorchSharp.torch;

namespace Samplers.TorchSharp;

/// <summary>The pairwise distance a metric loss compares embeddings with.</summary>
public enum MetricDistance
{
    /// <summary><c>max(1 - a·b, 0)</c> for L2-normalised rows (TensorFlow Similarity's <c>"cosine"</c>).</summary>
    Cosine,

    /// <summary><c>|a - b|</c>, computed as <c>sqrt(|a|² - 2a·b + |b|²)</c> with squares below 1e-18 set to 0, so the
    /// gradient stays finite (TensorFlow Similarity's <c>"euclidean"</c>/<c>"l2"</c>).</summary>
    Euclidean,
}

/// <summary>Which positive of an anchor the triplet loss uses.</summary>
public enum PositiveMining
{
    /// <summary>The farthest positive (default).</summary>
    Hard,

    /// <summary>The nearest positive.</summary>
    Easy,
}

/// <summary>Which negative of an anchor the triplet loss uses.</summary>
public enum NegativeMining
{
    /// <summary>The nearest negative ("batch hard", Hermans et al. 2017).</summary>
    Hard,

    /// <summary>The nearest negative farther than the mined positive; when there is none, the farthest negative
    /// (default; Schroff et al. 2015, as TensorFlow Similarity falls back).</summary>
    SemiHard,

    /// <summary>The farthest negative.</summary>
    Easy,
}

/// <summary>
/// The triplet loss with online mining (Schroff et al. 2015, "FaceNet"; Hermans et al. 2017, "In Defense of the
/// Triplet Loss") as TensorFlow Similarity defines it (<c>TripletLoss</c>: cosine distance, hard positive mining,
/// semi-hard negative mining, soft margin), with TorchSharp operations.
/// </summary>
/// <remarks>
/// <para>For each anchor <c>i</c> of the batch, positives are the other rows of its class and negatives the rows of
/// other classes. Mining picks one positive distance <c>p</c> and one negative distance <c>n</c> per anchor
/// (<see cref="PositiveMining"/>, <see cref="NegativeMining"/>); the anchor's loss is <c>softplus(p - n)</c> with the
/// soft margin (<see cref="Margin"/> null, the default) or <c>max(p - n + margin, 0)</c>. The batch loss is the mean
/// over all anchors.</para>
/// <para>As in the reference, the masked min/max are computed in float64 with its offsets (<c>± 1e-6</c>). An anchor
/// whose class appears once in the batch has no positive: the masked max then gives its row's minimum minus 1e-6
/// (the distance to itself, about 0), so it still pushes its nearest negative away, as in the reference. With no
/// negative at all (one class in the batch) the masked min gives the row maximum plus 1e-6.</para>
/// </remarks>
public sealed class TripletLoss
{
    /// <summary>The distance (default cosine; the embeddings should then be L2-normalised).</summary>
    public MetricDistance Distance { get; init; } = MetricDistance.Cosine;

    /// <summary>The positive mining (default hard).</summary>
    public PositiveMining PositiveMining { get; init; } = PositiveMining.Hard;

    /// <summary>The negative mining (default semi-hard).</summary>
    public NegativeMining NegativeMining { get; init; } = NegativeMining.SemiHard;

    /// <summary>The margin of <c>max(p - n + margin, 0)</c>; null (default) for the soft margin <c>softplus(p - n)</c>.</summary>
    public double? Margin { get; init; }

    /// <summary>The loss of each anchor, shape [n].</summary>
    /// <param name="embeddings">[n, dim] float32 (L2-normalised rows for the cosine distance).</param>
    /// <param name="labels">[n] integer labels.</param>
    /// <exception cref="ArgumentException">The shapes do not fit (the message gives them).</exception>
    public Tensor PerAnchor(Tensor embeddings, Tensor labels)
    {
        MetricLossMath.CheckShapes(embeddings, labels);
        using var scope = NewDisposeScope();
        Tensor d = MetricLossMath.Pairwise(embeddings, Distance);
        (Tensor positive, Tensor negative) = MetricLossMath.Masks(labels, embeddings.device);

        Tensor pos = PositiveMining == PositiveMining.Hard
            ? MetricLossMath.MaskedMax(d, positive).Value
            : MetricLossMath.MaskedMin(d, positive).Value;
        Tensor neg;
        switch (NegativeMining)
        {
            case NegativeMining.Hard:
                neg = MetricLossMath.MaskedMin(d, negative).Value;
                break;
            case NegativeMining.Easy:
                neg = MetricLossMath.MaskedMax(d, negative).Value;
                break;
            default:
            {
                // The nearest negative beyond the farthest positive; where none is, the farthest negative.
                Tensor mask;
                using (no_grad())
                {
                    Tensor maxPositive = MetricLossMath.MaskedMax(d, positive).Value;
                    Tensor greater = d.gt(maxPositive);
                    Tensor farthest = MetricLossMath.MaskedMax(d, negative).Index;
                    Tensor easy = zeros_like(negative).scatter_(1, farthest.view(-1, 1), ones_like(farthest.view(-1, 1), dtype: ScalarType.Bool));
                    mask = where(greater, negative, easy);
                }
                neg = MetricLossMath.MaskedMin(d, mask).Value;
                break;
            }
        }
        Tensor diff = (pos - neg).view(-1);
        Tensor loss = Margin is double m ? (diff + m).clamp_min(0.0) : nn.functional.softplus(diff);
        return loss.MoveToOuterDisposeScope();
    }

    /// <summary>The batch loss: the mean of <see cref="PerAnchor"/> (a scalar).</summary>
    /// <exception cref="ArgumentException">The shapes do not fit.</exception>
    public Tensor Forward(Tensor embeddings, Tensor labels)
    {
        using Tensor per = PerAnchor(embeddings, labels);
        return per.mean();
    }
}

/// <summary>The reference's shared pieces: pairwise distances, label masks, masked min/max.</summary>
internal static class MetricLossMath
{
    internal static void CheckShapes(Tensor embeddings, Tensor labels)
    {
        ArgumentNullException.ThrowIfNull(embeddings);
        ArgumentNullException.ThrowIfNull(labels);
        if (embeddings.dim() != 2 || labels.dim() != 1 || labels.shape[0] != embeddings.shape[0])
            throw new ArgumentException($"Expected embeddings [n, dim] and labels [n], but got embeddings [{string.Join(", ", embeddings.shape)}] and labels [{string.Join(", ", labels.shape)}].", nameof(labels));
    }

    internal static Tensor Pairwise(Tensor e, MetricDistance distance)
    {
        if (distance == MetricDistance.Cosine) return (1.0f - e.mm(e.t())).clamp_min(0.0f);
        Tensor sq = e.square().sum(1, keepdim: true);
        Tensor d2 = sq - 2.0f * e.mm(e.t()) + sq.t();
        // The reference's guard: sqrt's gradient at 0 is infinite, so tiny squares become exactly 0.
        Tensor keep = d2.ge(1e-18f).to(e.dtype);
        return d2.clamp_min(1e-18f).sqrt() * keep;
    }

    /// <summary>(same class without the diagonal, other class).</summary>
    internal static (Tensor Positive, Tensor Negative) Masks(Tensor labels, Device device)
    {
        Tensor lab = labels.view(-1, 1);
        Tensor same = lab.eq(lab.t());
        long n = labels.shape[0];
        return (same.logical_and(eye(n, dtype: ScalarType.Bool, device: device).logical_not()), same.logical_not());
    }

    // masked_min / masked_max of the reference: float64, offset by 1e-6 so that masked-out zeros never win; a row with
    // an empty mask gives its max + 1e-6 (min) or its min - 1e-6 (max).
    internal static (Tensor Value, Tensor Index) MaskedMin(Tensor d, Tensor mask)
    {
        Tensor x = d.to(ScalarType.Float64);
        Tensor axisMax = x.amax([1], keepdim: true) + 1e-6;
        Tensor shifted = (x - axisMax) * mask.to(ScalarType.Float64);
        return (shifted.amin([1], keepdim: true).add(axisMax).to(d.dtype), shifted.argmin(1));
    }

    internal static (Tensor Value, Tensor Index) MaskedMax(Tensor d, Tensor mask)
    {
        Tensor x = d.to(ScalarType.Float64);
        Tensor axisMin = x.amin([1], keepdim: true) - 1e-6;
        Tensor shifted = (x - axisMin) * mask.to(ScalarType.Float64);
        return (shifted.amax([1], keepdim: true).add(axisMin).to(d.dtype), shifted.argmax(1));
    }
}
