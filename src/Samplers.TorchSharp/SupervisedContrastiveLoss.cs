using TorchSharp;
using static TorchSharp.torch;

namespace Samplers.TorchSharp;

/// <summary>
/// The supervised contrastive loss (Khosla et al. 2020, "Supervised Contrastive Learning", their <c>SupConLoss</c>
/// with <c>contrast_mode = "all"</c>: temperature 0.07, base temperature 0.07), with TorchSharp operations.
/// </summary>
/// <remarks>
/// <para>For L2-normalised rows <c>z</c> (the loss does not normalise them), every row <c>i</c> is an anchor; its
/// positives <c>P(i)</c> are the other rows of its class, and
/// <c>loss_i = -(τ / τ_base) · (1/|P(i)|) Σ_{p∈P(i)} log( exp(z_i·z_p/τ) / Σ_{a≠i} exp(z_i·z_a/τ) )</c>.
/// An anchor whose class appears once in the batch has no positive: its loss is 0 (it still counts in the mean, and
/// it is a negative in the other anchors' denominators), as in the authors' code. The batch loss is the mean over all
/// anchors. The logits are shifted by their row maximum (detached), which does not change the value.</para>
/// <para>With two views of each example and the example's index as its label, every anchor has exactly one positive
/// (its other view) and the loss is SimCLR's NT-Xent (<see cref="ForwardViews"/>): so a batch made by the SimCLR
/// augmenter trains with it. TensorFlow Similarity's <c>SimCLRLoss</c> (default temperature 0.05) sums the two
/// directions per pair, so its value is twice <see cref="ForwardViews"/>'s with <c>τ = τ_base</c>.</para>
/// </remarks>
public sealed class SupervisedContrastiveLoss
{
    /// <summary>The temperature τ (default 0.07).</summary>
    public double Temperature { get; init; } = 0.07;

    /// <summary>The base temperature τ_base (default 0.07); the loss is scaled by τ / τ_base.</summary>
    public double BaseTemperature { get; init; } = 0.07;

    /// <summary>The loss of each anchor, shape [n] (0 for an anchor without a positive).</summary>
    /// <param name="embeddings">[n, dim] float32, L2-normalised rows.</param>
    /// <param name="labels">[n] integer labels.</param>
    /// <exception cref="ArgumentException">The shapes do not fit (the message gives them), or the temperature is not positive.</exception>
    public Tensor PerAnchor(Tensor embeddings, Tensor labels)
    {
        MetricLossMath.CheckShapes(embeddings, labels);
        if (!(Temperature > 0) || !(BaseTemperature > 0))
            throw new ArgumentException($"The temperatures must be positive, but Temperature = {Temperature} and BaseTemperature = {BaseTemperature}.");
        using var scope = NewDisposeScope();
        long n = embeddings.shape[0];
        Tensor logits = embeddings.mm(embeddings.t()) / Temperature;
        logits = logits - logits.amax([1], keepdim: true).detach();
        (Tensor positive, _) = MetricLossMath.Masks(labels, embeddings.device);
        Tensor others = eye(n, dtype: ScalarType.Bool, device: embeddings.device).logical_not().to(logits.dtype);
        Tensor logProb = logits - (logits.exp() * others).sum(1, keepdim: true).log();
        Tensor pos = positive.to(logits.dtype);
        Tensor count = pos.sum(1);
        Tensor meanLogProbPos = (pos * logProb).sum(1) / where(count.lt(1e-6), ones_like(count), count);
        return (meanLogProbPos * -(Temperature / BaseTemperature)).MoveToOuterDisposeScope();
    }

    /// <summary>The batch loss: the mean of <see cref="PerAnchor"/> (a scalar).</summary>
    /// <exception cref="ArgumentException">The shapes do not fit.</exception>
    public Tensor Forward(Tensor embeddings, Tensor labels)
    {
        using Tensor per = PerAnchor(embeddings, labels);
        return per.mean();
    }

    /// <summary>NT-Xent (SimCLR): row <c>j</c> of <paramref name="viewA"/> and row <c>j</c> of <paramref name="viewB"/>
    /// are two views of one example, the only positive of each other; every other row of both views is a negative.
    /// The mean over the 2n anchors.</summary>
    /// <param name="viewA">[n, dim] L2-normalised rows.</param>
    /// <param name="viewB">[n, dim] L2-normalised rows, in the same example order.</param>
    /// <exception cref="ArgumentException">The two views differ in shape.</exception>
    public Tensor ForwardViews(Tensor viewA, Tensor viewB)
    {
        ArgumentNullException.ThrowIfNull(viewA);
        ArgumentNullException.ThrowIfNull(viewB);
        if (viewA.dim() != 2 || !viewA.shape.SequenceEqual(viewB.shape))
            throw new ArgumentException($"Expected two views [n, dim] of the same shape, but got [{string.Join(", ", viewA.shape)}] and [{string.Join(", ", viewB.shape)}].", nameof(viewB));
        using var scope = NewDisposeScope();
        Tensor ids = arange(viewA.shape[0], dtype: ScalarType.Int64, device: viewA.device);
        return Forward(cat([viewA, viewB], 0), cat([ids, ids], 0)).MoveToOuterDisposeScope();
    }
}
