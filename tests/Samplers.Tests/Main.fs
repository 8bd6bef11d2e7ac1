module Samplers.Tests.Main

[<EntryPoint>]
let main argv = Samplers.Tests.Runner.run Samplers.Tests.Children.modes argv
