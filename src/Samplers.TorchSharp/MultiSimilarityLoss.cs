using TorchSharp;
using static TorchSharp.torch;

namespace Samplers.TorchSharp;

/// <summary>
/// The multi-similarity loss (Wang et al. 2019, "Multi-Similarity Loss with General Pair Weighting for Deep Metric
/// Learning") as TensorFlow Similarity defines it (<c>MultiSimilarityLoss</c>: cosine distance, alpha 2, beta 40,
/// epsilon 0.1, lambda 0.5, center 1), with TorchSharp operations.
/// </summary>
/// <remarks>
/// <para>For a batch of L2-normalised embeddings and labels, with cosine distances <c>d = max(1 - e·eᵀ, 0)</c>, every
/// anchor <c>i</c>: positives are the other rows of its class, negatives the rows of other classes. Pair mining keeps
/// positives with <c>d &gt; min(d to negatives) - epsilon</c> and negatives with <c>d &lt; max(d to positives) + epsilon</c>.
/// With <c>s = d + lambda - center</c>, the anchor's loss is
/// <c>log(1 + Σ_P exp(alpha·s)) / alpha + log(1 + Σ_N exp(-beta·s)) / beta</c>, or 0 when mining left it without a
/// positive or without a negative. The batch loss is the mean over all anchors (Keras's default reduction,
/// zeros included).</para>
/// <para>As in the reference, the masked min/max of the mining step are computed in float64 with its offsets
/// (<c>± 1e-6</c>), and the log-sum-exp subtracts the row maximum of all pairs (not only the kept ones), which does
/// not change the value.</para>
/// </remarks>
public sealed class MultiSimilarityLoss
{
    /// <summary>The weight of positive pairs (<c>alpha</c>, default 2).</summary>
    public double Alpha { get; init; } = 2.0;

    /// <summary>The weight of negative pairs (<c>beta</c>, default 40).</summary>
    public double Beta { get; init; } = 40.0;

    /// <summary>The mining margin (<c>epsilon</c>, default 0.1).</summary>
    public double Epsilon { get; init; } = 0.1;

    /// <summary>The distance where weighting turns over (<c>lmda</c>, default 0.5).</summary>
    public double Lambda { get; init; } = 0.5;

    /// <summary>The expected distance (<c>center</c>, default 1 for cosine distances in [0, 2]).</summary>
    public double Center { get; init; } = 1.0;

    /// <summary>The loss of each anchor, shape [n] (0 for anchors without a mined positive or negative).</summary>
    /// <param name="embeddings">[n, dim] float32, L2-normalised rows.</param>
    /// <param name="labels">[n] integer labels.</param>
    /// <exception cref="ArgumentException">The shapes do not fit (the message gives them).</exception>
    public Tensor PerAnchor(Tensor embeddings, Tensor labels)
    {
        ArgumentNullException.ThrowIfNull(embeddings);
        ArgumentNullException.ThrowIfNull(labels);
        if (embeddings.dim() != 2 || labels.dim() != 1 || labels.shape[0] != embeddings.shape[0])
            throw new ArgumentException($"Expected embeddings [n, dim] and labels [n], but got embeddings [{string.Join(", ", embeddings.shape)}] and labels [{string.Join(", ", labels.shape)}].", nameof(labels));
        using var scope = NewDisposeScope();
        long n = embeddings.shape[0];
        Tensor d = (1.0f - embeddings.mm(embeddings.t())).clamp_min(0.0f);

        Tensor lab = labels.view(-1, 1);
        Tensor same = lab.eq(lab.t());
        Tensor negative = same.logical_not();
        Tensor positive = same.logical_and(eye(n, dtype: ScalarType.Bool, device: embeddings.device).logical_not());

        Tensor posKeep, negKeep;
        using (no_grad())
        {
            Tensor negMin = MaskedMin(d, negative) - Epsilon;
            Tensor posMax = MaskedMax(d, positive) + Epsilon;
            posKeep = d.gt(negMin).logical_and(positive);
            negKeep = d.lt(posMax).logical_and(negative);
        }
        Tensor valid = posKeep.any(1).logical_and(negKeep.any(1)).to(d.dtype);

        Tensor shifted = d + (Lambda - Center);
        Tensor pLoss = LogSumExp(shifted * Alpha, posKeep.to(d.dtype)) / Alpha;
        Tensor nLoss = LogSumExp(shifted * -Beta, negKeep.to(d.dtype)) / Beta;
        return ((pLoss + nLoss).view(-1) * valid).MoveToOuterDisposeScope();
    }

    /// <summary>The batch loss: the mean of <see cref="PerAnchor"/> (a scalar).</summary>
    /// <exception cref="ArgumentException">The shapes do not fit.</exception>
    public Tensor Forward(Tensor embeddings, Tensor labels)
    {
        using Tensor per = PerAnchor(embeddings, labels);
        return per.mean();
    }

    // log(1 + Σ_mask exp(x)) per row, computed as the reference does (shift by the row max of all of x).
    private static Tensor LogSumExp(Tensor x, Tensor mask)
    {
        Tensor rawMax = x.amax([1], keepdim: true).detach();
        Tensor myMax = where(rawMax.isfinite(), rawMax, zeros_like(rawMax));
        Tensor sum = ((x - myMax).exp() * mask).sum(1, keepdim: true);
        return (myMax.neg().exp() + sum).log() + myMax;
    }

    // The reference's masked_min / masked_max (float64, offset by 1e-6 so that masked-out zeros never win).
    private static Tensor MaskedMin(Tensor d, Tensor mask)
    {
        Tensor x = d.to(ScalarType.Float64);
        Tensor axisMax = x.amax([1], keepdim: true) + 1e-6;
        return ((x - axisMax) * mask.to(ScalarType.Float64)).amin([1], keepdim: true).add(axisMax).to(d.dtype);
    }

    private static Tensor MaskedMax(Tensor d, Tensor mask)
    {
        Tensor x = d.to(ScalarType.Float64);
        Tensor axisMin = x.amin([1], keepdim: true) - 1e-6;
        return ((x - axisMin) * mask.to(ScalarType.Float64)).amax([1], keepdim: true).add(axisMin).to(d.dtype);
    }
}
