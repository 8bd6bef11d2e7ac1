namespace Samplers.Core

// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11).
// Implemented by the core work of issue 2; see docs/DETERMINISM.md for the key/counter layout.
