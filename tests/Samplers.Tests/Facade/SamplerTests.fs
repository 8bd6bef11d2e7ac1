module Samplers.Tests.Facade.SamplerTests

open Expecto

// Owned by the issue that builds this area; filled in there.
[<Tests>]
let tests = testList "Facade.Sampler" []
