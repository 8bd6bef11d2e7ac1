module Samplers.TorchSharp.Tests.Main

[<EntryPoint>]
let main argv = Samplers.Tests.Runner.run [] argv
