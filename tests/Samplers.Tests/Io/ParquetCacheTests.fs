module Samplers.Tests.Io.ParquetCacheTests

open Expecto

// Owned by the issue that builds this area; filled in there.
[<Tests>]
let tests = testList "Io.ParquetCache" []
