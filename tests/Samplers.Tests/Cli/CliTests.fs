module Samplers.Tests.Cli.CliTests

open Expecto

// Owned by the issue that builds this area; filled in there.
[<Tests>]
let tests = testList "Cli.Cli" []
