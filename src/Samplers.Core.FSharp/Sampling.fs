namespace Samplers.Core

// Sampling primitives (bounded integers, Floyd, keyed permutations). Filled in by issue 2.
