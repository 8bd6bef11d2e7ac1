module Samplers.Tests.Core.SplitsTests

open Expecto

// Owned by the issue that builds this area; filled in there.
[<Tests>]
let tests = testList "Core.Splits" []
