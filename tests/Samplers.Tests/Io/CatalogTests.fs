module Samplers.Tests.Io.CatalogTests

open Expecto

// Owned by the issue that builds this area; filled in there.
[<Tests>]
let tests = testList "Io.Catalog" []
