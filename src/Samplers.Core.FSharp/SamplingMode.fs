// The core's user-facing types live in namespace Samplers (not Samplers.Core), so a C# caller on the common path
// needs only `using Samplers;`: the façade's options take a SamplingMode.
namespace Samplers

/// <summary>How the batches of an epoch are drawn.</summary>
type SamplingMode =
    /// <summary>Every batch is an independent uniform draw (the reference's semantics).</summary>
    | Independent = 0
    /// <summary>Classes are visited in shuffled rounds (counts within one of each other); within a class, no example repeats before all were used.</summary>
    | Coverage = 1
