namespace Samplers.Core

// TFDS split-spec arithmetic (train[:10%]+test ...). Filled in by issue 2 item 5.
