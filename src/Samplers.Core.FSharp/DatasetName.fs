namespace Samplers.Core

// TFDS dataset-name parsing (name/config:1.2.3). Filled in by issue 2 item 5.
